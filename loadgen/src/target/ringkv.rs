//! The ringkv driver: operations go through `store::client` with the point's W and R.
//!
//! Writes and deletes carry the causal context the client last saw for the key (from the last
//! get, put or delete of that key), so each supersedes the version it knows of, as an
//! application would; blind writes would pile up siblings and measure sibling growth instead of
//! the store. A read-modify-write is a get followed by a put with the context the get returned.

use std::cell::RefCell;
use std::time::Duration;

use bytes::Bytes;
use store::client::{Client, ClientError, ClientOptions, Consistency};

use super::{OpError, Target};
use crate::generator::{OpKind, OpSpec};

/// How to reach the cluster and with what consistency.
#[derive(Debug, Clone)]
pub struct RingkvOptions {
    /// Any node(s) of the cluster.
    pub endpoints: Vec<String>,
    /// Per-request deadline (client side and sent to the coordinator).
    pub timeout: Duration,
    /// HTTP/2 connections per node.
    pub connections: usize,
    /// Write quorum.
    pub write_quorum: u32,
    /// Read quorum.
    pub read_quorum: u32,
    /// Count hinted writes towards W (`None`: the cluster's default).
    pub sloppy: Option<bool>,
    /// Keys in the workload (sizes the context table; it grows for `latest` inserts).
    pub key_count: u64,
    /// Node processes to sample (empty for an existing cluster).
    pub pids: Vec<u32>,
}

/// A connected ringkv client plus the per-key causal contexts it has seen.
pub struct RingkvTarget {
    client: Client,
    consistency: Consistency,
    contexts: RefCell<Vec<Option<Bytes>>>,
    pids: Vec<u32>,
}

fn op_error(e: ClientError) -> OpError {
    match e.code() {
        Some(tonic::Code::DeadlineExceeded) => OpError::Timeout,
        _ => OpError::Failed(e.to_string()),
    }
}

impl RingkvTarget {
    /// Connects to the cluster.
    pub async fn connect(opts: &RingkvOptions) -> Result<RingkvTarget, String> {
        let client = Client::connect(
            &opts.endpoints,
            ClientOptions {
                timeout: opts.timeout,
                token_aware: true,
                connections: opts.connections.max(1),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let table = usize::try_from(opts.key_count)
            .unwrap_or(usize::MAX)
            .min(1 << 26);
        Ok(RingkvTarget {
            client,
            consistency: Consistency {
                w: Some(opts.write_quorum),
                r: Some(opts.read_quorum),
                sloppy: opts.sloppy,
                timeout: Some(opts.timeout),
            },
            contexts: RefCell::new(vec![None; table]),
            pids: opts.pids.clone(),
        })
    }

    fn context(&self, key: u64) -> Option<Bytes> {
        let i = usize::try_from(key).ok()?;
        self.contexts.borrow().get(i).cloned().flatten()
    }

    fn remember(&self, key: u64, context: Bytes) {
        let Ok(i) = usize::try_from(key) else { return };
        let mut table = self.contexts.borrow_mut();
        if i >= table.len() {
            if i >= 1 << 26 {
                return;
            }
            table.resize(i + 1, None);
        }
        if let Some(slot) = table.get_mut(i) {
            // A decoded `Bytes` field shares the whole receive buffer (value, frame, and
            // neighbouring messages): keeping it for every key held ~5 KB per key. Keep a copy
            // of just the context.
            *slot = (!context.is_empty()).then(|| Bytes::copy_from_slice(&context));
        }
    }
}

impl Target for RingkvTarget {
    fn name(&self) -> &'static str {
        "ringkv"
    }

    async fn execute(&self, op: OpSpec, key: &[u8], value: &[u8]) -> Result<(), OpError> {
        let c = &self.consistency;
        match op.kind {
            OpKind::Read => {
                let r = self.client.get(key, c).await.map_err(op_error)?;
                self.remember(op.key_index, r.context);
            }
            OpKind::Write => {
                let ctx = self.context(op.key_index);
                let r = self
                    .client
                    .put(key, value, ctx.as_deref(), c)
                    .await
                    .map_err(op_error)?;
                self.remember(op.key_index, r.context);
            }
            OpKind::Delete => {
                let ctx = self.context(op.key_index);
                let r = self
                    .client
                    .delete(key, ctx.as_deref(), c)
                    .await
                    .map_err(op_error)?;
                self.remember(op.key_index, r.context);
            }
            OpKind::ReadModifyWrite => {
                let got = self.client.get(key, c).await.map_err(op_error)?;
                let ctx = (!got.context.is_empty()).then_some(got.context);
                let r = self
                    .client
                    .put(key, value, ctx.as_deref(), c)
                    .await
                    .map_err(op_error)?;
                self.remember(op.key_index, r.context);
            }
        }
        Ok(())
    }

    fn pids(&self) -> Vec<u32> {
        self.pids.clone()
    }
}
