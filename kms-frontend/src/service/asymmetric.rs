//! Asymmetric and HMAC operations: GetPublicKey, Sign, Verify, RSA-OAEP
//! Encrypt/Decrypt, GenerateMac, VerifyMac, GenerateDataKeyPair(WithoutPlaintext).
//!
//! The private half and the HMAC secret stay in hsm-daemon: the frontend
//! sends the key's token and the message, and gets back a public key, a
//! signature, a MAC or a verdict. Checks here follow AWS: a key of the wrong
//! usage, or an algorithm its spec does not pair with, is
//! InvalidKeyUsageException; sizes are ValidationException.

use super::Kms;
use super::cache::KeyEntry;
use super::crypto::{
    DecryptInput, EncryptInput, Opened, Sealed, check_ciphertext_len, check_symmetric, dry_run,
    unexpected,
};
use super::resolve::{Accept, check_usable};
use super::specs::{
    GENERATE_VERIFY_MAC, SIGN_VERIFY, SpecInfo, encryption_name, is_asymmetric, mac_name,
    parse_encryption, parse_mac, parse_signing, rsa_max_plaintext, signing_name, spec_info,
};
use crate::error::KmsError;
use crate::principal::Principal;
use protocol::{
    EncryptionContext, KeyRef, MAX_MESSAGE_LEN, MessageType, Request, Response, SecretBytes,
};
use std::sync::Arc;

/// Sign / Verify parameters.
#[derive(Debug)]
pub struct SignInput {
    pub key_id: String,
    pub message: SecretBytes,
    pub message_type: Option<String>,
    pub signing_algorithm: Option<String>,
    /// Verify only.
    pub signature: Vec<u8>,
    pub dry_run: bool,
}

/// Sign's result (Verify returns it with an empty signature).
#[derive(Debug)]
pub struct Signed {
    pub key_arn: String,
    pub signature: Vec<u8>,
    pub signing_algorithm: &'static str,
}

/// GenerateMac / VerifyMac parameters.
#[derive(Debug)]
pub struct MacInput {
    pub key_id: String,
    pub message: SecretBytes,
    pub mac_algorithm: Option<String>,
    /// VerifyMac only.
    pub mac: Vec<u8>,
    pub dry_run: bool,
}

/// GenerateMac's result (VerifyMac returns it with an empty mac).
#[derive(Debug)]
pub struct MacOutput {
    pub key_arn: String,
    pub mac: Vec<u8>,
    pub mac_algorithm: &'static str,
}

/// GetPublicKey's result.
#[derive(Debug)]
pub struct PublicKeyInfo {
    pub key_arn: String,
    pub public_key: Vec<u8>,
    pub key_spec: &'static str,
    pub key_usage: String,
    pub encryption_algorithms: Vec<&'static str>,
    pub signing_algorithms: Vec<&'static str>,
}

/// GenerateDataKeyPair parameters.
#[derive(Debug)]
pub struct DataKeyPairInput {
    pub key_id: String,
    pub key_pair_spec: Option<String>,
    pub context: EncryptionContext,
    pub dry_run: bool,
}

/// GenerateDataKeyPair's result; no plaintext for ...WithoutPlaintext.
#[derive(Debug)]
pub struct DataKeyPair {
    pub key_arn: String,
    pub key_pair_spec: &'static str,
    pub public_key: Vec<u8>,
    pub private_key_plaintext: Option<SecretBytes>,
    pub private_key_ciphertext_blob: Vec<u8>,
}

fn wrong_usage(entry: &KeyEntry, need: &str) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "{} key usage is {}; this operation needs a {need} key",
        entry.meta.arn, entry.meta.key_usage
    ))
}

fn wrong_algorithm(entry: &KeyEntry, alg: &str) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "{alg} is not a valid algorithm for {}, whose key spec is {}",
        entry.meta.arn, entry.meta.key_spec
    ))
}

fn info(entry: &KeyEntry) -> Result<&'static SpecInfo, KmsError> {
    spec_info(&entry.meta.key_spec)
        .ok_or_else(|| KmsError::Internal(format!("unknown key spec {}", entry.meta.key_spec)))
}

fn current(entry: &KeyEntry) -> Result<KeyRef, KmsError> {
    entry
        .current_ref()
        .ok_or_else(|| KmsError::Internal(format!("key {} has no token", entry.meta.key_id)))
}

fn check_message(m: &SecretBytes) -> Result<(), KmsError> {
    if m.is_empty() || m.len() > MAX_MESSAGE_LEN {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'message' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_MESSAGE_LEN}"
        )));
    }
    Ok(())
}

fn check_blob_field(b: &[u8], field: &str) -> Result<(), KmsError> {
    if b.is_empty() || b.len() > 6144 {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: \
             Member must have length between 1 and 6144"
        )));
    }
    Ok(())
}

fn message_type(value: Option<&str>) -> Result<MessageType, KmsError> {
    match value {
        None | Some("RAW") => Ok(MessageType::Raw),
        Some("DIGEST") => Ok(MessageType::Digest),
        Some(v) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{v}' at 'messageType' failed to satisfy \
             constraint: Member must satisfy enum value set: [RAW, DIGEST, EXTERNAL_MU]"
        ))),
    }
}

impl Kms {
    fn usable(
        &self,
        principal: &Principal,
        key_id: &str,
        action: &str,
    ) -> Result<Arc<KeyEntry>, KmsError> {
        let entry = self
            .core
            .resolve(principal, key_id, Accept::KeyOrAlias, action)?;
        check_usable(&entry)?;
        Ok(entry)
    }

    /// GetPublicKey: the DER SubjectPublicKeyInfo of an RSA or ECC key.
    ///
    /// # Errors
    /// NotFound, AccessDenied, Disabled, KMSInvalidState,
    /// UnsupportedOperation for a symmetric or HMAC key, HSM failures.
    pub async fn get_public_key(
        &self,
        principal: &Principal,
        key_id: &str,
    ) -> Result<PublicKeyInfo, KmsError> {
        let entry = self.usable(principal, key_id, "GetPublicKey")?;
        if !is_asymmetric(&entry.meta.key_spec) {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} is not an asymmetric key; it has no public key",
                entry.meta.arn
            )));
        }
        let spec = info(&entry)?;
        let response = self
            .hsm_call(Request::GetPublicKey {
                key: current(&entry)?,
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::PublicKey { der } = response else {
            return Err(unexpected("GetPublicKey"));
        };
        let enc = entry.meta.key_usage == "ENCRYPT_DECRYPT";
        Ok(PublicKeyInfo {
            key_arn: entry.meta.arn.clone(),
            public_key: der,
            key_spec: spec.name,
            key_usage: entry.meta.key_usage.clone(),
            encryption_algorithms: if enc {
                spec.encryption
                    .iter()
                    .map(|a| encryption_name(*a))
                    .collect()
            } else {
                Vec::new()
            },
            signing_algorithms: if enc {
                Vec::new()
            } else {
                spec.signing.iter().map(|a| signing_name(*a)).collect()
            },
        })
    }

    /// Sign (`verify` false) or Verify (`verify` true).
    ///
    /// # Errors
    /// Validation, NotFound, AccessDenied, Disabled, KMSInvalidState,
    /// InvalidKeyUsage, KMSInvalidSignature (Verify), HSM failures.
    pub async fn sign_or_verify(
        &self,
        principal: &Principal,
        input: SignInput,
        verify: bool,
    ) -> Result<Signed, KmsError> {
        let action = if verify { "Verify" } else { "Sign" };
        check_message(&input.message)?;
        let mtype = message_type(input.message_type.as_deref())?;
        let Some(alg_name) = input.signing_algorithm.as_deref() else {
            return Err(KmsError::Validation(
                "1 validation error detected: Value null at 'signingAlgorithm' failed to \
                 satisfy constraint: Member must not be null"
                    .into(),
            ));
        };
        let alg = parse_signing(alg_name)?;
        if verify {
            check_blob_field(&input.signature, "signature")?;
        }
        let entry = self.usable(principal, &input.key_id, action)?;
        if entry.meta.key_usage != SIGN_VERIFY {
            return Err(wrong_usage(&entry, SIGN_VERIFY));
        }
        if !info(&entry)?.signing.contains(&alg) {
            return Err(wrong_algorithm(&entry, alg_name));
        }
        if mtype == MessageType::Digest && input.message.len() != alg.digest_len() {
            return Err(KmsError::Validation(format!(
                "Digest is invalid length for algorithm {alg_name}: it must be {} bytes",
                alg.digest_len()
            )));
        }
        dry_run(input.dry_run)?;
        let key = current(&entry)?;
        let request = if verify {
            Request::Verify {
                key,
                message: input.message,
                message_type: mtype,
                algorithm: alg,
                signature: input.signature,
            }
        } else {
            Request::Sign {
                key,
                message: input.message,
                message_type: mtype,
                algorithm: alg,
            }
        };
        let response = self.hsm_call(request).await.map_err(KmsError::from_hsm)?;
        let signature = match (verify, response) {
            (false, Response::Signature { signature }) => signature,
            (true, Response::Verified { valid: true }) => Vec::new(),
            (true, Response::Verified { valid: false }) => return Err(KmsError::InvalidSignature),
            _ => return Err(unexpected(action)),
        };
        Ok(Signed {
            key_arn: entry.meta.arn.clone(),
            signature,
            signing_algorithm: signing_name(alg),
        })
    }

    /// GenerateMac (`verify` false) or VerifyMac (`verify` true).
    ///
    /// # Errors
    /// Validation, NotFound, AccessDenied, Disabled, KMSInvalidState,
    /// InvalidKeyUsage, KMSInvalidMac (VerifyMac), HSM failures.
    pub async fn mac(
        &self,
        principal: &Principal,
        input: MacInput,
        verify: bool,
    ) -> Result<MacOutput, KmsError> {
        let action = if verify { "VerifyMac" } else { "GenerateMac" };
        check_message(&input.message)?;
        let Some(alg_name) = input.mac_algorithm.as_deref() else {
            return Err(KmsError::Validation(
                "1 validation error detected: Value null at 'macAlgorithm' failed to satisfy \
                 constraint: Member must not be null"
                    .into(),
            ));
        };
        let alg = parse_mac(alg_name)?;
        if verify {
            check_blob_field(&input.mac, "mac")?;
        }
        let entry = self.usable(principal, &input.key_id, action)?;
        if entry.meta.key_usage != GENERATE_VERIFY_MAC {
            return Err(wrong_usage(&entry, GENERATE_VERIFY_MAC));
        }
        if !info(&entry)?.mac.contains(&alg) {
            return Err(wrong_algorithm(&entry, alg_name));
        }
        dry_run(input.dry_run)?;
        let key = current(&entry)?;
        let request = if verify {
            Request::VerifyMac {
                key,
                message: input.message,
                algorithm: alg,
                mac: input.mac,
            }
        } else {
            Request::GenerateMac {
                key,
                message: input.message,
                algorithm: alg,
            }
        };
        let response = self.hsm_call(request).await.map_err(KmsError::from_hsm)?;
        let mac = match (verify, response) {
            (false, Response::Mac { mac }) => mac,
            (true, Response::Verified { valid: true }) => Vec::new(),
            (true, Response::Verified { valid: false }) => return Err(KmsError::InvalidMac),
            _ => return Err(unexpected(action)),
        };
        Ok(MacOutput {
            key_arn: entry.meta.arn.clone(),
            mac,
            mac_algorithm: mac_name(alg),
        })
    }

    /// Encrypt under an RSA key: RSAES-OAEP, plaintext limits per AWS.
    pub(crate) async fn rsa_encrypt(
        &self,
        entry: &KeyEntry,
        input: EncryptInput,
    ) -> Result<Sealed, KmsError> {
        check_usable(entry)?;
        let alg = self.rsa_algorithm(entry, input.encryption_algorithm.as_deref())?;
        let spec = info(entry)?.spec;
        let max = rsa_max_plaintext(spec, alg);
        if input.plaintext.len() > max {
            return Err(KmsError::Validation(format!(
                "Plaintext is too long for {} with {}: at most {max} bytes",
                entry.meta.key_spec,
                encryption_name(alg)
            )));
        }
        if !input.context.is_empty() {
            return Err(KmsError::Validation(
                "EncryptionContext is not supported with asymmetric keys".into(),
            ));
        }
        dry_run(input.dry_run)?;
        let response = self
            .hsm_call(Request::AsymmetricEncrypt {
                key: current(entry)?,
                plaintext: input.plaintext,
                algorithm: alg,
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::Ciphertext { blob } = response else {
            return Err(unexpected("Encrypt"));
        };
        Ok(Sealed {
            ciphertext_blob: blob,
            key_arn: entry.meta.arn.clone(),
            encryption_algorithm: encryption_name(alg),
        })
    }

    /// Decrypt with an RSA key named by KeyId.
    pub(crate) async fn rsa_decrypt(
        &self,
        entry: &KeyEntry,
        input: DecryptInput,
    ) -> Result<Opened, KmsError> {
        check_ciphertext_len(&input.ciphertext_blob)?;
        check_usable(entry)?;
        let alg = self.rsa_algorithm(entry, input.encryption_algorithm.as_deref())?;
        if !input.context.is_empty() {
            return Err(KmsError::Validation(
                "EncryptionContext is not supported with asymmetric keys".into(),
            ));
        }
        dry_run(input.dry_run)?;
        let response = self
            .hsm_call(Request::AsymmetricDecrypt {
                key: current(entry)?,
                ciphertext: input.ciphertext_blob,
                algorithm: alg,
            })
            .await
            .map_err(KmsError::from_hsm_decrypt)?;
        let Response::Plaintext { plaintext } = response else {
            return Err(unexpected("Decrypt"));
        };
        Ok(Opened {
            plaintext,
            key_arn: entry.meta.arn.clone(),
            encryption_algorithm: encryption_name(alg),
        })
    }

    fn rsa_algorithm(
        &self,
        entry: &KeyEntry,
        value: Option<&str>,
    ) -> Result<protocol::EncryptionAlgorithm, KmsError> {
        match value {
            None | Some("SYMMETRIC_DEFAULT") => Err(wrong_algorithm(
                entry,
                value.unwrap_or("SYMMETRIC_DEFAULT (the default)"),
            )),
            Some("SM2PKE") => Err(wrong_algorithm(entry, "SM2PKE")),
            Some(v) => parse_encryption(v),
        }
    }

    /// GenerateDataKeyPair (`with_plaintext`) or ...WithoutPlaintext: a
    /// fresh pair made in the HSM, its private key sealed under a
    /// symmetric KMS key.
    ///
    /// # Errors
    /// Validation, UnsupportedOperation, NotFound, AccessDenied, Disabled,
    /// KMSInvalidState, InvalidKeyUsage, HSM failures.
    pub async fn generate_data_key_pair(
        &self,
        principal: &Principal,
        input: DataKeyPairInput,
        with_plaintext: bool,
    ) -> Result<DataKeyPair, KmsError> {
        let action = if with_plaintext {
            "GenerateDataKeyPair"
        } else {
            "GenerateDataKeyPairWithoutPlaintext"
        };
        let Some(pair_name) = input.key_pair_spec.as_deref() else {
            return Err(KmsError::Validation(
                "1 validation error detected: Value null at 'keyPairSpec' failed to satisfy \
                 constraint: Member must not be null"
                    .into(),
            ));
        };
        let pair = match spec_info(pair_name) {
            Some(s) if is_asymmetric(s.name) => s,
            _ if pair_name == "SM2" => {
                return Err(KmsError::UnsupportedOperation(
                    "KeyPairSpec SM2 is not supported by this KMS".into(),
                ));
            }
            _ => {
                return Err(KmsError::Validation(format!(
                    "1 validation error detected: Value '{pair_name}' at 'keyPairSpec' failed \
                     to satisfy constraint: Member must satisfy enum value set: [RSA_2048, \
                     RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, \
                     ECC_SECG_P256K1, SM2]"
                )));
            }
        };
        let entry = self.usable(principal, &input.key_id, action)?;
        check_symmetric(&entry)?;
        dry_run(input.dry_run)?;
        let response = self
            .hsm_call(Request::GenerateDataKeyPair {
                key: current(&entry)?,
                pair_spec: pair.spec,
                context: input.context,
                with_plaintext,
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::DataKeyPair {
            public_key,
            private_plaintext,
            private_blob,
        } = response
        else {
            return Err(unexpected(action));
        };
        if with_plaintext != private_plaintext.is_some() {
            return Err(unexpected(action));
        }
        Ok(DataKeyPair {
            key_arn: entry.meta.arn.clone(),
            key_pair_spec: pair.name,
            public_key,
            private_key_plaintext: private_plaintext,
            private_key_ciphertext_blob: private_blob,
        })
    }
}
