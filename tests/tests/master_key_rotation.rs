//! Master-key rotation from outside, against the real (sandboxed) binaries:
//! `kmsctl rotate-master-key` rewraps every stored token under a new master
//! key while old ciphertexts, signatures and MACs stay valid; the key file
//! ends with one key, not the old one, and no stored token opens under the
//! old key any more; an interrupted rotation (kill -9 of both processes in
//! the middle) finishes when run again; only administrators may rotate; the
//! audit log spanning a rotation still verifies under the one public key.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MacAlgorithmSpec, SigningAlgorithmSpec};
use hsm_kms_tests::{EnvOptions, TestEnv, memscan, ops};
use serde_json::{Value, json};

async fn create(c: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let out = c
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap();
    out.key_metadata().unwrap().key_id().to_owned()
}

async fn sign(c: &Client, key: &str, msg: &'static [u8]) -> Vec<u8> {
    let out = c
        .sign()
        .key_id(key)
        .message(Blob::new(msg))
        .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
        .send()
        .await
        .unwrap();
    out.signature().unwrap().as_ref().to_vec()
}

async fn signature_valid(c: &Client, key: &str, msg: &'static [u8], sig: &[u8]) -> bool {
    c.verify()
        .key_id(key)
        .message(Blob::new(msg))
        .signature(Blob::new(sig))
        .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
        .send()
        .await
        .unwrap()
        .signature_valid()
}

async fn mac(c: &Client, key: &str, msg: &'static [u8]) -> Vec<u8> {
    let out = c
        .generate_mac()
        .key_id(key)
        .message(Blob::new(msg))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    out.mac().unwrap().as_ref().to_vec()
}

async fn mac_valid(c: &Client, key: &str, msg: &'static [u8], tag: &[u8]) -> bool {
    c.verify_mac()
        .key_id(key)
        .message(Blob::new(msg))
        .mac(Blob::new(tag))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap()
        .mac_valid()
}

/// Every stored token (key versions and system keys).
fn all_tokens(env: &TestEnv) -> Vec<(String, Vec<u8>)> {
    let db = env.db_path();
    let mut out: Vec<(String, Vec<u8>)> = memscan::read_tokens(&db)
        .into_iter()
        .map(|(id, v, t)| (format!("{id} v{v}"), t))
        .collect();
    out.extend(
        memscan::read_system_tokens(&db)
            .into_iter()
            .map(|(name, _, t)| (name, t)),
    );
    out
}

async fn status(env: &TestEnv) -> Value {
    let r = env
        .admin_call("admin", "GetMasterKeyStatus", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn audit_public_key(env: &TestEnv) -> String {
    let path = env.frontend_state_dir().join("audit/audit-signing-key.pub");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewraps_every_token_and_everything_made_before_still_works() {
    let mut env = TestEnv::start_with(EnvOptions {
        frontend_extra_toml: Some("[audit]\ndigest_every = 3\n".into()),
        ..EnvOptions::default()
    });
    let c = env.client("alice");
    let sym = ops::create_key(&c).await;
    let blob_v1 = ops::encrypt(&c, &sym, b"under version 1", &[("a", "b")]).await;
    c.rotate_key_on_demand().key_id(&sym).send().await.unwrap();
    let blob_v2 = ops::encrypt(&c, &sym, b"under version 2", &[]).await;
    let rsa = create(&c, KeySpec::Rsa2048, KeyUsageType::SignVerify).await;
    let sig = sign(&c, &rsa, b"signed before").await;
    let hmac = create(&c, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let tag = mac(&c, &hmac, b"maced before").await;
    // A runtime principal: its secret is stored under the system key.
    let dave = env.create_principal("dave", false).await;
    let old_master = env.read_master_key();
    let audit_key_before = audit_public_key(&env);
    let tokens_before = all_tokens(&env);
    assert_eq!(tokens_before.len(), 5, "4 key versions + principal-secrets");

    let out = env.kmsctl(
        "admin",
        ["--json", "rotate-master-key", "--batch-size", "2"],
    );
    let summary = out.json();
    assert_eq!(summary["Completed"], true, "{summary}");
    assert_eq!(summary["Generation"], 2);
    assert_eq!(summary["RewrappedKeyVersions"], 4);
    assert_eq!(summary["RewrappedSystemKeys"], 1);
    assert!(summary["Steps"].as_u64().unwrap() >= 1);

    // Everything made under the old master key still works, and new work too.
    assert_eq!(
        ops::decrypt(&c, &blob_v1, &[("a", "b")]).await,
        b"under version 1"
    );
    assert_eq!(ops::decrypt(&c, &blob_v2, &[]).await, b"under version 2");
    assert!(signature_valid(&c, &rsa, b"signed before", &sig).await);
    assert!(mac_valid(&c, &hmac, b"maced before", &tag).await);
    let fresh = ops::encrypt(&c, &sym, b"after", &[]).await;
    assert_eq!(ops::decrypt(&c, &fresh, &[]).await, b"after");
    let new_sig = sign(&c, &rsa, b"signed after").await;
    assert!(signature_valid(&c, &rsa, b"signed after", &new_sig).await);

    // The key file holds one key, of generation 2, and not the old one.
    let file = env.read_master_keys();
    assert_eq!(
        file.keys.len(),
        1,
        "previous key dropped: {:?}",
        file.keys.iter().map(|k| k.0).collect::<Vec<_>>()
    );
    let (generation, new_master) = file.keys[0];
    assert_eq!(generation, 2);
    assert_ne!(new_master, old_master);
    let raw = std::fs::read(env.master_key_path()).unwrap();
    assert!(!raw.windows(32).any(|w| w == old_master || w == new_master));

    // Every stored token is of generation 2, opens under the new key as the
    // same key id, and no longer opens under the old key.
    let tokens_after = all_tokens(&env);
    assert_eq!(tokens_after.len(), tokens_before.len());
    for ((name, before), (_, after)) in tokens_before.iter().zip(&tokens_after) {
        assert_eq!(memscan::split_token(after).0, 2, "{name}");
        assert!(
            memscan::try_unwrap_token(&old_master, after).is_none(),
            "{name} still opens under the old master key"
        );
        let old = memscan::unwrap_token(&old_master, before);
        let new = memscan::unwrap_token(&new_master, after);
        assert_eq!(
            (old.key_id, old.version, old.material),
            (new.key_id, new.version, new.material),
            "{name}: same key inside"
        );
    }

    // Both processes restarted: the daemon loads the new key file, the
    // frontend decrypts dave's secret through the rewrapped system key.
    env.restart_daemon().await;
    env.restart_frontend().await;
    let c = env.client("alice");
    assert_eq!(ops::decrypt(&c, &blob_v2, &[]).await, b"under version 2");
    let d = env.client_for(&dave);
    d.list_keys()
        .send()
        .await
        .expect("dave authenticates after the rotation");
    let s = status(&env).await;
    assert_eq!(
        (s["Generation"].clone(), s["RotationInProgress"].clone()),
        (json!(2), json!(false))
    );

    // The audit log spanning the rotation verifies under the key recorded
    // before it (digests signed on both sides; a graceful restart seals it).
    env.restart_frontend().await;
    assert_eq!(audit_public_key(&env), audit_key_before);
    let dir = env.frontend_state_dir().join("audit");
    let dir = dir.to_str().unwrap();
    let out = env.kmsctl(
        "alice",
        ["audit", "verify", "--public-key", &audit_key_before, dir],
    );
    assert!(out.success, "audit verify: {}{}", out.stdout, out.stderr);
    // Every rotation step is an audited admin call, by the administrator.
    let admin_arn = env.principal("admin").arn.clone();
    let steps: Vec<Value> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .flat_map(|p| {
            // The live file ends in zero-filled space (verified above).
            std::fs::read_to_string(p)
                .unwrap()
                .trim_end_matches('\0')
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .filter(|r| {
            r["eventName"]
                .as_str()
                .is_some_and(|n| n.ends_with("RotateMasterKey"))
                && r["eventType"] == "AwsApiCall"
        })
        .collect();
    assert_eq!(
        steps.len() as u64,
        summary["Steps"].as_u64().unwrap(),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .all(|r| r["userIdentity"]["arn"] == admin_arn.as_str())
    );
    let daemon_log = std::fs::read_to_string(env.daemon_log()).unwrap();
    assert!(
        daemon_log.contains("master-key rotation complete"),
        "{daemon_log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_rotation_finishes_when_run_again_after_kill9_of_both_processes() {
    let mut env = TestEnv::start();
    let c = env.client("alice");
    let mut blobs = Vec::new();
    for i in 0..6u8 {
        let key = ops::create_key(&c).await;
        blobs.push((key.clone(), ops::encrypt(&c, &key, &[i; 16], &[]).await, i));
    }
    let old_master = env.read_master_key();

    // One step of one batch of two: begun, partly rewrapped, not complete.
    let r = env
        .admin_call(
            "admin",
            "RotateMasterKey",
            json!({"BatchSize": 2, "MaxBatches": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let step = r.json();
    assert_eq!(step["Completed"], false);
    assert_eq!(step["RewrappedKeyVersions"], 2);
    assert_eq!(step["RemainingTokens"], 4);
    let generations: Vec<u32> = all_tokens(&env)
        .iter()
        .map(|(_, t)| memscan::split_token(t).0)
        .collect();
    assert_eq!(generations.iter().filter(|g| **g == 2).count(), 2);
    assert_eq!(generations.iter().filter(|g| **g == 1).count(), 4);
    // Mixed state: serving goes on with both generations.
    for (_, blob, i) in &blobs {
        assert_eq!(ops::decrypt(&c, blob, &[]).await, vec![*i; 16]);
    }

    env.kill9_frontend();
    env.kill9_daemon();
    let file = env.read_master_keys();
    let numbers: Vec<u32> = file.keys.iter().map(|k| k.0).collect();
    assert_eq!(numbers, vec![2, 1], "both keys on disk while in progress");
    assert_eq!(file.keys[1].1, old_master);
    env.start_daemon().await;
    env.start_frontend().await;
    let c = env.client("alice");
    for (_, blob, i) in &blobs {
        assert_eq!(ops::decrypt(&c, blob, &[]).await, vec![*i; 16]);
    }
    let s = status(&env).await;
    assert_eq!(s["RotationInProgress"], true);
    assert_eq!(s["StaleTokens"], 4);

    let out = env.kmsctl("admin", ["--json", "rotate-master-key"]);
    let summary = out.json();
    assert_eq!(summary["Completed"], true);
    assert_eq!(summary["Generation"], 2, "the same rotation, resumed");
    assert_eq!(summary["RewrappedKeyVersions"], 4);
    for (_, blob, i) in &blobs {
        assert_eq!(ops::decrypt(&c, blob, &[]).await, vec![*i; 16]);
    }
    let file = env.read_master_keys();
    assert_eq!(file.keys.len(), 1);
    assert_ne!(file.keys[0].1, old_master);
    let s = status(&env).await;
    assert_eq!(
        (s["StaleTokens"].clone(), s["RotationInProgress"].clone()),
        (json!(0), json!(false))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_may_rotate_or_inspect_the_master_key() {
    let env = TestEnv::start();
    let c = env.client("alice");
    ops::create_key(&c).await;
    for op in ["RotateMasterKey", "GetMasterKeyStatus"] {
        let r = env.admin_call("alice", op, json!({})).await;
        assert_eq!(r.status, 400, "{op}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["__type"], "AccessDeniedException", "{op}");
    }
    let out = env.kmsctl("alice", ["rotate-master-key"]);
    assert!(!out.success);
    assert!(out.stderr.contains("AccessDenied"), "{}", out.stderr);
    // Nothing began: one key, generation 1, every token untouched.
    assert_eq!(env.read_master_keys().keys.len(), 1);
    let s = status(&env).await;
    assert_eq!(
        (s["Generation"].clone(), s["StaleTokens"].clone()),
        (json!(1), json!(0))
    );
}
