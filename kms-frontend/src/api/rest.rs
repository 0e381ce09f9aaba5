//! The wallet REST API, thin over `service::wallet` and the data-key
//! operations: decode JSON, call the service, encode JSON. Requests are
//! authenticated by `server` (SigV4, as for the JSON API) before they get
//! here; authorization is the service's, on the root key.
//!
//! Routes: `POST /key`, `GET /key/{pub}` (`?source=user|backup`),
//! `POST /generateDataKey`, `POST /decryptDataKey`, and key wrapping:
//! `POST /wrapKey` `{keyId, key}` and `POST /unwrapKey` `{wrappedKey, keyId?}`
//! (AES-KWP inside the daemon, `service::wrap`). Errors are
//! `{"code": "<AWS error name>", "message": ...}` with REST statuses: 400
//! validation, 403 access denied, 404 not found, 409 duplicate or key state.
//! Binary values travel as base64.

use crate::api::AwsReply;
use crate::error::KmsError;
use crate::principal::Principal;
use crate::service::Kms;
use crate::service::crypto::{DataKeyInput, DecryptInput};
use crate::service::wallet::{StoreKeyInput, StoredKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use protocol::SecretBytes;
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// Whether `path` is one of this API's routes.
pub fn is_rest_path(path: &str) -> bool {
    matches!(
        path,
        "/key" | "/generateDataKey" | "/decryptDataKey" | "/wrapKey" | "/unwrapKey"
    ) || path.starts_with("/key/")
}

/// The operation name of a route a method does not serve.
pub const UNKNOWN_OPERATION: &str = "rest:Unknown";

/// The operation name of a REST request, as the audit log (`eventName`)
/// and the metrics (`operation` label) name it: `rest:POST /key`,
/// `rest:GET /key`, `rest:POST /generateDataKey`, ... A bounded set:
/// anything else is [`UNKNOWN_OPERATION`].
pub fn operation(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("POST", "/key") => "rest:POST /key",
        ("GET", p) if p.starts_with("/key/") => "rest:GET /key",
        ("POST", "/generateDataKey") => "rest:POST /generateDataKey",
        ("POST", "/decryptDataKey") => "rest:POST /decryptDataKey",
        ("POST", "/wrapKey") => "rest:POST /wrapKey",
        ("POST", "/unwrapKey") => "rest:POST /unwrapKey",
        _ => UNKNOWN_OPERATION,
    }
}

/// A REST error reply.
pub fn error(status: u16, code: &'static str, message: &str) -> AwsReply {
    AwsReply {
        status,
        body: json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
        error_type: Some(code),
    }
}

fn from_kms(err: &KmsError) -> AwsReply {
    let parts = err.aws();
    let status = match err {
        KmsError::AccessDenied(_) | KmsError::NotAuthorized(_) => 403,
        KmsError::NotFound(_) => 404,
        KmsError::AlreadyExists(_) => 409,
        _ => parts.status,
    };
    error(status, parts.name, &parts.message)
}

/// Handles one authenticated REST request.
pub async fn dispatch(
    kms: &Kms,
    principal: &Principal,
    default_root_key: Option<&str>,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> AwsReply {
    let result = match (method, path) {
        ("POST", "/key") => store_key(kms, principal, default_root_key, body).await,
        ("GET", p) if p.starts_with("/key/") => get_key(kms, principal, &p[5..], query).await,
        ("POST", "/generateDataKey") => {
            generate_data_key(kms, principal, default_root_key, body).await
        }
        ("POST", "/decryptDataKey") => {
            decrypt_data_key(kms, principal, default_root_key, body).await
        }
        ("POST", "/wrapKey") => wrap_key(kms, principal, body).await,
        ("POST", "/unwrapKey") => unwrap_key(kms, principal, body).await,
        _ => {
            return error(
                405,
                "MethodNotAllowedException",
                &format!(
                    "{method} is not allowed on {}",
                    path.chars().take(64).collect::<String>()
                ),
            );
        }
    };
    match result {
        Ok((status, v)) => AwsReply {
            status,
            body: v.to_string().into_bytes(),
            error_type: None,
        },
        Err(err) => {
            if err.is_server_error() {
                tracing::error!(error = %err, "wallet request failed");
            }
            from_kms(&err)
        }
    }
}

fn parse(body: &[u8]) -> Result<serde_json::Map<String, Value>, KmsError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(KmsError::Serialization(
            "the body must be a JSON object".into(),
        )),
    }
}

fn string(m: &serde_json::Map<String, Value>, name: &str) -> Result<Option<String>, KmsError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(KmsError::Validation(format!("{name} must be a string"))),
    }
}

fn required(m: &serde_json::Map<String, Value>, name: &str) -> Result<String, KmsError> {
    string(m, name)?.ok_or_else(|| KmsError::Validation(format!("{name} is required")))
}

fn root_key(
    m: &serde_json::Map<String, Value>,
    default_root_key: Option<&str>,
) -> Result<String, KmsError> {
    string(m, "rootKey")?
        .or_else(|| default_root_key.map(str::to_owned))
        .ok_or_else(|| {
            KmsError::Validation(
                "rootKey is required (no wallet_root_key is configured on this server)".into(),
            )
        })
}

fn record(k: &StoredKey) -> Value {
    json!({
        "pub": k.public_key,
        "source": k.source,
        "coin": k.coin,
        "type": k.key_type,
        "rootKey": k.root_key,
        "encryptedPrv": B64.encode(&k.encrypted_prv),
        "encryptedDataKey": B64.encode(&k.encrypted_data_key),
        "createdAt": k.created_at,
    })
}

async fn store_key(
    kms: &Kms,
    principal: &Principal,
    default_root_key: Option<&str>,
    body: &[u8],
) -> Result<(u16, Value), KmsError> {
    let mut m = parse(body)?;
    // Take prv out of the map so the only copy left is zeroized.
    let prv = match m.remove("prv") {
        Some(Value::String(s)) => Zeroizing::new(s),
        Some(_) => return Err(KmsError::Validation("prv must be a string".into())),
        None => return Err(KmsError::Validation("prv is required".into())),
    };
    let input = StoreKeyInput {
        public_key: required(&m, "pub")?,
        prv: SecretBytes::new(prv.as_bytes().to_vec()),
        source: string(&m, "source")?.unwrap_or_else(|| "user".to_owned()),
        coin: required(&m, "coin")?,
        key_type: required(&m, "type")?,
        root_key: root_key(&m, default_root_key)?,
    };
    let stored = kms.wallet_store_key(principal, input).await?;
    Ok((201, record(&stored)))
}

fn percent_decode(s: &str) -> Result<String, KmsError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| KmsError::Validation("the path is not valid UTF-8".into()))
}

async fn get_key(
    kms: &Kms,
    principal: &Principal,
    raw_pub: &str,
    query: Option<&str>,
) -> Result<(u16, Value), KmsError> {
    let public_key = percent_decode(raw_pub)?;
    let mut source = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "source" => source = Some(percent_decode(v)?),
            _ => {
                return Err(KmsError::Validation(format!(
                    "unknown query parameter {:?}",
                    k.chars().take(32).collect::<String>()
                )));
            }
        }
    }
    let (stored, prv) = kms
        .wallet_get_key(principal, &public_key, source.as_deref())
        .await?;
    let prv = Zeroizing::new(
        String::from_utf8(prv.expose().to_vec())
            .map_err(|_| KmsError::Internal("stored prv is not UTF-8".into()))?,
    );
    let mut v = record(&stored);
    v["prv"] = Value::String(prv.to_string());
    Ok((200, v))
}

async fn generate_data_key(
    kms: &Kms,
    principal: &Principal,
    default_root_key: Option<&str>,
    body: &[u8],
) -> Result<(u16, Value), KmsError> {
    let m = parse(body)?;
    let dk = kms
        .generate_data_key(
            principal,
            DataKeyInput {
                key_id: root_key(&m, default_root_key)?,
                key_spec: Some("AES_256".into()),
                number_of_bytes: None,
                context: Vec::new(),
                dry_run: false,
            },
            true,
        )
        .await?;
    let plain = dk
        .plaintext
        .ok_or_else(|| KmsError::Internal("data key without plaintext".into()))?;
    Ok((
        200,
        json!({
            "plaintext": B64.encode(plain.expose()),
            "encryptedKey": B64.encode(&dk.ciphertext_blob),
            "rootKey": dk.key_arn,
        }),
    ))
}

async fn decrypt_data_key(
    kms: &Kms,
    principal: &Principal,
    default_root_key: Option<&str>,
    body: &[u8],
) -> Result<(u16, Value), KmsError> {
    let m = parse(body)?;
    let blob = B64
        .decode(required(&m, "encryptedKey")?)
        .map_err(|_| KmsError::Validation("encryptedKey must be base64".into()))?;
    let key_id = string(&m, "rootKey")?.or_else(|| default_root_key.map(str::to_owned));
    let opened = kms
        .decrypt(
            principal,
            DecryptInput {
                ciphertext_blob: blob,
                context: Vec::new(),
                key_id,
                encryption_algorithm: None,
                dry_run: false,
            },
        )
        .await?;
    Ok((
        200,
        json!({
            "plaintext": B64.encode(opened.plaintext.expose()),
            "rootKey": opened.key_arn,
        }),
    ))
}

fn base64_field(m: &serde_json::Map<String, Value>, name: &str) -> Result<Vec<u8>, KmsError> {
    B64.decode(required(m, name)?)
        .map_err(|_| KmsError::Validation(format!("{name} must be base64")))
}

async fn wrap_key(kms: &Kms, principal: &Principal, body: &[u8]) -> Result<(u16, Value), KmsError> {
    let mut m = parse(body)?;
    // Take the key out of the map so the only copies left are zeroized.
    let encoded = match m.remove("key") {
        Some(Value::String(s)) => Zeroizing::new(s),
        Some(_) => return Err(KmsError::Validation("key must be a string".into())),
        None => return Err(KmsError::Validation("key is required".into())),
    };
    let material = SecretBytes::new(
        B64.decode(encoded.as_bytes())
            .map_err(|_| KmsError::Validation("key must be base64".into()))?,
    );
    let key_id = required(&m, "keyId")?;
    let wrapped = kms.wrap_key(principal, &key_id, material).await?;
    Ok((
        200,
        json!({
            "wrappedKey": B64.encode(&wrapped.wrapped),
            "keyId": wrapped.key_arn,
        }),
    ))
}

async fn unwrap_key(
    kms: &Kms,
    principal: &Principal,
    body: &[u8],
) -> Result<(u16, Value), KmsError> {
    let m = parse(body)?;
    let wrapped = base64_field(&m, "wrappedKey")?;
    let key_id = string(&m, "keyId")?;
    let opened = kms
        .unwrap_key(principal, wrapped, key_id.as_deref())
        .await?;
    Ok((
        200,
        json!({
            "key": B64.encode(opened.material.expose()),
            "keyId": opened.key_arn,
        }),
    ))
}
