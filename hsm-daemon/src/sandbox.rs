//! Confinement applied once the daemon holds its key and has bound its
//! socket: landlock (filesystem and TCP) and a seccomp allow-list.
//!
//! [`landlock`] runs on the main thread before the keystore thread exists (so
//! the thread inherits it): `/proc/self` read-only; the state directory
//! readable, plus creating, writing and removing regular files in it (what a
//! master-key rotation's temp-file-and-rename of `master.key` needs); the
//! socket's directory for the socket itself; nothing else on disk, and no
//! TCP bind or connect. Whether the kernel enforces it fully, partly or not
//! at all is returned for the start-up log. [`seccomp`] then installs a
//! filter on every thread (TSYNC) that allows only the syscalls serving
//! needs: no `socket`, `connect`, `bind`, `open`, `execve`, `clone`, `fork`,
//! `ptrace`; `openat` only relative to the state directory's descriptor
//! (opened before the filter) and only with `O_CREAT|O_EXCL` (a new file,
//! never an existing one), `renameat` only within that directory, and
//! `fsync`. Any other call kills the process (`SECCOMP_RET_KILL_PROCESS`).
//! Dumpability, core limits and dropping root are `hardening`'s.

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, path_beneath_rules,
};
use nix::fcntl::OFlag;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::Path;

/// Why confinement could not be set up. Start-up refuses on these.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxError {
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] seccompiler::Error),
    #[error("seccomp filter: {0}")]
    Backend(#[from] seccompiler::BackendError),
}

/// What landlock achieved on this kernel, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LandlockOutcome {
    Full,
    Partial,
    Unsupported,
}

/// Confines the calling thread (and threads it starts later) to reading
/// `state_dir` and `/proc/self`, replacing `master.key` in `state_dir`
/// (create, write, remove regular files), and making/removing the socket in
/// `socket_dir`; TCP bind/connect handled and denied where the ABI has them.
///
/// # Errors
/// [`SandboxError::Landlock`] when a path cannot be opened or the ruleset is
/// rejected; an unsupported kernel is not an error (see the outcome).
pub(crate) fn landlock(
    state_dir: &Path,
    socket_dir: &Path,
) -> Result<LandlockOutcome, SandboxError> {
    let abi = ABI::V5;
    let read = AccessFs::from_read(abi);
    let state_access =
        AccessFs::from_read(abi) | AccessFs::WriteFile | AccessFs::MakeReg | AccessFs::RemoveFile;
    let socket_access = AccessFs::from_read(abi) | AccessFs::MakeSock | AccessFs::RemoveFile;
    let proc_self = std::fs::canonicalize("/proc/self").unwrap_or_else(|_| "/proc/self".into());
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules([proc_self.as_path()], read))?
        .add_rules(path_beneath_rules([state_dir], state_access))?
        .add_rules(path_beneath_rules([socket_dir], socket_access))?
        .restrict_self()?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => LandlockOutcome::Full,
        RulesetStatus::PartiallyEnforced => LandlockOutcome::Partial,
        RulesetStatus::NotEnforced => LandlockOutcome::Unsupported,
    })
}

/// The syscalls a serving daemon makes (tokio current-thread runtime, the
/// keystore thread, logging to stderr, shutdown). x86_64 numbers: the daemon
/// is built for x86_64 Linux (another architecture needs its own list).
const ALLOWED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_accept4,
    libc::SYS_getsockopt,
    libc::SYS_shutdown,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_ctl,
    libc::SYS_ppoll,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_getrandom,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_munlock,
    libc::SYS_brk,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_fstat,
    libc::SYS_lstat,
    libc::SYS_fcntl,
    libc::SYS_ioctl,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_tgkill,
];

/// Rules for the calls that replace `master.key`, all tied to `state_fd`,
/// the state directory's descriptor: `openat(state_fd, _, O_CREAT|O_EXCL..)`,
/// `renameat`/`renameat2(state_fd, _, state_fd, _)`, and `fsync`.
fn key_file_rules(state_fd: RawFd) -> Result<Vec<(i64, Vec<SeccompRule>)>, SandboxError> {
    let fd = u64::try_from(state_fd).unwrap_or(u64::MAX);
    let dir = |arg: u8| SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, fd);
    let must_create = (OFlag::O_CREAT | OFlag::O_EXCL).bits();
    let must_create = u64::try_from(must_create).unwrap_or(u64::MAX);
    let openat = SeccompRule::new(vec![
        dir(0)?,
        SeccompCondition::new(
            2,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(must_create),
            must_create,
        )?,
    ])?;
    let rename =
        || -> Result<SeccompRule, SandboxError> { Ok(SeccompRule::new(vec![dir(0)?, dir(2)?])?) };
    Ok(vec![
        (libc::SYS_openat, vec![openat]),
        (libc::SYS_renameat, vec![rename()?]),
        (libc::SYS_renameat2, vec![rename()?]),
        (libc::SYS_fsync, Vec::new()),
    ])
}

/// Installs the allow-list on every thread of the process; with `state_fd`
/// (the state directory, open) also the calls that replace `master.key`.
///
/// # Errors
/// [`SandboxError`] when the filter cannot be built or the kernel refuses it.
pub(crate) fn seccomp(state_fd: Option<RawFd>) -> Result<(), SandboxError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|&nr| (nr, Vec::new())).collect();
    if let Some(fd) = state_fd {
        rules.extend(key_file_rules(fd)?);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?;
    let program: BpfProgram = filter.try_into()?;
    seccompiler::apply_filter_all_threads(&program)?;
    Ok(())
}

/// Test builds only: makes a call the filter forbids (a TCP socket), which
/// must kill the process with SIGSYS.
#[cfg(debug_assertions)]
pub(crate) fn attempt_forbidden_syscall() {
    let _ = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::empty(),
        None,
    );
}
