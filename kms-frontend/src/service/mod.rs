//! STUB, to be replaced by the KMS work: the KMS operations as plain async
//! functions over typed requests. The signatures below are the contract
//! `server` codes against.

use crate::hsm_client::HsmClient;
use std::path::PathBuf;

/// Settings the service needs from the frontend's config.
#[derive(Debug, Clone)]
pub struct KmsSettings {
    /// Path of the SQLite database file.
    pub db_path: PathBuf,
    pub region: String,
    pub account_id: String,
}

/// The KMS: store, caches and the HSM client. Shared by all requests.
#[derive(Debug)]
pub struct Kms {
    hsm: HsmClient,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the database: {0}")]
    Store(String),
}

impl Kms {
    /// Opens the store (creating and migrating it) and loads its caches.
    ///
    /// # Errors
    /// [`OpenError`] when the database cannot be opened or migrated.
    pub async fn open(settings: KmsSettings, hsm: HsmClient) -> Result<Self, OpenError> {
        let _ = settings;
        Ok(Self { hsm })
    }

    /// The HSM client, for health checks.
    pub fn hsm(&self) -> &HsmClient {
        &self.hsm
    }
}
