//! The KMS operations as plain async functions over typed requests, free of
//! HTTP: `api/aws_json` (and later the REST API and kmsctl) decode into these
//! types and encode what they return.
//!
//! Layout: [`keys`] (key lifecycle), [`crypto`] (Encrypt, Decrypt, data
//! keys, ReEncrypt, GenerateRandom), [`aliases`], `resolve` (KeyId forms,
//! ownership, key state) and `cache` (the in-memory view of the store).
//!
//! Reads come from the cache. Writes run on a blocking thread under one
//! writer lock: check against the cache, commit to the store, then update
//! the cache, all in one closure, so a cancelled request can never leave the
//! cache and the database apart, and the reply goes out only after commit.

pub mod aliases;
pub mod asymmetric;
pub mod authz;
mod cache;
pub mod clock;
pub mod crypto;
pub mod grants;
pub mod keys;
pub mod lifecycle;
pub mod master_key;
pub mod policies;
pub mod principals;
mod resolve;
pub mod rotation;
pub(crate) mod specs;
pub mod tags;
pub mod wallet;
pub mod wrap;

use crate::error::KmsError;
use crate::hsm_client::{HsmClient, HsmError};
use crate::policy::{Policy, default_policy_text};
use crate::store::{SqliteStore, Store, StoreError};
use cache::Cache;
use clock::{Clock, SystemClock};
use protocol::{Request, Response};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Settings the service needs from the frontend's config.
#[derive(Debug, Clone)]
pub struct KmsSettings {
    /// Path of the SQLite database file.
    pub db_path: PathBuf,
    pub region: String,
    pub account_id: String,
}

/// State shared with blocking write tasks.
#[derive(Debug)]
pub(crate) struct Core {
    pub region: String,
    pub account_id: String,
    pub cache: Cache,
    /// The default key policy of this account, parsed once.
    pub default_policy: Arc<Policy>,
    /// Runtime principals and the system key of their secrets.
    principals: tokio::sync::Mutex<principals::PrincipalState>,
    store: Arc<dyn Store>,
    writer: Mutex<()>,
    clock: Arc<dyn Clock>,
    /// Destroyed keys the daemon has not yet confirmed evicting.
    pending_evictions: Mutex<Vec<String>>,
    /// Read-held by every operation from asking the daemon for a new key
    /// token until that token is committed; a master-key rotation takes it
    /// for writing once, after it began, to wait for tokens of the old
    /// generation still on their way to the store (`master_key`).
    token_gate: tokio::sync::RwLock<()>,
    /// One master-key rotation step at a time.
    master_rotation: tokio::sync::Mutex<()>,
}

impl Core {
    /// Now, in Unix seconds, from the injected clock.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Runs a store write; maps its failure to a logged internal error.
    pub(crate) fn commit(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<(), StoreError>,
    ) -> Result<(), KmsError> {
        f(self.store.as_ref()).map_err(|e| {
            tracing::error!(error = %e, "store write failed");
            KmsError::Internal(format!("store write failed: {e}"))
        })
    }
}

/// The KMS: store, caches and the HSM client. Shared by all requests;
/// cloning is cheap and shares everything.
#[derive(Debug, Clone)]
pub struct Kms {
    hsm: HsmClient,
    core: Arc<Core>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the database: {0}")]
    Store(String),
    #[error("the KMS is already shared; set its clock before serving")]
    Shared,
    #[error("stored access-control data is invalid: {0}")]
    Access(String),
}

impl Kms {
    /// Opens the store (creating and migrating it) and loads its caches.
    ///
    /// # Errors
    /// [`OpenError`] when the database cannot be opened or migrated.
    pub async fn open(settings: KmsSettings, hsm: HsmClient) -> Result<Self, OpenError> {
        let path = settings.db_path.clone();
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
            .await
            .map_err(|e| OpenError::Store(e.to_string()))?
            .map_err(|e| OpenError::Store(e.to_string()))?;
        Self::with_store(settings.region, settings.account_id, Arc::new(store), hsm).await
    }

    /// A KMS over any store (tests, other backends).
    ///
    /// # Errors
    /// [`OpenError`] when the store cannot be read.
    pub async fn with_store(
        region: String,
        account_id: String,
        store: Arc<dyn Store>,
        hsm: HsmClient,
    ) -> Result<Self, OpenError> {
        let loader = Arc::clone(&store);
        let snap = tokio::task::spawn_blocking(move || loader.load())
            .await
            .map_err(|e| OpenError::Store(e.to_string()))?
            .map_err(|e| OpenError::Store(e.to_string()))?;
        let default_policy =
            Arc::new(Policy::parse(&default_policy_text(&account_id)).map_err(OpenError::Access)?);
        let grants = snap
            .access
            .grants
            .iter()
            .map(grants::grant_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(OpenError::Access)?;
        let principal_state = principals::PrincipalState {
            rows: snap
                .access
                .principals
                .iter()
                .map(|r| (r.arn.clone(), r.clone()))
                .collect(),
            system_key: snap
                .access
                .system_keys
                .iter()
                .find(|k| k.name == principals::PRINCIPAL_SECRETS_KEY)
                .cloned(),
        };
        let cache = Cache::from_snapshot(snap, grants).map_err(OpenError::Access)?;
        Ok(Self {
            hsm,
            core: Arc::new(Core {
                region,
                account_id,
                cache,
                default_policy,
                principals: tokio::sync::Mutex::new(principal_state),
                store,
                writer: Mutex::new(()),
                clock: Arc::new(SystemClock),
                pending_evictions: Mutex::new(Vec::new()),
                token_gate: tokio::sync::RwLock::new(()),
                master_rotation: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Replaces the system clock (tests, the dev clock). Call before the KMS
    /// is shared.
    ///
    /// # Errors
    /// [`OpenError::Shared`] when the KMS is already in use.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let core = Arc::get_mut(&mut self.core).ok_or(OpenError::Shared)?;
        core.clock = clock;
        Ok(self)
    }

    /// Now, by the KMS's clock.
    pub fn now(&self) -> i64 {
        self.core.now()
    }

    /// The HSM client, for health checks.
    pub fn hsm(&self) -> &HsmClient {
        &self.hsm
    }

    /// The region this KMS answers for.
    pub fn region(&self) -> &str {
        &self.core.region
    }

    /// The account that owns this KMS's keys.
    pub fn account_id(&self) -> &str {
        &self.core.account_id
    }

    async fn hsm_call(&self, request: Request) -> Result<Response, HsmError> {
        self.hsm.call(request).await
    }

    /// Runs `f` on a blocking thread under the writer lock. `f` checks
    /// against the cache, commits, and updates the cache; it runs to the end
    /// even if the request is cancelled. The request's decision sink goes
    /// with it, so decisions made in `f` are audited with the request.
    async fn write<R, F>(&self, f: F) -> Result<R, KmsError>
    where
        R: Send + 'static,
        F: FnOnce(&Core) -> Result<R, KmsError> + Send + 'static,
    {
        let core = Arc::clone(&self.core);
        let sink = authz::current_sink();
        tokio::task::spawn_blocking(move || {
            authz::in_sink_scope(sink, || {
                let _writer = core.writer.lock().unwrap_or_else(|e| e.into_inner());
                f(&core)
            })
        })
        .await
        .map_err(|e| KmsError::Internal(format!("write task failed: {e}")))?
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when `truncated`.
    pub next_marker: Option<String>,
    pub truncated: bool,
}

/// Default and largest `Limit` of a listing.
pub(crate) const DEFAULT_LIMIT: i64 = 100;
pub(crate) const MAX_LIMIT: i64 = 1000;

/// Prefix inside every marker, so a marker this KMS did not make is refused.
const MARKER_TAG: &str = "hkms1:";

/// Pages `items` (sorted by `name`) after the opaque `marker`: the base64url
/// of [`MARKER_TAG`] and the last name returned.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    name: impl Fn(&T) -> &str,
    marker: Option<&str>,
    limit: Option<i64>,
) -> Result<Page<T>, KmsError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy \
             constraint: Member must have value between 1 and {MAX_LIMIT}"
        )));
    }
    let after = match marker {
        None => None,
        Some(m) => {
            let bad = || {
                KmsError::InvalidMarker(
                    "The Marker is not valid; use the NextMarker of the previous response".into(),
                )
            };
            let bytes = URL_SAFE_NO_PAD.decode(m).map_err(|_| bad())?;
            let text = String::from_utf8(bytes).map_err(|_| bad())?;
            Some(text.strip_prefix(MARKER_TAG).ok_or_else(bad)?.to_owned())
        }
    };
    let limit = usize::try_from(limit).unwrap_or(100);
    let mut rest = items
        .into_iter()
        .filter(|t| after.as_deref().is_none_or(|a| name(t) > a));
    let page: Vec<T> = rest.by_ref().take(limit).collect();
    let truncated = rest.next().is_some();
    let next_marker = if truncated {
        page.last()
            .map(|t| URL_SAFE_NO_PAD.encode(format!("{MARKER_TAG}{}", name(t))))
    } else {
        None
    };
    Ok(Page {
        items: page,
        next_marker,
        truncated,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod lifecycle_tests;
