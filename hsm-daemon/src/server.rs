//! The Unix socket: binding, peer checks, the handshake and pipelined
//! connections, and graceful shutdown.
//!
//! The socket file is created under umask 0o077 and then set to 0600 (or 0660
//! and chgrp'd with `--socket-group`). Every accepted connection is checked
//! with `SO_PEERCRED` against the allowed uids; a refused peer is logged and
//! dropped. A connection opens with [`ClientHello`] -> [`ServerHello`]; after
//! that request frames are read in batches: every frame readable at once (up
//! to [`MAX_BATCH`]) is served by `handlers`, synchronously, since this runs
//! on the keystore's thread; then the stack is scrubbed, and only then are
//! the replies written and flushed, before reading goes on (so a peer that
//! does not read its replies stops being read: the backpressure). A request
//! that makes an RSA key is the exception: a task of its own waits for the
//! `keygen` thread and then serves it, and its reply is written when it
//! comes (other requests go on meanwhile). A malformed or oversized frame
//! gets a reply with id 0 and closes that connection only, after the
//! replies before it. On shutdown no new connection is accepted and each
//! connection stops reading, writes the replies it owes and closes, within
//! [`SHUTDOWN_GRACE`].

use crate::config::ServeConfig;
use crate::error::{DaemonError, StartupError, unsupported_version};
use crate::handlers;
use crate::keygen::Keygen;
use crate::keystore::KeystoreHandle;
use futures_util::{FutureExt, SinkExt, StreamExt};
use protocol::{
    ClientHello, FrameCodec, FrameError, KeySpec, PROTOCOL_VERSION, RequestFrame, ResponseFrame,
    SecretBytes, ServerHello, WireError, encode_frame,
};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{Instrument, debug, debug_span, info, info_span, warn};
use uuid::Uuid;

/// Requests served from one connection before their replies are written
/// (and reading waits for the writing: the backpressure).
const MAX_BATCH: usize = 256;
/// How long shutdown waits for connections to finish their requests.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a new connection has to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

type Writer = FramedWrite<OwnedWriteHalf, FrameCodec<ResponseFrame, RequestFrame>>;

/// Binds the socket, replacing a stale socket file (never another kind of
/// file, nor a socket someone is still listening on), and sets its mode and
/// group.
///
/// # Errors
/// [`StartupError`] when the path is taken by something else or a syscall fails.
pub(crate) fn bind(cfg: &ServeConfig) -> Result<UnixListener, StartupError> {
    let path = cfg.socket.as_path();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(StartupError::WrongKind {
                    path: path.to_owned(),
                    what: "another process is listening on this socket; refusing to take it over",
                });
            }
            std::fs::remove_file(path).map_err(|e| StartupError::io(path, e))?;
            info!(path = %path.display(), "removed stale socket file");
        }
        Ok(_) => {
            return Err(StartupError::WrongKind {
                path: path.to_owned(),
                what: "exists and is not a socket; refusing to replace it",
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StartupError::io(path, e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| StartupError::io(path, e))?;
    let mode = match cfg.socket_group {
        Some(gid) => {
            // Under systemd the daemon's primary group already is the socket
            // group and chown is filtered out: only change what differs.
            let current = std::fs::metadata(path)
                .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
                .map_err(|e| StartupError::io(path, e))?;
            if current != gid.as_raw() {
                nix::unistd::chown(path, None, Some(gid))
                    .map_err(|e| StartupError::io(path, e.into()))?;
            }
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| StartupError::io(path, e))?;
    Ok(listener)
}

/// Removes the socket file at shutdown (only if it is still a socket).
pub(crate) fn remove_socket(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
        && let Err(e) = std::fs::remove_file(path)
    {
        warn!(path = %path.display(), error = %e, "could not remove socket file");
    }
}

/// Accepts connections until `shutdown` turns true, then drains them.
pub(crate) async fn serve(
    listener: UnixListener,
    allow_uids: Vec<u32>,
    keystore: KeystoreHandle,
    keygen: Keygen,
    mut shutdown: watch::Receiver<bool>,
) {
    let allow: Arc<[u32]> = allow_uids.into();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if let Some(span) = admit(&stream, &allow) {
                        let conn = connection(
                            stream,
                            keystore.clone(),
                            keygen.clone(),
                            shutdown.clone(),
                        );
                        conns.spawn_local(conn.instrument(span));
                    }
                }
                Err(e) => {
                    // e.g. EMFILE: do not spin; the backlog keeps the peer waiting.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    drop(keystore);
    info!(
        connections = conns.len(),
        "shutting down: draining connections"
    );
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            connections = conns.len(),
            "connections still busy after the grace period; closing them"
        );
        conns.shutdown().await;
    }
}

/// Checks the peer's uid; returns the connection's log span if allowed.
fn admit(stream: &UnixStream, allow: &[u32]) -> Option<tracing::Span> {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "no peer credentials; dropping connection");
            return None;
        }
    };
    let pid = cred.pid().unwrap_or(0);
    if !allow.contains(&cred.uid()) {
        warn!(
            uid = cred.uid(),
            pid, "refused connection from a uid that is not allowed"
        );
        return None;
    }
    debug!(uid = cred.uid(), pid, "connection accepted");
    Some(info_span!("conn", uid = cred.uid(), pid))
}

/// The reply frame for a frame that could not be read.
fn frame_error(e: &FrameError) -> Option<WireError> {
    match e {
        FrameError::TooLarge(_) => Some(WireError::FrameTooLarge),
        FrameError::Malformed | FrameError::TrailingBytes(_) => Some(WireError::MalformedFrame),
        FrameError::Io(_) => None,
    }
}

async fn send_error(writer: &mut Writer, error: WireError) {
    let frame = ResponseFrame {
        id: 0,
        result: Err(error),
    };
    let _ = writer.send(frame).await;
}

/// Runs one connection to the end.
async fn connection(
    stream: UnixStream,
    keystore: KeystoreHandle,
    keygen: Keygen,
    mut shutdown: watch::Receiver<bool>,
) {
    let (rd, mut wr) = stream.into_split();
    let mut hello_reader = FramedRead::new(rd, FrameCodec::<ResponseFrame, ClientHello>::new());
    let first = tokio::select! {
        first = tokio::time::timeout(HELLO_TIMEOUT, hello_reader.next()) => first,
        _ = shutdown.changed() => return,
    };
    let hello = match first {
        Ok(Some(Ok(hello))) => hello,
        Ok(Some(Err(e))) => {
            warn!(error = %e, "bad hello frame; closing");
            if let Some(err) = frame_error(&e) {
                send_error(&mut FramedWrite::new(wr, FrameCodec::new()), err).await;
            }
            return;
        }
        Ok(None) => return,
        Err(_) => {
            info!("no hello in time; closing");
            return;
        }
    };
    if hello.magic != ClientHello::MAGIC || hello.version != PROTOCOL_VERSION {
        warn!(version = hello.version, "unsupported client hello; closing");
        let err = if hello.magic == ClientHello::MAGIC {
            unsupported_version()
        } else {
            WireError::MalformedFrame
        };
        send_error(&mut FramedWrite::new(wr, FrameCodec::new()), err).await;
        return;
    }
    let Ok(server_hello) = encode_frame(&ServerHello::current()) else {
        return;
    };
    if wr.write_all(&server_hello).await.is_err() {
        return;
    }
    // Keeps whatever the client already pipelined behind its hello.
    let mut reader = hello_reader.map_decoder(|_| FrameCodec::<ResponseFrame, RequestFrame>::new());
    let mut writer: Writer = FramedWrite::new(wr, FrameCodec::new());
    let mut replies = Vec::new();
    // Replies of requests that waited for an RSA key (see `keygen`).
    let (generated_tx, mut generated) = mpsc::unbounded_channel();
    let mut generating = 0usize;
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.changed() => None,
            Some(reply) = generated.recv() => {
                generating -= 1;
                replies.push(reply);
                if !write_replies(&mut writer, &mut replies).await || writer.flush().await.is_err() {
                    debug!("peer stopped reading; closing");
                    return;
                }
                continue;
            }
            frame = reader.next() => frame,
        };
        // Serve this frame and every one already readable, up to MAX_BATCH,
        // without awaiting; then scrub once and write the replies. A request
        // for an RSA key is served by a task of its own once the keygen
        // thread has made the key.
        let mut next = first;
        let end = loop {
            match next {
                Some(Ok(frame)) => match frame.request.rsa_key_spec() {
                    Some(spec) => {
                        generating += 1;
                        tokio::task::spawn_local(serve_with_key(
                            keystore.clone(),
                            keygen.clone(),
                            spec,
                            frame,
                            generated_tx.clone(),
                        ));
                    }
                    None => replies.push(serve_frame(&keystore, frame, None)),
                },
                Some(Err(e)) => break Some(Err(e)),
                None => break Some(Ok(())),
            }
            if replies.len() >= MAX_BATCH {
                break None;
            }
            match reader.next().now_or_never() {
                Some(frame) => next = frame,
                None => break None,
            }
        };
        keystore.scrub_stack();
        if !write_replies(&mut writer, &mut replies).await {
            debug!("peer stopped reading; closing");
            return;
        }
        if end.is_some() {
            // Finish what was asked before the end: the keys being made.
            while generating > 0 {
                let Some(reply) = generated.recv().await else {
                    break;
                };
                generating -= 1;
                replies.push(reply);
                if !write_replies(&mut writer, &mut replies).await {
                    return;
                }
            }
        }
        match end {
            None => {
                if writer.flush().await.is_err() {
                    debug!("peer stopped reading; closing");
                    return;
                }
            }
            Some(Ok(())) => {
                let _ = writer.flush().await;
                debug!("connection finished");
                return;
            }
            Some(Err(e)) => {
                match frame_error(&e) {
                    Some(err) => {
                        warn!(error = %e, "bad frame; closing this connection");
                        send_error(&mut writer, err).await;
                    }
                    None => {
                        debug!(error = %e, "read failed; closing");
                        let _ = writer.flush().await;
                    }
                }
                return;
            }
        }
    }
}

/// Serves a request for an RSA key: waits for the keygen thread, then
/// serves the frame with the key and scrubs, and hands the reply to the
/// connection.
async fn serve_with_key(
    keystore: KeystoreHandle,
    keygen: Keygen,
    spec: KeySpec,
    frame: RequestFrame,
    done: mpsc::UnboundedSender<(Uuid, ResponseFrame)>,
) {
    let generated = keygen.generate(spec).await;
    let reply = serve_frame(&keystore, frame, Some(generated));
    keystore.scrub_stack();
    let _ = done.send(reply);
}

/// Queues every reply of `replies`, emptying it; false when the connection
/// is broken.
async fn write_replies(writer: &mut Writer, replies: &mut Vec<(Uuid, ResponseFrame)>) -> bool {
    for (request_id, reply) in replies.drain(..) {
        if !write_reply(writer, request_id, reply).await {
            return false;
        }
    }
    true
}

/// Serves one request frame on this (the keystore's) thread.
fn serve_frame(
    keystore: &KeystoreHandle,
    frame: RequestFrame,
    generated: Option<Result<SecretBytes, DaemonError>>,
) -> (Uuid, ResponseFrame) {
    let RequestFrame {
        id,
        request_id,
        request,
    } = frame;
    // The frontend's request id, so both processes' logs name one request
    // alike; all zero for the frontend's own calls (health, audit digests).
    // Every info/warn/error event about a request carries it as a field; the
    // span adds it to whatever else is logged at debug and trace. Disabled,
    // the span costs a level check; at info it was about 15% of this thread's
    // CPU under load (formatting the id, registering and closing the span).
    let request_id = Uuid::from_bytes(request_id);
    let span = debug_span!("request", %request_id);
    let _entered = span.enter();
    let result = handlers::handle(keystore, id, request_id, request, generated);
    (request_id, ResponseFrame { id, result })
}

/// Queues one reply; false when the connection is broken.
async fn write_reply(writer: &mut Writer, request_id: Uuid, frame: ResponseFrame) -> bool {
    let id = frame.id;
    match writer.feed(frame).await {
        Ok(()) => true,
        // Nothing was written for an unencodable reply: answer Internal.
        Err(FrameError::TooLarge(_) | FrameError::Malformed) => {
            warn!(id, %request_id, "reply could not be encoded");
            let fallback = ResponseFrame {
                id,
                result: Err(WireError::Internal),
            };
            writer.feed(fallback).await.is_ok()
        }
        Err(_) => false,
    }
}
