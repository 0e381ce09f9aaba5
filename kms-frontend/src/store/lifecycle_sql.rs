//! SQL of the lifecycle tables (`key_rotation`, `tags`, the version's
//! `rotation_type`) and of the writes that span several tables: a key with
//! its tags, a rotated version, and the purge of a deleted key. Each
//! function runs inside the caller's transaction; `sqlite` opens and commits
//! it.

use super::sqlite::conflict;
use super::{KeyRow, RotationRow, Snapshot, StoreError, Tags, VersionRow};
use rusqlite::{Connection, Transaction, params};

/// Schema version 2: rotation schedules, tags, and how each version came to be.
pub(super) const MIGRATION_LIFECYCLE: &str = r"
ALTER TABLE key_versions ADD COLUMN rotation_type TEXT;
CREATE TABLE key_rotation (
    key_id             TEXT PRIMARY KEY NOT NULL REFERENCES keys(key_id),
    period_days        INTEGER NOT NULL,
    next_rotation_date INTEGER NOT NULL
);
CREATE TABLE tags (
    key_id    TEXT NOT NULL REFERENCES keys(key_id),
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
);
";

/// Reads the rotation schedules and tags into `snap`.
pub(super) fn load(conn: &Connection, snap: &mut Snapshot) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT key_id, period_days, next_rotation_date FROM key_rotation ORDER BY key_id",
    )?;
    for row in stmt.query_map([], |r| {
        Ok(RotationRow {
            key_id: r.get(0)?,
            period_days: r.get(1)?,
            next_rotation_date: r.get(2)?,
        })
    })? {
        snap.rotations.push(row?);
    }
    let mut stmt =
        conn.prepare("SELECT key_id, tag_key, tag_value FROM tags ORDER BY key_id, tag_key")?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        snap.tags.push(row?);
    }
    Ok(())
}

fn insert_version(tx: &Transaction<'_>, v: &VersionRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO key_versions (key_id, version, token, created_at, rotation_type)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            v.key_id,
            v.version,
            v.token.0,
            v.created_at,
            v.rotation_type
        ],
    )
    .map_err(conflict)?;
    Ok(())
}

fn insert_tags(tx: &Transaction<'_>, key_id: &str, tags: &Tags) -> Result<(), StoreError> {
    for (k, v) in tags {
        tx.execute(
            "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3)",
            params![key_id, k, v],
        )
        .map_err(conflict)?;
    }
    Ok(())
}

pub(super) fn insert_key(
    tx: &Transaction<'_>,
    key: &KeyRow,
    version: &VersionRow,
    tags: &Tags,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO keys (key_id, arn, owner_arn, description, key_spec, key_usage, origin,
            key_state, creation_date, enabled, deletion_date, pending_window_days,
            current_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            key.key_id,
            key.arn,
            key.owner_arn,
            key.description,
            key.key_spec,
            key.key_usage,
            key.origin,
            key.key_state.as_str(),
            key.creation_date,
            key.enabled,
            key.deletion_date,
            key.pending_window_days,
            key.current_version,
        ],
    )
    .map_err(conflict)?;
    insert_version(tx, version)?;
    insert_tags(tx, &key.key_id, tags)
}

pub(super) fn put_tags(tx: &Transaction<'_>, key_id: &str, tags: &Tags) -> Result<(), StoreError> {
    tx.execute("DELETE FROM tags WHERE key_id = ?1", [key_id])?;
    insert_tags(tx, key_id, tags)
}

pub(super) fn set_rotation(
    tx: &Transaction<'_>,
    key_id: &str,
    rotation: Option<&RotationRow>,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM key_rotation WHERE key_id = ?1", [key_id])?;
    if let Some(r) = rotation {
        tx.execute(
            "INSERT INTO key_rotation (key_id, period_days, next_rotation_date)
             VALUES (?1, ?2, ?3)",
            params![key_id, r.period_days, r.next_rotation_date],
        )
        .map_err(conflict)?;
    }
    Ok(())
}

pub(super) fn add_version(
    tx: &Transaction<'_>,
    version: &VersionRow,
    rotation: Option<&RotationRow>,
) -> Result<(), StoreError> {
    insert_version(tx, version)?;
    let n = tx.execute(
        "UPDATE keys SET current_version = ?2 WHERE key_id = ?1",
        params![version.key_id, version.version],
    )?;
    if n != 1 {
        return Err(StoreError::Missing(version.key_id.clone()));
    }
    if let Some(r) = rotation {
        tx.execute(
            "UPDATE key_rotation SET next_rotation_date = ?2 WHERE key_id = ?1",
            params![r.key_id, r.next_rotation_date],
        )?;
    }
    Ok(())
}

pub(super) fn purge_key(tx: &Transaction<'_>, key_id: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM key_versions WHERE key_id = ?1",
        "DELETE FROM tags WHERE key_id = ?1",
        "DELETE FROM key_rotation WHERE key_id = ?1",
        "DELETE FROM aliases WHERE target_key_id = ?1",
    ] {
        tx.execute(sql, [key_id])?;
    }
    let n = tx.execute("DELETE FROM keys WHERE key_id = ?1", [key_id])?;
    if n != 1 {
        return Err(StoreError::Missing(key_id.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{KeyState, SqliteStore, Store};
    use super::*;
    use protocol::KeyToken;

    fn key(id: &str) -> KeyRow {
        KeyRow {
            key_id: id.into(),
            arn: format!("arn:aws:kms:us-east-1:111122223333:key/{id}"),
            owner_arn: "arn:aws:iam::111122223333:user/a".into(),
            description: String::new(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            origin: "AWS_KMS".into(),
            key_state: KeyState::Enabled,
            creation_date: 1,
            enabled: true,
            deletion_date: None,
            pending_window_days: None,
            current_version: 1,
        }
    }

    fn version(id: &str, n: u32, rotation_type: Option<&str>) -> VersionRow {
        VersionRow {
            key_id: id.into(),
            version: n,
            token: KeyToken(vec![u8::try_from(n).unwrap_or(0); 8]),
            created_at: i64::from(n),
            rotation_type: rotation_type.map(str::to_owned),
        }
    }

    #[test]
    fn tags_rotation_versions_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kms.db");
        {
            let s = SqliteStore::open(&path).expect("open");
            let tags = Tags::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
            s.insert_key_tagged(&key("k"), &version("k", 1, None), &tags)
                .expect("insert");
            s.put_tags("k", &Tags::from([("c".into(), "3".into())]))
                .expect("tags");
            let rot = RotationRow {
                key_id: "k".into(),
                period_days: 90,
                next_rotation_date: 100,
            };
            s.set_rotation("k", Some(&rot)).expect("rotation");
            let next = RotationRow {
                next_rotation_date: 200,
                ..rot
            };
            s.add_version(&version("k", 2, Some("AUTOMATIC")), Some(&next))
                .expect("rotate");
            assert!(matches!(
                s.add_version(&version("k", 2, Some("ON_DEMAND")), None),
                Err(StoreError::Conflict(_))
            ));
        }
        let snap = SqliteStore::open(&path)
            .expect("reopen")
            .load()
            .expect("load");
        assert_eq!(snap.keys[0].current_version, 2);
        assert_eq!(snap.versions.len(), 2);
        assert_eq!(snap.versions[1].rotation_type.as_deref(), Some("AUTOMATIC"));
        assert_eq!(snap.rotations[0].next_rotation_date, 200);
        assert_eq!(snap.tags, vec![("k".into(), "c".into(), "3".into())]);
    }

    #[test]
    fn purge_removes_every_row_of_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SqliteStore::open(&dir.path().join("kms.db")).expect("open");
        s.insert_key_tagged(
            &key("k"),
            &version("k", 1, None),
            &Tags::from([("a".into(), "1".into())]),
        )
        .expect("insert");
        s.add_version(&version("k", 2, Some("ON_DEMAND")), None)
            .expect("rotate");
        s.insert_key(&key("other"), &version("other", 1, None))
            .expect("other");
        s.purge_key("k").expect("purge");
        let snap = s.load().expect("load");
        assert_eq!(snap.keys.len(), 1);
        assert!(snap.versions.iter().all(|v| v.key_id == "other"));
        assert!(snap.tags.is_empty());
        assert!(matches!(s.purge_key("k"), Err(StoreError::Missing(_))));
    }
}
