//! The daemon's and the frontend's frame decoder on arbitrary bytes, fed in
//! arbitrary chunks: it must never panic, never return a frame longer than
//! MAX_FRAME_LEN, and never buffer more than one frame's worth.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocol::{FrameCodec, MAX_FRAME_LEN, RequestFrame, ResponseFrame};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data.split_first() {
        Some((&s, rest)) => (usize::from(s).max(1), rest),
        None => return,
    };
    // As the daemon decodes requests...
    let mut codec = FrameCodec::<ResponseFrame, RequestFrame>::new();
    let mut buf = BytesMut::new();
    for chunk in rest.chunks(split) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_frame)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(buf.len() <= MAX_FRAME_LEN + 4 + chunk.len());
    }
    // ... and as the frontend decodes replies.
    let mut codec = FrameCodec::<RequestFrame, ResponseFrame>::new();
    let mut buf = BytesMut::from(rest);
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
});
