//! Key policies: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies, and the
//! checks CreateKey shares: parse-and-validate on write
//! (MalformedPolicyDocumentException with the reason) and the policy
//! lockout safety check (the caller must still be allowed PutKeyPolicy
//! under the new policy unless it sets BypassPolicyLockoutSafetyCheck).
//! The parsed policy replaces the cached one after the commit, so the next
//! request is decided under it.

use super::cache::KeyEntry;
use super::resolve::Accept;
use super::{Core, Kms, Page, paginate};
use crate::error::KmsError;
use crate::policy::{Action, Facts, Policy, evaluate};
use crate::principal::Principal;
use std::sync::Arc;

/// The only key policy name.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// Parses a policy document for CreateKey / PutKeyPolicy.
pub(crate) fn parse(text: &str) -> Result<Policy, KmsError> {
    Policy::parse(text).map_err(KmsError::MalformedPolicyDocument)
}

/// Refuses a policy under which `principal` could not PutKeyPolicy again.
/// `account_allows`: whether the caller's account permissions cover the
/// key (administrator, or the key's creator).
pub(crate) fn lockout_check(
    core: &Core,
    principal: &Principal,
    policy: &Policy,
    key_arn: &str,
    account_allows: bool,
) -> Result<(), KmsError> {
    let facts = Facts {
        principal,
        account_allows: account_allows && principal.account_id == core.account_id,
        action: Action::PutKeyPolicy,
        key_arn,
        context: None,
        grant_operations: None,
    };
    if evaluate(policy, &[], &facts).allowed {
        Ok(())
    } else {
        Err(KmsError::MalformedPolicyDocument(
            "The new key policy will not allow you to update the key policy in the future.".into(),
        ))
    }
}

fn check_name(name: Option<&str>) -> Result<(), KmsError> {
    match name {
        None | Some(DEFAULT_POLICY_NAME) => Ok(()),
        Some(n) if n.is_empty() || n.len() > 128 => Err(KmsError::Validation(
            "1 validation error detected: Value at 'policyName' failed to satisfy constraint: \
             Member must have length between 1 and 128"
                .into(),
        )),
        Some(n) => Err(KmsError::NotFound(format!(
            "No key policy named '{n}'; the only key policy name is '{DEFAULT_POLICY_NAME}'"
        ))),
    }
}

impl Kms {
    /// GetKeyPolicy: the document as written (the default policy's text
    /// when none was).
    ///
    /// # Errors
    /// NotFound, AccessDenied, Validation.
    pub async fn get_key_policy(
        &self,
        principal: &Principal,
        key_id: &str,
        policy_name: Option<&str>,
    ) -> Result<String, KmsError> {
        let entry = self
            .core
            .resolve(principal, key_id, Accept::KeyOnly, Action::GetKeyPolicy)?;
        check_name(policy_name)?;
        Ok(self.core.policy_of(&entry).text().to_owned())
    }

    /// ListKeyPolicies: always `["default"]`.
    ///
    /// # Errors
    /// NotFound, AccessDenied, Validation, InvalidMarker.
    pub async fn list_key_policies(
        &self,
        principal: &Principal,
        key_id: &str,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<String>, KmsError> {
        self.core
            .resolve(principal, key_id, Accept::KeyOnly, Action::ListKeyPolicies)?;
        paginate(
            vec![DEFAULT_POLICY_NAME.to_owned()],
            String::as_str,
            marker,
            limit,
        )
    }

    /// PutKeyPolicy: validates, runs the lockout check unless bypassed,
    /// commits, then swaps the cached policy.
    ///
    /// # Errors
    /// MalformedPolicyDocument, NotFound, AccessDenied, Validation.
    pub async fn put_key_policy(
        &self,
        principal: &Principal,
        key_id: &str,
        policy_name: Option<&str>,
        policy: &str,
        bypass_lockout_check: bool,
    ) -> Result<(), KmsError> {
        check_name(policy_name)?;
        let parsed = Arc::new(parse(policy)?);
        let principal = principal.clone();
        let key_id = key_id.to_owned();
        let text = policy.to_owned();
        self.write(move |core| {
            let entry = core.resolve(&principal, &key_id, Accept::KeyOnly, Action::PutKeyPolicy)?;
            if !bypass_lockout_check {
                let own = core.account_allows(&principal, &entry);
                lockout_check(core, &principal, &parsed, &entry.meta.arn, own)?;
            }
            core.commit(|s| s.put_key_policy(&entry.meta.key_id, &text))?;
            let mut new: KeyEntry = (*entry).clone();
            new.policy = Some(parsed);
            core.cache.put_key(new);
            tracing::info!(key_id = %entry.meta.key_id, by = %principal.arn, "key policy replaced");
            Ok(())
        })
        .await
    }
}
