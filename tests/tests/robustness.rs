//! Invariant I6: bad input gets an AWS-shaped error and hurts nothing. After
//! each bad request the same server still answers a normal SDK call.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use aws_sdk_kms::primitives::Blob;
use hsm_kms_tests::{RawRequest, RawResponse, TestEnv};

/// A full SDK round trip, and both processes still running.
async fn still_serves(env: &mut TestEnv) {
    let c = env.client("alice");
    let id = c
        .create_key()
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateKey after bad input: {e:?}"))
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    let blob = c
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"still here"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("Encrypt after bad input: {e:?}"))
        .ciphertext_blob()
        .unwrap()
        .clone();
    let out = c.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"still here");
    assert_eq!(env.frontend_exit(), None, "kms-frontend exited");
    assert_eq!(env.daemon_exit(), None, "hsm-daemon exited");
}

fn body(r: &RawResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Asserts an AWS error: status, `__type` in the body and the same name in
/// `x-amzn-ErrorType`.
fn assert_aws_error(r: &RawResponse, status: u16, name: &str) {
    assert_eq!(r.status, status, "body {}", body(r));
    assert_eq!(r.error_type().as_deref(), Some(name), "body {}", body(r));
    assert_eq!(
        r.error_type_header().as_deref(),
        Some(name),
        "headers {:?}",
        r.headers
    );
    let v = r.json();
    assert!(
        v["message"].is_string(),
        "error without a message: {}",
        body(r)
    );
}

#[tokio::test]
async fn malformed_json_gets_serialization_exception() {
    let mut env = TestEnv::start();
    for bad in [&b"{not json"[..], b"[]", b"\xff\xfe", b"{\"KeyId\": \"x\""] {
        let r = env.raw(RawRequest::kms("DescribeKey", bad)).await;
        assert_aws_error(&r, 400, "SerializationException");
    }
    still_serves(&mut env).await;
}

#[tokio::test]
async fn wrong_field_type_gets_serialization_exception() {
    let mut env = TestEnv::start();
    let r = env
        .raw(RawRequest::kms(
            "GenerateRandom",
            r#"{"NumberOfBytes":"ten"}"#,
        ))
        .await;
    assert_aws_error(&r, 400, "SerializationException");
    let r = env
        .raw(RawRequest::kms(
            "Encrypt",
            r#"{"KeyId":"alias/x","Plaintext":"not base64!"}"#,
        ))
        .await;
    assert_aws_error(&r, 400, "SerializationException");
    still_serves(&mut env).await;
}

#[tokio::test]
async fn missing_required_field_gets_validation_exception() {
    let mut env = TestEnv::start();
    let r = env
        .raw(RawRequest::kms("Encrypt", r#"{"Plaintext":"aGk="}"#))
        .await;
    assert_aws_error(&r, 400, "ValidationException");
    still_serves(&mut env).await;
}

#[tokio::test]
async fn unknown_target_gets_unknown_operation() {
    let mut env = TestEnv::start();
    let r = env.raw(RawRequest::kms("Frobnicate", "{}")).await;
    assert_aws_error(&r, 400, "UnknownOperationException");
    let r = env
        .raw(RawRequest::kms("ListKeys", "{}").target("DynamoDB_20120810.ListTables"))
        .await;
    assert_aws_error(&r, 400, "UnknownOperationException");
    still_serves(&mut env).await;
}

#[tokio::test]
async fn oversized_body_gets_aws_4xx() {
    let mut env = TestEnv::start();
    let mut big = br#"{"KeyId":"alias/x","Plaintext":""#.to_vec();
    big.extend(std::iter::repeat_n(b'A', 1 << 20));
    big.extend(br#""}"#);
    let r = env.raw(RawRequest::kms("Encrypt", big)).await;
    assert!(
        (400..500).contains(&r.status),
        "status {} body {}",
        r.status,
        body(&r)
    );
    assert!(
        r.error_type().is_some(),
        "oversized body answered without an AWS error body: {} {}",
        r.status,
        body(&r)
    );
    still_serves(&mut env).await;
}

#[tokio::test]
async fn http1_call_works() {
    let mut env = TestEnv::start();
    let r = env
        .raw(RawRequest::kms("GenerateRandom", r#"{"NumberOfBytes":16}"#).http1())
        .await;
    assert_eq!(r.version, http::Version::HTTP_11);
    assert_eq!(r.status, 200, "body {}", body(&r));
    let b64 = r.json()["Plaintext"].as_str().unwrap().to_owned();
    assert_eq!(b64.len(), 24, "16 bytes in base64: {b64}");
    let ct = r.headers.get("content-type").unwrap().to_str().unwrap();
    assert_eq!(ct, "application/x-amz-json-1.1");
    let r = env.raw(RawRequest::kms("Frobnicate", "{}").http1()).await;
    assert_aws_error(&r, 400, "UnknownOperationException");
    // And the SDK's own calls go over HTTP/2.
    let r = env.raw(RawRequest::kms("ListKeys", "{}")).await;
    assert_eq!(r.version, http::Version::HTTP_2);
    assert_eq!(r.status, 200, "body {}", body(&r));
    still_serves(&mut env).await;
}

#[tokio::test]
async fn plaintext_http_on_tls_port_is_refused() {
    let mut env = TestEnv::start();
    let mut s = std::net::TcpStream::connect(env.authority()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    let mut buf = Vec::new();
    // The server answers with a TLS alert or just closes; either way it must
    // not hang or die.
    let _ = s.read_to_end(&mut buf);
    assert!(
        !buf.starts_with(b"HTTP/"),
        "plain HTTP answered on the TLS port"
    );
    still_serves(&mut env).await;
}

/// Writes `bytes` to the daemon's socket, half-closes, and reads until the
/// daemon closes (or 10 s pass: then it is hanging on garbage).
fn poke_daemon(env: &TestEnv, bytes: &[u8]) {
    let mut s = UnixStream::connect(env.socket_path()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The daemon may close before taking everything; that is fine.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("daemon kept a garbage connection open: {e}"),
    }
}

#[tokio::test]
async fn garbage_on_daemon_socket_hurts_nothing() {
    let mut env = TestEnv::start();
    let random: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
    let cases: Vec<Vec<u8>> = vec![
        random.clone(),
        vec![0xff, 0xff, 0xff, 0xff],
        vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3],
        [&[0, 0, 0, 16][..], &random[..16]].concat(),
        [&[0, 0, 0, 200][..], &random[..20]].concat(),
        vec![0, 0, 0, 0],
        vec![],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    ];
    for case in &cases {
        poke_daemon(&env, case);
        assert_eq!(env.daemon_exit(), None, "hsm-daemon died on {case:02x?}");
    }
    // Garbage while a real client is connected, too.
    let c = env.client("alice");
    c.generate_random().number_of_bytes(8).send().await.unwrap();
    poke_daemon(&env, &random);
    still_serves(&mut env).await;
}

/// Many requests in flight at once over one HTTP/2 connection, on several
/// keys: each gets its own answer (the frontend pipelines them to the daemon,
/// whose replies may come back out of order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_their_own_answers() {
    let mut env = TestEnv::start();
    let c = env.client("alice");
    let mut keys = Vec::new();
    for _ in 0..4 {
        let out = c.create_key().send().await.unwrap();
        keys.push(out.key_metadata().unwrap().key_id().to_owned());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200usize {
        let c = c.clone();
        let key = keys[i % keys.len()].clone();
        tasks.spawn(async move {
            let pt = format!("message number {i}").into_bytes();
            let ctx = i.to_string();
            let out = c
                .encrypt()
                .key_id(&key)
                .plaintext(Blob::new(pt.clone()))
                .encryption_context("i", &ctx)
                .send()
                .await
                .unwrap_or_else(|e| panic!("Encrypt {i}: {e:?}"));
            assert_eq!(out.key_id(), Some(hsm_kms_tests::key_arn(&key).as_str()));
            let blob = out.ciphertext_blob().unwrap().clone();
            let out = c
                .decrypt()
                .ciphertext_blob(blob)
                .encryption_context("i", &ctx)
                .send()
                .await
                .unwrap_or_else(|e| panic!("Decrypt {i}: {e:?}"));
            assert_eq!(
                out.plaintext().unwrap().as_ref(),
                pt.as_slice(),
                "request {i}"
            );
            let dk = c
                .generate_data_key()
                .key_id(&key)
                .number_of_bytes(i32::try_from(i % 64 + 1).unwrap())
                .send()
                .await
                .unwrap_or_else(|e| panic!("GenerateDataKey {i}: {e:?}"));
            assert_eq!(dk.plaintext().unwrap().as_ref().len(), i % 64 + 1);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    still_serves(&mut env).await;
}

/// With the daemon gone, crypto calls fail with a 5xx AWS error (not a hang,
/// not a crash); once it is back, the same frontend reconnects by itself.
#[tokio::test]
async fn daemon_down_gives_aws_5xx_then_recovers() {
    let mut env = TestEnv::start();
    let c = env.client("alice");
    let id = c
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    env.kill9_daemon();
    let res = c
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"x"))
        .send()
        .await;
    let info = match res {
        Ok(_) => panic!("Encrypt succeeded with no daemon"),
        Err(e) => hsm_kms_tests::err_info(&e),
    };
    assert!(
        matches!(
            info.code.as_deref(),
            Some("KMSInternalException" | "DependencyTimeoutException")
        ),
        "{info:?}"
    );
    assert_eq!(info.status, Some(500), "{info:?}");
    assert_eq!(
        env.frontend_exit(),
        None,
        "kms-frontend exited without its daemon"
    );
    env.start_daemon().await;
    // Each connection of the frontend's pool holds off reconnecting for a
    // short backoff after a failed connect (documented in hsm_client); the
    // frontend must come back by itself: wait for a run of successes that
    // goes through every pool slot.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut run = 0;
    while run < 8 {
        let res = c
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new(b"x"))
            .send()
            .await;
        match res {
            Ok(_) => run += 1,
            Err(e) if std::time::Instant::now() < deadline => {
                let info = hsm_kms_tests::err_info(&e);
                assert_eq!(info.status, Some(500), "{info:?}");
                run = 0;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("frontend did not reconnect to the restarted daemon: {e:?}"),
        }
    }
    still_serves(&mut env).await;
}

#[tokio::test]
async fn unknown_json_fields_are_ignored() {
    // AWS JSON services ignore members they do not know, which lets newer
    // SDKs talk to older services.
    let mut env = TestEnv::start();
    let r = env
        .raw(RawRequest::kms(
            "GenerateRandom",
            r#"{"NumberOfBytes":16,"SomeFutureField":{"x":[1,2]}}"#,
        ))
        .await;
    assert_eq!(r.status, 200, "body {}", body(&r));
    still_serves(&mut env).await;
}

/// Idle TCP connections and stalled TLS handshakes do not keep a normal
/// client from being served.
#[tokio::test]
async fn idle_and_stalled_connections_do_not_block_service() {
    let mut env = TestEnv::start();
    let mut idle = Vec::new();
    for i in 0..64 {
        let mut s = tokio::net::TcpStream::connect(env.authority())
            .await
            .unwrap();
        if i % 2 == 0 {
            // Half a TLS ClientHello record header, then nothing.
            tokio::io::AsyncWriteExt::write_all(&mut s, &[0x16, 0x03, 0x01, 0x02])
                .await
                .unwrap();
        }
        idle.push(s);
    }
    still_serves(&mut env).await;
    drop(idle);
    still_serves(&mut env).await;
}
