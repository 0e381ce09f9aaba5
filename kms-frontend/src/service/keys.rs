//! Key lifecycle: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion.

use super::cache::KeyEntry;
use super::resolve::{Accept, pending_deletion};
use super::specs::{
    ENCRYPT_DECRYPT, SpecInfo, UNSUPPORTED_SPECS, encryption_name, mac_name, signing_name,
    spec_info,
};
use super::{Kms, Page, paginate};
use crate::error::KmsError;
use crate::policy::Action;
use crate::principal::Principal;
use crate::store::{KeyRow, KeyState, Tags, VersionRow};
use protocol::{Request, Response};
use std::sync::Arc;

/// Longest Description AWS accepts.
pub const MAX_DESCRIPTION: usize = 8192;
/// Default and allowed range of PendingWindowInDays.
pub const DEFAULT_PENDING_WINDOW: i64 = 30;
pub const PENDING_WINDOW: std::ops::RangeInclusive<i64> = 7..=30;

const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";
const AWS_KMS: &str = "AWS_KMS";
const ALL_USAGES: &[&str] = &[
    "ENCRYPT_DECRYPT",
    "SIGN_VERIFY",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
];
const OTHER_ORIGINS: &[&str] = &["EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];

/// CreateKey's parameters. `None` means the caller left it out.
#[derive(Debug, Clone, Default)]
pub struct CreateKeyInput {
    pub description: Option<String>,
    pub key_usage: Option<String>,
    pub key_spec: Option<String>,
    pub customer_master_key_spec: Option<String>,
    pub origin: Option<String>,
    pub multi_region: Option<bool>,
    pub custom_key_store_id: Option<String>,
    /// Tags, in the order given.
    pub tags: Vec<(String, String)>,
    /// A key policy document; the default policy when `None`.
    pub policy: Option<String>,
    /// Skip the check that the caller can still PutKeyPolicy afterwards.
    pub bypass_policy_lockout_safety_check: bool,
}

/// A key's metadata as DescribeKey reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    pub aws_account_id: String,
    pub key_id: String,
    pub arn: String,
    pub creation_date: i64,
    pub enabled: bool,
    pub description: String,
    pub key_usage: String,
    pub key_state: KeyState,
    pub origin: String,
    pub key_spec: String,
    pub deletion_date: Option<i64>,
    pub pending_deletion_window_in_days: Option<i64>,
    pub encryption_algorithms: Vec<&'static str>,
    pub signing_algorithms: Vec<&'static str>,
    pub mac_algorithms: Vec<&'static str>,
}

/// One entry of ListKeys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListEntry {
    pub key_id: String,
    pub key_arn: String,
}

/// ScheduleKeyDeletion's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledDeletion {
    pub key_arn: String,
    pub deletion_date: i64,
    pub key_state: KeyState,
    pub pending_window_in_days: i64,
}

fn choose(
    field: &str,
    value: Option<&str>,
    default: &'static str,
    others: &[&str],
    what: &str,
) -> Result<&'static str, KmsError> {
    match value {
        None => Ok(default),
        Some(v) if v == default => Ok(default),
        Some(v) if others.contains(&v) => Err(KmsError::UnsupportedOperation(format!(
            "{field} {v} is not supported by this KMS yet; {what}"
        ))),
        Some(v) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{v}' at '{field}' failed to satisfy \
             constraint: Member must satisfy enum value set: [{default}, {}]",
            others.join(", ")
        ))),
    }
}

/// Checks CreateKey's parameters; pure.
pub(crate) fn check_create(
    input: &CreateKeyInput,
) -> Result<(&'static SpecInfo, &'static str), KmsError> {
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION)
    {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'description' failed to satisfy \
             constraint: Member must have length less than or equal to {MAX_DESCRIPTION}"
        )));
    }
    if input.key_spec.is_some() && input.customer_master_key_spec.is_some() {
        return Err(KmsError::Validation(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. \
             CustomerMasterKeySpec is deprecated; use KeySpec."
                .into(),
        ));
    }
    let spec_field = if input.key_spec.is_some() {
        "KeySpec"
    } else {
        "CustomerMasterKeySpec"
    };
    let spec = input
        .key_spec
        .as_deref()
        .or(input.customer_master_key_spec.as_deref());
    let spec = match spec {
        None => spec_info(SYMMETRIC_DEFAULT),
        Some(v) => spec_info(v),
    };
    let spec = match (
        spec,
        input
            .key_spec
            .as_deref()
            .or(input.customer_master_key_spec.as_deref()),
    ) {
        (Some(info), _) => info,
        (None, Some(v)) if UNSUPPORTED_SPECS.contains(&v) => {
            return Err(KmsError::UnsupportedOperation(format!(
                "{spec_field} {v} is not supported by this KMS"
            )));
        }
        (None, v) => {
            let names: Vec<&str> = super::specs::SPECS
                .iter()
                .map(|s| s.name)
                .chain(UNSUPPORTED_SPECS.iter().copied())
                .collect();
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{}' at '{spec_field}' failed to satisfy \
                 constraint: Member must satisfy enum value set: [{}]",
                v.unwrap_or_default(),
                names.join(", ")
            )));
        }
    };
    let usage = input.key_usage.as_deref().unwrap_or(ENCRYPT_DECRYPT);
    if !ALL_USAGES.contains(&usage) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{usage}' at 'KeyUsage' failed to satisfy \
             constraint: Member must satisfy enum value set: [{}]",
            ALL_USAGES.join(", ")
        )));
    }
    let Some(usage) = spec.usages.iter().copied().find(|u| *u == usage) else {
        return Err(KmsError::Validation(format!(
            "KeyUsage {usage} is not compatible with KeySpec {}; use one of: {}",
            spec.name,
            spec.usages.join(", ")
        )));
    };
    check_tags(&input.tags)?;
    choose(
        "Origin",
        input.origin.as_deref(),
        AWS_KMS,
        OTHER_ORIGINS,
        "use AWS_KMS",
    )?;
    if input.multi_region == Some(true) {
        return Err(KmsError::UnsupportedOperation(
            "Multi-Region keys are not supported by this KMS; omit MultiRegion or set it to false"
                .into(),
        ));
    }
    if input.custom_key_store_id.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Custom key stores are not supported by this KMS; omit CustomKeyStoreId".into(),
        ));
    }
    Ok((spec, usage))
}

/// Tags on CreateKey: each valid, no key twice.
fn check_tags(tags: &[(String, String)]) -> Result<(), KmsError> {
    let mut merged = Tags::new();
    for (k, v) in tags {
        super::tags::check_tag(k, v)?;
        if merged.insert(k.clone(), v.clone()).is_some() {
            return Err(KmsError::Tag(format!(
                "Duplicate tag key '{k}' in the request"
            )));
        }
    }
    super::tags::check_tag_count(merged.len())
}

impl Kms {
    fn metadata(&self, entry: &KeyEntry) -> KeyMetadata {
        let m = &entry.meta;
        let pending = m.key_state == KeyState::PendingDeletion;
        let info = spec_info(&m.key_spec);
        let usage_is = |u: &str| m.key_usage == u;
        let encryption_algorithms = match info {
            Some(i) if usage_is(ENCRYPT_DECRYPT) && i.encryption.is_empty() => {
                vec![SYMMETRIC_DEFAULT]
            }
            Some(i) if usage_is(ENCRYPT_DECRYPT) => {
                i.encryption.iter().map(|a| encryption_name(*a)).collect()
            }
            _ => Vec::new(),
        };
        let signing_algorithms = match info {
            Some(i) if usage_is(super::specs::SIGN_VERIFY) => {
                i.signing.iter().map(|a| signing_name(*a)).collect()
            }
            _ => Vec::new(),
        };
        let mac_algorithms = info
            .map(|i| i.mac.iter().map(|a| mac_name(*a)).collect())
            .unwrap_or_default();
        KeyMetadata {
            encryption_algorithms,
            signing_algorithms,
            mac_algorithms,
            aws_account_id: self.core.account_id.clone(),
            key_id: m.key_id.clone(),
            arn: m.arn.clone(),
            creation_date: m.creation_date,
            enabled: m.enabled,
            description: m.description.clone(),
            key_usage: m.key_usage.clone(),
            key_state: m.key_state,
            origin: m.origin.clone(),
            key_spec: m.key_spec.clone(),
            deletion_date: m.deletion_date.filter(|_| pending),
            pending_deletion_window_in_days: m.pending_window_days.filter(|_| pending),
        }
    }

    /// CreateKey: new key material in the HSM, persisted before the reply.
    ///
    /// # Errors
    /// Validation / UnsupportedOperation for parameters, HSM and store failures.
    pub async fn create_key(
        &self,
        principal: &Principal,
        input: CreateKeyInput,
    ) -> Result<KeyMetadata, KmsError> {
        let (spec, usage) = check_create(&input)?;
        let key_id = uuid::Uuid::new_v4().to_string();
        let arn = self.core.key_arn(&key_id);
        let policy = match &input.policy {
            None => None,
            Some(text) => {
                let p = Arc::new(super::policies::parse(text)?);
                if !input.bypass_policy_lockout_safety_check {
                    super::policies::lockout_check(&self.core, principal, &p, &arn, true)?;
                }
                Some(p)
            }
        };
        // Held until the token is committed: a master-key rotation waits
        // for every token made before it began (service/master_key).
        let _gate = self.core.token_gate.read().await;
        let response = self
            .hsm_call(Request::CreateKey {
                key_id: key_id.clone(),
                version: 1,
                spec: spec.spec,
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::KeyCreated { token } = response else {
            return Err(KmsError::Internal(
                "CreateKey: unexpected HSM response".into(),
            ));
        };
        let created = self.now();
        let row = KeyRow {
            arn,
            key_id: key_id.clone(),
            owner_arn: principal.arn.clone(),
            description: input.description.unwrap_or_default(),
            key_spec: spec.name.to_owned(),
            key_usage: usage.to_owned(),
            origin: AWS_KMS.to_owned(),
            key_state: KeyState::Enabled,
            creation_date: created,
            enabled: true,
            deletion_date: None,
            pending_window_days: None,
            current_version: 1,
        };
        let version = VersionRow {
            key_id: key_id.clone(),
            version: 1,
            token,
            created_at: created,
            rotation_type: None,
        };
        let mut entry = KeyEntry::new(row);
        entry.add_version(version.clone());
        entry.tags = input.tags.into_iter().collect();
        entry.policy = policy;
        let meta = self.metadata(&entry);
        let policy_text = input.policy;
        self.write(move |core| {
            core.commit(|s| {
                s.insert_key_with_policy(&entry.meta, &version, &entry.tags, policy_text.as_deref())
            })?;
            core.cache.put_key(entry);
            Ok(())
        })
        .await?;
        tracing::info!(key_id = %key_id, owner = %principal.arn, "key created");
        Ok(meta)
    }

    /// DescribeKey: any KeyId form.
    ///
    /// # Errors
    /// NotFound, AccessDenied.
    pub async fn describe_key(
        &self,
        principal: &Principal,
        key_id: &str,
    ) -> Result<KeyMetadata, KmsError> {
        let entry =
            self.core
                .resolve(principal, key_id, Accept::KeyOrAlias, Action::DescribeKey)?;
        Ok(self.metadata(&entry))
    }

    /// ListKeys: the keys the caller can see (see `authz::Core::visible`),
    /// paged.
    ///
    /// # Errors
    /// Validation for Limit, InvalidMarker.
    pub async fn list_keys(
        &self,
        principal: &Principal,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<KeyListEntry>, KmsError> {
        let t = self.now();
        let keys: Vec<KeyListEntry> = self
            .core
            .cache
            .all_keys()
            .into_iter()
            .filter(|k| !super::resolve::is_deleted(k, t) && self.core.visible(principal, k))
            .map(|k| KeyListEntry {
                key_id: k.meta.key_id.clone(),
                key_arn: k.meta.arn.clone(),
            })
            .collect();
        paginate(keys, |k| k.key_id.as_str(), marker, limit)
    }

    /// Applies `change` to a key named by id or ARN, under the writer lock,
    /// committing only when it reports a change. Returns the new entry.
    async fn change_key<F>(
        &self,
        principal: &Principal,
        key_id: &str,
        action: Action,
        change: F,
    ) -> Result<KeyEntry, KmsError>
    where
        F: FnOnce(&mut KeyRow) -> Result<bool, KmsError> + Send + 'static,
    {
        let principal = principal.clone();
        let key_id = key_id.to_owned();
        self.write(move |core| {
            let entry = core.resolve(&principal, &key_id, Accept::KeyOnly, action)?;
            let mut new = (*entry).clone();
            if change(&mut new.meta)? {
                core.commit(|s| s.update_key(&new.meta))?;
                core.cache.put_key(new.clone());
            }
            Ok(new)
        })
        .await
    }

    /// EnableKey.
    ///
    /// # Errors
    /// NotFound, AccessDenied, KMSInvalidState when pending deletion.
    pub async fn enable_key(&self, principal: &Principal, key_id: &str) -> Result<(), KmsError> {
        self.change_key(principal, key_id, Action::EnableKey, |k| {
            match k.key_state {
                KeyState::Enabled => Ok(false),
                KeyState::Disabled => {
                    k.key_state = KeyState::Enabled;
                    k.enabled = true;
                    Ok(true)
                }
                KeyState::PendingDeletion => Err(pending_state(k)),
            }
        })
        .await
        .map(drop)
    }

    /// DisableKey.
    ///
    /// # Errors
    /// NotFound, AccessDenied, KMSInvalidState when pending deletion.
    pub async fn disable_key(&self, principal: &Principal, key_id: &str) -> Result<(), KmsError> {
        self.change_key(principal, key_id, Action::DisableKey, |k| {
            match k.key_state {
                KeyState::Disabled => Ok(false),
                KeyState::Enabled => {
                    k.key_state = KeyState::Disabled;
                    k.enabled = false;
                    Ok(true)
                }
                KeyState::PendingDeletion => Err(pending_state(k)),
            }
        })
        .await
        .map(drop)
    }

    /// ScheduleKeyDeletion: PendingWindowInDays 7..=30, default 30.
    ///
    /// # Errors
    /// Validation for the window, NotFound, AccessDenied, KMSInvalidState
    /// when already pending deletion.
    pub async fn schedule_key_deletion(
        &self,
        principal: &Principal,
        key_id: &str,
        pending_window_in_days: Option<i64>,
    ) -> Result<ScheduledDeletion, KmsError> {
        let days = pending_window_in_days.unwrap_or(DEFAULT_PENDING_WINDOW);
        if !PENDING_WINDOW.contains(&days) {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to \
                 satisfy constraint: Member must have value between 7 and 30"
            )));
        }
        let deletion_date = self.now() + days * 86_400;
        let entry = self
            .change_key(principal, key_id, Action::ScheduleKeyDeletion, move |k| {
                if k.key_state == KeyState::PendingDeletion {
                    return Err(pending_state(k));
                }
                k.key_state = KeyState::PendingDeletion;
                k.enabled = false;
                k.deletion_date = Some(deletion_date);
                k.pending_window_days = Some(days);
                Ok(true)
            })
            .await?;
        tracing::info!(key_id = %entry.meta.key_id, days, "key deletion scheduled");
        Ok(ScheduledDeletion {
            key_arn: entry.meta.arn,
            deletion_date,
            key_state: KeyState::PendingDeletion,
            pending_window_in_days: days,
        })
    }

    /// CancelKeyDeletion: the key becomes Disabled. Returns the key ARN.
    ///
    /// # Errors
    /// NotFound, AccessDenied, KMSInvalidState when not pending deletion.
    pub async fn cancel_key_deletion(
        &self,
        principal: &Principal,
        key_id: &str,
    ) -> Result<String, KmsError> {
        let entry = self
            .change_key(principal, key_id, Action::CancelKeyDeletion, |k| {
                if k.key_state != KeyState::PendingDeletion {
                    return Err(KmsError::InvalidState(format!(
                        "{} is not pending deletion.",
                        k.arn
                    )));
                }
                k.key_state = KeyState::Disabled;
                k.enabled = false;
                k.deletion_date = None;
                k.pending_window_days = None;
                Ok(true)
            })
            .await?;
        Ok(entry.meta.arn)
    }
}

fn pending_state(k: &KeyRow) -> KmsError {
    pending_deletion(&KeyEntry::new(k.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_defaults_and_refusals() {
        assert_eq!(
            check_create(&CreateKeyInput::default())
                .ok()
                .map(|(s, u)| (s.name, u)),
            Some((SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT))
        );
        let with = |f: fn(&mut CreateKeyInput)| {
            let mut i = CreateKeyInput::default();
            f(&mut i);
            check_create(&i)
        };
        assert!(with(|i| i.key_spec = Some("SYMMETRIC_DEFAULT".into())).is_ok());
        assert!(with(|i| i.customer_master_key_spec = Some("SYMMETRIC_DEFAULT".into())).is_ok());
        assert!(with(|i| i.key_spec = Some("RSA_2048".into())).is_ok());
        assert!(matches!(
            with(|i| i.key_spec = Some("ECC_NIST_P256".into())),
            Err(KmsError::Validation(_))
        ));
        assert!(
            with(|i| {
                i.key_spec = Some("ECC_NIST_P256".into());
                i.key_usage = Some("SIGN_VERIFY".into());
            })
            .is_ok()
        );
        assert!(matches!(
            with(|i| i.key_spec = Some("ECC_NIST_EDWARDS25519".into())),
            Err(KmsError::UnsupportedOperation(_))
        ));
        assert!(matches!(
            with(|i| i.tags = vec![("a".into(), "1".into()), ("a".into(), "2".into())]),
            Err(KmsError::Tag(_))
        ));
        assert!(matches!(
            with(|i| i.key_spec = Some("BOGUS".into())),
            Err(KmsError::Validation(_))
        ));
        assert!(matches!(
            with(|i| {
                i.key_spec = Some("SYMMETRIC_DEFAULT".into());
                i.customer_master_key_spec = Some("SYMMETRIC_DEFAULT".into());
            }),
            Err(KmsError::Validation(_))
        ));
        assert!(matches!(
            with(|i| i.key_usage = Some("SIGN_VERIFY".into())),
            Err(KmsError::Validation(_))
        ));
        assert!(matches!(
            with(|i| i.origin = Some("EXTERNAL".into())),
            Err(KmsError::UnsupportedOperation(_))
        ));
        assert!(matches!(
            with(|i| i.multi_region = Some(true)),
            Err(KmsError::UnsupportedOperation(_))
        ));
        assert!(with(|i| i.multi_region = Some(false)).is_ok());
        assert!(matches!(
            with(|i| i.description = Some("x".repeat(8193))),
            Err(KmsError::Validation(_))
        ));
        assert!(with(|i| i.description = Some("x".repeat(8192))).is_ok());
    }
}
