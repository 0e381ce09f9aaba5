//! Wallet private-key storage, a three-level envelope over the KMS
//! operations: a root CMK, a data key per stored private key (from
//! GenerateDataKey, bound by encryption context to the record's `pub` and
//! `source`), and the private key sealed with AES-256-GCM under that data
//! key. Only the sealed key and the encrypted data key are stored; the
//! plaintext data key is wiped when the call returns. Authorization is that
//! of the KMS calls on the root key (GenerateDataKey to store, Decrypt to
//! read), done by the same service functions the JSON API uses. HTTP is
//! left to `api/rest`.

use super::Kms;
use super::crypto::{DataKeyInput, DecryptInput};
use crate::error::KmsError;
use crate::principal::Principal;
use crate::store::{PrivateKeyRow, StoreError};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use protocol::SecretBytes;
use zeroize::Zeroizing;

const AAD_PREFIX: &[u8] = b"hsm-kms wallet v1";
const NONCE_LEN: usize = 12;
const MAX_PUB: usize = 1024;
const MAX_PRV: usize = 4096;
const MAX_LABEL: usize = 64;

/// `POST /key`'s input.
#[derive(Debug)]
pub struct StoreKeyInput {
    pub public_key: String,
    pub prv: SecretBytes,
    pub source: String,
    pub coin: String,
    pub key_type: String,
    /// Key id, ARN or alias of the root CMK.
    pub root_key: String,
}

/// A stored record as shown to callers: never the private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub public_key: String,
    pub source: String,
    pub coin: String,
    pub key_type: String,
    pub root_key: String,
    pub encrypted_prv: Vec<u8>,
    pub encrypted_data_key: Vec<u8>,
    pub created_at: i64,
}

impl From<&PrivateKeyRow> for StoredKey {
    fn from(r: &PrivateKeyRow) -> Self {
        Self {
            public_key: r.public_key.clone(),
            source: r.source.clone(),
            coin: r.coin.clone(),
            key_type: r.key_type.clone(),
            root_key: r.root_key.clone(),
            encrypted_prv: r.encrypted_prv.clone(),
            encrypted_data_key: r.encrypted_data_key.clone(),
            created_at: r.created_at,
        }
    }
}

fn validation(m: String) -> KmsError {
    KmsError::Validation(m)
}

fn check_source(source: &str) -> Result<(), KmsError> {
    match source {
        "user" | "backup" => Ok(()),
        _ => Err(validation(format!(
            "source must be 'user' or 'backup', not {:?}",
            source.chars().take(32).collect::<String>()
        ))),
    }
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), KmsError> {
    if value.is_empty() || value.len() > max {
        return Err(validation(format!("{field} must have 1 to {max} bytes")));
    }
    Ok(())
}

fn context(public_key: &str, source: &str) -> Vec<(String, String)> {
    vec![
        ("wallet:pub".to_owned(), public_key.to_owned()),
        ("wallet:source".to_owned(), source.to_owned()),
    ]
}

fn aad(public_key: &str, source: &str) -> Vec<u8> {
    let mut out = AAD_PREFIX.to_vec();
    for part in [public_key, source] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn aead(data_key: &[u8]) -> Result<LessSafeKey, KmsError> {
    UnboundKey::new(&AES_256_GCM, data_key)
        .map(LessSafeKey::new)
        .map_err(|_| KmsError::Internal("data key is not an AES-256 key".into()))
}

impl Kms {
    /// Stores a private key under a fresh data key of `root_key`.
    ///
    /// # Errors
    /// Validation; AlreadyExists for a duplicate `(pub, source)`; the
    /// errors of GenerateDataKey on the root key (NotFound, AccessDenied,
    /// Disabled, ...).
    pub async fn wallet_store_key(
        &self,
        principal: &Principal,
        input: StoreKeyInput,
    ) -> Result<StoredKey, KmsError> {
        check_len("pub", &input.public_key, MAX_PUB)?;
        check_source(&input.source)?;
        check_len("coin", &input.coin, MAX_LABEL)?;
        check_len("type", &input.key_type, MAX_LABEL)?;
        if input.prv.is_empty() || input.prv.len() > MAX_PRV {
            return Err(validation(format!("prv must have 1 to {MAX_PRV} bytes")));
        }
        let duplicate = || {
            KmsError::AlreadyExists(format!(
                "a private key for this pub with source '{}' is already stored; it is never overwritten",
                input.source
            ))
        };
        if self
            .wallet_rows(&input.public_key)
            .await?
            .iter()
            .any(|r| r.source == input.source)
        {
            return Err(duplicate());
        }
        let dk = self
            .generate_data_key(
                principal,
                DataKeyInput {
                    key_id: input.root_key.clone(),
                    key_spec: Some("AES_256".into()),
                    number_of_bytes: None,
                    context: context(&input.public_key, &input.source),
                    dry_run: false,
                },
                true,
            )
            .await?;
        let plain_dk = dk
            .plaintext
            .ok_or_else(|| KmsError::Internal("data key without plaintext".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| KmsError::Internal("no randomness".into()))?;
        let mut sealed = Zeroizing::new(input.prv.expose().to_vec());
        let tag = aead(plain_dk.expose())?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&input.public_key, &input.source)),
                sealed.as_mut_slice(),
            )
            .map_err(|_| KmsError::Internal("sealing the private key".into()))?;
        drop(plain_dk);
        let mut encrypted_prv = Vec::with_capacity(NONCE_LEN + sealed.len() + 16);
        encrypted_prv.extend_from_slice(&nonce);
        encrypted_prv.extend_from_slice(&sealed);
        encrypted_prv.extend_from_slice(tag.as_ref());
        let row = PrivateKeyRow {
            public_key: input.public_key,
            source: input.source,
            encrypted_prv,
            encrypted_data_key: dk.ciphertext_blob,
            root_key: dk.key_arn,
            coin: input.coin,
            key_type: input.key_type,
            owner_arn: principal.arn.clone(),
            created_at: self.now(),
        };
        let stored = StoredKey::from(&row);
        let source = row.source.clone();
        self.write(move |core| {
            core.store.insert_private_key(&row).map_err(|e| match e {
                StoreError::Conflict(_) => KmsError::AlreadyExists(format!(
                    "a private key for this pub with source '{source}' is already stored; it is never overwritten"
                )),
                e => KmsError::Internal(format!("store write failed: {e}")),
            })
        })
        .await?;
        tracing::info!(owner = %principal.arn, root_key = %stored.root_key, source = %stored.source, "wallet key stored");
        Ok(stored)
    }

    /// Decrypts a stored private key (`source` given, or `user` before
    /// `backup`).
    ///
    /// # Errors
    /// NotFound when nothing is stored for `pub` (and `source`); the errors
    /// of Decrypt on the root key (AccessDenied, Disabled, ...).
    pub async fn wallet_get_key(
        &self,
        principal: &Principal,
        public_key: &str,
        source: Option<&str>,
    ) -> Result<(StoredKey, SecretBytes), KmsError> {
        if let Some(s) = source {
            check_source(s)?;
        }
        let rows = self.wallet_rows(public_key).await?;
        let row = rows
            .iter()
            .find(|r| source.is_none_or(|s| r.source == s))
            .ok_or_else(|| KmsError::NotFound("no private key is stored for this pub".into()))?;
        let opened = self
            .decrypt(
                principal,
                DecryptInput {
                    ciphertext_blob: row.encrypted_data_key.clone(),
                    context: context(&row.public_key, &row.source),
                    key_id: Some(row.root_key.clone()),
                    encryption_algorithm: None,
                    dry_run: false,
                },
            )
            .await?;
        let corrupt = || KmsError::Internal("stored private key does not open".into());
        if row.encrypted_prv.len() < NONCE_LEN + 16 {
            return Err(corrupt());
        }
        let (nonce, rest) = row.encrypted_prv.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| corrupt())?;
        let mut buf = Zeroizing::new(rest.to_vec());
        let plain = aead(opened.plaintext.expose())?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&row.public_key, &row.source)),
                buf.as_mut_slice(),
            )
            .map_err(|_| corrupt())?;
        Ok((StoredKey::from(row), SecretBytes::new(plain.to_vec())))
    }

    async fn wallet_rows(&self, public_key: &str) -> Result<Vec<PrivateKeyRow>, KmsError> {
        let store = std::sync::Arc::clone(&self.core.store);
        let pk = public_key.to_owned();
        tokio::task::spawn_blocking(move || store.private_keys(&pk))
            .await
            .map_err(|e| KmsError::Internal(format!("read task failed: {e}")))?
            .map_err(|e| KmsError::Internal(format!("store read failed: {e}")))
    }
}
