//! Persistence of keys, key versions (tokens) and aliases behind the
//! [`Store`] trait, with the SQLite implementation in [`sqlite`].
//!
//! The store holds rows, not rules: key states, ownership and limits are
//! `service`'s. Methods are synchronous; `service` runs writes on
//! `tokio::task::spawn_blocking`. A method returns only after its
//! transaction committed, so the caller may acknowledge on `Ok`.

pub mod access;
mod lifecycle_sql;
pub mod sqlite;
mod tokens_sql;

pub use access::{AccessSnapshot, GrantRow, PolicyRow, PrincipalRow, SystemKeyRow};
pub use sqlite::SqliteStore;

use protocol::KeyToken;
use std::collections::BTreeMap;

/// Lifecycle state of a key, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    /// The AWS name, also the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Disabled => "Disabled",
            Self::PendingDeletion => "PendingDeletion",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Enabled" => Some(Self::Enabled),
            "Disabled" => Some(Self::Disabled),
            "PendingDeletion" => Some(Self::PendingDeletion),
            _ => None,
        }
    }
}

/// One row of `keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub key_id: String,
    pub arn: String,
    pub owner_arn: String,
    pub description: String,
    pub key_spec: String,
    pub key_usage: String,
    pub origin: String,
    pub key_state: KeyState,
    /// Unix seconds.
    pub creation_date: i64,
    pub enabled: bool,
    /// Unix seconds; set while pending deletion.
    pub deletion_date: Option<i64>,
    pub pending_window_days: Option<i64>,
    pub current_version: u32,
}

/// One row of `key_versions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    pub key_id: String,
    pub version: u32,
    pub token: KeyToken,
    /// Unix seconds.
    pub created_at: i64,
    /// How this version came to be: `None` for the key's first version,
    /// `AUTOMATIC` or `ON_DEMAND` for a rotation.
    pub rotation_type: Option<String>,
}

/// One row of `key_rotation`: present while automatic rotation is enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRow {
    pub key_id: String,
    pub period_days: i64,
    /// Unix seconds of the next automatic rotation.
    pub next_rotation_date: i64,
}

/// A key's tags, by tag key.
pub type Tags = BTreeMap<String, String>;

/// One row of `aliases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRow {
    /// `alias/...`
    pub alias_name: String,
    pub target_key_id: String,
    /// Unix seconds.
    pub creation_date: i64,
    /// Unix seconds.
    pub last_updated_date: i64,
}

/// One stored wallet private key (`private_keys`): the private key sealed
/// with AES-256-GCM under a data key, the data key encrypted under the root
/// CMK. Never holds plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKeyRow {
    pub public_key: String,
    /// `user` or `backup`.
    pub source: String,
    /// nonce (12) || ciphertext || tag (16).
    pub encrypted_prv: Vec<u8>,
    /// The KMS ciphertext blob of the data key.
    pub encrypted_data_key: Vec<u8>,
    /// ARN of the root CMK.
    pub root_key: String,
    pub coin: String,
    pub key_type: String,
    /// The principal that stored it.
    pub owner_arn: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Where a key token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPlace {
    /// `key_versions` row of a CMK version.
    KeyVersion { key_id: String, version: u32 },
    /// `system_keys` row of an internal CMK (always its version 1).
    SystemKey { name: String, key_id: String },
}

/// One stored key token and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub place: TokenPlace,
    pub token: KeyToken,
}

/// Everything in the store, as loaded at start.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub keys: Vec<KeyRow>,
    pub versions: Vec<VersionRow>,
    pub aliases: Vec<AliasRow>,
    pub rotations: Vec<RotationRow>,
    /// (key id, tag key, tag value).
    pub tags: Vec<(String, String, String)>,
    /// Key policies, grants, runtime principals, system keys.
    pub access: AccessSnapshot,
}

/// Why a store operation failed. The text is for logs only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A unique or foreign-key constraint refused the write.
    #[error("constraint violated: {0}")]
    Conflict(String),
    /// The row to update or delete does not exist.
    #[error("no such row: {0}")]
    Missing(String),
    /// Stored data that does not parse.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database's schema is newer than this build.
    #[error("schema version {found} is newer than this build's {supported}")]
    TooNew { found: i64, supported: i64 },
}

/// Persistence of the KMS's state. Every write is one transaction.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Reads everything.
    ///
    /// # Errors
    /// [`StoreError`] on a database failure or a row that does not parse.
    fn load(&self) -> Result<Snapshot, StoreError>;

    /// Inserts a new key together with its first version.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the key id exists.
    fn insert_key(&self, key: &KeyRow, version: &VersionRow) -> Result<(), StoreError>;

    /// Rewrites the mutable columns of an existing key.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when the key does not exist.
    fn update_key(&self, key: &KeyRow) -> Result<(), StoreError>;

    /// Inserts a new alias.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name exists or the target key does not.
    fn insert_alias(&self, alias: &AliasRow) -> Result<(), StoreError>;

    /// Rewrites an existing alias's target and update time.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when the alias does not exist.
    fn update_alias(&self, alias: &AliasRow) -> Result<(), StoreError>;

    /// Deletes an alias.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when the alias does not exist.
    fn delete_alias(&self, alias_name: &str) -> Result<(), StoreError>;

    /// Inserts a new key with its first version and its tags, in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the key id exists.
    fn insert_key_tagged(
        &self,
        key: &KeyRow,
        version: &VersionRow,
        tags: &Tags,
    ) -> Result<(), StoreError>;

    /// Replaces all tags of a key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the key does not exist.
    fn put_tags(&self, key_id: &str, tags: &Tags) -> Result<(), StoreError>;

    /// Enables (`Some`) or disables (`None`) automatic rotation of a key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the key does not exist.
    fn set_rotation(&self, key_id: &str, rotation: Option<&RotationRow>) -> Result<(), StoreError>;

    /// Adds a rotated version: inserts it, makes it the key's current
    /// version and, for an automatic rotation, stores the next date; one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the version exists,
    /// [`StoreError::Missing`] when the key does not.
    fn add_version(
        &self,
        version: &VersionRow,
        rotation: Option<&RotationRow>,
    ) -> Result<(), StoreError>;

    /// Destroys a key: its versions (tokens), tags, rotation schedule,
    /// aliases and the key row, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when the key does not exist.
    fn purge_key(&self, key_id: &str) -> Result<(), StoreError>;

    /// Inserts a wallet private key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `(public_key, source)` exists.
    fn insert_private_key(&self, row: &PrivateKeyRow) -> Result<(), StoreError>;

    /// The stored private keys for `public_key` (at most one per source),
    /// `user` first. Read from the database (wallet rows are not cached).
    ///
    /// # Errors
    /// [`StoreError`] on a database failure.
    fn private_keys(&self, public_key: &str) -> Result<Vec<PrivateKeyRow>, StoreError>;
    /// Inserts a new key, its first version, its tags and (when given)
    /// its key policy in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the key id exists.
    fn insert_key_with_policy(
        &self,
        key: &KeyRow,
        version: &VersionRow,
        tags: &Tags,
        policy: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Sets (inserts or replaces) a key's policy document.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the key does not exist.
    fn put_key_policy(&self, key_id: &str, policy: &str) -> Result<(), StoreError>;

    /// Inserts a grant.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a duplicate id or token, or a missing key.
    fn insert_grant(&self, grant: &GrantRow) -> Result<(), StoreError>;

    /// Deletes a grant (retired or revoked).
    ///
    /// # Errors
    /// [`StoreError::Missing`] when it does not exist.
    fn delete_grant(&self, grant_id: &str) -> Result<(), StoreError>;

    /// Inserts a runtime principal.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a duplicate ARN or access key id.
    fn insert_principal(&self, principal: &PrincipalRow) -> Result<(), StoreError>;

    /// Deletes a runtime principal.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when it does not exist.
    fn delete_principal(&self, arn: &str) -> Result<(), StoreError>;

    /// Inserts a system key's token.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name exists.
    fn insert_system_key(&self, key: &SystemKeyRow) -> Result<(), StoreError>;

    /// Up to `limit` stored key tokens that do not start with `header` (the
    /// current master-key generation's token header): the ones a master-key
    /// rotation still has to rewrap.
    ///
    /// # Errors
    /// [`StoreError`] on a database failure.
    fn stale_tokens(&self, header: &[u8], limit: usize) -> Result<Vec<TokenRow>, StoreError>;

    /// (stale, total) counts of stored key tokens, as in [`Store::stale_tokens`].
    ///
    /// # Errors
    /// [`StoreError`] on a database failure.
    fn count_stale_tokens(&self, header: &[u8]) -> Result<(u64, u64), StoreError>;

    /// Replaces tokens in one transaction, each only if its row still holds
    /// the old token; returns which were replaced.
    ///
    /// # Errors
    /// [`StoreError`] on a database failure (nothing is replaced).
    fn replace_tokens(&self, rows: &[(TokenRow, KeyToken)]) -> Result<Vec<bool>, StoreError>;
}
