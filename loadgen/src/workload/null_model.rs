//! `null_model:` — a latency model for the `null` target: simulated FIFO servers with a fixed
//! service time, so the target has a known capacity (`servers / service_time`) and a knee.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::DurationSpec;
use super::{Problem, TargetKind, Workload};

/// The most simulated servers.
pub const MAX_SERVERS: u32 = 10_000;
/// The longest simulated service time.
pub const MAX_SERVICE_TIME: Duration = Duration::from_secs(10);

/// `null_model: { servers: 1, service_time: 100us }` — every request waits for the first free
/// one of `servers` servers, first come first served, and holds it for `service_time`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullModel {
    /// Simulated servers working in parallel (default 1).
    #[serde(default = "one")]
    pub servers: u32,
    /// How long each request holds its server.
    pub service_time: DurationSpec,
}

fn one() -> u32 {
    1
}

impl NullModel {
    /// The rate the servers can sustain, ops/s: above it the queue grows without bound.
    pub fn capacity(&self) -> f64 {
        f64::from(self.servers) / self.service_time.0.as_secs_f64().max(1e-12)
    }
}

impl Workload {
    /// A model applies to the `null` target, with servers and a service time in range.
    pub(super) fn validate_null_model(&self) -> Result<(), Problem> {
        let Some(m) = &self.null_model else {
            return Ok(());
        };
        if self.target != TargetKind::Null {
            return Err(Problem::at(
                m,
                "`null_model` simulates servers behind the `null` target: set `target: null`, \
                 or remove `null_model`",
            ));
        }
        if !(1..=MAX_SERVERS).contains(&m.value.servers) {
            return Err(Problem::at(
                m,
                format!("`null_model.servers` must be 1..={MAX_SERVERS}"),
            ));
        }
        let t = m.value.service_time.0;
        if t.is_zero() || t > MAX_SERVICE_TIME {
            return Err(Problem::at(
                m,
                "`null_model.service_time` must be above 0s and at most 10s, e.g. 100us",
            ));
        }
        Ok(())
    }
}
