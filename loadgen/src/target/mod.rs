//! The [`Target`] trait and its drivers: `null` (measures the load generator itself), a stall
//! target for testing coordinated-omission correction, `ringkv` (through `store::client`), and
//! `redis` (the calibration target).
//!
//! The runner is generic over the target, so there is no boxing or dynamic dispatch per
//! operation; the futures are awaited in place by a fixed set of workers, never spawned.

pub mod null;
pub mod redis;
pub mod ringkv;
pub mod stall;

use std::future::Future;
use std::time::Instant;

use crate::generator::OpSpec;

/// One request of a batch (`pipeline:` above 1): what to do, on which key, with which value.
#[derive(Debug, Clone, Copy)]
pub struct BatchOp<'a> {
    /// The operation.
    pub op: OpSpec,
    /// Its key.
    pub key: &'a [u8],
    /// Its value (writes).
    pub value: &'a [u8],
}

/// Each request's answer and the instant it came, in the order of the batch.
pub type BatchAnswers = Vec<(Result<Seen, OpError>, Instant)>;

/// Why an operation failed. Failures are counted per operation kind; the first message of each
/// point is kept in the summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The request did not complete within the timeout.
    #[error("timed out")]
    Timeout,
    /// The target answered with an error.
    #[error("{0}")]
    Failed(String),
    /// A write whose outcome is unknown: its connection broke or its deadline passed in
    /// flight, so it may or may not have been applied.
    #[error("{0}")]
    Indeterminate(String),
    /// A write the store refused because its key holds too many concurrent versions (ringkv's
    /// sibling bound, gRPC ABORTED); nothing was applied. Told apart from other failures:
    /// it is the store protecting every acknowledged write, and a read-modify-write resolves it.
    #[error("{0}")]
    Conflict(String),
}

/// What a completed operation tells the consistency checker (`crate::consistency`).
#[derive(Debug, Clone, Default)]
pub enum Seen {
    /// Nothing checkable (the target keeps no versions, or the operation was a delete
    /// without a named version).
    #[default]
    Nothing,
    /// A write (or delete) was acknowledged.
    Wrote {
        /// The version it made (`None` when the node did not say).
        dot: Option<store::client::Dot>,
        /// The context of the answer (covers the new version).
        context: bytes::Bytes,
        /// The context the write carried (a read-modify-write's: the one its get returned).
        sent: Option<bytes::Bytes>,
    },
    /// A read answered; its causal context covers every version it saw or that those
    /// superseded.
    Read {
        /// The opaque context the node returned.
        context: bytes::Bytes,
        /// It found no value (the key was never written, or is deleted).
        empty: bool,
    },
    /// A read of a target that keeps no versions found no value.
    Empty,
}

impl Seen {
    /// A read that found no value: cheaper to serve than a hit, so reports count it apart.
    pub fn found_nothing(&self) -> bool {
        matches!(self, Seen::Empty | Seen::Read { empty: true, .. })
    }
}

/// A system under load.
pub trait Target {
    /// A short name for reports (`null`, `ringkv`, …).
    fn name(&self) -> &'static str;

    /// Executes one operation on `key` (for writes, with `value`). The returned future is polled
    /// in place by a worker; it must not be spawned and should not allocate on the `null` path.
    fn execute<'a>(
        &'a self,
        op: OpSpec,
        key: &'a [u8],
        value: &'a [u8],
    ) -> impl Future<Output = Result<Seen, OpError>> + 'a;

    /// Sends `ops` together, without waiting between them, and returns each answer in order
    /// with the instant it came (a closed loop's `pipeline:`). By default every request is in
    /// flight at once through [`Target::execute`]; a target with a wire-level pipeline (redis)
    /// sends them as one.
    fn execute_batch<'a>(
        &'a self,
        ops: &'a [BatchOp<'a>],
    ) -> impl Future<Output = BatchAnswers> + 'a {
        futures_util::future::join_all(ops.iter().map(|b| async move {
            let r = self.execute(b.op, b.key, b.value).await;
            (r, Instant::now())
        }))
    }

    /// The causal context the next write of `key_index` will carry (for the lost-write
    /// audit); `None` for targets without contexts.
    fn context_of(&self, _key_index: u64) -> Option<bytes::Bytes> {
        None
    }

    /// Operating-system process ids whose CPU and memory are sampled during a point (the nodes
    /// of a local cluster; empty for targets that run in-process).
    fn pids(&self) -> Vec<u32> {
        Vec::new()
    }
}
