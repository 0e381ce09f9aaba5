//! The single audit writer: one OS thread owns the current log file, chains
//! records, commits them in groups and answers each request once its record
//! is as durable as configured. Digests are signed by hsm-daemon (through
//! the runtime's `hsm_client`) every N records, after an idle interval,
//! before each rotation and at shutdown.
//!
//! Group commit: the thread takes the first queued submission (one call's
//! records), then everything else queued at that moment (up to
//! [`MAX_BATCH`] submissions), writes them with one `write` and, with
//! [`Durability::Group`], one `fdatasync`, then wakes every waiter. A
//! submission's records are always consecutive lines.
//! [`Durability::Fsync`] syncs each submission on its own;
//! [`Durability::None`] only writes (the page cache survives kill -9 of this
//! process, not a power loss). The file format is `chain`'s.
//!
//! Prefilling: with `Group` and `Fsync` the current file is kept filled with
//! written, synced zero bytes ahead of the records ([`PREFILL_CHUNK`] at a
//! time, extended between batches), and records are written at the end of
//! the records with positioned writes, so a batch's `fdatasync` has no
//! file-size change to commit. A record never goes past the filled space
//! without the file being extended first. A closed file (rotation,
//! shutdown) is cut back to its records; a crash leaves the zeros, which
//! `resume` cuts on the next start. `None` does not prefill (the page cache
//! is enough; zero-filling would double the writes).
//!
//! The next file is prepared off this thread: once the current file is half
//! of `max_file_bytes`, the writer asks `filler` for file N+1, zero-filled
//! to `max_file_bytes` and one prefill chunk, under a spare name that is not
//! a log file. Rotation takes it only if it is ready (never waiting):
//! links it under the log file's name (never over an existing file), drops
//! the spare name and syncs the directory; otherwise it opens the file
//! itself and fills it incrementally as above, as for the first file after
//! a start. `open` deletes leftover spares (a crash); shutdown stops the
//! filler and deletes a spare not used.

use super::chain;
use super::filler::{self, Filler, Spare};
use super::{AuditError, AuditSettings, Durability};
use crate::hsm_client::HsmClient;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

mod prefill;
mod resume;

/// Most submissions written by one `write`.
pub(crate) const MAX_BATCH: usize = 1024;
/// How long a digest signature may take before the digest is written unsigned.
const SIGN_TIMEOUT: Duration = Duration::from_secs(2);
/// One call's records waiting to be written.
pub(crate) struct Pending {
    pub(crate) bodies: Vec<Vec<u8>>,
    pub(crate) submitted: Instant,
    pub(crate) done: oneshot::Sender<Result<(), AuditError>>,
}

/// What the writer thread is asked to do.
pub(crate) enum Msg {
    Record(Pending),
    /// Write a final digest, then stop; answers when done.
    Shutdown(oneshot::Sender<()>),
}

/// The writer thread's state.
pub(crate) struct Writer {
    settings: AuditSettings,
    hsm: HsmClient,
    runtime: tokio::runtime::Handle,
    file: File,
    file_number: u64,
    /// The end of the records: where the next line is written.
    file_len: u64,
    /// The end of the zero-filled, synced space after the records (equal to
    /// `file_len` when there is none).
    filled: u64,
    /// Bytes of the last write, to judge how much room the next one needs.
    last_write: u64,
    sequence: u64,
    head: [u8; 32],
    since_digest: u64,
    public_key: Option<[u8; 32]>,
    /// The filler thread, started the first time a spare is asked for.
    filler: Option<Filler>,
    /// A spare handed back by the filler, not yet used.
    spare: Option<Spare>,
    /// The highest file number a spare was asked for (0: none).
    asked: u64,
}

/// Syncs the directory `dir`, so a file just created or renamed in it stays.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn open_log(dir: &Path, n: u64) -> Result<(File, u64), AuditError> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false) // continue the newest file
        .mode(0o600)
        .open(dir.join(chain::file_name(n)))
        .map_err(AuditError::io)?;
    let len = file.metadata().map_err(AuditError::io)?.len();
    Ok((file, len))
}

/// Creates the log directory (0700, its entry synced in its parent) or
/// refuses one others can reach.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), AuditError> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(AuditError::io)?;
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(parent).map_err(AuditError::io)?;
    }
    let mode = std::fs::metadata(dir)
        .map_err(AuditError::io)?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(AuditError::Corrupt(format!(
            "audit directory {} is accessible to group or others (mode {:o}); chmod 700 it",
            dir.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

impl Writer {
    /// Opens the log in `settings.dir`, continuing its chain.
    pub(crate) fn open(
        settings: AuditSettings,
        hsm: HsmClient,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, AuditError> {
        ensure_dir(&settings.dir)?;
        match filler::remove_leftovers(&settings.dir) {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "deleted audit spare files left by a crash"),
            Err(e) => tracing::warn!(error = %e, "cannot delete leftover audit spare files"),
        }
        let r = resume::resume(&settings.dir)?;
        let (file, file_len) = open_log(&settings.dir, r.file_number)?;
        // The file may have just been created: its name must outlive a crash
        // as the records acknowledged in it will.
        sync_dir(&settings.dir).map_err(AuditError::io)?;
        Ok(Self {
            settings,
            hsm,
            runtime,
            file,
            file_number: r.file_number,
            file_len,
            filled: file_len,
            last_write: 0,
            sequence: r.sequence,
            head: r.head,
            since_digest: 0,
            public_key: None,
            filler: None,
            spare: None,
            asked: 0,
        })
    }

    /// Serves `rx` until shutdown or until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let interval = self.settings.digest_interval;
        loop {
            self.fill_ahead();
            // Under load the next submission is usually queued already:
            // take it without entering the runtime and arming a timer.
            let first = match rx.try_recv() {
                Ok(msg) => Ok(Some(msg)),
                Err(mpsc::error::TryRecvError::Disconnected) => Ok(None),
                Err(mpsc::error::TryRecvError::Empty) => self
                    .runtime
                    .clone()
                    .block_on(async { tokio::time::timeout(interval, rx.recv()).await }),
            };
            let mut batch = Vec::new();
            let mut stop = None;
            match first {
                Err(_) => {
                    if self.since_digest > 0 {
                        self.digest("interval");
                    }
                    continue;
                }
                Ok(None) => {
                    self.finish();
                    return;
                }
                Ok(Some(Msg::Record(p))) => batch.push(p),
                Ok(Some(Msg::Shutdown(ack))) => stop = Some(ack),
            }
            while stop.is_none() && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Msg::Record(p)) => batch.push(p),
                    Ok(Msg::Shutdown(ack)) => stop = Some(ack),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.write_batch(batch);
            }
            if self.since_digest >= self.settings.digest_every {
                self.digest("periodic");
            }
            self.prepare_next();
            if self.file_len >= self.settings.max_file_bytes {
                self.rotate();
            }
            if let Some(ack) = stop {
                self.finish();
                let _ = ack.send(());
                return;
            }
        }
    }

    /// Writes `batch` (one write and sync per group, or per record with
    /// `Fsync`) and answers every waiter.
    fn write_batch(&mut self, batch: Vec<Pending>) {
        let group = match self.settings.durability {
            Durability::Fsync => 1,
            Durability::Group | Durability::None => batch.len(),
        };
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            let chunk: Vec<Pending> = batch.by_ref().take(group).collect();
            let bodies: Vec<&[u8]> = chunk
                .iter()
                .flat_map(|p| p.bodies.iter().map(Vec::as_slice))
                .collect();
            let result = self.append(&bodies);
            let metrics = crate::metrics::global();
            match &result {
                Ok(()) => {
                    let now = Instant::now();
                    for p in &chunk {
                        metrics
                            .audit_written(p.bodies.len() as u64, now.duration_since(p.submitted));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, records = bodies.len(), "audit write failed");
                    metrics.audit_failed(bodies.len() as u64);
                }
            }
            for p in chunk {
                let _ = p.done.send(result.clone());
            }
        }
    }

    /// Writes the final digest and cuts the file back to its records; stops
    /// the filler and deletes a spare not used.
    pub(super) fn finish(&mut self) {
        self.digest("shutdown");
        if let Err(e) = self.cut_to_records() {
            tracing::error!(error = %e, "cannot cut the audit file back to its records; the next start will");
        }
        self.filler = None;
        if let Some(spare) = self.spare.take() {
            filler::discard(&self.settings.dir, spare.number);
        }
    }

    /// Chains and writes `bodies` as lines at the end of the records,
    /// syncing as configured. On failure the chain position is kept and the
    /// file cut back to its records (the filled space is filled again
    /// before the next write).
    pub(super) fn append(&mut self, bodies: &[&[u8]]) -> Result<(), AuditError> {
        let (sequence, head) = (self.sequence, self.head);
        let mut buf = Vec::with_capacity(bodies.iter().map(|b| b.len() + 112).sum());
        for body in bodies {
            self.sequence += 1;
            let line = chain::chained_line(self.sequence, &self.head, body);
            self.head = chain::line_hash(&line);
            buf.extend_from_slice(&line);
            buf.push(b'\n');
        }
        self.make_room(buf.len() as u64);
        let written = self.file.write_all_at(&buf, self.file_len).and_then(|()| {
            match self.settings.durability {
                Durability::None => Ok(()),
                Durability::Group | Durability::Fsync => self.file.sync_data(),
            }
        });
        match written {
            Ok(()) => {
                self.file_len += buf.len() as u64;
                self.filled = self.filled.max(self.file_len);
                self.last_write = buf.len() as u64;
                self.since_digest += bodies.len() as u64;
                if self.settings.stdout {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf).and_then(|()| out.flush());
                }
                Ok(())
            }
            Err(e) => {
                self.sequence = sequence;
                self.head = head;
                if let Err(cut) = self.file.set_len(self.file_len) {
                    tracing::error!(error = %cut, "cannot cut a failed audit write back off");
                }
                self.filled = self.file_len;
                Err(AuditError::io(e))
            }
        }
    }

    fn call_hsm(&self, request: protocol::Request) -> Option<protocol::Response> {
        let call = self.hsm.call(request);
        match self
            .runtime
            .block_on(async { tokio::time::timeout(SIGN_TIMEOUT, call).await })
        {
            Ok(Ok(response)) => Some(response),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "hsm-daemon did not sign the audit digest");
                None
            }
            Err(_) => {
                tracing::warn!("hsm-daemon did not sign the audit digest in time");
                None
            }
        }
    }

    /// The audit public key, fetched once and written next to the logs.
    fn public_key(&mut self) -> Option<[u8; 32]> {
        if self.public_key.is_none()
            && let Some(protocol::Response::AuditPublicKey { public_key }) =
                self.call_hsm(protocol::Request::AuditPublicKey)
        {
            let path = self.settings.dir.join(chain::PUBLIC_KEY_FILE);
            let written = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o644)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{}", hex::encode(public_key)));
            if let Err(e) = written {
                tracing::warn!(error = %e, path = %path.display(), "cannot write the audit public key file");
            }
            self.public_key = Some(public_key);
        }
        self.public_key
    }

    /// Appends a digest record signing the chain head (unsigned, with a
    /// warning, when the daemon cannot sign: a later digest covers it).
    fn digest(&mut self, reason: &str) {
        let public_key = self.public_key();
        let signature = match self
            .call_hsm(protocol::Request::SignAuditDigest { digest: self.head })
        {
            Some(protocol::Response::AuditSignature { signature }) => Some(hex::encode(signature)),
            _ => None,
        };
        let body = serde_json::json!({
            "eventVersion": "1.08",
            "eventType": chain::DIGEST_EVENT_TYPE,
            "eventTime": super::record::event_time(time::OffsetDateTime::now_utc()),
            "eventSource": "kms.amazonaws.com",
            "reason": reason,
            "recordsCovered": self.since_digest,
            "logFile": chain::file_name(self.file_number),
            "signatureAlgorithm": "Ed25519",
            "publicKey": public_key.map(hex::encode),
            "signature": signature,
        });
        let body = body.to_string().into_bytes();
        match self.append(&[&body]) {
            Ok(()) => self.since_digest = 0,
            Err(e) => tracing::error!(error = %e, "cannot write the audit digest"),
        }
    }

    /// Seals the current file with a digest, cuts it back to its records
    /// (the digest stays its last line) and starts the next one.
    pub(super) fn rotate(&mut self) {
        self.digest("rotation");
        if let Err(e) = self.cut_to_records() {
            tracing::error!(error = %e, "cannot cut the full audit file back to its records; writing on in it");
            return;
        }
        let (file, len, filled) = match self.take_spare() {
            Some((file, filled)) => (file, 0, filled),
            None => match open_log(&self.settings.dir, self.file_number + 1) {
                Ok((file, len)) => (file, len, len),
                Err(e) => {
                    tracing::error!(error = %e, "cannot rotate the audit log; writing on");
                    return;
                }
            },
        };
        if let Err(e) = sync_dir(&self.settings.dir) {
            tracing::warn!(error = %e, "cannot sync the audit directory after rotation");
        }
        self.file = file;
        self.file_number += 1;
        self.file_len = len;
        self.filled = filled;
        tracing::info!(file = %chain::file_name(self.file_number), prefilled = filled > len, "audit log rotated");
    }
}

#[cfg(test)]
impl Writer {
    /// Puts `file` in place of the log file (to make its writes or syncs
    /// fail), returning the log file.
    pub(super) fn replace_file(&mut self, file: File) -> File {
        std::mem::replace(&mut self.file, file)
    }
}
