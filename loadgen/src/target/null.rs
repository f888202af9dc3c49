//! The `null` target: every operation succeeds at once. Running against it measures the load
//! generator's own cost per operation. With `null_model:` it simulates queueing servers
//! instead ([`QueueingNull`]), a target whose capacity is known.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::{Future, Ready, ready};
use std::time::{Duration, Instant};

use super::{OpError, Seen, Target};
use crate::generator::OpSpec;
use crate::timer::PreciseTimer;

/// Does nothing, immediately.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullTarget;

impl Target for NullTarget {
    fn name(&self) -> &'static str {
        "null"
    }

    #[inline]
    fn execute<'a>(
        &'a self,
        op: OpSpec,
        key: &'a [u8],
        value: &'a [u8],
    ) -> impl Future<Output = Result<Seen, OpError>> + 'a {
        // Touch the inputs so the work of producing them cannot be optimised away.
        std::hint::black_box((op, key.len(), value.len()));
        let done: Ready<Result<Seen, OpError>> = ready(Ok(Seen::Nothing));
        done
    }
}

/// The `null` target with a latency model (`null_model:`): simulated servers, first come first
/// served, each holding a request for a fixed service time. Its capacity is `servers /
/// service_time`; above it the queue, and so the latency, grows without bound.
///
/// No CPU is spent serving: a request's completion time follows from when the servers are
/// free (a virtual clock), and the request sleeps until then on a sub-millisecond timer.
/// Time is taken when the request is sent, as a real server sees it.
pub struct QueueingNull {
    service_time: Duration,
    /// When each server is next free, earliest first.
    free_at: RefCell<BinaryHeap<Reverse<Instant>>>,
    /// Idle timers, reused: a timerfd per request in flight, not per request.
    timers: RefCell<Vec<PreciseTimer>>,
}

impl QueueingNull {
    /// `servers` idle servers (at least one), each holding a request for `service_time`.
    pub fn new(servers: u32, service_time: Duration) -> QueueingNull {
        let now = Instant::now();
        QueueingNull {
            service_time,
            free_at: RefCell::new((0..servers.max(1)).map(|_| Reverse(now)).collect()),
            timers: RefCell::new(Vec::new()),
        }
    }

    /// Queues a request that arrives at `now` and returns when it completes: it starts on the
    /// server free first (or at once, if one is idle) and holds it for the service time.
    fn admit(&self, now: Instant) -> Instant {
        let mut free_at = self.free_at.borrow_mut();
        let free = free_at.pop().map_or(now, |Reverse(t)| t);
        let start = free.max(now);
        let done = start.checked_add(self.service_time).unwrap_or(start);
        free_at.push(Reverse(done));
        done
    }
}

impl Target for QueueingNull {
    fn name(&self) -> &'static str {
        "null (simulated servers)"
    }

    async fn execute(&self, op: OpSpec, key: &[u8], value: &[u8]) -> Result<Seen, OpError> {
        std::hint::black_box((op, key.len(), value.len()));
        let done = self.admit(Instant::now());
        let timer = self.timers.borrow_mut().pop().unwrap_or_default();
        timer.sleep_until(done).await;
        self.timers.borrow_mut().push(timer);
        Ok(Seen::Nothing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn one_server_serves_a_burst_one_after_another() {
        let q = QueueingNull::new(1, 100 * US);
        let t0 = Instant::now();
        let done: Vec<Duration> = (0..3).map(|_| q.admit(t0) - t0).collect();
        assert_eq!(done, [100 * US, 200 * US, 300 * US]);
        // Once the queue has drained, a request is served at once.
        let later = t0 + 1000 * US;
        assert_eq!(q.admit(later) - later, 100 * US);
    }

    #[test]
    fn servers_work_in_parallel_and_take_the_queue_in_order() {
        let q = QueueingNull::new(2, 100 * US);
        let t0 = Instant::now();
        let done: Vec<Duration> = (0..5).map(|_| q.admit(t0) - t0).collect();
        assert_eq!(done, [100 * US, 100 * US, 200 * US, 200 * US, 300 * US]);
    }

    #[test]
    fn below_capacity_no_queue_forms_and_above_it_waits_grow() {
        // 1 server of 100 µs: 10,000 ops/s. Arrivals every 110 µs never wait.
        let q = QueueingNull::new(1, 100 * US);
        let t0 = Instant::now() + 10 * US;
        for i in 0..1000 {
            let at = t0 + 110 * i * US;
            assert_eq!(q.admit(at) - at, 100 * US);
        }
        // Arrivals every 90 µs: the n-th waits n × 10 µs more than the first.
        let q = QueueingNull::new(1, 100 * US);
        let t0 = Instant::now() + 10 * US;
        let waits: Vec<Duration> = (0..1000)
            .map(|i| {
                let at = t0 + 90 * i * US;
                q.admit(at) - at
            })
            .collect();
        assert_eq!(waits[0], 100 * US);
        assert_eq!(waits[999], 100 * US + 999 * 10 * US);
    }
}
