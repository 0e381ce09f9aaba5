//! The daemon's sandbox, from outside: it runs under a seccomp filter (mode 2)
//! with no_new_privs, a syscall outside the allow-list kills it with SIGSYS,
//! its start-up log says what landlock achieved on this kernel, it holds no
//! socket but its listening Unix socket and connections, and started as
//! root with `--user` it runs as that user.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hsm_kms_tests::TestEnv;
use hsm_kms_tests::bins::bin_path;

fn status_line(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} missing from /proc/{pid}/status"))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn daemon_runs_under_seccomp_filter_with_no_new_privs() {
    let env = TestEnv::start();
    // Serve something first: the filter must not kill normal work.
    env.client("alice").create_key().send().await.unwrap();
    let pid = env.daemon_pid();
    assert_eq!(status_line(pid, "Seccomp:"), "2", "seccomp filter mode");
    assert_eq!(status_line(pid, "NoNewPrivs:"), "1", "no_new_privs");
    // Control: the test process itself is not filtered.
    assert_eq!(status_line(std::process::id(), "Seccomp:"), "0");
    let log = std::fs::read_to_string(env.daemon_log()).unwrap();
    assert!(log.contains("seccomp: allow-list installed"), "{log}");
    assert!(
        log.contains("landlock:"),
        "start-up log reports landlock: {log}"
    );
}

#[tokio::test]
async fn daemon_holds_no_socket_but_unix_ones() {
    let env = TestEnv::start();
    env.client("alice").create_key().send().await.unwrap();
    let pid = env.daemon_pid();
    let mut sockets = 0;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            sockets += 1;
            let unix = std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap();
            assert!(
                unix.lines()
                    .any(|l| l.split_whitespace().nth(6) == Some(inode)),
                "fd {target} of hsm-daemon is not a Unix socket"
            );
        }
    }
    assert!(
        sockets >= 2,
        "listener and the frontend's connection: {sockets}"
    );
}

#[test]
fn forbidden_syscall_kills_the_daemon_with_sigsys() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("hsm");
    let out = Command::new(bin_path("hsm-daemon"))
        .args(["init", "--dev-plain-key", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut child = Command::new(bin_path("hsm-daemon"))
        .args([
            "serve",
            "--dev-plain-key",
            "--debug-forbidden-syscall",
            "--state-dir",
        ])
        .arg(&state)
        .arg("--socket")
        .arg(tmp.path().join("hsm.sock"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "daemon survived a forbidden syscall"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(
        status.signal(),
        Some(nix::sys::signal::Signal::SIGSYS as i32),
        "expected death by SIGSYS, got {status}; stderr:\n{err}"
    );
    assert!(
        err.contains("seccomp: allow-list installed"),
        "the filter was on when it died: {err}"
    );
}

#[test]
fn daemon_started_as_root_drops_to_its_user() {
    if !hsm_kms_tests::running_as_root("daemon_started_as_root_drops_to_its_user") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let state = tmp.path().join("hsm");
    let run = tmp.path().join("run");
    let out = Command::new(bin_path("hsm-daemon"))
        .args(["init", "--dev-plain-key", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    for p in [&state, &state.join("master.key"), &run] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let mut child = Command::new(bin_path("hsm-daemon"))
        .args([
            "serve",
            "--dev-plain-key",
            "--user",
            "nobody",
            "--state-dir",
        ])
        .arg(&state)
        .arg("--socket")
        .arg(run.join("hsm.sock"))
        .args(["--allow-uid", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let uid = status_line(child.id(), "Uid:");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.starts_with("READY"), "{line:?}");
    assert_eq!(uid, "65534", "hsm-daemon runs as nobody");
}

#[tokio::test]
async fn frontend_warns_loudly_when_it_can_read_the_daemon_state_dir() {
    // Same user for both (development): noted, not alarmed.
    let env = TestEnv::start();
    let log = std::fs::read_to_string(env.frontend_log()).unwrap();
    assert!(log.contains("single-user development"), "{log}");
    assert!(!log.contains("CAN READ"), "{log}");
    drop(env);
    if !hsm_kms_tests::running_as_root(
        "frontend_warns_loudly_when_it_can_read_the_daemon_state_dir",
    ) {
        return;
    }
    // The daemon as nobody, the frontend as root (which reads anything): the
    // boundary is broken and the frontend must say so.
    let env = TestEnv::start_with(hsm_kms_tests::EnvOptions {
        daemon_user: Some((65534, 65534)),
        ..Default::default()
    });
    let log = std::fs::read_to_string(env.frontend_log()).unwrap();
    assert!(
        log.contains("CAN READ hsm-daemon's state directory"),
        "{log}"
    );
}
