//! One `kmsctl bench` connection: connects (TCP, then TLS with ALPN
//! `http/1.1` for `https://`; TLS sessions are resumed on reconnect), then
//! sends the run's calls in turn, one in flight, each signed with SigV4 for
//! the second it is sent in (`request`), timing send-to-last-byte of the
//! reply. A transport failure is counted as `ConnectionError` and the
//! connection is reopened after a short pause; an HTTP error is counted by
//! its AWS error type; a reply not complete within 30 s counts as `Timeout`.

use super::RunState;
use super::report::WorkerStats;
use super::request::Requests;
use crate::cli::client::{KmsClient, Reply, decode_reply};
use anyhow::Context;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Pause before reopening a failed connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// Longest wait for one reply before it counts as a `Timeout` error.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the connections go, worked out once from the endpoint URL.
pub(crate) struct Target {
    /// The `Host` header (the URL's authority).
    authority: String,
    /// `host:port` to connect to.
    addr: String,
    /// `None` for `http://`.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("authority", &self.authority)
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Target {
    pub(crate) fn new(client: &KmsClient) -> anyhow::Result<Arc<Self>> {
        let endpoint = client.endpoint();
        let uri: http::Uri = endpoint
            .parse()
            .with_context(|| format!("endpoint {endpoint:?} is not a URL"))?;
        let authority = uri
            .authority()
            .with_context(|| format!("endpoint {endpoint:?} has no host"))?
            .clone();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => anyhow::bail!("endpoint {endpoint:?} must start with https:// or http://"),
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tls = if https {
            let mut config = (*client.tls_config()).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.to_owned())
                .with_context(|| format!("{host:?} is not a valid TLS server name"))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Arc::new(Self {
            authority: authority.to_string(),
            addr,
            tls,
        }))
    }

    /// The `Host` header.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    async fn connect(&self) -> anyhow::Result<(SendRequest<Full<Bytes>>, Driver)> {
        let tcp = TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .context("TLS handshake")?;
                handshake(tls).await
            }
            None => handshake(tcp).await,
        }
    }
}

/// The future that drives one HTTP/1.1 connection; it ends when the
/// connection does. Polled by the worker's own task next to its request (no
/// task of its own: one wake-up per reply instead of two).
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

async fn handshake<IO>(io: IO) -> anyhow::Result<(SendRequest<Full<Bytes>>, Driver)>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .context("HTTP/1.1 handshake")?;
    Ok((
        sender,
        Box::pin(async move {
            let _ = conn.await;
        }),
    ))
}

/// One connection's loop and what it needs.
#[derive(Debug)]
pub(crate) struct Worker {
    pub index: usize,
    pub requests: Requests,
    pub target: Arc<Target>,
    pub state: Arc<RunState>,
}

enum Outcome {
    Ok,
    Error(String),
    /// The connection is unusable: reopen it.
    Broken,
}

impl Worker {
    pub(crate) async fn run(mut self) -> anyhow::Result<WorkerStats> {
        let mut stats = WorkerStats::new()?;
        let mut next = self.index;
        // One timer for the connection's life, moved on at each request (a
        // timer entry per request cost a registration and a cancellation).
        let deadline = tokio::time::sleep(REPLY_TIMEOUT);
        tokio::pin!(deadline);
        'connect: while !self.stopped() {
            let (mut sender, mut driver) = match self.target.connect().await {
                Ok(c) => c,
                Err(e) => {
                    if self.index == 0 {
                        eprintln!("bench: connection failed: {e:#}");
                    }
                    self.count(&mut stats, None, "ConnectionError");
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            };
            loop {
                if self.stopped() || !self.claim() {
                    break 'connect;
                }
                let i = next % self.requests.len();
                next = next.wrapping_add(1);
                let request = self.requests.request(i)?;
                let start = Instant::now();
                deadline
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(start + REPLY_TIMEOUT));
                let call = send(&mut sender, request);
                tokio::pin!(call);
                // The driver first: it reads the reply that completes the call.
                let first = tokio::select! {
                    biased;
                    () = &mut driver => None,
                    r = &mut call => Some(r),
                    () = &mut deadline => Some(timed_out()),
                };
                // Once the connection has ended the call ends at once, with the
                // reply if it came; the driver must not be polled again.
                let (outcome, ended) = match first {
                    Some(r) => (r, false),
                    None => {
                        let r = tokio::select! {
                            biased;
                            r = &mut call => r,
                            () = &mut deadline => timed_out(),
                        };
                        (r, true)
                    }
                };
                let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                let broken = matches!(outcome, Outcome::Broken);
                match outcome {
                    Outcome::Ok => self.count(&mut stats, Some(micros), ""),
                    Outcome::Error(code) => self.count(&mut stats, None, &code),
                    Outcome::Broken => self.count(&mut stats, None, "ConnectionError"),
                }
                if broken {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
                if broken || ended {
                    continue 'connect;
                }
            }
        }
        Ok(stats)
    }

    fn stopped(&self) -> bool {
        self.state.stop.load(Ordering::Acquire)
    }

    /// Takes one request from the `--requests` budget (always true without one).
    fn claim(&self) -> bool {
        match &self.state.budget {
            None => true,
            Some(b) => b
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    fn count(&self, stats: &mut WorkerStats, ok_micros: Option<u64>, error: &str) {
        self.state.done.fetch_add(1, Ordering::Relaxed);
        if ok_micros.is_none() {
            self.state.errors.fetch_add(1, Ordering::Relaxed);
        }
        if self.state.recording.load(Ordering::Acquire) {
            match ok_micros {
                Some(us) => stats.ok(us),
                None => stats.error(error),
            }
        }
    }
}

fn timed_out() -> Outcome {
    Outcome::Error("Timeout".to_owned())
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, request: Request<Full<Bytes>>) -> Outcome {
    if sender.ready().await.is_err() {
        return Outcome::Broken;
    }
    let response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(_) => return Outcome::Broken,
    };
    let status = response.status();
    let mut body = response.into_body();
    if status.is_success() {
        // Read to the end, not kept.
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                return Outcome::Broken;
            }
        }
        return Outcome::Ok;
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Outcome::Broken,
    };
    match decode_reply(Reply { status, body }) {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Error(e.code),
    }
}
