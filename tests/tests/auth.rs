//! Invariant I5: every request is authenticated (SigV4 against the configured
//! principals) before any work is done, with the error codes AWS KMS uses.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, SystemTime};

use aws_sdk_kms::primitives::Blob;
use hsm_kms_tests::{RawRequest, TestEnv, assert_err};

async fn alice_key_count(env: &TestEnv) -> usize {
    env.client("alice")
        .list_keys()
        .send()
        .await
        .expect("ListKeys as alice")
        .keys()
        .len()
}

#[tokio::test]
async fn rejects_bad_signature() {
    let env = TestEnv::start();
    let c = env.client_with_wrong_secret("alice");
    let info = assert_err!(c.create_key().send().await, "InvalidSignatureException");
    assert_eq!(info.status, Some(400));
    assert_err!(
        c.generate_random().number_of_bytes(16).send().await,
        "InvalidSignatureException"
    );
    // Nothing was created by the rejected CreateKey.
    assert_eq!(alice_key_count(&env).await, 0);
}

#[tokio::test]
async fn rejects_unknown_access_key() {
    let env = TestEnv::start();
    let c = env.client_with_unknown_access_key();
    let info = assert_err!(c.create_key().send().await, "UnrecognizedClientException");
    assert_eq!(info.status, Some(400));
    assert_eq!(alice_key_count(&env).await, 0);
}

#[tokio::test]
async fn rejects_expired_signature() {
    let env = TestEnv::start();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let c = env.client_at("alice", an_hour_ago);
    let info = assert_err!(c.create_key().send().await, "InvalidSignatureException");
    assert_eq!(info.status, Some(400));
    assert_eq!(alice_key_count(&env).await, 0);
}

#[tokio::test]
async fn rejects_signature_from_the_future() {
    let env = TestEnv::start();
    let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
    let c = env.client_at("alice", in_an_hour);
    assert_err!(c.create_key().send().await, "InvalidSignatureException");
    assert_eq!(alice_key_count(&env).await, 0);
}

#[tokio::test]
async fn accepts_small_clock_skew() {
    let env = TestEnv::start();
    let two_minutes_ago = SystemTime::now() - Duration::from_secs(120);
    let c = env.client_at("alice", two_minutes_ago);
    c.generate_random()
        .number_of_bytes(8)
        .send()
        .await
        .expect("a 2-minute skew is within AWS's 5-minute window");
}

#[tokio::test]
async fn rejects_unsigned_request() {
    let env = TestEnv::start();
    let r = env.raw(RawRequest::kms("CreateKey", "{}").unsigned()).await;
    assert_eq!(
        r.error_type().as_deref(),
        Some("MissingAuthenticationTokenException"),
        "status {} body {:?}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!((400..500).contains(&r.status), "status {}", r.status);
    assert_eq!(alice_key_count(&env).await, 0);
}

#[tokio::test]
async fn rejects_body_changed_after_signing() {
    let env = TestEnv::start();
    let r = env
        .raw(
            RawRequest::kms("GenerateRandom", r#"{"NumberOfBytes":16}"#)
                .send_body_instead(r#"{"NumberOfBytes":32}"#),
        )
        .await;
    assert_eq!(r.status, 400, "body {:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_type().as_deref(), Some("InvalidSignatureException"));
    // The same request, unaltered, is accepted: the raw signer itself is right.
    let ok = env
        .raw(RawRequest::kms("GenerateRandom", r#"{"NumberOfBytes":16}"#))
        .await;
    assert_eq!(
        ok.status,
        200,
        "body {:?}",
        String::from_utf8_lossy(&ok.body)
    );
}

#[tokio::test]
async fn bob_cannot_sign_as_alice() {
    // Bob's access key with alice's secret: a bad signature, not alice.
    let env = TestEnv::start();
    let mut o = env.client_options("bob");
    o.secret_access_key = env.principal("alice").secret_access_key.clone();
    let c = env.client_with(o);
    assert_err!(
        c.encrypt()
            .key_id("alias/anything")
            .plaintext(Blob::new(b"x"))
            .send()
            .await,
        "InvalidSignatureException"
    );
}

#[tokio::test]
async fn health_needs_no_authentication() {
    let env = TestEnv::start();
    let r = env.raw(RawRequest::get("/health")).await;
    assert_eq!(r.status, 200, "body {:?}", String::from_utf8_lossy(&r.body));
    let r = env.raw(RawRequest::get("/health").http1()).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn rejects_signature_scoped_to_another_region() {
    let env = TestEnv::start();
    let mut o = env.client_options("alice");
    o.region = Some("eu-west-1".into());
    let c = env.client_with(o);
    assert_err!(c.create_key().send().await, "InvalidSignatureException");
    assert_eq!(alice_key_count(&env).await, 0);
}

#[tokio::test]
async fn rejects_malformed_authorization_header() {
    let env = TestEnv::start();
    for auth in [
        "AWS4-HMAC-SHA256 garbage",
        "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=00",
        "Basic YWxpY2U6c2VjcmV0",
    ] {
        let r = env
            .raw(
                RawRequest::kms("CreateKey", "{}")
                    .unsigned()
                    .header("x-amz-date", "20260101T000000Z")
                    .header("authorization", auth),
            )
            .await;
        assert_eq!(
            r.status,
            400,
            "{auth}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.error_type().as_deref(),
            Some("IncompleteSignatureException"),
            "{auth}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert_eq!(alice_key_count(&env).await, 0);
}
