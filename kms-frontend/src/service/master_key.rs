//! Master-key rotation, driven from the frontend (which holds the tokens)
//! with the crypto in hsm-daemon: begin (the daemon makes generation n+1
//! and keeps n for unwrapping), rewrap every stored token of an older
//! generation in batches, complete (the daemon forgets n).
//!
//! [`Kms::rotate_master_key`] is one bounded step, so no call outlives the
//! request timeout and every step is its own audited admin call: it begins
//! (idempotent in the daemon while a rotation is in progress), waits for
//! token-making operations that started before it began (`Core::token_gate`),
//! rewraps up to `max_batches` batches of stale tokens (or as many as fit
//! in [`STEP_BUDGET`]) — each batch committed in one transaction, then
//! written through to the key cache and the principals' system key — and,
//! once no stale token is left, completes. All of its state is in the
//! database and the daemon's key file, so a step interrupted anywhere (the
//! frontend or the daemon killed) is finished by the next one; serving
//! continues throughout, since the daemon unwraps both generations until
//! the end. `kmsctl rotate-master-key` calls it until it reports completion.

use super::Kms;
use crate::error::KmsError;
use crate::hsm_client::HsmError;
use crate::principal::Principal;
use crate::store::{TokenPlace, TokenRow};
use protocol::{KeyRef, KeyToken, Request, Response, WireError};
use std::time::{Duration, Instant};

/// Tokens rewrapped per batch (one transaction) unless the caller says.
pub const DEFAULT_BATCH: u32 = 100;
/// Largest batch a caller may ask for.
pub const MAX_BATCH: u32 = 1000;
/// Work one step does before it answers (well inside the request timeout).
pub const STEP_BUDGET: Duration = Duration::from_secs(5);
/// Pause before completing, so requests that read a token from the cache
/// just before its last update reach the daemon while the old key is held.
const DRAIN: Duration = Duration::from_millis(250);

/// What the daemon holds and what the store still has to rewrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterKeyStatus {
    /// The generation that wraps new tokens.
    pub generation: u32,
    /// The generation still accepted, while a rotation is in progress.
    pub previous_generation: Option<u32>,
    /// Stored tokens not of the current generation.
    pub stale_tokens: u64,
    /// Stored tokens in all.
    pub tokens: u64,
}

/// The outcome of one rotation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotationStep {
    /// The generation tokens were rewrapped to.
    pub generation: u32,
    /// Key versions rewrapped by this step.
    pub key_versions: u64,
    /// System keys rewrapped by this step.
    pub system_keys: u64,
    /// Stale tokens left after this step.
    pub remaining: u64,
    /// Stored tokens in all.
    pub tokens: u64,
    /// Whether this step completed the rotation.
    pub completed: bool,
}

/// What only administrators may do here (in the AccessDenied message).
const MASTER_KEY_ADMINS: &str = "rotate or inspect the master key";

fn unexpected(op: &str) -> KmsError {
    KmsError::Internal(format!("{op}: unexpected HSM response"))
}

impl Kms {
    async fn master_keys(&self, request: Request) -> Result<(u32, Option<u32>), KmsError> {
        let op = request.name();
        match self.hsm_call(request).await.map_err(KmsError::from_hsm)? {
            Response::MasterKeys { current, previous } => Ok((current, previous)),
            _ => Err(unexpected(op)),
        }
    }

    async fn count_stale(&self, header: Vec<u8>) -> Result<(u64, u64), KmsError> {
        let core = std::sync::Arc::clone(&self.core);
        tokio::task::spawn_blocking(move || core.store.count_stale_tokens(&header))
            .await
            .map_err(|e| KmsError::Internal(format!("count task failed: {e}")))?
            .map_err(|e| KmsError::Internal(format!("counting tokens: {e}")))
    }

    /// The daemon's master-key generations and the store's token counts.
    /// Administrators only.
    ///
    /// # Errors
    /// AccessDenied, HSM and store failures.
    pub async fn master_key_status(&self, caller: &Principal) -> Result<MasterKeyStatus, KmsError> {
        self.core
            .require_admin(caller, "GetMasterKeyStatus", MASTER_KEY_ADMINS)?;
        let (generation, previous_generation) = self.master_keys(Request::MasterKeyStatus).await?;
        let (stale_tokens, tokens) = self
            .count_stale(protocol::token::header(generation))
            .await?;
        Ok(MasterKeyStatus {
            generation,
            previous_generation,
            stale_tokens,
            tokens,
        })
    }

    /// One step of a master-key rotation (see the module doc): begins or
    /// resumes it, rewraps up to `max_batches` batches of `batch_size`
    /// tokens, and completes it when none is left. Administrators only.
    ///
    /// # Errors
    /// AccessDenied, Validation (batch sizes), InvalidState (a stored token
    /// the daemon cannot rewrap, named), HSM and store failures. Whatever
    /// was committed before an error stays committed.
    pub async fn rotate_master_key(
        &self,
        caller: &Principal,
        batch_size: Option<u32>,
        max_batches: Option<u32>,
    ) -> Result<RotationStep, KmsError> {
        self.core
            .require_admin(caller, "RotateMasterKey", MASTER_KEY_ADMINS)?;
        let batch = batch_size.unwrap_or(DEFAULT_BATCH);
        if !(1..=MAX_BATCH).contains(&batch) || max_batches == Some(0) {
            return Err(KmsError::Validation(format!(
                "BatchSize must be between 1 and {MAX_BATCH}, and MaxBatches at least 1"
            )));
        }
        let _one = self.core.master_rotation.lock().await;
        let (generation, previous) = self.master_keys(Request::BeginMasterKeyRotation).await?;
        tracing::info!(generation, ?previous, by = %caller.arn, "master-key rotation step");
        // Tokens asked for before the rotation began may be of the old
        // generation: let every such operation commit before scanning.
        drop(self.core.token_gate.write().await);
        let header = protocol::token::header(generation);
        let mut step = RotationStep {
            generation,
            ..RotationStep::default()
        };
        let deadline = Instant::now() + STEP_BUDGET;
        let mut batches = 0u32;
        loop {
            let rows = {
                let core = std::sync::Arc::clone(&self.core);
                let header = header.clone();
                let limit = usize::try_from(batch).unwrap_or(100);
                tokio::task::spawn_blocking(move || core.store.stale_tokens(&header, limit))
                    .await
                    .map_err(|e| KmsError::Internal(format!("scan task failed: {e}")))?
                    .map_err(|e| KmsError::Internal(format!("reading tokens: {e}")))?
            };
            if rows.is_empty() {
                break;
            }
            self.rewrap_batch(rows, &mut step).await?;
            batches += 1;
            if max_batches.is_some_and(|m| batches >= m) || Instant::now() >= deadline {
                break;
            }
        }
        let (remaining, tokens) = self.count_stale(header).await?;
        step.remaining = remaining;
        step.tokens = tokens;
        if remaining == 0 {
            tokio::time::sleep(DRAIN).await;
            self.master_keys(Request::CompleteMasterKeyRotation { generation })
                .await?;
            step.completed = true;
            tracing::info!(generation, tokens, "master-key rotation complete");
        }
        Ok(step)
    }

    /// Rewraps `rows` in the daemon, commits them in one transaction, then
    /// updates the caches; adds what it did to `step`.
    async fn rewrap_batch(
        &self,
        rows: Vec<TokenRow>,
        step: &mut RotationStep,
    ) -> Result<(), KmsError> {
        let calls = rows.iter().map(|row| {
            let (key_id, version) = match &row.place {
                TokenPlace::KeyVersion { key_id, version } => (key_id.clone(), *version),
                TokenPlace::SystemKey { key_id, .. } => (key_id.clone(), 1),
            };
            self.hsm_call(Request::RewrapToken {
                key: KeyRef {
                    key_id,
                    version,
                    token: row.token.clone(),
                },
            })
        });
        let replies = futures_util::future::join_all(calls).await;
        let mut pairs = Vec::with_capacity(rows.len());
        for (row, reply) in rows.into_iter().zip(replies) {
            match reply {
                Ok(Response::Rewrapped { token }) => pairs.push((row, token)),
                Ok(_) => return Err(unexpected("RewrapToken")),
                Err(HsmError::Wire(WireError::InvalidToken)) => {
                    return Err(KmsError::InvalidState(format!(
                        "The stored token of {} does not unwrap under any master key hsm-daemon \
                         holds; the master-key rotation cannot complete until it is repaired or \
                         the key is deleted",
                        describe(&row.place)
                    )));
                }
                Err(e) => return Err(KmsError::from_hsm(e)),
            }
        }
        let committed = pairs.clone();
        let done = self
            .write(move |core| {
                let done = core
                    .store
                    .replace_tokens(&committed)
                    .map_err(|e| KmsError::Internal(format!("storing rewrapped tokens: {e}")))?;
                for ((row, new), replaced) in committed.iter().zip(&done) {
                    if let (true, TokenPlace::KeyVersion { key_id, version }) =
                        (replaced, &row.place)
                    {
                        update_cached_token(core, key_id, *version, &row.token, new);
                    }
                }
                Ok(done)
            })
            .await?;
        for ((row, new), replaced) in pairs.into_iter().zip(done) {
            if !replaced {
                continue;
            }
            match row.place {
                TokenPlace::KeyVersion { .. } => step.key_versions += 1,
                TokenPlace::SystemKey { name, .. } => {
                    step.system_keys += 1;
                    let mut state = self.core.principals.lock().await;
                    if let Some(k) = state.system_key.as_mut()
                        && k.name == name
                        && k.token == row.token
                    {
                        k.token = new;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Swaps `old` for `new` in the cached entry of `key_id` / `version`, if
/// the cache still holds `old` there.
fn update_cached_token(
    core: &super::Core,
    key_id: &str,
    version: u32,
    old: &KeyToken,
    new: &KeyToken,
) {
    let Some(entry) = core.cache.key(key_id) else {
        return;
    };
    if entry.tokens.get(&version) != Some(old) {
        return;
    }
    let mut updated = (*entry).clone();
    updated.tokens.insert(version, new.clone());
    core.cache.put_key(updated);
}

fn describe(place: &TokenPlace) -> String {
    match place {
        TokenPlace::KeyVersion { key_id, version } => format!("key {key_id} version {version}"),
        TokenPlace::SystemKey { name, key_id } => format!("system key {name} ({key_id})"),
    }
}
