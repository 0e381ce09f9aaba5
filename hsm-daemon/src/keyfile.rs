//! The master key file, `STATE/master.key`, in one of two formats: sealed
//! (`HKMSSK01`, the master key under a key derived from the operator secret;
//! see `seal`) or the plain development format (`HKMSMK01` and the 32 key
//! bytes), which is only made or accepted with `--dev-plain-key` and always
//! logged as a warning.
//!
//! `init` creates the state directory (0700) and the file (0600, `O_EXCL`, so
//! an existing key is never overwritten); `serve` checks the file's shape and
//! unseals (or reads) the key straight into a locked slot. Nothing here ever
//! writes an existing file. Permission policy for `serve` is in `config`;
//! where the key lives afterwards is `secure_mem`'s.

use crate::error::StartupError;
use crate::seal::{self, KdfParams, SEALED_LEN};
use crate::secret::Secret;
use crate::secure_mem::KEY_LEN;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// First bytes of a master key file.
pub(crate) const MAGIC: &[u8; 8] = b"HKMSMK01";
/// Exact length of a plain master key file.
pub(crate) const FILE_LEN: u64 = (MAGIC.len() + KEY_LEN) as u64;

/// How the master key is (to be) stored.
#[derive(Debug)]
pub(crate) enum Protection<'a> {
    /// Sealed under the operator secret.
    Sealed(&'a Secret, KdfParams),
    /// The plain development format.
    DevPlain,
}
/// Name of the file inside the state directory.
pub(crate) const FILE_NAME: &str = "master.key";

/// Path of the master key inside `state_dir`.
pub(crate) fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Creates `state_dir` (0700) if needed and a fresh master key in it (0600).
///
/// # Errors
/// [`StartupError::KeyExists`] when a key is already there; the directory
/// being group/other-accessible; any I/O or RNG failure.
pub(crate) fn init(state_dir: &Path, protection: &Protection<'_>) -> Result<PathBuf, StartupError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|e| StartupError::io(state_dir, e))?;
    let meta = std::fs::metadata(state_dir).map_err(|e| StartupError::io(state_dir, e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StartupError::LoosePermissions {
            path: state_dir.to_owned(),
            mode,
            fix: 0o700,
        });
    }
    let path = path_in(state_dir);
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(StartupError::KeyExists(path));
        }
        Err(e) => return Err(StartupError::io(&path, e)),
    };
    let mut contents = Zeroizing::new([0u8; MAGIC.len() + KEY_LEN]);
    contents[..MAGIC.len()].copy_from_slice(MAGIC);
    let made = crate::crypto::fill_random(&mut contents[MAGIC.len()..])
        .map_err(|_| StartupError::Rng)
        .and_then(|()| match protection {
            Protection::DevPlain => Ok(None),
            Protection::Sealed(secret, params) => {
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                key.copy_from_slice(&contents[MAGIC.len()..]);
                seal::seal(secret.expose(), *params, &key)
                    .map(Some)
                    .map_err(|source| StartupError::Seal {
                        path: path.clone(),
                        source,
                    })
            }
        });
    let sealed = match made {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let bytes: &[u8] = match &sealed {
        Some(s) => s.as_ref(),
        None => contents.as_ref(),
    };
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        // Do not leave a half-written key behind for the next `init` to refuse.
        let _ = std::fs::remove_file(&path);
        return Err(StartupError::io(&path, e));
    }
    File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StartupError::io(state_dir, e))?;
    Ok(path)
}

/// The format of a master key file, from its length and magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Sealed,
    Plain,
}

/// Largest file [`load_into`] reads.
const MAX_FILE: usize = if SEALED_LEN > FILE_LEN as usize {
    SEALED_LEN
} else {
    FILE_LEN as usize
};

fn read_file(path: &Path) -> Result<(Zeroizing<[u8; MAX_FILE + 1]>, usize), StartupError> {
    let mut file = File::open(path).map_err(|e| StartupError::io(path, e))?;
    let mut buf = Zeroizing::new([0u8; MAX_FILE + 1]);
    let mut len = 0;
    while let Some(room) = buf.get_mut(len..).filter(|r| !r.is_empty()) {
        match file.read(room) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(StartupError::io(path, e)),
        }
    }
    Ok((buf, len))
}

fn format_of(path: &Path, bytes: &[u8]) -> Result<Format, StartupError> {
    let bad = |what| StartupError::BadKeyFile {
        path: path.to_owned(),
        what,
    };
    match bytes.get(..8) {
        Some(m) if m == seal::MAGIC.as_slice() => {
            if bytes.len() == SEALED_LEN {
                Ok(Format::Sealed)
            } else {
                Err(bad(
                    "truncated or padded sealed master key file (expected 96 bytes)",
                ))
            }
        }
        Some(m) if m == MAGIC.as_slice() => {
            if bytes.len() as u64 == FILE_LEN {
                Ok(Format::Plain)
            } else {
                Err(bad(
                    "wrong size for a master key file (expected 40 bytes: HKMSMK01 + 32-byte key)",
                ))
            }
        }
        _ => Err(bad(
            "not a master key file (bad magic, expected HKMSSK01 sealed or HKMSMK01 plain)",
        )),
    }
}

/// Checks the file's length and magic without using the key.
///
/// # Errors
/// [`StartupError::BadKeyFile`] or an I/O error.
pub(crate) fn check(path: &Path) -> Result<Format, StartupError> {
    let (buf, len) = read_file(path)?;
    format_of(path, buf.get(..len).unwrap_or_default())
}

/// Unseals (or, for the plain format with `dev_plain`, reads) the key
/// straight into `out` (a locked slot).
///
/// # Errors
/// [`StartupError::BadKeyFile`], a plain file without `dev_plain`, a sealed
/// file without a secret, a wrong secret, or an I/O error.
pub(crate) fn load_into(
    path: &Path,
    secret: Option<&Secret>,
    dev_plain: bool,
    out: &mut [u8; KEY_LEN],
) -> Result<Format, StartupError> {
    let (buf, len) = read_file(path)?;
    let bytes = buf.get(..len).unwrap_or_default();
    let format = format_of(path, bytes)?;
    match (format, secret) {
        (Format::Plain, _) if !dev_plain => Err(StartupError::BadKeyFile {
            path: path.to_owned(),
            what: "is a plain (unsealed) development master key; pass --dev-plain-key to use it \
                   (development only) or create a sealed one with `hsm-daemon init --secret-file`",
        }),
        (Format::Plain, _) => {
            out.copy_from_slice(bytes.get(MAGIC.len()..).unwrap_or_default());
            Ok(format)
        }
        (Format::Sealed, None) => Err(StartupError::Secret(format!(
            "{} is sealed: give the operator secret with --secret-file PATH, --secret-fd N or \
             $CREDENTIALS_DIRECTORY/{}",
            path.display(),
            crate::secret::CREDENTIAL_NAME
        ))),
        (Format::Sealed, Some(secret)) => seal::unseal(secret.expose(), bytes, out)
            .map(|()| format)
            .map_err(|source| StartupError::Seal {
                path: path.to_owned(),
                source,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_tight_files_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        let path = init(&dir, &Protection::DevPlain).expect("init");
        let dmode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
        let fmode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!((dmode, fmode), (0o700, 0o600));
        assert_eq!(check(&path).expect("valid"), Format::Plain);
        let mut key = [0u8; KEY_LEN];
        assert!(
            load_into(&path, None, false, &mut key).is_err(),
            "plain needs the flag"
        );
        load_into(&path, None, true, &mut key).expect("load");
        assert_ne!(key, [0; KEY_LEN]);
        let before = std::fs::read(&path).expect("read");
        assert!(matches!(
            init(&dir, &Protection::DevPlain),
            Err(StartupError::KeyExists(_))
        ));
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn sealed_key_needs_the_right_secret_and_is_never_overwritten() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        let secret_path = tmp.path().join("secret");
        std::fs::write(&secret_path, b"operator secret\n").expect("write");
        std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let secret =
            crate::secret::read(&crate::secret::SecretSource::File(secret_path)).expect("secret");
        let fast = KdfParams {
            m_kib: 8 * 1024,
            t: 1,
            p: 1,
        };
        let path = init(&dir, &Protection::Sealed(&secret, fast)).expect("init");
        assert_eq!(check(&path).expect("valid"), Format::Sealed);
        let mut key = [0u8; KEY_LEN];
        assert!(
            load_into(&path, None, true, &mut key).is_err(),
            "needs a secret"
        );
        load_into(&path, Some(&secret), false, &mut key).expect("unseal");
        assert_ne!(key, [0; KEY_LEN]);
        let before = std::fs::read(&path).expect("read");
        let wrong_path = tmp.path().join("wrong");
        std::fs::write(&wrong_path, b"not it").expect("write");
        std::fs::set_permissions(&wrong_path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let wrong =
            crate::secret::read(&crate::secret::SecretSource::File(wrong_path)).expect("secret");
        let err = load_into(&path, Some(&wrong), false, &mut key).expect_err("wrong secret");
        assert!(err.to_string().contains("secret is wrong"), "{err}");
        assert_eq!(key, [0; KEY_LEN]);
        assert_eq!(std::fs::read(&path).expect("read"), before, "untouched");
    }

    #[test]
    fn refuses_wrong_size_and_magic() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join(FILE_NAME);
        std::fs::write(&path, b"HKMSMK01short").expect("write");
        assert!(matches!(check(&path), Err(StartupError::BadKeyFile { .. })));
        std::fs::write(&path, b"HKMSSK01short").expect("write");
        let err = check(&path).expect_err("truncated sealed");
        assert!(err.to_string().contains("truncated"), "{err}");
        std::fs::write(&path, [0u8; 40]).expect("write");
        let err = check(&path).expect_err("bad magic");
        assert!(err.to_string().contains("magic"), "{err}");
    }
}
