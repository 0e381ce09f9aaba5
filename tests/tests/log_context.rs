//! A line logged while a request is served names the request, its caller
//! and its operation, in both log formats, from the real frontend: CreateKey
//! logs "key created" at info level from inside the request.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use aws_sdk_kms::operation::RequestId;
use hsm_kms_tests::{EnvOptions, TestEnv};

/// Creates a key as alice; returns the request id, the key id and the
/// frontend log line that reports the key's creation.
async fn key_created_line(env: &TestEnv) -> (String, String, String) {
    let out = env.client("alice").create_key().send().await.unwrap();
    let request_id = out.request_id().unwrap().to_owned();
    let key_id = out.key_metadata().unwrap().key_id().to_owned();
    let log = std::fs::read_to_string(env.frontend_log()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("key created") && l.contains(&key_id))
        .unwrap_or_else(|| panic!("no \"key created\" line for {key_id} in:\n{log}"))
        .to_owned();
    (request_id, key_id, line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_lines_carry_the_request_before_the_target() {
    let env = TestEnv::start_with(EnvOptions {
        log_filter: Some("info".into()),
        ..EnvOptions::default()
    });
    let (request_id, _, line) = key_created_line(&env).await;
    let arn = &env.principal("alice").arn;
    let expected = format!(
        " INFO request{{request_id=\"{request_id}\" principal=\"{arn}\" \
         operation=\"CreateKey\"}}: kms_frontend::service::keys: key created "
    );
    assert!(
        line.contains(&expected),
        "expected {expected:?} in {line:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_the_request_as_their_span() {
    let env = TestEnv::start_with(EnvOptions {
        log_filter: Some("info".into()),
        json_logs: true,
        ..EnvOptions::default()
    });
    let (request_id, key_id, line) = key_created_line(&env).await;
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["target"], "kms_frontend::service::keys");
    assert_eq!(v["fields"]["message"], "key created");
    assert_eq!(v["fields"]["key_id"], key_id);
    assert_eq!(
        v["span"],
        serde_json::json!({
            "request_id": request_id,
            "principal": env.principal("alice").arn,
            "operation": "CreateKey",
            "name": "request",
        })
    );
    // A line logged outside any request has no span.
    let log = std::fs::read_to_string(env.frontend_log()).unwrap();
    let outside = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "listening")
        .unwrap_or_else(|| panic!("no \"listening\" line in:\n{log}"));
    assert!(outside.get("span").is_none(), "{outside}");
}
