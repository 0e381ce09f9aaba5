//! AWS SDK clients for a [`TestEnv`]: our endpoint, a trust store holding only
//! the frontend's dev CA, `us-east-1`, static credentials, no retries (so each
//! call is exactly one request and errors surface as they are).

use std::time::{Duration, SystemTime};

use aws_sdk_kms::Client;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_async::time::StaticTimeSource;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

use crate::TestEnv;

/// Who signs, with what, and when.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Sign as if the clock said this (a `StaticTimeSource`).
    pub time: Option<SystemTime>,
    /// Sign for this region instead of `us-east-1`.
    pub region: Option<String>,
}

impl TestEnv {
    /// Credentials of principal `who`, to tweak and pass to [`Self::client_with`].
    pub fn client_options(&self, who: &str) -> ClientOptions {
        let p = self.principal(who);
        ClientOptions {
            access_key_id: p.access_key_id.clone(),
            secret_access_key: p.secret_access_key.clone(),
            time: None,
            region: None,
        }
    }

    /// A client signing as principal `who` (`alice` or `bob`).
    pub fn client(&self, who: &str) -> Client {
        self.client_with(self.client_options(who))
    }

    /// A client for principal `who` whose secret is wrong.
    pub fn client_with_wrong_secret(&self, who: &str) -> Client {
        let mut o = self.client_options(who);
        o.secret_access_key = format!("{}x", &o.secret_access_key[1..]);
        self.client_with(o)
    }

    /// A client whose access key id the frontend does not know.
    pub fn client_with_unknown_access_key(&self) -> Client {
        self.client_with(ClientOptions {
            access_key_id: "AKIAUNKNOWNUNKNOWN00".into(),
            secret_access_key: "not-a-configured-secret-access-key-00000".into(),
            time: None,
            region: None,
        })
    }

    /// A client for `who` whose clock says `time`.
    pub fn client_at(&self, who: &str, time: SystemTime) -> Client {
        let mut o = self.client_options(who);
        o.time = Some(time);
        self.client_with(o)
    }

    /// A client built from explicit options.
    pub fn client_with(&self, opts: ClientOptions) -> Client {
        let trust = TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(self.ca_pem().to_vec());
        let tls_context = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .expect("TLS context from our CA");
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(tls_context)
            .build_https();
        let mut config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(
                opts.region.unwrap_or_else(|| crate::REGION.to_owned()),
            ))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(
                opts.access_key_id,
                opts.secret_access_key,
                None,
                None,
                "hsm-kms-tests",
            ))
            .http_client(http)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(t) = opts.time {
            config = config.time_source(StaticTimeSource::new(t));
        }
        Client::from_conf(config.build())
    }
}
