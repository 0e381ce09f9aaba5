//! The audit trail and observability, black-box: every API call leaves
//! exactly one CloudTrail-shaped record with no secret in it, preceded by
//! one record per authorization decision made for it (same requestID, the
//! deciding statement or grant named); `kmsctl audit verify` catches every
//! kind of tampering and names the record; records of acknowledged calls
//! survive kill -9 (the zero-filled space after them is cut on restart); a
//! call that times out is audited with the error the
//! client got; request ids reach the daemon's logs; `/metrics` parses and
//! its counters match the calls made, REST calls included.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine as _;
use hsm_kms_tests::{EnvOptions, RawRequest, TestEnv, ops};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn audit_dir(env: &TestEnv) -> PathBuf {
    env.frontend_state_dir().join("audit")
}

fn env_with(audit: &str) -> TestEnv {
    TestEnv::start_with(EnvOptions {
        frontend_extra_toml: Some(format!("[audit]\n{audit}")),
        ..EnvOptions::default()
    })
}

/// The text of log file `f`. The newest file, which the server may be
/// writing, can end in zero-filled space that is not a record (the rule of
/// `kms-frontend`'s `audit::chain::content`).
fn log_text(f: &Path, newest: bool) -> String {
    let text = std::fs::read_to_string(f).unwrap();
    if newest {
        text.trim_end_matches('\0').to_owned()
    } else {
        text
    }
}

/// Every record of the log, in order.
fn records(env: &TestEnv) -> Vec<Value> {
    let files = log_files(&audit_dir(env));
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        out.extend(
            log_text(f, i + 1 == files.len())
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    out
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn all_log_bytes(env: &TestEnv) -> Vec<u8> {
    log_files(&audit_dir(env))
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect()
}

/// `eventType` of API-call records and of authorization decision records.
const CALL: &str = "AwsApiCall";
const DECISION: &str = "AwsApiCallAuthorization";

/// The one API-call record of `request_id`.
fn the_record<'a>(records: &'a [Value], request_id: &str) -> &'a Value {
    let found: Vec<&Value> = records
        .iter()
        .filter(|r| r["requestID"] == request_id && r["eventType"] == CALL)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "records for request {request_id}: {found:?}"
    );
    found[0]
}

/// The decision records of `request_id`, checking that they and the call's
/// record are consecutive lines with the call's record last.
fn decisions_of<'a>(records: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    let mine: Vec<(usize, &Value)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r["requestID"] == request_id)
        .collect();
    let (last, call) = *mine.last().expect("records of the request");
    assert_eq!(
        call["eventType"], CALL,
        "the call's record comes last: {mine:?}"
    );
    let first = last + 1 - mine.len();
    assert!(
        mine.iter().enumerate().all(|(k, (i, _))| *i == first + k),
        "a call's records are consecutive lines: {mine:?}"
    );
    let decisions: Vec<&Value> = mine[..mine.len() - 1].iter().map(|(_, r)| *r).collect();
    for d in &decisions {
        assert_eq!(d["eventType"], DECISION, "{d}");
        assert_eq!(d["eventName"], call["eventName"], "{d}");
        assert_eq!(d["userIdentity"], call["userIdentity"], "{d}");
        assert_eq!(d["eventSource"], "kms.amazonaws.com");
        assert!(d.get("requestParameters").is_none(), "{d}");
        assert_ne!(d["eventID"], call["eventID"]);
    }
    decisions
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn every_operation_leaves_one_record_with_cloudtrail_fields_and_no_secret() {
    let env = env_with("digest_every = 5\n");
    let c = env.client("alice");
    let alice = env.principal("alice").clone();
    let mut calls: Vec<(String, &str, Option<String>)> = Vec::new();
    let mut secrets: Vec<Vec<u8>> = Vec::new();

    let out = c.create_key().description("audited").send().await.unwrap();
    let key = out.key_metadata().unwrap().key_id().to_owned();
    calls.push((
        out.request_id().unwrap().into(),
        "CreateKey",
        Some(key.clone()),
    ));
    let out = c.create_key().send().await.unwrap();
    let key2 = out.key_metadata().unwrap().key_id().to_owned();
    calls.push((
        out.request_id().unwrap().into(),
        "CreateKey",
        Some(key2.clone()),
    ));
    let out = c.describe_key().key_id(&key).send().await.unwrap();
    calls.push((
        out.request_id().unwrap().into(),
        "DescribeKey",
        Some(key.clone()),
    ));
    let out = c.list_keys().send().await.unwrap();
    calls.push((out.request_id().unwrap().into(), "ListKeys", None));

    let plaintext = b"audit-test plaintext 7d1f0c".to_vec();
    secrets.push(plaintext.clone());
    let out = c
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(plaintext.clone()))
        .encryption_context("purpose", "audit-test")
        .send()
        .await
        .unwrap();
    let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
    secrets.push(blob.clone());
    calls.push((
        out.request_id().unwrap().into(),
        "Encrypt",
        Some(key.clone()),
    ));
    let out = c
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .encryption_context("purpose", "audit-test")
        .send()
        .await
        .unwrap();
    calls.push((
        out.request_id().unwrap().into(),
        "Decrypt",
        Some(key.clone()),
    ));
    let out = c
        .generate_data_key()
        .key_id(&key)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    secrets.push(out.plaintext().unwrap().as_ref().to_vec());
    secrets.push(out.ciphertext_blob().unwrap().as_ref().to_vec());
    calls.push((
        out.request_id().unwrap().into(),
        "GenerateDataKey",
        Some(key.clone()),
    ));
    let out = c
        .generate_data_key_without_plaintext()
        .key_id(&key)
        .number_of_bytes(24)
        .send()
        .await
        .unwrap();
    secrets.push(out.ciphertext_blob().unwrap().as_ref().to_vec());
    calls.push((
        out.request_id().unwrap().into(),
        "GenerateDataKeyWithoutPlaintext",
        Some(key.clone()),
    ));
    let out = c
        .re_encrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .source_encryption_context("purpose", "audit-test")
        .destination_key_id(&key2)
        .send()
        .await
        .unwrap();
    secrets.push(out.ciphertext_blob().unwrap().as_ref().to_vec());
    calls.push((
        out.request_id().unwrap().into(),
        "ReEncrypt",
        Some(key2.clone()),
    ));
    let out = c
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    secrets.push(out.plaintext().unwrap().as_ref().to_vec());
    calls.push((out.request_id().unwrap().into(), "GenerateRandom", None));
    let out = c.disable_key().key_id(&key2).send().await.unwrap();
    calls.push((
        out.request_id().unwrap().into(),
        "DisableKey",
        Some(key2.clone()),
    ));
    let out = c.enable_key().key_id(&key2).send().await.unwrap();
    calls.push((
        out.request_id().unwrap().into(),
        "EnableKey",
        Some(key2.clone()),
    ));
    let out = c
        .create_alias()
        .alias_name("alias/audited")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    calls.push((
        out.request_id().unwrap().into(),
        "CreateAlias",
        Some(key.clone()),
    ));
    let out = c
        .update_alias()
        .alias_name("alias/audited")
        .target_key_id(&key2)
        .send()
        .await
        .unwrap();
    calls.push((
        out.request_id().unwrap().into(),
        "UpdateAlias",
        Some(key2.clone()),
    ));
    let out = c.list_aliases().send().await.unwrap();
    calls.push((out.request_id().unwrap().into(), "ListAliases", None));
    let out = c
        .delete_alias()
        .alias_name("alias/audited")
        .send()
        .await
        .unwrap();
    calls.push((out.request_id().unwrap().into(), "DeleteAlias", None));
    let out = c
        .schedule_key_deletion()
        .key_id(&key2)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    calls.push((
        out.request_id().unwrap().into(),
        "ScheduleKeyDeletion",
        Some(key2.clone()),
    ));
    let out = c.cancel_key_deletion().key_id(&key2).send().await.unwrap();
    calls.push((
        out.request_id().unwrap().into(),
        "CancelKeyDeletion",
        Some(key2.clone()),
    ));

    // A refused call is audited too, with its error.
    let missing = "11111111-2222-3333-4444-555555555555";
    let refused = env
        .raw(
            RawRequest::kms("DescribeKey", format!(r#"{{"KeyId":"{missing}"}}"#))
                .signed_as("alice"),
        )
        .await;
    assert_eq!(refused.status, 400);
    let refused_id = refused.headers["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_owned();

    let records = records(&env);
    for (request_id, op, key_id) in &calls {
        let r = the_record(&records, request_id);
        assert_eq!(r["eventName"], *op, "{r}");
        assert_eq!(r["eventSource"], "kms.amazonaws.com");
        assert_eq!(r["eventVersion"], "1.08");
        assert_eq!(r["eventType"], "AwsApiCall");
        assert_eq!(r["awsRegion"], hsm_kms_tests::REGION);
        assert_eq!(r["userIdentity"]["arn"], alice.arn.as_str());
        assert_eq!(
            r["userIdentity"]["accessKeyId"],
            alice.access_key_id.as_str()
        );
        assert_eq!(r["userIdentity"]["accountId"], hsm_kms_tests::ACCOUNT_ID);
        assert_eq!(r["userIdentity"]["type"], "IAMUser");
        assert_eq!(r["sourceIPAddress"], "127.0.0.1");
        assert!(
            r["userAgent"].as_str().is_some_and(|ua| !ua.is_empty()),
            "{r}"
        );
        assert!(
            r["eventID"].as_str().is_some_and(|id| id.len() == 36),
            "{r}"
        );
        assert!(
            r["eventTime"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{r}"
        );
        assert!(r["readOnly"].is_boolean());
        assert!(r.get("errorCode").is_none(), "{r}");
        if let Some(k) = key_id {
            let arns: Vec<&str> = r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["ARN"].as_str().unwrap())
                .collect();
            assert!(
                arns.contains(&hsm_kms_tests::key_arn(k).as_str()),
                "{op}: resources {arns:?} lack {k}"
            );
            assert_eq!(r["resources"][0]["type"], "AWS::KMS::Key");
        }
    }
    let enc = the_record(&records, &calls[4].0);
    assert_eq!(
        enc["requestParameters"]["encryptionContext"]["purpose"],
        "audit-test"
    );
    assert_eq!(enc["requestParameters"]["keyId"], key.as_str());
    assert_eq!(enc["readOnly"], true);
    let created = the_record(&records, &calls[0].0);
    assert_eq!(created["readOnly"], false);
    assert_eq!(
        created["responseElements"]["keyMetadata"]["keyId"],
        key.as_str()
    );
    let r = the_record(&records, &refused_id);
    assert_eq!(r["eventName"], "DescribeKey");
    assert_eq!(r["errorCode"], "NotFoundException");
    assert!(r["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));

    // One API-call record per call, no more (the decision records made
    // for the calls are counted apart).
    let api_records = records.iter().filter(|r| r["eventType"] == CALL).count();
    assert_eq!(api_records, calls.len() + 1, "one record per call, no more");
    let kinds = [CALL, DECISION, "HsmKmsDigest"];
    assert!(
        records
            .iter()
            .all(|r| kinds.contains(&r["eventType"].as_str().unwrap_or(""))),
        "only call, decision and digest records"
    );

    let bytes = all_log_bytes(&env);
    let b64 = base64::engine::general_purpose::STANDARD;
    for s in &secrets {
        assert!(
            !contains(&bytes, s),
            "a secret's raw bytes are in the audit log"
        );
        assert!(
            !contains(&bytes, b64.encode(s).as_bytes()),
            "a secret's base64 is in the audit log"
        );
    }
    assert!(!contains(&bytes, alice.secret_access_key.as_bytes()));
}

fn verify(env: &TestEnv, extra: &[&str], paths: &[&Path]) -> hsm_kms_tests::KmsctlOutput {
    let mut cmd = env.kmsctl_command("alice");
    cmd.args(["audit", "verify"]).args(extra).args(paths);
    cmd.output().unwrap().into()
}

/// A sealed log of `n` calls (graceful restart writes the final digest).
async fn sealed_log(env: &mut TestEnv, n: usize) {
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    for i in 0..n {
        ops::encrypt(&c, &key, format!("m{i}").as_bytes(), &[]).await;
    }
    env.restart_frontend().await;
}

/// Copies the log to a fresh directory, applies `tamper` to its lines, and
/// runs verify on the copy.
fn tampered(
    env: &TestEnv,
    tamper: impl FnOnce(&mut Vec<String>),
) -> (hsm_kms_tests::KmsctlOutput, PathBuf, tempfile::TempDir) {
    let copy = tempfile::tempdir().unwrap();
    let src = audit_dir(env);
    let files = log_files(&src);
    assert_eq!(files.len(), 1, "one log file expected");
    let mut lines: Vec<String> = log_text(&files[0], true)
        .lines()
        .map(str::to_owned)
        .collect();
    tamper(&mut lines);
    let path = copy.path().join(files[0].file_name().unwrap());
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    let key = std::fs::read_to_string(src.join("audit-signing-key.pub")).unwrap();
    let out = verify(env, &["--public-key", key.trim()], &[&path]);
    (out, path, copy)
}

#[tokio::test]
async fn verify_names_the_first_edited_deleted_reordered_inserted_or_truncated_record() {
    let mut env = env_with("digest_every = 4\n");
    sealed_log(&mut env, 10).await;
    let dir = audit_dir(&env);
    let key = std::fs::read_to_string(dir.join("audit-signing-key.pub")).unwrap();
    // A spare next file (the writer's filler makes one, zero-filled, past
    // half a file) is not a log file: neither verify nor the filter reads
    // it. This one holds a record, so reading it would show.
    let files = log_files(&dir);
    let first = log_text(&files[0], true).lines().next().unwrap().to_owned();
    assert_eq!(files.len(), 1, "one log file expected");
    let spare = dir.join("audit-00000002.jsonl.spare");
    std::fs::write(
        &spare,
        format!("{}\n", first.replace("CreateKey", "SpareMarker")),
    )
    .unwrap();
    let good = verify(&env, &["--public-key", key.trim()], &[&dir]);
    assert!(good.success, "untouched log must verify: {}", good.stderr);
    assert!(good.stdout.starts_with("OK:"), "{}", good.stdout);
    let shown = env.kmsctl("alice", ["audit", "--json", dir.to_str().unwrap()]);
    assert!(shown.success, "{}", shown.stderr);
    assert!(shown.stdout.contains("CreateKey"), "{}", shown.stdout);
    assert!(!shown.stdout.contains("SpareMarker"), "{}", shown.stdout);
    std::fs::remove_file(&spare).unwrap();

    // Line 4 is an Encrypt's decision record (1 CreateKey, then per Encrypt
    // its decision and its call record; a digest once 4 are uncovered).
    let names = |out: &hsm_kms_tests::KmsctlOutput, path: &Path, line: usize| {
        assert!(!out.success, "tampering not detected");
        let at = format!("{}:{line} ", path.display());
        assert!(
            out.stderr.contains(&at),
            "expected the record at {at} named: {}",
            out.stderr
        );
    };
    let (out, path, _d) = tampered(&env, |l| l[3] = l[3].replace("Encrypt", "Decrypt"));
    names(&out, &path, 4);
    assert!(out.stderr.contains("changed"), "{}", out.stderr);
    let (out, path, _d) = tampered(&env, |l| {
        l.remove(3);
    });
    names(&out, &path, 4);
    assert!(out.stderr.contains("deleted"), "{}", out.stderr);
    let (out, path, _d) = tampered(&env, |l| l.swap(2, 3));
    names(&out, &path, 3);
    let (out, path, _d) = tampered(&env, |l| {
        let copy = l[1].clone();
        l.insert(6, copy);
    });
    names(&out, &path, 7);
    // Cut at a line boundary: the last records and the closing digest go.
    let (out, path, _d) = tampered(&env, |l| {
        let n = l.len();
        l.truncate(n - 2);
    });
    assert!(!out.success, "truncation not detected");
    assert!(
        out.stderr.contains(&path.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("not covered by a signed digest"),
        "{}",
        out.stderr
    );
    // Cut inside the last line.
    let (out, path, _d) = tampered(&env, |l| {
        let last = l.pop().unwrap();
        l.push(last[..last.len() / 2].to_owned());
    });
    assert!(!out.success, "torn record not detected");
    assert!(
        out.stderr.contains(&path.display().to_string()),
        "{}",
        out.stderr
    );
    // A forged signature, and a key that is not the daemon's.
    let (out, _path, _d) = tampered(&env, |l| {
        let last = l.len() - 1;
        let v: Value = serde_json::from_str(&l[last]).unwrap();
        let sig = v["signature"].as_str().unwrap().to_owned();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        l[last] = l[last].replace(&sig, &format!("{flipped}{}", &sig[1..]));
    });
    assert!(
        !out.success && out.stderr.contains("signature"),
        "{}",
        out.stderr
    );
    let other = verify(&env, &["--public-key", &"ab".repeat(32)], &[&dir]);
    assert!(!other.success, "verify must fail under another public key");
}

#[tokio::test]
async fn acknowledged_calls_are_in_the_log_after_kill9() {
    let mut env = env_with("durability = \"group\"\n");
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let c = c.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let out = c
                .encrypt()
                .key_id(&key)
                .plaintext(Blob::new(format!("kill9 {i}").into_bytes()))
                .send()
                .await
                .unwrap();
            out.request_id().unwrap().to_owned()
        }));
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.push(t.await.unwrap());
    }
    env.kill9_frontend();
    let records = records(&env);
    for id in &acknowledged {
        the_record(&records, id);
    }
    // The writer fills ahead of its records with zeros; the crash left them.
    let dir = audit_dir(&env);
    let newest = log_files(&dir).pop().unwrap();
    assert!(
        std::fs::read(&newest).unwrap().ends_with(&[0]),
        "no zero-filled space after the records"
    );
    // The chain goes on across the crash and verifies once sealed (the
    // crash's zeros were cut: left, they would sit before later records).
    env.start_frontend().await;
    ops::create_key(&env.client("alice")).await;
    env.restart_frontend().await;
    let key = std::fs::read_to_string(dir.join("audit-signing-key.pub")).unwrap();
    let out = verify(&env, &["--public-key", key.trim()], &[&dir]);
    assert!(out.success, "log after kill -9 and restart: {}", out.stderr);
}

#[tokio::test]
async fn request_id_is_in_the_reply_the_record_and_the_daemon_log() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    let mut blob = ops::encrypt(&c, &key, b"x", &[]).await;
    let last = blob.len() - 1;
    blob[last] ^= 1;
    let body = serde_json::json!({
        "CiphertextBlob": base64::engine::general_purpose::STANDARD.encode(&blob)
    });
    let r = env
        .raw(RawRequest::kms("Decrypt", body.to_string()).signed_as("alice"))
        .await;
    assert_eq!(
        r.error_type().as_deref(),
        Some("InvalidCiphertextException")
    );
    let id = r.headers["x-amzn-requestid"].to_str().unwrap().to_owned();
    let rec = the_record(&records(&env), &id).clone();
    assert_eq!(rec["errorCode"], "InvalidCiphertextException");
    // The daemon refused the tampered blob and logged it under the same id.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(env.daemon_log()).unwrap();
        if log.contains(&id) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "daemon log lacks {id}:\n{log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The request id of a raw reply.
fn request_id(r: &hsm_kms_tests::RawResponse) -> String {
    r.headers["x-amzn-requestid"].to_str().unwrap().to_owned()
}

fn encrypt_body(key: &str) -> String {
    serde_json::json!({
        "KeyId": key,
        "Plaintext": base64::engine::general_purpose::STANDARD.encode(b"decided"),
    })
    .to_string()
}

#[tokio::test]
async fn allowed_encrypt_leaves_one_allow_decision_then_its_call_record() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let alice = env.principal("alice").clone();
    let key = ops::create_key(&c).await;
    let out = c
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"allowed".to_vec()))
        .encryption_context("tenant", "ctx-value-91f2")
        .send()
        .await
        .unwrap();
    let id = out.request_id().unwrap().to_owned();
    let records = records(&env);
    let call = the_record(&records, &id);
    assert_eq!(call["eventName"], "Encrypt");
    assert!(call.get("errorCode").is_none(), "{call}");
    let decisions = decisions_of(&records, &id);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let d = decisions[0];
    assert_eq!(d["userIdentity"]["arn"], alice.arn.as_str());
    assert_eq!(
        d["userIdentity"]["accessKeyId"],
        alice.access_key_id.as_str()
    );
    let a = &d["authorization"];
    assert_eq!(a["action"], "kms:Encrypt");
    assert_eq!(a["resource"], hsm_kms_tests::key_arn(&key).as_str());
    assert_eq!(a["decision"], "Allow");
    assert_eq!(a["reason"], "PolicyAllow");
    assert_eq!(a["statementSid"], "Enable IAM User Permissions");
    assert_eq!(d["resources"][0]["ARN"], a["resource"]);
    // The context is the call record's to carry, not the decision's.
    assert!(!d.to_string().contains("ctx-value-91f2"), "{d}");
}

#[tokio::test]
async fn denied_calls_leave_a_deny_decision_naming_why_and_an_access_denied_record() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let bob = env.principal("bob").clone();
    let open_key = ops::create_key(&c).await;
    let fenced_key = ops::create_key(&c).await;
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{}:root", hsm_kms_tests::ACCOUNT_ID)},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "DenyBobEncrypt", "Effect": "Deny",
             "Principal": {"AWS": bob.arn.as_str()},
             "Action": "kms:Encrypt", "Resource": "*"},
        ],
    });
    c.put_key_policy()
        .key_id(&fenced_key)
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();

    let mut denied = Vec::new();
    for (key, reason) in [(&open_key, "NoAllow"), (&fenced_key, "ExplicitDeny")] {
        let r = env
            .raw(RawRequest::kms("Encrypt", encrypt_body(key)).signed_as("bob"))
            .await;
        assert_eq!(r.error_type().as_deref(), Some("AccessDeniedException"));
        let id = request_id(&r);
        let records = records(&env);
        let call = the_record(&records, &id);
        assert_eq!(call["errorCode"], "AccessDeniedException");
        assert_eq!(call["userIdentity"]["arn"], bob.arn.as_str());
        let decisions = decisions_of(&records, &id);
        assert_eq!(decisions.len(), 1, "{decisions:?}");
        let a = &decisions[0]["authorization"];
        assert_eq!(a["decision"], "Deny");
        assert_eq!(a["reason"], reason, "{a}");
        assert_eq!(a["action"], "kms:Encrypt");
        assert_eq!(a["resource"], hsm_kms_tests::key_arn(key).as_str());
        denied.push(id);
    }
    let all = records(&env);
    let explicit = &decisions_of(&all, &denied[1])[0]["authorization"];
    assert_eq!(explicit["statementSid"], "DenyBobEncrypt");
    assert_eq!(explicit["statementIndex"], 2);

    // An administrator-only operation: the admin check is a decision too.
    let r = env
        .admin_call("bob", "ListPrincipals", serde_json::json!({}))
        .await;
    assert_eq!(r.error_type().as_deref(), Some("AccessDeniedException"));
    let id = request_id(&r);
    let records = records(&env);
    assert_eq!(
        the_record(&records, &id)["errorCode"],
        "AccessDeniedException"
    );
    let decisions = decisions_of(&records, &id);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let a = &decisions[0]["authorization"];
    assert_eq!(a["action"], "hsm-kms-admin:ListPrincipals");
    assert_eq!(a["decision"], "Deny");
    assert_eq!(a["reason"], "NotAdministrator");
    denied.push(id);

    // `kmsctl audit --decision deny` shows exactly these, and the table
    // names the reason.
    let dir = audit_dir(&env);
    let out = env.kmsctl(
        "alice",
        ["audit", "--json", "--decision", "deny"]
            .iter()
            .copied()
            .chain([dir.to_str().unwrap()]),
    );
    assert!(out.success, "{}", out.stderr);
    let shown: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = shown
        .iter()
        .map(|r| r["requestID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, denied.iter().map(String::as_str).collect::<Vec<_>>());
    let table = env.kmsctl(
        "alice",
        ["audit", "--decision", "deny", dir.to_str().unwrap()],
    );
    assert!(
        table
            .stdout
            .contains("Deny: ExplicitDeny (Sid DenyBobEncrypt)"),
        "{}",
        table.stdout
    );
    let calls = env.kmsctl(
        "alice",
        ["audit", "--json", "--calls", dir.to_str().unwrap()],
    );
    assert!(
        calls
            .stdout
            .lines()
            .all(|l| l.contains("\"eventType\":\"AwsApiCall\"")),
        "{}",
        calls.stdout
    );
}

#[tokio::test]
async fn grant_based_allow_names_the_grant() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let bob = env.principal("bob").clone();
    let key = ops::create_key(&c).await;
    let grant = c
        .create_grant()
        .key_id(&key)
        .grantee_principal(bob.arn.as_str())
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    let grant_id = grant.grant_id().unwrap().to_owned();
    let out = env
        .client("bob")
        .encrypt()
        .key_id(hsm_kms_tests::key_arn(&key))
        .plaintext(Blob::new(b"granted".to_vec()))
        .send()
        .await
        .unwrap();
    let id = out.request_id().unwrap().to_owned();
    let records = records(&env);
    let decisions = decisions_of(&records, &id);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let a = &decisions[0]["authorization"];
    assert_eq!(a["decision"], "Allow");
    assert_eq!(a["reason"], "GrantAllow");
    assert_eq!(a["grantId"], grant_id.as_str());
    assert_eq!(decisions[0]["userIdentity"]["arn"], bob.arn.as_str());
}

#[tokio::test]
async fn re_encrypt_leaves_one_decision_per_key_it_needs() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let source = ops::create_key(&c).await;
    let destination = ops::create_key(&c).await;
    let blob = ops::encrypt(&c, &source, b"moving", &[]).await;
    let out = c
        .re_encrypt()
        .ciphertext_blob(Blob::new(blob))
        .destination_key_id(&destination)
        .send()
        .await
        .unwrap();
    let id = out.request_id().unwrap().to_owned();
    let records = records(&env);
    let decided: Vec<(String, String, String)> = decisions_of(&records, &id)
        .iter()
        .map(|d| {
            let a = &d["authorization"];
            (
                a["action"].as_str().unwrap().to_owned(),
                a["resource"].as_str().unwrap().to_owned(),
                a["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        decided,
        vec![
            (
                "kms:ReEncryptFrom".to_owned(),
                hsm_kms_tests::key_arn(&source),
                "Allow".to_owned()
            ),
            (
                "kms:ReEncryptTo".to_owned(),
                hsm_kms_tests::key_arn(&destination),
                "Allow".to_owned()
            ),
        ]
    );
    assert_eq!(the_record(&records, &id)["eventName"], "ReEncrypt");
}

#[tokio::test]
async fn a_call_that_times_out_is_audited_once_with_the_error_the_client_got() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    // The daemon's replies are held back (SIGSTOP) past the frontend's
    // 1-second request timeout, well short of the HSM client's own 5 s.
    let env = TestEnv::start_with(EnvOptions {
        request_timeout_secs: Some(1),
        ..EnvOptions::default()
    });
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    let daemon = Pid::from_raw(i32::try_from(env.daemon_pid()).unwrap());
    kill(daemon, Signal::SIGSTOP).unwrap();
    let r = env
        .raw(RawRequest::kms("Encrypt", encrypt_body(&key)).signed_as("alice"))
        .await;
    kill(daemon, Signal::SIGCONT).unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(r.error_type().as_deref(), Some("KMSInternalException"));
    let id = request_id(&r);
    let records = records(&env);
    let call = the_record(&records, &id);
    assert_eq!(call["eventName"], "Encrypt");
    assert_eq!(call["errorCode"], "KMSInternalException", "{call}");
    assert_eq!(call["errorMessage"], r.json()["message"], "{call}");
    assert_eq!(call["responseElements"], Value::Null);
    // The authorization made before the HSM stalled is on record too.
    let decisions = decisions_of(&records, &id);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["authorization"]["decision"], "Allow");
    // The daemon is back: the next call goes through.
    ops::encrypt(&c, &key, b"after", &[]).await;
}

/// A wallet REST `POST path` with a JSON body, signed as alice.
fn rest_request(path: &str, body: Value) -> RawRequest {
    RawRequest {
        method: "POST".into(),
        path: path.into(),
        target: None,
        content_type: Some("application/json".into()),
        body: body.to_string().into_bytes(),
        sign_as: Some("alice".into()),
        http1: false,
        body_override: None,
        extra_headers: Vec::new(),
    }
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .and_then(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            _ => None,
        })
}

#[tokio::test]
async fn metrics_parse_and_count_the_calls_made() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    let mut blobs = Vec::new();
    for i in 0..3 {
        blobs.push(ops::encrypt(&c, &key, format!("p{i}").as_bytes(), &[]).await);
    }
    for b in blobs.iter().take(2) {
        ops::decrypt(&c, b, &[]).await;
    }
    let missing = c.describe_key().key_id("alias/none").send().await;
    assert!(missing.is_err());
    let unauthenticated = env.raw(RawRequest::kms("ListKeys", "{}").unsigned()).await;
    assert_eq!(unauthenticated.status, 400);
    // A wallet REST call is counted under its route's operation name.
    let rest = env
        .raw(rest_request(
            "/generateDataKey",
            serde_json::json!({ "rootKey": key }),
        ))
        .await;
    assert_eq!(
        rest.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&rest.body)
    );

    let r = env.raw(RawRequest::get("/metrics").unsigned()).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body.clone()).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let count = |op: &str, outcome: &str| {
        sample(
            &scrape,
            "kms_requests_total",
            &[("operation", op), ("outcome", outcome)],
        )
    };
    assert_eq!(count("CreateKey", "ok"), Some(1.0), "{text}");
    assert_eq!(count("Encrypt", "ok"), Some(3.0), "{text}");
    assert_eq!(count("Decrypt", "ok"), Some(2.0), "{text}");
    assert_eq!(
        count("DescribeKey", "NotFoundException"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count("Unauthenticated", "MissingAuthenticationTokenException"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count("rest:POST /generateDataKey", "ok"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "kms_request_duration_seconds_count",
            &[("operation", "rest:POST /generateDataKey")]
        ),
        Some(1.0),
        "{text}"
    );
    let hsm_encrypts = sample(
        &scrape,
        "kms_hsm_requests_total",
        &[("operation", "Encrypt"), ("outcome", "ok")],
    );
    assert_eq!(hsm_encrypts, Some(3.0), "{text}");
    // Every sample line parsed (histogram buckets merge into one sample each).
    let lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains("_bucket{"))
        .count();
    let plain = scrape
        .samples
        .iter()
        .filter(|s| !matches!(s.value, prometheus_parse::Value::Histogram(_)))
        .count();
    assert_eq!(lines, plain, "lines the parser skipped:\n{text}");
    assert!(text.ends_with("# EOF\n"));
    // Latency histograms count every call.
    let encrypt = [("operation", "Encrypt")];
    assert_eq!(
        sample(&scrape, "kms_request_duration_seconds_count", &encrypt),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&scrape, "kms_hsm_round_trip_seconds_count", &encrypt),
        Some(3.0),
        "{text}"
    );
    assert!(sample(&scrape, "kms_audit_write_seconds_count", &[]).unwrap_or(0.0) >= 8.0);
    assert_eq!(
        sample(&scrape, "kms_hsm_daemon_up", &[]),
        Some(1.0),
        "{text}"
    );
    assert!(sample(&scrape, "kms_hsm_daemon_served_requests", &[]).unwrap_or(0.0) >= 6.0);
    // 8 authenticated calls, each audited before its reply, and the 6
    // authorization decisions they needed (3 Encrypt, 2 Decrypt, the REST
    // GenerateDataKey; CreateKey needs none, the missing alias none).
    assert_eq!(
        sample(&scrape, "kms_audit_records_total", &[]),
        Some(14.0),
        "{text}"
    );
    assert!(sample(&scrape, "kms_connections_total", &[]).unwrap_or(0.0) >= 1.0);
    assert!(sample(&scrape, "kms_connections_open", &[]).unwrap_or(0.0) >= 1.0);
    assert!(!text.contains(&key), "metrics must not name keys");
    assert!(!text.contains("alice"), "metrics must not name principals");
}
