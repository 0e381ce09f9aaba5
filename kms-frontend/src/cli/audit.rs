//! `kmsctl audit`: read the audit log offline. `kmsctl audit verify PATH...`
//! checks the hash chain and the digest signatures and names the first bad
//! record (exit status 1); `kmsctl audit [FILTERS] PATH...` prints the
//! records that match as a table (or JSON lines with `--json`): API calls
//! and the authorization decisions made for them (an `authz` row before
//! its call, same request id), digests on request. A PATH is a
//! log file or a directory of them; the last file given is the newest, whose
//! trailing zero bytes are unwritten space (`audit::chain::content`).
//! Verification is `audit::verify`'s; this module parses arguments, reads
//! files and prints.

use crate::audit::DECISION_EVENT_TYPE;
use crate::audit::chain::{self, DIGEST_EVENT_TYPE};
use crate::audit::verify::{self, Options};
use anyhow::{Context, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `kmsctl audit ...`
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Subcommands of `kmsctl audit`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and digest signatures; name the first bad record.
    Verify(VerifyArgs),
}

/// `kmsctl audit verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Log files, or directories holding audit-NNNNNNNN.jsonl files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The daemon's audit public key (64 hex digits). Default: the key file
    /// audit-signing-key.pub next to the logs (which whoever can edit the
    /// logs can also replace: pass the key from a trusted copy).
    #[arg(long, value_name = "HEX")]
    pub public_key: Option<String>,
    /// Read the public key from this file instead.
    #[arg(long, value_name = "FILE", conflicts_with = "public_key")]
    pub public_key_file: Option<PathBuf>,
    /// Accept records after the last signed digest (a log still being written).
    #[arg(long)]
    pub open: bool,
}

/// Filters of `kmsctl audit`.
#[derive(Debug, Default, clap::Args)]
pub struct FilterArgs {
    /// Log files, or directories of them.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only records about this key (key id or ARN, matched in the resources and keyId).
    #[arg(long)]
    pub key: Option<String>,
    /// Only records by this principal (ARN, user name or access key id).
    #[arg(long)]
    pub principal: Option<String>,
    /// Only this operation (eventName), e.g. Decrypt.
    #[arg(long)]
    pub operation: Option<String>,
    /// Only records at or after this time (RFC 3339, e.g. 2026-01-02T03:04:05Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Only records before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Include digest records.
    #[arg(long)]
    pub digests: bool,
    /// Only API-call records (no authorization decisions).
    #[arg(long, conflicts_with = "decision")]
    pub calls: bool,
    /// Only authorization decision records with this outcome.
    #[arg(long, value_enum, value_name = "OUTCOME")]
    pub decision: Option<DecisionFilter>,
    /// Print matching records as JSON lines instead of a table (the
    /// global `--json`).
    #[arg(skip)]
    pub json: bool,
}

/// `--decision`: which decision records to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecisionFilter {
    Allow,
    Deny,
}

/// Runs `kmsctl audit`.
///
/// # Errors
/// Unreadable files, bad arguments, or (verify) a bad record.
pub fn run(mut args: AuditArgs, json: bool) -> anyhow::Result<()> {
    args.filter.json = json;
    match args.command {
        Some(AuditCommand::Verify(v)) => run_verify(&v),
        None => run_filter(&args.filter),
    }
}

/// Files named by `paths` (directories expanded to their log files, by number).
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let found =
                chain::log_files(p).with_context(|| format!("cannot read {}", p.display()))?;
            files.extend(found.into_iter().map(|(_, f)| f));
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        bail!("no audit log files given");
    }
    Ok(files)
}

fn parse_key(hex_key: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(hex_key.trim()).context("the public key is not hex")?;
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| anyhow::anyhow!("the public key must be 32 bytes (64 hex digits)"))
}

fn key_file_near(first: &Path) -> PathBuf {
    let dir = if first.is_dir() {
        first.to_owned()
    } else {
        first.parent().map(Path::to_owned).unwrap_or_default()
    };
    dir.join(chain::PUBLIC_KEY_FILE)
}

fn run_verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let files = expand(&args.paths)?;
    let public_key = match (&args.public_key, &args.public_key_file) {
        (Some(k), _) => parse_key(k)?,
        (None, Some(f)) => parse_key(
            &std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        )?,
        (None, None) => {
            let f = key_file_near(&args.paths[0]);
            eprintln!(
                "kmsctl: using the public key in {} (pass --public-key for a key you trust independently)",
                f.display()
            );
            parse_key(
                &std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
            )?
        }
    };
    let options = Options {
        public_key,
        allow_open_tail: args.open,
    };
    match verify::verify(&files, &options) {
        Ok(s) => {
            println!(
                "OK: {} records in {} file(s), {} signed digest(s){}{}",
                s.records,
                files.len(),
                s.signed_digests,
                if s.uncovered > 0 {
                    format!(
                        ", {} record(s) after the last digest not yet signed",
                        s.uncovered
                    )
                } else {
                    String::new()
                },
                s.anchored_at
                    .map(|n| format!(", chain checked from sequence {n} (earlier files not given)"))
                    .unwrap_or_default(),
            );
            Ok(())
        }
        Err(problem) => bail!("{problem}"),
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Whether `record` passes every filter.
pub fn matches(record: &Value, f: &FilterArgs) -> bool {
    let event_type = record.get("eventType").and_then(Value::as_str);
    let is_digest = event_type == Some(DIGEST_EVENT_TYPE);
    if is_digest && !f.digests {
        return false;
    }
    let is_decision = event_type == Some(DECISION_EVENT_TYPE);
    if f.calls && is_decision {
        return false;
    }
    if let Some(want) = f.decision {
        let outcome = record["authorization"]
            .get("decision")
            .and_then(Value::as_str);
        let wanted = match want {
            DecisionFilter::Allow => "Allow",
            DecisionFilter::Deny => "Deny",
        };
        if !is_decision || outcome != Some(wanted) {
            return false;
        }
    }
    if let Some(op) = &f.operation
        && record.get("eventName").and_then(Value::as_str) != Some(op.as_str())
    {
        return false;
    }
    if let Some(p) = &f.principal {
        let id = &record["userIdentity"];
        let hit = ["arn", "accessKeyId", "userName"].iter().any(|k| {
            id.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|v| v == p || v.ends_with(&format!("/{p}")))
        });
        if !hit {
            return false;
        }
    }
    if let Some(k) = &f.key {
        let in_resources = record["resources"].as_array().is_some_and(|rs| {
            rs.iter().any(|r| {
                r.get("ARN")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a == k || a.ends_with(&format!("/{k}")))
            })
        });
        let in_params = record["requestParameters"]
            .get("keyId")
            .and_then(Value::as_str)
            == Some(k.as_str());
        let in_decision = record["authorization"]
            .get("resource")
            .and_then(Value::as_str)
            .is_some_and(|a| a == k || a.ends_with(&format!("/{k}")));
        if !in_resources && !in_params && !in_decision {
            return false;
        }
    }
    let time = record
        .get("eventTime")
        .and_then(Value::as_str)
        .unwrap_or("");
    if f.since.as_deref().is_some_and(|s| time < s) || f.until.as_deref().is_some_and(|u| time >= u)
    {
        return false;
    }
    true
}

fn key_of(record: &Value) -> String {
    record["resources"]
        .as_array()
        .and_then(|rs| rs.first())
        .and_then(|r| r.get("ARN"))
        .and_then(Value::as_str)
        .and_then(|a| a.rsplit_once('/').map(|(_, id)| id.to_owned()))
        .unwrap_or_else(|| text(record["requestParameters"].get("keyId")))
}

/// `Allow: PolicyAllow (Sid X)`, `Deny: NoAllow`, `Allow: GrantAllow (grant ID)`.
fn decision_outcome(authz: &Value) -> String {
    let mut out = format!(
        "{}: {}",
        text(authz.get("decision")),
        text(authz.get("reason"))
    );
    if let Some(sid) = authz.get("statementSid").and_then(Value::as_str) {
        out.push_str(&format!(" (Sid {sid})"));
    } else if let Some(i) = authz.get("statementIndex").and_then(Value::as_u64) {
        out.push_str(&format!(" (statement {i})"));
    } else if let Some(id) = authz.get("grantId").and_then(Value::as_str) {
        out.push_str(&format!(" (grant {id})"));
    }
    out
}

fn run_filter(f: &FilterArgs) -> anyhow::Result<()> {
    if f.paths.is_empty() {
        bail!("give the audit log files or directory (e.g. STATE_DIR/audit)");
    }
    let files = expand(&f.paths)?;
    let mut rows = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        // The newest (last) file may end in unwritten space.
        let data = if i + 1 == files.len() {
            chain::content(&bytes)
        } else {
            &bytes
        };
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(record) = serde_json::from_slice::<Value>(line) else {
                eprintln!(
                    "kmsctl: skipping a line of {} that is not JSON",
                    file.display()
                );
                continue;
            };
            if !matches(&record, f) {
                continue;
            }
            if f.json {
                println!("{record}");
                continue;
            }
            let (operation, outcome) = match record.get("authorization") {
                Some(authz) => (
                    format!("authz {}", text(authz.get("action"))),
                    decision_outcome(authz),
                ),
                None => (
                    text(record.get("eventName").or(record.get("eventType"))),
                    match record.get("errorCode") {
                        Some(Value::String(code)) => code.clone(),
                        _ => "OK".to_owned(),
                    },
                ),
            };
            rows.push([
                text(record.get("eventTime")),
                operation,
                text(record["userIdentity"].get("arn")),
                key_of(&record),
                outcome,
                text(record.get("requestID")),
            ]);
        }
    }
    if !f.json {
        print_table(
            &[
                "TIME",
                "OPERATION",
                "PRINCIPAL",
                "KEY",
                "OUTCOME",
                "REQUEST ID",
            ],
            &rows,
        );
    }
    Ok(())
}

fn print_table(header: &[&str; 6], rows: &[[String; 6]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({
            "eventTime": "2026-01-02T03:04:05Z",
            "eventName": "Decrypt",
            "userIdentity": {"arn": "arn:aws:iam::111122223333:user/alice", "accessKeyId": "AKIAA", "userName": "alice"},
            "resources": [{"ARN": "arn:aws:kms:us-east-1:111122223333:key/k1", "type": "AWS::KMS::Key"}],
            "requestParameters": {"keyId": "alias/x"},
        })
    }

    #[test]
    fn filters_by_key_principal_operation_and_time() {
        let r = record();
        let f = |g: fn(&mut FilterArgs)| {
            let mut a = FilterArgs::default();
            g(&mut a);
            matches(&r, &a)
        };
        assert!(f(|_| {}));
        assert!(f(|a| a.key = Some("k1".into())));
        assert!(f(|a| a.key = Some("alias/x".into())));
        assert!(!f(|a| a.key = Some("k2".into())));
        assert!(f(|a| a.principal = Some("alice".into())));
        assert!(f(|a| a.principal = Some("AKIAA".into())));
        assert!(!f(|a| a.principal = Some("bob".into())));
        assert!(f(|a| a.operation = Some("Decrypt".into())));
        assert!(!f(|a| a.operation = Some("Encrypt".into())));
        assert!(f(|a| a.since = Some("2026-01-02T03:04:05Z".into())));
        assert!(!f(|a| a.since = Some("2026-01-02T03:04:06Z".into())));
        assert!(!f(|a| a.until = Some("2026-01-02T03:04:05Z".into())));
        assert!(f(|a| a.until = Some("2026-01-03T00:00:00Z".into())));
        assert!(f(|a| a.calls = true));
        assert!(!f(|a| a.decision = Some(DecisionFilter::Allow)));
    }

    #[test]
    fn decision_records_filter_by_outcome_key_and_show_their_reason() {
        let mut r = record();
        r["eventType"] = json!(DECISION_EVENT_TYPE);
        r["resources"] = json!([]);
        r["requestParameters"] = Value::Null;
        r["authorization"] = json!({
            "action": "kms:Decrypt",
            "resource": "arn:aws:kms:us-east-1:111122223333:key/k1",
            "decision": "Deny",
            "reason": "ExplicitDeny",
            "statementSid": "NoBob",
            "statementIndex": 2,
        });
        let f = |g: fn(&mut FilterArgs)| {
            let mut a = FilterArgs::default();
            g(&mut a);
            matches(&r, &a)
        };
        assert!(f(|_| {}));
        assert!(!f(|a| a.calls = true));
        assert!(f(|a| a.decision = Some(DecisionFilter::Deny)));
        assert!(!f(|a| a.decision = Some(DecisionFilter::Allow)));
        assert!(f(|a| a.key = Some("k1".into())));
        assert!(f(|a| a.operation = Some("Decrypt".into())));
        assert_eq!(
            decision_outcome(&r["authorization"]),
            "Deny: ExplicitDeny (Sid NoBob)"
        );
    }
}
