//! The audit trail: one CloudTrail-shaped JSON record per API call, preceded
//! by one record per authorization decision made for it, written
//! append-only, hash-chained and periodically signed by hsm-daemon, before
//! the reply is sent.
//!
//! [`Auditor`] is the handle requests use: [`Auditor::record`] builds the
//! call's decision records (`decision`) and its own record (`record`),
//! hands them together to the single writer thread (`writer`), which writes
//! them as consecutive lines, and waits until they are written and as
//! durable as [`Durability`] says. If it
//! cannot be written the caller must not send the operation's result (the
//! server answers 500: fail closed). The file format and the hash chain are
//! `chain`'s; checking a log offline is `verify`'s.

pub mod chain;
pub mod decision;
mod filler;
pub mod record;
pub mod verify;
mod writer;

pub use decision::{Collector, DECISION_EVENT_TYPE, Decided};
pub use record::ApiCall;

use crate::hsm_client::HsmClient;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Records queued to the writer before requests wait for room.
const QUEUE_DEPTH: usize = 8192;

/// When a record counts as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `fdatasync` after every call's records (its decisions and itself).
    Fsync,
    /// One `fdatasync` per group of records written together (default).
    Group,
    /// Written to the file (page cache) only: survives kill -9, not power loss.
    None,
}

/// Audit settings, from the `[audit]` section of the config.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub dir: PathBuf,
    pub durability: Durability,
    /// Rotate once the current file reaches this size.
    pub max_file_bytes: u64,
    /// A signed digest every this many records.
    pub digest_every: u64,
    /// And after this long without one while records are uncovered.
    pub digest_interval: Duration,
    /// Also copy each record to stdout (for a log shipper).
    pub stdout: bool,
}

/// Why an audit record could not be written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("audit log i/o failed: {0}")]
    Io(Arc<std::io::Error>),
    #[error("audit log is not usable: {0}")]
    Corrupt(String),
    #[error("audit writer has stopped")]
    Stopped,
}

impl AuditError {
    pub(crate) fn io(e: std::io::Error) -> Self {
        Self::Io(Arc::new(e))
    }
}

/// The handle requests record through; cheap to clone.
#[derive(Debug, Clone)]
pub struct Auditor {
    tx: mpsc::Sender<writer::Msg>,
}

impl std::fmt::Debug for writer::Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit::Msg")
    }
}

impl Auditor {
    /// Opens the log in `settings.dir` (continuing its chain) and starts the
    /// writer thread. Must be called inside the tokio runtime whose
    /// `hsm_client` signs the digests.
    ///
    /// # Errors
    /// The directory or the newest file cannot be opened or read.
    pub fn start(settings: AuditSettings, hsm: HsmClient) -> Result<Self, AuditError> {
        let runtime = tokio::runtime::Handle::current();
        let w = writer::Writer::open(settings, hsm, runtime)?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || w.run(rx))
            .map_err(AuditError::io)?;
        Ok(Self { tx })
    }

    /// Records one call: a record per decision in `decisions` (in order),
    /// then the call's own record, as consecutive lines; returns once all
    /// are written.
    ///
    /// # Errors
    /// [`AuditError`]: the records are not in the log.
    pub async fn record(
        &self,
        call: &ApiCall<'_>,
        decisions: &[Decided],
    ) -> Result<(), AuditError> {
        let mut bodies = Vec::with_capacity(decisions.len() + 1);
        for d in decisions {
            bodies.push(decision::event(call, d)?);
        }
        bodies.push(record::event(call)?);
        self.submit(bodies).await
    }

    /// Queues already serialized records (JSON objects), to be written as
    /// consecutive lines.
    pub(crate) async fn submit(&self, bodies: Vec<Vec<u8>>) -> Result<(), AuditError> {
        let (done, rx) = oneshot::channel();
        let pending = writer::Pending {
            bodies,
            submitted: Instant::now(),
            done,
        };
        self.tx
            .send(writer::Msg::Record(pending))
            .await
            .map_err(|_| AuditError::Stopped)?;
        rx.await.map_err(|_| AuditError::Stopped)?
    }

    /// Writes a final signed digest and stops the writer.
    pub async fn shutdown(&self) {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(writer::Msg::Shutdown(ack)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bench;
