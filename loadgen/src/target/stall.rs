//! A test target that answers after a fixed service time, except during one stall window, when
//! every request waits for the window to end. It makes coordinated omission visible: an open
//! loop must show the stall in response time while service time stays small.

use std::time::{Duration, Instant};

use super::{OpError, Seen, Target};
use crate::generator::OpSpec;

/// Stalls every request that arrives in `[stall_start, stall_start + stall_for)`.
#[derive(Debug, Clone, Copy)]
pub struct StallTarget {
    /// When the stall begins.
    pub stall_start: Instant,
    /// How long it lasts.
    pub stall_for: Duration,
    /// Service time outside the stall (zero answers at once).
    pub service: Duration,
}

impl Target for StallTarget {
    fn name(&self) -> &'static str {
        "stall"
    }

    async fn execute(&self, _op: OpSpec, _key: &[u8], _value: &[u8]) -> Result<Seen, OpError> {
        let now = Instant::now();
        let stall_end = self.stall_start + self.stall_for;
        if now >= self.stall_start && now < stall_end {
            tokio::time::sleep_until(stall_end.into()).await;
        } else if !self.service.is_zero() {
            tokio::time::sleep(self.service).await;
        }
        Ok(Seen::Nothing)
    }
}
