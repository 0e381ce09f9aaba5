//! The public header of a wrapped key (WrapKey's output).
//!
//! ```text
//! offset  size  field
//! 0       4     magic "HKW1"
//! 4       1     key id length n (1..=64)
//! 5       n     key id (UTF-8)
//! 5+n     4     key version, big-endian
//! 9+n     ..    AES-KWP (RFC 5649) output: 16..=4104 bytes, a multiple of 8
//! ```
//!
//! A bare KWP output does not say which key made it, so the header names the
//! CMK and version (like a ciphertext blob's), letting UnwrapKey find the
//! version after rotation. The header is not authenticated on its own: a
//! changed header names another key version, under which the KWP integrity
//! check fails. This module only parses and writes the header; wrapping is
//! the daemon's.

use crate::blob::MAX_KEY_ID_LEN;

/// Magic opening every wrapped key.
pub const WRAPPED_MAGIC: &[u8; 4] = b"HKW1";
/// Shortest AES-KWP output (one byte of material, padded: two semiblocks).
pub const MIN_KWP_LEN: usize = 16;
/// Longest AES-KWP output: 4096 bytes of material plus the 8-byte AIV.
pub const MAX_KWP_LEN: usize = crate::message::MAX_WRAP_MATERIAL_LEN + 8;

/// Why a wrapped key's header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WrappedError {
    #[error("wrapped key is not in the hsm-kms wrapped-key format")]
    UnknownFormat,
    #[error("wrapped key is truncated or has a bad length")]
    BadLength,
    #[error("wrapped key names an invalid key id")]
    BadKeyId,
}

/// The parsed header of a wrapped key; borrows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrappedHeader<'a> {
    pub key_id: &'a str,
    pub key_version: u32,
    /// The AES-KWP output after the header.
    pub kwp: &'a [u8],
}

impl<'a> WrappedHeader<'a> {
    /// Parses `wrapped`. Never panics on any input.
    ///
    /// # Errors
    /// [`WrappedError`] for a wrong magic, a bad key id, or a KWP part that
    /// is not 16..=4104 bytes in multiples of 8.
    pub fn parse(wrapped: &'a [u8]) -> Result<Self, WrappedError> {
        let rest = wrapped
            .strip_prefix(WRAPPED_MAGIC.as_slice())
            .ok_or(WrappedError::UnknownFormat)?;
        let (&id_len, rest) = rest.split_first().ok_or(WrappedError::BadLength)?;
        let id_len = usize::from(id_len);
        if id_len == 0 || id_len > MAX_KEY_ID_LEN {
            return Err(WrappedError::BadKeyId);
        }
        let (id, rest) = rest
            .split_at_checked(id_len)
            .ok_or(WrappedError::BadLength)?;
        let key_id = std::str::from_utf8(id).map_err(|_| WrappedError::BadKeyId)?;
        let (version, kwp) = rest
            .split_first_chunk::<4>()
            .ok_or(WrappedError::BadLength)?;
        if kwp.len() < MIN_KWP_LEN || kwp.len() > MAX_KWP_LEN || kwp.len() % 8 != 0 {
            return Err(WrappedError::BadLength);
        }
        Ok(Self {
            key_id,
            key_version: u32::from_be_bytes(*version),
            kwp,
        })
    }
}

/// A wrapped key: the header for `key_id` / `key_version`, then `kwp`.
///
/// # Errors
/// [`WrappedError::BadKeyId`] when `key_id` is empty or longer than 64 bytes.
pub fn write(key_id: &str, key_version: u32, kwp: &[u8]) -> Result<Vec<u8>, WrappedError> {
    let id = key_id.as_bytes();
    if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
        return Err(WrappedError::BadKeyId);
    }
    let id_len = u8::try_from(id.len()).map_err(|_| WrappedError::BadKeyId)?;
    let mut out = Vec::with_capacity(WRAPPED_MAGIC.len() + 1 + id.len() + 4 + kwp.len());
    out.extend_from_slice(WRAPPED_MAGIC);
    out.push(id_len);
    out.extend_from_slice(id);
    out.extend_from_slice(&key_version.to_be_bytes());
    out.extend_from_slice(kwp);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_round_trips() {
        let w = write("1234abcd-12ab-34cd-56ef-1234567890ab", 3, &[7; 24]).expect("valid");
        let h = WrappedHeader::parse(&w).expect("parses");
        assert_eq!(h.key_id, "1234abcd-12ab-34cd-56ef-1234567890ab");
        assert_eq!(h.key_version, 3);
        assert_eq!(h.kwp, &[7; 24]);
    }

    #[test]
    fn rejects_bad_magic_ids_and_kwp_lengths() {
        assert_eq!(WrappedHeader::parse(b""), Err(WrappedError::UnknownFormat));
        assert_eq!(
            WrappedHeader::parse(&[1, 1, b'k', 0, 0, 0, 1]),
            Err(WrappedError::UnknownFormat)
        );
        assert_eq!(WrappedHeader::parse(b"HKW1\0"), Err(WrappedError::BadKeyId));
        for kwp_len in [0, 8, 17, MAX_KWP_LEN + 8] {
            let w = write("k", 1, &vec![0; kwp_len]).expect("valid");
            assert_eq!(WrappedHeader::parse(&w), Err(WrappedError::BadLength));
        }
        let w = write("k", 1, &vec![0; MAX_KWP_LEN]).expect("valid");
        assert!(WrappedHeader::parse(&w).is_ok());
        assert_eq!(write("", 1, &[0; 16]), Err(WrappedError::BadKeyId));
        assert_eq!(
            write(&"k".repeat(65), 1, &[0; 16]),
            Err(WrappedError::BadKeyId)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = WrappedHeader::parse(&bytes);
        }
    }
}
