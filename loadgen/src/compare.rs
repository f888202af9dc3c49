//! Baseline vs candidate: the CI gate.
//!
//! Points are matched by their parameters. For every operation both runs have, throughput may
//! not fall, and p50 and p99 response time may not rise, by more than the allowed regression.
//! Throughput carries a 95% interval from the per-second samples in the interval logs (when the
//! folders have them), so a change inside the noise is marked as such.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::record::read_log;
use crate::report::{PointSummary, ReportError, Summary, read_summary};

/// Metrics the gate checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Successful operations per second (higher is better).
    Throughput,
    /// Median response time (lower is better).
    P50,
    /// 99th-percentile response time (lower is better).
    P99,
}

impl Metric {
    const ALL: [Metric; 3] = [Metric::Throughput, Metric::P50, Metric::P99];

    fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "ops/s",
            Metric::P50 => "p50 ms",
            Metric::P99 => "p99 ms",
        }
    }

    fn higher_is_better(self) -> bool {
        self == Metric::Throughput
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Candidate point id.
    pub point: String,
    /// Operation.
    pub op: String,
    /// What is compared.
    pub metric: Metric,
    /// Baseline value (ops/s or ms).
    pub baseline: f64,
    /// Candidate value.
    pub candidate: f64,
    /// Relative change, candidate over baseline minus one.
    pub change: f64,
    /// Half-width of the 95% interval of the difference, when known (throughput only).
    pub noise: Option<f64>,
    /// Worse by more than allowed.
    pub regression: bool,
}

/// The comparison of two results folders.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Every compared figure.
    pub rows: Vec<Row>,
    /// Candidate points with no baseline counterpart.
    pub unmatched: Vec<String>,
    /// Warnings (client-bound points, errors).
    pub notes: Vec<String>,
    /// The allowed regression, as a fraction.
    pub max_regression: f64,
}

impl Comparison {
    /// True when any figure regressed beyond the allowance.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.regression)
    }
}

/// Parses an allowed regression written in percent: `10%` or `10`.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches('%').trim();
    let v: f64 = t
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage; write e.g. --max-regression 10%"))?;
    if !(0.0..=1000.0).contains(&v) {
        return Err(format!(
            "`{text}`: the allowed regression must be 0% to 1000%"
        ));
    }
    Ok(v / 100.0)
}

fn key(p: &PointSummary) -> String {
    serde_json::to_string(&p.params).unwrap_or_default()
}

/// Mean and standard error of the per-interval throughput of `op` in a point, from its log.
fn interval_rate(dir: &Path, p: &PointSummary, op: &str) -> Option<(f64, f64)> {
    let rel = p.logs.get(op)?;
    let base = if dir.is_file() { dir.parent()? } else { dir };
    let intervals = read_log(&base.join(rel)).ok()?;
    let rates: Vec<f64> = intervals
        .iter()
        .filter(|i| !i.service && i.length_s > 0.5)
        .map(|i| i.hist.len() as f64 / i.length_s)
        .collect();
    if rates.len() < 3 {
        return None;
    }
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let var = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, (var / n).sqrt()))
}

/// Compares two results folders (or `summary.json` files).
pub fn compare(
    baseline: &Path,
    candidate: &Path,
    max_regression: f64,
) -> Result<Comparison, ReportError> {
    let base = read_summary(baseline)?;
    let cand = read_summary(candidate)?;
    Ok(compare_summaries(
        &base,
        &cand,
        max_regression,
        Some((baseline, candidate)),
    ))
}

/// Compares two summaries; `dirs` lets throughput carry its noise from the interval logs.
pub fn compare_summaries(
    base: &Summary,
    cand: &Summary,
    max_regression: f64,
    dirs: Option<(&Path, &Path)>,
) -> Comparison {
    let by_key: BTreeMap<String, &PointSummary> = base.points.iter().map(|p| (key(p), p)).collect();
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    let mut notes = Vec::new();
    for c in &cand.points {
        let Some(b) = by_key.get(&key(c)) else {
            unmatched.push(format!("{} ({})", c.id, c.label));
            continue;
        };
        for (side, p) in [("baseline", *b), ("candidate", c)] {
            if p.client_bound {
                notes.push(format!(
                    "{side} {} was client-bound ({}): its figures measure the load generator",
                    p.id,
                    p.self_check.reasons.join("; ")
                ));
            }
        }
        for (op, co) in &c.ops {
            let Some(bo) = b.ops.get(op) else { continue };
            if co.errors > bo.errors {
                notes.push(format!(
                    "{} {op}: {} errors (baseline {})",
                    c.id, co.errors, bo.errors
                ));
            }
            for metric in Metric::ALL {
                let (bv, cv) = match metric {
                    Metric::Throughput => (bo.throughput_ops_s, co.throughput_ops_s),
                    Metric::P50 => (bo.response.p50_us / 1000.0, co.response.p50_us / 1000.0),
                    Metric::P99 => (bo.response.p99_us / 1000.0, co.response.p99_us / 1000.0),
                };
                let change = if bv > 0.0 { cv / bv - 1.0 } else { 0.0 };
                let worse = if metric.higher_is_better() {
                    -change
                } else {
                    change
                };
                let noise = match (metric, dirs) {
                    (Metric::Throughput, Some((bd, cd))) => {
                        match (interval_rate(bd, b, op), interval_rate(cd, c, op)) {
                            (Some((_, bse)), Some((_, cse))) => {
                                Some(1.96 * (bse * bse + cse * cse).sqrt())
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let beyond_noise = noise.is_none_or(|n| (cv - bv).abs() > n);
                rows.push(Row {
                    point: c.id.clone(),
                    op: op.clone(),
                    metric,
                    baseline: bv,
                    candidate: cv,
                    change,
                    noise,
                    regression: worse > max_regression && beyond_noise,
                });
            }
        }
    }
    Comparison {
        rows,
        unmatched,
        notes,
        max_regression,
    }
}

fn fmt_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::Throughput => format!("{v:.0}"),
        _ => format!("{v:.3}"),
    }
}

/// The table `loadgen compare` prints.
pub fn render(c: &Comparison) -> String {
    let mut s = String::new();
    let header = [
        "point",
        "op",
        "metric",
        "baseline",
        "candidate",
        "change",
        "±95%",
        "verdict",
    ];
    let mut table: Vec<[String; 8]> = vec![header.map(String::from)];
    for r in &c.rows {
        let verdict = if r.regression {
            "REGRESSION".to_string()
        } else {
            let worse = if r.metric.higher_is_better() {
                -r.change
            } else {
                r.change
            };
            if worse > c.max_regression {
                "within noise".into()
            } else {
                "ok".into()
            }
        };
        table.push([
            r.point.clone(),
            r.op.clone(),
            r.metric.name().into(),
            fmt_value(r.metric, r.baseline),
            fmt_value(r.metric, r.candidate),
            format!("{:+.1}%", r.change * 100.0),
            r.noise
                .map(|n| fmt_value(r.metric, n))
                .unwrap_or_else(|| "—".into()),
            verdict,
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(s, "{}", line.join("  ").trim_end());
    }
    for u in &c.unmatched {
        let _ = writeln!(
            s,
            "note: candidate point {u} has no baseline point with the same parameters"
        );
    }
    for n in &c.notes {
        let _ = writeln!(s, "note: {n}");
    }
    let regressions = c.rows.iter().filter(|r| r.regression).count();
    if regressions > 0 {
        let _ = writeln!(
            s,
            "FAIL: {regressions} figure(s) regressed by more than {:.1}%",
            c.max_regression * 100.0
        );
    } else {
        let _ = writeln!(
            s,
            "OK: no figure regressed by more than {:.1}% ({} compared)",
            c.max_regression * 100.0,
            c.rows.len()
        );
    }
    s
}
