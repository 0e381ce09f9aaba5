//! Key rotation: EnableKeyRotation, DisableKeyRotation,
//! GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, and the
//! rotation step the scheduler (`lifecycle`) runs for automatic rotation.
//!
//! A rotation asks the HSM for a new version (CreateKey with version n+1)
//! and commits it as the key's current version; Encrypt uses the current
//! version and every older version keeps its token, so old ciphertexts
//! still decrypt. Only symmetric encryption keys rotate, as in AWS.

use super::cache::KeyEntry;
use super::resolve::{Accept, check_usable};
use super::specs::spec_info;
use super::{Kms, Page, paginate};
use crate::error::KmsError;
use crate::principal::Principal;
use crate::store::{KeyState, RotationRow, VersionRow};
use protocol::{Request, Response};
use std::sync::Arc;

/// Allowed and default RotationPeriodInDays.
pub const ROTATION_PERIOD: std::ops::RangeInclusive<i64> = 90..=2560;
pub const DEFAULT_ROTATION_PERIOD: i64 = 365;
/// On-demand rotations allowed per key (AWS KMS quota).
pub const MAX_ON_DEMAND_ROTATIONS: usize = 25;
pub const AUTOMATIC: &str = "AUTOMATIC";
pub const ON_DEMAND: &str = "ON_DEMAND";
const DAY: i64 = 86_400;

/// GetKeyRotationStatus's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationStatus {
    pub key_arn: String,
    pub enabled: bool,
    pub rotation_period_in_days: Option<i64>,
    pub next_rotation_date: Option<i64>,
}

/// One completed rotation of ListKeyRotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationEntry {
    pub key_arn: String,
    pub rotation_date: i64,
    pub rotation_type: String,
    /// Sort key: the version, zero-padded.
    order: String,
}

/// Refuses keys that cannot rotate (asymmetric, HMAC).
fn check_rotatable(entry: &KeyEntry) -> Result<(), KmsError> {
    let symmetric = spec_info(&entry.meta.key_spec).is_some_and(|s| s.name == "SYMMETRIC_DEFAULT");
    if symmetric {
        Ok(())
    } else {
        Err(KmsError::UnsupportedOperation(format!(
            "{} has key spec {}; only symmetric encryption keys can be rotated",
            entry.meta.arn, entry.meta.key_spec
        )))
    }
}

impl Kms {
    /// Resolves, checks rotatable and usable.
    fn rotation_key(
        &self,
        principal: &Principal,
        key_id: &str,
        action: &str,
    ) -> Result<Arc<KeyEntry>, KmsError> {
        let entry = self
            .core
            .resolve(principal, key_id, Accept::KeyOnly, action)?;
        check_usable(&entry)?;
        check_rotatable(&entry)?;
        Ok(entry)
    }

    /// EnableKeyRotation: RotationPeriodInDays 90..=2560, default 365.
    ///
    /// # Errors
    /// Validation, NotFound, AccessDenied, Disabled, KMSInvalidState,
    /// UnsupportedOperation.
    pub async fn enable_key_rotation(
        &self,
        principal: &Principal,
        key_id: &str,
        period_days: Option<i64>,
    ) -> Result<(), KmsError> {
        let days = period_days.unwrap_or(DEFAULT_ROTATION_PERIOD);
        if !ROTATION_PERIOD.contains(&days) {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{days}' at 'rotationPeriodInDays' failed \
                 to satisfy constraint: Member must have value between 90 and 2560"
            )));
        }
        self.rotation_key(principal, key_id, "EnableKeyRotation")?;
        let principal = principal.clone();
        let key_id = key_id.to_owned();
        self.write(move |core| {
            let entry = core.resolve(&principal, &key_id, Accept::KeyOnly, "EnableKeyRotation")?;
            check_usable(&entry)?;
            if entry
                .rotation
                .as_ref()
                .is_some_and(|r| r.period_days == days)
            {
                return Ok(());
            }
            let row = RotationRow {
                key_id: entry.meta.key_id.clone(),
                period_days: days,
                next_rotation_date: core.now() + days * DAY,
            };
            core.commit(|s| s.set_rotation(&row.key_id, Some(&row)))?;
            let mut new = (*entry).clone();
            new.rotation = Some(row);
            core.cache.put_key(new);
            Ok(())
        })
        .await
    }

    /// DisableKeyRotation.
    ///
    /// # Errors
    /// NotFound, AccessDenied, Disabled, KMSInvalidState, UnsupportedOperation.
    pub async fn disable_key_rotation(
        &self,
        principal: &Principal,
        key_id: &str,
    ) -> Result<(), KmsError> {
        self.rotation_key(principal, key_id, "DisableKeyRotation")?;
        let principal = principal.clone();
        let key_id = key_id.to_owned();
        self.write(move |core| {
            let entry = core.resolve(&principal, &key_id, Accept::KeyOnly, "DisableKeyRotation")?;
            check_usable(&entry)?;
            if entry.rotation.is_none() {
                return Ok(());
            }
            core.commit(|s| s.set_rotation(&entry.meta.key_id, None))?;
            let mut new = (*entry).clone();
            new.rotation = None;
            core.cache.put_key(new);
            Ok(())
        })
        .await
    }

    /// GetKeyRotationStatus.
    ///
    /// # Errors
    /// NotFound, AccessDenied, UnsupportedOperation.
    pub async fn get_key_rotation_status(
        &self,
        principal: &Principal,
        key_id: &str,
    ) -> Result<RotationStatus, KmsError> {
        let entry =
            self.core
                .resolve(principal, key_id, Accept::KeyOnly, "GetKeyRotationStatus")?;
        check_rotatable(&entry)?;
        let r = entry.rotation.as_ref();
        Ok(RotationStatus {
            key_arn: entry.meta.arn.clone(),
            enabled: r.is_some(),
            rotation_period_in_days: r.map(|r| r.period_days),
            next_rotation_date: r.map(|r| r.next_rotation_date),
        })
    }

    /// RotateKeyOnDemand: at most 25 per key. Returns the key ARN.
    ///
    /// # Errors
    /// NotFound, AccessDenied, Disabled, KMSInvalidState,
    /// UnsupportedOperation, LimitExceeded, Conflict (a rotation of the same
    /// key raced this one), HSM failures.
    pub async fn rotate_key_on_demand(
        &self,
        principal: &Principal,
        key_id: &str,
    ) -> Result<String, KmsError> {
        let entry = self.rotation_key(principal, key_id, "RotateKeyOnDemand")?;
        let done = entry
            .versions
            .values()
            .filter(|v| v.rotation_type.as_deref() == Some(ON_DEMAND))
            .count();
        if done >= MAX_ON_DEMAND_ROTATIONS {
            return Err(KmsError::LimitExceeded(format!(
                "{} has reached the limit of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations",
                entry.meta.arn
            )));
        }
        self.rotate(&entry, ON_DEMAND).await?;
        Ok(entry.meta.arn.clone())
    }

    /// Adds version n+1 to `entry`: the HSM makes it, then it is committed
    /// as current. A concurrent rotation of the same key gets Conflict.
    pub(crate) async fn rotate(
        &self,
        entry: &KeyEntry,
        rotation_type: &'static str,
    ) -> Result<(), KmsError> {
        let spec = spec_info(&entry.meta.key_spec)
            .ok_or_else(|| KmsError::Internal(format!("unknown spec {}", entry.meta.key_spec)))?
            .spec;
        let base = entry.meta.current_version;
        let version = base
            .checked_add(1)
            .ok_or_else(|| KmsError::LimitExceeded("too many key versions".into()))?;
        let key_id = entry.meta.key_id.clone();
        // Held until the token is committed: a master-key rotation waits
        // for every token made before it began (service/master_key).
        let _gate = self.core.token_gate.read().await;
        let response = self
            .hsm_call(Request::CreateKey {
                key_id: key_id.clone(),
                version,
                spec,
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::KeyCreated { token } = response else {
            return Err(KmsError::Internal("rotate: unexpected HSM response".into()));
        };
        self.write(move |core| {
            let Some(entry) = core.cache.key(&key_id) else {
                return Err(KmsError::NotFound(format!("Key '{key_id}' does not exist")));
            };
            if entry.meta.current_version != base {
                return Err(KmsError::Conflict(format!(
                    "{} is being rotated by another request; retry",
                    entry.meta.arn
                )));
            }
            if entry.meta.key_state == KeyState::PendingDeletion {
                return Err(super::resolve::pending_deletion(&entry));
            }
            let now = core.now();
            let row = VersionRow {
                key_id: key_id.clone(),
                version,
                token,
                created_at: now,
                rotation_type: Some(rotation_type.to_owned()),
            };
            let next = entry
                .rotation
                .as_ref()
                .filter(|_| rotation_type == AUTOMATIC)
                .map(|r| RotationRow {
                    next_rotation_date: now + r.period_days * DAY,
                    ..r.clone()
                });
            core.commit(|s| s.add_version(&row, next.as_ref()))?;
            let mut new = (*entry).clone();
            new.meta.current_version = version;
            new.add_version(row);
            if next.is_some() {
                new.rotation = next;
            }
            core.cache.put_key(new);
            Ok(())
        })
        .await?;
        tracing::info!(key_id = %entry.meta.key_id, version, rotation_type, "key rotated");
        Ok(())
    }

    /// ListKeyRotations: completed rotations, oldest first (Limit 1..=1000).
    ///
    /// # Errors
    /// Validation, InvalidMarker, NotFound, AccessDenied, UnsupportedOperation.
    pub async fn list_key_rotations(
        &self,
        principal: &Principal,
        key_id: &str,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<RotationEntry>, KmsError> {
        let entry = self
            .core
            .resolve(principal, key_id, Accept::KeyOnly, "ListKeyRotations")?;
        check_rotatable(&entry)?;
        let rotations = entry
            .versions
            .iter()
            .filter_map(|(n, v)| {
                v.rotation_type.as_ref().map(|t| RotationEntry {
                    key_arn: entry.meta.arn.clone(),
                    rotation_date: v.created_at,
                    rotation_type: t.clone(),
                    order: format!("{n:010}"),
                })
            })
            .collect();
        paginate(rotations, |r| r.order.as_str(), marker, limit)
    }
}
