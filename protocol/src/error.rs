//! `WireError`: the only errors that cross the socket.
//!
//! Small, stable and closed on purpose: each variant names a class of failure
//! the frontend maps to one AWS error, and none carries free text, so nothing
//! secret (key bytes, plaintext, internal paths) can ride along. The daemon
//! logs the detail on its side; the frontend logs the variant.

use serde::{Deserialize, Serialize};

/// Why a request was refused as malformed. A fixed list, so it can be shown
/// to the client as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReason {
    #[error("plaintext is longer than 4096 bytes")]
    PlaintextTooLarge,
    #[error("plaintext is empty")]
    PlaintextEmpty,
    #[error("requested length is out of range")]
    LengthOutOfRange,
    #[error("encryption context has a duplicate or empty key")]
    BadEncryptionContext,
    #[error("key id is empty or too long")]
    BadKeyId,
    #[error("operation is not supported for this key spec")]
    UnsupportedKeySpec,
    #[error("algorithm is not valid for this key spec")]
    UnsupportedAlgorithm,
    #[error("digest length does not match the signing algorithm")]
    DigestLength,
    #[error("message is longer than 4096 bytes")]
    MessageTooLarge,
    #[error("master-key generation is not the current one")]
    MasterKeyGeneration,
}

/// A failure reported by hsm-daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The client speaks a protocol version the server does not.
    #[error("unsupported protocol version (server speaks {server})")]
    UnsupportedVersion { server: u16 },
    /// A frame could not be decoded as a message.
    #[error("malformed frame")]
    MalformedFrame,
    /// A frame was longer than [`crate::MAX_FRAME_LEN`].
    #[error("frame too large")]
    FrameTooLarge,
    /// A key token did not unwrap under the master key, or it belongs to
    /// another key id, version or spec than the request named.
    #[error("key token is invalid for this key")]
    InvalidToken,
    /// A ciphertext blob is malformed, was made under another key, was
    /// changed, or the encryption context does not match.
    #[error("ciphertext is invalid")]
    InvalidCiphertext,
    /// The request is well formed but its values are not acceptable.
    #[error("invalid request: {0}")]
    InvalidRequest(InvalidReason),
    /// The daemon is at its limit of work in flight; retry later.
    #[error("hsm is busy")]
    Busy,
    /// Something failed inside the daemon; details are in its log only.
    #[error("internal hsm error")]
    Internal,
}
