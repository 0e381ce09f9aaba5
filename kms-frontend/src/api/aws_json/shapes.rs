//! The AWS KMS JSON request and response shapes, field names exactly as AWS
//! documents them. Requests use `Option` for every field so a missing
//! required field becomes a ValidationException, as in AWS, rather than a
//! SerializationException; unknown fields are ignored.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

pub(super) type Context = BTreeMap<String, String>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateKeyRequest {
    pub description: Option<String>,
    pub key_usage: Option<String>,
    pub key_spec: Option<String>,
    pub customer_master_key_spec: Option<String>,
    pub origin: Option<String>,
    pub multi_region: Option<bool>,
    pub custom_key_store_id: Option<String>,
    pub policy: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
    pub tags: Option<Vec<TagShape>>,
}

/// One `{"TagKey": ..., "TagValue": ...}`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TagShape {
    pub tag_key: Option<String>,
    pub tag_value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeyIdRequest {
    pub key_id: Option<String>,
    pub grant_tokens: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListKeysRequest {
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListAliasesRequest {
    pub key_id: Option<String>,
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ScheduleKeyDeletionRequest {
    pub key_id: Option<String>,
    pub pending_window_in_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct EncryptRequest<'a> {
    pub key_id: Option<String>,
    /// Base64; borrowed from the body where possible so no extra copy of
    /// the plaintext is made.
    #[serde(borrow)]
    pub plaintext: Option<Cow<'a, str>>,
    pub encryption_context: Option<Context>,
    pub encryption_algorithm: Option<String>,
    pub dry_run: Option<bool>,
    pub grant_tokens: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DecryptRequest {
    pub ciphertext_blob: Option<String>,
    pub encryption_context: Option<Context>,
    pub key_id: Option<String>,
    pub encryption_algorithm: Option<String>,
    pub dry_run: Option<bool>,
    pub grant_tokens: Option<Vec<String>>,
    /// Nitro enclave attestation: not supported, refused when present.
    pub recipient: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GenerateDataKeyRequest {
    pub key_id: Option<String>,
    pub encryption_context: Option<Context>,
    pub number_of_bytes: Option<i64>,
    pub key_spec: Option<String>,
    pub dry_run: Option<bool>,
    pub grant_tokens: Option<Vec<String>>,
    /// Nitro enclave attestation: not supported, refused when present.
    pub recipient: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ReEncryptRequest {
    pub ciphertext_blob: Option<String>,
    pub source_encryption_context: Option<Context>,
    pub source_key_id: Option<String>,
    pub destination_key_id: Option<String>,
    pub destination_encryption_context: Option<Context>,
    pub source_encryption_algorithm: Option<String>,
    pub destination_encryption_algorithm: Option<String>,
    pub dry_run: Option<bool>,
    pub grant_tokens: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GenerateRandomRequest {
    pub number_of_bytes: Option<i64>,
    /// Nitro enclave attestation: not supported, refused when present.
    pub recipient: Option<IgnoredAny>,
    pub custom_key_store_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AliasRequest {
    pub alias_name: Option<String>,
    pub target_key_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeyMetadataShape<'a> {
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: &'a str,
    pub key_id: &'a str,
    pub arn: &'a str,
    pub creation_date: i64,
    pub enabled: bool,
    pub description: &'a str,
    pub key_usage: &'a str,
    pub key_state: &'a str,
    pub origin: &'a str,
    pub key_manager: &'static str,
    pub key_spec: &'a str,
    pub customer_master_key_spec: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub encryption_algorithms: &'a [&'static str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub signing_algorithms: &'a [&'static str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub mac_algorithms: &'a [&'static str],
    pub multi_region: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_deletion_window_in_days: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeyMetadataResponse<'a> {
    pub key_metadata: KeyMetadataShape<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeyListEntryShape<'a> {
    pub key_id: &'a str,
    pub key_arn: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListKeysResponse<'a> {
    pub keys: Vec<KeyListEntryShape<'a>>,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AliasListEntryShape<'a> {
    pub alias_name: &'a str,
    pub alias_arn: &'a str,
    pub target_key_id: &'a str,
    pub creation_date: i64,
    pub last_updated_date: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListAliasesResponse<'a> {
    pub aliases: Vec<AliasListEntryShape<'a>>,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ScheduleKeyDeletionResponse<'a> {
    pub key_id: &'a str,
    pub deletion_date: i64,
    pub key_state: &'a str,
    pub pending_window_in_days: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeyIdResponse<'a> {
    pub key_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct EncryptResponse<'a> {
    pub ciphertext_blob: &'a str,
    pub key_id: &'a str,
    pub encryption_algorithm: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DecryptResponse<'a> {
    pub key_id: &'a str,
    pub plaintext: &'a str,
    pub encryption_algorithm: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GenerateDataKeyResponse<'a> {
    pub ciphertext_blob: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<&'a str>,
    pub key_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ReEncryptResponse<'a> {
    pub ciphertext_blob: &'a str,
    pub source_key_id: &'a str,
    pub key_id: &'a str,
    pub source_encryption_algorithm: &'static str,
    pub destination_encryption_algorithm: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GenerateRandomResponse<'a> {
    pub plaintext: &'a str,
}
