//! The typed, validated `serve` configuration.
//!
//! Built once from the command line by [`ServeConfig::from_args`], which
//! refuses a state directory or master key that group or others can reach
//! (naming the path, the mode found and the `chmod` that fixes it), a master
//! key file of the wrong shape, a sealed key without a secret source, and an
//! unknown socket group. Everything after
//! start-up takes this struct and never looks at raw arguments again. It holds
//! no secret: the key itself is read later, into locked memory.

use crate::error::StartupError;
use crate::keyfile;
use crate::secret::{self, SecretSource};
use nix::unistd::{Gid, Group, Uid};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The raw `serve` arguments, as clap parsed them.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServeArgs {
    /// Directory holding master.key (must be mode 0700).
    #[arg(long, value_name = "DIR")]
    #[allow(dead_code)] // reason: landlock (next commit) confines the daemon to it
    pub(crate) state_dir: PathBuf,
    /// Path of the Unix socket to listen on.
    #[arg(long, value_name = "PATH")]
    pub(crate) socket: PathBuf,
    /// A uid allowed to connect (repeatable); default: only our own uid.
    #[arg(long = "allow-uid", value_name = "UID")]
    pub(crate) allow_uids: Vec<u32>,
    /// Make the socket 0660 and owned by this group.
    #[arg(long, value_name = "GROUP")]
    pub(crate) socket_group: Option<String>,
    /// Development only: start even if key memory cannot be locked or
    /// excluded from core dumps.
    #[arg(long)]
    pub(crate) allow_unlocked_memory: bool,
    /// When started as root, switch to this user before loading the key.
    #[arg(long, value_name = "USER")]
    pub(crate) user: Option<String>,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// Test builds only: after the sandbox is on, attempt a forbidden
    /// syscall (the process must die of SIGSYS).
    #[cfg(debug_assertions)]
    #[arg(long, hide = true)]
    pub(crate) debug_forbidden_syscall: bool,
}

/// Where the operator secret comes from, and the development escape hatch.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct SecretArgs {
    /// Read the operator secret from this file (mode 0600 or tighter).
    #[arg(long, value_name = "PATH")]
    pub(crate) secret_file: Option<PathBuf>,
    /// Read the operator secret from this inherited file descriptor.
    #[arg(long, value_name = "FD")]
    pub(crate) secret_fd: Option<i32>,
    /// Development only: use (or create) the plain, unsealed master key
    /// format. Logged as a warning.
    #[arg(long)]
    pub(crate) dev_plain_key: bool,
}

/// The raw `backup` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BackupArgs {
    /// State directory holding the master key to back up.
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: PathBuf,
    /// Number of shares N to split the backup key into (2..=255).
    #[arg(long, value_name = "N")]
    pub(crate) shares: u32,
    /// Number of shares M that restore needs (2..=N).
    #[arg(long, value_name = "M")]
    pub(crate) threshold: u32,
    /// Directory to write backup.hkb and the share files into (created 0700
    /// if missing; existing files are never overwritten).
    #[arg(long, value_name = "OUTDIR")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
}

/// The raw `restore` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RestoreArgs {
    /// New state directory to restore the master key into (created 0700).
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: PathBuf,
    /// The backup file (backup.hkb).
    #[arg(long, value_name = "FILE")]
    pub(crate) backup: PathBuf,
    /// A share file (repeat, or list several): at least the threshold.
    #[arg(long = "share", value_name = "FILE", num_args = 1.., required = true)]
    pub(crate) shares: Vec<PathBuf>,
    /// The operator secret that seals the restored key (or --dev-plain-key).
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// Argon2id memory cost in KiB for the new sealed file.
    #[arg(long, value_name = "KIB", default_value_t = crate::seal::KdfParams::DEFAULT.m_kib)]
    pub(crate) kdf_memory_kib: u32,
    /// Argon2id passes for the new sealed file.
    #[arg(long, value_name = "N", default_value_t = crate::seal::KdfParams::DEFAULT.t)]
    pub(crate) kdf_iterations: u32,
    /// Argon2id lanes for the new sealed file.
    #[arg(long, value_name = "N", default_value_t = crate::seal::KdfParams::DEFAULT.p)]
    pub(crate) kdf_parallelism: u32,
}

/// Validated configuration for `serve`.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    pub(crate) socket: PathBuf,
    pub(crate) allow_uids: Vec<u32>,
    pub(crate) socket_group: Option<Gid>,
    pub(crate) allow_unlocked_memory: bool,
    pub(crate) secret: Option<SecretSource>,
    pub(crate) dev_plain_key: bool,
    pub(crate) state_dir: PathBuf,
    pub(crate) user: Option<String>,
    #[cfg(debug_assertions)]
    pub(crate) debug_forbidden_syscall: bool,
}

impl ServeConfig {
    /// Validates `args`.
    ///
    /// # Errors
    /// [`StartupError`] naming what is wrong and how to fix it.
    pub(crate) fn from_args(args: ServeArgs) -> Result<Self, StartupError> {
        check_private(&args.state_dir, true)?;
        let master_key = keyfile::path_in(&args.state_dir);
        check_private(&master_key, false)?;
        let format = keyfile::check(&master_key)?;
        let secret = secret::resolve(args.secret.secret_file, args.secret.secret_fd)?;
        if format == keyfile::Format::Sealed && secret.is_none() {
            return Err(StartupError::Secret(format!(
                "{} is sealed: give the operator secret with --secret-file PATH, --secret-fd N \
                 or $CREDENTIALS_DIRECTORY/{}",
                master_key.display(),
                secret::CREDENTIAL_NAME
            )));
        }
        let socket_group = match &args.socket_group {
            None => None,
            Some(name) => Some(resolve_group(name)?),
        };
        let allow_uids = if args.allow_uids.is_empty() {
            vec![Uid::current().as_raw()]
        } else {
            args.allow_uids
        };
        Ok(Self {
            socket: args.socket,
            allow_uids,
            socket_group,
            allow_unlocked_memory: args.allow_unlocked_memory,
            secret,
            dev_plain_key: args.secret.dev_plain_key,
            state_dir: args.state_dir,
            user: args.user,
            #[cfg(debug_assertions)]
            debug_forbidden_syscall: args.debug_forbidden_syscall,
        })
    }
}

fn resolve_group(name: &str) -> Result<Gid, StartupError> {
    if let Ok(Some(g)) = Group::from_name(name) {
        return Ok(g.gid);
    }
    name.parse::<u32>()
        .map(Gid::from_raw)
        .map_err(|_| StartupError::UnknownGroup(name.to_owned()))
}

/// Refuses `path` unless it is a directory (or a regular file) that only its
/// owner can reach.
pub(crate) fn check_private(path: &Path, dir: bool) -> Result<(), StartupError> {
    let meta = std::fs::metadata(path).map_err(|e| StartupError::io(path, e))?;
    if dir && !meta.is_dir() {
        return Err(StartupError::WrongKind {
            path: path.to_owned(),
            what: "is not a directory (run `hsm-daemon init --state-dir DIR` first)",
        });
    }
    if !dir && !meta.is_file() {
        return Err(StartupError::WrongKind {
            path: path.to_owned(),
            what: "is not a regular file",
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StartupError::LoosePermissions {
            path: path.to_owned(),
            mode,
            fix: if dir { 0o700 } else { 0o600 },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path) -> ServeArgs {
        ServeArgs {
            state_dir: dir.to_owned(),
            socket: dir.join("s.sock"),
            allow_uids: vec![],
            socket_group: None,
            allow_unlocked_memory: false,
            user: None,
            secret: SecretArgs::default(),
            #[cfg(debug_assertions)]
            debug_forbidden_syscall: false,
        }
    }

    #[test]
    fn accepts_fresh_state_and_defaults_to_own_uid() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        keyfile::init(&dir, &keyfile::Protection::DevPlain).expect("init");
        let cfg = ServeConfig::from_args(args(&dir)).expect("valid");
        assert_eq!(cfg.allow_uids, vec![Uid::current().as_raw()]);
    }

    #[test]
    fn refuses_loose_dir_and_key_with_the_fix() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        let key = keyfile::init(&dir, &keyfile::Protection::DevPlain).expect("init");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let msg = ServeConfig::from_args(args(&dir))
            .expect_err("loose key")
            .to_string();
        assert!(msg.contains("0640") && msg.contains("chmod 600"), "{msg}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let msg = ServeConfig::from_args(args(&dir))
            .expect_err("loose dir")
            .to_string();
        assert!(msg.contains("0755") && msg.contains("chmod 700"), "{msg}");
    }

    #[test]
    fn refuses_missing_state() {
        let tmp = tempfile::tempdir().expect("tmp");
        assert!(ServeConfig::from_args(args(&tmp.path().join("nope"))).is_err());
    }
}
