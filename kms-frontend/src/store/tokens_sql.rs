//! The rows that hold hsm-daemon key tokens, for a master-key rotation:
//! `key_versions.token` (every CMK version) and `system_keys.token` (the
//! internal CMKs, such as `principal-secrets`). Nothing else in the database
//! is wrapped under the master key: principals' secrets and wallet private
//! keys are ciphertext blobs under CMKs, whose material a master-key
//! rotation does not change, and grant tokens are not key tokens.
//!
//! A token is stale when it does not start with the current generation's
//! header (`protocol::token`); headerless tokens are generation 1, so they
//! are stale once any rotation has begun. Replacements are compare-and-set
//! on the old token bytes, all in the caller's one transaction, so a row
//! deleted or changed meanwhile is simply not touched.

use super::{StoreError, TokenPlace, TokenRow};
use protocol::KeyToken;
use rusqlite::{Connection, Transaction, params};

/// Up to `limit` stale token rows, key versions first, in a stable order.
pub(super) fn stale(
    conn: &Connection,
    header: &[u8],
    limit: usize,
) -> Result<Vec<TokenRow>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let len = i64::try_from(header.len()).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT key_id, version, token FROM key_versions
         WHERE substr(token, 1, ?2) <> ?1 ORDER BY key_id, version LIMIT ?3",
    )?;
    for row in stmt.query_map(params![header, len, limit], |r| {
        Ok(TokenRow {
            place: TokenPlace::KeyVersion {
                key_id: r.get(0)?,
                version: r.get(1)?,
            },
            token: KeyToken(r.get(2)?),
        })
    })? {
        out.push(row?);
    }
    let room = limit - i64::try_from(out.len()).unwrap_or(0);
    if room > 0 {
        let mut stmt = conn.prepare(
            "SELECT name, key_id, token FROM system_keys
             WHERE substr(token, 1, ?2) <> ?1 ORDER BY name LIMIT ?3",
        )?;
        for row in stmt.query_map(params![header, len, room], |r| {
            Ok(TokenRow {
                place: TokenPlace::SystemKey {
                    name: r.get(0)?,
                    key_id: r.get(1)?,
                },
                token: KeyToken(r.get(2)?),
            })
        })? {
            out.push(row?);
        }
    }
    Ok(out)
}

/// How many token rows are stale, and how many there are in all.
pub(super) fn count(conn: &Connection, header: &[u8]) -> Result<(u64, u64), StoreError> {
    let len = i64::try_from(header.len()).unwrap_or(i64::MAX);
    let mut stale = 0u64;
    let mut total = 0u64;
    for table in ["key_versions", "system_keys"] {
        let (s, t): (i64, i64) = conn.query_row(
            &format!("SELECT coalesce(sum(substr(token, 1, ?2) <> ?1), 0), count(*) FROM {table}"),
            params![header, len],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        stale += u64::try_from(s).unwrap_or(0);
        total += u64::try_from(t).unwrap_or(0);
    }
    Ok((stale, total))
}

/// Replaces each row's token with its new one if the row still holds the
/// old one; returns, per row, whether it was replaced.
pub(super) fn replace(
    tx: &Transaction<'_>,
    rows: &[(TokenRow, KeyToken)],
) -> Result<Vec<bool>, StoreError> {
    let mut done = Vec::with_capacity(rows.len());
    for (row, new) in rows {
        let changed = match &row.place {
            TokenPlace::KeyVersion { key_id, version } => tx.execute(
                "UPDATE key_versions SET token = ?1
                 WHERE key_id = ?2 AND version = ?3 AND token = ?4",
                params![new.0, key_id, version, row.token.0],
            )?,
            TokenPlace::SystemKey { name, .. } => tx.execute(
                "UPDATE system_keys SET token = ?1 WHERE name = ?2 AND token = ?3",
                params![new.0, name, row.token.0],
            )?,
        };
        done.push(changed == 1);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use crate::store::{KeyRow, KeyState, SqliteStore, Store, SystemKeyRow, VersionRow};
    use crate::store::{TokenPlace, TokenRow};
    use protocol::KeyToken;

    fn key(id: &str) -> KeyRow {
        KeyRow {
            key_id: id.into(),
            arn: format!("arn:{id}"),
            owner_arn: "o".into(),
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

    fn version(id: &str, token: Vec<u8>) -> VersionRow {
        VersionRow {
            key_id: id.into(),
            version: 1,
            token: KeyToken(token),
            created_at: 1,
            rotation_type: None,
        }
    }

    #[test]
    fn finds_stale_rows_and_replaces_only_unchanged_ones() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = SqliteStore::open(&tmp.path().join("kms.db")).expect("open");
        let header = protocol::token::header(2);
        let current = protocol::token::write(2, &[5u8; 16]);
        store
            .insert_key(&key("a"), &version("a", vec![1u8; 16]))
            .expect("a");
        store
            .insert_key(&key("b"), &version("b", current.clone()))
            .expect("b");
        store
            .insert_system_key(&SystemKeyRow {
                name: "principal-secrets".into(),
                key_id: "s".into(),
                token: KeyToken(vec![2u8; 24]),
            })
            .expect("system key");
        assert_eq!(store.count_stale_tokens(&header).expect("count"), (2, 3));
        let stale = store.stale_tokens(&header, 10).expect("stale");
        assert_eq!(stale.len(), 2);
        assert!(matches!(&stale[0].place, TokenPlace::KeyVersion { key_id, .. } if key_id == "a"));
        assert!(
            matches!(&stale[1].place, TokenPlace::SystemKey { name, .. } if name == "principal-secrets")
        );
        assert_eq!(store.stale_tokens(&header, 1).expect("limit").len(), 1);
        let moved_a = KeyToken(protocol::token::write(2, &[6u8; 16]));
        let outdated = TokenRow {
            token: KeyToken(vec![9u8; 16]),
            ..stale[1].clone()
        };
        let done = store
            .replace_tokens(&[
                (stale[0].clone(), moved_a.clone()),
                (outdated, KeyToken(protocol::token::write(2, &[7u8; 16]))),
            ])
            .expect("replace");
        assert_eq!(done, vec![true, false], "a row that changed is left alone");
        assert_eq!(store.count_stale_tokens(&header).expect("count"), (1, 3));
        let snap = store.load().expect("load");
        let a = snap.versions.iter().find(|v| v.key_id == "a").expect("a");
        assert_eq!(a.token, moved_a);
    }
}
