//! The public header of a ciphertext blob.
//!
//! ```text
//! offset  size  field
//! 0       1     format version (1)
//! 1       1     key id length n (1..=64)
//! 2       n     key id (UTF-8)
//! 2+n     4     key version, big-endian
//! 6+n     16    salt: the per-message key is HKDF-SHA256(CMK, salt)
//! 22+n    12    AES-GCM nonce
//! 34+n    ..    ciphertext
//! end-16  16    GCM tag
//! ```
//!
//! The header (everything before the ciphertext) is authenticated as AAD
//! together with the canonical encryption context, so it cannot be changed
//! without the daemon noticing. It is not secret: the frontend reads the key id
//! from it so Decrypt needs no KeyId, as in AWS. This module only parses and
//! writes the header; sealing is the daemon's.

/// Current blob format version.
pub const BLOB_FORMAT: u8 = 1;
/// Longest key id a blob can name.
pub const MAX_KEY_ID_LEN: usize = 64;
/// Length of the HKDF salt.
pub const SALT_LEN: usize = 16;
/// Length of the AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;

/// Why a blob header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("ciphertext blob is too short")]
    Truncated,
    #[error("ciphertext blob has an unknown format version")]
    UnknownFormat,
    #[error("ciphertext blob names an invalid key id")]
    BadKeyId,
}

/// The parsed header of a blob; borrows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobHeader<'a> {
    pub key_id: &'a str,
    pub key_version: u32,
    pub salt: &'a [u8; SALT_LEN],
    pub nonce: &'a [u8; NONCE_LEN],
    /// Length of the header in bytes (the AAD prefix).
    pub header_len: usize,
}

impl<'a> BlobHeader<'a> {
    /// Parses the header of `blob` and checks there is room for a tag after
    /// it. Never panics on any input.
    ///
    /// # Errors
    /// [`BlobError`] when the blob is too short, of an unknown format, or names
    /// a key id that is empty, too long or not UTF-8.
    pub fn parse(blob: &'a [u8]) -> Result<Self, BlobError> {
        let (&format, rest) = blob.split_first().ok_or(BlobError::Truncated)?;
        if format != BLOB_FORMAT {
            return Err(BlobError::UnknownFormat);
        }
        let (&id_len, rest) = rest.split_first().ok_or(BlobError::Truncated)?;
        let id_len = usize::from(id_len);
        if id_len == 0 || id_len > MAX_KEY_ID_LEN {
            return Err(BlobError::BadKeyId);
        }
        let (id, rest) = rest.split_at_checked(id_len).ok_or(BlobError::Truncated)?;
        let key_id = std::str::from_utf8(id).map_err(|_| BlobError::BadKeyId)?;
        let (version, rest) = rest.split_first_chunk::<4>().ok_or(BlobError::Truncated)?;
        let (salt, rest) = rest
            .split_first_chunk::<SALT_LEN>()
            .ok_or(BlobError::Truncated)?;
        let (nonce, rest) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(BlobError::Truncated)?;
        if rest.len() < TAG_LEN {
            return Err(BlobError::Truncated);
        }
        Ok(Self {
            key_id,
            key_version: u32::from_be_bytes(*version),
            salt,
            nonce,
            header_len: 2 + id_len + 4 + SALT_LEN + NONCE_LEN,
        })
    }
}

/// Writes a header into a new buffer with room for `body_len` more bytes.
///
/// # Errors
/// [`BlobError::BadKeyId`] when `key_id` is empty or longer than
/// [`MAX_KEY_ID_LEN`].
pub fn write_header(
    key_id: &str,
    key_version: u32,
    salt: &[u8; SALT_LEN],
    nonce: &[u8; NONCE_LEN],
    body_len: usize,
) -> Result<Vec<u8>, BlobError> {
    let id = key_id.as_bytes();
    let id_len = u8::try_from(id.len()).map_err(|_| BlobError::BadKeyId)?;
    if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
        return Err(BlobError::BadKeyId);
    }
    let mut out = Vec::with_capacity(2 + id.len() + 4 + SALT_LEN + NONCE_LEN + body_len);
    out.push(BLOB_FORMAT);
    out.push(id_len);
    out.extend_from_slice(id);
    out.extend_from_slice(&key_version.to_be_bytes());
    out.extend_from_slice(salt);
    out.extend_from_slice(nonce);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_round_trips() {
        let mut blob = write_header(
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            7,
            &[1; 16],
            &[2; 12],
            20,
        )
        .expect("valid header");
        blob.extend_from_slice(&[9; 20]);
        let h = BlobHeader::parse(&blob).expect("parses");
        assert_eq!(h.key_id, "1234abcd-12ab-34cd-56ef-1234567890ab");
        assert_eq!(h.key_version, 7);
        assert_eq!(h.salt, &[1; 16]);
        assert_eq!(h.nonce, &[2; 12]);
        assert_eq!(h.header_len, blob.len() - 20);
    }

    #[test]
    fn rejects_short_and_unknown() {
        assert_eq!(BlobHeader::parse(&[]), Err(BlobError::Truncated));
        assert_eq!(
            BlobHeader::parse(&[2, 1, b'a']),
            Err(BlobError::UnknownFormat)
        );
        assert_eq!(BlobHeader::parse(&[1, 0]), Err(BlobError::BadKeyId));
        let header = write_header("k", 1, &[0; 16], &[0; 12], 0).expect("valid");
        // no room for a tag
        assert_eq!(BlobHeader::parse(&header), Err(BlobError::Truncated));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = BlobHeader::parse(&bytes);
        }
    }
}
