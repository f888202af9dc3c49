//! Load signals from the nodes themselves: two `Status` answers a known time apart give a
//! node's rates (requests coordinated and served, CPU), and the answer itself its executor
//! queue depth and recent p99 service time.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::policy::Signals;

/// What one node's `Status` said, and when it was asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeCounters {
    /// When the answer came.
    pub at: Instant,
    /// Client requests coordinated since start (reads and writes).
    pub coordinated: u64,
    /// Replica requests served since start (merges and fetches).
    pub served: u64,
    /// Process CPU since start, ns.
    pub cpu_ns: u64,
    /// Cores the process may use.
    pub cores: u64,
    /// Executor operations queued or running now.
    pub queued: u64,
    /// p99 of recent service times, µs.
    pub p99_service_us: u64,
}

impl NodeCounters {
    /// Reads the counters out of a `Status` answer's stats taken at `at`.
    pub fn from_stats(stats: &HashMap<String, u64>, at: Instant) -> NodeCounters {
        let get = |k: &str| stats.get(k).copied().unwrap_or(0);
        NodeCounters {
            at,
            coordinated: get("coordinator.reads").saturating_add(get("coordinator.writes")),
            served: get("replica.merges").saturating_add(get("replica.fetches")),
            cpu_ns: get("process.cpu_ns"),
            cores: get("process.cores").max(1),
            queued: get("executor.queued"),
            p99_service_us: get("coordinator.service_us.p99"),
        }
    }
}

/// Turns successive samples of every node into cluster [`Signals`].
#[derive(Debug, Default)]
pub struct Sampler {
    last: HashMap<String, NodeCounters>,
}

impl Sampler {
    /// A sampler with no history.
    pub fn new() -> Sampler {
        Sampler::default()
    }

    /// Takes one sample of every ring member (by id). Answers `None` when some member has no
    /// earlier sample to take a rate from (it just joined) or a node restarted (its counters
    /// went back): a decision never rests on part of the cluster.
    pub fn sample(&mut self, now: BTreeMap<String, NodeCounters>) -> Option<Signals> {
        let mut complete = !now.is_empty();
        let mut sum = Signals {
            ops_min_node: f64::INFINITY,
            ..Signals::default()
        };
        for (id, c) in &now {
            let Some(prev) = self.last.get(id) else {
                complete = false;
                continue;
            };
            let dt = c.at.saturating_duration_since(prev.at).as_secs_f64();
            if dt <= 0.0
                || c.coordinated < prev.coordinated
                || c.served < prev.served
                || c.cpu_ns < prev.cpu_ns
            {
                complete = false;
                continue;
            }
            let ops = (c.coordinated - prev.coordinated) as f64 / dt;
            sum.ops_per_node += ops;
            sum.ops_min_node = sum.ops_min_node.min(ops);
            sum.ops_max_node = sum.ops_max_node.max(ops);
            sum.served_per_node += (c.served - prev.served) as f64 / dt;
            sum.cpu_per_node += (c.cpu_ns - prev.cpu_ns) as f64 / 1e9 / dt / c.cores as f64;
            sum.queue_per_node += c.queued as f64;
            sum.p99_service_ms = sum.p99_service_ms.max(c.p99_service_us as f64 / 1000.0);
        }
        self.last = now.into_iter().collect();
        if !complete {
            return None;
        }
        let n = self.last.len() as f64;
        Some(Signals {
            nodes: u32::try_from(self.last.len()).unwrap_or(u32::MAX),
            ops_per_node: sum.ops_per_node / n,
            ops_min_node: sum.ops_min_node,
            ops_max_node: sum.ops_max_node,
            served_per_node: sum.served_per_node / n,
            cpu_per_node: sum.cpu_per_node / n,
            queue_per_node: sum.queue_per_node / n,
            p99_service_ms: sum.p99_service_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn counters(at: Instant, coordinated: u64, cpu_ms: u64, queued: u64) -> NodeCounters {
        NodeCounters {
            at,
            coordinated,
            served: coordinated * 2,
            cpu_ns: cpu_ms * 1_000_000,
            cores: 2,
            queued,
            p99_service_us: 3000,
        }
    }

    #[test]
    fn rates_are_per_second_and_per_node_and_a_new_member_waits_a_sample() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        let mut s = Sampler::new();
        let first: BTreeMap<_, _> = [
            ("n1".to_string(), counters(t0, 0, 0, 0)),
            ("n2".to_string(), counters(t0, 0, 0, 0)),
        ]
        .into();
        assert_eq!(s.sample(first), None);
        let second: BTreeMap<_, _> = [
            ("n1".to_string(), counters(t1, 2000, 1000, 10)),
            ("n2".to_string(), counters(t1, 6000, 3000, 30)),
        ]
        .into();
        let sig = s.sample(second.clone()).unwrap();
        assert_eq!(sig.nodes, 2);
        assert!((sig.ops_per_node - 2000.0).abs() < 1e-9, "{sig:?}");
        assert_eq!((sig.ops_min_node, sig.ops_max_node), (1000.0, 3000.0));
        assert!((sig.served_per_node - 4000.0).abs() < 1e-9);
        // 1 s and 3 s of CPU over 2 s on 2 cores: 25% and 75%.
        assert!((sig.cpu_per_node - 0.5).abs() < 1e-9);
        assert!((sig.queue_per_node - 20.0).abs() < 1e-9);
        assert!((sig.p99_service_ms - 3.0).abs() < 1e-9);
        // A third node appears: no verdict until it has a rate.
        let mut third = second;
        third.insert("n3".into(), counters(t1, 0, 0, 0));
        assert_eq!(s.sample(third), None);
    }

    #[test]
    fn a_restarted_node_is_not_read_as_a_negative_rate() {
        let t0 = Instant::now();
        let mut s = Sampler::new();
        s.sample([("n1".to_string(), counters(t0, 5000, 10, 0))].into());
        let later = t0 + Duration::from_secs(1);
        assert_eq!(
            s.sample([("n1".to_string(), counters(later, 10, 1, 0))].into()),
            None
        );
    }
}
