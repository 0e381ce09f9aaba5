//! The transport ceiling for `kmsctl bench`: an HTTPS endpoint with the
//! frontend's TLS configuration, certificate, HTTP settings, runtime and
//! allocator, that reads each request's body and answers at once with a
//! fixed KMS-shaped reply. No SigV4, no key lookup, no hsm-daemon, no audit.
//! What `kmsctl bench` measures against it is what TLS, HTTP/1.1 and the
//! loopback TCP stack alone allow on the machine, with the load generator
//! sharing it: the figure the real frontend is compared with
//! (`scripts/bench --ceiling`).
//!
//! It is a benchmark fixture, not a KMS: it accepts any request, signed or
//! not, and keeps nothing.
//!
//!   cargo run --release -p kms-frontend --example transport_ceiling -- --config FRONTEND.toml
//!
//! It prints the frontend's `READY https://127.0.0.1:PORT [ca=PATH]` line.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kms_frontend::config::Config;
use kms_frontend::server;
use std::io::Write as _;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The reply to every call but `CreateKey`: what an Encrypt returns (a
/// Decrypt or GenerateDataKey client reads only the status here).
const REPLY: &[u8] = br#"{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000","CiphertextBlob":"AQICAHgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#;
/// The reply to `CreateKey` (the bench creates its key first).
const CREATE_KEY_REPLY: &[u8] =
    br#"{"KeyMetadata":{"KeyId":"00000000-0000-4000-8000-000000000000","Enabled":true}}"#;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let config = match (args.next().as_deref(), args.next()) {
        (Some("--config"), Some(path)) => {
            Config::load(path.as_ref()).with_context(|| format!("cannot load the config {path}"))?
        }
        _ => anyhow::bail!("usage: transport_ceiling --config FRONTEND.toml"),
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?
        .block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("cannot create {}", config.state_dir.display()))?;
    let tls = kms_frontend::tls::load(&config).context("cannot set up TLS")?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr()?)
        .await
        .context("cannot listen")?;
    let port = listener.local_addr()?.port();
    let mut ready = format!("READY https://127.0.0.1:{port}");
    if let Some(ca) = &tls.dev_ca {
        ready.push_str(&format!(" ca={}", ca.display()));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{ready}")?;
    out.flush()?;
    drop(out);

    // Served as the frontend's `server::serve` serves its connections.
    let builder = Arc::new(server::connection_builder(
        server::ServerSettings::default().header_read_timeout,
    ));
    let acceptor = TlsAcceptor::from(tls.config);
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (acceptor, builder) = (acceptor.clone(), Arc::clone(&builder));
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = builder
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let create_key = request
        .headers()
        .get("x-amz-target")
        .is_some_and(|t| t.as_bytes().ends_with(b".CreateKey"));
    // Read the body, as the frontend must before it can answer.
    let _body = request.into_body().collect().await?.to_bytes();
    let reply = if create_key { CREATE_KEY_REPLY } else { REPLY };
    let mut response = Response::new(Full::new(Bytes::from_static(reply)));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    Ok(response)
}
