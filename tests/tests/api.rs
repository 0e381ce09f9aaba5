//! Key operations through the real `aws-sdk-kms`: CreateKey, DescribeKey (every
//! KeyId form), ListKeys, Enable/Disable, Schedule/CancelKeyDeletion, with
//! their documented errors (exact AWS codes), and tenant separation. Crypto
//! operations are in `api_crypto.rs`, aliases in `api_aliases.rs`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeySpec, KeyManagerType, KeySpec, KeyState, KeyUsageType, OriginType,
};
use hsm_kms_tests::ops::{create_key, decrypt, encrypt, key_state};
use hsm_kms_tests::{TestEnv, alias_arn, assert_err, key_arn};

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
