//! Wrapping external key material under a CMK (WrapKey / UnwrapKey): the
//! daemon wraps with AES-KWP (RFC 5649) under a key derived from the CMK and
//! prefixes the `protocol::wrapped` header naming the key id and version.
//! Wrapping is authorized like Encrypt and needs a usable SYMMETRIC_DEFAULT
//! key (its current version); unwrapping is authorized like Decrypt, on the
//! key the header names, which must be usable (a disabled or pending-deletion
//! key refuses both). HTTP and CLI are left to `api/rest` and `cli`.

use super::Kms;
use super::authz::Extra;
use super::crypto::{check_symmetric, unexpected};
use super::resolve::check_usable;
use crate::error::KmsError;
use crate::policy::Action;
use crate::principal::Principal;
use protocol::wrapped::{MAX_KWP_LEN, WrappedHeader};
use protocol::{MAX_WRAP_MATERIAL_LEN, Request, Response, SecretBytes};

/// Largest wrapped key accepted: header with a 64-byte key id, then KWP.
pub const MAX_WRAPPED_LEN: usize = 4 + 1 + 64 + 4 + MAX_KWP_LEN;

/// A wrapped key and the ARN of the key that wrapped it.
#[derive(Debug)]
pub struct WrappedKey {
    pub wrapped: Vec<u8>,
    pub key_arn: String,
}

/// Unwrapped key material and the ARN of the key that wrapped it.
#[derive(Debug)]
pub struct UnwrappedKey {
    pub material: SecretBytes,
    pub key_arn: String,
}

fn invalid_wrapped() -> KmsError {
    KmsError::InvalidCiphertext(
        "The wrapped key is invalid: it was changed, truncated, not made by this KMS, or \
         made under another key"
            .into(),
    )
}

/// Refuses material outside 1..=4096 bytes.
pub(crate) fn check_material(material: &SecretBytes) -> Result<(), KmsError> {
    if material.is_empty() || material.len() > MAX_WRAP_MATERIAL_LEN {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'key' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_WRAP_MATERIAL_LEN}"
        )));
    }
    Ok(())
}

impl Kms {
    /// Wraps `material` under the current version of `key_id` (key id, ARN
    /// or alias).
    ///
    /// # Errors
    /// Validation, NotFound, AccessDenied, Disabled, KMSInvalidState,
    /// InvalidKeyUsage, HSM failures.
    pub async fn wrap_key(
        &self,
        principal: &Principal,
        key_id: &str,
        material: SecretBytes,
    ) -> Result<WrappedKey, KmsError> {
        check_material(&material)?;
        let (entry, key) = self.key_for(principal, key_id, Action::Encrypt, &Vec::new())?;
        let response = self
            .hsm_call(Request::WrapKey { key, material })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::Wrapped { wrapped } = response else {
            return Err(unexpected("WrapKey"));
        };
        Ok(WrappedKey {
            wrapped,
            key_arn: entry.meta.arn.clone(),
        })
    }

    /// Unwraps `wrapped`; the key comes from its header and, when `key_id` is
    /// given, must be that key.
    ///
    /// # Errors
    /// InvalidCiphertext, IncorrectKey, NotFound (for a given key id),
    /// AccessDenied, Disabled, KMSInvalidState, HSM failures.
    pub async fn unwrap_key(
        &self,
        principal: &Principal,
        wrapped: Vec<u8>,
        key_id: Option<&str>,
    ) -> Result<UnwrappedKey, KmsError> {
        if wrapped.len() > MAX_WRAPPED_LEN {
            return Err(invalid_wrapped());
        }
        let header = WrappedHeader::parse(&wrapped).map_err(|_| invalid_wrapped())?;
        let entry = match key_id {
            Some(given) => {
                let entry = self.core.resolve(
                    principal,
                    given,
                    super::resolve::Accept::KeyOrAlias,
                    "Decrypt",
                )?;
                check_symmetric(&entry)?;
                if entry.meta.key_id != header.key_id {
                    return Err(KmsError::IncorrectKey(
                        "The key ID in the request does not identify the KMS key that \
                         wrapped the key"
                            .into(),
                    ));
                }
                entry
            }
            None => {
                let entry = self
                    .core
                    .key_by_id(header.key_id)
                    .map_err(|_| invalid_wrapped())?;
                self.core
                    .authorize(principal, &entry, Action::Decrypt, Extra::NONE)?;
                entry
            }
        };
        check_usable(&entry)?;
        let key = entry
            .key_ref(header.key_version)
            .ok_or_else(invalid_wrapped)?;
        let response = self
            .hsm_call(Request::UnwrapKey { key, wrapped })
            .await
            .map_err(|e| match e {
                crate::hsm_client::HsmError::Wire(
                    protocol::WireError::InvalidCiphertext | protocol::WireError::InvalidToken,
                ) => invalid_wrapped(),
                other => KmsError::from_hsm(other),
            })?;
        let Response::Unwrapped { material } = response else {
            return Err(unexpected("UnwrapKey"));
        };
        Ok(UnwrappedKey {
            material,
            key_arn: entry.meta.arn.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_limits_are_one_to_4096_bytes() {
        assert!(check_material(&SecretBytes::new(vec![])).is_err());
        assert!(check_material(&SecretBytes::new(vec![1])).is_ok());
        assert!(check_material(&SecretBytes::new(vec![1; 4096])).is_ok());
        assert!(matches!(
            check_material(&SecretBytes::new(vec![1; 4097])),
            Err(KmsError::Validation(_))
        ));
    }
}
