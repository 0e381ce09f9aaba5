//! The audit signing key: an Ed25519 key that signs the head of the
//! frontend's audit hash chain (its digest records), so whoever edits an
//! audit log after the fact cannot re-sign it without this process.
//!
//! The key is not stored anywhere: its 32-byte seed is derived from the
//! master key with HKDF-SHA256 (no salt, info `"hsm-kms audit signing key
//! v1"`) each time it is needed, held in zeroizing memory for the length of
//! one signature and dropped (`ed25519_dalek::SigningKey` zeroizes itself).
//! So every daemon that shares a master key has the same audit key, and no
//! new state file exists. Every signature covers
//! [`protocol::AUDIT_DIGEST_CONTEXT`] followed by the 32-byte digest, so the
//! key signs nothing but audit digests. The wire mapping is `handlers`'.

use crate::error::DaemonError;
use crate::secure_mem::KEY_LEN;
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use protocol::AUDIT_DIGEST_CONTEXT;
use sha2::Sha256;
use zeroize::Zeroizing;

const INFO: &[u8] = b"hsm-kms audit signing key v1";

fn signing_key(master: &[u8; KEY_LEN]) -> Result<SigningKey, DaemonError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, master)
        .expand(INFO, seed.as_mut())
        .map_err(|_| DaemonError::Crypto("hkdf"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs `AUDIT_DIGEST_CONTEXT || digest`; returns the 64-byte signature.
///
/// # Errors
/// [`DaemonError::Crypto`] if the key cannot be derived.
pub(crate) fn sign_digest(
    master: &[u8; KEY_LEN],
    digest: &[u8; 32],
) -> Result<[u8; 64], DaemonError> {
    let key = signing_key(master)?;
    let mut message = Vec::with_capacity(AUDIT_DIGEST_CONTEXT.len() + digest.len());
    message.extend_from_slice(AUDIT_DIGEST_CONTEXT);
    message.extend_from_slice(digest);
    Ok(key.sign(&message).to_bytes())
}

/// The public key that verifies [`sign_digest`]'s signatures.
///
/// # Errors
/// [`DaemonError::Crypto`] if the key cannot be derived.
pub(crate) fn public_key(master: &[u8; KEY_LEN]) -> Result<[u8; 32], DaemonError> {
    Ok(signing_key(master)?.verifying_key().to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn signature_verifies_with_the_public_key_and_only_over_the_context() {
        let master = [7u8; KEY_LEN];
        let digest = [9u8; 32];
        let sig = Signature::from_bytes(&sign_digest(&master, &digest).expect("sign"));
        let public = VerifyingKey::from_bytes(&public_key(&master).expect("pk")).expect("pk");
        let mut message = AUDIT_DIGEST_CONTEXT.to_vec();
        message.extend_from_slice(&digest);
        assert!(public.verify(&message, &sig).is_ok());
        assert!(public.verify(&digest, &sig).is_err());
        message[AUDIT_DIGEST_CONTEXT.len()] ^= 1;
        assert!(public.verify(&message, &sig).is_err());
    }

    #[test]
    fn key_depends_on_the_master_key() {
        let a = public_key(&[1u8; KEY_LEN]).expect("pk");
        let b = public_key(&[2u8; KEY_LEN]).expect("pk");
        assert_ne!(a, b);
        assert_eq!(a, public_key(&[1u8; KEY_LEN]).expect("pk"));
    }
}
