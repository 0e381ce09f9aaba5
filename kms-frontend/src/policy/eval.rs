//! Evaluation: (request facts, key policy, the key's grants) -> [`Decision`].
//! Pure and allocation-light: a check walks the already-parsed statements
//! and the key's grants in memory. Order, as AWS: an explicit Deny in the
//! policy wins; otherwise an Allow statement, then a grant, allows;
//! otherwise the request is implicitly denied.

use super::action::Action;
use super::condition::Key;
use super::document::{Effect, Policy, PrincipalPattern, Statement};
use super::glob;
use super::grant::Grant;
use crate::principal::Principal;

/// Everything a check may look at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub principal: &'a Principal,
    /// Whether the caller's own account permissions cover this key: the
    /// account root in a policy delegates to these (here: administrators,
    /// and the principal that created the key).
    pub account_allows: bool,
    pub action: Action,
    pub key_arn: &'a str,
    /// The encryption context of a cryptographic request.
    pub context: Option<&'a [(String, String)]>,
    /// The operations of the grant being created (CreateGrant only).
    pub grant_operations: Option<&'a [Action]>,
}

impl Facts<'_> {
    /// The request's values for a condition key; `None` when absent.
    pub(crate) fn values(&self, key: &Key) -> Option<Vec<&str>> {
        match key {
            Key::Context(k) => self
                .context?
                .iter()
                .find(|(ck, _)| ck == k)
                .map(|(_, v)| vec![v.as_str()]),
            Key::ContextKeys => Some(self.context?.iter().map(|(k, _)| k.as_str()).collect()),
            Key::CallerAccount => Some(vec![self.principal.account_id.as_str()]),
            Key::GrantOperations => Some(self.grant_operations?.iter().map(|a| a.name()).collect()),
            Key::GrantIsForAwsResource => self.grant_operations.map(|_| vec!["false"]),
            Key::Other => None,
        }
    }
}

/// What decided a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// A key policy statement (its Sid, if any, and 1-based position).
    Statement { sid: Option<String>, index: usize },
    /// A grant, by grant id.
    Grant(String),
    /// Nothing allowed the request.
    NoAllow,
}

/// One authorization decision, as logged and audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub principal: String,
    pub action: Action,
    pub key_arn: String,
    pub allowed: bool,
    pub basis: Basis,
}

impl Decision {
    /// `Sid`, `statement N`, `grant ID` or `none`, for logs.
    pub fn decided_by(&self) -> String {
        match &self.basis {
            Basis::Statement { sid: Some(s), .. } => format!("Sid {s}"),
            Basis::Statement { sid: None, index } => format!("statement {index}"),
            Basis::Grant(id) => format!("grant {id}"),
            Basis::NoAllow => "none".into(),
        }
    }
}

fn principal_matches(s: &Statement, f: &Facts<'_>) -> bool {
    let hit = s.principals.iter().any(|p| match p {
        PrincipalPattern::Any => true,
        PrincipalPattern::Account(a) => *a == f.principal.account_id && f.account_allows,
        PrincipalPattern::Arn(a) => *a == f.principal.arn,
        PrincipalPattern::Never => false,
    });
    hit != s.not_principal
}

fn action_matches(s: &Statement, lower_action: &str) -> bool {
    let hit = s.actions.iter().any(|p| glob::matches(p, lower_action));
    hit != s.not_action
}

fn resource_matches(s: &Statement, key_arn: &str) -> bool {
    s.resources.iter().any(|r| glob::matches(r, key_arn))
}

/// The first policy statement that applies with `effect`, 1-based.
fn find(policy: &Policy, f: &Facts<'_>, lower: &str, effect: Effect) -> Option<Basis> {
    policy
        .statements
        .iter()
        .enumerate()
        .find(|(_, s)| {
            s.effect == effect
                && action_matches(s, lower)
                && principal_matches(s, f)
                && resource_matches(s, f.key_arn)
                && s.conditions.iter().all(|c| c.holds(f))
        })
        .map(|(i, s)| Basis::Statement {
            sid: s.sid.clone(),
            index: i + 1,
        })
}

/// Decides `f` under `policy` and `grants` (the key's grants).
pub fn evaluate(policy: &Policy, grants: &[std::sync::Arc<Grant>], f: &Facts<'_>) -> Decision {
    let lower = f.action.policy_name_lower();
    let decide = |allowed, basis| Decision {
        principal: f.principal.arn.clone(),
        action: f.action,
        key_arn: f.key_arn.to_owned(),
        allowed,
        basis,
    };
    if let Some(basis) = find(policy, f, &lower, Effect::Deny) {
        return decide(false, basis);
    }
    if let Some(basis) = find(policy, f, &lower, Effect::Allow) {
        return decide(true, basis);
    }
    if let Some(g) = grants.iter().find(|g| g.allows(f)) {
        return decide(true, Basis::Grant(g.grant_id.clone()));
    }
    decide(false, Basis::NoAllow)
}
