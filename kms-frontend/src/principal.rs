//! The authenticated caller of a request, as `auth` establishes it and
//! `service` (and later `policy`) consumes it. Holds no secret.

/// Who made a request: the principal a valid SigV4 signature proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `arn:aws:iam::<account>:user/<name>` or `...:role/<name>`.
    pub arn: String,
    /// The 12-digit account the principal belongs to.
    pub account_id: String,
    /// The access key id the request was signed with.
    pub access_key_id: String,
    /// An account administrator: the account root of key policies means
    /// these principals (and each key's creator for its own keys).
    pub admin: bool,
}
