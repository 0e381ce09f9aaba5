//! The master key file, `STATE/master.key`: the 8-byte magic `HKMSMK01` and 32
//! key bytes (the plain development format of ARCHITECTURE.md).
//!
//! `init` creates the state directory (0700) and the file (0600, `O_EXCL`, so
//! an existing key is never overwritten); `serve` checks the file's shape and
//! reads the key straight into a locked slot. Permission policy for `serve` is
//! in `config`; where the key lives afterwards is `secure_mem`'s.

use crate::error::StartupError;
use crate::secure_mem::KEY_LEN;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// First bytes of a master key file.
pub(crate) const MAGIC: &[u8; 8] = b"HKMSMK01";
/// Exact length of a master key file.
pub(crate) const FILE_LEN: u64 = (MAGIC.len() + KEY_LEN) as u64;
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
pub(crate) fn init(state_dir: &Path) -> Result<PathBuf, StartupError> {
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
    crate::crypto::fill_random(&mut contents[MAGIC.len()..]).map_err(|_| StartupError::Rng)?;
    let written = file
        .write_all(contents.as_ref())
        .and_then(|()| file.sync_all());
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

/// Checks the file's length and magic without reading the key.
///
/// # Errors
/// [`StartupError::BadKeyFile`] or an I/O error.
pub(crate) fn check(path: &Path) -> Result<(), StartupError> {
    let mut file = File::open(path).map_err(|e| StartupError::io(path, e))?;
    read_magic(path, &mut file)
}

fn read_magic(path: &Path, file: &mut File) -> Result<(), StartupError> {
    let len = file
        .metadata()
        .map_err(|e| StartupError::io(path, e))?
        .len();
    if len != FILE_LEN {
        return Err(StartupError::BadKeyFile {
            path: path.to_owned(),
            what: "wrong size for a master key file (expected 40 bytes: HKMSMK01 + 32-byte key)",
        });
    }
    let mut magic = [0u8; MAGIC.len()];
    file.read_exact(&mut magic)
        .map_err(|e| StartupError::io(path, e))?;
    if &magic != MAGIC {
        return Err(StartupError::BadKeyFile {
            path: path.to_owned(),
            what: "not a master key file (bad magic, expected HKMSMK01)",
        });
    }
    Ok(())
}

/// Reads the key straight into `out` (a locked slot), with no other copy.
///
/// # Errors
/// [`StartupError::BadKeyFile`] or an I/O error.
pub(crate) fn load_into(path: &Path, out: &mut [u8; KEY_LEN]) -> Result<(), StartupError> {
    let mut file = File::open(path).map_err(|e| StartupError::io(path, e))?;
    read_magic(path, &mut file)?;
    file.read_exact(out).map_err(|e| StartupError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_tight_files_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        let path = init(&dir).expect("init");
        let dmode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
        let fmode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!((dmode, fmode), (0o700, 0o600));
        check(&path).expect("valid");
        let mut key = [0u8; KEY_LEN];
        load_into(&path, &mut key).expect("load");
        assert_ne!(key, [0; KEY_LEN]);
        let before = std::fs::read(&path).expect("read");
        assert!(matches!(init(&dir), Err(StartupError::KeyExists(_))));
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn refuses_wrong_size_and_magic() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join(FILE_NAME);
        std::fs::write(&path, [0u8; 39]).expect("write");
        assert!(matches!(check(&path), Err(StartupError::BadKeyFile { .. })));
        std::fs::write(&path, [0u8; 40]).expect("write");
        let err = check(&path).expect_err("bad magic");
        assert!(err.to_string().contains("magic"), "{err}");
    }
}
