//! Offline verification of audit log files: the hash chain, the sequence
//! numbers, the digest signatures, and that every record is covered by a
//! signed digest. Stops at the first bad record and names it (file, line,
//! sequence, eventID) with what is wrong. The last file given is taken as
//! the newest: its trailing run of zero bytes is unwritten space
//! ([`chain::content`]); zero bytes anywhere else are reported. Used by
//! `kmsctl audit verify`; the format is `chain`'s.

use super::chain::{self, DIGEST_EVENT_TYPE, GENESIS_HASH};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    pub sequence: Option<u64>,
    pub event_id: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if let Some(s) = self.sequence {
            write!(f, " (sequence {s}")?;
            if let Some(id) = &self.event_id {
                write!(f, ", eventID {id}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// The first bad record and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: Location,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "first bad record: {}: {}", self.at, self.reason)
    }
}

/// What a successful verification saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub signed_digests: u64,
    pub unsigned_digests: u64,
    /// Records after the last signed digest (only with `allow_open_tail`).
    pub uncovered: u64,
    /// The chain started after sequence 1 (older files not given).
    pub anchored_at: Option<u64>,
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Ed25519 public key digests must verify under.
    pub public_key: [u8; 32],
    /// Accept records after the last signed digest (a live log).
    pub allow_open_tail: bool,
}

struct State {
    key: VerifyingKey,
    expected: Option<u64>,
    previous: Option<([u8; 32], Location)>,
    uncovered_from: Option<Location>,
    last_is_digest: bool,
    since_signed: u64,
    summary: Summary,
}

fn problem(at: Location, reason: impl Into<String>) -> Problem {
    Problem {
        at,
        reason: reason.into(),
    }
}

/// Verifies `files` in order as one log.
///
/// # Errors
/// The first [`Problem`] found.
pub fn verify(files: &[PathBuf], options: &Options) -> Result<Summary, Problem> {
    let key = VerifyingKey::from_bytes(&options.public_key).map_err(|_| {
        problem(
            Location {
                file: PathBuf::from("<public key>"),
                line: 0,
                sequence: None,
                event_id: None,
            },
            "the public key is not a valid Ed25519 key",
        )
    })?;
    let mut state = State {
        key,
        expected: None,
        previous: None,
        uncovered_from: None,
        last_is_digest: false,
        since_signed: 0,
        summary: Summary::default(),
    };
    for (i, path) in files.iter().enumerate() {
        verify_file(&mut state, path, i + 1 == files.len())?;
    }
    if let Some(at) = state.uncovered_from {
        if !options.allow_open_tail {
            return Err(problem(
                at,
                "this and every later record are not covered by a signed digest: records \
                 after it were truncated away, or the log is still open (pass --open to \
                 accept an unsealed tail)",
            ));
        }
        state.summary.uncovered = state.since_signed;
    }
    Ok(state.summary)
}

/// Checks one file; `newest`: the last one, which may end in unwritten space.
fn verify_file(state: &mut State, path: &Path, newest: bool) -> Result<(), Problem> {
    let at = |line: usize| Location {
        file: path.to_owned(),
        line,
        sequence: None,
        event_id: None,
    };
    let bytes =
        std::fs::read(path).map_err(|e| problem(at(0), format!("cannot read the file: {e}")))?;
    let data = if newest {
        chain::content(&bytes)
    } else {
        &bytes
    };
    if let Some((_, prev)) = &state.previous
        && !state.last_is_digest
        && prev.file != path
    {
        // A closed file must end with a (signed) digest: it is followed by another.
        return Err(problem(
            prev.clone(),
            "the file ends without a signed digest after this record: it was truncated",
        ));
    }
    if data.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let torn = !data.ends_with(b"\n");
    if !torn {
        lines.pop();
    }
    let file_number = chain::file_number(path);
    for (i, line) in lines.iter().enumerate() {
        let mut loc = at(i + 1);
        if line.contains(&0) {
            return Err(problem(
                loc,
                "zero bytes where a record should be: a write was lost (power failure?) or \
                 the file was zeroed, or unwritten space left at the end of a file that is \
                 not the newest",
            ));
        }
        if torn && i + 1 == lines.len() {
            return Err(problem(
                loc,
                "the last record is incomplete: the file was truncated",
            ));
        }
        let v: Value = match serde_json::from_slice(line) {
            Ok(Value::Object(m)) => Value::Object(m),
            _ => {
                return Err(problem(
                    loc,
                    "not a JSON record: the line was edited or corrupted",
                ));
            }
        };
        loc.sequence = v.get("sequence").and_then(Value::as_u64);
        loc.event_id = v.get("eventID").and_then(Value::as_str).map(str::to_owned);
        let Some(sequence) = loc.sequence else {
            return Err(problem(loc, "no sequence number: the record was edited"));
        };
        let previous_hash = v
            .get("previousHash")
            .and_then(Value::as_str)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|h| <[u8; 32]>::try_from(h).ok());
        let Some(previous_hash) = previous_hash else {
            return Err(problem(loc, "no valid previousHash: the record was edited"));
        };
        match (&state.previous, state.expected) {
            (Some((hash, prev_loc)), Some(expected)) => {
                if sequence != expected {
                    let why = if sequence > expected {
                        format!(
                            "sequence {sequence} follows {}: records {expected}..{} were deleted",
                            expected - 1,
                            sequence - 1
                        )
                    } else {
                        format!(
                            "sequence {sequence} where {expected} was expected: a record was \
                             inserted, duplicated or moved here"
                        )
                    };
                    return Err(problem(loc, why));
                }
                if previous_hash != *hash {
                    return Err(problem(
                        prev_loc.clone(),
                        format!(
                            "this record was changed: the hash of its line does not match the \
                             previousHash of the record after it ({loc})"
                        ),
                    ));
                }
            }
            _ => {
                if sequence == 1 || file_number == Some(1) {
                    if sequence != 1 || previous_hash != GENESIS_HASH {
                        return Err(problem(
                            loc,
                            "the log's first file does not start with record 1: records at \
                             its start were deleted",
                        ));
                    }
                } else {
                    state.summary.anchored_at = Some(sequence);
                }
            }
        }
        state.summary.records += 1;
        state.since_signed += 1;
        state.last_is_digest =
            v.get("eventType").and_then(Value::as_str) == Some(DIGEST_EVENT_TYPE);
        if state.last_is_digest {
            check_digest(state, &v, &previous_hash, &loc)?;
        } else if state.uncovered_from.is_none() {
            state.uncovered_from = Some(loc.clone());
        }
        state.previous = Some((chain::line_hash(line), loc));
        state.expected = Some(sequence + 1);
    }
    Ok(())
}

fn check_digest(
    state: &mut State,
    v: &Value,
    head: &[u8; 32],
    loc: &Location,
) -> Result<(), Problem> {
    let signature = match v.get("signature") {
        None | Some(Value::Null) => {
            state.summary.unsigned_digests += 1;
            return Ok(());
        }
        Some(s) => s,
    };
    let signature = signature
        .as_str()
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b));
    let Some(signature) = signature else {
        return Err(problem(loc.clone(), "the digest's signature is malformed"));
    };
    if let Some(pk) = v.get("publicKey").and_then(Value::as_str)
        && pk != hex::encode(state.key.as_bytes())
    {
        return Err(problem(
            loc.clone(),
            "the digest names another public key than the trusted one",
        ));
    }
    if state
        .key
        .verify(&chain::signed_message(head), &signature)
        .is_err()
    {
        return Err(problem(
            loc.clone(),
            "the digest's signature does not verify: records before it were changed, or the \
             digest was forged",
        ));
    }
    state.summary.signed_digests += 1;
    state.uncovered_from = None;
    state.since_signed = 0;
    Ok(())
}
