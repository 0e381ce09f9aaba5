//! Time-driven work: destroying keys whose deletion window has ended and
//! rotating keys whose automatic rotation is due, run by a scheduler task.
//!
//! Everything the scheduler needs is in the store (deletion dates, next
//! rotation dates), so it survives restarts: a frontend that was down when
//! something fell due does it at its first tick. Time comes from the
//! service's injectable clock. Destroying a key deletes its token rows,
//! tags, rotation schedule and aliases in one transaction, then asks the
//! daemon to evict every cached version; an eviction that fails (daemon
//! down) is retried at the next tick.

use super::Kms;
use super::resolve::is_deleted;
use super::rotation::AUTOMATIC;
use crate::error::KmsError;
use crate::store::KeyState;
use protocol::{Request, Response};
use std::time::Duration;

/// What one scheduler pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub destroyed: Vec<String>,
    pub rotated: Vec<String>,
    pub failed: usize,
}

impl Kms {
    /// Runs everything that is due now; never fails as a whole.
    pub async fn run_due(&self) -> TickReport {
        let mut report = TickReport::default();
        let now = self.now();
        self.retry_evictions(&mut report).await;
        for entry in self.core.cache.all_keys() {
            if is_deleted(&entry, now) {
                match self.destroy(&entry.meta.key_id).await {
                    Ok(()) => report.destroyed.push(entry.meta.key_id.clone()),
                    Err(e) => {
                        tracing::error!(key_id = %entry.meta.key_id, error = %e, "destroy failed");
                        report.failed += 1;
                    }
                }
                continue;
            }
            let due = entry
                .rotation
                .as_ref()
                .is_some_and(|r| r.next_rotation_date <= now);
            if due && entry.meta.key_state == KeyState::Enabled {
                match self.rotate(&entry, AUTOMATIC).await {
                    Ok(()) => report.rotated.push(entry.meta.key_id.clone()),
                    Err(e) => {
                        tracing::warn!(key_id = %entry.meta.key_id, error = %e, "rotation failed");
                        report.failed += 1;
                    }
                }
            }
        }
        report
    }

    /// Deletes the key's rows, then evicts it from the daemon.
    async fn destroy(&self, key_id: &str) -> Result<(), KmsError> {
        let id = key_id.to_owned();
        self.write(move |core| {
            let now = core.now();
            match core.cache.key(&id) {
                Some(e) if is_deleted(&e, now) => {}
                _ => return Ok(()), // cancelled or already gone meanwhile
            }
            core.commit(|s| s.purge_key(&id))?;
            core.cache.remove_key(&id);
            Ok(())
        })
        .await?;
        tracing::info!(key_id, "key destroyed");
        if self.evict(key_id).await.is_err() {
            self.pending_evictions().push(key_id.to_owned());
        }
        Ok(())
    }

    async fn evict(&self, key_id: &str) -> Result<u32, KmsError> {
        let r = self
            .hsm_call(Request::EvictKey {
                key_id: key_id.to_owned(),
            })
            .await
            .map_err(KmsError::from_hsm);
        match r {
            Ok(Response::Evicted { versions }) => Ok(versions),
            Ok(_) => Err(KmsError::Internal(
                "EvictKey: unexpected HSM response".into(),
            )),
            Err(e) => {
                tracing::warn!(key_id, error = %e, "eviction failed; will retry");
                Err(e)
            }
        }
    }

    async fn retry_evictions(&self, report: &mut TickReport) {
        let pending = std::mem::take(&mut *self.pending_evictions());
        for key_id in pending {
            if self.evict(&key_id).await.is_err() {
                report.failed += 1;
                self.pending_evictions().push(key_id);
            }
        }
    }

    fn pending_evictions(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.core
            .pending_evictions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Runs [`Kms::run_due`] now and then every `every`, until the task is
    /// dropped or aborted.
    pub fn spawn_scheduler(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let kms = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let r = kms.run_due().await;
                if !r.destroyed.is_empty() || !r.rotated.is_empty() || r.failed > 0 {
                    tracing::info!(
                        destroyed = r.destroyed.len(),
                        rotated = r.rotated.len(),
                        failed = r.failed,
                        "scheduler pass"
                    );
                }
            }
        })
    }
}
