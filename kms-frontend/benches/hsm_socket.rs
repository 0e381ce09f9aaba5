//! The frontend -> hsm-daemon round trip over the Unix socket (`cargo
//! bench -p kms-frontend --bench hsm_socket`), against a real `hsm-daemon`
//! on a temporary state: one Encrypt (32 bytes) at a time, and 256 in
//! flight at once through the pipelined `HsmClient`, with a pool of 1, 2
//! and 4 connections. The daemon binary is `HSM_DAEMON_BIN`, or the
//! `hsm-daemon` next to this bench's target directory (build it first with
//! `cargo build --release -p hsm-daemon`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use kms_frontend::hsm_client::{HsmClient, HsmClientSettings};
use protocol::{KeyRef, KeySpec, Request, Response, SecretBytes};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const KEY_ID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const IN_FLIGHT: usize = 256;

struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn daemon_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HSM_DAEMON_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("bench path");
    // target/<profile>/deps/hsm_socket-HASH -> target/<profile>/hsm-daemon
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("hsm-daemon")
}

fn start_daemon() -> Daemon {
    let bin = daemon_bin();
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release -p hsm-daemon` or set HSM_DAEMON_BIN",
        bin.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("hsm");
    let socket = dir.path().join("hsm.sock");
    let init = Command::new(&bin)
        .args(["init", "--dev-plain-key", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::null())
        .status()
        .expect("hsm-daemon init");
    assert!(init.success(), "hsm-daemon init failed");
    let mut child = Command::new(&bin)
        .args(["serve", "--dev-plain-key", "--state-dir"])
        .arg(&state)
        .arg("--socket")
        .arg(&socket)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hsm-daemon serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("READY line");
    assert!(
        line.starts_with("READY"),
        "hsm-daemon did not start: {line:?}"
    );
    Daemon {
        child,
        socket,
        _dir: dir,
    }
}

fn encrypt(key: &KeyRef) -> Request {
    Request::Encrypt {
        key: key.clone(),
        plaintext: SecretBytes::new(vec![0x5a; 32]),
        context: Vec::new(),
    }
}

fn round_trip(c: &mut Criterion) {
    let daemon = start_daemon();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let setup = HsmClient::new(daemon.socket.clone());
    let created = rt.block_on(setup.call(Request::CreateKey {
        key_id: KEY_ID.to_owned(),
        version: 1,
        spec: KeySpec::SymmetricDefault,
    }));
    let Ok(Response::KeyCreated { token }) = created else {
        panic!("CreateKey failed: {created:?}");
    };
    let key = KeyRef {
        key_id: KEY_ID.to_owned(),
        version: 1,
        token,
    };

    let mut g = c.benchmark_group("hsm_socket");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encrypt_one_at_a_time", |b| {
        b.iter(|| rt.block_on(setup.call(encrypt(&key))).expect("encrypt"))
    });
    g.throughput(Throughput::Elements(IN_FLIGHT as u64));
    for pool in [1, 2, 4] {
        let client = HsmClient::with_settings(
            daemon.socket.clone(),
            HsmClientSettings {
                pool_size: pool,
                ..HsmClientSettings::default()
            },
        );
        g.bench_function(format!("encrypt_{IN_FLIGHT}_in_flight_pool_{pool}"), |b| {
            b.iter(|| {
                let calls = (0..IN_FLIGHT).map(|_| client.call(encrypt(&key)));
                let replies = rt.block_on(join_all(calls));
                assert!(replies.iter().all(Result::is_ok), "an Encrypt failed");
            })
        });
    }
    g.finish();
    drop(daemon);
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
