//! The admin API: JSON operations under `X-Amz-Target: HsmKmsAdmin.<Op>`
//! on `POST /`, SigV4-authenticated like the KMS API (AWS KMS has no
//! operation for this, so it gets its own target prefix rather than a name
//! a KMS client could mistake for AWS's):
//!
//! - `CreatePrincipal {Name, Admin?}` -> `{Principal, SecretAccessKey}`
//! - `ListPrincipals {}` -> `{Principals: [...]}`
//! - `DeletePrincipal {Name}` -> `{}`
//! - `GrantCmkAccess {KeyId, Principal, Operations?}` -> `{GrantId, GrantToken}`
//! - `RotateMasterKey {BatchSize?, MaxBatches?}` -> `{Generation,
//!   RewrappedKeyVersions, RewrappedSystemKeys, RemainingTokens, Tokens,
//!   Completed}`: one step of a master-key rotation (`service::master_key`);
//!   call again until `Completed` is true
//! - `GetMasterKeyStatus {}` -> `{Generation, PreviousGeneration?,
//!   RotationInProgress, StaleTokens, Tokens}`
//!
//! Principal and master-key management are for administrators only; GrantCmkAccess needs
//! kms:CreateGrant on the key (its owner or an administrator under the
//! default policy). Credentials go to and from the SigV4 verifier here.

use super::AwsReply;
use super::aws_json::{decode, encode, required};
use crate::auth::{Credential, Verifier};
use crate::error::KmsError;
use crate::principal::Principal;
use crate::service::Kms;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

/// The `X-Amz-Target` prefix of admin operations.
pub const TARGET_PREFIX: &str = "HsmKmsAdmin.";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AdminRequest {
    name: Option<String>,
    admin: Option<bool>,
    key_id: Option<String>,
    principal: Option<String>,
    operations: Option<Vec<String>>,
    batch_size: Option<u32>,
    max_batches: Option<u32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PrincipalOut<'a> {
    name: &'a str,
    arn: &'a str,
    access_key_id: &'a str,
    admin: bool,
    /// `config` or `api`.
    source: &'static str,
}

fn name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Handles one authenticated admin request.
pub async fn dispatch(
    kms: &Kms,
    verifier: &Verifier,
    principal: &Principal,
    request_id: &str,
    target: &str,
    body: &[u8],
) -> AwsReply {
    let op = target.strip_prefix(TARGET_PREFIX).unwrap_or("");
    match handle(kms, verifier, principal, op, body).await {
        Ok(body) => AwsReply::ok(body),
        Err(err) => {
            let parts = err.aws();
            if parts.status >= 500 {
                tracing::error!(request_id, op, error = %err, "admin request failed");
            } else {
                tracing::debug!(request_id, op, error = parts.name, "admin request refused");
            }
            AwsReply::error(parts.status, parts.name, &parts.message)
        }
    }
}

async fn handle(
    kms: &Kms,
    verifier: &Verifier,
    principal: &Principal,
    op: &str,
    body: &[u8],
) -> Result<Vec<u8>, KmsError> {
    match op {
        "CreatePrincipal" => {
            let r: AdminRequest = decode(body)?;
            let name = required(r.name, "name")?;
            let known = verifier.principals();
            let created = kms
                .create_principal(principal, &name, r.admin.unwrap_or(false), |arn| {
                    known.iter().any(|p| p.arn == arn)
                })
                .await?;
            let out = PrincipalOut {
                name: name_of(&created.principal.arn),
                arn: &created.principal.arn,
                access_key_id: &created.principal.access_key_id,
                admin: created.principal.admin,
                source: "api",
            };
            let body = encode(&serde_json::json!({
                "Principal": out,
                "SecretAccessKey": created.secret.expose_secret(),
            }));
            let principal_copy = created.principal.clone();
            if verifier
                .add(Credential {
                    principal: std::sync::Arc::new(created.principal),
                    secret: created.secret,
                })
                .is_err()
            {
                return Err(KmsError::Internal(format!(
                    "principal {} stored but its access key id is already in use",
                    principal_copy.arn
                )));
            }
            body
        }
        "ListPrincipals" => {
            let _: AdminRequest = decode(body)?;
            kms.require_admin(principal, "ListPrincipals")?;
            let mut out = Vec::new();
            for p in verifier.principals() {
                let source = if kms.is_runtime_principal(&p.arn).await {
                    "api"
                } else {
                    "config"
                };
                out.push(serde_json::json!(PrincipalOut {
                    name: name_of(&p.arn),
                    arn: &p.arn,
                    access_key_id: &p.access_key_id,
                    admin: p.admin,
                    source,
                }));
            }
            encode(&serde_json::json!({ "Principals": out }))
        }
        "DeletePrincipal" => {
            let r: AdminRequest = decode(body)?;
            let name = required(r.name, "name")?;
            let known = verifier.principals();
            let arn = kms
                .delete_principal(principal, &name, |arn| known.iter().any(|p| p.arn == arn))
                .await?;
            verifier.remove(&arn);
            Ok(b"{}".to_vec())
        }
        "GrantCmkAccess" => {
            let r: AdminRequest = decode(body)?;
            let key = required(r.key_id, "keyId")?;
            let who = required(r.principal, "principal")?;
            let grantee = if who.starts_with("arn:") {
                who
            } else {
                kms.user_arn(&who)
            };
            let g = kms
                .grant_cmk_access(principal, &key, &grantee, r.operations)
                .await?;
            encode(&serde_json::json!({ "GrantId": g.grant_id, "GrantToken": g.grant_token }))
        }
        "RotateMasterKey" => {
            let r: AdminRequest = decode(body)?;
            let step = kms
                .rotate_master_key(principal, r.batch_size, r.max_batches)
                .await?;
            encode(&serde_json::json!({
                "Generation": step.generation,
                "RewrappedKeyVersions": step.key_versions,
                "RewrappedSystemKeys": step.system_keys,
                "RemainingTokens": step.remaining,
                "Tokens": step.tokens,
                "Completed": step.completed,
            }))
        }
        "GetMasterKeyStatus" => {
            let _: AdminRequest = decode(body)?;
            let s = kms.master_key_status(principal).await?;
            encode(&serde_json::json!({
                "Generation": s.generation,
                "PreviousGeneration": s.previous_generation,
                "RotationInProgress": s.previous_generation.is_some(),
                "StaleTokens": s.stale_tokens,
                "Tokens": s.tokens,
            }))
        }
        _ => Err(KmsError::UnknownOperation(format!(
            "Unknown admin operation; use {TARGET_PREFIX}CreatePrincipal, ListPrincipals, \
             DeletePrincipal, GrantCmkAccess, RotateMasterKey or GetMasterKeyStatus"
        ))),
    }
}
