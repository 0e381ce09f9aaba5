//! The AWS Encryption SDK message format, version 2, as kmsctl reads and
//! writes it: implemented from the public specification
//! (awslabs/aws-encryption-sdk-specification, `data-format/message-header.md`,
//! `message-body.md`, `message-body-aad.md`, and the committing suites of
//! `framework/algorithm-suites.md`). Only the committing, non-signing suite
//! `AES_256_GCM_HKDF_SHA512_COMMIT_KEY` (0x0478) with framed content is
//! supported; anything else is refused with a clear [`FormatError`].
//!
//! `header` serializes and parses the header, `keys` derives the data
//! encryption key and the commitment key, `stream` encrypts and decrypts
//! the framed body with flat memory. Where the data key comes from (KMS) is
//! left to `cli::files`.

pub mod header;
pub mod keys;
pub mod stream;

#[cfg(test)]
mod tests;

/// `AES_256_GCM_HKDF_SHA512_COMMIT_KEY`.
pub const SUITE_COMMIT_KEY: u16 = 0x0478;
/// `AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384` (recognized, not supported).
pub const SUITE_COMMIT_KEY_ECDSA_P384: u16 = 0x0578;
/// Message format version 2.
pub const VERSION_2: u8 = 0x02;
/// Framed content type.
pub const CONTENT_FRAMED: u8 = 0x02;
/// Default frame length, as in the AWS Encryption SDKs.
pub const DEFAULT_FRAME_LEN: u32 = 4096;
/// The largest frame length kmsctl accepts (a frame is held in memory).
pub const MAX_FRAME_LEN: u32 = 64 << 20;
/// The most encrypted data keys kmsctl accepts in a header.
pub const MAX_EDKS: u16 = 64;
/// Message id length in version 2.
pub const MESSAGE_ID_LEN: usize = 32;
/// AES-GCM IV and tag lengths.
pub const IV_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Provider id of the AWS KMS keyring.
pub const PROVIDER_AWS_KMS: &str = "aws-kms";
/// Reserved encryption-context prefix.
pub const RESERVED_PREFIX: &str = "aws-crypto-";

/// Why a message could not be read or written. Messages name the problem
/// without echoing secrets.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(
        "not an AWS Encryption SDK message (version byte {0:#04x}; only version 2 is supported)"
    )]
    Version(u8),
    #[error(
        "algorithm suite {0:#06x} is not supported (kmsctl reads 0x0478 \
         AES_256_GCM_HKDF_SHA512_COMMIT_KEY only)"
    )]
    Suite(u16),
    #[error("content type {0:#04x} is not supported (only framed content)")]
    ContentType(u8),
    #[error("frame length {0} is outside 1..={MAX_FRAME_LEN}")]
    FrameLength(u32),
    #[error("the header has {0} encrypted data keys (at most {MAX_EDKS} accepted)")]
    TooManyKeys(u16),
    #[error("the header is malformed: {0}")]
    Header(&'static str),
    #[error("the message is truncated: {0}")]
    Truncated(&'static str),
    #[error("the message is malformed: {0}")]
    Body(String),
    #[error(
        "the data key does not match the message's key commitment (wrong key or tampered header)"
    )]
    Commitment,
    #[error("the header failed authentication (tampered header or wrong encryption context)")]
    HeaderAuth,
    #[error("frame {0} failed authentication (tampered or corrupted ciphertext)")]
    FrameAuth(u32),
    #[error("data after the end of the message")]
    TrailingData,
    #[error("encryption context key {0:?} uses the reserved prefix aws-crypto-")]
    ReservedContext(String),
    #[error("encryption context too large to serialize")]
    ContextTooLarge,
    #[error("the message has more frames than the format allows")]
    TooManyFrames,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
