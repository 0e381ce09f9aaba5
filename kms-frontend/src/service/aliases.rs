//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases. Changing
//! an alias needs the action on its target key(s); ListAliases shows the
//! aliases of the keys the caller can see (as ListKeys).

use super::authz::Extra;
use super::resolve::{Accept, pending_deletion, validate_alias_name};
use super::{Kms, Page, paginate};
use crate::error::KmsError;
use crate::policy::Action;
use crate::principal::Principal;
use crate::store::{AliasRow, KeyState};

/// One entry of ListAliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasListEntry {
    pub alias_name: String,
    pub alias_arn: String,
    pub target_key_id: String,
    pub creation_date: i64,
    pub last_updated_date: i64,
}

impl Kms {
    /// CreateAlias: TargetKeyId is a key id or key ARN.
    ///
    /// # Errors
    /// InvalidAliasName, NotAuthorized (`alias/aws/`), Validation,
    /// AlreadyExists, NotFound, AccessDenied, KMSInvalidState.
    pub async fn create_alias(
        &self,
        principal: &Principal,
        alias_name: &str,
        target_key_id: &str,
    ) -> Result<(), KmsError> {
        validate_alias_name(alias_name)?;
        let principal = principal.clone();
        let alias_name = alias_name.to_owned();
        let target_key_id = target_key_id.to_owned();
        self.write(move |core| {
            let target = core.resolve(
                &principal,
                &target_key_id,
                Accept::KeyOnly,
                Action::CreateAlias,
            )?;
            if target.meta.key_state == KeyState::PendingDeletion {
                return Err(pending_deletion(&target));
            }
            if core.cache.alias(&alias_name).is_some() {
                return Err(KmsError::AlreadyExists(format!(
                    "An alias with the name {} already exists",
                    core.alias_arn(&alias_name)
                )));
            }
            let t = core.now();
            let row = AliasRow {
                alias_name,
                target_key_id: target.meta.key_id.clone(),
                creation_date: t,
                last_updated_date: t,
            };
            core.commit(|s| s.insert_alias(&row))?;
            core.cache.put_alias(row);
            Ok(())
        })
        .await
    }

    /// UpdateAlias: points an existing alias at another of the caller's keys.
    ///
    /// # Errors
    /// As CreateAlias; NotFound when the alias does not exist.
    pub async fn update_alias(
        &self,
        principal: &Principal,
        alias_name: &str,
        target_key_id: &str,
    ) -> Result<(), KmsError> {
        validate_alias_name(alias_name)?;
        let principal = principal.clone();
        let alias_name = alias_name.to_owned();
        let target_key_id = target_key_id.to_owned();
        self.write(move |core| {
            let Some((mut row, old)) = core.cache.alias_target(&alias_name) else {
                return Err(core.alias_not_found(&alias_name));
            };
            let Some(old) = old else {
                return Err(KmsError::Internal(format!(
                    "alias {alias_name} points at a missing key"
                )));
            };
            core.authorize(&principal, &old, Action::UpdateAlias, Extra::NONE)?;
            let target = core.resolve(
                &principal,
                &target_key_id,
                Accept::KeyOnly,
                Action::UpdateAlias,
            )?;
            if target.meta.key_state == KeyState::PendingDeletion {
                return Err(pending_deletion(&target));
            }
            row.target_key_id = target.meta.key_id.clone();
            row.last_updated_date = core.now();
            core.commit(|s| s.update_alias(&row))?;
            core.cache.put_alias(row);
            Ok(())
        })
        .await
    }

    /// DeleteAlias.
    ///
    /// # Errors
    /// InvalidAliasName, NotAuthorized, NotFound, AccessDenied.
    pub async fn delete_alias(
        &self,
        principal: &Principal,
        alias_name: &str,
    ) -> Result<(), KmsError> {
        validate_alias_name(alias_name)?;
        let principal = principal.clone();
        let alias_name = alias_name.to_owned();
        self.write(move |core| {
            let Some((_, target)) = core.cache.alias_target(&alias_name) else {
                return Err(core.alias_not_found(&alias_name));
            };
            if let Some(target) = target {
                core.authorize(&principal, &target, Action::DeleteAlias, Extra::NONE)?;
            }
            core.commit(|s| s.delete_alias(&alias_name))?;
            core.cache.remove_alias(&alias_name);
            Ok(())
        })
        .await
    }

    /// ListAliases: the caller's aliases, optionally only those of one key
    /// (key id or key ARN), paged.
    ///
    /// # Errors
    /// Validation for Limit, InvalidMarker, NotFound / AccessDenied for KeyId.
    pub async fn list_aliases(
        &self,
        principal: &Principal,
        key_id: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<AliasListEntry>, KmsError> {
        let key = match key_id {
            Some(k) => {
                Some(
                    self.core
                        .resolve(principal, k, Accept::KeyOnly, Action::ListAliases)?,
                )
            }
            None => None,
        };
        let visible: std::collections::HashSet<String> = self
            .core
            .cache
            .all_keys()
            .into_iter()
            .filter(|k| self.core.visible(principal, k))
            .map(|k| k.meta.key_id.clone())
            .collect();
        let rows = self
            .core
            .cache
            .aliases_where(key.as_ref().map(|k| k.meta.key_id.as_str()), |k| {
                visible.contains(&k.meta.key_id)
            });
        let entries: Vec<AliasListEntry> = rows
            .into_iter()
            .map(|a| AliasListEntry {
                alias_arn: self.core.alias_arn(&a.alias_name),
                alias_name: a.alias_name,
                target_key_id: a.target_key_id,
                creation_date: a.creation_date,
                last_updated_date: a.last_updated_date,
            })
            .collect();
        paginate(entries, |a| a.alias_name.as_str(), marker, limit)
    }
}
