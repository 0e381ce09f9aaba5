//! Wrapping caller-supplied key material (WrapKey / UnwrapKey).
//!
//! The wrapping key is HKDF-SHA256(CMK, no salt, info "hsm-kms wrap v1"),
//! never the CMK itself: the CMK already keys AES-GCM blobs (through its own
//! HKDF label), and deriving a separate key per purpose keeps the two
//! constructions from ever sharing an AES key. The material is wrapped with
//! AES-KWP (RFC 5649, the `aes-kw` crate) and prefixed with the
//! `protocol::wrapped` header naming the key id and version. KWP is
//! deterministic: the same material under the same key version wraps to the
//! same bytes, which reveals equality of wrapped keys and nothing else.
//! [`kwp_wrap`] / [`kwp_unwrap`] are the bare primitive, tested against
//! RFC 5649's vectors, and are what [`wrap_key`] / [`unwrap_key`] call.

use super::check_key_id;
use crate::error::DaemonError;
use crate::secure_mem::KEY_LEN;
use aes_kw::{KekAes128, KekAes192, KekAes256};
use hkdf::Hkdf;
use protocol::wrapped::{self, WrappedHeader};
use protocol::{InvalidReason, KeyRef, MAX_WRAP_MATERIAL_LEN};
use sha2::Sha256;
use zeroize::Zeroizing;

const WRAP_INFO: &[u8] = b"hsm-kms wrap v1";

fn kek_error(_: aes_kw::Error) -> DaemonError {
    DaemonError::Crypto("kwp key")
}

/// AES-KWP wrap of `data` under `kek` (16, 24 or 32 bytes).
///
/// # Errors
/// [`DaemonError::Crypto`] for a KEK of another length or a wrap failure.
pub(crate) fn kwp_wrap(kek: &[u8], data: &[u8]) -> Result<Vec<u8>, DaemonError> {
    let out = match kek.len() {
        16 => KekAes128::try_from(kek)
            .map_err(kek_error)?
            .wrap_with_padding_vec(data),
        24 => KekAes192::try_from(kek)
            .map_err(kek_error)?
            .wrap_with_padding_vec(data),
        32 => KekAes256::try_from(kek)
            .map_err(kek_error)?
            .wrap_with_padding_vec(data),
        _ => return Err(DaemonError::Crypto("kwp key length")),
    };
    out.map_err(|_| DaemonError::Crypto("kwp wrap"))
}

/// AES-KWP unwrap of `data` under `kek` (16, 24 or 32 bytes).
///
/// # Errors
/// [`DaemonError::InvalidCiphertext`] when the integrity check fails or the
/// length is wrong; [`DaemonError::Crypto`] for a KEK of another length.
pub(crate) fn kwp_unwrap(kek: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, DaemonError> {
    let out = match kek.len() {
        16 => KekAes128::try_from(kek)
            .map_err(kek_error)?
            .unwrap_with_padding_vec(data),
        24 => KekAes192::try_from(kek)
            .map_err(kek_error)?
            .unwrap_with_padding_vec(data),
        32 => KekAes256::try_from(kek)
            .map_err(kek_error)?
            .unwrap_with_padding_vec(data),
        _ => return Err(DaemonError::Crypto("kwp key length")),
    };
    out.map(Zeroizing::new)
        .map_err(|_| DaemonError::InvalidCiphertext("wrapped key does not unwrap"))
}

fn wrapping_key(cmk: &[u8; KEY_LEN]) -> Result<Zeroizing<[u8; KEY_LEN]>, DaemonError> {
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(None, cmk)
        .expand(WRAP_INFO, okm.as_mut())
        .map_err(|_| DaemonError::Crypto("hkdf"))?;
    Ok(okm)
}

/// Checks material is 1..=4096 bytes.
///
/// # Errors
/// [`InvalidReason::PlaintextEmpty`] / [`InvalidReason::PlaintextTooLarge`].
pub(crate) fn check_material_len(len: usize) -> Result<(), DaemonError> {
    if len == 0 {
        return Err(DaemonError::InvalidRequest(InvalidReason::PlaintextEmpty));
    }
    if len > MAX_WRAP_MATERIAL_LEN {
        return Err(DaemonError::InvalidRequest(
            InvalidReason::PlaintextTooLarge,
        ));
    }
    Ok(())
}

/// Wraps `material` under `cmk`, the key of `key_id` / `version`.
///
/// # Errors
/// A bad length or key id, or a wrap failure (internal).
pub(crate) fn wrap_key(
    cmk: &[u8; KEY_LEN],
    key_id: &str,
    version: u32,
    material: &[u8],
) -> Result<Vec<u8>, DaemonError> {
    check_key_id(key_id)?;
    check_material_len(material.len())?;
    let kwp = kwp_wrap(wrapping_key(cmk)?.as_ref(), material)?;
    wrapped::write(key_id, version, &kwp)
        .map_err(|_| DaemonError::InvalidRequest(InvalidReason::BadKeyId))
}

/// Unwraps `wrapped`, which must name `key.key_id` / `key.version` and have
/// been wrapped under `cmk`.
///
/// # Errors
/// [`DaemonError::InvalidCiphertext`] for anything wrong with `wrapped`.
pub(crate) fn unwrap_key(
    cmk: &[u8; KEY_LEN],
    key: &KeyRef,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, DaemonError> {
    let header = WrappedHeader::parse(wrapped)
        .map_err(|_| DaemonError::InvalidCiphertext("wrapped key header"))?;
    if header.key_id != key.key_id || header.key_version != key.version {
        return Err(DaemonError::InvalidCiphertext(
            "wrapped key is for another key",
        ));
    }
    let material = kwp_unwrap(wrapping_key(cmk)?.as_ref(), header.kwp)?;
    check_material_len(material.len())
        .map_err(|_| DaemonError::InvalidCiphertext("wrapped key length"))?;
    Ok(material)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::KeyToken;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    const RFC5649_KEK: &str = "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8";

    /// RFC 5649 section 6, first example: 20 octets of key data.
    #[test]
    fn kwp_matches_rfc5649_vector_20_octets() {
        let kek = hex(RFC5649_KEK);
        let key = hex("c37b7e6492584340 bed1220780894115 5068f738");
        let wrapped = hex("138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a");
        assert_eq!(kwp_wrap(&kek, &key).expect("wraps"), wrapped);
        assert_eq!(kwp_unwrap(&kek, &wrapped).expect("unwraps").as_slice(), key);
    }

    /// RFC 5649 section 6, second example: 7 octets of key data.
    #[test]
    fn kwp_matches_rfc5649_vector_7_octets() {
        let kek = hex(RFC5649_KEK);
        let key = hex("466f7250617369");
        let wrapped = hex("afbeb0f07dfbf541 9200f2ccb50bb24f");
        assert_eq!(kwp_wrap(&kek, &key).expect("wraps"), wrapped);
        assert_eq!(kwp_unwrap(&kek, &wrapped).expect("unwraps").as_slice(), key);
    }

    #[test]
    fn kwp_refuses_a_flipped_bit_of_the_rfc5649_vector() {
        let kek = hex(RFC5649_KEK);
        let mut wrapped =
            hex("138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a");
        wrapped[9] ^= 1;
        assert!(matches!(
            kwp_unwrap(&kek, &wrapped),
            Err(DaemonError::InvalidCiphertext(_))
        ));
    }

    fn key_ref(id: &str, version: u32) -> KeyRef {
        KeyRef {
            key_id: id.into(),
            version,
            token: KeyToken(vec![]),
        }
    }

    #[test]
    fn wrap_round_trips_every_length_boundary() {
        let cmk = [7u8; KEY_LEN];
        for len in [1, 7, 8, 9, 32, 4095, 4096] {
            let material: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let w = wrap_key(&cmk, "k1", 2, &material).expect("wraps");
            let h = WrappedHeader::parse(&w).expect("has a header");
            assert_eq!((h.key_id, h.key_version), ("k1", 2));
            let back = unwrap_key(&cmk, &key_ref("k1", 2), &w).expect("unwraps");
            assert_eq!(back.as_slice(), material);
        }
    }

    #[test]
    fn wrap_refuses_empty_and_oversized_material() {
        let cmk = [7u8; KEY_LEN];
        assert!(matches!(
            wrap_key(&cmk, "k", 1, &[]),
            Err(DaemonError::InvalidRequest(InvalidReason::PlaintextEmpty))
        ));
        assert!(matches!(
            wrap_key(&cmk, "k", 1, &[0; MAX_WRAP_MATERIAL_LEN + 1]),
            Err(DaemonError::InvalidRequest(
                InvalidReason::PlaintextTooLarge
            ))
        ));
    }

    #[test]
    fn wrapping_key_is_derived_not_the_cmk() {
        let cmk = [9u8; KEY_LEN];
        let w = wrap_key(&cmk, "k", 1, b"material").expect("wraps");
        let h = WrappedHeader::parse(&w).expect("header");
        assert_ne!(
            h.kwp,
            kwp_wrap(&cmk, b"material").expect("wraps").as_slice()
        );
        assert!(kwp_unwrap(&cmk, h.kwp).is_err());
    }

    #[test]
    fn unwrap_refuses_tampering_another_key_and_another_version() {
        let cmk = [7u8; KEY_LEN];
        let w = wrap_key(&cmk, "k", 1, b"secret key bytes").expect("wraps");
        for i in [0, 5, 9, w.len() - 1] {
            let mut bad = w.clone();
            bad[i] ^= 1;
            assert!(matches!(
                unwrap_key(&cmk, &key_ref("k", 1), &bad),
                Err(DaemonError::InvalidCiphertext(_))
            ));
        }
        assert!(unwrap_key(&[8u8; KEY_LEN], &key_ref("k", 1), &w).is_err());
        assert!(unwrap_key(&cmk, &key_ref("k", 2), &w).is_err());
        assert!(unwrap_key(&cmk, &key_ref("j", 1), &w).is_err());
        assert!(unwrap_key(&cmk, &key_ref("k", 1), &w[..w.len() - 8]).is_err());
    }
}
