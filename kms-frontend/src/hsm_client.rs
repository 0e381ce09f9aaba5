//! The client of hsm-daemon: the only module that speaks `protocol`.
//!
//! A small pool of Unix-socket connections (two by default), each opened
//! with the ClientHello/ServerHello handshake and then pipelined: requests
//! carry monotonically increasing ids, a writer task batches every frame
//! queued at the moment into one write, and a reader task hands each
//! `ResponseFrame` to the caller waiting on its id, in whatever order the
//! daemon answers. When a connection is lost every request pending on it
//! fails at once with [`HsmError::Unavailable`]; the next call reconnects
//! (after a short backoff, during which calls fail immediately, so a dead
//! daemon costs no hang). Each call has its own deadline
//! ([`HsmError::Timeout`]), enforced by one sweeper per connection rather
//! than a timer per call, so a call may wait up to an eighth of the timeout
//! longer. What the requests mean is left to `service`.

use futures_util::StreamExt;
use protocol::{
    ClientHello, FrameCodec, MAX_FRAME_LEN, Request, RequestFrame, Response, ResponseFrame,
    ServerHello, WireError, decode_body, encode_frame,
};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;
use zeroize::{Zeroize, Zeroizing};

/// Why a call to hsm-daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The daemon is not reachable (not running, socket refused, connection lost).
    #[error("hsm-daemon is unavailable")]
    Unavailable,
    /// The daemon did not answer in time.
    #[error("hsm-daemon did not answer in time")]
    Timeout,
    /// The daemon answered with an error.
    #[error("hsm-daemon refused the request: {0}")]
    Wire(WireError),
    /// The daemon answered with something this client did not expect.
    #[error("unexpected reply from hsm-daemon")]
    Protocol,
}

/// Tunables of the client; [`Default`] is what production uses.
#[derive(Debug, Clone)]
pub struct HsmClientSettings {
    /// Connections kept to the daemon.
    pub pool_size: usize,
    /// How long one call waits for its reply.
    pub request_timeout: Duration,
    /// How long a call that makes an RSA key waits (seconds of CPU on the
    /// daemon's keygen thread, more on a busy machine).
    pub keygen_timeout: Duration,
    /// How long connecting plus the handshake may take.
    pub connect_timeout: Duration,
    /// After a failed connect, calls fail at once for this long.
    pub reconnect_backoff: Duration,
}

impl Default for HsmClientSettings {
    fn default() -> Self {
        Self {
            pool_size: 2,
            request_timeout: Duration::from_secs(5),
            keygen_timeout: Duration::from_secs(25),
            connect_timeout: Duration::from_secs(1),
            reconnect_backoff: Duration::from_millis(100),
        }
    }
}

tokio::task_local! {
    /// The id of the client request this task serves (a UUID's bytes);
    /// every call made inside [`with_request_id`] sends it to the daemon.
    static CURRENT_REQUEST_ID: [u8; 16];
}

/// Runs `fut` with `request_id` as the id sent along with every daemon call
/// it makes, so the daemon's logs carry the client's request id without
/// threading it through every operation.
pub async fn with_request_id<F: std::future::Future>(request_id: [u8; 16], fut: F) -> F::Output {
    CURRENT_REQUEST_ID.scope(request_id, fut).await
}

/// Frames queued to one connection's writer before senders wait.
const WRITE_QUEUE: usize = 1024;
/// The writer's batch buffer: allocated once at this size, never grown.
const BATCH_CAPACITY: usize = 4 * (MAX_FRAME_LEN + 4);
/// Largest hello reply read during the handshake.
const MAX_HELLO_LEN: usize = 64;

type Reply = Result<Response, HsmError>;
/// Waiters by request id; `None` once the connection is dead.
type Pending = Arc<Mutex<Option<HashMap<u64, Waiter>>>>;

/// A call waiting for its reply.
struct Waiter {
    reply: oneshot::Sender<Reply>,
    /// Past this the sweeper answers [`HsmError::Timeout`] for the daemon.
    deadline: Instant,
    op: &'static str,
}

/// A cheap-to-clone handle on the connection(s) to hsm-daemon.
#[derive(Clone)]
pub struct HsmClient {
    inner: Arc<Inner>,
}

struct Inner {
    socket: PathBuf,
    settings: HsmClientSettings,
    slots: Vec<tokio::sync::Mutex<Slot>>,
    next_slot: AtomicUsize,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Conn>>,
    failed_at: Option<Instant>,
}

/// One live connection: the writer's queue and the waiters.
struct Conn {
    tx: mpsc::Sender<Zeroizing<Vec<u8>>>,
    pending: Pending,
    reader: JoinHandle<()>,
}

impl Conn {
    fn is_alive(&self) -> bool {
        !self.tx.is_closed() && lock(&self.pending).is_some()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
        fail_all(&self.pending);
    }
}

impl fmt::Debug for HsmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmClient")
            .field("socket", &self.inner.socket)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl HsmClient {
    /// A client for the daemon at `socket`; connects lazily and reconnects
    /// after a failure.
    pub fn new(socket: PathBuf) -> Self {
        Self::with_settings(socket, HsmClientSettings::default())
    }

    /// A client with explicit [`HsmClientSettings`].
    pub fn with_settings(socket: PathBuf, settings: HsmClientSettings) -> Self {
        let slots = (0..settings.pool_size.max(1))
            .map(|_| tokio::sync::Mutex::new(Slot::default()))
            .collect();
        Self {
            inner: Arc::new(Inner {
                socket,
                settings,
                slots,
                next_slot: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Sends one request and waits for its reply.
    ///
    /// # Errors
    /// [`HsmError`] as documented on each variant.
    pub async fn call(&self, request: Request) -> Result<Response, HsmError> {
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let op = request.name();
        let request_id = CURRENT_REQUEST_ID.try_with(|r| *r).unwrap_or([0; 16]);
        let started = Instant::now();
        let result = self.round_trip(id, request_id, request).await;
        crate::metrics::global().hsm_round_trip(op, &result, started.elapsed());
        result
    }

    async fn round_trip(
        &self,
        id: u64,
        request_id: [u8; 16],
        request: Request,
    ) -> Result<Response, HsmError> {
        let inner = &self.inner;
        let op = request.name();
        let timeout = if request.rsa_key_spec().is_some() {
            inner.settings.keygen_timeout
        } else {
            inner.settings.request_timeout
        };
        let frame = encode_frame(&RequestFrame {
            id,
            request_id,
            request,
        })
        .map_err(|e| {
            tracing::warn!(op, error = %e, "request to hsm-daemon cannot be encoded");
            HsmError::Protocol
        })?;
        let frame = Zeroizing::new(frame);

        let conn = self.connection().await?;
        let (tx, rx) = oneshot::channel();
        let waiter = Waiter {
            reply: tx,
            deadline: Instant::now() + timeout,
            op,
        };
        match lock(&conn.pending).as_mut() {
            Some(waiters) => {
                waiters.insert(id, waiter);
            }
            None => return Err(HsmError::Unavailable),
        }
        if conn.tx.send(frame).await.is_err() {
            remove_waiter(&conn.pending, id);
            return Err(HsmError::Unavailable);
        }
        // The reader answers, or the sweeper with `Timeout`, or the
        // connection's end with `Unavailable`.
        rx.await.unwrap_or(Err(HsmError::Unavailable))
    }

    /// A live connection from the pool, connecting if needed.
    async fn connection(&self) -> Result<Arc<Conn>, HsmError> {
        let inner = &self.inner;
        let n = inner.next_slot.fetch_add(1, Ordering::Relaxed) % inner.slots.len();
        let mut slot = inner.slots[n].lock().await;
        if let Some(conn) = &slot.conn {
            if conn.is_alive() {
                return Ok(Arc::clone(conn));
            }
            slot.conn = None;
        }
        if let Some(at) = slot.failed_at
            && at.elapsed() < inner.settings.reconnect_backoff
        {
            return Err(HsmError::Unavailable);
        }
        let connected = tokio::time::timeout(
            inner.settings.connect_timeout,
            connect(&inner.socket, inner.settings.request_timeout),
        )
        .await;
        match connected {
            Ok(Ok(conn)) => {
                let conn = Arc::new(conn);
                slot.conn = Some(Arc::clone(&conn));
                slot.failed_at = None;
                tracing::debug!(socket = %inner.socket.display(), "connected to hsm-daemon");
                Ok(conn)
            }
            Ok(Err(e)) => {
                slot.failed_at = Some(Instant::now());
                tracing::warn!(socket = %inner.socket.display(), error = %e, "cannot connect to hsm-daemon");
                Err(HsmError::Unavailable)
            }
            Err(_) => {
                slot.failed_at = Some(Instant::now());
                tracing::warn!(socket = %inner.socket.display(), "connecting to hsm-daemon timed out");
                Err(HsmError::Unavailable)
            }
        }
    }
}

/// Why connecting failed; logged, never shown to clients.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("handshake reply is malformed")]
    BadHello,
    #[error("daemon refused the handshake: {0}")]
    Refused(WireError),
}

async fn connect(socket: &std::path::Path, timeout: Duration) -> Result<Conn, ConnectError> {
    let mut stream = UnixStream::connect(socket).await?;
    let hello = encode_frame(&ClientHello::current()).map_err(|_| ConnectError::BadHello)?;
    stream.write_all(&hello).await?;
    stream.flush().await?;
    let len = stream.read_u32().await? as usize;
    if len > MAX_HELLO_LEN {
        return Err(ConnectError::BadHello);
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    check_server_hello(&body)?;

    let (read, write) = stream.into_split();
    let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    tokio::spawn(writer(write, rx, Arc::clone(&pending)));
    let reader = tokio::spawn(reader(read, Arc::clone(&pending)));
    tokio::spawn(sweeper(Arc::clone(&pending), timeout));
    Ok(Conn {
        tx,
        pending,
        reader,
    })
}

/// Accepts a `ServerHello` of our version. The refusal may come as a bare
/// `WireError` or as `Result<ServerHello, WireError>`; both are understood.
fn check_server_hello(body: &[u8]) -> Result<(), ConnectError> {
    let hello = if let Ok(h) = decode_body::<ServerHello>(body) {
        h
    } else if let Ok(r) = decode_body::<Result<ServerHello, WireError>>(body) {
        r.map_err(ConnectError::Refused)?
    } else if let Ok(e) = decode_body::<WireError>(body) {
        return Err(ConnectError::Refused(e));
    } else {
        return Err(ConnectError::BadHello);
    };
    if hello != ServerHello::current() {
        return Err(ConnectError::BadHello);
    }
    Ok(())
}

/// Writes every queued frame, batched into one write per wake-up.
async fn writer(
    mut write: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Zeroizing<Vec<u8>>>,
    pending: Pending,
) {
    let mut batch = Zeroizing::new(Vec::with_capacity(BATCH_CAPACITY));
    while let Some(first) = rx.recv().await {
        batch.extend_from_slice(&first);
        drop(first);
        // Let other callers queue their frames before the write.
        tokio::task::yield_now().await;
        let mut ok = true;
        while let Ok(frame) = rx.try_recv() {
            if batch.len() + frame.len() > BATCH_CAPACITY {
                ok = write_batch(&mut write, &mut batch).await;
                if !ok {
                    break;
                }
            }
            batch.extend_from_slice(&frame);
        }
        if ok {
            ok = write_batch(&mut write, &mut batch).await;
        }
        if !ok {
            fail_all(&pending);
            rx.close();
            return;
        }
    }
}

async fn write_batch(write: &mut OwnedWriteHalf, batch: &mut Zeroizing<Vec<u8>>) -> bool {
    let result = async {
        write.write_all(batch).await?;
        write.flush().await
    }
    .await;
    batch.as_mut_slice().zeroize();
    batch.clear();
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "writing to hsm-daemon failed");
            false
        }
    }
}

/// Routes each reply to its waiter; on EOF or a bad frame fails them all.
async fn reader(read: OwnedReadHalf, pending: Pending) {
    let mut frames = FramedRead::new(read, FrameCodec::<RequestFrame, ResponseFrame>::new());
    loop {
        match frames.next().await {
            Some(Ok(ResponseFrame { id, result })) => {
                let waiter = lock(&pending).as_mut().and_then(|w| w.remove(&id));
                match waiter {
                    Some(w) => {
                        let _ = w.reply.send(result.map_err(HsmError::Wire));
                    }
                    None => tracing::debug!(id, "reply for a request no longer waiting"),
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "bad frame from hsm-daemon; dropping the connection");
                break;
            }
            None => {
                tracing::warn!("hsm-daemon closed the connection");
                break;
            }
        }
    }
    fail_all(&pending);
}

/// Answers `Timeout` for every call past its deadline, a few times per
/// timeout, until the connection is dead.
async fn sweeper(pending: Pending, timeout: Duration) {
    let mut tick = tokio::time::interval((timeout / 8).max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let expired: Vec<(u64, Waiter)> = {
            let mut guard = lock(&pending);
            let Some(waiters) = guard.as_mut() else {
                return;
            };
            let ids: Vec<u64> = waiters
                .iter()
                .filter(|(_, w)| w.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| waiters.remove(&id).map(|w| (id, w)))
                .collect()
        };
        for (id, w) in expired {
            tracing::warn!(op = w.op, id, "hsm-daemon did not answer in time");
            let _ = w.reply.send(Err(HsmError::Timeout));
        }
    }
}

/// Marks the connection dead and fails every waiter with `Unavailable`.
fn fail_all(pending: &Pending) {
    let waiters = lock(pending).take();
    for (_, w) in waiters.into_iter().flatten() {
        let _ = w.reply.send(Err(HsmError::Unavailable));
    }
}

fn remove_waiter(pending: &Pending, id: u64) {
    if let Some(w) = lock(pending).as_mut() {
        w.remove(&id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
