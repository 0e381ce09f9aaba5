//! The start-up check that the frontend cannot read the daemon's secrets.
//!
//! The process boundary only means something if the frontend, which faces
//! the network, cannot simply read the daemon's state directory (the sealed
//! master key). Given `hsm_state_dir` in the config, this tries to list the
//! directory and to open `master.key`; if either works while the directory
//! belongs to another user, it logs a loud warning (the deployment is wrong:
//! see `scripts/systemd`). When the directory is our own (one user running
//! both processes in development) it says so at `info`. It changes nothing
//! and never fails start-up: it is a diagnosis, not a defence.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What the check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Neither the directory nor the key file could be read.
    Isolated,
    /// Readable, but it is our own directory (single-user development).
    SameUser,
    /// Readable and owned by someone else: the boundary is broken.
    Readable,
    /// The directory does not exist or its owner could not be read.
    Unknown,
}

/// Checks `dir` and logs the outcome; returns it for tests.
pub fn check_daemon_state_dir(dir: &Path) -> Exposure {
    let exposure = assess(dir);
    match exposure {
        Exposure::Isolated => {
            tracing::info!(dir = %dir.display(), "hsm-daemon state directory is not readable by kms-frontend (good)");
        }
        Exposure::SameUser => tracing::info!(
            dir = %dir.display(),
            "hsm-daemon state directory belongs to this user (single-user development setup)"
        ),
        Exposure::Readable => tracing::warn!(
            dir = %dir.display(),
            "!!! kms-frontend CAN READ hsm-daemon's state directory: anyone who compromises the \
             frontend gets the sealed master key. Run the daemon as its own user with a 0700 \
             state directory (see scripts/systemd) !!!"
        ),
        Exposure::Unknown => tracing::warn!(
            dir = %dir.display(),
            "hsm_state_dir does not exist or cannot be examined; isolation not checked"
        ),
    }
    exposure
}

fn assess(dir: &Path) -> Exposure {
    let Ok(meta) = std::fs::metadata(dir) else {
        return Exposure::Unknown;
    };
    let listable = std::fs::read_dir(dir).is_ok();
    let key_readable = std::fs::File::open(dir.join("master.key")).is_ok();
    if !listable && !key_readable {
        Exposure::Isolated
    } else if meta.uid() == nix::unistd::geteuid().as_raw() {
        Exposure::SameUser
    } else {
        Exposure::Readable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_directory_is_same_user_and_missing_is_unknown() {
        let tmp = tempfile::tempdir().expect("tmp");
        assert_eq!(check_daemon_state_dir(tmp.path()), Exposure::SameUser);
        assert_eq!(
            check_daemon_state_dir(&tmp.path().join("absent")),
            Exposure::Unknown
        );
    }
}
