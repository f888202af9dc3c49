//! Pipelined connections to peer nodes.
//!
//! Each peer gets one long-lived `Replica.Pipeline` stream driven by one task.
//! Callers hand the driver a request and a oneshot; the driver tags it with an
//! id, writes it into the stream and routes the tagged answer back. Many
//! requests are in flight on one HTTP/2 stream, so the coordinator pays one
//! stream message per replica per request, not one unary call (about 50k
//! unary calls/s is the loopback ceiling; a stream carries millions of items).
//!
//! When the peer is unreachable the driver fails queued requests at once
//! (`Unreachable`) and redials with capped backoff, so a down node costs a
//! quick error rather than a timeout.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::config::MAX_MESSAGE_BYTES;
use crate::proto::replica_client::ReplicaClient;
use crate::proto::{ReplicaRequest, ReplicaResponse, replica_request};

use super::faults::Faults;

/// Metadata header naming the calling node on node-to-node calls.
pub const FROM_HEADER: &str = "x-ringkv-from";
/// Requests queued per peer before callers wait.
const QUEUE_DEPTH: usize = 4096;
/// Longest pause between redials of an unreachable peer. Short, because while a peer is
/// unreachable requests leave it out; a peer that comes up (a restart, a cluster starting)
/// is used again within this long.
const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// Time allowed to establish a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a call to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// No connection to the peer right now.
    #[error("{peer} is unreachable: {reason}")]
    Unreachable {
        /// Peer id.
        peer: String,
        /// Last connection error.
        reason: String,
    },
    /// The connection broke while the request was in flight.
    #[error("connection to {0} was lost with the request in flight")]
    Disconnected(String),
    /// No answer before the deadline.
    #[error("{0} did not answer in time")]
    Timeout(String),
    /// The peer answered with an error.
    #[error("{peer} refused: {message}")]
    Remote {
        /// Peer id.
        peer: String,
        /// Its message.
        message: String,
        /// The request itself is bad; no other replica would take it.
        invalid: bool,
        /// A write refused at the sibling bound: the key holds too many concurrent
        /// versions; nothing changed.
        conflict: bool,
    },
}

type Reply = oneshot::Sender<Result<ReplicaResponse, PeerError>>;

/// One peer: a queue into its driver task, plus reachability.
#[derive(Debug)]
pub struct Peer {
    id: String,
    address: String,
    queue: mpsc::Sender<(replica_request::Op, Reply)>,
    reachable: Arc<AtomicBool>,
    channel: Channel,
}

impl Peer {
    fn spawn(
        me: &str,
        id: &str,
        address: &str,
        faults: Faults,
        tls: Option<&ClientTlsConfig>,
        local_address: Option<IpAddr>,
    ) -> Option<Arc<Peer>> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .ok()?
            .local_address(local_address);
        if let Some(tls) = tls {
            endpoint = match endpoint.tls_config(tls.clone()) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(peer = id, error = %e, "cannot set up TLS to this peer");
                    return None;
                }
            };
        }
        let endpoint = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let channel = endpoint.connect_lazy();
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let reachable = Arc::new(AtomicBool::new(true));
        let driver = Driver {
            me: me.to_string(),
            id: id.to_string(),
            endpoint,
            reachable: reachable.clone(),
            faults,
            next_id: AtomicU64::new(1),
        };
        tokio::spawn(driver.run(rx));
        Some(Arc::new(Peer {
            id: id.to_string(),
            address: address.to_string(),
            queue: tx,
            reachable,
            channel,
        }))
    }

    /// Peer id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Peer address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether the last connection attempt succeeded.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// A plain channel for unary and streaming calls off the hot path.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Send one request down the pipeline and wait for its answer.
    pub async fn call(
        &self,
        op: replica_request::Op,
        timeout: Duration,
    ) -> Result<ReplicaResponse, PeerError> {
        let (tx, rx) = oneshot::channel();
        let send = self.queue.send((op, tx));
        let answer = async {
            send.await
                .map_err(|_| PeerError::Disconnected(self.id.clone()))?;
            rx.await
                .map_err(|_| PeerError::Disconnected(self.id.clone()))?
        };
        let resp = tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| PeerError::Timeout(self.id.clone()))??;
        check_response(&self.id, resp)
    }
}

/// Turn an error answer into a [`PeerError::Remote`].
pub fn check_response(peer: &str, resp: ReplicaResponse) -> Result<ReplicaResponse, PeerError> {
    if let Some(crate::proto::replica_response::Result::Error(message)) = &resp.result {
        return Err(PeerError::Remote {
            peer: peer.to_string(),
            message: message.clone(),
            invalid: resp.invalid,
            conflict: resp.conflict,
        });
    }
    Ok(resp)
}

struct Driver {
    me: String,
    id: String,
    endpoint: Endpoint,
    reachable: Arc<AtomicBool>,
    faults: Faults,
    next_id: AtomicU64,
}

impl Driver {
    async fn run(self, mut queue: mpsc::Receiver<(replica_request::Op, Reply)>) {
        let mut backoff = Duration::from_millis(20);
        loop {
            if self.faults.blocks(&self.id) {
                self.reachable.store(false, Ordering::Relaxed);
                if !self
                    .fail_queued(&mut queue, "partitioned by fault injection", backoff)
                    .await
                {
                    return;
                }
                continue;
            }
            let channel = match self.endpoint.connect().await {
                Ok(c) => c,
                Err(e) => {
                    self.reachable.store(false, Ordering::Relaxed);
                    let reason = format!("connect failed: {e}");
                    if !self.fail_queued(&mut queue, &reason, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            match self.serve(channel, &mut queue).await {
                Serve::QueueClosed => return,
                Serve::Broken(reason) => {
                    self.reachable.store(false, Ordering::Relaxed);
                    tracing::debug!(peer = %self.id, %reason, "pipeline broke; redialing");
                    backoff = Duration::from_millis(20);
                }
            }
        }
    }

    /// Fail everything queued for `pause`; false when the peer was dropped.
    async fn fail_queued(
        &self,
        queue: &mut mpsc::Receiver<(replica_request::Op, Reply)>,
        reason: &str,
        pause: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + pause;
        loop {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Err(_) => return true,
                Ok(None) => return false,
                Ok(Some((_, reply))) => {
                    let _ = reply.send(Err(PeerError::Unreachable {
                        peer: self.id.clone(),
                        reason: reason.to_string(),
                    }));
                }
            }
        }
    }

    async fn serve(
        &self,
        channel: Channel,
        queue: &mut mpsc::Receiver<(replica_request::Op, Reply)>,
    ) -> Serve {
        let (stx, srx) = mpsc::channel::<ReplicaRequest>(QUEUE_DEPTH);
        let mut client = ReplicaClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut request = tonic::Request::new(ReceiverStream::new(srx));
        if let Ok(v) = self.me.parse() {
            request.metadata_mut().insert(FROM_HEADER, v);
        }
        let mut inbound = match client.pipeline(request).await {
            Ok(r) => r.into_inner(),
            Err(status) => return Serve::Broken(status.message().to_string()),
        };
        self.reachable.store(true, Ordering::Relaxed);
        let mut pending: HashMap<u64, Reply> = HashMap::new();
        let mut batch = Vec::with_capacity(64);
        let outcome = loop {
            tokio::select! {
                n = queue.recv_many(&mut batch, 64) => {
                    if n == 0 {
                        break Serve::QueueClosed;
                    }
                    if self.faults.blocks(&self.id) {
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(PeerError::Unreachable {
                                peer: self.id.clone(),
                                reason: "partitioned by fault injection".into(),
                            }));
                        }
                        break Serve::Broken("partitioned by fault injection".into());
                    }
                    for (op, reply) in batch.drain(..) {
                        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                        pending.insert(id, reply);
                        if stx.send(ReplicaRequest { id, op: Some(op) }).await.is_err() {
                            break;
                        }
                    }
                    if pending.len() > QUEUE_DEPTH {
                        // Callers that timed out dropped their receivers.
                        pending.retain(|_, r| !r.is_closed());
                    }
                }
                msg = inbound.message() => match msg {
                    Ok(Some(resp)) => {
                        if let Some(reply) = pending.remove(&resp.id) {
                            let _ = reply.send(Ok(resp));
                        }
                    }
                    Ok(None) => break Serve::Broken("peer closed the stream".into()),
                    Err(status) => break Serve::Broken(status.message().to_string()),
                },
            }
        };
        for (_, reply) in pending.drain() {
            let _ = reply.send(Err(PeerError::Disconnected(self.id.clone())));
        }
        outcome
    }
}

enum Serve {
    QueueClosed,
    Broken(String),
}

/// Connections to every other member, keyed by node id.
#[derive(Debug)]
pub struct PeerPool {
    me: String,
    peers: RwLock<HashMap<String, Arc<Peer>>>,
    faults: Faults,
    /// The CA and this node's certificate; `None` on an insecure node.
    tls: Option<ClientTlsConfig>,
    /// The address peers are dialled from (the node's listen address, when it names one).
    local_address: Option<IpAddr>,
}

impl PeerPool {
    /// An empty pool for node `me`, dialling with `tls` (mutual TLS) when given.
    pub fn new(me: &str, faults: Faults, tls: Option<ClientTlsConfig>) -> Self {
        PeerPool {
            me: me.to_string(),
            peers: RwLock::new(HashMap::new()),
            faults,
            tls,
            local_address: None,
        }
    }

    /// Dial peers from `ip` (the node's own listen address), so a peer sees which node is
    /// calling and a packet filter between node addresses cuts exactly node-to-node traffic.
    pub fn with_local_address(mut self, ip: Option<IpAddr>) -> Self {
        self.local_address = ip;
        self
    }

    /// The fault switches calls go through.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The peer with this id at this address (connecting on first use, and
    /// reconnecting if the address changed).
    pub fn get(&self, id: &str, address: &str) -> Option<Arc<Peer>> {
        if let Some(p) = self.peers.read().get(id)
            && p.address == address
        {
            return Some(p.clone());
        }
        let peer = Peer::spawn(
            &self.me,
            id,
            address,
            self.faults.clone(),
            self.tls.as_ref(),
            self.local_address,
        )?;
        self.peers.write().insert(id.to_string(), peer.clone());
        Some(peer)
    }

    /// Forget peers that are no longer members.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.peers.write().retain(|id, _| keep(id));
    }
}
