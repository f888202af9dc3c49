//! `summary.json`: its types (read back by `plot` and `compare`) and how a point's summary is
//! computed from what the runner recorded.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::generator::OpKind;
use crate::record::OpHistograms;
use crate::resources::ProcessStats;
use crate::run::Outcome;
use crate::sweep::{Load, Point};

/// The load generator counts as the bottleneck when its process used at least this much CPU
/// (percent of one core: the driver is one thread)…
pub const CLIENT_BOUND_CPU_PCT: f64 = 90.0;
/// …or when its own scheduling lag (how late the pacer woke, per request) is above this at p99,
/// in µs…
pub const CLIENT_BOUND_WAKE_LAG_P99_US: f64 = 1_000.0;
/// …and is at least this fraction of the point's p99 response time.
pub const CLIENT_BOUND_WAKE_LAG_SHARE: f64 = 0.25;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

fn us(ns: u64) -> f64 {
    (ns as f64 / 1000.0 * 1000.0).round() / 1000.0
}

impl Latency {
    /// Percentiles of a histogram in ns.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// One operation kind at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    /// Completed operations, failed ones included.
    pub count: u64,
    /// Failed operations.
    pub errors: u64,
    /// Successful operations per second of the measured window.
    pub throughput_ops_s: f64,
    /// Response time (open loop: from the intended start).
    #[serde(flatten)]
    pub response: Latency,
    /// Service time (from the actual send).
    pub service: Latency,
}

/// The parameters of a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Value size in bytes (the mean when sizes vary; see `values`).
    pub value_bytes: u64,
    /// The value-size spec, e.g. `1KB` or `uniform 100B..10KB`.
    pub values: String,
    /// Replication factor N.
    pub replication: u32,
    /// Write quorum W.
    pub write_quorum: u32,
    /// Read quorum R.
    pub read_quorum: u32,
    /// Nodes in the cluster.
    pub nodes: u32,
    /// Open loop: intended rate, ops/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Closed loop: workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

impl Params {
    /// The parameters of a sweep point.
    pub fn of(p: &Point) -> Params {
        let (rate, concurrency) = match p.load {
            Load::Open { rate } => (Some(rate), None),
            Load::Closed { concurrency } => (None, Some(concurrency)),
        };
        Params {
            value_bytes: p.values.mean_bytes(),
            values: p.values.to_string(),
            replication: p.replication,
            write_quorum: p.write_quorum,
            read_quorum: p.read_quorum,
            nodes: p.nodes,
            rate,
            concurrency,
        }
    }
}

/// How well the open-loop schedule was kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleCheck {
    /// Ticks intended within the measured window.
    pub ticks_due: u64,
    /// Requests sent more than 2 ms after their intended time.
    pub late_ticks: u64,
    /// Ticks never sent before the drain deadline.
    pub missed_ticks: u64,
    /// Send minus intended time: median, µs.
    pub lag_p50_us: f64,
    /// Send minus intended time: p99, µs.
    pub lag_p99_us: f64,
    /// Send minus intended time: max, µs.
    pub lag_max_us: f64,
    /// How late the driver woke for a due tick (its own timer and CPU lag): p99, µs.
    pub wake_lag_p99_us: f64,
    /// …and the largest, µs.
    pub wake_lag_max_us: f64,
}

/// The load generator's own cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelfCheck {
    /// CPU of the loadgen process over the window, percent of one core.
    pub loadgen_cpu_pct: f64,
    /// Loadgen CPU time per completed operation, µs.
    pub cpu_us_per_op: f64,
    /// Why the point is flagged `client_bound` (empty when it is not).
    pub reasons: Vec<String>,
}

/// One point of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    /// 0-based index in the sweep.
    pub index: usize,
    /// File-name id, e.g. `p03`.
    pub id: String,
    /// Human label.
    pub label: String,
    /// The parameters that vary between points.
    pub params: Params,
    /// Per operation kind (`read`, `write`, `delete`, `read_modify_write`), those in the mix.
    pub ops: BTreeMap<String, OpSummary>,
    /// Open loop: intended ops/s; absent for a closed loop.
    pub offered_rate: Option<f64>,
    /// Completed operations per second.
    pub achieved_rate: f64,
    /// True when the load generator, not the target, limited this point.
    pub client_bound: bool,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    /// Operations sent during warm-up (excluded from every figure).
    pub warmup_ops: u64,
    /// Keys written before warm-up, and how many of those writes failed.
    pub preload: Preload,
    /// Open-loop schedule keeping.
    pub schedule: ScheduleCheck,
    /// The load generator's own cost.
    pub self_check: SelfCheck,
    /// CPU and memory of the loadgen and of each node process.
    pub processes: Vec<ProcessStats>,
    /// The first error message, if any operation failed.
    pub first_error: Option<String>,
    /// Interval log per operation, relative to the results folder.
    pub logs: BTreeMap<String, String>,
    /// Cluster events of the workload's `events:` schedule, as they happened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<crate::events::EventRecord>,
}

/// Preload figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preload {
    /// Keys written.
    pub keys: u64,
    /// Writes that failed.
    pub failed: u64,
    /// Seconds it took.
    pub seconds: f64,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The workload's name.
    pub name: String,
    /// `ringkv` or `null`.
    pub target: String,
    /// When the run started (UTC, ISO 8601).
    pub started: String,
    /// One entry per sweep point, in sweep order.
    pub points: Vec<PointSummary>,
}

/// Everything needed to summarise a point besides the recorder's output.
pub struct PointFacts<'a> {
    /// The point.
    pub point: &'a Point,
    /// The runner's outcome.
    pub outcome: &'a Outcome,
    /// Resource samples over the window.
    pub processes: Vec<ProcessStats>,
    /// First error message seen.
    pub first_error: Option<String>,
    /// Preload figures.
    pub preload: Preload,
    /// Operation kinds in the mix, with their log paths relative to the results folder.
    pub logs: Vec<(OpKind, String)>,
    /// The target does no work (`null`): every figure measures the load generator.
    pub null_target: bool,
}

/// Builds a point's summary.
pub fn summarise_point(f: PointFacts<'_>) -> PointSummary {
    let rec = &f.outcome.recorded;
    let secs = rec.measured.as_secs_f64().max(1e-9);
    let mut ops = BTreeMap::new();
    let mut completed = 0u64;
    for (kind, _) in &f.logs {
        let Some(h) = rec.ops.get(kind.index()) else {
            continue;
        };
        ops.insert(kind.name().to_string(), op_summary(h, secs));
        completed += h.response.len();
    }
    let achieved_rate = completed as f64 / secs;
    let loadgen_cpu_pct = f
        .processes
        .iter()
        .find(|p| p.role == "loadgen")
        .map(|p| p.cpu_pct)
        .unwrap_or(0.0);
    let cpu_us_per_op = if completed > 0 {
        loadgen_cpu_pct / 100.0 * secs * 1e6 / completed as f64
    } else {
        0.0
    };
    let wake = Latency::of(&rec.wake_lag);
    let lag = Latency::of(&rec.schedule_lag);
    let mut reasons = Vec::new();
    if f.null_target {
        reasons
            .push("the null target does no work: every figure measures the load generator".into());
    }
    if loadgen_cpu_pct >= CLIENT_BOUND_CPU_PCT {
        reasons.push(format!(
            "loadgen CPU {loadgen_cpu_pct:.0}% of a core (>= {CLIENT_BOUND_CPU_PCT:.0}%)"
        ));
    }
    let response_p99 = ops
        .values()
        .map(|o: &OpSummary| o.response.p99_us)
        .fold(0.0, f64::max);
    if wake.p99_us > CLIENT_BOUND_WAKE_LAG_P99_US
        && wake.p99_us >= CLIENT_BOUND_WAKE_LAG_SHARE * response_p99
    {
        reasons.push(format!(
            "the loadgen itself sent requests {:.1} ms late at p99 (CPU starvation or timer \
             lag), {:.0}% of the p99 response time",
            wake.p99_us / 1000.0,
            100.0 * wake.p99_us / response_p99.max(1e-9)
        ));
    }
    PointSummary {
        index: f.point.index,
        id: f.point.id(),
        label: f.point.label(),
        params: Params::of(f.point),
        ops,
        offered_rate: f.outcome.offered_rate,
        achieved_rate: (achieved_rate * 10.0).round() / 10.0,
        client_bound: !reasons.is_empty(),
        duration_s: (secs * 1000.0).round() / 1000.0,
        warmup_ops: rec.warmup_ops,
        preload: f.preload,
        schedule: ScheduleCheck {
            ticks_due: f.outcome.ticks_due,
            late_ticks: rec.late_ticks,
            missed_ticks: f.outcome.missed_ticks,
            lag_p50_us: lag.p50_us,
            lag_p99_us: lag.p99_us,
            lag_max_us: lag.max_us,
            wake_lag_p99_us: wake.p99_us,
            wake_lag_max_us: wake.max_us,
        },
        self_check: SelfCheck {
            loadgen_cpu_pct: (loadgen_cpu_pct * 10.0).round() / 10.0,
            cpu_us_per_op: (cpu_us_per_op * 1000.0).round() / 1000.0,
            reasons,
        },
        processes: f.processes,
        first_error: f.first_error,
        logs: f
            .logs
            .into_iter()
            .map(|(k, p)| (k.name().to_string(), p))
            .collect(),
        events: Vec::new(),
    }
}

fn op_summary(h: &OpHistograms, secs: f64) -> OpSummary {
    let count = h.response.len();
    OpSummary {
        count,
        errors: h.errors,
        throughput_ops_s: ((count.saturating_sub(h.errors)) as f64 / secs * 10.0).round() / 10.0,
        response: Latency::of(&h.response),
        service: Latency::of(&h.service),
    }
}
