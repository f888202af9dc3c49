//! The ringkv driver: operations go through `store::client` with the point's W and R.
//!
//! Writes and deletes carry the causal context the client last saw for the key (from the last
//! get, put or delete of that key), so each supersedes the version it knows of, as an
//! application would; blind writes would pile up siblings and measure sibling growth instead of
//! the store. A read-modify-write is a get followed by a put with the context the get returned.

use std::cell::RefCell;
use std::time::Duration;

use bytes::Bytes;
use store::client::{Client, ClientError, ClientOptions, ClientSecurity, Consistency};

use super::{OpError, Seen, Target};
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
    /// Driver threads for the sessions' I/O; 0 runs it on the runner's thread.
    pub driver_threads: usize,
    /// The CA to trust and the token to present.
    pub security: ClientSecurity,
    /// Which node coordinates each request.
    pub routing: store::client::Routing,
    /// Hedged reads (`client.hedge_reads_after`).
    pub hedge_reads_after: Option<std::time::Duration>,
}

/// Operations per second one driver thread is sized for. Measured: the client costs about
/// 10–20 µs of CPU per operation, so one thread saturates near 50k ops/s; this leaves room.
pub const OPS_PER_DRIVER_THREAD: f64 = 25_000.0;

/// Driver threads for an open loop at `rate` ops/s (closed loops: `None`): none (the
/// runner's own thread) while one thread keeps up, else one per [`OPS_PER_DRIVER_THREAD`].
pub fn driver_threads_for(rate: Option<f64>) -> usize {
    match rate {
        Some(r) if r > OPS_PER_DRIVER_THREAD => {
            let n = (r / OPS_PER_DRIVER_THREAD).ceil();
            if n.is_finite() {
                (n as usize).min(MAX_DRIVER_THREADS)
            } else {
                MAX_DRIVER_THREADS
            }
        }
        _ => 0,
    }
}

/// The most driver threads a target starts.
pub const MAX_DRIVER_THREADS: usize = 16;

/// One driver thread: its runtime runs the connection and reader tasks of its client.
struct Driver {
    client: Option<Client>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts one driver thread and connects its client there.
async fn start_driver(
    i: usize,
    endpoints: Vec<String>,
    copts: ClientOptions,
) -> Result<Driver, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a driver runtime: {e}"))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (client_tx, client_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("loadgen-driver-{i}"))
        .spawn(move || {
            rt.block_on(async move {
                let _ = client_tx.send(Client::connect(&endpoints, copts).await);
                let _ = stop_rx.await;
            });
        })
        .map_err(|e| format!("cannot start a driver thread: {e}"))?;
    let mut driver = Driver {
        client: None,
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    // On an error the driver is dropped here, which stops its thread.
    driver.client = Some(match client_rx.await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("the driver thread stopped".into()),
    });
    Ok(driver)
}

/// A connected ringkv client plus the per-key causal contexts it has seen.
pub struct RingkvTarget {
    /// The client on the runner's thread (`driver_threads = 0`), else one per driver.
    clients: Vec<Client>,
    drivers: Vec<Driver>,
    next: std::cell::Cell<usize>,
    consistency: Consistency,
    contexts: RefCell<Vec<Option<Bytes>>>,
    pids: Vec<u32>,
}

fn op_error(e: ClientError) -> OpError {
    if e.is_indeterminate() {
        return OpError::Indeterminate(e.to_string());
    }
    match e.code() {
        Some(tonic::Code::DeadlineExceeded) => OpError::Timeout,
        Some(tonic::Code::Aborted) => OpError::Conflict(e.to_string()),
        _ => OpError::Failed(e.to_string()),
    }
}

impl RingkvTarget {
    /// Connects to the cluster.
    pub async fn connect(opts: &RingkvOptions) -> Result<RingkvTarget, String> {
        let copts = ClientOptions {
            timeout: opts.timeout,
            routing: opts.routing,
            connections: opts.connections.max(1),
            security: opts.security.clone(),
            hedge_reads_after: opts.hedge_reads_after,
        };
        let threads = opts.driver_threads.min(MAX_DRIVER_THREADS);
        let mut drivers = Vec::with_capacity(threads);
        for i in 0..threads {
            drivers.push(start_driver(i, opts.endpoints.clone(), copts.clone()).await?);
        }
        let clients = if drivers.is_empty() {
            vec![
                Client::connect(&opts.endpoints, copts)
                    .await
                    .map_err(|e| e.to_string())?,
            ]
        } else {
            drivers.iter().filter_map(|d| d.client.clone()).collect()
        };
        let table = usize::try_from(opts.key_count)
            .unwrap_or(usize::MAX)
            .min(1 << 26);
        Ok(RingkvTarget {
            clients,
            drivers,
            next: std::cell::Cell::new(0),
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

    /// The client for the next request (round-robin over the drivers).
    fn client(&self) -> &Client {
        let i = self.next.get();
        self.next.set(i.wrapping_add(1));
        let n = self.clients.len().max(1);
        // `clients` is never empty: `connect` fails instead.
        &self.clients[i % n]
    }

    /// Driver threads running the sessions (0: the runner's thread).
    pub fn driver_threads(&self) -> usize {
        self.drivers.len()
    }

    fn context(&self, key: u64) -> Option<Bytes> {
        let i = usize::try_from(key).ok()?;
        self.contexts.borrow().get(i).cloned().flatten()
    }

    fn remember(&self, key: u64, context: &Bytes) {
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
            *slot = (!context.is_empty()).then(|| Bytes::copy_from_slice(context));
        }
    }
}

impl Target for RingkvTarget {
    fn name(&self) -> &'static str {
        "ringkv"
    }

    async fn execute(&self, op: OpSpec, key: &[u8], value: &[u8]) -> Result<Seen, OpError> {
        let c = &self.consistency;
        let seen = match op.kind {
            OpKind::Read => {
                let r = self.client().get(key, c).await.map_err(op_error)?;
                self.remember(op.key_index, &r.context);
                Seen::Read {
                    empty: r.versions.iter().all(|v| v.tombstone),
                    context: r.context,
                }
            }
            OpKind::Write => {
                let ctx = self.context(op.key_index);
                let r = self
                    .client()
                    .put(key, value, ctx.as_deref(), c)
                    .await
                    .map_err(op_error)?;
                self.remember(op.key_index, &r.context);
                Seen::Wrote {
                    dot: r.dot,
                    context: r.context,
                    sent: ctx,
                }
            }
            OpKind::Delete => {
                let ctx = self.context(op.key_index);
                let r = self
                    .client()
                    .delete(key, ctx.as_deref(), c)
                    .await
                    .map_err(op_error)?;
                self.remember(op.key_index, &r.context);
                Seen::Wrote {
                    dot: r.dot,
                    context: r.context,
                    sent: ctx,
                }
            }
            OpKind::ReadModifyWrite => {
                let got = self.client().get(key, c).await.map_err(op_error)?;
                let ctx = (!got.context.is_empty()).then_some(got.context);
                let r = self
                    .client()
                    .put(key, value, ctx.as_deref(), c)
                    .await
                    .map_err(op_error)?;
                self.remember(op.key_index, &r.context);
                Seen::Wrote {
                    dot: r.dot,
                    context: r.context,
                    sent: ctx,
                }
            }
        };
        Ok(seen)
    }

    fn context_of(&self, key_index: u64) -> Option<Bytes> {
        self.context(key_index)
    }

    fn pids(&self) -> Vec<u32> {
        self.pids.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_with_an_unknown_outcome_is_told_apart() {
        let e = ClientError::Indeterminate {
            reason: "connection lost".into(),
        };
        assert!(matches!(op_error(e), OpError::Indeterminate(_)));
        let e = ClientError::Status(tonic::Status::unavailable("quorum"));
        assert!(matches!(op_error(e), OpError::Failed(_)));
        let e = ClientError::Status(tonic::Status::deadline_exceeded("late"));
        assert!(matches!(op_error(e), OpError::Timeout));
        let e = ClientError::Status(tonic::Status::aborted("too many concurrent versions"));
        assert!(matches!(op_error(e), OpError::Conflict(_)));
    }
}
