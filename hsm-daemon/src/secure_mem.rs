//! Locked, undumpable, zeroized memory for key material: the daemon's only
//! `unsafe` code.
//!
//! [`KeySlab`] is one anonymous mapping, `mlock`ed and marked
//! `MADV_DONTDUMP`, cut into slots of a few fixed size classes (32-byte AES
//! keys, and larger classes for variable-size material such as RSA keys in
//! DER): the master key takes one, unwrapped CMK versions take the others.
//! [`stack`] locks the keystore thread's stack the same way and scrubs it.
//! It is allocated once at start, so
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

pub(crate) mod stack;

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

/// A slot in a [`KeySlab`]: its size class, index and the length of what it
/// holds. Only meaningful for the slab that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Slot {
    class: u8,
    index: u32,
    len: u32,
}

impl Slot {
    /// Length of the material this slot holds.
    pub(crate) fn len(self) -> usize {
        self.len as usize
    }
}

/// What the kernel reports about a locked mapping.
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

/// One size class of a [`KeySlab`]: `slots` slots of `bytes` bytes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SizeClass {
    pub(crate) bytes: usize,
    pub(crate) slots: u32,
}

/// Bookkeeping of one size class inside the region.
#[derive(Debug)]
struct Class {
    bytes: usize,
    offset: usize,
    slots: u32,
    free: Vec<u32>,
}

/// Key slots of several size classes (32-byte AES keys, a few hundred bytes
/// for EC/HMAC keys, a few KiB for RSA private keys in DER) in one locked
/// region. No `Clone`; `Debug` shows counts only.
pub(crate) struct KeySlab {
    region: LockedRegion,
    classes: Vec<Class>,
}

impl std::fmt::Debug for KeySlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let classes: Vec<(usize, u32, usize)> = self
            .classes
            .iter()
            .map(|c| (c.bytes, c.slots, c.free.len()))
            .collect();
        f.debug_struct("KeySlab")
            .field("classes (bytes, slots, free)", &classes)
            .field("contents", &"[REDACTED]")
            .finish()
    }
}

/// Offsets of classes inside the region are aligned to a cache line.
const CLASS_ALIGN: usize = 64;

impl KeySlab {
    /// Maps, locks and marks undumpable room for every class in `classes`
    /// (smallest first is best: [`KeySlab::alloc`] takes the first that fits).
    ///
    /// # Errors
    /// When the mapping itself fails or a class is empty or too large. A
    /// failed `mlock`/`madvise` is not an error here; [`KeySlab::verify`]
    /// reports it.
    pub(crate) fn new(classes: &[SizeClass]) -> Result<Self, nix::Error> {
        let mut offset = 0usize;
        let mut out = Vec::with_capacity(classes.len());
        if classes.is_empty() || classes.len() > usize::from(u8::MAX) {
            return Err(nix::Error::EINVAL);
        }
        for c in classes {
            if c.bytes == 0 || u32::try_from(c.bytes).is_err() {
                return Err(nix::Error::EINVAL);
            }
            let len = (c.slots as usize)
                .checked_mul(c.bytes)
                .ok_or(nix::Error::EINVAL)?;
            out.push(Class {
                bytes: c.bytes,
                offset,
                slots: c.slots,
                free: (0..c.slots).rev().collect(),
            });
            offset = offset
                .checked_add(len)
                .and_then(|o| o.checked_next_multiple_of(CLASS_ALIGN))
                .ok_or(nix::Error::EINVAL)?;
        }
        let region = LockedRegion::new(offset.max(1))?;
        Ok(Self {
            region,
            classes: out,
        })
    }

    /// Takes a free slot (all zeroes) for `len` bytes from the first class
    /// they fit in that has room, or `None` when none has.
    pub(crate) fn alloc(&mut self, len: usize) -> Option<Slot> {
        let len32 = u32::try_from(len).ok()?;
        self.classes
            .iter_mut()
            .enumerate()
            .filter(|(_, c)| c.bytes >= len)
            .find_map(|(i, c)| {
                c.free.pop().map(|index| Slot {
                    class: u8::try_from(i).unwrap_or(u8::MAX),
                    index,
                    len: len32,
                })
            })
    }

    /// Whether a slot of `slot`'s class could hold `len` bytes (so releasing
    /// it makes room for them).
    pub(crate) fn fits(&self, slot: Slot, len: usize) -> bool {
        self.classes
            .get(usize::from(slot.class))
            .is_some_and(|c| c.bytes >= len)
    }

    /// Wipes the whole of `slot` and returns it to its class's free list.
    pub(crate) fn release(&mut self, slot: Slot) {
        let Some((start, bytes)) = self.range(slot) else {
            return;
        };
        if let Some(all) = self.region.as_mut_slice().get_mut(start..start + bytes) {
            all.zeroize();
            if let Some(c) = self.classes.get_mut(usize::from(slot.class)) {
                c.free.push(slot.index);
            }
        }
    }

    /// (offset, class size) of `slot` in the region.
    fn range(&self, slot: Slot) -> Option<(usize, usize)> {
        let c = self.classes.get(usize::from(slot.class))?;
        if slot.index >= c.slots || slot.len() > c.bytes {
            return None;
        }
        let start = c
            .offset
            .checked_add((slot.index as usize).checked_mul(c.bytes)?)?;
        Some((start, c.bytes))
    }

    /// Borrows the material in `slot` (exactly `slot.len()` bytes).
    pub(crate) fn bytes(&self, slot: Slot) -> Option<&[u8]> {
        let (start, _) = self.range(slot)?;
        self.region
            .as_slice()
            .get(start..start.checked_add(slot.len())?)
    }

    /// Mutably borrows the material in `slot`, to fill it.
    pub(crate) fn bytes_mut(&mut self, slot: Slot) -> Option<&mut [u8]> {
        let (start, _) = self.range(slot)?;
        self.region
            .as_mut_slice()
            .get_mut(start..start.checked_add(slot.len())?)
    }

    /// Borrows the AES-256 key in `slot` (`None` unless it holds 32 bytes).
    pub(crate) fn key(&self, slot: Slot) -> Option<&[u8; KEY_LEN]> {
        self.bytes(slot)?.try_into().ok()
    }

    /// Mutably borrows the AES-256 key in `slot`, to fill it.
    pub(crate) fn key_mut(&mut self, slot: Slot) -> Option<&mut [u8; KEY_LEN]> {
        self.bytes_mut(slot)?.try_into().ok()
    }

    /// Slots in use, over all classes.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> u32 {
        self.classes
            .iter()
            .map(|c| c.slots.saturating_sub(c.free.len() as u32))
            .sum()
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
        check_mapping(
            self.region.start(),
            self.region.locked,
            self.region.dontdump,
        )
    }
}

/// What the kernel says about the mapping holding `addr`, and our own record
/// of whether `mlock`/`madvise` succeeded on it.
pub(crate) fn check_mapping(
    addr: usize,
    locked: bool,
    dontdump: bool,
) -> std::io::Result<MemCheck> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let flags = vm_flags_of(&smaps, addr).unwrap_or_default();
    Ok(MemCheck {
        vm_lck_kb: vm_lck_kb(&status).unwrap_or(0),
        locked: flags.split_whitespace().any(|f| f == "lo") && locked,
        dontdump: flags.split_whitespace().any(|f| f == "dd") && dontdump,
    })
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

    fn aes(slots: u32) -> KeySlab {
        KeySlab::new(&[SizeClass {
            bytes: KEY_LEN,
            slots,
        }])
        .expect("map")
    }

    #[test]
    fn slots_are_distinct_and_wiped_on_release() {
        let mut slab = aes(4);
        let a = slab.alloc(KEY_LEN).expect("slot");
        let b = slab.alloc(KEY_LEN).expect("slot");
        assert_ne!(a, b);
        slab.key_mut(a).expect("a").fill(0xAA);
        slab.key_mut(b).expect("b").fill(0xBB);
        assert_eq!(slab.key(a).expect("a"), &[0xAA; KEY_LEN]);
        assert_eq!(slab.in_use(), 2);
        slab.release(a);
        assert_eq!(slab.in_use(), 1);
        let c = slab.alloc(KEY_LEN).expect("slot");
        assert_eq!(slab.key(c).expect("c"), &[0; KEY_LEN]);
        assert_eq!(slab.key(b).expect("b"), &[0xBB; KEY_LEN]);
        slab.alloc(KEY_LEN).expect("slot");
        slab.alloc(KEY_LEN).expect("slot");
        assert!(slab.alloc(KEY_LEN).is_none());
        assert!(slab.alloc(KEY_LEN + 1).is_none(), "too big for any class");
        let stray = Slot {
            class: 0,
            index: 4,
            len: 32,
        };
        assert!(slab.key(stray).is_none());
    }

    #[test]
    fn variable_sizes_take_the_smallest_class_with_room() {
        let mut slab = KeySlab::new(&[
            SizeClass {
                bytes: 32,
                slots: 1,
            },
            SizeClass {
                bytes: 4096,
                slots: 2,
            },
        ])
        .expect("map");
        let small = slab.alloc(32).expect("small");
        let rsa = slab.alloc(2400).expect("rsa-sized");
        slab.bytes_mut(rsa).expect("rsa").fill(0x77);
        assert_eq!(slab.bytes(rsa).expect("rsa").len(), 2400);
        assert!(slab.key(rsa).is_none(), "not an AES key");
        // The 32-byte class is full: a 32-byte key spills into the big class.
        let spill = slab.alloc(20).expect("spill");
        assert!(slab.fits(spill, 4000) && !slab.fits(small, 33));
        assert!(slab.alloc(1).is_none());
        slab.release(rsa);
        let again = slab.alloc(4096).expect("reused");
        assert!(slab.bytes(again).expect("again").iter().all(|&b| b == 0));
        assert!(slab.bytes(small).expect("small").iter().all(|&b| b == 0));
    }

    #[test]
    fn debug_is_redacted() {
        let mut slab = aes(1);
        let s = slab.alloc(KEY_LEN).expect("slot");
        slab.key_mut(s).expect("s").fill(0x41);
        let dbg = format!("{slab:?}");
        assert!(dbg.contains("REDACTED") && !dbg.contains("65"), "{dbg}");
    }

    #[test]
    fn kernel_reports_locked_and_undumpable() {
        let slab = aes(1024);
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
