//! JSON shapes and handlers of the asymmetric and HMAC operations:
//! GetPublicKey, Sign, Verify, GenerateMac, VerifyMac,
//! GenerateDataKeyPair(WithoutPlaintext). Thin: decode, call `service`,
//! encode. The last stop of dispatch: an operation nobody knows is
//! UnknownOperationException.

use super::shapes::Context;
use super::{blob, context, decode, encode, required, secret, secret_base64};
use crate::error::KmsError;
use crate::principal::Principal;
use crate::service::Kms;
use crate::service::asymmetric::{DataKeyPairInput, MacInput, SignInput};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use protocol::SecretBytes;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdOnly {
    key_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignRequest {
    key_id: Option<String>,
    message: Option<String>,
    message_type: Option<String>,
    signing_algorithm: Option<String>,
    signature: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MacRequest {
    key_id: Option<String>,
    message: Option<String>,
    mac_algorithm: Option<String>,
    mac: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyPairRequest {
    key_id: Option<String>,
    key_pair_spec: Option<String>,
    encryption_context: Option<Context>,
    dry_run: Option<bool>,
    recipient: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PublicKeyResponse<'a> {
    key_id: &'a str,
    public_key: &'a str,
    key_spec: &'a str,
    customer_master_key_spec: &'a str,
    key_usage: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    encryption_algorithms: &'a [&'static str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    signing_algorithms: &'a [&'static str],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SignResponse<'a> {
    key_id: &'a str,
    signature: &'a str,
    signing_algorithm: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyResponse<'a> {
    key_id: &'a str,
    signature_valid: bool,
    signing_algorithm: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MacResponse<'a> {
    key_id: &'a str,
    mac: &'a str,
    mac_algorithm: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct VerifyMacResponse<'a> {
    key_id: &'a str,
    mac_valid: bool,
    mac_algorithm: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyPairResponse<'a> {
    key_id: &'a str,
    key_pair_spec: &'a str,
    public_key: &'a str,
    private_key_ciphertext_blob: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key_plaintext: Option<&'a str>,
}

fn message(m: Option<String>) -> Result<SecretBytes, KmsError> {
    secret(&required(m, "message")?, "Message")
}

pub(super) async fn handle(
    kms: &Kms,
    principal: &Principal,
    op: &str,
    body: &[u8],
) -> Result<Vec<u8>, KmsError> {
    match op {
        "GetPublicKey" => {
            let r: KeyIdOnly = decode(body)?;
            let p = kms
                .get_public_key(principal, &required(r.key_id, "keyId")?)
                .await?;
            encode(&PublicKeyResponse {
                key_id: &p.key_arn,
                public_key: &STANDARD.encode(&p.public_key),
                key_spec: p.key_spec,
                customer_master_key_spec: p.key_spec,
                key_usage: &p.key_usage,
                encryption_algorithms: &p.encryption_algorithms,
                signing_algorithms: &p.signing_algorithms,
            })
        }
        "Sign" | "Verify" => {
            let verify = op == "Verify";
            let r: SignRequest = decode(body)?;
            let signature = if verify {
                blob(&required(r.signature, "signature")?, "Signature")?
            } else {
                Vec::new()
            };
            let input = SignInput {
                key_id: required(r.key_id, "keyId")?,
                message: message(r.message)?,
                message_type: r.message_type,
                signing_algorithm: r.signing_algorithm,
                signature,
                dry_run: r.dry_run.unwrap_or(false),
            };
            let out = kms.sign_or_verify(principal, input, verify).await?;
            if verify {
                encode(&VerifyResponse {
                    key_id: &out.key_arn,
                    signature_valid: true,
                    signing_algorithm: out.signing_algorithm,
                })
            } else {
                encode(&SignResponse {
                    key_id: &out.key_arn,
                    signature: &STANDARD.encode(&out.signature),
                    signing_algorithm: out.signing_algorithm,
                })
            }
        }
        "GenerateMac" | "VerifyMac" => {
            let verify = op == "VerifyMac";
            let r: MacRequest = decode(body)?;
            let mac = if verify {
                blob(&required(r.mac, "mac")?, "Mac")?
            } else {
                Vec::new()
            };
            let input = MacInput {
                key_id: required(r.key_id, "keyId")?,
                message: message(r.message)?,
                mac_algorithm: r.mac_algorithm,
                mac,
                dry_run: r.dry_run.unwrap_or(false),
            };
            let out = kms.mac(principal, input, verify).await?;
            if verify {
                encode(&VerifyMacResponse {
                    key_id: &out.key_arn,
                    mac_valid: true,
                    mac_algorithm: out.mac_algorithm,
                })
            } else {
                encode(&MacResponse {
                    key_id: &out.key_arn,
                    mac: &STANDARD.encode(&out.mac),
                    mac_algorithm: out.mac_algorithm,
                })
            }
        }
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
            let with_plaintext = op == "GenerateDataKeyPair";
            let r: DataKeyPairRequest = decode(body)?;
            if r.recipient.is_some() {
                return Err(KmsError::UnsupportedOperation(
                    "The Recipient parameter (attested enclaves) is not supported by this KMS"
                        .into(),
                ));
            }
            let input = DataKeyPairInput {
                key_id: required(r.key_id, "keyId")?,
                key_pair_spec: r.key_pair_spec,
                context: context(r.encryption_context),
                dry_run: r.dry_run.unwrap_or(false),
            };
            let out = kms
                .generate_data_key_pair(principal, input, with_plaintext)
                .await?;
            let private = out.private_key_plaintext.as_ref().map(secret_base64);
            encode(&DataKeyPairResponse {
                key_id: &out.key_arn,
                key_pair_spec: out.key_pair_spec,
                public_key: &STANDARD.encode(&out.public_key),
                private_key_ciphertext_blob: &STANDARD.encode(&out.private_key_ciphertext_blob),
                private_key_plaintext: private.as_deref().map(String::as_str),
            })
        }
        _ => Err(KmsError::UnknownOperation(
            "The operation named in X-Amz-Target is not supported by this KMS".into(),
        )),
    }
}
