//! An independent reader of the sealed master key format (ARCHITECTURE.md),
//! so tests can recover the master key the way only the operator could:
//! Argon2id with the stored parameters, then AES-256-GCM with the header as
//! AAD.

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
