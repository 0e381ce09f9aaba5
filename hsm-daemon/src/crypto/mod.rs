//! The daemon's cryptography: key tokens and ciphertext blobs.
//!
//! Tokens are AES-KWP (RFC 5649, `aes-kw`) under the master key of
//! `"HKT1" | spec | version u32 BE | id_len | key id | key material` (spec
//! bytes: 1 SYMMETRIC_DEFAULT, 2-4 RSA, 5-8 ECC, 9-12 HMAC), behind the
//! public `protocol::token` header naming the master-key generation;
//! unwrapping checks the id, version and spec against the request's
//! [`KeyRef`], and [`rewrap_token`] moves the same payload to another
//! master key (which generation's key to use is the keystore's). Blobs follow
//! `protocol::blob`: a per-message key HKDF-SHA256(CMK, salt, "hsm-kms blob
//! v1"), AES-256-GCM with a random nonce, AAD = header || canonical context.
//! These are pure functions over borrowed keys; where keys live (locked
//! memory) and which key a request may use is the keystore's business.
//! Wrapping caller-supplied keys (AES-KWP under a key derived from the CMK)
//! is [`kwp`]'s. Every temporary copy of key material or plaintext is `Zeroizing`.

use crate::error::DaemonError;
use crate::secure_mem::KEY_LEN;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use aes_kw::KekAes256;
use hkdf::Hkdf;
use protocol::blob::{self, BlobHeader, MAX_KEY_ID_LEN, NONCE_LEN, SALT_LEN, TAG_LEN};
use protocol::token::{self, TokenHeader};
use protocol::{InvalidReason, KeyRef, KeySpec, KeyToken};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use zeroize::Zeroizing;

const TOKEN_MAGIC: &[u8; 4] = b"HKT1";
const SPEC_SYMMETRIC_DEFAULT: u8 = 1;
const HKDF_INFO: &[u8] = b"hsm-kms blob v1";

/// Fills `buf` from the OS RNG.
///
/// # Errors
/// [`DaemonError::Rng`] when the OS refuses.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), DaemonError> {
    OsRng.try_fill_bytes(buf).map_err(|_| DaemonError::Rng)
}

/// Fills `buf` with values that must be unpredictable and unique but are
/// not secret (blob salts and nonces), from the thread's CSPRNG (rand's
/// ChaCha12, seeded and reseeded from the OS): no system call per blob.
/// Key material always comes from [`fill_random`].
fn fill_public_random(buf: &mut [u8]) {
    rand::thread_rng().fill_bytes(buf);
}

/// Checks a key id is 1..=64 bytes, as a blob header requires.
pub(crate) fn check_key_id(key_id: &str) -> Result<u8, DaemonError> {
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
        return Err(DaemonError::InvalidRequest(InvalidReason::BadKeyId));
    }
    u8::try_from(key_id.len()).map_err(|_| DaemonError::InvalidRequest(InvalidReason::BadKeyId))
}

/// Token spec bytes after 1 (SYMMETRIC_DEFAULT), in this order from 2.
const SPEC_BYTES: [KeySpec; 11] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EccNistP256,
    KeySpec::EccNistP384,
    KeySpec::EccNistP521,
    KeySpec::EccSecgP256k1,
    KeySpec::Hmac224,
    KeySpec::Hmac256,
    KeySpec::Hmac384,
    KeySpec::Hmac512,
];

fn spec_byte(spec: KeySpec) -> Result<u8, DaemonError> {
    if spec == KeySpec::SymmetricDefault {
        return Ok(SPEC_SYMMETRIC_DEFAULT);
    }
    SPEC_BYTES
        .iter()
        .position(|s| *s == spec)
        .and_then(|i| u8::try_from(i + 2).ok())
        .ok_or(DaemonError::InvalidRequest(
            InvalidReason::UnsupportedKeySpec,
        ))
}

fn spec_of_byte(b: u8) -> Option<KeySpec> {
    if b == SPEC_SYMMETRIC_DEFAULT {
        return Some(KeySpec::SymmetricDefault);
    }
    SPEC_BYTES.get(usize::from(b).checked_sub(2)?).copied()
}

/// The key-wrapping cipher, built from the borrowed master key (no copy).
fn kek(master: &[u8; KEY_LEN]) -> Result<KekAes256, DaemonError> {
    KekAes256::try_from(master.as_slice()).map_err(|_| DaemonError::Crypto("kek"))
}

/// Wraps `material` as the token of `key_id` / `version` / `spec` under
/// `master`, the master key of `generation`.
///
/// # Errors
/// A bad key id or spec, or a wrap failure (internal).
pub(crate) fn wrap_token(
    master: &[u8; KEY_LEN],
    generation: u32,
    key_id: &str,
    version: u32,
    spec: KeySpec,
    material: &[u8],
) -> Result<KeyToken, DaemonError> {
    let id_len = check_key_id(key_id)?;
    let spec = spec_byte(spec)?;
    let len = TOKEN_MAGIC.len() + 1 + 4 + 1 + key_id.len() + material.len();
    let mut payload = Zeroizing::new(Vec::with_capacity(len));
    payload.extend_from_slice(TOKEN_MAGIC);
    payload.push(spec);
    payload.extend_from_slice(&version.to_be_bytes());
    payload.push(id_len);
    payload.extend_from_slice(key_id.as_bytes());
    payload.extend_from_slice(material);
    wrap_payload(master, generation, &payload)
}

fn wrap_payload(
    master: &[u8; KEY_LEN],
    generation: u32,
    payload: &[u8],
) -> Result<KeyToken, DaemonError> {
    let kwp = kek(master)?
        .wrap_with_padding_vec(payload)
        .map_err(|_| DaemonError::Crypto("token wrap"))?;
    Ok(KeyToken(token::write(generation, &kwp)))
}

/// The master-key generation `token`'s header names.
///
/// # Errors
/// [`DaemonError::InvalidToken`] for a malformed header.
pub(crate) fn token_generation(token: &KeyToken) -> Result<u32, DaemonError> {
    TokenHeader::parse(&token.0)
        .map(|h| h.generation)
        .map_err(|_| DaemonError::InvalidToken("bad token header"))
}

/// Unwraps `key.token` under `old` and wraps the same payload under `new`,
/// the master key of `generation`, after checking it is the token of
/// `key.key_id` / `key.version`.
///
/// # Errors
/// [`DaemonError::InvalidToken`] when it does not unwrap or names another key.
pub(crate) fn rewrap_token(
    old: &[u8; KEY_LEN],
    new: &[u8; KEY_LEN],
    generation: u32,
    key: &KeyRef,
) -> Result<KeyToken, DaemonError> {
    let payload = unwrap_payload(old, key)?;
    parse_payload(&payload, key)?;
    wrap_payload(new, generation, &payload)
}

fn unwrap_payload(master: &[u8; KEY_LEN], key: &KeyRef) -> Result<Zeroizing<Vec<u8>>, DaemonError> {
    check_key_id(&key.key_id)?;
    let header = TokenHeader::parse(&key.token.0)
        .map_err(|_| DaemonError::InvalidToken("bad token header"))?;
    Ok(Zeroizing::new(
        kek(master)?
            .unwrap_with_padding_vec(header.kwp)
            .map_err(|_| DaemonError::InvalidToken("does not unwrap"))?,
    ))
}

/// Unwraps `key.token` and copies its key into `out`, after checking it is
/// the token of `key.key_id` / `key.version` / `spec`.
///
/// # Errors
/// [`DaemonError::InvalidToken`] when it does not unwrap or names another key.
#[cfg(test)]
pub(crate) fn unwrap_token(
    master: &[u8; KEY_LEN],
    key: &KeyRef,
    spec: KeySpec,
    out: &mut [u8; KEY_LEN],
) -> Result<(), DaemonError> {
    let (found, material) = unwrap_token_any(master, key)?;
    if found != spec {
        return Err(DaemonError::InvalidToken("spec mismatch"));
    }
    let material: &[u8; KEY_LEN] = material
        .as_slice()
        .try_into()
        .map_err(|_| DaemonError::InvalidToken("bad key length"))?;
    out.copy_from_slice(material);
    Ok(())
}

/// Unwraps `key.token` of any spec, after checking it is the token of
/// `key.key_id` / `key.version`; returns the spec bound inside and the
/// material.
///
/// # Errors
/// [`DaemonError::InvalidToken`] when it does not unwrap or names another key.
pub(crate) fn unwrap_token_any(
    master: &[u8; KEY_LEN],
    key: &KeyRef,
) -> Result<(KeySpec, Zeroizing<Vec<u8>>), DaemonError> {
    let payload = unwrap_payload(master, key)?;
    let (spec, material) = parse_payload(&payload, key)?;
    Ok((spec, Zeroizing::new(material.to_vec())))
}

/// The spec and material of an unwrapped token payload, after checking it
/// names `key.key_id` / `key.version`.
fn parse_payload<'p>(payload: &'p [u8], key: &KeyRef) -> Result<(KeySpec, &'p [u8]), DaemonError> {
    let rest = payload
        .strip_prefix(TOKEN_MAGIC.as_slice())
        .ok_or(DaemonError::InvalidToken("bad magic"))?;
    let (&spec, rest) = rest
        .split_first()
        .ok_or(DaemonError::InvalidToken("truncated"))?;
    let (version, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(DaemonError::InvalidToken("truncated"))?;
    let (&id_len, rest) = rest
        .split_first()
        .ok_or(DaemonError::InvalidToken("truncated"))?;
    let (id, material) = rest
        .split_at_checked(usize::from(id_len))
        .ok_or(DaemonError::InvalidToken("truncated"))?;
    let spec = spec_of_byte(spec).ok_or(DaemonError::InvalidToken("unknown spec"))?;
    if u32::from_be_bytes(*version) != key.version {
        return Err(DaemonError::InvalidToken("version mismatch"));
    }
    if id != key.key_id.as_bytes() {
        return Err(DaemonError::InvalidToken("key id mismatch"));
    }
    if material.is_empty() {
        return Err(DaemonError::InvalidToken("bad key length"));
    }
    Ok((spec, material))
}

/// The canonical encryption context: pairs sorted by key, each key and value
/// as u32 BE length + bytes.
///
/// # Errors
/// [`InvalidReason::BadEncryptionContext`] for an empty or duplicate key.
pub(crate) fn canonical_context(context: &[(String, String)]) -> Result<Vec<u8>, DaemonError> {
    let bad = || DaemonError::InvalidRequest(InvalidReason::BadEncryptionContext);
    let mut pairs: Vec<&(String, String)> = context.iter().collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::new();
    let mut prev: Option<&str> = None;
    for (k, v) in pairs {
        if k.is_empty() || prev == Some(k.as_str()) {
            return Err(bad());
        }
        prev = Some(k);
        for s in [k, v] {
            let len = u32::try_from(s.len()).map_err(|_| bad())?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    Ok(out)
}

fn message_cipher(cmk: &[u8; KEY_LEN], salt: &[u8; SALT_LEN]) -> Result<Aes256Gcm, DaemonError> {
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(Some(salt), cmk)
        .expand(HKDF_INFO, okm.as_mut())
        .map_err(|_| DaemonError::Crypto("hkdf"))?;
    Aes256Gcm::new_from_slice(okm.as_ref()).map_err(|_| DaemonError::Crypto("gcm key"))
}

/// Seals `plaintext` under `cmk` (the key of `key_id` / `version`), bound to
/// `context`.
///
/// # Errors
/// A bad key id or context, or an RNG/cipher failure.
pub(crate) fn seal(
    cmk: &[u8; KEY_LEN],
    key_id: &str,
    version: u32,
    plaintext: &[u8],
    context: &[(String, String)],
) -> Result<Vec<u8>, DaemonError> {
    let ctx = canonical_context(context)?;
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    fill_public_random(&mut salt);
    fill_public_random(&mut nonce);
    let mut out = blob::write_header(key_id, version, &salt, &nonce, plaintext.len() + TAG_LEN)
        .map_err(|_| DaemonError::InvalidRequest(InvalidReason::BadKeyId))?;
    let header_len = out.len();
    let mut aad = Vec::with_capacity(header_len + ctx.len());
    aad.extend_from_slice(&out);
    aad.extend_from_slice(&ctx);
    // Capacity was reserved for body + tag, so the plaintext copy never moves.
    out.extend_from_slice(plaintext);
    let cipher = message_cipher(cmk, &salt)?;
    let body = out
        .get_mut(header_len..)
        .ok_or(DaemonError::Crypto("blob layout"))?;
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, body)
        .map_err(|_| DaemonError::Crypto("gcm seal"))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens `blob`, which must name `key.key_id` / `key.version` and have been
/// sealed under `cmk` with `context`.
///
/// # Errors
/// [`DaemonError::InvalidCiphertext`] for anything wrong with the blob,
/// [`InvalidReason::BadEncryptionContext`] for a malformed context.
pub(crate) fn open(
    cmk: &[u8; KEY_LEN],
    key: &KeyRef,
    blob: &[u8],
    context: &[(String, String)],
) -> Result<Zeroizing<Vec<u8>>, DaemonError> {
    let ctx = canonical_context(context)?;
    let header = BlobHeader::parse(blob).map_err(|_| DaemonError::InvalidCiphertext("header"))?;
    if header.key_id != key.key_id || header.key_version != key.version {
        return Err(DaemonError::InvalidCiphertext("blob is for another key"));
    }
    let (head, rest) = blob
        .split_at_checked(header.header_len)
        .ok_or(DaemonError::InvalidCiphertext("truncated"))?;
    let (body, tag) = rest
        .split_last_chunk::<TAG_LEN>()
        .ok_or(DaemonError::InvalidCiphertext("truncated"))?;
    let mut aad = Vec::with_capacity(head.len() + ctx.len());
    aad.extend_from_slice(head);
    aad.extend_from_slice(&ctx);
    let cipher = message_cipher(cmk, header.salt)?;
    let mut plain = Zeroizing::new(body.to_vec());
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(header.nonce),
            &aad,
            plain.as_mut_slice(),
            Tag::from_slice(tag),
        )
        .map_err(|_| DaemonError::InvalidCiphertext("authentication failed"))?;
    Ok(plain)
}

pub(crate) mod kwp;

#[cfg(test)]
mod tests;
