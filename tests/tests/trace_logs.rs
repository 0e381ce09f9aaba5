//! No secret in any log line, even at trace level: both processes run with
//! `RUST_LOG=trace` (their own modules and every dependency: hyper, h2,
//! rustls, tokio, rusqlite...) through a mixed workload, a runtime
//! principal's creation and use, and a frontend restart (which decrypts the
//! stored principal secrets). Then no line of either log may hold the master
//! key, a CMK, a data key, an Encrypt plaintext, GenerateRandom output or a
//! principal's secret access key, in any of the encodings of
//! `hsm_kms_tests::leaks::encodings`. Positive controls: both logs do have
//! trace lines, and the request ids of the calls are in them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use hsm_kms_tests::leaks::{self, Secret};
use hsm_kms_tests::{EnvOptions, TestEnv};

/// `"<log>:<line>: <secret> (<encoding>)"` for each secret found. The whole
/// file is searched once per secret (a trace log is large); only a secret
/// found is looked for line by line, to name the lines.
fn leaks_in_log(path: &Path, secrets: &[Secret]) -> Vec<String> {
    let text = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    for s in secrets {
        if leaks::find(&text, std::slice::from_ref(s)).is_empty() {
            continue;
        }
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            for what in leaks::find(line, std::slice::from_ref(s)) {
                out.push(format!("{}:{}: {what}", path.display(), n + 1));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_line_at_trace_level() {
    let mut env = TestEnv::start_with(EnvOptions {
        log_filter: Some("trace".into()),
        ..EnvOptions::default()
    });
    let mut work = leaks::mixed_workload(&env.client("alice")).await;

    // A runtime principal: its secret is made, encrypted under a system key
    // by the daemon, returned once, decrypted again at the next start.
    let dave = env.create_principal("dave", false).await;
    env.restart_frontend().await;
    let pt = (0..32).map(|_| rand::random::<u8>()).collect::<Vec<u8>>();
    let out = env
        .client_for(&dave)
        .generate_random()
        .number_of_bytes(16)
        .send()
        .await
        .unwrap();
    work.request_ids.push(out.request_id().unwrap().into());
    work.random.push(Secret::new(
        "GenerateRandom output (dave)",
        out.plaintext().unwrap().as_ref().to_vec(),
    ));
    let c = env.client("alice");
    let enc = c
        .encrypt()
        .key_id(&work.key_ids[0])
        .plaintext(Blob::new(pt.clone()))
        .send()
        .await
        .unwrap();
    work.request_ids.push(enc.request_id().unwrap().into());
    work.plaintexts
        .push(Secret::new("Encrypt plaintext after restart", pt));

    let mut secrets = leaks::key_material(&env, &work.key_ids);
    for who in ["alice", "bob", "carol", "admin"] {
        secrets.push(Secret::new(
            format!("secret access key of {who}"),
            env.principal(who).secret_access_key.as_bytes(),
        ));
    }
    secrets.push(Secret::new(
        "secret access key of dave (runtime principal)",
        dave.secret_access_key.as_bytes(),
    ));
    secrets.extend(work.plaintexts.iter().cloned());
    secrets.extend(work.data_keys.iter().cloned());
    secrets.extend(work.random.iter().cloned());

    // Positive controls: trace level is on in both processes, and the logs
    // carry the request ids (the frontend every one, the daemon those of
    // the calls that reached it).
    let frontend_log = std::fs::read_to_string(env.frontend_log()).unwrap();
    let daemon_log = std::fs::read_to_string(env.daemon_log()).unwrap();
    // hsm-daemon's code and dependencies emit nothing below debug, so its
    // control is a DEBUG line (the per-request "ok").
    for (name, log, level) in [
        ("kms-frontend", &frontend_log, " TRACE "),
        ("hsm-daemon", &daemon_log, " DEBUG "),
    ] {
        assert!(
            log.lines().any(|l| l.contains(level)),
            "positive control failed: no{level}line in the {name} log"
        );
    }
    let missing: Vec<&String> = work
        .request_ids
        .iter()
        .filter(|id| !frontend_log.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "positive control failed: request ids missing from the frontend log: {missing:?}"
    );
    let in_daemon = work
        .request_ids
        .iter()
        .filter(|id| daemon_log.contains(id.as_str()))
        .count();
    assert!(
        in_daemon * 2 >= work.request_ids.len(),
        "positive control failed: only {in_daemon} of {} request ids in the daemon log",
        work.request_ids.len()
    );

    let mut found = leaks_in_log(env.frontend_log(), &secrets);
    found.extend(leaks_in_log(env.daemon_log(), &secrets));
    assert!(
        found.is_empty(),
        "{} secrets in trace-level log lines:\n{}",
        found.len(),
        found.join("\n")
    );
}
