//! Failure detection with SWIM (the `foca` crate), carried over gRPC.
//!
//! foca does no I/O of its own: one task owns the `Foca` instance and feeds it
//! datagrams (from the `Replica.Gossip` RPC) and timer events; whatever foca
//! wants sent goes out as a `Gossip` call to the peer; its notifications
//! update [`Membership`](super::Membership), which the coordinator consults.
//!
//! An identity is `(node id, address, epoch)`, where the epoch is the start
//! time of the process: a restarted node wins the address conflict with its
//! old, possibly Down, identity and rejoins at once instead of waiting for
//! the cluster to forget it. SWIM's suspicion stage (a suspect member has
//! `suspect_timeout_ms` to refute before it is declared down) keeps the
//! detector from flapping on one lost probe.

use std::collections::BTreeSet;
use std::num::{NonZeroU8, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use foca::{
    AccumulatingRuntime, Config, Foca, Identity, OwnedNotification, PostcardCodec, State, Timer,
};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::FailureConfig;
use crate::proto::GossipPacket;
use crate::proto::replica_client::ReplicaClient;

use super::peers::FROM_HEADER;
use super::{Cluster, MemberState};

/// How often the gossip task re-announces to ring members it has not heard of.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(2);
/// Deadline of one gossip datagram call.
const SEND_TIMEOUT: Duration = Duration::from_millis(500);

/// A member's SWIM identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Node id.
    pub id: String,
    /// gRPC address.
    pub address: String,
    /// Process start time (ms); a newer process wins over an older one.
    pub epoch: u64,
}

impl Identity for NodeIdentity {
    type Addr = String;

    fn renew(&self) -> Option<Self> {
        Some(NodeIdentity {
            epoch: self.epoch + 1,
            ..self.clone()
        })
    }

    fn addr(&self) -> String {
        self.id.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.epoch > adversary.epoch
    }
}

/// Feeds received datagrams to the gossip task.
#[derive(Clone, Debug)]
pub struct GossipInbox(mpsc::Sender<Bytes>);

impl GossipInbox {
    /// Hand a received datagram to foca (dropped if the task is busy: SWIM
    /// tolerates loss).
    pub fn deliver(&self, data: Bytes) {
        let _ = self.0.try_send(data);
    }
}

enum Input {
    Data(Bytes),
    Timer(Timer<NodeIdentity>),
    Announce,
}

fn foca_config(f: &FailureConfig, members: usize) -> Config {
    let period = Duration::from_millis(f.probe_period_ms.max(50));
    let mut c = Config::simple();
    c.probe_period = period;
    c.probe_rtt = period / 3;
    c.num_indirect_probes = NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN);
    c.max_transmissions = NonZeroU8::new(((members as f64).log2().ceil() as u8).saturating_add(4))
        .unwrap_or(NonZeroU8::MIN);
    c.suspect_to_down_after = Duration::from_millis(f.suspect_timeout_ms.max(1));
    c.remove_down_after = Some(Duration::from_secs(3600));
    c.notify_down_members = true;
    c.periodic_announce_to_down_members = Some(foca::PeriodicParams {
        frequency: period * 4,
        num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
    });
    c
}

fn state_of(s: State) -> MemberState {
    match s {
        State::Alive => MemberState::Alive,
        State::Suspect => MemberState::Suspect,
        State::Down => MemberState::Down,
    }
}

/// Start failure detection for this node. Returns the inbox the `Gossip`
/// RPC delivers to.
pub fn start(cluster: Arc<Cluster>, address: String, cfg: FailureConfig) -> GossipInbox {
    let (data_tx, mut data_rx) = mpsc::channel::<Bytes>(1024);
    let (input_tx, mut input_rx) = mpsc::channel::<Input>(1024);
    let me = NodeIdentity {
        id: cluster.me().to_string(),
        address,
        epoch: crate::version::now_millis(),
    };
    let members = cluster.ring().members().len();
    let rng: StdRng = rand::make_rng();
    let mut foca = Foca::new(me.clone(), foca_config(&cfg, members), rng, PostcardCodec);

    let fwd = input_tx.clone();
    tokio::spawn(async move {
        while let Some(d) = data_rx.recv().await {
            if fwd.send(Input::Data(d)).await.is_err() {
                break;
            }
        }
    });
    let tick = input_tx.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(ANNOUNCE_EVERY);
        loop {
            every.tick().await;
            if tick.send(Input::Announce).await.is_err() {
                break;
            }
        }
    });

    tokio::spawn(async move {
        let mut runtime = AccumulatingRuntime::new();
        while let Some(input) = input_rx.recv().await {
            let result = match input {
                Input::Data(d) => foca.handle_data(&d, &mut runtime),
                Input::Timer(t) => foca.handle_timer(t, &mut runtime),
                Input::Announce => {
                    // Announce to ring members foca has not met (start-up, a
                    // join, or a member it forgot).
                    let known: BTreeSet<String> =
                        foca.iter_members().map(|m| m.id().id.clone()).collect();
                    let ring = cluster.ring();
                    for m in ring.members() {
                        if m.id != me.id && !known.contains(&m.id) {
                            let dst = NodeIdentity {
                                id: m.id.clone(),
                                address: m.address.clone(),
                                epoch: 0,
                            };
                            let _ = foca.announce(dst, &mut runtime);
                        }
                    }
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "gossip: ignored foca error");
            }
            while let Some((dst, data)) = runtime.to_send() {
                send(&cluster, &me.id, dst, data);
            }
            while let Some((after, timer)) = runtime.to_schedule() {
                let tx = input_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send(Input::Timer(timer)).await;
                });
            }
            while let Some(n) = runtime.to_notify() {
                match n {
                    OwnedNotification::MemberUp(id) => {
                        tracing::info!(member = %id.id, "member up");
                        cluster.membership().set(&id.id, MemberState::Alive, 0);
                    }
                    OwnedNotification::MemberDown(id) => {
                        tracing::warn!(member = %id.id, "member down");
                        cluster.membership().set(&id.id, MemberState::Down, 0);
                    }
                    OwnedNotification::Rename(_, id) => {
                        tracing::info!(member = %id.id, epoch = id.epoch, "member restarted");
                    }
                    OwnedNotification::Defunct => {
                        tracing::warn!("this node was declared down; rejoining");
                    }
                    _ => {}
                }
            }
            // States and incarnations (suspect is not a notification).
            for m in foca.iter_membership_state() {
                cluster.membership().set(
                    &m.id().id,
                    state_of(m.state()),
                    u64::from(m.incarnation()),
                );
            }
        }
    });
    GossipInbox(data_tx)
}

fn send(cluster: &Arc<Cluster>, me: &str, dst: NodeIdentity, data: Bytes) {
    if cluster.faults().blocks(&dst.id) {
        return;
    }
    let Some(peer) = cluster.peers().get(&dst.id, &dst.address) else {
        return;
    };
    let from = me.to_string();
    tokio::spawn(async move {
        let mut client = ReplicaClient::new(peer.channel());
        let mut req = tonic::Request::new(GossipPacket {
            from: from.clone(),
            data,
        });
        req.set_timeout(SEND_TIMEOUT);
        if let Ok(v) = from.parse() {
            req.metadata_mut().insert(FROM_HEADER, v);
        }
        let _ = tokio::time::timeout(SEND_TIMEOUT, client.gossip(req)).await;
    });
}
