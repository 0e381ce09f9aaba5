//! `TestEnv`: one private hsm-daemon + kms-frontend pair on a temp directory.
//!
//! Layout of the temp directory `D`:
//! `D/hsm` (daemon state, `master.key`), `D/run/hsm.sock`, `D/frontend`
//! (`kms.db`, `tls/ca.pem`), `D/frontend.toml`, `D/daemon.log`,
//! `D/frontend.log`, `D/operator.secret` (the secret that seals the master
//! key; the daemon is given `--secret-file`). Both processes are started through their documented CLIs
//! and are ready once they print their `READY` line. Dropping the env kills
//! both; when the drop happens during a panic the logs are printed to stderr.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng;
use rand::distributions::Alphanumeric;

use crate::bins::bin_path;

/// How long a process may take to print its READY line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Poll interval while waiting for a process.
const POLL: Duration = Duration::from_millis(10);

/// A configured frontend principal and its credentials.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// An account administrator (`admin = true` in the config).
    pub admin: bool,
}

/// Knobs for [`TestEnv::start_with`].
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    /// Run hsm-daemon as this (uid, gid) instead of the test's own user; the
    /// daemon is then given `--allow-uid <our uid>` so the frontend may connect.
    pub daemon_user: Option<(u32, u32)>,
    /// `max_body_bytes` in the frontend config.
    pub max_body_bytes: Option<usize>,
    /// `scheduler_interval_secs` in the frontend config.
    pub scheduler_interval_secs: Option<u64>,
    /// `request_timeout_secs` in the frontend config.
    pub request_timeout_secs: Option<u64>,
    /// `log_format = "json"` in the frontend config (default: human).
    pub json_logs: bool,
    /// Give the frontend a `dev_clock_offset_file` (see
    /// [`TestEnv::advance_clock`]).
    pub dev_clock: bool,
    /// TOML appended at the end of the frontend config (after the
    /// principals, so it must start with a table header, e.g. `[audit]`).
    pub frontend_extra_toml: Option<String>,
    /// Point the frontend at this socket instead of the daemon's (a relay
    /// between the two, say). See [`Self::defer_frontend`].
    pub frontend_hsm_socket: Option<PathBuf>,
    /// Start only the daemon; the test starts the frontend with
    /// [`TestEnv::start_frontend`] once whatever sits between them is up.
    pub defer_frontend: bool,
    /// `RUST_LOG` for both processes (default: the test's own `RUST_LOG`,
    /// else `info`).
    pub log_filter: Option<String>,
}

/// A running process and its log.
#[derive(Debug)]
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&mut self, sig: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits i32"));
        // The process may already be gone; that is fine for a kill.
        let _ = kill(pid, sig);
    }

    /// SIGKILL and reap.
    fn kill9(mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM, wait for exit; SIGKILL (and report) if it does not exit in time.
    fn terminate(mut self) -> Result<ExitStatus, String> {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                Ok(None) => {
                    let name = self.name;
                    self.kill9();
                    return Err(format!(
                        "{name} did not exit within {STOP_TIMEOUT:?} of SIGTERM"
                    ));
                }
                Err(e) => return Err(format!("waiting for {}: {e}", self.name)),
            }
        }
    }
}

/// A private daemon + frontend pair. See the module doc for the layout.
#[derive(Debug)]
pub struct TestEnv {
    dir: tempfile::TempDir,
    opts: EnvOptions,
    hsm_state: PathBuf,
    socket: PathBuf,
    frontend_state: PathBuf,
    config: PathBuf,
    daemon_log: PathBuf,
    frontend_log: PathBuf,
    principals: Vec<Principal>,
    secret_file: PathBuf,
    daemon: Option<Proc>,
    frontend: Option<Proc>,
    endpoint: String,
    ca_path: PathBuf,
    ca_pem: Vec<u8>,
}

fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn make_principal(name: &str) -> Principal {
    Principal {
        name: name.to_owned(),
        arn: format!("arn:aws:iam::{}:user/{name}", crate::ACCOUNT_ID),
        access_key_id: format!("AKIA{}", random_string(16).to_uppercase()),
        secret_access_key: random_string(40),
        admin: false,
    }
}

fn make_admin(name: &str) -> Principal {
    Principal {
        admin: true,
        ..make_principal(name)
    }
}

fn mkdir_mode(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The tail of a log file, for failure messages.
pub fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(60);
    lines[start..].join("\n")
}

/// Spawns `cmd` with stdout piped and stderr appended to `log`, and waits for
/// a stdout line starting with `prefix`. Returns the child and that line.
fn spawn_ready(mut cmd: Command, name: &'static str, prefix: &str, log: &Path) -> (Proc, String) {
    let log_file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file));
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    // Keep draining stdout for the life of the process so it never blocks on
    // a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut proc = Proc { child, name };
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(POLL) {
            Ok(line) if line.starts_with(prefix) => return (proc, line),
            Ok(line) => seen.push(line),
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "{name} exited ({status}) before printing `{prefix}`; stdout: {seen:?}\n--- {} ---\n{}",
                log.display(),
                log_tail(log)
            );
        }
        if Instant::now() > deadline {
            proc.kill9();
            panic!(
                "{name} did not print `{prefix}` within {READY_TIMEOUT:?}; stdout: {seen:?}\n--- {} ---\n{}",
                log.display(),
                log_tail(log)
            );
        }
    }
}

impl TestEnv {
    /// Starts a fresh pair with principals `alice`, `bob`, `carol` and the
    /// administrator `admin`.
    pub fn start() -> Self {
        Self::start_with(EnvOptions::default())
    }

    /// Starts a fresh pair with the given options.
    pub fn start_with(opts: EnvOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hsm-kms-test.")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_path_buf();
        let run = d.join("run");
        let hsm_state = match opts.daemon_user {
            None => {
                mkdir_mode(&run, 0o700);
                d.join("hsm")
            }
            Some((uid, gid)) => {
                // The daemon's user must reach its state dir and socket dir.
                fs::set_permissions(&d, fs::Permissions::from_mode(0o711)).expect("chmod D");
                let home = d.join("hsm-home");
                mkdir_mode(&home, 0o700);
                mkdir_mode(&run, 0o700);
                for p in [&home, &run] {
                    chown(p, Some(uid), Some(gid)).expect("chown for the daemon user");
                }
                home.join("hsm")
            }
        };
        let frontend_state = d.join("frontend");
        mkdir_mode(&frontend_state, 0o700);
        let secret_file = d.join("operator.secret");
        fs::write(&secret_file, random_string(32)).expect("write operator secret");
        fs::set_permissions(&secret_file, fs::Permissions::from_mode(0o600))
            .expect("chmod operator secret");
        if let Some((uid, gid)) = opts.daemon_user {
            chown(&secret_file, Some(uid), Some(gid)).expect("chown operator secret");
        }
        let mut env = TestEnv {
            socket: run.join("hsm.sock"),
            config: d.join("frontend.toml"),
            daemon_log: d.join("daemon.log"),
            frontend_log: d.join("frontend.log"),
            principals: vec![
                make_principal("alice"),
                make_principal("bob"),
                make_principal("carol"),
                make_admin("admin"),
            ],
            hsm_state,
            frontend_state,
            secret_file,
            dir,
            opts,
            daemon: None,
            frontend: None,
            endpoint: String::new(),
            ca_path: PathBuf::new(),
            ca_pem: Vec::new(),
        };
        env.init_daemon();
        env.write_config();
        env.spawn_daemon();
        if !env.opts.defer_frontend {
            env.spawn_frontend();
        }
        env
    }

    /// The `RUST_LOG` given to both processes.
    fn log_filter(&self) -> String {
        self.opts
            .log_filter
            .clone()
            .or_else(|| std::env::var("RUST_LOG").ok())
            .unwrap_or_else(|| "info".into())
    }

    fn daemon_command(&self) -> Command {
        let mut cmd = Command::new(bin_path("hsm-daemon"));
        cmd.env("RUST_LOG", self.log_filter());
        if let Some((uid, gid)) = self.opts.daemon_user {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn init_daemon(&self) {
        let mut cmd = self.daemon_command();
        // Cheap Argon2id parameters: tests start many daemons.
        cmd.arg("init")
            .arg("--state-dir")
            .arg(&self.hsm_state)
            .arg("--secret-file")
            .arg(&self.secret_file)
            .args(["--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
        let out = cmd.output().expect("run hsm-daemon init");
        assert!(
            out.status.success(),
            "hsm-daemon init failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn serve_command(&self) -> Command {
        let mut cmd = self.daemon_command();
        cmd.arg("serve")
            .arg("--state-dir")
            .arg(&self.hsm_state)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--secret-file")
            .arg(&self.secret_file);
        if self.opts.daemon_user.is_some() {
            cmd.arg("--allow-uid")
                .arg(nix::unistd::getuid().to_string());
        }
        cmd
    }

    fn daemon_ready(&mut self, proc: Proc, line: &str) {
        let expected = format!("READY unix:{}", self.socket.display());
        assert_eq!(line.trim_end(), expected, "hsm-daemon READY line");
        self.daemon = Some(proc);
    }

    fn spawn_daemon(&mut self) {
        let (proc, line) = spawn_ready(
            self.serve_command(),
            "hsm-daemon",
            "READY unix:",
            &self.daemon_log,
        );
        self.daemon_ready(proc, &line);
    }

    /// Starts the daemon from an async test without blocking its runtime
    /// (clients' connection tasks must keep running meanwhile).
    async fn spawn_daemon_async(&mut self) {
        let cmd = self.serve_command();
        let log = self.daemon_log.clone();
        let (proc, line) = tokio::task::spawn_blocking(move || {
            spawn_ready(cmd, "hsm-daemon", "READY unix:", &log)
        })
        .await
        .expect("daemon start-up thread");
        self.daemon_ready(proc, &line);
    }

    fn write_config(&self) {
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nhsm_socket = \"{}\"\nhsm_state_dir = \"{}\"\nregion = \"{}\"\naccount_id = \"{}\"\n",
            self.frontend_state.display(),
            self.opts
                .frontend_hsm_socket
                .as_ref()
                .unwrap_or(&self.socket)
                .display(),
            self.hsm_state.display(),
            crate::REGION,
            crate::ACCOUNT_ID
        );
        if let Some(max) = self.opts.max_body_bytes {
            toml.push_str(&format!("max_body_bytes = {max}\n"));
        }
        if let Some(secs) = self.opts.scheduler_interval_secs {
            toml.push_str(&format!("scheduler_interval_secs = {secs}\n"));
        }
        if let Some(secs) = self.opts.request_timeout_secs {
            toml.push_str(&format!("request_timeout_secs = {secs}\n"));
        }
        if self.opts.json_logs {
            toml.push_str("log_format = \"json\"\n");
        }
        if self.opts.dev_clock {
            toml.push_str(&format!(
                "dev_clock_offset_file = \"{}\"\n",
                self.clock_offset_path().display()
            ));
        }
        for p in &self.principals {
            toml.push_str(&format!(
                "\n[[principals]]\narn = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nadmin = {}\n",
                p.arn, p.access_key_id, p.secret_access_key, p.admin
            ));
        }
        if let Some(extra) = &self.opts.frontend_extra_toml {
            toml.push('\n');
            toml.push_str(extra);
        }
        fs::write(&self.config, toml).expect("write frontend config");
        fs::set_permissions(&self.config, fs::Permissions::from_mode(0o600)).expect("chmod config");
    }

    fn frontend_command(&self) -> Command {
        let mut cmd = Command::new(bin_path("kms-frontend"));
        cmd.arg("--config").arg(&self.config);
        cmd.env("RUST_LOG", self.log_filter());
        cmd
    }

    fn frontend_ready(&mut self, proc: Proc, line: &str) {
        let mut parts = line.split_whitespace();
        let _ready = parts.next();
        let endpoint = parts.next().expect("READY line has an endpoint").to_owned();
        let ca = parts
            .next()
            .and_then(|p| p.strip_prefix("ca="))
            .unwrap_or_else(|| panic!("READY line without ca=: {line:?}"));
        assert!(
            endpoint.starts_with("https://127.0.0.1:"),
            "unexpected endpoint in {line:?}"
        );
        self.ca_path = PathBuf::from(ca);
        self.ca_pem = fs::read(&self.ca_path)
            .unwrap_or_else(|e| panic!("read CA {}: {e}", self.ca_path.display()));
        self.endpoint = endpoint;
        self.frontend = Some(proc);
    }

    fn spawn_frontend(&mut self) {
        let (proc, line) = spawn_ready(
            self.frontend_command(),
            "kms-frontend",
            "READY https://",
            &self.frontend_log,
        );
        self.frontend_ready(proc, &line);
    }

    /// Starts the frontend without blocking the test's runtime.
    async fn spawn_frontend_async(&mut self) {
        let cmd = self.frontend_command();
        let log = self.frontend_log.clone();
        let (proc, line) = tokio::task::spawn_blocking(move || {
            spawn_ready(cmd, "kms-frontend", "READY https://", &log)
        })
        .await
        .expect("frontend start-up thread");
        self.frontend_ready(proc, &line);
    }

    /// SIGTERM the frontend, require exit status 0, start it again on the same
    /// state. The port may change: build clients after this returns. Waits
    /// off the runtime so clients' connection tasks keep running (a blocked
    /// runtime could not answer the server's GOAWAY).
    pub async fn restart_frontend(&mut self) {
        let proc = self.frontend.take().expect("frontend running");
        let status = tokio::task::spawn_blocking(move || proc.terminate())
            .await
            .expect("stop thread")
            .unwrap_or_else(|e| panic!("{e}\n{}", log_tail(&self.frontend_log)));
        assert!(
            status.success(),
            "kms-frontend exited with {status} after SIGTERM\n{}",
            log_tail(&self.frontend_log)
        );
        self.spawn_frontend_async().await;
    }

    /// SIGTERM the daemon, require exit status 0, start it again on the same
    /// state and socket. The frontend keeps running and must reconnect.
    pub async fn restart_daemon(&mut self) {
        let proc = self.daemon.take().expect("daemon running");
        let status = tokio::task::spawn_blocking(move || proc.terminate())
            .await
            .expect("stop thread")
            .unwrap_or_else(|e| panic!("{e}\n{}", log_tail(&self.daemon_log)));
        assert!(
            status.success(),
            "hsm-daemon exited with {status} after SIGTERM\n{}",
            log_tail(&self.daemon_log)
        );
        self.spawn_daemon_async().await;
    }

    /// SIGKILL the frontend (no restart).
    pub fn kill9_frontend(&mut self) {
        if let Some(p) = self.frontend.take() {
            p.kill9();
        }
    }

    /// SIGKILL the daemon (no restart).
    pub fn kill9_daemon(&mut self) {
        if let Some(p) = self.daemon.take() {
            p.kill9();
        }
    }

    /// Start the frontend again after [`Self::kill9_frontend`], or for the
    /// first time with [`EnvOptions::defer_frontend`].
    pub async fn start_frontend(&mut self) {
        assert!(self.frontend.is_none(), "frontend already running");
        self.spawn_frontend_async().await;
    }

    /// Start the daemon again after [`Self::kill9_daemon`].
    pub async fn start_daemon(&mut self) {
        assert!(self.daemon.is_none(), "daemon already running");
        self.spawn_daemon_async().await;
    }

    /// `None` while the frontend is still running, its exit status once it
    /// has exited (a crash shows up here).
    pub fn frontend_exit(&mut self) -> Option<ExitStatus> {
        self.frontend
            .as_mut()
            .and_then(|p| p.child.try_wait().ok().flatten())
    }

    /// Same as [`Self::frontend_exit`] for the daemon.
    pub fn daemon_exit(&mut self) -> Option<ExitStatus> {
        self.daemon
            .as_mut()
            .and_then(|p| p.child.try_wait().ok().flatten())
    }

    pub fn frontend_pid(&self) -> u32 {
        self.frontend.as_ref().expect("frontend running").pid()
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon running").pid()
    }

    /// The temp directory `D`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn hsm_state_dir(&self) -> &Path {
        &self.hsm_state
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.hsm_state.join("master.key")
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    pub fn frontend_state_dir(&self) -> &Path {
        &self.frontend_state
    }

    /// The frontend's development clock offset file.
    pub fn clock_offset_path(&self) -> PathBuf {
        self.dir.path().join("clock_offset")
    }

    /// Moves the frontend's clock forward by `secs` (needs
    /// [`EnvOptions::dev_clock`]); the frontend reads the offset on every
    /// look at the time.
    pub fn advance_clock(&self, secs: i64) {
        let path = self.clock_offset_path();
        let now: i64 = fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        fs::write(&path, format!("{}\n", now + secs)).expect("write clock offset");
    }

    pub fn db_path(&self) -> PathBuf {
        self.frontend_state.join("kms.db")
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn daemon_log(&self) -> &Path {
        &self.daemon_log
    }

    pub fn frontend_log(&self) -> &Path {
        &self.frontend_log
    }

    /// `https://127.0.0.1:PORT` of the running frontend.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `127.0.0.1:PORT` of the running frontend.
    pub fn authority(&self) -> &str {
        self.endpoint.trim_start_matches("https://")
    }

    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The principal named `who` (`alice`, `bob`, `carol` or `admin`).
    pub fn principal(&self, who: &str) -> &Principal {
        self.principals
            .iter()
            .find(|p| p.name == who)
            .unwrap_or_else(|| panic!("no principal {who}"))
    }

    /// The 32 master-key bytes from `master.key`, checking the `HKMSMK01` magic.
    pub fn read_master_key(&self) -> [u8; 32] {
        let path = self.master_key_path();
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let secret = fs::read(&self.secret_file).expect("read operator secret");
        crate::sealed::unseal(&secret, &bytes)
    }

    /// Every key in `master.key` (format 1 or 2), unsealed with the secret.
    pub fn read_master_keys(&self) -> crate::sealed::SealedKeys {
        let path = self.master_key_path();
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let secret = fs::read(&self.secret_file).expect("read operator secret");
        crate::sealed::unseal_keys(&secret, &bytes)
    }

    /// The file holding the operator secret that seals the master key.
    pub fn secret_file(&self) -> &Path {
        &self.secret_file
    }

    /// Both logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- {} ---\n{}\n--- {} ---\n{}",
            self.daemon_log.display(),
            log_tail(&self.daemon_log),
            self.frontend_log.display(),
            log_tail(&self.frontend_log)
        )
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(p) = self.frontend.take() {
            p.kill9();
        }
        if let Some(p) = self.daemon.take() {
            p.kill9();
        }
        if std::thread::panicking() {
            eprintln!("test failed; process logs:\n{}", self.logs());
        }
    }
}
