//! Audit write latency and throughput, measured (not asserted): run with
//! `cargo test -p kms-frontend --lib audit::bench -- --ignored --nocapture`.
//! For each durability setting, `concurrency` tasks each submit calls of
//! one or two records the size of a typical Encrypt record (a call with one
//! authorization decision writes two) to one writer and wait for each, as
//! requests do; prints calls/s, records/s and the latency percentiles.

use super::{AuditSettings, Auditor, Durability};
use crate::hsm_client::HsmClient;
use std::time::{Duration, Instant};

const RECORDS: usize = 20_000;
/// `Fsync` syncs every record: fewer, or the run takes minutes.
const FSYNC_RECORDS: usize = 2_000;

fn body() -> Vec<u8> {
    let mut v = serde_json::json!({
        "eventVersion": "1.08",
        "eventName": "Encrypt",
        "eventSource": "kms.amazonaws.com",
        "requestParameters": {"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
                              "encryptionContext": {"purpose": "bench"}},
    })
    .to_string()
    .into_bytes();
    v.resize(v.len().max(900), b' ');
    // Keep it a JSON object: the padding goes before the closing brace.
    let close = v.iter().rposition(|&b| b == b'}').unwrap_or(0);
    v.remove(close);
    v.push(b'}');
    v
}

async fn run(
    durability: Durability,
    concurrency: usize,
    records_per_call: usize,
) -> (f64, Vec<Duration>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = AuditSettings {
        dir: dir.path().join("audit"),
        durability,
        max_file_bytes: 1 << 40,
        digest_every: u64::MAX,
        digest_interval: Duration::from_secs(3600),
        stdout: false,
    };
    // No daemon: only the final digest is attempted (unsigned).
    let hsm = HsmClient::new(dir.path().join("no-daemon.sock"));
    let auditor = Auditor::start(settings, hsm).expect("start");
    let records = if durability == Durability::Fsync {
        FSYNC_RECORDS
    } else {
        RECORDS
    };
    let per_task = records / concurrency / records_per_call;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let a = auditor.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let t = Instant::now();
                a.submit(vec![body(); records_per_call])
                    .await
                    .expect("written");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    auditor.shutdown().await;
    all.sort();
    (rate, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with --ignored --nocapture"]
async fn audit_write_throughput_and_latency() {
    for durability in [Durability::None, Durability::Group, Durability::Fsync] {
        for (concurrency, per_call) in [(1, 1), (64, 1), (64, 2)] {
            if durability == Durability::Fsync && concurrency == 1 {
                continue;
            }
            let (rate, lat) = run(durability, concurrency, per_call).await;
            let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
            println!(
                "durability={durability:?} concurrency={concurrency} records/call={per_call}: \
                 {rate:.0} calls/s ({:.0} records/s), p50 {:?}, p99 {:?}, max {:?} \
                 ({} calls, records of ~900 B)",
                rate * per_call as f64,
                pct(0.50),
                pct(0.99),
                lat[lat.len() - 1],
                lat.len()
            );
        }
    }
}

/// The CPU cost of building one Encrypt call's records (its authorization
/// decision and its own record) and chaining them, as the request path and
/// the writer do; printed per call.
#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn audit_record_building_cost() {
    use super::chain;
    use super::decision::{self, Decided};
    use super::record::{self, ApiCall};
    use crate::principal::Principal;
    use crate::service::authz::{Authorization, Reason};

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let principal = Principal {
        arn: "arn:aws:iam::111122223333:user/bench".into(),
        account_id: "111122223333".into(),
        access_key_id: "AKIABENCH74HDJFBBZIM".into(),
        admin: false,
    };
    let request = br#"{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","Plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#;
    let response = format!(
        r#"{{"CiphertextBlob":"{}","KeyId":"{KEY}","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#,
        "A".repeat(200)
    );
    let decided = Decided {
        time: time::OffsetDateTime::now_utc(),
        authorization: Authorization {
            principal: principal.arn.clone(),
            action: "kms:Encrypt".into(),
            resource: KEY.into(),
            allowed: true,
            reason: Reason::Statement {
                sid: Some("Enable IAM User Permissions".into()),
                index: 1,
            },
        },
    };
    let calls = 200_000u32;
    let (mut built, mut chained) = (Duration::ZERO, Duration::ZERO);
    let mut head = chain::GENESIS_HASH;
    let mut bytes = 0usize;
    for i in 0..calls {
        let t = Instant::now();
        let decided = Decided {
            time: time::OffsetDateTime::now_utc(),
            ..decided.clone()
        };
        let call = ApiCall {
            request_id: "edf21dd8-3bba-4f3e-a47a-486df1c7af7c",
            time: time::OffsetDateTime::now_utc(),
            operation: "Encrypt",
            principal: &principal,
            region: "us-east-1",
            source_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
            user_agent: None,
            request_body: request,
            response_body: response.as_bytes(),
            error_code: None,
        };
        let records = [
            decision::event(&call, &decided).expect("decision"),
            record::event(&call).expect("record"),
        ];
        let t2 = Instant::now();
        for body in &records {
            let line = chain::chained_line(u64::from(i) * 2, &head, body);
            head = chain::line_hash(&line);
            bytes += line.len();
        }
        chained += t2.elapsed();
        built += t2 - t;
    }
    println!(
        "per Encrypt call (2 records, {} B): building {:.2} µs, chaining {:.2} µs",
        bytes / calls as usize,
        built.as_secs_f64() * 1e6 / f64::from(calls),
        chained.as_secs_f64() * 1e6 / f64::from(calls),
    );
}
