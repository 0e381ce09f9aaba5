//! Authentication of incoming requests: AWS Signature Version 4
//! ([`sigv4`]) against the principals of the config. Yields a
//! [`crate::principal::Principal`] or an [`AuthError`] that maps to the
//! error AWS itself returns (always HTTP 400). Authorization (key policy,
//! ownership) is left to `service`.

pub mod sigv4;

pub use sigv4::{Credential, RequestParts, Verifier};

use crate::api::AwsReply;

/// Why a request was not authenticated. Messages never contain a secret or
/// the signature we expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    MissingToken,
    /// The `Authorization` header or a required signed header is malformed
    /// or missing.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not one of ours.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// Wrong signature, expired or future date, wrong credential scope.
    #[error("{0}")]
    InvalidSignature(String),
}

/// The message AWS gives for a signature that does not match.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
signature you provided. Check your AWS Secret Access Key and signing method. Consult the service \
documentation for details.";

impl AuthError {
    /// The AWS `__type` name.
    pub fn aws_name(&self) -> &'static str {
        match self {
            Self::MissingToken => "MissingAuthenticationTokenException",
            Self::Incomplete(_) => "IncompleteSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// The AWS-shaped reply: HTTP 400 with `__type` and `message`.
    pub fn to_reply(&self) -> AwsReply {
        AwsReply::error(400, self.aws_name(), &self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_table() {
        let cases = [
            (
                AuthError::MissingToken,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            (
                AuthError::Incomplete("x".into()),
                "IncompleteSignatureException",
                "x",
            ),
            (
                AuthError::UnrecognizedClient,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            (
                AuthError::InvalidSignature(SIGNATURE_MISMATCH.into()),
                "InvalidSignatureException",
                SIGNATURE_MISMATCH,
            ),
        ];
        for (err, name, message) in cases {
            let reply = err.to_reply();
            assert_eq!(reply.status, 400);
            assert_eq!(reply.error_type, Some(name));
            let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
            assert_eq!(v["__type"], name);
            assert_eq!(v["message"], message);
        }
    }
}
