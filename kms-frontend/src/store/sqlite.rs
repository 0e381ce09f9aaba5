//! The SQLite [`Store`]: one connection (one writer), WAL,
//! `synchronous=FULL`, foreign keys on, a `schema_version` table and
//! forward-only migrations. The database file is created with mode 0600.

use super::access::{self, GrantRow, PrincipalRow, SystemKeyRow};
use super::{AliasRow, KeyRow, KeyState, PrivateKeyRow, Snapshot, Store, StoreError, VersionRow};
use protocol::KeyToken;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Migrations in order; entry `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE keys (
    key_id              TEXT PRIMARY KEY NOT NULL,
    arn                 TEXT NOT NULL,
    owner_arn           TEXT NOT NULL,
    description         TEXT NOT NULL,
    key_spec            TEXT NOT NULL,
    key_usage           TEXT NOT NULL,
    origin              TEXT NOT NULL,
    key_state           TEXT NOT NULL,
    creation_date       INTEGER NOT NULL,
    enabled             INTEGER NOT NULL,
    deletion_date       INTEGER,
    pending_window_days INTEGER,
    current_version     INTEGER NOT NULL
);
CREATE TABLE key_versions (
    key_id     TEXT NOT NULL REFERENCES keys(key_id),
    version    INTEGER NOT NULL,
    token      BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, version)
);
CREATE TABLE aliases (
    alias_name        TEXT PRIMARY KEY NOT NULL,
    target_key_id     TEXT NOT NULL REFERENCES keys(key_id),
    creation_date     INTEGER NOT NULL,
    last_updated_date INTEGER NOT NULL
);
CREATE INDEX keys_owner ON keys(owner_arn);
CREATE INDEX aliases_target ON aliases(target_key_id);
",
    super::lifecycle_sql::MIGRATION_LIFECYCLE,
    r"
CREATE TABLE private_keys (
    pub                TEXT NOT NULL,
    source             TEXT NOT NULL CHECK (source IN ('user', 'backup')),
    encrypted_prv      BLOB NOT NULL,
    encrypted_data_key BLOB NOT NULL,
    root_key           TEXT NOT NULL,
    coin               TEXT NOT NULL,
    type               TEXT NOT NULL,
    owner_arn          TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (pub, source)
);
",
    access::MIGRATION,
];

/// SQLite-backed store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating with mode 0600 if absent) and migrates the database.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be created or opened, or the
    /// schema is newer than this build.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // Create the file ourselves so it never exists with a looser mode.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        drop(file);
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = Self {
            conn: Mutex::new(conn),
        };
        store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half transaction:
        // an uncommitted rusqlite Transaction rolls back on drop.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one transaction, committing on `Ok`.
    fn in_tx(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        f(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let conn = self.conn.get_mut().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction()?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let found: Option<i64> = tx
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()?;
        let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        let current = match found {
            Some(v) => v,
            None => {
                tx.execute("INSERT INTO schema_version (version) VALUES (0)", [])?;
                0
            }
        };
        if current > supported {
            return Err(StoreError::TooNew {
                found: current,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let target = i64::try_from(i + 1).unwrap_or(i64::MAX);
            if target > current {
                tx.execute_batch(sql)?;
                tx.execute("UPDATE schema_version SET version = ?1", [target])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

pub(super) fn conflict(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            StoreError::Conflict(e.to_string())
        }
        _ => StoreError::Sqlite(e),
    }
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(KeyRow, String)> {
    let state: String = r.get(7)?;
    Ok((
        KeyRow {
            key_id: r.get(0)?,
            arn: r.get(1)?,
            owner_arn: r.get(2)?,
            description: r.get(3)?,
            key_spec: r.get(4)?,
            key_usage: r.get(5)?,
            origin: r.get(6)?,
            key_state: KeyState::Enabled,
            creation_date: r.get(8)?,
            enabled: r.get(9)?,
            deletion_date: r.get(10)?,
            pending_window_days: r.get(11)?,
            current_version: r.get(12)?,
        },
        state,
    ))
}

impl Store for SqliteStore {
    fn stale_tokens(
        &self,
        header: &[u8],
        limit: usize,
    ) -> Result<Vec<super::TokenRow>, StoreError> {
        super::tokens_sql::stale(&self.conn(), header, limit)
    }

    fn count_stale_tokens(&self, header: &[u8]) -> Result<(u64, u64), StoreError> {
        super::tokens_sql::count(&self.conn(), header)
    }

    fn replace_tokens(
        &self,
        rows: &[(super::TokenRow, KeyToken)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let done = super::tokens_sql::replace(&tx, rows)?;
        tx.commit()?;
        Ok(done)
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let conn = self.conn();
        let mut snap = Snapshot::default();
        let mut stmt = conn.prepare(
            "SELECT key_id, arn, owner_arn, description, key_spec, key_usage, origin, key_state,
                    creation_date, enabled, deletion_date, pending_window_days, current_version
             FROM keys ORDER BY key_id",
        )?;
        for row in stmt.query_map([], key_from_row)? {
            let (mut key, state) = row?;
            key.key_state = KeyState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("key {}: state", key.key_id)))?;
            snap.keys.push(key);
        }
        let mut stmt = conn.prepare(
            "SELECT key_id, version, token, created_at, rotation_type FROM key_versions
             ORDER BY key_id, version",
        )?;
        for row in stmt.query_map([], |r| {
            Ok(VersionRow {
                key_id: r.get(0)?,
                version: r.get(1)?,
                token: KeyToken(r.get(2)?),
                created_at: r.get(3)?,
                rotation_type: r.get(4)?,
            })
        })? {
            snap.versions.push(row?);
        }
        let mut stmt = conn.prepare(
            "SELECT alias_name, target_key_id, creation_date, last_updated_date
             FROM aliases ORDER BY alias_name",
        )?;
        for row in stmt.query_map([], |r| {
            Ok(AliasRow {
                alias_name: r.get(0)?,
                target_key_id: r.get(1)?,
                creation_date: r.get(2)?,
                last_updated_date: r.get(3)?,
            })
        })? {
            snap.aliases.push(row?);
        }
        super::lifecycle_sql::load(&conn, &mut snap)?;
        snap.access = access::load(&conn)?;
        Ok(snap)
    }

    fn insert_key(&self, key: &KeyRow, version: &VersionRow) -> Result<(), StoreError> {
        self.insert_key_tagged(key, version, &super::Tags::new())
    }

    fn insert_key_with_policy(
        &self,
        key: &KeyRow,
        version: &VersionRow,
        tags: &super::Tags,
        policy: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        super::lifecycle_sql::insert_key(&tx, key, version, tags)?;
        if let Some(policy) = policy {
            access::put_policy(&tx, &key.key_id, policy)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn update_key(&self, key: &KeyRow) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE keys SET description = ?2, key_state = ?3, enabled = ?4, deletion_date = ?5,
                pending_window_days = ?6, current_version = ?7
             WHERE key_id = ?1",
            params![
                key.key_id,
                key.description,
                key.key_state.as_str(),
                key.enabled,
                key.deletion_date,
                key.pending_window_days,
                key.current_version,
            ],
        )?;
        if n != 1 {
            return Err(StoreError::Missing(key.key_id.clone()));
        }
        tx.commit()?;
        Ok(())
    }

    fn insert_alias(&self, alias: &AliasRow) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO aliases (alias_name, target_key_id, creation_date, last_updated_date)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                alias.alias_name,
                alias.target_key_id,
                alias.creation_date,
                alias.last_updated_date
            ],
        )
        .map_err(conflict)?;
        tx.commit()?;
        Ok(())
    }

    fn update_alias(&self, alias: &AliasRow) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx
            .execute(
                "UPDATE aliases SET target_key_id = ?2, last_updated_date = ?3
                 WHERE alias_name = ?1",
                params![
                    alias.alias_name,
                    alias.target_key_id,
                    alias.last_updated_date
                ],
            )
            .map_err(conflict)?;
        if n != 1 {
            return Err(StoreError::Missing(alias.alias_name.clone()));
        }
        tx.commit()?;
        Ok(())
    }

    fn delete_alias(&self, alias_name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM aliases WHERE alias_name = ?1", [alias_name])?;
        if n != 1 {
            return Err(StoreError::Missing(alias_name.to_owned()));
        }
        tx.commit()?;
        Ok(())
    }

    fn insert_key_tagged(
        &self,
        key: &KeyRow,
        version: &VersionRow,
        tags: &super::Tags,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        super::lifecycle_sql::insert_key(&tx, key, version, tags)?;
        tx.commit()?;
        Ok(())
    }

    fn put_tags(&self, key_id: &str, tags: &super::Tags) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        super::lifecycle_sql::put_tags(&tx, key_id, tags)?;
        tx.commit()?;
        Ok(())
    }

    fn set_rotation(
        &self,
        key_id: &str,
        rotation: Option<&super::RotationRow>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        super::lifecycle_sql::set_rotation(&tx, key_id, rotation)?;
        tx.commit()?;
        Ok(())
    }

    fn add_version(
        &self,
        version: &VersionRow,
        rotation: Option<&super::RotationRow>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        super::lifecycle_sql::add_version(&tx, version, rotation)?;
        tx.commit()?;
        Ok(())
    }

    fn purge_key(&self, key_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        access::purge_key(&tx, key_id)?;
        super::lifecycle_sql::purge_key(&tx, key_id)?;
        tx.commit()?;
        Ok(())
    }

    fn insert_private_key(&self, row: &PrivateKeyRow) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO private_keys (pub, source, encrypted_prv, encrypted_data_key, \
                 root_key, coin, type, owner_arn, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    row.public_key,
                    row.source,
                    row.encrypted_prv,
                    row.encrypted_data_key,
                    row.root_key,
                    row.coin,
                    row.key_type,
                    row.owner_arn,
                    row.created_at
                ],
            )
            .map_err(conflict)?;
        Ok(())
    }

    fn private_keys(&self, public_key: &str) -> Result<Vec<PrivateKeyRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT pub, source, encrypted_prv, encrypted_data_key, root_key, coin, type, \
             owner_arn, created_at FROM private_keys WHERE pub = ?1 \
             ORDER BY CASE source WHEN 'user' THEN 0 ELSE 1 END",
        )?;
        let rows = stmt.query_map([public_key], |r| {
            Ok(PrivateKeyRow {
                public_key: r.get(0)?,
                source: r.get(1)?,
                encrypted_prv: r.get(2)?,
                encrypted_data_key: r.get(3)?,
                root_key: r.get(4)?,
                coin: r.get(5)?,
                key_type: r.get(6)?,
                owner_arn: r.get(7)?,
                created_at: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn put_key_policy(&self, key_id: &str, policy: &str) -> Result<(), StoreError> {
        self.in_tx(|tx| access::put_policy(tx, key_id, policy))
    }

    fn insert_grant(&self, grant: &GrantRow) -> Result<(), StoreError> {
        self.in_tx(|tx| access::insert_grant(tx, grant))
    }

    fn delete_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.in_tx(|tx| access::delete_grant(tx, grant_id))
    }

    fn insert_principal(&self, principal: &PrincipalRow) -> Result<(), StoreError> {
        self.in_tx(|tx| access::insert_principal(tx, principal))
    }

    fn delete_principal(&self, arn: &str) -> Result<(), StoreError> {
        self.in_tx(|tx| access::delete_principal(tx, arn))
    }

    fn insert_system_key(&self, key: &SystemKeyRow) -> Result<(), StoreError> {
        self.in_tx(|tx| access::insert_system_key(tx, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> KeyRow {
        KeyRow {
            key_id: id.into(),
            arn: format!("arn:aws:kms:us-east-1:111122223333:key/{id}"),
            owner_arn: "arn:aws:iam::111122223333:user/a".into(),
            description: "d".into(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            origin: "AWS_KMS".into(),
            key_state: KeyState::Enabled,
            creation_date: 1_700_000_000,
            enabled: true,
            deletion_date: None,
            pending_window_days: None,
            current_version: 1,
        }
    }

    fn version(id: &str) -> VersionRow {
        VersionRow {
            key_id: id.into(),
            version: 1,
            token: KeyToken(vec![1, 2, 3]),
            created_at: 1_700_000_000,
            rotation_type: None,
        }
    }

    fn alias(name: &str, target: &str) -> AliasRow {
        AliasRow {
            alias_name: name.into(),
            target_key_id: target.into(),
            creation_date: 1,
            last_updated_date: 1,
        }
    }

    #[test]
    fn round_trip_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kms.db");
        {
            let s = SqliteStore::open(&path).expect("open");
            s.insert_key(&key("k1"), &version("k1")).expect("insert");
            s.insert_key(&key("k2"), &version("k2")).expect("insert");
            let mut k = key("k1");
            k.key_state = KeyState::PendingDeletion;
            k.enabled = false;
            k.deletion_date = Some(5);
            k.pending_window_days = Some(7);
            s.update_key(&k).expect("update");
            s.insert_alias(&alias("alias/a", "k1")).expect("alias");
            s.insert_alias(&alias("alias/b", "k1")).expect("alias");
            let mut a = alias("alias/a", "k2");
            a.last_updated_date = 9;
            s.update_alias(&a).expect("update alias");
            s.delete_alias("alias/b").expect("delete alias");
        }
        let s = SqliteStore::open(&path).expect("reopen");
        let snap = s.load().expect("load");
        assert_eq!(snap.keys.len(), 2);
        assert_eq!(snap.keys[0].key_state, KeyState::PendingDeletion);
        assert_eq!(snap.keys[0].deletion_date, Some(5));
        assert_eq!(snap.keys[1], key("k2"));
        assert_eq!(snap.versions, vec![version("k1"), version("k2")]);
        assert_eq!(snap.aliases.len(), 1);
        assert_eq!(snap.aliases[0].target_key_id, "k2");
        assert_eq!(snap.aliases[0].last_updated_date, 9);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn conflicts_and_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SqliteStore::open(&dir.path().join("kms.db")).expect("open");
        s.insert_key(&key("k1"), &version("k1")).expect("insert");
        assert!(matches!(
            s.insert_key(&key("k1"), &version("k1")),
            Err(StoreError::Conflict(_))
        ));
        s.insert_alias(&alias("alias/a", "k1")).expect("alias");
        assert!(matches!(
            s.insert_alias(&alias("alias/a", "k1")),
            Err(StoreError::Conflict(_))
        ));
        // foreign key: target must exist
        assert!(matches!(
            s.insert_alias(&alias("alias/b", "nope")),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.update_key(&key("nope")),
            Err(StoreError::Missing(_))
        ));
        assert!(matches!(
            s.delete_alias("alias/zz"),
            Err(StoreError::Missing(_))
        ));
        // a failed insert left nothing behind
        let snap = s.load().expect("load");
        assert_eq!(snap.keys.len(), 1);
        assert_eq!(snap.versions.len(), 1);
        assert_eq!(snap.aliases.len(), 1);
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kms.db");
        drop(SqliteStore::open(&path).expect("open"));
        let conn = Connection::open(&path).expect("raw open");
        conn.execute("UPDATE schema_version SET version = 99", [])
            .expect("bump");
        drop(conn);
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
