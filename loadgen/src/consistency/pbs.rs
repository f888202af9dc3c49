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

/// ringkv's probability of a stale read at t = 0 for N replicas among `nodes` nodes, with
/// `read_repair_chance` of reads asking all replicas; `None` for impossible settings.
pub fn ringkv_t0(
    n: u32,
    w: u32,
    r: u32,
    nodes: u32,
    routing: Routing,
    read_repair_chance: f64,
) -> Option<f64> {
    if n == 0 || n > MAX_N || nodes < n || !(1..=n).contains(&w) || !(1..=n).contains(&r) {
        return None;
    }
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
                let got = ringkv_t0(3, w, r, 3, Routing::Random, 0.0).unwrap();
                let pbs = closed_form_t0(3, w, r).unwrap();
                assert!(close(got, pbs), "W{w} R{r}: {got} vs {pbs}");
                // Asking all replicas now and then only helps.
                assert!(ringkv_t0(3, w, r, 3, Routing::Random, 0.1).unwrap() <= got + 1e-12);
            }
        }
    }

    #[test]
    fn token_aware_routing_and_overlapping_quorums_never_read_stale_at_t0() {
        assert_eq!(ringkv_t0(3, 1, 1, 3, Routing::TokenAware, 0.1), Some(0.0));
        for (n, w, r, nodes) in [(3, 2, 2, 3), (5, 3, 3, 8), (3, 1, 3, 5)] {
            assert!(close(
                ringkv_t0(n, w, r, nodes, Routing::Random, 0.1).unwrap(),
                0.0
            ));
        }
        // Nodes outside the preference list hand both to replica 0, so more nodes means
        // fewer misses at W1 R1.
        let three = ringkv_t0(3, 1, 1, 3, Routing::Random, 0.0).unwrap();
        let six = ringkv_t0(3, 1, 1, 6, Routing::Random, 0.0).unwrap();
        assert!(six < three, "{six} vs {three}");
        assert_eq!(ringkv_t0(3, 1, 1, 2, Routing::Random, 0.0), None);
    }
}
