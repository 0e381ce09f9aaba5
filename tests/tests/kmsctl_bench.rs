//! `kmsctl bench` against the real pair: every request is signed by the
//! load generator's own SigV4 signer and verified by the server, so a run
//! with no errors is an end-to-end check of that signer; each operation
//! counts exactly the requests asked for; a principal without access, or a
//! wrong secret, stops the run at its first check with the AWS error.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hsm_kms_tests::{KmsctlOutput, TestEnv};

fn bench(env: &TestEnv, who: &str, args: &[&str]) -> KmsctlOutput {
    let mut all = vec!["--json", "bench", "--connections", "3", "--threads", "1"];
    all.extend_from_slice(args);
    env.kmsctl(who, all)
}

#[test]
fn every_operation_runs_signed_requests_without_errors() {
    let env = TestEnv::start();
    for op in [
        "generate-data-key",
        "encrypt",
        "decrypt",
        "generate-random",
        "sign",
        "mixed",
    ] {
        let v = bench(&env, "alice", &["--op", op, "--requests", "60"]).json();
        assert_eq!(v["op"], op, "{v}");
        assert_eq!(v["requests"], 60, "{op}: {v}");
        assert_eq!(v["ok"], 60, "{op}: {v}");
        assert_eq!(v["errors"], serde_json::json!({}), "{op}: {v}");
        assert!(v["ops_per_sec"].as_f64().unwrap() > 0.0, "{op}: {v}");
        let p50 = v["latency_us"]["p50"].as_u64().unwrap();
        let p99 = v["latency_us"]["p99"].as_u64().unwrap();
        assert!(0 < p50 && p50 <= p99, "{op}: {v}");
    }
}

#[test]
fn refusals_stop_the_run_before_the_load() {
    let env = TestEnv::start();
    let key = env.kmsctl("alice", ["create-key", "--json"]).json()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    // bob may not use alice's key: the first check fails, nothing is run.
    let out = bench(
        &env,
        "bob",
        &["--op", "encrypt", "--key-id", &key, "--requests", "10"],
    );
    assert!(!out.success, "{}", out.stdout);
    assert!(
        out.stderr.contains("AccessDeniedException"),
        "{}",
        out.stderr
    );

    // A secret that is not the principal's: refused before any load.
    let out = env
        .kmsctl_command("alice")
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .args([
            "--json",
            "bench",
            "--op",
            "generate-random",
            "--requests",
            "5",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("InvalidSignatureException"), "{stderr}");
}
