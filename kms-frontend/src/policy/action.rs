//! The KMS actions this service authorizes, one variant per permission AWS
//! names (`kms:Encrypt`, `kms:CreateGrant`, ...). Every operation names its
//! action here, so a new operation adds one line to [`Action`] and one call
//! to `service::authz`. Also the grant operations a grant may carry.

/// Declares [`Action`] with its AWS name.
macro_rules! actions {
    ($($variant:ident),* $(,)?) => {
        /// A KMS permission.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The AWS name without the `kms:` prefix, e.g. `Encrypt`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => stringify!($variant),)*
                }
            }
        }
    };
}

actions!(
    CreateKey,
    DescribeKey,
    ListKeys,
    EnableKey,
    DisableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    Encrypt,
    Decrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    ReEncryptFrom,
    ReEncryptTo,
    GenerateRandom,
    CreateAlias,
    UpdateAlias,
    DeleteAlias,
    ListAliases,
    GetKeyPolicy,
    PutKeyPolicy,
    ListKeyPolicies,
    CreateGrant,
    ListGrants,
    RetireGrant,
    RevokeGrant,
    ListRetirableGrants,
    Sign,
    Verify,
    GetPublicKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateMac,
    VerifyMac,
    DeriveSharedSecret,
    EnableKeyRotation,
    DisableKeyRotation,
    GetKeyRotationStatus,
    RotateKeyOnDemand,
    ListKeyRotations,
    TagResource,
    UntagResource,
    ListResourceTags,
    UpdateKeyDescription,
);

/// The operations a grant may allow (AWS's `GrantOperation` enum).
pub const GRANT_OPERATIONS: &[Action] = &[
    Action::Decrypt,
    Action::Encrypt,
    Action::GenerateDataKey,
    Action::GenerateDataKeyWithoutPlaintext,
    Action::ReEncryptFrom,
    Action::ReEncryptTo,
    Action::Sign,
    Action::Verify,
    Action::GetPublicKey,
    Action::CreateGrant,
    Action::RetireGrant,
    Action::DescribeKey,
    Action::GenerateDataKeyPair,
    Action::GenerateDataKeyPairWithoutPlaintext,
    Action::GenerateMac,
    Action::VerifyMac,
    Action::DeriveSharedSecret,
];

/// Grant operations that take an encryption context, so a grant
/// constraint can apply to them (CreateGrant and RetireGrant are also
/// allowed with constraints, as AWS allows them).
pub const CONTEXT_OPERATIONS: &[Action] = &[
    Action::Decrypt,
    Action::Encrypt,
    Action::GenerateDataKey,
    Action::GenerateDataKeyWithoutPlaintext,
    Action::ReEncryptFrom,
    Action::ReEncryptTo,
    Action::GenerateDataKeyPair,
    Action::GenerateDataKeyPairWithoutPlaintext,
    Action::CreateGrant,
    Action::RetireGrant,
];

impl Action {
    /// The grant operation named `name` (exact case, as AWS requires).
    pub fn grant_operation(name: &str) -> Option<Self> {
        GRANT_OPERATIONS.iter().copied().find(|a| a.name() == name)
    }

    /// `kms:Name`, lower-cased, for matching policy Action patterns
    /// (action names are case-insensitive in policies).
    pub fn policy_name_lower(self) -> String {
        format!("kms:{}", self.name().to_ascii_lowercase())
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kms:{}", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_operations_are_exact_case_and_known() {
        assert_eq!(Action::grant_operation("Decrypt"), Some(Action::Decrypt));
        assert_eq!(Action::grant_operation("decrypt"), None);
        assert_eq!(Action::grant_operation("PutKeyPolicy"), None);
        assert_eq!(Action::Encrypt.to_string(), "kms:Encrypt");
        assert_eq!(
            Action::ReEncryptFrom.policy_name_lower(),
            "kms:reencryptfrom"
        );
    }
}
