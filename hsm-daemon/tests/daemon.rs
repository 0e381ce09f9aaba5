//! Black-box tests of the `hsm-daemon` binary: init, serve, the socket
//! protocol (handshake, pipelining, bad frames), peer checks, start-up
//! refusals, locked memory and graceful shutdown.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use protocol::{
    ClientHello, DataKeySpec, KeyRef, KeySpec, MAX_FRAME_LEN, PROTOCOL_VERSION, Request,
    RequestFrame, Response, ResponseFrame, SecretBytes, ServerHello, WireError, decode_body,
    encode_frame,
};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hsm-daemon");

fn init(state: &Path) -> Output {
    Command::new(BIN)
        .args(["init", "--dev-plain-key", "--state-dir"])
        .arg(state)
        .output()
        .unwrap()
}

struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert!(init(&state).status.success());
        let socket = dir.path().join("hsm.sock");
        let mut child = Command::new(BIN)
            .args(["serve", "--dev-plain-key", "--state-dir"])
            .arg(&state)
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, format!("READY unix:{}\n", socket.display()));
        Self {
            child,
            socket,
            _dir: dir,
        }
    }

    fn connect_raw(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    fn connect(&self) -> UnixStream {
        let mut s = self.connect_raw();
        send(&mut s, &ClientHello::current());
        let hello: ServerHello = recv(&mut s).expect("server hello");
        assert_eq!(hello, ServerHello::current());
        s
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        nix_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "daemon did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nix_kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn send<T: Serialize>(s: &mut UnixStream, msg: &T) {
    s.write_all(&encode_frame(msg).unwrap()).unwrap();
}

/// One frame, or `None` at end of stream.
fn recv<T: DeserializeOwned>(s: &mut UnixStream) -> Option<T> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return None;
        }
        Err(e) => panic!("read: {e}"),
    }
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    Some(decode_body(&body).unwrap())
}

fn assert_closed(s: &mut UnixStream) {
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the daemon to close the connection, got {other:?}"),
    }
}

fn call(s: &mut UnixStream, id: u64, request: Request) -> Result<Response, WireError> {
    send(
        s,
        &RequestFrame {
            id,
            request_id: [0; 16],
            request,
        },
    );
    let reply: ResponseFrame = recv(s).unwrap();
    assert_eq!(reply.id, id);
    reply.result
}

fn create_key(s: &mut UnixStream, id: &str) -> KeyRef {
    let Ok(Response::KeyCreated { token }) = call(
        s,
        1,
        Request::CreateKey {
            key_id: id.into(),
            version: 1,
            spec: KeySpec::SymmetricDefault,
        },
    ) else {
        panic!("create key")
    };
    KeyRef {
        key_id: id.into(),
        version: 1,
        token,
    }
}

#[test]
fn serves_many_pipelined_requests_on_one_connection() {
    let d = Daemon::start(&[]);
    let mut s = d.connect();
    let key = create_key(&mut s, "pipelined-key");
    const N: u64 = 1000;
    let mut writer = s.try_clone().unwrap();
    let wkey = key.clone();
    let sender = std::thread::spawn(move || {
        let mut batch = Vec::new();
        for id in 100..100 + N {
            let request = match id % 3 {
                0 => Request::Encrypt {
                    key: wkey.clone(),
                    plaintext: SecretBytes::new(id.to_be_bytes().to_vec()),
                    context: vec![("id".into(), id.to_string())],
                },
                1 => Request::GenerateRandom { len: 32 },
                _ => Request::GenerateDataKey {
                    key: wkey.clone(),
                    spec: DataKeySpec::Aes256,
                    context: vec![],
                    with_plaintext: true,
                },
            };
            batch.extend(
                encode_frame(&RequestFrame {
                    id,
                    request_id: [0; 16],
                    request,
                })
                .unwrap(),
            );
        }
        writer.write_all(&batch).unwrap();
    });
    let mut blobs = HashMap::new();
    for _ in 0..N {
        let reply: ResponseFrame = recv(&mut s).unwrap();
        match (reply.id % 3, reply.result) {
            (0, Ok(Response::Ciphertext { blob })) => {
                blobs.insert(reply.id, blob);
            }
            (1, Ok(Response::Random { bytes })) => assert_eq!(bytes.len(), 32),
            (
                2,
                Ok(Response::DataKey {
                    plaintext: Some(p), ..
                }),
            ) => assert_eq!(p.len(), 32),
            (_, other) => panic!("id {} got {other:?}", reply.id),
        }
    }
    sender.join().unwrap();
    assert_eq!(blobs.len(), (100..100 + N).filter(|i| i % 3 == 0).count());
    for (id, blob) in blobs.into_iter().take(20) {
        let Ok(Response::Plaintext { plaintext }) = call(
            &mut s,
            id,
            Request::Decrypt {
                key: key.clone(),
                blob,
                context: vec![("id".into(), id.to_string())],
            },
        ) else {
            panic!("decrypt {id}")
        };
        assert_eq!(plaintext.expose(), id.to_be_bytes());
    }
    let Ok(Response::Status(status)) = call(&mut s, 7, Request::Status) else {
        panic!("status")
    };
    assert_eq!(status.protocol_version, PROTOCOL_VERSION);
    assert_eq!(status.cached_keys, 1);
    assert!(status.requests > N);
    assert!(status.locked_bytes > 0);
}

#[test]
fn bad_requests_get_error_replies() {
    let d = Daemon::start(&[]);
    let mut s = d.connect();
    let key = create_key(&mut s, "k");
    let Ok(Response::Ciphertext { blob }) = call(
        &mut s,
        2,
        Request::Encrypt {
            key: key.clone(),
            plaintext: SecretBytes::new(b"x".to_vec()),
            context: vec![],
        },
    ) else {
        panic!("encrypt")
    };
    let mut tampered = blob.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        call(
            &mut s,
            3,
            Request::Decrypt {
                key: key.clone(),
                blob: tampered,
                context: vec![]
            }
        )
        .unwrap_err(),
        WireError::InvalidCiphertext
    );
    let mut forged = key.clone();
    forged.version = 2;
    assert_eq!(
        call(
            &mut s,
            4,
            Request::Decrypt {
                key: forged,
                blob,
                context: vec![]
            }
        )
        .unwrap_err(),
        WireError::InvalidToken
    );
    assert!(matches!(
        call(&mut s, 5, Request::GenerateRandom { len: 0 }),
        Err(WireError::InvalidRequest(_))
    ));
    // The connection is still usable after refused requests.
    assert!(call(&mut s, 6, Request::Status).is_ok());
}

#[test]
fn garbage_closes_only_that_connection() {
    let d = Daemon::start(&[]);
    let mut bad = d.connect();
    bad.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).unwrap();
    let reply: ResponseFrame = recv(&mut bad).unwrap();
    assert_eq!(reply.id, 0);
    assert_eq!(reply.result.unwrap_err(), WireError::MalformedFrame);
    assert_closed(&mut bad);

    let mut big = d.connect();
    let too_long = u32::try_from(MAX_FRAME_LEN + 1).unwrap();
    big.write_all(&too_long.to_be_bytes()).unwrap();
    let reply: ResponseFrame = recv(&mut big).unwrap();
    assert_eq!(
        (reply.id, reply.result.unwrap_err()),
        (0, WireError::FrameTooLarge)
    );
    assert_closed(&mut big);

    let mut good = d.connect();
    assert!(call(&mut good, 1, Request::Status).is_ok());
}

#[test]
fn refuses_another_protocol_version() {
    let d = Daemon::start(&[]);
    let mut s = d.connect_raw();
    send(
        &mut s,
        &ClientHello {
            magic: ClientHello::MAGIC,
            version: PROTOCOL_VERSION + 1,
        },
    );
    let reply: ResponseFrame = recv(&mut s).unwrap();
    assert_eq!(reply.id, 0);
    assert_eq!(
        reply.result.unwrap_err(),
        WireError::UnsupportedVersion {
            server: PROTOCOL_VERSION
        }
    );
    assert_closed(&mut s);
}

#[test]
fn socket_refuses_other_uid() {
    let d = Daemon::start(&["--allow-uid", "54321"]);
    let mut s = d.connect_raw();
    let _ = s.write_all(&encode_frame(&ClientHello::current()).unwrap());
    assert_closed(&mut s);
}

#[test]
fn socket_is_private() {
    let d = Daemon::start(&[]);
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn key_memory_is_locked() {
    let d = Daemon::start(&[]);
    // The daemon is not dumpable, so its /proc files are root-owned; we run as root.
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(kb > 0, "VmLck is 0:\n{status}");
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", d.child.id())).unwrap();
    assert!(
        smaps.lines().any(|l| l.starts_with("VmFlags:")
            && l.split_whitespace().any(|f| f == "lo")
            && l.split_whitespace().any(|f| f == "dd")),
        "no mapping is both locked and excluded from dumps"
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
}

#[test]
fn sigterm_exits_zero_and_removes_socket() {
    let mut d = Daemon::start(&[]);
    let mut s = d.connect();
    assert!(call(&mut s, 1, Request::Status).is_ok());
    let status = d.terminate();
    assert!(status.success(), "{status:?}");
    assert!(!d.socket.exists());
    assert_closed(&mut s);
}

#[test]
fn refuses_loose_state_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert!(init(&state).status.success());
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--dev-plain-key", "--state-dir"])
        .arg(&state)
        .arg("--socket")
        .arg(dir.path().join("s.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&state.display().to_string())
            && err.contains("0755")
            && err.contains("chmod 700"),
        "{err}"
    );
    assert!(!dir.path().join("s.sock").exists());
}

#[test]
fn init_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert!(init(&state).status.success());
    let key = std::fs::read(state.join("master.key")).unwrap();
    assert_eq!(&key[..8], b"HKMSMK01");
    assert_eq!(key.len(), 40);
    let again = init(&state);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(state.join("master.key")).unwrap(), key);
}

#[test]
fn refuses_to_take_over_a_live_socket() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert!(init(&state).status.success());
    let out = Command::new(BIN)
        .args(["serve", "--dev-plain-key", "--state-dir"])
        .arg(&state)
        .arg("--socket")
        .arg(&d.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another process is listening"));
    let mut s = d.connect();
    assert!(call(&mut s, 1, Request::Status).is_ok());
}

#[test]
fn idle_connections_do_not_delay_shutdown() {
    let mut d = Daemon::start(&[]);
    let _no_hello = d.connect_raw();
    let _idle = d.connect();
    let started = Instant::now();
    assert!(d.terminate().success());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn socket_group_makes_it_group_accessible() {
    let d = Daemon::start(&["--socket-group", "0"]);
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 0);
}

/// RSA keys are made on a thread of their own: an Encrypt sent after a
/// CreateKey RSA on the same connection is answered first (whatever the
/// key's time: the Encrypt's reply is written before the connection waits
/// again), and both are answered, even when SIGTERM comes while the key is
/// being made (RSA_2048, well within the shutdown grace period).
#[test]
fn rsa_key_generation_does_not_hold_up_other_requests() {
    let mut d = Daemon::start(&[]);
    let mut s = d.connect();
    let key = create_key(&mut s, "beside-rsa");
    let frame = |id, request| {
        encode_frame(&RequestFrame {
            id,
            request_id: [0; 16],
            request,
        })
        .unwrap()
    };
    let mut batch = frame(
        20,
        Request::CreateKey {
            key_id: "rsa".into(),
            version: 1,
            spec: KeySpec::Rsa2048,
        },
    );
    batch.extend(frame(
        21,
        Request::Encrypt {
            key,
            plaintext: SecretBytes::new(vec![1; 32]),
            context: vec![],
        },
    ));
    s.write_all(&batch).unwrap();
    let first: ResponseFrame = recv(&mut s).unwrap();
    assert_eq!(first.id, 21, "the Encrypt waited for the RSA key");
    assert!(matches!(first.result, Ok(Response::Ciphertext { .. })));
    nix_kill(d.child.id(), "TERM");
    let second: ResponseFrame = recv(&mut s).unwrap();
    assert_eq!(second.id, 20);
    assert!(
        matches!(second.result, Ok(Response::KeyCreated { .. })),
        "{:?}",
        second.result
    );
    assert!(d.terminate().success());
}

#[test]
fn sigterm_answers_requests_already_in_flight() {
    let mut d = Daemon::start(&[]);
    let mut s = d.connect();
    let key = create_key(&mut s, "drain");
    const N: u64 = 200;
    let mut batch = Vec::new();
    for id in 10..10 + N {
        let request = Request::Encrypt {
            key: key.clone(),
            plaintext: SecretBytes::new(vec![7; 64]),
            context: vec![],
        };
        batch.extend(
            encode_frame(&RequestFrame {
                id,
                request_id: [0; 16],
                request,
            })
            .unwrap(),
        );
    }
    s.write_all(&batch).unwrap();
    let first: ResponseFrame = recv(&mut s).unwrap();
    assert!(first.result.is_ok());
    nix_kill(d.child.id(), "TERM");
    let mut answered = 1;
    while let Some(reply) = recv::<ResponseFrame>(&mut s) {
        assert!(reply.result.is_ok(), "{reply:?}");
        answered += 1;
    }
    assert!(answered <= N);
    assert!(d.terminate().success());
}

/// Rough throughput of pipelined Encrypts on one connection. Run with
/// `cargo test --release -p hsm-daemon --test daemon -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn pipelined_throughput() {
    let d = Daemon::start(&[]);
    let mut s = d.connect();
    let key = create_key(&mut s, "bench");
    const N: u64 = 100_000;
    let mut writer = s.try_clone().unwrap();
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        let mut batch = Vec::new();
        for id in 0..N {
            let request = Request::Encrypt {
                key: key.clone(),
                plaintext: SecretBytes::new(vec![1; 32]),
                context: vec![("a".into(), "b".into())],
            };
            batch.extend(
                encode_frame(&RequestFrame {
                    id,
                    request_id: [0; 16],
                    request,
                })
                .unwrap(),
            );
            if batch.len() > 64 * 1024 {
                writer.write_all(&batch).unwrap();
                batch.clear();
            }
        }
        writer.write_all(&batch).unwrap();
    });
    for _ in 0..N {
        let reply: ResponseFrame = recv(&mut s).unwrap();
        assert!(reply.result.is_ok());
    }
    sender.join().unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{N} pipelined Encrypts in {secs:.2}s: {:.0}/s",
        N as f64 / secs
    );
}
