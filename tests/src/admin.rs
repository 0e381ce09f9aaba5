//! The admin API (`X-Amz-Target: HsmKmsAdmin.<Op>`) from the tests, and SDK
//! clients for principals made through it at run time.

use aws_sdk_kms::Client;

use crate::{ClientOptions, RawRequest, RawResponse, TestEnv};

/// Credentials of a principal made by `CreatePrincipal`.
#[derive(Debug, Clone)]
pub struct CreatedPrincipal {
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl TestEnv {
    /// Sends admin operation `op` with JSON `body`, signed as `who`.
    pub async fn admin_call(&self, who: &str, op: &str, body: serde_json::Value) -> RawResponse {
        self.raw(
            RawRequest::kms(op, body.to_string())
                .target(&format!("HsmKmsAdmin.{op}"))
                .signed_as(who),
        )
        .await
    }

    /// `CreatePrincipal` as `admin`; panics unless it succeeds.
    pub async fn create_principal(&self, name: &str, admin: bool) -> CreatedPrincipal {
        let r = self
            .admin_call(
                "admin",
                "CreatePrincipal",
                serde_json::json!({ "Name": name, "Admin": admin }),
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "CreatePrincipal: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        CreatedPrincipal {
            arn: v["Principal"]["Arn"].as_str().expect("Arn").to_owned(),
            access_key_id: v["Principal"]["AccessKeyId"]
                .as_str()
                .expect("AccessKeyId")
                .to_owned(),
            secret_access_key: v["SecretAccessKey"].as_str().expect("secret").to_owned(),
        }
    }

    /// An SDK client signing with a runtime principal's credentials.
    pub fn client_for(&self, p: &CreatedPrincipal) -> Client {
        self.client_with(ClientOptions {
            access_key_id: p.access_key_id.clone(),
            secret_access_key: p.secret_access_key.clone(),
            time: None,
            region: None,
        })
    }
}
