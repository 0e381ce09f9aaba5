//! Invariant I7: what was acknowledged survives a graceful restart of either
//! process and a kill -9 of the frontend or the daemon.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyState;
use hsm_kms_tests::TestEnv;

/// Plaintext, its ciphertext blob, and the encryption context used.
type Sealed = (Vec<u8>, Vec<u8>, Option<(String, String)>);

/// State made before a restart, checked after it.
struct Fixture {
    enabled: String,
    disabled: String,
    pending: String,
    blobs: Vec<Sealed>,
}

async fn make_fixture(c: &Client) -> Fixture {
    let mut ids = Vec::new();
    for d in ["enabled", "disabled", "pending"] {
        let out = c.create_key().description(d).send().await.unwrap();
        ids.push(out.key_metadata().unwrap().key_id().to_owned());
    }
    c.create_alias()
        .alias_name("alias/survivor")
        .target_key_id(&ids[0])
        .send()
        .await
        .unwrap();
    let mut blobs = Vec::new();
    for (i, ctx) in [None, Some(("k".to_owned(), "v".to_owned()))]
        .into_iter()
        .enumerate()
    {
        let pt = format!("plaintext {i}").into_bytes();
        let mut req = c
            .encrypt()
            .key_id("alias/survivor")
            .plaintext(Blob::new(pt.clone()));
        if let Some((k, v)) = &ctx {
            req = req.encryption_context(k, v);
        }
        let blob = req
            .send()
            .await
            .unwrap()
            .ciphertext_blob()
            .unwrap()
            .as_ref()
            .to_vec();
        blobs.push((pt, blob, ctx));
    }
    let dk = c
        .generate_data_key()
        .key_id(&ids[1])
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    blobs.push((
        dk.plaintext().unwrap().as_ref().to_vec(),
        dk.ciphertext_blob().unwrap().as_ref().to_vec(),
        None,
    ));
    c.disable_key().key_id(&ids[1]).send().await.unwrap();
    c.schedule_key_deletion()
        .key_id(&ids[2])
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    Fixture {
        enabled: ids[0].clone(),
        disabled: ids[1].clone(),
        pending: ids[2].clone(),
        blobs,
    }
}

async fn state(c: &Client, id: &str) -> KeyState {
    c.describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeKey {id}: {e:?}"))
        .key_metadata()
        .unwrap()
        .key_state()
        .unwrap()
        .clone()
}

async fn check_fixture(c: &Client, f: &Fixture) {
    assert_eq!(state(c, &f.enabled).await, KeyState::Enabled);
    assert_eq!(state(c, &f.disabled).await, KeyState::Disabled);
    assert_eq!(state(c, &f.pending).await, KeyState::PendingDeletion);
    let m = c
        .describe_key()
        .key_id("alias/survivor")
        .send()
        .await
        .unwrap();
    assert_eq!(m.key_metadata().unwrap().key_id(), f.enabled);
    let m = c.describe_key().key_id(&f.enabled).send().await.unwrap();
    assert_eq!(m.key_metadata().unwrap().description(), Some("enabled"));
    c.enable_key().key_id(&f.disabled).send().await.unwrap();
    for (pt, blob, ctx) in &f.blobs {
        let mut req = c.decrypt().ciphertext_blob(Blob::new(blob.clone()));
        if let Some((k, v)) = ctx {
            req = req.encryption_context(k, v);
        }
        let out = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("Decrypt after restart: {e:?}"));
        assert_eq!(out.plaintext().unwrap().as_ref(), pt.as_slice());
    }
    c.disable_key().key_id(&f.disabled).send().await.unwrap();
    // New work still works.
    let blob = c
        .encrypt()
        .key_id(&f.enabled)
        .plaintext(Blob::new(b"after"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .as_ref()
        .to_vec();
    let out = c
        .decrypt()
        .ciphertext_blob(Blob::new(blob))
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"after");
}

#[tokio::test]
async fn state_survives_frontend_restart() {
    let mut env = TestEnv::start();
    let f = make_fixture(&env.client("alice")).await;
    env.restart_frontend().await;
    check_fixture(&env.client("alice"), &f).await;
}

#[tokio::test]
async fn state_survives_daemon_restart() {
    let mut env = TestEnv::start();
    let c = env.client("alice");
    let f = make_fixture(&c).await;
    env.restart_daemon().await;
    // The same client (same frontend): the frontend must reconnect by itself.
    check_fixture(&c, &f).await;
}

#[tokio::test]
async fn state_survives_daemon_kill9() {
    let mut env = TestEnv::start();
    let c = env.client("alice");
    let f = make_fixture(&c).await;
    env.kill9_daemon();
    env.start_daemon().await;
    check_fixture(&c, &f).await;
}

#[tokio::test]
async fn state_survives_both_restarted() {
    let mut env = TestEnv::start();
    let f = make_fixture(&env.client("alice")).await;
    env.kill9_frontend();
    env.restart_daemon().await;
    env.start_frontend().await;
    check_fixture(&env.client("alice"), &f).await;
}

/// An acknowledged CreateKey or Encrypt.
#[derive(Debug, Clone)]
enum Ack {
    Key(String),
    Blob(String, Vec<u8>, Vec<u8>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_frontend_kill9() {
    let mut env = TestEnv::start();
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    // Four writers keep CreateKey/Encrypt calls in flight while the frontend dies.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let c = env.client("alice");
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let Ok(out) = c.create_key().description(format!("w{w}-{i}")).send().await else {
                    return;
                };
                let id = out.key_metadata().unwrap().key_id().to_owned();
                acks.lock().unwrap().push(Ack::Key(id.clone()));
                let pt = format!("w{w} message {i}").into_bytes();
                let Ok(out) = c
                    .encrypt()
                    .key_id(&id)
                    .plaintext(Blob::new(pt.clone()))
                    .send()
                    .await
                else {
                    return;
                };
                let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
                acks.lock().unwrap().push(Ack::Blob(id, pt, blob));
            }
        }));
    }
    // Kill as soon as a few writes were acknowledged, while others are in flight.
    while acks.lock().unwrap().len() < 12 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    env.kill9_frontend();
    for t in tasks {
        t.await.unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    env.start_frontend().await;
    let c = env.client("alice");
    let listed: std::collections::BTreeSet<String> = {
        let mut all = std::collections::BTreeSet::new();
        let mut marker = None;
        loop {
            let out = c.list_keys().set_marker(marker).send().await.unwrap();
            all.extend(out.keys().iter().map(|k| k.key_id().unwrap().to_owned()));
            if !out.truncated() {
                break all;
            }
            marker = out.next_marker().map(str::to_owned);
        }
    };
    for a in &acks {
        match a {
            Ack::Key(id) => {
                assert!(
                    listed.contains(id),
                    "acknowledged key {id} missing from ListKeys"
                );
                assert_eq!(state(&c, id).await, KeyState::Enabled);
            }
            Ack::Blob(id, pt, blob) => {
                let out = c
                    .decrypt()
                    .ciphertext_blob(Blob::new(blob.clone()))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("acknowledged ciphertext under {id}: {e:?}"));
                assert_eq!(out.plaintext().unwrap().as_ref(), pt.as_slice());
            }
        }
    }
}

/// kill -9 of the daemon while CreateKey/Encrypt calls are in flight: the
/// calls fail with an AWS 5xx or succeed; afterwards every listed key is
/// whole (usable), and every acknowledged key and ciphertext is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_half_written_keys_after_daemon_kill9() {
    let mut env = TestEnv::start();
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let c = env.client("alice");
        let acks = acks.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let res = c.create_key().description(format!("w{w}-{i}")).send().await;
                let id = match res {
                    Ok(out) => out.key_metadata().unwrap().key_id().to_owned(),
                    Err(e) => {
                        let info = hsm_kms_tests::err_info(&e);
                        assert_eq!(info.status, Some(500), "CreateKey: {e:?}");
                        continue;
                    }
                };
                acks.lock().unwrap().push(Ack::Key(id.clone()));
                let pt = format!("w{w} message {i}").into_bytes();
                match c
                    .encrypt()
                    .key_id(&id)
                    .plaintext(Blob::new(pt.clone()))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
                        acks.lock().unwrap().push(Ack::Blob(id, pt, blob));
                    }
                    Err(e) => {
                        let info = hsm_kms_tests::err_info(&e);
                        assert_eq!(info.status, Some(500), "Encrypt: {e:?}");
                    }
                }
            }
        }));
    }
    while acks.lock().unwrap().len() < 12 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    env.kill9_daemon();
    // Let the writers run into the dead daemon for a moment.
    let seen = acks.lock().unwrap().len();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    env.start_daemon().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    assert!(acks.len() >= seen);
    let c = env.client("alice");
    // Wait out the frontend's reconnect backoff.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c.generate_random().number_of_bytes(1).send().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "frontend did not reconnect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut listed = Vec::new();
    let mut marker = None;
    loop {
        let out = c.list_keys().set_marker(marker).send().await.unwrap();
        listed.extend(out.keys().iter().map(|k| k.key_id().unwrap().to_owned()));
        if !out.truncated() {
            break;
        }
        marker = out.next_marker().map(str::to_owned);
    }
    for id in &listed {
        c.encrypt()
            .key_id(id)
            .plaintext(Blob::new(b"whole?"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("listed key {id} is not usable: {e:?}"));
    }
    for a in &acks {
        match a {
            Ack::Key(id) => assert!(listed.contains(id), "acknowledged key {id} missing"),
            Ack::Blob(id, pt, blob) => {
                let out = c
                    .decrypt()
                    .ciphertext_blob(Blob::new(blob.clone()))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("acknowledged ciphertext under {id}: {e:?}"));
                assert_eq!(out.plaintext().unwrap().as_ref(), pt.as_slice());
            }
        }
    }
}
