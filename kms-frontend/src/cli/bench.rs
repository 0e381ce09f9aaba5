//! `kmsctl bench`: a closed-loop load generator for any AWS-KMS-compatible
//! endpoint. It prepares what the chosen operation needs through the shared
//! [`KmsClient`] (a key, unless `--key-id` names one; a ciphertext for
//! Decrypt; an ECC signing key for Sign), checks one request of each kind,
//! then runs `--connections` keep-alive HTTP/1.1 connections (TLS for
//! `https://`, plain TCP for `http://`), each with one request in flight,
//! every request signed afresh with SigV4, for `--duration` (after a
//! `--warmup` that is not counted) or until `--requests` have been sent. A
//! progress line goes to stderr once a second; the result (ops/s, latency
//! percentiles, errors by AWS error type) is printed for people or, with
//! `--json`, as one JSON object. The connection loop is in `bench/conn.rs`,
//! the statistics and output in `bench/report.rs`.

mod conn;
mod report;
mod request;
mod sign;

use super::Global;
use super::client::KmsClient;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The operation a run exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    GenerateDataKey,
    Encrypt,
    Decrypt,
    GenerateRandom,
    Sign,
    /// GenerateDataKey, Encrypt and Decrypt in turn.
    Mixed,
}

/// `kmsctl bench` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Operation to send.
    #[arg(long, value_enum, default_value = "generate-data-key")]
    pub op: Op,
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub connections: u32,
    /// How long to measure (e.g. 10s, 500ms, 1m); default 10s.
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Send exactly this many requests instead of running for a duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Bytes of plaintext (Encrypt, Decrypt), of random data (GenerateRandom)
    /// or of message (Sign).
    #[arg(long, default_value_t = 32)]
    pub payload: usize,
    /// Key to use (id, ARN or alias); default: a new key is created.
    #[arg(long)]
    pub key_id: Option<String>,
    /// Worker threads of the load generator (default: one per CPU).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Load before measuring starts (duration runs only).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub warmup: Duration,
}

/// One request kind: its `X-Amz-Target` and its JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub target: &'static str,
    pub body: Bytes,
}

/// Counters shared by the workers, the progress line and the clock.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    /// Results are recorded only while this is set (not during warm-up).
    pub recording: AtomicBool,
    pub stop: AtomicBool,
    /// Requests still to send, in `--requests` mode.
    pub budget: Option<AtomicU64>,
    /// Replies received (any outcome), for the progress line.
    pub done: AtomicU64,
    pub errors: AtomicU64,
}

/// Runs `kmsctl bench`.
pub async fn run(global: &Global, args: BenchArgs) -> anyhow::Result<()> {
    let settings = global.settings()?;
    let client = KmsClient::new(&settings)?;
    let calls = prepare(&client, &args).await?;
    let target = conn::Target::new(&client)?;
    let state = Arc::new(RunState {
        budget: args.requests.map(AtomicU64::new),
        ..RunState::default()
    });
    let measured = args.duration.unwrap_or(Duration::from_secs(10));
    let warmup = if args.requests.is_some() {
        Duration::ZERO
    } else {
        args.warmup
    };
    if warmup.is_zero() {
        state.recording.store(true, Ordering::Release);
    }

    let mut workers = Vec::with_capacity(args.connections as usize);
    for i in 0..args.connections as usize {
        let worker = conn::Worker {
            index: i,
            requests: request::Requests::new(
                sign::Signer::new(&settings),
                target.authority(),
                &calls,
            )?,
            target: Arc::clone(&target),
            state: Arc::clone(&state),
        };
        workers.push(tokio::spawn(worker.run()));
    }
    let progress = tokio::spawn(progress(Arc::clone(&state)));

    let measure_start = if warmup.is_zero() {
        Instant::now()
    } else {
        tokio::time::sleep(warmup).await;
        state.recording.store(true, Ordering::Release);
        Instant::now()
    };
    if args.requests.is_none() {
        tokio::time::sleep(measured).await;
        state.recording.store(false, Ordering::Release);
        state.stop.store(true, Ordering::Release);
    }
    let mut stats = report::WorkerStats::new()?;
    for w in workers {
        let s = w.await.context("a bench worker panicked")??;
        stats.merge(s)?;
    }
    let elapsed = if args.requests.is_none() {
        measured
    } else {
        measure_start.elapsed()
    };
    state.stop.store(true, Ordering::Release);
    let _ = progress.await;
    let summary = report::Summary {
        endpoint: client.endpoint().to_owned(),
        op: args.op,
        connections: args.connections,
        payload: args.payload,
        elapsed,
        stats,
    };
    if global.json {
        println!("{}", summary.to_json());
    } else {
        print!("{}", summary.to_text());
    }
    Ok(())
}

/// Prints `done` per second to stderr until `stop`.
async fn progress(state: Arc<RunState>) {
    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while !state.stop.load(Ordering::Acquire) {
        tick.tick().await;
        let done = state.done.load(Ordering::Relaxed);
        let errors = state.errors.load(Ordering::Relaxed);
        let line = format!(
            "bench: {:>3}s  {:>8} ops/s  {:>10} replies  {} errors",
            start.elapsed().as_secs(),
            done - last,
            done,
            errors
        );
        last = done;
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
    if tty {
        eprintln!();
    }
}

/// Creates what the operation needs and returns the calls to send, after
/// checking that one of each succeeds.
async fn prepare(client: &KmsClient, args: &BenchArgs) -> anyhow::Result<Vec<Call>> {
    let payload = vec![0x5au8; args.payload];
    let check_len = |what: &str, max: usize| {
        if args.payload == 0 || args.payload > max {
            bail!("--payload must be 1..={max} bytes for {what}");
        }
        Ok(())
    };
    let key_id = match (&args.key_id, args.op) {
        (_, Op::GenerateRandom) => String::new(),
        (Some(k), _) => k.clone(),
        (None, Op::Sign) => create_key(client, Some(("ECC_NIST_P256", "SIGN_VERIFY")))
            .await
            .context(
                "the server refused an ECC_NIST_P256 SIGN_VERIFY key; \
                 it may not support asymmetric signing keys",
            )?,
        (None, _) => create_key(client, None).await?,
    };
    let gdk = || Call {
        target: "TrentService.GenerateDataKey",
        body: body(&json!({"KeyId": key_id, "KeySpec": "AES_256"})),
    };
    let encrypt = || Call {
        target: "TrentService.Encrypt",
        body: body(&json!({"KeyId": key_id, "Plaintext": B64.encode(&payload)})),
    };
    let decrypt = async || -> anyhow::Result<Call> {
        let reply = client
            .call(
                "Encrypt",
                &json!({"KeyId": key_id, "Plaintext": B64.encode(&payload)}),
            )
            .await
            .context("preparing a ciphertext for Decrypt")?;
        let blob = reply
            .get("CiphertextBlob")
            .and_then(Value::as_str)
            .context("the Encrypt reply has no CiphertextBlob")?;
        Ok(Call {
            target: "TrentService.Decrypt",
            body: body(&json!({"CiphertextBlob": blob})),
        })
    };
    let calls = match args.op {
        Op::GenerateDataKey => vec![gdk()],
        Op::Encrypt => {
            check_len("Encrypt", 4096)?;
            vec![encrypt()]
        }
        Op::Decrypt => {
            check_len("Decrypt", 4096)?;
            vec![decrypt().await?]
        }
        Op::Mixed => {
            check_len("Encrypt and Decrypt", 4096)?;
            vec![gdk(), encrypt(), decrypt().await?]
        }
        Op::GenerateRandom => {
            check_len("GenerateRandom", 1024)?;
            vec![Call {
                target: "TrentService.GenerateRandom",
                body: body(&json!({"NumberOfBytes": args.payload})),
            }]
        }
        Op::Sign => {
            check_len("Sign", 4096)?;
            vec![Call {
                target: "TrentService.Sign",
                body: body(&json!({
                    "KeyId": key_id,
                    "Message": B64.encode(&payload),
                    "MessageType": "RAW",
                    "SigningAlgorithm": "ECDSA_SHA_256",
                })),
            }]
        }
    };
    for call in &calls {
        let request: Value = serde_json::from_slice(&call.body)?;
        let op = call.target.trim_start_matches("TrentService.");
        client
            .call(op, &request)
            .await
            .with_context(|| format!("a trial {op} request failed"))?;
    }
    Ok(calls)
}

async fn create_key(client: &KmsClient, spec: Option<(&str, &str)>) -> anyhow::Result<String> {
    let mut request = json!({"Description": "kmsctl bench"});
    if let Some((key_spec, usage)) = spec {
        request["KeySpec"] = json!(key_spec);
        request["KeyUsage"] = json!(usage);
    }
    let reply = client
        .call("CreateKey", &request)
        .await
        .context("creating a key for the benchmark")?;
    reply
        .pointer("/KeyMetadata/KeyId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the CreateKey reply has no KeyMetadata.KeyId")
}

fn body(v: &Value) -> Bytes {
    Bytes::from(v.to_string().into_bytes())
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in {s:?}; use ms, s or m")),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("x").is_err());
    }
}
