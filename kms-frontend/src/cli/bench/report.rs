//! `kmsctl bench` results: per-connection statistics (an HDR histogram of
//! successful replies' latency in microseconds, 3 significant digits, and
//! error counts by AWS error type), merged at the end and printed for people
//! or as JSON. Failed requests are counted, never put in the histogram.

use super::Op;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// Highest latency the histogram tracks (1 hour, in microseconds).
const MAX_MICROS: u64 = 3_600_000_000;

/// What one connection (or, merged, the whole run) saw.
#[derive(Debug)]
pub(crate) struct WorkerStats {
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl WorkerStats {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, MAX_MICROS, 3)?,
            errors: BTreeMap::new(),
        })
    }

    pub(crate) fn ok(&mut self, micros: u64) {
        self.latency.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub(crate) fn error(&mut self, code: &str) {
        *self.errors.entry(code.to_owned()).or_default() += 1;
    }

    pub(crate) fn merge(&mut self, other: Self) -> anyhow::Result<()> {
        self.latency.add(&other.latency)?;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        Ok(())
    }

    fn ok_count(&self) -> u64 {
        self.latency.len()
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A finished run.
#[derive(Debug)]
pub(crate) struct Summary {
    pub endpoint: String,
    pub op: Op,
    pub connections: u32,
    pub payload: usize,
    pub elapsed: Duration,
    pub stats: WorkerStats,
}

/// The percentiles reported, as (label, quantile).
const PERCENTILES: [(&str, f64); 4] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
];

impl Summary {
    fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (self.stats.ok_count() + self.stats.error_count()) as f64 / secs
        } else {
            0.0
        }
    }

    fn percentile_micros(&self, q: f64) -> u64 {
        self.stats.latency.value_at_quantile(q)
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut latency = serde_json::Map::new();
        for (label, q) in PERCENTILES {
            latency.insert(label.replace('.', "_"), json!(self.percentile_micros(q)));
        }
        latency.insert("mean".into(), json!(self.stats.latency.mean().round()));
        latency.insert("max".into(), json!(self.stats.latency.max()));
        json!({
            "endpoint": self.endpoint,
            "op": self.op,
            "connections": self.connections,
            "payload_bytes": self.payload,
            "seconds": self.elapsed.as_secs_f64(),
            "requests": self.stats.ok_count() + self.stats.error_count(),
            "ok": self.stats.ok_count(),
            "errors": self.stats.errors,
            "ops_per_sec": self.ops_per_sec().round(),
            "latency_us": latency,
        })
    }

    pub(crate) fn to_text(&self) -> String {
        let s = &self.stats;
        let mut out = String::new();
        let op = serde_json::to_value(self.op)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{op} against {}: {} connections, {:.1} s, payload {} bytes",
            self.endpoint,
            self.connections,
            self.elapsed.as_secs_f64(),
            self.payload
        );
        let _ = writeln!(
            out,
            "requests    {} ({} ok, {} errors)",
            s.ok_count() + s.error_count(),
            s.ok_count(),
            s.error_count()
        );
        let _ = writeln!(out, "throughput  {:.0} ops/s", self.ops_per_sec());
        let mut line = String::from("latency    ");
        for (label, q) in PERCENTILES {
            let _ = write!(line, " {label} {}", ms(self.percentile_micros(q)));
        }
        let _ = write!(line, " max {}", ms(s.latency.max()));
        let _ = writeln!(out, "{line}");
        for (code, n) in &s.errors {
            let _ = writeln!(out, "error       {code}: {n}");
        }
        out
    }
}

fn ms(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(stats: WorkerStats) -> Summary {
        Summary {
            endpoint: "https://127.0.0.1:1".into(),
            op: Op::Encrypt,
            connections: 2,
            payload: 32,
            elapsed: Duration::from_secs(2),
            stats,
        }
    }

    #[test]
    fn merged_stats_report_rate_percentiles_and_errors() {
        let mut a = WorkerStats::new().expect("histogram");
        let mut b = WorkerStats::new().expect("histogram");
        for us in 1..=1000 {
            a.ok(us);
        }
        b.ok(5000);
        b.error("ThrottlingException");
        b.error("ThrottlingException");
        b.error("ConnectionError");
        a.merge(b).expect("merge");
        let v = summary(a).to_json();
        assert_eq!(v["requests"], 1004);
        assert_eq!(v["ok"], 1001);
        assert_eq!(v["ops_per_sec"], 502.0);
        assert_eq!(v["errors"]["ThrottlingException"], 2);
        assert_eq!(v["errors"]["ConnectionError"], 1);
        let p50 = v["latency_us"]["p50"].as_u64().expect("p50");
        assert!((499..=502).contains(&p50), "p50 {p50}");
        assert!(v["latency_us"]["max"].as_u64().expect("max") >= 5000);
    }

    #[test]
    fn text_report_names_every_error_type() {
        let mut s = WorkerStats::new().expect("histogram");
        s.ok(1500);
        s.error("NotFoundException");
        let text = summary(s).to_text();
        assert!(text.contains("throughput  1 ops/s"), "{text}");
        assert!(text.contains("p99.9 1.50 ms"), "{text}");
        assert!(text.contains("error       NotFoundException: 1"), "{text}");
    }
}
