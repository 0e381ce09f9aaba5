//! Every KMS operation through the real `aws-sdk-kms`: happy paths, the
//! documented errors (exact AWS error codes) and tenant separation.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeSet, HashMap};

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeySpec, KeyManagerType, KeySpec, KeyState, KeyUsageType, OriginType,
};
use hsm_kms_tests::{TestEnv, alias_arn, assert_err, key_arn};

async fn create_key(c: &Client) -> String {
    let out = c.create_key().send().await.expect("CreateKey");
    out.key_metadata().expect("KeyMetadata").key_id().to_owned()
}

async fn encrypt(c: &Client, key: &str, pt: &[u8], ctx: &[(&str, &str)]) -> Vec<u8> {
    let mut req = c.encrypt().key_id(key).plaintext(Blob::new(pt));
    for (k, v) in ctx {
        req = req.encryption_context(*k, *v);
    }
    req.send()
        .await
        .expect("Encrypt")
        .ciphertext_blob()
        .expect("CiphertextBlob")
        .as_ref()
        .to_vec()
}

async fn decrypt(c: &Client, blob: &[u8], ctx: &[(&str, &str)]) -> Vec<u8> {
    let mut req = c.decrypt().ciphertext_blob(Blob::new(blob));
    for (k, v) in ctx {
        req = req.encryption_context(*k, *v);
    }
    req.send()
        .await
        .expect("Decrypt")
        .plaintext()
        .expect("Plaintext")
        .as_ref()
        .to_vec()
}

async fn key_state(c: &Client, key: &str) -> KeyState {
    c.describe_key()
        .key_id(key)
        .send()
        .await
        .expect("DescribeKey")
        .key_metadata()
        .expect("KeyMetadata")
        .key_state()
        .expect("KeyState")
        .clone()
}

#[tokio::test]
async fn create_key_returns_full_metadata() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let out = c
        .create_key()
        .description("payments key")
        .send()
        .await
        .expect("CreateKey");
    let m = out.key_metadata().expect("KeyMetadata");
    let id = m.key_id();
    assert_eq!(id.len(), 36, "key id is a UUID: {id}");
    assert_eq!(id.matches('-').count(), 4, "key id is a UUID: {id}");
    assert_eq!(m.arn(), Some(key_arn(id).as_str()));
    assert_eq!(m.aws_account_id(), Some(hsm_kms_tests::ACCOUNT_ID));
    assert_eq!(m.description(), Some("payments key"));
    assert!(m.enabled());
    assert_eq!(m.key_state(), Some(&KeyState::Enabled));
    assert_eq!(m.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    assert_eq!(m.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(m.origin(), Some(&OriginType::AwsKms));
    assert_eq!(m.key_manager(), Some(&KeyManagerType::Customer));
    assert!(m.creation_date().is_some(), "CreationDate");
    assert!(m.deletion_date().is_none());
}

#[tokio::test]
async fn describe_key_by_id_arn_alias_and_alias_arn() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    c.create_alias()
        .alias_name("alias/describe-me")
        .target_key_id(&id)
        .send()
        .await
        .expect("CreateAlias");
    for name in [
        id.clone(),
        key_arn(&id),
        "alias/describe-me".to_owned(),
        alias_arn("alias/describe-me"),
    ] {
        let out = c
            .describe_key()
            .key_id(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeKey {name}: {e:?}"));
        let m = out.key_metadata().unwrap();
        assert_eq!(m.key_id(), id, "DescribeKey {name}");
        assert_eq!(m.arn(), Some(key_arn(&id).as_str()));
    }
}

#[tokio::test]
async fn unknown_key_is_not_found() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let info = assert_err!(
        c.describe_key().key_id(missing).send().await,
        "NotFoundException"
    );
    assert_eq!(info.status, Some(400));
    assert_err!(
        c.encrypt()
            .key_id(missing)
            .plaintext(Blob::new(b"x"))
            .send()
            .await,
        "NotFoundException"
    );
    assert_err!(
        c.describe_key().key_id("alias/nope").send().await,
        "NotFoundException"
    );
    assert_err!(
        c.generate_data_key()
            .key_id(key_arn(missing))
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await,
        "NotFoundException"
    );
    assert_err!(
        c.enable_key().key_id(missing).send().await,
        "NotFoundException"
    );
}

#[tokio::test]
async fn list_keys_paginates_with_limit_and_marker() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let mut created = BTreeSet::new();
    for _ in 0..3 {
        created.insert(create_key(&c).await);
    }
    let all = c.list_keys().send().await.expect("ListKeys");
    assert!(!all.truncated());
    let ids: BTreeSet<String> = all
        .keys()
        .iter()
        .map(|k| k.key_id().unwrap().to_owned())
        .collect();
    assert_eq!(ids, created);
    for k in all.keys() {
        assert_eq!(k.key_arn(), Some(key_arn(k.key_id().unwrap()).as_str()));
    }

    let p1 = c
        .list_keys()
        .limit(2)
        .send()
        .await
        .expect("ListKeys page 1");
    assert_eq!(p1.keys().len(), 2);
    assert!(p1.truncated(), "page 1 is truncated");
    let marker = p1.next_marker().expect("NextMarker on a truncated page");
    let p2 = c
        .list_keys()
        .limit(2)
        .marker(marker)
        .send()
        .await
        .expect("ListKeys page 2");
    assert_eq!(p2.keys().len(), 1);
    assert!(!p2.truncated(), "last page is not truncated");
    assert!(p2.next_marker().is_none());
    let paged: BTreeSet<String> = p1
        .keys()
        .iter()
        .chain(p2.keys())
        .map(|k| k.key_id().unwrap().to_owned())
        .collect();
    assert_eq!(paged, created, "pages cover every key exactly once");
}

#[tokio::test]
async fn encrypt_decrypt_round_trip_without_context() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let out = c
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"hello kms"))
        .send()
        .await
        .expect("Encrypt");
    assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
    let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
    assert!(
        !blob.windows(9).any(|w| w == b"hello kms"),
        "plaintext visible in blob"
    );
    // Decrypt needs no KeyId for symmetric keys.
    let d = c
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .send()
        .await
        .expect("Decrypt");
    assert_eq!(d.plaintext().unwrap().as_ref(), b"hello kms");
    assert_eq!(d.key_id(), Some(key_arn(&id).as_str()));
    // With the KeyId given it works too.
    let d = c
        .decrypt()
        .key_id(&id)
        .ciphertext_blob(Blob::new(blob))
        .send()
        .await
        .expect("Decrypt with KeyId");
    assert_eq!(d.plaintext().unwrap().as_ref(), b"hello kms");
}

#[tokio::test]
async fn encrypt_decrypt_round_trip_with_context_and_max_size() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let ctx = [("tenant", "acme"), ("purpose", "test")];
    let pt: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let blob = encrypt(&c, &id, &pt, &ctx).await;
    // Context order does not matter.
    let reversed = [("purpose", "test"), ("tenant", "acme")];
    assert_eq!(decrypt(&c, &blob, &reversed).await, pt);
    // Two encryptions of the same plaintext differ.
    let blob2 = encrypt(&c, &id, &pt, &ctx).await;
    assert_ne!(blob, blob2);
}

#[tokio::test]
async fn encrypt_rejects_4097_byte_plaintext() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let info = assert_err!(
        c.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(vec![7u8; 4097]))
            .send()
            .await,
        "ValidationException"
    );
    assert_eq!(info.status, Some(400));
}

#[tokio::test]
async fn decrypt_rejects_wrong_or_missing_context() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let blob = encrypt(&c, &id, b"secret", &[("k", "v")]).await;
    let wrong_value = c
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .encryption_context("k", "w")
        .send()
        .await;
    assert_err!(wrong_value, "InvalidCiphertextException");
    let extra_pair = c
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .encryption_context("k", "v")
        .encryption_context("x", "y")
        .send()
        .await;
    assert_err!(extra_pair, "InvalidCiphertextException");
    let missing = c.decrypt().ciphertext_blob(Blob::new(blob)).send().await;
    assert_err!(missing, "InvalidCiphertextException");
    // And a blob made without context does not decrypt with one.
    let plain_blob = encrypt(&c, &id, b"secret", &[]).await;
    let added = c
        .decrypt()
        .ciphertext_blob(Blob::new(plain_blob))
        .encryption_context("k", "v")
        .send()
        .await;
    assert_err!(added, "InvalidCiphertextException");
}

#[tokio::test]
async fn decrypt_rejects_tampered_blob() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let blob = encrypt(&c, &id, b"sixteen byte msg", &[]).await;
    let n = usize::from(blob[1]);
    assert_eq!(blob[0], 1, "blob format version");
    assert_eq!(
        &blob[2..2 + n],
        id.as_bytes(),
        "blob header names the key id"
    );
    assert_eq!(
        blob.len(),
        2 + n + 4 + 16 + 12 + 16 + 16,
        "header + ciphertext + tag"
    );
    let positions = [
        ("format byte", 0),
        ("header salt", 2 + n + 4),
        ("header nonce", 2 + n + 4 + 16),
        ("body", 2 + n + 4 + 16 + 12),
        ("tag", blob.len() - 1),
    ];
    for (what, pos) in positions {
        let mut bad = blob.clone();
        bad[pos] ^= 0x01;
        let res = c.decrypt().ciphertext_blob(Blob::new(bad)).send().await;
        match res {
            Ok(_) => panic!("tampered {what} decrypted"),
            Err(e) => assert_eq!(
                e.as_service_error()
                    .and_then(aws_sdk_kms::error::ProvideErrorMetadata::code),
                Some("InvalidCiphertextException"),
                "tampered {what}: {e:?}"
            ),
        }
    }
    for cut in [1, 16, blob.len() - 1] {
        let res = c
            .decrypt()
            .ciphertext_blob(Blob::new(blob[..blob.len() - cut].to_vec()))
            .send()
            .await;
        assert_err!(res, "InvalidCiphertextException");
    }
    // The original still decrypts.
    assert_eq!(decrypt(&c, &blob, &[]).await, b"sixteen byte msg");
}

#[tokio::test]
async fn decrypt_with_other_key_id_is_incorrect_key() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    let blob2 = encrypt(&c, &k2, b"under k2", &[]).await;
    let res = c
        .decrypt()
        .key_id(&k1)
        .ciphertext_blob(Blob::new(blob2))
        .send()
        .await;
    assert_err!(res, "IncorrectKeyException");
}

#[tokio::test]
async fn generate_data_key_specs_and_lengths() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let cases = [
        (Some(DataKeySpec::Aes256), None, 32),
        (Some(DataKeySpec::Aes128), None, 16),
        (None, Some(64), 64),
        (None, Some(1), 1),
        (None, Some(1024), 1024),
    ];
    for (spec, n, len) in cases {
        let out = c
            .generate_data_key()
            .key_id(&id)
            .set_key_spec(spec.clone())
            .set_number_of_bytes(n)
            .encryption_context("app", "gdk")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GenerateDataKey {spec:?} {n:?}: {e:?}"));
        assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
        let pt = out.plaintext().unwrap().as_ref().to_vec();
        assert_eq!(pt.len(), len, "{spec:?} {n:?}");
        let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
        assert_eq!(decrypt(&c, &blob, &[("app", "gdk")]).await, pt);
    }
    let both = c
        .generate_data_key()
        .key_id(&id)
        .key_spec(DataKeySpec::Aes256)
        .number_of_bytes(32)
        .send()
        .await;
    assert_err!(both, "ValidationException");
    let neither = c.generate_data_key().key_id(&id).send().await;
    assert_err!(neither, "ValidationException");
    let too_many = c
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(1025)
        .send()
        .await;
    assert_err!(too_many, "ValidationException");
}

#[tokio::test]
async fn generate_data_key_without_plaintext_decrypts() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let out = c
        .generate_data_key_without_plaintext()
        .key_id(&id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("GenerateDataKeyWithoutPlaintext");
    assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
    let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
    let pt = decrypt(&c, &blob, &[]).await;
    assert_eq!(pt.len(), 32);
    assert_ne!(pt, vec![0u8; 32]);
}

#[tokio::test]
async fn re_encrypt_to_another_key_with_contexts() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    let blob = encrypt(&c, &k1, b"move me", &[("src", "1")]).await;
    let out = c
        .re_encrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .source_encryption_context("src", "1")
        .destination_key_id(&k2)
        .destination_encryption_context("dst", "2")
        .send()
        .await
        .expect("ReEncrypt");
    assert_eq!(out.source_key_id(), Some(key_arn(&k1).as_str()));
    assert_eq!(out.key_id(), Some(key_arn(&k2).as_str()));
    let new_blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
    let d = c
        .decrypt()
        .ciphertext_blob(Blob::new(new_blob.clone()))
        .encryption_context("dst", "2")
        .send()
        .await
        .expect("Decrypt re-encrypted");
    assert_eq!(d.plaintext().unwrap().as_ref(), b"move me");
    assert_eq!(d.key_id(), Some(key_arn(&k2).as_str()));
    // The new blob is bound to the destination context.
    let res = c
        .decrypt()
        .ciphertext_blob(Blob::new(new_blob))
        .encryption_context("src", "1")
        .send()
        .await;
    assert_err!(res, "InvalidCiphertextException");
    // The wrong source context is refused.
    let res = c
        .re_encrypt()
        .ciphertext_blob(Blob::new(blob))
        .source_encryption_context("src", "2")
        .destination_key_id(&k2)
        .send()
        .await;
    assert_err!(res, "InvalidCiphertextException");
}

#[tokio::test]
async fn generate_random_lengths_and_bounds() {
    let env = TestEnv::start();
    let c = env.client("alice");
    for n in [1, 32, 1024] {
        let out = c
            .generate_random()
            .number_of_bytes(n)
            .send()
            .await
            .expect("GenerateRandom");
        assert_eq!(out.plaintext().unwrap().as_ref().len(), n as usize);
    }
    let a = c
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let b = c
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    assert_ne!(a.plaintext(), b.plaintext());
    for n in [0, 1025] {
        assert_err!(
            c.generate_random().number_of_bytes(n).send().await,
            "ValidationException"
        );
    }
}

#[tokio::test]
async fn disabled_key_refuses_crypto_until_enabled() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let blob = encrypt(&c, &id, b"before", &[]).await;
    c.disable_key()
        .key_id(&id)
        .send()
        .await
        .expect("DisableKey");
    let m = c.describe_key().key_id(&id).send().await.unwrap();
    let m = m.key_metadata().unwrap();
    assert_eq!(m.key_state(), Some(&KeyState::Disabled));
    assert!(!m.enabled());
    let info = assert_err!(
        c.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(b"x"))
            .send()
            .await,
        "DisabledException"
    );
    assert_eq!(info.status, Some(409));
    assert_err!(
        c.decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .send()
            .await,
        "DisabledException"
    );
    assert_err!(
        c.generate_data_key()
            .key_id(&id)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await,
        "DisabledException"
    );
    c.enable_key().key_id(&id).send().await.expect("EnableKey");
    assert_eq!(key_state(&c, &id).await, KeyState::Enabled);
    assert_eq!(decrypt(&c, &blob, &[]).await, b"before");
}

#[tokio::test]
async fn schedule_and_cancel_key_deletion() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let blob = encrypt(&c, &id, b"doomed", &[]).await;
    for days in [6, 31] {
        assert_err!(
            c.schedule_key_deletion()
                .key_id(&id)
                .pending_window_in_days(days)
                .send()
                .await,
            "ValidationException"
        );
    }
    assert_eq!(key_state(&c, &id).await, KeyState::Enabled);
    let out = c
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("ScheduleKeyDeletion");
    assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
    assert_eq!(out.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(out.pending_window_in_days(), Some(7));
    let deletion = out.deletion_date().expect("DeletionDate").secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = (deletion - now) as f64 / 86_400.0;
    assert!(
        (6.9..=7.1).contains(&days),
        "DeletionDate is ~7 days out: {days}"
    );
    let m = c.describe_key().key_id(&id).send().await.unwrap();
    let m = m.key_metadata().unwrap();
    assert_eq!(m.key_state(), Some(&KeyState::PendingDeletion));
    assert!(m.deletion_date().is_some());
    let info = assert_err!(
        c.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(b"x"))
            .send()
            .await,
        "KMSInvalidStateException"
    );
    assert_eq!(info.status, Some(409));
    assert_err!(
        c.decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .send()
            .await,
        "KMSInvalidStateException"
    );
    let out = c
        .cancel_key_deletion()
        .key_id(&id)
        .send()
        .await
        .expect("CancelKeyDeletion");
    assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
    assert_eq!(key_state(&c, &id).await, KeyState::Disabled);
    c.enable_key().key_id(&id).send().await.expect("EnableKey");
    assert_eq!(decrypt(&c, &blob, &[]).await, b"doomed");
    // 30 is the upper bound and is accepted.
    let out = c
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(30)
        .send()
        .await
        .expect("ScheduleKeyDeletion 30");
    assert_eq!(out.pending_window_in_days(), Some(30));
}

#[tokio::test]
async fn aliases_create_update_delete_list() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    c.create_alias()
        .alias_name("alias/app")
        .target_key_id(&k1)
        .send()
        .await
        .expect("CreateAlias");
    assert_err!(
        c.create_alias()
            .alias_name("alias/app")
            .target_key_id(&k2)
            .send()
            .await,
        "AlreadyExistsException"
    );
    assert_err!(
        c.create_alias()
            .alias_name("no-prefix")
            .target_key_id(&k1)
            .send()
            .await,
        "InvalidAliasNameException"
    );
    assert_err!(
        c.create_alias()
            .alias_name("alias/to-nowhere")
            .target_key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
            .send()
            .await,
        "NotFoundException"
    );
    // Encrypt through the alias, decrypt without a KeyId.
    let blob = encrypt(&c, "alias/app", b"via alias", &[]).await;
    assert_eq!(&blob[2..2 + usize::from(blob[1])], k1.as_bytes());

    let list = c.list_aliases().send().await.expect("ListAliases");
    let mine: HashMap<String, String> = list
        .aliases()
        .iter()
        .filter(|a| !a.alias_name().unwrap_or("").starts_with("alias/aws/"))
        .map(|a| {
            (
                a.alias_name().unwrap().to_owned(),
                a.target_key_id().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(mine, HashMap::from([("alias/app".to_owned(), k1.clone())]));
    let entry = list
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/app"))
        .unwrap();
    assert_eq!(entry.alias_arn(), Some(alias_arn("alias/app").as_str()));

    c.update_alias()
        .alias_name("alias/app")
        .target_key_id(&k2)
        .send()
        .await
        .expect("UpdateAlias");
    let m = c.describe_key().key_id("alias/app").send().await.unwrap();
    assert_eq!(m.key_metadata().unwrap().key_id(), k2);
    let by_key = c.list_aliases().key_id(&k2).send().await.unwrap();
    let names: Vec<_> = by_key
        .aliases()
        .iter()
        .map(|a| a.alias_name().unwrap())
        .collect();
    assert_eq!(names, ["alias/app"]);
    let by_key1 = c.list_aliases().key_id(&k1).send().await.unwrap();
    assert!(by_key1.aliases().is_empty(), "{:?}", by_key1.aliases());
    assert_err!(
        c.update_alias()
            .alias_name("alias/unknown")
            .target_key_id(&k2)
            .send()
            .await,
        "NotFoundException"
    );

    c.delete_alias()
        .alias_name("alias/app")
        .send()
        .await
        .expect("DeleteAlias");
    assert_err!(
        c.delete_alias().alias_name("alias/app").send().await,
        "NotFoundException"
    );
    assert_err!(
        c.describe_key().key_id("alias/app").send().await,
        "NotFoundException"
    );
    // The key itself is untouched, and the old blob still decrypts.
    assert_eq!(decrypt(&c, &blob, &[]).await, b"via alias");
}

#[tokio::test]
async fn denies_cross_tenant_key() {
    let env = TestEnv::start();
    let alice = env.client("alice");
    let bob = env.client("bob");
    let id = create_key(&alice).await;
    let blob = encrypt(&alice, &id, b"alice only", &[]).await;
    let bob_key = create_key(&bob).await;

    assert_err!(
        bob.describe_key().key_id(&id).send().await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(b"x"))
            .send()
            .await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .send()
            .await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.generate_data_key()
            .key_id(key_arn(&id))
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.disable_key().key_id(&id).send().await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.create_alias()
            .alias_name("alias/bobs-view")
            .target_key_id(&id)
            .send()
            .await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.re_encrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .destination_key_id(&bob_key)
            .send()
            .await,
        "AccessDeniedException"
    );

    let bobs: Vec<String> = bob
        .list_keys()
        .send()
        .await
        .unwrap()
        .keys()
        .iter()
        .map(|k| k.key_id().unwrap().to_owned())
        .collect();
    assert_eq!(
        bobs,
        std::slice::from_ref(&bob_key),
        "bob sees only his own key"
    );
    let alices: Vec<String> = alice
        .list_keys()
        .send()
        .await
        .unwrap()
        .keys()
        .iter()
        .map(|k| k.key_id().unwrap().to_owned())
        .collect();
    assert_eq!(alices, std::slice::from_ref(&id));
    // Alice's key is still enabled and usable by alice.
    assert_eq!(key_state(&alice, &id).await, KeyState::Enabled);
    assert_eq!(decrypt(&alice, &blob, &[]).await, b"alice only");
}

#[tokio::test]
async fn list_keys_rejects_bad_limit_and_marker() {
    let env = TestEnv::start();
    let c = env.client("alice");
    create_key(&c).await;
    for limit in [0, 1001] {
        assert_err!(
            c.list_keys().limit(limit).send().await,
            "ValidationException"
        );
    }
    assert_err!(
        c.list_keys().marker("not-a-marker").send().await,
        "InvalidMarkerException"
    );
    let out = c.list_keys().limit(1000).send().await.expect("Limit 1000");
    assert_eq!(out.keys().len(), 1);
}

#[tokio::test]
async fn key_state_transitions_refused_in_the_wrong_state() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    // Cancelling a deletion that was never scheduled.
    assert_err!(
        c.cancel_key_deletion().key_id(&id).send().await,
        "KMSInvalidStateException"
    );
    c.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    // Scheduling twice, enabling or disabling a key pending deletion.
    assert_err!(
        c.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await,
        "KMSInvalidStateException"
    );
    assert_err!(
        c.enable_key().key_id(&id).send().await,
        "KMSInvalidStateException"
    );
    assert_err!(
        c.disable_key().key_id(&id).send().await,
        "KMSInvalidStateException"
    );
    assert_err!(
        c.generate_data_key()
            .key_id(&id)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await,
        "KMSInvalidStateException"
    );
    // DescribeKey still works and ListKeys still lists it.
    assert_eq!(key_state(&c, &id).await, KeyState::PendingDeletion);
    let listed = c.list_keys().send().await.unwrap();
    assert_eq!(listed.keys().len(), 1);
}

#[tokio::test]
async fn re_encrypt_to_disabled_key_is_refused() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    let blob = encrypt(&c, &k1, b"x", &[]).await;
    c.disable_key().key_id(&k2).send().await.unwrap();
    assert_err!(
        c.re_encrypt()
            .ciphertext_blob(Blob::new(blob))
            .destination_key_id(&k2)
            .send()
            .await,
        "DisabledException"
    );
}

#[tokio::test]
async fn decrypt_with_alias_key_id() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    for (alias, key) in [("alias/one", &k1), ("alias/two", &k2)] {
        c.create_alias()
            .alias_name(alias)
            .target_key_id(key)
            .send()
            .await
            .unwrap();
    }
    let blob = encrypt(&c, &k1, b"aliased", &[]).await;
    let out = c
        .decrypt()
        .key_id("alias/one")
        .ciphertext_blob(Blob::new(blob.clone()))
        .send()
        .await
        .expect("Decrypt with the alias of the right key");
    assert_eq!(out.plaintext().unwrap().as_ref(), b"aliased");
    assert_err!(
        c.decrypt()
            .key_id("alias/two")
            .ciphertext_blob(Blob::new(blob))
            .send()
            .await,
        "IncorrectKeyException"
    );
}

#[tokio::test]
async fn decrypt_rejects_garbage_blobs() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let real = encrypt(&c, &id, b"x", &[]).await;
    let random: Vec<u8> = (0..80).map(|_| rand::random::<u8>() | 0x80).collect();
    // A header that names a key id of 200 bytes, and one cut inside the header.
    let mut long_id = vec![1u8, 200];
    long_id.extend(std::iter::repeat_n(b'a', 230));
    for bad in [random, long_id, real[..10].to_vec(), vec![1]] {
        assert_err!(
            c.decrypt().ciphertext_blob(Blob::new(bad)).send().await,
            "InvalidCiphertextException"
        );
    }
}

#[tokio::test]
async fn generate_data_key_number_of_bytes_zero_is_invalid() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    assert_err!(
        c.generate_data_key()
            .key_id(&id)
            .number_of_bytes(0)
            .send()
            .await,
        "ValidationException"
    );
}

#[tokio::test]
async fn encryption_context_is_bound_unambiguously() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    // Concatenations that a naive canonical form would confuse.
    let blob = encrypt(&c, &id, b"ctx", &[("a", "bc")]).await;
    for other in [
        vec![("ab", "c")],
        vec![("a", "b"), ("c", "")],
        vec![("abc", "")],
        vec![("A", "bc")],
    ] {
        let mut req = c.decrypt().ciphertext_blob(Blob::new(blob.clone()));
        for (k, v) in &other {
            req = req.encryption_context(*k, *v);
        }
        assert_err!(req.send().await, "InvalidCiphertextException");
    }
    assert_eq!(decrypt(&c, &blob, &[("a", "bc")]).await, b"ctx");
    // Non-ASCII keys and values round-trip, in any order.
    let ctx = [("ключ", "значение"), ("clé", "valeur ✓"), ("a", "😀")];
    let blob = encrypt(&c, &id, b"unicode", &ctx).await;
    let shuffled = [ctx[2], ctx[0], ctx[1]];
    assert_eq!(decrypt(&c, &blob, &shuffled).await, b"unicode");
}

#[tokio::test]
async fn encrypt_by_alias_arn_and_rejects_empty_plaintext() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    c.create_alias()
        .alias_name("alias/arn-form")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let out = c
        .encrypt()
        .key_id(alias_arn("alias/arn-form"))
        .plaintext(Blob::new(b"z"))
        .send()
        .await
        .expect("Encrypt by alias ARN");
    assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
    assert_err!(
        c.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(Vec::new()))
            .send()
            .await,
        "ValidationException"
    );
}

#[tokio::test]
async fn list_aliases_paginates() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let names = ["alias/p1", "alias/p2", "alias/p3"];
    for n in names {
        c.create_alias()
            .alias_name(n)
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
    }
    let p1 = c.list_aliases().key_id(&id).limit(2).send().await.unwrap();
    assert_eq!(p1.aliases().len(), 2);
    assert!(p1.truncated());
    let p2 = c
        .list_aliases()
        .key_id(&id)
        .limit(2)
        .marker(p1.next_marker().expect("NextMarker"))
        .send()
        .await
        .unwrap();
    assert_eq!(p2.aliases().len(), 1);
    assert!(!p2.truncated());
    let mut all: Vec<&str> = p1
        .aliases()
        .iter()
        .chain(p2.aliases())
        .map(|a| a.alias_name().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, names);
}

#[tokio::test]
async fn denies_cross_tenant_alias() {
    let env = TestEnv::start();
    let alice = env.client("alice");
    let bob = env.client("bob");
    let id = create_key(&alice).await;
    let bob_key = create_key(&bob).await;
    alice
        .create_alias()
        .alias_name("alias/alices")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    assert_err!(
        bob.delete_alias().alias_name("alias/alices").send().await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.update_alias()
            .alias_name("alias/alices")
            .target_key_id(&bob_key)
            .send()
            .await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.encrypt()
            .key_id("alias/alices")
            .plaintext(Blob::new(b"x"))
            .send()
            .await,
        "AccessDeniedException"
    );
    let bobs = bob.list_aliases().send().await.unwrap();
    assert!(
        bobs.aliases()
            .iter()
            .all(|a| a.alias_name() != Some("alias/alices")),
        "bob sees alice's alias: {:?}",
        bobs.aliases()
    );
    let m = alice
        .describe_key()
        .key_id("alias/alices")
        .send()
        .await
        .unwrap();
    assert_eq!(m.key_metadata().unwrap().key_id(), id, "alias unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_alias_has_one_winner() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let mut keys = Vec::new();
    for _ in 0..4 {
        keys.push(create_key(&c).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let c = c.clone();
        let key = keys[i % keys.len()].clone();
        tasks.spawn(async move {
            let res = c
                .create_alias()
                .alias_name("alias/contended")
                .target_key_id(&key)
                .send()
                .await;
            match res {
                Ok(_) => Some(key),
                Err(e) => {
                    let info = hsm_kms_tests::err_info(&e);
                    assert_eq!(
                        info.code.as_deref(),
                        Some("AlreadyExistsException"),
                        "{e:?}"
                    );
                    None
                }
            }
        });
    }
    let mut winners = Vec::new();
    while let Some(r) = tasks.join_next().await {
        winners.extend(r.unwrap());
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one CreateAlias wins: {winners:?}"
    );
    let m = c
        .describe_key()
        .key_id("alias/contended")
        .send()
        .await
        .unwrap();
    assert_eq!(m.key_metadata().unwrap().key_id(), winners[0]);
}
