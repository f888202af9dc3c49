//! The search for the highest rate under an SLO, as results: whether one step met the SLO
//! ([`judge`]), the `search` section of `summary.json` ([`SearchSummary`]) and its section of
//! `report.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::summary::SUSTAINED_SHARE;
use super::{PointSummary, Summary};
use crate::workload::Slo;

/// Whether one step met the SLO, and why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Every bound held.
    pub passed: bool,
    /// Each bound that failed, in words (`read p99 12.3 ms > 10 ms`).
    pub reasons: Vec<String>,
    /// The bound closest to failing (above 1 when it failed).
    pub tightest: Option<Tightest>,
}

/// The bound a step came closest to failing, or failed by most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tightest {
    /// Which bound: `read p99`, `errors`.
    pub bound: String,
    /// Measured / bound: above 1 when the bound failed.
    pub ratio: f64,
}

/// `12.3 ms`, `10 ms`, `0.25 ms`: enough digits to compare with a bound.
fn ms(us: f64) -> String {
    let v = us / 1000.0;
    let digits = if v >= 1000.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        3
    };
    let text = format!("{v:.digits$}");
    let text = if digits > 0 {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} ms")
}

/// Judges a step against `slo`: every operation's response-time percentiles within their
/// bounds, failed requests within the error budget, no tick left unsent, and the offered rate
/// sustained (achieved at least [`SUSTAINED_SHARE`] of it). A step that cannot keep its rate
/// fails whatever its latencies say: the load it was asked to carry did not happen.
pub fn judge(slo: &Slo, p: &PointSummary) -> Verdict {
    let mut reasons = Vec::new();
    let mut tightest: Option<Tightest> = None;
    let mut note = |bound: String, ratio: f64| {
        if tightest.as_ref().is_none_or(|t| ratio > t.ratio) {
            tightest = Some(Tightest { bound, ratio });
        }
    };
    for (op, o) in &p.ops {
        for (name, bound) in slo.latency_bounds() {
            let measured = match name {
                "p50" => o.response.p50_us,
                "p99" => o.response.p99_us,
                _ => o.response.p999_us,
            };
            let bound_us = bound.as_secs_f64() * 1e6;
            let ratio = measured / bound_us;
            note(format!("{op} {name}"), ratio);
            if measured > bound_us {
                reasons.push(format!("{op} {name} {} > {}", ms(measured), ms(bound_us)));
            }
        }
    }
    let count: u64 = p.ops.values().map(|o| o.count).sum();
    let errors: u64 = p.ops.values().map(|o| o.errors).sum();
    let budget = slo.error_budget();
    if count > 0 {
        let rate = errors as f64 / count as f64;
        if budget > 0.0 {
            note("errors".into(), rate / budget);
        }
        if rate > budget {
            reasons.push(format!(
                "errors {:.3}% > {}",
                rate * 100.0,
                crate::workload::Percent(budget)
            ));
        }
    } else {
        reasons.push("no request completed".into());
    }
    if p.schedule.missed_ticks > 0 {
        reasons.push(format!(
            "{} ticks never sent (the target fell behind by more than the drain allows)",
            p.schedule.missed_ticks
        ));
    }
    if let Some(offered) = p.offered_rate
        && p.achieved_rate < SUSTAINED_SHARE * offered
    {
        reasons.push(format!(
            "achieved {:.0} of {:.0} ops/s offered (< {:.0}%)",
            p.achieved_rate,
            offered,
            SUSTAINED_SHARE * 100.0
        ));
    }
    Verdict {
        passed: reasons.is_empty(),
        reasons,
        tightest,
    }
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchOutcome {
    /// A passing and a failing rate within the precision of each other.
    Found,
    /// Every step passed up to `max`: the capacity is at least the highest rate tried.
    LowerBound,
    /// The first step already missed the SLO.
    StartFailed,
    /// The step budget ran out before the bracket was narrow enough.
    StepsExhausted,
    /// A step could not run (a cluster that would not start, a results folder that could not
    /// be written): the search stopped there; `error` says why, and the rates found by the
    /// steps before it stand.
    Error,
}

/// Which part of the search a step belonged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The bracketing ramp: the rate doubles until a step fails or `max` is reached.
    Ramp,
    /// Bisection between the highest passing and the lowest failing rate.
    Bisect,
}

/// One step of the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchStep {
    /// 1-based step number.
    pub step: u32,
    /// The point that ran it (`p03`): its figures are in `points`.
    pub point: String,
    /// Ramp or bisection.
    pub phase: Phase,
    /// Offered rate, ops/s.
    pub rate: f64,
    /// Achieved rate, ops/s.
    pub achieved_rate: f64,
    /// Whether the step met the SLO.
    pub passed: bool,
    /// Why not, one entry per failed bound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The bound closest to failing, or failed by most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tightest: Option<Tightest>,
    /// The load generator limited the step (see the point's self-check).
    #[serde(default)]
    pub client_bound: bool,
}

/// `summary.json` `search`: the highest rate that met the SLO, the bracket around it, and
/// every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSummary {
    /// The kind of search (`max_rate`).
    pub kind: String,
    /// The objective, in words (`p99 ≤ 10ms, errors ≤ 0.1%`).
    pub slo: String,
    /// Its latency bounds, µs, keyed `p50`, `p99`, `p99.9` (those set).
    pub latency_bounds_us: BTreeMap<String, f64>,
    /// Its error budget: the most failed requests, as a fraction of all requests.
    pub error_budget: f64,
    /// First rate, ops/s.
    pub start: f64,
    /// Highest rate the search could try, ops/s.
    pub max: f64,
    /// The bracket width the search stops at (a fraction of the passing rate).
    pub precision: f64,
    /// The step budget.
    pub max_steps: u32,
    /// Runs per step (the verdict reads their medians).
    pub runs_per_step: u32,
    /// How the search ended (`null` while it runs).
    pub outcome: Option<SearchOutcome>,
    /// The highest rate that met the SLO, ops/s (`null`: none did).
    pub highest_passing_rate: Option<f64>,
    /// The lowest rate that missed it, ops/s (`null`: none did).
    pub lowest_failing_rate: Option<f64>,
    /// (lowest failing − highest passing) / highest passing, when both exist.
    pub bracket_width: Option<f64>,
    /// How far to trust the answer, in words.
    pub confidence: String,
    /// Every step, in the order they ran.
    pub steps: Vec<SearchStep>,
    /// Why the search stopped early, with `outcome: error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The report's search section: the answer first, then every step.
pub fn markdown_section(s: &mut String, summary: &Summary) {
    let Some(search) = &summary.search else {
        return;
    };
    let rate = |r: Option<f64>| r.map_or("—".to_string(), |r| format!("{r:.0} ops/s"));
    let _ = writeln!(
        s,
        "## Highest rate under the SLO\n\nSLO: {} (every operation, response time). \
         **Highest passing rate: {}**; lowest failing rate: {}{}.\n\n{}\n",
        search.slo,
        rate(search.highest_passing_rate),
        rate(search.lowest_failing_rate),
        search
            .bracket_width
            .map(|w| format!(" (bracket {:.1}% wide)", w * 100.0))
            .unwrap_or_default(),
        search.confidence
    );
    let _ = writeln!(
        s,
        "| step | point | phase | offered | achieved | verdict | tightest bound (measured / \
         bound) | why |\n|{}",
        "---|".repeat(8)
    );
    for st in &search.steps {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {:.0} | {} | {} | {} |",
            st.step,
            st.point,
            match st.phase {
                Phase::Ramp => "ramp",
                Phase::Bisect => "bisect",
            },
            st.rate,
            st.achieved_rate,
            match (st.passed, st.client_bound) {
                (true, false) => "pass",
                (true, true) => "pass (client-bound)",
                (false, false) => "**fail**",
                (false, true) => "**fail** (client-bound)",
            },
            st.tightest
                .as_ref()
                .map(|t| format!("{} {:.0}%", t.bound, t.ratio * 100.0))
                .unwrap_or_default(),
            st.reasons.join("; ").replace('|', "/"),
        );
    }
    s.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::{Latency, OpSummary, Params, Preload, ScheduleCheck, SelfCheck};
    use crate::workload::{DurationSpec, Percent};

    fn point(p99_us: f64, errors: u64, offered: f64, achieved: f64) -> PointSummary {
        let op = OpSummary {
            count: 1000,
            errors,
            errors_indeterminate: 0,
            errors_conflict: 0,
            found_nothing: 0,
            throughput_ops_s: achieved,
            response: Latency {
                p50_us: p99_us / 10.0,
                p90_us: p99_us / 2.0,
                p99_us,
                p999_us: p99_us * 2.0,
                max_us: p99_us * 3.0,
            },
            service: Latency::default(),
            failed: None,
            worst_second_p99_us: None,
            p99_per_minute_us: Vec::new(),
        };
        PointSummary {
            index: 0,
            id: "p00".into(),
            label: String::new(),
            params: Params {
                value_bytes: 100,
                values: "100B".into(),
                replication: 1,
                write_quorum: 1,
                read_quorum: 1,
                nodes: 1,
                keys: None,
                rate: Some(offered),
                rate_schedule: None,
                concurrency: None,
            },
            ops: BTreeMap::from([("read".to_string(), op)]),
            offered_rate: Some(offered),
            achieved_rate: achieved,
            client_bound: false,
            duration_s: 1.0,
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
            runs: Vec::new(),
            window_start_unix_s: None,
            shards: Vec::new(),
        }
    }

    fn slo() -> Slo {
        Slo {
            p99: DurationSpec::parse("10ms").ok(),
            errors: Some(Percent(0.01)),
            ..Slo::default()
        }
    }

    #[test]
    fn a_step_within_every_bound_passes_and_names_its_tightest_bound() {
        let v = judge(&slo(), &point(5_000.0, 1, 1000.0, 1000.0));
        assert!(v.passed, "{v:?}");
        let t = v.tightest.unwrap();
        assert_eq!(t.bound, "read p99");
        assert!((t.ratio - 0.5).abs() < 1e-9);
    }

    #[test]
    fn latency_errors_and_an_unsustained_rate_each_fail_a_step() {
        let slow = judge(&slo(), &point(12_300.0, 0, 1000.0, 1000.0));
        assert!(!slow.passed);
        assert_eq!(slow.reasons, ["read p99 12.3 ms > 10 ms"]);

        let failing = judge(&slo(), &point(1_000.0, 20, 1000.0, 1000.0));
        assert!(!failing.passed);
        assert!(
            failing.reasons[0].starts_with("errors 2.000% > 1%"),
            "{failing:?}"
        );

        let behind = judge(&slo(), &point(1_000.0, 0, 1000.0, 800.0));
        assert!(!behind.passed);
        assert!(
            behind.reasons[0].contains("achieved 800 of 1000"),
            "{behind:?}"
        );

        let mut missed = point(1_000.0, 0, 1000.0, 1000.0);
        missed.schedule.missed_ticks = 3;
        assert!(!judge(&slo(), &missed).passed);
    }

    #[test]
    fn without_an_error_bound_fast_failures_still_fail() {
        let slo = Slo {
            p99: DurationSpec::parse("10ms").ok(),
            ..Slo::default()
        };
        assert!(!judge(&slo, &point(100.0, 500, 1000.0, 1000.0)).passed);
    }
}
