//! The one authorization function every KMS operation calls:
//! [`Core::authorize`] (principal, [`Action`], key, request facts) ->
//! allowed, or AccessDeniedException in AWS's form. It evaluates the key's
//! cached policy and grants (no database, no HSM), logs every decision as a
//! structured `authz` event, and hands it to an optional [`DecisionSink`]
//! (the audit log's hook). A new operation adds one [`Action`] variant and
//! one `authorize` call.
//!
//! Who the account root of a key policy stands for: this service has no
//! IAM, so the account's own permissions are "administrators may do
//! everything, and a key's creator may do everything with that key". With
//! the default key policy that gives AWS's behaviour for the seeds' "key
//! ownership"; a custom policy without the root statement takes it away,
//! as it would in AWS.

use super::Core;
use super::cache::KeyEntry;
use crate::error::KmsError;
use crate::policy::{Action, Basis, Decision, Facts, evaluate};
use crate::principal::Principal;

/// Receives every authorization decision (the audit log implements it).
pub trait DecisionSink: Send + Sync + std::fmt::Debug {
    /// Called once per decision, after it is made and before the reply.
    fn record(&self, decision: &Decision);
}

/// Request facts beyond principal, action and key.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extra<'a> {
    /// The encryption context of a cryptographic request.
    pub context: Option<&'a [(String, String)]>,
    /// The operations of the grant being created.
    pub grant_operations: Option<&'a [Action]>,
}

impl Extra<'_> {
    pub(crate) const NONE: Extra<'static> = Extra {
        context: None,
        grant_operations: None,
    };
}

/// The AWS AccessDeniedException for a decision.
pub(crate) fn denied(d: &Decision) -> KmsError {
    let why = match d.basis {
        Basis::Statement { .. } => "with an explicit deny in a resource-based policy".to_owned(),
        _ => format!(
            "because no resource-based policy allows the {} action",
            d.action
        ),
    };
    KmsError::AccessDenied(format!(
        "User: {} is not authorized to perform: {} on resource: {} {why}",
        d.principal, d.action, d.key_arn
    ))
}

impl Core {
    /// Whether the caller's account permissions cover `entry`: an
    /// administrator of this account, or the key's creator.
    pub(crate) fn account_allows(&self, p: &Principal, entry: &KeyEntry) -> bool {
        p.account_id == self.account_id && (p.admin || p.arn == entry.meta.owner_arn)
    }

    /// The key's policy: as written, or the default policy.
    pub(crate) fn policy_of<'a>(&'a self, entry: &'a KeyEntry) -> &'a crate::policy::Policy {
        entry.policy.as_deref().unwrap_or(&self.default_policy)
    }

    /// The decision, without logging it (listings use this to filter).
    pub(crate) fn decide(
        &self,
        principal: &Principal,
        entry: &KeyEntry,
        action: Action,
        extra: Extra<'_>,
    ) -> Decision {
        let grants = self.cache.grants_of(&entry.meta.key_id);
        let facts = Facts {
            principal,
            account_allows: self.account_allows(principal, entry),
            action,
            key_arn: &entry.meta.arn,
            context: extra.context,
            grant_operations: extra.grant_operations,
        };
        evaluate(self.policy_of(entry), &grants, &facts)
    }

    /// Whether `principal` can see `entry` in ListKeys / ListAliases: its
    /// key policy lets it DescribeKey, or it holds a grant on the key.
    /// Not logged: a listing is not an access to the key. (AWS lists every
    /// key of the account to anyone with kms:ListKeys; here the principals
    /// of the one account are tenants, so a key stays invisible to a
    /// principal with no rights on it. Administrators see every key.)
    pub(crate) fn visible(&self, principal: &Principal, entry: &KeyEntry) -> bool {
        self.decide(principal, entry, Action::DescribeKey, Extra::NONE)
            .allowed
            || self
                .cache
                .grants_of(&entry.meta.key_id)
                .iter()
                .any(|g| g.grantee == principal.arn)
    }

    /// Logs and hands on a decision.
    pub(crate) fn record(&self, d: &Decision) {
        tracing::info!(
            target: "authz",
            principal = %d.principal,
            action = %d.action,
            key = %d.key_arn,
            allowed = d.allowed,
            decided_by = %d.decided_by(),
            "authorization decision"
        );
        if let Some(sink) = self.decision_sink.get() {
            sink.record(d);
        }
    }

    /// THE check: decides, records, and refuses with AccessDeniedException.
    pub(crate) fn authorize(
        &self,
        principal: &Principal,
        entry: &KeyEntry,
        action: Action,
        extra: Extra<'_>,
    ) -> Result<Decision, KmsError> {
        let d = self.decide(principal, entry, action, extra);
        self.record(&d);
        if d.allowed { Ok(d) } else { Err(denied(&d)) }
    }
}
