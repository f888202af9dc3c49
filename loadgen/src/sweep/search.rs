//! `search: max_rate`: the highest open-loop rate whose step meets the SLO.
//!
//! A bracketing ramp runs first: from `start` the rate doubles until a step misses the SLO or
//! `max` is reached. Bisection then halves the bracket between the highest passing and the
//! lowest failing rate until it is within `precision` of the passing rate. Every step is an
//! ordinary point (fresh cluster, warm-up, measured window, `repeat` runs), recorded in the
//! results folder like any other; [`crate::report::search::judge`] decides it from the point's
//! summary.

use crate::plan::{Load, Point};
use crate::report::search::{Phase, SearchOutcome, SearchStep, SearchSummary, judge};
use crate::sweep::{Session, SweepError};
use crate::workload::rate::fmt_rate;
use crate::workload::{MaxRateSearch, Percent, Slo};

/// The bracket and where the search goes next: pure bookkeeping, no I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct Bracket {
    start: f64,
    max: f64,
    precision: f64,
    max_steps: u32,
    steps: u32,
    /// Highest rate that met the SLO.
    pass: Option<f64>,
    /// Lowest rate that missed it.
    fail: Option<f64>,
}

/// Rates are whole operations per second once above this, so labels and files read cleanly.
const WHOLE_RATES_ABOVE: f64 = 10.0;

fn tidy(rate: f64) -> f64 {
    if rate >= WHOLE_RATES_ABOVE {
        rate.round()
    } else {
        rate
    }
}

impl Bracket {
    /// A search from `start` up to `max` (ops/s), stopping when the bracket is within
    /// `precision` (a fraction) of the passing rate or after `max_steps` steps.
    pub fn new(start: f64, max: f64, precision: f64, max_steps: u32) -> Bracket {
        Bracket {
            start,
            max,
            precision,
            max_steps,
            steps: 0,
            pass: None,
            fail: None,
        }
    }

    /// The settings of a workload's `search.max_rate`.
    pub fn of(spec: &MaxRateSearch) -> Bracket {
        Bracket::new(
            spec.start_rate(),
            spec.max_rate(),
            spec.precision_fraction(),
            spec.max_steps(),
        )
    }

    /// The next rate to try and the phase it belongs to; `None` when the search is over.
    pub fn next(&self) -> Option<(f64, Phase)> {
        if self.steps >= self.max_steps {
            return None;
        }
        self.next_unbounded()
    }

    /// [`Bracket::next`] as if steps were unlimited.
    fn next_unbounded(&self) -> Option<(f64, Phase)> {
        match (self.pass, self.fail) {
            (None, None) => Some((self.start, Phase::Ramp)),
            // The start failed: there is nothing below it to bracket.
            (None, Some(_)) => None,
            (Some(pass), None) if pass >= self.max => None,
            (Some(pass), None) => Some((tidy(pass * 2.0).min(self.max), Phase::Ramp)),
            (Some(pass), Some(fail)) => {
                if fail - pass <= self.precision * pass {
                    return None;
                }
                let mid = tidy((pass + fail) / 2.0);
                // Whole rates cannot split a bracket one op/s wide.
                (mid > pass && mid < fail).then_some((mid, Phase::Bisect))
            }
        }
    }

    /// Takes in a step's verdict.
    pub fn record(&mut self, rate: f64, passed: bool) {
        self.steps += 1;
        if passed {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
    }

    /// Highest passing rate.
    pub fn pass(&self) -> Option<f64> {
        self.pass
    }

    /// Lowest failing rate.
    pub fn fail(&self) -> Option<f64> {
        self.fail
    }

    /// (fail − pass) / pass, when both exist.
    pub fn width(&self) -> Option<f64> {
        let (p, f) = (self.pass?, self.fail?);
        Some((f - p) / p)
    }

    /// How the search ended (call once [`Bracket::next`] is `None`).
    pub fn outcome(&self) -> SearchOutcome {
        match (self.pass, self.fail) {
            (None, _) => SearchOutcome::StartFailed,
            (Some(p), None) if p >= self.max => SearchOutcome::LowerBound,
            (Some(_), None) => SearchOutcome::StepsExhausted,
            (Some(_), Some(_)) if self.next_unbounded().is_some() => SearchOutcome::StepsExhausted,
            (Some(_), Some(_)) => SearchOutcome::Found,
        }
    }
}

/// How far to trust the answer, in words: what the bracket says, how many steps ran near the
/// boundary, how many runs each verdict rests on, and which steps the load generator limited.
pub fn confidence_note(b: &Bracket, steps: &[SearchStep], runs_per_step: u32) -> String {
    let mut parts = Vec::new();
    let rate = |r: f64| format!("{} ops/s", fmt_rate(r));
    match b.outcome() {
        SearchOutcome::Found => {
            let (p, f) = (b.pass.unwrap_or(0.0), b.fail.unwrap_or(0.0));
            parts.push(format!(
                "The SLO held at {} and failed at {}: the highest rate lies in between (a \
                 bracket {:.1}% wide, precision {}).",
                rate(p),
                rate(f),
                b.width().unwrap_or(0.0) * 100.0,
                Percent(b.precision)
            ));
            let near = steps
                .iter()
                .filter(|s| {
                    s.rate >= p / (1.0 + 2.0 * b.precision)
                        && s.rate <= f * (1.0 + 2.0 * b.precision)
                })
                .count();
            parts.push(format!(
                "{near} of {} steps ran within twice the precision of that bracket.",
                steps.len()
            ));
        }
        SearchOutcome::LowerBound => parts.push(format!(
            "Every step met the SLO, up to `max` ({}): the capacity is at least that, a lower \
             bound. Raise `search.max_rate.max` to find it.",
            rate(b.max)
        )),
        SearchOutcome::StartFailed => {
            let why = steps
                .first()
                .map(|s| s.reasons.join("; "))
                .unwrap_or_default();
            parts.push(format!(
                "Even the first step ({}) missed the SLO ({why}): there is no passing rate. \
                 Lower `search.max_rate.start`, or relax the SLO.",
                rate(b.start)
            ));
        }
        SearchOutcome::StepsExhausted => parts.push(format!(
            "The search ran out of steps ({}) before the bracket was within {}: the answer is \
             {}. Raise `search.max_rate.steps` or `precision`.",
            b.max_steps,
            Percent(b.precision),
            match (b.pass, b.fail) {
                (Some(p), Some(f)) => format!("between {} and {}", rate(p), rate(f)),
                (Some(p), None) => format!("at least {}", rate(p)),
                _ => "unknown".into(),
            }
        )),
        // Only `run` says a step could not run, with a note of its own.
        SearchOutcome::Error => {}
    }
    let passing = steps
        .iter()
        .filter(|s| s.passed && Some(s.rate) == b.pass)
        .find_map(|s| s.tightest.as_ref());
    if let Some(t) = passing {
        parts.push(format!(
            "At the highest passing rate the tightest bound, {}, was at {:.0}% of its limit.",
            t.bound,
            t.ratio * 100.0
        ));
    }
    if runs_per_step > 1 {
        parts.push(format!(
            "Each step was judged on the medians of {runs_per_step} runs."
        ));
    } else {
        parts.push(
            "Each step ran once: on a shared machine one noisy step can move the answer by a \
             bracket or more; `repeat: 3` judges each step on medians of three runs."
                .into(),
        );
    }
    // A passing step the load generator limited only passed with its latencies added; a
    // failing one may have failed because of them.
    let bound: Vec<&str> = steps
        .iter()
        .filter(|s| s.client_bound && !s.passed)
        .map(|s| s.point.as_str())
        .collect();
    if !bound.is_empty() {
        parts.push(format!(
            "Failing steps that were client-bound ({}): the load generator, not the target, \
             may have made them fail.",
            bound.join(", ")
        ));
    }
    parts.join(" ")
}

/// Runs the search in `session`, whose one planned point is the first step; every step is
/// recorded as a point and the `search` section of `summary.json` is rewritten after each.
pub async fn run(session: &mut Session, spec: &MaxRateSearch, slo: &Slo) -> Result<(), SweepError> {
    let Some(base) = session.points.first().cloned() else {
        return Err(SweepError::Usage("the search has no first step".into()));
    };
    // The plan's point is the first step; the search adds each step as it runs it.
    session.points.clear();
    if let Some(list) = session
        .manifest
        .get_mut("points")
        .and_then(|v| v.as_array_mut())
    {
        list.clear();
    }
    let mut bracket = Bracket::of(spec);
    let mut summary = SearchSummary {
        kind: "max_rate".into(),
        slo: slo.to_string(),
        latency_bounds_us: slo
            .latency_bounds()
            .into_iter()
            .map(|(name, d)| (name.to_string(), d.as_secs_f64() * 1e6))
            .collect(),
        error_budget: slo.error_budget(),
        start: spec.start_rate(),
        max: spec.max_rate(),
        precision: spec.precision_fraction(),
        max_steps: spec.max_steps(),
        runs_per_step: session.repeat,
        outcome: None,
        highest_passing_rate: None,
        lowest_failing_rate: None,
        bracket_width: None,
        confidence: String::new(),
        steps: Vec::new(),
        error: None,
    };
    while let Some((rate, phase)) = bracket.next() {
        let load = Load::open(rate).map_err(SweepError::Usage)?;
        let point = Point {
            index: session.points.len(),
            load,
            ..base.clone()
        };
        session.add_point(point.clone())?;
        let step = summary.steps.len() as u32 + 1;
        if !session.quiet {
            eprintln!(
                "[step {step}, at most {}] {} {} {}",
                spec.max_steps(),
                match phase {
                    Phase::Ramp => "ramp",
                    Phase::Bisect => "bisect",
                },
                point.id(),
                point.label()
            );
        }
        if let Err(e) = run_step(session, &point).await {
            // The folder says why the search stopped, and keeps what the earlier steps found.
            summary.outcome = Some(SearchOutcome::Error);
            summary.error = Some(e.to_string());
            summary.confidence = format!(
                "The search stopped at step {step} ({} ops/s), which could not run: {e}. The \
                 rates above come from the {} step(s) before it.",
                tidy(rate),
                summary.steps.len()
            );
            keep(session, summary)?;
            return Err(e);
        }
        let Some(p) = session.summary.points.last() else {
            return Err(SweepError::Point {
                point: point.id(),
                message: "the step recorded no summary".into(),
            });
        };
        let verdict = judge(slo, p);
        if !session.quiet {
            if verdict.passed {
                eprintln!("  SLO met");
            } else {
                eprintln!("  SLO missed: {}", verdict.reasons.join("; "));
            }
        }
        bracket.record(rate, verdict.passed);
        summary.steps.push(SearchStep {
            step,
            point: p.id.clone(),
            phase,
            rate,
            achieved_rate: p.achieved_rate,
            passed: verdict.passed,
            reasons: verdict.reasons,
            tightest: verdict.tightest,
            client_bound: p.client_bound,
        });
        summary.highest_passing_rate = bracket.pass();
        summary.lowest_failing_rate = bracket.fail();
        summary.bracket_width = bracket.width();
        // Rewritten after every step, so an interrupted search keeps what it found.
        keep(session, summary.clone())?;
    }
    summary.outcome = Some(bracket.outcome());
    summary.confidence = confidence_note(&bracket, &summary.steps, session.repeat);
    if !session.quiet {
        eprintln!("{}", summary.confidence);
    }
    keep(session, summary)
}

/// Puts the search into the summary and rewrites `summary.json` with it.
fn keep(session: &mut Session, summary: SearchSummary) -> Result<(), SweepError> {
    session.summary.search = Some(summary);
    crate::report::write_json(&session.dir.join("summary.json"), &session.summary)?;
    Ok(())
}

/// Every run of one step, then its summary.
async fn run_step(session: &mut Session, point: &Point) -> Result<(), SweepError> {
    for run in 1..=session.repeat {
        session.run_once(point, run).await?;
    }
    session.finish_point()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a target that meets the SLO exactly up to `capacity`.
    fn search(mut b: Bracket, capacity: f64) -> (Bracket, Vec<(f64, Phase)>) {
        let mut tried = Vec::new();
        while let Some((rate, phase)) = b.next() {
            tried.push((rate, phase));
            b.record(rate, rate <= capacity);
        }
        (b, tried)
    }

    #[test]
    fn the_ramp_doubles_until_a_failure_then_bisection_narrows_to_the_precision() {
        let (b, tried) = search(Bracket::new(1000.0, 1e6, 0.05, 20), 10_000.0);
        let rates: Vec<f64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(
            rates,
            [
                1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 12000.0, 10000.0, 11000.0, 10500.0
            ]
        );
        assert!(tried[..5].iter().all(|t| t.1 == Phase::Ramp));
        assert!(tried[5..].iter().all(|t| t.1 == Phase::Bisect));
        assert_eq!(b.outcome(), SearchOutcome::Found);
        assert_eq!((b.pass(), b.fail()), (Some(10_000.0), Some(10_500.0)));
        assert!(b.width().unwrap() <= 0.05);
    }

    #[test]
    fn the_answer_is_within_the_precision_of_any_capacity() {
        for capacity in [1234.0, 9_999.0, 10_001.0, 77_777.0, 500_000.0] {
            let (b, _) = search(Bracket::new(1000.0, 1e6, 0.05, 30), capacity);
            assert_eq!(b.outcome(), SearchOutcome::Found, "{capacity}");
            let pass = b.pass().unwrap();
            assert!(
                pass <= capacity && capacity < b.fail().unwrap(),
                "{capacity}"
            );
            assert!(capacity - pass <= 0.05 * pass, "{capacity}: {pass}");
        }
    }

    #[test]
    fn reaching_max_without_failing_is_a_lower_bound() {
        let (b, tried) = search(Bracket::new(1000.0, 5000.0, 0.05, 20), 1e9);
        let rates: Vec<f64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(rates, [1000.0, 2000.0, 4000.0, 5000.0]);
        assert_eq!(b.outcome(), SearchOutcome::LowerBound);
        let note = confidence_note(&b, &[], 1);
        assert!(note.contains("lower bound"), "{note}");
    }

    #[test]
    fn a_failing_start_ends_the_search_at_once() {
        let (b, tried) = search(Bracket::new(1000.0, 1e6, 0.05, 20), 10.0);
        assert_eq!(tried.len(), 1);
        assert_eq!(b.outcome(), SearchOutcome::StartFailed);
        assert!(confidence_note(&b, &[], 1).contains("Even the first step"));
    }

    #[test]
    fn the_step_budget_bounds_the_search_and_says_so() {
        let (b, tried) = search(Bracket::new(1000.0, 1e6, 0.001, 7), 10_000.0);
        assert_eq!(tried.len(), 7);
        assert_eq!(b.outcome(), SearchOutcome::StepsExhausted);
        let note = confidence_note(&b, &[], 3);
        assert!(note.contains("ran out of steps (7)"), "{note}");
        assert!(note.contains("medians of 3 runs"), "{note}");
    }

    #[test]
    fn whole_rates_stop_a_bracket_that_cannot_be_split() {
        let (b, tried) = search(Bracket::new(10.0, 1e6, 0.0001, 100), 12.5);
        assert_eq!((b.pass(), b.fail()), (Some(12.0), Some(13.0)));
        assert_eq!(b.outcome(), SearchOutcome::Found);
        assert!(tried.len() < 10);
    }
}
