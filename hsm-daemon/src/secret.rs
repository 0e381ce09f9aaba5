//! The operator secret that unseals the master key: where it comes from and
//! how it is read.
//!
//! Sources, in order: `--secret-file PATH`, `--secret-fd N` (an inherited
//! descriptor, e.g. a pipe from a password prompt), or systemd's
//! `$CREDENTIALS_DIRECTORY/hsm-master-secret` (`LoadCredential=`). Never argv
//! or the environment: a secret there is visible in `/proc/PID/cmdline` or
//! `environ`. A file must not be readable by group or others. The secret is
//! read into a fixed-size zeroizing buffer (no reallocation can leave a
//! copy), 1..=1024 bytes, one trailing newline dropped. What it unseals is
//! `seal`'s business.

use crate::error::StartupError;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Longest accepted secret.
pub(crate) const MAX_SECRET: usize = 1024;
/// File name looked up in `$CREDENTIALS_DIRECTORY`.
pub(crate) const CREDENTIAL_NAME: &str = "hsm-master-secret";

/// Where the secret comes from. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    File(PathBuf),
    Fd(i32),
    Credential(PathBuf),
}

/// The secret bytes; `Debug` is redacted, no `Clone`.
pub(crate) struct Secret {
    buf: Zeroizing<[u8; MAX_SECRET + 1]>,
    len: usize,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl Secret {
    /// The secret bytes; keep the borrow short.
    pub(crate) fn expose(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Picks the source from the flags, else the systemd credential if present.
///
/// # Errors
/// Both flags given.
pub(crate) fn resolve(
    file: Option<PathBuf>,
    fd: Option<i32>,
) -> Result<Option<SecretSource>, StartupError> {
    match (file, fd) {
        (Some(_), Some(_)) => Err(StartupError::Secret(
            "give only one of --secret-file and --secret-fd".into(),
        )),
        (Some(p), None) => Ok(Some(SecretSource::File(p))),
        (None, Some(fd)) => Ok(Some(SecretSource::Fd(fd))),
        (None, None) => Ok(std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|d| Path::new(&d).join(CREDENTIAL_NAME))
            .filter(|p| p.exists())
            .map(SecretSource::Credential)),
    }
}

/// Reads the secret from `source`.
///
/// # Errors
/// Unreadable, empty, too long, or a file group/others can read.
pub(crate) fn read(source: &SecretSource) -> Result<Secret, StartupError> {
    let path = match source {
        SecretSource::File(p) | SecretSource::Credential(p) => {
            let meta = std::fs::metadata(p).map_err(|e| StartupError::io(p, e))?;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(StartupError::LoosePermissions {
                    path: p.clone(),
                    mode,
                    fix: 0o600,
                });
            }
            p.clone()
        }
        // Reopening through /proc works for files and pipes alike and needs
        // no unsafe from_raw_fd.
        SecretSource::Fd(fd) => PathBuf::from(format!("/proc/self/fd/{fd}")),
    };
    let mut file = std::fs::File::open(&path).map_err(|e| StartupError::io(&path, e))?;
    let mut secret = Secret {
        buf: Zeroizing::new([0u8; MAX_SECRET + 1]),
        len: 0,
    };
    while let Some(room) = secret.buf.get_mut(secret.len..).filter(|r| !r.is_empty()) {
        match file.read(room) {
            Ok(0) => break,
            Ok(n) => secret.len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StartupError::io(&path, e)),
        }
    }
    for end in [b"\n".as_slice(), b"\r".as_slice()] {
        if secret.expose().ends_with(end) {
            secret.len -= 1;
        }
    }
    if secret.len == 0 {
        return Err(StartupError::Secret(format!(
            "{}: the operator secret is empty",
            path.display()
        )));
    }
    if secret.len > MAX_SECRET {
        return Err(StartupError::Secret(format!(
            "{}: the operator secret is longer than {MAX_SECRET} bytes",
            path.display()
        )));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_private_file_and_drops_one_newline() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("s");
        std::fs::write(&p, b"hunter2\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let s = read(&SecretSource::File(p.clone())).expect("read");
        assert_eq!(s.expose(), b"hunter2");
        assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = read(&SecretSource::File(p.clone())).expect_err("loose");
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn refuses_empty_and_oversized_secrets() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("s");
        std::fs::write(&p, b"\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(read(&SecretSource::File(p.clone())).is_err());
        std::fs::write(&p, vec![b'a'; MAX_SECRET + 1]).expect("write");
        let e = read(&SecretSource::File(p)).expect_err("too long");
        assert!(e.to_string().contains("longer"), "{e}");
    }

    #[test]
    fn both_flags_are_refused() {
        assert!(resolve(Some("/x".into()), Some(3)).is_err());
        assert_eq!(
            resolve(None, Some(3)).expect("fd"),
            Some(SecretSource::Fd(3))
        );
    }
}
