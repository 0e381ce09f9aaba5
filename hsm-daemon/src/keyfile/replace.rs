//! Writing `master.key` again, atomically, from inside the sandbox.
//!
//! The state directory is opened once at start-up, before landlock and
//! seccomp; afterwards the daemon can only create a new file relative to
//! that descriptor (seccomp allows `openat` on it with `O_CREAT|O_EXCL` and
//! nothing else, `renameat` within it, `fsync`). A replacement is: create
//! `master.key.tmp` (0600, `O_EXCL`, `O_NOFOLLOW`), write, `fsync` it,
//! `renameat` it over `master.key`, `fsync` the directory. Until the rename
//! the old file is intact; after it the new file is complete and durable
//! once the directory is synced. Any failure removes the temporary file and
//! leaves `master.key` as it was (or, when only the final directory sync
//! failed, already replaced by the complete new file). What goes into the
//! file is `keyfile`'s and the keystore's business.

use super::{FILE_NAME, Sealing};
use crate::error::StartupError;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Name of the temporary file a replacement is written to.
pub(crate) const TEMP_NAME: &str = "master.key.tmp";

/// Flags of the one `openat` the sandboxed daemon makes.
pub(crate) fn create_flags() -> OFlag {
    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The state directory, open, and how the key file in it is sealed.
#[derive(Debug)]
pub(crate) struct KeyFile {
    dir: OwnedFd,
    /// `None`: the plain development format.
    pub(crate) sealing: Option<Sealing>,
}

impl KeyFile {
    /// Opens `state_dir` for later replacements and removes a temporary
    /// file a crashed rotation left behind.
    ///
    /// # Errors
    /// An I/O error naming the directory.
    pub(crate) fn open(state_dir: &Path, sealing: Option<Sealing>) -> Result<Self, StartupError> {
        let dir = open(
            state_dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| StartupError::io(state_dir, e.into()))?;
        match unlinkat(&dir, TEMP_NAME, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => tracing::warn!(
                "removed {TEMP_NAME} left by an interrupted master-key rotation (never committed)"
            ),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(StartupError::io(state_dir.join(TEMP_NAME), e.into())),
        }
        Ok(Self { dir, sealing })
    }

    /// The directory descriptor, for the seccomp rules that name it.
    pub(crate) fn dir_fd(&self) -> RawFd {
        self.dir.as_raw_fd()
    }

    /// Replaces `master.key` with `bytes`, durably (see the module doc).
    ///
    /// # Errors
    /// The I/O error of the step that failed.
    pub(crate) fn replace(&self, bytes: &[u8]) -> std::io::Result<()> {
        let fd = match self.create_temp() {
            Err(Errno::EEXIST) => {
                unlinkat(&self.dir, TEMP_NAME, UnlinkatFlags::NoRemoveDir)?;
                self.create_temp()?
            }
            other => other?,
        };
        let written = write_durably(File::from(fd), bytes).and_then(|()| {
            renameat(&self.dir, TEMP_NAME, &self.dir, FILE_NAME).map_err(std::io::Error::from)
        });
        if let Err(e) = written {
            let _ = unlinkat(&self.dir, TEMP_NAME, UnlinkatFlags::NoRemoveDir);
            return Err(e);
        }
        fsync(&self.dir).map_err(std::io::Error::from)
    }

    fn create_temp(&self) -> nix::Result<OwnedFd> {
        openat(
            &self.dir,
            TEMP_NAME,
            create_flags(),
            Mode::from_bits_truncate(0o600),
        )
    }
}

/// Writes `bytes` to `file`, syncs and closes it.
fn write_durably(mut file: File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replace_swaps_the_whole_file_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::write(tmp.path().join(FILE_NAME), b"old").expect("write");
        // A leftover temporary is removed at open and never committed.
        std::fs::write(tmp.path().join(TEMP_NAME), b"half").expect("write");
        let kf = KeyFile::open(tmp.path(), None).expect("open");
        assert!(!tmp.path().join(TEMP_NAME).exists());
        kf.replace(b"new contents").expect("replace");
        let path = tmp.path().join(FILE_NAME);
        assert_eq!(std::fs::read(&path).expect("read"), b"new contents");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!tmp.path().join(TEMP_NAME).exists());
        // A temporary appearing between replacements does not block the next.
        std::fs::write(tmp.path().join(TEMP_NAME), b"stale").expect("write");
        kf.replace(b"newer")
            .expect("replace over a stale temporary");
        assert_eq!(std::fs::read(&path).expect("read"), b"newer");
    }
}
