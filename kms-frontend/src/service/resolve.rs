//! KeyId resolution: key id, key ARN, alias name and alias ARN to a cached
//! key, with the checks every operation shares (ownership, key state), and
//! alias name validation.

use super::Core;
use super::authz::Extra;
use super::cache::KeyEntry;
use crate::error::KmsError;
use crate::policy::Action;
use crate::principal::Principal;
use crate::store::KeyState;
use std::sync::Arc;

/// Longest KeyId AWS accepts.
pub(crate) const MAX_KEY_ID_INPUT: usize = 2048;
/// Longest alias name AWS accepts.
pub(crate) const MAX_ALIAS_NAME: usize = 256;

/// What a KeyId parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyIdRef {
    /// A bare key id (UUID).
    Key(String),
    /// An alias name, `alias/...`.
    Alias(String),
}

/// Which forms an operation accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Key id, key ARN, alias name, alias ARN.
    KeyOrAlias,
    /// Key id or key ARN.
    KeyOnly,
}

fn invalid_key_id(input: &str) -> KmsError {
    KmsError::NotFound(format!("Invalid keyId '{input}'"))
}

/// Whether `s` has the shape of a key id this KMS makes (a UUID).
pub(crate) fn is_key_id(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

/// Parses a KeyId parameter. ARNs must name this KMS's region and account.
pub(crate) fn parse_key_id(
    input: &str,
    region: &str,
    account_id: &str,
    accept: Accept,
) -> Result<KeyIdRef, KmsError> {
    if input.is_empty() || input.len() > MAX_KEY_ID_INPUT {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'keyId' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_KEY_ID_INPUT}"
        )));
    }
    let resource = if let Some(rest) = input.strip_prefix("arn:") {
        // arn:PARTITION:kms:REGION:ACCOUNT:RESOURCE
        let mut parts = rest.splitn(5, ':');
        let (Some(partition), Some(service), Some(r), Some(a), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid_key_id(input));
        };
        if !partition.starts_with("aws") || service != "kms" {
            return Err(invalid_key_id(input));
        }
        if r != region || a != account_id {
            return Err(KmsError::NotFound(format!(
                "Key '{input}' does not exist in this region and account"
            )));
        }
        if let Some(id) = resource.strip_prefix("key/") {
            if !is_key_id(id) {
                return Err(invalid_key_id(input));
            }
            return Ok(KeyIdRef::Key(id.to_owned()));
        }
        if resource.starts_with("alias/") {
            resource
        } else {
            return Err(invalid_key_id(input));
        }
    } else {
        input
    };
    if resource.starts_with("alias/") {
        if accept == Accept::KeyOnly {
            return Err(invalid_key_id(input));
        }
        return Ok(KeyIdRef::Alias(resource.to_owned()));
    }
    if is_key_id(resource) {
        Ok(KeyIdRef::Key(resource.to_owned()))
    } else {
        Err(invalid_key_id(input))
    }
}

/// Checks an alias name for CreateAlias / UpdateAlias / DeleteAlias.
///
/// # Errors
/// ValidationException for the length, InvalidAliasNameException for the
/// prefix or characters, NotAuthorizedException for `alias/aws/`.
pub(crate) fn validate_alias_name(name: &str) -> Result<(), KmsError> {
    if name.is_empty() || name.len() > MAX_ALIAS_NAME {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'aliasName' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_ALIAS_NAME}"
        )));
    }
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(KmsError::InvalidAliasName(format!(
            "Alias '{name}' must begin with 'alias/'"
        )));
    };
    if rest.is_empty()
        || !rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
    {
        return Err(KmsError::InvalidAliasName(format!(
            "Alias '{name}' is invalid: after 'alias/' use one or more of a-z, A-Z, 0-9, '/', '_' and '-'"
        )));
    }
    if name.starts_with("alias/aws/") {
        return Err(KmsError::NotAuthorized(
            "Cannot create, update or delete an alias with the reserved prefix 'alias/aws/'".into(),
        ));
    }
    Ok(())
}

/// An action given as [`Action`] or by its AWS name (`"Encrypt"`).
pub(crate) trait ToAction {
    /// The action; an unknown name is a bug, refused (fail closed).
    fn to_action(&self) -> Result<Action, KmsError>;
}

impl ToAction for Action {
    fn to_action(&self) -> Result<Action, KmsError> {
        Ok(*self)
    }
}

impl ToAction for &str {
    fn to_action(&self) -> Result<Action, KmsError> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.name() == *self)
            .ok_or_else(|| KmsError::Internal(format!("no authorization action named {self}")))
    }
}

/// Refuses a key that cannot be used for cryptographic operations.
pub(crate) fn check_usable(entry: &KeyEntry) -> Result<(), KmsError> {
    match entry.meta.key_state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(format!(
            "{} is disabled.",
            entry.meta.arn
        ))),
        KeyState::PendingDeletion => Err(pending_deletion(entry)),
    }
}

/// Whether a key pending deletion has passed its deletion date; such a key
/// is treated as deleted (its token stays in the store until purged).
pub(crate) fn is_deleted(entry: &KeyEntry, now: i64) -> bool {
    entry.meta.key_state == KeyState::PendingDeletion
        && entry.meta.deletion_date.is_some_and(|d| d <= now)
}

pub(crate) fn pending_deletion(entry: &KeyEntry) -> KmsError {
    KmsError::InvalidState(format!("{} is pending deletion.", entry.meta.arn))
}

impl Core {
    /// `arn:aws:kms:REGION:ACCOUNT:key/ID`
    pub(crate) fn key_arn(&self, key_id: &str) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{key_id}",
            self.region, self.account_id
        )
    }

    /// `arn:aws:kms:REGION:ACCOUNT:alias/NAME`
    pub(crate) fn alias_arn(&self, alias_name: &str) -> String {
        format!(
            "arn:aws:kms:{}:{}:{alias_name}",
            self.region, self.account_id
        )
    }

    fn key_not_found(&self, key_id: &str) -> KmsError {
        KmsError::NotFound(format!("Key '{}' does not exist", self.key_arn(key_id)))
    }

    pub(crate) fn alias_not_found(&self, alias_name: &str) -> KmsError {
        KmsError::NotFound(format!(
            "Alias {} is not found.",
            self.alias_arn(alias_name)
        ))
    }

    /// Looks up a key by id, as given in a blob header or a store row.
    pub(crate) fn key_by_id(&self, key_id: &str) -> Result<Arc<KeyEntry>, KmsError> {
        match self.cache.key(key_id) {
            Some(entry) if !is_deleted(&entry, self.now()) => Ok(entry),
            _ => Err(self.key_not_found(key_id)),
        }
    }

    /// Resolves a KeyId parameter and authorizes `action` (an [`Action`],
    /// or its AWS name) on the key.
    pub(crate) fn resolve(
        &self,
        principal: &Principal,
        input: &str,
        accept: Accept,
        action: impl ToAction,
    ) -> Result<Arc<KeyEntry>, KmsError> {
        self.resolve_with(principal, input, accept, action.to_action()?, Extra::NONE)
    }

    /// [`Self::resolve`] with request facts (encryption context, grant
    /// operations) for conditions and grant constraints.
    pub(crate) fn resolve_with(
        &self,
        principal: &Principal,
        input: &str,
        accept: Accept,
        action: Action,
        extra: Extra<'_>,
    ) -> Result<Arc<KeyEntry>, KmsError> {
        let entry = self.lookup(input, accept)?;
        self.authorize(principal, &entry, action, extra)?;
        Ok(entry)
    }

    /// Resolves a KeyId parameter to a key that exists, without authorizing.
    pub(crate) fn lookup(&self, input: &str, accept: Accept) -> Result<Arc<KeyEntry>, KmsError> {
        let entry = match parse_key_id(input, &self.region, &self.account_id, accept)? {
            KeyIdRef::Key(id) => self.key_by_id(&id)?,
            KeyIdRef::Alias(name) => match self.cache.alias_target(&name) {
                Some((_, Some(entry))) if !is_deleted(&entry, self.now()) => entry,
                Some((alias, Some(_))) => return Err(self.key_not_found(&alias.target_key_id)),
                Some((alias, None)) => {
                    return Err(KmsError::Internal(format!(
                        "alias {} points at missing key {}",
                        alias.alias_name, alias.target_key_id
                    )));
                }
                None => return Err(self.alias_not_found(&name)),
            },
        };
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn parse(input: &str, accept: Accept) -> Result<KeyIdRef, KmsError> {
        parse_key_id(input, "us-east-1", "111122223333", accept)
    }

    #[test]
    fn parses_all_four_forms() {
        assert_eq!(
            parse(ID, Accept::KeyOrAlias).ok(),
            Some(KeyIdRef::Key(ID.into()))
        );
        assert_eq!(
            parse(
                &format!("arn:aws:kms:us-east-1:111122223333:key/{ID}"),
                Accept::KeyOrAlias
            )
            .ok(),
            Some(KeyIdRef::Key(ID.into()))
        );
        assert_eq!(
            parse("alias/my-key", Accept::KeyOrAlias).ok(),
            Some(KeyIdRef::Alias("alias/my-key".into()))
        );
        assert_eq!(
            parse(
                "arn:aws:kms:us-east-1:111122223333:alias/my/key",
                Accept::KeyOrAlias
            )
            .ok(),
            Some(KeyIdRef::Alias("alias/my/key".into()))
        );
    }

    #[test]
    fn key_only_refuses_aliases() {
        assert!(matches!(
            parse("alias/x", Accept::KeyOnly),
            Err(KmsError::NotFound(_))
        ));
        assert!(matches!(
            parse(
                "arn:aws:kms:us-east-1:111122223333:alias/x",
                Accept::KeyOnly
            ),
            Err(KmsError::NotFound(_))
        ));
        assert!(parse(ID, Accept::KeyOnly).is_ok());
    }

    #[test]
    fn refuses_malformed_and_foreign() {
        for bad in [
            "not-a-key",
            "arn:aws:kms:us-east-1:111122223333:key/zzz",
            "arn:aws:s3:us-east-1:111122223333:key/x",
            "arn:aws:kms:us-east-1",
            "arn:aws:kms:us-east-1:111122223333:keyring/x",
        ] {
            assert!(
                matches!(parse(bad, Accept::KeyOrAlias), Err(KmsError::NotFound(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse(
                &format!("arn:aws:kms:eu-west-1:111122223333:key/{ID}"),
                Accept::KeyOrAlias
            ),
            Err(KmsError::NotFound(_))
        ));
        assert!(matches!(
            parse(
                &format!("arn:aws:kms:us-east-1:999999999999:key/{ID}"),
                Accept::KeyOrAlias
            ),
            Err(KmsError::NotFound(_))
        ));
        assert!(matches!(
            parse("", Accept::KeyOrAlias),
            Err(KmsError::Validation(_))
        ));
        assert!(matches!(
            parse(&"a".repeat(2049), Accept::KeyOrAlias),
            Err(KmsError::Validation(_))
        ));
    }

    #[test]
    fn alias_names() {
        assert!(validate_alias_name("alias/ok_Name-1/x").is_ok());
        assert!(matches!(
            validate_alias_name("noprefix"),
            Err(KmsError::InvalidAliasName(_))
        ));
        assert!(matches!(
            validate_alias_name("alias/"),
            Err(KmsError::InvalidAliasName(_))
        ));
        assert!(matches!(
            validate_alias_name("alias/sp ace"),
            Err(KmsError::InvalidAliasName(_))
        ));
        assert!(matches!(
            validate_alias_name("alias/a:b"),
            Err(KmsError::InvalidAliasName(_))
        ));
        assert!(matches!(
            validate_alias_name("alias/aws/s3"),
            Err(KmsError::NotAuthorized(_))
        ));
        assert!(matches!(
            validate_alias_name(""),
            Err(KmsError::Validation(_))
        ));
        let long = format!("alias/{}", "a".repeat(251));
        assert_eq!(long.len(), 257);
        assert!(matches!(
            validate_alias_name(&long),
            Err(KmsError::Validation(_))
        ));
        assert!(validate_alias_name(&long[..256]).is_ok());
    }
}
