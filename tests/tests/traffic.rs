//! Invariants I1 and I2 on the wire: the bytes between kms-frontend and
//! hsm-daemon never carry the master key or a CMK (nor an HMAC or private
//! key), in either direction. The frontend is pointed at a relay, a small
//! Unix-socket proxy in this test that forwards to the daemon's socket and
//! records every byte each way, per connection. Positive controls show the
//! capture sees what does cross: Encrypt plaintexts going to the daemon and
//! data keys coming back.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hsm_kms_tests::leaks::{self, Secret};
use hsm_kms_tests::{EnvOptions, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};

/// The bytes of one direction of one relayed connection.
type Capture = Arc<Mutex<Vec<u8>>>;

/// What the relay saw, per connection, each way.
#[derive(Default)]
struct Recording {
    to_daemon: Vec<Capture>,
    to_frontend: Vec<Capture>,
}

/// A Unix-socket relay: accepts at `listen`, connects each client to
/// `upstream`, copies both ways and records what it copies.
struct Relay {
    recording: Arc<Mutex<Recording>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    fn start(listen: &Path, upstream: PathBuf) -> Self {
        let listener = UnixListener::bind(listen).unwrap();
        let recording = Arc::new(Mutex::new(Recording::default()));
        let rec = Arc::clone(&recording);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let daemon = UnixStream::connect(&upstream)
                    .await
                    .expect("relay connects to the daemon");
                let (to_daemon, to_frontend) = (Capture::default(), Capture::default());
                {
                    let mut r = rec.lock().unwrap();
                    r.to_daemon.push(Arc::clone(&to_daemon));
                    r.to_frontend.push(Arc::clone(&to_frontend));
                }
                let (cr, cw) = client.into_split();
                let (dr, dw) = daemon.into_split();
                tokio::spawn(pump(cr, dw, to_daemon));
                tokio::spawn(pump(dr, cw, to_frontend));
            }
        });
        Self { recording, task }
    }

    /// The captures of one direction, one per connection.
    fn captured(&self, to_daemon: bool) -> Vec<Vec<u8>> {
        let r = self.recording.lock().unwrap();
        let side = if to_daemon {
            &r.to_daemon
        } else {
            &r.to_frontend
        };
        side.iter().map(|c| c.lock().unwrap().clone()).collect()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, appending every byte to `capture`, until EOF or
/// an error on either side.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, capture: Capture) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        capture.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Every secret of `secrets` found in any connection's capture.
fn leaks_in(captures: &[Vec<u8>], secrets: &[Secret]) -> Vec<String> {
    let mut found: Vec<String> = captures
        .iter()
        .flat_map(|c| leaks::find(c, secrets))
        .collect();
    found.sort();
    found.dedup();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_and_cmks_never_cross_the_socket() {
    let relay_dir = tempfile::tempdir().unwrap();
    let relay_socket = relay_dir.path().join("relay.sock");
    let mut env = TestEnv::start_with(EnvOptions {
        frontend_hsm_socket: Some(relay_socket.clone()),
        defer_frontend: true,
        ..EnvOptions::default()
    });
    let relay = Relay::start(&relay_socket, env.socket_path().to_owned());
    env.start_frontend().await;

    let work = leaks::mixed_workload(&env.client("alice")).await;
    let material = leaks::key_material(&env, &work.key_ids);
    // master key, two CMKs, the HMAC key, the P-256 key (document and scalar)
    assert!(material.len() >= 6, "recovered {material:?}");

    let to_daemon = relay.captured(true);
    let to_frontend = relay.captured(false);
    let total = |c: &[Vec<u8>]| c.iter().map(Vec::len).sum::<usize>();
    assert!(
        !to_daemon.is_empty() && total(&to_daemon) > 0 && total(&to_frontend) > 0,
        "the frontend's traffic went through the relay ({} connections, {} bytes to the \
         daemon, {} back)",
        to_daemon.len(),
        total(&to_daemon),
        total(&to_frontend)
    );

    // Positive controls: what must cross does show up in the capture.
    let missing: Vec<&str> = work
        .plaintexts
        .iter()
        .filter(|p| leaks_in(&to_daemon, std::slice::from_ref(p)).is_empty())
        .map(|p| p.what.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "positive control failed: Encrypt plaintexts not seen going to the daemon: {missing:?}"
    );
    let missing: Vec<&str> = work
        .data_keys
        .iter()
        .filter(|k| leaks_in(&to_frontend, std::slice::from_ref(k)).is_empty())
        .map(|k| k.what.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "positive control failed: data keys not seen coming back from the daemon: {missing:?}"
    );

    let found = leaks_in(&to_daemon, &material);
    assert!(
        found.is_empty(),
        "key material in the frontend -> daemon traffic: {found:?}"
    );
    let found = leaks_in(&to_frontend, &material);
    assert!(
        found.is_empty(),
        "key material in the daemon -> frontend traffic: {found:?}"
    );
}
