//! Group commit's second stage (with [`Durability::Group`]): a thread that
//! `fdatasync`s what the writer thread has written and then answers the
//! waiters of those records, while the writer thread chains and writes the
//! next batch. One sync is in flight at a time, and each covers every batch
//! written before it started, so under load syncs follow each other with no
//! gap for chaining and writing (which took about as long as the sync itself
//! when the one thread did both).
//!
//! A failed sync fails its batches and every batch written after them, and
//! refuses new ones until the writer has taken the failure
//! ([`Syncer::take_failure`]) and cut the file back to where the first
//! failed batch started. The writer drains the stage ([`Syncer::drain`])
//! before it closes a file, so a failure always lies in the current file.
//!
//! [`Durability::Group`]: super::super::Durability::Group

use super::super::AuditError;
use super::Pending;
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

/// The chain position before a batch: where the writer goes back to if the
/// batch cannot be made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    pub(super) sequence: u64,
    pub(super) head: [u8; 32],
    pub(super) file_len: u64,
    pub(super) since_digest: u64,
}

/// A batch written to `file` but not yet synced.
pub(super) struct Written {
    pub(super) file: Arc<File>,
    pub(super) start: Mark,
    /// The lines, to copy to stdout once synced (when configured).
    pub(super) copy: Option<Vec<u8>>,
    /// The submissions it holds (none for a digest record).
    pub(super) waiters: Vec<Pending>,
}

#[derive(Default)]
struct State {
    queue: Vec<Written>,
    in_flight: bool,
    /// Where the first batch that could not be synced started, and why.
    failed: Option<(Mark, AuditError)>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a batch is queued or the stage stops.
    work: Condvar,
    /// Signalled when a sync finishes.
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in the other thread: it
        // is only changed in whole steps under the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handle the writer thread keeps; dropping it finishes the queued
/// syncs and stops the thread.
pub(super) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    pub(super) fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("audit-sync".into())
            .spawn(move || run(&theirs))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues a written batch for the next sync. Refused while a failure
    /// has not been taken: the batch's waiters are handed back with the
    /// failure (its records are past the point the file goes back to).
    pub(super) fn push(&self, batch: Written) -> Result<(), (Vec<Pending>, AuditError)> {
        let mut state = self.shared.lock();
        if let Some((_, error)) = &state.failed {
            return Err((batch.waiters, error.clone()));
        }
        state.queue.push(batch);
        drop(state);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Where the writer must go back to, once, after a failed sync.
    pub(super) fn take_failure(&self) -> Option<Mark> {
        self.shared.lock().failed.take().map(|(start, _)| start)
    }

    /// Waits until every queued batch has been synced (or failed).
    pub(super) fn drain(&self) {
        let mut state = self.shared.lock();
        while !state.queue.is_empty() || state.in_flight {
            state = self
                .shared
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared) {
    let mut taken = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.queue.is_empty() && !state.stop {
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.queue.is_empty() {
            return; // stopped, nothing left
        }
        std::mem::swap(&mut taken, &mut state.queue);
        state.in_flight = true;
        drop(state);

        let result = sync_all(&taken);
        let mut state = shared.lock();
        state.in_flight = false;
        let result = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                // Everything written after the failed batches goes too.
                let error = AuditError::io(e);
                if state.failed.is_none() {
                    state.failed = taken.first().map(|w| (w.start, error.clone()));
                }
                taken.append(&mut state.queue);
                Err(error)
            }
        };
        drop(state);
        if result.is_ok() {
            for lines in taken.iter().filter_map(|w| w.copy.as_deref()) {
                super::copy_to_stdout(lines);
            }
        }
        answer(taken.drain(..).flat_map(|w| w.waiters), &result);
        shared.done.notify_all();
    }
}

/// Syncs each file the batches were written to (one, but for a rotation
/// racing the stage, which `drain` prevents).
fn sync_all(batches: &[Written]) -> std::io::Result<()> {
    let mut last: Option<&Arc<File>> = None;
    for w in batches {
        if last.is_some_and(|f| Arc::ptr_eq(f, &w.file)) {
            continue;
        }
        w.file.sync_data()?;
        last = Some(&w.file);
    }
    Ok(())
}

/// Answers `waiters` with `result`, counting their records.
pub(super) fn answer(waiters: impl IntoIterator<Item = Pending>, result: &Result<(), AuditError>) {
    let metrics = crate::metrics::global();
    let now = Instant::now();
    let mut failed = 0;
    for p in waiters {
        let records = p.bodies.len() as u64;
        match result {
            Ok(()) => metrics.audit_written(records, now.duration_since(p.submitted)),
            Err(_) => failed += records,
        }
        let _ = p.done.send(result.clone());
    }
    if let Err(e) = result
        && failed > 0
    {
        tracing::error!(error = %e, records = failed, "audit write failed");
        metrics.audit_failed(failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn mark(n: u64) -> Mark {
        Mark {
            sequence: n,
            head: [n as u8; 32],
            file_len: n * 100,
            since_digest: n,
        }
    }

    fn batch(file: &Arc<File>, n: u64) -> (Written, oneshot::Receiver<Result<(), AuditError>>) {
        let (done, rx) = oneshot::channel();
        let waiter = Pending {
            bodies: vec![b"{}".to_vec()],
            submitted: Instant::now(),
            done,
        };
        let w = Written {
            file: Arc::clone(file),
            start: mark(n),
            copy: None,
            waiters: vec![waiter],
        };
        (w, rx)
    }

    #[test]
    fn synced_batches_are_answered_in_order_of_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = Arc::new(File::create(dir.path().join("f")).expect("file"));
        let syncer = Syncer::start().expect("start");
        let mut answers = Vec::new();
        for n in 1..=50 {
            let (w, rx) = batch(&file, n);
            assert!(syncer.push(w).is_ok());
            answers.push(rx);
        }
        syncer.drain();
        for mut rx in answers {
            assert!(matches!(rx.try_recv(), Ok(Ok(()))));
        }
        assert_eq!(syncer.take_failure(), None);
    }

    #[test]
    fn a_failed_sync_fails_later_batches_and_refuses_new_ones_until_taken() {
        // fdatasync on a pipe fails (EINVAL): a sync that cannot be done.
        let (_reader, writer) = std::io::pipe().expect("pipe");
        let pipe = Arc::new(File::from(std::os::fd::OwnedFd::from(writer)));
        let syncer = Syncer::start().expect("start");
        let (first, rx1) = batch(&pipe, 7);
        let (second, rx2) = batch(&pipe, 8);
        assert!(syncer.push(first).is_ok());
        let _ = syncer.push(second); // refused if the failure came first
        syncer.drain();
        let mut rx1 = rx1;
        assert!(matches!(rx1.try_recv(), Ok(Err(AuditError::Io(_)))));
        // The second batch was either failed with the first or handed back
        // (and dropped here, which its waiter sees as a closed channel).
        let mut rx2 = rx2;
        assert!(!matches!(rx2.try_recv(), Ok(Ok(()))));

        let (third, _rx3) = batch(&pipe, 9);
        assert!(
            syncer.push(third).is_err(),
            "refused until the failure is taken"
        );
        assert_eq!(syncer.take_failure(), Some(mark(7)));
        assert_eq!(syncer.take_failure(), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = Arc::new(File::create(dir.path().join("f")).expect("file"));
        let (fourth, mut rx4) = batch(&file, 9);
        assert!(syncer.push(fourth).is_ok());
        syncer.drain();
        assert!(matches!(rx4.try_recv(), Ok(Ok(()))));
    }
}
