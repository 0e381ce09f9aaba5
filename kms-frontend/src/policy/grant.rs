//! Grants in evaluated form: who (grantee), which operations, under which
//! encryption-context constraints. A grant allows exactly its operations,
//! for its grantee, when its constraints hold. Creating, listing, retiring
//! and persisting grants is `service::grants`' job.

use super::action::Action;
use super::eval::Facts;
use std::collections::BTreeMap;

/// `Constraints` of a grant (AWS's `GrantConstraints`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// The request's encryption context must be exactly this.
    pub equals: Option<BTreeMap<String, String>>,
    /// The request's encryption context must contain these pairs.
    pub subset: Option<BTreeMap<String, String>>,
}

impl Constraints {
    /// Whether `context` satisfies the constraints.
    pub fn hold(&self, context: &[(String, String)]) -> bool {
        let equals_ok = self.equals.as_ref().is_none_or(|eq| {
            eq.len() == context.len() && context.iter().all(|(k, v)| eq.get(k) == Some(v))
        });
        let subset_ok = self.subset.as_ref().is_none_or(|sub| {
            sub.iter()
                .all(|(k, v)| context.iter().any(|(ck, cv)| ck == k && cv == v))
        });
        equals_ok && subset_ok
    }
}

/// One grant on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: String,
    pub key_id: String,
    /// Client-chosen name; CreateGrant with the same name, grantee,
    /// operations and constraints returns the same grant.
    pub name: Option<String>,
    pub grantee: String,
    pub retiring: Option<String>,
    pub operations: Vec<Action>,
    pub constraints: Option<Constraints>,
    /// The principal that created the grant.
    pub issuing: String,
    /// Unix seconds.
    pub creation_date: i64,
    /// The grant token CreateGrant returned.
    pub token: String,
}

impl Grant {
    /// Whether this grant allows the request described by `f`.
    pub fn allows(&self, f: &Facts<'_>) -> bool {
        if self.grantee != f.principal.arn || !self.operations.contains(&f.action) {
            return false;
        }
        match (&self.constraints, f.action) {
            (None, _) => true,
            // Constraints pass on to child grants; they bind crypto calls.
            (Some(_), Action::CreateGrant | Action::RetireGrant) => true,
            (Some(c), _) => c.hold(f.context.unwrap_or(&[])),
        }
    }
}
