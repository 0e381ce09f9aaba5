//! The audit file format: how records are chained, named and signed. Both
//! the writer and the offline verifier (`kmsctl audit verify`) use these
//! functions, so the two cannot drift apart.
//!
//! A log is a directory of files `audit-00000001.jsonl`, `-00000002`, ...
//! (the highest number is the one being written); other names are not part
//! of the log (the writer may keep the next file's zero-filled spare there,
//! `audit-NNNNNNNN.jsonl.spare`, which [`file_number`] does not accept, so
//! [`log_files`] and every reader leave it out). Each file is one JSON
//! object per line, `\n`-terminated. Every line starts with
//! `{"sequence":N,"previousHash":"<64 hex>",` followed by the record's own
//! fields: `sequence` counts records across files from 1, `previousHash` is
//! the SHA-256 of the previous line's exact bytes (without its `\n`),
//! continuing across files (a file's first record carries the hash of the
//! previous file's last line); the very first record carries 64 zeros.
//!
//! The newest file may end in a run of zero bytes: space the writer filled
//! ahead of its records (with `durability` `group` or `fsync`, so that a
//! sync has no file-size change to commit) and that a crash left behind. It
//! is unwritten space, not a record: every reader takes a file's bytes
//! through [`content`]. A record never holds a zero byte (JSON escapes
//! control characters), so zero bytes anywhere else (before a later record,
//! or at the end of a file that is not the newest, which is cut back to its
//! records when it is closed) are corruption.
//!
//! A digest record (`"eventType":"HsmKmsDigest"`) is written every N records,
//! before each rotation and at shutdown. Its `signature` is hsm-daemon's
//! Ed25519 signature over [`protocol::AUDIT_DIGEST_CONTEXT`] followed by the
//! 32 bytes of its own `previousHash`: the head of the chain, which commits
//! to every record before it. The public key is in each digest record
//! (`publicKey`, hex) and in `audit-signing-key.pub` next to the files; a
//! verifier should take it from somewhere the log's editor cannot reach.

use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `previousHash` of the first record ever written.
pub const GENESIS_HASH: [u8; 32] = [0; 32];
/// `eventType` of digest records.
pub const DIGEST_EVENT_TYPE: &str = "HsmKmsDigest";
/// Name of the public key file written next to the log files.
pub const PUBLIC_KEY_FILE: &str = "audit-signing-key.pub";

/// SHA-256 of one line's bytes, without its trailing `\n`.
pub fn line_hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// The file name of log file number `n`.
pub fn file_name(n: u64) -> String {
    format!("audit-{n:08}.jsonl")
}

/// The number of a log file from its name, if it is one.
pub fn file_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The log files in `dir`, by number.
///
/// # Errors
/// Reading the directory failed.
pub fn log_files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| file_number(&p).map(|n| (n, p)))
        .collect();
    files.sort();
    Ok(files)
}

/// The written part of the newest log file's bytes: `data` without its
/// trailing run of zero bytes (space filled ahead of the records). Apply it
/// to the newest file only: elsewhere such a run is corruption.
pub fn content(data: &[u8]) -> &[u8] {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &data[..end]
}

/// One full line (without `\n`): the chain fields, then `body`'s fields.
/// `body` must be a serialized JSON object (`{...}`).
pub fn chained_line(sequence: u64, previous: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let rest = body.strip_prefix(b"{").unwrap_or(body);
    let mut line = Vec::with_capacity(body.len() + 110);
    let mut hex = [0u8; 64];
    // Cannot fail: the buffer is exactly twice the hash's length.
    let _ = hex::encode_to_slice(previous, &mut hex);
    line.extend_from_slice(b"{\"sequence\":");
    let _ = write!(line, "{sequence}");
    line.extend_from_slice(b",\"previousHash\":\"");
    line.extend_from_slice(&hex);
    line.push(b'"');
    if rest != b"}" {
        line.push(b',');
    }
    line.extend_from_slice(rest);
    line
}

/// The message the daemon signs for a chain head.
pub fn signed_message(head: &[u8; 32]) -> Vec<u8> {
    let mut m = protocol::AUDIT_DIGEST_CONTEXT.to_vec();
    m.extend_from_slice(head);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_line_is_one_json_object_with_chain_fields_first() {
        let line = chained_line(7, &[0xab; 32], br#"{"eventName":"Encrypt"}"#);
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["sequence"], 7);
        assert_eq!(v["previousHash"], hex::encode([0xab; 32]));
        assert_eq!(v["eventName"], "Encrypt");
        let empty = chained_line(1, &GENESIS_HASH, b"{}");
        assert!(serde_json::from_slice::<serde_json::Value>(&empty).is_ok());
    }

    #[test]
    fn content_drops_only_the_trailing_zero_run() {
        assert_eq!(content(b"{}\n\0\0\0"), b"{}\n");
        assert_eq!(content(b"{}\n"), b"{}\n");
        assert_eq!(content(b"{}\n\0\0{}\n\0"), b"{}\n\0\0{}\n");
        assert_eq!(content(b"{\"a\"\0\0"), b"{\"a\"");
        assert_eq!(content(b"\0\0"), b"");
        assert_eq!(content(b""), b"");
    }

    #[test]
    fn file_numbers_round_trip() {
        assert_eq!(file_number(Path::new(&file_name(42))), Some(42));
        assert_eq!(file_number(Path::new("audit-x.jsonl")), None);
        assert_eq!(file_number(Path::new("other.jsonl")), None);
        assert_eq!(file_number(Path::new("audit-00000042.jsonl.spare")), None);
    }
}
