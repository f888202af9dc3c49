//! `loadgen history`: change points over a series of results folders, the nightly gate.
//!
//! Folders are ordered by the start time in their `manifest.json`. For every point (matched by
//! parameters), operation and primary metric, the series of medians goes through E-Divisive
//! means with a Student t-test ([`crate::stats::e_divisive`], the method of Apache Otava). A
//! change point in the worse direction within the newest `recent` folders fails the gate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::compare::{CompareError, read_manifest};
use crate::report::{PointSummary, read_summary};

/// Largest p-value of a kept change point (Otava's default is 0.001 over long series; short
/// nightly series need a looser level to say anything).
pub const DEFAULT_MAX_P: f64 = 0.01;
/// Shortest segment E-Divisive may cut off.
pub const MIN_SEGMENT: usize = 3;

/// (point label, operation, metric) → (higher is better, the value per folder).
pub type SeriesMap = BTreeMap<(String, String, String), (bool, Vec<Option<f64>>)>;

/// One results folder of the series.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The folder.
    pub dir: String,
    /// Start time from the manifest (ISO 8601).
    pub started: String,
    /// Git revision of the measured node build (or of the checkout, for old folders).
    pub revision: Option<String>,
}

/// A change point found in one series.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Point label.
    pub point: String,
    /// Operation or `all`.
    pub op: String,
    /// Metric.
    pub metric: String,
    /// Index of the first folder after the change.
    pub index: usize,
    /// That folder.
    pub entry: Entry,
    /// Mean after over mean before, minus one.
    pub change: f64,
    /// True when the change is for the worse.
    pub worse: bool,
    /// Student t-test p-value between the neighbouring segments.
    pub p_value: f64,
}

/// The analysis of a series of folders.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// The folders, oldest first.
    pub entries: Vec<Entry>,
    /// Every change point.
    pub changes: Vec<Change>,
    /// The series analysed: (point, op, metric, higher is better) → values per entry.
    #[serde(skip)]
    pub series: SeriesMap,
    /// Newest folders the gate looks at.
    pub recent: usize,
}

impl History {
    /// Worse change points within the newest `recent` folders.
    pub fn failing(&self) -> impl Iterator<Item = &Change> {
        let first_recent = self.entries.len().saturating_sub(self.recent);
        self.changes
            .iter()
            .filter(move |c| c.worse && c.index >= first_recent)
    }
}

fn metrics_of(p: &PointSummary) -> Vec<(String, String, bool, f64)> {
    let mut out = Vec::new();
    for (op, o) in &p.ops {
        out.push((op.clone(), "p99".into(), false, o.response.p99_us / 1000.0));
        if p.params.concurrency.is_some() {
            out.push((op.clone(), "throughput".into(), true, o.throughput_ops_s));
        }
        if o.count > 0 {
            out.push((
                op.clone(),
                "error_rate".into(),
                false,
                o.errors as f64 / o.count as f64,
            ));
        }
    }
    let cpu = p
        .resources
        .as_ref()
        .and_then(|r| r.node_cpu_us_per_op)
        .or_else(|| {
            let ops: u64 = p.ops.values().map(|o| o.count).sum();
            let pct: f64 = p
                .processes
                .iter()
                .filter(|x| x.role == "node")
                .map(|x| x.cpu_pct)
                .sum();
            (ops > 0 && pct > 0.0).then(|| pct / 100.0 * p.duration_s * 1e6 / ops as f64)
        });
    if let Some(c) = cpu {
        out.push(("all".into(), "cpu_us_per_op".into(), false, c));
    }
    out
}

/// Reads the folders, orders them by start time and finds the change points.
pub fn analyse(dirs: &[PathBuf], recent: usize, max_p: f64) -> Result<History, CompareError> {
    let mut loaded = Vec::new();
    for d in dirs {
        let summary = read_summary(d).map_err(|e| CompareError::Unreadable(e.to_string()))?;
        let manifest = read_manifest(d)?;
        let started = manifest
            .get("started")
            .and_then(|s| s.as_str())
            .unwrap_or(&summary.started)
            .to_string();
        let revision = manifest
            .get("node_build")
            .and_then(|n| n.get("git_revision"))
            .and_then(|r| r.as_str())
            .or_else(|| manifest.get("git_revision").and_then(|r| r.as_str()))
            .map(str::to_string);
        let hash = crate::compare::workload_hash(&manifest);
        loaded.push((
            Entry {
                dir: d.display().to_string(),
                started,
                revision,
            },
            summary,
            hash,
        ));
    }
    // ISO 8601 UTC strings sort in time order.
    loaded.sort_by(|a, b| a.0.started.cmp(&b.0.started));
    if let Some(first) = loaded.first() {
        for (e, _, h) in &loaded {
            if *h != first.2 {
                return Err(CompareError::Incomparable(format!(
                    "{} ran a different workload than {}; history needs one workload",
                    e.dir, first.0.dir
                )));
            }
        }
    }
    let n = loaded.len();
    let mut series: SeriesMap = BTreeMap::new();
    for (i, (_, s, _)) in loaded.iter().enumerate() {
        for p in &s.points {
            for (op, metric, higher, v) in metrics_of(p) {
                let e = series
                    .entry((p.label.clone(), op, metric))
                    .or_insert_with(|| (higher, vec![None; n]));
                if let Some(slot) = e.1.get_mut(i) {
                    *slot = Some(v);
                }
            }
        }
    }
    let entries: Vec<Entry> = loaded.into_iter().map(|(e, _, _)| e).collect();
    let mut changes = Vec::new();
    for ((point, op, metric), (higher, values)) in &series {
        // Folders missing this series are skipped; indices map back to folders.
        let idx: Vec<usize> = (0..n)
            .filter(|i| values.get(*i).is_some_and(Option::is_some))
            .collect();
        let xs: Vec<f64> = idx
            .iter()
            .filter_map(|i| values.get(*i).copied().flatten())
            .collect();
        for cp in crate::stats::e_divisive(&xs, max_p, MIN_SEGMENT) {
            let Some(&at) = idx.get(cp.index) else {
                continue;
            };
            let Some(entry) = entries.get(at) else {
                continue;
            };
            changes.push(Change {
                point: point.clone(),
                op: op.clone(),
                metric: metric.clone(),
                index: at,
                entry: entry.clone(),
                change: cp.change,
                worse: if *higher {
                    cp.change < 0.0
                } else {
                    cp.change > 0.0
                },
                p_value: cp.p_value,
            });
        }
    }
    Ok(History {
        entries,
        changes,
        series,
        recent,
    })
}

/// The report `loadgen history` prints.
pub fn render(h: &History) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} results folders, oldest first:", h.entries.len());
    for (i, e) in h.entries.iter().enumerate() {
        let rev = e
            .revision
            .as_deref()
            .map(|r| r.get(..12).unwrap_or(r))
            .unwrap_or("—");
        let _ = writeln!(s, "  {i:>3}  {}  {rev}  {}", e.started, e.dir);
    }
    if h.changes.is_empty() {
        let _ = writeln!(s, "no change points");
    }
    for c in &h.changes {
        let rev = c.entry.revision.as_deref().unwrap_or("—");
        let _ = writeln!(
            s,
            "change point: {} {} {} at folder {} (revision {rev}, {}): {:+.1}% ({}), p = {:.2e}",
            c.point,
            c.op,
            c.metric,
            c.index,
            c.entry.started,
            c.change * 100.0,
            if c.worse { "worse" } else { "better" },
            c.p_value
        );
    }
    let failing = h.failing().count();
    if failing > 0 {
        let _ = writeln!(
            s,
            "FAIL: {failing} change point(s) for the worse within the newest {} folders",
            h.recent
        );
    } else {
        let _ = writeln!(
            s,
            "PASS: no change point for the worse within the newest {} folders",
            h.recent
        );
    }
    s
}

/// Draws every series that has a change point (or, with none, every series): the values and
/// the mean of each segment between change points.
pub fn draw_chart(png: &Path, h: &History) -> Result<(), crate::report::ReportError> {
    let with_changes: Vec<&(String, String, String)> = h
        .series
        .keys()
        .filter(|k| {
            h.changes
                .iter()
                .any(|c| c.point == k.0 && c.op == k.1 && c.metric == k.2)
        })
        .collect();
    let keys: Vec<&(String, String, String)> = if with_changes.is_empty() {
        h.series.keys().take(6).collect()
    } else {
        with_changes
    };
    let categories: Vec<String> = h
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let rev = e
                .revision
                .as_deref()
                .map(|r| r.get(..7).unwrap_or(r))
                .unwrap_or("");
            format!("{i} {rev}")
        })
        .collect();
    let mut panels = Vec::new();
    for k in keys {
        let Some((_, values)) = h.series.get(k) else {
            continue;
        };
        let here: Vec<&Change> = h
            .changes
            .iter()
            .filter(|c| c.point == k.0 && c.op == k.1 && c.metric == k.2)
            .collect();
        let marks = here
            .iter()
            .map(|c| {
                let rev = c
                    .entry
                    .revision
                    .as_deref()
                    .map(|r| r.get(..7).unwrap_or(r))
                    .unwrap_or("");
                (
                    c.index as f64 - 0.5,
                    format!("{:+.0}% {rev} (p {:.0e})", c.change * 100.0, c.p_value),
                )
            })
            .collect();
        let mut cuts: Vec<usize> = here.iter().map(|c| c.index).collect();
        cuts.push(0);
        cuts.push(values.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut means = vec![0.0; values.len()];
        for w in cuts.windows(2) {
            let (Some(&a), Some(&b)) = (w.first(), w.get(1)) else {
                continue;
            };
            let seg: Vec<f64> = values
                .get(a..b)
                .unwrap_or(&[])
                .iter()
                .flatten()
                .copied()
                .collect();
            let m = crate::stats::mean(&seg).unwrap_or(0.0);
            for slot in means.get_mut(a..b).unwrap_or(&mut []) {
                *slot = m;
            }
        }
        let vals: Vec<(f64, f64, f64)> = values
            .iter()
            .map(|v| {
                let v = v.unwrap_or(0.0);
                (v, v, v)
            })
            .collect();
        panels.push(crate::report::charts::IntervalPanel {
            title: format!("{} {} {} (segment means: change points)", k.0, k.1, k.2),
            y_desc: match k.2.as_str() {
                "p99" => "p99 response time (ms)".into(),
                "cpu_us_per_op" => "node CPU (µs per operation)".into(),
                "throughput" => "throughput (ops/s)".into(),
                "error_rate" => "errors per operation".into(),
                other => other.to_string(),
            },
            categories: categories.clone(),
            series: vec![
                ("value".into(), vals),
                (
                    "segment mean".into(),
                    means.iter().map(|m| (*m, *m, *m)).collect(),
                ),
            ],
            marks,
        });
    }
    crate::report::charts::draw_interval_chart(png, &panels)
}
