//! Recent replica round trips as this coordinator saw them, for a load generator's PBS
//! "WARS" model of staleness (Bailis et al., VLDB 2012): how long a merge to another replica
//! takes to be acknowledged (network, apply, fsync, answer), how long a fetch from another
//! replica takes (network, lookup, answer), and how long this node's own write takes to be
//! durable. `Status` reports their quantiles as `coordinator.<leg>_us.p<q>`.

use std::time::Duration;

use parking_lot::Mutex;

/// Samples kept per leg (the most recent).
const KEEP: usize = 1024;
/// Quantiles reported, percent.
pub const QUANTILES: [u32; 9] = [1, 5, 10, 25, 50, 75, 90, 95, 99];

/// A ring of the most recent samples of one leg, µs.
#[derive(Debug, Default)]
pub struct Reservoir {
    inner: Mutex<(Vec<u32>, usize)>,
}

impl Reservoir {
    /// Takes one sample.
    pub fn record(&self, d: Duration) {
        let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        let mut g = self.inner.lock();
        let (samples, next) = &mut *g;
        if samples.len() < KEEP {
            samples.push(us);
        } else if let Some(slot) = samples.get_mut(*next % KEEP) {
            *slot = us;
        }
        *next = next.wrapping_add(1);
    }

    /// The [`QUANTILES`] of what is kept (empty before the first sample).
    pub fn quantiles(&self) -> Vec<(u32, u64)> {
        let mut v = self.inner.lock().0.clone();
        if v.is_empty() {
            return Vec::new();
        }
        v.sort_unstable();
        QUANTILES
            .iter()
            .map(|&q| {
                let i = ((v.len() - 1) * q as usize) / 100;
                (q, u64::from(v.get(i).copied().unwrap_or(0)))
            })
            .collect()
    }
}

/// The legs of replica requests.
#[derive(Debug, Default)]
pub struct Legs {
    /// A merge sent to another replica, until its durable acknowledgement.
    pub merge: Reservoir,
    /// A fetch from another replica, until its answer.
    pub fetch: Reservoir,
    /// This node's own coordinated write, until durable.
    pub local_durable: Reservoir,
    /// A client request at this node, from receipt to answer (its service time; an
    /// autoscaler's latency signal).
    pub service: Reservoir,
}

impl Legs {
    /// `(name, quantile, µs)` for Status.
    pub fn report(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (name, r) in [
            ("merge_rtt_us", &self.merge),
            ("fetch_rtt_us", &self.fetch),
            ("local_durable_us", &self.local_durable),
            ("service_us", &self.service),
        ] {
            for (q, us) in r.quantiles() {
                out.push((format!("{name}.p{q}"), us));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_the_most_recent_samples() {
        let r = Reservoir::default();
        assert!(r.quantiles().is_empty());
        for us in 1..=100u64 {
            r.record(Duration::from_micros(us));
        }
        let q: std::collections::BTreeMap<u32, u64> = r.quantiles().into_iter().collect();
        assert_eq!(q[&50], 50);
        assert_eq!(q[&99], 99);
        assert_eq!(q[&1], 1);
        // Only the most recent KEEP count.
        for _ in 0..KEEP {
            r.record(Duration::from_micros(7));
        }
        assert!(r.quantiles().iter().all(|&(_, us)| us == 7));
    }
}
