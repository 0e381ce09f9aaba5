//! Tags and descriptions: TagResource, UntagResource, ListResourceTags,
//! UpdateKeyDescription, and the tag rules CreateKey shares.
//!
//! AWS's rules: a tag key is 1..=128 characters, a value 0..=256; the
//! `aws:` prefix (any case) is reserved (TagException); at most 50 tags per
//! key (LimitExceededException); TagResource with an existing key replaces
//! its value. Tags are metadata only: they never reach the HSM.

use super::cache::KeyEntry;
use super::keys::MAX_DESCRIPTION;
use super::resolve::{Accept, pending_deletion};
use super::{Kms, Page, paginate};
use crate::error::KmsError;
use crate::principal::Principal;
use crate::store::{KeyState, Tags};

/// Most tags one key may carry.
pub const MAX_TAGS: usize = 50;
/// Longest tag key, in characters.
pub const MAX_TAG_KEY: usize = 128;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE: usize = 256;
/// Default and largest Limit of ListResourceTags.
const LIST_TAGS_DEFAULT: i64 = 50;

/// Checks one tag.
pub(crate) fn check_tag(key: &str, value: &str) -> Result<(), KmsError> {
    check_tag_key(key)?;
    if value.chars().count() > MAX_TAG_VALUE {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'tags.member.tagValue' failed to satisfy \
             constraint: Member must have length less than or equal to {MAX_TAG_VALUE}"
        )));
    }
    Ok(())
}

fn check_tag_key(key: &str) -> Result<(), KmsError> {
    let n = key.chars().count();
    if n == 0 || n > MAX_TAG_KEY {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'tags.member.tagKey' failed to satisfy \
             constraint: Member must have length between 1 and {MAX_TAG_KEY}"
        )));
    }
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Err(KmsError::Tag(format!(
            "Tag key '{key}' uses the reserved prefix 'aws:'"
        )));
    }
    Ok(())
}

/// Refuses more than [`MAX_TAGS`] tags on one key.
pub(crate) fn check_tag_count(n: usize) -> Result<(), KmsError> {
    if n > MAX_TAGS {
        return Err(KmsError::LimitExceeded(format!(
            "A KMS key can have at most {MAX_TAGS} tags; this request would leave {n}"
        )));
    }
    Ok(())
}

/// One tag of ListResourceTags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub tag_key: String,
    pub tag_value: String,
}

impl Kms {
    /// Applies `change` to a key's tags (or description) under the writer
    /// lock; refuses a key pending deletion as AWS does.
    async fn change_tags<F>(
        &self,
        principal: &Principal,
        key_id: &str,
        action: &'static str,
        change: F,
    ) -> Result<(), KmsError>
    where
        F: FnOnce(&mut KeyEntry) -> Result<(), KmsError> + Send + 'static,
    {
        let principal = principal.clone();
        let key_id = key_id.to_owned();
        self.write(move |core| {
            let entry = core.resolve(&principal, &key_id, Accept::KeyOnly, action)?;
            if entry.meta.key_state == KeyState::PendingDeletion {
                return Err(pending_deletion(&entry));
            }
            let mut new = (*entry).clone();
            change(&mut new)?;
            if new.tags != entry.tags {
                core.commit(|s| s.put_tags(&new.meta.key_id, &new.tags))?;
            }
            if new.meta.description != entry.meta.description {
                core.commit(|s| s.update_key(&new.meta))?;
            }
            core.cache.put_key(new);
            Ok(())
        })
        .await
    }

    /// TagResource: adds or replaces tags.
    ///
    /// # Errors
    /// Validation, TagException, LimitExceeded, NotFound, AccessDenied,
    /// KMSInvalidState.
    pub async fn tag_resource(
        &self,
        principal: &Principal,
        key_id: &str,
        tags: Vec<(String, String)>,
    ) -> Result<(), KmsError> {
        for (k, v) in &tags {
            check_tag(k, v)?;
        }
        self.change_tags(principal, key_id, "TagResource", move |e| {
            let mut merged: Tags = e.tags.clone();
            merged.extend(tags);
            check_tag_count(merged.len())?;
            e.tags = merged;
            Ok(())
        })
        .await
    }

    /// UntagResource: removes tags by key; absent keys are ignored.
    ///
    /// # Errors
    /// Validation, TagException, NotFound, AccessDenied, KMSInvalidState.
    pub async fn untag_resource(
        &self,
        principal: &Principal,
        key_id: &str,
        tag_keys: Vec<String>,
    ) -> Result<(), KmsError> {
        for k in &tag_keys {
            check_tag_key(k)?;
        }
        self.change_tags(principal, key_id, "UntagResource", move |e| {
            for k in &tag_keys {
                e.tags.remove(k);
            }
            Ok(())
        })
        .await
    }

    /// UpdateKeyDescription.
    ///
    /// # Errors
    /// Validation, NotFound, AccessDenied, KMSInvalidState.
    pub async fn update_key_description(
        &self,
        principal: &Principal,
        key_id: &str,
        description: String,
    ) -> Result<(), KmsError> {
        if description.len() > MAX_DESCRIPTION {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value at 'description' failed to satisfy \
                 constraint: Member must have length less than or equal to {MAX_DESCRIPTION}"
            )));
        }
        self.change_tags(principal, key_id, "UpdateKeyDescription", move |e| {
            e.meta.description = description;
            Ok(())
        })
        .await
    }

    /// ListResourceTags: sorted by tag key, paged (Limit 1..=50).
    ///
    /// # Errors
    /// Validation, InvalidMarker, NotFound, AccessDenied.
    pub async fn list_resource_tags(
        &self,
        principal: &Principal,
        key_id: &str,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<Tag>, KmsError> {
        let entry = self
            .core
            .resolve(principal, key_id, Accept::KeyOnly, "ListResourceTags")?;
        let limit = limit.unwrap_or(LIST_TAGS_DEFAULT);
        if !(1..=LIST_TAGS_DEFAULT).contains(&limit) {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy \
                 constraint: Member must have value between 1 and {LIST_TAGS_DEFAULT}"
            )));
        }
        let tags = entry
            .tags
            .iter()
            .map(|(k, v)| Tag {
                tag_key: k.clone(),
                tag_value: v.clone(),
            })
            .collect();
        paginate(tags, |t| t.tag_key.as_str(), marker, Some(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules_follow_aws() {
        assert!(check_tag("k", "").is_ok());
        assert!(check_tag(&"k".repeat(128), &"v".repeat(256)).is_ok());
        assert!(matches!(check_tag("", "v"), Err(KmsError::Validation(_))));
        assert!(matches!(
            check_tag(&"k".repeat(129), "v"),
            Err(KmsError::Validation(_))
        ));
        assert!(matches!(
            check_tag("k", &"v".repeat(257)),
            Err(KmsError::Validation(_))
        ));
        for reserved in ["aws:x", "AWS:x", "Aws:x"] {
            assert!(matches!(check_tag(reserved, "v"), Err(KmsError::Tag(_))));
        }
        assert!(check_tag("awsx", "v").is_ok());
        assert!(check_tag_count(50).is_ok());
        assert!(matches!(
            check_tag_count(51),
            Err(KmsError::LimitExceeded(_))
        ));
    }
}
