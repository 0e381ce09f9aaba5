//! Prefilling (see the writer's module doc): keeping the current log file
//! zero-filled ahead of its records, cutting a closed file back to them, and
//! taking the next file from `filler` when it is ready.

use super::super::filler::{self, Filler};
use super::super::{Durability, chain};
use super::Writer;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Zero-filled space added ahead of the records at a time (or 1/16 of
/// `max_file_bytes` if that is smaller). Filling happens on the writer's
/// path (for the first file after a start; later files come filled from
/// `filler`), so requests queued meanwhile wait for it: at 4 MiB that was a
/// 6-8 ms stall, the p99.9 of a lone client; at 1 MiB about 2 ms.
pub(super) const PREFILL_CHUNK: u64 = 1 << 20;
/// Zeros written per call while prefilling.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

impl Writer {
    /// Whether the file is kept zero-filled ahead of the records.
    pub(super) fn prefills(&self) -> bool {
        self.settings.durability != Durability::None
    }

    pub(super) fn chunk(&self) -> u64 {
        PREFILL_CHUNK.min(self.settings.max_file_bytes / 16)
    }

    /// Writes zeros from the end of the filled space up to `to` and syncs
    /// them.
    fn fill_to(&mut self, to: u64) -> std::io::Result<()> {
        if to <= self.filled {
            return Ok(());
        }
        let mut at = self.filled;
        while at < to {
            let n = ZEROS
                .len()
                .min(usize::try_from(to - at).unwrap_or(usize::MAX));
            self.file.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        self.file.sync_data()?;
        self.filled = to;
        Ok(())
    }

    /// Between batches: once less filled space is left than the next write
    /// may need (a quarter chunk, or twice the last write), fills another
    /// chunk, not much past `max_file_bytes`. A failure is only logged:
    /// records are then written past the filled space, as plain appends.
    pub(super) fn fill_ahead(&mut self) {
        if !self.prefills() {
            return;
        }
        let low = (self.chunk() / 4).max(2 * self.last_write);
        if self.filled.saturating_sub(self.file_len) >= low {
            return;
        }
        let to = (self.filled + self.chunk().max(low))
            .min(self.settings.max_file_bytes.max(self.file_len) + low);
        if let Err(e) = self.fill_to(to) {
            tracing::warn!(error = %e, "cannot zero-fill the audit file ahead of its records");
        }
    }

    /// Makes room for `need` bytes of records in filled space before they
    /// are written (a write bigger than the room left).
    pub(super) fn make_room(&mut self, need: u64) {
        if !self.prefills() || self.file_len + need <= self.filled {
            return;
        }
        if let Err(e) = self.fill_to(self.file_len + need + self.chunk()) {
            tracing::warn!(error = %e, "cannot zero-fill the audit file ahead of its records");
        }
    }

    /// Cuts the file back to its records and syncs it, so a closed file
    /// never ends in zeros.
    pub(super) fn cut_to_records(&mut self) -> std::io::Result<()> {
        if self.file.metadata()?.len() != self.file_len {
            self.file.set_len(self.file_len)?;
            self.file.sync_all()?;
        }
        self.filled = self.file_len;
        Ok(())
    }

    /// Once the current file is half full (and prefilling), asks the filler
    /// for the next file, once per file.
    pub(in crate::audit) fn prepare_next(&mut self) {
        let next = self.file_number + 1;
        if !self.prefills()
            || self.asked >= next
            || self.file_len < self.settings.max_file_bytes / 2
        {
            return;
        }
        self.asked = next;
        if self.filler.is_none() {
            match Filler::start(self.settings.dir.clone()) {
                Ok(f) => self.filler = Some(f),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the audit filler thread; rotation fills the next file itself");
                    return;
                }
            }
        }
        if let Some(f) = &self.filler {
            f.request(next, self.settings.max_file_bytes + self.chunk());
        }
    }

    /// Whether the spare of the next file is ready, taking what the filler
    /// handed back (without waiting). A spare for another file (finished
    /// after its rotation had gone on without it) is deleted.
    pub(in crate::audit) fn poll_spare(&mut self) -> bool {
        let next = self.file_number + 1;
        while let Some(spare) = self.filler.as_ref().and_then(Filler::try_take) {
            if let Some(old) = self.spare.replace(spare) {
                filler::discard(&self.settings.dir, old.number);
            }
        }
        if let Some(spare) = self.spare.take_if(|s| s.number != next) {
            filler::discard(&self.settings.dir, spare.number);
        }
        self.spare.is_some()
    }

    /// The next file from a ready spare: linked under the log file's name
    /// (which fails rather than replace an existing file), then the spare
    /// name removed. Returns the file and its filled length.
    pub(super) fn take_spare(&mut self) -> Option<(File, u64)> {
        if !self.poll_spare() {
            return None;
        }
        let spare = self.spare.take()?;
        let dir = &self.settings.dir;
        let from = filler::spare_path(dir, spare.number);
        if let Err(e) = std::fs::hard_link(&from, dir.join(chain::file_name(spare.number))) {
            tracing::warn!(error = %e, file = %from.display(), "cannot take the prepared audit file; filling the next file here");
            filler::discard(dir, spare.number);
            return None;
        }
        filler::discard(dir, spare.number);
        Some((spare.file, spare.filled))
    }
}
