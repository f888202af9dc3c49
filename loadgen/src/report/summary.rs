//! `summary.json`: its types (read back by `plot` and `compare`) and how a point's summary is
//! computed from what the runner recorded.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::generator::OpKind;
use crate::plan::{Load, Point};
use crate::record::{OpHistograms, OverTime};
use crate::resources::{ProcessStats, Resources};
use crate::run::Outcome;
use crate::workload::{RateSchedule, RateStep};

/// The load generator counts as the bottleneck when its process used at least this much CPU
/// (percent of one core: the driver is one thread)…
pub const CLIENT_BOUND_CPU_PCT: f64 = 90.0;
/// …or when its own scheduling lag (how late the pacer woke, per request) is above this at p99,
/// in µs…
pub const CLIENT_BOUND_WAKE_LAG_P99_US: f64 = 1_000.0;
/// …and is at least this fraction of the point's p99 response time.
pub const CLIENT_BOUND_WAKE_LAG_SHARE: f64 = 0.25;

/// An open-loop point sustained its offered rate when it achieved at least this share of it.
pub const SUSTAINED_SHARE: f64 = 0.95;

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
    /// Of those, writes whose outcome is unknown (in flight when a connection broke or a
    /// deadline passed: they may have been applied). Absent in folders written before.
    #[serde(default)]
    pub errors_indeterminate: u64,
    /// Of those, writes the store refused because the key held too many concurrent
    /// versions (ringkv's sibling bound; nothing applied). Absent in folders written before.
    #[serde(default)]
    pub errors_conflict: u64,
    /// Reads answered that found no value (the key was never written, or is deleted): counted
    /// as answered, and here, since a miss is cheaper to serve than a hit. Absent in folders
    /// written before.
    #[serde(default)]
    pub found_nothing: u64,
    /// Successful operations per second of the measured window.
    pub throughput_ops_s: f64,
    /// Response time (open loop: from the intended start).
    #[serde(flatten)]
    pub response: Latency,
    /// Service time (from the actual send).
    pub service: Latency,
    /// Response time of failed requests, kept apart from the figures above; absent when none
    /// failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Latency>,
    /// The highest response-time p99 of any one-second interval of the window, µs: the worst
    /// second of the timeline chart. Absent when no such second answered a request of this kind,
    /// and in folders written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_second_p99_us: Option<f64>,
    /// The response-time p99 of each minute of the window, µs (`null` for a minute that
    /// answered nothing of this kind; a last part-minute under 30 s is left off). Empty, and
    /// not written, for windows shorter than two minutes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub p99_per_minute_us: Vec<Option<f64>>,
}

/// Windows at least this long get [`OpSummary::p99_per_minute_us`].
pub const PER_MINUTE_FROM_S: f64 = 120.0;

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
    /// Distinct keys, when `sweep.keys` varies them (absent otherwise: the count is the
    /// workload's `keys.count`, and older folders have no such field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    /// Open loop at a constant rate: intended rate, ops/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Open loop on a rate schedule (`rate` is then absent): its steps, `at_s` counted from
    /// the end of warm-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_schedule: Option<Vec<RateStep>>,
    /// Closed loop: workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

impl Params {
    /// The parameters of a sweep point.
    pub fn of(p: &Point) -> Params {
        let (rate, rate_schedule, concurrency) = match &p.load {
            Load::Open { rate } => match rate.constant_rate() {
                Some(r) => (Some(r), None, None),
                None => (None, Some(rate.steps().to_vec()), None),
            },
            Load::Closed { concurrency } => (None, None, Some(*concurrency)),
        };
        Params {
            value_bytes: p.values.mean_bytes(),
            values: p.values.to_string(),
            replication: p.replication,
            write_quorum: p.write_quorum,
            read_quorum: p.read_quorum,
            nodes: p.nodes,
            keys: p.keys_swept.then_some(p.keys),
            rate,
            rate_schedule,
            concurrency,
        }
    }

    /// Whether the point ran an open loop (a rate or a rate schedule).
    pub fn is_open_loop(&self) -> bool {
        self.rate.is_some() || self.rate_schedule.is_some()
    }

    /// The open loop's schedule (a constant rate is a one-step schedule); `None` for a closed
    /// loop or a schedule that does not check.
    pub fn schedule(&self) -> Option<RateSchedule> {
        match (&self.rate_schedule, self.rate) {
            (Some(steps), _) => RateSchedule::new(steps.clone()).ok(),
            (None, Some(r)) => RateSchedule::constant(r).ok(),
            (None, None) => None,
        }
    }

    /// How the load was driven, for tables: `rate 5000`, `rate 500 at 0s, ramp to 6000 by
    /// 60s`, or `conc 8 (uncorrected)`.
    pub fn load_text(&self) -> String {
        match (self.schedule(), self.concurrency) {
            (Some(s), _) => format!("rate {s}"),
            (None, Some(c)) => format!("conc {c} (uncorrected)"),
            (None, None) => String::new(),
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
    /// What else ran on the machine during the window, when enough to move the figures:
    /// other programs' CPU ([`SHARED_OTHER_CPU_PCT`]) or the hypervisor's steal
    /// ([`SHARED_STEAL_PCT`]). Not a client-bound flag: the figures are the target's, with
    /// that noise in them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_machine: Vec<String>,
}

/// Other programs' CPU over the window, percent of one core, from which a point says it shared
/// its machine. Runs of a local cluster alone measure 0–1% here; a busy loop beside one, 73%.
pub const SHARED_OTHER_CPU_PCT: f64 = 10.0;
/// Steal over the window, percent of one core, from which a point says it shared its machine.
pub const SHARED_STEAL_PCT: f64 = 5.0;

/// The sentences for [`SelfCheck::shared_machine`] from a window's resources.
pub fn shared_machine(r: Option<&Resources>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(other) = r.and_then(|r| r.other_cpu_pct)
        && other >= SHARED_OTHER_CPU_PCT
    {
        out.push(format!(
            "other programs on this machine used {other:.0}% of a core during the window"
        ));
    }
    if let Some(steal) = r.and_then(|r| r.steal_pct)
        && steal >= SHARED_STEAL_PCT
    {
        out.push(format!(
            "the hypervisor took {steal:.0}% of a core from this machine (steal) during the window"
        ));
    }
    out
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
    /// Open loop: intended ops/s (on a rate schedule, its mean over the measured window);
    /// absent for a closed loop.
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
    /// How response time was measured: `corrected` (open loop: from the intended start, so
    /// coordinated omission is corrected) or `uncorrected` (closed loop: from the send, so a
    /// stall hides the requests it prevented).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response_time: String,
    /// Per-operation resource counters (medians over runs); absent in old results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Bootstrap 95% intervals of the median over runs, keyed `<op>.<field>` or
    /// `resources.<field>`: `[low, high]`. Present with two runs or more.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub intervals: BTreeMap<String, [f64; 2]>,
    /// Stale reads measured live, beside PBS's prediction (absent when not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencySummary>,
    /// The lost-write audit (absent when not audited; with repeats, the first failing run's,
    /// else the last run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<crate::consistency::audit::Audit>,
    /// What the autoscaler did (with `autoscale:`; with repeats, the last run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<super::autoscale::AutoscaleSummary>,
    /// Every run's own figures, in the order they ran (one entry without `--repeat`). The
    /// figures above are their medians.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunSummary>,
    /// When the (first run's) measured window began, seconds since the Unix epoch: lets
    /// `merge` see how well the shards' windows lined up. Absent in older folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start_unix_s: Option<f64>,
    /// A merged folder: each shard's own figures for this point (medians over its runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<super::shards::ShardPart>,
}

/// A point's consistency: what the live checker measured and what PBS predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencySummary {
    /// How requests were routed: `token_aware` or `random`.
    pub routing: String,
    /// The measurement (over every run of the point).
    #[serde(flatten)]
    pub measured: crate::consistency::Measured,
    /// Predicted stale rate at t = 0 for ringkv's replica choice under this routing.
    pub pbs_stale_rate_t0: Option<f64>,
    /// PBS's closed form at t = 0 (uniform replica choice), for comparison.
    pub pbs_closed_form_t0: Option<f64>,
    /// The WARS Monte-Carlo at t = 0, from the replica round trips the nodes measured in
    /// this run (`null` when they did not report them).
    #[serde(default)]
    pub pbs_wars_stale_rate_t0: Option<f64>,
    /// WARS's P(consistent) at the middle of each bin of the measured curve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pbs_wars_curve: Vec<WarsPoint>,
    /// The round trips WARS was fed (quantiles over the nodes, µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_legs: Option<crate::consistency::pbs::ReplicaLegs>,
}

/// One bin of WARS's predicted curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarsPoint {
    /// Upper edge of the bin (as the measured curve's; `null`: beyond 5 s).
    pub t_upper_ms: Option<f64>,
    /// Predicted probability that a read in the bin is consistent.
    pub p_consistent: f64,
}

/// One run of a point (each on a fresh cluster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// 1-based run number.
    pub run: usize,
    /// Per operation kind, as in [`PointSummary::ops`].
    pub ops: BTreeMap<String, OpSummary>,
    /// Completed operations per second.
    pub achieved_rate: f64,
    /// True when the load generator limited this run.
    pub client_bound: bool,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    /// Open-loop schedule keeping.
    pub schedule: ScheduleCheck,
    /// The load generator's own cost.
    pub self_check: SelfCheck,
    /// Exact CPU of the loadgen and of each node over the window.
    pub processes: Vec<ProcessStats>,
    /// Per-operation resource counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// The run's own consistency measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<crate::consistency::Measured>,
    /// The first error message, if any operation failed.
    pub first_error: Option<String>,
    /// Interval log per operation, relative to the results folder.
    pub logs: BTreeMap<String, String>,
    /// When the run's measured window began, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start_unix_s: Option<f64>,
}

impl RunSummary {
    /// The run-level figures of a one-run point summary.
    pub fn of(run: usize, p: &PointSummary) -> RunSummary {
        RunSummary {
            run,
            ops: p.ops.clone(),
            achieved_rate: p.achieved_rate,
            client_bound: p.client_bound,
            duration_s: p.duration_s,
            schedule: p.schedule.clone(),
            self_check: p.self_check.clone(),
            processes: p.processes.clone(),
            resources: p.resources.clone(),
            consistency: p.consistency.as_ref().map(|c| c.measured.clone()),
            first_error: p.first_error.clone(),
            logs: p.logs.clone(),
            window_start_unix_s: p.window_start_unix_s,
        }
    }
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

/// The `schema_version` this build writes into `summary.json` and `manifest.json`.
/// 1: no `schema_version` field (before repeated runs); 2: `runs`, `resources`, `intervals`.
pub const SCHEMA_VERSION: u32 = 2;

fn legacy_schema() -> u32 {
    1
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Format version (absent, so 1, in folders written before version 2).
    #[serde(default = "legacy_schema")]
    pub schema_version: u32,
    /// The workload's name.
    pub name: String,
    /// `ringkv` or `null`.
    pub target: String,
    /// When the run started (UTC, ISO 8601).
    pub started: String,
    /// One entry per sweep point, in sweep order.
    pub points: Vec<PointSummary>,
    /// This loadgen drove one share of the workload (`--shard i/k`); its figures are its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::workload::Shard>,
    /// The wall-clock time warm-up of the first point was to begin (`--start-at`, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// A folder written by `loadgen merge`: which shard folders it took together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<super::shards::Merged>,
    /// With `search:`, the highest rate under the SLO and every step (the steps' figures are
    /// in `points`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<super::search::SearchSummary>,
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
    /// Per-operation resource counters of the window, when read.
    pub resources: Option<Resources>,
    /// The consistency measurement and prediction, when checked.
    pub consistency: Option<ConsistencySummary>,
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
        let over_time = rec.over_time.get(kind.index()).cloned().unwrap_or_default();
        ops.insert(kind.name().to_string(), op_summary(h, &over_time, secs));
        completed += h.completed();
    }
    let achieved_rate = completed as f64 / secs;
    let loadgen_cpu_pct = f
        .processes
        .iter()
        .find(|p| p.role == "loadgen")
        .map(|p| p.cpu_pct)
        .unwrap_or(0.0);
    let cpu_us_per_op = match &f.resources {
        Some(r) => r.loadgen_cpu_us_per_op,
        None if completed > 0 => loadgen_cpu_pct / 100.0 * secs * 1e6 / completed as f64,
        None => 0.0,
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
    // The driver's own lag against each operation's p99: a fast operation can be dominated
    // by the driver even when the slowest one is not.
    if wake.p99_us > CLIENT_BOUND_WAKE_LAG_P99_US {
        for (op, o) in &ops {
            let p99: f64 = o.response.p99_us;
            if wake.p99_us >= CLIENT_BOUND_WAKE_LAG_SHARE * p99 {
                reasons.push(format!(
                    "the loadgen itself sent requests {:.1} ms late at p99 (CPU starvation or \
                     timer lag), {:.0}% of the {op} p99 response time",
                    wake.p99_us / 1000.0,
                    100.0 * wake.p99_us / p99.max(1e-9)
                ));
            }
        }
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
            shared_machine: shared_machine(f.resources.as_ref()),
        },
        processes: f.processes,
        first_error: f.first_error,
        logs: f
            .logs
            .into_iter()
            .map(|(k, p)| (k.name().to_string(), p))
            .collect(),
        events: Vec::new(),
        response_time: match &f.point.load {
            Load::Open { .. } => "corrected".into(),
            Load::Closed { .. } => "uncorrected".into(),
        },
        resources: f.resources,
        intervals: BTreeMap::new(),
        consistency: f.consistency,
        audit: None,
        autoscale: None,
        runs: Vec::new(),
        window_start_unix_s: f
            .outcome
            .measure_start_wall
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
        shards: Vec::new(),
    }
}

/// Sets `o`'s worst second and, for a window of `secs` of at least [`PER_MINUTE_FROM_S`], its
/// minutes.
pub fn set_over_time(o: &mut OpSummary, over_time: &OverTime, secs: f64) {
    o.worst_second_p99_us = over_time.worst_interval_p99_ns.map(us);
    o.p99_per_minute_us = if secs >= PER_MINUTE_FROM_S {
        over_time
            .per_minute_p99_ns
            .iter()
            .map(|p| p.map(us))
            .collect()
    } else {
        Vec::new()
    };
}

fn op_summary(h: &OpHistograms, over_time: &OverTime, secs: f64) -> OpSummary {
    let succeeded = h.response.len().saturating_sub(h.missed);
    let mut o = OpSummary {
        count: h.completed() + h.missed,
        errors: h.errors,
        errors_indeterminate: h.indeterminate,
        errors_conflict: h.conflicts,
        found_nothing: h.empty,
        throughput_ops_s: (succeeded as f64 / secs * 10.0).round() / 10.0,
        response: Latency::of(&h.response),
        service: Latency::of(&h.service),
        failed: (!h.failed.is_empty()).then(|| Latency::of(&h.failed)),
        worst_second_p99_us: None,
        p99_per_minute_us: Vec::new(),
    };
    set_over_time(&mut o, over_time, secs);
    o
}

// ------------------------------------------------------------------ medians over runs

/// Confidence of the intervals written into `summary.json`.
pub const INTERVAL_CONFIDENCE: f64 = 0.95;

fn med(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    crate::stats::median(&v).unwrap_or(0.0)
}

fn med_u64(xs: impl Iterator<Item = u64>) -> u64 {
    med(xs.map(|x| x as f64)).round() as u64
}

fn med_opt(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = xs.collect::<Option<Vec<f64>>>()?;
    crate::stats::median(&v)
}

/// Minute by minute, the median over the runs that have that minute (runs of one point have
/// the same length, give or take the last part-minute).
fn med_per_minute(each: &[&OpSummary]) -> Vec<Option<f64>> {
    let minutes = each
        .iter()
        .map(|s| s.p99_per_minute_us.len())
        .max()
        .unwrap_or(0);
    (0..minutes)
        .map(|m| {
            let v: Vec<f64> = each
                .iter()
                .filter_map(|s| s.p99_per_minute_us.get(m).copied().flatten())
                .collect();
            crate::stats::median(&v)
        })
        .collect()
}

fn med_latency(ls: &[&Latency]) -> Latency {
    Latency {
        p50_us: med(ls.iter().map(|l| l.p50_us)),
        p90_us: med(ls.iter().map(|l| l.p90_us)),
        p99_us: med(ls.iter().map(|l| l.p99_us)),
        p999_us: med(ls.iter().map(|l| l.p999_us)),
        max_us: med(ls.iter().map(|l| l.max_us)),
    }
}

/// The resource figures that [`aggregate`] takes medians and intervals of.
pub fn resource_fields(r: &Resources) -> Vec<(&'static str, Option<f64>)> {
    vec![
        ("node_cpu_us_per_op", r.node_cpu_us_per_op),
        ("node_voluntary_ctx_per_op", r.node_voluntary_ctx_per_op),
        ("node_involuntary_ctx_per_op", r.node_involuntary_ctx_per_op),
        ("node_read_bytes_per_op", r.node_read_bytes_per_op),
        ("node_write_bytes_per_op", r.node_write_bytes_per_op),
        (
            "node_syscall_read_bytes_per_op",
            r.node_syscall_read_bytes_per_op,
        ),
        (
            "node_syscall_write_bytes_per_op",
            r.node_syscall_write_bytes_per_op,
        ),
        ("fsyncs_per_op", r.fsyncs_per_op),
        ("engine_bytes_per_op", r.engine_bytes_per_op),
        ("write_stall_ms", r.write_stall_ms),
        ("disk_bytes", r.disk_bytes.map(|b| b as f64)),
        ("node_instructions_per_op", r.node_instructions_per_op),
        ("disk_bytes_per_key", r.disk_bytes_per_key),
        ("disk_bytes_per_key_replica", r.disk_bytes_per_key_replica),
        ("loadgen_cpu_us_per_op", Some(r.loadgen_cpu_us_per_op)),
        ("loadgen_ctx_per_op", Some(r.loadgen_ctx_per_op)),
        ("other_cpu_pct", r.other_cpu_pct),
        ("steal_pct", r.steal_pct),
    ]
}

fn med_resources(rs: &[&Resources]) -> Resources {
    Resources {
        ops: med_u64(rs.iter().map(|r| r.ops)),
        window_s: med(rs.iter().map(|r| r.window_s)),
        node_cpu_us_per_op: med_opt(rs.iter().map(|r| r.node_cpu_us_per_op)),
        node_voluntary_ctx_per_op: med_opt(rs.iter().map(|r| r.node_voluntary_ctx_per_op)),
        node_involuntary_ctx_per_op: med_opt(rs.iter().map(|r| r.node_involuntary_ctx_per_op)),
        node_read_bytes_per_op: med_opt(rs.iter().map(|r| r.node_read_bytes_per_op)),
        node_write_bytes_per_op: med_opt(rs.iter().map(|r| r.node_write_bytes_per_op)),
        node_syscall_read_bytes_per_op: med_opt(
            rs.iter().map(|r| r.node_syscall_read_bytes_per_op),
        ),
        node_syscall_write_bytes_per_op: med_opt(
            rs.iter().map(|r| r.node_syscall_write_bytes_per_op),
        ),
        fsyncs_per_op: med_opt(rs.iter().map(|r| r.fsyncs_per_op)),
        engine_bytes_per_op: med_opt(rs.iter().map(|r| r.engine_bytes_per_op)),
        write_stall_ms: med_opt(rs.iter().map(|r| r.write_stall_ms)),
        disk_bytes: med_opt(rs.iter().map(|r| r.disk_bytes.map(|b| b as f64))).map(|b| b as u64),
        node_instructions_per_op: med_opt(rs.iter().map(|r| r.node_instructions_per_op)),
        disk_bytes_per_key: med_opt(rs.iter().map(|r| r.disk_bytes_per_key)),
        disk_bytes_per_key_replica: med_opt(rs.iter().map(|r| r.disk_bytes_per_key_replica)),
        loadgen_cpu_us_per_op: med(rs.iter().map(|r| r.loadgen_cpu_us_per_op)),
        loadgen_ctx_per_op: med(rs.iter().map(|r| r.loadgen_ctx_per_op)),
        other_cpu_pct: med_opt(rs.iter().map(|r| r.other_cpu_pct)),
        steal_pct: med_opt(rs.iter().map(|r| r.steal_pct)),
    }
}

/// Folds the runs of one point (each summarised alone, in run order) into the point's summary:
/// every figure of `ops`, `schedule`, `self_check`, `processes` and `resources` becomes the
/// median over runs, `intervals` gets a bootstrap interval of each median, and `runs` keeps every
/// run's figures. The logs and events shown are the first run's. `None` when `runs` is empty.
pub fn aggregate(runs: Vec<PointSummary>) -> Option<PointSummary> {
    let first = runs.first()?.clone();
    let mut out = first;
    let n = runs.len();
    out.runs = runs
        .iter()
        .enumerate()
        .map(|(i, p)| RunSummary::of(i + 1, p))
        .collect();
    if n == 1 {
        return Some(out);
    }
    let seed = 0x5eed ^ out.index as u64;
    let mut intervals = BTreeMap::new();
    let mut ci = |key: String, xs: Vec<f64>| {
        if let Some((lo, hi)) = crate::stats::bootstrap_median_ci(&xs, INTERVAL_CONFIDENCE, seed) {
            intervals.insert(key, [lo, hi]);
        }
    };
    for (op, o) in out.ops.iter_mut() {
        let each: Vec<&OpSummary> = runs.iter().filter_map(|r| r.ops.get(op)).collect();
        o.count = med_u64(each.iter().map(|s| s.count));
        o.errors = med_u64(each.iter().map(|s| s.errors));
        o.errors_indeterminate = med_u64(each.iter().map(|s| s.errors_indeterminate));
        o.errors_conflict = med_u64(each.iter().map(|s| s.errors_conflict));
        o.found_nothing = med_u64(each.iter().map(|s| s.found_nothing));
        o.throughput_ops_s = med(each.iter().map(|s| s.throughput_ops_s));
        o.response = med_latency(&each.iter().map(|s| &s.response).collect::<Vec<_>>());
        o.service = med_latency(&each.iter().map(|s| &s.service).collect::<Vec<_>>());
        let failed: Vec<&Latency> = each.iter().filter_map(|s| s.failed.as_ref()).collect();
        o.failed = (!failed.is_empty()).then(|| med_latency(&failed));
        o.worst_second_p99_us = med_opt(each.iter().map(|s| s.worst_second_p99_us));
        o.p99_per_minute_us = med_per_minute(&each);
        for (field, get) in [
            (
                "throughput_ops_s",
                (|s: &OpSummary| s.throughput_ops_s) as fn(&OpSummary) -> f64,
            ),
            ("p50_us", |s| s.response.p50_us),
            ("p99_us", |s| s.response.p99_us),
            ("p999_us", |s| s.response.p999_us),
        ] {
            ci(
                format!("{op}.{field}"),
                each.iter().map(|s| get(s)).collect(),
            );
        }
    }
    out.achieved_rate = med(runs.iter().map(|r| r.achieved_rate));
    out.duration_s = med(runs.iter().map(|r| r.duration_s));
    out.warmup_ops = med_u64(runs.iter().map(|r| r.warmup_ops));
    out.client_bound = runs.iter().any(|r| r.client_bound);
    let sc: Vec<&ScheduleCheck> = runs.iter().map(|r| &r.schedule).collect();
    out.schedule = ScheduleCheck {
        ticks_due: med_u64(sc.iter().map(|s| s.ticks_due)),
        late_ticks: med_u64(sc.iter().map(|s| s.late_ticks)),
        missed_ticks: med_u64(sc.iter().map(|s| s.missed_ticks)),
        lag_p50_us: med(sc.iter().map(|s| s.lag_p50_us)),
        lag_p99_us: med(sc.iter().map(|s| s.lag_p99_us)),
        lag_max_us: med(sc.iter().map(|s| s.lag_max_us)),
        wake_lag_p99_us: med(sc.iter().map(|s| s.wake_lag_p99_us)),
        wake_lag_max_us: med(sc.iter().map(|s| s.wake_lag_max_us)),
    };
    // The first client-bound run's reasons, and how many runs were client-bound.
    let bound = runs.iter().filter(|r| r.client_bound).count();
    let mut reasons: Vec<String> = runs
        .iter()
        .find(|r| r.client_bound)
        .map(|r| r.self_check.reasons.clone())
        .unwrap_or_default();
    if bound > 0 && bound < n {
        reasons.push(format!("{bound} of {n} runs were client-bound"));
    }
    // Every run that shared its machine, by number.
    let shared_machine = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.self_check
                .shared_machine
                .iter()
                .map(move |w| format!("run {}: {w}", i + 1))
        })
        .collect();
    out.self_check = SelfCheck {
        loadgen_cpu_pct: med(runs.iter().map(|r| r.self_check.loadgen_cpu_pct)),
        cpu_us_per_op: med(runs.iter().map(|r| r.self_check.cpu_us_per_op)),
        reasons,
        shared_machine,
    };
    for (i, proc) in out.processes.iter_mut().enumerate() {
        proc.cpu_pct = med(runs
            .iter()
            .filter_map(|r| r.processes.get(i).map(|p| p.cpu_pct)));
        proc.rss_max_bytes = runs
            .iter()
            .filter_map(|r| r.processes.get(i).map(|p| p.rss_max_bytes))
            .max()
            .unwrap_or(0);
    }
    let res: Vec<&Resources> = runs.iter().filter_map(|r| r.resources.as_ref()).collect();
    if res.len() == n {
        out.resources = Some(med_resources(&res));
        let names: Vec<&'static str> = res
            .first()
            .map(|r| resource_fields(r).into_iter().map(|(k, _)| k).collect())
            .unwrap_or_default();
        for name in names {
            let xs: Option<Vec<f64>> = res
                .iter()
                .map(|r| {
                    resource_fields(r)
                        .into_iter()
                        .find(|(k, _)| *k == name)
                        .and_then(|(_, v)| v)
                })
                .collect();
            if let Some(xs) = xs {
                ci(format!("resources.{name}"), xs);
            }
        }
    } else {
        out.resources = None;
    }
    out.audit = runs
        .iter()
        .filter_map(|r| r.audit.as_ref())
        .find(|a| !a.passed())
        .or_else(|| runs.iter().rev().find_map(|r| r.audit.as_ref()))
        .cloned();
    if let Some(c) = out.consistency.as_mut() {
        let each: Vec<&crate::consistency::Measured> = runs
            .iter()
            .filter_map(|r| r.consistency.as_ref().map(|c| &c.measured))
            .collect();
        if let Some(m) = crate::consistency::Measured::combine(&each) {
            c.measured = m;
        }
    }
    out.first_error = runs.iter().find_map(|r| r.first_error.clone());
    out.intervals = intervals;
    Some(out)
}

#[cfg(test)]
mod shared_machine_tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::resources::{MachineCounters, Snapshot, per_op};

    fn window(other_ns: u64, steal_ns: u64) -> Resources {
        let t0 = Instant::now();
        let edge = |at, other_ns, steal_ns| Snapshot {
            at: Some(at),
            procs: Vec::new(),
            machine: Some(MachineCounters { steal_ns }),
            others: Some(vec![(9, other_ns)]),
        };
        per_op(
            &edge(t0, 0, 0),
            &edge(t0 + Duration::from_secs(10), other_ns, steal_ns),
            1,
            100,
            None,
            None,
        )
    }

    #[test]
    fn a_point_says_when_something_else_used_the_cpus() {
        let busy = shared_machine(Some(&window(3_000_000_000, 500_000_000)));
        assert_eq!(busy.len(), 2, "{busy:?}");
        assert!(busy[0].contains("30% of a core"), "{busy:?}");
        assert!(busy[1].contains("steal"), "{busy:?}");
        assert!(shared_machine(Some(&window(500_000_000, 100_000_000))).is_empty());
        assert!(shared_machine(None).is_empty());
    }
}
