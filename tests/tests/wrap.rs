//! Key wrapping end to end over HTTPS with SigV4: `POST /wrapKey` and
//! `POST /unwrapKey` round trip key material of 1 to 4096 bytes, the wrapped
//! key names its CMK and never carries the material; another principal is
//! denied (403); a tampered or truncated wrapped key is refused with
//! InvalidCiphertextException; a disabled key refuses both; out-of-range
//! material is a 400; wrapped keys still unwrap after rotation; and the
//! `kmsctl wrap-key` / `unwrap-key` commands round trip a key file.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hsm_kms_tests::{RawRequest, RawResponse, TestEnv};
use serde_json::{Value, json};

fn req(path: &str, body: Value, who: &str) -> RawRequest {
    RawRequest {
        method: "POST".into(),
        path: path.into(),
        target: None,
        content_type: Some("application/json".into()),
        body: body.to_string().into_bytes(),
        sign_as: Some(who.into()),
        http1: false,
        body_override: None,
        extra_headers: Vec::new(),
    }
}

async fn cmk(env: &TestEnv) -> String {
    let out = env.client("alice").create_key().send().await.unwrap();
    out.key_metadata().unwrap().arn().unwrap().to_owned()
}

fn code(r: &RawResponse) -> String {
    r.json()["code"].as_str().unwrap_or_default().to_owned()
}

fn text(r: &RawResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

async fn wrap(env: &TestEnv, key: &str, material: &[u8], who: &str) -> RawResponse {
    let body = json!({"keyId": key, "key": B64.encode(material)});
    env.raw(req("/wrapKey", body, who)).await
}

async fn unwrap(env: &TestEnv, wrapped: &[u8], who: &str) -> RawResponse {
    let body = json!({"wrappedKey": B64.encode(wrapped)});
    env.raw(req("/unwrapKey", body, who)).await
}

fn wrapped_of(r: &RawResponse) -> Vec<u8> {
    B64.decode(r.json()["wrappedKey"].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn wrap_and_unwrap_round_trip_material_of_1_to_4096_bytes() {
    let env = TestEnv::start();
    let key = cmk(&env).await;
    for len in [1usize, 7, 32, 4096] {
        let material: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8 ^ 0xa5).collect();
        let r = wrap(&env, &key, &material, "alice").await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.json()["keyId"], key.as_str());
        let wrapped = wrapped_of(&r);
        assert!(wrapped.starts_with(b"HKW1"), "wrapped key has its header");
        if len >= 7 {
            assert!(
                !wrapped
                    .windows(7)
                    .any(|w| material.windows(7).any(|m| m == w)),
                "wrapped key carries material in the clear"
            );
        }
        let r = unwrap(&env, &wrapped, "alice").await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.json()["keyId"], key.as_str());
        assert_eq!(
            B64.decode(r.json()["key"].as_str().unwrap()).unwrap(),
            material
        );
    }
}

#[tokio::test]
async fn wrong_principal_is_denied_both_ways() {
    let env = TestEnv::start();
    let key = cmk(&env).await;
    let r = wrap(&env, &key, b"0123456789abcdef", "bob").await;
    assert_eq!(r.status, 403, "{}", text(&r));
    assert_eq!(code(&r), "AccessDeniedException");
    let wrapped = wrapped_of(&wrap(&env, &key, b"0123456789abcdef", "alice").await);
    let r = unwrap(&env, &wrapped, "bob").await;
    assert_eq!(r.status, 403, "{}", text(&r));
    assert_eq!(code(&r), "AccessDeniedException");
    assert!(!r.body.windows(16).any(|w| w == b"0123456789abcdef"));
}

#[tokio::test]
async fn tampered_or_truncated_wrapped_key_is_refused_clearly() {
    let env = TestEnv::start();
    let key = cmk(&env).await;
    let wrapped = wrapped_of(&wrap(&env, &key, b"0123456789abcdef", "alice").await);
    let last = wrapped.len() - 1;
    let mut cases = Vec::new();
    for i in [last, last - 12, 2] {
        let mut bad = wrapped.clone();
        bad[i] ^= 0x01;
        cases.push(bad);
    }
    cases.push(wrapped[..wrapped.len() - 8].to_vec());
    cases.push(b"not a wrapped key".to_vec());
    for bad in cases {
        let r = unwrap(&env, &bad, "alice").await;
        assert_eq!(r.status, 400, "{}", text(&r));
        assert_eq!(code(&r), "InvalidCiphertextException", "{}", text(&r));
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .contains("wrapped key is invalid"),
            "{}",
            text(&r)
        );
    }
    // The untouched one still unwraps: nothing was changed by the failures.
    assert_eq!(unwrap(&env, &wrapped, "alice").await.status, 200);
}

#[tokio::test]
async fn disabled_key_refuses_wrap_and_unwrap() {
    let env = TestEnv::start();
    let key = cmk(&env).await;
    let wrapped = wrapped_of(&wrap(&env, &key, b"material", "alice").await);
    let c = env.client("alice");
    c.disable_key().key_id(&key).send().await.unwrap();
    let r = wrap(&env, &key, b"material", "alice").await;
    assert_eq!(code(&r), "DisabledException", "{}", text(&r));
    let r = unwrap(&env, &wrapped, "alice").await;
    assert_eq!(code(&r), "DisabledException", "{}", text(&r));
    c.enable_key().key_id(&key).send().await.unwrap();
    assert_eq!(unwrap(&env, &wrapped, "alice").await.status, 200);
}

#[tokio::test]
async fn out_of_range_material_and_wrong_key_id_are_refused() {
    let env = TestEnv::start();
    let key = cmk(&env).await;
    for material in [Vec::new(), vec![1u8; 4097]] {
        let r = wrap(&env, &key, &material, "alice").await;
        assert_eq!(r.status, 400, "{}", text(&r));
        assert_eq!(code(&r), "ValidationException");
    }
    let r = env
        .raw(req(
            "/wrapKey",
            json!({"keyId": key, "key": "%%%"}),
            "alice",
        ))
        .await;
    assert_eq!(code(&r), "ValidationException");
    let other = cmk(&env).await;
    let wrapped = wrapped_of(&wrap(&env, &key, b"material", "alice").await);
    let body = json!({"wrappedKey": B64.encode(&wrapped), "keyId": other});
    let r = env.raw(req("/unwrapKey", body, "alice")).await;
    assert_eq!(code(&r), "IncorrectKeyException", "{}", text(&r));
}

#[tokio::test]
async fn wrapped_keys_unwrap_after_rotation() {
    let env = TestEnv::start();
    let key = cmk(&env).await;
    let before = wrapped_of(&wrap(&env, &key, b"old material", "alice").await);
    env.client("alice")
        .rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let after = wrapped_of(&wrap(&env, &key, b"old material", "alice").await);
    assert_ne!(before, after, "the new version wraps");
    for w in [before, after] {
        let r = unwrap(&env, &w, "alice").await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.json()["key"], B64.encode(b"old material"));
    }
}

#[test]
fn kmsctl_wrap_key_and_unwrap_key_round_trip_a_key_file() {
    let env = TestEnv::start();
    let v = env.kmsctl("alice", ["create-key", "--json"]).json();
    let key = v["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (input, wrapped, back) = (
        dir.path().join("key.bin"),
        dir.path().join("key.wrapped"),
        dir.path().join("key.out"),
    );
    let material: Vec<u8> = (0..=255u8).collect();
    std::fs::write(&input, &material).unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let out = env.kmsctl(
        "alice",
        ["wrap-key", "--key", &key, &s(&input), "-o", &s(&wrapped)],
    );
    assert!(out.success, "{}", out.stderr);
    let out = env.kmsctl("alice", ["unwrap-key", &s(&wrapped), "-o", &s(&back)]);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(std::fs::read(&back).unwrap(), material);

    let out = env.kmsctl(
        "bob",
        ["unwrap-key", &s(&wrapped), "-o", &s(&dir.path().join("x"))],
    );
    assert!(!out.success);
    assert!(
        out.stderr.contains("AccessDeniedException"),
        "{}",
        out.stderr
    );

    let mut bad = std::fs::read(&wrapped).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&wrapped, bad).unwrap();
    let out = env.kmsctl("alice", ["unwrap-key", &s(&wrapped), "--json"]);
    assert!(!out.success);
    assert!(
        out.stderr.contains("InvalidCiphertextException"),
        "{}",
        out.stderr
    );
}
