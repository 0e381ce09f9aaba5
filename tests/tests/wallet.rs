//! The wallet REST API end to end over HTTPS with SigV4: store a private key
//! (the SQLite row holds no plaintext), read it back, duplicates refused with
//! 409, unknown pub 404, another principal denied (403), data keys generated
//! and decrypted, JSON errors `{code, message}`, and the same calls signed by
//! `curl --aws-sigv4` as the README shows.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

use hsm_kms_tests::{RawRequest, RawResponse, TestEnv};
use serde_json::{Value, json};

const PRV: &str = "L1aW4aubDFB7yfras2S1mN3bqg9nwySY8nkoLmJebSLD5BWv3ENZ";

fn req(method: &str, path: &str, body: Value, who: &str) -> RawRequest {
    RawRequest {
        method: method.into(),
        path: path.into(),
        target: None,
        content_type: Some("application/json".into()),
        body: if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        },
        sign_as: Some(who.into()),
        http1: false,
        body_override: None,
        extra_headers: Vec::new(),
    }
}

async fn root_key(env: &TestEnv) -> String {
    let c = env.client("alice");
    let out = c.create_key().send().await.unwrap();
    out.key_metadata().unwrap().arn().unwrap().to_owned()
}

fn code(r: &RawResponse) -> String {
    r.json()["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn stores_and_returns_a_private_key_without_plaintext_at_rest() {
    let env = TestEnv::start();
    let root = root_key(&env).await;
    let body = json!({"pub": "02abc", "prv": PRV, "source": "user", "coin": "BTC", "type": "secp256k1", "rootKey": root});
    let r = env.raw(req("POST", "/key", body, "alice")).await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let rec = r.json();
    assert_eq!(rec["pub"], "02abc");
    assert_eq!(rec["rootKey"], root.as_str());
    assert!(
        rec.get("prv").is_none(),
        "the store reply must not carry prv: {rec}"
    );
    assert!(!r.body.windows(PRV.len()).any(|w| w == PRV.as_bytes()));

    // The row on disk: sealed prv and encrypted data key, no plaintext.
    let db = rusqlite::Connection::open_with_flags(
        env.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (prv, edk, rk, coin): (Vec<u8>, Vec<u8>, String, String) = db
        .query_row(
            "SELECT encrypted_prv, encrypted_data_key, root_key, coin FROM private_keys \
             WHERE pub = '02abc' AND source = 'user'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((rk.as_str(), coin.as_str()), (root.as_str(), "BTC"));
    assert_eq!(prv.len(), 12 + PRV.len() + 16, "nonce || ciphertext || tag");
    assert!(
        !prv.windows(8)
            .any(|w| PRV.as_bytes().windows(8).any(|p| p == w))
    );
    assert!(!edk.is_empty());
    drop(db);
    let file = std::fs::read(env.db_path()).unwrap();
    let wal = std::fs::read(env.db_path().with_extension("db-wal")).unwrap_or_default();
    for bytes in [&file, &wal] {
        assert!(
            !bytes.windows(PRV.len()).any(|w| w == PRV.as_bytes()),
            "prv in the database files"
        );
    }

    let r = env
        .raw(req("GET", "/key/02abc", Value::Null, "alice"))
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["prv"], PRV);
    assert_eq!(r.json()["source"], "user");

    // A backup copy under the same pub is a different record.
    let body = json!({"pub": "02abc", "prv": "backup-secret", "source": "backup", "coin": "BTC", "type": "secp256k1", "rootKey": root});
    assert_eq!(
        env.raw(req("POST", "/key", body, "alice")).await.status,
        201
    );
    let r = env
        .raw(req("GET", "/key/02abc?source=backup", Value::Null, "alice"))
        .await;
    assert_eq!(r.json()["prv"], "backup-secret");
    let r = env
        .raw(req("GET", "/key/02abc", Value::Null, "alice"))
        .await;
    assert_eq!(r.json()["prv"], PRV, "user is preferred without ?source");
}

#[tokio::test]
async fn duplicate_is_refused_and_never_overwrites() {
    let env = TestEnv::start();
    let root = root_key(&env).await;
    let body = json!({"pub": "p1", "prv": PRV, "source": "user", "coin": "ETH", "type": "secp256k1", "rootKey": root});
    assert_eq!(
        env.raw(req("POST", "/key", body, "alice")).await.status,
        201
    );
    let again = json!({"pub": "p1", "prv": "other", "source": "user", "coin": "ETH", "type": "secp256k1", "rootKey": root});
    let r = env.raw(req("POST", "/key", again, "alice")).await;
    assert_eq!(r.status, 409);
    assert_eq!(code(&r), "AlreadyExistsException");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("already stored")
    );
    let r = env.raw(req("GET", "/key/p1", Value::Null, "alice")).await;
    assert_eq!(r.json()["prv"], PRV);
}

#[tokio::test]
async fn unknown_pub_is_404_and_bad_input_400() {
    let env = TestEnv::start();
    let root = root_key(&env).await;
    let r = env.raw(req("GET", "/key/nope", Value::Null, "alice")).await;
    assert_eq!(r.status, 404);
    assert_eq!(code(&r), "NotFoundException");
    let r = env
        .raw(req("GET", "/key/nope?source=cold", Value::Null, "alice"))
        .await;
    assert_eq!(r.status, 400);
    let bad = json!({"pub": "p", "prv": "x", "source": "cold", "coin": "BTC", "type": "t", "rootKey": root});
    let r = env.raw(req("POST", "/key", bad, "alice")).await;
    assert_eq!((r.status, code(&r).as_str()), (400, "ValidationException"));
    let no_root = json!({"pub": "p", "prv": "x", "coin": "BTC", "type": "t"});
    let r = env.raw(req("POST", "/key", no_root, "alice")).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("rootKey"));
    let mut garbage = req("POST", "/key", Value::Null, "alice");
    garbage.body = b"{not json".to_vec();
    let r = env.raw(garbage).await;
    assert_eq!(r.status, 400);
    let r = env.raw(req("DELETE", "/key/p", Value::Null, "alice")).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn wrong_principal_and_unsigned_requests_are_denied() {
    let env = TestEnv::start();
    let root = root_key(&env).await;
    let body = json!({"pub": "p2", "prv": PRV, "source": "user", "coin": "BTC", "type": "t", "rootKey": root});
    assert_eq!(
        env.raw(req("POST", "/key", body.clone(), "alice"))
            .await
            .status,
        201
    );

    let r = env.raw(req("GET", "/key/p2", Value::Null, "bob")).await;
    assert_eq!(r.status, 403, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(code(&r), "AccessDeniedException");
    assert!(!r.body.windows(PRV.len()).any(|w| w == PRV.as_bytes()));

    let mut other = body;
    other["pub"] = "p3".into();
    let r = env.raw(req("POST", "/key", other, "bob")).await;
    assert_eq!(r.status, 403);

    let r = env
        .raw(req("GET", "/key/p2", Value::Null, "alice").unsigned())
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(code(&r), "MissingAuthenticationTokenException");
}

#[tokio::test]
async fn data_keys_round_trip_and_are_bound_to_the_caller() {
    let env = TestEnv::start();
    let root = root_key(&env).await;
    let r = env
        .raw(req(
            "POST",
            "/generateDataKey",
            json!({"rootKey": root}),
            "alice",
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let dk = r.json();
    assert_eq!(dk["rootKey"], root.as_str());
    let r = env
        .raw(req(
            "POST",
            "/decryptDataKey",
            json!({"encryptedKey": dk["encryptedKey"]}),
            "alice",
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["plaintext"], dk["plaintext"]);
    let r = env
        .raw(req(
            "POST",
            "/decryptDataKey",
            json!({"encryptedKey": dk["encryptedKey"]}),
            "bob",
        ))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn curl_aws_sigv4_works_as_documented() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIPPED curl_aws_sigv4_works_as_documented: curl is not installed");
        return;
    }
    let env = TestEnv::start();
    let root = root_key(&env).await;
    let p = env.principal("alice").clone();
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(env.ca_path())
            .args(["--aws-sigv4", "aws:amz:us-east-1:kms", "--user"])
            .arg(format!("{}:{}", p.access_key_id, p.secret_access_key))
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.to_owned(), body.to_owned())
    };
    let url = |path: &str| format!("{}{path}", env.endpoint());
    let body = json!({"pub": "03ff", "prv": PRV, "source": "user", "coin": "BTC", "type": "t", "rootKey": root}).to_string();
    let (status, out) = curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        &body,
        &url("/key"),
    ]);
    assert_eq!(status, "201", "{out}");
    let (status, out) = curl(&[&url("/key/03ff?source=user")]);
    assert_eq!(status, "200", "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["prv"], PRV);
}
