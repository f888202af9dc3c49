//! Baseline vs candidate: the CI gate, a statistical verdict that fails closed.
//!
//! Two results folders are comparable only when they ran the same workload (a hash of the
//! parsed workload from `manifest.json`, leaving out node binary, node arguments, `repeat` and
//! output paths) and the candidate has every baseline point. Then, per point, operation and
//! metric, the runs of each side are compared:
//!
//! - **sample metrics** (p99, throughput, CPU µs/op, …): the effect is the ratio of the
//!   medians over runs; significance comes from a one-sided Welch t-test on the logarithms of the
//!   run figures, in the direction of "worse";
//! - **count metrics** (errors, missed ticks): a one-sided conditional binomial test on the
//!   totals over runs, which decides even with one run a side.
//!
//! Only **primary** metrics gate: node CPU µs/op (the loadgen's for the `null` target), node
//! bytes written per op (syscalls: network and disk), p99, the error count, missed ticks, and
//! throughput for closed loops. Their p-values are adjusted
//! together with Holm–Bonferroni, so the chance of any false alarm across all primary metrics
//! and points stays at 1 − confidence. A primary metric is a **regression** when its adjusted
//! p-value is at most 1 − confidence *and* it is worse by more than its minimum effect. The rest
//! are advisory. `docs/loadgen.md` explains the choice.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::report::summary::{OpSummary, RunSummary, ScheduleCheck};
use crate::report::{PointSummary, Summary, read_summary};
use crate::resources::Resources;
use crate::stats;

/// Default confidence of a verdict.
pub const DEFAULT_CONFIDENCE: f64 = 0.99;
/// Default minimum effect: smaller changes are never a regression.
pub const DEFAULT_MIN_EFFECT: f64 = 0.05;
/// Fewer runs than this on a side leave a sample metric inconclusive.
pub const MIN_RUNS: usize = 3;

/// How `compare` decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Confidence, e.g. 0.99: the family-wise false-alarm rate is 1 − confidence.
    pub confidence: f64,
    /// Minimum effect for metrics not named in `min_effect`, as a fraction.
    pub default_min_effect: f64,
    /// Minimum effect per metric name (`p99`, `cpu_us_per_op`, …).
    pub min_effect: BTreeMap<String, f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            confidence: DEFAULT_CONFIDENCE,
            default_min_effect: DEFAULT_MIN_EFFECT,
            min_effect: BTreeMap::new(),
        }
    }
}

impl Options {
    fn min_effect_of(&self, metric: &str) -> f64 {
        self.min_effect
            .get(metric)
            .copied()
            .unwrap_or(self.default_min_effect)
    }

    /// Applies one `--min-effect [METRIC=]PCT` argument.
    pub fn set_min_effect(&mut self, arg: &str) -> Result<(), String> {
        match arg.split_once('=') {
            Some((metric, pct)) => {
                let metric = metric.trim();
                if !METRIC_NAMES.contains(&metric) {
                    return Err(format!(
                        "--min-effect: unknown metric `{metric}`; known: {}",
                        METRIC_NAMES.join(", ")
                    ));
                }
                self.min_effect
                    .insert(metric.to_string(), parse_percent(pct)?);
            }
            None => self.default_min_effect = parse_percent(arg)?,
        }
        Ok(())
    }
}

/// Parses a percentage: `10%` or `10`, 0 to 1000.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let v = crate::workload::units::parse_percent(text)?;
    if v > 10.0 {
        return Err(format!("`{text}`: a percentage here must be 0% to 1000%"));
    }
    Ok(v)
}

/// Parses a confidence in percent, strictly between 50 and 100.
pub fn parse_confidence(text: &str) -> Result<f64, String> {
    let v = parse_percent(text)?;
    if !(v > 0.5 && v < 1.0) {
        return Err(format!(
            "`{text}`: the confidence must be above 50% and below 100%, e.g. 99"
        ));
    }
    Ok(v)
}

/// Every metric name `compare` knows (for `--min-effect METRIC=PCT`).
pub const METRIC_NAMES: &[&str] = &[
    "throughput",
    "p50",
    "p99",
    "p999",
    "errors",
    "missed_ticks",
    "stale_reads",
    "lost_writes",
    "cpu_us_per_op",
    "loadgen_cpu_us_per_op",
    "voluntary_ctx_per_op",
    "involuntary_ctx_per_op",
    "read_bytes_per_op",
    "write_bytes_per_op",
    "syscall_read_bytes_per_op",
    "syscall_write_bytes_per_op",
    "fsyncs_per_op",
    "engine_bytes_per_op",
    "disk_bytes_per_key",
    "instructions_per_op",
];

/// The verdict on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly worse by more than the minimum effect (primary: fails the gate).
    Regression,
    /// Worse by more than the minimum effect but not significant, or too few runs to test.
    Inconclusive,
    /// Not worse by more than the minimum effect.
    Ok,
    /// An advisory metric that would have been a regression (does not fail the gate).
    Worse,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Ok => "ok",
            Verdict::Worse => "worse (advisory)",
        }
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Point id (the baseline's).
    pub point: String,
    /// Point label.
    pub label: String,
    /// Operation, or `all` for per-point figures (resources, missed ticks).
    pub op: String,
    /// Metric name (see [`METRIC_NAMES`]).
    pub metric: String,
    /// Unit of the values.
    pub unit: String,
    /// Gates the verdict (primary) or is reported only (advisory).
    pub primary: bool,
    /// Higher values are better (throughput).
    pub higher_is_better: bool,
    /// Baseline: median over runs (count metrics: total over runs).
    pub baseline: f64,
    /// Candidate: the same.
    pub candidate: f64,
    /// Baseline 95% interval of the median (bootstrap over runs), when there are runs to do it.
    pub baseline_interval: Option<[f64; 2]>,
    /// Candidate interval.
    pub candidate_interval: Option<[f64; 2]>,
    /// How much worse the candidate is, as a fraction (negative: better). For sample metrics
    /// the ratio of medians; for counts, the ratio of rates per exposure.
    pub worse_by: f64,
    /// Runs on each side.
    pub runs: [usize; 2],
    /// One-sided p-value that the candidate is worse (none when it cannot be tested).
    pub p_value: Option<f64>,
    /// The p-value after the Holm–Bonferroni adjustment (primary metrics only).
    pub p_adjusted: Option<f64>,
    /// The minimum effect applied.
    pub min_effect: f64,
    /// The smallest worsening these runs could call significant, as a fraction (sample metrics
    /// with at least two runs a side).
    pub detectable: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, when it is not plain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The comparison of two results folders.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The baseline folder.
    pub baseline: String,
    /// The candidate folder.
    pub candidate: String,
    /// Confidence used.
    pub confidence: f64,
    /// Tests in the Holm family (primary metrics that could reach a verdict).
    pub family_size: usize,
    /// Every compared figure.
    pub rows: Vec<Row>,
    /// Warnings: client-bound points, differences in node build or arguments, new points.
    pub notes: Vec<String>,
}

impl Comparison {
    /// Primary metrics that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| r.primary && r.verdict == Verdict::Regression)
    }

    /// True when any primary metric regressed.
    pub fn regressed(&self) -> bool {
        self.regressions().next().is_some()
    }

    /// Primary metrics left inconclusive.
    pub fn inconclusive(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| r.primary && r.verdict == Verdict::Inconclusive)
    }
}

/// Why two folders cannot be compared (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A folder or one of its files could not be read.
    #[error("{0}")]
    Unreadable(String),
    /// The folders are not runs of the same workload, or the candidate lacks a point.
    #[error("not comparable: {0}")]
    Incomparable(String),
}

// ------------------------------------------------------------------ reading folders

/// The folder of a path that may name `summary.json` itself.
fn folder_of(path: &Path) -> PathBuf {
    if path.is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path.to_path_buf()
    }
}

/// Reads `manifest.json` of a results folder as JSON.
pub fn read_manifest(dir: &Path) -> Result<serde_json::Value, CompareError> {
    let path = folder_of(dir).join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CompareError::Unreadable(format!(
            "{}: {e}; a results folder holds manifest.json and summary.json",
            path.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| CompareError::Unreadable(format!("{}: not JSON: {e}", path.display())))
}

/// The workload of a manifest with what may differ between comparable runs removed: the node
/// arguments and `repeat`. (Output paths and the node binary are not part of the workload.)
pub fn comparable_workload(manifest: &serde_json::Value) -> serde_json::Value {
    let mut w = manifest
        .get("workload")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    if let Some(obj) = w.as_object_mut() {
        obj.remove("repeat");
        if let Some(cluster) = obj.get_mut("cluster").and_then(|c| c.as_object_mut()) {
            cluster.remove("node_args");
        }
    }
    w
}

/// FNV-1a 64 of the canonical JSON of the comparable workload (object keys sorted).
pub fn workload_hash(manifest: &serde_json::Value) -> String {
    let text = serde_json::to_string(&comparable_workload(manifest)).unwrap_or_default();
    format!("{:016x}", crate::report::fnv64(text.as_bytes()))
}

/// Appends to `out` every leaf where `a` and `b` differ, as `path.to.field: A vs B`.
pub fn json_diff(a: &serde_json::Value, b: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = serde_json::Value::Null;
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                json_diff(
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    &p,
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

// ------------------------------------------------------------------ run figures

/// The figures of one run that the gate reads, from a `runs[]` entry or (old folders, one run)
/// from the point itself.
struct RunView<'a> {
    ops: &'a BTreeMap<String, OpSummary>,
    schedule: &'a ScheduleCheck,
    resources: Option<Resources>,
    client_bound: bool,
    consistency: Option<&'a crate::consistency::Measured>,
}

fn legacy_resources(p: &PointSummary) -> Option<Resources> {
    // Before exact counters: CPU from the sampled CPU percent (10 ms ticks), nodes summed.
    let ops: u64 = p.ops.values().map(|o| o.count).sum();
    if ops == 0 {
        return None;
    }
    let per = |pct: f64| pct / 100.0 * p.duration_s * 1e6 / ops as f64;
    let nodes: Vec<f64> = p
        .processes
        .iter()
        .filter(|x| x.role == "node")
        .map(|x| x.cpu_pct)
        .collect();
    Some(Resources {
        ops,
        window_s: p.duration_s,
        node_cpu_us_per_op: (!nodes.is_empty()).then(|| per(nodes.iter().sum())),
        loadgen_cpu_us_per_op: p.self_check.cpu_us_per_op,
        ..Resources::default()
    })
}

fn runs_of(p: &PointSummary) -> Vec<RunView<'_>> {
    if p.runs.is_empty() {
        return vec![RunView {
            ops: &p.ops,
            schedule: &p.schedule,
            resources: p.resources.clone().or_else(|| legacy_resources(p)),
            client_bound: p.client_bound,
            consistency: p.consistency.as_ref().map(|c| &c.measured),
        }];
    }
    p.runs
        .iter()
        .map(|r: &RunSummary| RunView {
            ops: &r.ops,
            schedule: &r.schedule,
            resources: r.resources.clone(),
            client_bound: r.client_bound,
            consistency: r.consistency.as_ref(),
        })
        .collect()
}

fn key(p: &PointSummary) -> String {
    serde_json::to_string(&p.params).unwrap_or_default()
}

// ------------------------------------------------------------------ the tests

/// What kind of test a metric gets.
enum Test {
    /// Per-run samples.
    Samples { base: Vec<f64>, cand: Vec<f64> },
    /// An invariant: any event in the candidate is a regression (lost writes).
    Zero { cand: u64 },
    /// Totals of events over exposures.
    Count {
        base: u64,
        base_exposure: f64,
        cand: u64,
        cand_exposure: f64,
    },
}

struct Candidate {
    row: Row,
    test: Test,
}

#[allow(clippy::too_many_arguments)]
fn sample_row(
    b: &PointSummary,
    op: &str,
    metric: &str,
    unit: &str,
    primary: bool,
    higher_is_better: bool,
    base: Vec<f64>,
    cand: Vec<f64>,
    opts: &Options,
) -> Option<Candidate> {
    if base.is_empty() || cand.is_empty() {
        return None;
    }
    let (bm, cm) = (stats::median(&base)?, stats::median(&cand)?);
    let worse_by = if higher_is_better {
        if cm > 0.0 {
            bm / cm - 1.0
        } else {
            f64::INFINITY
        }
    } else if bm > 0.0 {
        cm / bm - 1.0
    } else if cm > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let ci = |xs: &[f64]| {
        (xs.len() >= 2)
            .then(|| stats::bootstrap_median_ci(xs, 0.95, 0x5eed))
            .flatten()
            .map(|(lo, hi)| [lo, hi])
    };
    Some(Candidate {
        row: Row {
            point: b.id.clone(),
            label: b.label.clone(),
            op: op.to_string(),
            metric: metric.to_string(),
            unit: unit.to_string(),
            primary,
            higher_is_better,
            baseline: bm,
            candidate: cm,
            baseline_interval: ci(&base),
            candidate_interval: ci(&cand),
            worse_by,
            runs: [base.len(), cand.len()],
            p_value: None,
            p_adjusted: None,
            min_effect: opts.min_effect_of(metric),
            detectable: None,
            verdict: Verdict::Ok,
            note: String::new(),
        },
        test: Test::Samples { base, cand },
    })
}

/// Logs of the run figures, signed so that larger means worse; `None` when a value is not
/// positive (then the raw values are tested).
fn worse_logs(xs: &[f64], higher_is_better: bool) -> Option<Vec<f64>> {
    xs.iter()
        .map(|x| {
            (*x > 0.0 && x.is_finite()).then(|| if higher_is_better { -x.ln() } else { x.ln() })
        })
        .collect()
}

/// One-sided p-value and the smallest detectable worsening for a sample metric at `alpha`.
fn sample_test(base: &[f64], cand: &[f64], higher: bool, alpha: f64) -> (Option<f64>, Option<f64>) {
    if base.len() < MIN_RUNS || cand.len() < MIN_RUNS {
        return (None, None);
    }
    if base == cand || (base.iter().chain(cand).all(|x| *x == base[0])) {
        return (Some(1.0), None);
    }
    match (worse_logs(base, higher), worse_logs(cand, higher)) {
        (Some(lb), Some(lc)) => {
            let Some((t, df, se)) = stats::welch(&lb, &lc) else {
                return (None, None);
            };
            let p = stats::student_t_sf(t, df);
            let detectable = (se > 0.0).then(|| (stats::student_t_isf(alpha, df) * se).exp() - 1.0);
            (Some(p), detectable)
        }
        _ => {
            let sign = if higher { -1.0 } else { 1.0 };
            let rb: Vec<f64> = base.iter().map(|x| sign * x).collect();
            let rc: Vec<f64> = cand.iter().map(|x| sign * x).collect();
            (stats::welch_greater_p(&rb, &rc), None)
        }
    }
}

fn collect(
    b: &PointSummary,
    c: &PointSummary,
    null_target: bool,
    opts: &Options,
) -> Vec<Candidate> {
    let br = runs_of(b);
    let cr = runs_of(c);
    let client_bound = br.iter().chain(&cr).any(|r| r.client_bound);
    let closed = b.params.concurrency.is_some();
    let mut out = Vec::new();
    // Latency and throughput of a client-bound point measure the load generator: advisory.
    let gate_latency = !client_bound;
    for op in b.ops.keys() {
        let vals = |runs: &[RunView], f: &dyn Fn(&OpSummary) -> f64| -> Vec<f64> {
            runs.iter().filter_map(|r| r.ops.get(op).map(f)).collect()
        };
        type Spec<'f> = (&'f str, &'f str, bool, bool, &'f dyn Fn(&OpSummary) -> f64);
        let specs: [Spec; 4] = [
            ("throughput", "ops/s", closed && gate_latency, true, &|o| {
                o.throughput_ops_s
            }),
            ("p50", "ms", false, false, &|o| o.response.p50_us / 1000.0),
            ("p99", "ms", gate_latency, false, &|o| {
                o.response.p99_us / 1000.0
            }),
            ("p999", "ms", false, false, &|o| o.response.p999_us / 1000.0),
        ];
        for (metric, unit, primary, higher, f) in specs {
            if let Some(cand) = sample_row(
                b,
                op,
                metric,
                unit,
                primary,
                higher,
                vals(&br, f),
                vals(&cr, f),
                opts,
            ) {
                out.push(cand);
            }
        }
        let total = |runs: &[RunView], f: &dyn Fn(&OpSummary) -> u64| -> u64 {
            runs.iter().filter_map(|r| r.ops.get(op).map(f)).sum()
        };
        let (be, bn) = (total(&br, &|o| o.errors), total(&br, &|o| o.count));
        let (ce, cn) = (total(&cr, &|o| o.errors), total(&cr, &|o| o.count));
        out.push(count_row(
            b,
            op,
            "errors",
            (be, bn as f64),
            (ce, cn as f64),
            [br.len(), cr.len()],
            opts,
        ));
    }
    if b.params.is_open_loop() {
        let missed = |runs: &[RunView]| -> (u64, f64) {
            (
                runs.iter().map(|r| r.schedule.missed_ticks).sum(),
                runs.iter().map(|r| r.schedule.ticks_due as f64).sum(),
            )
        };
        out.push(count_row(
            b,
            "all",
            "missed_ticks",
            missed(&br),
            missed(&cr),
            [br.len(), cr.len()],
            opts,
        ));
    }
    // Stale reads over checked reads: a rise is a regression (when both sides checked).
    let stale = |runs: &[RunView]| -> Option<(u64, f64)> {
        let each: Option<Vec<_>> = runs.iter().map(|r| r.consistency).collect();
        let each = each?;
        Some((
            each.iter().map(|m| m.stale_reads).sum(),
            each.iter().map(|m| m.reads_checked as f64).sum(),
        ))
    };
    if let (Some(bs), Some(cs)) = (stale(&br), stale(&cr)) {
        out.push(count_row(
            b,
            "read",
            "stale_reads",
            bs,
            cs,
            [br.len(), cr.len()],
            opts,
        ));
    }
    // The lost-write audit: any lost or resurrected write, or a key it could not check,
    // fails the gate, whatever the baseline did.
    if let Some(ca) = &c.audit {
        let bad = |a: &crate::consistency::audit::Audit| {
            a.lost_writes + a.resurrected + a.keys_unreadable + a.writes_not_recorded
        };
        let base = b.audit.as_ref().map_or(0, bad);
        let cand = bad(ca);
        out.push(Candidate {
            row: Row {
                point: b.id.clone(),
                label: b.label.clone(),
                op: "all".into(),
                metric: "lost_writes".into(),
                unit: "count".into(),
                primary: true,
                higher_is_better: false,
                baseline: base as f64,
                candidate: cand as f64,
                baseline_interval: None,
                candidate_interval: None,
                worse_by: if cand > 0 { f64::INFINITY } else { 0.0 },
                runs: [br.len(), cr.len()],
                p_value: None,
                p_adjusted: None,
                min_effect: 0.0,
                detectable: None,
                verdict: Verdict::Ok,
                note: "any lost write fails".into(),
            },
            test: Test::Zero { cand },
        });
    }
    // Per-operation resource counters.
    type Get = fn(&Resources) -> Option<f64>;
    let node_cpu: Get = |r| r.node_cpu_us_per_op;
    let res_specs: [(&str, &str, bool, Get); 12] = [
        ("cpu_us_per_op", "µs", true, node_cpu),
        ("loadgen_cpu_us_per_op", "µs", false, |r| {
            Some(r.loadgen_cpu_us_per_op)
        }),
        ("voluntary_ctx_per_op", "", false, |r| {
            r.node_voluntary_ctx_per_op
        }),
        ("involuntary_ctx_per_op", "", false, |r| {
            r.node_involuntary_ctx_per_op
        }),
        ("read_bytes_per_op", "B", false, |r| {
            r.node_read_bytes_per_op
        }),
        ("write_bytes_per_op", "B", false, |r| {
            r.node_write_bytes_per_op
        }),
        ("syscall_read_bytes_per_op", "B", false, |r| {
            r.node_syscall_read_bytes_per_op
        }),
        // Primary: the bytes the nodes write per operation (network sends and disk writes)
        // barely move between runs of one build (at most 0.6% over 20 A/A comparisons of
        // workloads/ci-gate.yaml), while node CPU spreads by 5-15% on a shared machine; a
        // change that makes each request move more data shows here first.
        ("syscall_write_bytes_per_op", "B", true, |r| {
            r.node_syscall_write_bytes_per_op
        }),
        ("fsyncs_per_op", "", false, |r| r.fsyncs_per_op),
        ("engine_bytes_per_op", "B", false, |r| r.engine_bytes_per_op),
        ("disk_bytes_per_key", "B", false, |r| r.disk_bytes_per_key),
        // Primary when counted (`--instructions`): a simulated CPU's count does not move with
        // the machine's load, so a small change in the code's work is significant.
        ("instructions_per_op", "", true, |r| {
            r.node_instructions_per_op
        }),
    ];
    let all_have = |runs: &[RunView], g: Get| -> Option<Vec<f64>> {
        runs.iter()
            .map(|r| r.resources.as_ref().and_then(g))
            .collect()
    };
    let has_nodes = all_have(&br, node_cpu).is_some() && all_have(&cr, node_cpu).is_some();
    for (metric, unit, primary, g) in res_specs {
        // Without nodes (the null target) the loadgen is the system under test: its CPU gates.
        let (g, primary, note) = if metric == "cpu_us_per_op" && !has_nodes {
            if !null_target {
                continue;
            }
            let lg: Get = |r| Some(r.loadgen_cpu_us_per_op);
            (lg, true, "the loadgen's own (null target)")
        } else {
            (g, primary, "")
        };
        if let (Some(bv), Some(cv)) = (all_have(&br, g), all_have(&cr, g))
            && let Some(mut cand) = sample_row(b, "all", metric, unit, primary, false, bv, cv, opts)
        {
            cand.row.note = note.to_string();
            out.push(cand);
        }
    }
    if client_bound {
        for cand in &mut out {
            if matches!(cand.row.metric.as_str(), "p99" | "throughput") && cand.row.note.is_empty()
            {
                cand.row.note = "advisory: client-bound point".into();
            }
        }
    }
    out
}

fn count_row(
    b: &PointSummary,
    op: &str,
    metric: &str,
    (base, base_exposure): (u64, f64),
    (cand, cand_exposure): (u64, f64),
    runs: [usize; 2],
    opts: &Options,
) -> Candidate {
    let rate = |n: u64, e: f64| if e > 0.0 { n as f64 / e } else { 0.0 };
    let (rb, rc) = (rate(base, base_exposure), rate(cand, cand_exposure));
    let worse_by = if rb > 0.0 {
        rc / rb - 1.0
    } else if rc > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Candidate {
        row: Row {
            point: b.id.clone(),
            label: b.label.clone(),
            op: op.to_string(),
            metric: metric.to_string(),
            unit: "count".into(),
            primary: true,
            higher_is_better: false,
            baseline: base as f64,
            candidate: cand as f64,
            baseline_interval: None,
            candidate_interval: None,
            worse_by,
            runs,
            p_value: None,
            p_adjusted: None,
            min_effect: opts.min_effect_of(metric),
            detectable: None,
            verdict: Verdict::Ok,
            note: String::new(),
        },
        test: Test::Count {
            base,
            base_exposure,
            cand,
            cand_exposure,
        },
    }
}

/// Compares two results folders (or their `summary.json` files). Fails closed: unreadable
/// folders, different workloads and missing baseline points are errors.
pub fn compare(
    baseline: &Path,
    candidate: &Path,
    opts: &Options,
) -> Result<Comparison, CompareError> {
    let read = |p: &Path| read_summary(p).map_err(|e| CompareError::Unreadable(e.to_string()));
    let (base, cand) = (read(baseline)?, read(candidate)?);
    let (bm, cm) = (read_manifest(baseline)?, read_manifest(candidate)?);
    let mut notes = Vec::new();
    if workload_hash(&bm) != workload_hash(&cm) {
        let mut diffs = Vec::new();
        json_diff(
            &comparable_workload(&bm),
            &comparable_workload(&cm),
            "workload",
            &mut diffs,
        );
        return Err(CompareError::Incomparable(format!(
            "the workloads differ (hash {} vs {}): {}; compare runs of the same workload",
            workload_hash(&bm),
            workload_hash(&cm),
            diffs.join("; ")
        )));
    }
    // Nodes under callgrind run many times slower: none of their timings compare with a
    // plain run's.
    let (bi, ci) = (bm.get("instrumented"), cm.get("instrumented"));
    if bi != ci {
        let show = |v: Option<&serde_json::Value>| v.map_or("none".to_string(), |v| v.to_string());
        return Err(CompareError::Incomparable(format!(
            "the nodes were instrumented differently ({} vs {}): run both sides with or both \
             without --instructions",
            show(bi),
            show(ci)
        )));
    }
    if base.target != cand.target {
        return Err(CompareError::Incomparable(format!(
            "the targets differ: {} vs {}",
            base.target, cand.target
        )));
    }
    for field in ["node_build", "node_args", "repeat"] {
        let (x, y) = (bm.get(field), cm.get(field));
        if x != y {
            let show = |v: Option<&serde_json::Value>| {
                v.map(|v| v.to_string()).unwrap_or_else(|| "—".into())
            };
            let mut diffs = Vec::new();
            if let (Some(x), Some(y)) = (x, y) {
                json_diff(x, y, field, &mut diffs);
            }
            notes.push(if diffs.is_empty() {
                format!("{field} differs: {} vs {}", show(x), show(y))
            } else {
                format!("differs (not part of the workload): {}", diffs.join("; "))
            });
        }
    }
    let mut c = compare_summaries(&base, &cand, opts)?;
    c.baseline = baseline.display().to_string();
    c.candidate = candidate.display().to_string();
    notes.append(&mut c.notes);
    c.notes = notes;
    Ok(c)
}

/// Compares two summaries of the same workload.
pub fn compare_summaries(
    base: &Summary,
    cand: &Summary,
    opts: &Options,
) -> Result<Comparison, CompareError> {
    let alpha = 1.0 - opts.confidence;
    let by_key: BTreeMap<String, &PointSummary> = cand.points.iter().map(|p| (key(p), p)).collect();
    let base_keys: std::collections::BTreeSet<String> = base.points.iter().map(key).collect();
    let mut notes = Vec::new();
    let mut missing = Vec::new();
    let mut cands = Vec::new();
    for b in &base.points {
        let Some(c) = by_key.get(&key(b)) else {
            missing.push(format!("{} ({})", b.id, b.label));
            continue;
        };
        for (side, p) in [("baseline", b), ("candidate", *c)] {
            if p.client_bound {
                notes.push(format!(
                    "{side} {} was client-bound ({}): its latency figures are advisory",
                    p.id,
                    p.self_check.reasons.join("; ")
                ));
            }
            if !p.self_check.shared_machine.is_empty() {
                notes.push(format!(
                    "{side} {} shared its machine ({}): its figures carry that noise",
                    p.id,
                    p.self_check.shared_machine.join("; ")
                ));
            }
        }
        for op in b.ops.keys() {
            if !c.ops.contains_key(op) {
                missing.push(format!("{} operation {op}", b.id));
            }
        }
        cands.extend(collect(b, c, base.target == "null", opts));
    }
    if !missing.is_empty() {
        return Err(CompareError::Incomparable(format!(
            "baseline point(s) missing from the candidate: {}",
            missing.join(", ")
        )));
    }
    for c in &cand.points {
        if !base_keys.contains(&key(c)) {
            notes.push(format!(
                "candidate point {} ({}) has no baseline; not compared",
                c.id, c.label
            ));
        }
    }
    // The Holm family: primary tests that can reach a verdict. A count test with no events on
    // either side can never reject, so it is left out (Tarone's refinement); so is a sample test
    // with too few runs.
    let mut family: Vec<usize> = Vec::new();
    let mut raw = Vec::new();
    for (i, cand) in cands.iter().enumerate() {
        let p = match &cand.test {
            Test::Count {
                base,
                base_exposure,
                cand: c,
                cand_exposure,
            } => (base + c > 0)
                .then(|| stats::count_greater_p(*base, *base_exposure, *c, *cand_exposure)),
            Test::Samples { base, cand: cs } => {
                if base.len() < MIN_RUNS || cs.len() < MIN_RUNS {
                    None
                } else {
                    Some(1.0) // placeholder, computed below with the family size known
                }
            }
            Test::Zero { .. } => None,
        };
        if cand.row.primary && p.is_some() {
            family.push(i);
        }
        raw.push(p);
    }
    let m = family.len().max(1);
    let family_alpha = alpha / m as f64;
    for (i, cand) in cands.iter_mut().enumerate() {
        if let Test::Samples { base, cand: cs } = &cand.test {
            let level = if cand.row.primary {
                family_alpha
            } else {
                alpha
            };
            let (p, detectable) = sample_test(base, cs, cand.row.higher_is_better, level);
            cand.row.p_value = p;
            cand.row.detectable = detectable.map(|d| d.max(cand.row.min_effect));
            if let Some(r) = raw.get_mut(i) {
                *r = p;
            }
        } else if let Some(r) = raw.get(i) {
            cand.row.p_value = *r;
        }
    }
    let family_ps: Vec<f64> = family
        .iter()
        .map(|i| raw.get(*i).copied().flatten().unwrap_or(1.0))
        .collect();
    let adjusted = stats::holm(&family_ps);
    for (k, i) in family.iter().enumerate() {
        if let (Some(cand), Some(adj)) = (cands.get_mut(*i), adjusted.get(k)) {
            cand.row.p_adjusted = Some(*adj);
        }
    }
    for cand in &mut cands {
        let r = &mut cand.row;
        if let Test::Zero { cand: events } = cand.test {
            r.verdict = if events > 0 {
                Verdict::Regression
            } else {
                Verdict::Ok
            };
            continue;
        }
        let big = r.worse_by > r.min_effect;
        let is_count = matches!(cand.test, Test::Count { .. });
        let significant = if r.primary {
            r.p_adjusted.is_some_and(|p| p <= alpha)
        } else {
            r.p_value.is_some_and(|p| p <= alpha)
        };
        r.verdict = if significant && big {
            if r.primary {
                Verdict::Regression
            } else {
                Verdict::Worse
            }
        } else if !r.primary {
            Verdict::Ok
        } else if is_count {
            // A count test always decides.
            Verdict::Ok
        } else if r.p_value.is_none() && r.runs.iter().any(|n| *n < MIN_RUNS) {
            if r.note.is_empty() {
                r.note = format!("fewer than {MIN_RUNS} runs a side");
            }
            Verdict::Inconclusive
        } else if big {
            if r.note.is_empty() {
                r.note = "worse, but not significant".into();
            }
            Verdict::Inconclusive
        } else {
            Verdict::Ok
        };
    }
    Ok(Comparison {
        baseline: String::new(),
        candidate: String::new(),
        confidence: opts.confidence,
        family_size: family.len(),
        rows: cands.into_iter().map(|c| c.row).collect(),
        notes,
    })
}

// ------------------------------------------------------------------ output

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "count" | "ops/s" => format!("{v:.0}"),
        _ if v.abs() >= 1000.0 => format!("{v:.0}"),
        _ if v.abs() >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.3}"),
    }
}

fn fmt_pct(f: f64) -> String {
    if f.is_infinite() {
        "new".into()
    } else {
        format!("{:+.1}%", f * 100.0)
    }
}

fn fmt_p(p: Option<f64>) -> String {
    match p {
        None => "—".into(),
        Some(p) if p < 1e-4 => "<0.0001".into(),
        Some(p) => format!("{p:.4}"),
    }
}

fn cells(r: &Row) -> [String; 11] {
    let interval = |i: Option<[f64; 2]>| {
        i.map(|[a, b]| format!("{}–{}", fmt_value(a, &r.unit), fmt_value(b, &r.unit)))
            .unwrap_or_else(|| "—".into())
    };
    [
        r.point.clone(),
        r.op.clone(),
        format!(
            "{}{}",
            r.metric,
            if r.unit.is_empty() || r.unit == "count" {
                String::new()
            } else {
                format!(" ({})", r.unit)
            }
        ),
        if r.primary { "primary" } else { "advisory" }.into(),
        format!(
            "{} [{}]",
            fmt_value(r.baseline, &r.unit),
            interval(r.baseline_interval)
        ),
        format!(
            "{} [{}]",
            fmt_value(r.candidate, &r.unit),
            interval(r.candidate_interval)
        ),
        fmt_pct(r.worse_by),
        fmt_p(r.p_adjusted.or(r.p_value)),
        r.detectable
            .map(|d| format!("{:.1}%", d * 100.0))
            .unwrap_or_else(|| "—".into()),
        r.verdict.text().into(),
        r.note.clone(),
    ]
}

const HEADER: [&str; 11] = [
    "point",
    "op",
    "metric",
    "gate",
    "baseline [95% CI]",
    "candidate [95% CI]",
    "worse by",
    "p (adj.)",
    "detectable",
    "verdict",
    "note",
];

fn verdict_line(c: &Comparison) -> String {
    let regressions = c.regressions().count();
    let inconclusive = c.inconclusive().count();
    if regressions > 0 {
        format!(
            "FAIL: {regressions} primary metric(s) regressed (confidence {:.1}%, Holm over {} \
             primary tests)",
            c.confidence * 100.0,
            c.family_size
        )
    } else if inconclusive > 0 {
        format!(
            "PASS (inconclusive): no regression found, but {inconclusive} primary metric(s) could \
             not be decided; add runs (--repeat) to decide them"
        )
    } else {
        format!(
            "PASS: no primary metric regressed (confidence {:.1}%, {} rows, {} primary tests)",
            c.confidence * 100.0,
            c.rows.len(),
            c.family_size
        )
    }
}

fn detectable_line(c: &Comparison) -> Option<String> {
    let mut worst: BTreeMap<String, f64> = BTreeMap::new();
    for r in c.rows.iter().filter(|r| r.primary) {
        if let Some(d) = r.detectable {
            let e = worst.entry(r.metric.clone()).or_insert(0.0);
            *e = e.max(d);
        }
    }
    (!worst.is_empty()).then(|| {
        let parts: Vec<String> = worst
            .iter()
            .map(|(m, d)| format!("{m} {:.1}%", d * 100.0))
            .collect();
        format!(
            "smallest worsening these runs can detect (largest over points): {}",
            parts.join(", ")
        )
    })
}

/// The table `loadgen compare` prints.
pub fn render(c: &Comparison) -> String {
    let mut s = String::new();
    let mut table: Vec<[String; 11]> = vec![HEADER.map(String::from)];
    table.extend(c.rows.iter().map(cells));
    let mut widths = [0usize; 11];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| {
                let pad = w.saturating_sub(cell.chars().count());
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect();
        let _ = writeln!(s, "{}", line.join("  ").trim_end());
    }
    for n in &c.notes {
        let _ = writeln!(s, "note: {n}");
    }
    if let Some(d) = detectable_line(c) {
        let _ = writeln!(s, "{d}");
    }
    let _ = writeln!(s, "{}", verdict_line(c));
    s
}

/// A Markdown block for a pull-request comment: the verdict, then the primary rows and any
/// advisory row that got worse.
pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let icon = if c.regressed() { "❌" } else { "✅" };
    let _ = writeln!(s, "### {icon} loadgen performance gate\n");
    let _ = writeln!(s, "{}\n", verdict_line(c));
    let _ = writeln!(s, "| {} |", HEADER.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(HEADER.len()));
    for r in c
        .rows
        .iter()
        .filter(|r| r.primary || r.verdict == Verdict::Worse)
    {
        let row = cells(r).map(|x| x.replace('|', "\\|"));
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    if let Some(d) = detectable_line(c) {
        let _ = writeln!(s, "\n{d}");
    }
    for n in &c.notes {
        let _ = writeln!(s, "\n> note: {n}");
    }
    s
}

/// Draws baseline against candidate, one panel per metric that has a primary row (and any
/// advisory metric that got worse), each point and operation with its median and 95% interval.
pub fn draw_chart(png: &Path, c: &Comparison) -> Result<(), crate::report::ReportError> {
    let mut metrics: Vec<&str> = Vec::new();
    for r in &c.rows {
        let show = (r.primary || r.verdict == Verdict::Worse) && r.unit != "count";
        if show && !metrics.contains(&r.metric.as_str()) {
            metrics.push(&r.metric);
        }
    }
    let panels: Vec<crate::report::charts::IntervalPanel> = metrics
        .iter()
        .map(|m| {
            let rows: Vec<&Row> = c.rows.iter().filter(|r| r.metric == *m).collect();
            let unit = rows.first().map(|r| r.unit.clone()).unwrap_or_default();
            let side = |v: fn(&Row) -> (f64, Option<[f64; 2]>)| -> Vec<(f64, f64, f64)> {
                rows.iter()
                    .map(|r| {
                        let (m, i) = v(r);
                        let [lo, hi] = i.unwrap_or([m, m]);
                        (m, lo, hi)
                    })
                    .collect()
            };
            crate::report::charts::IntervalPanel {
                title: format!("{m}: baseline vs candidate (median, 95% interval over runs)"),
                y_desc: if unit.is_empty() {
                    m.to_string()
                } else {
                    format!("{m} ({unit})")
                },
                categories: rows
                    .iter()
                    .map(|r| {
                        let verdict = if r.verdict == Verdict::Regression {
                            " !"
                        } else {
                            ""
                        };
                        format!("{} {}{verdict}", r.point, r.op)
                    })
                    .collect(),
                series: vec![
                    (
                        "baseline".into(),
                        side(|r| (r.baseline, r.baseline_interval)),
                    ),
                    (
                        "candidate".into(),
                        side(|r| (r.candidate, r.candidate_interval)),
                    ),
                ],
                marks: Vec::new(),
            }
        })
        .collect();
    crate::report::charts::draw_interval_chart(png, &panels)
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test case per primary row (a regression is a failure, an inconclusive one
/// is skipped), advisory rows as passing cases with their figures in `system-out`.
pub fn junit(c: &Comparison) -> String {
    let mut s = String::new();
    let failures = c.regressions().count();
    let skipped = c.inconclusive().count();
    let _ = writeln!(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        s,
        "<testsuites name=\"loadgen compare\" tests=\"{}\" failures=\"{failures}\" \
         skipped=\"{skipped}\">",
        c.rows.len()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"performance gate\" tests=\"{}\" failures=\"{failures}\" \
         skipped=\"{skipped}\">",
        c.rows.len()
    );
    for r in &c.rows {
        let name = format!("{} {} {}", r.point, r.op, r.metric);
        let detail = format!(
            "baseline {} candidate {} worse by {} p {} (adjusted {}) min effect {:.1}% {}",
            fmt_value(r.baseline, &r.unit),
            fmt_value(r.candidate, &r.unit),
            fmt_pct(r.worse_by),
            fmt_p(r.p_value),
            fmt_p(r.p_adjusted),
            r.min_effect * 100.0,
            r.note
        );
        let class = if r.primary { "primary" } else { "advisory" };
        let _ = write!(
            s,
            "    <testcase classname=\"loadgen.{class}\" name=\"{}\">",
            xml_escape(&name)
        );
        match (r.primary, r.verdict) {
            (true, Verdict::Regression) => {
                let _ = write!(
                    s,
                    "<failure message=\"{}\">{}</failure>",
                    xml_escape(&format!("regression: {}", fmt_pct(r.worse_by))),
                    xml_escape(&detail)
                );
            }
            (true, Verdict::Inconclusive) => {
                let _ = write!(s, "<skipped message=\"{}\"/>", xml_escape(&detail));
            }
            _ => {
                let _ = write!(s, "<system-out>{}</system-out>", xml_escape(&detail));
            }
        }
        let _ = writeln!(s, "</testcase>");
    }
    let _ = writeln!(s, "  </testsuite>");
    let _ = writeln!(s, "</testsuites>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::{Latency, Params, Preload, SelfCheck};

    fn point(runs: &[(f64, f64, u64)]) -> PointSummary {
        // (p99 ms, node cpu µs/op, errors) per run.
        let mk_ops = |p99: f64, errors: u64| {
            let mut ops = BTreeMap::new();
            ops.insert(
                "read".to_string(),
                OpSummary {
                    count: 10_000,
                    errors,
                    errors_indeterminate: 0,
                    errors_conflict: 0,
                    found_nothing: 0,
                    throughput_ops_s: 1000.0,
                    response: Latency {
                        p50_us: p99 * 500.0,
                        p90_us: p99 * 800.0,
                        p99_us: p99 * 1000.0,
                        p999_us: p99 * 1500.0,
                        max_us: p99 * 2000.0,
                    },
                    service: Latency::default(),
                    failed: None,
                    worst_second_p99_us: None,
                    p99_per_minute_us: Vec::new(),
                },
            );
            ops
        };
        let run_list: Vec<RunSummary> = runs
            .iter()
            .enumerate()
            .map(|(i, (p99, cpu, errors))| RunSummary {
                run: i + 1,
                ops: mk_ops(*p99, *errors),
                achieved_rate: 1000.0,
                client_bound: false,
                duration_s: 10.0,
                schedule: ScheduleCheck {
                    ticks_due: 10_000,
                    ..ScheduleCheck::default()
                },
                self_check: SelfCheck::default(),
                processes: Vec::new(),
                resources: Some(Resources {
                    ops: 10_000,
                    node_cpu_us_per_op: Some(*cpu),
                    ..Resources::default()
                }),
                consistency: None,
                first_error: None,
                logs: BTreeMap::new(),
                window_start_unix_s: None,
            })
            .collect();
        PointSummary {
            index: 0,
            id: "p00".into(),
            label: "rate=1000".into(),
            params: Params {
                value_bytes: 100,
                values: "100B".into(),
                replication: 3,
                write_quorum: 2,
                read_quorum: 2,
                nodes: 3,
                keys: None,
                rate: Some(1000.0),
                rate_schedule: None,
                concurrency: None,
            },
            ops: mk_ops(runs[0].0, runs[0].2),
            offered_rate: Some(1000.0),
            achieved_rate: 1000.0,
            client_bound: false,
            duration_s: 10.0,
            warmup_ops: 0,
            preload: Preload::default(),
            schedule: ScheduleCheck::default(),
            self_check: SelfCheck::default(),
            processes: Vec::new(),
            first_error: None,
            logs: BTreeMap::new(),
            events: Vec::new(),
            response_time: "corrected".into(),
            resources: None,
            intervals: BTreeMap::new(),
            consistency: None,
            audit: None,
            autoscale: None,
            runs: run_list,
            window_start_unix_s: None,
            shards: Vec::new(),
        }
    }

    fn summary(points: Vec<PointSummary>) -> Summary {
        Summary {
            schema_version: 2,
            name: "t".into(),
            target: "ringkv".into(),
            started: String::new(),
            points,
            shard: None,
            start_at: None,
            merged: None,
            search: None,
        }
    }

    fn verdict(c: &Comparison, metric: &str) -> Verdict {
        c.rows.iter().find(|r| r.metric == metric).unwrap().verdict
    }

    const BASE: [(f64, f64, u64); 5] = [
        (2.0, 100.0, 0),
        (2.1, 101.0, 0),
        (1.9, 99.0, 0),
        (2.05, 100.5, 0),
        (1.95, 99.5, 0),
    ];

    #[test]
    fn equal_samples_pass() {
        let b = summary(vec![point(&BASE)]);
        let shuffled = [BASE[3], BASE[0], BASE[4], BASE[1], BASE[2]];
        let c = summary(vec![point(&shuffled)]);
        let cmp = compare_summaries(&b, &c, &Options::default()).unwrap();
        assert!(!cmp.regressed(), "{}", render(&cmp));
        assert_eq!(cmp.inconclusive().count(), 0, "{}", render(&cmp));
        assert_eq!(verdict(&cmp, "p99"), Verdict::Ok);
    }

    #[test]
    fn a_clear_cpu_shift_fails_at_five_runs() {
        let b = summary(vec![point(&BASE)]);
        let worse: Vec<(f64, f64, u64)> = BASE.iter().map(|(p, c, e)| (*p, c * 1.3, *e)).collect();
        let cmp =
            compare_summaries(&b, &summary(vec![point(&worse)]), &Options::default()).unwrap();
        assert!(cmp.regressed(), "{}", render(&cmp));
        assert_eq!(verdict(&cmp, "cpu_us_per_op"), Verdict::Regression);
        assert_eq!(verdict(&cmp, "p99"), Verdict::Ok);
        // A smaller shift than the minimum effect is never a regression.
        let slight: Vec<(f64, f64, u64)> =
            BASE.iter().map(|(p, c, e)| (*p, c * 1.03, *e)).collect();
        let cmp =
            compare_summaries(&b, &summary(vec![point(&slight)]), &Options::default()).unwrap();
        assert!(!cmp.regressed(), "{}", render(&cmp));
    }

    #[test]
    fn two_runs_a_side_are_inconclusive() {
        let b = summary(vec![point(&BASE[..2])]);
        let worse: Vec<(f64, f64, u64)> = BASE[..2]
            .iter()
            .map(|(p, c, e)| (p * 1.5, c * 1.5, *e))
            .collect();
        let cmp =
            compare_summaries(&b, &summary(vec![point(&worse)]), &Options::default()).unwrap();
        assert!(!cmp.regressed());
        assert_eq!(verdict(&cmp, "p99"), Verdict::Inconclusive);
        assert_eq!(verdict(&cmp, "cpu_us_per_op"), Verdict::Inconclusive);
    }

    #[test]
    fn more_errors_regress_even_with_one_run_a_side() {
        let b = summary(vec![point(&[(2.0, 100.0, 0)])]);
        let c = summary(vec![point(&[(2.0, 100.0, 40)])]);
        let cmp = compare_summaries(&b, &c, &Options::default()).unwrap();
        assert_eq!(
            verdict(&cmp, "errors"),
            Verdict::Regression,
            "{}",
            render(&cmp)
        );
        assert_eq!(verdict(&cmp, "p99"), Verdict::Inconclusive);
        // One stray error is not significant, and never inconclusive.
        let c = summary(vec![point(&[(2.0, 100.0, 1)])]);
        let cmp = compare_summaries(&b, &c, &Options::default()).unwrap();
        assert_eq!(verdict(&cmp, "errors"), Verdict::Ok);
    }

    #[test]
    fn a_rise_in_stale_reads_regresses() {
        let with_stale = |stale: u64| {
            let mut p = point(&[(2.0, 100.0, 0)]);
            let m = crate::consistency::Measured {
                reads_checked: 10_000,
                stale_reads: stale,
                reads_not_checked: 0,
                stale_rate: Some(stale as f64 / 10_000.0),
                k_staleness: vec![stale, 0, 0, 0],
                t_visibility_p50_ms: None,
                t_visibility_p99_ms: None,
                t_visibility_p999_ms: None,
                curve: Vec::new(),
            };
            for r in &mut p.runs {
                r.consistency = Some(m.clone());
            }
            summary(vec![p])
        };
        let cmp = compare_summaries(&with_stale(10), &with_stale(60), &Options::default()).unwrap();
        assert_eq!(
            verdict(&cmp, "stale_reads"),
            Verdict::Regression,
            "{}",
            render(&cmp)
        );
        let cmp = compare_summaries(&with_stale(10), &with_stale(12), &Options::default()).unwrap();
        assert_eq!(verdict(&cmp, "stale_reads"), Verdict::Ok);
        // Without a measurement on one side there is no row.
        let b = summary(vec![point(&[(2.0, 100.0, 0)])]);
        let cmp = compare_summaries(&b, &with_stale(60), &Options::default()).unwrap();
        assert!(!cmp.rows.iter().any(|r| r.metric == "stale_reads"));
    }

    #[test]
    fn any_lost_write_in_the_candidate_regresses() {
        let audited = |lost: u64| {
            let mut p = point(&[(2.0, 100.0, 0)]);
            p.audit = Some(crate::consistency::audit::Audit {
                writes: 1000,
                acked_puts: 900,
                acked_deletes: 50,
                present: 400,
                superseded: 500 - lost,
                lost_writes: lost,
                resurrected: 0,
                lww_would_lose: 30,
                keys_checked: 100,
                keys_unreadable: 0,
                writes_not_recorded: 0,
                foreign_values: 0,
                violations: Vec::new(),
            });
            summary(vec![p])
        };
        let cmp = compare_summaries(&audited(0), &audited(1), &Options::default()).unwrap();
        assert_eq!(
            verdict(&cmp, "lost_writes"),
            Verdict::Regression,
            "{}",
            render(&cmp)
        );
        assert!(cmp.regressed());
        let cmp = compare_summaries(&audited(0), &audited(0), &Options::default()).unwrap();
        assert_eq!(verdict(&cmp, "lost_writes"), Verdict::Ok);
    }

    #[test]
    fn a_missing_baseline_point_is_incomparable() {
        let mut other = point(&BASE);
        other.params.rate = Some(2000.0);
        let b = summary(vec![point(&BASE), other]);
        let c = summary(vec![point(&BASE)]);
        let err = compare_summaries(&b, &c, &Options::default()).unwrap_err();
        assert!(matches!(err, CompareError::Incomparable(_)), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn workload_hash_ignores_node_args_and_repeat_only() {
        let m = |args: &str, repeat: u32, rate: f64| {
            serde_json::json!({
                "workload": { "name": "x", "rate": rate, "repeat": repeat,
                              "cluster": { "nodes": 3, "node_args": [args] } },
                "repeat": repeat,
            })
        };
        assert_eq!(
            workload_hash(&m("--a", 1, 100.0)),
            workload_hash(&m("--b", 5, 100.0))
        );
        assert_ne!(
            workload_hash(&m("--a", 1, 100.0)),
            workload_hash(&m("--a", 1, 200.0))
        );
    }

    #[test]
    fn min_effect_flags_parse() {
        let mut o = Options::default();
        o.set_min_effect("10%").unwrap();
        o.set_min_effect("p99=20").unwrap();
        assert!((o.min_effect_of("cpu_us_per_op") - 0.10).abs() < 1e-12);
        assert!((o.min_effect_of("p99") - 0.20).abs() < 1e-12);
        assert!(o.set_min_effect("nope=5%").is_err());
        assert!(o.set_min_effect("five").is_err());
        assert!(parse_confidence("100").is_err());
        assert!((parse_confidence("99").unwrap() - 0.99).abs() < 1e-12);
    }

    #[test]
    fn junit_escapes_and_counts_failures() {
        let b = summary(vec![point(&BASE)]);
        let worse: Vec<(f64, f64, u64)> = BASE.iter().map(|(p, c, e)| (*p, c * 1.3, *e)).collect();
        let cmp =
            compare_summaries(&b, &summary(vec![point(&worse)]), &Options::default()).unwrap();
        let x = junit(&cmp);
        assert!(x.contains("failures=\"1\""), "{x}");
        assert!(
            x.contains("<failure message=\"regression: +30.0%\">"),
            "{x}"
        );
        assert_eq!(xml_escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }
}
