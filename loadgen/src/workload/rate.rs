//! `rate:` as a schedule: steps and linear ramps of the open-loop arrival rate, and the exact
//! integral math the pacer follows.
//!
//! YAML: `rate: 1000` (constant), or a list of entries `{at: DURATION, rate: OPS}` with optional
//! `ramp: true`. `at` counts from the end of warm-up. A plain entry is a step: from `at` on, the
//! rate is `rate`. A `ramp: true` entry moves the rate linearly from the previous entry's rate
//! (at its `at`) to this entry's rate at this entry's `at`. After the last entry its rate holds;
//! warm-up runs at the first entry's rate, and the first entry is at `0s`.
//!
//! [`RateSchedule`] is the validated schedule (in time since the end of warm-up, for charts and
//! results); [`Pace`] anchors it at the start of warm-up and answers, in closed form, how many
//! operations are intended by a time ([`Pace::ops_until`]) and when an operation is intended
//! ([`Pace::time_of`]).

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::DurationSpec;

/// The highest rate a point may ask for, ops/s.
pub const MAX_RATE: f64 = 1e9;

/// [`Pace::time_of`] answers at most this many seconds (about 317 years), so an absurdly slow
/// schedule still gives a time that fits an `Instant`.
pub const MAX_TIME_S: f64 = 1e10;

/// Whether `rate` is a rate a point may ask for: finite, above 0, at most [`MAX_RATE`].
pub fn rate_in_range(rate: f64) -> bool {
    rate.is_finite() && rate > 0.0 && rate <= MAX_RATE
}

/// The message for a rate out of range (the same for `rate`, `sweep.rate` and schedule entries).
pub fn rate_out_of_range(rate: f64) -> String {
    format!("rate {rate} must be between 0 and 1e9 ops/s")
}

/// One entry of a `rate:` list, as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateEntry {
    /// From when, counted from the end of warm-up.
    pub at: Spanned<DurationSpec>,
    /// The rate from `at` on (or reached at `at`, with `ramp`), ops/s.
    pub rate: Spanned<f64>,
    /// Move linearly from the previous entry's rate to this one instead of stepping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Spanned<bool>>,
}

impl RateEntry {
    /// Whether the entry ramps (`ramp: true`).
    pub fn ramps(&self) -> bool {
        self.ramp.as_ref().is_some_and(|r| r.value)
    }
}

/// `rate:` — a constant rate or a schedule.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RateSpec {
    /// Requests arrive at this rate, ops/s, throughout.
    Constant(f64),
    /// Steps and ramps, in time order.
    Schedule(Vec<RateEntry>),
}

struct RateSpecVisitor;

impl<'de> Visitor<'de> for RateSpecVisitor {
    type Value = RateSpec;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a rate in ops/s (1000) or a schedule ([{at: 0s, rate: 500}, {at: 60s, rate: 6000, \
             ramp: true}])",
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RateSpec, E> {
        Ok(RateSpec::Constant(v as f64))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RateSpec, E> {
        Ok(RateSpec::Constant(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RateSpec, E> {
        Ok(RateSpec::Constant(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RateSpec, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = seq.next_element::<RateEntry>()? {
            entries.push(entry);
        }
        Ok(RateSpec::Schedule(entries))
    }
}

impl<'de> Deserialize<'de> for RateSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RateSpecVisitor)
    }
}

/// One step of a validated schedule: from `at_s` seconds after the end of warm-up the rate is
/// `rate`; with `ramp`, the rate moves linearly from the previous step's rate to this one
/// between their times. `summary.json` records a schedule as a list of these
/// (`params.rate_schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateStep {
    /// Seconds after the end of warm-up.
    pub at_s: f64,
    /// Ops/s from `at_s` on (or reached at `at_s`, with `ramp`).
    pub rate: f64,
    /// Reached by a linear ramp from the previous step.
    #[serde(default)]
    pub ramp: bool,
}

/// The part of an entry a [`ScheduleError`] is about, to point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepField {
    /// The entry's `at`.
    At,
    /// The entry's `rate`.
    Rate,
    /// The entry's `ramp`.
    Ramp,
}

/// Why a list of steps is not a schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleError {
    /// No steps at all.
    Empty,
    /// Step `index` (0-based) is wrong in `field`.
    Step {
        /// 0-based position of the step.
        index: usize,
        /// Which of its fields.
        field: StepField,
        /// What is wrong and what to do.
        message: String,
    },
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::Empty => f.write_str(
                "the `rate` schedule is empty: give a number (`rate: 1000`) or at least one \
                 entry (`- {at: 0s, rate: 1000}`)",
            ),
            ScheduleError::Step { message, .. } => f.write_str(message),
        }
    }
}

/// A validated open-loop arrival-rate schedule, in seconds after the end of warm-up. A constant
/// rate is a one-step schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSchedule {
    steps: Vec<RateStep>,
}

fn secs_label(s: f64) -> String {
    DurationSpec(Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)).to_string()
}

fn step_error(index: usize, field: StepField, message: String) -> ScheduleError {
    ScheduleError::Step {
        index,
        field,
        message,
    }
}

/// A rate for labels: `5000` rather than `5000.0`, but `12.5` stays.
pub fn fmt_rate(rate: f64) -> String {
    if rate.fract() == 0.0 && rate.abs() < 1e15 {
        format!("{}", rate as i64)
    } else {
        format!("{rate}")
    }
}

impl RateSchedule {
    /// A constant rate (checked like any step).
    pub fn constant(rate: f64) -> Result<RateSchedule, ScheduleError> {
        RateSchedule::new(vec![RateStep {
            at_s: 0.0,
            rate,
            ramp: false,
        }])
    }

    /// Checks `steps`: at least one; the first at 0 s and not a ramp; times strictly increasing
    /// and finite; every rate in range ([`rate_in_range`]).
    pub fn new(steps: Vec<RateStep>) -> Result<RateSchedule, ScheduleError> {
        let Some(first) = steps.first() else {
            return Err(ScheduleError::Empty);
        };
        if first.at_s != 0.0 {
            return Err(step_error(
                0,
                StepField::At,
                format!(
                    "the first entry of a `rate` schedule must be `at: 0s` (the end of warm-up; \
                     warm-up runs at its rate), not `at: {}`",
                    secs_label(first.at_s)
                ),
            ));
        }
        if first.ramp {
            return Err(step_error(
                0,
                StepField::Ramp,
                "the first entry of a `rate` schedule cannot ramp: there is no rate before it \
                 to ramp from"
                    .into(),
            ));
        }
        for (i, s) in steps.iter().enumerate() {
            if !rate_in_range(s.rate) {
                return Err(step_error(i, StepField::Rate, rate_out_of_range(s.rate)));
            }
            if !(s.at_s.is_finite() && s.at_s >= 0.0) {
                return Err(step_error(
                    i,
                    StepField::At,
                    format!("`at` {} must be a time of 0s or later", s.at_s),
                ));
            }
        }
        for (i, pair) in steps.windows(2).enumerate() {
            if let [a, b] = pair
                && b.at_s <= a.at_s
            {
                return Err(step_error(
                    i + 1,
                    StepField::At,
                    format!(
                        "`at: {}` must be later than the entry before it (`at: {}`): a \
                         schedule's entries go in time order",
                        secs_label(b.at_s),
                        secs_label(a.at_s)
                    ),
                ));
            }
        }
        Ok(RateSchedule { steps })
    }

    /// The steps, in time order.
    pub fn steps(&self) -> &[RateStep] {
        &self.steps
    }

    /// The rate, when it never changes.
    pub fn constant_rate(&self) -> Option<f64> {
        let first = self.steps.first()?.rate;
        self.steps.iter().all(|s| s.rate == first).then_some(first)
    }

    /// The lowest rate the schedule reaches, ops/s.
    pub fn min_rate(&self) -> f64 {
        self.steps
            .iter()
            .map(|s| s.rate)
            .fold(f64::INFINITY, f64::min)
    }

    /// The highest rate the schedule reaches, ops/s.
    pub fn max_rate(&self) -> f64 {
        self.steps.iter().map(|s| s.rate).fold(0.0, f64::max)
    }

    /// A short label: `5000` for a constant rate, `500..6000` (lowest..highest) otherwise.
    pub fn label(&self) -> String {
        match self.constant_rate() {
            Some(r) => fmt_rate(r),
            None => format!(
                "{}..{}",
                fmt_rate(self.min_rate()),
                fmt_rate(self.max_rate())
            ),
        }
    }

    /// The intended rate `t` seconds after the end of warm-up, ops/s (before 0, during
    /// warm-up: the first rate). For charts and reports; the runner uses [`Pace`].
    pub fn rate_at(&self, t: f64) -> f64 {
        let i = self
            .steps
            .partition_point(|s| s.at_s <= t)
            .saturating_sub(1);
        let (Some(here), next) = (self.steps.get(i), self.steps.get(i + 1)) else {
            return 0.0;
        };
        match next {
            Some(n) if n.ramp && t > here.at_s => {
                let frac = ((t - here.at_s) / (n.at_s - here.at_s)).clamp(0.0, 1.0);
                here.rate + (n.rate - here.rate) * frac
            }
            _ => here.rate,
        }
    }

    /// The mean intended rate between `a` and `b` seconds after the end of warm-up, ops/s
    /// (the rate at `a` when the span is empty).
    pub fn mean_rate(&self, a: f64, b: f64) -> f64 {
        let spans = a.is_finite() && b.is_finite() && b > a;
        if !spans {
            return self.rate_at(a);
        }
        let pace = self.pace(Duration::ZERO);
        let first = self.steps.first().map_or(0.0, |s| s.rate);
        // Before the end of warm-up the first rate holds (a negative count of operations).
        let ops = |t: f64| {
            if t > 0.0 {
                pace.ops_until(t)
            } else {
                first * t
            }
        };
        (ops(b) - ops(a)) / (b - a)
    }

    /// The schedule anchored at the start of a warm-up of `warmup`: what the runner follows.
    pub fn pace(&self, warmup: Duration) -> Pace {
        Pace::new(&self.steps, warmup.as_secs_f64())
    }
}

impl fmt::Display for RateSchedule {
    /// `500 at 0s, ramp to 6000 by 60s, 300 at 180s`, or `5000` for a constant rate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = self.constant_rate() {
            return f.write_str(&fmt_rate(r));
        }
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if s.ramp {
                write!(f, "ramp to {} by {}", fmt_rate(s.rate), secs_label(s.at_s))?;
            } else {
                write!(f, "{} at {}", fmt_rate(s.rate), secs_label(s.at_s))?;
            }
        }
        Ok(())
    }
}

/// A piece of a [`Pace`]: from `t0` to `t1` the rate moves linearly from `r0` to `r1`
/// (constant when they are equal); `n0` operations were intended before `t0`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    t0: f64,
    /// Infinite for the last segment; the next segment's `t0` otherwise.
    t1: f64,
    /// `t1 - t0`.
    len: f64,
    r0: f64,
    r1: f64,
    n0: f64,
}

impl Segment {
    fn ramps(&self) -> bool {
        self.r1 != self.r0
    }

    /// Operations intended in the first `tau` seconds (0 <= tau <= len):
    /// r0·τ + (r1 − r0)·τ² / (2·len).
    fn ops_in(&self, tau: f64) -> f64 {
        if self.ramps() {
            self.r0 * tau + (self.r1 - self.r0) * tau * tau / (2.0 * self.len)
        } else {
            self.r0 * tau
        }
    }

    /// Seconds into the segment at which `m` operations have been intended: the inverse of
    /// [`Segment::ops_in`], the positive root of (r1 − r0)/(2·len)·τ² + r0·τ − m = 0, written
    /// 2m / (r0 + √(r0² + 4am)) so it neither cancels nor divides by a = 0.
    fn time_in(&self, m: f64) -> f64 {
        let tau = if self.ramps() {
            let a = (self.r1 - self.r0) / (2.0 * self.len);
            let disc = (self.r0 * self.r0 + 4.0 * a * m).max(0.0);
            2.0 * m / (self.r0 + disc.sqrt())
        } else {
            m / self.r0
        };
        if tau.is_nan() {
            return 0.0;
        }
        tau.clamp(0.0, self.len)
    }

    fn rate_in(&self, tau: f64) -> f64 {
        if self.ramps() {
            self.r0 + (self.r1 - self.r0) * (tau / self.len).clamp(0.0, 1.0)
        } else {
            self.r0
        }
    }
}

/// A [`RateSchedule`] anchored at the start of warm-up: warm-up at the first rate, then the
/// steps. Times are seconds since the start of warm-up; tick `i` (0-based) is the `i`-th
/// intended operation. Lookups remember the last segment (ticks come in order), so the runner's
/// calls are a few comparisons and one division or square root, and allocate nothing.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Never empty; the last is infinite and constant.
    segments: Vec<Segment>,
    hint: Cell<usize>,
}

impl Pace {
    fn new(steps: &[RateStep], warmup_s: f64) -> Pace {
        let mut pace = Pace {
            segments: Vec::with_capacity(steps.len() + 1),
            hint: Cell::new(0),
        };
        let first = steps.first().map_or(1.0, |s| s.rate);
        let w = if warmup_s.is_finite() {
            warmup_s.max(0.0)
        } else {
            0.0
        };
        pace.push(0.0, w, first, first);
        for (i, s) in steps.iter().enumerate() {
            let t0 = w + s.at_s;
            match steps.get(i + 1) {
                Some(n) if n.ramp => pace.push(t0, w + n.at_s, s.rate, n.rate),
                Some(n) => pace.push(t0, w + n.at_s, s.rate, s.rate),
                None => pace.push(t0, f64::INFINITY, s.rate, s.rate),
            }
        }
        if pace.segments.is_empty() {
            pace.push(0.0, f64::INFINITY, first, first);
        }
        pace
    }

    /// Appends the segment `t0..t1`, merging it into the last when both are the same constant
    /// rate (so a constant schedule is one segment and tick `i` is at exactly `i / rate`).
    fn push(&mut self, t0: f64, t1: f64, r0: f64, r1: f64) {
        let positive = t1 > t0 && r0 > 0.0 && r1 > 0.0;
        if !positive {
            return;
        }
        let n0 = match self.segments.last_mut() {
            Some(last) if !last.ramps() && r0 == r1 && last.r0 == r0 => {
                last.t1 = t1;
                last.len = t1 - last.t0;
                return;
            }
            Some(last) => last.n0 + last.ops_in(last.len),
            None => 0.0,
        };
        self.segments.push(Segment {
            t0,
            t1,
            len: t1 - t0,
            r0,
            r1,
            n0,
        });
    }

    /// The index of the segment whose `key` (start time or start count) is the last at or
    /// below `x`: the remembered one or the next when it fits, else a binary search.
    #[inline]
    fn locate(&self, key: fn(&Segment) -> f64, x: f64) -> Option<&Segment> {
        let fits = |i: usize| {
            self.segments.get(i).is_some_and(|s| key(s) <= x)
                && self.segments.get(i + 1).is_none_or(|s| x < key(s))
        };
        let h = self.hint.get();
        let i = if fits(h) {
            h
        } else if fits(h + 1) {
            h + 1
        } else {
            self.segments
                .partition_point(|s| key(s) <= x)
                .saturating_sub(1)
        };
        self.hint.set(i);
        self.segments.get(i)
    }

    /// Operations intended from the start of warm-up until `t` seconds after it (not rounded;
    /// 0 for `t <= 0`).
    pub fn ops_until(&self, t: f64) -> f64 {
        // Also 0 for NaN.
        if t.is_nan() || t <= 0.0 {
            return 0.0;
        }
        let Some(s) = self.locate(|s| s.t0, t) else {
            return 0.0;
        };
        s.n0 + s.ops_in((t - s.t0).min(s.len))
    }

    /// Seconds after the start of warm-up at which tick `tick` is intended: the inverse of
    /// [`Pace::ops_until`]. Non-decreasing in `tick`, finite, and at most [`MAX_TIME_S`].
    #[inline]
    pub fn time_of(&self, tick: u64) -> f64 {
        let n = tick as f64;
        let Some(s) = self.locate(|s| s.n0, n) else {
            return 0.0;
        };
        (s.t0 + s.time_in(n - s.n0)).min(s.t1).min(MAX_TIME_S)
    }

    /// The intended rate `t` seconds after the start of warm-up, ops/s.
    #[inline]
    pub fn rate_at(&self, t: f64) -> f64 {
        let x = if t.is_nan() { 0.0 } else { t };
        match self.locate(|s| s.t0, x) {
            Some(s) => s.rate_in(x - s.t0),
            None => 0.0,
        }
    }

    /// How many ticks are intended strictly before `t` seconds after the start of warm-up:
    /// the first tick at or after `t`. Exact against [`Pace::time_of`] (the rounding of
    /// [`Pace::ops_until`] is corrected by checking the neighbours).
    pub fn ticks_before(&self, t: f64) -> u64 {
        let guess = self.ops_until(t).ceil();
        // `as` saturates: a huge or NaN count becomes u64::MAX or 0.
        let mut k = guess as u64;
        for _ in 0..4 {
            if k > 0 && self.time_of(k - 1) >= t {
                k -= 1;
            } else if k < u64::MAX && self.time_of(k) < t {
                k += 1;
            } else {
                break;
            }
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at_s: f64, rate: f64, ramp: bool) -> RateStep {
        RateStep { at_s, rate, ramp }
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    /// 500 ops/s, ramp to 6000 over 0..60 s, step down to 300 at 180 s.
    fn example() -> RateSchedule {
        RateSchedule::new(vec![
            step(0.0, 500.0, false),
            step(60.0, 6000.0, true),
            step(180.0, 300.0, false),
        ])
        .unwrap()
    }

    #[test]
    fn a_constant_schedule_gives_tick_over_rate_exactly() {
        for rate in [1.0, 12.5, 1000.0, 20_000.0, 333.3] {
            for warmup in [0.0, 0.5, 3.7] {
                let pace = RateSchedule::constant(rate)
                    .unwrap()
                    .pace(Duration::from_secs_f64(warmup));
                for tick in [0u64, 1, 7, 999, 123_456, 10_000_000] {
                    assert_eq!(pace.time_of(tick), tick as f64 / rate, "{rate} {tick}");
                }
                assert_eq!(pace.ops_until(2.0), 2.0 * rate);
                assert_eq!(pace.rate_at(1e6), rate);
            }
        }
    }

    #[test]
    fn a_step_changes_the_rate_at_its_time() {
        // 100 ops/s for 2 s of warm-up and 1 s after it, then 1000 ops/s.
        let s = RateSchedule::new(vec![step(0.0, 100.0, false), step(1.0, 1000.0, false)]).unwrap();
        let pace = s.pace(Duration::from_secs(2));
        assert_eq!(pace.ops_until(2.0), 200.0);
        assert_eq!(pace.ops_until(3.0), 300.0);
        assert!(close(pace.ops_until(4.0), 1300.0, 1e-12));
        assert_eq!(pace.time_of(300), 3.0);
        assert!(close(pace.time_of(1300), 4.0, 1e-12));
        assert!(close(pace.time_of(301), 3.001, 1e-12));
        assert_eq!(pace.rate_at(2.5), 100.0);
        assert_eq!(pace.rate_at(3.5), 1000.0);
        assert_eq!(s.rate_at(-1.0), 100.0);
        assert_eq!(s.rate_at(1.0), 1000.0);
        assert_eq!(pace.ticks_before(2.0), 200);
        assert_eq!(pace.ticks_before(4.0), 1300);
    }

    #[test]
    fn a_ramp_integrates_to_its_trapezoid_and_its_midpoint_is_the_mean_rate() {
        let s = example();
        let pace = s.pace(Duration::ZERO);
        // Midpoint: half-way rate; ops so far r0·τ + (r1−r0)τ²/(2D).
        assert_eq!(pace.rate_at(30.0), 3250.0);
        assert_eq!(s.rate_at(30.0), 3250.0);
        assert!(close(
            pace.ops_until(30.0),
            500.0 * 30.0 + 5500.0 * 900.0 / 120.0,
            1e-12
        ));
        // The whole ramp: (500 + 6000) / 2 × 60.
        assert!(close(pace.ops_until(60.0), 195_000.0, 1e-12));
        assert!(close(pace.time_of(195_000), 60.0, 1e-12));
        // Then 6000 ops/s for 120 s, then 300 ops/s.
        assert!(close(pace.ops_until(180.0), 195_000.0 + 720_000.0, 1e-12));
        assert!(close(pace.ops_until(190.0), 915_000.0 + 3000.0, 1e-12));
        assert_eq!(pace.rate_at(200.0), 300.0);
        assert!(close(s.mean_rate(0.0, 60.0), 3250.0, 1e-12));
        assert_eq!(s.label(), "300..6000");
        assert_eq!(s.to_string(), "500 at 0s, ramp to 6000 by 60s, 300 at 180s");
    }

    #[test]
    fn a_ramp_down_is_solved_too() {
        let s = RateSchedule::new(vec![step(0.0, 1000.0, false), step(10.0, 10.0, true)]).unwrap();
        let pace = s.pace(Duration::from_secs(1));
        let total = 1000.0 + (1000.0 + 10.0) / 2.0 * 10.0;
        assert!(close(pace.ops_until(11.0), total, 1e-12));
        let last = total as u64;
        assert!(pace.time_of(last) <= 11.0 + 1e-9);
        assert!(close(pace.time_of(last + 10), 12.0, 1e-6));
    }

    #[test]
    fn time_of_inverts_ops_until() {
        let s = example();
        for warmup in [0.0, 2.5] {
            let pace = s.pace(Duration::from_secs_f64(warmup));
            for i in 0..4000 {
                let t = i as f64 * 0.0613;
                let n = pace.ops_until(t);
                let back = pace.time_of(n.round() as u64);
                // Rounding n moves the time by at most half a tick at the slowest rate.
                assert!(
                    (back - t).abs() <= 0.5 / 300.0 + 1e-9,
                    "t={t} n={n} back={back}"
                );
                // And exactly, through the fractional inverse.
                let seg = pace.locate(|s| s.n0, n).unwrap();
                let exact = seg.t0 + seg.time_in(n - seg.n0);
                assert!(close(exact, t, 1e-9), "t={t} exact={exact}");
            }
        }
    }

    #[test]
    fn time_of_is_monotonic_in_the_tick_in_and_out_of_order() {
        let s = example();
        let pace = s.pace(Duration::from_secs(1));
        let mut last = -1.0;
        for tick in (0..1_000_000u64).step_by(7) {
            let t = pace.time_of(tick);
            assert!(t.is_finite() && t >= last, "tick {tick}: {t} < {last}");
            last = t;
        }
        // Out of order (the hint is only a hint).
        let a = pace.time_of(999_000);
        let b = pace.time_of(10);
        let c = pace.time_of(500_000);
        assert!(b < c && c < a);
        assert_eq!(pace.time_of(10), b);
    }

    #[test]
    fn edge_cases_neither_panic_nor_give_nan() {
        let pace = example().pace(Duration::from_secs(1));
        for t in [f64::NAN, f64::NEG_INFINITY, -1.0, 0.0, f64::INFINITY, 1e300] {
            assert!(!pace.ops_until(t).is_nan(), "{t}");
            assert!(!pace.rate_at(t).is_nan(), "{t}");
            let _ = pace.ticks_before(t);
        }
        let t = pace.time_of(u64::MAX);
        assert!(t.is_finite() && t <= MAX_TIME_S);
        let slow = RateSchedule::constant(1e-300).unwrap().pace(Duration::ZERO);
        assert_eq!(slow.time_of(5), MAX_TIME_S);
        // A ramp between nearly equal rates behaves like a constant one.
        let flat = RateSchedule::new(vec![
            step(0.0, 1000.0, false),
            step(1.0, 1000.0000001, true),
        ])
        .unwrap()
        .pace(Duration::ZERO);
        assert!(close(flat.time_of(500), 0.5, 1e-9));
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert_eq!(RateSchedule::new(Vec::new()), Err(ScheduleError::Empty));
        let field = |steps: Vec<RateStep>| match RateSchedule::new(steps) {
            Err(ScheduleError::Step { index, field, .. }) => (index, field),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(vec![step(1.0, 5.0, false)]), (0, StepField::At));
        assert_eq!(field(vec![step(0.0, 5.0, true)]), (0, StepField::Ramp));
        assert_eq!(
            field(vec![step(0.0, 5.0, false), step(0.0, 6.0, false)]),
            (1, StepField::At)
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 2e9] {
            assert_eq!(
                field(vec![step(0.0, 5.0, false), step(1.0, bad, true)]),
                (1, StepField::Rate)
            );
        }
    }
}
