//! The small JSON envelope of `kmsctl encrypt --format json`, for payloads
//! that fit in memory:
//!
//! ```json
//! {"Format": "kmsctl-envelope-v1", "Algorithm": "AES_256_GCM",
//!  "KeyId": "<key ARN>", "EncryptedDataKey": "<b64>", "Iv": "<b64, 12 bytes>",
//!  "Ciphertext": "<b64>", "Tag": "<b64, 16 bytes>", "EncryptionContext": {..}}
//! ```
//!
//! The payload is sealed with AES-256-GCM under the KMS data key itself,
//! with AAD = "kmsctl-envelope-v1" || the Encryption SDK serialization of
//! the context, so the context is bound twice: by KMS to the data key and
//! here to the payload. Getting the data key is left to `files`.

use super::esdk::header::serialize_context;
use anyhow::{Context, Result, anyhow, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Largest payload `--format json` accepts.
pub const MAX_PLAINTEXT: usize = 16 << 20;
/// Largest envelope document read on decrypt.
pub const MAX_DOCUMENT: usize = MAX_PLAINTEXT / 3 * 4 + (1 << 20);
const FORMAT: &str = "kmsctl-envelope-v1";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Doc {
    format: String,
    algorithm: String,
    key_id: String,
    encrypted_data_key: String,
    iv: String,
    ciphertext: String,
    tag: String,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
}

/// A parsed envelope.
#[derive(Debug)]
pub struct Envelope {
    pub key_id: String,
    pub encrypted_data_key: Vec<u8>,
    pub context: BTreeMap<String, String>,
    iv: [u8; 12],
    sealed: Vec<u8>,
}

fn aad(context: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut out = FORMAT.as_bytes().to_vec();
    out.extend_from_slice(&serialize_context(context)?);
    Ok(out)
}

fn key(data_key: &[u8; 32]) -> Result<LessSafeKey> {
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, data_key).map_err(|_| anyhow!("AES-256-GCM key"))?,
    ))
}

/// Seals `plain` into an envelope document.
pub fn seal(
    data_key: &[u8; 32],
    encrypted_data_key: &[u8],
    key_arn: &str,
    context: &BTreeMap<String, String>,
    plain: &[u8],
) -> Result<serde_json::Value> {
    if plain.len() > MAX_PLAINTEXT {
        bail!("payload larger than {MAX_PLAINTEXT} bytes");
    }
    let mut iv = [0u8; 12];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| anyhow!("no randomness"))?;
    let mut buf = plain.to_vec();
    let tag = key(data_key)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(aad(context)?),
            &mut buf,
        )
        .map_err(|_| anyhow!("sealing the payload"))?;
    let doc = Doc {
        format: FORMAT.to_owned(),
        algorithm: "AES_256_GCM".to_owned(),
        key_id: key_arn.to_owned(),
        encrypted_data_key: B64.encode(encrypted_data_key),
        iv: B64.encode(iv),
        ciphertext: B64.encode(&buf),
        tag: B64.encode(tag.as_ref()),
        encryption_context: context.clone(),
    };
    Ok(serde_json::to_value(doc)?)
}

impl Envelope {
    /// Parses an envelope document.
    pub fn parse(text: &[u8]) -> Result<Self> {
        if text.len() > MAX_DOCUMENT {
            bail!("the envelope is larger than {MAX_DOCUMENT} bytes");
        }
        let doc: Doc = serde_json::from_slice(text).context("not a kmsctl JSON envelope")?;
        if doc.format != FORMAT || doc.algorithm != "AES_256_GCM" {
            bail!("unsupported envelope {} / {}", doc.format, doc.algorithm);
        }
        let b64 = |name: &str, v: &str| {
            B64.decode(v)
                .with_context(|| format!("{name} is not base64"))
        };
        let iv: [u8; 12] = b64("Iv", &doc.iv)?
            .try_into()
            .map_err(|_| anyhow!("Iv is not 12 bytes"))?;
        let tag = b64("Tag", &doc.tag)?;
        if tag.len() != 16 {
            bail!("Tag is not 16 bytes");
        }
        let mut sealed = b64("Ciphertext", &doc.ciphertext)?;
        sealed.extend_from_slice(&tag);
        Ok(Self {
            key_id: doc.key_id,
            encrypted_data_key: b64("EncryptedDataKey", &doc.encrypted_data_key)?,
            context: doc.encryption_context,
            iv,
            sealed,
        })
    }

    /// Opens the payload with the data key.
    pub fn open(mut self, data_key: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>> {
        let aad = aad(&self.context)?;
        let plain = key(data_key)?
            .open_in_place(
                Nonce::assume_unique_for_key(self.iv),
                Aad::from(aad),
                &mut self.sealed,
            )
            .map_err(|_| {
                anyhow!("the envelope failed authentication (tampered or wrong context)")
            })?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_detects_tampering() {
        let dk = [3u8; 32];
        let ctx = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        let doc = seal(&dk, b"edk", "arn:x", &ctx, b"secret payload").expect("seal");
        let text = serde_json::to_vec(&doc).expect("json");
        let env = Envelope::parse(&text).expect("parse");
        assert_eq!(env.key_id, "arn:x");
        assert_eq!(&env.open(&dk).expect("open")[..], b"secret payload");

        let mut bad = doc.clone();
        bad["EncryptionContext"]["k"] = "other".into();
        let env = Envelope::parse(&serde_json::to_vec(&bad).expect("json")).expect("parse");
        assert!(env.open(&dk).is_err());
    }
}
