//! The key specs this KMS makes and what AWS pairs with each: key usages,
//! encryption, signing and MAC algorithms, and the AWS names of those
//! algorithms. Pure tables; `keys` validates CreateKey with them and the
//! crypto operations check a request's algorithm against them.

use crate::error::KmsError;
use protocol::{EncryptionAlgorithm, KeySpec, MacAlgorithm, SigningAlgorithm};

pub(crate) const ENCRYPT_DECRYPT: &str = "ENCRYPT_DECRYPT";
pub(crate) const SIGN_VERIFY: &str = "SIGN_VERIFY";
pub(crate) const GENERATE_VERIFY_MAC: &str = "GENERATE_VERIFY_MAC";

/// One key spec and what goes with it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpecInfo {
    pub name: &'static str,
    pub spec: KeySpec,
    pub usages: &'static [&'static str],
    pub signing: &'static [SigningAlgorithm],
    pub encryption: &'static [EncryptionAlgorithm],
    pub mac: &'static [MacAlgorithm],
}

use SigningAlgorithm as S;
const RSA_SIGNING: &[SigningAlgorithm] = &[
    S::RsassaPssSha256,
    S::RsassaPssSha384,
    S::RsassaPssSha512,
    S::RsassaPkcs1V15Sha256,
    S::RsassaPkcs1V15Sha384,
    S::RsassaPkcs1V15Sha512,
];
const RSA_ENCRYPTION: &[EncryptionAlgorithm] = &[
    EncryptionAlgorithm::RsaesOaepSha1,
    EncryptionAlgorithm::RsaesOaepSha256,
];
const RSA_USAGES: &[&str] = &[ENCRYPT_DECRYPT, SIGN_VERIFY];

const fn rsa(name: &'static str, spec: KeySpec) -> SpecInfo {
    SpecInfo {
        name,
        spec,
        usages: RSA_USAGES,
        signing: RSA_SIGNING,
        encryption: RSA_ENCRYPTION,
        mac: &[],
    }
}

const fn ecc(name: &'static str, spec: KeySpec, alg: &'static [SigningAlgorithm]) -> SpecInfo {
    SpecInfo {
        name,
        spec,
        usages: &[SIGN_VERIFY],
        signing: alg,
        encryption: &[],
        mac: &[],
    }
}

const fn hmac(name: &'static str, spec: KeySpec, alg: &'static [MacAlgorithm]) -> SpecInfo {
    SpecInfo {
        name,
        spec,
        usages: &[GENERATE_VERIFY_MAC],
        signing: &[],
        encryption: &[],
        mac: alg,
    }
}

/// Every spec this KMS makes.
pub(crate) const SPECS: &[SpecInfo] = &[
    SpecInfo {
        name: "SYMMETRIC_DEFAULT",
        spec: KeySpec::SymmetricDefault,
        usages: &[ENCRYPT_DECRYPT],
        signing: &[],
        encryption: &[],
        mac: &[],
    },
    rsa("RSA_2048", KeySpec::Rsa2048),
    rsa("RSA_3072", KeySpec::Rsa3072),
    rsa("RSA_4096", KeySpec::Rsa4096),
    ecc("ECC_NIST_P256", KeySpec::EccNistP256, &[S::EcdsaSha256]),
    ecc("ECC_NIST_P384", KeySpec::EccNistP384, &[S::EcdsaSha384]),
    ecc("ECC_NIST_P521", KeySpec::EccNistP521, &[S::EcdsaSha512]),
    ecc("ECC_SECG_P256K1", KeySpec::EccSecgP256k1, &[S::EcdsaSha256]),
    hmac("HMAC_224", KeySpec::Hmac224, &[MacAlgorithm::HmacSha224]),
    hmac("HMAC_256", KeySpec::Hmac256, &[MacAlgorithm::HmacSha256]),
    hmac("HMAC_384", KeySpec::Hmac384, &[MacAlgorithm::HmacSha384]),
    hmac("HMAC_512", KeySpec::Hmac512, &[MacAlgorithm::HmacSha512]),
];

/// Specs AWS has that this KMS does not make.
pub(crate) const UNSUPPORTED_SPECS: &[&str] = &[
    "ECC_NIST_EDWARDS25519",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
];

/// The table entry of a stored or requested spec name.
pub(crate) fn spec_info(name: &str) -> Option<&'static SpecInfo> {
    SPECS.iter().find(|s| s.name == name)
}

/// Whether a key spec name is asymmetric (RSA or ECC).
pub(crate) fn is_asymmetric(name: &str) -> bool {
    name.starts_with("RSA_") || name.starts_with("ECC_")
}

/// AWS name of a signing algorithm.
pub(crate) fn signing_name(a: SigningAlgorithm) -> &'static str {
    match a {
        S::RsassaPssSha256 => "RSASSA_PSS_SHA_256",
        S::RsassaPssSha384 => "RSASSA_PSS_SHA_384",
        S::RsassaPssSha512 => "RSASSA_PSS_SHA_512",
        S::RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
        S::RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
        S::RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
        S::EcdsaSha256 => "ECDSA_SHA_256",
        S::EcdsaSha384 => "ECDSA_SHA_384",
        S::EcdsaSha512 => "ECDSA_SHA_512",
        _ => "UNKNOWN",
    }
}

const ALL_SIGNING: &[SigningAlgorithm] = &[
    S::RsassaPssSha256,
    S::RsassaPssSha384,
    S::RsassaPssSha512,
    S::RsassaPkcs1V15Sha256,
    S::RsassaPkcs1V15Sha384,
    S::RsassaPkcs1V15Sha512,
    S::EcdsaSha256,
    S::EcdsaSha384,
    S::EcdsaSha512,
];

/// AWS name of an RSA encryption algorithm.
pub(crate) fn encryption_name(a: EncryptionAlgorithm) -> &'static str {
    match a {
        EncryptionAlgorithm::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        EncryptionAlgorithm::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        _ => "UNKNOWN",
    }
}

/// AWS name of a MAC algorithm.
pub(crate) fn mac_name(a: MacAlgorithm) -> &'static str {
    match a {
        MacAlgorithm::HmacSha224 => "HMAC_SHA_224",
        MacAlgorithm::HmacSha256 => "HMAC_SHA_256",
        MacAlgorithm::HmacSha384 => "HMAC_SHA_384",
        MacAlgorithm::HmacSha512 => "HMAC_SHA_512",
        _ => "UNKNOWN",
    }
}

const ALL_MAC: &[MacAlgorithm] = &[
    MacAlgorithm::HmacSha224,
    MacAlgorithm::HmacSha256,
    MacAlgorithm::HmacSha384,
    MacAlgorithm::HmacSha512,
];

fn enum_error(field: &str, value: &str, names: &[&str]) -> KmsError {
    KmsError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy \
         constraint: Member must satisfy enum value set: [{}]",
        names.join(", ")
    ))
}

/// Parses a SigningAlgorithm name (ValidationException when unknown).
pub(crate) fn parse_signing(value: &str) -> Result<SigningAlgorithm, KmsError> {
    ALL_SIGNING
        .iter()
        .copied()
        .find(|a| signing_name(*a) == value)
        .ok_or_else(|| {
            let names: Vec<_> = ALL_SIGNING.iter().map(|a| signing_name(*a)).collect();
            enum_error("signingAlgorithm", value, &names)
        })
}

/// Parses an asymmetric EncryptionAlgorithm name.
pub(crate) fn parse_encryption(value: &str) -> Result<EncryptionAlgorithm, KmsError> {
    RSA_ENCRYPTION
        .iter()
        .copied()
        .find(|a| encryption_name(*a) == value)
        .ok_or_else(|| {
            enum_error(
                "encryptionAlgorithm",
                value,
                &[
                    "SYMMETRIC_DEFAULT",
                    "RSAES_OAEP_SHA_1",
                    "RSAES_OAEP_SHA_256",
                    "SM2PKE",
                ],
            )
        })
}

/// Parses a MacAlgorithm name.
pub(crate) fn parse_mac(value: &str) -> Result<MacAlgorithm, KmsError> {
    ALL_MAC
        .iter()
        .copied()
        .find(|a| mac_name(*a) == value)
        .ok_or_else(|| {
            let names: Vec<_> = ALL_MAC.iter().map(|a| mac_name(*a)).collect();
            enum_error("macAlgorithm", value, &names)
        })
}

/// Largest RSAES-OAEP plaintext for a key spec and algorithm, as AWS
/// documents it: k - 2*hLen - 2 bytes.
pub(crate) fn rsa_max_plaintext(spec: KeySpec, alg: EncryptionAlgorithm) -> usize {
    let k = match spec {
        KeySpec::Rsa2048 => 256,
        KeySpec::Rsa3072 => 384,
        _ => 512,
    };
    let h = match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => 20,
        _ => 32,
    };
    k - 2 * h - 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_plaintext_limits_match_aws_table() {
        use EncryptionAlgorithm::*;
        assert_eq!(rsa_max_plaintext(KeySpec::Rsa2048, RsaesOaepSha1), 214);
        assert_eq!(rsa_max_plaintext(KeySpec::Rsa2048, RsaesOaepSha256), 190);
        assert_eq!(rsa_max_plaintext(KeySpec::Rsa3072, RsaesOaepSha1), 342);
        assert_eq!(rsa_max_plaintext(KeySpec::Rsa3072, RsaesOaepSha256), 318);
        assert_eq!(rsa_max_plaintext(KeySpec::Rsa4096, RsaesOaepSha1), 470);
        assert_eq!(rsa_max_plaintext(KeySpec::Rsa4096, RsaesOaepSha256), 446);
    }

    #[test]
    fn names_round_trip() {
        for a in ALL_SIGNING {
            assert_eq!(parse_signing(signing_name(*a)).ok(), Some(*a));
        }
        for a in ALL_MAC {
            assert_eq!(parse_mac(mac_name(*a)).ok(), Some(*a));
        }
        for a in RSA_ENCRYPTION {
            assert_eq!(parse_encryption(encryption_name(*a)).ok(), Some(*a));
        }
        assert!(matches!(parse_signing("MD5"), Err(KmsError::Validation(_))));
    }

    #[test]
    fn ecc_pairs_as_aws_documents() {
        let p384 = spec_info("ECC_NIST_P384").expect("p384");
        assert_eq!(p384.signing, &[S::EcdsaSha384]);
        let k1 = spec_info("ECC_SECG_P256K1").expect("k1");
        assert_eq!(k1.signing, &[S::EcdsaSha256]);
        assert!(spec_info("ECC_NIST_EDWARDS25519").is_none());
    }
}
