//! The audit signing key: an Ed25519 key that signs the head of the
//! frontend's audit hash chain (its digest records), so whoever edits an
//! audit log after the fact cannot re-sign it without this process.
//!
//! The key is made from a 32-byte seed held in a locked slot. The seed was
//! derived once from the generation-1 master key with HKDF-SHA256 (no salt,
//! info `"hsm-kms audit signing key v1"`, [`seed_from_master`]) when that key
//! was loaded from a format 1 key file, and a master-key rotation carries it
//! unchanged into the format 2 file (`keyfile`): so the audit public key
//! never changes, and digests signed before a rotation verify with the same
//! key as those after. The signing key exists for the length of one
//! signature (`ed25519_dalek::SigningKey` zeroizes itself). Every daemon that
//! shares a master key file has the same audit key. Every signature covers
//! [`protocol::AUDIT_DIGEST_CONTEXT`] followed by the 32-byte digest, so the
//! key signs nothing but audit digests. The wire mapping is `handlers`'.

use crate::error::DaemonError;
use crate::secure_mem::KEY_LEN;
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use protocol::AUDIT_DIGEST_CONTEXT;
use sha2::Sha256;

const INFO: &[u8] = b"hsm-kms audit signing key v1";

/// The audit seed of a format 1 key file: HKDF-SHA256 of its master key.
///
/// # Errors
/// [`DaemonError::Crypto`] if HKDF fails (it cannot for 32 bytes).
pub(crate) fn seed_from_master(
    master: &[u8; KEY_LEN],
    out: &mut [u8; KEY_LEN],
) -> Result<(), DaemonError> {
    Hkdf::<Sha256>::new(None, master)
        .expand(INFO, out)
        .map_err(|_| DaemonError::Crypto("hkdf"))
}

fn signing_key(seed: &[u8; KEY_LEN]) -> SigningKey {
    SigningKey::from_bytes(seed)
}

/// Signs `AUDIT_DIGEST_CONTEXT || digest`; returns the 64-byte signature.
pub(crate) fn sign_digest(seed: &[u8; KEY_LEN], digest: &[u8; 32]) -> [u8; 64] {
    let key = signing_key(seed);
    let mut message = Vec::with_capacity(AUDIT_DIGEST_CONTEXT.len() + digest.len());
    message.extend_from_slice(AUDIT_DIGEST_CONTEXT);
    message.extend_from_slice(digest);
    key.sign(&message).to_bytes()
}

/// The public key that verifies [`sign_digest`]'s signatures.
pub(crate) fn public_key(seed: &[u8; KEY_LEN]) -> [u8; 32] {
    signing_key(seed).verifying_key().to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn signature_verifies_with_the_public_key_and_only_over_the_context() {
        let seed = [7u8; KEY_LEN];
        let digest = [9u8; 32];
        let sig = Signature::from_bytes(&sign_digest(&seed, &digest));
        let public = VerifyingKey::from_bytes(&public_key(&seed)).expect("pk");
        let mut message = AUDIT_DIGEST_CONTEXT.to_vec();
        message.extend_from_slice(&digest);
        assert!(public.verify(&message, &sig).is_ok());
        assert!(public.verify(&digest, &sig).is_err());
        message[AUDIT_DIGEST_CONTEXT.len()] ^= 1;
        assert!(public.verify(&message, &sig).is_err());
    }

    #[test]
    fn seed_depends_on_the_master_key() {
        let (mut a, mut b, mut c) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        seed_from_master(&[1u8; KEY_LEN], &mut a).expect("seed");
        seed_from_master(&[2u8; KEY_LEN], &mut b).expect("seed");
        seed_from_master(&[1u8; KEY_LEN], &mut c).expect("seed");
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert_ne!(public_key(&a), public_key(&b));
    }
}
