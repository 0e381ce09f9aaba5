//! Invariant I4 and the file contract: the daemon's state directory, master
//! key file and socket are private; `serve` refuses loose permissions; `init`
//! refuses to overwrite; a peer whose uid is not allowed is turned away even
//! when file modes would let it in; the frontend's database and keys are
//! private too.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hsm_kms_tests::TestEnv;
use hsm_kms_tests::bins::bin_path;

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().mode() & 0o777
}

fn init(dir: &Path) -> std::process::Output {
    Command::new(bin_path("hsm-daemon"))
        .arg("init")
        .arg("--dev-plain-key")
        .arg("--state-dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn init_creates_private_files_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("hsm");
    let out = init(&state);
    assert!(out.status.success(), "init: {out:?}");
    assert_eq!(mode(&state), 0o700, "state dir mode");
    let key = state.join("master.key");
    assert_eq!(mode(&key), 0o600, "master.key mode");
    let bytes = fs::read(&key).unwrap();
    assert_eq!(bytes.len(), 40);
    assert_eq!(&bytes[..8], b"HKMSMK01");
    assert_ne!(&bytes[8..], &[0u8; 32][..], "master key is random");

    let again = init(&state);
    assert!(
        !again.status.success(),
        "second init must refuse: {again:?}"
    );
    assert_eq!(fs::read(&key).unwrap(), bytes, "master.key unchanged");

    // Two inits make two different keys.
    let other = tmp.path().join("hsm2");
    assert!(init(&other).status.success());
    assert_ne!(fs::read(other.join("master.key")).unwrap(), bytes);
}

/// Runs `serve` and expects it to exit non-zero without printing READY
/// (killing it, and failing, if it is still running after 10 s).
fn assert_serve_refuses(state: &Path, socket: &Path, why: &str) {
    let mut child = Command::new(bin_path("hsm-daemon"))
        .arg("serve")
        .arg("--dev-plain-key")
        .arg("--state-dir")
        .arg(state)
        .arg("--socket")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("serve started (still running after 10 s) with {why}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(
        !status.success() && !stdout.contains("READY"),
        "serve started with {why}: {status} {stdout:?}"
    );
}

#[test]
fn serve_refuses_loose_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("hsm");
    let socket = tmp.path().join("hsm.sock");
    assert!(init(&state).status.success());
    let key = state.join("master.key");

    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
    assert_serve_refuses(&state, &socket, "a group-readable master.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o604)).unwrap();
    assert_serve_refuses(&state, &socket, "a world-readable master.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
    assert_serve_refuses(&state, &socket, "a world-readable state dir");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();

    // Control: with the modes restored it starts (then we stop it).
    let mut child = Command::new(bin_path("hsm-daemon"))
        .arg("serve")
        .arg("--dev-plain-key")
        .arg("--state-dir")
        .arg(&state)
        .arg("--socket")
        .arg(&socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.starts_with("READY unix:"), "control start: {line:?}");
}

#[test]
fn serve_refuses_a_corrupt_master_key() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("hsm");
    let socket = tmp.path().join("hsm.sock");
    assert!(init(&state).status.success());
    let key = state.join("master.key");
    let good = fs::read(&key).unwrap();
    fs::write(&key, &good[..39]).unwrap();
    assert_serve_refuses(&state, &socket, "a truncated master.key");
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 1;
    fs::write(&key, &bad_magic).unwrap();
    assert_serve_refuses(&state, &socket, "a master.key with a bad magic");
}

#[test]
fn daemon_and_frontend_files_are_private() {
    let env = TestEnv::start();
    let socket = env.socket_path();
    let meta = fs::metadata(socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "socket mode");
    assert_eq!(mode(env.hsm_state_dir()), 0o700);
    assert_eq!(mode(&env.master_key_path()), 0o600);
    let mut checked = 0;
    for entry in fs::read_dir(env.frontend_state_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("kms.db") {
            assert_eq!(
                mode(&entry.path()) & 0o077,
                0,
                "{name} is readable by others"
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "no kms.db in the frontend state dir");
    let tls = env.frontend_state_dir().join("tls");
    for entry in fs::read_dir(&tls).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = fs::read_to_string(entry.path()).unwrap_or_default();
        if text.contains("PRIVATE KEY") {
            assert_eq!(
                mode(&entry.path()) & 0o077,
                0,
                "tls/{name} holds a private key"
            );
        }
    }
}

/// Connects to `socket` as uid/gid 65534 (via python3) and reports whether
/// the daemon closed the connection without being sent anything:
/// `Some(true)` closed, `Some(false)` kept open for 2 s, `None` no python3.
fn nobody_connection_closed(socket: &Path) -> Option<bool> {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except PermissionError:
    sys.exit(5)
s.settimeout(2.0)
try:
    data = s.recv(1)
    sys.exit(0 if data == b"" else 4)
except ConnectionResetError:
    sys.exit(0)
except socket.timeout:
    sys.exit(3)
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(socket);
    std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
    std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
    let status = cmd.status().ok()?;
    match status.code() {
        Some(0) => Some(true),
        Some(3) => Some(false),
        other => panic!("peer probe failed: exit {other:?}"),
    }
}

#[test]
fn socket_refuses_other_uid() {
    if !hsm_kms_tests::running_as_root("socket_refuses_other_uid") {
        return;
    }
    if Command::new("python3").arg("-V").output().is_err() {
        eprintln!("SKIPPED socket_refuses_other_uid: python3 not installed");
        return;
    }
    let env = TestEnv::start();
    let socket = env.socket_path();
    // Open the file modes wide, as a misconfiguration would: the uid check
    // (SO_PEERCRED) must still turn nobody away.
    fs::set_permissions(env.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(socket.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(socket, fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(
        nobody_connection_closed(socket),
        Some(true),
        "hsm-daemon kept a connection from uid 65534 open (not in its allow list)"
    );
    // Control: an allowed peer (our own uid) is kept open while it is silent.
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1];
    let r = std::io::Read::read(&mut s, &mut buf);
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "control: the daemon closed a silent connection from an allowed uid: {r:?}"
    );
}
