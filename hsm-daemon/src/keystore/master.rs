//! The keystore's master keys and their rotation.
//!
//! The current generation wraps every new token; during a rotation the
//! previous generation still unwraps the tokens that name it. Rotation is
//! three commands, each idempotent so an interrupted rotation can simply be
//! driven again:
//!
//! - begin: a new key (current + 1) in a fresh locked slot; the key file is
//!   written with both generations, new first, and only once that file is
//!   durable does the new key become current (so the old key is never lost
//!   before the new one is on disk). During a rotation: nothing changes.
//! - rewrap: a token of the previous generation is unwrapped and its same
//!   payload wrapped under the current key; a current token comes back as
//!   it is (after the usual id/version check); any other generation is
//!   refused.
//! - complete: the file is written with the current generation alone, then
//!   the previous key's slot is wiped and every cached CMK that was loaded
//!   through an old-generation token is dropped, so old tokens are refused
//!   from then on. Completing a rotation already completed is a no-op.
//!
//! The file format and the atomic replacement are `keyfile`'s; the sealing
//! key stays in its locked slot for the daemon's lifetime (the operator
//! secret was wiped at start-up).

use super::{Keystore, Reply};
use crate::crypto;
use crate::error::DaemonError;
use crate::keyfile::{self, Generation};
use crate::secure_mem::KEY_LEN;
use protocol::{InvalidReason, KeyRef};

impl Keystore {
    /// The master key of `generation`, if the keystore holds it.
    pub(super) fn master_of(&self, generation: u32) -> Result<&[u8; KEY_LEN], DaemonError> {
        let held = std::iter::once(self.keys.current)
            .chain(self.keys.previous)
            .find(|g| g.number == generation)
            .ok_or(DaemonError::InvalidToken("unknown master-key generation"))?;
        self.key(held.slot)
    }

    pub(super) fn master_status(&self) -> Reply {
        Reply::MasterKeys {
            current: self.keys.current.number,
            previous: self.keys.previous.map(|g| g.number),
        }
    }

    pub(super) fn begin_rotation(&mut self) -> Result<Reply, DaemonError> {
        if self.keys.previous.is_some() {
            return Ok(self.master_status());
        }
        let number = self
            .keys
            .current
            .number
            .checked_add(1)
            .ok_or(DaemonError::Crypto("no master-key generation left"))?;
        let slot = match self.slab.alloc(KEY_LEN) {
            Some(s) => s,
            None => self.evict_oldest(KEY_LEN)?,
        };
        let made = self
            .slab
            .key_mut(slot)
            .ok_or(DaemonError::NoSlot)
            .and_then(|k| crypto::fill_random(k));
        let next = Generation { number, slot };
        let persisted = made.and_then(|()| self.persist(&[next, self.keys.current]));
        if let Err(e) = persisted {
            self.slab.release(slot);
            return Err(e);
        }
        self.keys.previous = Some(self.keys.current);
        self.keys.current = next;
        tracing::info!(
            generation = number,
            "master-key rotation begun: new tokens use the new key, old tokens still unwrap"
        );
        Ok(self.master_status())
    }

    pub(super) fn rewrap(&mut self, key: &KeyRef) -> Result<Reply, DaemonError> {
        let generation = crypto::token_generation(&key.token)?;
        let (current, new) = self.master()?;
        if generation == current {
            crypto::unwrap_token_any(new, key)?;
            return Ok(Reply::Rewrapped(key.token.clone()));
        }
        let old = self.master_of(generation)?;
        crypto::rewrap_token(old, new, current, key).map(Reply::Rewrapped)
    }

    pub(super) fn complete_rotation(&mut self, generation: u32) -> Result<Reply, DaemonError> {
        if generation != self.keys.current.number {
            return Err(DaemonError::InvalidRequest(
                InvalidReason::MasterKeyGeneration,
            ));
        }
        let Some(previous) = self.keys.previous else {
            return Ok(self.master_status());
        };
        self.persist(&[self.keys.current])?;
        self.keys.previous = None;
        self.slab.release(previous.slot);
        let stale: Vec<(String, u32)> = self
            .cache
            .iter()
            .filter(|(_, c)| {
                protocol::token::TokenHeader::parse(&c.token)
                    .map_or(true, |h| h.generation == previous.number)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in &stale {
            if let Some(c) = self.cache.remove(name) {
                self.slab.release(c.slot);
            }
        }
        self.order.retain(|n| !stale.contains(n));
        tracing::info!(
            generation,
            dropped_cached = stale.len(),
            "master-key rotation complete: the previous key is wiped from memory and disk"
        );
        Ok(self.master_status())
    }

    /// Writes the key file holding `generations` (current first) and the
    /// audit seed. Without a file (unit tests) nothing is written.
    fn persist(&self, generations: &[Generation]) -> Result<(), DaemonError> {
        let Some(file) = &self.keys.file else {
            return Ok(());
        };
        let sealing = match file.sealing {
            Some(s) => Some((self.key(s.kek)?, s.params)),
            None => None,
        };
        let mut keys = Vec::with_capacity(generations.len());
        for g in generations {
            keys.push((g.number, self.key(g.slot)?));
        }
        let bytes = keyfile::encode(sealing, self.key(self.keys.audit_seed)?, &keys)
            .map_err(|_| DaemonError::Crypto("sealing the key file"))?;
        file.replace(&bytes).map_err(DaemonError::KeyFile)
    }
}
