//! The AWS JSON shapes and handlers of key policies and grants:
//! GetKeyPolicy, PutKeyPolicy, ListKeyPolicies, CreateGrant, ListGrants,
//! ListRetirableGrants, RetireGrant, RevokeGrant. Decode, call `service`,
//! encode; no rules of its own.

use super::{decode, encode, grant_tokens, required};
use crate::error::KmsError;
use crate::policy::Constraints;
use crate::principal::Principal;
use crate::service::Kms;
use crate::service::grants::{CreateGrantInput, GrantListEntry};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyPolicyRequest {
    key_id: Option<String>,
    policy_name: Option<String>,
    policy: Option<String>,
    bypass_policy_lockout_safety_check: Option<bool>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConstraintsShape {
    encryption_context_equals: Option<BTreeMap<String, String>>,
    encryption_context_subset: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GrantRequest {
    key_id: Option<String>,
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    operations: Option<Vec<String>>,
    constraints: Option<ConstraintsShape>,
    grant_tokens: Option<Vec<String>>,
    name: Option<String>,
    dry_run: Option<bool>,
    grant_id: Option<String>,
    grant_token: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ConstraintsOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_context_equals: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_context_subset: Option<&'a BTreeMap<String, String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct GrantEntryOut<'a> {
    key_id: &'a str,
    grant_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    creation_date: i64,
    grantee_principal: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retiring_principal: Option<&'a str>,
    issuing_account: String,
    operations: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    constraints: Option<ConstraintsOut<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct GrantsOut<'a> {
    grants: Vec<GrantEntryOut<'a>>,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<&'a str>,
}

/// The operations [`handle`] serves.
pub(super) fn handles(op: &str) -> bool {
    matches!(
        op,
        "GetKeyPolicy"
            | "PutKeyPolicy"
            | "ListKeyPolicies"
            | "CreateGrant"
            | "ListGrants"
            | "ListRetirableGrants"
            | "RetireGrant"
            | "RevokeGrant"
    )
}

/// Handles the access-control operations; anything else is unknown.
pub(super) async fn handle(
    kms: &Kms,
    principal: &Principal,
    op: &str,
    body: &[u8],
) -> Result<Vec<u8>, KmsError> {
    match op {
        "GetKeyPolicy" => {
            let r: KeyPolicyRequest = decode(body)?;
            let key = required(r.key_id, "keyId")?;
            let policy = kms
                .get_key_policy(principal, &key, r.policy_name.as_deref())
                .await?;
            encode(&serde_json::json!({ "Policy": policy, "PolicyName": "default" }))
        }
        "PutKeyPolicy" => {
            let r: KeyPolicyRequest = decode(body)?;
            let key = required(r.key_id, "keyId")?;
            let policy = required(r.policy, "policy")?;
            kms.put_key_policy(
                principal,
                &key,
                r.policy_name.as_deref(),
                &policy,
                r.bypass_policy_lockout_safety_check.unwrap_or(false),
            )
            .await?;
            Ok(Vec::new())
        }
        "ListKeyPolicies" => {
            let r: KeyPolicyRequest = decode(body)?;
            let key = required(r.key_id, "keyId")?;
            let page = kms
                .list_key_policies(principal, &key, r.limit, r.marker.as_deref())
                .await?;
            let mut v = serde_json::json!({
                "PolicyNames": page.items,
                "Truncated": page.truncated,
            });
            if let Some(m) = page.next_marker {
                v["NextMarker"] = m.into();
            }
            encode(&v)
        }
        "CreateGrant" => {
            let r: GrantRequest = decode(body)?;
            let out = kms
                .create_grant(
                    principal,
                    CreateGrantInput {
                        key_id: required(r.key_id, "keyId")?,
                        grantee_principal: required(r.grantee_principal, "granteePrincipal")?,
                        retiring_principal: r.retiring_principal,
                        operations: required(r.operations, "operations")?,
                        constraints: r.constraints.map(|c| Constraints {
                            equals: c.encryption_context_equals,
                            subset: c.encryption_context_subset,
                        }),
                        name: r.name,
                        grant_tokens: r.grant_tokens.unwrap_or_default(),
                        dry_run: r.dry_run.unwrap_or(false),
                    },
                )
                .await?;
            encode(&serde_json::json!({
                "GrantToken": out.grant_token,
                "GrantId": out.grant_id,
            }))
        }
        "ListGrants" => {
            let r: GrantRequest = decode(body)?;
            grant_tokens(r.grant_tokens.as_deref())?;
            let key = required(r.key_id, "keyId")?;
            let page = kms
                .list_grants(
                    principal,
                    &key,
                    r.grant_id.as_deref(),
                    r.grantee_principal.as_deref(),
                    r.limit,
                    r.marker.as_deref(),
                )
                .await?;
            grants_json(
                kms,
                &page.items,
                page.truncated,
                page.next_marker.as_deref(),
            )
        }
        "ListRetirableGrants" => {
            let r: GrantRequest = decode(body)?;
            let retiring = required(r.retiring_principal, "retiringPrincipal")?;
            let page = kms
                .list_retirable_grants(principal, &retiring, r.limit, r.marker.as_deref())
                .await?;
            grants_json(
                kms,
                &page.items,
                page.truncated,
                page.next_marker.as_deref(),
            )
        }
        "RetireGrant" => {
            let r: GrantRequest = decode(body)?;
            kms.retire_grant(
                principal,
                r.grant_token.as_deref(),
                r.key_id.as_deref(),
                r.grant_id.as_deref(),
            )
            .await?;
            Ok(Vec::new())
        }
        "RevokeGrant" => {
            let r: GrantRequest = decode(body)?;
            let key = required(r.key_id, "keyId")?;
            let id = required(r.grant_id, "grantId")?;
            kms.revoke_grant(principal, &key, &id).await?;
            Ok(Vec::new())
        }
        _ => Err(KmsError::UnknownOperation(
            "The operation named in X-Amz-Target is not supported by this KMS".into(),
        )),
    }
}

fn grants_json(
    kms: &Kms,
    items: &[GrantListEntry],
    truncated: bool,
    next_marker: Option<&str>,
) -> Result<Vec<u8>, KmsError> {
    let issuing_account = format!("arn:aws:iam::{}:root", kms.account_id());
    encode(&GrantsOut {
        grants: items
            .iter()
            .map(|e| {
                let g = &e.grant;
                GrantEntryOut {
                    key_id: &e.key_arn,
                    grant_id: &g.grant_id,
                    name: g.name.as_deref(),
                    creation_date: g.creation_date,
                    grantee_principal: &g.grantee,
                    retiring_principal: g.retiring.as_deref(),
                    issuing_account: issuing_account.clone(),
                    operations: g.operations.iter().map(|a| a.name()).collect(),
                    constraints: g.constraints.as_ref().map(|c| ConstraintsOut {
                        encryption_context_equals: c.equals.as_ref(),
                        encryption_context_subset: c.subset.as_ref(),
                    }),
                }
            })
            .collect(),
        truncated,
        next_marker,
    })
}
