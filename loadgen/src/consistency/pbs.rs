//! Probabilistically Bounded Staleness (Bailis et al., VLDB 2012): the chance that a read
//! started right as a write is acknowledged (t = 0, no anti-entropy) misses it.
//!
//! Two predictions:
//! - [`closed_form_t0`]: PBS's closed form, which assumes the R replicas read are a uniform
//!   choice among the N: P(stale) = C(N−W, R) / C(N, R).
//! - [`ringkv_t0`]: ringkv's actual replica choice for a routing, enumerated exactly. A write
//!   is applied first on its coordinating replica (the node the client sent it to, when that
//!   node is a replica; else the key's first replica), and acknowledged after W − 1 of the
//!   others, any of them equally likely. A read's coordinator asks itself first (when a
//!   replica) and then the next replicas in preference order; with the nodes' read-repair
//!   chance it asks all N and takes the first R answers (itself, then any others).
//!   Token-aware clients send both to the key's first replica, so reads never miss at t = 0.

use store::client::Routing;

/// Most replicas the enumeration handles (N is at most 7 in any sane cluster).
const MAX_N: u32 = 16;

/// PBS's closed form at t = 0: C(N−W, R) / C(N, R); `None` for quorums outside 1..=N.
pub fn closed_form_t0(n: u32, w: u32, r: u32) -> Option<f64> {
    if n == 0 || !(1..=n).contains(&w) || !(1..=n).contains(&r) {
        return None;
    }
    Some(choose(n - w, r) / choose(n, r))
}

fn choose(n: u32, k: u32) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

/// A cluster setting the predictions are for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// Replicas N.
    pub n: u32,
    /// Write quorum W.
    pub w: u32,
    /// Read quorum R.
    pub r: u32,
    /// Nodes in the cluster (at least N).
    pub nodes: u32,
    /// How the client picks the coordinator.
    pub routing: Routing,
    /// Share of reads that ask all N replicas.
    pub read_repair_chance: f64,
}

impl Setting {
    fn possible(&self) -> bool {
        let (n, w, r) = (self.n, self.w, self.r);
        n > 0 && n <= MAX_N && self.nodes >= n && (1..=n).contains(&w) && (1..=n).contains(&r)
    }
}

/// ringkv's probability of a stale read at t = 0 in `setting`; `None` for impossible
/// settings.
pub fn ringkv_t0(setting: Setting) -> Option<f64> {
    if !setting.possible() {
        return None;
    }
    let Setting {
        n,
        w,
        r,
        nodes,
        routing,
        read_repair_chance,
    } = setting;
    if routing == Routing::TokenAware {
        // Write and read both coordinated by replica 0, which applies the write before
        // acknowledging it and reads itself first.
        return Some(0.0);
    }
    let p_all = read_repair_chance.clamp(0.0, 1.0);
    // The coordinating replica of a write, with its probability: each replica when the
    // client picked it, replica 0 when the client picked a node outside the preference list.
    let outside = f64::from(nodes - n) / f64::from(nodes);
    let pick = |i: u32| f64::from(u32::from(i == 0)) * outside + 1.0 / f64::from(nodes);
    let full = (1u32 << n) - 1;
    let mut stale = 0.0;
    for cw in 0..n {
        let others = full & !(1 << cw);
        let written_sets = subsets(others, w - 1);
        let per_set = 1.0 / written_sets.len() as f64;
        for acked in written_sets {
            let written = acked | (1 << cw);
            for cr in 0..n {
                let p = pick(cw) * pick(cr) * per_set;
                // Asks itself, then the next replicas in preference order.
                let ordered = first_in_order(cr, r, n);
                let miss_ordered = f64::from(u32::from(ordered & written == 0));
                // Asks all, the first R answer: itself and R − 1 others, any equally likely.
                let rest = subsets(full & !(1 << cr), r - 1);
                let miss_all = rest
                    .iter()
                    .filter(|m| (*m | (1 << cr)) & written == 0)
                    .count() as f64
                    / rest.len() as f64;
                stale += p * ((1.0 - p_all) * miss_ordered + p_all * miss_all);
            }
        }
    }
    Some(stale)
}

/// The replica set a read coordinated by replica `cr` asks first: itself, then the lowest
/// positions of the preference list, `r` in all.
fn first_in_order(cr: u32, r: u32, n: u32) -> u32 {
    let mut set = 1 << cr;
    let mut count = 1;
    for i in 0..n {
        if count >= r {
            break;
        }
        if i != cr {
            set |= 1 << i;
            count += 1;
        }
    }
    set
}

/// Every subset of `of` (a bit mask) with `k` members.
fn subsets(of: u32, k: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut m = of;
    // Walks every sub-mask of `of`, including the empty one.
    loop {
        if m.count_ones() == k {
            out.push(m);
        }
        if m == 0 {
            break;
        }
        m = (m - 1) & of;
    }
    out
}

#[cfg(test)]
fn st(n: u32, w: u32, r: u32, nodes: u32, routing: Routing, read_repair_chance: f64) -> Setting {
    Setting {
        n,
        w,
        r,
        nodes,
        routing,
        read_repair_chance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn the_closed_form_for_n3_and_n5() {
        let cases3 = [
            (1, 1, 2.0 / 3.0),
            (1, 2, 1.0 / 3.0),
            (2, 1, 1.0 / 3.0),
            (2, 2, 0.0),
            (1, 3, 0.0),
            (3, 1, 0.0),
        ];
        for (w, r, p) in cases3 {
            assert!(close(closed_form_t0(3, w, r).unwrap(), p), "N3 W{w} R{r}");
        }
        let cases5 = [
            (1, 1, 0.8),
            (2, 2, 0.3),
            (1, 2, 0.6),
            (2, 1, 0.6),
            (3, 2, 0.1),
            (3, 3, 0.0),
        ];
        for (w, r, p) in cases5 {
            assert!(close(closed_form_t0(5, w, r).unwrap(), p), "N5 W{w} R{r}");
        }
        assert_eq!(closed_form_t0(3, 0, 1), None);
        assert_eq!(closed_form_t0(3, 1, 4), None);
    }

    #[test]
    fn ringkv_random_routing_on_three_nodes_matches_the_closed_form() {
        for w in 1..=3 {
            for r in 1..=3 {
                let got = ringkv_t0(st(3, w, r, 3, Routing::Random, 0.0)).unwrap();
                let pbs = closed_form_t0(3, w, r).unwrap();
                assert!(close(got, pbs), "W{w} R{r}: {got} vs {pbs}");
                // Asking all replicas now and then only helps.
                assert!(ringkv_t0(st(3, w, r, 3, Routing::Random, 0.1)).unwrap() <= got + 1e-12);
            }
        }
    }

    #[test]
    fn token_aware_routing_and_overlapping_quorums_never_read_stale_at_t0() {
        assert_eq!(
            ringkv_t0(st(3, 1, 1, 3, Routing::TokenAware, 0.1)),
            Some(0.0)
        );
        for (n, w, r, nodes) in [(3, 2, 2, 3), (5, 3, 3, 8), (3, 1, 3, 5)] {
            assert!(close(
                ringkv_t0(st(n, w, r, nodes, Routing::Random, 0.1)).unwrap(),
                0.0
            ));
        }
        // Nodes outside the preference list hand both to replica 0, so more nodes means
        // fewer misses at W1 R1.
        let three = ringkv_t0(st(3, 1, 1, 3, Routing::Random, 0.0)).unwrap();
        let six = ringkv_t0(st(3, 1, 1, 6, Routing::Random, 0.0)).unwrap();
        assert!(six < three, "{six} vs {three}");
        assert_eq!(ringkv_t0(st(3, 1, 1, 2, Routing::Random, 0.0)), None);
    }
}

// ------------------------------------------------------------------ WARS, from measured legs

/// A distribution given by its quantiles `(percent, value)`, ascending; sampled by linear
/// interpolation between them (flat below the first and above the last).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quantiles(pub Vec<(u32, f64)>);

impl Quantiles {
    /// The value at `u` in [0, 1).
    pub fn sample(&self, u: f64) -> f64 {
        let q = u * 100.0;
        let pts = &self.0;
        let Some(&(first_q, first_v)) = pts.first() else {
            return 0.0;
        };
        if q <= f64::from(first_q) {
            return first_v;
        }
        for pair in pts.windows(2) {
            if let [(q0, v0), (q1, v1)] = pair
                && q <= f64::from(*q1)
            {
                let span = f64::from(q1 - q0).max(1e-9);
                return v0 + (v1 - v0) * (q - f64::from(*q0)) / span;
            }
        }
        pts.last().map_or(0.0, |p| p.1)
    }

    /// The median (interpolated).
    pub fn median(&self) -> f64 {
        self.sample(0.5)
    }
}

/// Replica round trips the nodes measured (their `coordinator.*_us.p*` Status figures), the
/// inputs of [`wars`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaLegs {
    /// A merge to another replica until its durable acknowledgement, µs.
    pub merge_rtt_us: Quantiles,
    /// A fetch from another replica until its answer, µs.
    pub fetch_rtt_us: Quantiles,
    /// The coordinating node's own write until durable, µs.
    pub local_durable_us: Quantiles,
}

impl ReplicaLegs {
    /// The legs from the nodes' Status figures: per quantile, the median over the nodes that
    /// report it. `None` when no node reports all three legs.
    pub fn from_status<'a>(
        nodes: impl IntoIterator<Item = &'a std::collections::HashMap<String, u64>>,
    ) -> Option<ReplicaLegs> {
        let nodes: Vec<_> = nodes.into_iter().collect();
        let leg = |name: &str| -> Option<Quantiles> {
            let mut pts = Vec::new();
            for q in store::coordinator::legs::QUANTILES {
                let key = format!("coordinator.{name}.p{q}");
                let xs: Vec<f64> = nodes
                    .iter()
                    .filter_map(|m| m.get(&key).map(|&v| v as f64))
                    .collect();
                pts.push((q, crate::stats::median(&xs)?));
            }
            Some(Quantiles(pts))
        };
        Some(ReplicaLegs {
            merge_rtt_us: leg("merge_rtt_us")?,
            fetch_rtt_us: leg("fetch_rtt_us")?,
            local_durable_us: leg("local_durable_us")?,
        })
    }
}

/// PBS's WARS Monte-Carlo with ringkv's replica choice: the probability that a read started
/// `t` µs after a write's acknowledgement is stale, for each `t` in `t_us`.
///
/// Each trial picks the coordinators as [`ringkv_t0`] does and samples the legs: the
/// coordinating replica applies at once and is durable after `local_durable`; another replica
/// applies after half a fetch round trip (one way over the network) and acknowledges after a
/// merge round trip (at least that); the write is acknowledged at the W-th acknowledgement. The
/// read's coordinator reads itself at once and any other replica half a fetch round trip
/// later; a replica answers with the write when it had applied it by then. Asking all N (the
/// read-repair share), the first R answers count. The same legs serve every `t` of a trial,
/// so the curve is smooth. Seeded: the same inputs give the same curve.
pub fn wars(setting: Setting, legs: &ReplicaLegs, t_us: &[f64], trials: u32) -> Option<Vec<f64>> {
    use crate::generator::keys::{below, unit_f64};
    use rand::SeedableRng;
    if !setting.possible() {
        return None;
    }
    let (n, w, r, nodes, routing) = (
        setting.n,
        setting.w,
        setting.r,
        setting.nodes,
        setting.routing,
    );
    let read_repair_chance = setting.read_repair_chance;
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(0x0005_eed0_f9b5);
    let mut stale = vec![0u64; t_us.len()];
    let n_us = n as usize;
    let pick = |rng: &mut rand::rngs::Xoshiro256PlusPlus| -> usize {
        if routing == Routing::TokenAware {
            return 0;
        }
        let i = below(rng, u64::from(nodes)) as usize;
        if i < n_us { i } else { 0 }
    };
    let mut apply = vec![0.0f64; n_us];
    let mut ack = vec![0.0f64; n_us];
    let mut read_leg = vec![0.0f64; n_us];
    let mut reply_leg = vec![0.0f64; n_us];
    for _ in 0..trials {
        let cw = pick(&mut rng);
        for j in 0..n_us {
            if j == cw {
                apply[j] = 0.0;
                ack[j] = legs.local_durable_us.sample(unit_f64(&mut rng));
            } else {
                apply[j] = legs.fetch_rtt_us.sample(unit_f64(&mut rng)) / 2.0;
                ack[j] = legs.merge_rtt_us.sample(unit_f64(&mut rng)).max(apply[j]);
            }
        }
        let mut acks = ack.clone();
        acks.sort_by(f64::total_cmp);
        let t_ack = acks.get(w as usize - 1).copied().unwrap_or(0.0);
        let cr = pick(&mut rng);
        for j in 0..n_us {
            let local = j == cr;
            read_leg[j] = if local {
                0.0
            } else {
                legs.fetch_rtt_us.sample(unit_f64(&mut rng)) / 2.0
            };
            reply_leg[j] = if local {
                0.0
            } else {
                legs.fetch_rtt_us.sample(unit_f64(&mut rng)) / 2.0
            };
        }
        let ask_all = unit_f64(&mut rng) < read_repair_chance;
        let asked: Vec<usize> = if ask_all {
            let mut all: Vec<usize> = (0..n_us).collect();
            all.sort_by(|&a, &b| {
                (read_leg[a] + reply_leg[a]).total_cmp(&(read_leg[b] + reply_leg[b]))
            });
            all.truncate(r as usize);
            all
        } else {
            let set = first_in_order(cr as u32, r, n);
            (0..n_us).filter(|j| set & (1 << j) != 0).collect()
        };
        for (k, t) in t_us.iter().enumerate() {
            let start = t_ack + t;
            let fresh = asked.iter().any(|&j| apply[j] <= start + read_leg[j]);
            if !fresh && let Some(s) = stale.get_mut(k) {
                *s += 1;
            }
        }
    }
    Some(
        stale
            .into_iter()
            .map(|s| s as f64 / f64::from(trials.max(1)))
            .collect(),
    )
}

#[cfg(test)]
mod wars_tests {
    use super::*;

    fn legs(merge: f64, fetch: f64, durable: f64) -> ReplicaLegs {
        let flat = |v: f64| Quantiles(vec![(1, v), (99, v)]);
        ReplicaLegs {
            merge_rtt_us: flat(merge),
            fetch_rtt_us: flat(fetch),
            local_durable_us: flat(durable),
        }
    }

    #[test]
    fn quantiles_interpolate() {
        let q = Quantiles(vec![(1, 10.0), (50, 100.0), (99, 1000.0)]);
        assert_eq!(q.sample(0.0), 10.0);
        assert_eq!(q.sample(0.5), 100.0);
        assert!((q.sample(0.745) - 550.0).abs() < 1e-6);
        assert_eq!(q.sample(0.9999), 1000.0);
    }

    #[test]
    fn wars_agrees_with_the_closed_form_when_nothing_propagates_before_the_ack() {
        // The others apply long after the coordinator's own (instant) acknowledgement: at
        // t = 0 a W1 R1 read elsewhere is stale, as PBS's closed form says (2/3 for N = 3).
        let slow = legs(100_000.0, 100_000.0, 0.0);
        let p = wars(
            st(3, 1, 1, 3, Routing::Random, 0.0),
            &slow,
            &[0.0, 1e9],
            20_000,
        )
        .unwrap();
        assert!((p[0] - 2.0 / 3.0).abs() < 0.02, "{p:?}");
        // Long after, everything has arrived.
        assert_eq!(p[1], 0.0);
        // Overlapping quorums are never stale.
        let p = wars(st(3, 2, 2, 3, Routing::Random, 0.1), &slow, &[0.0], 5_000).unwrap();
        assert_eq!(p[0], 0.0);
    }

    #[test]
    fn a_slow_local_fsync_lets_the_others_apply_before_the_ack() {
        // ringkv acknowledges W = 1 after its own fsync (2 ms), while the merges arrive in
        // 0.1 ms: reads right after the acknowledgement are consistent.
        let fsync_bound = legs(2_500.0, 200.0, 2_000.0);
        let p = wars(
            st(3, 1, 1, 3, Routing::Random, 0.0),
            &fsync_bound,
            &[0.0],
            5_000,
        )
        .unwrap();
        assert_eq!(p[0], 0.0);
        let token = wars(
            st(3, 1, 1, 3, Routing::TokenAware, 0.0),
            &legs(1e5, 1e5, 0.0),
            &[0.0],
            1000,
        );
        assert_eq!(token.unwrap()[0], 0.0);
    }
}
