//! Rows and SQLite statements of access control: key policies, grants,
//! runtime principals (their secret access keys encrypted under a system
//! key held by hsm-daemon, never in the clear) and system keys (tokens of
//! the frontend's internal CMKs). Rows only; the rules are `service`'s.

use super::StoreError;
use protocol::KeyToken;
use rusqlite::{Connection, Transaction, params};

/// Schema of access control (migration 2).
pub(super) const MIGRATION: &str = r"
CREATE TABLE key_policies (
    key_id TEXT PRIMARY KEY NOT NULL REFERENCES keys(key_id),
    policy TEXT NOT NULL
);
CREATE TABLE grants (
    grant_id      TEXT PRIMARY KEY NOT NULL,
    key_id        TEXT NOT NULL REFERENCES keys(key_id),
    name          TEXT,
    grantee       TEXT NOT NULL,
    retiring      TEXT,
    operations    TEXT NOT NULL,
    constraints   TEXT,
    issuing       TEXT NOT NULL,
    creation_date INTEGER NOT NULL,
    token         TEXT NOT NULL UNIQUE
);
CREATE INDEX grants_key ON grants(key_id);
CREATE TABLE principals (
    arn           TEXT PRIMARY KEY NOT NULL,
    access_key_id TEXT NOT NULL UNIQUE,
    admin         INTEGER NOT NULL,
    secret        BLOB NOT NULL,
    creation_date INTEGER NOT NULL
);
CREATE TABLE system_keys (
    name   TEXT PRIMARY KEY NOT NULL,
    key_id TEXT NOT NULL,
    token  BLOB NOT NULL
);
";

/// One row of `key_policies`: the policy document as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    pub key_id: String,
    pub policy: String,
}

/// One row of `grants`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub grant_id: String,
    pub key_id: String,
    pub name: Option<String>,
    pub grantee: String,
    pub retiring: Option<String>,
    /// Operation names separated by commas.
    pub operations: String,
    /// `{"EncryptionContextEquals": {...}, "EncryptionContextSubset": {...}}`.
    pub constraints: Option<String>,
    pub issuing: String,
    pub creation_date: i64,
    pub token: String,
}

/// One row of `principals`: a principal made at run time.
#[derive(Clone, PartialEq, Eq)]
pub struct PrincipalRow {
    pub arn: String,
    pub access_key_id: String,
    pub admin: bool,
    /// The secret access key as a ciphertext blob of the system key.
    pub secret: Vec<u8>,
    pub creation_date: i64,
}

impl std::fmt::Debug for PrincipalRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrincipalRow")
            .field("arn", &self.arn)
            .field("access_key_id", &self.access_key_id)
            .field("admin", &self.admin)
            .field("secret", &"[ENCRYPTED]")
            .finish()
    }
}

/// One row of `system_keys`: an internal CMK's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemKeyRow {
    pub name: String,
    pub key_id: String,
    pub token: KeyToken,
}

/// Access-control rows of a snapshot.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccessSnapshot {
    pub policies: Vec<PolicyRow>,
    pub grants: Vec<GrantRow>,
    pub principals: Vec<PrincipalRow>,
    pub system_keys: Vec<SystemKeyRow>,
}

pub(super) fn load(conn: &Connection) -> Result<AccessSnapshot, StoreError> {
    let mut snap = AccessSnapshot::default();
    let mut stmt = conn.prepare("SELECT key_id, policy FROM key_policies ORDER BY key_id")?;
    for row in stmt.query_map([], |r| {
        Ok(PolicyRow {
            key_id: r.get(0)?,
            policy: r.get(1)?,
        })
    })? {
        snap.policies.push(row?);
    }
    let mut stmt = conn.prepare(
        "SELECT grant_id, key_id, name, grantee, retiring, operations, constraints, issuing,
                creation_date, token FROM grants ORDER BY creation_date, grant_id",
    )?;
    for row in stmt.query_map([], |r| {
        Ok(GrantRow {
            grant_id: r.get(0)?,
            key_id: r.get(1)?,
            name: r.get(2)?,
            grantee: r.get(3)?,
            retiring: r.get(4)?,
            operations: r.get(5)?,
            constraints: r.get(6)?,
            issuing: r.get(7)?,
            creation_date: r.get(8)?,
            token: r.get(9)?,
        })
    })? {
        snap.grants.push(row?);
    }
    let mut stmt = conn.prepare(
        "SELECT arn, access_key_id, admin, secret, creation_date FROM principals ORDER BY arn",
    )?;
    for row in stmt.query_map([], |r| {
        Ok(PrincipalRow {
            arn: r.get(0)?,
            access_key_id: r.get(1)?,
            admin: r.get(2)?,
            secret: r.get(3)?,
            creation_date: r.get(4)?,
        })
    })? {
        snap.principals.push(row?);
    }
    let mut stmt = conn.prepare("SELECT name, key_id, token FROM system_keys ORDER BY name")?;
    for row in stmt.query_map([], |r| {
        Ok(SystemKeyRow {
            name: r.get(0)?,
            key_id: r.get(1)?,
            token: KeyToken(r.get(2)?),
        })
    })? {
        snap.system_keys.push(row?);
    }
    Ok(snap)
}

pub(super) fn put_policy(
    tx: &Transaction<'_>,
    key_id: &str,
    policy: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO key_policies (key_id, policy) VALUES (?1, ?2)
         ON CONFLICT(key_id) DO UPDATE SET policy = excluded.policy",
        params![key_id, policy],
    )
    .map_err(super::sqlite::conflict)?;
    Ok(())
}

pub(super) fn insert_grant(tx: &Transaction<'_>, g: &GrantRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO grants (grant_id, key_id, name, grantee, retiring, operations, constraints,
            issuing, creation_date, token) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            g.grant_id,
            g.key_id,
            g.name,
            g.grantee,
            g.retiring,
            g.operations,
            g.constraints,
            g.issuing,
            g.creation_date,
            g.token
        ],
    )
    .map_err(super::sqlite::conflict)?;
    Ok(())
}

pub(super) fn delete_grant(tx: &Transaction<'_>, grant_id: &str) -> Result<(), StoreError> {
    let n = tx.execute("DELETE FROM grants WHERE grant_id = ?1", [grant_id])?;
    if n != 1 {
        return Err(StoreError::Missing(grant_id.to_owned()));
    }
    Ok(())
}

pub(super) fn insert_principal(tx: &Transaction<'_>, p: &PrincipalRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO principals (arn, access_key_id, admin, secret, creation_date)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![p.arn, p.access_key_id, p.admin, p.secret, p.creation_date],
    )
    .map_err(super::sqlite::conflict)?;
    Ok(())
}

pub(super) fn delete_principal(tx: &Transaction<'_>, arn: &str) -> Result<(), StoreError> {
    let n = tx.execute("DELETE FROM principals WHERE arn = ?1", [arn])?;
    if n != 1 {
        return Err(StoreError::Missing(arn.to_owned()));
    }
    Ok(())
}

pub(super) fn insert_system_key(tx: &Transaction<'_>, k: &SystemKeyRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO system_keys (name, key_id, token) VALUES (?1, ?2, ?3)",
        params![k.name, k.key_id, k.token.0],
    )
    .map_err(super::sqlite::conflict)?;
    Ok(())
}

/// Deletes a destroyed key's policy and grants (before the key row).
pub(super) fn purge_key(tx: &Transaction<'_>, key_id: &str) -> Result<(), StoreError> {
    tx.execute("DELETE FROM grants WHERE key_id = ?1", [key_id])?;
    tx.execute("DELETE FROM key_policies WHERE key_id = ?1", [key_id])?;
    Ok(())
}
