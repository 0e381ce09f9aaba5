//! Verification of hand-built logs: a good log passes, and each kind of
//! tampering is caught at the record it touched. Then the writer's files:
//! records written into zero-filled space, cut back to their records when
//! closed, and a crash's zero tail cut on the next start.

use super::chain::{self, GENESIS_HASH};
use super::verify::{Options, Summary, verify};
use super::writer::Writer;
use super::{AuditSettings, Auditor, Durability};
use crate::hsm_client::HsmClient;
use ed25519_dalek::{Signer, SigningKey};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// A fresh log directory (created 0700 by the writer) inside a temp dir.
fn audit_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("audit");
    (tmp, dir)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn settings(dir: &Path, durability: Durability) -> AuditSettings {
    AuditSettings {
        dir: dir.to_owned(),
        durability,
        max_file_bytes: 1 << 30,
        digest_every: u64::MAX,
        digest_interval: Duration::from_secs(3600),
        stdout: false,
    }
}

/// No daemon: digests are written unsigned.
fn no_daemon(dir: &Path) -> HsmClient {
    HsmClient::new(dir.join("no-daemon.sock"))
}

/// A writer over `dir`, driven directly (dropping it is a crash).
fn open_writer(dir: &Path, rt: &tokio::runtime::Runtime) -> Writer {
    Writer::open(
        settings(dir, Durability::Group),
        no_daemon(dir),
        rt.handle().clone(),
    )
    .expect("open")
}

fn body(i: u64) -> Vec<u8> {
    format!(r#"{{"eventName":"Encrypt","eventID":"e{i}"}}"#).into_bytes()
}

fn log_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(chain::file_name(n))
}

/// Verifies the log in `dir` as a live one (unsigned digests, open tail).
fn verify_live(dir: &Path) -> Result<Summary, super::verify::Problem> {
    let files: Vec<PathBuf> = chain::log_files(dir)
        .expect("list")
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let options = Options {
        public_key: SigningKey::from_bytes(&[5u8; 32])
            .verifying_key()
            .to_bytes(),
        allow_open_tail: true,
    };
    verify(&files, &options)
}

/// The records of `path` (its content), parsed.
fn records_of(path: &Path) -> Vec<serde_json::Value> {
    let data = std::fs::read(path).expect("read");
    chain::content(&data)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("json"))
        .collect()
}

/// (file length, content length) of `path`.
/// `verify` of the live log fails at `file`:`line` for a reason naming `why`.
fn assert_reported_at(dir: &Path, file: &Path, line: usize, why: &str) {
    let p = verify_live(dir).expect_err("a problem is reported");
    assert_eq!((p.at.file.as_path(), p.at.line), (file, line), "{p}");
    assert!(p.reason.contains(why), "{p}");
}

fn lengths(path: &Path) -> (usize, usize) {
    let data = std::fs::read(path).expect("read");
    (data.len(), chain::content(&data).len())
}

#[test]
fn a_failed_sync_fails_its_records_and_the_chain_goes_on_from_the_last_synced_one() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let path = log_path(&dir, 1);
    let mut w = open_writer(&dir, &rt);
    w.append(&[&body(1), &body(2)]).expect("append");

    // /dev/null takes the write, and its fdatasync fails (EINVAL).
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let log = w.replace_file(null);
    let failed = w.append(&[&body(3)]);
    assert!(
        matches!(failed, Err(super::AuditError::Io(_))),
        "{failed:?}"
    );

    let _ = w.replace_file(log);
    w.append(&[&body(4)]).expect("append");
    w.finish();

    let records = records_of(&path);
    let seen: Vec<(u64, Option<&str>)> = records
        .iter()
        .map(|r| {
            (
                r["sequence"].as_u64().expect("sequence"),
                r["eventID"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen[..3],
        [(1, Some("e1")), (2, Some("e2")), (3, Some("e4"))],
        "the failed record is not in the log and the next one takes its place"
    );
    verify_live(&dir).expect("the chain is whole");
}

#[test]
fn group_commit_writes_into_zero_filled_space_and_shutdown_cuts_it_back() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let auditor = rt
        .block_on(async { Auditor::start(settings(&dir, Durability::Group), no_daemon(&dir)) })
        .expect("start");
    for i in 1..=20 {
        rt.block_on(auditor.submit(vec![body(i)])).expect("written");
    }
    let path = log_path(&dir, 1);
    let (len, content) = lengths(&path);
    assert!(
        len > content,
        "no zero-filled space: {len} bytes, {content} written"
    );
    assert_eq!(verify_live(&dir).map(|s| s.records), Ok(20));

    rt.block_on(auditor.shutdown());
    let (len, content) = lengths(&path);
    assert_eq!(len, content, "a closed file is cut back to its records");
    let records = records_of(&path);
    assert_eq!(records.len(), 21);
    assert_eq!(records[20]["reason"], "shutdown");
    assert_eq!(verify_live(&dir).map(|s| s.records), Ok(21));
}

#[test]
fn durability_none_does_not_prefill() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let auditor = rt
        .block_on(async { Auditor::start(settings(&dir, Durability::None), no_daemon(&dir)) })
        .expect("start");
    rt.block_on(auditor.submit(vec![body(1), body(2)]))
        .expect("written");
    let (len, content) = lengths(&log_path(&dir, 1));
    assert_eq!(len, content);
    assert!(content > 0);
    rt.block_on(auditor.shutdown());
}

#[test]
fn resume_after_a_crash_cuts_the_zero_tail_and_continues_the_chain() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let path = log_path(&dir, 1);
    let mut w = open_writer(&dir, &rt);
    for i in 1..=3 {
        w.append(&[&body(i)]).expect("append");
    }
    drop(w); // a crash: no final digest, no cut
    let (len, content) = lengths(&path);
    assert!(len > content, "no zero tail to recover from");

    let mut w = open_writer(&dir, &rt);
    assert_eq!(lengths(&path), (content, content), "the zero tail is cut");
    w.append(&[&body(4), &body(5)]).expect("append");
    drop(w);

    let mut w = open_writer(&dir, &rt);
    w.finish();
    assert_eq!(chain::log_files(&dir).expect("list").len(), 1);
    let (len, content) = lengths(&path);
    assert_eq!(len, content);
    let sequences: Vec<u64> = records_of(&path)
        .iter()
        .map(|r| r["sequence"].as_u64().expect("sequence"))
        .collect();
    assert_eq!(sequences, (1..=6).collect::<Vec<_>>());
    assert_eq!(verify_live(&dir).map(|s| s.records), Ok(6));
}

#[test]
fn a_torn_record_after_a_crash_is_left_and_the_log_goes_on_in_a_new_file() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let first = log_path(&dir, 1);
    let mut w = open_writer(&dir, &rt);
    for i in 1..=3 {
        w.append(&[&body(i)]).expect("append");
    }
    drop(w);
    let (_, content) = lengths(&first);
    let torn = br#"{"sequence":4,"previousHash":"ab"#;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .expect("open");
    f.write_all_at(torn, content as u64).expect("tear");
    drop(f);

    let mut w = open_writer(&dir, &rt);
    assert_eq!(
        lengths(&first),
        (content + torn.len(), content + torn.len()),
        "the zero tail is cut, the torn record left"
    );
    w.append(&[&body(4)]).expect("append");
    drop(w);
    let second = records_of(&log_path(&dir, 2));
    let last_whole = std::fs::read(&first).expect("read")[..content - 1]
        .rsplit(|&b| b == b'\n')
        .next()
        .expect("line")
        .to_vec();
    assert_eq!(second[0]["sequence"], 4);
    assert_eq!(
        second[0]["previousHash"],
        hex::encode(chain::line_hash(&last_whole))
    );
    assert_reported_at(&dir, &first, 4, "incomplete");
}

#[test]
fn a_write_that_lost_pages_is_reported_and_the_log_goes_on_after_what_is_whole() {
    // A power failure can keep a later page of the last write and lose an
    // earlier one: zeros, then the end of a record.
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let first = log_path(&dir, 1);
    let mut w = open_writer(&dir, &rt);
    for i in 1..=3 {
        w.append(&[&body(i)]).expect("append");
    }
    drop(w);
    let (_, content) = lengths(&first);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .expect("open");
    f.write_all_at(b"\"eventID\":\"e5\"}\n", content as u64 + 200)
        .expect("write");
    drop(f);

    let mut w = open_writer(&dir, &rt);
    w.append(&[&body(4)]).expect("append");
    drop(w);
    assert_eq!(records_of(&log_path(&dir, 2))[0]["sequence"], 4);
    assert_reported_at(&dir, &first, 4, "zero bytes");
}

#[test]
fn rotation_cuts_the_full_file_back_to_its_records_ending_in_the_digest() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let mut config = settings(&dir, Durability::Group);
    config.max_file_bytes = 4096;
    let auditor = rt
        .block_on(async { Auditor::start(config, no_daemon(&dir)) })
        .expect("start");
    for i in 1..=120 {
        rt.block_on(auditor.submit(vec![body(i)])).expect("written");
    }
    let files = chain::log_files(&dir).expect("list");
    assert!(files.len() > 2, "no rotation: {files:?}");
    for (_, path) in &files[..files.len() - 1] {
        let (len, content) = lengths(path);
        assert_eq!(len, content, "{} not cut back", path.display());
        let records = records_of(path);
        assert_eq!(records.last().expect("records")["reason"], "rotation");
    }
    let (len, content) = lengths(&files[files.len() - 1].1);
    assert!(len > content, "the current file is not filled ahead");
    assert!(verify_live(&dir).is_ok());
    rt.block_on(auditor.shutdown());
}

/// `max_file_bytes` of the spare-file tests (the prefill chunk is 1/16 of
/// it: 4 KiB).
const SMALL_FILE: u64 = 64 << 10;
/// How long a spare of `SMALL_FILE` may take to be made.
const SPARE_TIMEOUT: Duration = Duration::from_secs(20);

fn small_files(dir: &Path, durability: Durability) -> AuditSettings {
    AuditSettings {
        max_file_bytes: SMALL_FILE,
        ..settings(dir, durability)
    }
}

fn spare_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{}.spare", chain::file_name(n)))
}

/// The files in `dir` named like spares.
fn spares(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.spare"))
        .collect();
    found.sort();
    found
}

/// Appends records (`*next` on) until log file `n` holds `bytes`.
fn append_until(w: &mut Writer, dir: &Path, n: u64, bytes: u64, next: &mut u64) {
    while (lengths(&log_path(dir, n)).1 as u64) < bytes {
        *next += 1;
        w.append(&[&body(*next)]).expect("append");
    }
}

/// Polls `ready` every 5 ms until it holds, or panics after `SPARE_TIMEOUT`.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed() < SPARE_TIMEOUT, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_spare_next_file_is_made_past_half_a_file_and_taken_at_rotation() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let mut w = Writer::open(
        small_files(&dir, Durability::Group),
        no_daemon(&dir),
        rt.handle().clone(),
    )
    .expect("open");
    let mut i = 0;
    append_until(&mut w, &dir, 1, SMALL_FILE / 2 - 1024, &mut i);
    w.prepare_next();
    assert!(
        !w.poll_spare() && spares(&dir).is_empty(),
        "a spare before half a file"
    );

    append_until(&mut w, &dir, 1, SMALL_FILE / 2, &mut i);
    w.prepare_next();
    wait_until("the spare of file 2", || w.poll_spare());
    let spare = spare_path(&dir, 2);
    let meta = std::fs::metadata(&spare).expect("the spare is in the directory");
    assert_eq!(meta.len(), SMALL_FILE + 4096);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read(&spare).expect("read").iter().all(|&b| b == 0));
    assert_eq!(spares(&dir), vec![spare.clone()]);
    assert_eq!(
        chain::log_files(&dir).expect("list").len(),
        1,
        "a spare is not a log file"
    );
    assert!(verify_live(&dir).is_ok());

    append_until(&mut w, &dir, 1, SMALL_FILE, &mut i);
    w.rotate();
    assert!(!spare.exists(), "the spare name is gone");
    // The filler's length, not the one chunk the writer fills itself.
    assert_eq!(lengths(&log_path(&dir, 2)), (SMALL_FILE as usize + 4096, 0));
    let (len, content) = lengths(&log_path(&dir, 1));
    assert_eq!(len, content, "the full file is cut back");

    for _ in 0..5 {
        i += 1;
        w.append(&[&body(i)]).expect("append");
    }
    w.finish();
    assert!(spares(&dir).is_empty());
    let second = records_of(&log_path(&dir, 2));
    assert_eq!(second.len(), 6);
    assert_eq!(second[0]["sequence"], i - 4 + 1);
    let (len, content) = lengths(&log_path(&dir, 2));
    assert_eq!(len, content, "shutdown cuts the taken spare back too");
    // Every record, the rotation digest and the shutdown digest, chained
    // across the two files.
    assert_eq!(verify_live(&dir).map(|s| s.records), Ok(i + 2));
}

#[test]
fn the_running_writer_asks_for_a_spare_past_half_a_file_and_shutdown_deletes_it() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let auditor = rt
        .block_on(async { Auditor::start(small_files(&dir, Durability::Group), no_daemon(&dir)) })
        .expect("start");
    let mut i = 0;
    while (lengths(&log_path(&dir, 1)).1 as u64) < SMALL_FILE / 2 {
        i += 1;
        rt.block_on(auditor.submit(vec![body(i)])).expect("written");
    }
    let spare = spare_path(&dir, 2);
    wait_until("a full spare of file 2", || {
        std::fs::metadata(&spare).is_ok_and(|m| m.len() == SMALL_FILE + 4096)
    });
    rt.block_on(auditor.shutdown());
    assert!(spares(&dir).is_empty(), "an unused spare is deleted");
    assert_eq!(verify_live(&dir).map(|s| s.records), Ok(i + 1));
}

#[test]
fn a_leftover_spare_is_deleted_at_open() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let mut w = open_writer(&dir, &rt);
    w.append(&[&body(1)]).expect("append");
    drop(w); // a crash, with spares left behind
    for n in [2, 9] {
        std::fs::write(spare_path(&dir, n), [0u8; 4096]).expect("spare");
    }
    let other = dir.join("notes.spare");
    std::fs::write(&other, b"not ours").expect("other");

    let mut w = open_writer(&dir, &rt);
    assert!(
        spares(&dir).is_empty(),
        "leftover spares: {:?}",
        spares(&dir)
    );
    assert!(other.exists(), "only spare names are deleted");
    w.append(&[&body(2)]).expect("append");
    w.finish();
    assert_eq!(chain::log_files(&dir).expect("list").len(), 1);
    assert_eq!(verify_live(&dir).map(|s| s.records), Ok(3));
}

#[test]
fn durability_none_never_makes_a_spare() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let auditor = rt
        .block_on(async { Auditor::start(small_files(&dir, Durability::None), no_daemon(&dir)) })
        .expect("start");
    let mut i = 0;
    while chain::log_files(&dir).expect("list").len() < 3 {
        i += 1;
        rt.block_on(auditor.submit(vec![body(i)])).expect("written");
        assert!(spares(&dir).is_empty(), "a spare after {i} records");
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(spares(&dir).is_empty(), "a spare: {:?}", spares(&dir));
    rt.block_on(auditor.shutdown());
}

#[test]
fn readers_ignore_a_spare_in_the_log_directory() {
    let (_tmp, dir) = audit_dir();
    let rt = runtime();
    let mut w = open_writer(&dir, &rt);
    w.append(&[&body(1), &body(2)]).expect("append");
    w.finish();
    // Not zeros: a reader that took it for the next log file would fail.
    let first = std::fs::read(log_path(&dir, 1)).expect("read");
    std::fs::write(spare_path(&dir, 2), &first).expect("spare");
    assert_eq!(chain::file_number(&spare_path(&dir, 2)), None);
    let files = chain::log_files(&dir).expect("list");
    assert_eq!(files, vec![(1, log_path(&dir, 1))]);
    assert_eq!(verify_live(&dir).map(|s| s.records), Ok(3));
}
