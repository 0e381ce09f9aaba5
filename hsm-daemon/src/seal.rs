//! The sealed master key format: the master key encrypted under a key derived
//! from the operator's secret.
//!
//! ```text
//! "HKMSSK01" | m_cost KiB u32 BE | t_cost u32 BE | p_cost u32 BE | salt(16)
//!            | nonce(12) | AES-256-GCM(master key, 32) | tag(16)      = 96 bytes
//! ```
//!
//! The sealing key is Argon2id(secret, salt, m/t/p) (the `argon2` crate, its
//! memory wiped on drop); the GCM AAD is everything before the nonce, so the
//! stored parameters cannot be altered without failing the tag. Parameters
//! outside [`KdfParams`]' bounds are refused before any work (a file cannot
//! make the daemon allocate gigabytes). Where the secret comes from is
//! `secret`'s business; files and modes are `keyfile`'s.

use crate::secure_mem::KEY_LEN;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::{Zeroize, Zeroizing};

/// First bytes of a sealed master key file.
pub(crate) const MAGIC: &[u8; 8] = b"HKMSSK01";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const AAD_LEN: usize = MAGIC.len() + 12 + SALT_LEN;
/// Exact length of a sealed file.
pub(crate) const SEALED_LEN: usize = AAD_LEN + NONCE_LEN + KEY_LEN + TAG_LEN;

/// Argon2id cost parameters, stored in the sealed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KdfParams {
    /// Memory in KiB.
    pub(crate) m_kib: u32,
    /// Iterations.
    pub(crate) t: u32,
    /// Lanes.
    pub(crate) p: u32,
}

impl KdfParams {
    /// The default for `init`: 64 MiB, 3 passes, 1 lane (RFC 9106's second
    /// recommended option).
    pub(crate) const DEFAULT: Self = Self {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
    const MIN_M_KIB: u32 = 8 * 1024;
    const MAX_M_KIB: u32 = 4 * 1024 * 1024;
    const MAX_T: u32 = 64;
    const MAX_P: u32 = 16;

    /// Refuses parameters too weak to mean anything or too costly to run.
    ///
    /// # Errors
    /// [`SealError::Params`] naming the bounds.
    pub(crate) fn check(self) -> Result<Self, SealError> {
        let ok = (Self::MIN_M_KIB..=Self::MAX_M_KIB).contains(&self.m_kib)
            && (1..=Self::MAX_T).contains(&self.t)
            && (1..=Self::MAX_P).contains(&self.p)
            && self.m_kib >= 8 * self.p;
        if ok {
            Ok(self)
        } else {
            Err(SealError::Params(self))
        }
    }
}

/// Why sealing or unsealing failed. No variant carries secret bytes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    #[error(
        "wrong size for a sealed master key file ({0} bytes, expected {SEALED_LEN}): truncated or not a sealed file"
    )]
    Length(usize),
    #[error("not a sealed master key file (bad magic, expected HKMSSK01)")]
    Magic,
    #[error(
        "Argon2id parameters out of range (m={} KiB, t={}, p={}; allowed m 8 MiB..4 GiB, t 1..64, p 1..16)",
        .0.m_kib, .0.t, .0.p
    )]
    Params(KdfParams),
    #[error("the operator secret is wrong, or the sealed file was altered")]
    WrongSecret,
    #[error("key derivation failed")]
    Kdf,
    #[error("encryption failed")]
    Cipher,
    #[error("OS RNG failed")]
    Rng,
}

fn sealing_cipher(secret: &[u8], salt: &[u8], params: KdfParams) -> Result<Aes256Gcm, SealError> {
    let p = Params::new(params.m_kib, params.t, params.p, Some(KEY_LEN))
        .map_err(|_| SealError::Params(params))?;
    let mut kek = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(secret, salt, kek.as_mut())
        .map_err(|_| SealError::Kdf)?;
    Aes256Gcm::new_from_slice(kek.as_ref()).map_err(|_| SealError::Kdf)
}

/// Seals `master` under `secret` with fresh salt and nonce.
///
/// # Errors
/// Bad parameters, or a KDF, RNG or cipher failure.
pub(crate) fn seal(
    secret: &[u8],
    params: KdfParams,
    master: &[u8; KEY_LEN],
) -> Result<Zeroizing<[u8; SEALED_LEN]>, SealError> {
    let params = params.check()?;
    let mut out = Zeroizing::new([0u8; SEALED_LEN]);
    let (aad, rest) = out.split_at_mut(AAD_LEN);
    aad[..8].copy_from_slice(MAGIC);
    aad[8..12].copy_from_slice(&params.m_kib.to_be_bytes());
    aad[12..16].copy_from_slice(&params.t.to_be_bytes());
    aad[16..20].copy_from_slice(&params.p.to_be_bytes());
    crate::crypto::fill_random(&mut aad[20..]).map_err(|_| SealError::Rng)?;
    let (nonce, rest) = rest.split_at_mut(NONCE_LEN);
    crate::crypto::fill_random(nonce).map_err(|_| SealError::Rng)?;
    let (body, tag) = rest.split_at_mut(KEY_LEN);
    body.copy_from_slice(master);
    let cipher = sealing_cipher(secret, &aad[20..], params)?;
    let t = cipher
        .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, body)
        .map_err(|_| SealError::Cipher)?;
    tag.copy_from_slice(&t);
    Ok(out)
}

/// The parameters a sealed file names, after checking its length and magic.
///
/// # Errors
/// [`SealError::Length`], [`SealError::Magic`], [`SealError::Params`].
pub(crate) fn params_of(file: &[u8]) -> Result<KdfParams, SealError> {
    if file.len() != SEALED_LEN {
        return Err(SealError::Length(file.len()));
    }
    if file.get(..8) != Some(MAGIC.as_slice()) {
        return Err(SealError::Magic);
    }
    let word = |at: usize| -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&file[at..at + 4]);
        u32::from_be_bytes(b)
    };
    KdfParams {
        m_kib: word(8),
        t: word(12),
        p: word(16),
    }
    .check()
}

/// Unseals `file` with `secret` straight into `out` (a locked slot).
///
/// # Errors
/// [`SealError::WrongSecret`] when the tag does not verify; shape errors as
/// in [`params_of`]. `out` is left zeroed on any error.
pub(crate) fn unseal(secret: &[u8], file: &[u8], out: &mut [u8; KEY_LEN]) -> Result<(), SealError> {
    let params = params_of(file)?;
    let (aad, rest) = file.split_at(AAD_LEN);
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(KEY_LEN);
    let cipher = sealing_cipher(secret, &aad[20..], params)?;
    out.copy_from_slice(body);
    let opened =
        cipher.decrypt_in_place_detached(Nonce::from_slice(nonce), aad, out, Tag::from_slice(tag));
    if opened.is_err() {
        out.zeroize();
        return Err(SealError::WrongSecret);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_kib: 8 * 1024,
        t: 1,
        p: 1,
    };

    #[test]
    fn seal_unseal_round_trip_and_wrong_secret_refused() {
        let master = [0x42u8; KEY_LEN];
        let sealed = seal(b"correct horse", FAST, &master).expect("seal");
        assert!(
            !sealed.windows(KEY_LEN).any(|w| w == master),
            "key in the clear"
        );
        assert_eq!(params_of(sealed.as_ref()).expect("params"), FAST);
        let mut out = [0u8; KEY_LEN];
        unseal(b"correct horse", sealed.as_ref(), &mut out).expect("unseal");
        assert_eq!(out, master);
        let mut out = [0u8; KEY_LEN];
        assert!(matches!(
            unseal(b"wrong horse", sealed.as_ref(), &mut out),
            Err(SealError::WrongSecret)
        ));
        assert_eq!(out, [0u8; KEY_LEN], "nothing left behind");
    }

    #[test]
    fn altered_parameters_truncation_and_magic_refused() {
        let sealed = seal(b"s3cret", FAST, &[7u8; KEY_LEN]).expect("seal");
        let mut out = [0u8; KEY_LEN];
        let mut bumped = *sealed;
        bumped[15] ^= 1; // t_cost 1 -> 0: out of range
        assert!(matches!(
            unseal(b"s3cret", &bumped, &mut out),
            Err(SealError::Params(_))
        ));
        let mut bumped = *sealed;
        bumped[19] = 2; // p 1 -> 2: in range, but authenticated
        assert!(matches!(
            unseal(b"s3cret", &bumped, &mut out),
            Err(SealError::WrongSecret)
        ));
        assert!(matches!(
            unseal(b"s3cret", &sealed[..SEALED_LEN - 1], &mut out),
            Err(SealError::Length(95))
        ));
        let mut magic = *sealed;
        magic[0] = b'X';
        assert!(matches!(
            unseal(b"s3cret", &magic, &mut out),
            Err(SealError::Magic)
        ));
        let huge = KdfParams {
            m_kib: u32::MAX,
            ..FAST
        };
        assert!(seal(b"s3cret", huge, &[0; KEY_LEN]).is_err());
    }
}
