//! The in-memory view of the store that every request reads: keys (metadata
//! and version tokens) and aliases. Loaded once at open, then written
//! through: `service` commits to the store first and updates the cache
//! after, under its write lock, so the cache never shows uncommitted state.
//! Reads take a short `RwLock` read and clone an `Arc`; crypto operations
//! never touch the database.

use crate::store::{AliasRow, KeyRow, RotationRow, Snapshot, Tags};
use protocol::{KeyRef, KeyToken};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A key as the service sees it.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    pub meta: KeyRow,
    pub tokens: BTreeMap<u32, KeyToken>,
    /// Per version: creation time and rotation type (`None` for the first).
    pub versions: BTreeMap<u32, VersionMeta>,
    pub tags: Tags,
    /// Present while automatic rotation is enabled.
    pub rotation: Option<RotationRow>,
}

/// What ListKeyRotations shows of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionMeta {
    pub created_at: i64,
    pub rotation_type: Option<String>,
}

impl KeyEntry {
    /// An entry with no versions, tags or rotation yet.
    pub fn new(meta: KeyRow) -> Self {
        Self {
            meta,
            tokens: BTreeMap::new(),
            versions: BTreeMap::new(),
            tags: Tags::new(),
            rotation: None,
        }
    }

    /// Adds a version's token and metadata.
    pub fn add_version(&mut self, v: crate::store::VersionRow) {
        self.versions.insert(
            v.version,
            VersionMeta {
                created_at: v.created_at,
                rotation_type: v.rotation_type,
            },
        );
        self.tokens.insert(v.version, v.token);
    }

    /// The reference the HSM needs for `version`.
    pub fn key_ref(&self, version: u32) -> Option<KeyRef> {
        self.tokens.get(&version).map(|token| KeyRef {
            key_id: self.meta.key_id.clone(),
            version,
            token: token.clone(),
        })
    }

    /// The reference for the current version.
    pub fn current_ref(&self) -> Option<KeyRef> {
        self.key_ref(self.meta.current_version)
    }
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, Arc<KeyEntry>>,
    aliases: BTreeMap<String, AliasRow>,
}

/// Keys and aliases in memory.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    state: RwLock<State>,
}

impl Cache {
    /// Builds the cache from a full load of the store.
    pub fn from_snapshot(snap: Snapshot) -> Self {
        let mut keys: HashMap<String, KeyEntry> = snap
            .keys
            .into_iter()
            .map(|k| (k.key_id.clone(), KeyEntry::new(k)))
            .collect();
        for v in snap.versions {
            if let Some(k) = keys.get_mut(&v.key_id) {
                k.add_version(v);
            }
        }
        for r in snap.rotations {
            if let Some(k) = keys.get_mut(&r.key_id) {
                k.rotation = Some(r);
            }
        }
        for (key_id, tag_key, tag_value) in snap.tags {
            if let Some(k) = keys.get_mut(&key_id) {
                k.tags.insert(tag_key, tag_value);
            }
        }
        let state = State {
            keys: keys.into_iter().map(|(id, k)| (id, Arc::new(k))).collect(),
            aliases: snap
                .aliases
                .into_iter()
                .map(|a| (a.alias_name.clone(), a))
                .collect(),
        };
        Self {
            state: RwLock::new(state),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn key(&self, key_id: &str) -> Option<Arc<KeyEntry>> {
        self.read().keys.get(key_id).cloned()
    }

    pub fn alias(&self, name: &str) -> Option<AliasRow> {
        self.read().aliases.get(name).cloned()
    }

    /// The key an alias points to, in one read.
    pub fn alias_target(&self, name: &str) -> Option<(AliasRow, Option<Arc<KeyEntry>>)> {
        let s = self.read();
        let alias = s.aliases.get(name)?.clone();
        let key = s.keys.get(&alias.target_key_id).cloned();
        Some((alias, key))
    }

    pub fn put_key(&self, entry: KeyEntry) {
        self.write()
            .keys
            .insert(entry.meta.key_id.clone(), Arc::new(entry));
    }

    pub fn put_alias(&self, alias: AliasRow) {
        self.write().aliases.insert(alias.alias_name.clone(), alias);
    }

    pub fn remove_alias(&self, name: &str) {
        self.write().aliases.remove(name);
    }

    /// Forgets a destroyed key and the aliases that pointed at it.
    pub fn remove_key(&self, key_id: &str) {
        let mut s = self.write();
        s.keys.remove(key_id);
        s.aliases.retain(|_, a| a.target_key_id != key_id);
    }

    /// Every key, sorted by key id (for the scheduler).
    pub fn all_keys(&self) -> Vec<Arc<KeyEntry>> {
        let mut v: Vec<_> = self.read().keys.values().cloned().collect();
        v.sort_by(|a, b| a.meta.key_id.cmp(&b.meta.key_id));
        v
    }

    /// Keys whose owner is `owner_arn`, sorted by key id.
    pub fn keys_owned_by(&self, owner_arn: &str) -> Vec<Arc<KeyEntry>> {
        let mut v: Vec<_> = self
            .read()
            .keys
            .values()
            .filter(|k| k.meta.owner_arn == owner_arn)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.meta.key_id.cmp(&b.meta.key_id));
        v
    }

    /// Aliases whose target key is owned by `owner_arn`, sorted by name,
    /// optionally only those pointing at `key_id`.
    pub fn aliases_owned_by(&self, owner_arn: &str, key_id: Option<&str>) -> Vec<AliasRow> {
        let s = self.read();
        s.aliases
            .values()
            .filter(|a| key_id.is_none_or(|k| a.target_key_id == k))
            .filter(|a| {
                s.keys
                    .get(&a.target_key_id)
                    .is_some_and(|k| k.meta.owner_arn == owner_arn)
            })
            .cloned()
            .collect()
    }
}
