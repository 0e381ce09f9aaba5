//! Process hardening applied before any key is loaded: not dumpable (which
//! also blocks ptrace by other non-root processes and makes `/proc/PID` files
//! root-owned), no core files, and a umask that keeps every file and the
//! socket private; and, when started as root with `--user`, dropping to that
//! user (supplementary groups cleared, gid then uid) before any of that, since
//! a uid change resets dumpability. Running as root without `--user` is
//! allowed (CI runs so) but warned about. Seccomp and landlock are `sandbox`'s.

use tracing::warn;

/// Why hardening failed; `serve` refuses to start on any of these.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HardeningError {
    #[error("prctl(PR_SET_DUMPABLE, 0) failed: {0}")]
    Dumpable(nix::Error),
    #[error("setrlimit(RLIMIT_CORE, 0) failed: {0}")]
    CoreLimit(nix::Error),
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("--user {0:?}: only root can switch to another user")]
    NotRoot(String),
    #[error("dropping privileges to {user:?} failed: {source}")]
    Drop { user: String, source: nix::Error },
}

/// If running as root and `user` is given, becomes that user for good.
///
/// # Errors
/// An unknown user, a non-root caller asking for another user, or a failed
/// `setgroups`/`setgid`/`setuid`.
pub(crate) fn drop_privileges(user: Option<&str>) -> Result<(), HardeningError> {
    let Some(name) = user else { return Ok(()) };
    let found = nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .ok_or_else(|| HardeningError::UnknownUser(name.to_owned()))?;
    let me = nix::unistd::geteuid();
    if me == found.uid {
        return Ok(());
    }
    if !me.is_root() {
        return Err(HardeningError::NotRoot(name.to_owned()));
    }
    let fail = |source| HardeningError::Drop {
        user: name.to_owned(),
        source,
    };
    nix::unistd::setgroups(&[found.gid]).map_err(fail)?;
    nix::unistd::setgid(found.gid).map_err(fail)?;
    nix::unistd::setuid(found.uid).map_err(fail)?;
    // Paranoia: regaining root must now fail.
    if nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).is_ok() {
        return Err(fail(nix::Error::EPERM));
    }
    tracing::info!(
        user = name,
        uid = found.uid.as_raw(),
        "dropped root privileges"
    );
    Ok(())
}

/// Makes the process non-dumpable, forbids core files and sets umask 0o077.
///
/// # Errors
/// [`HardeningError`] when the kernel refuses.
pub(crate) fn apply() -> Result<(), HardeningError> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .map_err(HardeningError::CoreLimit)?;
    nix::sys::prctl::set_dumpable(false).map_err(HardeningError::Dumpable)?;
    if nix::unistd::geteuid().is_root() {
        warn!("running as root: prefer a dedicated user for hsm-daemon");
    }
    Ok(())
}
