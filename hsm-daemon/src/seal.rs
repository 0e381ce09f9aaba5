//! The sealed master key formats: master key material encrypted under a key
//! derived from the operator's secret.
//!
//! ```text
//! format 1: "HKMSSK01" | m_cost KiB u32 BE | t_cost u32 BE | p_cost u32 BE | salt(16)
//!           | nonce(12) | AES-256-GCM(master key, 32) | tag(16)          = 96 bytes
//! format 2: "HKMSSK02" | m | t | p | salt(16) | count u8 (1..=2)
//!           | nonce(12) | AES-256-GCM(body, 32 + 36 count) | tag(16)   = 133 or 169 bytes
//! ```
//!
//! The sealing key is Argon2id(secret, salt, m/t/p) (the `argon2` crate, its
//! memory wiped on drop); the GCM AAD is everything before the nonce, so the
//! stored parameters (and format 2's key count) cannot be altered without
//! failing the tag. What format 2's body holds is `keyfile`'s business; this
//! module seals and opens it. A daemon that rotates its master key keeps the
//! derived sealing key (in a locked slot) and re-seals with the same salt
//! and parameters and a fresh nonce, since the operator secret itself is
//! wiped after start-up. Parameters
//! outside [`KdfParams`]' bounds are refused before any work (a file cannot
//! make the daemon allocate gigabytes). Where the secret comes from is
//! `secret`'s business; files and modes are `keyfile`'s.

use crate::secure_mem::KEY_LEN;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::{Zeroize, Zeroizing};

/// First bytes of a sealed master key file, format 1 (one key).
pub(crate) const MAGIC: &[u8; 8] = b"HKMSSK01";
/// First bytes of a sealed master key file, format 2 (generations).
pub(crate) const MAGIC_V2: &[u8; 8] = b"HKMSSK02";
pub(crate) const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const AAD_LEN: usize = MAGIC.len() + 12 + SALT_LEN;
/// Exact length of a sealed file of format 1.
pub(crate) const SEALED_LEN: usize = AAD_LEN + NONCE_LEN + KEY_LEN + TAG_LEN;
/// Format 2's AAD: format 1's plus the key count.
const AAD_LEN_V2: usize = AAD_LEN + 1;
/// Bytes format 2 adds around its body.
pub(crate) const OVERHEAD_V2: usize = AAD_LEN_V2 + NONCE_LEN + TAG_LEN;
/// Longest sealed file of format 2 (two generations).
pub(crate) const MAX_SEALED_V2: usize = OVERHEAD_V2 + crate::keyfile::MAX_BODY_LEN;

/// What a sealed file says about its sealing key (not secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealParams {
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
}

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
    #[error("not a sealed master key file (bad magic, expected HKMSSK01 or HKMSSK02)")]
    Magic,
    #[error("sealed master key file names {0} keys (expected 1 or 2)")]
    Count(u8),
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

/// Derives the sealing key: Argon2id(secret, salt, params), into `out`.
///
/// # Errors
/// Bad parameters or a KDF failure.
pub(crate) fn derive_kek(
    secret: &[u8],
    params: SealParams,
    out: &mut [u8; KEY_LEN],
) -> Result<(), SealError> {
    let kdf = params.kdf.check()?;
    let p =
        Params::new(kdf.m_kib, kdf.t, kdf.p, Some(KEY_LEN)).map_err(|_| SealError::Params(kdf))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(secret, &params.salt, out)
        .map_err(|_| SealError::Kdf)
}

fn kek_cipher(kek: &[u8; KEY_LEN]) -> Result<Aes256Gcm, SealError> {
    Aes256Gcm::new_from_slice(kek).map_err(|_| SealError::Kdf)
}

fn sealing_cipher(secret: &[u8], salt: &[u8], params: KdfParams) -> Result<Aes256Gcm, SealError> {
    let mut kek = Zeroizing::new([0u8; KEY_LEN]);
    let mut s = [0u8; SALT_LEN];
    s.copy_from_slice(salt.get(..SALT_LEN).ok_or(SealError::Kdf)?);
    derive_kek(
        secret,
        SealParams {
            kdf: params,
            salt: s,
        },
        &mut kek,
    )?;
    kek_cipher(&kek)
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

/// The parameters and salt a sealed file (either format) names, after
/// checking its length and magic.
///
/// # Errors
/// [`SealError::Length`], [`SealError::Magic`], [`SealError::Count`],
/// [`SealError::Params`].
pub(crate) fn seal_params(file: &[u8]) -> Result<SealParams, SealError> {
    match file.get(..8) {
        Some(m) if m == MAGIC.as_slice() => {
            params_of(file)?;
        }
        Some(m) if m == MAGIC_V2.as_slice() => {
            v2_count(file)?;
        }
        _ => return Err(SealError::Magic),
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&file[20..AAD_LEN]);
    Ok(SealParams {
        kdf: kdf_of(file).check()?,
        salt,
    })
}

fn kdf_of(file: &[u8]) -> KdfParams {
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
}

/// Format 2's key count, after checking the magic and the length it implies.
fn v2_count(file: &[u8]) -> Result<u8, SealError> {
    if file.get(..8) != Some(MAGIC_V2.as_slice()) {
        return Err(SealError::Magic);
    }
    let count = *file.get(AAD_LEN).ok_or(SealError::Length(file.len()))?;
    if !(1..=2).contains(&count) {
        return Err(SealError::Count(count));
    }
    if file.len() != OVERHEAD_V2 + crate::keyfile::body_len(count) {
        return Err(SealError::Length(file.len()));
    }
    kdf_of(file).check()?;
    Ok(count)
}

/// Seals a format 2 file: `body` (the keys of `count` generations, laid out
/// by `keyfile`) under `kek`, with a fresh nonce.
///
/// # Errors
/// A wrong body length, bad parameters, or an RNG/cipher failure.
pub(crate) fn seal_v2(
    kek: &[u8; KEY_LEN],
    params: SealParams,
    count: u8,
    body: &[u8],
) -> Result<Vec<u8>, SealError> {
    let kdf = params.kdf.check()?;
    if body.len() != crate::keyfile::body_len(count) {
        return Err(SealError::Count(count));
    }
    // Built on the (locked) stack: the body is plaintext until sealed.
    let mut buf = Zeroizing::new([0u8; MAX_SEALED_V2]);
    let len = OVERHEAD_V2 + body.len();
    let out = buf.get_mut(..len).ok_or(SealError::Count(count))?;
    let (aad, rest) = out.split_at_mut(AAD_LEN_V2);
    aad[..8].copy_from_slice(MAGIC_V2);
    aad[8..12].copy_from_slice(&kdf.m_kib.to_be_bytes());
    aad[12..16].copy_from_slice(&kdf.t.to_be_bytes());
    aad[16..20].copy_from_slice(&kdf.p.to_be_bytes());
    aad[20..AAD_LEN].copy_from_slice(&params.salt);
    aad[AAD_LEN] = count;
    let (nonce, rest) = rest.split_at_mut(NONCE_LEN);
    crate::crypto::fill_random(nonce).map_err(|_| SealError::Rng)?;
    let (sealed, tag) = rest.split_at_mut(body.len());
    sealed.copy_from_slice(body);
    let t = kek_cipher(kek)?
        .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, sealed)
        .map_err(|_| SealError::Cipher)?;
    tag.copy_from_slice(&t);
    Ok(out.to_vec())
}

/// Opens a sealed file of either format with the sealing key `kek` into
/// `body` (format 1: the 32-byte key; format 2: `keyfile`'s body); returns
/// format 2's key count, or `None` for format 1. `body` is zeroed on error.
///
/// # Errors
/// [`SealError::WrongSecret`] when the tag does not verify (wrong secret or
/// altered file); shape errors as in [`seal_params`].
pub(crate) fn open_with(
    kek: &[u8; KEY_LEN],
    file: &[u8],
    body: &mut [u8],
) -> Result<Option<u8>, SealError> {
    seal_params(file)?;
    let (count, aad_len) = if file.get(..8) == Some(MAGIC_V2.as_slice()) {
        (Some(v2_count(file)?), AAD_LEN_V2)
    } else {
        (None, AAD_LEN)
    };
    let (aad, rest) = file.split_at(aad_len);
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (sealed, tag) = rest.split_at(rest.len() - TAG_LEN);
    let out = body
        .get_mut(..sealed.len())
        .ok_or(SealError::Length(file.len()))?;
    out.copy_from_slice(sealed);
    let opened = kek_cipher(kek)?.decrypt_in_place_detached(
        Nonce::from_slice(nonce),
        aad,
        out,
        Tag::from_slice(tag),
    );
    if opened.is_err() {
        body.zeroize();
        return Err(SealError::WrongSecret);
    }
    Ok(count)
}

/// The parameters a format 1 sealed file names, after checking its length
/// and magic.
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
#[cfg(test)] // reason: the daemon opens both formats through `open_with`
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
