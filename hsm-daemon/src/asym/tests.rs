use super::*;

const ECC: &[(KeySpec, S)] = &[
    (KeySpec::EccNistP256, S::EcdsaSha256),
    (KeySpec::EccNistP384, S::EcdsaSha384),
    (KeySpec::EccNistP521, S::EcdsaSha512),
    (KeySpec::EccSecgP256k1, S::EcdsaSha256),
];

const RSA_ALGS: &[S] = &[
    S::RsassaPssSha256,
    S::RsassaPssSha384,
    S::RsassaPssSha512,
    S::RsassaPkcs1V15Sha256,
    S::RsassaPkcs1V15Sha384,
    S::RsassaPkcs1V15Sha512,
];

fn roundtrip(spec: KeySpec, alg: S) {
    let key = generate(spec).expect("generate");
    let other = generate(spec).expect("generate");
    let msg = b"message to sign";
    let sig = sign(spec, &key, msg, MessageType::Raw, alg).expect("sign");
    assert_eq!(
        verify(spec, &key, msg, MessageType::Raw, alg, &sig).ok(),
        Some(true),
        "{spec:?} {alg:?}"
    );
    // The same signature checks as DIGEST over the message's hash.
    let digest = digest_of(alg, msg, MessageType::Raw).expect("digest");
    assert_eq!(
        verify(spec, &key, &digest, MessageType::Digest, alg, &sig).ok(),
        Some(true)
    );
    assert_eq!(
        verify(spec, &key, b"another message", MessageType::Raw, alg, &sig).ok(),
        Some(false)
    );
    assert_eq!(
        verify(spec, &other, msg, MessageType::Raw, alg, &sig).ok(),
        Some(false)
    );
    assert_eq!(
        verify(spec, &key, msg, MessageType::Raw, alg, b"garbage").ok(),
        Some(false)
    );
    assert!(!public_key_der(spec, &key).expect("spki").is_empty());
}

#[test]
fn ecc_signatures_verify_only_for_their_key_and_message() {
    for (spec, alg) in ECC {
        roundtrip(*spec, *alg);
    }
}

#[test]
fn rsa_2048_signs_with_every_aws_algorithm() {
    for alg in RSA_ALGS {
        roundtrip(KeySpec::Rsa2048, *alg);
    }
}

#[test]
fn refuses_algorithms_the_spec_does_not_pair_with() {
    let key = generate(KeySpec::EccNistP256).expect("generate");
    for alg in [S::EcdsaSha384, S::RsassaPssSha256] {
        assert!(matches!(
            sign(KeySpec::EccNistP256, &key, b"m", MessageType::Raw, alg),
            Err(DaemonError::InvalidRequest(
                InvalidReason::UnsupportedAlgorithm
            ))
        ));
    }
    assert!(matches!(
        sign(
            KeySpec::EccNistP256,
            &key,
            &[0; 31],
            MessageType::Digest,
            S::EcdsaSha256
        ),
        Err(DaemonError::InvalidRequest(InvalidReason::DigestLength))
    ));
}

#[test]
fn oaep_round_trips_and_refuses_tampering() {
    let key = generate(KeySpec::Rsa2048).expect("generate");
    for alg in [
        EncryptionAlgorithm::RsaesOaepSha1,
        EncryptionAlgorithm::RsaesOaepSha256,
    ] {
        let mut ct = oaep_encrypt(KeySpec::Rsa2048, &key, b"secret", alg).expect("encrypt");
        let pt = oaep_decrypt(KeySpec::Rsa2048, &key, &ct, alg).expect("decrypt");
        assert_eq!(pt.as_slice(), b"secret");
        ct[10] ^= 1;
        assert!(matches!(
            oaep_decrypt(KeySpec::Rsa2048, &key, &ct, alg),
            Err(DaemonError::InvalidCiphertext(_))
        ));
    }
    // 190 bytes is the SHA-256 limit for RSA_2048; 191 does not fit.
    let alg = EncryptionAlgorithm::RsaesOaepSha256;
    assert!(oaep_encrypt(KeySpec::Rsa2048, &key, &[1; 190], alg).is_ok());
    assert!(oaep_encrypt(KeySpec::Rsa2048, &key, &[1; 191], alg).is_err());
}

#[test]
fn hmac_verifies_in_constant_time_and_refuses_wrong_algorithm() {
    let cases = [
        (KeySpec::Hmac224, MacAlgorithm::HmacSha224, 28),
        (KeySpec::Hmac256, MacAlgorithm::HmacSha256, 32),
        (KeySpec::Hmac384, MacAlgorithm::HmacSha384, 48),
        (KeySpec::Hmac512, MacAlgorithm::HmacSha512, 64),
    ];
    for (spec, alg, len) in cases {
        let key = generate(spec).expect("generate");
        assert_eq!(key.len(), hmac_key_len(spec).unwrap_or(0));
        let tag = mac(spec, &key, b"m", alg).expect("mac");
        assert_eq!(tag.len(), len);
        assert_eq!(verify_mac(spec, &key, b"m", alg, &tag).ok(), Some(true));
        assert_eq!(verify_mac(spec, &key, b"n", alg, &tag).ok(), Some(false));
        assert_eq!(
            verify_mac(spec, &key, b"m", alg, &tag[1..]).ok(),
            Some(false)
        );
    }
    let key = generate(KeySpec::Hmac256).expect("generate");
    assert!(matches!(
        mac(KeySpec::Hmac256, &key, b"m", MacAlgorithm::HmacSha512),
        Err(DaemonError::InvalidRequest(
            InvalidReason::UnsupportedAlgorithm
        ))
    ));
}
