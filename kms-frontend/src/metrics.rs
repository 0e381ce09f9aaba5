//! Prometheus metrics of the frontend, served by `server` at `GET /metrics`
//! in the OpenMetrics text format (which Prometheus scrapes natively).
//!
//! One process-wide registry ([`global`]) so any module can count without
//! threading a handle through: `server` counts requests, latency and
//! connections, `hsm_client` the daemon round trips, `audit` its writes.
//! The daemon's own counters are read through `Request::Status` at scrape
//! time and exposed as `hsm_daemon_*` gauges. Label values are bounded:
//! operation names that the API recognised (anything else is `Unknown`),
//! `ok` or an AWS error name; never a principal, key id or client-chosen
//! string, so the endpoint reveals only aggregate counts (it is served
//! without authentication, like `/health`; see THREAT_MODEL.md).

use crate::policy::Action;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value: borrowed when it is one of the names every request uses
/// ([`label`]), so counting a request allocates nothing.
type Label = Cow<'static, str>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpOutcome {
    operation: Label,
    outcome: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    operation: Label,
}

/// `value` as a label: the static name when it is a KMS action or one of
/// the fixed labels, a copy otherwise (errors, admin operations).
fn label(value: &str) -> Label {
    static NAMES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        Action::ALL
            .iter()
            .map(|a| a.name())
            .chain(["ReEncrypt", "Unknown", "Unauthenticated", "ok"])
            .collect()
    });
    match names.get(value) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(value.to_owned()),
    }
}

type HistogramFamily = Family<Op, Histogram, fn() -> Histogram>;

/// Latency buckets from 50 µs to about 3.3 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// The daemon's counters as last read from `Request::Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaemonCounters {
    pub up: bool,
    pub uptime_secs: u64,
    pub cached_keys: u32,
    pub requests: u64,
    pub locked_bytes: u64,
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<OpOutcome, Counter>,
    request_seconds: HistogramFamily,
    hsm_requests: Family<OpOutcome, Counter>,
    hsm_seconds: HistogramFamily,
    connections_open: Gauge,
    connections: Counter,
    audit_records: Counter,
    audit_failures: Counter,
    audit_write_seconds: Histogram,
    daemon_up: Gauge,
    daemon_uptime: Gauge,
    daemon_cached_keys: Gauge,
    daemon_requests: Gauge,
    daemon_locked_bytes: Gauge,
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

fn gauge_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("kms");
        let requests = Family::<OpOutcome, Counter>::default();
        let request_seconds = HistogramFamily::new_with_constructor(latency_histogram);
        let hsm_requests = Family::<OpOutcome, Counter>::default();
        let hsm_seconds = HistogramFamily::new_with_constructor(latency_histogram);
        let connections_open = Gauge::default();
        let connections = Counter::default();
        let audit_records = Counter::default();
        let audit_failures = Counter::default();
        let audit_write_seconds = latency_histogram();
        registry.register(
            "requests",
            "KMS API requests by operation and outcome (ok or the AWS error name)",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request's arrival to its reply, by operation",
            request_seconds.clone(),
        );
        registry.register(
            "hsm_requests",
            "Requests to hsm-daemon by operation and outcome",
            hsm_requests.clone(),
        );
        registry.register(
            "hsm_round_trip_seconds",
            "Round trip of one request to hsm-daemon, by operation",
            hsm_seconds.clone(),
        );
        registry.register(
            "connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        registry.register(
            "connections",
            "Client connections accepted",
            connections.clone(),
        );
        registry.register(
            "audit_records",
            "Audit records written (API calls and digests)",
            audit_records.clone(),
        );
        registry.register(
            "audit_failures",
            "Audit records that could not be written (the request failed)",
            audit_failures.clone(),
        );
        registry.register(
            "audit_write_seconds",
            "From a record's submission to the audit writer until it is written \
             and as durable as configured",
            audit_write_seconds.clone(),
        );
        let daemon = registry.sub_registry_with_prefix("hsm_daemon");
        let daemon_up = Gauge::default();
        let daemon_uptime = Gauge::default();
        let daemon_cached_keys = Gauge::default();
        let daemon_requests = Gauge::default();
        let daemon_locked_bytes = Gauge::default();
        daemon.register(
            "up",
            "1 if hsm-daemon answered Status at this scrape",
            daemon_up.clone(),
        );
        daemon.register(
            "uptime_seconds",
            "hsm-daemon's uptime",
            daemon_uptime.clone(),
        );
        daemon.register(
            "cached_keys",
            "Unwrapped CMK versions in hsm-daemon's locked memory",
            daemon_cached_keys.clone(),
        );
        daemon.register(
            "served_requests",
            "Requests hsm-daemon served since it started (its own count)",
            daemon_requests.clone(),
        );
        daemon.register(
            "locked_bytes",
            "Bytes of locked key memory in hsm-daemon",
            daemon_locked_bytes.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            hsm_requests,
            hsm_seconds,
            connections_open,
            connections,
            audit_records,
            audit_failures,
            audit_write_seconds,
            daemon_up,
            daemon_uptime,
            daemon_cached_keys,
            daemon_requests,
            daemon_locked_bytes,
        }
    }

    /// One finished API request.
    pub fn request(&self, operation: &str, outcome: &str, elapsed: Duration) {
        self.requests
            .get_or_create(&OpOutcome {
                operation: label(operation),
                outcome: label(outcome),
            })
            .inc();
        self.request_seconds
            .get_or_create(&Op {
                operation: label(operation),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// One round trip to hsm-daemon.
    pub fn hsm_round_trip<T, E: std::fmt::Display>(
        &self,
        operation: &'static str,
        result: &Result<T, E>,
        elapsed: Duration,
    ) {
        let outcome = match result {
            Ok(_) => Cow::Borrowed("ok"),
            Err(e) => Cow::Owned(e.to_string().chars().take(64).collect()),
        };
        self.hsm_requests
            .get_or_create(&OpOutcome {
                operation: Cow::Borrowed(operation),
                outcome,
            })
            .inc();
        self.hsm_seconds
            .get_or_create(&Op {
                operation: Cow::Borrowed(operation),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A client connection opened; the guard counts it closed on drop.
    pub fn connection_opened(&'static self) -> ConnectionGuard {
        self.connections.inc();
        self.connections_open.inc();
        ConnectionGuard { metrics: self }
    }

    /// Audit records written together, and how long the first waited.
    pub fn audit_written(&self, records: u64, elapsed: Duration) {
        self.audit_records.inc_by(records);
        self.audit_write_seconds.observe(elapsed.as_secs_f64());
    }

    /// Audit records that could not be written.
    pub fn audit_failed(&self, records: u64) {
        self.audit_failures.inc_by(records);
    }

    /// Sets the `hsm_daemon_*` gauges.
    pub fn set_daemon(&self, d: DaemonCounters) {
        self.daemon_up.set(i64::from(d.up));
        self.daemon_uptime.set(gauge_i64(d.uptime_secs));
        self.daemon_cached_keys.set(i64::from(d.cached_keys));
        self.daemon_requests.set(gauge_i64(d.requests));
        self.daemon_locked_bytes.set(gauge_i64(d.locked_bytes));
    }

    /// The whole registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Counts a connection closed when dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    metrics: &'static Metrics,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_text_format() {
        let m = Metrics::new();
        m.request("Encrypt", "ok", Duration::from_millis(1));
        m.request("Encrypt", "ok", Duration::from_millis(2));
        m.request("Decrypt", "NotFoundException", Duration::from_millis(1));
        let text = m.encode();
        assert!(text.contains("kms_requests_total{operation=\"Encrypt\",outcome=\"ok\"} 2"));
        assert!(
            text.contains(
                "kms_requests_total{operation=\"Decrypt\",outcome=\"NotFoundException\"} 1"
            )
        );
        assert!(text.contains("kms_request_duration_seconds_count{operation=\"Encrypt\"} 2"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn request_labels_are_static_names_and_others_are_copied() {
        for name in ["Encrypt", "ReEncrypt", "Unauthenticated", "ok"] {
            assert!(matches!(label(name), Cow::Borrowed(n) if n == name));
        }
        let other = label("HsmKmsAdmin.CreatePrincipal");
        assert!(matches!(other, Cow::Owned(ref n) if n == "HsmKmsAdmin.CreatePrincipal"));
    }
}
