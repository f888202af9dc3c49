//! `slo:` and `search:` — a service-level objective, and the search for the highest open-loop
//! rate that meets it.
//!
//! ```yaml
//! slo: { p99: 10ms, errors: 0.1% }
//! search: max_rate            # or: search: { max_rate: { start: 1000, max: 200000, precision: 5% } }
//! ```

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::rate::{fmt_rate, rate_in_range, rate_out_of_range};
use super::units::{DurationSpec, Percent};
use super::{Problem, Workload};

/// The error budget when `slo` does not set `errors`: a step whose requests fail fast must not
/// pass on its latencies alone.
pub const DEFAULT_ERROR_BUDGET: f64 = 0.001;
/// The search's first rate when `start` is not given, ops/s.
pub const DEFAULT_SEARCH_START: f64 = 1000.0;
/// The search's highest rate when `max` is not given, ops/s.
pub const DEFAULT_SEARCH_MAX: f64 = 1_000_000.0;
/// The bracket width (relative to the passing rate) at which the search stops by default.
pub const DEFAULT_SEARCH_PRECISION: f64 = 0.05;
/// The most steps a search runs by default.
pub const DEFAULT_SEARCH_STEPS: u32 = 20;
/// The most steps a search may be given.
pub const MAX_SEARCH_STEPS: u32 = 100;

/// `slo:` — what every operation of a step must meet. Latencies are response times (open loop:
/// from the intended start, so corrected for coordinated omission).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Most median response time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<DurationSpec>,
    /// Most 99th-percentile response time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<DurationSpec>,
    /// Most 99.9th-percentile response time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999: Option<DurationSpec>,
    /// Most failed requests, as a share of all requests (default 0.1%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Percent>,
}

impl Slo {
    /// The latency bounds that are set: (`p50` | `p99` | `p99.9`, bound).
    pub fn latency_bounds(&self) -> Vec<(&'static str, Duration)> {
        [("p50", self.p50), ("p99", self.p99), ("p99.9", self.p999)]
            .into_iter()
            .filter_map(|(name, d)| d.map(|d| (name, d.0)))
            .collect()
    }

    /// The most failed requests, as a fraction of all requests.
    pub fn error_budget(&self) -> f64 {
        self.errors.map_or(DEFAULT_ERROR_BUDGET, |p| p.0)
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, d) in self.latency_bounds() {
            write!(f, "{name} ≤ {}, ", DurationSpec(d))?;
        }
        write!(f, "errors ≤ {}", Percent(self.error_budget()))
    }
}

/// `search:` — what to search for. One kind for now: the highest rate that meets the SLO.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchSpec {
    /// The highest open-loop rate whose step meets `slo`.
    MaxRate(MaxRateSearch),
}

impl SearchSpec {
    /// The max-rate search's settings.
    pub fn max_rate(&self) -> &MaxRateSearch {
        match self {
            SearchSpec::MaxRate(m) => m,
        }
    }
}

/// `search: { max_rate: { … } }` — a bracketing ramp from `start` (doubling until a step misses
/// the SLO or `max` is reached), then bisection until the bracket is within `precision`, in at
/// most `steps` steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxRateSearch {
    /// First rate, ops/s (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    /// Highest rate tried, ops/s (default 1,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Stop when the failing rate is within this much above the passing one (default 5%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Percent>,
    /// Most steps (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
}

impl MaxRateSearch {
    /// The first rate, ops/s.
    pub fn start_rate(&self) -> f64 {
        self.start.unwrap_or(DEFAULT_SEARCH_START)
    }

    /// The highest rate tried, ops/s.
    pub fn max_rate(&self) -> f64 {
        self.max.unwrap_or(DEFAULT_SEARCH_MAX)
    }

    /// The bracket width at which the search stops, as a fraction of the passing rate.
    pub fn precision_fraction(&self) -> f64 {
        self.precision.map_or(DEFAULT_SEARCH_PRECISION, |p| p.0)
    }

    /// The most steps.
    pub fn max_steps(&self) -> u32 {
        self.steps.unwrap_or(DEFAULT_SEARCH_STEPS)
    }

    fn check(&self) -> Result<(), String> {
        let (start, max) = (self.start_rate(), self.max_rate());
        for (field, rate) in [("start", start), ("max", max)] {
            if !rate_in_range(rate) {
                return Err(format!(
                    "`search.max_rate.{field}`: {}",
                    rate_out_of_range(rate)
                ));
            }
        }
        if start > max {
            return Err(format!(
                "`search.max_rate.start` {} is above `max` {}; the ramp starts below the most \
                 it may try",
                fmt_rate(start),
                fmt_rate(max)
            ));
        }
        let p = self.precision_fraction();
        if !(p > 0.0 && p <= 1.0) {
            return Err(format!(
                "`search.max_rate.precision` {} must be above 0% and at most 100%",
                Percent(p)
            ));
        }
        if !(2..=MAX_SEARCH_STEPS).contains(&self.max_steps()) {
            return Err(format!(
                "`search.max_rate.steps` must be 2..={MAX_SEARCH_STEPS}: a ramp step and a \
                 bisection step at least"
            ));
        }
        Ok(())
    }
}

struct SearchVisitor;

const SEARCH_KINDS: &[&str] = &["max_rate"];

impl<'de> Visitor<'de> for SearchVisitor {
    type Value = SearchSpec;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`max_rate` or `{ max_rate: { start: 1000, max: 200000, precision: 5% } }`")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<SearchSpec, E> {
        match v {
            "max_rate" => Ok(SearchSpec::MaxRate(MaxRateSearch::default())),
            other => Err(de::Error::unknown_variant(other, SEARCH_KINDS)),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SearchSpec, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "`search` is empty; write `search: max_rate`",
            ));
        };
        if key != "max_rate" {
            return Err(de::Error::unknown_variant(&key, SEARCH_KINDS));
        }
        let spec = map
            .next_value::<Option<MaxRateSearch>>()?
            .unwrap_or_default();
        if map.next_key::<String>()?.is_some() {
            return Err(de::Error::custom("`search` takes one kind: `max_rate`"));
        }
        Ok(SearchSpec::MaxRate(spec))
    }
}

impl<'de> Deserialize<'de> for SearchSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SearchVisitor)
    }
}

impl Workload {
    /// A search needs an objective and owns the load: it is open loop, chooses every rate,
    /// and finds one rate for one configuration.
    pub(super) fn validate_search(&self) -> Result<(), Problem> {
        let (search, slo) = match (&self.search, &self.slo) {
            (None, None) => return Ok(()),
            (None, Some(slo)) => {
                return Err(Problem::at(
                    slo,
                    "`slo` is the objective of a search: add `search: max_rate` (it finds the \
                     highest rate that meets the SLO), or remove `slo`",
                ));
            }
            (Some(search), None) => {
                return Err(Problem::at(
                    search,
                    "`search: max_rate` needs an objective: add e.g. `slo: { p99: 10ms, errors: \
                     0.1% }`",
                ));
            }
            (Some(search), Some(slo)) => (search, slo),
        };
        let s = &slo.value;
        if s.p50.is_none() && s.p99.is_none() && s.p999.is_none() && s.errors.is_none() {
            return Err(Problem::at(
                slo,
                "`slo` is empty: set at least one of `p50`, `p99`, `p999` (e.g. `p99: 10ms`) \
                 or `errors` (e.g. `errors: 0.1%`)",
            ));
        }
        for (name, d) in s.latency_bounds() {
            if d.is_zero() {
                return Err(Problem::at(
                    slo,
                    format!("`slo.{name}` must be longer than 0s"),
                ));
            }
        }
        if s.error_budget() > 1.0 {
            return Err(Problem::at(slo, "`slo.errors` must be at most 100%"));
        }
        search
            .value
            .max_rate()
            .check()
            .map_err(|m| Problem::at(search, m))?;
        if let Some(r) = &self.rate {
            return Err(Problem::at(
                r,
                "the search chooses the rate of every step: remove `rate` (set \
                 `search: { max_rate: { start: N } }` for the first step)",
            ));
        }
        if let Some(c) = &self.concurrency {
            return Err(Problem::at(
                c,
                "the search drives an open loop at rates it chooses: remove `concurrency`",
            ));
        }
        let sw = &self.sweep;
        for (field, first) in [
            ("rate", sw.rate.first().map(|x| x.referenced)),
            ("concurrency", sw.concurrency.first().map(|x| x.referenced)),
            ("value_size", sw.value_size.first().map(|x| x.referenced)),
            ("replication", sw.replication.first().map(|x| x.referenced)),
            ("quorum", sw.quorum.first().map(|x| x.referenced)),
            ("nodes", sw.nodes.first().map(|x| x.referenced)),
            ("keys", sw.keys.first().map(|x| x.referenced)),
        ] {
            if let Some(at) = first {
                return Err(Problem {
                    at: Some(at),
                    message: format!(
                        "a search finds the highest rate of one configuration: remove \
                         `sweep.{field}` (run one file per configuration)"
                    ),
                });
            }
        }
        if let Some(a) = &self.autoscale {
            return Err(Problem::at(
                a,
                "a search measures one cluster's capacity; `autoscale` would change the \
                 cluster under it: remove one of them",
            ));
        }
        Ok(())
    }
}
