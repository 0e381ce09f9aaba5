//! The frontend's TOML configuration: typed, `deny_unknown_fields`, and
//! validated once at start ([`Config::load`]). Secrets (the principals'
//! secret access keys) are held in [`SecretString`] and never printed:
//! `Debug` shows `[REDACTED]`. What the values mean at run time is left to
//! `main`, `tls`, `server` and `auth`.

use crate::audit::{AuditSettings, Durability};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default largest request body: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default number of tokio worker threads.
pub const DEFAULT_WORKER_THREADS: usize = 2;
/// Default limit of concurrent client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default `hsm_connections`: pipelined connections to hsm-daemon.
pub const DEFAULT_HSM_CONNECTIONS: usize = 2;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole configuration file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port`; port 0 picks a free port.
    pub listen: String,
    pub state_dir: PathBuf,
    pub hsm_socket: PathBuf,
    pub region: String,
    pub account_id: String,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default = "default_worker_threads")]
    pub worker_threads: usize,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Pipelined connections to hsm-daemon (see `hsm_client`).
    #[serde(default = "default_hsm_connections")]
    pub hsm_connections: usize,
    /// Seconds a request may take to be read, authenticated and handled
    /// (writing its audit record is not cut short); past it the client gets
    /// a 500 and the audit record says so.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    #[serde(default)]
    pub principals: Vec<PrincipalConfig>,
    /// Seconds between scheduler passes (deletions and automatic
    /// rotations falling due).
    #[serde(default = "default_scheduler_interval_secs")]
    pub scheduler_interval_secs: u64,
    /// Development only: a file holding a number of seconds added to the
    /// clock of deletion windows and rotation dates. Refused by release
    /// builds.
    #[serde(default)]
    pub dev_clock_offset_file: Option<PathBuf>,
    /// Root key (id, ARN or alias) of the wallet REST API when a request
    /// names none; without it every wallet request must give `rootKey`.
    #[serde(default)]
    pub wallet_root_key: Option<String>,
    /// The daemon's state directory, if known: checked at start to be
    /// unreadable by this process (see `isolation`).
    #[serde(default)]
    pub hsm_state_dir: Option<PathBuf>,
    /// `human` (default) or `json` log lines on stderr.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Log level or filter (`info`, `kms_frontend=debug`, ...) used when
    /// `RUST_LOG` is not set.
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub audit: AuditConfig,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `[audit]`: where and how the audit log is written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Directory of the log files; default `STATE_DIR/audit`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// `fsync` (every record), `group` (one sync per group, default) or `none`.
    #[serde(default = "default_durability")]
    pub durability: Durability,
    /// Rotate when the current file reaches this many bytes.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// A signed digest record every this many records.
    #[serde(default = "default_digest_every")]
    pub digest_every: u64,
    /// And at least this often (seconds) while records are not yet covered.
    #[serde(default = "default_digest_interval_secs")]
    pub digest_interval_secs: u64,
    /// Also copy every record to stdout, one JSON line each.
    #[serde(default)]
    pub stdout: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            dir: None,
            durability: default_durability(),
            max_file_bytes: default_max_file_bytes(),
            digest_every: default_digest_every(),
            digest_interval_secs: default_digest_interval_secs(),
            stdout: false,
        }
    }
}

fn default_durability() -> Durability {
    Durability::Group
}

fn default_max_file_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_digest_every() -> u64 {
    1000
}

fn default_digest_interval_secs() -> u64 {
    60
}

impl AuditConfig {
    /// The runtime settings, with the directory resolved against `state_dir`.
    pub fn settings(&self, state_dir: &Path) -> AuditSettings {
        AuditSettings {
            dir: self.dir.clone().unwrap_or_else(|| state_dir.join("audit")),
            durability: self.durability,
            max_file_bytes: self.max_file_bytes,
            digest_every: self.digest_every,
            digest_interval: std::time::Duration::from_secs(self.digest_interval_secs),
            stdout: self.stdout,
        }
    }
}

/// Default seconds between scheduler passes.
pub const DEFAULT_SCHEDULER_INTERVAL_SECS: u64 = 60;

fn default_scheduler_interval_secs() -> u64 {
    DEFAULT_SCHEDULER_INTERVAL_SECS
}

/// `[tls]`: a certificate chain and its private key, PEM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One `[[principals]]` entry: who may call, with which SigV4 credentials.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// An account administrator (the account root of key policies).
    #[serde(default)]
    pub admin: bool,
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_worker_threads() -> usize {
    DEFAULT_WORKER_THREADS
}

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

fn default_hsm_connections() -> usize {
    DEFAULT_HSM_CONNECTIONS
}

fn default_request_timeout_secs() -> u64 {
    30
}

impl fmt::Debug for PrincipalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrincipalConfig")
            .field("arn", &self.arn)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field("admin", &self.admin)
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("hsm_socket", &self.hsm_socket)
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("worker_threads", &self.worker_threads)
            .field("max_connections", &self.max_connections)
            .field("hsm_connections", &self.hsm_connections)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("tls", &self.tls)
            .field("principals", &self.principals)
            .field("scheduler_interval_secs", &self.scheduler_interval_secs)
            .field("dev_clock_offset_file", &self.dev_clock_offset_file)
            .field("hsm_state_dir", &self.hsm_state_dir)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("audit", &self.audit)
            .finish()
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    ///
    /// # Errors
    /// [`ConfigError`] with a message naming the offending field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.message().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The listen address, parsed.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when `listen` is not `host:port`.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "listen = {:?} is not an address like \"127.0.0.1:4599\"",
                self.listen
            ))
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        self.listen_addr()?;
        if !(1..=86_400).contains(&self.scheduler_interval_secs) {
            return invalid("scheduler_interval_secs must be between 1 and 86400".into());
        }
        if self.dev_clock_offset_file.is_some() && !cfg!(debug_assertions) {
            return invalid(
                "dev_clock_offset_file is a development setting and is refused by release builds"
                    .into(),
            );
        }
        if self.hsm_socket.as_os_str().is_empty() {
            return invalid("hsm_socket must be set to the daemon's socket path".into());
        }
        if self.state_dir.as_os_str().is_empty() {
            return invalid("state_dir must be set".into());
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid(format!(
                "account_id = {:?} must be exactly 12 digits",
                self.account_id
            ));
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return invalid(format!(
                "region = {:?} must look like \"us-east-1\"",
                self.region
            ));
        }
        if !(1..=1024 * 1024).contains(&self.max_body_bytes) {
            return invalid("max_body_bytes must be between 1 and 1048576".into());
        }
        if !(1..=256).contains(&self.worker_threads) {
            return invalid("worker_threads must be between 1 and 256".into());
        }
        if !(1..=64).contains(&self.hsm_connections) {
            return invalid("hsm_connections must be between 1 and 64".into());
        }
        if !(1..=3600).contains(&self.request_timeout_secs) {
            return invalid("request_timeout_secs must be between 1 and 3600".into());
        }
        if self.max_connections == 0 {
            return invalid("max_connections must be at least 1".into());
        }
        if self.principals.is_empty() {
            return invalid("at least one [[principals]] entry is required".into());
        }
        let prefix = format!("arn:aws:iam::{}:", self.account_id);
        let mut seen = HashSet::new();
        for (i, p) in self.principals.iter().enumerate() {
            let n = i + 1;
            let rest = p.arn.strip_prefix(&prefix);
            let ok = rest.is_some_and(|r| {
                ["user/", "role/"]
                    .iter()
                    .any(|k| r.strip_prefix(k).is_some_and(|name| !name.is_empty()))
            });
            if !ok {
                return invalid(format!(
                    "principal #{n}: arn {:?} must be {prefix}user/NAME or {prefix}role/NAME",
                    p.arn
                ));
            }
            if p.access_key_id.len() < 4
                || !p.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return invalid(format!(
                    "principal #{n} ({}): access_key_id must be at least 4 letters or digits",
                    p.arn
                ));
            }
            if !seen.insert(p.access_key_id.as_str()) {
                return invalid(format!(
                    "principal #{n} ({}): access_key_id {} is used twice",
                    p.arn, p.access_key_id
                ));
            }
            if secrecy::ExposeSecret::expose_secret(&p.secret_access_key).is_empty() {
                return invalid(format!(
                    "principal #{n} ({}): secret_access_key must not be empty",
                    p.arn
                ));
            }
        }
        if self.audit.max_file_bytes < 4096 {
            return invalid("[audit] max_file_bytes must be at least 4096".into());
        }
        if self.audit.digest_every == 0 {
            return invalid("[audit] digest_every must be at least 1".into());
        }
        if self.audit.digest_interval_secs == 0 {
            return invalid("[audit] digest_interval_secs must be at least 1".into());
        }
        if let Some(tls) = &self.tls
            && (tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty())
        {
            return invalid("[tls] needs both cert and key".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:0"
state_dir = "/tmp/kms"
hsm_socket = "/tmp/hsm.sock"
region = "us-east-1"
account_id = "111122223333"

[[principals]]
arn = "arn:aws:iam::111122223333:user/dev"
access_key_id = "AKIAEXAMPLE"
secret_access_key = "very-secret-value"
"#;

    fn err(text: &str) -> String {
        match Config::parse(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_example_with_defaults() {
        let c = Config::parse(GOOD).expect("valid");
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(c.worker_threads, 2);
        assert!(c.tls.is_none());
        assert_eq!(c.principals.len(), 1);
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Config::parse(GOOD).expect("valid");
        let s = format!("{c:?}");
        assert!(!s.contains("very-secret-value"));
        assert!(s.contains("[REDACTED]"));
    }

    #[test]
    fn rejects_unknown_fields() {
        assert!(err(&format!("bogus = 1\n{GOOD}")).contains("bogus"));
    }

    #[test]
    fn rejects_bad_account_and_foreign_arn() {
        assert!(
            err(&GOOD.replace("account_id = \"111122223333\"", "account_id = \"1234\""))
                .contains("12 digits")
        );
        assert!(
            err(&GOOD.replace(
                "arn:aws:iam::111122223333:user/dev",
                "arn:aws:iam::999999999999:user/dev"
            ))
            .contains("must be arn:aws:iam::111122223333:")
        );
    }

    #[test]
    fn rejects_duplicate_key_ids_and_empty_secret() {
        let dup = format!(
            "{GOOD}\n[[principals]]\narn = \"arn:aws:iam::111122223333:user/b\"\naccess_key_id = \"AKIAEXAMPLE\"\nsecret_access_key = \"x\"\n"
        );
        assert!(err(&dup).contains("used twice"));
        assert!(err(&GOOD.replace("very-secret-value", "")).contains("must not be empty"));
    }

    #[test]
    fn audit_and_logging_settings() {
        let c = Config::parse(GOOD).expect("valid");
        assert_eq!(c.audit.durability, Durability::Group);
        assert_eq!(c.log_format, LogFormat::Human);
        let text = format!(
            "log_format = \"json\"\nlog_level = \"debug\"\n{GOOD}\n[audit]\ndurability = \"fsync\"\ndigest_every = 10\nstdout = true\n"
        );
        let c = Config::parse(&text).expect("valid");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.audit.durability, Durability::Fsync);
        assert_eq!(c.audit.settings(Path::new("/s")).dir, Path::new("/s/audit"));
        assert!(
            err(&format!("{GOOD}\n[audit]\ndurability = \"sometimes\"\n")).contains("durability")
                || err(&format!("{GOOD}\n[audit]\ndurability = \"sometimes\"\n"))
                    .contains("variant")
        );
        assert!(err(&format!("{GOOD}\n[audit]\ndigest_every = 0\n")).contains("digest_every"));
    }

    #[test]
    fn rejects_bad_listen() {
        assert!(err(&GOOD.replace("127.0.0.1:0", "localhost")).contains("listen"));
    }
}
