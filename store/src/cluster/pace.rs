//! Background work spread out to a steady rate: anti-entropy's key exchanges and the
//! entries a joining node pulls.

use std::time::Duration;

/// Spreads units of work out to at most `per_sec` on average since it was made (0: no
/// limit), so a burst of background work (a round that finds many differences, a join that
/// gains many small ranges) runs as a steady trickle instead of a latency spike. Time the
/// work itself took counts towards the rate.
pub struct Pace {
    per_sec: f64,
    started: tokio::time::Instant,
    done: u64,
}

impl Pace {
    /// A pace of `per_sec` units a second, starting now.
    pub fn new(per_sec: u32) -> Self {
        Pace {
            per_sec: f64::from(per_sec),
            started: tokio::time::Instant::now(),
            done: 0,
        }
    }

    /// One unit done: waits until it fits the rate.
    pub async fn step(&mut self) {
        self.step_by(1).await;
    }

    /// `n` units done: waits until they fit the rate.
    pub async fn step_by(&mut self, n: u64) {
        self.done = self.done.saturating_add(n);
        if self.per_sec <= 0.0 || n == 0 {
            return;
        }
        let due = self.started + Duration::from_secs_f64(self.done as f64 / self.per_sec);
        tokio::time::sleep_until(due).await;
    }
}
