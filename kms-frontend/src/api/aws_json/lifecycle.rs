//! JSON shapes and handlers of the lifecycle operations: tags,
//! UpdateKeyDescription and rotation. Thin: decode, call `service`, encode.
//! Operations it does not know fall through to [`super::asymmetric`].

use super::{decode, encode, required};
use crate::error::KmsError;
use crate::principal::Principal;
use crate::service::Kms;
use serde::{Deserialize, Serialize};

use super::shapes::TagShape;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceRequest {
    key_id: Option<String>,
    tags: Option<Vec<TagShape>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagResourceRequest {
    key_id: Option<String>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PagedKeyRequest {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateKeyDescriptionRequest {
    key_id: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnableKeyRotationRequest {
    key_id: Option<String>,
    rotation_period_in_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdOnly {
    key_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsResponse<'a> {
    tags: Vec<TagOut<'a>>,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagOut<'a> {
    tag_key: &'a str,
    tag_value: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RotationStatusResponse<'a> {
    key_id: &'a str,
    key_rotation_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_period_in_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_rotation_date: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListRotationsResponse<'a> {
    rotations: Vec<RotationOut<'a>>,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RotationOut<'a> {
    key_id: &'a str,
    rotation_date: i64,
    rotation_type: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdOut<'a> {
    key_id: &'a str,
}

/// Tags of a request: each needs a TagKey and a TagValue.
pub(super) fn tags(tags: Option<Vec<TagShape>>) -> Result<Vec<(String, String)>, KmsError> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| {
            Ok((
                required(t.tag_key, "tags.member.tagKey")?,
                required(t.tag_value, "tags.member.tagValue")?,
            ))
        })
        .collect()
}

pub(super) async fn handle(
    kms: &Kms,
    principal: &Principal,
    op: &str,
    body: &[u8],
) -> Result<Vec<u8>, KmsError> {
    match op {
        "TagResource" => {
            let r: TagResourceRequest = decode(body)?;
            let key_id = required(r.key_id, "keyId")?;
            let tags = tags(Some(required(r.tags, "tags")?))?;
            kms.tag_resource(principal, &key_id, tags).await?;
            Ok(Vec::new())
        }
        "UntagResource" => {
            let r: UntagResourceRequest = decode(body)?;
            let key_id = required(r.key_id, "keyId")?;
            let keys = required(r.tag_keys, "tagKeys")?;
            kms.untag_resource(principal, &key_id, keys).await?;
            Ok(Vec::new())
        }
        "ListResourceTags" => {
            let r: PagedKeyRequest = decode(body)?;
            let key_id = required(r.key_id, "keyId")?;
            let page = kms
                .list_resource_tags(principal, &key_id, r.limit, r.marker.as_deref())
                .await?;
            encode(&ListTagsResponse {
                tags: page
                    .items
                    .iter()
                    .map(|t| TagOut {
                        tag_key: &t.tag_key,
                        tag_value: &t.tag_value,
                    })
                    .collect(),
                truncated: page.truncated,
                next_marker: page.next_marker.as_deref(),
            })
        }
        "UpdateKeyDescription" => {
            let r: UpdateKeyDescriptionRequest = decode(body)?;
            let key_id = required(r.key_id, "keyId")?;
            let description = required(r.description, "description")?;
            kms.update_key_description(principal, &key_id, description)
                .await?;
            Ok(Vec::new())
        }
        "EnableKeyRotation" => {
            let r: EnableKeyRotationRequest = decode(body)?;
            let key_id = required(r.key_id, "keyId")?;
            kms.enable_key_rotation(principal, &key_id, r.rotation_period_in_days)
                .await?;
            Ok(Vec::new())
        }
        "DisableKeyRotation" => {
            let r: KeyIdOnly = decode(body)?;
            kms.disable_key_rotation(principal, &required(r.key_id, "keyId")?)
                .await?;
            Ok(Vec::new())
        }
        "GetKeyRotationStatus" => {
            let r: KeyIdOnly = decode(body)?;
            let s = kms
                .get_key_rotation_status(principal, &required(r.key_id, "keyId")?)
                .await?;
            encode(&RotationStatusResponse {
                key_id: &s.key_arn,
                key_rotation_enabled: s.enabled,
                rotation_period_in_days: s.rotation_period_in_days,
                next_rotation_date: s.next_rotation_date,
            })
        }
        "RotateKeyOnDemand" => {
            let r: KeyIdOnly = decode(body)?;
            let arn = kms
                .rotate_key_on_demand(principal, &required(r.key_id, "keyId")?)
                .await?;
            encode(&KeyIdOut { key_id: &arn })
        }
        "ListKeyRotations" => {
            let r: PagedKeyRequest = decode(body)?;
            let key_id = required(r.key_id, "keyId")?;
            let page = kms
                .list_key_rotations(principal, &key_id, r.limit, r.marker.as_deref())
                .await?;
            encode(&ListRotationsResponse {
                rotations: page
                    .items
                    .iter()
                    .map(|r| RotationOut {
                        key_id: &r.key_arn,
                        rotation_date: r.rotation_date,
                        rotation_type: &r.rotation_type,
                    })
                    .collect(),
                truncated: page.truncated,
                next_marker: page.next_marker.as_deref(),
            })
        }
        _ => super::asymmetric::handle(kms, principal, op, body).await,
    }
}
