//! Raw HTTPS requests for what the SDK will not send: malformed JSON, unknown
//! targets, oversized or unsigned bodies, HTTP/1.1. Signs with `aws-sigv4`
//! (the SDK's own signer) and sends over tokio-rustls trusting only our CA,
//! one connection per request, HTTP/2 or HTTP/1.1 as asked.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;

use crate::TestEnv;

/// One raw request. Start from [`RawRequest::kms`] or [`RawRequest::get`].
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    /// `X-Amz-Target`, e.g. `TrentService.ListKeys`.
    pub target: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// Principal to sign as; `None` sends the request unsigned.
    pub sign_as: Option<String>,
    /// HTTP/1.1 instead of HTTP/2.
    pub http1: bool,
    /// Send this body instead of the signed one (a request altered in flight).
    pub body_override: Option<Vec<u8>>,
    /// Headers set after signing (replacing any the signer set).
    pub extra_headers: Vec<(String, String)>,
}

impl RawRequest {
    /// `POST /` with `X-Amz-Target: TrentService.<op>`, the KMS content type,
    /// signed as alice, over HTTP/2.
    pub fn kms(op: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            path: "/".into(),
            target: Some(format!("TrentService.{op}")),
            content_type: Some("application/x-amz-json-1.1".into()),
            body: body.into(),
            sign_as: Some("alice".into()),
            http1: false,
            body_override: None,
            extra_headers: Vec::new(),
        }
    }

    /// An unsigned `GET path`.
    pub fn get(path: &str) -> Self {
        Self {
            method: "GET".into(),
            path: path.into(),
            target: None,
            content_type: None,
            body: Vec::new(),
            sign_as: None,
            http1: false,
            body_override: None,
            extra_headers: Vec::new(),
        }
    }

    /// Replace the whole `X-Amz-Target` value.
    pub fn target(mut self, target: &str) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn unsigned(mut self) -> Self {
        self.sign_as = None;
        self
    }

    /// Sign as principal `who`.
    pub fn signed_as(mut self, who: &str) -> Self {
        self.sign_as = Some(who.into());
        self
    }

    /// Sign `self.body` but send `body`.
    pub fn send_body_instead(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body_override = Some(body.into());
        self
    }

    /// Set `name: value` after signing.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.extra_headers.push((name.into(), value.into()));
        self
    }

    pub fn http1(mut self) -> Self {
        self.http1 = true;
        self
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    /// The negotiated protocol version.
    pub version: http::Version,
}

impl RawResponse {
    /// The body as JSON.
    ///
    /// # Panics
    /// When the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The AWS error name from the body's `__type` (any `namespace#` prefix
    /// removed), or `None` for a body that is not an AWS error.
    pub fn error_type(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let t = v.get("__type")?.as_str()?;
        Some(t.rsplit('#').next().unwrap_or(t).to_owned())
    }

    /// The `x-amzn-ErrorType` header, any `:suffix` removed.
    pub fn error_type_header(&self) -> Option<String> {
        let h = self.headers.get("x-amzn-errortype")?.to_str().ok()?;
        Some(h.split(':').next().unwrap_or(h).to_owned())
    }
}

fn tls_config(ca_pem: &[u8], http1: bool) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = if http1 {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec()]
    };
    cfg
}

impl TestEnv {
    /// Sends `req` to the frontend and returns the response.
    ///
    /// # Panics
    /// On connection or protocol failures (the tests treat those as failures).
    pub async fn raw(&self, req: RawRequest) -> RawResponse {
        let authority = self.authority().to_owned();
        let uri = format!("https://{authority}{}", req.path);
        let mut headers: Vec<(&str, String)> = Vec::new();
        if req.http1 {
            headers.push(("host", authority.clone()));
        }
        if let Some(ct) = &req.content_type {
            headers.push(("content-type", ct.clone()));
        }
        if let Some(t) = &req.target {
            headers.push(("x-amz-target", t.clone()));
        }
        let mut builder = http::Request::builder()
            .method(req.method.as_str())
            .uri(uri.as_str());
        for (k, v) in &headers {
            builder = builder.header(*k, v.as_str());
        }
        let mut request = builder
            .body(Full::new(Bytes::from(req.body.clone())))
            .expect("request");
        if let Some(who) = &req.sign_as {
            let p = self.principal(who);
            let identity =
                Credentials::new(&p.access_key_id, &p.secret_access_key, None, None, "raw").into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(crate::REGION)
                .name("kms")
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .expect("signing params")
                .into();
            let signable = SignableRequest::new(
                &req.method,
                uri.as_str(),
                headers.iter().map(|(k, v)| (*k, v.as_str())),
                SignableBody::Bytes(&req.body),
            )
            .expect("signable request");
            let (instructions, _sig) = sign(signable, &params).expect("sign").into_parts();
            instructions.apply_to_request_http1x(&mut request);
        }
        for (name, value) in &req.extra_headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(value).expect("header value"),
            );
        }
        if let Some(other) = &req.body_override {
            *request.body_mut() = Full::new(Bytes::from(other.clone()));
            if req.http1 {
                request.headers_mut().insert(
                    http::header::CONTENT_LENGTH,
                    http::HeaderValue::from(other.len()),
                );
            }
        }

        let tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .unwrap_or_else(|e| panic!("connect {authority}: {e}"));
        let connector =
            tokio_rustls::TlsConnector::from(Arc::new(tls_config(self.ca_pem(), req.http1)));
        let tls = connector
            .connect(
                ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into()),
                tcp,
            )
            .await
            .expect("TLS handshake with the frontend");
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let io = TokioIo::new(tls);
        let response = if req.http1 {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("HTTP/1.1 handshake");
            tokio::spawn(conn);
            sender.send_request(request).await
        } else {
            assert_eq!(
                alpn.as_deref(),
                Some(&b"h2"[..]),
                "frontend did not negotiate h2 by ALPN"
            );
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("HTTP/2 handshake");
            tokio::spawn(conn);
            sender.send_request(request).await
        }
        .expect("send request");
        let status = response.status().as_u16();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("read response body")
            .to_bytes()
            .to_vec();
        RawResponse {
            status,
            headers,
            body,
            version,
        }
    }
}
