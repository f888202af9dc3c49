//! The autoscaling policy: when sustained load calls for one node more, or sustained quiet
//! allows one node fewer. Pure: it sees a series of [`Signals`] with their times and answers
//! with a [`Verdict`]; taking the action is the controller's business.
//!
//! * **Out** when, for `sustain_out_s` without a break, some signal's per-node mean stays above
//!   its `out_above`, the cluster is below `max_nodes`, and the last action is at least
//!   `cooldown_s` old.
//! * **In** when, for `sustain_in_s` without a break, every signal *as it would be on one node
//!   fewer* (per-node mean × n / (n − 1)) stays below its `in_below`, p99 service time stays
//!   under `max_p99_service_ms`, the cluster is above `min_nodes`, and the cooldown has passed.
//! * Hysteresis: `in_below` may be at most [`MAX_IN_FRACTION`] of `out_above`. A scale-in then
//!   leaves every signal at most 80% of its scale-out threshold, and a scale-out can only be
//!   undone after the load itself has fallen by more than a fifth, so a load that hovers
//!   around a threshold cannot make the cluster flap.
//! * Each run of samples starts after the last action: what was measured while a node was
//!   joining or leaving (streaming, a cold cache) never counts towards the next decision.

use serde::{Deserialize, Serialize};

/// The largest `in_below / out_above` a bound may have (the hysteresis).
pub const MAX_IN_FRACTION: f64 = 0.8;

/// The cluster's load at one sample: per-node means over the ring's members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Ring members sampled.
    pub nodes: u32,
    /// Client requests coordinated per second, mean per node.
    pub ops_per_node: f64,
    /// The fewest client requests any node coordinated per second (a node that joined has
    /// taken its share when this is near the mean); reported, not acted on.
    pub ops_min_node: f64,
    /// The most any node coordinated per second; reported, not acted on (a hot key stays on
    /// its N replicas however many nodes there are).
    pub ops_max_node: f64,
    /// Replica requests served per second (merges and fetches), mean per node; reported, not
    /// acted on (it follows `ops_per_node` × N).
    pub served_per_node: f64,
    /// Share of its cores a node's process keeps busy (0–1), mean per node.
    pub cpu_per_node: f64,
    /// Replica operations queued or running in a node's executor, mean per node.
    pub queue_per_node: f64,
    /// The highest p99 service time of any node, ms.
    pub p99_service_ms: f64,
}

/// A threshold pair for one signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    /// Scale out when the per-node mean stays above this.
    pub out_above: f64,
    /// Scale in when the per-node mean on one node fewer would stay below this.
    pub in_below: f64,
}

/// The policy; every field has a default (see `docs/autoscaling.md` for the reasons).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Seconds between samples of every node.
    pub interval_s: f64,
    /// Seconds of unbroken overload before scaling out.
    pub sustain_out_s: f64,
    /// Seconds of unbroken quiet before scaling in.
    pub sustain_in_s: f64,
    /// Seconds after an action completes before the next may be taken.
    pub cooldown_s: f64,
    /// Never fewer nodes than this (at least the replication factor).
    pub min_nodes: u32,
    /// Never more nodes than this.
    pub max_nodes: u32,
    /// Client requests coordinated per second per node.
    pub ops_per_node: Option<Bound>,
    /// Share of a node's cores in use (0–1).
    pub cpu_per_node: Option<Bound>,
    /// Executor queue depth per node.
    pub queue_per_node: Option<Bound>,
    /// No scale-in while any node's p99 service time is above this, ms. Not a scale-out
    /// trigger: when nodes share cores, one more node cannot lower it.
    pub max_p99_service_ms: Option<f64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            interval_s: 1.0,
            sustain_out_s: 5.0,
            sustain_in_s: 60.0,
            cooldown_s: 30.0,
            min_nodes: 3,
            max_nodes: 6,
            ops_per_node: Some(Bound {
                out_above: 2000.0,
                in_below: 1200.0,
            }),
            cpu_per_node: Some(Bound {
                out_above: 0.7,
                in_below: 0.35,
            }),
            queue_per_node: Some(Bound {
                out_above: 256.0,
                in_below: 64.0,
            }),
            max_p99_service_ms: Some(50.0),
        }
    }
}

/// Which way to scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Add a node.
    Out,
    /// Remove a node.
    In,
}

impl Action {
    /// `out` or `in`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Out => "out",
            Action::In => "in",
        }
    }
}

/// A decision and what it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Which way.
    pub action: Action,
    /// When the unbroken overload (or quiet) began, in the caller's seconds.
    pub began_s: f64,
    /// The signals of the deciding sample.
    pub signals: Signals,
    /// Which signals crossed which threshold, e.g. `ops_per_node 2410 > 2000`.
    pub why: String,
}

/// The policy's memory of the series so far.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    policy: Policy,
    over_since: Option<f64>,
    under_since: Option<f64>,
    last_action_s: Option<f64>,
}

impl Policy {
    /// Checks the policy; the message names the field and what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                Ok(())
            } else {
                Err(format!(
                    "{name} must be between 0 and 86400 seconds, not {v}"
                ))
            }
        };
        positive("interval_s", self.interval_s)?;
        positive("sustain_out_s", self.sustain_out_s)?;
        positive("sustain_in_s", self.sustain_in_s)?;
        if !(self.cooldown_s.is_finite() && (0.0..=86_400.0).contains(&self.cooldown_s)) {
            return Err(format!(
                "cooldown_s must be between 0 and 86400 seconds, not {}",
                self.cooldown_s
            ));
        }
        if self.min_nodes == 0 || self.max_nodes < self.min_nodes {
            return Err(format!(
                "need 1 <= min_nodes <= max_nodes, not min_nodes {} and max_nodes {}",
                self.min_nodes, self.max_nodes
            ));
        }
        let bounds = self.bounds();
        if bounds.is_empty() {
            return Err("give at least one of ops_per_node, cpu_per_node, queue_per_node".into());
        }
        for (name, b, _) in bounds {
            if !(b.out_above.is_finite() && b.out_above > 0.0 && b.in_below.is_finite())
                || b.in_below < 0.0
            {
                return Err(format!(
                    "{name}: out_above must be above 0 and in_below at least 0 (got {} and {})",
                    b.out_above, b.in_below
                ));
            }
            if b.in_below > b.out_above * MAX_IN_FRACTION {
                return Err(format!(
                    "{name}: in_below {} is more than {}% of out_above {}; keep scale-in well below \
                     scale-out or the cluster flaps",
                    b.in_below,
                    MAX_IN_FRACTION * 100.0,
                    b.out_above
                ));
            }
        }
        if let Some(ms) = self.max_p99_service_ms
            && !(ms.is_finite() && ms > 0.0)
        {
            return Err(format!("max_p99_service_ms must be above 0, not {ms}"));
        }
        Ok(())
    }

    /// The signals in use: name, bound, and how to read it from a sample.
    fn bounds(&self) -> Vec<(&'static str, Bound, Read)> {
        let signals: [(&'static str, Option<Bound>, Read); 3] = [
            ("ops_per_node", self.ops_per_node, |s| s.ops_per_node),
            ("cpu_per_node", self.cpu_per_node, |s| s.cpu_per_node),
            ("queue_per_node", self.queue_per_node, |s| s.queue_per_node),
        ];
        signals
            .into_iter()
            .filter_map(|(n, b, read)| b.map(|b| (n, b, read)))
            .collect()
    }
}

/// Reads one signal from a sample.
type Read = fn(&Signals) -> f64;

impl Autoscaler {
    /// A policy's state before any sample; the policy must have passed
    /// [`Policy::validate`].
    pub fn new(policy: Policy) -> Autoscaler {
        Autoscaler {
            policy,
            over_since: None,
            under_since: None,
            last_action_s: None,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Takes the sample taken at `t_s` (seconds, non-decreasing) and answers whether to act
    /// now.
    pub fn observe(&mut self, t_s: f64, s: &Signals) -> Option<Verdict> {
        let n = f64::from(s.nodes.max(1));
        let mut over = Vec::new();
        let mut all_under = true;
        let mut under = Vec::new();
        for (name, b, read) in self.policy.bounds() {
            let v = read(s);
            if v > b.out_above {
                over.push(format!("{name} {} > {}", fmt(v), fmt(b.out_above)));
            }
            // On one node fewer the same load spreads over n − 1 nodes.
            let projected = if s.nodes > 1 {
                v * n / (n - 1.0)
            } else {
                f64::INFINITY
            };
            if projected < b.in_below {
                under.push(format!(
                    "{name} {} on {} nodes < {}",
                    fmt(projected),
                    s.nodes.saturating_sub(1),
                    fmt(b.in_below)
                ));
            } else {
                all_under = false;
            }
        }
        let latency_ok = self
            .policy
            .max_p99_service_ms
            .is_none_or(|max| s.p99_service_ms <= max);
        let quiet = all_under && latency_ok && over.is_empty();
        self.over_since = if over.is_empty() {
            None
        } else {
            Some(self.over_since.unwrap_or(t_s))
        };
        self.under_since = if quiet {
            Some(self.under_since.unwrap_or(t_s))
        } else {
            None
        };
        let cooled = self
            .last_action_s
            .is_none_or(|last| t_s - last >= self.policy.cooldown_s);
        if !cooled {
            return None;
        }
        if let Some(began) = self.over_since
            && t_s - began >= self.policy.sustain_out_s
            && s.nodes < self.policy.max_nodes
        {
            return Some(Verdict {
                action: Action::Out,
                began_s: began,
                signals: *s,
                why: over.join(", "),
            });
        }
        if let Some(began) = self.under_since
            && t_s - began >= self.policy.sustain_in_s
            && s.nodes > self.policy.min_nodes
        {
            return Some(Verdict {
                action: Action::In,
                began_s: began,
                signals: *s,
                why: under.join(", "),
            });
        }
        None
    }

    /// The action decided at the last [`Autoscaler::observe`] finished (or failed) at `t_s`:
    /// the cooldown starts, and the next decision rests only on later samples.
    pub fn acted(&mut self, t_s: f64) {
        self.last_action_s = Some(t_s);
        self.over_since = None;
        self.under_since = None;
    }
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            interval_s: 1.0,
            sustain_out_s: 5.0,
            sustain_in_s: 10.0,
            cooldown_s: 20.0,
            min_nodes: 3,
            max_nodes: 5,
            ops_per_node: Some(Bound {
                out_above: 1000.0,
                in_below: 600.0,
            }),
            cpu_per_node: None,
            queue_per_node: None,
            max_p99_service_ms: Some(50.0),
        }
    }

    /// A cluster of `nodes` carrying `total` ops/s in all.
    fn load(nodes: u32, total: f64) -> Signals {
        Signals {
            nodes,
            ops_per_node: total / f64::from(nodes),
            p99_service_ms: 5.0,
            ..Signals::default()
        }
    }

    /// Feeds one sample a second from `load_at(t, nodes)`, applying each decision at once;
    /// returns the decisions with their times.
    fn simulate(
        p: Policy,
        start_nodes: u32,
        secs: u32,
        load_at: impl Fn(f64) -> f64,
    ) -> Vec<(f64, Action, u32)> {
        let mut a = Autoscaler::new(p);
        let mut nodes = start_nodes;
        let mut out = Vec::new();
        for t in 0..secs {
            let t = f64::from(t);
            if let Some(v) = a.observe(t, &load(nodes, load_at(t))) {
                nodes = match v.action {
                    Action::Out => nodes + 1,
                    Action::In => nodes - 1,
                };
                out.push((t, v.action, nodes));
                a.acted(t);
            }
        }
        out
    }

    #[test]
    fn the_defaults_are_valid_and_bad_policies_are_named() {
        Policy::default().validate().unwrap();
        let mut p = policy();
        p.ops_per_node = Some(Bound {
            out_above: 1000.0,
            in_below: 900.0,
        });
        assert!(p.validate().unwrap_err().contains("flaps"));
        let mut p = policy();
        p.min_nodes = 4;
        p.max_nodes = 3;
        assert!(p.validate().unwrap_err().contains("min_nodes"));
        let mut p = policy();
        p.ops_per_node = None;
        assert!(p.validate().unwrap_err().contains("at least one"));
        let mut p = policy();
        p.sustain_out_s = f64::NAN;
        assert!(p.validate().unwrap_err().contains("sustain_out_s"));
    }

    #[test]
    fn a_flat_load_gives_no_action_at_all() {
        for total in [0.0, 1500.0, 2900.0] {
            assert!(simulate(policy(), 3, 600, |_| total).is_empty(), "{total}");
        }
    }

    #[test]
    fn it_scales_out_after_the_sustain_time_and_not_before() {
        // Overloaded from t = 10: the decision comes at t = 15, five seconds on.
        let d = simulate(policy(), 3, 16, |t| if t >= 10.0 { 3600.0 } else { 1000.0 });
        assert_eq!(d, vec![(15.0, Action::Out, 4)]);
        // A burst shorter than the sustain time does nothing.
        let d = simulate(policy(), 3, 60, |t| {
            if (10.0..14.0).contains(&t) {
                9000.0
            } else {
                1000.0
            }
        });
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn it_honours_the_cooldown() {
        // 5,000 ops/s stays over 1,000 per node up to 4 nodes: the second scale-out waits for
        // the cooldown (20 s) after the first, not merely a new sustain time.
        let d = simulate(policy(), 3, 60, |_| 5000.0);
        assert_eq!(d, vec![(5.0, Action::Out, 4), (25.0, Action::Out, 5)]);
    }

    #[test]
    fn it_respects_the_minimum_and_maximum_node_counts() {
        // Far over the threshold for ever: it stops at max_nodes.
        let d = simulate(policy(), 3, 600, |_| 1e6);
        assert_eq!(d.last().map(|x| x.2), Some(5));
        assert_eq!(d.len(), 2);
        // Idle for ever from 5 nodes: it stops at min_nodes.
        let d = simulate(policy(), 5, 600, |_| 0.0);
        assert_eq!(d, vec![(10.0, Action::In, 4), (30.0, Action::In, 3)]);
    }

    #[test]
    fn it_never_flaps_on_a_signal_oscillating_around_the_threshold() {
        // Per node on 3 nodes: 1,000 ± 10%, in every period from 2 s to 2 minutes.
        for period in [2.0, 7.0, 31.0, 120.0] {
            let d = simulate(policy(), 3, 1800, |t: f64| {
                3000.0 * (1.0 + 0.1 * (2.0 * std::f64::consts::PI * t / period).sin())
            });
            let outs = d.iter().filter(|x| x.1 == Action::Out).count();
            let ins = d.iter().filter(|x| x.1 == Action::In).count();
            assert!(outs <= 1 && ins == 0, "period {period}: {d:?}");
        }
        // A square wave across the threshold, long enough to act on each side: one scale-out,
        // then nothing, because on one node fewer the low phase is still above in_below.
        let d = simulate(policy(), 3, 1800, |t| {
            if ((t / 60.0) as u64).is_multiple_of(2) {
                3300.0
            } else {
                2700.0
            }
        });
        assert_eq!(d, vec![(5.0, Action::Out, 4)]);
    }

    #[test]
    fn a_step_up_then_down_scales_out_then_back_in() {
        let d = simulate(policy(), 3, 200, |t| if t < 100.0 { 3600.0 } else { 300.0 });
        assert_eq!(d, vec![(5.0, Action::Out, 4), (110.0, Action::In, 3)]);
    }

    #[test]
    fn high_latency_holds_a_scale_in_but_never_triggers_a_scale_out() {
        let mut a = Autoscaler::new(policy());
        let slow = Signals {
            nodes: 4,
            ops_per_node: 10.0,
            p99_service_ms: 500.0,
            ..Signals::default()
        };
        for t in 0..100 {
            assert_eq!(a.observe(f64::from(t), &slow), None);
        }
    }

    #[test]
    fn samples_taken_during_an_action_do_not_count_towards_the_next() {
        let mut a = Autoscaler::new(Policy {
            cooldown_s: 0.0,
            ..policy()
        });
        let hot = load(3, 6000.0);
        for t in 0..5 {
            assert_eq!(a.observe(f64::from(t), &hot), None);
        }
        assert!(a.observe(5.0, &hot).is_some());
        a.acted(8.0);
        // A new run of five seconds begins after the action.
        for t in 9..14 {
            assert_eq!(a.observe(f64::from(t), &load(4, 6000.0)), None, "{t}");
        }
        assert!(a.observe(14.0, &load(4, 6000.0)).is_some());
    }
}
