//! Prometheus metrics (`ringkv node --metrics-listen ADDR`): `/metrics` in the OpenMetrics
//! text format over plain HTTP, encoded by the `prometheus-client` crate.
//!
//! Two kinds: request latency histograms per operation and outcome, recorded as requests
//! finish (unary and session alike); and, read at each scrape, every counter `Status`
//! reports (`engine.*`, `replica.*`, `hints.*`, `anti_entropy.*`, `transfer.*`,
//! `handoff.*`, `coordinator.*`) plus the state of every ring member. docs/metrics.md lists
//! the names.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Node;

/// Status figures that go up and down (the rest only grow, and are counters).
const GAUGES: &[&str] = &[
    "hints.pending",
    "replica.actor_epoch",
    "merkle.entries",
    "ring.version",
    "peers.unreachable",
    "engine.last_sequence",
    "engine.write_amplification_milli",
    "engine.cache_bytes",
    "engine.cache_capacity_bytes",
    "engine.write_stall_max_micros",
    "engine.memtable_bytes",
    "engine.immutable_memtables",
];
/// Prefixes of Status figures that are gauges too (per-level sizes).
const GAUGE_PREFIXES: &[&str] = &[
    "engine.bytes_l",
    "engine.tables_l",
    // Quantiles of recent replica round trips (coordinator/legs.rs).
    "coordinator.merge_rtt_us.",
    "coordinator.fetch_rtt_us.",
    "coordinator.local_durable_us.",
];
/// Status figures that mean nothing as a time series.
const SKIPPED: &[&str] = &["merkle.digest"];

/// Labels of a request metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `put`, `get` or `delete`.
    pub op: &'static str,
    /// `ok`, or the gRPC code of the failure (`unavailable`, `invalid_argument`, ...).
    pub outcome: &'static str,
}

/// The histograms requests record into.
#[derive(Debug)]
pub struct RequestMetrics {
    latency: Family<RequestLabels, Histogram>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            latency: Family::new_with_constructor(|| {
                // 50 µs to about 1.6 s.
                Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
            }),
        }
    }
}

impl RequestMetrics {
    /// Records one finished request.
    pub fn record(&self, op: &'static str, outcome: Option<tonic::Code>, took: Duration) {
        let labels = RequestLabels {
            op,
            outcome: outcome.map_or("ok", code_label),
        };
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

fn code_label(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "ok",
        tonic::Code::InvalidArgument => "invalid_argument",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DeadlineExceeded => "deadline_exceeded",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::PermissionDenied => "permission_denied",
        tonic::Code::FailedPrecondition => "failed_precondition",
        tonic::Code::Internal => "internal",
        _ => "other",
    }
}

/// Reads the node's `Status` figures and member states at each scrape.
struct StatusCollector(Node);

impl std::fmt::Debug for StatusCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusCollector")
    }
}

/// `engine.wal_syncs` becomes `ringkv_engine_wal_syncs`.
fn metric_name(status_name: &str) -> String {
    let mut out = String::with_capacity(status_name.len() + 7);
    out.push_str("ringkv_");
    out.extend(
        status_name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemberLabels {
    member: String,
    state: String,
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut stats: Vec<(String, u64)> = self.0.stats().into_iter().collect();
        stats.sort();
        for (name, value) in stats {
            if SKIPPED.contains(&name.as_str()) {
                continue;
            }
            let metric = metric_name(&name);
            let help = format!("`{name}` from Status (docs/wire.md)");
            if GAUGES.contains(&name.as_str()) || GAUGE_PREFIXES.iter().any(|p| name.starts_with(p))
            {
                let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
                g.encode(encoder.encode_descriptor(&metric, &help, None, g.metric_type())?)?;
            } else {
                let c = ConstCounter::new(value);
                c.encode(encoder.encode_descriptor(&metric, &help, None, c.metric_type())?)?;
            }
        }
        let members = Family::<MemberLabels, prometheus_client::metrics::gauge::Gauge>::default();
        for (member, state) in self.0.member_states() {
            members
                .get_or_create(&MemberLabels { member, state })
                .set(1);
        }
        members.encode(encoder.encode_descriptor(
            "ringkv_member_state",
            "1 for each ring member in the state this node sees it in (alive, suspect, down)",
            None,
            members.metric_type(),
        )?)
    }
}

/// A node's registry: its request histograms and its Status collector.
fn registry(node: &Node) -> Registry {
    let mut r = Registry::default();
    r.register(
        "ringkv_request_seconds",
        "Client requests (unary and in sessions) by operation and outcome, from arrival to answer",
        node.requests.latency.clone(),
    );
    r.register_collector(Box::new(StatusCollector(node.clone())));
    r
}

/// Serves `/metrics` on `listener` until the task is aborted.
pub async fn serve(node: Node, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_registry(Arc::new(registry(&node)), listener).await
}

/// Serves `registry` as `GET /metrics` (OpenMetrics text) on `listener` until the task is
/// aborted: a node's metrics, and the loadgen's live progress (`loadgen run
/// --metrics-listen`).
pub async fn serve_registry(
    registry: Arc<Registry>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => (
                        axum::http::StatusCode::OK,
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    ),
                    Err(_) => (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(axum::http::header::CONTENT_TYPE, "text/plain")],
                        "metrics could not be encoded".to_string(),
                    ),
                }
            }
        }),
    );
    axum::serve(listener, app).await
}

/// Binds the metrics address (before the node serves, so a taken port is a clear start-up
/// error).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_become_prometheus_names() {
        assert_eq!(metric_name("engine.wal_syncs"), "ringkv_engine_wal_syncs");
        assert_eq!(metric_name("peers.unreachable"), "ringkv_peers_unreachable");
    }
}
