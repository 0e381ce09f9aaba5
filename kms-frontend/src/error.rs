//! `KmsError`: every failure of a KMS operation, and the one table that maps
//! it to the AWS error name, HTTP status and client-facing message.
//!
//! `service` produces these; `api/aws_json` turns them into replies through
//! [`KmsError::aws`] and nothing else. Messages are written for the caller:
//! they name the caller's own key or alias at most, never SQL, file paths,
//! secrets or another principal's data. Internal details ride in
//! [`KmsError::Internal`] and go to the log only.

use crate::hsm_client::HsmError;
use protocol::WireError;

/// Generic body of a 500 caused by a bug or a broken store.
pub const INTERNAL_MESSAGE: &str =
    "The request could not be completed because of an internal error. Retry the request.";

/// A failed KMS operation.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("disabled: {0}")]
    Disabled(String),
    #[error("invalid state: {0}")]
    InvalidState(String),
    #[error("invalid ciphertext: {0}")]
    InvalidCiphertext(String),
    #[error("incorrect key: {0}")]
    IncorrectKey(String),
    #[error("validation: {0}")]
    Validation(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid alias name: {0}")]
    InvalidAliasName(String),
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("invalid key usage: {0}")]
    InvalidKeyUsage(String),
    #[error("unsupported operation: {0}")]
    UnsupportedOperation(String),
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    #[error("invalid marker: {0}")]
    InvalidMarker(String),
    #[error("serialization: {0}")]
    Serialization(String),
    #[error("unknown operation: {0}")]
    UnknownOperation(String),
    #[error("throttled: {0}")]
    Throttling(String),
    #[error("malformed policy document: {0}")]
    MalformedPolicyDocument(String),
    #[error("invalid grant token: {0}")]
    InvalidGrantToken(String),
    #[error("invalid grant id: {0}")]
    InvalidGrantId(String),
    #[error("invalid arn: {0}")]
    InvalidArn(String),
    /// The request would have succeeded, but DryRun was set.
    #[error("dry run")]
    DryRun,
    /// hsm-daemon cannot be reached.
    #[error("hsm-daemon is unavailable")]
    HsmUnavailable,
    /// hsm-daemon did not answer in time.
    #[error("hsm-daemon did not answer in time")]
    DependencyTimeout,
    /// A bug or a broken store; the detail is for the log only.
    #[error("internal: {0}")]
    Internal(String),
    #[error("tag: {0}")]
    Tag(String),
    /// VerifyMac: the MAC does not match.
    #[error("invalid mac")]
    InvalidMac,
    /// Verify: the signature does not match.
    #[error("invalid signature")]
    InvalidSignature,
    #[error("conflict: {0}")]
    Conflict(String),
}

/// What the client sees for one error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsErrorParts {
    pub name: &'static str,
    pub status: u16,
    pub message: String,
}

impl KmsError {
    /// THE mapping table: AWS error name, HTTP status and message.
    pub fn aws(&self) -> AwsErrorParts {
        let (name, status, message): (&'static str, u16, &str) = match self {
            Self::NotFound(m) => ("NotFoundException", 400, m),
            Self::Disabled(m) => ("DisabledException", 409, m),
            Self::InvalidState(m) => ("KMSInvalidStateException", 409, m),
            Self::InvalidCiphertext(m) => ("InvalidCiphertextException", 400, m),
            Self::IncorrectKey(m) => ("IncorrectKeyException", 400, m),
            Self::Validation(m) => ("ValidationException", 400, m),
            Self::AlreadyExists(m) => ("AlreadyExistsException", 400, m),
            Self::InvalidAliasName(m) => ("InvalidAliasNameException", 400, m),
            Self::NotAuthorized(m) => ("NotAuthorizedException", 400, m),
            Self::AccessDenied(m) => ("AccessDeniedException", 400, m),
            Self::InvalidKeyUsage(m) => ("InvalidKeyUsageException", 400, m),
            Self::UnsupportedOperation(m) => ("UnsupportedOperationException", 400, m),
            Self::LimitExceeded(m) => ("LimitExceededException", 400, m),
            Self::InvalidMarker(m) => ("InvalidMarkerException", 400, m),
            Self::Serialization(m) => ("SerializationException", 400, m),
            Self::UnknownOperation(m) => ("UnknownOperationException", 400, m),
            Self::Throttling(m) => ("ThrottlingException", 400, m),
            Self::MalformedPolicyDocument(m) => ("MalformedPolicyDocumentException", 400, m),
            Self::InvalidGrantToken(m) => ("InvalidGrantTokenException", 400, m),
            Self::InvalidGrantId(m) => ("InvalidGrantIdException", 400, m),
            Self::InvalidArn(m) => ("InvalidArnException", 400, m),
            Self::DryRun => (
                "DryRunOperationException",
                412,
                "The request would have succeeded, but the DryRun option is set.",
            ),
            Self::HsmUnavailable => ("KMSInternalException", 500, "hsm-daemon is unavailable"),
            Self::DependencyTimeout => (
                "DependencyTimeoutException",
                500,
                "hsm-daemon did not answer in time. Retry the request.",
            ),
            Self::Internal(_) => ("KMSInternalException", 500, INTERNAL_MESSAGE),
            Self::Tag(m) => ("TagException", 400, m),
            Self::InvalidMac => (
                "KMSInvalidMacException",
                400,
                "The MAC does not match the message, key and algorithm.",
            ),
            Self::InvalidSignature => (
                "KMSInvalidSignatureException",
                400,
                "The signature does not match the message, key and algorithm.",
            ),
            Self::Conflict(m) => ("ConflictException", 409, m),
        };
        AwsErrorParts {
            name,
            status,
            message: message.to_owned(),
        }
    }

    /// Whether the detail should be logged at error level (5xx).
    pub fn is_server_error(&self) -> bool {
        self.aws().status >= 500
    }

    /// Maps an HSM failure of an operation that does not open a ciphertext.
    pub fn from_hsm(err: HsmError) -> Self {
        match err {
            HsmError::Unavailable => Self::HsmUnavailable,
            HsmError::Timeout => Self::DependencyTimeout,
            HsmError::Wire(WireError::InvalidRequest(reason)) => {
                Self::Validation(format!("1 validation error detected: {reason}"))
            }
            HsmError::Wire(WireError::Busy) => {
                Self::Throttling("The HSM is busy. Retry the request with backoff.".into())
            }
            HsmError::Wire(w) => Self::Internal(format!("hsm-daemon error: {w:?}")),
            HsmError::Protocol => Self::Internal("unexpected reply from hsm-daemon".into()),
        }
    }

    /// Maps an HSM failure of an operation that opens a ciphertext (Decrypt,
    /// ReEncrypt): a blob or token that does not open is the caller's
    /// ciphertext being invalid.
    pub fn from_hsm_decrypt(err: HsmError) -> Self {
        match err {
            HsmError::Wire(WireError::InvalidCiphertext | WireError::InvalidToken) => {
                Self::InvalidCiphertext(invalid_ciphertext_message())
            }
            other => Self::from_hsm(other),
        }
    }
}

/// The message of an InvalidCiphertextException.
pub fn invalid_ciphertext_message() -> String {
    "The ciphertext is invalid, was changed, was not made by this KMS, or the encryption \
     context does not match the one used to encrypt it."
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::InvalidReason;

    fn s() -> String {
        "m".to_owned()
    }

    #[test]
    fn full_table() {
        let cases: Vec<(KmsError, &str, u16)> = vec![
            (KmsError::NotFound(s()), "NotFoundException", 400),
            (KmsError::Disabled(s()), "DisabledException", 409),
            (KmsError::InvalidState(s()), "KMSInvalidStateException", 409),
            (
                KmsError::InvalidCiphertext(s()),
                "InvalidCiphertextException",
                400,
            ),
            (KmsError::IncorrectKey(s()), "IncorrectKeyException", 400),
            (KmsError::Validation(s()), "ValidationException", 400),
            (KmsError::AlreadyExists(s()), "AlreadyExistsException", 400),
            (
                KmsError::InvalidAliasName(s()),
                "InvalidAliasNameException",
                400,
            ),
            (KmsError::NotAuthorized(s()), "NotAuthorizedException", 400),
            (KmsError::AccessDenied(s()), "AccessDeniedException", 400),
            (
                KmsError::InvalidKeyUsage(s()),
                "InvalidKeyUsageException",
                400,
            ),
            (
                KmsError::UnsupportedOperation(s()),
                "UnsupportedOperationException",
                400,
            ),
            (KmsError::LimitExceeded(s()), "LimitExceededException", 400),
            (KmsError::InvalidMarker(s()), "InvalidMarkerException", 400),
            (KmsError::Serialization(s()), "SerializationException", 400),
            (
                KmsError::UnknownOperation(s()),
                "UnknownOperationException",
                400,
            ),
            (KmsError::Throttling(s()), "ThrottlingException", 400),
            (KmsError::DryRun, "DryRunOperationException", 412),
            (KmsError::HsmUnavailable, "KMSInternalException", 500),
            (
                KmsError::DependencyTimeout,
                "DependencyTimeoutException",
                500,
            ),
            (KmsError::Internal(s()), "KMSInternalException", 500),
            (KmsError::Tag(s()), "TagException", 400),
            (KmsError::InvalidMac, "KMSInvalidMacException", 400),
            (
                KmsError::InvalidSignature,
                "KMSInvalidSignatureException",
                400,
            ),
            (KmsError::Conflict(s()), "ConflictException", 409),
        ];
        for (err, name, status) in cases {
            let parts = err.aws();
            assert_eq!(parts.name, name, "{err:?}");
            assert_eq!(parts.status, status, "{err:?}");
            assert!(!parts.message.is_empty());
        }
    }

    #[test]
    fn client_messages_pass_through() {
        let p = KmsError::NotFound("Key 'x' does not exist".into()).aws();
        assert_eq!(p.message, "Key 'x' does not exist");
    }

    #[test]
    fn internal_detail_is_hidden() {
        let p = KmsError::Internal("SELECT * FROM keys at /var/lib/kms/kms.db".into()).aws();
        assert_eq!(p.message, INTERNAL_MESSAGE);
        assert!(!p.message.contains("kms.db"));
        assert_eq!(
            KmsError::HsmUnavailable.aws().message,
            "hsm-daemon is unavailable"
        );
    }

    #[test]
    fn hsm_errors_map() {
        assert!(matches!(
            KmsError::from_hsm(HsmError::Unavailable),
            KmsError::HsmUnavailable
        ));
        assert!(matches!(
            KmsError::from_hsm(HsmError::Timeout),
            KmsError::DependencyTimeout
        ));
        assert!(matches!(
            KmsError::from_hsm(HsmError::Protocol),
            KmsError::Internal(_)
        ));
        assert!(matches!(
            KmsError::from_hsm(HsmError::Wire(WireError::InvalidToken)),
            KmsError::Internal(_)
        ));
        assert!(matches!(
            KmsError::from_hsm(HsmError::Wire(WireError::Busy)),
            KmsError::Throttling(_)
        ));
        assert!(matches!(
            KmsError::from_hsm(HsmError::Wire(WireError::InvalidRequest(
                InvalidReason::BadEncryptionContext
            ))),
            KmsError::Validation(_)
        ));
        for w in [WireError::InvalidCiphertext, WireError::InvalidToken] {
            assert!(matches!(
                KmsError::from_hsm_decrypt(HsmError::Wire(w)),
                KmsError::InvalidCiphertext(_)
            ));
        }
        assert!(matches!(
            KmsError::from_hsm_decrypt(HsmError::Unavailable),
            KmsError::HsmUnavailable
        ));
        assert!(KmsError::DependencyTimeout.is_server_error());
        assert!(!KmsError::Disabled(s()).is_server_error());
    }
}
