//! Recent replica round trips as this coordinator saw them, for a load generator's PBS
//! "WARS" model of staleness (Bailis et al., VLDB 2012): how long a merge to another replica
//! takes to be acknowledged (network, apply, fsync, answer), how long a fetch from another
//! replica takes (network, lookup, answer), and how long this node's own write takes to be
//! durable. `Status` reports their quantiles as `coordinator.<leg>_us.p<q>`.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Samples kept per leg (the most recent).
const KEEP: usize = 1024;
/// Quantiles reported, percent.
pub const QUANTILES: [u32; 9] = [1, 5, 10, 25, 50, 75, 90, 95, 99];

/// Service times older than this are left out of `service_us`: at a low request rate the
/// last [`KEEP`] samples would reach back minutes, and an autoscaler would read a busy
/// period's p99 long after it ended.
pub const SERVICE_WINDOW: Duration = Duration::from_secs(10);

/// A ring of the most recent samples of one leg (µs, and when each was taken).
#[derive(Debug, Default)]
pub struct Reservoir {
    inner: Mutex<(Vec<(u32, Instant)>, usize)>,
}

impl Reservoir {
    /// Takes one sample.
    pub fn record(&self, d: Duration) {
        let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        let sample = (us, Instant::now());
        let mut g = self.inner.lock();
        let (samples, next) = &mut *g;
        if samples.len() < KEEP {
            samples.push(sample);
        } else if let Some(slot) = samples.get_mut(*next % KEEP) {
            *slot = sample;
        }
        *next = next.wrapping_add(1);
    }

    /// The [`QUANTILES`] of what is kept (empty before the first sample).
    pub fn quantiles(&self) -> Vec<(u32, u64)> {
        self.quantiles_within(None)
    }

    /// The [`QUANTILES`] of the samples kept that are at most `max_age` old (all of them
    /// with `None`); empty when there are none.
    pub fn quantiles_within(&self, max_age: Option<Duration>) -> Vec<(u32, u64)> {
        let now = Instant::now();
        let mut v: Vec<u32> = self
            .inner
            .lock()
            .0
            .iter()
            .filter(|(_, at)| max_age.is_none_or(|m| now.saturating_duration_since(*at) <= m))
            .map(|&(us, _)| us)
            .collect();
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
        for (name, r, max_age) in [
            ("merge_rtt_us", &self.merge, None),
            ("fetch_rtt_us", &self.fetch, None),
            ("local_durable_us", &self.local_durable, None),
            ("service_us", &self.service, Some(SERVICE_WINDOW)),
        ] {
            for (q, us) in r.quantiles_within(max_age) {
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

    #[test]
    fn old_samples_leave_the_windowed_quantiles() {
        let r = Reservoir::default();
        for _ in 0..10 {
            r.record(Duration::from_millis(80));
        }
        std::thread::sleep(Duration::from_millis(30));
        r.record(Duration::from_millis(2));
        let recent = r.quantiles_within(Some(Duration::from_millis(20)));
        assert!(recent.iter().all(|&(_, us)| us == 2000), "{recent:?}");
        // Without a window the busy period still shows.
        assert_eq!(r.quantiles().last(), Some(&(99, 80_000)));
    }
}
