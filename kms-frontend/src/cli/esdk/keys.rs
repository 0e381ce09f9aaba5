//! Key derivation of the committing suite 0x0478: from the 32-byte data key
//! and the message id, HKDF-SHA512 (salt = message id) gives the data
//! encryption key (info = suite id || "DERIVEKEY") and the commitment key
//! (info = "COMMITKEY"), which the header carries so that a message decrypts
//! under one data key only. Uses aws-lc-rs, the same library as the AEAD.

use super::{FormatError, MESSAGE_ID_LEN, SUITE_COMMIT_KEY};
use aws_lc_rs::hkdf::{HKDF_SHA512, KeyType, Salt};
use zeroize::Zeroizing;

struct Len32;
impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn hkdf(
    data_key: &[u8; 32],
    message_id: &[u8; MESSAGE_ID_LEN],
    info: &[&[u8]],
) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    let prk = Salt::new(HKDF_SHA512, message_id).extract(data_key);
    // expand/fill fail only for an output longer than 255 * 64 bytes.
    if let Ok(okm) = prk.expand(info, Len32) {
        let _ = okm.fill(out.as_mut());
    }
    out
}

/// The AES-256-GCM key of the message body and header authentication.
pub fn derive_encryption_key(
    data_key: &[u8; 32],
    message_id: &[u8; MESSAGE_ID_LEN],
) -> Zeroizing<[u8; 32]> {
    hkdf(
        data_key,
        message_id,
        &[&SUITE_COMMIT_KEY.to_be_bytes(), b"DERIVEKEY"],
    )
}

/// The commitment key stored in the header's algorithm suite data.
pub fn commitment_key(data_key: &[u8; 32], message_id: &[u8; MESSAGE_ID_LEN]) -> [u8; 32] {
    *hkdf(data_key, message_id, &[b"COMMITKEY"])
}

/// Checks `expected` (from the header) against the data key's commitment in
/// constant time.
pub fn check_commitment(
    data_key: &[u8; 32],
    message_id: &[u8; MESSAGE_ID_LEN],
    expected: &[u8; 32],
) -> Result<(), FormatError> {
    use subtle::ConstantTimeEq;
    let actual = commitment_key(data_key, message_id);
    if bool::from(actual.ct_eq(expected)) {
        Ok(())
    } else {
        Err(FormatError::Commitment)
    }
}
