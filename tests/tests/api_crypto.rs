//! Crypto operations through the real `aws-sdk-kms`: Encrypt, Decrypt,
//! GenerateDataKey(WithoutPlaintext), ReEncrypt, GenerateRandom, with the
//! documented errors for bad sizes, contexts and ciphertexts.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use hsm_kms_tests::ops::{create_key, decrypt, encrypt};
use hsm_kms_tests::{TestEnv, alias_arn, assert_err, key_arn};

#[tokio::test]
async fn encrypt_decrypt_round_trip_without_context() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let out = c
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"hello kms"))
        .send()
        .await
        .expect("Encrypt");
    assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
    let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
    assert!(
        !blob.windows(9).any(|w| w == b"hello kms"),
        "plaintext visible in blob"
    );
    // Decrypt needs no KeyId for symmetric keys.
    let d = c
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .send()
        .await
        .expect("Decrypt");
    assert_eq!(d.plaintext().unwrap().as_ref(), b"hello kms");
    assert_eq!(d.key_id(), Some(key_arn(&id).as_str()));
    // With the KeyId given it works too.
    let d = c
        .decrypt()
        .key_id(&id)
        .ciphertext_blob(Blob::new(blob))
        .send()
        .await
        .expect("Decrypt with KeyId");
    assert_eq!(d.plaintext().unwrap().as_ref(), b"hello kms");
}

#[tokio::test]
async fn encrypt_decrypt_round_trip_with_context_and_max_size() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let ctx = [("tenant", "acme"), ("purpose", "test")];
    let pt: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let blob = encrypt(&c, &id, &pt, &ctx).await;
    // Context order does not matter.
    let reversed = [("purpose", "test"), ("tenant", "acme")];
    assert_eq!(decrypt(&c, &blob, &reversed).await, pt);
    // Two encryptions of the same plaintext differ.
    let blob2 = encrypt(&c, &id, &pt, &ctx).await;
    assert_ne!(blob, blob2);
}

#[tokio::test]
async fn encrypt_rejects_4097_byte_plaintext() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let info = assert_err!(
        c.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(vec![7u8; 4097]))
            .send()
            .await,
        "ValidationException"
    );
    assert_eq!(info.status, Some(400));
}

#[tokio::test]
async fn encrypt_by_alias_arn_and_rejects_empty_plaintext() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    c.create_alias()
        .alias_name("alias/arn-form")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let out = c
        .encrypt()
        .key_id(alias_arn("alias/arn-form"))
        .plaintext(Blob::new(b"z"))
        .send()
        .await
        .expect("Encrypt by alias ARN");
    assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
    assert_err!(
        c.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(Vec::new()))
            .send()
            .await,
        "ValidationException"
    );
}

#[tokio::test]
async fn decrypt_rejects_wrong_or_missing_context() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let blob = encrypt(&c, &id, b"secret", &[("k", "v")]).await;
    let wrong_value = c
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .encryption_context("k", "w")
        .send()
        .await;
    assert_err!(wrong_value, "InvalidCiphertextException");
    let extra_pair = c
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .encryption_context("k", "v")
        .encryption_context("x", "y")
        .send()
        .await;
    assert_err!(extra_pair, "InvalidCiphertextException");
    let missing = c.decrypt().ciphertext_blob(Blob::new(blob)).send().await;
    assert_err!(missing, "InvalidCiphertextException");
    // And a blob made without context does not decrypt with one.
    let plain_blob = encrypt(&c, &id, b"secret", &[]).await;
    let added = c
        .decrypt()
        .ciphertext_blob(Blob::new(plain_blob))
        .encryption_context("k", "v")
        .send()
        .await;
    assert_err!(added, "InvalidCiphertextException");
}

#[tokio::test]
async fn encryption_context_is_bound_unambiguously() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    // Concatenations that a naive canonical form would confuse.
    let blob = encrypt(&c, &id, b"ctx", &[("a", "bc")]).await;
    for other in [
        vec![("ab", "c")],
        vec![("a", "b"), ("c", "")],
        vec![("abc", "")],
        vec![("A", "bc")],
    ] {
        let mut req = c.decrypt().ciphertext_blob(Blob::new(blob.clone()));
        for (k, v) in &other {
            req = req.encryption_context(*k, *v);
        }
        assert_err!(req.send().await, "InvalidCiphertextException");
    }
    assert_eq!(decrypt(&c, &blob, &[("a", "bc")]).await, b"ctx");
    // Non-ASCII keys and values round-trip, in any order.
    let ctx = [("ключ", "значение"), ("clé", "valeur ✓"), ("a", "😀")];
    let blob = encrypt(&c, &id, b"unicode", &ctx).await;
    let shuffled = [ctx[2], ctx[0], ctx[1]];
    assert_eq!(decrypt(&c, &blob, &shuffled).await, b"unicode");
}

#[tokio::test]
async fn decrypt_rejects_tampered_blob() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let blob = encrypt(&c, &id, b"sixteen byte msg", &[]).await;
    let n = usize::from(blob[1]);
    assert_eq!(blob[0], 1, "blob format version");
    assert_eq!(
        &blob[2..2 + n],
        id.as_bytes(),
        "blob header names the key id"
    );
    assert_eq!(
        blob.len(),
        2 + n + 4 + 16 + 12 + 16 + 16,
        "header + ciphertext + tag"
    );
    let positions = [
        ("format byte", 0),
        ("header salt", 2 + n + 4),
        ("header nonce", 2 + n + 4 + 16),
        ("body", 2 + n + 4 + 16 + 12),
        ("tag", blob.len() - 1),
    ];
    for (what, pos) in positions {
        let mut bad = blob.clone();
        bad[pos] ^= 0x01;
        let res = c.decrypt().ciphertext_blob(Blob::new(bad)).send().await;
        match res {
            Ok(_) => panic!("tampered {what} decrypted"),
            Err(e) => assert_eq!(
                e.as_service_error()
                    .and_then(aws_sdk_kms::error::ProvideErrorMetadata::code),
                Some("InvalidCiphertextException"),
                "tampered {what}: {e:?}"
            ),
        }
    }
    for cut in [1, 16, blob.len() - 1] {
        let res = c
            .decrypt()
            .ciphertext_blob(Blob::new(blob[..blob.len() - cut].to_vec()))
            .send()
            .await;
        assert_err!(res, "InvalidCiphertextException");
    }
    // The original still decrypts.
    assert_eq!(decrypt(&c, &blob, &[]).await, b"sixteen byte msg");
}

#[tokio::test]
async fn decrypt_rejects_garbage_blobs() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let real = encrypt(&c, &id, b"x", &[]).await;
    let random: Vec<u8> = (0..80).map(|_| rand::random::<u8>() | 0x80).collect();
    // A header that names a key id of 200 bytes, and one cut inside the header.
    let mut long_id = vec![1u8, 200];
    long_id.extend(std::iter::repeat_n(b'a', 230));
    for bad in [random, long_id, real[..10].to_vec(), vec![1]] {
        assert_err!(
            c.decrypt().ciphertext_blob(Blob::new(bad)).send().await,
            "InvalidCiphertextException"
        );
    }
}

#[tokio::test]
async fn decrypt_with_other_key_id_is_incorrect_key() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    let blob2 = encrypt(&c, &k2, b"under k2", &[]).await;
    let res = c
        .decrypt()
        .key_id(&k1)
        .ciphertext_blob(Blob::new(blob2))
        .send()
        .await;
    assert_err!(res, "IncorrectKeyException");
}

#[tokio::test]
async fn decrypt_with_alias_key_id() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    for (alias, key) in [("alias/one", &k1), ("alias/two", &k2)] {
        c.create_alias()
            .alias_name(alias)
            .target_key_id(key)
            .send()
            .await
            .unwrap();
    }
    let blob = encrypt(&c, &k1, b"aliased", &[]).await;
    let out = c
        .decrypt()
        .key_id("alias/one")
        .ciphertext_blob(Blob::new(blob.clone()))
        .send()
        .await
        .expect("Decrypt with the alias of the right key");
    assert_eq!(out.plaintext().unwrap().as_ref(), b"aliased");
    assert_err!(
        c.decrypt()
            .key_id("alias/two")
            .ciphertext_blob(Blob::new(blob))
            .send()
            .await,
        "IncorrectKeyException"
    );
}

#[tokio::test]
async fn generate_data_key_specs_and_lengths() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let cases = [
        (Some(DataKeySpec::Aes256), None, 32),
        (Some(DataKeySpec::Aes128), None, 16),
        (None, Some(64), 64),
        (None, Some(1), 1),
        (None, Some(1024), 1024),
    ];
    for (spec, n, len) in cases {
        let out = c
            .generate_data_key()
            .key_id(&id)
            .set_key_spec(spec.clone())
            .set_number_of_bytes(n)
            .encryption_context("app", "gdk")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GenerateDataKey {spec:?} {n:?}: {e:?}"));
        assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
        let pt = out.plaintext().unwrap().as_ref().to_vec();
        assert_eq!(pt.len(), len, "{spec:?} {n:?}");
        let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
        assert_eq!(decrypt(&c, &blob, &[("app", "gdk")]).await, pt);
    }
    let both = c
        .generate_data_key()
        .key_id(&id)
        .key_spec(DataKeySpec::Aes256)
        .number_of_bytes(32)
        .send()
        .await;
    assert_err!(both, "ValidationException");
    let neither = c.generate_data_key().key_id(&id).send().await;
    assert_err!(neither, "ValidationException");
    let too_many = c
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(1025)
        .send()
        .await;
    assert_err!(too_many, "ValidationException");
}

#[tokio::test]
async fn generate_data_key_number_of_bytes_zero_is_invalid() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    assert_err!(
        c.generate_data_key()
            .key_id(&id)
            .number_of_bytes(0)
            .send()
            .await,
        "ValidationException"
    );
}

#[tokio::test]
async fn generate_data_key_without_plaintext_decrypts() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let out = c
        .generate_data_key_without_plaintext()
        .key_id(&id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("GenerateDataKeyWithoutPlaintext");
    assert_eq!(out.key_id(), Some(key_arn(&id).as_str()));
    let blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
    let pt = decrypt(&c, &blob, &[]).await;
    assert_eq!(pt.len(), 32);
    assert_ne!(pt, vec![0u8; 32]);
}

#[tokio::test]
async fn re_encrypt_to_another_key_with_contexts() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    let blob = encrypt(&c, &k1, b"move me", &[("src", "1")]).await;
    let out = c
        .re_encrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .source_encryption_context("src", "1")
        .destination_key_id(&k2)
        .destination_encryption_context("dst", "2")
        .send()
        .await
        .expect("ReEncrypt");
    assert_eq!(out.source_key_id(), Some(key_arn(&k1).as_str()));
    assert_eq!(out.key_id(), Some(key_arn(&k2).as_str()));
    let new_blob = out.ciphertext_blob().unwrap().as_ref().to_vec();
    let d = c
        .decrypt()
        .ciphertext_blob(Blob::new(new_blob.clone()))
        .encryption_context("dst", "2")
        .send()
        .await
        .expect("Decrypt re-encrypted");
    assert_eq!(d.plaintext().unwrap().as_ref(), b"move me");
    assert_eq!(d.key_id(), Some(key_arn(&k2).as_str()));
    // The new blob is bound to the destination context.
    let res = c
        .decrypt()
        .ciphertext_blob(Blob::new(new_blob))
        .encryption_context("src", "1")
        .send()
        .await;
    assert_err!(res, "InvalidCiphertextException");
    // The wrong source context is refused.
    let res = c
        .re_encrypt()
        .ciphertext_blob(Blob::new(blob))
        .source_encryption_context("src", "2")
        .destination_key_id(&k2)
        .send()
        .await;
    assert_err!(res, "InvalidCiphertextException");
}

#[tokio::test]
async fn re_encrypt_to_disabled_key_is_refused() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    let blob = encrypt(&c, &k1, b"x", &[]).await;
    c.disable_key().key_id(&k2).send().await.unwrap();
    assert_err!(
        c.re_encrypt()
            .ciphertext_blob(Blob::new(blob))
            .destination_key_id(&k2)
            .send()
            .await,
        "DisabledException"
    );
}

#[tokio::test]
async fn generate_random_lengths_and_bounds() {
    let env = TestEnv::start();
    let c = env.client("alice");
    for n in [1, 32, 1024] {
        let out = c
            .generate_random()
            .number_of_bytes(n)
            .send()
            .await
            .expect("GenerateRandom");
        assert_eq!(out.plaintext().unwrap().as_ref().len(), n as usize);
    }
    let a = c
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let b = c
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    assert_ne!(a.plaintext(), b.plaintext());
    for n in [0, 1025] {
        assert_err!(
            c.generate_random().number_of_bytes(n).send().await,
            "ValidationException"
        );
    }
}

#[tokio::test]
async fn decrypt_rejects_header_naming_another_key_or_version() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    let blob = encrypt(&c, &k1, b"whose?", &[]).await;
    let n = usize::from(blob[1]);
    assert_eq!(k1.len(), k2.len());
    // The same sealed body under a header that names k2.
    let mut swapped = blob.clone();
    swapped[2..2 + n].copy_from_slice(k2.as_bytes());
    assert_err!(
        c.decrypt().ciphertext_blob(Blob::new(swapped)).send().await,
        "InvalidCiphertextException"
    );
    // A key version that does not exist.
    for byte in [2 + n, 2 + n + 3] {
        let mut bad = blob.clone();
        bad[byte] ^= 0x40;
        assert_err!(
            c.decrypt().ciphertext_blob(Blob::new(bad)).send().await,
            "InvalidCiphertextException"
        );
    }
}

#[tokio::test]
async fn oversized_fields_are_validation_errors() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    // CiphertextBlob: at most 6144 bytes.
    assert_err!(
        c.decrypt()
            .ciphertext_blob(Blob::new(vec![1u8; 6145]))
            .send()
            .await,
        "ValidationException"
    );
    // Description: at most 8192 characters.
    assert_err!(
        c.create_key().description("d".repeat(8193)).send().await,
        "ValidationException"
    );
    // AliasName: at most 256 characters.
    let long_alias = format!("alias/{}", "a".repeat(251));
    assert_err!(
        c.create_alias()
            .alias_name(long_alias)
            .target_key_id(&id)
            .send()
            .await,
        "ValidationException"
    );
    // Within the limits all is well.
    c.create_key()
        .description("d".repeat(8192))
        .send()
        .await
        .expect("8192-character description");
}
