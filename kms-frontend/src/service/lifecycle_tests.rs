//! Service tests of deletion, tags, descriptions, rotation settings and the
//! usage/algorithm checks of asymmetric and HMAC operations, over a real
//! SQLite store and a [`ManualClock`]. No daemon runs: every refusal here
//! happens before the HSM call, and a destroyed key's eviction is left
//! pending for the next pass.

use super::asymmetric::{MacInput, SignInput};
use super::clock::ManualClock;
use super::crypto::EncryptInput;
use super::*;
use crate::principal::Principal;
use crate::store::{KeyRow, KeyState, VersionRow};
use protocol::{KeyToken, SecretBytes};

const ACCOUNT: &str = "111122223333";
const SYM: &str = "11111111-1111-4111-8111-111111111111";
const HMAC: &str = "22222222-2222-4222-8222-222222222222";
const ECC: &str = "33333333-3333-4333-8333-333333333333";
const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn alice() -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{ACCOUNT}:user/alice"),
        account_id: ACCOUNT.into(),
        access_key_id: "AKIAALICE".into(),
        admin: false,
    }
}

fn seed(s: &SqliteStore, id: &str, spec: &str, usage: &str) {
    let key = KeyRow {
        key_id: id.into(),
        arn: format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{id}"),
        owner_arn: alice().arn,
        description: String::new(),
        key_spec: spec.into(),
        key_usage: usage.into(),
        origin: "AWS_KMS".into(),
        key_state: KeyState::Enabled,
        creation_date: T0,
        enabled: true,
        deletion_date: None,
        pending_window_days: None,
        current_version: 1,
    };
    let v = VersionRow {
        key_id: id.into(),
        version: 1,
        token: KeyToken(vec![7; 40]),
        created_at: T0,
        rotation_type: None,
    };
    s.insert_key(&key, &v).expect("seed");
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    kms: Kms,
    clock: Arc<ManualClock>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("kms.db");
    {
        let s = SqliteStore::open(&db).expect("store");
        seed(&s, SYM, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
        seed(&s, HMAC, "HMAC_256", "GENERATE_VERIFY_MAC");
        seed(&s, ECC, "ECC_NIST_P256", "SIGN_VERIFY");
    }
    let clock = Arc::new(ManualClock::new(T0));
    let kms = Kms::open(
        KmsSettings {
            db_path: db.clone(),
            region: "us-east-1".into(),
            account_id: ACCOUNT.into(),
        },
        HsmClient::new(PathBuf::from("/nonexistent/hsm.sock")),
    )
    .await
    .expect("open")
    .with_clock(clock.clone())
    .expect("clock");
    Fixture {
        _dir: dir,
        db,
        kms,
        clock,
    }
}

fn name(e: &KmsError) -> &'static str {
    e.aws().name
}

#[tokio::test]
async fn deletion_destroys_token_rows_only_when_the_window_ends() {
    let f = fixture().await;
    f.kms
        .create_alias(&alice(), "alias/doomed", SYM)
        .await
        .expect("alias");
    let s = f
        .kms
        .schedule_key_deletion(&alice(), SYM, Some(7))
        .await
        .expect("schedule");
    assert_eq!(s.deletion_date, T0 + 7 * DAY);
    f.clock.advance(7 * DAY - 1);
    assert!(f.kms.run_due().await.destroyed.is_empty());
    let meta = f
        .kms
        .describe_key(&alice(), SYM)
        .await
        .expect("still there");
    assert_eq!(meta.key_state, KeyState::PendingDeletion);
    assert_eq!(meta.deletion_date, Some(T0 + 7 * DAY));

    f.clock.advance(1);
    let report = f.kms.run_due().await;
    assert_eq!(report.destroyed, vec![SYM.to_owned()]);
    let e = f.kms.describe_key(&alice(), SYM).await.expect_err("gone");
    assert_eq!(name(&e), "NotFoundException");
    let e = f
        .kms
        .describe_key(&alice(), "alias/doomed")
        .await
        .expect_err("alias gone");
    assert_eq!(name(&e), "NotFoundException");
    // The rows are gone from the database file itself.
    let snap = SqliteStore::open(&f.db)
        .expect("reopen")
        .load()
        .expect("load");
    assert!(snap.keys.iter().all(|k| k.key_id != SYM));
    assert!(snap.versions.iter().all(|v| v.key_id != SYM));
    assert!(snap.aliases.is_empty());
    // No daemon here: the eviction waits for the next pass.
    assert_eq!(f.kms.run_due().await.failed, 1);
}

#[tokio::test]
async fn cancelled_deletion_keeps_the_key() {
    let f = fixture().await;
    f.kms
        .schedule_key_deletion(&alice(), SYM, None)
        .await
        .expect("schedule");
    f.kms
        .cancel_key_deletion(&alice(), SYM)
        .await
        .expect("cancel");
    f.clock.advance(31 * DAY);
    assert!(f.kms.run_due().await.destroyed.is_empty());
    let meta = f.kms.describe_key(&alice(), SYM).await.expect("kept");
    assert_eq!(meta.key_state, KeyState::Disabled);
}

#[tokio::test]
async fn tags_follow_aws_limits_and_persist() {
    let f = fixture().await;
    let tags = |n: usize| {
        (0..n)
            .map(|i| (format!("k{i:02}"), format!("v{i}")))
            .collect()
    };
    f.kms
        .tag_resource(&alice(), SYM, tags(50))
        .await
        .expect("50 tags");
    let e = f
        .kms
        .tag_resource(&alice(), SYM, vec![("one-more".into(), "x".into())])
        .await
        .expect_err("51");
    assert_eq!(name(&e), "LimitExceededException");
    // Replacing an existing key's value does not count as a new tag.
    f.kms
        .tag_resource(&alice(), SYM, vec![("k00".into(), "new".into())])
        .await
        .expect("replace");
    let e = f
        .kms
        .tag_resource(&alice(), SYM, vec![("aws:reserved".into(), "x".into())])
        .await
        .expect_err("aws:");
    assert_eq!(name(&e), "TagException");
    f.kms
        .untag_resource(&alice(), SYM, vec!["k01".into(), "absent".into()])
        .await
        .expect("untag");
    f.kms
        .update_key_description(&alice(), SYM, "new description".into())
        .await
        .expect("describe");
    // Survives a reopen.
    let kms = Kms::open(
        KmsSettings {
            db_path: f.db.clone(),
            region: "us-east-1".into(),
            account_id: ACCOUNT.into(),
        },
        HsmClient::new(PathBuf::from("/nonexistent/hsm.sock")),
    )
    .await
    .expect("reopen");
    let page = kms
        .list_resource_tags(&alice(), SYM, Some(50), None)
        .await
        .expect("list");
    assert_eq!(page.items.len(), 49);
    assert_eq!(page.items[0].tag_key, "k00");
    assert_eq!(page.items[0].tag_value, "new");
    assert!(page.items.iter().all(|t| t.tag_key != "k01"));
    let meta = kms.describe_key(&alice(), SYM).await.expect("describe");
    assert_eq!(meta.description, "new description");
}

#[tokio::test]
async fn rotation_settings_validate_and_persist() {
    let f = fixture().await;
    for bad in [89, 2561] {
        let e = f
            .kms
            .enable_key_rotation(&alice(), SYM, Some(bad))
            .await
            .expect_err("period");
        assert_eq!(name(&e), "ValidationException");
    }
    f.kms
        .enable_key_rotation(&alice(), SYM, None)
        .await
        .expect("enable");
    let s = f
        .kms
        .get_key_rotation_status(&alice(), SYM)
        .await
        .expect("status");
    assert!(s.enabled);
    assert_eq!(s.rotation_period_in_days, Some(365));
    assert_eq!(s.next_rotation_date, Some(T0 + 365 * DAY));
    for key in [HMAC, ECC] {
        let e = f
            .kms
            .enable_key_rotation(&alice(), key, None)
            .await
            .expect_err("asymmetric");
        assert_eq!(name(&e), "UnsupportedOperationException");
        let e = f
            .kms
            .rotate_key_on_demand(&alice(), key)
            .await
            .expect_err("asymmetric");
        assert_eq!(name(&e), "UnsupportedOperationException");
    }
    f.kms.disable_key(&alice(), SYM).await.expect("disable key");
    let e = f
        .kms
        .rotate_key_on_demand(&alice(), SYM)
        .await
        .expect_err("disabled");
    assert_eq!(name(&e), "DisabledException");
    f.kms.enable_key(&alice(), SYM).await.expect("enable key");
    f.kms
        .disable_key_rotation(&alice(), SYM)
        .await
        .expect("disable rotation");
    let s = f
        .kms
        .get_key_rotation_status(&alice(), SYM)
        .await
        .expect("status");
    assert!(!s.enabled);
    assert_eq!(s.next_rotation_date, None);
}

fn sign_input(key: &str, alg: &str, message: Vec<u8>, mtype: Option<&str>) -> SignInput {
    SignInput {
        key_id: key.into(),
        message: SecretBytes::new(message),
        message_type: mtype.map(str::to_owned),
        signing_algorithm: Some(alg.into()),
        signature: Vec::new(),
        dry_run: false,
    }
}

#[tokio::test]
async fn wrong_key_usage_and_algorithm_are_refused_before_the_hsm() {
    let f = fixture().await;
    let k = &f.kms;
    let e = k
        .sign_or_verify(
            &alice(),
            sign_input(SYM, "ECDSA_SHA_256", vec![1], None),
            false,
        )
        .await
        .expect_err("sign with AES");
    assert_eq!(name(&e), "InvalidKeyUsageException");
    let e = k
        .sign_or_verify(
            &alice(),
            sign_input(ECC, "ECDSA_SHA_384", vec![1], None),
            false,
        )
        .await
        .expect_err("P-256 with SHA-384");
    assert_eq!(name(&e), "InvalidKeyUsageException");
    let e = k
        .sign_or_verify(
            &alice(),
            sign_input(ECC, "RSASSA_PSS_SHA_256", vec![1], None),
            false,
        )
        .await
        .expect_err("RSA alg on ECC");
    assert_eq!(name(&e), "InvalidKeyUsageException");
    let e = k
        .sign_or_verify(
            &alice(),
            sign_input(ECC, "ECDSA_SHA_256", vec![0; 31], Some("DIGEST")),
            false,
        )
        .await
        .expect_err("short digest");
    assert_eq!(name(&e), "ValidationException");
    let e = k
        .sign_or_verify(
            &alice(),
            sign_input(ECC, "ECDSA_SHA_256", vec![0; 4097], None),
            false,
        )
        .await
        .expect_err("long message");
    assert_eq!(name(&e), "ValidationException");
    let mac = |key: &str, alg: &str| MacInput {
        key_id: key.into(),
        message: SecretBytes::new(vec![1]),
        mac_algorithm: Some(alg.into()),
        mac: Vec::new(),
        dry_run: false,
    };
    let e = k
        .mac(&alice(), mac(SYM, "HMAC_SHA_256"), false)
        .await
        .expect_err("mac with AES");
    assert_eq!(name(&e), "InvalidKeyUsageException");
    let e = k
        .mac(&alice(), mac(HMAC, "HMAC_SHA_512"), false)
        .await
        .expect_err("HMAC_256 with SHA-512");
    assert_eq!(name(&e), "InvalidKeyUsageException");
    let e = k
        .encrypt(
            &alice(),
            EncryptInput {
                key_id: HMAC.into(),
                plaintext: SecretBytes::new(vec![1]),
                context: Vec::new(),
                encryption_algorithm: None,
                dry_run: false,
            },
        )
        .await
        .expect_err("encrypt with HMAC key");
    assert_eq!(name(&e), "InvalidKeyUsageException");
    let e = k
        .get_public_key(&alice(), SYM)
        .await
        .expect_err("no public key");
    assert_eq!(name(&e), "UnsupportedOperationException");
}

#[tokio::test]
async fn describe_reports_algorithms_per_spec() {
    let f = fixture().await;
    let m = f.kms.describe_key(&alice(), ECC).await.expect("ecc");
    assert_eq!(m.signing_algorithms, vec!["ECDSA_SHA_256"]);
    assert!(m.encryption_algorithms.is_empty());
    let m = f.kms.describe_key(&alice(), HMAC).await.expect("hmac");
    assert_eq!(m.mac_algorithms, vec!["HMAC_SHA_256"]);
    let m = f.kms.describe_key(&alice(), SYM).await.expect("sym");
    assert_eq!(m.encryption_algorithms, vec!["SYMMETRIC_DEFAULT"]);
}
