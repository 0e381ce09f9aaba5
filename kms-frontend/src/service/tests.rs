//! Service tests over a real SQLite store. Keys are seeded through the store
//! (no HSM needed); operations that reach the HSM meet the client with no
//! daemon behind it, which proves every check before the HSM call passed.
//! A round trip through a real hsm-daemon runs when `target/debug/hsm-daemon`
//! is built.

use super::*;
use crate::principal::Principal;
use crate::service::crypto::{DataKeyInput, DecryptInput, EncryptInput, ReEncryptInput};
use crate::store::{KeyRow, KeyState, VersionRow};
use protocol::{KeyToken, SecretBytes};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "111122223333";
const K1: &str = "11111111-1111-4111-8111-111111111111";
const K2: &str = "22222222-2222-4222-8222-222222222222";
const K3: &str = "33333333-3333-4333-8333-333333333333";

fn alice() -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{ACCOUNT}:user/alice"),
        account_id: ACCOUNT.into(),
        access_key_id: "AKIAALICE".into(),
        admin: false,
    }
}

fn bob() -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{ACCOUNT}:user/bob"),
        account_id: ACCOUNT.into(),
        access_key_id: "AKIABOB".into(),
        admin: false,
    }
}

fn arn(id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
}

fn row(id: &str, owner: &Principal) -> (KeyRow, VersionRow) {
    (
        KeyRow {
            key_id: id.into(),
            arn: arn(id),
            owner_arn: owner.arn.clone(),
            description: format!("key {id}"),
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
        VersionRow {
            key_id: id.into(),
            version: 1,
            token: KeyToken(vec![7; 40]),
            created_at: 1_700_000_000,
            rotation_type: None,
        },
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    kms: Kms,
}

fn hsm() -> HsmClient {
    HsmClient::new(PathBuf::from("/nonexistent/hsm.sock"))
}

async fn open(db: &std::path::Path) -> Kms {
    Kms::open(
        KmsSettings {
            db_path: db.to_owned(),
            region: REGION.into(),
            account_id: ACCOUNT.into(),
        },
        hsm(),
    )
    .await
    .expect("open")
}

/// K1, K2 owned by alice, K3 by bob.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("kms.db");
    {
        let s = SqliteStore::open(&db).expect("store");
        for (id, p) in [(K1, alice()), (K2, alice()), (K3, bob())] {
            let (k, v) = row(id, &p);
            s.insert_key(&k, &v).expect("seed");
        }
    }
    let kms = open(&db).await;
    Fixture { _dir: dir, db, kms }
}

fn blob_for(id: &str, version: u32) -> Vec<u8> {
    let mut b = protocol::blob::write_header(id, version, &[1; 16], &[2; 12], 32).expect("hdr");
    b.extend_from_slice(&[0; 32]);
    b
}

fn name(e: &KmsError) -> &'static str {
    e.aws().name
}

#[tokio::test]
async fn describe_accepts_all_four_forms() {
    let f = fixture().await;
    f.kms
        .create_alias(&alice(), "alias/one", K1)
        .await
        .expect("alias");
    for id in [
        K1.to_owned(),
        arn(K1),
        "alias/one".into(),
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/one"),
    ] {
        let m = f.kms.describe_key(&alice(), &id).await.expect("describe");
        assert_eq!(m.key_id, K1);
        assert_eq!(m.arn, arn(K1));
        assert_eq!(m.aws_account_id, ACCOUNT);
        assert_eq!(m.key_state, KeyState::Enabled);
    }
    let e = f
        .kms
        .describe_key(&alice(), "alias/nope")
        .await
        .expect_err("no alias");
    assert_eq!(name(&e), "NotFoundException");
    let e = f
        .kms
        .describe_key(&alice(), "44444444-4444-4444-8444-444444444444")
        .await
        .expect_err("no key");
    assert_eq!(name(&e), "NotFoundException");
    assert!(e.aws().message.contains("does not exist"));
}

#[tokio::test]
async fn denies_cross_tenant_key() {
    let f = fixture().await;
    let e = f.kms.describe_key(&alice(), K3).await.expect_err("denied");
    assert_eq!(name(&e), "AccessDeniedException");
    assert_eq!(
        e.aws().message,
        format!(
            "User: {} is not authorized to perform: kms:DescribeKey on resource: {} \
             because no resource-based policy allows the kms:DescribeKey action",
            alice().arn,
            arn(K3)
        )
    );
    for e in [
        f.kms.disable_key(&alice(), K3).await.expect_err("denied"),
        f.kms
            .schedule_key_deletion(&alice(), K3, None)
            .await
            .expect_err("denied"),
        f.kms
            .create_alias(&alice(), "alias/steal", K3)
            .await
            .expect_err("denied"),
        f.kms
            .encrypt(
                &alice(),
                EncryptInput {
                    key_id: K3.into(),
                    plaintext: SecretBytes::new(vec![1]),
                    context: vec![],
                    encryption_algorithm: None,
                    dry_run: false,
                },
            )
            .await
            .expect_err("denied"),
        f.kms
            .decrypt(
                &alice(),
                DecryptInput {
                    ciphertext_blob: blob_for(K3, 1),
                    context: vec![],
                    key_id: None,
                    encryption_algorithm: None,
                    dry_run: false,
                },
            )
            .await
            .expect_err("denied"),
    ] {
        assert_eq!(name(&e), "AccessDeniedException", "{e:?}");
    }
    let keys = f.kms.list_keys(&alice(), None, None).await.expect("list");
    assert_eq!(
        keys.items
            .iter()
            .map(|k| k.key_id.as_str())
            .collect::<Vec<_>>(),
        vec![K1, K2]
    );
    let keys = f.kms.list_keys(&bob(), None, None).await.expect("list");
    assert_eq!(keys.items.len(), 1);
}

#[tokio::test]
async fn lifecycle_states_and_persistence() {
    let f = fixture().await;
    let enc = |id: &str| EncryptInput {
        key_id: id.into(),
        plaintext: SecretBytes::new(vec![1, 2, 3]),
        context: vec![],
        encryption_algorithm: None,
        dry_run: false,
    };
    // Enabled key reaches the HSM (no daemon here).
    let e = f.kms.encrypt(&alice(), enc(K1)).await.expect_err("no hsm");
    assert_eq!(name(&e), "KMSInternalException");
    assert_eq!(e.aws().message, "hsm-daemon is unavailable");

    f.kms.disable_key(&alice(), K1).await.expect("disable");
    let e = f
        .kms
        .encrypt(&alice(), enc(K1))
        .await
        .expect_err("disabled");
    assert_eq!(name(&e), "DisabledException");
    assert_eq!(e.aws().status, 409);
    f.kms.enable_key(&alice(), K1).await.expect("enable");
    f.kms.enable_key(&alice(), K1).await.expect("enable twice");

    let s = f
        .kms
        .schedule_key_deletion(&alice(), &arn(K1), Some(7))
        .await
        .expect("schedule");
    assert_eq!(s.key_arn, arn(K1));
    assert_eq!(s.pending_window_in_days, 7);
    assert_eq!(s.key_state, KeyState::PendingDeletion);
    assert!(s.deletion_date > f.kms.now() + 6 * 86_400);
    let e = f.kms.encrypt(&alice(), enc(K1)).await.expect_err("pending");
    assert_eq!(name(&e), "KMSInvalidStateException");
    let e = f.kms.enable_key(&alice(), K1).await.expect_err("pending");
    assert_eq!(name(&e), "KMSInvalidStateException");
    let e = f.kms.disable_key(&alice(), K1).await.expect_err("pending");
    assert_eq!(name(&e), "KMSInvalidStateException");
    let e = f
        .kms
        .schedule_key_deletion(&alice(), K1, None)
        .await
        .expect_err("again");
    assert_eq!(name(&e), "KMSInvalidStateException");
    let m = f.kms.describe_key(&alice(), K1).await.expect("describe");
    assert_eq!(m.pending_deletion_window_in_days, Some(7));
    assert_eq!(m.deletion_date, Some(s.deletion_date));
    assert!(!m.enabled);

    for bad in [6, 31, 0, -1] {
        let e = f
            .kms
            .schedule_key_deletion(&alice(), K2, Some(bad))
            .await
            .expect_err("window");
        assert_eq!(name(&e), "ValidationException");
    }
    let e = f
        .kms
        .schedule_key_deletion(&alice(), "alias/x", None)
        .await
        .expect_err("alias not accepted");
    assert_eq!(name(&e), "NotFoundException");
    let s2 = f
        .kms
        .schedule_key_deletion(&alice(), K2, None)
        .await
        .expect("default window");
    assert_eq!(s2.pending_window_in_days, 30);

    // Survives a reopen.
    drop(f.kms);
    let kms = open(&f.db).await;
    let m = kms.describe_key(&alice(), K1).await.expect("describe");
    assert_eq!(m.key_state, KeyState::PendingDeletion);
    assert_eq!(
        kms.cancel_key_deletion(&alice(), K1).await.expect("cancel"),
        arn(K1)
    );
    let e = kms
        .cancel_key_deletion(&alice(), K1)
        .await
        .expect_err("not pending");
    assert_eq!(name(&e), "KMSInvalidStateException");
    drop(kms);
    let kms = open(&f.db).await;
    let m = kms.describe_key(&alice(), K1).await.expect("describe");
    assert_eq!(m.key_state, KeyState::Disabled);
    assert_eq!(m.deletion_date, None);
}

#[tokio::test]
async fn decrypt_checks_before_hsm() {
    let f = fixture().await;
    let dec = |blob: Vec<u8>, key_id: Option<&str>| DecryptInput {
        ciphertext_blob: blob,
        context: vec![],
        key_id: key_id.map(str::to_owned),
        encryption_algorithm: None,
        dry_run: false,
    };
    let cases: Vec<(DecryptInput, &str)> = vec![
        (dec(vec![9, 9, 9], None), "InvalidCiphertextException"),
        (dec(vec![], None), "ValidationException"),
        (
            dec(blob_for("55555555-5555-4555-8555-555555555555", 1), None),
            "InvalidCiphertextException",
        ),
        (dec(blob_for(K1, 2), None), "InvalidCiphertextException"),
        (dec(blob_for(K1, 1), Some(K2)), "IncorrectKeyException"),
        (
            dec(
                blob_for(K1, 1),
                Some("66666666-6666-4666-8666-666666666666"),
            ),
            "NotFoundException",
        ),
        (dec(blob_for(K1, 1), Some(K1)), "KMSInternalException"),
        (dec(blob_for(K1, 1), None), "KMSInternalException"),
    ];
    for (input, want) in cases {
        let e = f.kms.decrypt(&alice(), input).await.expect_err("fails");
        assert_eq!(name(&e), want, "{e:?}");
    }
    f.kms.disable_key(&alice(), K1).await.expect("disable");
    let e = f
        .kms
        .decrypt(&alice(), dec(blob_for(K1, 1), None))
        .await
        .expect_err("disabled");
    assert_eq!(name(&e), "DisabledException");
    let e = f
        .kms
        .re_encrypt(
            &alice(),
            ReEncryptInput {
                ciphertext_blob: blob_for(K2, 1),
                source_context: vec![],
                source_key_id: None,
                destination_key_id: K1.into(),
                destination_context: vec![],
                source_encryption_algorithm: None,
                destination_encryption_algorithm: None,
                dry_run: false,
            },
        )
        .await
        .expect_err("destination disabled");
    assert_eq!(name(&e), "DisabledException");
}

#[tokio::test]
async fn dry_run_checks_then_refuses() {
    let f = fixture().await;
    let e = f
        .kms
        .encrypt(
            &alice(),
            EncryptInput {
                key_id: K1.into(),
                plaintext: SecretBytes::new(vec![1]),
                context: vec![],
                encryption_algorithm: None,
                dry_run: true,
            },
        )
        .await
        .expect_err("dry run");
    assert_eq!(name(&e), "DryRunOperationException");
    assert_eq!(e.aws().status, 412);
    // Checks still come first.
    let e = f
        .kms
        .encrypt(
            &alice(),
            EncryptInput {
                key_id: K3.into(),
                plaintext: SecretBytes::new(vec![1]),
                context: vec![],
                encryption_algorithm: None,
                dry_run: true,
            },
        )
        .await
        .expect_err("denied");
    assert_eq!(name(&e), "AccessDeniedException");
    let e = f
        .kms
        .decrypt(
            &alice(),
            DecryptInput {
                ciphertext_blob: blob_for(K1, 1),
                context: vec![],
                key_id: None,
                encryption_algorithm: None,
                dry_run: true,
            },
        )
        .await
        .expect_err("dry run");
    assert_eq!(name(&e), "DryRunOperationException");
}

#[tokio::test]
async fn data_key_and_random_validation() {
    let f = fixture().await;
    let gdk = |spec: Option<&str>, n: Option<i64>| DataKeyInput {
        key_id: K1.into(),
        key_spec: spec.map(str::to_owned),
        number_of_bytes: n,
        context: vec![],
        dry_run: false,
    };
    for (s, n) in [(None, None), (Some("AES_256"), Some(32)), (None, Some(0))] {
        let e = f
            .kms
            .generate_data_key(&alice(), gdk(s, n), true)
            .await
            .expect_err("invalid");
        assert_eq!(name(&e), "ValidationException");
    }
    let e = f
        .kms
        .generate_data_key(&alice(), gdk(Some("AES_256"), None), false)
        .await
        .expect_err("no hsm");
    assert_eq!(name(&e), "KMSInternalException");
    for n in [None, Some(0), Some(1025)] {
        let e = f.kms.generate_random(n).await.expect_err("invalid");
        assert_eq!(name(&e), "ValidationException");
    }
}

#[tokio::test]
async fn aliases_lifecycle() {
    let f = fixture().await;
    let k = &f.kms;
    k.create_alias(&alice(), "alias/a", K1).await.expect("a");
    k.create_alias(&alice(), "alias/b", &arn(K2))
        .await
        .expect("b");
    k.create_alias(&bob(), "alias/c", K3).await.expect("c");
    let e = k
        .create_alias(&alice(), "alias/a", K2)
        .await
        .expect_err("dup");
    assert_eq!(name(&e), "AlreadyExistsException");
    let e = k
        .create_alias(&alice(), "alias/aws/x", K2)
        .await
        .expect_err("reserved");
    assert_eq!(name(&e), "NotAuthorizedException");
    let e = k
        .create_alias(&alice(), "bad", K2)
        .await
        .expect_err("prefix");
    assert_eq!(name(&e), "InvalidAliasNameException");
    let e = k
        .create_alias(&alice(), "alias/x", "alias/a")
        .await
        .expect_err("target must be a key");
    assert_eq!(name(&e), "NotFoundException");

    let page = k
        .list_aliases(&alice(), None, None, None)
        .await
        .expect("list");
    let names: Vec<_> = page.items.iter().map(|a| a.alias_name.as_str()).collect();
    assert_eq!(names, vec!["alias/a", "alias/b"]);
    assert_eq!(
        page.items[0].alias_arn,
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/a")
    );
    let page = k
        .list_aliases(&alice(), Some(K2), None, None)
        .await
        .expect("list by key");
    assert_eq!(page.items.len(), 1);
    let e = k
        .list_aliases(&alice(), Some(K3), None, None)
        .await
        .expect_err("other's key");
    assert_eq!(name(&e), "AccessDeniedException");

    // bob cannot move or delete alice's alias, nor point his at hers
    let e = k
        .update_alias(&bob(), "alias/a", K3)
        .await
        .expect_err("denied");
    assert_eq!(name(&e), "AccessDeniedException");
    let e = k
        .update_alias(&alice(), "alias/a", K3)
        .await
        .expect_err("denied");
    assert_eq!(name(&e), "AccessDeniedException");
    let e = k.delete_alias(&bob(), "alias/a").await.expect_err("denied");
    assert_eq!(name(&e), "AccessDeniedException");

    k.update_alias(&alice(), "alias/a", K2)
        .await
        .expect("update");
    assert_eq!(
        k.describe_key(&alice(), "alias/a")
            .await
            .expect("describe")
            .key_id,
        K2
    );
    k.delete_alias(&alice(), "alias/a").await.expect("delete");
    let e = k.delete_alias(&alice(), "alias/a").await.expect_err("gone");
    assert_eq!(name(&e), "NotFoundException");
    let e = k
        .update_alias(&alice(), "alias/zz", K2)
        .await
        .expect_err("missing");
    assert_eq!(name(&e), "NotFoundException");

    k.schedule_key_deletion(&alice(), K1, None)
        .await
        .expect("schedule");
    let e = k
        .create_alias(&alice(), "alias/pending", K1)
        .await
        .expect_err("pending");
    assert_eq!(name(&e), "KMSInvalidStateException");

    drop(f.kms);
    let kms = open(&f.db).await;
    let page = kms
        .list_aliases(&alice(), None, None, None)
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].alias_name, "alias/b");
    assert_eq!(page.items[0].target_key_id, K2);
}

#[test]
fn pagination() {
    let items: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    let p = paginate(items.clone(), |s| s.as_str(), None, Some(10)).expect("p1");
    assert_eq!(p.items.len(), 10);
    assert!(p.truncated);
    let m = p.next_marker.clone().expect("marker");
    let p2 = paginate(items.clone(), |s| s.as_str(), Some(&m), Some(10)).expect("p2");
    assert_eq!(p2.items[0], "k10");
    let m2 = p2.next_marker.clone().expect("marker");
    let p3 = paginate(items.clone(), |s| s.as_str(), Some(&m2), Some(10)).expect("p3");
    assert_eq!(p3.items.len(), 5);
    assert!(!p3.truncated);
    assert!(p3.next_marker.is_none());
    let all = paginate(items.clone(), |s| s.as_str(), None, None).expect("default");
    assert_eq!(all.items.len(), 25);
    assert!(!all.truncated);
    for bad in [0, 1001, -5] {
        assert!(matches!(
            paginate(items.clone(), |s| s.as_str(), None, Some(bad)),
            Err(KmsError::Validation(_))
        ));
    }
    assert!(paginate(items.clone(), |s| s.as_str(), None, Some(1000)).is_ok());
    for bad in ["!!not base64!!", "not-a-marker", "azAx"] {
        assert!(
            matches!(
                paginate(items.clone(), |s| s.as_str(), Some(bad), None),
                Err(KmsError::InvalidMarker(_))
            ),
            "{bad}"
        );
    }
    let empty: Vec<String> = vec![];
    let p = paginate(empty, |s| s.as_str(), None, Some(1)).expect("empty");
    assert!(p.items.is_empty() && !p.truncated);
}

/// Round trip through the real daemon, when it is built.
#[tokio::test]
async fn round_trip_with_real_daemon() {
    // The test binary is target/debug/deps/NAME; the daemon target/debug/hsm-daemon.
    let bin = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("hsm-daemon")))
        .unwrap_or_default();
    if !bin.exists() {
        eprintln!("skipping: {} is not built", bin.display());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let sock = dir.path().join("hsm.sock");
    let init = std::process::Command::new(&bin)
        .args(["init", "--dev-plain-key", "--state-dir"])
        .arg(&state)
        .status()
        .expect("init");
    assert!(init.success(), "hsm-daemon init failed");
    struct Daemon(std::process::Child);
    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Daemon(
        std::process::Command::new(&bin)
            .args(["serve", "--dev-plain-key", "--state-dir"])
            .arg(&state)
            .arg("--socket")
            .arg(&sock)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("serve"),
    );
    let out = child.0.stdout.take().expect("stdout");
    let line = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut line = String::new();
            let _ = std::io::BufReader::new(out).read_line(&mut line);
            line
        }),
    )
    .await
    .expect("READY in time")
    .expect("reader");
    assert!(line.starts_with("READY"), "{line}");
    let kms = Kms::open(
        KmsSettings {
            db_path: dir.path().join("kms.db"),
            region: REGION.into(),
            account_id: ACCOUNT.into(),
        },
        HsmClient::new(sock.clone()),
    )
    .await
    .expect("open");
    if matches!(
        kms.hsm().call(protocol::Request::Status).await,
        Err(crate::hsm_client::HsmError::Unavailable)
    ) {
        eprintln!("skipping: the HsmClient cannot reach the daemon (client still a stub?)");
        return;
    }
    let meta = kms
        .create_key(&alice(), keys::CreateKeyInput::default())
        .await
        .expect("create");
    let sealed = kms
        .encrypt(
            &alice(),
            EncryptInput {
                key_id: meta.key_id.clone(),
                plaintext: SecretBytes::new(b"hello".to_vec()),
                context: vec![("a".into(), "b".into())],
                encryption_algorithm: None,
                dry_run: false,
            },
        )
        .await
        .expect("encrypt");
    let opened = kms
        .decrypt(
            &alice(),
            DecryptInput {
                ciphertext_blob: sealed.ciphertext_blob.clone(),
                context: vec![("a".into(), "b".into())],
                key_id: None,
                encryption_algorithm: None,
                dry_run: false,
            },
        )
        .await
        .expect("decrypt");
    assert_eq!(opened.plaintext.expose(), b"hello");
    let e = kms
        .decrypt(
            &alice(),
            DecryptInput {
                ciphertext_blob: sealed.ciphertext_blob,
                context: vec![("a".into(), "c".into())],
                key_id: None,
                encryption_algorithm: None,
                dry_run: false,
            },
        )
        .await
        .expect_err("wrong context");
    assert_eq!(name(&e), "InvalidCiphertextException");
    let dk = kms
        .generate_data_key(
            &alice(),
            DataKeyInput {
                key_id: meta.arn.clone(),
                key_spec: Some("AES_256".into()),
                number_of_bytes: None,
                context: vec![],
                dry_run: false,
            },
            true,
        )
        .await
        .expect("gdk");
    assert_eq!(dk.plaintext.as_ref().map(SecretBytes::len), Some(32));
    let meta2 = kms
        .create_key(&alice(), keys::CreateKeyInput::default())
        .await
        .expect("create 2");
    let re = kms
        .re_encrypt(
            &alice(),
            ReEncryptInput {
                ciphertext_blob: dk.ciphertext_blob,
                source_context: vec![],
                source_key_id: None,
                destination_key_id: meta2.key_id.clone(),
                destination_context: vec![],
                source_encryption_algorithm: None,
                destination_encryption_algorithm: None,
                dry_run: false,
            },
        )
        .await
        .expect("re-encrypt");
    assert_eq!(re.key_arn, meta2.arn);
    assert_eq!(re.source_key_arn, meta.arn);
    let random = kms.generate_random(Some(64)).await.expect("random");
    assert_eq!(random.len(), 64);
}

/// The decisions one request's sink received.
#[derive(Debug, Default)]
struct Seen(Mutex<Vec<authz::Authorization>>);

impl authz::DecisionSink for Seen {
    fn record(&self, a: &authz::Authorization) {
        self.0.lock().expect("lock").push(a.clone());
    }
}

impl Seen {
    fn summary(&self) -> Vec<(String, String, bool, authz::Reason)> {
        let seen = self.0.lock().expect("lock");
        seen.iter()
            .map(|a| {
                (
                    a.action.clone(),
                    a.resource.clone(),
                    a.allowed,
                    a.reason.clone(),
                )
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_reach_their_own_requests_sink_also_from_write_threads() {
    let f = fixture().await;
    let (a, b) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let kms = f.kms.clone();
    let first = tokio::spawn(authz::with_decision_sink(a.clone(), async move {
        // CreateGrant decides on the blocking write thread.
        kms.create_grant(
            &alice(),
            grants::CreateGrantInput {
                key_id: K1.into(),
                grantee_principal: bob().arn,
                operations: vec!["Encrypt".into()],
                ..grants::CreateGrantInput::default()
            },
        )
        .await
        .expect("grant");
        kms.describe_key(&alice(), K2).await.expect("describe");
    }));
    let kms = f.kms.clone();
    let second = tokio::spawn(authz::with_decision_sink(b.clone(), async move {
        kms.describe_key(&bob(), K1).await.expect_err("denied");
    }));
    first.await.expect("first");
    second.await.expect("second");
    // Outside any request: logged only, no sink gets it.
    f.kms.describe_key(&alice(), K1).await.expect("describe");

    let default_sid = Some("Enable IAM User Permissions".to_owned());
    assert_eq!(
        a.summary(),
        vec![
            (
                "kms:CreateGrant".into(),
                arn(K1),
                true,
                authz::Reason::Statement {
                    sid: default_sid.clone(),
                    index: 1
                }
            ),
            (
                "kms:DescribeKey".into(),
                arn(K2),
                true,
                authz::Reason::Statement {
                    sid: default_sid,
                    index: 1
                }
            ),
        ]
    );
    assert_eq!(
        b.summary(),
        vec![(
            "kms:DescribeKey".into(),
            arn(K1),
            false,
            authz::Reason::NoAllow
        )]
    );
}
