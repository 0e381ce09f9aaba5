//! The sealed master key, from outside: `init` refuses to make a key without
//! an operator secret (or the explicit development flag); `serve` refuses a
//! wrong secret, a truncated sealed file, a plain key without the flag, and a
//! secret file others can read, each with a clear message and the sealed
//! file untouched; the secret may come from a file, an inherited descriptor
//! or systemd's credential directory, never argv or the environment.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hsm_kms_tests::bins::bin_path;

const FAST_KDF: [&str; 4] = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];

struct Dirs {
    _tmp: tempfile::TempDir,
    state: PathBuf,
    socket: PathBuf,
    secret: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret");
    write_private(&secret, b"correct horse battery staple\n");
    Dirs {
        state: tmp.path().join("hsm"),
        socket: tmp.path().join("hsm.sock"),
        secret,
        _tmp: tmp,
    }
}

fn write_private(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn daemon() -> Command {
    let mut c = Command::new(bin_path("hsm-daemon"));
    c.env_remove("CREDENTIALS_DIRECTORY");
    c
}

fn init_sealed(d: &Dirs) {
    let out = daemon()
        .arg("init")
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--secret-file")
        .arg(&d.secret)
        .args(FAST_KDF)
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {out:?}");
}

/// Runs `serve` until it prints READY (then kills it: Ok) or exits (Err with
/// its stderr). Gives up after 20 s.
fn try_serve(mut cmd: Command) -> Result<(), String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(20))
            && line.starts_with("READY")
        {
            child.kill().unwrap();
            child.wait().unwrap();
            return Ok(());
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(!status.success(), "serve exited 0 without READY");
            return Err(err);
        }
        assert!(
            Instant::now() < deadline,
            "serve neither started nor exited"
        );
    }
}

fn serve(d: &Dirs) -> Command {
    let mut c = daemon();
    c.arg("serve")
        .arg("--state-dir")
        .arg(&d.state)
        .arg("--socket")
        .arg(&d.socket);
    c
}

#[test]
fn init_refuses_without_a_secret_or_the_dev_flag() {
    let d = dirs();
    let out = daemon()
        .arg("init")
        .arg("--state-dir")
        .arg(&d.state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--secret-file"), "{err}");
    assert!(!d.state.join("master.key").exists());
}

#[test]
fn sealed_master_key_holds_no_plain_key_and_unseals_with_the_secret_file() {
    let d = dirs();
    init_sealed(&d);
    let key = d.state.join("master.key");
    let bytes = fs::read(&key).unwrap();
    assert_eq!(bytes.len(), 96);
    assert_eq!(&bytes[..8], b"HKMSSK01");
    let master = hsm_kms_tests::sealed::unseal(b"correct horse battery staple", &bytes);
    assert!(!bytes.windows(32).any(|w| w == master), "key in the clear");
    let mut ok = serve(&d);
    ok.arg("--secret-file").arg(&d.secret);
    try_serve(ok).expect("serve with the right secret");
}

#[test]
fn wrong_secret_is_refused_and_the_sealed_file_is_untouched() {
    let d = dirs();
    init_sealed(&d);
    let key = d.state.join("master.key");
    let before = fs::read(&key).unwrap();
    let wrong = d.secret.with_file_name("wrong");
    write_private(&wrong, b"incorrect horse");
    let mut cmd = serve(&d);
    cmd.arg("--secret-file").arg(&wrong);
    let err = try_serve(cmd).expect_err("wrong secret must not start");
    assert!(err.contains("operator secret is wrong"), "{err}");
    assert!(!err.contains("incorrect horse"), "secret echoed: {err}");
    assert_eq!(fs::read(&key).unwrap(), before, "sealed file changed");
}

#[test]
fn truncated_sealed_file_is_refused() {
    let d = dirs();
    init_sealed(&d);
    let key = d.state.join("master.key");
    let good = fs::read(&key).unwrap();
    write_private(&key, &good[..95]);
    let mut cmd = serve(&d);
    cmd.arg("--secret-file").arg(&d.secret);
    let err = try_serve(cmd).expect_err("truncated must not start");
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn sealed_key_without_any_secret_source_is_refused() {
    let d = dirs();
    init_sealed(&d);
    let err = try_serve(serve(&d)).expect_err("no secret must not start");
    assert!(err.contains("is sealed"), "{err}");
}

#[test]
fn secret_file_readable_by_others_is_refused() {
    let d = dirs();
    init_sealed(&d);
    fs::set_permissions(&d.secret, fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = serve(&d);
    cmd.arg("--secret-file").arg(&d.secret);
    let err = try_serve(cmd).expect_err("loose secret file must not start");
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn plain_key_needs_the_dev_flag_which_warns() {
    let d = dirs();
    let out = daemon()
        .args(["init", "--dev-plain-key", "--state-dir"])
        .arg(&d.state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("UNSEALED"));
    let err = try_serve(serve(&d)).expect_err("plain without the flag");
    assert!(err.contains("--dev-plain-key"), "{err}");
    let mut dev = serve(&d);
    dev.arg("--dev-plain-key");
    try_serve(dev).expect("plain with the flag");
}

#[test]
fn secret_from_an_inherited_descriptor_unseals() {
    let d = dirs();
    init_sealed(&d);
    // fd 0 is a pipe the test writes the secret into.
    let mut cmd = serve(&d);
    cmd.args(["--secret-fd", "0"]).stdin(Stdio::piped());
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.starts_with("READY"), "{line:?}");
}

#[test]
fn secret_from_the_systemd_credentials_directory_unseals() {
    let d = dirs();
    init_sealed(&d);
    let creds = d.secret.with_file_name("creds");
    fs::create_dir(&creds).unwrap();
    write_private(
        &creds.join("hsm-master-secret"),
        b"correct horse battery staple",
    );
    let mut cmd = serve(&d);
    cmd.env("CREDENTIALS_DIRECTORY", &creds);
    try_serve(cmd).expect("serve with the credential");
}
