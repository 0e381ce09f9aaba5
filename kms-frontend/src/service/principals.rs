//! Principals made at run time by an administrator: create (a new access
//! key id and secret access key), list, delete, and loading them at start.
//! The secret access key is stored only as a ciphertext blob of an internal
//! system CMK (`system_keys` row "principal-secrets", created on first use;
//! its token is in the store like any CMK's, so only hsm-daemon can open
//! it), bound by encryption context to the principal's ARN. The plaintext
//! secret exists only in the SigV4 verifier's memory (zeroized on drop) and
//! once in the CreatePrincipal reply. Principals from the config file are
//! not stored here and cannot be deleted at run time.

use super::Kms;
use crate::error::KmsError;
use crate::principal::Principal;
use crate::store::{PrincipalRow, SystemKeyRow};
use protocol::{KeyRef, KeySpec, Request, Response, SecretBytes};
use rand::Rng;
use secrecy::SecretString;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Name of the system key that encrypts principals' secrets.
pub const PRINCIPAL_SECRETS_KEY: &str = "principal-secrets";
const PURPOSE: (&str, &str) = ("hsm-kms:purpose", "principal-secret");
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Runtime principals and the system key, as the service knows them.
#[derive(Debug, Default)]
pub(crate) struct PrincipalState {
    pub rows: BTreeMap<String, PrincipalRow>,
    pub system_key: Option<SystemKeyRow>,
}

/// A principal and its secret, for the SigV4 verifier.
#[derive(Debug)]
pub struct PrincipalSecret {
    pub principal: Principal,
    pub secret: SecretString,
}

fn context(arn: &str) -> Vec<(String, String)> {
    vec![
        (PURPOSE.0.to_owned(), PURPOSE.1.to_owned()),
        ("hsm-kms:principal".to_owned(), arn.to_owned()),
    ]
}

fn random_from(alphabet: &[u8], len: usize) -> Zeroizing<String> {
    let mut rng = rand::rngs::OsRng;
    let mut s = Zeroizing::new(String::with_capacity(len));
    for _ in 0..len {
        s.push(char::from(alphabet[rng.gen_range(0..alphabet.len())]));
    }
    s
}

/// Checks a principal name: IAM's user-name characters, 1..=64.
pub(crate) fn check_name(name: &str) -> Result<(), KmsError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KmsError::Validation(format!(
            "Principal name '{}' is not valid: use 1 to 64 of A-Z, a-z, 0-9 and +=,.@_-",
            name.chars().take(80).collect::<String>()
        )))
    }
}

impl Kms {
    /// Refuses a caller that is not an administrator; the decision is
    /// audited with the request.
    ///
    /// # Errors
    /// AccessDenied for a caller that is not an administrator.
    pub fn require_admin(&self, caller: &Principal, action: &str) -> Result<(), KmsError> {
        self.core.require_admin(caller, action, "manage principals")
    }

    /// The ARN a principal named `name` gets in this account.
    pub fn user_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:user/{name}", self.core.account_id)
    }

    /// Whether `arn` was made at run time (as opposed to the config file).
    pub async fn is_runtime_principal(&self, arn: &str) -> bool {
        self.core.principals.lock().await.rows.contains_key(arn)
    }

    /// Decrypts the stored principals' secrets through hsm-daemon.
    ///
    /// # Errors
    /// HSM failures (the caller retries while the daemon is down);
    /// Internal when a stored secret does not open.
    pub async fn load_principals(&self) -> Result<Vec<PrincipalSecret>, KmsError> {
        let state = self.core.principals.lock().await;
        let mut out = Vec::with_capacity(state.rows.len());
        if state.rows.is_empty() {
            return Ok(out);
        }
        let Some(key) = state.system_key.clone() else {
            return Err(KmsError::Internal(
                "stored principals but no principal-secrets system key".into(),
            ));
        };
        for row in state.rows.values() {
            let response = self
                .hsm_call(Request::Decrypt {
                    key: KeyRef {
                        key_id: key.key_id.clone(),
                        version: 1,
                        token: key.token.clone(),
                    },
                    blob: row.secret.clone(),
                    context: context(&row.arn),
                })
                .await
                .map_err(KmsError::from_hsm)?;
            let Response::Plaintext { plaintext } = response else {
                return Err(KmsError::Internal(
                    "Decrypt: unexpected HSM response".into(),
                ));
            };
            let text = std::str::from_utf8(plaintext.expose()).map_err(|_| {
                KmsError::Internal(format!("stored secret of {} is not UTF-8", row.arn))
            })?;
            out.push(PrincipalSecret {
                principal: Principal {
                    arn: row.arn.clone(),
                    account_id: self.core.account_id.clone(),
                    access_key_id: row.access_key_id.clone(),
                    admin: row.admin,
                },
                secret: SecretString::from(text.to_owned()),
            });
        }
        Ok(out)
    }

    /// The system key for principals' secrets, made on first use.
    async fn system_key(&self, state: &mut PrincipalState) -> Result<SystemKeyRow, KmsError> {
        if let Some(k) = &state.system_key {
            return Ok(k.clone());
        }
        let key_id = uuid::Uuid::new_v4().to_string();
        // Held until the token is committed: a master-key rotation waits
        // for every token made before it began (service/master_key).
        let _gate = self.core.token_gate.read().await;
        let response = self
            .hsm_call(Request::CreateKey {
                key_id: key_id.clone(),
                version: 1,
                spec: KeySpec::SymmetricDefault,
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::KeyCreated { token } = response else {
            return Err(KmsError::Internal(
                "CreateKey: unexpected HSM response".into(),
            ));
        };
        let row = SystemKeyRow {
            name: PRINCIPAL_SECRETS_KEY.to_owned(),
            key_id,
            token,
        };
        let stored = row.clone();
        self.write(move |core| core.commit(|s| s.insert_system_key(&stored)))
            .await?;
        state.system_key = Some(row.clone());
        Ok(row)
    }

    /// Creates a principal `name` (a user ARN in this account) with new
    /// credentials. `taken` says whether an ARN is already known (config or
    /// runtime). Administrators only.
    ///
    /// # Errors
    /// AccessDenied, Validation, AlreadyExists, HSM and store failures.
    pub async fn create_principal(
        &self,
        caller: &Principal,
        name: &str,
        admin: bool,
        taken: impl Fn(&str) -> bool,
    ) -> Result<PrincipalSecret, KmsError> {
        self.core
            .require_admin(caller, "CreatePrincipal", "manage principals")?;
        check_name(name)?;
        let arn = self.user_arn(name);
        let mut state = self.core.principals.lock().await;
        if taken(&arn) || state.rows.contains_key(&arn) {
            return Err(KmsError::AlreadyExists(format!(
                "A principal named {name} ({arn}) already exists"
            )));
        }
        let key = self.system_key(&mut state).await?;
        let access_key_id = format!("AKIA{}", *random_from(ID_ALPHABET, 16));
        let secret = random_from(SECRET_ALPHABET, 40);
        let response = self
            .hsm_call(Request::Encrypt {
                key: KeyRef {
                    key_id: key.key_id.clone(),
                    version: 1,
                    token: key.token.clone(),
                },
                plaintext: SecretBytes::new(secret.as_bytes().to_vec()),
                context: context(&arn),
            })
            .await
            .map_err(KmsError::from_hsm)?;
        let Response::Ciphertext { blob } = response else {
            return Err(KmsError::Internal(
                "Encrypt: unexpected HSM response".into(),
            ));
        };
        let row = PrincipalRow {
            arn: arn.clone(),
            access_key_id: access_key_id.clone(),
            admin,
            secret: blob,
            creation_date: self.core.now(),
        };
        let stored = row.clone();
        self.write(move |core| core.commit(|s| s.insert_principal(&stored)))
            .await?;
        state.rows.insert(arn.clone(), row);
        tracing::info!(principal = %arn, admin, by = %caller.arn, "principal created");
        Ok(PrincipalSecret {
            principal: Principal {
                arn,
                account_id: self.core.account_id.clone(),
                access_key_id,
                admin,
            },
            secret: SecretString::from(secret.as_str().to_owned()),
        })
    }

    /// Deletes a runtime principal; returns its ARN. The caller removes it
    /// from the verifier. Administrators only; config principals are
    /// refused.
    ///
    /// # Errors
    /// AccessDenied, Validation, NotFound, UnsupportedOperation, store failures.
    pub async fn delete_principal(
        &self,
        caller: &Principal,
        name: &str,
        in_config: impl Fn(&str) -> bool,
    ) -> Result<String, KmsError> {
        self.core
            .require_admin(caller, "DeletePrincipal", "manage principals")?;
        check_name(name)?;
        let arn = self.user_arn(name);
        let mut state = self.core.principals.lock().await;
        if !state.rows.contains_key(&arn) {
            if in_config(&arn) {
                return Err(KmsError::UnsupportedOperation(format!(
                    "Principal {arn} is defined in the config file; remove it there"
                )));
            }
            return Err(KmsError::NotFound(format!(
                "Principal {arn} does not exist"
            )));
        }
        let target = arn.clone();
        self.write(move |core| core.commit(|s| s.delete_principal(&target)))
            .await?;
        state.rows.remove(&arn);
        tracing::info!(principal = %arn, by = %caller.arn, "principal deleted");
        Ok(arn)
    }
}
