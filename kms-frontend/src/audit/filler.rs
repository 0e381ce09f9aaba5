//! The audit filler: one OS thread ("audit-filler") that prepares the next
//! log file before the writer needs it, so that rotation does not leave the
//! writer zero-filling a whole new file while requests wait.
//!
//! The writer asks for file number N (once the current file is half full);
//! the filler creates it as a spare, `audit-NNNNNNNN.jsonl.spare` (mode
//! 0600, never an existing file), writes zeros up to the length asked in
//! [`WRITE`]-sized pieces, syncing every [`SYNC_EVERY`] bytes (so it never
//! leaves a whole file of dirty pages to one sync) and once at the end, and
//! hands back a [`Spare`]. The writer polls for it without blocking and
//! turns it into the log file at rotation (`writer`'s business, as are the
//! chain and the records). A spare holds only zeros and is not a log file:
//! [`chain::file_number`] does not accept its name, so every reader ignores
//! it, and the writer deletes leftovers ([`remove_leftovers`]) when it
//! starts. Stopping the filler (dropping [`Filler`]) deletes a half-made
//! spare and any spare not taken.

use super::chain;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Zeros written per call.
const WRITE: usize = 1 << 20;
/// Bytes written between two syncs.
const SYNC_EVERY: u64 = 8 << 20;
/// What a spare's name adds to its log file's name.
const SUFFIX: &str = ".spare";

/// A prepared next log file: zeros up to `filled`, synced.
pub(super) struct Spare {
    pub(super) number: u64,
    pub(super) file: File,
    pub(super) filled: u64,
}

/// The path of the spare for log file number `n`.
pub(super) fn spare_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{}{SUFFIX}", chain::file_name(n)))
}

/// Whether `path` is named like a spare.
fn is_spare(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(SUFFIX))
        .is_some_and(|log| chain::file_number(Path::new(log)).is_some())
}

/// Deletes the spares in `dir` (left by a crash: they hold only zeros);
/// returns how many.
///
/// # Errors
/// Reading the directory or deleting a spare failed.
pub(super) fn remove_leftovers(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if is_spare(&path) {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Deletes a spare no one will use (a failure is only logged: the next start
/// deletes it).
pub(super) fn discard(dir: &Path, n: u64) {
    let path = spare_path(dir, n);
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(error = %e, file = %path.display(), "cannot delete an unused audit spare file");
    }
}

/// The handle on the filler thread, owned by the writer. Dropping it stops
/// the thread (a spare being made is abandoned, within one write or sync),
/// waits for it and deletes every spare not taken.
pub(super) struct Filler {
    dir: PathBuf,
    jobs: Option<mpsc::Sender<(u64, u64)>>,
    ready: mpsc::Receiver<Spare>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Filler {
    /// Starts the thread, making spares in `dir`.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub(super) fn start(dir: PathBuf) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel();
        let (done, ready) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (dir, stop) = (dir.clone(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("audit-filler".into())
                .spawn(move || run(&dir, &rx, &done, &stop))?
        };
        Ok(Self {
            dir,
            jobs: Some(jobs),
            ready,
            stop,
            thread: Some(thread),
        })
    }

    /// Asks for the spare of log file `number`, zero-filled to `len` bytes.
    pub(super) fn request(&self, number: u64, len: u64) {
        if let Some(jobs) = &self.jobs
            && jobs.send((number, len)).is_err()
        {
            tracing::warn!(
                "the audit filler thread has stopped; rotation fills the next file itself"
            );
        }
    }

    /// A finished spare, if one is waiting (never blocks).
    pub(super) fn try_take(&self) -> Option<Spare> {
        self.ready.try_recv().ok()
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the audit filler thread panicked");
        }
        while let Some(spare) = self.try_take() {
            discard(&self.dir, spare.number);
        }
    }
}

fn run(
    dir: &Path,
    jobs: &mpsc::Receiver<(u64, u64)>,
    done: &mpsc::Sender<Spare>,
    stop: &AtomicBool,
) {
    while let Ok((number, len)) = jobs.recv() {
        let path = spare_path(dir, number);
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(error = %e, file = %path.display(), "cannot create the next audit file ahead of rotation");
                continue;
            }
        };
        match fill(&file, len, stop) {
            Ok(true) => {
                let spare = Spare {
                    number,
                    file,
                    filled: len,
                };
                if done.send(spare).is_err() {
                    discard(dir, number);
                    return;
                }
            }
            Ok(false) => {
                discard(dir, number);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, file = %path.display(), "cannot zero-fill the next audit file ahead of rotation");
                discard(dir, number);
            }
        }
    }
}

/// Writes zeros to `file` up to `len` and syncs them; false when stopped
/// first.
fn fill(file: &File, len: u64, stop: &AtomicBool) -> std::io::Result<bool> {
    let zeros = vec![0u8; WRITE];
    let (mut at, mut unsynced) = (0u64, 0u64);
    while at < len {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let n = WRITE.min(usize::try_from(len - at).unwrap_or(usize::MAX));
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
        unsynced += n as u64;
        if unsynced >= SYNC_EVERY {
            file.sync_data()?;
            unsynced = 0;
        }
    }
    file.sync_data()?;
    Ok(true)
}
