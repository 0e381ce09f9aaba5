//! Length-prefixed postcard frames.
//!
//! A frame is a big-endian `u32` body length followed by a postcard body.
//! Lengths above [`MAX_FRAME_LEN`] are refused as soon as the four length
//! bytes arrive, before any buffer of that size is reserved. A body must
//! decode to exactly one message: trailing bytes are an error, because
//! postcard itself would ignore them.
//!
//! [`FrameCodec`] adapts this to `tokio_util::codec` for any pair of
//! outgoing/incoming message types, so the daemon (`Encoder<ResponseFrame>`,
//! `Decoder<Item = RequestFrame>`) and the frontend (the reverse) share it.

use bytes::{Buf, BufMut, BytesMut};
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use tokio_util::codec::{Decoder, Encoder};

/// Largest frame body accepted or sent: 64 KiB, well above the largest
/// legitimate message (a ReEncrypt of a 4 KiB plaintext with two tokens).
pub const MAX_FRAME_LEN: usize = 64 * 1024;

const LEN_PREFIX: usize = 4;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the maximum of {MAX_FRAME_LEN}")]
    TooLarge(usize),
    #[error("frame body is not a valid message")]
    Malformed,
    #[error("frame body has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `msg` as one frame (length prefix included).
///
/// # Errors
/// [`FrameError::TooLarge`] if the body would exceed [`MAX_FRAME_LEN`],
/// [`FrameError::Malformed`] if serialization fails.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = BytesMut::new();
    write_frame(msg, &mut out)?;
    Ok(out.to_vec())
}

/// Decodes one frame body (without its length prefix) into a message.
///
/// # Errors
/// [`FrameError::TooLarge`], [`FrameError::Malformed`] or
/// [`FrameError::TrailingBytes`]. Never panics, whatever the input.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(body.len()));
    }
    let (msg, rest) = postcard::take_from_bytes(body).map_err(|_| FrameError::Malformed)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(msg)
}

fn write_frame<T: Serialize>(msg: &T, dst: &mut BytesMut) -> Result<(), FrameError> {
    // Size first, then reserve exactly: the buffer never grows while a secret
    // is being written into it, so no stale copy is left in a freed block.
    let len = postcard::experimental::serialized_size(msg).map_err(|_| FrameError::Malformed)?;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge(len))?;
    dst.reserve(LEN_PREFIX + len);
    dst.put_u32(len32);
    postcard::to_io(msg, (&mut *dst).writer()).map_err(|_| FrameError::Malformed)?;
    Ok(())
}

/// A `tokio_util` codec that writes `Out` frames and reads `In` frames.
#[derive(Debug)]
pub struct FrameCodec<Out, In> {
    _types: PhantomData<fn(Out) -> In>,
}

impl<Out, In> FrameCodec<Out, In> {
    pub fn new() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<Out, In> Default for FrameCodec<Out, In> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Out: Serialize, In> Encoder<Out> for FrameCodec<Out, In> {
    type Error = FrameError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), FrameError> {
        write_frame(&item, dst)
    }
}

impl<Out, In: DeserializeOwned> Decoder for FrameCodec<Out, In> {
    type Item = In;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, FrameError> {
        let Some(prefix) = src.first_chunk::<LEN_PREFIX>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge(len));
        }
        if src.len() < LEN_PREFIX + len {
            src.reserve(LEN_PREFIX + len - src.len());
            return Ok(None);
        }
        src.advance(LEN_PREFIX);
        let body = src.split_to(len);
        decode_body(&body).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::*;
    use proptest::prelude::*;

    fn sample() -> RequestFrame {
        RequestFrame {
            id: 42,
            request_id: [0; 16],
            request: Request::Encrypt {
                key: KeyRef {
                    key_id: "k".into(),
                    version: 1,
                    token: KeyToken(vec![1, 2, 3]),
                },
                plaintext: SecretBytes::new(b"hello".to_vec()),
                context: vec![("a".into(), "b".into())],
            },
        }
    }

    #[test]
    fn round_trips_through_codec() {
        let mut codec = FrameCodec::<RequestFrame, RequestFrame>::new();
        let mut buf = BytesMut::new();
        codec.encode(sample(), &mut buf).expect("encodes");
        codec
            .encode(
                RequestFrame {
                    id: 43,
                    request_id: [0; 16],
                    request: Request::Status,
                },
                &mut buf,
            )
            .expect("encodes");
        let first = codec.decode(&mut buf).expect("ok").expect("complete");
        assert_eq!(first.id, 42);
        let second = codec.decode(&mut buf).expect("ok").expect("complete");
        assert_eq!(second.id, 43);
        assert!(codec.decode(&mut buf).expect("ok").is_none());
    }

    #[test]
    fn partial_frame_waits() {
        let bytes = encode_frame(&sample()).expect("encodes");
        let mut codec = FrameCodec::<RequestFrame, RequestFrame>::new();
        let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
        assert!(codec.decode(&mut buf).expect("ok").is_none());
        buf.extend_from_slice(&bytes[bytes.len() - 1..]);
        assert!(codec.decode(&mut buf).expect("ok").is_some());
    }

    #[test]
    fn refuses_oversized_length_before_allocating() {
        let mut codec = FrameCodec::<RequestFrame, RequestFrame>::new();
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge(_))
        ));
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn refuses_trailing_bytes() {
        let mut bytes = encode_frame(&RequestFrame {
            id: 1,
            request_id: [0; 16],
            request: Request::Status,
        })
        .expect("ok");
        bytes.push(0);
        let len = (bytes.len() - 4) as u32;
        bytes[..4].copy_from_slice(&len.to_be_bytes());
        let mut codec = FrameCodec::<RequestFrame, RequestFrame>::new();
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TrailingBytes(1))
        ));
    }

    #[test]
    fn refuses_oversized_message_on_encode() {
        let frame = RequestFrame {
            id: 1,
            request_id: [0; 16],
            request: Request::Decrypt {
                key: KeyRef {
                    key_id: "k".into(),
                    version: 1,
                    token: KeyToken(vec![]),
                },
                blob: vec![0; MAX_FRAME_LEN + 1],
                context: vec![],
            },
        };
        assert!(matches!(encode_frame(&frame), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn secret_bytes_debug_is_redacted() {
        let s = SecretBytes::new(b"top secret".to_vec());
        assert!(!format!("{s:?}").contains("top"));
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_body::<RequestFrame>(&bytes);
            let _ = decode_body::<ResponseFrame>(&bytes);
            let _ = decode_body::<ClientHello>(&bytes);
            let mut codec = FrameCodec::<ResponseFrame, RequestFrame>::new();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
        }

        #[test]
        fn mutated_frames_never_panic(flip in 0usize..64, xor in 1u8..=255) {
            let mut bytes = encode_frame(&sample()).expect("encodes");
            let i = flip % bytes.len();
            bytes[i] ^= xor;
            let mut codec = FrameCodec::<ResponseFrame, RequestFrame>::new();
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = codec.decode(&mut buf);
        }
    }
}
