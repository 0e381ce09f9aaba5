//! The one authorization function every KMS operation calls:
//! `Core::authorize` (principal, [`Action`], key, request facts) ->
//! allowed, or AccessDeniedException in AWS's form. It evaluates the key's
//! cached policy and grants (no database, no HSM), logs every decision as a
//! structured `authz` event, and hands it, as an [`Authorization`], to the
//! [`DecisionSink`] of the request being served (the audit log's per-request
//! collector, installed with [`with_decision_sink`]). Checks that are not
//! key-policy decisions (administrator-only operations, grants retired by
//! their retiring principal) go through `Core::record_authorization` so
//! they reach the same sink. A new operation adds one [`Action`] variant and
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
use std::future::Future;
use std::sync::Arc;

/// Receives the authorization decisions of one request (the audit log's
/// collector implements it).
pub trait DecisionSink: Send + Sync + std::fmt::Debug {
    /// Called once per decision, after it is made and before the reply.
    fn record(&self, decision: &Authorization);
}

tokio::task_local! {
    /// The sink of the request this task serves.
    static REQUEST_SINK: Arc<dyn DecisionSink>;
}

/// Runs `f` with `sink` receiving every decision made while serving it,
/// including those made on the blocking write thread (`Kms::write` carries
/// the sink there). Concurrent requests each have their own sink.
pub async fn with_decision_sink<F: Future>(sink: Arc<dyn DecisionSink>, f: F) -> F::Output {
    REQUEST_SINK.scope(sink, f).await
}

/// The current request's sink, to carry onto another thread.
pub(crate) fn current_sink() -> Option<Arc<dyn DecisionSink>> {
    REQUEST_SINK.try_with(Arc::clone).ok()
}

/// Runs `f` (synchronously, e.g. on a blocking thread) with `sink` as the
/// request's sink.
pub(crate) fn in_sink_scope<R>(sink: Option<Arc<dyn DecisionSink>>, f: impl FnOnce() -> R) -> R {
    match sink {
        Some(sink) => REQUEST_SINK.sync_scope(sink, f),
        None => f(),
    }
}

/// Why a request was allowed or denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A key policy statement: an Allow, or (when denied) an explicit Deny.
    /// Its Sid, if any, and 1-based position.
    Statement { sid: Option<String>, index: usize },
    /// A grant on the key, by grant id.
    Grant(String),
    /// Nothing allowed the request (an implicit deny).
    NoAllow,
    /// The caller is an administrator of this KMS.
    Administrator,
    /// An administrator-only operation, and the caller is not one.
    NotAdministrator,
    /// A grant allowed CreateGrant, but the new grant asks for operations
    /// that grant does not hold.
    GrantExceeded(String),
    /// The caller is the retiring principal of this grant.
    RetiringPrincipal(String),
    /// The caller asked about itself (ListRetirableGrants).
    SamePrincipal,
}

impl From<&Basis> for Reason {
    fn from(b: &Basis) -> Self {
        match b {
            Basis::Statement { sid, index } => Self::Statement {
                sid: sid.clone(),
                index: *index,
            },
            Basis::Grant(id) => Self::Grant(id.clone()),
            Basis::NoAllow => Self::NoAllow,
        }
    }
}

/// One authorization decision, as logged and handed to a [`DecisionSink`]:
/// who, what, on which resource, the outcome and what decided it. Holds no
/// request values (no encryption context).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The caller's ARN.
    pub principal: String,
    /// `kms:Encrypt`, or `hsm-kms-admin:CreatePrincipal` for admin checks.
    pub action: String,
    /// The key ARN; the principal ARN asked about (ListRetirableGrants);
    /// the account root ARN for principal management.
    pub resource: String,
    pub allowed: bool,
    pub reason: Reason,
}

impl Authorization {
    /// A key-policy decision.
    pub(crate) fn of(d: &Decision) -> Self {
        Self {
            principal: d.principal.clone(),
            action: d.action.to_string(),
            resource: d.key_arn.clone(),
            allowed: d.allowed,
            reason: Reason::from(&d.basis),
        }
    }

    /// `Sid X`, `statement N`, `grant ID`, `none`, ... for logs.
    pub fn decided_by(&self) -> String {
        match &self.reason {
            Reason::Statement { sid: Some(s), .. } => format!("Sid {s}"),
            Reason::Statement { sid: None, index } => format!("statement {index}"),
            Reason::Grant(id) => format!("grant {id}"),
            Reason::NoAllow => "none".into(),
            Reason::Administrator => "administrator".into(),
            Reason::NotAdministrator => "not an administrator".into(),
            Reason::GrantExceeded(id) => format!("beyond the operations of grant {id}"),
            Reason::RetiringPrincipal(id) => format!("retiring principal of grant {id}"),
            Reason::SamePrincipal => "same principal".into(),
        }
    }
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

    /// Logs and hands on a key-policy decision.
    pub(crate) fn record(&self, d: &Decision) {
        self.record_authorization(&Authorization::of(d));
    }

    /// Logs a decision and hands it to the current request's sink.
    pub(crate) fn record_authorization(&self, a: &Authorization) {
        // Every decision is an audit record; on the operator's log a denial
        // is news (info), an allow is the normal case (debug: at info it
        // cost 7% of the frontend's CPU, BENCHMARKS.md).
        macro_rules! decision {
            ($level:expr) => {
                tracing::event!(
                    target: "authz",
                    $level,
                    principal = %a.principal,
                    action = %a.action,
                    resource = %a.resource,
                    allowed = a.allowed,
                    decided_by = %a.decided_by(),
                    "authorization decision"
                )
            };
        }
        if a.allowed {
            decision!(tracing::Level::DEBUG);
        } else {
            decision!(tracing::Level::INFO);
        }
        match current_sink() {
            Some(sink) => sink.record(a),
            None => tracing::debug!("authorization decision outside a request: not audited"),
        }
    }

    /// Refuses a caller that is not an administrator (`hsm-kms-admin:`
    /// `action`, something only administrators may `what`); the decision is
    /// recorded either way.
    pub(crate) fn require_admin(
        &self,
        caller: &Principal,
        action: &str,
        what: &str,
    ) -> Result<(), KmsError> {
        let a = Authorization {
            principal: caller.arn.clone(),
            action: format!("hsm-kms-admin:{action}"),
            resource: format!("arn:aws:iam::{}:root", self.account_id),
            allowed: caller.admin,
            reason: if caller.admin {
                Reason::Administrator
            } else {
                Reason::NotAdministrator
            },
        };
        self.record_authorization(&a);
        if caller.admin {
            Ok(())
        } else {
            Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: hsm-kms-admin:{action} because only \
                 administrators may {what}",
                caller.arn
            )))
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
