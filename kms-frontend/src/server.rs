//! The HTTPS server: accept loop, TLS handshake, HTTP/1.1 and HTTP/2
//! (hyper-util's auto builder), limits, routing and graceful shutdown.
//!
//! Limits: a cap on concurrent connections (accepting pauses at the cap), a
//! TLS handshake timeout, an HTTP/1 header-read timeout, a request body
//! limit enforced while reading (answered with an AWS-shaped 413, after
//! draining a bounded amount so the client reads the reply instead of a
//! reset) and a timeout per request. Routes: `GET /health` without
//! authentication; `POST /` -> `auth` -> `api::aws_json::dispatch`; the
//! wallet routes (`/key`, `/key/{pub}`, `/generateDataKey`,
//! `/decryptDataKey`) -> the same `auth` -> `api::rest::dispatch`;
//! `X-Amz-Target: HsmKmsAdmin.*` -> `api::admin::dispatch`; any other
//! path or method gets an AWS-shaped 404 or 405; `GET /metrics` serves the
//! Prometheus metrics without authentication (aggregate counts only, see
//! `metrics`). Every response carries `x-amzn-RequestId`, which also names
//! the request in its log lines (with principal and operation, see
//! `logging`), its audit record and the daemon's log lines; errors carry
//! `x-amzn-ErrorType`; 5xx bodies are generic. Every authenticated call
//! (KMS, admin, wallet) is audited before its reply is sent, after the
//! authorization decisions made for it (collected per request through a
//! task-local `service::authz::DecisionSink`); a call whose records cannot
//! be written gets a 500 instead of its result (fail closed). The request timeout
//! bounds reading, authentication and handling, not the audit write, so a
//! call that times out is audited once, with the 500 the client gets.
//! `/metrics` counts `POST /` and the REST routes. One log line per
//! request. The KMS operations themselves are left to `api` and `service`.

use crate::api::{AwsReply, admin, aws_json, rest};
use crate::audit::{ApiCall, Auditor, Collector};
use crate::auth::{RequestParts, Verifier};
use crate::hsm_client::HsmClient;
use crate::principal::Principal;
use crate::service::Kms;
use crate::service::authz::{self, DecisionSink};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

const AMZ_JSON: &str = "application/x-amz-json-1.1";
const REST_JSON: &str = "application/json";
const TARGET_PREFIX: &str = "TrentService.";
/// Body frames read and thrown away after the limit is exceeded.
const MAX_DRAIN_FRAMES: usize = 64;

/// Limits and timeouts of the server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    /// Reading the body, authenticating and handling one request.
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Root key of the wallet REST API when a request names none.
    pub wallet_root_key: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
            max_connections: crate::config::DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            wallet_root_key: None,
        }
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub struct App {
    pub kms: Kms,
    pub verifier: Verifier,
    pub hsm: HsmClient,
    pub audit: Auditor,
    pub settings: ServerSettings,
}

/// How every connection is served: HTTP/1.1 with keep-alive and a header
/// read timeout, or HTTP/2 (ALPN) with at most 128 concurrent streams.
/// Public so the transport-ceiling benchmark serves its connections the
/// same way.
pub fn connection_builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128);
    builder
}

/// Serves `listener` until `shutdown` completes, then stops accepting and
/// waits (at most `shutdown_grace`) for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let settings = app.settings.clone();
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(connection_builder(settings.header_read_timeout));
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = Arc::clone(&builder);
        let app = Arc::clone(&app);
        let watcher = graceful.watcher();
        let handshake_timeout = settings.handshake_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let _open = crate::metrics::global().connection_opened();
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(handle(&app, req, peer).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }

    drop(listener);
    tracing::info!("shutting down: no longer accepting, waiting for in-flight requests");
    match tokio::time::timeout(settings.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("grace period over; closing remaining connections"),
    }
}

/// What the request log line reports beyond status and latency.
#[derive(Default)]
struct LogFields {
    principal: Option<Arc<Principal>>,
    operation: Option<String>,
}

impl LogFields {
    /// The authenticated caller, also given to the request's log lines.
    fn set_principal(&mut self, principal: &Arc<Principal>) {
        crate::logging::set_principal(principal);
        self.principal = Some(Arc::clone(principal));
    }

    /// The operation called, also given to the request's log lines.
    fn set_operation(&mut self, operation: String) {
        crate::logging::set_operation(&operation);
        self.operation = Some(operation);
    }
}

/// What a request's handlers share besides the app.
struct Ctx<'a> {
    request_id: &'a str,
    peer: SocketAddr,
    /// Reading, authenticating and handling must be done by then; writing
    /// the audit record is not cut short (see [`timed_out`]).
    deadline: tokio::time::Instant,
    /// The authorization decisions made for this request.
    decisions: &'a Collector,
}

/// Handles one request from `peer`; never fails, never panics on bad input.
pub async fn handle(app: &App, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let start = Instant::now();
    // A v4 UUID from the thread-local CSPRNG: `Uuid::new_v4` would make a
    // getrandom(2) syscall on every request.
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut id_text = [0; uuid::fmt::Hyphenated::LENGTH];
    let request_id: &str = uuid.hyphenated().encode_lower(&mut id_text);
    let counted = (req.method() == Method::POST && req.uri().path() == "/")
        || rest::is_rest_path(req.uri().path());
    // Kept only for the debug line below, which is off by default.
    let target = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (req.method().clone(), req.uri().path().to_owned()));
    let mut log = LogFields::default();
    let decisions = Arc::new(Collector::default());
    let ctx = Ctx {
        request_id,
        peer,
        deadline: tokio::time::Instant::now() + app.settings.request_timeout,
        decisions: &decisions,
    };
    let sink: Arc<dyn DecisionSink> = decisions.clone();
    // Boxed once here: the handlers' future is several KiB, and every
    // wrapper below would otherwise copy it (memmove was 8% of the CPU).
    let routed = Box::pin(route(app, req, &ctx, &mut log));
    let (reply, content_type) = crate::logging::in_request(
        uuid,
        crate::hsm_client::with_request_id(
            *uuid.as_bytes(),
            authz::with_decision_sink(sink, routed),
        ),
    )
    .await;
    let response = to_response(reply, content_type, request_id);
    if counted {
        crate::metrics::global().request(
            metric_operation(&log, response.headers().get("x-amzn-errortype")),
            response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("ok"),
            start.elapsed(),
        );
    }
    // Debug, not info: the audit log already holds one record per call, and
    // a line per request on stderr cost 15% of the throughput (BENCHMARKS.md).
    if let Some((method, path)) = target {
        tracing::debug!(
            request_id,
            method = %method,
            path = %path,
            principal = log.principal.as_ref().map_or("-", |p| p.arn.as_str()),
            operation = log.operation.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
            "request"
        );
    }
    response
}

/// The reply of a request that ran past its deadline.
fn timed_out(content_type: &'static str) -> AwsReply {
    if content_type == REST_JSON {
        rest::error(500, "KMSInternalException", "The request timed out.")
    } else {
        AwsReply::error(500, "KMSInternalException", "The request timed out.")
    }
}

/// The operation label of a KMS request: bounded to names the API knew.
fn metric_operation<'a>(log: &'a LogFields, error: Option<&HeaderValue>) -> &'a str {
    match (&log.principal, &log.operation) {
        (None, _) => "Unauthenticated",
        (Some(_), Some(op))
            if error.is_none_or(|e| e.as_bytes() != b"UnknownOperationException") =>
        {
            op
        }
        (Some(_), _) => "Unknown",
    }
}

async fn route(
    app: &App,
    req: Request<Incoming>,
    ctx: &Ctx<'_>,
    log: &mut LogFields,
) -> (AwsReply, &'static str) {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/health") => (health(app).await, "application/json"),
        (&Method::GET, "/metrics") => (metrics(app).await, crate::metrics::CONTENT_TYPE),
        (&Method::POST, "/") => (kms_request(app, req, ctx, log).await, AMZ_JSON),
        (_, p) if rest::is_rest_path(p) => (rest_request(app, req, ctx, log).await, REST_JSON),
        (_, "/" | "/health" | "/metrics") => (
            AwsReply::error(
                405,
                "MethodNotAllowedException",
                &format!("Method {} is not allowed on {path}", req.method()),
            ),
            AMZ_JSON,
        ),
        _ => (
            AwsReply::error(
                404,
                "UnknownOperationException",
                "No such resource. The AWS KMS JSON API is served at POST /.",
            ),
            AMZ_JSON,
        ),
    }
}

async fn health(app: &App) -> AwsReply {
    let call = app.hsm.call(protocol::Request::Status);
    let hsm = match tokio::time::timeout(Duration::from_secs(2), call).await {
        Ok(Ok(protocol::Response::Status(_))) => "ok",
        _ => "unavailable",
    };
    let body = serde_json::json!({ "status": "ok", "hsm": hsm });
    AwsReply::ok(body.to_string().into_bytes())
}

/// The metrics text, with the daemon's counters read now.
async fn metrics(app: &App) -> AwsReply {
    let call = app.hsm.call(protocol::Request::Status);
    let daemon = match tokio::time::timeout(Duration::from_secs(2), call).await {
        Ok(Ok(protocol::Response::Status(s))) => crate::metrics::DaemonCounters {
            up: true,
            uptime_secs: s.uptime_secs,
            cached_keys: s.cached_keys,
            requests: s.requests,
            locked_bytes: s.locked_bytes,
        },
        _ => crate::metrics::DaemonCounters::default(),
    };
    let m = crate::metrics::global();
    m.set_daemon(daemon);
    AwsReply::ok(m.encode().into_bytes())
}

/// One `POST /` request: body, SigV4, then the KMS or admin operation, all
/// before the deadline; then the audit records (not cut short).
async fn kms_request(
    app: &App,
    req: Request<Incoming>,
    ctx: &Ctx<'_>,
    log: &mut LogFields,
) -> AwsReply {
    let request_id = ctx.request_id;
    let (parts, body) = req.into_parts();
    let body =
        match tokio::time::timeout_at(ctx.deadline, read_body(body, app.settings.max_body_bytes))
            .await
        {
            Ok(Ok(b)) => b,
            Ok(Err(reply)) => return reply,
            Err(_) => return timed_out(AMZ_JSON),
        };
    let request = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        authority: parts.uri.authority().map(|a| a.as_str()),
        body: &body,
    };
    let principal = match app
        .verifier
        .verify(&request, time::OffsetDateTime::now_utc())
    {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "authentication failed");
            return e.to_reply();
        }
    };
    log.set_principal(&principal);
    let raw_target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let admin_target = raw_target.filter(|t| t.starts_with(admin::TARGET_PREFIX));
    let target =
        raw_target.filter(|t| t.len() > TARGET_PREFIX.len() && t.starts_with(TARGET_PREFIX));
    let dispatched = match (admin_target, target) {
        (Some(t), _) => {
            let op: String = t
                .chars()
                .take(64)
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            log.set_operation(op);
            tokio::time::timeout_at(
                ctx.deadline,
                Box::pin(admin::dispatch(
                    &app.kms,
                    &app.verifier,
                    &principal,
                    request_id,
                    t,
                    &body,
                )),
            )
            .await
        }
        (None, Some(target)) => {
            let op: String = target[TARGET_PREFIX.len()..]
                .chars()
                .take(64)
                .filter(char::is_ascii_alphanumeric)
                .collect();
            log.set_operation(op);
            tokio::time::timeout_at(
                ctx.deadline,
                Box::pin(aws_json::dispatch(
                    &app.kms, &principal, request_id, target, &body,
                )),
            )
            .await
        }
        (None, None) => Ok(AwsReply::error(
            400,
            "UnknownOperationException",
            "Missing or unknown X-Amz-Target; expected TrentService.<Operation>.",
        )),
    };
    // Past the deadline the operation is abandoned (a store write already
    // under way still completes) and the record says what the client gets.
    let reply = dispatched.unwrap_or_else(|_| timed_out(AMZ_JSON));
    // What the client will see: 5xx bodies generic, in the record too.
    let reply = if reply.status >= 500 {
        generic_reply(reply)
    } else {
        reply
    };
    let audited = Audited {
        request_id,
        peer: ctx.peer,
        operation: log.operation.as_deref().unwrap_or("Unknown"),
        principal: &principal,
        headers: &parts.headers,
        body: &body,
    };
    audit(app, &audited, ctx.decisions, reply).await
}

/// One wallet REST request: body, the same SigV4 authentication as the
/// JSON API (so `curl --aws-sigv4 "aws:amz:REGION:kms"` works), then
/// `api::rest`. Errors are REST-shaped (`{code, message}`).
async fn rest_request(
    app: &App,
    req: Request<Incoming>,
    ctx: &Ctx<'_>,
    log: &mut LogFields,
) -> AwsReply {
    let (parts, body) = req.into_parts();
    let body =
        match tokio::time::timeout_at(ctx.deadline, read_body(body, app.settings.max_body_bytes))
            .await
        {
            Ok(Ok(b)) => b,
            Ok(Err(reply)) => return reply,
            Err(_) => return timed_out(REST_JSON),
        };
    let request = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        authority: parts.uri.authority().map(|a| a.as_str()),
        body: &body,
    };
    let principal = match app
        .verifier
        .verify(&request, time::OffsetDateTime::now_utc())
    {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "authentication failed");
            let status = if matches!(e, crate::auth::AuthError::MissingToken) {
                401
            } else {
                403
            };
            return rest::error(status, e.aws_name(), &e.to_string());
        }
    };
    log.set_principal(&principal);
    let route = rest::operation(parts.method.as_str(), parts.uri.path());
    log.set_operation(route.to_owned());
    let reply = tokio::time::timeout_at(
        ctx.deadline,
        Box::pin(rest::dispatch(
            &app.kms,
            &principal,
            app.settings.wallet_root_key.as_deref(),
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query(),
            &body,
        )),
    )
    .await
    .unwrap_or_else(|_| timed_out(REST_JSON));
    // A method the route does not serve is named as sent (bounded).
    let operation = if route == rest::UNKNOWN_OPERATION {
        format!(
            "rest:{} /{}",
            parts.method.as_str().chars().take(16).collect::<String>(),
            parts.uri.path().split('/').nth(1).unwrap_or("")
        )
    } else {
        route.to_owned()
    };
    let audited = Audited {
        request_id: ctx.request_id,
        peer: ctx.peer,
        operation: &operation,
        principal: &principal,
        headers: &parts.headers,
        body: &body,
    };
    audit(app, &audited, ctx.decisions, reply).await
}

/// What an authenticated call's audit record is made of, besides the reply.
struct Audited<'a> {
    request_id: &'a str,
    peer: SocketAddr,
    operation: &'a str,
    principal: &'a crate::principal::Principal,
    headers: &'a http::HeaderMap,
    body: &'a [u8],
}

/// Writes the records of the call's authorization decisions, then the
/// call's own record; the reply goes out only if they are written
/// (otherwise a generic 500: fail closed).
async fn audit(app: &App, a: &Audited<'_>, decisions: &Collector, reply: AwsReply) -> AwsReply {
    let call = ApiCall {
        request_id: a.request_id,
        time: time::OffsetDateTime::now_utc(),
        operation: a.operation,
        principal: a.principal,
        region: app.verifier.region(),
        source_ip: Some(a.peer.ip()),
        user_agent: a
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        request_body: a.body,
        response_body: &reply.body,
        error_code: reply.error_type,
    };
    match app.audit.record(&call, &decisions.take()).await {
        Ok(()) => reply,
        Err(e) => {
            tracing::error!(error = %e, "audit record not written; withholding the reply");
            generic_5xx("KMSInternalException")
        }
    }
}

/// Reads the body up to `max` bytes. Past the limit the rest is drained
/// (bounded) so the client gets our 413 rather than a connection reset.
async fn read_body<B>(body: B, max: usize) -> Result<Bytes, AwsReply>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        AwsReply::error(
            413,
            "RequestEntityTooLargeException",
            &format!("Request body is larger than the limit of {max} bytes."),
        )
    };
    let mut body = Limited::new(body, max);
    // `to_bytes` hands a body that arrived in one frame back without a copy.
    match (&mut body).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => {
            let mut drained = 0;
            while drained < MAX_DRAIN_FRAMES {
                match body.frame().await {
                    Some(_) => drained += 1,
                    None => break,
                }
            }
            Err(too_large())
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading the request body failed");
            Err(AwsReply::error(
                400,
                "SerializationException",
                "The request body could not be read.",
            ))
        }
    }
}

/// The generic message a 5xx reply carries, whatever the handler said.
fn generic_5xx(name: &'static str) -> AwsReply {
    let message = match name {
        "DependencyTimeoutException" => {
            "The service is temporarily unable to complete the request."
        }
        _ => "The server encountered an internal error. Please retry the request.",
    };
    AwsReply::error(500, name, message)
}

/// A 5xx reply with its body replaced by the generic one.
fn generic_reply(reply: AwsReply) -> AwsReply {
    let mut generic = generic_5xx(reply.error_type.unwrap_or("KMSInternalException"));
    generic.status = reply.status;
    generic
}

fn to_response(
    reply: AwsReply,
    content_type: &'static str,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let reply = if reply.status >= 500 && content_type == AMZ_JSON {
        generic_reply(reply)
    } else {
        reply
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    if let Some(Ok(v)) = reply.error_type.map(HeaderValue::from_str) {
        headers.insert("x-amzn-errortype", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn five_hundreds_are_generic() {
        let r = to_response(
            AwsReply::error(
                500,
                "KMSInternalException",
                "sqlite: /var/lib/kms/kms.db locked",
            ),
            AMZ_JSON,
            "id",
        );
        assert_eq!(r.status(), 500);
        assert_eq!(r.headers()["x-amzn-errortype"], "KMSInternalException");
        assert_eq!(r.headers()["x-amzn-requestid"], "id");
        assert_eq!(r.headers()["content-type"], AMZ_JSON);
        let body = r.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["__type"], "KMSInternalException");
        assert!(!v["message"].as_str().unwrap_or_default().contains("sqlite"));
    }

    /// A body sent as `chunks`, one frame each.
    fn body_of(
        chunks: &[&'static [u8]],
    ) -> impl hyper::body::Body<Data = Bytes, Error = Infallible> {
        let frames: Vec<Result<hyper::body::Frame<Bytes>, Infallible>> = chunks
            .iter()
            .map(|c| Ok(hyper::body::Frame::data(Bytes::from_static(c))))
            .collect();
        http_body_util::StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn bodies_in_any_number_of_frames_are_read_whole() {
        for chunks in [
            &[][..],
            &[&b"{\"KeyId\":\"k\"}"[..]][..],
            &[&b"{\"Key"[..], b"Id\":", b"\"k\"}"][..],
            &[&b""[..], b"{\"KeyId\":\"k\"}"][..],
        ] {
            let body = read_body(body_of(chunks), 64).await;
            assert_eq!(body.ok(), Some(Bytes::from(chunks.concat())), "{chunks:?}");
        }
        // One frame comes back as it is: the same bytes, not a copy.
        let one: &'static [u8] = b"{\"KeyId\":\"k\"}";
        let body = read_body(body_of(&[one]), 64).await.unwrap_or_default();
        assert_eq!(body.as_ptr(), one.as_ptr());
        let too_large = read_body(body_of(&[b"0123456789", b"0123456789"]), 15).await;
        assert_eq!(too_large.err().map(|r| r.status), Some(413));
    }

    #[test]
    fn client_errors_pass_through() {
        let r = to_response(
            AwsReply::error(400, "NotFoundException", "Key 'x' does not exist"),
            AMZ_JSON,
            "id",
        );
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["x-amzn-errortype"], "NotFoundException");
    }
}
