//! Asymmetric and HMAC keys through the AWS SDK, checked against
//! implementations outside the KMS: signatures verified by RustCrypto from
//! the DER public key GetPublicKey returns, RSA-OAEP ciphertext made outside
//! from that public key decrypted inside, data key pairs whose sealed
//! private key opens under the symmetric key. Plus the documented errors for
//! wrong key usage and wrong algorithms.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, KeySpec, KeyUsageType, MacAlgorithmSpec, MessageType,
    SigningAlgorithmSpec,
};
use hsm_kms_tests::{TestEnv, err_info, ops};
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use sha2::Digest;

async fn create(c: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let out = c
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap();
    out.key_metadata().unwrap().key_id().to_owned()
}

async fn sign(c: &Client, key: &str, msg: &[u8]) -> Vec<u8> {
    c.sign()
        .key_id(key)
        .message(Blob::new(msg))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap()
        .signature()
        .unwrap()
        .as_ref()
        .to_vec()
}

async fn public_key(c: &Client, key: &str) -> Vec<u8> {
    c.get_public_key()
        .key_id(key)
        .send()
        .await
        .unwrap()
        .public_key()
        .unwrap()
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_signature_verifies_independently_only_for_its_key_and_message() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let key = create(&c, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let other = create(&c, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let spki = public_key(&c, &key).await;
    let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
    let sig = sign(&c, &key, b"pay 10 to bob").await;
    let sig = p256::ecdsa::Signature::from_der(&sig).unwrap();
    assert!(vk.verify(b"pay 10 to bob", &sig).is_ok());
    assert!(vk.verify(b"pay 99 to bob", &sig).is_err());
    let foreign = sign(&c, &other, b"pay 10 to bob").await;
    let foreign = p256::ecdsa::Signature::from_der(&foreign).unwrap();
    assert!(vk.verify(b"pay 10 to bob", &foreign).is_err());

    // DIGEST: the caller hashes; the same verifier accepts it.
    let digest = sha2::Sha256::digest(b"hashed elsewhere");
    let sig = c
        .sign()
        .key_id(&key)
        .message(Blob::new(digest.as_slice()))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    let sig = p256::ecdsa::Signature::from_der(sig.signature().unwrap().as_ref()).unwrap();
    assert!(vk.verify(b"hashed elsewhere", &sig).is_ok());

    // KMS Verify: true for the right message, KMSInvalidSignature otherwise.
    let good = sign(&c, &key, b"m").await;
    let ok = c
        .verify()
        .key_id(&key)
        .message(Blob::new(b"m".as_slice()))
        .signature(Blob::new(good.clone()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    assert!(ok.signature_valid());
    let e = c
        .verify()
        .key_id(&key)
        .message(Blob::new(b"n".as_slice()))
        .signature(Blob::new(good))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_info(&e).code.as_deref(),
        Some("KMSInvalidSignatureException")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_pss_signature_verifies_independently() {
    use rsa::signature::Verifier as _;
    let env = TestEnv::start();
    let c = env.client("alice");
    let key = create(&c, KeySpec::Rsa2048, KeyUsageType::SignVerify).await;
    let spki = public_key(&c, &key).await;
    let pk = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
    let sig = c
        .sign()
        .key_id(&key)
        .message(Blob::new(b"release v1".as_slice()))
        .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
        .send()
        .await
        .unwrap();
    let sig = rsa::pss::Signature::try_from(sig.signature().unwrap().as_ref()).unwrap();
    let vk = rsa::pss::VerifyingKey::<sha2::Sha256>::new(pk);
    assert!(vk.verify(b"release v1", &sig).is_ok());
    assert!(vk.verify(b"release v2", &sig).is_err());
    let m = c.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(m.key_metadata().unwrap().signing_algorithms().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_oaep_ciphertext_made_outside_decrypts_inside() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let key = create(&c, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let pk = rsa::RsaPublicKey::from_public_key_der(&public_key(&c, &key).await).unwrap();
    let ct = pk
        .encrypt(
            &mut rand::thread_rng(),
            rsa::Oaep::new::<sha2::Sha256>(),
            b"sealed outside",
        )
        .unwrap();
    let out = c
        .decrypt()
        .key_id(&key)
        .ciphertext_blob(Blob::new(ct))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"sealed outside");
    // Plaintext limit for RSA_2048 with SHA-256: 190 bytes.
    let enc = |n: usize| {
        c.encrypt()
            .key_id(&key)
            .plaintext(Blob::new(vec![7u8; n]))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
    };
    assert!(enc(190).await.is_ok());
    let e = enc(191).await.unwrap_err();
    assert_eq!(err_info(&e).code.as_deref(), Some("ValidationException"));
    // SYMMETRIC_DEFAULT does not go with an RSA key.
    let e = c
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".as_slice()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_info(&e).code.as_deref(),
        Some("InvalidKeyUsageException")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_usage_and_algorithm_get_documented_errors() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let aes = ops::create_key(&c).await;
    let ec = create(&c, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let e = c
        .sign()
        .key_id(&aes)
        .message(Blob::new(b"m".as_slice()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_info(&e).code.as_deref(),
        Some("InvalidKeyUsageException")
    );
    let e = c
        .generate_mac()
        .key_id(&aes)
        .message(Blob::new(b"m".as_slice()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_info(&e).code.as_deref(),
        Some("InvalidKeyUsageException")
    );
    let e = c
        .sign()
        .key_id(&ec)
        .message(Blob::new(b"m".as_slice()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha384)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_info(&e).code.as_deref(),
        Some("InvalidKeyUsageException")
    );
    let e = c
        .encrypt()
        .key_id(&ec)
        .plaintext(Blob::new(b"m".as_slice()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_info(&e).code.as_deref(),
        Some("InvalidKeyUsageException")
    );
    let e = c
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_info(&e).code.as_deref(), Some("ValidationException"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_verifies_and_a_wrong_mac_is_invalid_mac() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let key = create(&c, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let mac = c
        .generate_mac()
        .key_id(&key)
        .message(Blob::new(b"token".as_slice()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    let mac = mac.mac().unwrap().as_ref().to_vec();
    assert_eq!(mac.len(), 32);
    let verify = |msg: &'static [u8], mac: Vec<u8>| {
        c.verify_mac()
            .key_id(&key)
            .message(Blob::new(msg))
            .mac(Blob::new(mac))
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .send()
    };
    assert!(verify(b"token", mac.clone()).await.unwrap().mac_valid());
    let e = verify(b"tokem", mac).await.unwrap_err();
    assert_eq!(err_info(&e).code.as_deref(), Some("KMSInvalidMacException"));
    let m = c.describe_key().key_id(&key).send().await.unwrap();
    let m = m.key_metadata().unwrap();
    assert_eq!(m.mac_algorithms(), &[MacAlgorithmSpec::HmacSha256]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_key_pair_private_key_is_sealed_under_the_symmetric_key() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let key = ops::create_key(&c).await;
    let pair = c
        .generate_data_key_pair()
        .key_id(&key)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap();
    let private = pair.private_key_plaintext().unwrap().as_ref().to_vec();
    let sealed = pair
        .private_key_ciphertext_blob()
        .unwrap()
        .as_ref()
        .to_vec();
    // The public key is the private key's.
    let sk = p256::SecretKey::from_pkcs8_der(&private).unwrap();
    let spki = sk.public_key().to_public_key_der().unwrap();
    assert_eq!(spki.as_bytes(), pair.public_key().unwrap().as_ref());
    assert_eq!(ops::decrypt(&c, &sealed, &[]).await, private);
    let without = c
        .generate_data_key_pair_without_plaintext()
        .key_id(&key)
        .key_pair_spec(DataKeyPairSpec::Rsa2048)
        .send()
        .await
        .unwrap();
    assert!(without.public_key().is_some());
    let sealed = without
        .private_key_ciphertext_blob()
        .unwrap()
        .as_ref()
        .to_vec();
    let opened = ops::decrypt(&c, &sealed, &[]).await;
    assert!(rsa::RsaPrivateKey::from_pkcs8_der(&opened).is_ok());
}
