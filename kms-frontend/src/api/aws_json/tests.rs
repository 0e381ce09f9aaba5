//! Tests of the JSON layer: decoding errors, required fields, shapes of
//! replies, context decoding. The service behind it runs over a temp SQLite
//! store with no HSM.

use super::*;
use crate::hsm_client::HsmClient;
use crate::service::KmsSettings;
use crate::store::{KeyRow, KeyState, SqliteStore, Store, VersionRow};
use protocol::KeyToken;
use serde_json::Value;

const KEY: &str = "11111111-1111-4111-8111-111111111111";
const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/11111111-1111-4111-8111-111111111111";

fn alice() -> Principal {
    Principal {
        arn: "arn:aws:iam::111122223333:user/alice".into(),
        account_id: "111122223333".into(),
        access_key_id: "AKIAALICE".into(),
        admin: false,
    }
}

async fn kms(dir: &tempfile::TempDir) -> Kms {
    let db = dir.path().join("kms.db");
    {
        let s = SqliteStore::open(&db).expect("store");
        s.insert_key(
            &KeyRow {
                key_id: KEY.into(),
                arn: ARN.into(),
                owner_arn: alice().arn,
                description: "test".into(),
                key_spec: "SYMMETRIC_DEFAULT".into(),
                key_usage: "ENCRYPT_DECRYPT".into(),
                origin: "AWS_KMS".into(),
                key_state: KeyState::Enabled,
                creation_date: 1_700_000_000,
                enabled: true,
                deletion_date: None,
                pending_window_days: None,
                current_version: 1,
            },
            &VersionRow {
                key_id: KEY.into(),
                version: 1,
                token: KeyToken(vec![1; 40]),
                created_at: 1_700_000_000,
                rotation_type: None,
            },
        )
        .expect("seed");
    }
    Kms::open(
        KmsSettings {
            db_path: db,
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
        },
        HsmClient::new("/nonexistent/hsm.sock".into()),
    )
    .await
    .expect("open")
}

async fn call(kms: &Kms, op: &str, body: &str) -> (u16, Value, Option<&'static str>) {
    let r = dispatch(
        kms,
        &alice(),
        "req-1",
        &format!("TrentService.{op}"),
        body.as_bytes(),
    )
    .await;
    let v = if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).expect("reply is JSON")
    };
    (r.status, v, r.error_type)
}

async fn error_of(kms: &Kms, op: &str, body: &str) -> (u16, String) {
    let (status, v, ty) = call(kms, op, body).await;
    let ty = ty.expect("an error");
    assert_eq!(v["__type"], ty);
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    (status, ty.to_owned())
}

#[tokio::test]
async fn describe_key_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kms = kms(&dir).await;
    let (status, v, ty) = call(
        &kms,
        "DescribeKey",
        &format!(r#"{{"KeyId":"{KEY}","GrantTokens":[],"Unknown":1}}"#),
    )
    .await;
    assert_eq!((status, ty), (200, None));
    let m = &v["KeyMetadata"];
    assert_eq!(m["AWSAccountId"], "111122223333");
    assert_eq!(m["KeyId"], KEY);
    assert_eq!(m["Arn"], ARN);
    assert_eq!(m["CreationDate"], 1_700_000_000);
    assert_eq!(m["Enabled"], true);
    assert_eq!(m["Description"], "test");
    assert_eq!(m["KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(m["KeyState"], "Enabled");
    assert_eq!(m["Origin"], "AWS_KMS");
    assert_eq!(m["KeyManager"], "CUSTOMER");
    assert_eq!(m["KeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(m["CustomerMasterKeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(
        m["EncryptionAlgorithms"],
        serde_json::json!(["SYMMETRIC_DEFAULT"])
    );
    assert_eq!(m["MultiRegion"], false);
    assert!(m.get("DeletionDate").is_none());

    let (status, v, _) = call(
        &kms,
        "ScheduleKeyDeletion",
        &format!(r#"{{"KeyId":"{ARN}","PendingWindowInDays":7}}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["KeyId"], ARN);
    assert_eq!(v["KeyState"], "PendingDeletion");
    assert_eq!(v["PendingWindowInDays"], 7);
    assert!(v["DeletionDate"].is_i64());
    let (_, v, _) = call(&kms, "DescribeKey", &format!(r#"{{"KeyId":"{KEY}"}}"#)).await;
    assert_eq!(v["KeyMetadata"]["PendingDeletionWindowInDays"], 7);
    assert!(v["KeyMetadata"]["DeletionDate"].is_i64());
    let (status, v, _) = call(
        &kms,
        "CancelKeyDeletion",
        &format!(r#"{{"KeyId":"{KEY}"}}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["KeyId"], ARN);
}

#[tokio::test]
async fn empty_replies_and_listings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kms = kms(&dir).await;
    let (status, v, _) = call(&kms, "DisableKey", &format!(r#"{{"KeyId":"{KEY}"}}"#)).await;
    assert_eq!((status, v), (200, Value::Null));
    let (status, _, _) = call(&kms, "EnableKey", &format!(r#"{{"KeyId":"{KEY}"}}"#)).await;
    assert_eq!(status, 200);
    let (status, _, _) = call(
        &kms,
        "CreateAlias",
        &format!(r#"{{"AliasName":"alias/app","TargetKeyId":"{KEY}"}}"#),
    )
    .await;
    assert_eq!(status, 200);
    let (_, v, _) = call(&kms, "ListKeys", "").await;
    assert_eq!(v["Keys"][0]["KeyId"], KEY);
    assert_eq!(v["Keys"][0]["KeyArn"], ARN);
    assert_eq!(v["Truncated"], false);
    assert!(v.get("NextMarker").is_none());
    let (_, v, _) = call(&kms, "ListAliases", r#"{"Limit":1}"#).await;
    let a = &v["Aliases"][0];
    assert_eq!(a["AliasName"], "alias/app");
    assert_eq!(
        a["AliasArn"],
        "arn:aws:kms:us-east-1:111122223333:alias/app"
    );
    assert_eq!(a["TargetKeyId"], KEY);
    assert!(a["CreationDate"].is_i64());
    assert!(a["LastUpdatedDate"].is_i64());
    let (status, _, _) = call(&kms, "DeleteAlias", r#"{"AliasName":"alias/app"}"#).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn request_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kms = kms(&dir).await;
    let cases: &[(&str, &str, u16, &str)] = &[
        ("Nope", "{}", 400, "UnknownOperationException"),
        ("DescribeKey", "{not json", 400, "SerializationException"),
        ("DescribeKey", "[]", 400, "SerializationException"),
        (
            "DescribeKey",
            r#"{"KeyId":5}"#,
            400,
            "SerializationException",
        ),
        ("DescribeKey", "{}", 400, "ValidationException"),
        (
            "DescribeKey",
            r#"{"KeyId":"alias/none"}"#,
            400,
            "NotFoundException",
        ),
        (
            "DescribeKey",
            r#"{"KeyId":"garbage"}"#,
            400,
            "NotFoundException",
        ),
        ("ListKeys", r#"{"Limit":0}"#, 400, "ValidationException"),
        (
            "ListKeys",
            r#"{"Limit":"ten"}"#,
            400,
            "SerializationException",
        ),
        (
            "ListKeys",
            r#"{"Marker":"%%%"}"#,
            400,
            "InvalidMarkerException",
        ),
        ("Encrypt", r#"{"KeyId":"k"}"#, 400, "ValidationException"),
        (
            "Encrypt",
            r#"{"Plaintext":"aGk="}"#,
            400,
            "ValidationException",
        ),
        (
            "Encrypt",
            r#"{"KeyId":"k","Plaintext":"***"}"#,
            400,
            "SerializationException",
        ),
        (
            "Encrypt",
            r#"{"KeyId":"k","Plaintext":""}"#,
            400,
            "ValidationException",
        ),
        (
            "Encrypt",
            r#"{"KeyId":"k","Plaintext":"aGk=","EncryptionContext":{"a":1}}"#,
            400,
            "SerializationException",
        ),
        (
            "Encrypt",
            r#"{"KeyId":"k","Plaintext":"aGk=","EncryptionContext":"a"}"#,
            400,
            "SerializationException",
        ),
        ("Decrypt", "{}", 400, "ValidationException"),
        (
            "Decrypt",
            r#"{"CiphertextBlob":"AAAA"}"#,
            400,
            "InvalidCiphertextException",
        ),
        (
            "GenerateDataKey",
            r#"{"KeyId":"11111111-1111-4111-8111-111111111111"}"#,
            400,
            "ValidationException",
        ),
        (
            "GenerateRandom",
            r#"{"NumberOfBytes":2000}"#,
            400,
            "ValidationException",
        ),
        (
            "GenerateRandom",
            r#"{"NumberOfBytes":16}"#,
            500,
            "KMSInternalException",
        ),
        (
            "CreateKey",
            r#"{"KeySpec":"ECC_NIST_EDWARDS25519","KeyUsage":"SIGN_VERIFY"}"#,
            400,
            "UnsupportedOperationException",
        ),
        (
            "CreateKey",
            r#"{"KeySpec":"HMAC_256"}"#,
            400,
            "ValidationException",
        ),
        (
            "CreateAlias",
            r#"{"AliasName":"alias/aws/x","TargetKeyId":"k"}"#,
            400,
            "NotAuthorizedException",
        ),
        (
            "CreateAlias",
            r#"{"AliasName":"x"}"#,
            400,
            "ValidationException",
        ),
        (
            "ScheduleKeyDeletion",
            r#"{"KeyId":"11111111-1111-4111-8111-111111111111","PendingWindowInDays":3}"#,
            400,
            "ValidationException",
        ),
    ];
    for (op, body, status, name) in cases {
        let got = error_of(&kms, op, body).await;
        assert_eq!(got, (*status, (*name).to_owned()), "{op} {body}");
    }
    // Not a TrentService target at all.
    let r = dispatch(&kms, &alice(), "r", "Other.DescribeKey", b"{}").await;
    assert_eq!(r.error_type, Some("UnknownOperationException"));
}

#[test]
fn context_decoding() {
    let r: EncryptRequest<'_> =
        decode(br#"{"EncryptionContext":{"b":"2","a":"1"},"Plaintext":"aGk\/"}"#).expect("decode");
    assert_eq!(
        context(r.encryption_context),
        vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned())
        ]
    );
    // An escaped slash still decodes (owned, not borrowed).
    assert_eq!(r.plaintext.as_deref(), Some("aGk/"));
    let r: EncryptRequest<'_> = decode(br#"{"EncryptionContext":null}"#).expect("null");
    assert!(context(r.encryption_context).is_empty());
    let s = secret("aGk/", "Plaintext").expect("b64");
    assert_eq!(s.expose(), b"hi?");
    assert_eq!(secret_base64(&s).as_str(), "aGk/");
}
