//! The client against a tiny in-test daemon speaking `protocol`.

use super::*;
use futures_util::SinkExt;
use tokio::net::UnixListener;
use tokio_util::codec::Framed;

fn settings(timeout_ms: u64) -> HsmClientSettings {
    HsmClientSettings {
        pool_size: 1,
        request_timeout: Duration::from_millis(timeout_ms),
        keygen_timeout: Duration::from_millis(timeout_ms),
        connect_timeout: Duration::from_millis(500),
        reconnect_backoff: Duration::from_millis(50),
    }
}

type ServerConn = Framed<UnixStream, FrameCodec<ResponseFrame, RequestFrame>>;

/// Accepts one connection and does the server side of the handshake.
async fn accept(listener: &UnixListener) -> ServerConn {
    let (mut stream, _) = listener.accept().await.expect("accept");
    let len = stream.read_u32().await.expect("hello len") as usize;
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.expect("hello");
    let hello: ClientHello = decode_body(&body).expect("client hello");
    assert_eq!(hello, ClientHello::current());
    let reply = encode_frame(&ServerHello::current()).expect("encode");
    stream.write_all(&reply).await.expect("write hello");
    Framed::new(stream, FrameCodec::new())
}

fn random_len(frame: &RequestFrame) -> u16 {
    match frame.request {
        Request::GenerateRandom { len } => len,
        _ => panic!("unexpected request"),
    }
}

#[tokio::test]
async fn pipelined_out_of_order_replies_are_matched() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("hsm.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let server = tokio::spawn(async move {
        let mut conn = accept(&listener).await;
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(conn.next().await.expect("frame").expect("decodes"));
        }
        // All three arrived on one connection before any reply: pipelined.
        for frame in got.iter().rev() {
            let len = random_len(frame);
            let bytes = vec![u8::try_from(len).unwrap_or(0); usize::from(len)];
            conn.send(ResponseFrame {
                id: frame.id,
                result: Ok(Response::Random { bytes }),
            })
            .await
            .expect("send");
        }
        conn
    });
    let client = HsmClient::with_settings(path, settings(2000));
    let call = |len| {
        let c = client.clone();
        async move { c.call(Request::GenerateRandom { len }).await }
    };
    let (a, b, c) = tokio::join!(call(1), call(2), call(3));
    for (reply, len) in [(a, 1u8), (b, 2), (c, 3)] {
        match reply {
            Ok(Response::Random { bytes }) => assert_eq!(bytes, vec![len; usize::from(len)]),
            other => panic!("unexpected {other:?}"),
        }
    }
    let _conn = server.await.expect("server");
}

#[tokio::test]
async fn wire_errors_come_back_as_wire() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("hsm.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    tokio::spawn(async move {
        let mut conn = accept(&listener).await;
        while let Some(Ok(frame)) = conn.next().await {
            let reply = ResponseFrame {
                id: frame.id,
                result: Err(WireError::InvalidToken),
            };
            if conn.send(reply).await.is_err() {
                break;
            }
        }
    });
    let client = HsmClient::with_settings(path, settings(2000));
    let r = client.call(Request::Status).await;
    assert!(
        matches!(r, Err(HsmError::Wire(WireError::InvalidToken))),
        "{r:?}"
    );
}

#[tokio::test]
async fn no_daemon_is_unavailable_at_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let client = HsmClient::with_settings(dir.path().join("none.sock"), settings(5000));
    let start = Instant::now();
    for _ in 0..3 {
        assert!(matches!(
            client.call(Request::Status).await,
            Err(HsmError::Unavailable)
        ));
    }
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn silent_daemon_times_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("hsm.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let server = tokio::spawn(async move {
        let mut conn = accept(&listener).await;
        let _ = conn.next().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let client = HsmClient::with_settings(path, settings(200));
    assert!(matches!(
        client.call(Request::Status).await,
        Err(HsmError::Timeout)
    ));
    server.abort();
}

#[tokio::test]
async fn daemon_death_fails_pending_then_reconnects() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("hsm.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    // First daemon: takes two requests, then dies without answering.
    let server = tokio::spawn(async move {
        let mut conn = accept(&listener).await;
        let _ = conn.next().await;
        let _ = conn.next().await;
        drop(conn);
        drop(listener);
    });
    let client = HsmClient::with_settings(path.clone(), settings(10_000));
    let start = Instant::now();
    let (a, b) = tokio::join!(client.call(Request::Status), client.call(Request::Status));
    assert!(matches!(a, Err(HsmError::Unavailable)), "{a:?}");
    assert!(matches!(b, Err(HsmError::Unavailable)), "{b:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "no hang");
    server.await.expect("server");

    // Nobody listening: unavailable, at once.
    std::fs::remove_file(&path).expect("rm socket");
    let start = Instant::now();
    assert!(matches!(
        client.call(Request::Status).await,
        Err(HsmError::Unavailable)
    ));
    assert!(start.elapsed() < Duration::from_secs(1));

    // Daemon back: works again.
    let listener = UnixListener::bind(&path).expect("rebind");
    tokio::spawn(async move {
        let mut conn = accept(&listener).await;
        while let Some(Ok(frame)) = conn.next().await {
            let reply = ResponseFrame {
                id: frame.id,
                result: Ok(Response::Random { bytes: vec![7] }),
            };
            if conn.send(reply).await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = client.call(Request::GenerateRandom { len: 1 }).await;
    assert!(matches!(r, Ok(Response::Random { .. })), "{r:?}");
}

#[test]
fn hello_refusal_is_understood() {
    let refused = encode_frame(&WireError::UnsupportedVersion { server: 9 }).expect("enc");
    assert!(matches!(
        check_server_hello(&refused[4..]),
        Err(ConnectError::Refused(_))
    ));
    let refused: Result<ServerHello, WireError> = Err(WireError::UnsupportedVersion { server: 9 });
    let refused = encode_frame(&refused).expect("enc");
    assert!(matches!(
        check_server_hello(&refused[4..]),
        Err(ConnectError::Refused(_))
    ));
    let ok: Result<ServerHello, WireError> = Ok(ServerHello::current());
    let ok = encode_frame(&ok).expect("enc");
    assert!(check_server_hello(&ok[4..]).is_ok());
    let ok = encode_frame(&ServerHello::current()).expect("enc");
    assert!(check_server_hello(&ok[4..]).is_ok());
}
