//! Looking for secrets where they must not be: a mixed workload that makes
//! every kind of secret pass through the pair ([`mixed_workload`]), the key
//! material behind it recovered the way only the daemon could
//! ([`key_material`]: master key from the sealed file, every CMK from its
//! token), and a search for each secret in the encodings a leak would take
//! ([`encodings`], [`find`]): raw bytes, hex, base64, and the two shapes
//! Rust's `Debug` gives a byte buffer.

use aws_sdk_kms::Client;
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeySpec, KeySpec, KeyUsageType, MacAlgorithmSpec, SigningAlgorithmSpec,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::pkcs8::DecodePrivateKey;

use crate::{TestEnv, memscan};

/// A secret and what it is, for failure messages.
#[derive(Clone)]
pub struct Secret {
    pub what: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes stay out of failure output: a test that finds a leak
        // names it, it does not repeat it.
        write!(f, "Secret({}, {} bytes)", self.what, self.bytes.len())
    }
}

impl Secret {
    pub fn new(what: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            what: what.into(),
            bytes: bytes.into(),
        }
    }
}

/// What the workload sent and got back.
#[derive(Debug, Default)]
pub struct Workload {
    /// Symmetric, HMAC and signing keys created.
    pub key_ids: Vec<String>,
    /// Plaintexts given to Encrypt (random bytes).
    pub plaintexts: Vec<Secret>,
    /// Plaintext data keys returned by GenerateDataKey, and the plaintexts
    /// Decrypt returned for their blobs.
    pub data_keys: Vec<Secret>,
    /// GenerateRandom output.
    pub random: Vec<Secret>,
    /// `x-amzn-RequestId` of every call.
    pub request_ids: Vec<String>,
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// CreateKey (symmetric x2, HMAC_256, ECC_NIST_P256), Encrypt, Decrypt,
/// GenerateDataKey with and without plaintext, ReEncrypt, GenerateRandom,
/// GenerateMac and Sign, all as `c`. Panics on any failure.
pub async fn mixed_workload(c: &Client) -> Workload {
    let mut w = Workload::default();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let out = c.create_key().send().await.expect("CreateKey");
        w.request_ids
            .push(out.request_id().expect("request id").into());
        ids.push(out.key_metadata().expect("metadata").key_id().to_owned());
    }
    let create =
        |spec: KeySpec, usage: KeyUsageType| c.create_key().key_spec(spec).key_usage(usage);
    let out = create(KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .expect("CreateKey HMAC_256");
    w.request_ids
        .push(out.request_id().expect("request id").into());
    let hmac_key = out.key_metadata().expect("metadata").key_id().to_owned();
    let out = create(KeySpec::EccNistP256, KeyUsageType::SignVerify)
        .send()
        .await
        .expect("CreateKey ECC_NIST_P256");
    w.request_ids
        .push(out.request_id().expect("request id").into());
    let sign_key = out.key_metadata().expect("metadata").key_id().to_owned();

    for (i, id) in ids.iter().enumerate() {
        let other = &ids[(i + 1) % ids.len()];
        for j in 0..3 {
            let pt = random_bytes(32);
            let ctx = j.to_string();
            let enc = c
                .encrypt()
                .key_id(id)
                .plaintext(Blob::new(pt.clone()))
                .encryption_context("n", &ctx)
                .send()
                .await
                .expect("Encrypt");
            w.request_ids
                .push(enc.request_id().expect("request id").into());
            let blob = enc.ciphertext_blob().expect("blob").clone();
            let dec = c
                .decrypt()
                .ciphertext_blob(blob.clone())
                .encryption_context("n", &ctx)
                .send()
                .await
                .expect("Decrypt");
            w.request_ids
                .push(dec.request_id().expect("request id").into());
            assert_eq!(dec.plaintext().expect("plaintext").as_ref(), pt.as_slice());
            let re = c
                .re_encrypt()
                .ciphertext_blob(blob)
                .source_encryption_context("n", &ctx)
                .destination_key_id(other)
                .destination_encryption_context("m", &ctx)
                .send()
                .await
                .expect("ReEncrypt");
            w.request_ids
                .push(re.request_id().expect("request id").into());
            w.plaintexts
                .push(Secret::new(format!("Encrypt plaintext {i}/{j}"), pt));

            let dk = c
                .generate_data_key()
                .key_id(id)
                .key_spec(DataKeySpec::Aes256)
                .send()
                .await
                .expect("GenerateDataKey");
            w.request_ids
                .push(dk.request_id().expect("request id").into());
            let key = dk.plaintext().expect("data key").as_ref().to_vec();
            let dec = c
                .decrypt()
                .ciphertext_blob(dk.ciphertext_blob().expect("blob").clone())
                .send()
                .await
                .expect("Decrypt data key");
            w.request_ids
                .push(dec.request_id().expect("request id").into());
            assert_eq!(dec.plaintext().expect("plaintext").as_ref(), key.as_slice());
            w.data_keys
                .push(Secret::new(format!("data key {i}/{j}"), key));

            let nopt = c
                .generate_data_key_without_plaintext()
                .key_id(id)
                .number_of_bytes(32)
                .send()
                .await
                .expect("GenerateDataKeyWithoutPlaintext");
            w.request_ids
                .push(nopt.request_id().expect("request id").into());
            // Its plaintext exists only in the daemon until someone decrypts
            // the blob: do that, and remember it as a data key too.
            let dec = c
                .decrypt()
                .ciphertext_blob(nopt.ciphertext_blob().expect("blob").clone())
                .send()
                .await
                .expect("Decrypt data key without plaintext");
            w.request_ids
                .push(dec.request_id().expect("request id").into());
            w.data_keys.push(Secret::new(
                format!("data key (without plaintext) {i}/{j}"),
                dec.plaintext().expect("plaintext").as_ref().to_vec(),
            ));
        }
    }
    for n in 0..2 {
        let r = c
            .generate_random()
            .number_of_bytes(32)
            .send()
            .await
            .expect("GenerateRandom");
        w.request_ids
            .push(r.request_id().expect("request id").into());
        w.random.push(Secret::new(
            format!("GenerateRandom output {n}"),
            r.plaintext().expect("random").as_ref().to_vec(),
        ));
    }
    let mac = c
        .generate_mac()
        .key_id(&hmac_key)
        .message(Blob::new(b"a message to MAC".as_slice()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .expect("GenerateMac");
    w.request_ids
        .push(mac.request_id().expect("request id").into());
    let sig = c
        .sign()
        .key_id(&sign_key)
        .message(Blob::new(b"a message to sign".as_slice()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .expect("Sign");
    w.request_ids
        .push(sig.request_id().expect("request id").into());
    ids.push(hmac_key);
    ids.push(sign_key);
    w.key_ids = ids;
    w
}

/// Token spec numbers of the ECC key specs (ARCHITECTURE.md, "Key token").
const ECC_NIST_P256: u8 = 5;

/// The master key and every key version's material (CMKs, HMAC keys,
/// private keys; system keys too), recovered from the frontend's database
/// with the master key. For a P-256 private key both the PKCS#8 document
/// and the bare 32-byte scalar are returned, so a leak of either shows.
/// Panics unless every id in `key_ids` has a token.
pub fn key_material(env: &TestEnv, key_ids: &[String]) -> Vec<Secret> {
    let master = env.read_master_key();
    let mut out = vec![Secret::new("master key", master.to_vec())];
    let mut rows = memscan::read_tokens(&env.db_path());
    rows.extend(system_key_tokens(&env.db_path()));
    for (key_id, version, token) in rows {
        let p = memscan::unwrap_token(&master, &token);
        assert_eq!(p.key_id, key_id, "token names its key");
        assert_eq!(p.version, version, "token names its version");
        let what = format!("key material of {key_id} v{version} (spec {})", p.spec);
        if p.spec == ECC_NIST_P256 {
            let sk = p256::SecretKey::from_pkcs8_der(&p.material).expect("PKCS#8 P-256 key");
            out.push(Secret::new(
                format!("{what}, scalar"),
                sk.to_bytes().to_vec(),
            ));
        }
        out.push(Secret::new(what, p.material));
    }
    for id in key_ids {
        assert!(
            out.iter().any(|s| s.what.contains(id.as_str())),
            "no token for key {id}"
        );
    }
    out
}

/// `(key_id, 1, token)` of each internal system key (`system_keys`), if the
/// table has any.
fn system_key_tokens(db: &std::path::Path) -> Vec<(String, u32, Vec<u8>)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    let Ok(mut stmt) = conn.prepare("SELECT key_id, token FROM system_keys") else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, 1, r.get(1)?)))
        .expect("query system_keys")
        .collect::<Result<_, _>>()
        .expect("read system_keys rows")
}

/// The forms a leaked secret would take: raw, hex (both cases), base64
/// (standard and URL-safe unpadded), `Debug` of a `Vec<u8>` (`12, 34, ...`)
/// and of `bytes::Bytes` (`\x12"4...`). Each with its name.
pub fn encodings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let hex_lower = hex::encode(secret);
    let debug_list = secret
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let debug_bytes = format!("{:?}", bytes::Bytes::copy_from_slice(secret));
    let debug_bytes = debug_bytes
        .strip_prefix("b\"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(&debug_bytes)
        .to_owned();
    vec![
        ("raw", secret.to_vec()),
        ("hex", hex_lower.clone().into_bytes()),
        ("HEX", hex_lower.to_uppercase().into_bytes()),
        // A base64 string's last group depends on the padding: search
        // without it.
        (
            "base64",
            STANDARD
                .encode(secret)
                .trim_end_matches('=')
                .as_bytes()
                .to_vec(),
        ),
        ("base64url", URL_SAFE_NO_PAD.encode(secret).into_bytes()),
        ("Debug of Vec<u8>", debug_list.into_bytes()),
        ("Debug of Bytes", debug_bytes.into_bytes()),
    ]
}

/// Each `"<what> (<encoding>)"` of `secrets` found in `haystack`.
pub fn find(haystack: &[u8], secrets: &[Secret]) -> Vec<String> {
    let mut found = Vec::new();
    for s in secrets {
        for (form, needle) in encodings(&s.bytes) {
            if memchr::memmem::find(haystack, &needle).is_some() {
                found.push(format!("{} ({form})", s.what));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn every_encoding_of_a_secret_is_found() {
        let secret = Secret::new("s", random_bytes(32));
        for (form, needle) in encodings(&secret.bytes) {
            let mut hay = b"log line: ".to_vec();
            hay.extend_from_slice(&needle);
            hay.extend_from_slice(b" end");
            // Forms may coincide (base64 without `+` or `/` is also
            // base64url), so more than one may be reported.
            let found = find(&hay, std::slice::from_ref(&secret));
            assert!(found.contains(&format!("s ({form})")), "{form}: {found:?}");
        }
        assert!(find(b"nothing here", std::slice::from_ref(&secret)).is_empty());
        let vec_debug = format!("{:?}", secret.bytes);
        assert!(!find(vec_debug.as_bytes(), &[secret]).is_empty());
    }
}
