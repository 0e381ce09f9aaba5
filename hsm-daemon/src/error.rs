//! The daemon's error types and their one mapping to the wire.
//!
//! [`DaemonError`] is what a request can fail with inside the daemon; it may
//! carry more detail than the client is told, but never secret bytes.
//! [`DaemonError::to_wire`] is the only place a daemon error becomes a
//! [`WireError`]. [`StartupError`] covers `init` and `serve` set-up and is
//! shown to the operator, so its messages name the path and the fix.

use protocol::{InvalidReason, PROTOCOL_VERSION, WireError};
use std::path::PathBuf;

/// Why a request failed inside the daemon.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonError {
    /// The token did not unwrap, is malformed, or names another key.
    #[error("key token is invalid: {0}")]
    InvalidToken(&'static str),
    /// The blob is malformed, from another key, tampered, or the context differs.
    #[error("ciphertext is invalid: {0}")]
    InvalidCiphertext(&'static str),
    /// The request's values are out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(InvalidReason),
    /// The keystore is in the middle of another call (a re-entrant call,
    /// which the request path never makes).
    #[error("keystore is busy")]
    KeystoreBusy,
    /// The locked key cache has no slot left (should not happen: it evicts).
    #[error("no free key slot")]
    NoSlot,
    /// The OS random number generator failed.
    #[error("OS RNG failed")]
    Rng,
    /// A cryptographic primitive failed where it cannot fail on valid input.
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
    /// The master key file could not be written (rotation); the old file
    /// and the keys in memory are unchanged.
    #[error("writing master.key: {0}")]
    KeyFile(std::io::Error),
}

impl DaemonError {
    /// The error the client sees. Internal detail stays in the daemon's log.
    pub(crate) fn to_wire(&self) -> WireError {
        match self {
            Self::InvalidToken(_) => WireError::InvalidToken,
            Self::InvalidCiphertext(_) => WireError::InvalidCiphertext,
            Self::InvalidRequest(reason) => WireError::InvalidRequest(*reason),
            Self::KeystoreBusy => WireError::Busy,
            Self::NoSlot | Self::Rng | Self::Crypto(_) | Self::KeyFile(_) => WireError::Internal,
        }
    }
}

/// The wire error for a client hello of another version.
pub(crate) fn unsupported_version() -> WireError {
    WireError::UnsupportedVersion {
        server: PROTOCOL_VERSION,
    }
}

/// Why `init` or `serve` could not start. Shown to the operator.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartupError {
    #[error(
        "{} has mode {mode:04o}, which lets group or others in; fix it with `chmod {fix:o} {}`",
        path.display(),
        path.display()
    )]
    LoosePermissions { path: PathBuf, mode: u32, fix: u32 },
    #[error(
        "{} already exists; refusing to overwrite a master key (move it away first if you really mean to replace it)",
        .0.display()
    )]
    KeyExists(PathBuf),
    #[error("{}: {what}", path.display())]
    BadKeyFile { path: PathBuf, what: &'static str },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A path is not what it must be (not a directory, not a socket, taken).
    #[error("{}: {what}", path.display())]
    WrongKind { path: PathBuf, what: &'static str },
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    #[error("OS RNG failed")]
    Rng,
    /// The operator secret could not be obtained.
    #[error("{0}")]
    Secret(String),
    /// The sealed master key could not be opened or made.
    #[error("{}: {source}", path.display())]
    Seal {
        path: PathBuf,
        source: crate::seal::SealError,
    },
}

impl StartupError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_mapping_table() {
        let table: Vec<(DaemonError, WireError)> = vec![
            (DaemonError::InvalidToken("x"), WireError::InvalidToken),
            (
                DaemonError::InvalidCiphertext("x"),
                WireError::InvalidCiphertext,
            ),
            (
                DaemonError::InvalidRequest(InvalidReason::PlaintextEmpty),
                WireError::InvalidRequest(InvalidReason::PlaintextEmpty),
            ),
            (
                DaemonError::InvalidRequest(InvalidReason::BadEncryptionContext),
                WireError::InvalidRequest(InvalidReason::BadEncryptionContext),
            ),
            (DaemonError::KeystoreBusy, WireError::Busy),
            (DaemonError::NoSlot, WireError::Internal),
            (DaemonError::Rng, WireError::Internal),
            (DaemonError::Crypto("x"), WireError::Internal),
            (
                DaemonError::KeyFile(std::io::Error::other("x")),
                WireError::Internal,
            ),
            (
                DaemonError::InvalidRequest(InvalidReason::MasterKeyGeneration),
                WireError::InvalidRequest(InvalidReason::MasterKeyGeneration),
            ),
        ];
        for (err, wire) in table {
            assert_eq!(err.to_wire(), wire, "{err:?}");
        }
        assert_eq!(
            unsupported_version(),
            WireError::UnsupportedVersion {
                server: PROTOCOL_VERSION
            }
        );
    }

    #[test]
    fn loose_permission_message_names_path_mode_and_fix() {
        let e = StartupError::LoosePermissions {
            path: "/x/state".into(),
            mode: 0o755,
            fix: 0o700,
        };
        let msg = e.to_string();
        assert!(msg.contains("/x/state"), "{msg}");
        assert!(msg.contains("0755"), "{msg}");
        assert!(msg.contains("chmod 700 /x/state"), "{msg}");
    }
}
