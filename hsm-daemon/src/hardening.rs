//! Process hardening applied before any key is loaded: not dumpable (which
//! also blocks ptrace by other non-root processes and makes `/proc/PID` files
//! root-owned), no core files, and a umask that keeps every file and the
//! socket private. Running as root is allowed (CI runs so) but warned about.
//! Sandboxing beyond this (seccomp, landlock, dropping privileges) is future
//! work and would live here.

use tracing::warn;

/// Why hardening failed; `serve` refuses to start on any of these.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HardeningError {
    #[error("prctl(PR_SET_DUMPABLE, 0) failed: {0}")]
    Dumpable(nix::Error),
    #[error("setrlimit(RLIMIT_CORE, 0) failed: {0}")]
    CoreLimit(nix::Error),
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
