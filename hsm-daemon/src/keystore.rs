//! The keystore: the one owner of the master keys and of every unwrapped
//! CMK version.
//!
//! It lives on one dedicated OS thread whose stack is locked and undumpable
//! (`secure_mem::stack`), because key schedules and key copies are built
//! there. The daemon runs its whole tokio runtime (`current_thread`: accept,
//! connections) on that thread, and connection tasks call the keystore
//! synchronously through a [`KeystoreHandle`] (`Rc<RefCell<..>>`, neither
//! `Send` nor `Sync`): so no key is ever shared between threads, a request
//! costs no cross-thread hop, and no key byte is ever held across an `.await`
//! (which would put it in a heap-allocated future), since a call never
//! awaits. The caller scrubs the stack ([`KeystoreHandle::scrub_stack`])
//! after each batch of calls, before it next awaits. Keys live in a
//! [`KeySlab`] of locked memory allocated once: slots for the master keys
//! (the current generation, the previous one during a rotation, the audit
//! seed and the sealing key; see `keystore/master`), the rest a bounded cache
//! of unwrapped CMK versions keyed by (key id, version) *and* the exact token
//! bytes, so a different token for the same id never hits (it is unwrapped
//! and checked afresh). When no slot fits, the oldest entry whose slot does is wiped and
//! reused. When the runtime is done and every [`KeystoreHandle`] gone, the
//! slab is zeroized and the thread scrubs its stack and ends.
//! Validation of request sizes and the wire mapping are `handlers`' job.

use crate::audit_key;
use crate::crypto;
use crate::error::DaemonError;
use crate::keyfile::MasterKeys;
use crate::secure_mem::stack;
use crate::secure_mem::{KEY_LEN, KeySlab, MemCheck, Slot};
use protocol::{
    EncryptionAlgorithm, EncryptionContext, KeyRef, KeySpec, KeyToken, MacAlgorithm, MessageType,
    PROTOCOL_VERSION, SecretBytes, SigningAlgorithm, StatusInfo,
};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;
use zeroize::Zeroizing;

/// One operation for the keystore, with sizes already validated.
#[derive(Debug)]
pub(crate) enum Command {
    Status,
    CreateKey {
        key_id: String,
        version: u32,
        spec: KeySpec,
        /// An RSA key already made on the keygen thread (PKCS#8 DER);
        /// `None`: generated here.
        generated: Option<SecretBytes>,
    },
    Encrypt {
        key: KeyRef,
        plaintext: SecretBytes,
        context: EncryptionContext,
    },
    Decrypt {
        key: KeyRef,
        blob: Vec<u8>,
        context: EncryptionContext,
    },
    GenerateDataKey {
        key: KeyRef,
        len: usize,
        context: EncryptionContext,
        with_plaintext: bool,
    },
    ReEncrypt {
        source: KeyRef,
        blob: Vec<u8>,
        source_context: EncryptionContext,
        destination: KeyRef,
        destination_context: EncryptionContext,
    },
    GenerateRandom {
        len: usize,
    },
    WrapKey {
        key: KeyRef,
        material: SecretBytes,
    },
    UnwrapKey {
        key: KeyRef,
        wrapped: Vec<u8>,
    },
    EvictKey {
        key_id: String,
    },
    CachedVersions {
        key_id: String,
    },
    GetPublicKey {
        key: KeyRef,
    },
    Sign {
        key: KeyRef,
        message: SecretBytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
    },
    Verify {
        key: KeyRef,
        message: SecretBytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
        signature: Vec<u8>,
    },
    AsymmetricEncrypt {
        key: KeyRef,
        plaintext: SecretBytes,
        algorithm: EncryptionAlgorithm,
    },
    AsymmetricDecrypt {
        key: KeyRef,
        ciphertext: Vec<u8>,
        algorithm: EncryptionAlgorithm,
    },
    GenerateMac {
        key: KeyRef,
        message: SecretBytes,
        algorithm: MacAlgorithm,
    },
    VerifyMac {
        key: KeyRef,
        message: SecretBytes,
        algorithm: MacAlgorithm,
        mac: Vec<u8>,
    },
    GenerateDataKeyPair {
        key: KeyRef,
        pair_spec: KeySpec,
        context: EncryptionContext,
        with_plaintext: bool,
        /// As for `CreateKey`.
        generated: Option<SecretBytes>,
    },
    SignAuditDigest {
        digest: [u8; 32],
    },
    AuditPublicKey,
    BeginMasterKeyRotation,
    RewrapToken {
        key: KeyRef,
    },
    CompleteMasterKeyRotation {
        generation: u32,
    },
    MasterKeyStatus,
}

/// The keystore's answer to a [`Command`].
#[derive(Debug)]
pub(crate) enum Reply {
    Status(StatusInfo),
    Token(KeyToken),
    Blob(Vec<u8>),
    Plaintext(SecretBytes),
    DataKey {
        plaintext: Option<SecretBytes>,
        blob: Vec<u8>,
    },
    Random(Vec<u8>),
    Wrapped(Vec<u8>),
    Unwrapped(SecretBytes),
    Evicted(u32),
    CachedVersions(Vec<u32>),
    PublicKey(Vec<u8>),
    Signature(Vec<u8>),
    Verified(bool),
    Mac(Vec<u8>),
    DataKeyPair {
        public_key: Vec<u8>,
        private_plaintext: Option<SecretBytes>,
        private_blob: Vec<u8>,
    },
    AuditSignature([u8; 64]),
    AuditPublicKey([u8; 32]),
    MasterKeys {
        current: u32,
        previous: Option<u32>,
    },
    Rewrapped(KeyToken),
}

/// The keystore as the request path reaches it: shared by the connection
/// tasks of the runtime that runs on the keystore thread, called
/// synchronously. Neither `Send` nor `Sync`, so no key can leave that thread
/// through it.
#[derive(Debug, Clone)]
pub(crate) struct KeystoreHandle {
    inner: Rc<RefCell<Keystore>>,
}

impl KeystoreHandle {
    /// Runs `command` to its reply. The borrow lasts for the call only, and
    /// the call never awaits, so no key byte can end up in a future.
    ///
    /// # Errors
    /// The command's own error; [`DaemonError::KeystoreBusy`] if the
    /// keystore is already in a call (a re-entrant call).
    pub(crate) fn call(&self, command: Command) -> Result<Reply, DaemonError> {
        let mut keystore = self
            .inner
            .try_borrow_mut()
            .map_err(|_| DaemonError::KeystoreBusy)?;
        keystore.unscrubbed = true;
        keystore.execute(command)
    }

    /// Scrubs the dead part of the stack if a command ran since the last
    /// scrub. Call it after each batch of commands, before the next
    /// `.await`, from the frame that made the calls (so the key schedules
    /// they left lie below it).
    pub(crate) fn scrub_stack(&self) {
        let ran = self
            .inner
            .try_borrow_mut()
            .map_or(true, |mut k| std::mem::take(&mut k.unscrubbed));
        if ran {
            stack::scrub();
        }
    }
}

struct Cached {
    token: Vec<u8>,
    slot: Slot,
    spec: KeySpec,
}

/// The actor's state. `Debug` shows counts only.
pub(crate) struct Keystore {
    slab: KeySlab,
    keys: MasterKeys,
    cache: HashMap<(String, u32), Cached>,
    order: VecDeque<(String, u32)>,
    started: Instant,
    requests: u64,
    /// A command ran since the stack was last scrubbed.
    unscrubbed: bool,
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystore")
            .field("cached_keys", &self.cache.len())
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl Keystore {
    /// A keystore over `slab`, whose slots already hold the master `keys`.
    pub(crate) fn new(slab: KeySlab, keys: MasterKeys) -> Self {
        Self {
            slab,
            keys,
            cache: HashMap::new(),
            order: VecDeque::new(),
            started: Instant::now(),
            requests: 0,
            unscrubbed: false,
        }
    }

    /// Starts the keystore thread, which locks its stack, then runs
    /// `serve` there with the lock check and the handle (the daemon runs its
    /// whole runtime in `serve`). When `serve` returns every handle should
    /// be gone: the key memory is wiped and the stack scrubbed before the
    /// thread ends.
    ///
    /// # Errors
    /// When the thread cannot be started; the thread's own result is an
    /// error when it cannot find or check its stack.
    pub(crate) fn spawn<F, R>(
        self,
        serve: F,
    ) -> std::io::Result<std::thread::JoinHandle<std::io::Result<R>>>
    where
        F: FnOnce(MemCheck, KeystoreHandle) -> R + Send + 'static,
        R: Send + 'static,
    {
        stack::spawn_locked("keystore", move |check| {
            let check = check?;
            let handle = KeystoreHandle {
                inner: Rc::new(RefCell::new(self)),
            };
            let kept = Rc::clone(&handle.inner);
            let out = serve(check, handle);
            match Rc::try_unwrap(kept) {
                Ok(keystore) => {
                    let keystore = keystore.into_inner();
                    tracing::info!(
                        requests = keystore.requests,
                        "keystore stopped; wiping key memory"
                    );
                    // The slab is zeroized, unlocked and unmapped here.
                    drop(keystore);
                }
                Err(_) => tracing::warn!("keystore still in use after serving"),
            }
            stack::scrub();
            Ok(out)
        })
    }

    /// The current master key and its generation.
    pub(super) fn master(&self) -> Result<(u32, &[u8; KEY_LEN]), DaemonError> {
        let current = self.keys.current;
        Ok((current.number, self.key(current.slot)?))
    }

    /// The slot holding a symmetric CMK's 32-byte key, unwrapping and
    /// caching it if needed.
    fn cmk(&mut self, key: &KeyRef) -> Result<Slot, DaemonError> {
        let (spec, slot) = self.material(key)?;
        if spec != KeySpec::SymmetricDefault || slot.len() != KEY_LEN {
            return Err(DaemonError::InvalidToken("spec mismatch"));
        }
        Ok(slot)
    }

    /// The spec and slot of `key`'s material (any spec), unwrapping and
    /// caching it if needed. A cached entry is used only for the exact
    /// token bytes it came from.
    pub(super) fn material(&mut self, key: &KeyRef) -> Result<(KeySpec, Slot), DaemonError> {
        let name = (key.key_id.clone(), key.version);
        if let Some(c) = self.cache.get(&name)
            && c.token == key.token.0
        {
            return Ok((c.spec, c.slot));
        }
        let generation = crypto::token_generation(&key.token)?;
        let (spec, material) = crypto::unwrap_token_any(self.master_of(generation)?, key)?;
        // Same key version, another valid token: drop the old entry.
        if let Some(old) = self.cache.remove(&name) {
            self.slab.release(old.slot);
            self.order.retain(|n| *n != name);
        }
        let len = material.len();
        let slot = match self.slab.alloc(len) {
            Some(s) => s,
            None => self.evict_oldest(len)?,
        };
        self.slab
            .bytes_mut(slot)
            .ok_or(DaemonError::NoSlot)?
            .copy_from_slice(&material);
        self.cache.insert(
            name.clone(),
            Cached {
                token: key.token.0.clone(),
                slot,
                spec,
            },
        );
        self.order.push_back(name);
        Ok((spec, slot))
    }

    /// Wipes every cached version of `key_id`; returns how many there were.
    pub(super) fn evict_key(&mut self, key_id: &str) -> u32 {
        let names: Vec<(String, u32)> = self
            .cache
            .keys()
            .filter(|(id, _)| id == key_id)
            .cloned()
            .collect();
        for name in &names {
            if let Some(c) = self.cache.remove(name) {
                self.slab.release(c.slot);
            }
        }
        self.order.retain(|(id, _)| id != key_id);
        u32::try_from(names.len()).unwrap_or(u32::MAX)
    }

    /// Versions of `key_id` held unwrapped, ascending.
    pub(super) fn cached_versions(&self, key_id: &str) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .cache
            .keys()
            .filter(|(id, _)| id == key_id)
            .map(|(_, n)| *n)
            .collect();
        v.sort_unstable();
        v
    }

    /// Borrows the material in `slot`.
    pub(super) fn bytes(&self, slot: Slot) -> Result<&[u8], DaemonError> {
        self.slab.bytes(slot).ok_or(DaemonError::NoSlot)
    }

    /// Wipes the oldest cached key whose slot can hold `len` bytes and
    /// hands a slot for `len` bytes over.
    fn evict_oldest(&mut self, len: usize) -> Result<Slot, DaemonError> {
        let position = self.order.iter().position(|name| {
            self.cache
                .get(name)
                .is_some_and(|c| self.slab.fits(c.slot, len))
        });
        let name = position
            .and_then(|i| self.order.remove(i))
            .ok_or(DaemonError::NoSlot)?;
        let old = self.cache.remove(&name).ok_or(DaemonError::NoSlot)?;
        self.slab.release(old.slot);
        self.slab.alloc(len).ok_or(DaemonError::NoSlot)
    }

    pub(super) fn key(&self, slot: Slot) -> Result<&[u8; KEY_LEN], DaemonError> {
        self.slab.key(slot).ok_or(DaemonError::NoSlot)
    }

    /// Runs one command. Synchronous: the crypto takes microseconds.
    pub(crate) fn execute(&mut self, command: Command) -> Result<Reply, DaemonError> {
        self.requests = self.requests.saturating_add(1);
        match command {
            Command::Status => Ok(Reply::Status(StatusInfo {
                protocol_version: PROTOCOL_VERSION,
                uptime_secs: self.started.elapsed().as_secs(),
                cached_keys: u32::try_from(self.cache.len()).unwrap_or(u32::MAX),
                requests: self.requests,
                locked_bytes: self.slab.locked_bytes(),
            })),
            Command::CreateKey {
                key_id,
                version,
                spec,
                generated,
            } => {
                let (generation, master) = self.master()?;
                if spec != KeySpec::SymmetricDefault {
                    let material = match generated {
                        Some(made) => made,
                        None => crate::asym::generate(spec)?.into(),
                    };
                    return crypto::wrap_token(
                        master,
                        generation,
                        &key_id,
                        version,
                        spec,
                        material.expose(),
                    )
                    .map(Reply::Token);
                }
                let mut material = Zeroizing::new([0u8; KEY_LEN]);
                crypto::fill_random(material.as_mut())?;
                crypto::wrap_token(
                    master,
                    generation,
                    &key_id,
                    version,
                    spec,
                    material.as_ref(),
                )
                .map(Reply::Token)
            }
            Command::Encrypt {
                key,
                plaintext,
                context,
            } => {
                let slot = self.cmk(&key)?;
                crypto::seal(
                    self.key(slot)?,
                    &key.key_id,
                    key.version,
                    plaintext.expose(),
                    &context,
                )
                .map(Reply::Blob)
            }
            Command::Decrypt { key, blob, context } => {
                let slot = self.cmk(&key)?;
                let mut plain = crypto::open(self.key(slot)?, &key, &blob, &context)?;
                Ok(Reply::Plaintext(SecretBytes::new(std::mem::take(
                    &mut *plain,
                ))))
            }
            Command::GenerateDataKey {
                key,
                len,
                context,
                with_plaintext,
            } => {
                let slot = self.cmk(&key)?;
                let mut data_key = Zeroizing::new(vec![0u8; len]);
                crypto::fill_random(&mut data_key)?;
                let blob = crypto::seal(
                    self.key(slot)?,
                    &key.key_id,
                    key.version,
                    &data_key,
                    &context,
                )?;
                let plaintext =
                    with_plaintext.then(|| SecretBytes::new(std::mem::take(&mut *data_key)));
                Ok(Reply::DataKey { plaintext, blob })
            }
            Command::ReEncrypt {
                source,
                blob,
                source_context,
                destination,
                destination_context,
            } => {
                let slot = self.cmk(&source)?;
                let plain = crypto::open(self.key(slot)?, &source, &blob, &source_context)?;
                // Opened first: loading the destination may evict the source.
                let slot = self.cmk(&destination)?;
                crypto::seal(
                    self.key(slot)?,
                    &destination.key_id,
                    destination.version,
                    &plain,
                    &destination_context,
                )
                .map(Reply::Blob)
            }
            Command::GenerateRandom { len } => {
                let mut bytes = vec![0u8; len];
                crypto::fill_random(&mut bytes)?;
                Ok(Reply::Random(bytes))
            }
            Command::WrapKey { key, material } => {
                let slot = self.cmk(&key)?;
                crypto::kwp::wrap_key(self.key(slot)?, &key.key_id, key.version, material.expose())
                    .map(Reply::Wrapped)
            }
            Command::UnwrapKey { key, wrapped } => {
                let slot = self.cmk(&key)?;
                let mut material = crypto::kwp::unwrap_key(self.key(slot)?, &key, &wrapped)?;
                Ok(Reply::Unwrapped(SecretBytes::new(std::mem::take(
                    &mut *material,
                ))))
            }
            Command::SignAuditDigest { digest } => Ok(Reply::AuditSignature(
                audit_key::sign_digest(self.key(self.keys.audit_seed)?, &digest),
            )),
            Command::AuditPublicKey => Ok(Reply::AuditPublicKey(audit_key::public_key(
                self.key(self.keys.audit_seed)?,
            ))),
            Command::BeginMasterKeyRotation => self.begin_rotation(),
            Command::RewrapToken { key } => self.rewrap(&key),
            Command::CompleteMasterKeyRotation { generation } => self.complete_rotation(generation),
            Command::MasterKeyStatus => Ok(self.master_status()),
            other => self.execute_asymmetric(other),
        }
    }
}

mod asymmetric;
mod master;

#[cfg(test)]
mod master_tests;
#[cfg(test)]
mod tests;
