//! A point's autoscaling in its results: every decision with its reaction times and the
//! errors and p99 in the phases around it, and the signal series the controller sampled.
//!
//! Phases of decision *i*: `before` runs from the end of the previous action (or the start of
//! the window) to the moment the overload (or, for a scale-in, the quiet) began; `scaling`
//! from then until the new node served (or the node was gone); `after` from then until the
//! next decision's phase began (or the window ended). Figures come from the per-second
//! histograms of the point's interval logs, so a second counts in the phase its middle falls in.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use store::autoscale::{Decision, Log, Policy, Signals};

/// `autoscale` of a point in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoscaleSummary {
    /// The policy the controller ran.
    pub policy: Policy,
    /// Nodes at the start of the point.
    pub nodes_start: u32,
    /// Nodes at its end.
    pub nodes_end: u32,
    /// Every decision, in order.
    pub decisions: Vec<DecisionRecord>,
    /// Every complete sample of the cluster's signals.
    pub samples: Vec<Sample>,
    /// Samples left incomplete (a node did not answer, or had just joined).
    pub incomplete_samples: u64,
}

/// One decision as the controller carried it out (times in seconds since the end of
/// warm-up), with its reaction times and the phases around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// `action`, `overload_began_s`, `decided_s`, `serving_s`, `nodes_before`,
    /// `nodes_after`, `node`, `signals`, `why`, `error`.
    #[serde(flatten)]
    pub decision: Decision,
    /// `decided_s − overload_began_s`.
    pub detect_s: f64,
    /// `serving_s − decided_s`.
    pub act_s: Option<f64>,
    /// Errors and p99 before, during and after the action.
    pub phases: Vec<Phase>,
}

/// Requests in one phase around a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// `before`, `scaling` or `after`.
    pub phase: String,
    /// Start, seconds since the end of warm-up.
    pub from_s: f64,
    /// End.
    pub to_s: f64,
    /// Requests answered or failed.
    pub requests: u64,
    /// Requests failed.
    pub errors: u64,
    /// p99 response time of the answered requests, ms.
    pub p99_ms: Option<f64>,
}

/// One sample of the cluster's signals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the end of warm-up.
    pub t_s: f64,
    /// The signals.
    #[serde(flatten)]
    pub signals: Signals,
}

/// One second of one operation's log.
struct Second {
    mid_s: f64,
    answered: Histogram<u64>,
    failed: u64,
}

fn seconds(dir: &Path, logs: &BTreeMap<String, String>) -> Vec<Second> {
    let mut out = Vec::new();
    for rel in logs.values() {
        let Ok(intervals) = crate::record::read_log(&dir.join(rel)) else {
            continue;
        };
        for i in intervals.into_iter().filter(|i| !i.service) {
            out.push(Second {
                mid_s: i.start_s + i.length_s / 2.0,
                failed: if i.failed { i.hist.len() } else { 0 },
                answered: if i.failed {
                    Histogram::new_from(&i.hist)
                } else {
                    i.hist
                },
            });
        }
    }
    out
}

fn phase(name: &str, from_s: f64, to_s: f64, secs: &[Second]) -> Phase {
    let mut hist: Option<Histogram<u64>> = None;
    let (mut requests, mut errors) = (0u64, 0u64);
    for s in secs.iter().filter(|s| s.mid_s >= from_s && s.mid_s < to_s) {
        requests = requests
            .saturating_add(s.answered.len())
            .saturating_add(s.failed);
        errors = errors.saturating_add(s.failed);
        match &mut hist {
            Some(h) => {
                let _ = h.add(&s.answered);
            }
            None => hist = Some(s.answered.clone()),
        }
    }
    Phase {
        phase: name.to_string(),
        from_s,
        to_s,
        requests,
        errors,
        p99_ms: hist
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(0.99) as f64 / 1e6),
    }
}

/// The summary of a controller's `log` over a point whose interval logs are `logs` (relative
/// to `dir`) and whose measured window lasted `window_s`.
pub fn summarise(
    log: &Log,
    policy: &Policy,
    nodes_start: u32,
    dir: &Path,
    logs: &BTreeMap<String, String>,
    window_s: f64,
) -> AutoscaleSummary {
    let secs = seconds(dir, logs);
    let d = &log.decisions;
    let mut decisions = Vec::with_capacity(d.len());
    for (i, x) in d.iter().enumerate() {
        let start = i
            .checked_sub(1)
            .and_then(|p| d.get(p))
            .map_or(0.0, |p| p.serving_s.unwrap_or(p.decided_s));
        let served = x.serving_s.unwrap_or(x.decided_s);
        let end = d.get(i + 1).map_or(window_s, |n| n.overload_began_s);
        decisions.push(DecisionRecord {
            detect_s: x.decided_s - x.overload_began_s,
            act_s: x.serving_s.map(|s| s - x.decided_s),
            phases: vec![
                phase("before", start, x.overload_began_s, &secs),
                phase("scaling", x.overload_began_s, served, &secs),
                phase("after", served, end.max(served), &secs),
            ],
            decision: x.clone(),
        });
    }
    AutoscaleSummary {
        policy: policy.clone(),
        nodes_start,
        nodes_end: d.last().map_or(nodes_start, |x| x.nodes_after),
        decisions,
        samples: log
            .samples
            .iter()
            .map(|&(t_s, signals)| Sample { t_s, signals })
            .collect(),
        incomplete_samples: log.incomplete_samples,
    }
}

/// The node count over time, as steps: (seconds, nodes) at the start and at each action that
/// changed it (when the new node served, or the node was gone).
pub fn node_steps(a: &AutoscaleSummary, end_s: f64) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, f64::from(a.nodes_start))];
    let mut nodes = a.nodes_start;
    for d in a
        .decisions
        .iter()
        .map(|d| &d.decision)
        .filter(|d| d.error.is_none())
    {
        let at = d.serving_s.unwrap_or(d.decided_s).max(0.0);
        out.push((at, f64::from(nodes)));
        nodes = d.nodes_after;
        out.push((at, f64::from(nodes)));
    }
    out.push((end_s, f64::from(nodes)));
    out
}

/// The report's "Autoscaling" section: per point, each decision with its reaction times and
/// the phases around it.
pub fn markdown_section(s: &mut String, summary: &super::Summary) {
    if !summary.points.iter().any(|p| p.autoscale.is_some()) {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Autoscaling\n\nTimes in seconds since the end of warm-up. Detect: from the \
         start of the overload (or quiet) to the decision; act: from the decision to the new \
         node serving (or the old one gone). Phases: before the overload began, while \
         scaling, after.\n\n| point | action | node | nodes | began | decided | serving | \
         detect | act | why | errors before / scaling / after | p99 ms before / scaling / \
         after |\n|{}",
        "---|".repeat(12)
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    for p in &summary.points {
        let Some(a) = &p.autoscale else { continue };
        if a.decisions.is_empty() {
            let _ = writeln!(
                s,
                "| {} | none | | {} | | | | | | {} samples, no threshold held | | |",
                p.id,
                a.nodes_start,
                a.samples.len()
            );
        }
        for r in &a.decisions {
            let errors: Vec<String> = r.phases.iter().map(|x| x.errors.to_string()).collect();
            let p99: Vec<String> = r.phases.iter().map(|x| ms(x.p99_ms)).collect();
            let d = &r.decision;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} → {} | {:.1} | {:.1} | {} | {:.1} | {} | {}{} | {} | {} |",
                p.id,
                d.action.as_str(),
                d.node.as_deref().unwrap_or(""),
                d.nodes_before,
                d.nodes_after,
                d.overload_began_s,
                d.decided_s,
                secs(d.serving_s),
                r.detect_s,
                secs(r.act_s),
                d.why.replace('|', "/"),
                d.error
                    .as_deref()
                    .map(|e| format!("; **failed**: {}", e.replace('|', "/")))
                    .unwrap_or_default(),
                errors.join(" / "),
                p99.join(" / "),
            );
        }
    }
}
