//! From a wire [`Request`] to a keystore [`Command`], and from its [`Reply`]
//! (or error) back to a wire [`Response`] / [`WireError`].
//!
//! Sizes are validated here, before anything reaches the keystore: plaintext
//! 1..=4096 bytes, wrapped key material 1..=4096, data keys and random 1..=1024. Each request is logged with
//! its frame id, the frontend's request id, operation, key id and outcome
//! (refusals at info, failures at error, successes at debug), never with any
//! payload. Socket and
//! framing concerns are `server`'s; the crypto is the keystore's.

use crate::crypto;
use crate::error::DaemonError;
use crate::keystore::{Command, KeystoreHandle, Reply};
use protocol::{
    DataKeySpec, InvalidReason, MAX_MESSAGE_LEN, MAX_PLAINTEXT_LEN, MAX_RANDOM_LEN, Request,
    Response, SecretBytes, WireError,
};
use uuid::Uuid;

/// Serves one request, synchronously (the keystore runs on this thread);
/// every failure becomes a [`WireError`]. `generated` is the RSA key made
/// for it on the keygen thread, or why it could not be (see `keygen`).
pub(crate) fn handle(
    keystore: &KeystoreHandle,
    id: u64,
    request_id: Uuid,
    request: Request,
    generated: Option<Result<SecretBytes, DaemonError>>,
) -> Result<Response, WireError> {
    let op = request.name();
    let key_id = key_id_of(&request).map(str::to_owned);
    let result = generated
        .transpose()
        .and_then(|generated| to_command(request, generated))
        .and_then(|command| keystore.call(command).map(to_response));
    let key_id = key_id.as_deref().unwrap_or("-");
    match &result {
        Ok(_) => tracing::debug!(id, %request_id, op, key_id, "ok"),
        Err(
            e @ (DaemonError::NoSlot
            | DaemonError::Rng
            | DaemonError::Crypto(_)
            | DaemonError::KeyFile(_)),
        ) => {
            tracing::error!(id, %request_id, op, key_id, error = %e, "failed");
        }
        Err(e) => tracing::info!(id, %request_id, op, key_id, error = %e, "refused"),
    }
    result.map_err(|e| e.to_wire())
}

fn key_id_of(request: &Request) -> Option<&str> {
    match request {
        Request::Status
        | Request::GenerateRandom { .. }
        | Request::SignAuditDigest { .. }
        | Request::AuditPublicKey
        | Request::BeginMasterKeyRotation
        | Request::CompleteMasterKeyRotation { .. }
        | Request::MasterKeyStatus => None,
        Request::CreateKey { key_id, .. } => Some(key_id),
        Request::Encrypt { key, .. }
        | Request::Decrypt { key, .. }
        | Request::GenerateDataKey { key, .. } => Some(&key.key_id),
        Request::ReEncrypt { source, .. } => Some(&source.key_id),
        Request::EvictKey { key_id } | Request::CachedVersions { key_id } => Some(key_id),
        Request::GetPublicKey { key }
        | Request::Sign { key, .. }
        | Request::Verify { key, .. }
        | Request::AsymmetricEncrypt { key, .. }
        | Request::AsymmetricDecrypt { key, .. }
        | Request::GenerateMac { key, .. }
        | Request::VerifyMac { key, .. }
        | Request::GenerateDataKeyPair { key, .. }
        | Request::WrapKey { key, .. }
        | Request::UnwrapKey { key, .. }
        | Request::RewrapToken { key } => Some(&key.key_id),
    }
}

fn invalid(reason: InvalidReason) -> DaemonError {
    DaemonError::InvalidRequest(reason)
}

fn checked_len(n: usize) -> Result<usize, DaemonError> {
    if (1..=usize::from(MAX_RANDOM_LEN)).contains(&n) {
        Ok(n)
    } else {
        Err(invalid(InvalidReason::LengthOutOfRange))
    }
}

/// A message (or RSA plaintext) of 1..=4096 bytes.
fn checked_message(m: SecretBytes) -> Result<SecretBytes, DaemonError> {
    if m.is_empty() {
        return Err(invalid(InvalidReason::PlaintextEmpty));
    }
    if m.len() > MAX_MESSAGE_LEN {
        return Err(invalid(InvalidReason::MessageTooLarge));
    }
    Ok(m)
}

/// Validates sizes and builds the keystore command, with the key already
/// `generated` for it if any.
pub(crate) fn to_command(
    request: Request,
    generated: Option<SecretBytes>,
) -> Result<Command, DaemonError> {
    Ok(match request {
        Request::Status => Command::Status,
        Request::CreateKey {
            key_id,
            version,
            spec,
        } => Command::CreateKey {
            key_id,
            version,
            spec,
            generated,
        },
        Request::Encrypt {
            key,
            plaintext,
            context,
        } => {
            if plaintext.is_empty() {
                return Err(invalid(InvalidReason::PlaintextEmpty));
            }
            if plaintext.len() > MAX_PLAINTEXT_LEN {
                return Err(invalid(InvalidReason::PlaintextTooLarge));
            }
            Command::Encrypt {
                key,
                plaintext,
                context,
            }
        }
        Request::Decrypt { key, blob, context } => Command::Decrypt { key, blob, context },
        Request::GenerateDataKey {
            key,
            spec,
            context,
            with_plaintext,
        } => {
            let len = match spec {
                DataKeySpec::Bytes(n) => checked_len(usize::from(n))?,
                other => other.byte_len(),
            };
            Command::GenerateDataKey {
                key,
                len,
                context,
                with_plaintext,
            }
        }
        Request::ReEncrypt {
            source,
            blob,
            source_context,
            destination,
            destination_context,
        } => Command::ReEncrypt {
            source,
            blob,
            source_context,
            destination,
            destination_context,
        },
        Request::GenerateRandom { len } => Command::GenerateRandom {
            len: checked_len(usize::from(len))?,
        },
        Request::WrapKey { key, material } => {
            crypto::kwp::check_material_len(material.len())?;
            Command::WrapKey { key, material }
        }
        Request::UnwrapKey { key, wrapped } => Command::UnwrapKey { key, wrapped },
        Request::EvictKey { key_id } => Command::EvictKey { key_id },
        Request::CachedVersions { key_id } => Command::CachedVersions { key_id },
        Request::GetPublicKey { key } => Command::GetPublicKey { key },
        Request::Sign {
            key,
            message,
            message_type,
            algorithm,
        } => Command::Sign {
            key,
            message: checked_message(message)?,
            message_type,
            algorithm,
        },
        Request::Verify {
            key,
            message,
            message_type,
            algorithm,
            signature,
        } => Command::Verify {
            key,
            message: checked_message(message)?,
            message_type,
            algorithm,
            signature,
        },
        Request::AsymmetricEncrypt {
            key,
            plaintext,
            algorithm,
        } => Command::AsymmetricEncrypt {
            key,
            plaintext: checked_message(plaintext)?,
            algorithm,
        },
        Request::AsymmetricDecrypt {
            key,
            ciphertext,
            algorithm,
        } => Command::AsymmetricDecrypt {
            key,
            ciphertext,
            algorithm,
        },
        Request::GenerateMac {
            key,
            message,
            algorithm,
        } => Command::GenerateMac {
            key,
            message: checked_message(message)?,
            algorithm,
        },
        Request::VerifyMac {
            key,
            message,
            algorithm,
            mac,
        } => Command::VerifyMac {
            key,
            message: checked_message(message)?,
            algorithm,
            mac,
        },
        Request::GenerateDataKeyPair {
            key,
            pair_spec,
            context,
            with_plaintext,
        } => Command::GenerateDataKeyPair {
            key,
            pair_spec,
            context,
            with_plaintext,
            generated,
        },
        Request::SignAuditDigest { digest } => Command::SignAuditDigest { digest },
        Request::AuditPublicKey => Command::AuditPublicKey,
        Request::BeginMasterKeyRotation => Command::BeginMasterKeyRotation,
        Request::RewrapToken { key } => Command::RewrapToken { key },
        Request::CompleteMasterKeyRotation { generation } => {
            Command::CompleteMasterKeyRotation { generation }
        }
        Request::MasterKeyStatus => Command::MasterKeyStatus,
    })
}

/// The wire shape of a keystore reply.
pub(crate) fn to_response(reply: Reply) -> Response {
    match reply {
        Reply::Status(s) => Response::Status(s),
        Reply::Token(token) => Response::KeyCreated { token },
        Reply::Blob(blob) => Response::Ciphertext { blob },
        Reply::Plaintext(plaintext) => Response::Plaintext { plaintext },
        Reply::DataKey { plaintext, blob } => Response::DataKey { plaintext, blob },
        Reply::Random(bytes) => Response::Random { bytes },
        Reply::Wrapped(wrapped) => Response::Wrapped { wrapped },
        Reply::Unwrapped(material) => Response::Unwrapped { material },
        Reply::Evicted(versions) => Response::Evicted { versions },
        Reply::CachedVersions(versions) => Response::CachedVersions { versions },
        Reply::PublicKey(der) => Response::PublicKey { der },
        Reply::Signature(signature) => Response::Signature { signature },
        Reply::Verified(valid) => Response::Verified { valid },
        Reply::Mac(mac) => Response::Mac { mac },
        Reply::DataKeyPair {
            public_key,
            private_plaintext,
            private_blob,
        } => Response::DataKeyPair {
            public_key,
            private_plaintext,
            private_blob,
        },
        Reply::AuditSignature(signature) => Response::AuditSignature {
            signature: signature.to_vec(),
        },
        Reply::AuditPublicKey(public_key) => Response::AuditPublicKey { public_key },
        Reply::MasterKeys { current, previous } => Response::MasterKeys { current, previous },
        Reply::Rewrapped(token) => Response::Rewrapped { token },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{KeyRef, KeyToken};

    fn key() -> KeyRef {
        KeyRef {
            key_id: "k".into(),
            version: 1,
            token: KeyToken(vec![]),
        }
    }

    fn reason(r: Request) -> Option<InvalidReason> {
        match to_command(r, None) {
            Err(DaemonError::InvalidRequest(reason)) => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn validates_sizes() {
        let enc = |n: usize| Request::Encrypt {
            key: key(),
            plaintext: SecretBytes::new(vec![1; n]),
            context: vec![],
        };
        assert_eq!(reason(enc(0)), Some(InvalidReason::PlaintextEmpty));
        assert_eq!(reason(enc(1)), None);
        assert_eq!(reason(enc(4096)), None);
        assert_eq!(reason(enc(4097)), Some(InvalidReason::PlaintextTooLarge));
        let rnd = |len| Request::GenerateRandom { len };
        assert_eq!(reason(rnd(0)), Some(InvalidReason::LengthOutOfRange));
        assert_eq!(reason(rnd(1024)), None);
        assert_eq!(reason(rnd(1025)), Some(InvalidReason::LengthOutOfRange));
        let gdk = |spec| Request::GenerateDataKey {
            key: key(),
            spec,
            context: vec![],
            with_plaintext: true,
        };
        assert_eq!(
            reason(gdk(DataKeySpec::Bytes(0))),
            Some(InvalidReason::LengthOutOfRange)
        );
        assert_eq!(
            reason(gdk(DataKeySpec::Bytes(1025))),
            Some(InvalidReason::LengthOutOfRange)
        );
        assert_eq!(reason(gdk(DataKeySpec::Bytes(1024))), None);
        assert!(matches!(
            to_command(gdk(DataKeySpec::Aes128), None),
            Ok(Command::GenerateDataKey { len: 16, .. })
        ));
        assert!(matches!(
            to_command(gdk(DataKeySpec::Aes256), None),
            Ok(Command::GenerateDataKey { len: 32, .. })
        ));
        let wrap = |n: usize| Request::WrapKey {
            key: key(),
            material: SecretBytes::new(vec![1; n]),
        };
        assert_eq!(reason(wrap(0)), Some(InvalidReason::PlaintextEmpty));
        assert_eq!(reason(wrap(1)), None);
        assert_eq!(reason(wrap(4096)), None);
        assert_eq!(reason(wrap(4097)), Some(InvalidReason::PlaintextTooLarge));
    }
}
