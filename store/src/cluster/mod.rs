//! Talking to other nodes: the ring in force, pipelined peer connections,
//! membership and failure detection, and the fault layer tests switch.
//!
//! [`Cluster::send`] is the one way to ask a replica — this node's own or a
//! peer's — to apply a replica operation; local operations skip the network
//! but run the same code ([`apply_local`]) the server runs for peers.

pub mod anti_entropy;
pub mod cleanup;
pub mod executor;
pub mod faults;
pub mod gossip;
pub mod handoff;
pub mod membership;
mod pace;
pub mod peers;
pub mod rebalance;
pub mod topology;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::FailureConfig;
use crate::proto::{ReplicaResponse, replica_request, replica_response};
use crate::replica::{Replica, ReplicaError};
use crate::ring::{Ring, RingMember};
use crate::version::{VersionSet, VersionVector};

pub use faults::Faults;
pub use membership::{MemberState, Membership};
pub use peers::{PeerError, PeerPool};
pub use topology::{Topology, TopologyError};

/// This node's view of the cluster.
pub struct Cluster {
    me: String,
    topology: Topology,
    peers: PeerPool,
    faults: Faults,
    membership: Membership,
    replica: Arc<Replica>,
    gossip: std::sync::OnceLock<gossip::GossipInbox>,
    failure: FailureConfig,
    write_quorum: u32,
    pacer: handoff::HandoffPacer,
    anti_entropy: anti_entropy::AntiEntropyStats,
    transfer: rebalance::TransferStats,
    executor: executor::Executor,
}

impl Cluster {
    /// Wire up the cluster view of node `me`, reaching its peers through `peers` (whose
    /// fault switches it shares). `write_quorum` is the default W (range transfers read
    /// from enough replicas to meet every write quorum).
    pub fn new(
        me: &str,
        topology: Topology,
        replica: Arc<Replica>,
        peers: PeerPool,
        failure: FailureConfig,
        write_quorum: u32,
        executor: executor::Executor,
    ) -> Self {
        let faults = peers.faults().clone();
        Cluster {
            executor,
            me: me.to_string(),
            topology,
            peers,
            membership: Membership::new(me),
            faults,
            replica,
            gossip: std::sync::OnceLock::new(),
            pacer: handoff::HandoffPacer::new(failure.hint_replay_per_sec),
            failure,
            write_quorum,
            anti_entropy: anti_entropy::AntiEntropyStats::default(),
            transfer: rebalance::TransferStats::default(),
        }
    }

    /// Start the background machinery: failure detection, hint replay,
    /// anti-entropy (with ring sync) and tombstone purge.
    pub fn start_background(self: &Arc<Self>, address: String) {
        if self.gossip.get().is_none() {
            let inbox = gossip::start(self.clone(), address, self.failure.clone());
            let _ = self.gossip.set(inbox);
        }
        handoff::start(self.clone(), self.failure.clone());
        anti_entropy::start(self.clone(), self.failure.clone());
        cleanup::start(self.clone());
    }

    /// The local replica executor (batched engine access).
    pub fn executor(&self) -> &executor::Executor {
        &self.executor
    }

    /// Failure-handling settings.
    pub fn failure_config(&self) -> &FailureConfig {
        &self.failure
    }

    /// Default W.
    pub fn write_quorum(&self) -> u32 {
        self.write_quorum
    }

    /// The receiver side of hinted handoff.
    pub fn handoff(&self) -> &handoff::HandoffPacer {
        &self.pacer
    }

    /// Anti-entropy counters.
    pub fn anti_entropy(&self) -> &anti_entropy::AntiEntropyStats {
        &self.anti_entropy
    }

    /// Range-transfer counters.
    pub fn transfer(&self) -> &rebalance::TransferStats {
        &self.transfer
    }

    /// Adopt a newer ring (persisted) and rebuild the Merkle index for the
    /// segments this node now replicates. Returns whether it was adopted.
    pub async fn adopt_ring(&self, desc: crate::ring::RingDescription) -> Result<bool, String> {
        let adopted = self.topology.adopt(desc).map_err(|e| e.to_string())?;
        if adopted {
            tracing::info!(version = self.ring().version(), "adopted a new ring");
            self.rebuild_merkle().await?;
        }
        Ok(adopted)
    }

    /// Rebuild the Merkle index for the segments this node replicates.
    pub async fn rebuild_merkle(&self) -> Result<(), String> {
        let ring = self.ring();
        let segments = match ring.index_of(&self.me) {
            Some(me) => ring.segments_replicated_by(me),
            None => Vec::new(),
        };
        let replica = self.replica.clone();
        tokio::task::spawn_blocking(move || replica.rebuild_merkle(&segments))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Hand a gossip datagram from `from` to failure detection.
    pub fn deliver_gossip(&self, from: &str, data: Bytes) {
        if self.faults.blocks(from) {
            return;
        }
        if let Some(inbox) = self.gossip.get() {
            inbox.deliver(data);
        }
    }

    /// This node's id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The ring in force.
    pub fn ring(&self) -> Arc<Ring> {
        self.topology.ring()
    }

    /// The versioned ring holder.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The local replica.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// Fault switchboard.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Membership states (failure detection).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Peer connections.
    pub fn peers(&self) -> &PeerPool {
        &self.peers
    }

    /// Whether a member should be sent requests: this node always; a peer
    /// unless failure detection says down, the transport cannot reach it, or a
    /// fault cuts it off.
    pub fn is_available(&self, member: &RingMember) -> bool {
        if member.id == self.me {
            return true;
        }
        if self.faults.blocks(&member.id) {
            return false;
        }
        if self.membership.state(&member.id) == MemberState::Down {
            return false;
        }
        self.peers
            .get(&member.id, &member.address)
            .is_none_or(|p| p.is_reachable())
    }

    fn executor_stopped(&self) -> PeerError {
        PeerError::Remote {
            peer: self.me.clone(),
            message: "the local replica executor has stopped".into(),
            invalid: false,
            conflict: false,
        }
    }

    /// Ask `member` to apply `op`; local ops go to the replica executor.
    pub async fn send(
        &self,
        member: &RingMember,
        op: replica_request::Op,
        timeout: Duration,
    ) -> Result<ReplicaResponse, PeerError> {
        if member.id == self.me {
            if let Some(resp) = self.fetch_from_memory(&op) {
                return peers::check_response(&self.me, resp);
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let stopped = || self.executor_stopped();
            let run = async {
                let reply: executor::Reply = Box::new(move |resp| {
                    let _ = tx.send(resp);
                });
                if !self.executor.submit(op, reply).await {
                    return Err(stopped());
                }
                rx.await.map_err(|_| stopped())
            };
            return match tokio::time::timeout(timeout, run).await {
                Err(_) => Err(PeerError::Timeout(self.me.clone())),
                Ok(Err(e)) => Err(e),
                Ok(Ok(resp)) => peers::check_response(&self.me, resp),
            };
        }
        let peer =
            self.peers
                .get(&member.id, &member.address)
                .ok_or_else(|| PeerError::Unreachable {
                    peer: member.id.clone(),
                    reason: format!("bad address {:?}", member.address),
                })?;
        peer.call(op, timeout).await
    }
}

/// A local coordinated write whose version set is applied but not yet durable.
pub struct Minted {
    /// The key's version set after the write.
    pub set: VersionSet,
    /// Its encoding, ready to send to the other replicas.
    pub encoded: Bytes,
    /// Answers once the write is durable locally (or failed).
    pub durable: tokio::sync::oneshot::Receiver<ReplicaResponse>,
}

impl Cluster {
    /// Coordinate a write on this node's replica, returning as soon as the new
    /// version set is applied, so it can be sent to the other replicas while
    /// the local fsync runs. `op` must be a hint-free `Coordinate`; anything
    /// else is answered only when done, as an error.
    pub async fn coordinate_local(
        &self,
        op: replica_request::Op,
        timeout: Duration,
    ) -> Result<Minted, PeerError> {
        let (minted_tx, minted_rx) = tokio::sync::oneshot::channel::<(VersionSet, Bytes)>();
        let (reply_tx, mut reply_rx) = tokio::sync::oneshot::channel::<ReplicaResponse>();
        let stopped = || self.executor_stopped();
        let run = async {
            let reply: executor::Reply = Box::new(move |resp| {
                let _ = reply_tx.send(resp);
            });
            let minted: executor::Minted = Box::new(move |set, encoded| {
                let _ = minted_tx.send((set.clone(), encoded.clone()));
            });
            if !self.executor.submit_with(op, reply, Some(minted)).await {
                return Err(stopped());
            }
            match minted_rx.await {
                Ok((set, encoded)) => Ok(Some((set, encoded))),
                // Not applied: the answer says why.
                Err(_) => match (&mut reply_rx).await {
                    Ok(resp) => peers::check_response(&self.me, resp).map(|_| None),
                    Err(_) => Err(stopped()),
                },
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Err(_) => Err(PeerError::Timeout(self.me.clone())),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Some((set, encoded)))) => Ok(Minted {
                set,
                encoded,
                durable: reply_rx,
            }),
            Ok(Ok(None)) => Err(PeerError::Remote {
                peer: self.me.clone(),
                message: "the write was not applied".into(),
                invalid: false,
                conflict: false,
            }),
        }
    }
}

impl Cluster {
    /// Answers a `Fetch` on the calling thread when the local replica has the key's set in
    /// memory (memtables or block cache), skipping the executor; `None` otherwise (another
    /// operation, or a read that needs the disk: the executor's threads do those).
    pub fn fetch_from_memory(&self, op: &replica_request::Op) -> Option<ReplicaResponse> {
        let replica_request::Op::Fetch(f) = op else {
            return None;
        };
        match self.replica.fetch_raw_cached(&f.key) {
            Ok(Some(raw)) => Some(respond(Ok(raw.map(Bytes::from).unwrap_or_default()))),
            Ok(None) => None,
            Err(e) => Some(respond(Err(ApplyError::from(e)))),
        }
    }
}

/// Apply one replica operation to the local replica (blocking: engine I/O).
/// The server's pipeline handler and [`Cluster::send`] both use this.
pub fn apply_local(replica: &Replica, op: replica_request::Op) -> ReplicaResponse {
    let result = match op {
        replica_request::Op::Coordinate(c) => {
            coordinate(replica, c).map(|set| Bytes::from(set.encode()))
        }
        replica_request::Op::Merge(m) => VersionSet::decode(&m.versions)
            .map_err(ApplyError::from)
            .and_then(|incoming| {
                let hint = (!m.hint_for.is_empty()).then_some(m.hint_for.as_str());
                replica
                    .merge(&m.key, &incoming, hint)
                    .map_err(ApplyError::from)
            })
            // The coordinator only needs the ack; skip re-encoding.
            .map(|_| Bytes::new()),
        replica_request::Op::Purge(p) => replica
            .schedule_purge(&p.key, p.digest, p.due_ms)
            .map(|()| Bytes::new())
            .map_err(ApplyError::from),
        replica_request::Op::Fetch(f) => replica
            .fetch_raw(&f.key)
            .map(|raw| raw.map(Bytes::from).unwrap_or_default())
            .map_err(ApplyError::from),
    };
    respond(result)
}

/// The answer to one replica operation (its `id` is set by the caller).
fn respond(result: Result<Bytes, ApplyError>) -> ReplicaResponse {
    match result {
        Ok(versions) => ReplicaResponse {
            id: 0,
            result: Some(replica_response::Result::Versions(versions)),
            invalid: false,
            conflict: false,
        },
        Err(e) => ReplicaResponse {
            id: 0,
            invalid: matches!(e, ApplyError::Invalid(_)),
            conflict: matches!(e, ApplyError::Replica(ReplicaError::TooManySiblings(_))),
            result: Some(replica_response::Result::Error(e.to_string())),
        },
    }
}

/// The causal context a coordinated write carries.
fn decode_context(bytes: &[u8]) -> Result<VersionVector, ApplyError> {
    VersionVector::decode_context(bytes)
        .map_err(|e| ApplyError::Invalid(format!("causal context: {e}")))
}

fn coordinate(replica: &Replica, c: crate::proto::CoordinatePut) -> Result<VersionSet, ApplyError> {
    let context = decode_context(&c.context)?;
    let value = (!c.tombstone).then_some(c.value);
    let hint = (!c.hint_for.is_empty()).then_some(c.hint_for.as_str());
    Ok(replica.coordinate_put(&c.key, value, &context, c.timestamp_ms, hint)?)
}

#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error("{0}")]
    Invalid(String),
    /// The operation was lost to a failure of this node (an executor panic); another
    /// replica may take it.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

impl From<crate::version::DecodeError> for ApplyError {
    fn from(e: crate::version::DecodeError) -> Self {
        ApplyError::Invalid(format!("version set: {e}"))
    }
}
