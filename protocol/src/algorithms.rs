//! Algorithm names the daemon's asymmetric and HMAC operations take.
//!
//! Each enum is the closed set AWS KMS documents for its operation; the
//! frontend maps AWS's strings onto them (and decides which pairs with which
//! key spec for the client's error), the daemon refuses a pair that does not
//! fit the key it unwrapped. Variants are only ever appended.

use serde::{Deserialize, Serialize};

/// AWS `SigningAlgorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    RsassaPssSha256,
    RsassaPssSha384,
    RsassaPssSha512,
    RsassaPkcs1V15Sha256,
    RsassaPkcs1V15Sha384,
    RsassaPkcs1V15Sha512,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
}

impl SigningAlgorithm {
    /// Length in bytes of the digest this algorithm signs.
    pub fn digest_len(self) -> usize {
        match self {
            Self::RsassaPssSha256 | Self::RsassaPkcs1V15Sha256 | Self::EcdsaSha256 => 32,
            Self::RsassaPssSha384 | Self::RsassaPkcs1V15Sha384 | Self::EcdsaSha384 => 48,
            Self::RsassaPssSha512 | Self::RsassaPkcs1V15Sha512 | Self::EcdsaSha512 => 64,
        }
    }
}

/// AWS `EncryptionAlgorithm` for RSA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EncryptionAlgorithm {
    RsaesOaepSha1,
    RsaesOaepSha256,
}

/// AWS `MacAlgorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MacAlgorithm {
    HmacSha224,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

/// AWS `MessageType`: the message itself, or its digest computed by the
/// caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageType {
    Raw,
    Digest,
}

/// Largest message Sign, Verify, GenerateMac and VerifyMac accept.
pub const MAX_MESSAGE_LEN: usize = 4096;
