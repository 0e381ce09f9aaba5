//! Short-hands for the SDK calls most tests make, panicking with context on
//! failure: create a key, encrypt, decrypt, read a key's state.

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyState;

/// CreateKey; returns the key id.
pub async fn create_key(c: &Client) -> String {
    let out = c.create_key().send().await.expect("CreateKey");
    out.key_metadata().expect("KeyMetadata").key_id().to_owned()
}

/// Encrypt `pt` under `key` with `ctx`; returns the ciphertext blob.
pub async fn encrypt(c: &Client, key: &str, pt: &[u8], ctx: &[(&str, &str)]) -> Vec<u8> {
    let mut req = c.encrypt().key_id(key).plaintext(Blob::new(pt));
    for (k, v) in ctx {
        req = req.encryption_context(*k, *v);
    }
    req.send()
        .await
        .expect("Encrypt")
        .ciphertext_blob()
        .expect("CiphertextBlob")
        .as_ref()
        .to_vec()
}

/// Decrypt `blob` with `ctx` (no KeyId); returns the plaintext.
pub async fn decrypt(c: &Client, blob: &[u8], ctx: &[(&str, &str)]) -> Vec<u8> {
    let mut req = c.decrypt().ciphertext_blob(Blob::new(blob));
    for (k, v) in ctx {
        req = req.encryption_context(*k, *v);
    }
    req.send()
        .await
        .expect("Decrypt")
        .plaintext()
        .expect("Plaintext")
        .as_ref()
        .to_vec()
}

/// The key's `KeyState` from DescribeKey.
pub async fn key_state(c: &Client, key: &str) -> KeyState {
    c.describe_key()
        .key_id(key)
        .send()
        .await
        .expect("DescribeKey")
        .key_metadata()
        .expect("KeyMetadata")
        .key_state()
        .expect("KeyState")
        .clone()
}
