//! Grants: CreateGrant (constraints, Name idempotence, usable at once),
//! ListGrants, ListRetirableGrants, RetireGrant (by token, or by key and
//! grant id), RevokeGrant, and `grant_cmk_access` (the seeds' way to share
//! a key: a grant with a fixed name). Grants are committed to the store and
//! then put in the cache, so the reply's grant token works on the very next
//! request; `GrantTokens` parameters are therefore accepted and only checked
//! for shape.

use super::authz::{Authorization, Extra, Reason, denied};
use super::resolve::Accept;
use super::{Kms, Page, paginate};
use crate::error::KmsError;
use crate::policy::action::{CONTEXT_OPERATIONS, GRANT_OPERATIONS};
use crate::policy::{Action, Basis, Constraints, Decision, Grant};
use crate::principal::Principal;
use crate::store::GrantRow;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Name of the grants `grant_cmk_access` makes.
pub const CMK_ACCESS_GRANT_NAME: &str = "grantCmkAccess";
/// Operations `grant_cmk_access` allows by default: use, not manage.
pub const CMK_ACCESS_OPERATIONS: &[Action] = &[
    Action::DescribeKey,
    Action::Encrypt,
    Action::Decrypt,
    Action::GenerateDataKey,
    Action::GenerateDataKeyWithoutPlaintext,
    Action::ReEncryptFrom,
    Action::ReEncryptTo,
];
/// Most grant tokens a request may carry.
pub const MAX_GRANT_TOKENS: usize = 10;
const TOKEN_PREFIX: &str = "hkgt1";

/// CreateGrant's parameters.
#[derive(Debug, Clone, Default)]
pub struct CreateGrantInput {
    pub key_id: String,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub operations: Vec<String>,
    pub constraints: Option<Constraints>,
    pub name: Option<String>,
    pub grant_tokens: Vec<String>,
    pub dry_run: bool,
}

/// CreateGrant's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedGrant {
    pub grant_id: String,
    pub grant_token: String,
}

/// One entry of ListGrants / ListRetirableGrants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantListEntry {
    pub key_arn: String,
    pub grant: Grant,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct StoredConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encryption_context_equals: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encryption_context_subset: Option<BTreeMap<String, String>>,
}

/// A stored grant row in evaluated form.
///
/// # Errors
/// Why the row does not parse.
pub(crate) fn grant_from_row(r: &GrantRow) -> Result<Grant, String> {
    let operations = r
        .operations
        .split(',')
        .map(|o| {
            Action::grant_operation(o).ok_or_else(|| format!("grant {}: operation {o}", r.grant_id))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let constraints = match &r.constraints {
        None => None,
        Some(text) => {
            let c: StoredConstraints = serde_json::from_str(text)
                .map_err(|e| format!("grant {}: constraints: {e}", r.grant_id))?;
            Some(Constraints {
                equals: c.encryption_context_equals,
                subset: c.encryption_context_subset,
            })
        }
    };
    Ok(Grant {
        grant_id: r.grant_id.clone(),
        key_id: r.key_id.clone(),
        name: r.name.clone(),
        grantee: r.grantee.clone(),
        retiring: r.retiring.clone(),
        operations,
        constraints,
        issuing: r.issuing.clone(),
        creation_date: r.creation_date,
        token: r.token.clone(),
    })
}

fn row_from_grant(g: &Grant) -> Result<GrantRow, KmsError> {
    let constraints = match &g.constraints {
        None => None,
        Some(c) => Some(
            serde_json::to_string(&StoredConstraints {
                encryption_context_equals: c.equals.clone(),
                encryption_context_subset: c.subset.clone(),
            })
            .map_err(|e| KmsError::Internal(format!("encode constraints: {e}")))?,
        ),
    };
    Ok(GrantRow {
        grant_id: g.grant_id.clone(),
        key_id: g.key_id.clone(),
        name: g.name.clone(),
        grantee: g.grantee.clone(),
        retiring: g.retiring.clone(),
        operations: g
            .operations
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(","),
        constraints,
        issuing: g.issuing.clone(),
        creation_date: g.creation_date,
        token: g.token.clone(),
    })
}

/// Checks a principal ARN parameter (GranteePrincipal, RetiringPrincipal).
pub(crate) fn check_principal_arn(arn: &str, field: &str) -> Result<(), KmsError> {
    let ok = arn.len() <= 256
        && arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(acct, res)| {
                acct.len() == 12
                    && acct.bytes().all(|b| b.is_ascii_digit())
                    && (res == "root"
                        || ["user/", "role/"]
                            .iter()
                            .any(|k| res.strip_prefix(k).is_some_and(|n| !n.is_empty())))
            });
    if ok {
        Ok(())
    } else {
        Err(KmsError::InvalidArn(format!(
            "{field} '{arn}' is not a valid principal ARN; use arn:aws:iam::ACCOUNT:user/NAME, \
             role/NAME or root"
        )))
    }
}

/// Checks a GrantTokens parameter's shape.
pub(crate) fn check_grant_tokens(tokens: &[String]) -> Result<(), KmsError> {
    if tokens.len() > MAX_GRANT_TOKENS {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_GRANT_TOKENS}"
        )));
    }
    if tokens.iter().any(|t| t.is_empty() || t.len() > 8192) {
        return Err(KmsError::Validation(
            "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: \
             Member must have length between 1 and 8192"
                .into(),
        ));
    }
    Ok(())
}

fn check_operations(ops: &[String], constrained: bool) -> Result<Vec<Action>, KmsError> {
    if ops.is_empty() {
        return Err(KmsError::Validation(
            "1 validation error detected: Value at 'operations' failed to satisfy constraint: \
             Member must have at least 1 element"
                .into(),
        ));
    }
    let mut out: Vec<Action> = Vec::with_capacity(ops.len());
    for o in ops {
        let Some(a) = Action::grant_operation(o) else {
            let all: Vec<&str> = GRANT_OPERATIONS.iter().map(|a| a.name()).collect();
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '[{o}]' at 'operations' failed to satisfy \
                 constraint: Member must satisfy constraint: [Member must satisfy enum value \
                 set: [{}]]",
                all.join(", ")
            )));
        };
        if constrained && !CONTEXT_OPERATIONS.contains(&a) {
            return Err(KmsError::Validation(format!(
                "The grant operation {o} does not support an encryption context grant constraint"
            )));
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

fn check_name(name: Option<&str>) -> Result<(), KmsError> {
    if let Some(n) = name
        && (n.is_empty()
            || n.len() > 256
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-')))
    {
        return Err(KmsError::Validation(
            "1 validation error detected: Value at 'name' failed to satisfy constraint: Member \
             must have length between 1 and 256 and match ^[a-zA-Z0-9:/_-]+$"
                .into(),
        ));
    }
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn new_token() -> String {
    use base64::Engine as _;
    let mut b = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

fn is_grant_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a CreateGrant allowed by grant `d.basis` asks for more than that
/// grant allows (a grant may not hand on operations it does not hold).
fn exceeds_parent(d: &Decision, grants: &[Arc<Grant>], ops: &[Action]) -> bool {
    match &d.basis {
        Basis::Grant(id) => grants
            .iter()
            .find(|g| &g.grant_id == id)
            .is_some_and(|parent| !ops.iter().all(|o| parent.operations.contains(o))),
        _ => false,
    }
}

impl Kms {
    /// CreateGrant.
    ///
    /// # Errors
    /// Validation, InvalidArn, NotFound, AccessDenied, KMSInvalidState,
    /// DryRun.
    pub async fn create_grant(
        &self,
        principal: &Principal,
        input: CreateGrantInput,
    ) -> Result<CreatedGrant, KmsError> {
        check_grant_tokens(&input.grant_tokens)?;
        check_principal_arn(&input.grantee_principal, "GranteePrincipal")?;
        if let Some(r) = &input.retiring_principal {
            check_principal_arn(r, "RetiringPrincipal")?;
        }
        check_name(input.name.as_deref())?;
        let constraints = input
            .constraints
            .filter(|c| c.equals.is_some() || c.subset.is_some());
        let ops = check_operations(&input.operations, constraints.is_some())?;
        let principal = principal.clone();
        let dry_run = input.dry_run;
        let key_input = input.key_id;
        let grantee = input.grantee_principal;
        let retiring = input.retiring_principal;
        let name = input.name;
        self.write(move |core| {
            let entry = core.lookup(&key_input, Accept::KeyOnly)?;
            let extra = Extra {
                context: None,
                grant_operations: Some(&ops),
            };
            let mut d = core.decide(&principal, &entry, Action::CreateGrant, extra);
            let grants = core.cache.grants_of(&entry.meta.key_id);
            if d.allowed && exceeds_parent(&d, &grants, &ops) {
                d.allowed = false;
                let mut a = Authorization::of(&d);
                if let Basis::Grant(id) = &d.basis {
                    a.reason = Reason::GrantExceeded(id.clone());
                }
                core.record_authorization(&a);
                return Err(denied(&d));
            }
            core.record(&d);
            if !d.allowed {
                return Err(denied(&d));
            }
            if entry.meta.key_state == crate::store::KeyState::PendingDeletion {
                return Err(super::resolve::pending_deletion(&entry));
            }
            if dry_run {
                return Err(KmsError::DryRun);
            }
            if let Some(n) = &name
                && let Some(same) = grants.iter().find(|g| {
                    g.name.as_deref() == Some(n.as_str())
                        && g.grantee == grantee
                        && g.retiring == retiring
                        && g.operations == ops
                        && g.constraints == constraints
                })
            {
                return Ok(CreatedGrant {
                    grant_id: same.grant_id.clone(),
                    grant_token: same.token.clone(),
                });
            }
            let grant = Grant {
                grant_id: random_hex(32),
                key_id: entry.meta.key_id.clone(),
                name,
                grantee,
                retiring,
                operations: ops,
                constraints,
                issuing: principal.arn.clone(),
                creation_date: core.now(),
                token: new_token(),
            };
            let row = row_from_grant(&grant)?;
            core.commit(|s| s.insert_grant(&row))?;
            let out = CreatedGrant {
                grant_id: grant.grant_id.clone(),
                grant_token: grant.token.clone(),
            };
            tracing::info!(
                grant_id = %grant.grant_id, key_id = %grant.key_id, grantee = %grant.grantee,
                by = %principal.arn, "grant created"
            );
            core.cache.put_grant(grant);
            Ok(out)
        })
        .await
    }

    /// ListGrants: the key's grants, optionally one grant id or grantee.
    ///
    /// # Errors
    /// NotFound, AccessDenied, Validation, InvalidMarker, InvalidGrantId.
    pub async fn list_grants(
        &self,
        principal: &Principal,
        key_id: &str,
        grant_id: Option<&str>,
        grantee: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<GrantListEntry>, KmsError> {
        if let Some(g) = grant_id
            && !is_grant_id(g)
        {
            return Err(KmsError::InvalidGrantId(format!(
                "Grant ID '{g}' is not valid"
            )));
        }
        let entry = self
            .core
            .resolve(principal, key_id, Accept::KeyOnly, Action::ListGrants)?;
        let mut grants: Vec<GrantListEntry> = self
            .core
            .cache
            .grants_of(&entry.meta.key_id)
            .iter()
            .filter(|g| grant_id.is_none_or(|id| g.grant_id == id))
            .filter(|g| grantee.is_none_or(|p| g.grantee == p))
            .map(|g| GrantListEntry {
                key_arn: entry.meta.arn.clone(),
                grant: (**g).clone(),
            })
            .collect();
        grants.sort_by(|a, b| a.grant.grant_id.cmp(&b.grant.grant_id));
        paginate(grants, |g| g.grant.grant_id.as_str(), marker, limit)
    }

    /// ListRetirableGrants: grants whose retiring principal is
    /// `retiring_principal`. The caller must be that principal or an
    /// administrator.
    ///
    /// # Errors
    /// InvalidArn, AccessDenied, Validation, InvalidMarker.
    pub async fn list_retirable_grants(
        &self,
        principal: &Principal,
        retiring_principal: &str,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<GrantListEntry>, KmsError> {
        check_principal_arn(retiring_principal, "RetiringPrincipal")?;
        let allowed = principal.admin || principal.arn == retiring_principal;
        self.core.record_authorization(&Authorization {
            principal: principal.arn.clone(),
            action: Action::ListRetirableGrants.to_string(),
            resource: retiring_principal.to_owned(),
            allowed,
            reason: if principal.arn == retiring_principal {
                Reason::SamePrincipal
            } else if principal.admin {
                Reason::Administrator
            } else {
                Reason::NoAllow
            },
        });
        if !allowed {
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:ListRetirableGrants on resource: {} \
                 because no identity-based policy allows the kms:ListRetirableGrants action",
                principal.arn, retiring_principal
            )));
        }
        let mut grants: Vec<GrantListEntry> = self
            .core
            .cache
            .all_grants()
            .iter()
            .filter(|g| g.retiring.as_deref() == Some(retiring_principal))
            .map(|g| GrantListEntry {
                key_arn: self.core.key_arn(&g.key_id),
                grant: (**g).clone(),
            })
            .collect();
        grants.sort_by(|a, b| a.grant.grant_id.cmp(&b.grant.grant_id));
        paginate(grants, |g| g.grant.grant_id.as_str(), marker, limit)
    }

    /// RetireGrant: by GrantToken, or by KeyId and GrantId. Allowed to the
    /// grant's retiring principal, its grantee when the grant includes
    /// RetireGrant, and administrators.
    ///
    /// # Errors
    /// InvalidGrantToken, InvalidGrantId, NotFound, AccessDenied, Validation.
    pub async fn retire_grant(
        &self,
        principal: &Principal,
        grant_token: Option<&str>,
        key_id: Option<&str>,
        grant_id: Option<&str>,
    ) -> Result<(), KmsError> {
        let grant = match (grant_token, key_id, grant_id) {
            (Some(t), _, _) => self
                .core
                .cache
                .all_grants()
                .into_iter()
                .find(|g| g.token == t)
                .ok_or_else(|| {
                    KmsError::InvalidGrantToken("The grant token is not valid".into())
                })?,
            (None, Some(k), Some(id)) => {
                if !is_grant_id(id) {
                    return Err(KmsError::InvalidGrantId(format!(
                        "Grant ID '{id}' is not valid"
                    )));
                }
                let entry = self.core.lookup(k, Accept::KeyOnly)?;
                self.core
                    .cache
                    .grants_of(&entry.meta.key_id)
                    .into_iter()
                    .find(|g| g.grant_id == id)
                    .ok_or_else(|| KmsError::NotFound(format!("Grant ID {id} not found")))?
            }
            _ => {
                return Err(KmsError::Validation(
                    "Specify either GrantToken, or both KeyId and GrantId".into(),
                ));
            }
        };
        let reason = if grant.retiring.as_deref() == Some(principal.arn.as_str()) {
            Reason::RetiringPrincipal(grant.grant_id.clone())
        } else if grant.grantee == principal.arn && grant.operations.contains(&Action::RetireGrant)
        {
            Reason::Grant(grant.grant_id.clone())
        } else if principal.admin {
            Reason::Administrator
        } else {
            Reason::NoAllow
        };
        let allowed = reason != Reason::NoAllow;
        self.core.record_authorization(&Authorization {
            principal: principal.arn.clone(),
            action: Action::RetireGrant.to_string(),
            resource: self.core.key_arn(&grant.key_id),
            allowed,
            reason,
        });
        if !allowed {
            let d = Decision {
                principal: principal.arn.clone(),
                action: Action::RetireGrant,
                key_arn: self.core.key_arn(&grant.key_id),
                allowed,
                basis: Basis::NoAllow,
            };
            return Err(denied(&d));
        }
        self.remove_grant(grant, principal, "retired").await
    }

    /// RevokeGrant: needs kms:RevokeGrant on the key.
    ///
    /// # Errors
    /// InvalidGrantId, NotFound, AccessDenied.
    pub async fn revoke_grant(
        &self,
        principal: &Principal,
        key_id: &str,
        grant_id: &str,
    ) -> Result<(), KmsError> {
        if !is_grant_id(grant_id) {
            return Err(KmsError::InvalidGrantId(format!(
                "Grant ID '{grant_id}' is not valid"
            )));
        }
        let entry = self
            .core
            .resolve(principal, key_id, Accept::KeyOnly, Action::RevokeGrant)?;
        let grant = self
            .core
            .cache
            .grants_of(&entry.meta.key_id)
            .into_iter()
            .find(|g| g.grant_id == grant_id)
            .ok_or_else(|| KmsError::NotFound(format!("Grant ID {grant_id} not found")))?;
        self.remove_grant(grant, principal, "revoked").await
    }

    async fn remove_grant(
        &self,
        grant: Arc<Grant>,
        principal: &Principal,
        how: &'static str,
    ) -> Result<(), KmsError> {
        let by = principal.arn.clone();
        self.write(move |core| {
            core.commit(|s| s.delete_grant(&grant.grant_id))?;
            core.cache.remove_grant(&grant.key_id, &grant.grant_id);
            tracing::info!(grant_id = %grant.grant_id, key_id = %grant.key_id, by = %by, how, "grant removed");
            Ok(())
        })
        .await
    }

    /// The seeds' `grantCmkAccess`: shares a key with `grantee` (a
    /// principal ARN) through a grant named [`CMK_ACCESS_GRANT_NAME`]
    /// allowing `operations` (default [`CMK_ACCESS_OPERATIONS`]). The caller
    /// needs kms:CreateGrant on the key (its owner or an administrator
    /// under the default policy). Repeating it returns the same grant.
    ///
    /// # Errors
    /// As CreateGrant.
    pub async fn grant_cmk_access(
        &self,
        principal: &Principal,
        key_id: &str,
        grantee: &str,
        operations: Option<Vec<String>>,
    ) -> Result<CreatedGrant, KmsError> {
        let operations = operations.unwrap_or_else(|| {
            CMK_ACCESS_OPERATIONS
                .iter()
                .map(|a| a.name().to_owned())
                .collect()
        });
        self.create_grant(
            principal,
            CreateGrantInput {
                key_id: key_id.to_owned(),
                grantee_principal: grantee.to_owned(),
                retiring_principal: Some(principal.arn.clone()),
                operations,
                name: Some(CMK_ACCESS_GRANT_NAME.to_owned()),
                ..CreateGrantInput::default()
            },
        )
        .await
    }
}
