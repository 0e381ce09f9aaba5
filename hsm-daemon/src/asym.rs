//! Asymmetric and HMAC key material, with RustCrypto: generation, the
//! public key (DER SubjectPublicKeyInfo), Sign / Verify (RSASSA-PSS,
//! RSASSA-PKCS1-v1_5, ECDSA; RAW or DIGEST), RSAES-OAEP and HMAC.
//!
//! Material formats inside a key token: RSA and ECC keys are their PKCS#8
//! PrivateKeyInfo DER; HMAC keys are raw bytes of the spec's length. Every
//! function takes the material as a borrowed slice and returns secrets in
//! `Zeroizing` buffers; parsed private keys (`rsa`, `elliptic_curve`) zeroize
//! themselves on drop. The keystore decides where material lives; this
//! module only computes.

use crate::error::DaemonError;
use ecdsa::elliptic_curve::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier, RandomizedPrehashSigner};
use protocol::SigningAlgorithm as S;
use protocol::{EncryptionAlgorithm, InvalidReason, KeySpec, MacAlgorithm, MessageType};
use rand::rngs::OsRng;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

fn unsupported() -> DaemonError {
    DaemonError::InvalidRequest(InvalidReason::UnsupportedKeySpec)
}

fn bad_algorithm() -> DaemonError {
    DaemonError::InvalidRequest(InvalidReason::UnsupportedAlgorithm)
}

fn bad_material() -> DaemonError {
    DaemonError::InvalidToken("key material does not parse")
}

/// Length in bytes of an HMAC key of `spec`.
pub(crate) fn hmac_key_len(spec: KeySpec) -> Option<usize> {
    match spec {
        KeySpec::Hmac224 => Some(28),
        KeySpec::Hmac256 => Some(32),
        KeySpec::Hmac384 => Some(48),
        KeySpec::Hmac512 => Some(64),
        _ => None,
    }
}

fn rsa_bits(spec: KeySpec) -> Option<usize> {
    match spec {
        KeySpec::Rsa2048 => Some(2048),
        KeySpec::Rsa3072 => Some(3072),
        KeySpec::Rsa4096 => Some(4096),
        _ => None,
    }
}

/// Whether `spec` is RSA or ECC.
pub(crate) fn is_asymmetric(spec: KeySpec) -> bool {
    rsa_bits(spec).is_some()
        || matches!(
            spec,
            KeySpec::EccNistP256
                | KeySpec::EccNistP384
                | KeySpec::EccNistP521
                | KeySpec::EccSecgP256k1
        )
}

/// The digest `alg` signs: the message hashed (RAW) or taken as is (DIGEST,
/// whose length must match).
fn digest_of(
    alg: S,
    message: &[u8],
    mtype: MessageType,
) -> Result<Zeroizing<Vec<u8>>, DaemonError> {
    match mtype {
        MessageType::Digest => {
            if message.len() != alg.digest_len() {
                return Err(DaemonError::InvalidRequest(InvalidReason::DigestLength));
            }
            Ok(Zeroizing::new(message.to_vec()))
        }
        MessageType::Raw => Ok(Zeroizing::new(match alg.digest_len() {
            32 => Sha256::digest(message).to_vec(),
            48 => Sha384::digest(message).to_vec(),
            _ => Sha512::digest(message).to_vec(),
        })),
    }
}

macro_rules! ecc {
    ($m:ident, $curve:ty, $signing:ty) => {
        mod $m {
            use super::*;
            type C = $curve;
            type Sk = ecdsa::elliptic_curve::SecretKey<C>;

            pub(super) fn generate() -> Result<Zeroizing<Vec<u8>>, DaemonError> {
                let sk = Sk::random(&mut OsRng);
                let doc = sk
                    .to_pkcs8_der()
                    .map_err(|_| DaemonError::Crypto("pkcs8 encode"))?;
                Ok(Zeroizing::new(doc.as_bytes().to_vec()))
            }

            fn secret(material: &[u8]) -> Result<Sk, DaemonError> {
                Sk::from_pkcs8_der(material).map_err(|_| bad_material())
            }

            pub(super) fn public_der(material: &[u8]) -> Result<Vec<u8>, DaemonError> {
                let doc = secret(material)?
                    .public_key()
                    .to_public_key_der()
                    .map_err(|_| DaemonError::Crypto("spki encode"))?;
                Ok(doc.as_bytes().to_vec())
            }

            pub(super) fn sign(material: &[u8], digest: &[u8]) -> Result<Vec<u8>, DaemonError> {
                let key = <$signing>::from_bytes(&secret(material)?.to_bytes())
                    .map_err(|_| bad_material())?;
                let sig: ecdsa::Signature<C> = key
                    .sign_prehash(digest)
                    .map_err(|_| DaemonError::Crypto("ecdsa sign"))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }

            pub(super) fn verify(material: &[u8], digest: &[u8], signature: &[u8]) -> bool {
                let Ok(sk) = secret(material) else {
                    return false;
                };
                let key = ecdsa::VerifyingKey::<C>::from(sk.public_key());
                let Ok(sig) = ecdsa::Signature::<C>::from_der(signature) else {
                    return false;
                };
                let sig = sig.normalize_s().unwrap_or(sig);
                key.verify_prehash(digest, &sig).is_ok()
            }
        }
    };
}

ecc!(p256_ops, p256::NistP256, p256::ecdsa::SigningKey);
ecc!(p384_ops, p384::NistP384, p384::ecdsa::SigningKey);
ecc!(p521_ops, p521::NistP521, p521::ecdsa::SigningKey);
ecc!(k256_ops, k256::Secp256k1, k256::ecdsa::SigningKey);

/// New key material of `spec` (not SYMMETRIC_DEFAULT: the keystore makes
/// that itself).
pub(crate) fn generate(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>, DaemonError> {
    if let Some(bits) = rsa_bits(spec) {
        let key = RsaPrivateKey::new(&mut OsRng, bits).map_err(|_| DaemonError::Rng)?;
        let doc = key
            .to_pkcs8_der()
            .map_err(|_| DaemonError::Crypto("pkcs8 encode"))?;
        return Ok(Zeroizing::new(doc.as_bytes().to_vec()));
    }
    if let Some(len) = hmac_key_len(spec) {
        let mut key = Zeroizing::new(vec![0u8; len]);
        rand::RngCore::try_fill_bytes(&mut OsRng, &mut key).map_err(|_| DaemonError::Rng)?;
        return Ok(key);
    }
    match spec {
        KeySpec::EccNistP256 => p256_ops::generate(),
        KeySpec::EccNistP384 => p384_ops::generate(),
        KeySpec::EccNistP521 => p521_ops::generate(),
        KeySpec::EccSecgP256k1 => k256_ops::generate(),
        _ => Err(unsupported()),
    }
}

fn rsa_key(material: &[u8]) -> Result<RsaPrivateKey, DaemonError> {
    RsaPrivateKey::from_pkcs8_der(material).map_err(|_| bad_material())
}

/// DER SubjectPublicKeyInfo of an RSA or ECC key.
pub(crate) fn public_key_der(spec: KeySpec, material: &[u8]) -> Result<Vec<u8>, DaemonError> {
    if rsa_bits(spec).is_some() {
        let doc = RsaPublicKey::from(&rsa_key(material)?)
            .to_public_key_der()
            .map_err(|_| DaemonError::Crypto("spki encode"))?;
        return Ok(doc.as_bytes().to_vec());
    }
    match spec {
        KeySpec::EccNistP256 => p256_ops::public_der(material),
        KeySpec::EccNistP384 => p384_ops::public_der(material),
        KeySpec::EccNistP521 => p521_ops::public_der(material),
        KeySpec::EccSecgP256k1 => k256_ops::public_der(material),
        _ => Err(unsupported()),
    }
}

/// Whether `alg` is one AWS pairs with `spec`.
fn pairs(spec: KeySpec, alg: S) -> bool {
    match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => matches!(
            alg,
            S::RsassaPssSha256
                | S::RsassaPssSha384
                | S::RsassaPssSha512
                | S::RsassaPkcs1V15Sha256
                | S::RsassaPkcs1V15Sha384
                | S::RsassaPkcs1V15Sha512
        ),
        KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => alg == S::EcdsaSha256,
        KeySpec::EccNistP384 => alg == S::EcdsaSha384,
        KeySpec::EccNistP521 => alg == S::EcdsaSha512,
        _ => false,
    }
}

macro_rules! rsa_sign {
    ($key:expr, $digest:expr, $alg:expr) => {{
        use rsa::signature::SignatureEncoding as _;
        match $alg {
            S::RsassaPssSha256 => rsa::pss::SigningKey::<Sha256>::new($key)
                .sign_prehash_with_rng(&mut OsRng, $digest)
                .map(|s| s.to_vec()),
            S::RsassaPssSha384 => rsa::pss::SigningKey::<Sha384>::new($key)
                .sign_prehash_with_rng(&mut OsRng, $digest)
                .map(|s| s.to_vec()),
            S::RsassaPssSha512 => rsa::pss::SigningKey::<Sha512>::new($key)
                .sign_prehash_with_rng(&mut OsRng, $digest)
                .map(|s| s.to_vec()),
            S::RsassaPkcs1V15Sha256 => rsa::pkcs1v15::SigningKey::<Sha256>::new($key)
                .sign_prehash($digest)
                .map(|s| s.to_vec()),
            S::RsassaPkcs1V15Sha384 => rsa::pkcs1v15::SigningKey::<Sha384>::new($key)
                .sign_prehash($digest)
                .map(|s| s.to_vec()),
            _ => rsa::pkcs1v15::SigningKey::<Sha512>::new($key)
                .sign_prehash($digest)
                .map(|s| s.to_vec()),
        }
    }};
}

fn rsa_verify(key: RsaPublicKey, digest: &[u8], alg: S, signature: &[u8]) -> bool {
    use rsa::{pkcs1v15, pss};
    match alg {
        S::RsassaPssSha256 | S::RsassaPssSha384 | S::RsassaPssSha512 => {
            let Ok(sig) = pss::Signature::try_from(signature) else {
                return false;
            };
            match alg {
                S::RsassaPssSha256 => {
                    pss::VerifyingKey::<Sha256>::new(key).verify_prehash(digest, &sig)
                }
                S::RsassaPssSha384 => {
                    pss::VerifyingKey::<Sha384>::new(key).verify_prehash(digest, &sig)
                }
                _ => pss::VerifyingKey::<Sha512>::new(key).verify_prehash(digest, &sig),
            }
            .is_ok()
        }
        _ => {
            let Ok(sig) = pkcs1v15::Signature::try_from(signature) else {
                return false;
            };
            match alg {
                S::RsassaPkcs1V15Sha256 => {
                    pkcs1v15::VerifyingKey::<Sha256>::new(key).verify_prehash(digest, &sig)
                }
                S::RsassaPkcs1V15Sha384 => {
                    pkcs1v15::VerifyingKey::<Sha384>::new(key).verify_prehash(digest, &sig)
                }
                _ => pkcs1v15::VerifyingKey::<Sha512>::new(key).verify_prehash(digest, &sig),
            }
            .is_ok()
        }
    }
}

/// Signs `message` (RAW) or the digest it is (DIGEST).
pub(crate) fn sign(
    spec: KeySpec,
    material: &[u8],
    message: &[u8],
    mtype: MessageType,
    alg: S,
) -> Result<Vec<u8>, DaemonError> {
    if !pairs(spec, alg) {
        return Err(bad_algorithm());
    }
    let digest = digest_of(alg, message, mtype)?;
    if rsa_bits(spec).is_some() {
        let key = rsa_key(material)?;
        return rsa_sign!(key, &digest, alg).map_err(|_| DaemonError::Crypto("rsa sign"));
    }
    match spec {
        KeySpec::EccNistP256 => p256_ops::sign(material, &digest),
        KeySpec::EccNistP384 => p384_ops::sign(material, &digest),
        KeySpec::EccNistP521 => p521_ops::sign(material, &digest),
        KeySpec::EccSecgP256k1 => k256_ops::sign(material, &digest),
        _ => Err(unsupported()),
    }
}

/// Checks `signature` over `message` (RAW) or the digest it is (DIGEST).
pub(crate) fn verify(
    spec: KeySpec,
    material: &[u8],
    message: &[u8],
    mtype: MessageType,
    alg: S,
    signature: &[u8],
) -> Result<bool, DaemonError> {
    if !pairs(spec, alg) {
        return Err(bad_algorithm());
    }
    let digest = digest_of(alg, message, mtype)?;
    if rsa_bits(spec).is_some() {
        let key = RsaPublicKey::from(&rsa_key(material)?);
        return Ok(rsa_verify(key, &digest, alg, signature));
    }
    Ok(match spec {
        KeySpec::EccNistP256 => p256_ops::verify(material, &digest, signature),
        KeySpec::EccNistP384 => p384_ops::verify(material, &digest, signature),
        KeySpec::EccNistP521 => p521_ops::verify(material, &digest, signature),
        KeySpec::EccSecgP256k1 => k256_ops::verify(material, &digest, signature),
        _ => return Err(unsupported()),
    })
}

fn oaep(alg: EncryptionAlgorithm) -> Result<Oaep, DaemonError> {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => Ok(Oaep::new::<sha1::Sha1>()),
        EncryptionAlgorithm::RsaesOaepSha256 => Ok(Oaep::new::<Sha256>()),
        _ => Err(bad_algorithm()),
    }
}

/// RSAES-OAEP encryption with the key's public half.
pub(crate) fn oaep_encrypt(
    spec: KeySpec,
    material: &[u8],
    plaintext: &[u8],
    alg: EncryptionAlgorithm,
) -> Result<Vec<u8>, DaemonError> {
    if rsa_bits(spec).is_none() {
        return Err(unsupported());
    }
    let key = RsaPublicKey::from(&rsa_key(material)?);
    key.encrypt(&mut OsRng, oaep(alg)?, plaintext)
        .map_err(|_| DaemonError::InvalidRequest(InvalidReason::PlaintextTooLarge))
}

/// RSAES-OAEP decryption; any failure is an invalid ciphertext.
pub(crate) fn oaep_decrypt(
    spec: KeySpec,
    material: &[u8],
    ciphertext: &[u8],
    alg: EncryptionAlgorithm,
) -> Result<Zeroizing<Vec<u8>>, DaemonError> {
    if rsa_bits(spec).is_none() {
        return Err(unsupported());
    }
    let key = rsa_key(material)?;
    key.decrypt(oaep(alg)?, ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| DaemonError::InvalidCiphertext("rsa-oaep"))
}

/// HMAC of `message`; the algorithm must be the spec's.
pub(crate) fn mac(
    spec: KeySpec,
    material: &[u8],
    message: &[u8],
    alg: MacAlgorithm,
) -> Result<Vec<u8>, DaemonError> {
    use hmac::{Hmac, Mac};
    let bad = |_| DaemonError::Crypto("hmac key");
    Ok(match (spec, alg) {
        (KeySpec::Hmac224, MacAlgorithm::HmacSha224) => {
            let mut m = Hmac::<Sha224>::new_from_slice(material).map_err(bad)?;
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
        (KeySpec::Hmac256, MacAlgorithm::HmacSha256) => {
            let mut m = Hmac::<Sha256>::new_from_slice(material).map_err(bad)?;
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
        (KeySpec::Hmac384, MacAlgorithm::HmacSha384) => {
            let mut m = Hmac::<Sha384>::new_from_slice(material).map_err(bad)?;
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
        (KeySpec::Hmac512, MacAlgorithm::HmacSha512) => {
            let mut m = Hmac::<Sha512>::new_from_slice(material).map_err(bad)?;
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
        _ if hmac_key_len(spec).is_some() => return Err(bad_algorithm()),
        _ => return Err(unsupported()),
    })
}

/// Constant-time check of `tag` against the HMAC of `message`.
pub(crate) fn verify_mac(
    spec: KeySpec,
    material: &[u8],
    message: &[u8],
    alg: MacAlgorithm,
    tag: &[u8],
) -> Result<bool, DaemonError> {
    use subtle::ConstantTimeEq;
    let expected = mac(spec, material, message, alg)?;
    Ok(expected.len() == tag.len() && bool::from(expected.ct_eq(tag)))
}

#[cfg(test)]
mod tests;
