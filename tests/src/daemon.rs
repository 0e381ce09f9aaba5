//! A minimal synchronous client of hsm-daemon's socket, for tests that ask
//! the daemon directly what it holds (the test runs as a uid it allows).

use protocol::{
    ClientHello, Request, RequestFrame, Response, ResponseFrame, ServerHello, decode_body,
    encode_frame,
};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

fn read_frame(s: &mut UnixStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("frame length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("frame body");
    body
}

/// Sends one request on a fresh connection and returns the daemon's reply.
pub fn call(socket: &Path, request: Request) -> Result<Response, protocol::WireError> {
    let mut s = UnixStream::connect(socket).expect("connect to hsm-daemon");
    s.write_all(&encode_frame(&ClientHello::current()).expect("hello"))
        .expect("send hello");
    let _: ServerHello = decode_body(&read_frame(&mut s)).expect("server hello");
    let frame = RequestFrame {
        id: 1,
        request_id: [0; 16],
        request,
    };
    s.write_all(&encode_frame(&frame).expect("encode"))
        .expect("send");
    let reply: ResponseFrame = decode_body(&read_frame(&mut s)).expect("decode reply");
    reply.result
}

/// The versions of `key_id` the daemon holds unwrapped right now.
pub fn cached_versions(socket: &Path, key_id: &str) -> Vec<u32> {
    match call(
        socket,
        Request::CachedVersions {
            key_id: key_id.to_owned(),
        },
    ) {
        Ok(Response::CachedVersions { versions }) => versions,
        other => panic!("CachedVersions: unexpected {other:?}"),
    }
}
