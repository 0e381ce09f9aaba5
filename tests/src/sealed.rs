//! An independent reader of the sealed master key formats (ARCHITECTURE.md),
//! so tests can recover the master keys the way only the operator could:
//! Argon2id with the stored parameters, then AES-256-GCM with the header as
//! AAD. Format 1 holds one key; format 2 (written by a master-key rotation)
//! the audit seed and one or two generations.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};

/// Length of a sealed master key file.
pub const SEALED_LEN: usize = 96;

/// The master key in `file`, sealed under `secret`. Panics if it does not open.
pub fn unseal(secret: &[u8], file: &[u8]) -> [u8; 32] {
    assert_eq!(file.len(), SEALED_LEN, "sealed master.key length");
    assert_eq!(&file[..8], b"HKMSSK01", "sealed master.key magic");
    let word = |at: usize| u32::from_be_bytes(file[at..at + 4].try_into().expect("4 bytes"));
    let params = Params::new(word(8), word(12), word(16), Some(32)).expect("argon2 params");
    let mut kek = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(secret, &file[20..36], &mut kek)
        .expect("argon2");
    let cipher = Aes256Gcm::new_from_slice(&kek).expect("key");
    let plain = cipher
        .decrypt(
            Nonce::from_slice(&file[36..48]),
            Payload {
                msg: &file[48..],
                aad: &file[..36],
            },
        )
        .expect("sealed master key opens with the operator secret");
    plain.try_into().expect("32-byte master key")
}

/// What a sealed master key file of either format holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKeys {
    /// Format 2's audit seed (`None` for format 1, where it is derived).
    pub audit_seed: Option<[u8; 32]>,
    /// (generation, key), current first.
    pub keys: Vec<(u32, [u8; 32])>,
}

/// The keys in `file` (format 1 or 2), sealed under `secret`. Panics if it
/// does not open.
pub fn unseal_keys(secret: &[u8], file: &[u8]) -> SealedKeys {
    if file.starts_with(b"HKMSSK01") {
        return SealedKeys {
            audit_seed: None,
            keys: vec![(1, unseal(secret, file))],
        };
    }
    assert_eq!(&file[..8], b"HKMSSK02", "sealed master.key magic");
    let count = usize::from(file[36]);
    assert!((1..=2).contains(&count), "key count {count}");
    assert_eq!(
        file.len(),
        37 + 12 + 32 + 36 * count + 16,
        "format 2 length"
    );
    let word = |at: usize| u32::from_be_bytes(file[at..at + 4].try_into().expect("4 bytes"));
    let params = Params::new(word(8), word(12), word(16), Some(32)).expect("argon2 params");
    let mut kek = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(secret, &file[20..36], &mut kek)
        .expect("argon2");
    let body = Aes256Gcm::new_from_slice(&kek)
        .expect("key")
        .decrypt(
            Nonce::from_slice(&file[37..49]),
            Payload {
                msg: &file[49..],
                aad: &file[..37],
            },
        )
        .expect("sealed master key file opens with the operator secret");
    let keys = body[32..]
        .chunks_exact(36)
        .map(|e| {
            (
                u32::from_be_bytes(e[..4].try_into().expect("4 bytes")),
                e[4..].try_into().expect("32 bytes"),
            )
        })
        .collect();
    SealedKeys {
        audit_seed: Some(body[..32].try_into().expect("32 bytes")),
        keys,
    }
}
