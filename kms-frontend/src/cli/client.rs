//! The AWS KMS JSON client shared by every kmsctl command (and reusable by a
//! load generator): one keep-alive HTTPS connection pool (hyper-util's client
//! over rustls with aws-lc-rs, HTTP/2 offered first, HTTP/1.1 accepted),
//! SigV4 signing of each request with the `aws-sigv4` crate (the signer the
//! AWS SDKs use, so kmsctl does not share a bug with our own verifier), and
//! AWS error bodies decoded into [`AwsError`]. Endpoint, region and
//! credentials come from `profile::Settings`; what to send is left to the
//! commands.

use super::profile::Settings;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::ExposeSecret;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const AMZ_JSON: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "TrentService.";
/// Signing name of the service (the scope's service part).
const SERVICE: &str = "kms";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An error from a KMS call: the AWS `__type` (without any namespace
/// prefix), its message and the HTTP status. Failures that never reached
/// the server (connection, TLS, timeout) have status 0 and a code of
/// `ConnectionError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    pub code: String,
    pub message: String,
    pub status: u16,
}

impl AwsError {
    fn transport(message: impl Into<String>) -> Self {
        Self {
            code: "ConnectionError".to_owned(),
            message: message.into(),
            status: 0,
        }
    }
}

/// A raw HTTP reply: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A cheap-to-clone KMS client (the connection pool is shared).
#[derive(Clone)]
pub struct KmsClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: Arc<str>,
    region: Arc<str>,
    identity: aws_smithy_runtime_api::client::identity::Identity,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for KmsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsClient")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &"[REDACTED]")
            .finish()
    }
}

impl KmsClient {
    /// Builds the client: trust is `settings.ca_bundle` alone when given
    /// (as with the aws CLI's `AWS_CA_BUNDLE`), the system roots otherwise.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        use anyhow::Context;
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = &settings.ca_bundle {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading CA bundle {}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                let cert = cert.with_context(|| format!("parsing {}", path.display()))?;
                roots
                    .add(cert)
                    .with_context(|| format!("adding a CA from {}", path.display()))?;
            }
            anyhow::ensure!(
                !roots.is_empty(),
                "no certificate in CA bundle {}",
                path.display()
            );
        } else {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system root rustls cannot parse is skipped, as browsers do.
                let _ = roots.add(cert);
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tls_shared = Arc::new(tls.clone());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .build();
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let identity = Credentials::new(
            settings.access_key_id.clone(),
            settings.secret_access_key.expose_secret().to_owned(),
            settings
                .session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            None,
            "kmsctl",
        )
        .into();
        Ok(Self {
            http,
            endpoint: settings.endpoint.as_str().into(),
            region: settings.region.as_str().into(),
            identity,
            tls: tls_shared,
        })
    }

    /// The endpoint URL, without a trailing slash.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The signing region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The TLS client settings (trust store, provider) this client uses,
    /// for callers that open their own connections (`kmsctl bench`).
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.tls)
    }

    /// Calls KMS operation `target` (e.g. `"CreateKey"`) with a JSON body
    /// and returns the JSON reply, or the AWS error.
    pub async fn call(&self, target: &str, body: &Value) -> Result<Value, AwsError> {
        let body = serde_json::to_vec(body).map_err(|e| AwsError::transport(e.to_string()))?;
        let target = format!("{TARGET_PREFIX}{target}");
        let reply = self
            .send(
                Method::POST,
                "/",
                &[("content-type", AMZ_JSON), ("x-amz-target", &target)],
                Bytes::from(body),
            )
            .await?;
        decode_reply(reply)
    }

    /// Sends one SigV4-signed request to `path_and_query` on the endpoint
    /// and returns the raw reply (any status).
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, AwsError> {
        let uri = format!("{}{}", self.endpoint, path_and_query);
        let mut builder = Request::builder().method(method).uri(uri.as_str());
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let mut request = builder
            .body(Full::new(body.clone()))
            .map_err(|e| AwsError::transport(format!("bad request: {e}")))?;
        self.sign(&mut request, uri.as_str(), headers, &body)?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| {
                AwsError::transport(format!("no reply from {uri} in {REQUEST_TIMEOUT:?}"))
            })?
            .map_err(|e| AwsError::transport(format!("{uri}: {}", error_chain(&e))))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| AwsError::transport(format!("reading reply: {e}")))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

impl KmsClient {
    /// Adds the SigV4 headers (`authorization`, `x-amz-date`, and the
    /// session token if any) to `request`, signing `headers` (plus `host`,
    /// taken from `uri`) and `body` at the current time.
    ///
    /// # Errors
    /// [`AwsError`] with code `ConnectionError` if signing fails.
    pub fn sign<B>(
        &self,
        request: &mut Request<B>,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), AwsError> {
        self.sign_at(request, uri, headers, body, SystemTime::now())
    }

    /// [`KmsClient::sign`] at the instant `at`.
    ///
    /// # Errors
    /// [`AwsError`] with code `ConnectionError` if signing fails.
    pub fn sign_at<B>(
        &self,
        request: &mut Request<B>,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        at: SystemTime,
    ) -> Result<(), AwsError> {
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(SERVICE)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| AwsError::transport(format!("signing: {e}")))?
            .into();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| AwsError::transport(format!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| AwsError::transport(format!("signing: {e}")))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// A 2xx JSON body, or the AWS error it carries.
pub fn decode_reply(reply: Reply) -> Result<Value, AwsError> {
    let status = reply.status.as_u16();
    let parsed: Option<Value> = serde_json::from_slice(&reply.body).ok();
    if reply.status.is_success() {
        return match parsed {
            Some(v) => Ok(v),
            None if reply.body.is_empty() => Ok(Value::Object(Default::default())),
            None => Err(AwsError {
                code: "InvalidReply".to_owned(),
                message: "the server's reply is not JSON".to_owned(),
                status,
            }),
        };
    }
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name).or_else(|| v.get(name.to_ascii_lowercase())))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("__type")
        .or_else(|| field("code"))
        .map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned())
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&reply.body)
                .chars()
                .take(200)
                .collect()
        });
    Err(AwsError {
        code,
        message,
        status,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_error_bodies_are_decoded() {
        let reply = Reply {
            status: StatusCode::BAD_REQUEST,
            body: Bytes::from_static(
                br#"{"__type":"com.amazonaws.kms#NotFoundException","message":"nope"}"#,
            ),
        };
        let err = decode_reply(reply).expect_err("error");
        assert_eq!(err.code, "NotFoundException");
        assert_eq!(err.message, "nope");
        assert_eq!(err.status, 400);
    }

    #[test]
    fn rest_error_bodies_are_decoded() {
        let reply = Reply {
            status: StatusCode::CONFLICT,
            body: Bytes::from_static(br#"{"code":"AlreadyExists","message":"dup"}"#),
        };
        let err = decode_reply(reply).expect_err("error");
        assert_eq!((err.code.as_str(), err.status), ("AlreadyExists", 409));
    }

    #[test]
    fn empty_success_is_an_empty_object() {
        let reply = Reply {
            status: StatusCode::OK,
            body: Bytes::new(),
        };
        assert_eq!(decode_reply(reply).expect("ok"), serde_json::json!({}));
    }
}
