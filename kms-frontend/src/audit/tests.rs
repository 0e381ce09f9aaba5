//! Verification of hand-built logs: a good log passes, and each kind of
//! tampering is caught at the record it touched.

use super::chain::{self, GENESIS_HASH};
use super::verify::{Options, verify};
use ed25519_dalek::{Signer, SigningKey};
use std::path::{Path, PathBuf};

struct Log {
    lines: Vec<Vec<u8>>,
    key: SigningKey,
}

impl Log {
    /// `n` records with a signed digest after every `every`, ending in one.
    fn new(n: u64, every: u64) -> Self {
        let key = SigningKey::from_bytes(&[5u8; 32]);
        let mut log = Self {
            lines: Vec::new(),
            key,
        };
        for i in 1..=n {
            log.push(format!(r#"{{"eventName":"Encrypt","eventID":"e{i}"}}"#).as_bytes());
            if i % every == 0 || i == n {
                log.digest();
            }
        }
        log
    }

    fn head(&self) -> [u8; 32] {
        self.lines
            .last()
            .map_or(GENESIS_HASH, |l| chain::line_hash(l))
    }

    fn push(&mut self, body: &[u8]) {
        let seq = self.lines.len() as u64 + 1;
        let line = chain::chained_line(seq, &self.head(), body);
        self.lines.push(line);
    }

    fn digest(&mut self) {
        let head = self.head();
        let sig = self.key.sign(&chain::signed_message(&head));
        let body = serde_json::json!({
            "eventType": chain::DIGEST_EVENT_TYPE,
            "publicKey": hex::encode(self.key.verifying_key().as_bytes()),
            "signature": hex::encode(sig.to_bytes()),
        });
        self.push(body.to_string().as_bytes());
    }

    fn options(&self) -> Options {
        Options {
            public_key: self.key.verifying_key().to_bytes(),
            allow_open_tail: false,
        }
    }

    fn write(&self, dir: &Path, lines: &[Vec<u8>]) -> Vec<PathBuf> {
        let path = dir.join(chain::file_name(1));
        let mut data = Vec::new();
        for l in lines {
            data.extend_from_slice(l);
            data.push(b'\n');
        }
        std::fs::write(&path, data).expect("write");
        vec![path]
    }
}

fn check(log: &Log, lines: &[Vec<u8>]) -> Result<u64, (usize, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = log.write(dir.path(), lines);
    verify(&files, &log.options())
        .map(|s| s.records)
        .map_err(|p| (p.at.line, p.reason))
}

#[test]
fn untouched_log_verifies() {
    let log = Log::new(10, 4);
    assert_eq!(check(&log, &log.lines), Ok(13));
}

#[test]
fn edited_record_is_named() {
    let log = Log::new(10, 4);
    let mut lines = log.lines.clone();
    let edited = String::from_utf8(lines[2].clone())
        .expect("utf8")
        .replace("Encrypt", "Decrypt");
    lines[2] = edited.into_bytes();
    let (line, reason) = check(&log, &lines).expect_err("edit detected");
    assert_eq!(line, 3, "{reason}");
    assert!(reason.contains("changed"), "{reason}");
}

#[test]
fn deleted_record_is_named() {
    let log = Log::new(10, 4);
    let mut lines = log.lines.clone();
    lines.remove(3);
    let (line, reason) = check(&log, &lines).expect_err("deletion detected");
    assert_eq!(line, 4, "{reason}");
    assert!(reason.contains("deleted"), "{reason}");
}

#[test]
fn reordered_records_are_named() {
    let log = Log::new(10, 4);
    let mut lines = log.lines.clone();
    lines.swap(1, 2);
    let (line, _) = check(&log, &lines).expect_err("reorder detected");
    assert_eq!(line, 2);
}

#[test]
fn inserted_record_is_named() {
    let log = Log::new(10, 4);
    let mut lines = log.lines.clone();
    lines.insert(5, lines[1].clone());
    let (line, reason) = check(&log, &lines).expect_err("insert detected");
    assert_eq!(line, 6, "{reason}");
}

#[test]
fn truncation_is_detected() {
    let log = Log::new(10, 4);
    // Cut at a line boundary: the closing digest is gone.
    let (line, reason) = check(&log, &log.lines[..log.lines.len() - 2]).expect_err("cut");
    assert_eq!(line, 11, "{reason}");
    assert!(reason.contains("not covered"), "{reason}");
    // Cut mid-line.
    let dir = tempfile::tempdir().expect("tempdir");
    let files = log.write(dir.path(), &log.lines);
    let len = std::fs::metadata(&files[0]).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .expect("open");
    f.set_len(len - 10).expect("truncate");
    let p = verify(&files, &log.options()).expect_err("torn");
    assert_eq!(p.at.line, log.lines.len());
}

#[test]
fn re_chained_forgery_fails_the_signature() {
    // An editor who rewrites a record and recomputes every later hash still
    // cannot re-sign the digest.
    let log = Log::new(6, 100);
    let mut forged = Log {
        lines: Vec::new(),
        key: SigningKey::from_bytes(&[5u8; 32]),
    };
    for (i, l) in log.lines.iter().enumerate().take(6) {
        let v: serde_json::Value = serde_json::from_slice(l).expect("json");
        let name = if i == 2 { "Decrypt" } else { "Encrypt" };
        forged.push(
            format!(
                r#"{{"eventName":"{name}","eventID":"{}"}}"#,
                v["eventID"].as_str().unwrap_or("")
            )
            .as_bytes(),
        );
    }
    // Keep the old digest (and its signature) but chain it to the forgery.
    let digest = String::from_utf8(log.lines[6].clone())
        .expect("utf8")
        .replace(
            &hex::encode(chain::line_hash(&log.lines[5])),
            &hex::encode(forged.head()),
        );
    let mut lines = forged.lines.clone();
    lines.push(digest.into_bytes());
    let (line, reason) = check(&log, &lines).expect_err("forgery detected");
    assert_eq!(line, 7, "{reason}");
    assert!(reason.contains("signature"), "{reason}");
}

#[test]
fn wrong_public_key_fails() {
    let log = Log::new(3, 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let files = log.write(dir.path(), &log.lines);
    let mut options = log.options();
    options.public_key = SigningKey::from_bytes(&[6u8; 32])
        .verifying_key()
        .to_bytes();
    assert!(verify(&files, &options).is_err());
}

/// Writes `parts` (each file's bytes) as log files 1, 2, ... and verifies them.
fn check_files(log: &Log, parts: &[Vec<u8>]) -> Result<u64, (PathBuf, usize, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let path = dir.path().join(chain::file_name(i as u64 + 1));
        std::fs::write(&path, data).expect("write");
        files.push(path);
    }
    verify(&files, &log.options())
        .map(|s| s.records)
        .map_err(|p| (p.at.file, p.at.line, p.reason))
}

fn joined(lines: &[Vec<u8>]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| l.iter().chain(b"\n"))
        .copied()
        .collect()
}

#[test]
fn zero_tail_of_the_newest_file_is_unwritten_space() {
    let log = Log::new(10, 4);
    let mut data = joined(&log.lines);
    data.extend_from_slice(&[0; 4096]);
    assert_eq!(check_files(&log, &[data]), Ok(13));
}

#[test]
fn zero_bytes_before_a_record_are_reported() {
    let log = Log::new(10, 4);
    let mut data = joined(&log.lines[..5]);
    data.extend_from_slice(&[0; 100]);
    data.extend_from_slice(&joined(&log.lines[5..]));
    let (_, line, reason) = check_files(&log, &[data]).expect_err("zeros detected");
    assert_eq!(line, 6, "{reason}");
    assert!(reason.contains("zero bytes"), "{reason}");
}

#[test]
fn zero_tail_of_an_older_file_is_reported() {
    // Line 5 is the first digest: file 1 is a properly sealed file.
    let log = Log::new(10, 4);
    let (first, second) = (joined(&log.lines[..5]), joined(&log.lines[5..]));
    assert_eq!(check_files(&log, &[first.clone(), second.clone()]), Ok(13));
    let mut zeroed = first;
    zeroed.extend_from_slice(&[0; 100]);
    let (file, line, reason) = check_files(&log, &[zeroed, second]).expect_err("zeros detected");
    assert_eq!(file.file_name(), Some(chain::file_name(1).as_ref()));
    assert_eq!(line, 6, "{reason}");
    assert!(reason.contains("zero bytes"), "{reason}");
}
