//! AWS KMS JSON 1.1: dispatch on `X-Amz-Target: TrentService.<Op>`, decode
//! the body into a typed request, call `service`, encode the reply. Blobs
//! are base64 in JSON, timestamps epoch seconds. Every failure becomes an
//! AWS error through [`KmsError::aws`]; this module adds no rules of its own
//! beyond the shape of the JSON.

mod access;
mod asymmetric;
mod lifecycle;
mod shapes;

use super::AwsReply;
use crate::error::KmsError;
use crate::principal::Principal;
use crate::service::Kms;
use crate::service::crypto::{
    DataKeyInput, DecryptInput, EncryptInput, ReEncryptInput, SYMMETRIC_DEFAULT,
};
use crate::service::keys::{CreateKeyInput, KeyMetadata};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use protocol::{EncryptionContext, SecretBytes};
use serde::Deserialize;
use shapes::*;
use zeroize::Zeroizing;

/// The `X-Amz-Target` prefix of KMS operations.
pub const TARGET_PREFIX: &str = "TrentService.";

/// Handles one authenticated `POST /` with `X-Amz-Target: TrentService.<Op>`.
pub async fn dispatch(
    kms: &Kms,
    principal: &Principal,
    request_id: &str,
    target: &str,
    body: &[u8],
) -> AwsReply {
    let op = target.strip_prefix(TARGET_PREFIX).unwrap_or("");
    match handle(kms, principal, op, body).await {
        Ok(body) => AwsReply::ok(body),
        Err(err) => {
            let parts = err.aws();
            if parts.status >= 500 {
                tracing::error!(request_id, op, error = %err, "request failed");
            } else {
                tracing::debug!(request_id, op, error = parts.name, "request refused");
            }
            AwsReply::error(parts.status, parts.name, &parts.message)
        }
    }
}

async fn handle(
    kms: &Kms,
    principal: &Principal,
    op: &str,
    body: &[u8],
) -> Result<Vec<u8>, KmsError> {
    match op {
        "CreateKey" => create_key(kms, principal, body).await,
        "DescribeKey" => describe_key(kms, principal, body).await,
        "ListKeys" => list_keys(kms, principal, body).await,
        "EnableKey" => {
            let r: KeyIdRequest = decode(body)?;
            kms.enable_key(principal, &required(r.key_id, "keyId")?)
                .await?;
            Ok(Vec::new())
        }
        "DisableKey" => {
            let r: KeyIdRequest = decode(body)?;
            kms.disable_key(principal, &required(r.key_id, "keyId")?)
                .await?;
            Ok(Vec::new())
        }
        "ScheduleKeyDeletion" => schedule_key_deletion(kms, principal, body).await,
        "CancelKeyDeletion" => {
            let r: KeyIdRequest = decode(body)?;
            let arn = kms
                .cancel_key_deletion(principal, &required(r.key_id, "keyId")?)
                .await?;
            encode(&KeyIdResponse { key_id: &arn })
        }
        "Encrypt" => encrypt(kms, principal, body).await,
        "Decrypt" => decrypt(kms, principal, body).await,
        "GenerateDataKey" => generate_data_key(kms, principal, body, true).await,
        "GenerateDataKeyWithoutPlaintext" => generate_data_key(kms, principal, body, false).await,
        "ReEncrypt" => re_encrypt(kms, principal, body).await,
        "GenerateRandom" => {
            let r: GenerateRandomRequest = decode(body)?;
            no_recipient(r.recipient.as_ref())?;
            if r.custom_key_store_id.is_some() {
                return Err(KmsError::UnsupportedOperation(
                    "Custom key stores are not supported by this KMS; omit CustomKeyStoreId".into(),
                ));
            }
            let bytes = kms.generate_random(r.number_of_bytes).await?;
            let b64 = secret_base64(&bytes);
            encode(&GenerateRandomResponse { plaintext: &b64 })
        }
        "CreateAlias" | "UpdateAlias" => {
            let r: AliasRequest = decode(body)?;
            let name = required(r.alias_name, "aliasName")?;
            let target = required(r.target_key_id, "targetKeyId")?;
            if op == "CreateAlias" {
                kms.create_alias(principal, &name, &target).await?;
            } else {
                kms.update_alias(principal, &name, &target).await?;
            }
            Ok(Vec::new())
        }
        "DeleteAlias" => {
            let r: AliasRequest = decode(body)?;
            kms.delete_alias(principal, &required(r.alias_name, "aliasName")?)
                .await?;
            Ok(Vec::new())
        }
        "ListAliases" => list_aliases(kms, principal, body).await,
        _ if access::handles(op) => access::handle(kms, principal, op, body).await,
        _ => lifecycle::handle(kms, principal, op, body).await,
    }
}

/// Decodes a request body. An empty body is an empty object.
pub(crate) fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, KmsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => "is not valid JSON",
            Category::Data => "has a field of the wrong type or shape",
        };
        KmsError::Serialization(format!(
            "The request body {what} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, KmsError> {
    serde_json::to_vec(value).map_err(|e| KmsError::Internal(format!("encode reply: {e}")))
}

/// A required field, or AWS's "must not be null" ValidationException.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, KmsError> {
    value.ok_or_else(|| {
        KmsError::Validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy \
             constraint: Member must not be null"
        ))
    })
}

/// Checks the shape of a GrantTokens parameter (grants take effect at
/// once here, so the tokens need no other handling).
pub(crate) fn grant_tokens(tokens: Option<&[String]>) -> Result<(), KmsError> {
    crate::service::grants::check_grant_tokens(tokens.unwrap_or_default())
}

/// Refuses the Nitro enclave `Recipient` parameter rather than ignore it
/// and return plaintext the caller asked not to receive.
fn no_recipient(recipient: Option<&serde::de::IgnoredAny>) -> Result<(), KmsError> {
    match recipient {
        Some(_) => Err(KmsError::UnsupportedOperation(
            "The Recipient parameter (attested enclaves) is not supported by this KMS".into(),
        )),
        None => Ok(()),
    }
}

pub(crate) fn blob(b64: &str, field: &str) -> Result<Vec<u8>, KmsError> {
    STANDARD
        .decode(b64)
        .map_err(|_| KmsError::Serialization(format!("{field} is not valid base64")))
}

/// Decodes base64 straight into a zeroized buffer.
pub(crate) fn secret(b64: &str, field: &str) -> Result<SecretBytes, KmsError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(b64.len() / 4 * 3 + 3));
    STANDARD
        .decode_vec(b64, &mut buf)
        .map_err(|_| KmsError::Serialization(format!("{field} is not valid base64")))?;
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}

/// Encodes a secret as base64 into a zeroized string of exact capacity.
pub(crate) fn secret_base64(bytes: &SecretBytes) -> Zeroizing<String> {
    let len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    let mut s = Zeroizing::new(String::with_capacity(len));
    STANDARD.encode_string(bytes.expose(), &mut s);
    s
}

/// EncryptionContext: a JSON object of string to string, in key order.
pub(crate) fn context(map: Option<Context>) -> EncryptionContext {
    map.map(|m| m.into_iter().collect()).unwrap_or_default()
}

fn metadata_json(m: &KeyMetadata) -> Result<Vec<u8>, KmsError> {
    encode(&KeyMetadataResponse {
        key_metadata: KeyMetadataShape {
            aws_account_id: &m.aws_account_id,
            key_id: &m.key_id,
            arn: &m.arn,
            creation_date: m.creation_date,
            enabled: m.enabled,
            description: &m.description,
            key_usage: &m.key_usage,
            key_state: m.key_state.as_str(),
            origin: &m.origin,
            key_manager: "CUSTOMER",
            key_spec: &m.key_spec,
            customer_master_key_spec: &m.key_spec,
            encryption_algorithms: &m.encryption_algorithms,
            signing_algorithms: &m.signing_algorithms,
            mac_algorithms: &m.mac_algorithms,
            multi_region: false,
            deletion_date: m.deletion_date,
            pending_deletion_window_in_days: m.pending_deletion_window_in_days,
        },
    })
}

async fn create_key(kms: &Kms, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, KmsError> {
    let r: CreateKeyRequest = decode(body)?;
    let meta = kms
        .create_key(
            principal,
            CreateKeyInput {
                description: r.description,
                key_usage: r.key_usage,
                key_spec: r.key_spec,
                customer_master_key_spec: r.customer_master_key_spec,
                origin: r.origin,
                multi_region: r.multi_region,
                custom_key_store_id: r.custom_key_store_id,
                tags: lifecycle::tags(r.tags)?,
                policy: r.policy,
                bypass_policy_lockout_safety_check: r
                    .bypass_policy_lockout_safety_check
                    .unwrap_or(false),
            },
        )
        .await?;
    metadata_json(&meta)
}

async fn describe_key(kms: &Kms, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, KmsError> {
    let r: KeyIdRequest = decode(body)?;
    grant_tokens(r.grant_tokens.as_deref())?;
    let meta = kms
        .describe_key(principal, &required(r.key_id, "keyId")?)
        .await?;
    metadata_json(&meta)
}

async fn list_keys(kms: &Kms, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, KmsError> {
    let r: ListKeysRequest = decode(body)?;
    let page = kms
        .list_keys(principal, r.limit, r.marker.as_deref())
        .await?;
    encode(&ListKeysResponse {
        keys: page
            .items
            .iter()
            .map(|k| KeyListEntryShape {
                key_id: &k.key_id,
                key_arn: &k.key_arn,
            })
            .collect(),
        truncated: page.truncated,
        next_marker: page.next_marker.as_deref(),
    })
}

async fn list_aliases(kms: &Kms, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, KmsError> {
    let r: ListAliasesRequest = decode(body)?;
    let page = kms
        .list_aliases(principal, r.key_id.as_deref(), r.limit, r.marker.as_deref())
        .await?;
    encode(&ListAliasesResponse {
        aliases: page
            .items
            .iter()
            .map(|a| AliasListEntryShape {
                alias_name: &a.alias_name,
                alias_arn: &a.alias_arn,
                target_key_id: &a.target_key_id,
                creation_date: a.creation_date,
                last_updated_date: a.last_updated_date,
            })
            .collect(),
        truncated: page.truncated,
        next_marker: page.next_marker.as_deref(),
    })
}

async fn schedule_key_deletion(
    kms: &Kms,
    principal: &Principal,
    body: &[u8],
) -> Result<Vec<u8>, KmsError> {
    let r: ScheduleKeyDeletionRequest = decode(body)?;
    let s = kms
        .schedule_key_deletion(
            principal,
            &required(r.key_id, "keyId")?,
            r.pending_window_in_days,
        )
        .await?;
    encode(&ScheduleKeyDeletionResponse {
        key_id: &s.key_arn,
        deletion_date: s.deletion_date,
        key_state: s.key_state.as_str(),
        pending_window_in_days: s.pending_window_in_days,
    })
}

async fn encrypt(kms: &Kms, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, KmsError> {
    let r: EncryptRequest<'_> = decode(body)?;
    grant_tokens(r.grant_tokens.as_deref())?;
    let key_id = required(r.key_id, "keyId")?;
    let plaintext = secret(&required(r.plaintext, "plaintext")?, "Plaintext")?;
    let sealed = kms
        .encrypt(
            principal,
            EncryptInput {
                key_id,
                plaintext,
                context: context(r.encryption_context),
                encryption_algorithm: r.encryption_algorithm,
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    encode(&EncryptResponse {
        ciphertext_blob: &STANDARD.encode(&sealed.ciphertext_blob),
        key_id: &sealed.key_arn,
        encryption_algorithm: sealed.encryption_algorithm,
    })
}

async fn decrypt(kms: &Kms, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, KmsError> {
    let r: DecryptRequest = decode(body)?;
    grant_tokens(r.grant_tokens.as_deref())?;
    no_recipient(r.recipient.as_ref())?;
    let ciphertext_blob = blob(
        &required(r.ciphertext_blob, "ciphertextBlob")?,
        "CiphertextBlob",
    )?;
    let opened = kms
        .decrypt(
            principal,
            DecryptInput {
                ciphertext_blob,
                context: context(r.encryption_context),
                key_id: r.key_id,
                encryption_algorithm: r.encryption_algorithm,
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    let plaintext = secret_base64(&opened.plaintext);
    encode(&DecryptResponse {
        key_id: &opened.key_arn,
        plaintext: &plaintext,
        encryption_algorithm: opened.encryption_algorithm,
    })
}

async fn generate_data_key(
    kms: &Kms,
    principal: &Principal,
    body: &[u8],
    with_plaintext: bool,
) -> Result<Vec<u8>, KmsError> {
    let r: GenerateDataKeyRequest = decode(body)?;
    grant_tokens(r.grant_tokens.as_deref())?;
    no_recipient(r.recipient.as_ref())?;
    let key = kms
        .generate_data_key(
            principal,
            DataKeyInput {
                key_id: required(r.key_id, "keyId")?,
                key_spec: r.key_spec,
                number_of_bytes: r.number_of_bytes,
                context: context(r.encryption_context),
                dry_run: r.dry_run.unwrap_or(false),
            },
            with_plaintext,
        )
        .await?;
    let plaintext = key.plaintext.as_ref().map(secret_base64);
    encode(&GenerateDataKeyResponse {
        ciphertext_blob: &STANDARD.encode(&key.ciphertext_blob),
        plaintext: plaintext.as_deref().map(String::as_str),
        key_id: &key.key_arn,
    })
}

async fn re_encrypt(kms: &Kms, principal: &Principal, body: &[u8]) -> Result<Vec<u8>, KmsError> {
    let r: ReEncryptRequest = decode(body)?;
    grant_tokens(r.grant_tokens.as_deref())?;
    let ciphertext_blob = blob(
        &required(r.ciphertext_blob, "ciphertextBlob")?,
        "CiphertextBlob",
    )?;
    let out = kms
        .re_encrypt(
            principal,
            ReEncryptInput {
                ciphertext_blob,
                source_context: context(r.source_encryption_context),
                source_key_id: r.source_key_id,
                destination_key_id: required(r.destination_key_id, "destinationKeyId")?,
                destination_context: context(r.destination_encryption_context),
                source_encryption_algorithm: r.source_encryption_algorithm,
                destination_encryption_algorithm: r.destination_encryption_algorithm,
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    encode(&ReEncryptResponse {
        ciphertext_blob: &STANDARD.encode(&out.ciphertext_blob),
        source_key_id: &out.source_key_arn,
        key_id: &out.key_arn,
        source_encryption_algorithm: SYMMETRIC_DEFAULT,
        destination_encryption_algorithm: SYMMETRIC_DEFAULT,
    })
}

#[cfg(test)]
mod tests;
