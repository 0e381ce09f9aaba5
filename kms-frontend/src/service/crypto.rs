//! Cryptographic operations: Encrypt, Decrypt, GenerateDataKey(WithoutPlaintext),
//! ReEncrypt, GenerateRandom. They read keys from the cache only, never the
//! database, and hold no lock across the HSM call.

use super::Kms;
use super::authz::Extra;
use super::cache::KeyEntry;
use super::resolve::{Accept, check_usable};
use crate::error::{KmsError, invalid_ciphertext_message};
use crate::policy::Action;
use crate::principal::Principal;
use protocol::blob::BlobHeader;
use protocol::{
    DataKeySpec, EncryptionContext, KeyRef, MAX_PLAINTEXT_LEN, MAX_RANDOM_LEN, Request, Response,
    SecretBytes,
};
use std::sync::Arc;

/// Largest CiphertextBlob AWS accepts.
pub const MAX_CIPHERTEXT_LEN: usize = 6144;
/// The only encryption algorithm of symmetric keys.
pub const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";

/// Encrypt's parameters.
#[derive(Debug)]
pub struct EncryptInput {
    pub key_id: String,
    pub plaintext: SecretBytes,
    pub context: EncryptionContext,
    pub encryption_algorithm: Option<String>,
    /// Check everything, then refuse with DryRunOperationException.
    pub dry_run: bool,
}

/// Decrypt's parameters.
#[derive(Debug)]
pub struct DecryptInput {
    pub ciphertext_blob: Vec<u8>,
    pub context: EncryptionContext,
    pub key_id: Option<String>,
    pub encryption_algorithm: Option<String>,
    /// Check everything, then refuse with DryRunOperationException.
    pub dry_run: bool,
}

/// GenerateDataKey(WithoutPlaintext)'s parameters.
#[derive(Debug)]
pub struct DataKeyInput {
    pub key_id: String,
    pub key_spec: Option<String>,
    pub number_of_bytes: Option<i64>,
    pub context: EncryptionContext,
    /// Check everything, then refuse with DryRunOperationException.
    pub dry_run: bool,
}

/// ReEncrypt's parameters.
#[derive(Debug)]
pub struct ReEncryptInput {
    pub ciphertext_blob: Vec<u8>,
    pub source_context: EncryptionContext,
    pub source_key_id: Option<String>,
    pub destination_key_id: String,
    pub destination_context: EncryptionContext,
    pub source_encryption_algorithm: Option<String>,
    pub destination_encryption_algorithm: Option<String>,
    /// Check everything, then refuse with DryRunOperationException.
    pub dry_run: bool,
}

/// A new ciphertext and the ARN of the key that made it.
#[derive(Debug)]
pub struct Sealed {
    pub ciphertext_blob: Vec<u8>,
    pub key_arn: String,
    /// SYMMETRIC_DEFAULT, or the RSAES_OAEP algorithm of an RSA key.
    pub encryption_algorithm: &'static str,
}

/// Decrypt's result.
#[derive(Debug)]
pub struct Opened {
    pub plaintext: SecretBytes,
    pub key_arn: String,
    /// SYMMETRIC_DEFAULT, or the RSAES_OAEP algorithm of an RSA key.
    pub encryption_algorithm: &'static str,
}

/// GenerateDataKey's result; `plaintext` is `None` without plaintext.
#[derive(Debug)]
pub struct DataKey {
    pub ciphertext_blob: Vec<u8>,
    pub plaintext: Option<SecretBytes>,
    pub key_arn: String,
}

/// ReEncrypt's result.
#[derive(Debug)]
pub struct ReEncrypted {
    pub ciphertext_blob: Vec<u8>,
    pub source_key_arn: String,
    pub key_arn: String,
}

/// Checks an EncryptionAlgorithm parameter for a symmetric key.
pub(crate) fn check_algorithm(field: &str, value: Option<&str>) -> Result<(), KmsError> {
    match value {
        None | Some(SYMMETRIC_DEFAULT) => Ok(()),
        Some(v @ ("RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256" | "SM2PKE")) => {
            Err(KmsError::InvalidKeyUsage(format!(
                "{v} is not a valid encryption algorithm for a symmetric key; use {SYMMETRIC_DEFAULT}"
            )))
        }
        Some(v) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: \
             Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, \
             RSAES_OAEP_SHA_256, SM2PKE]"
        ))),
    }
}

/// Checks a data key's KeySpec / NumberOfBytes: exactly one of them.
pub(crate) fn data_key_spec(
    key_spec: Option<&str>,
    number_of_bytes: Option<i64>,
) -> Result<DataKeySpec, KmsError> {
    match (key_spec, number_of_bytes) {
        (Some(_), Some(_)) | (None, None) => Err(KmsError::Validation(
            "Specify exactly one of KeySpec and NumberOfBytes".into(),
        )),
        (Some("AES_256"), None) => Ok(DataKeySpec::Aes256),
        (Some("AES_128"), None) => Ok(DataKeySpec::Aes128),
        (Some(v), None) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{v}' at 'keySpec' failed to satisfy \
             constraint: Member must satisfy enum value set: [AES_256, AES_128]"
        ))),
        (None, Some(n)) => Ok(DataKeySpec::Bytes(number_of_bytes_in_range(n)?)),
    }
}

/// NumberOfBytes: 1..=1024.
pub(crate) fn number_of_bytes_in_range(n: i64) -> Result<u16, KmsError> {
    u16::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_RANDOM_LEN).contains(n))
        .ok_or_else(|| {
            KmsError::Validation(format!(
                "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy \
                 constraint: Member must have value between 1 and {MAX_RANDOM_LEN}"
            ))
        })
}

fn check_plaintext(p: &SecretBytes) -> Result<(), KmsError> {
    if p.is_empty() || p.len() > MAX_PLAINTEXT_LEN {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_PLAINTEXT_LEN}"
        )));
    }
    Ok(())
}

pub(crate) fn check_ciphertext_len(blob: &[u8]) -> Result<(), KmsError> {
    if blob.is_empty() || blob.len() > MAX_CIPHERTEXT_LEN {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy \
             constraint: Member must have length between 1 and {MAX_CIPHERTEXT_LEN}"
        )));
    }
    Ok(())
}

fn invalid_ciphertext() -> KmsError {
    KmsError::InvalidCiphertext(invalid_ciphertext_message())
}

fn current_ref(entry: &KeyEntry) -> Result<KeyRef, KmsError> {
    entry.current_ref().ok_or_else(|| {
        KmsError::Internal(format!(
            "key {} has no token for its current version",
            entry.meta.key_id
        ))
    })
}

/// Refuses a key that is not a symmetric encryption key.
pub(crate) fn check_symmetric(entry: &KeyEntry) -> Result<(), KmsError> {
    if entry.meta.key_spec == SYMMETRIC_DEFAULT && entry.meta.key_usage == "ENCRYPT_DECRYPT" {
        Ok(())
    } else {
        Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} and key spec is {}; this operation needs a \
             SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key",
            entry.meta.arn, entry.meta.key_usage, entry.meta.key_spec
        )))
    }
}

/// Whether a key is an RSA encryption key (Encrypt/Decrypt go to RSA-OAEP).
pub(crate) fn is_rsa_encryption(entry: &KeyEntry) -> bool {
    entry.meta.key_spec.starts_with("RSA_") && entry.meta.key_usage == "ENCRYPT_DECRYPT"
}

pub(crate) fn dry_run(set: bool) -> Result<(), KmsError> {
    if set { Err(KmsError::DryRun) } else { Ok(()) }
}

pub(crate) fn unexpected(op: &str) -> KmsError {
    KmsError::Internal(format!("{op}: unexpected HSM response"))
}

impl Kms {
    /// A usable key for an operation that makes new ciphertext.
    pub(super) fn key_for(
        &self,
        principal: &Principal,
        key_id: &str,
        action: Action,
        context: &EncryptionContext,
    ) -> Result<(Arc<KeyEntry>, KeyRef), KmsError> {
        let extra = Extra {
            context: Some(context),
            grant_operations: None,
        };
        let entry = self
            .core
            .resolve_with(principal, key_id, Accept::KeyOrAlias, action, extra)?;
        check_usable(&entry)?;
        check_symmetric(&entry)?;
        let key = current_ref(&entry)?;
        Ok((entry, key))
    }

    /// The key and version that made `blob`, checked against an optional
    /// KeyId parameter, ownership and state.
    fn key_of_blob(
        &self,
        principal: &Principal,
        blob: &[u8],
        key_id: Option<&str>,
        action: Action,
        context: &EncryptionContext,
    ) -> Result<(Arc<KeyEntry>, KeyRef), KmsError> {
        let extra = Extra {
            context: Some(context),
            grant_operations: None,
        };
        check_ciphertext_len(blob)?;
        let header = BlobHeader::parse(blob).map_err(|_| invalid_ciphertext())?;
        let entry = match key_id {
            Some(given) => {
                let entry =
                    self.core
                        .resolve_with(principal, given, Accept::KeyOrAlias, action, extra)?;
                check_symmetric(&entry)?;
                if entry.meta.key_id != header.key_id {
                    return Err(KmsError::IncorrectKey(
                        "The key ID in the request does not identify the KMS key that \
                         encrypted the ciphertext"
                            .into(),
                    ));
                }
                entry
            }
            None => {
                // An unknown key in a blob is an invalid ciphertext, not a
                // NotFound: the caller named no key.
                let entry = self
                    .core
                    .key_by_id(header.key_id)
                    .map_err(|_| invalid_ciphertext())?;
                self.core.authorize(principal, &entry, action, extra)?;
                entry
            }
        };
        check_usable(&entry)?;
        let key = entry
            .key_ref(header.key_version)
            .ok_or_else(invalid_ciphertext)?;
        Ok((entry, key))
    }

    /// Encrypt.
    ///
    /// # Errors
    /// Validation, NotFound, AccessDenied, Disabled, KMSInvalidState,
    /// InvalidKeyUsage, HSM failures.
    pub async fn encrypt(
        &self,
        principal: &Principal,
        input: EncryptInput,
    ) -> Result<Sealed, KmsError> {
        check_plaintext(&input.plaintext)?;
        let named = self.core.lookup(&input.key_id, Accept::KeyOrAlias)?;
        if is_rsa_encryption(&named) {
            let extra = Extra {
                context: Some(&input.context),
                grant_operations: None,
            };
            self.core
                .authorize(principal, &named, Action::Encrypt, extra)?;
            return self.rsa_encrypt(&named, input).await;
        }
        check_algorithm("encryptionAlgorithm", input.encryption_algorithm.as_deref())?;
        let (entry, key) =
            self.key_for(principal, &input.key_id, Action::Encrypt, &input.context)?;
        dry_run(input.dry_run)?;
        let response = self
            .hsm_call(Request::Encrypt {
                key,
                plaintext: input.plaintext,
                context: input.context,
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::Ciphertext { blob } = response else {
            return Err(unexpected("Encrypt"));
        };
        Ok(Sealed {
            ciphertext_blob: blob,
            key_arn: entry.meta.arn.clone(),
            encryption_algorithm: SYMMETRIC_DEFAULT,
        })
    }

    /// Decrypt: the key comes from the blob's header.
    ///
    /// # Errors
    /// InvalidCiphertext, IncorrectKey, NotFound (for a given KeyId),
    /// AccessDenied, Disabled, KMSInvalidState, HSM failures.
    pub async fn decrypt(
        &self,
        principal: &Principal,
        input: DecryptInput,
    ) -> Result<Opened, KmsError> {
        if let Some(given) = input.key_id.as_deref() {
            let named = self.core.lookup(given, Accept::KeyOrAlias)?;
            if is_rsa_encryption(&named) {
                let extra = Extra {
                    context: Some(&input.context),
                    grant_operations: None,
                };
                self.core
                    .authorize(principal, &named, Action::Decrypt, extra)?;
                return self.rsa_decrypt(&named, input).await;
            }
        }
        check_algorithm("encryptionAlgorithm", input.encryption_algorithm.as_deref())?;
        let (entry, key) = self.key_of_blob(
            principal,
            &input.ciphertext_blob,
            input.key_id.as_deref(),
            Action::Decrypt,
            &input.context,
        )?;
        dry_run(input.dry_run)?;
        let response = self
            .hsm_call(Request::Decrypt {
                key,
                blob: input.ciphertext_blob,
                context: input.context,
            })
            .await
            .map_err(KmsError::from_hsm_decrypt)?;
        let Response::Plaintext { plaintext } = response else {
            return Err(unexpected("Decrypt"));
        };
        Ok(Opened {
            plaintext,
            key_arn: entry.meta.arn.clone(),
            encryption_algorithm: SYMMETRIC_DEFAULT,
        })
    }

    /// GenerateDataKey (`with_plaintext`) or GenerateDataKeyWithoutPlaintext.
    ///
    /// # Errors
    /// Validation, NotFound, AccessDenied, Disabled, KMSInvalidState, HSM failures.
    pub async fn generate_data_key(
        &self,
        principal: &Principal,
        input: DataKeyInput,
        with_plaintext: bool,
    ) -> Result<DataKey, KmsError> {
        let spec = data_key_spec(input.key_spec.as_deref(), input.number_of_bytes)?;
        let action = if with_plaintext {
            Action::GenerateDataKey
        } else {
            Action::GenerateDataKeyWithoutPlaintext
        };
        let (entry, key) = self.key_for(principal, &input.key_id, action, &input.context)?;
        dry_run(input.dry_run)?;
        let response = self
            .hsm_call(Request::GenerateDataKey {
                key,
                spec,
                context: input.context,
                with_plaintext,
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::DataKey { plaintext, blob } = response else {
            return Err(unexpected(action.name()));
        };
        if with_plaintext != plaintext.is_some() {
            return Err(unexpected(action.name()));
        }
        Ok(DataKey {
            ciphertext_blob: blob,
            plaintext,
            key_arn: entry.meta.arn.clone(),
        })
    }

    /// ReEncrypt: open under the source key and seal under the destination
    /// key inside the HSM.
    ///
    /// # Errors
    /// As Decrypt for the source, as Encrypt for the destination.
    pub async fn re_encrypt(
        &self,
        principal: &Principal,
        input: ReEncryptInput,
    ) -> Result<ReEncrypted, KmsError> {
        check_algorithm(
            "sourceEncryptionAlgorithm",
            input.source_encryption_algorithm.as_deref(),
        )?;
        check_algorithm(
            "destinationEncryptionAlgorithm",
            input.destination_encryption_algorithm.as_deref(),
        )?;
        let (source_entry, source) = self.key_of_blob(
            principal,
            &input.ciphertext_blob,
            input.source_key_id.as_deref(),
            Action::ReEncryptFrom,
            &input.source_context,
        )?;
        let (dest_entry, destination) = self.key_for(
            principal,
            &input.destination_key_id,
            Action::ReEncryptTo,
            &input.destination_context,
        )?;
        dry_run(input.dry_run)?;
        let response = self
            .hsm_call(Request::ReEncrypt {
                source,
                blob: input.ciphertext_blob,
                source_context: input.source_context,
                destination,
                destination_context: input.destination_context,
            })
            .await
            .map_err(KmsError::from_hsm_decrypt)?;
        let Response::Ciphertext { blob } = response else {
            return Err(unexpected("ReEncrypt"));
        };
        Ok(ReEncrypted {
            ciphertext_blob: blob,
            source_key_arn: source_entry.meta.arn.clone(),
            key_arn: dest_entry.meta.arn.clone(),
        })
    }

    /// GenerateRandom: NumberOfBytes 1..=1024.
    ///
    /// # Errors
    /// Validation, HSM failures.
    pub async fn generate_random(
        &self,
        number_of_bytes: Option<i64>,
    ) -> Result<SecretBytes, KmsError> {
        let Some(n) = number_of_bytes else {
            return Err(KmsError::Validation(
                "1 validation error detected: Value null at 'numberOfBytes' failed to satisfy \
                 constraint: Member must not be null"
                    .into(),
            ));
        };
        let len = number_of_bytes_in_range(n)?;
        let response = self
            .hsm_call(Request::GenerateRandom { len })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::Random { bytes } = response else {
            return Err(unexpected("GenerateRandom"));
        };
        Ok(SecretBytes::new(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms() {
        assert!(check_algorithm("a", None).is_ok());
        assert!(check_algorithm("a", Some("SYMMETRIC_DEFAULT")).is_ok());
        assert!(matches!(
            check_algorithm("a", Some("RSAES_OAEP_SHA_256")),
            Err(KmsError::InvalidKeyUsage(_))
        ));
        assert!(matches!(
            check_algorithm("a", Some("nope")),
            Err(KmsError::Validation(_))
        ));
    }

    #[test]
    fn data_key_specs() {
        assert_eq!(
            data_key_spec(Some("AES_256"), None).ok(),
            Some(DataKeySpec::Aes256)
        );
        assert_eq!(
            data_key_spec(Some("AES_128"), None).ok(),
            Some(DataKeySpec::Aes128)
        );
        assert_eq!(
            data_key_spec(None, Some(1024)).ok(),
            Some(DataKeySpec::Bytes(1024))
        );
        for (s, n) in [
            (None, None),
            (Some("AES_256"), Some(32)),
            (Some("AES_512"), None),
            (None, Some(0)),
            (None, Some(1025)),
            (None, Some(-1)),
            (None, Some(i64::MAX)),
        ] {
            assert!(
                matches!(data_key_spec(s, n), Err(KmsError::Validation(_))),
                "{s:?} {n:?}"
            );
        }
    }

    #[test]
    fn plaintext_and_ciphertext_limits() {
        assert!(check_plaintext(&SecretBytes::new(vec![])).is_err());
        assert!(check_plaintext(&SecretBytes::new(vec![0; 4096])).is_ok());
        assert!(check_plaintext(&SecretBytes::new(vec![0; 4097])).is_err());
        assert!(check_ciphertext_len(&[]).is_err());
        assert!(check_ciphertext_len(&[0; 6144]).is_ok());
        assert!(check_ciphertext_len(&[0; 6145]).is_err());
    }
}
