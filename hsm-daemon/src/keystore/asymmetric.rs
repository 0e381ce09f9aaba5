//! The keystore's asymmetric, HMAC and cache-management commands: public
//! key, sign / verify, RSA-OAEP, MAC, data key pairs, eviction and the
//! cached-versions query. The arithmetic is `asym`'s; this file finds the
//! material (in the locked slab, unwrapping a token on a miss) and shapes
//! the reply. Parsed private keys live on the keystore thread's locked
//! stack and RustCrypto's zeroizing heap structures for one operation.

use super::{Command, Keystore, Reply};
use crate::asym;
use crate::crypto;
use crate::error::DaemonError;
use protocol::{InvalidReason, KeySpec, SecretBytes};

fn symmetric_only() -> DaemonError {
    DaemonError::InvalidRequest(InvalidReason::UnsupportedKeySpec)
}

impl Keystore {
    /// Runs one command that `execute` hands over.
    pub(super) fn execute_asymmetric(&mut self, command: Command) -> Result<Reply, DaemonError> {
        match command {
            Command::EvictKey { key_id } => Ok(Reply::Evicted(self.evict_key(&key_id))),
            Command::CachedVersions { key_id } => {
                Ok(Reply::CachedVersions(self.cached_versions(&key_id)))
            }
            Command::GetPublicKey { key } => {
                let (spec, slot) = self.material(&key)?;
                asym::public_key_der(spec, self.bytes(slot)?).map(Reply::PublicKey)
            }
            Command::Sign {
                key,
                message,
                message_type,
                algorithm,
            } => {
                let (spec, slot) = self.material(&key)?;
                asym::sign(
                    spec,
                    self.bytes(slot)?,
                    message.expose(),
                    message_type,
                    algorithm,
                )
                .map(Reply::Signature)
            }
            Command::Verify {
                key,
                message,
                message_type,
                algorithm,
                signature,
            } => {
                let (spec, slot) = self.material(&key)?;
                asym::verify(
                    spec,
                    self.bytes(slot)?,
                    message.expose(),
                    message_type,
                    algorithm,
                    &signature,
                )
                .map(Reply::Verified)
            }
            Command::AsymmetricEncrypt {
                key,
                plaintext,
                algorithm,
            } => {
                let (spec, slot) = self.material(&key)?;
                asym::oaep_encrypt(spec, self.bytes(slot)?, plaintext.expose(), algorithm)
                    .map(Reply::Blob)
            }
            Command::AsymmetricDecrypt {
                key,
                ciphertext,
                algorithm,
            } => {
                let (spec, slot) = self.material(&key)?;
                let mut plain =
                    asym::oaep_decrypt(spec, self.bytes(slot)?, &ciphertext, algorithm)?;
                Ok(Reply::Plaintext(SecretBytes::new(std::mem::take(
                    &mut *plain,
                ))))
            }
            Command::GenerateMac {
                key,
                message,
                algorithm,
            } => {
                let (spec, slot) = self.material(&key)?;
                asym::mac(spec, self.bytes(slot)?, message.expose(), algorithm).map(Reply::Mac)
            }
            Command::VerifyMac {
                key,
                message,
                algorithm,
                mac,
            } => {
                let (spec, slot) = self.material(&key)?;
                asym::verify_mac(spec, self.bytes(slot)?, message.expose(), algorithm, &mac)
                    .map(Reply::Verified)
            }
            Command::GenerateDataKeyPair {
                key,
                pair_spec,
                context,
                with_plaintext,
                generated,
            } => {
                if !asym::is_asymmetric(pair_spec) {
                    return Err(symmetric_only());
                }
                let (spec, slot) = self.material(&key)?;
                if spec != KeySpec::SymmetricDefault {
                    return Err(symmetric_only());
                }
                let private = match generated {
                    Some(made) => made,
                    None => asym::generate(pair_spec)?.into(),
                };
                let public_key = asym::public_key_der(pair_spec, private.expose())?;
                let private_blob = crypto::seal(
                    self.key(slot)?,
                    &key.key_id,
                    key.version,
                    private.expose(),
                    &context,
                )?;
                let private_plaintext = with_plaintext.then_some(private);
                Ok(Reply::DataKeyPair {
                    public_key,
                    private_plaintext,
                    private_blob,
                })
            }
            _ => Err(DaemonError::Crypto("command routed to the wrong executor")),
        }
    }
}
