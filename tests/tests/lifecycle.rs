//! Key lifecycle through the AWS SDK: deletion that really destroys (token
//! rows gone from the SQLite file, no copy left in hsm-daemon), rotation
//! that keeps every old ciphertext decryptable through restarts, the
//! automatic rotation scheduler, on-demand limits, tags. Time is moved with
//! the frontend's development clock offset file (debug builds only).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use aws_sdk_kms::Client;
use aws_sdk_kms::types::Tag;
use hsm_kms_tests::{EnvOptions, TestEnv, daemon, err_info, ops};
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;

fn env() -> TestEnv {
    TestEnv::start_with(EnvOptions {
        scheduler_interval_secs: Some(1),
        dev_clock: true,
        ..EnvOptions::default()
    })
}

/// Polls `check` for up to 15 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn rows(env: &TestEnv, table: &str, key_id: &str) -> i64 {
    let conn = rusqlite::Connection::open(env.db_path()).unwrap();
    conn.query_row(
        &format!("SELECT count(*) FROM {table} WHERE key_id = ?1"),
        [key_id],
        |r| r.get(0),
    )
    .unwrap()
}

/// Key version named in a ciphertext blob's header.
fn blob_version(blob: &[u8]) -> u32 {
    let id_len = usize::from(blob[1]);
    let v = &blob[2 + id_len..6 + id_len];
    u32::from_be_bytes(v.try_into().unwrap())
}

async fn rotations(c: &Client, key: &str) -> Vec<String> {
    c.list_key_rotations()
        .key_id(key)
        .send()
        .await
        .unwrap()
        .rotations()
        .iter()
        .map(|r| r.rotation_type().unwrap().as_str().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_key_token_rows_are_gone_and_daemon_holds_no_copy() {
    let env = env();
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    let blob = ops::encrypt(&c, &key, b"doomed", &[]).await;
    assert_eq!(ops::decrypt(&c, &blob, &[]).await, b"doomed");
    assert_eq!(daemon::cached_versions(env.socket_path(), &key), vec![1]);
    assert_eq!(rows(&env, "key_versions", &key), 1);

    let out = c
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert!(out.deletion_date().is_some());
    // Inside the window: still there, pending deletion.
    env.advance_clock(6 * DAY);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rows(&env, "key_versions", &key), 1);
    env.advance_clock(DAY + 60);
    let c2 = c.clone();
    let k2 = key.clone();
    eventually("DescribeKey says NotFound", || {
        let c = c2.clone();
        let k = k2.clone();
        async move {
            let e = c.describe_key().key_id(&k).send().await;
            matches!(&e, Err(e) if err_info(e).code.as_deref() == Some("NotFoundException"))
        }
    })
    .await;
    // The scheduler's next pass destroys the rows.
    let deadline = Instant::now() + Duration::from_secs(15);
    while rows(&env, "key_versions", &key) != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(rows(&env, "key_versions", &key), 0, "token rows remain");
    assert_eq!(rows(&env, "keys", &key), 0);
    let socket = env.socket_path().to_owned();
    let k3 = key.clone();
    eventually("daemon evicted the key", || {
        let socket = socket.clone();
        let k = k3.clone();
        async move { daemon::cached_versions(&socket, &k).is_empty() }
    })
    .await;
    let e = c
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
        .send()
        .await
        .unwrap_err();
    let code = err_info(&e).code.unwrap();
    assert!(
        code == "InvalidCiphertextException" || code == "NotFoundException",
        "{code}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_every_old_ciphertext_decryptable_through_restarts() {
    let mut env = env();
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    let b1 = ops::encrypt(&c, &key, b"one", &[("n", "1")]).await;
    c.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    let b2 = ops::encrypt(&c, &key, b"two", &[("n", "2")]).await;
    assert_eq!((blob_version(&b1), blob_version(&b2)), (1, 2));

    c.enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let status = c
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(90));
    env.advance_clock(91 * DAY);
    let (cc, kk) = (c.clone(), key.clone());
    eventually("automatic rotation", || {
        let (c, k) = (cc.clone(), kk.clone());
        async move { rotations(&c, &k).await.len() == 2 }
    })
    .await;
    assert_eq!(rotations(&c, &key).await, vec!["ON_DEMAND", "AUTOMATIC"]);
    let b3 = ops::encrypt(&c, &key, b"three", &[("n", "3")]).await;
    assert_eq!(blob_version(&b3), 3);

    env.restart_daemon().await;
    env.restart_frontend().await;
    let c = env.client("alice");
    for (blob, pt, n) in [(&b1, "one", "1"), (&b2, "two", "2"), (&b3, "three", "3")] {
        assert_eq!(ops::decrypt(&c, blob, &[("n", n)]).await, pt.as_bytes());
    }
    // The schedule survived the restart: another period, another version.
    env.advance_clock(91 * DAY);
    let (cc, kk) = (c.clone(), key.clone());
    eventually("automatic rotation after restart", || {
        let (c, k) = (cc.clone(), kk.clone());
        async move { rotations(&c, &k).await.len() == 3 }
    })
    .await;
    let b4 = ops::encrypt(&c, &key, b"four", &[]).await;
    assert_eq!(blob_version(&b4), 4);
    assert_eq!(ops::decrypt(&c, &b1, &[("n", "1")]).await, b"one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_rotation_stops_at_25_and_refuses_asymmetric_keys() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    for _ in 0..25 {
        c.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    }
    let e = c
        .rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_info(&e).code.as_deref(), Some("LimitExceededException"));
    assert_eq!(rotations(&c, &key).await.len(), 25);
    let hmac = c
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::Hmac256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .unwrap();
    let hmac = hmac.key_metadata().unwrap().key_id().to_owned();
    let e = c
        .rotate_key_on_demand()
        .key_id(&hmac)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_info(&e).code.as_deref(),
        Some("UnsupportedOperationException")
    );
    let e = c
        .enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(89)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_info(&e).code.as_deref(), Some("ValidationException"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_on_create_and_tag_limits_follow_aws() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let tag = |k: &str, v: &str| Tag::builder().tag_key(k).tag_value(v).build().unwrap();
    let out = c
        .create_key()
        .tags(tag("team", "core"))
        .send()
        .await
        .unwrap();
    let key = out.key_metadata().unwrap().key_id().to_owned();
    let e = c
        .tag_resource()
        .key_id(&key)
        .tags(tag("aws:owner", "x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_info(&e).code.as_deref(), Some("TagException"));
    let mut req = c.tag_resource().key_id(&key);
    for i in 0..50 {
        req = req.tags(tag(&format!("k{i:02}"), "v"));
    }
    let e = req.send().await.unwrap_err();
    assert_eq!(err_info(&e).code.as_deref(), Some("LimitExceededException"));
    c.untag_resource()
        .key_id(&key)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    c.tag_resource()
        .key_id(&key)
        .tags(tag("env", "test"))
        .send()
        .await
        .unwrap();
    c.update_key_description()
        .key_id(&key)
        .description("described")
        .send()
        .await
        .unwrap();
    let tags = c.list_resource_tags().key_id(&key).send().await.unwrap();
    let tags: Vec<_> = tags
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
        .collect();
    assert_eq!(tags, vec![("env".to_owned(), "test".to_owned())]);
    let m = c.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(m.key_metadata().unwrap().description(), Some("described"));
}
