//! Requests and responses, one variant per operation.
//!
//! Key material never appears here in the clear except where the operation's
//! purpose is to hand it out (a data key's plaintext) or take it in (the
//! plaintext to encrypt); both travel as [`SecretBytes`], which is zeroized
//! on drop and never printed. CMKs cross only as [`KeyToken`]s, wrapped under
//! the master key that stays in the daemon.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::algorithms::{EncryptionAlgorithm, MacAlgorithm, MessageType, SigningAlgorithm};

/// Version spoken by this build; both sides must agree exactly.
///
/// Version 2: [`RequestFrame`] carries the frontend's request id.
/// Version 3: master-key rotation ([`Request::BeginMasterKeyRotation`],
/// [`Request::RewrapToken`], [`Request::CompleteMasterKeyRotation`],
/// [`Request::MasterKeyStatus`]).
pub const PROTOCOL_VERSION: u16 = 3;

/// Largest plaintext Encrypt accepts (AWS KMS's limit).
pub const MAX_PLAINTEXT_LEN: usize = 4096;

/// Key material WrapKey accepts: 1..=4096 bytes (AES-KWP needs at least one).
pub const MAX_WRAP_MATERIAL_LEN: usize = 4096;

/// Largest GenerateRandom / data key length (AWS KMS's `NumberOfBytes` limit).
pub const MAX_RANDOM_LEN: u16 = 1024;

/// First frame a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    pub magic: [u8; 4],
    pub version: u16,
}

/// The server's answer to a hello it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    pub magic: [u8; 4],
    pub version: u16,
}

impl ClientHello {
    pub const MAGIC: [u8; 4] = *b"HKMS";

    /// The hello of this build.
    pub fn current() -> Self {
        Self {
            magic: Self::MAGIC,
            version: PROTOCOL_VERSION,
        }
    }
}

impl ServerHello {
    /// The hello of this build.
    pub fn current() -> Self {
        Self {
            magic: ClientHello::MAGIC,
            version: PROTOCOL_VERSION,
        }
    }
}

/// Secret bytes on the wire: zeroized on drop, redacted in `Debug`, no
/// `Clone`. Deserialized straight into an exact-size buffer, so no copy is
/// left behind by a growing `Vec`.
#[derive(Default, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; the caller should not keep other copies.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Borrows the secret. Keep the borrow short.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    /// Takes the zeroizing buffer as it is: no copy is made.
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.0.len())
    }
}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let buf = serde_bytes::ByteBuf::deserialize(d)?;
        Ok(Self::new(buf.into_vec()))
    }
}

/// A CMK version's material wrapped under the master key (AES-KWP), with the
/// key id, version and spec bound inside. Not secret without the master key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyToken(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl std::fmt::Debug for KeyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyToken({} bytes)", self.0.len())
    }
}

/// Names one version of a CMK and carries its token. The daemon checks that
/// the token really is that key id and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    pub key_id: String,
    pub version: u32,
    pub token: KeyToken,
}

/// Spec of a CMK's backing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeySpec {
    /// AWS `SYMMETRIC_DEFAULT`: AES-256-GCM.
    SymmetricDefault,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EccNistP256,
    EccNistP384,
    EccNistP521,
    EccSecgP256k1,
    Hmac224,
    Hmac256,
    Hmac384,
    Hmac512,
}

/// Length of a generated data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataKeySpec {
    Aes128,
    Aes256,
    /// `NumberOfBytes`, 1..=1024.
    Bytes(u16),
}

impl DataKeySpec {
    /// Length in bytes.
    pub fn byte_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes256 => 32,
            Self::Bytes(n) => usize::from(n),
        }
    }
}

/// Encryption context as the client gave it; the daemon sorts it into its
/// canonical form and refuses duplicate keys.
pub type EncryptionContext = Vec<(String, String)>;

/// One operation asked of the daemon.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Daemon health and counters.
    Status,
    /// Make new key material for `key_id` / `version`; returns its token.
    CreateKey {
        key_id: String,
        version: u32,
        spec: KeySpec,
    },
    /// Seal `plaintext` under `key`, bound to `context`.
    Encrypt {
        key: KeyRef,
        plaintext: SecretBytes,
        context: EncryptionContext,
    },
    /// Open `blob`; `key` must be the version its header names.
    Decrypt {
        key: KeyRef,
        #[serde(with = "serde_bytes")]
        blob: Vec<u8>,
        context: EncryptionContext,
    },
    /// A fresh data key, sealed under `key`, with or without its plaintext.
    GenerateDataKey {
        key: KeyRef,
        spec: DataKeySpec,
        context: EncryptionContext,
        with_plaintext: bool,
    },
    /// Open `blob` under `source` and seal the plaintext under `destination`,
    /// without the plaintext leaving the daemon.
    ReEncrypt {
        source: KeyRef,
        #[serde(with = "serde_bytes")]
        blob: Vec<u8>,
        source_context: EncryptionContext,
        destination: KeyRef,
        destination_context: EncryptionContext,
    },
    /// `len` bytes from the OS RNG, 1..=1024.
    GenerateRandom { len: u16 },
    /// Drop every cached version of `key_id` from the daemon's memory
    /// (after its deletion); returns how many were held.
    EvictKey { key_id: String },
    /// Which versions of `key_id` the daemon holds unwrapped right now.
    CachedVersions { key_id: String },
    /// The DER SubjectPublicKeyInfo of an asymmetric key.
    GetPublicKey { key: KeyRef },
    /// Sign `message` (or the digest it is) with an asymmetric private key.
    Sign {
        key: KeyRef,
        message: SecretBytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
    },
    /// Check `signature` over `message` with an asymmetric key.
    Verify {
        key: KeyRef,
        message: SecretBytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// RSA-OAEP encryption under an RSA key's public half.
    AsymmetricEncrypt {
        key: KeyRef,
        plaintext: SecretBytes,
        algorithm: EncryptionAlgorithm,
    },
    /// RSA-OAEP decryption with an RSA private key.
    AsymmetricDecrypt {
        key: KeyRef,
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
        algorithm: EncryptionAlgorithm,
    },
    /// HMAC of `message` under an HMAC key.
    GenerateMac {
        key: KeyRef,
        message: SecretBytes,
        algorithm: MacAlgorithm,
    },
    /// Constant-time check of `mac` over `message`.
    VerifyMac {
        key: KeyRef,
        message: SecretBytes,
        algorithm: MacAlgorithm,
        #[serde(with = "serde_bytes")]
        mac: Vec<u8>,
    },
    /// A fresh asymmetric key pair of `pair_spec`; its PKCS#8 private key is
    /// sealed under the symmetric `key` (a normal ciphertext blob).
    GenerateDataKeyPair {
        key: KeyRef,
        pair_spec: KeySpec,
        context: EncryptionContext,
        with_plaintext: bool,
    },
    /// Wrap caller-supplied key `material` (1..=4096 bytes) under `key` with
    /// AES-KWP (RFC 5649); the result is a `protocol::wrapped` blob.
    WrapKey { key: KeyRef, material: SecretBytes },
    /// Unwrap a `protocol::wrapped` blob; `key` must be the version its
    /// header names.
    UnwrapKey {
        key: KeyRef,
        #[serde(with = "serde_bytes")]
        wrapped: Vec<u8>,
    },
    /// Sign the head of the frontend's audit hash chain with the daemon's
    /// audit signing key (Ed25519, derived from the master key). The daemon
    /// signs `AUDIT_DIGEST_CONTEXT || digest`, so the key signs nothing else.
    SignAuditDigest { digest: [u8; 32] },
    /// The public half of the audit signing key.
    AuditPublicKey,
    /// Make a new master key (generation current + 1), persist it next to
    /// the current one and make it current; the old one keeps unwrapping
    /// tokens until [`Request::CompleteMasterKeyRotation`]. While a rotation
    /// is in progress this changes nothing and answers the same generation.
    BeginMasterKeyRotation,
    /// Unwrap `key.token` under the master key of the generation its header
    /// names and wrap the same payload under the current one (after the same
    /// key id / version check as every use). A token already of the current
    /// generation comes back unchanged.
    RewrapToken { key: KeyRef },
    /// Forget the previous master key, in the key file and in memory.
    /// `generation` must be the current one (the one the rotation made);
    /// answering for a rotation already completed is not an error.
    CompleteMasterKeyRotation { generation: u32 },
    /// Which master-key generations the daemon holds.
    MasterKeyStatus,
}

/// Domain separation prefixed to every audit digest the daemon signs.
pub const AUDIT_DIGEST_CONTEXT: &[u8] = b"hsm-kms audit digest v1\0";

impl Request {
    /// The RSA spec of the private key this request makes, if it makes one
    /// (`CreateKey`, `GenerateDataKeyPair`). Generating one takes up to
    /// seconds: the daemon does it on a thread of its own and the client
    /// waits longer for it.
    pub fn rsa_key_spec(&self) -> Option<KeySpec> {
        let spec = match self {
            Self::CreateKey { spec, .. } => *spec,
            Self::GenerateDataKeyPair { pair_spec, .. } => *pair_spec,
            _ => return None,
        };
        matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096).then_some(spec)
    }

    /// Short operation name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Status => "Status",
            Self::CreateKey { .. } => "CreateKey",
            Self::Encrypt { .. } => "Encrypt",
            Self::Decrypt { .. } => "Decrypt",
            Self::GenerateDataKey { .. } => "GenerateDataKey",
            Self::ReEncrypt { .. } => "ReEncrypt",
            Self::GenerateRandom { .. } => "GenerateRandom",
            Self::EvictKey { .. } => "EvictKey",
            Self::CachedVersions { .. } => "CachedVersions",
            Self::GetPublicKey { .. } => "GetPublicKey",
            Self::Sign { .. } => "Sign",
            Self::Verify { .. } => "Verify",
            Self::AsymmetricEncrypt { .. } => "AsymmetricEncrypt",
            Self::AsymmetricDecrypt { .. } => "AsymmetricDecrypt",
            Self::GenerateMac { .. } => "GenerateMac",
            Self::VerifyMac { .. } => "VerifyMac",
            Self::GenerateDataKeyPair { .. } => "GenerateDataKeyPair",
            Self::WrapKey { .. } => "WrapKey",
            Self::UnwrapKey { .. } => "UnwrapKey",
            Self::SignAuditDigest { .. } => "SignAuditDigest",
            Self::AuditPublicKey => "AuditPublicKey",
            Self::BeginMasterKeyRotation => "BeginMasterKeyRotation",
            Self::RewrapToken { .. } => "RewrapToken",
            Self::CompleteMasterKeyRotation { .. } => "CompleteMasterKeyRotation",
            Self::MasterKeyStatus => "MasterKeyStatus",
        }
    }
}

/// Daemon health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    pub protocol_version: u16,
    pub uptime_secs: u64,
    /// Unwrapped CMK versions held in locked memory right now.
    pub cached_keys: u32,
    /// Requests served since start.
    pub requests: u64,
    /// Bytes of locked memory the keystore holds.
    pub locked_bytes: u64,
}

/// A successful reply.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Status(StatusInfo),
    KeyCreated {
        token: KeyToken,
    },
    Ciphertext {
        #[serde(with = "serde_bytes")]
        blob: Vec<u8>,
    },
    Plaintext {
        plaintext: SecretBytes,
    },
    DataKey {
        plaintext: Option<SecretBytes>,
        #[serde(with = "serde_bytes")]
        blob: Vec<u8>,
    },
    Random {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    Evicted {
        versions: u32,
    },
    CachedVersions {
        versions: Vec<u32>,
    },
    PublicKey {
        /// DER SubjectPublicKeyInfo.
        #[serde(with = "serde_bytes")]
        der: Vec<u8>,
    },
    Signature {
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// Verify / VerifyMac: whether the signature or MAC matched.
    Verified {
        valid: bool,
    },
    Mac {
        #[serde(with = "serde_bytes")]
        mac: Vec<u8>,
    },
    DataKeyPair {
        /// DER SubjectPublicKeyInfo.
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
        /// DER PKCS#8 private key, when asked for.
        private_plaintext: Option<SecretBytes>,
        /// The PKCS#8 private key sealed under the request's symmetric key.
        #[serde(with = "serde_bytes")]
        private_blob: Vec<u8>,
    },
    /// WrapKey: the `protocol::wrapped` blob.
    Wrapped {
        #[serde(with = "serde_bytes")]
        wrapped: Vec<u8>,
    },
    /// UnwrapKey: the key material.
    Unwrapped {
        material: SecretBytes,
    },
    /// Ed25519 signature (64 bytes) over `AUDIT_DIGEST_CONTEXT || digest`.
    AuditSignature {
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// The Ed25519 public key that verifies [`Response::AuditSignature`]s.
    AuditPublicKey {
        public_key: [u8; 32],
    },
    /// The master-key generations held: `current` wraps new tokens;
    /// `previous` is present while a rotation is in progress.
    MasterKeys {
        current: u32,
        previous: Option<u32>,
    },
    /// RewrapToken: the token under the current master key.
    Rewrapped {
        token: KeyToken,
    },
}

/// A request with the id its reply will carry.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestFrame {
    pub id: u64,
    /// The frontend's request id (a UUID's 16 bytes; all zero when the call
    /// serves no client request), so the daemon's logs name the same
    /// request as the frontend's logs and audit records.
    pub request_id: [u8; 16],
    pub request: Request,
}

/// The reply to the request with the same id.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResponseFrame {
    pub id: u64,
    pub result: Result<Response, crate::WireError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_that_make_an_rsa_key_name_its_spec() {
        let create = |spec| Request::CreateKey {
            key_id: "k".into(),
            version: 1,
            spec,
        };
        for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
            assert_eq!(create(spec).rsa_key_spec(), Some(spec));
        }
        for spec in [
            KeySpec::EccNistP256,
            KeySpec::Hmac256,
            KeySpec::SymmetricDefault,
        ] {
            assert_eq!(create(spec).rsa_key_spec(), None);
        }
        assert_eq!(Request::Status.rsa_key_spec(), None);
    }
}
