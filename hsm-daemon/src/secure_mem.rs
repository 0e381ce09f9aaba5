//! Locked, undumpable, zeroized memory for key material: the daemon's only
//! `unsafe` code.
//!
//! [`KeySlab`] is one anonymous mapping, `mlock`ed and marked
//! `MADV_DONTDUMP`, cut into fixed 32-byte slots: the master key takes one,
//! unwrapped CMK versions take the others. It is allocated once at start, so
//! no request ever allocates locked memory, and wiped on drop (explicit
//! zeroize, then `munlock`, then `munmap`). Because memory that silently failed
//! to lock looks like any other, [`KeySlab::verify`] reads the kernel's own
//! view (`VmLck`, and `lo`/`dd` in the mapping's `VmFlags`) so `serve` can
//! refuse to start without it. What goes into a slot is the keystore's
//! business, not this module's.
#![allow(unsafe_code)] // reason: mmap/mlock/madvise and the raw slice over that mapping

use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mlock, mmap_anonymous, munmap};
use std::{ffi::c_void, num::NonZeroUsize, ptr::NonNull};
use zeroize::Zeroize;

/// Length of one slot: an AES-256 key.
pub(crate) const KEY_LEN: usize = 32;

/// One anonymous private mapping, page-aligned by construction.
struct LockedRegion {
    ptr: NonNull<c_void>,
    len: usize,
    locked: bool,
    dontdump: bool,
}

// SAFETY: the region is a private mapping owned exclusively by this value;
// nothing else holds the pointer, so moving it to another thread is sound.
unsafe impl Send for LockedRegion {}

impl LockedRegion {
    fn new(len: usize) -> Result<Self, nix::Error> {
        let nz = NonZeroUsize::new(len).ok_or(nix::Error::EINVAL)?;
        // SAFETY: a fresh anonymous private mapping at an address the kernel
        // picks; it cannot alias any memory Rust already knows about.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }?;
        // SAFETY: ptr..ptr+len is exactly the mapping created above, and mmap
        // returns a page-aligned address, which madvise requires.
        let locked = unsafe { mlock(ptr, len) }.is_ok();
        // SAFETY: as above.
        let dontdump = unsafe { madvise(ptr, len, MmapAdvise::MADV_DONTDUMP) }.is_ok();
        Ok(Self {
            ptr,
            len,
            locked,
            dontdump,
        })
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is len bytes, readable, zero-initialised by the
        // kernel, and lives as long as self; &self forbids concurrent writes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in as_slice; &mut self makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }

    fn start(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

impl Drop for LockedRegion {
    fn drop(&mut self) {
        // Wipe while still locked, so the key never reaches swap on the way out.
        self.as_mut_slice().zeroize();
        if self.locked {
            // SAFETY: the same range that was locked in new().
            let _ = unsafe { nix::sys::mman::munlock(self.ptr, self.len) };
        }
        // SAFETY: the mapping from new(); no borrow of it outlives self.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

/// Index of a slot in a [`KeySlab`]. Only meaningful for the slab that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Slot(u32);

/// What the kernel reports about the slab's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemCheck {
    /// `VmLck` of the whole process, in kB.
    pub(crate) vm_lck_kb: u64,
    /// The mapping's `VmFlags` contain `lo` (locked).
    pub(crate) locked: bool,
    /// The mapping's `VmFlags` contain `dd` (do not dump).
    pub(crate) dontdump: bool,
}

impl MemCheck {
    pub(crate) fn is_ok(&self) -> bool {
        self.vm_lck_kb > 0 && self.locked && self.dontdump
    }
}

/// Fixed-size 32-byte key slots in one locked region. No `Clone`; `Debug`
/// shows counts only.
pub(crate) struct KeySlab {
    region: LockedRegion,
    free: Vec<u32>,
    slots: u32,
}

impl std::fmt::Debug for KeySlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySlab")
            .field("slots", &self.slots)
            .field("free", &self.free.len())
            .field("bytes", &"[REDACTED]")
            .finish()
    }
}

impl KeySlab {
    /// Maps, locks and marks undumpable room for `slots` keys.
    ///
    /// # Errors
    /// When the mapping itself fails. A failed `mlock`/`madvise` is not an
    /// error here; [`KeySlab::verify`] reports it.
    pub(crate) fn new(slots: u32) -> Result<Self, nix::Error> {
        let len = (slots as usize)
            .checked_mul(KEY_LEN)
            .ok_or(nix::Error::EINVAL)?;
        let region = LockedRegion::new(len)?;
        Ok(Self {
            region,
            free: (0..slots).rev().collect(),
            slots,
        })
    }

    /// Takes a free slot (all zeroes), or `None` when all are in use.
    pub(crate) fn alloc(&mut self) -> Option<Slot> {
        self.free.pop().map(Slot)
    }

    /// Wipes `slot` and returns it to the free list.
    pub(crate) fn release(&mut self, slot: Slot) {
        if let Some(k) = self.key_mut(slot) {
            k.zeroize();
            self.free.push(slot.0);
        }
    }

    /// Borrows the key in `slot`.
    pub(crate) fn key(&self, slot: Slot) -> Option<&[u8; KEY_LEN]> {
        let start = (slot.0 as usize).checked_mul(KEY_LEN)?;
        self.region
            .as_slice()
            .get(start..start.checked_add(KEY_LEN)?)?
            .try_into()
            .ok()
    }

    /// Mutably borrows the key in `slot`, to fill it.
    pub(crate) fn key_mut(&mut self, slot: Slot) -> Option<&mut [u8; KEY_LEN]> {
        let start = (slot.0 as usize).checked_mul(KEY_LEN)?;
        self.region
            .as_mut_slice()
            .get_mut(start..start.checked_add(KEY_LEN)?)?
            .try_into()
            .ok()
    }

    /// Slots in use.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> u32 {
        self.slots.saturating_sub(self.free.len() as u32)
    }

    /// Bytes of locked memory held.
    pub(crate) fn locked_bytes(&self) -> u64 {
        if self.region.locked {
            self.region.len as u64
        } else {
            0
        }
    }

    /// Asks the kernel whether the memory really is locked and undumpable.
    ///
    /// # Errors
    /// When `/proc/self/status` or `/proc/self/smaps` cannot be read.
    pub(crate) fn verify(&self) -> std::io::Result<MemCheck> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let smaps = std::fs::read_to_string("/proc/self/smaps")?;
        let flags = vm_flags_of(&smaps, self.region.start()).unwrap_or_default();
        Ok(MemCheck {
            vm_lck_kb: vm_lck_kb(&status).unwrap_or(0),
            locked: flags.split_whitespace().any(|f| f == "lo") && self.region.locked,
            dontdump: flags.split_whitespace().any(|f| f == "dd") && self.region.dontdump,
        })
    }
}

/// `VmLck` in kB from the text of `/proc/PID/status`.
pub(crate) fn vm_lck_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The `VmFlags` line of the smaps entry whose range contains `addr`.
fn vm_flags_of(smaps: &str, addr: usize) -> Option<String> {
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((lo, hi)) = range.split_once('-')
            && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        {
            inside = lo <= addr && addr < hi;
            continue;
        }
        if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
            return Some(flags.trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_and_wiped_on_release() {
        let mut slab = KeySlab::new(4).expect("map");
        let a = slab.alloc().expect("slot");
        let b = slab.alloc().expect("slot");
        assert_ne!(a, b);
        slab.key_mut(a).expect("a").fill(0xAA);
        slab.key_mut(b).expect("b").fill(0xBB);
        assert_eq!(slab.key(a).expect("a"), &[0xAA; KEY_LEN]);
        assert_eq!(slab.in_use(), 2);
        slab.release(a);
        assert_eq!(slab.in_use(), 1);
        let c = slab.alloc().expect("slot");
        assert_eq!(slab.key(c).expect("c"), &[0; KEY_LEN]);
        assert_eq!(slab.key(b).expect("b"), &[0xBB; KEY_LEN]);
        slab.alloc().expect("slot");
        slab.alloc().expect("slot");
        assert!(slab.alloc().is_none());
        assert!(slab.key(Slot(4)).is_none());
    }

    #[test]
    fn debug_is_redacted() {
        let mut slab = KeySlab::new(1).expect("map");
        let s = slab.alloc().expect("slot");
        slab.key_mut(s).expect("s").fill(0x41);
        let dbg = format!("{slab:?}");
        assert!(dbg.contains("REDACTED") && !dbg.contains("65"), "{dbg}");
    }

    #[test]
    fn kernel_reports_locked_and_undumpable() {
        let slab = KeySlab::new(1024).expect("map");
        let check = slab.verify().expect("proc readable");
        // Locking can fail under a tiny RLIMIT_MEMLOCK; DONTDUMP cannot.
        assert!(check.dontdump, "{check:?}");
        if slab.region.locked {
            assert!(check.locked && check.vm_lck_kb > 0, "{check:?}");
        }
    }

    #[test]
    fn parses_proc_text() {
        assert_eq!(vm_lck_kb("Name: x\nVmLck:\t      36 kB\n"), Some(36));
        let smaps = "1000-2000 rw-p 00000000 00:00 0\nVmFlags: rd wr\n\
                     2000-4000 rw-p 00000000 00:00 0\nSize: 8 kB\nVmFlags: rd wr lo dd\n";
        assert_eq!(vm_flags_of(smaps, 0x2000).as_deref(), Some("rd wr lo dd"));
        assert_eq!(vm_flags_of(smaps, 0x1fff).as_deref(), Some("rd wr"));
        assert_eq!(vm_flags_of(smaps, 0x5000), None);
    }
}
