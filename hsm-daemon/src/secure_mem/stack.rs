//! The keystore thread's stack as key memory: locked, undumpable, scrubbed.
//!
//! Key schedules and temporary key copies are built on the stack of whichever
//! thread runs the crypto, and every move of a cipher value leaves a copy in a
//! dead frame that `zeroize` cannot reach. So the keystore runs on one
//! dedicated thread whose whole stack (bounds from `pthread_getattr_np`) is
//! `mlock`ed and `MADV_DONTDUMP`ed by [`LockedStack::lock_current`], and
//! [`scrub`] overwrites the dead part of it below the caller's frame after
//! each batch of commands. Which thread calls these is the keystore's
//! business.
#![allow(unsafe_code)] // reason: pthread_getattr_np, and mlock/madvise over the thread's own stack

use super::{MemCheck, check_mapping};
use nix::sys::mman::{MmapAdvise, madvise, mlock};
use std::{ffi::c_void, ptr::NonNull};

/// Bytes overwritten below the caller's frame by [`scrub`]: more than the
/// deepest crypto call chain the keystore makes.
pub(crate) const SCRUB_BYTES: usize = 32 * 1024;

/// The calling thread's stack, locked and marked undumpable. Not `Send`: it
/// describes the thread that made it.
#[derive(Debug)]
pub(crate) struct LockedStack {
    lo: usize,
    len: usize,
    locked: bool,
    dontdump: bool,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl LockedStack {
    /// Locks the calling thread's whole stack and marks it `MADV_DONTDUMP`.
    /// Call it from a thread spawned with an explicit (small) stack size: the
    /// main thread's stack grows on demand and cannot be covered this way.
    ///
    /// # Errors
    /// When the stack bounds cannot be read. A failed `mlock`/`madvise` is
    /// not an error here; [`LockedStack::verify`] reports it.
    pub(crate) fn lock_current() -> Result<Self, nix::Error> {
        let (lo, len) = current_bounds()?;
        let ptr = NonNull::new(lo as *mut c_void).ok_or(nix::Error::EINVAL)?;
        // SAFETY: lo..lo+len is this thread's own stack as glibc reports it
        // (page-aligned, guard page excluded); mlock and madvise(DONTDUMP)
        // change no content, only paging and core-dump policy.
        let locked = unsafe { mlock(ptr, len) }.is_ok();
        // SAFETY: as above.
        let dontdump = unsafe { madvise(ptr, len, MmapAdvise::MADV_DONTDUMP) }.is_ok();
        Ok(Self {
            lo,
            len,
            locked,
            dontdump,
            _not_send: std::marker::PhantomData,
        })
    }

    /// Bytes of the stack.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Asks the kernel whether the stack really is locked and undumpable.
    ///
    /// # Errors
    /// When `/proc/self/status` or `/proc/self/smaps` cannot be read.
    pub(crate) fn verify(&self) -> std::io::Result<MemCheck> {
        // Probe the top page: the frame we are running in is there.
        let probe = self.lo + self.len.saturating_sub(1);
        check_mapping(probe, self.locked, self.dontdump)
    }
}

/// (lowest address, length) of the calling thread's usable stack.
fn current_bounds() -> Result<(usize, usize), nix::Error> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_getattr_np initialises attr for the calling thread;
    // it is destroyed below on every path after a successful call.
    let rc = unsafe { libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) };
    if rc != 0 {
        return Err(nix::Error::from_raw(rc));
    }
    let mut addr: *mut c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: attr was initialised by the successful call above; addr and size
    // are valid out-pointers.
    let rc = unsafe { libc::pthread_attr_getstack(attr.as_ptr(), &raw mut addr, &raw mut size) };
    // SAFETY: attr is initialised and destroyed exactly once.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    if rc != 0 {
        return Err(nix::Error::from_raw(rc));
    }
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(4096);
    let lo = (addr as usize).next_multiple_of(page);
    let hi = (addr as usize).saturating_add(size) / page * page;
    if hi <= lo {
        return Err(nix::Error::EINVAL);
    }
    Ok((lo, hi - lo))
}

/// Stack of a thread started by [`spawn_locked`], all of it locked: ample
/// for a tokio runtime and the crypto (RSA keeps its numbers on the heap).
const LOCKED_STACK_BYTES: usize = 256 * 1024;

/// Starts a thread `name` with a small stack, locks and checks that stack
/// ([`LockedStack::lock_current`], [`LockedStack::verify`]) and runs `body`
/// with the check.
///
/// # Errors
/// When the thread cannot be started.
pub(crate) fn spawn_locked<T, F>(name: &str, body: F) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce(std::io::Result<MemCheck>) -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(LOCKED_STACK_BYTES)
        .spawn(move || {
            let check = LockedStack::lock_current()
                .map_err(std::io::Error::from)
                .and_then(|s| s.verify());
            body(check)
        })
}

/// Overwrites [`SCRUB_BYTES`] of dead stack below the caller's frame with
/// zeroes, wiping the key schedules and key copies that finished calls left
/// there. Never inlined, so its buffer really lies below the caller.
#[inline(never)]
pub(crate) fn scrub() {
    let mut buf = [0u8; SCRUB_BYTES];
    // A plain fill is a memset (fast); black_box makes the buffer observable
    // so the stores cannot be elided as dead.
    buf.fill(0);
    std::hint::black_box(&mut buf);
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn leave_a_secret() -> usize {
        let mut secret = [0x5Cu8; 256];
        std::hint::black_box(&mut secret);
        secret.as_ptr() as usize
    }

    #[test]
    fn thread_stack_is_locked_undumpable_and_scrubbed() {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let stack = LockedStack::lock_current().expect("bounds");
                assert!(stack.len() >= 128 * 1024, "{stack:?}");
                let check = stack.verify().expect("proc");
                assert!(check.dontdump, "{check:?}");
                if stack.locked {
                    assert!(check.locked && check.vm_lck_kb > 0, "{check:?}");
                }
                let here = 0u8;
                let here = &raw const here as usize;
                assert!((stack.lo..stack.lo + stack.len).contains(&here));
                // A finished call's frame lies below ours, inside the stack.
                let addr = leave_a_secret();
                assert!(stack.lo < addr && addr < here);
                scrub();
            })
            .expect("spawn")
            .join()
            .expect("thread");
    }
}
