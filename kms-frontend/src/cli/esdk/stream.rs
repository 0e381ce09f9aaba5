//! The framed message body, streamed with memory bounded by two frames:
//! [`encrypt`] writes header, header tag and frames; [`decrypt_body`]
//! checks the key commitment and the header tag, then opens frame after
//! frame, writing only authenticated plaintext. The caller must not treat
//! the output as valid until `decrypt_body` returns `Ok` (the final frame
//! and the end of input are checked last: truncation is only known there).
//!
//! Frame `n` (from 1) uses IV = 8 zero bytes || n (u32 BE) and AAD =
//! message id || "AWSKMSEncryptionClient Frame" (or "... Final Frame") ||
//! n (u32 BE) || plaintext length (u64 BE). The final frame is marked by a
//! 0xFFFFFFFF prefix and carries its length; it holds the last 0 (empty
//! message) to frame-length bytes.

use super::header::{Header, read_exact};
use super::keys::{check_commitment, derive_encryption_key};
use super::*;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use std::io::{Read, Write};

const FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Frame";
const FINAL_FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Final Frame";
const FINAL_MARK: u32 = u32::MAX;

fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey, FormatError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| FormatError::Body("cannot set up AES-256-GCM".to_owned()))
}

fn frame_iv(seq: u32) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    iv[8..].copy_from_slice(&seq.to_be_bytes());
    iv
}

fn frame_aad(out: &mut Vec<u8>, message_id: &[u8], final_frame: bool, seq: u32, len: usize) {
    out.clear();
    out.extend_from_slice(message_id);
    out.extend_from_slice(if final_frame {
        FINAL_FRAME_AAD
    } else {
        FRAME_AAD
    });
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(len as u64).to_be_bytes());
}

/// Reads until `buf` is full or input ends; returns the bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes the whole message for `header` (whose commitment must be that of
/// `data_key`) with the plaintext read from `input`. `progress` is called
/// with the plaintext bytes done so far. Returns the plaintext length.
pub fn encrypt(
    input: &mut impl Read,
    output: &mut impl Write,
    header: &Header,
    data_key: &[u8; 32],
    progress: &mut dyn FnMut(u64),
) -> Result<u64, FormatError> {
    let key = aead_key(&derive_encryption_key(data_key, &header.message_id))?;
    let header_bytes = header.serialize()?;
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0u8; IV_LEN]),
            Aad::from(&header_bytes[..]),
            &mut [],
        )
        .map_err(|_| FormatError::Body("sealing the header".to_owned()))?;
    output.write_all(&header_bytes)?;
    output.write_all(tag.as_ref())?;

    let frame_len = header.frame_len as usize;
    let mut cur = vec![0u8; frame_len];
    let mut next = vec![0u8; frame_len];
    let mut aad = Vec::with_capacity(MESSAGE_ID_LEN + FINAL_FRAME_AAD.len() + 12);
    let mut cur_len = fill(input, &mut cur)?;
    let mut seq: u32 = 1;
    let mut done: u64 = 0;
    loop {
        // A full frame followed by more input is a regular frame; whatever
        // is last (possibly empty, for an empty message) is the final frame.
        let next_len = if cur_len == frame_len {
            fill(input, &mut next)?
        } else {
            0
        };
        let final_frame = next_len == 0;
        let iv = frame_iv(seq);
        frame_aad(&mut aad, &header.message_id, final_frame, seq, cur_len);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&aad[..]),
                &mut cur[..cur_len],
            )
            .map_err(|_| FormatError::Body("sealing a frame".to_owned()))?;
        if final_frame {
            output.write_all(&FINAL_MARK.to_be_bytes())?;
            output.write_all(&seq.to_be_bytes())?;
            output.write_all(&iv)?;
            output.write_all(&(cur_len as u32).to_be_bytes())?;
        } else {
            output.write_all(&seq.to_be_bytes())?;
            output.write_all(&iv)?;
        }
        output.write_all(&cur[..cur_len])?;
        output.write_all(tag.as_ref())?;
        done += cur_len as u64;
        progress(done);
        if final_frame {
            return Ok(done);
        }
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
        seq = seq
            .checked_add(1)
            .filter(|s| *s != FINAL_MARK)
            .ok_or(FormatError::TooManyFrames)?;
    }
}

/// Decrypts the body following a header read with [`Header::read`]:
/// checks the commitment of `data_key`, the header tag, then every frame,
/// and that nothing follows the final frame. Returns the plaintext length.
pub fn decrypt_body(
    input: &mut impl Read,
    output: &mut impl Write,
    header: &Header,
    header_raw: &[u8],
    header_tag: &[u8; TAG_LEN],
    data_key: &[u8; 32],
    progress: &mut dyn FnMut(u64),
) -> Result<u64, FormatError> {
    check_commitment(data_key, &header.message_id, &header.commitment)?;
    let key = aead_key(&derive_encryption_key(data_key, &header.message_id))?;
    let mut tag = *header_tag;
    key.open_in_place(
        Nonce::assume_unique_for_key([0u8; IV_LEN]),
        Aad::from(header_raw),
        &mut tag,
    )
    .map_err(|_| FormatError::HeaderAuth)?;

    let frame_len = header.frame_len as usize;
    let mut buf = vec![0u8; frame_len + TAG_LEN];
    let mut aad = Vec::with_capacity(MESSAGE_ID_LEN + FINAL_FRAME_AAD.len() + 12);
    let mut expected: u32 = 1;
    let mut done: u64 = 0;
    loop {
        let mut word = [0u8; 4];
        body_read(input, &mut word, "it ends before its final frame")?;
        let first = u32::from_be_bytes(word);
        let final_frame = first == FINAL_MARK;
        let seq = if final_frame {
            body_read(input, &mut word, "it ends inside the final frame")?;
            u32::from_be_bytes(word)
        } else {
            first
        };
        if seq != expected {
            return Err(FormatError::Body(format!(
                "frame {seq} found where frame {expected} was expected"
            )));
        }
        let mut iv = [0u8; IV_LEN];
        body_read(input, &mut iv, "it ends inside a frame")?;
        let len = if final_frame {
            body_read(input, &mut word, "it ends inside the final frame")?;
            let len = u32::from_be_bytes(word) as usize;
            if len > frame_len {
                return Err(FormatError::Body(format!(
                    "final frame of {len} bytes is longer than the frame length {frame_len}"
                )));
            }
            len
        } else {
            frame_len
        };
        let chunk = &mut buf[..len + TAG_LEN];
        body_read(input, chunk, "it ends inside a frame")?;
        frame_aad(&mut aad, &header.message_id, final_frame, seq, len);
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(&aad[..]), chunk)
            .map_err(|_| FormatError::FrameAuth(seq))?;
        output.write_all(plain)?;
        done += len as u64;
        progress(done);
        if final_frame {
            let mut probe = [0u8; 1];
            return match fill(input, &mut probe)? {
                0 => Ok(done),
                _ => Err(FormatError::TrailingData),
            };
        }
        expected = expected
            .checked_add(1)
            .filter(|s| *s != FINAL_MARK)
            .ok_or(FormatError::TooManyFrames)?;
    }
}

fn body_read(r: &mut impl Read, buf: &mut [u8], what: &'static str) -> Result<(), FormatError> {
    match read_exact(r, buf) {
        Err(FormatError::Truncated(_)) => Err(FormatError::Truncated(what)),
        other => other,
    }
}
