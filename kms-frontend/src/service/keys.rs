//! Key lifecycle: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion.

use super::cache::KeyEntry;
use super::resolve::{Accept, pending_deletion};
use super::{Kms, Page, now, paginate};
use crate::error::KmsError;
use crate::principal::Principal;
use crate::store::{KeyRow, KeyState, VersionRow};
use protocol::{KeySpec, Request, Response};
use std::collections::BTreeMap;

/// Longest Description AWS accepts.
pub const MAX_DESCRIPTION: usize = 8192;
/// Default and allowed range of PendingWindowInDays.
pub const DEFAULT_PENDING_WINDOW: i64 = 30;
pub const PENDING_WINDOW: std::ops::RangeInclusive<i64> = 7..=30;

const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";
const ENCRYPT_DECRYPT: &str = "ENCRYPT_DECRYPT";
const AWS_KMS: &str = "AWS_KMS";

const OTHER_KEY_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "ECC_NIST_EDWARDS25519",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
];
const OTHER_USAGES: &[&str] = &["SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"];
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
pub(crate) fn check_create(input: &CreateKeyInput) -> Result<&'static str, KmsError> {
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
    let spec = choose(
        spec_field,
        spec,
        SYMMETRIC_DEFAULT,
        OTHER_KEY_SPECS,
        "use SYMMETRIC_DEFAULT",
    )?;
    choose(
        "KeyUsage",
        input.key_usage.as_deref(),
        ENCRYPT_DECRYPT,
        OTHER_USAGES,
        "use ENCRYPT_DECRYPT",
    )?;
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
    Ok(spec)
}

impl Kms {
    fn metadata(&self, entry: &KeyEntry) -> KeyMetadata {
        let m = &entry.meta;
        let pending = m.key_state == KeyState::PendingDeletion;
        KeyMetadata {
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
        let spec = check_create(&input)?;
        let key_id = uuid::Uuid::new_v4().to_string();
        let response = self
            .hsm_call(Request::CreateKey {
                key_id: key_id.clone(),
                version: 1,
                spec: KeySpec::SymmetricDefault,
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::KeyCreated { token } = response else {
            return Err(KmsError::Internal(
                "CreateKey: unexpected HSM response".into(),
            ));
        };
        let created = now();
        let row = KeyRow {
            arn: self.core.key_arn(&key_id),
            key_id: key_id.clone(),
            owner_arn: principal.arn.clone(),
            description: input.description.unwrap_or_default(),
            key_spec: spec.to_owned(),
            key_usage: ENCRYPT_DECRYPT.to_owned(),
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
            token: token.clone(),
            created_at: created,
        };
        let entry = KeyEntry {
            meta: row,
            tokens: BTreeMap::from([(1, token)]),
        };
        let meta = self.metadata(&entry);
        self.write(move |core| {
            core.commit(|s| s.insert_key(&entry.meta, &version))?;
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
        let entry = self
            .core
            .resolve(principal, key_id, Accept::KeyOrAlias, "DescribeKey")?;
        Ok(self.metadata(&entry))
    }

    /// ListKeys: the caller's keys, paged.
    ///
    /// # Errors
    /// Validation for Limit, InvalidMarker.
    pub async fn list_keys(
        &self,
        principal: &Principal,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<KeyListEntry>, KmsError> {
        let t = now();
        let keys: Vec<KeyListEntry> = self
            .core
            .cache
            .keys_owned_by(&principal.arn)
            .into_iter()
            .filter(|k| !super::resolve::is_deleted(k, t))
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
        action: &'static str,
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
        self.change_key(principal, key_id, "EnableKey", |k| match k.key_state {
            KeyState::Enabled => Ok(false),
            KeyState::Disabled => {
                k.key_state = KeyState::Enabled;
                k.enabled = true;
                Ok(true)
            }
            KeyState::PendingDeletion => Err(pending_state(k)),
        })
        .await
        .map(drop)
    }

    /// DisableKey.
    ///
    /// # Errors
    /// NotFound, AccessDenied, KMSInvalidState when pending deletion.
    pub async fn disable_key(&self, principal: &Principal, key_id: &str) -> Result<(), KmsError> {
        self.change_key(principal, key_id, "DisableKey", |k| match k.key_state {
            KeyState::Disabled => Ok(false),
            KeyState::Enabled => {
                k.key_state = KeyState::Disabled;
                k.enabled = false;
                Ok(true)
            }
            KeyState::PendingDeletion => Err(pending_state(k)),
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
        let deletion_date = now() + days * 86_400;
        let entry = self
            .change_key(principal, key_id, "ScheduleKeyDeletion", move |k| {
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
            .change_key(principal, key_id, "CancelKeyDeletion", |k| {
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
    pending_deletion(&KeyEntry {
        meta: k.clone(),
        tokens: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_defaults_and_refusals() {
        assert_eq!(
            check_create(&CreateKeyInput::default()).ok(),
            Some(SYMMETRIC_DEFAULT)
        );
        let with = |f: fn(&mut CreateKeyInput)| {
            let mut i = CreateKeyInput::default();
            f(&mut i);
            check_create(&i)
        };
        assert!(with(|i| i.key_spec = Some("SYMMETRIC_DEFAULT".into())).is_ok());
        assert!(with(|i| i.customer_master_key_spec = Some("SYMMETRIC_DEFAULT".into())).is_ok());
        assert!(matches!(
            with(|i| i.key_spec = Some("RSA_2048".into())),
            Err(KmsError::UnsupportedOperation(_))
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
            Err(KmsError::UnsupportedOperation(_))
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
