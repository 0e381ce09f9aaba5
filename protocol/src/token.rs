//! The public header of a key token: which master-key generation wrapped it.
//!
//! ```text
//! generation 1 (every token made before master-key rotation existed):
//!   AES-KWP output only                         length 16 + 8k
//! generation 2 and later:
//!   "HKG" | generation u32 BE | AES-KWP output  length 7 + 16 + 8k
//! ```
//!
//! AES-KWP output is always a multiple of 8 bytes, so the 7-byte header
//! makes a headed token's length 7 (mod 8): the two forms can never be
//! mistaken for each other, whatever bytes the KWP output starts with.
//! Generation 1 has exactly one encoding (headerless), so databases written
//! before rotation existed stay valid byte for byte, and a daemon that never
//! rotates writes tokens exactly as before. The header is not authenticated
//! on its own: a changed generation selects another master key, under which
//! the KWP integrity check fails. The frontend reads it to find the tokens a
//! rotation still has to rewrap; wrapping is the daemon's.

/// Magic opening a token of generation 2 or later.
pub const TOKEN_MAGIC: &[u8; 3] = b"HKG";
/// Length of the header of a generation 2+ token.
pub const HEADER_LEN: usize = TOKEN_MAGIC.len() + 4;
/// The generation of the first master key, and of every headerless token.
pub const FIRST_GENERATION: u32 = 1;
/// Shortest AES-KWP output (RFC 5649: two semiblocks).
const MIN_KWP_LEN: usize = 16;

/// Why a token's header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("key token is truncated, has a bad length or an unknown header")]
    Malformed,
}

/// The parsed header of a key token; borrows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenHeader<'a> {
    /// The master-key generation that wrapped it.
    pub generation: u32,
    /// The AES-KWP output after the header.
    pub kwp: &'a [u8],
}

impl<'a> TokenHeader<'a> {
    /// Parses `token`. Never panics on any input.
    ///
    /// # Errors
    /// [`TokenError::Malformed`] for a length that is neither a KWP output
    /// nor header + KWP output, a wrong magic, or a header naming generation
    /// 0 or 1 (generation 1 is written only headerless).
    pub fn parse(token: &'a [u8]) -> Result<Self, TokenError> {
        if token.len().is_multiple_of(8) && token.len() >= MIN_KWP_LEN {
            return Ok(Self {
                generation: FIRST_GENERATION,
                kwp: token,
            });
        }
        let rest = token
            .strip_prefix(TOKEN_MAGIC.as_slice())
            .ok_or(TokenError::Malformed)?;
        let (generation, kwp) = rest.split_first_chunk::<4>().ok_or(TokenError::Malformed)?;
        let generation = u32::from_be_bytes(*generation);
        if generation <= FIRST_GENERATION || kwp.len() < MIN_KWP_LEN || !kwp.len().is_multiple_of(8)
        {
            return Err(TokenError::Malformed);
        }
        Ok(Self { generation, kwp })
    }
}

/// The header of a token of `generation`: empty for generation 1.
pub fn header(generation: u32) -> Vec<u8> {
    if generation <= FIRST_GENERATION {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(TOKEN_MAGIC);
    out.extend_from_slice(&generation.to_be_bytes());
    out
}

/// A token of `generation` around the AES-KWP output `kwp`.
pub fn write(generation: u32, kwp: &[u8]) -> Vec<u8> {
    let mut out = header(generation);
    out.extend_from_slice(kwp);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn headerless_tokens_are_generation_one() {
        let kwp = [9u8; 40];
        let h = TokenHeader::parse(&kwp).expect("legacy");
        assert_eq!((h.generation, h.kwp), (1, &kwp[..]));
        assert_eq!(
            write(1, &kwp),
            kwp.to_vec(),
            "generation 1 stays headerless"
        );
    }

    #[test]
    fn headed_tokens_round_trip() {
        let kwp = [3u8; 24];
        let t = write(7, &kwp);
        assert_eq!(t.len() % 8, 7);
        assert_eq!(&t[..3], b"HKG");
        let h = TokenHeader::parse(&t).expect("headed");
        assert_eq!((h.generation, h.kwp), (7, &kwp[..]));
        assert_eq!(header(7), t[..HEADER_LEN].to_vec());
    }

    #[test]
    fn rejects_bad_lengths_magic_and_non_canonical_generations() {
        for bad in [&b""[..], &[0u8; 8], &[0u8; 15], &[0u8; 17]] {
            assert_eq!(TokenHeader::parse(bad), Err(TokenError::Malformed));
        }
        let mut t = write(2, &[1u8; 16]);
        t[0] = b'X';
        assert_eq!(TokenHeader::parse(&t), Err(TokenError::Malformed));
        for generation in [0u32, 1] {
            let mut t = b"HKG".to_vec();
            t.extend_from_slice(&generation.to_be_bytes());
            t.extend_from_slice(&[1u8; 16]);
            assert_eq!(TokenHeader::parse(&t), Err(TokenError::Malformed));
        }
        let mut short = write(2, &[1u8; 16]);
        short.truncate(HEADER_LEN + 8);
        assert_eq!(TokenHeader::parse(&short), Err(TokenError::Malformed));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = TokenHeader::parse(&bytes);
        }
    }
}
