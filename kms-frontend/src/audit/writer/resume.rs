//! Where a log goes on after a start: the chain position (sequence and head
//! hash) from the newest file's last complete record, after cutting off the
//! zero tail a writer that stopped without closing its file left behind. A
//! torn last record (or zeros inside the written part: a write that lost
//! some of its pages) is left for the verifier, and the log goes on in a
//! new file.

use super::super::AuditError;
use super::super::chain::{self, GENESIS_HASH};
use std::fs::OpenOptions;
use std::path::Path;

/// The chain position found in an existing log.
pub(super) struct Resume {
    pub(super) file_number: u64,
    pub(super) sequence: u64,
    pub(super) head: [u8; 32],
}

/// How `resume` reads the end of a log file.
struct Tail<'a> {
    /// Length of the written part (`chain::content`): the rest is zeros.
    content: usize,
    /// The last complete line before any zero byte, without its `\n`.
    last_line: Option<&'a [u8]>,
    /// Whether the written part is whole lines with no zero byte (false: a
    /// torn last write; zero bytes inside mean a write lost some of its
    /// pages, so only what comes before them is whole).
    clean: bool,
}

fn tail(data: &[u8]) -> Tail<'_> {
    let content = chain::content(data);
    let whole = content
        .iter()
        .position(|&b| b == 0)
        .map_or(content, |i| &content[..i]);
    let clean = whole.len() == content.len() && (content.is_empty() || content.ends_with(b"\n"));
    let last_line = whole.iter().rposition(|&b| b == b'\n').map(|end| {
        let complete = &whole[..end];
        let start = complete
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        &complete[start..]
    });
    Tail {
        content: content.len(),
        last_line,
        clean,
    }
}

/// Cuts `path` to `len` bytes and syncs it.
fn cut(path: &Path, len: u64) -> std::io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

/// Finds where the log in `dir` goes on. The newest file's zero tail (a
/// writer that stopped without closing it) is cut off first.
pub(super) fn resume(dir: &Path) -> Result<Resume, AuditError> {
    let files = chain::log_files(dir).map_err(AuditError::io)?;
    let Some(&(newest, _)) = files.last() else {
        return Ok(Resume {
            file_number: 1,
            sequence: 0,
            head: GENESIS_HASH,
        });
    };
    let mut file_number = newest;
    for (i, (_, path)) in files.iter().rev().enumerate() {
        let data = std::fs::read(path).map_err(AuditError::io)?;
        let t = tail(&data);
        if i == 0 {
            if t.content < data.len() {
                cut(path, t.content as u64).map_err(AuditError::io)?;
                tracing::info!(file = %path.display(), bytes = data.len() - t.content, "cut the unwritten zero tail of the audit file");
            }
            if !t.clean {
                // A torn last record: leave it for the verifier to report and
                // go on in a new file, chained to the last complete line.
                tracing::warn!(file = %path.display(), "audit file ends in a partial record; starting a new file");
                file_number = newest + 1;
            }
        }
        let Some(line) = t.last_line else { continue };
        let sequence = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("sequence").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| AuditError::Corrupt(format!("last record of {}", path.display())))?;
        return Ok(Resume {
            file_number,
            sequence,
            head: chain::line_hash(line),
        });
    }
    Ok(Resume {
        file_number,
        sequence: 0,
        head: GENESIS_HASH,
    })
}
