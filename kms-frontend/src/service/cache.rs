//! The in-memory view of the store that every request reads: keys (metadata
//! and version tokens) and aliases. Loaded once at open, then written
//! through: `service` commits to the store first and updates the cache
//! after, under its write lock, so the cache never shows uncommitted state.
//! Reads take a short `RwLock` read and clone an `Arc`; crypto operations
//! never touch the database.

use crate::policy::{Grant, Policy};
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
    /// The key policy as written, parsed; `None`: the default key policy.
    pub policy: Option<Arc<Policy>>,
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
            policy: None,
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
    /// Grants by key id, oldest first.
    grants: HashMap<String, Vec<Arc<Grant>>>,
}

/// Keys and aliases in memory.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    state: RwLock<State>,
}

impl Cache {
    /// Builds the cache from a full load of the store, with `grants` the
    /// parsed grant rows.
    ///
    /// # Errors
    /// The key id and reason when a stored key policy does not parse.
    pub fn from_snapshot(snap: Snapshot, grants: Vec<Grant>) -> Result<Self, String> {
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
        for row in snap.access.policies {
            let p = Policy::parse(&row.policy)
                .map_err(|e| format!("stored policy of key {}: {e}", row.key_id))?;
            if let Some(k) = keys.get_mut(&row.key_id) {
                k.policy = Some(Arc::new(p));
            }
        }
        let mut by_key: HashMap<String, Vec<Arc<Grant>>> = HashMap::new();
        for g in grants {
            by_key
                .entry(g.key_id.clone())
                .or_default()
                .push(Arc::new(g));
        }
        let state = State {
            keys: keys.into_iter().map(|(id, k)| (id, Arc::new(k))).collect(),
            aliases: snap
                .aliases
                .into_iter()
                .map(|a| (a.alias_name.clone(), a))
                .collect(),
            grants: by_key,
        };
        Ok(Self {
            state: RwLock::new(state),
        })
    }

    /// The grants of one key, oldest first.
    pub fn grants_of(&self, key_id: &str) -> Vec<Arc<Grant>> {
        self.read().grants.get(key_id).cloned().unwrap_or_default()
    }

    /// Every grant, for lookups by token, id or retiring principal.
    pub fn all_grants(&self) -> Vec<Arc<Grant>> {
        self.read().grants.values().flatten().cloned().collect()
    }

    pub fn put_grant(&self, grant: Grant) {
        self.write()
            .grants
            .entry(grant.key_id.clone())
            .or_default()
            .push(Arc::new(grant));
    }

    pub fn remove_grant(&self, key_id: &str, grant_id: &str) {
        if let Some(v) = self.write().grants.get_mut(key_id) {
            v.retain(|g| g.grant_id != grant_id);
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
        s.grants.remove(key_id);
    }

    /// Every key, sorted by key id (for the scheduler).
    pub fn all_keys(&self) -> Vec<Arc<KeyEntry>> {
        let mut v: Vec<_> = self.read().keys.values().cloned().collect();
        v.sort_by(|a, b| a.meta.key_id.cmp(&b.meta.key_id));
        v
    }

    /// Aliases whose target key passes `visible` (which must not read
    /// the cache), sorted by name, optionally only those pointing at
    /// `key_id`.
    pub fn aliases_where(
        &self,
        key_id: Option<&str>,
        visible: impl Fn(&Arc<KeyEntry>) -> bool,
    ) -> Vec<AliasRow> {
        let s = self.read();
        s.aliases
            .values()
            .filter(|a| key_id.is_none_or(|k| a.target_key_id == k))
            .filter(|a| s.keys.get(&a.target_key_id).is_some_and(&visible))
            .cloned()
            .collect()
    }
}
