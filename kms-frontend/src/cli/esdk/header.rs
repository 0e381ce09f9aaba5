//! The version-2 message header: serialization for encrypt, and a parser
//! that reads it field by field from a stream, keeping the exact bytes read
//! (the header authentication tag covers them). Layout (big-endian):
//!
//! ```text
//! version(1)=02 | suite(2) | message id(32) | AAD length(2) |
//!   [pair count(2) | (key len(2) key value len(2) value)*]   (absent when empty)
//! EDK count(2) | (provider id len(2) id | info len(2) info | edk len(2) edk)*
//! content type(1)=02 | frame length(4) | commitment key(32) | auth tag(16)
//! ```
//!
//! The encryption context is serialized sorted by key bytes; duplicate keys
//! and non-UTF-8 strings are refused when parsing.

use super::*;
use std::collections::BTreeMap;
use std::io::Read;

/// An encrypted data key entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedDataKey {
    pub provider_id: String,
    pub provider_info: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// A parsed or to-be-written header (without its authentication tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub suite: u16,
    pub message_id: [u8; MESSAGE_ID_LEN],
    pub context: BTreeMap<String, String>,
    pub edks: Vec<EncryptedDataKey>,
    pub frame_len: u32,
    pub commitment: [u8; 32],
}

/// The serialized encryption context (count and pairs), empty for an empty
/// context. Also the AAD of the `--format json` envelope.
pub fn serialize_context(context: &BTreeMap<String, String>) -> Result<Vec<u8>, FormatError> {
    if context.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    put_u16(&mut out, context.len())?;
    // BTreeMap<String, _> iterates in byte order of the UTF-8 keys.
    for (k, v) in context {
        put_field(&mut out, k.as_bytes())?;
        put_field(&mut out, v.as_bytes())?;
    }
    if out.len() > usize::from(u16::MAX) {
        return Err(FormatError::ContextTooLarge);
    }
    Ok(out)
}

fn put_u16(out: &mut Vec<u8>, n: usize) -> Result<(), FormatError> {
    let n = u16::try_from(n).map_err(|_| FormatError::ContextTooLarge)?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

fn put_field(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), FormatError> {
    put_u16(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

impl Header {
    /// The header bytes the authentication tag covers (everything but the tag).
    pub fn serialize(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::with_capacity(256);
        out.push(VERSION_2);
        out.extend_from_slice(&self.suite.to_be_bytes());
        out.extend_from_slice(&self.message_id);
        let ctx = serialize_context(&self.context)?;
        put_u16(&mut out, ctx.len())?;
        out.extend_from_slice(&ctx);
        put_u16(&mut out, self.edks.len())?;
        for edk in &self.edks {
            put_field(&mut out, edk.provider_id.as_bytes())?;
            put_field(&mut out, &edk.provider_info)?;
            put_field(&mut out, &edk.ciphertext)?;
        }
        out.push(CONTENT_FRAMED);
        out.extend_from_slice(&self.frame_len.to_be_bytes());
        out.extend_from_slice(&self.commitment);
        Ok(out)
    }

    /// Reads a header and its tag from `r`. Returns the header, the exact
    /// bytes it was parsed from (without the tag) and the tag.
    pub fn read(r: &mut impl Read) -> Result<(Self, Vec<u8>, [u8; TAG_LEN]), FormatError> {
        let mut p = Recorder {
            inner: r,
            raw: Vec::with_capacity(256),
        };
        let version = p.u8()?;
        if version != VERSION_2 {
            return Err(FormatError::Version(version));
        }
        let suite = p.u16()?;
        if suite != SUITE_COMMIT_KEY {
            return Err(FormatError::Suite(suite));
        }
        let message_id: [u8; MESSAGE_ID_LEN] = p.array()?;
        let aad_len = usize::from(p.u16()?);
        let ctx_bytes = p.bytes(aad_len)?;
        let context = parse_context(&ctx_bytes)?;
        let edk_count = p.u16()?;
        if edk_count == 0 {
            return Err(FormatError::Header("no encrypted data key"));
        }
        if edk_count > MAX_EDKS {
            return Err(FormatError::TooManyKeys(edk_count));
        }
        let mut edks = Vec::with_capacity(usize::from(edk_count));
        for _ in 0..edk_count {
            let provider_id = p.field()?;
            let provider_id = String::from_utf8(provider_id)
                .map_err(|_| FormatError::Header("provider id is not UTF-8"))?;
            let provider_info = p.field()?;
            let ciphertext = p.field()?;
            edks.push(EncryptedDataKey {
                provider_id,
                provider_info,
                ciphertext,
            });
        }
        let content_type = p.u8()?;
        if content_type != CONTENT_FRAMED {
            return Err(FormatError::ContentType(content_type));
        }
        let frame_len = p.u32()?;
        if frame_len == 0 || frame_len > MAX_FRAME_LEN {
            return Err(FormatError::FrameLength(frame_len));
        }
        let commitment: [u8; 32] = p.array()?;
        let raw = std::mem::take(&mut p.raw);
        let mut tag = [0u8; TAG_LEN];
        read_exact(p.inner, &mut tag)?;
        Ok((
            Self {
                suite,
                message_id,
                context,
                edks,
                frame_len,
                commitment,
            },
            raw,
            tag,
        ))
    }
}

/// Parses a serialized encryption context (empty input = empty context).
pub fn parse_context(bytes: &[u8]) -> Result<BTreeMap<String, String>, FormatError> {
    let mut out = BTreeMap::new();
    if bytes.is_empty() {
        return Ok(out);
    }
    let mut cur = bytes;
    let mut p = Recorder {
        inner: &mut cur,
        raw: Vec::new(),
    };
    let count = p.u16()?;
    if count == 0 {
        return Err(FormatError::Header("encryption context with zero pairs"));
    }
    for _ in 0..count {
        let k = String::from_utf8(p.field()?)
            .map_err(|_| FormatError::Header("encryption context key is not UTF-8"))?;
        let v = String::from_utf8(p.field()?)
            .map_err(|_| FormatError::Header("encryption context value is not UTF-8"))?;
        if out.insert(k, v).is_some() {
            return Err(FormatError::Header("duplicate encryption context key"));
        }
    }
    if !cur.is_empty() {
        return Err(FormatError::Header("bytes after the encryption context"));
    }
    Ok(out)
}

/// `read_exact` with end of input reported as truncation.
pub fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), FormatError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FormatError::Truncated("it ends inside the header")
        } else {
            FormatError::Io(e)
        }
    })
}

/// Reads fields and keeps a copy of every byte read.
struct Recorder<'a, R: Read> {
    inner: &'a mut R,
    raw: Vec<u8>,
}

impl<R: Read> Recorder<'_, R> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, FormatError> {
        let mut buf = vec![0u8; n];
        read_exact(self.inner, &mut buf)?;
        self.raw.extend_from_slice(&buf);
        Ok(buf)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut buf = [0u8; N];
        read_exact(self.inner, &mut buf)?;
        self.raw.extend_from_slice(&buf);
        Ok(buf)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn field(&mut self) -> Result<Vec<u8>, FormatError> {
        let n = usize::from(self.u16()?);
        self.bytes(n)
    }
}
