//! The node: gRPC services (tonic) over the coordinator and the local replica,
//! and [`run_node`], the one entry point both `ringkv node` and the loadgen's
//! node mode call.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::cluster::anti_entropy::{self, scan_buckets};
use crate::cluster::executor::Executor;
use crate::cluster::handoff::apply_batch;
use crate::cluster::peers::FROM_HEADER;
use crate::cluster::rebalance::{self, Change, ChangeError};
use crate::cluster::{Cluster, Faults, PeerPool, Topology};
use crate::config::{Durability, MAX_MESSAGE_BYTES, NodeConfig};
use crate::coordinator::{Consistency, CoordError, Coordinator, Defaults};
use crate::lsm;
use crate::proto::kv_server::{Kv, KvServer};
use crate::proto::replica_server::{Replica as ReplicaRpc, ReplicaServer};
use crate::proto::{self as pb};
use crate::replica::{Replica, ReplicaOptions};
use crate::ring::{RingMember, Segment};
use crate::security::{NodeSecurity, Role};
use crate::version::VersionSet;
use crate::wire::{ring_from_proto, ring_to_proto};

mod metrics;
pub use metrics::serve_registry;
mod session;

/// Threads serving replica reads that missed memory, apart from the writes' fsyncs.
const READ_THREADS: usize = 2;

/// How long a stopping node lets in-flight requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is unusable (exit code 2).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The listen address is taken.
    #[error(
        "cannot listen on {addr}: {source}; is another node running there? choose another --listen port"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data directory is unusable.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Opening the local store failed.
    #[error("opening the local store failed: {0}")]
    Storage(String),
    /// The gRPC server failed.
    #[error("server error: {0}")]
    Serve(String),
}

impl NodeError {
    /// Whether the error is the user's input (exit code 2) rather than a failure.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            NodeError::Config(_) | NodeError::Bind { .. } | NodeError::DataDir { .. }
        )
    }
}

/// A running node's shared parts.
#[derive(Clone)]
pub struct Node {
    coordinator: Arc<Coordinator>,
    cluster: Arc<Cluster>,
    config: Arc<NodeConfig>,
    /// `None` on an `--insecure` node.
    security: Option<Arc<NodeSecurity>>,
    /// Client request latencies, for `/metrics`.
    requests: Arc<metrics::RequestMetrics>,
}

fn engine_options(cfg: &NodeConfig) -> lsm::Options {
    let mut o = lsm::Options {
        sync: match cfg.durability {
            Durability::Always => lsm::SyncPolicy::Always,
            Durability::Interval => lsm::SyncPolicy::EveryMs(cfg.sync_interval_ms),
            Durability::Never => lsm::SyncPolicy::Never,
        },
        ..lsm::Options::default()
    };
    o.block_cache_bytes = cfg.cache_bytes;
    o.memtable_bytes = cfg.memtable_bytes;
    o
}

fn check_data_dir(path: &std::path::Path) -> Result<(), NodeError> {
    let err = |message: String| NodeError::DataDir {
        path: path.to_path_buf(),
        message,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(err("exists but is not a directory".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Create the node's own directory, but never a whole missing tree:
            // a missing parent is almost always a typo.
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(parent) = parent
                && !parent.is_dir()
            {
                return Err(err(format!(
                    "its parent {} does not exist; create it or choose another --data-dir",
                    parent.display()
                )));
            }
            // Only the node's user may read its data.
            std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                .create(path)
                .map_err(|e| err(format!("cannot create it: {e}")))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// Loads the node's security material, or warns loudly that it runs without.
fn load_security(cfg: &NodeConfig) -> Result<Option<Arc<NodeSecurity>>, NodeError> {
    let paths = cfg
        .security
        .resolve(&cfg.id, &cfg.listen)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let Some(paths) = paths else {
        tracing::warn!(
            node = %cfg.id,
            addr = %cfg.listen,
            "INSECURE: no TLS, no tokens, unsigned contexts; anything that reaches this port can read, change and reconfigure the cluster"
        );
        return Ok(None);
    };
    NodeSecurity::load(&paths, &cfg.id)
        .map(|s| Some(Arc::new(s)))
        .map_err(|e| NodeError::Config(e.to_string()))
}

/// Connections the kernel queues for the node before it accepts them.
const LISTEN_BACKLOG: u32 = 1024;

/// Run a node until `shutdown` resolves, then stop cleanly (drain requests,
/// flush and close the engine). `ready` receives the bound address once the
/// node serves requests.
pub async fn run_node(
    mut cfg: NodeConfig,
    faults: Faults,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), NodeError> {
    cfg.validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let security = load_security(&cfg)?;
    check_data_dir(&cfg.data_dir)?;
    // Claim the address now, so a port in use is reported before anything is
    // opened, but listen only once the node serves: until then a peer or a
    // client that dials this node is refused at once and goes to another
    // replica, instead of waiting in the accept backlog while the engine
    // replays its log (a restart under load showed that as a 100+ ms stall).
    let bind_err = |source| NodeError::Bind {
        addr: cfg.listen,
        source,
    };
    let socket = if cfg.listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(bind_err)?;
    // As std's and tokio's `bind` do: a restart may reuse the port at once.
    socket.set_reuseaddr(true).map_err(bind_err)?;
    socket.bind(cfg.listen).map_err(bind_err)?;
    let bound = socket.local_addr().map_err(bind_err)?;
    if cfg.advertise.is_none() {
        cfg.advertise = Some(bound.to_string());
    }
    let initial = cfg
        .initial_ring()
        .map_err(|e| NodeError::Config(e.to_string()))?;

    let opts = ReplicaOptions {
        node_id: cfg.id.clone(),
        max_key_bytes: crate::config::MAX_KEY_BYTES,
        max_value_bytes: crate::config::MAX_VALUE_BYTES,
        max_siblings: cfg.max_siblings,
        engine: engine_options(&cfg),
    };
    let dir = cfg.data_dir.clone();
    let replica = tokio::task::spawn_blocking(move || Replica::open(&dir, opts))
        .await
        .map_err(|e| NodeError::Storage(e.to_string()))?
        .map_err(|e| NodeError::Storage(e.to_string()))?;
    replica
        .hints()
        .set_max_bytes_per_target(cfg.failure.hint_max_bytes_per_target);
    let replica = Arc::new(replica);
    let topology = Topology::open(&cfg.data_dir, initial).map_err(|e| NodeError::DataDir {
        path: cfg.data_dir.clone(),
        message: e.to_string(),
    })?;
    if topology.ring().index_of(&cfg.id).is_none() {
        tracing::warn!(node = %cfg.id, "this node is not in the ring it holds; it will coordinate but own no data");
    }
    let executor = Executor::start(
        replica.clone(),
        cfg.write_threads,
        READ_THREADS,
        faults.clone(),
    )
    .map_err(|e| NodeError::Storage(format!("cannot start the replica executor: {e}")))?;
    let cluster = Arc::new(Cluster::new(
        &cfg.id,
        topology,
        replica.clone(),
        PeerPool::new(
            &cfg.id,
            faults,
            security.as_ref().map(|s| s.peer_tls.clone()),
        )
        .with_local_address((!cfg.listen.ip().is_unspecified()).then(|| cfg.listen.ip())),
        cfg.failure.clone(),
        cfg.write_quorum,
        executor,
    ));
    cluster.rebuild_merkle().await.map_err(NodeError::Storage)?;
    cluster.start_background(cfg.advertised_address());
    let defaults = Defaults {
        write_quorum: cfg.write_quorum,
        read_quorum: cfg.read_quorum,
        sloppy: cfg.sloppy,
        timeout: cfg.request_timeout(),
        max_key_bytes: crate::config::MAX_KEY_BYTES,
        max_value_bytes: crate::config::MAX_VALUE_BYTES,
        tombstone_grace: Duration::from_millis(cfg.failure.tombstone_grace_ms),
        read_repair_chance: cfg.read_repair_chance.clamp(0.0, 1.0),
    };
    let coordinator = Arc::new(Coordinator::new(cluster.clone(), defaults));
    let node = Node {
        coordinator,
        cluster: cluster.clone(),
        config: Arc::new(cfg.clone()),
        security: security.clone(),
        requests: Arc::default(),
    };
    let metrics_task = match cfg.metrics_listen {
        Some(addr) => {
            let listener = metrics::bind(addr)
                .await
                .map_err(|source| NodeError::Bind { addr, source })?;
            tracing::info!(node = %cfg.id, addr = %addr, "serving /metrics");
            Some(tokio::spawn(metrics::serve(node.clone(), listener)))
        }
        None => None,
    };
    let kv = KvServer::new(node.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let rep = ReplicaServer::new(node.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tracing::info!(node = %cfg.id, addr = %bound, ring_version = cluster.ring().version(), "node serving");
    let listener: TcpListener = socket.listen(LISTEN_BACKLOG).map_err(bind_err)?;
    if let Some(tx) = ready {
        let _ = tx.send(bound);
    }
    // Graceful shutdown waits for open streams, and peers hold long-lived
    // pipeline streams open: stop waiting after SHUTDOWN_GRACE.
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    };
    let grace = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(sec) = &security {
        builder = builder
            .tls_config(sec.server_tls.clone())
            .map_err(|e| NodeError::Config(format!("the TLS material cannot be used: {e}")))?;
    }
    let serve = builder
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .add_service(kv)
        .add_service(rep)
        // Accepted sockets need TCP_NODELAY set here: the builder's setting
        // only applies when tonic binds the listener itself, and Nagle's
        // algorithm would hold multi-segment answers for a delayed ACK (40 ms).
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        );
    let served = tokio::select! {
        r = serve => r,
        () = grace => Ok(()),
    };
    tracing::info!(node = %cfg.id, "shutting down: flushing the engine");
    if let Some(task) = metrics_task {
        task.abort();
    }
    drop(node);
    // Background tasks may still hold the cluster briefly; flush regardless.
    let flushed = tokio::task::spawn_blocking(move || replica.shutdown())
        .await
        .map_err(|e| NodeError::Storage(e.to_string()))?;
    served.map_err(|e| NodeError::Serve(e.to_string()))?;
    flushed.map_err(|e| NodeError::Storage(e.to_string()))?;
    Ok(())
}

impl From<CoordError> for Status {
    fn from(e: CoordError) -> Self {
        match e {
            CoordError::InvalidArgument(m) => Status::invalid_argument(m),
            CoordError::Conflict(m) => Status::aborted(m),
            e @ CoordError::Unavailable { .. } => Status::unavailable(e.to_string()),
            CoordError::Internal(m) => Status::internal(m),
        }
    }
}

fn consistency(c: Option<pb::Consistency>) -> Consistency {
    let c = c.unwrap_or_default();
    Consistency {
        w: (c.w != 0).then_some(c.w),
        r: (c.r != 0).then_some(c.r),
        sloppy: c.sloppy,
        timeout: (c.timeout_ms != 0).then(|| Duration::from_millis(u64::from(c.timeout_ms))),
    }
}

/// The client-facing view of a merged version set: empty when deleted;
/// tombstones kept (flagged) when concurrent with values.
/// A dot on the wire.
fn dot_to_proto(d: crate::version::Dot) -> pb::Dot {
    pb::Dot {
        actor: d.actor,
        counter: d.counter,
    }
}

pub fn versions_for_client(set: &VersionSet) -> Vec<pb::Version> {
    if set.is_deleted() {
        return Vec::new();
    }
    set.siblings()
        .iter()
        .map(|s| pb::Version {
            value: s.value.clone().unwrap_or_default(),
            tombstone: s.is_tombstone(),
            timestamp_ms: s.timestamp_ms,
        })
        .collect()
}

impl Node {
    fn ring_description(&self) -> pb::RingDescription {
        let ring = self.cluster.ring();
        let hints = self.cluster.replica().hints().totals();
        ring_to_proto(ring.description(), |id| {
            let (state, incarnation) = self
                .cluster
                .membership()
                .get(id)
                .map(|(s, i)| (s.as_str(), i))
                .unwrap_or(("alive", 0));
            let pending = hints.get(id).map_or(0, |t| t.count);
            (state.to_string(), incarnation, pending)
        })
    }

    fn stats(&self) -> std::collections::HashMap<String, u64> {
        let mut m = std::collections::HashMap::new();
        let replica = self.cluster.replica();
        for (k, v) in replica.engine().stats().to_pairs() {
            m.insert(format!("engine.{k}"), v);
        }
        let rs = replica.stats();
        for (k, v) in [
            ("coordinated_writes", &rs.coordinated_writes),
            ("merges", &rs.merges),
            ("merges_noop", &rs.merges_noop),
            ("siblings_refused", &rs.siblings_refused),
            ("fetches", &rs.fetches),
            ("tombstones_purged", &rs.tombstones_purged),
            ("cleaned_up", &rs.cleaned_up),
        ] {
            m.insert(format!("replica.{k}"), v.load(Ordering::Relaxed));
        }
        let hs = replica.hints().stats();
        for (k, v) in [
            ("stored", &hs.stored),
            ("refused", &hs.refused),
            ("expired", &hs.expired),
            ("delivered", &hs.delivered),
        ] {
            m.insert(format!("hints.{k}"), v.load(Ordering::Relaxed));
        }
        let pending: u64 = replica.hints().totals().values().map(|t| t.count).sum();
        m.insert("hints.pending".into(), pending);
        m.insert("replica.actor_epoch".into(), replica.epochs().epoch());
        m.insert("merkle.entries".into(), replica.merkle().entries());
        m.insert("merkle.digest".into(), replica.merkle().digest());
        let ae = self.cluster.anti_entropy();
        for (k, v) in [
            ("rounds", &ae.rounds),
            ("segments_compared", &ae.segments_compared),
            ("segments_differing", &ae.segments_differing),
            ("keys_pulled", &ae.keys_pulled),
            ("keys_pushed", &ae.keys_pushed),
        ] {
            m.insert(format!("anti_entropy.{k}"), v.load(Ordering::Relaxed));
        }
        let t = self.cluster.transfer();
        for (k, v) in [
            ("entries", &t.entries),
            ("bytes", &t.bytes),
            ("ranges", &t.ranges),
            ("resumed", &t.resumed),
        ] {
            m.insert(format!("transfer.{k}"), v.load(Ordering::Relaxed));
        }
        let h = &self.cluster.handoff().stats;
        for (k, v) in [
            ("received", &h.received),
            ("throttled", &h.throttled),
            ("handed_off_removed", &h.handed_off_removed),
        ] {
            m.insert(format!("handoff.{k}"), v.load(Ordering::Relaxed));
        }
        m.insert("ring.version".into(), self.cluster.ring().version());
        m.insert("executor.panics".into(), self.cluster.executor().panics());
        m.insert("executor.queued".into(), self.cluster.executor().queued());
        // The node's own process counters, so a load generator on another host can compute
        // per-operation costs from two Status calls.
        if let Some(p) = crate::procstat::read_self() {
            for (k, v) in [
                ("cpu_ns", p.cpu_ns),
                ("voluntary_ctx", p.voluntary_ctx),
                ("involuntary_ctx", p.involuntary_ctx),
                ("read_bytes", p.read_bytes),
                ("write_bytes", p.write_bytes),
                ("rchar", p.rchar),
                ("wchar", p.wchar),
            ] {
                m.insert(format!("process.{k}"), v);
            }
        }
        m.insert("process.cores".into(), cores());
        // Ring members this node would leave out of a request right now because its last
        // attempt to reach them failed (local clusters wait for 0 before serving tests).
        let me = self.cluster.me().to_string();
        let unreachable = self
            .cluster
            .ring()
            .members()
            .iter()
            .filter(|m| m.id != me)
            .filter(|m| {
                self.cluster
                    .peers()
                    .get(&m.id, &m.address)
                    .is_some_and(|p| !p.is_reachable())
            })
            .count();
        m.insert("peers.unreachable".into(), unreachable as u64);
        let cs = self.coordinator.stats();
        for (k, v) in [
            ("writes", &cs.writes),
            ("reads", &cs.reads),
            ("write_quorum_failures", &cs.write_quorum_failures),
            ("read_quorum_failures", &cs.read_quorum_failures),
            ("read_speculations", &cs.read_speculations),
            ("hinted_writes", &cs.hinted_writes),
            ("forwarded_writes", &cs.forwarded_writes),
            ("read_repairs", &cs.read_repairs),
        ] {
            m.insert(format!("coordinator.{k}"), v.load(Ordering::Relaxed));
        }
        for (k, us) in cs.legs.report() {
            m.insert(format!("coordinator.{k}"), us);
        }
        m
    }
}

impl Node {
    /// A put (unary or inside a session).
    async fn put(&self, r: pb::PutRequest) -> Result<pb::PutResponse, Status> {
        self.timed("put", self.put_untimed(r)).await
    }

    /// A get (unary or inside a session).
    async fn get(&self, r: pb::GetRequest) -> Result<pb::GetResponse, Status> {
        self.timed("get", self.get_untimed(r)).await
    }

    /// A delete (unary or inside a session).
    async fn delete(&self, r: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status> {
        self.timed("delete", self.delete_untimed(r)).await
    }

    /// Runs a request, recording its latency and outcome for `/metrics`.
    async fn timed<T>(
        &self,
        op: &'static str,
        request: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let start = std::time::Instant::now();
        let out = request.await;
        let took = start.elapsed();
        self.requests
            .record(op, out.as_ref().err().map(Status::code), took);
        self.coordinator.stats().legs.service.record(took);
        out
    }

    /// Each ring member and the state this node sees it in.
    fn member_states(&self) -> Vec<(String, String)> {
        let ring = self.cluster.ring();
        ring.members()
            .iter()
            .map(|m| {
                let state = self
                    .cluster
                    .membership()
                    .get(&m.id)
                    .map_or("alive", |(s, _)| s.as_str());
                (m.id.clone(), state.to_string())
            })
            .collect()
    }

    async fn put_untimed(&self, r: pb::PutRequest) -> Result<pb::PutResponse, Status> {
        let context = self.context_in(&r.key, &r.context)?;
        let out = self
            .coordinator
            .write(
                r.key.clone(),
                Some(r.value),
                context,
                consistency(r.consistency),
            )
            .await?;
        Ok(pb::PutResponse {
            context: self.context_out(&r.key, out.context.encode_context()),
            acks: out.acks,
            dot: out.dot.map(dot_to_proto),
        })
    }

    /// The context inside one a client sent, checked against its signature.
    #[allow(clippy::result_large_err)]
    fn context_in(&self, key: &[u8], context: &Bytes) -> Result<Bytes, Status> {
        match &self.security {
            Some(s) => s
                .contexts
                .verify(key, context)
                .map_err(|e| Status::invalid_argument(e.to_string())),
            None => Ok(context.clone()),
        }
    }

    /// A context to hand a client, signed.
    fn context_out(&self, key: &[u8], context: Vec<u8>) -> Bytes {
        match &self.security {
            Some(s) => s.contexts.sign(key, &context),
            None => Bytes::from(context),
        }
    }

    /// The role of a client call, checked against what it needs (`Admin` when insecure).
    #[allow(clippy::result_large_err)]
    fn client_role<T>(&self, req: &Request<T>, need: Role, what: &str) -> Result<Role, Status> {
        match &self.security {
            Some(s) => {
                let role = s.role_of(req.metadata())?;
                crate::security::require(role, need, what)?;
                Ok(role)
            }
            None => Ok(Role::Admin),
        }
    }

    /// The calling node of a node-to-node call: proven by its certificate, or (insecure)
    /// as its header says.
    #[allow(clippy::result_large_err)]
    fn caller<T>(&self, req: &Request<T>) -> Result<String, Status> {
        match &self.security {
            Some(s) => s.authorize_peer(req, FROM_HEADER),
            None => Ok(req
                .metadata()
                .get(FROM_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()),
        }
    }

    async fn get_untimed(&self, r: pb::GetRequest) -> Result<pb::GetResponse, Status> {
        let out = self
            .coordinator
            .read(r.key.clone(), consistency(r.consistency))
            .await?;
        Ok(pb::GetResponse {
            versions: versions_for_client(&out.versions),
            context: self.context_out(&r.key, out.versions.clock().encode_context()),
            replies: out.replies,
        })
    }

    async fn delete_untimed(&self, r: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status> {
        let context = self.context_in(&r.key, &r.context)?;
        let out = self
            .coordinator
            .write(r.key.clone(), None, context, consistency(r.consistency))
            .await?;
        Ok(pb::DeleteResponse {
            context: self.context_out(&r.key, out.context.encode_context()),
            acks: out.acks,
            dot: out.dot.map(dot_to_proto),
        })
    }
}

#[tonic::async_trait]
impl Kv for Node {
    async fn put(&self, req: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        self.client_role(&req, Role::ReadWrite, "put")?;
        Node::put(self, req.into_inner()).await.map(Response::new)
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        self.client_role(&req, Role::Read, "get")?;
        Node::get(self, req.into_inner()).await.map(Response::new)
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        self.client_role(&req, Role::ReadWrite, "delete")?;
        Node::delete(self, req.into_inner())
            .await
            .map(Response::new)
    }

    type SessionStream = session::SessionStream;

    async fn session(
        &self,
        req: Request<Streaming<pb::SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let role = self.client_role(&req, Role::Read, "a session")?;
        Ok(Response::new(session::SessionStream::new(
            self.clone(),
            role,
            req.into_inner(),
        )))
    }

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.client_role(&req, Role::Read, "status")?;
        let d = self.coordinator.defaults();
        Ok(Response::new(pb::StatusResponse {
            node_id: self.config.id.clone(),
            address: self.config.advertised_address(),
            zone: self.config.zone.clone(),
            ring: Some(self.ring_description()),
            write_quorum: d.write_quorum,
            read_quorum: d.read_quorum,
            sloppy_default: d.sloppy,
            stats: self.stats(),
        }))
    }

    async fn admin(
        &self,
        req: Request<pb::AdminRequest>,
    ) -> Result<Response<pb::AdminResponse>, Status> {
        self.client_role(
            &req,
            Role::Admin,
            "admin (join, leave, repair, cleanup, faults)",
        )?;
        let op = req
            .into_inner()
            .op
            .ok_or_else(|| Status::invalid_argument("admin request without an operation"))?;
        let message = match op {
            pb::admin_request::Op::Faults(f) => {
                let faults = self.cluster.faults();
                if !faults.is_enabled() {
                    return Err(Status::failed_precondition(
                        "fault injection is off; start the node with --enable-fault-injection",
                    ));
                }
                faults.set_blocked(f.partitioned_from);
                faults.add_executor_panics(f.executor_panics);
                format!(
                    "partitioned from {:?}; {} executor panics injected",
                    faults.blocked(),
                    f.executor_panics
                )
            }
            pb::admin_request::Op::Join(j) => {
                if !j.reason.is_empty() {
                    let reason = bounded(&j.reason);
                    tracing::info!(node = %j.id, reason = %reason, "autoscaler adds a node");
                }
                let by_autoscaler = !j.reason.is_empty();
                let member = RingMember {
                    id: j.id,
                    address: j.address,
                    zone: j.zone,
                    tokens: if j.tokens == 0 {
                        crate::ring::DEFAULT_TOKENS_PER_NODE
                    } else {
                        j.tokens
                    },
                };
                change(&self.cluster, Change::Join(member), by_autoscaler).await?
            }
            pb::admin_request::Op::Leave(l) => {
                if !l.reason.is_empty() {
                    let reason = bounded(&l.reason);
                    tracing::info!(node = %l.id, reason = %reason, "autoscaler removes a node");
                }
                let by_autoscaler = !l.reason.is_empty();
                change(&self.cluster, Change::Leave(l.id), by_autoscaler).await?
            }
            pb::admin_request::Op::Repair(_) => {
                anti_entropy::run_round(&self.cluster).await.to_string()
            }
            pb::admin_request::Op::Cleanup(_) => crate::cluster::cleanup::cleanup(&self.cluster)
                .await
                .map_err(Status::failed_precondition)?,
        };
        Ok(Response::new(pb::AdminResponse {
            message,
            ring: Some(self.ring_description()),
        }))
    }
}

/// Cores this process may use, read once (`available_parallelism` reads cgroup files each
/// call, and Status is asked every second by an autoscaler).
fn cores() -> u64 {
    static CORES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64))
}

/// A client-supplied reason as the log shows it: at most [`MAX_REASON_CHARS`] characters.
fn bounded(reason: &str) -> String {
    let mut out: String = reason.chars().take(MAX_REASON_CHARS).collect();
    if out.len() < reason.len() {
        out.push('…');
    }
    out
}

/// The most characters of a join or leave reason a node logs.
const MAX_REASON_CHARS: usize = 512;

async fn change(cluster: &Arc<Cluster>, c: Change, by_autoscaler: bool) -> Result<String, Status> {
    rebalance::change_membership(cluster, c, by_autoscaler)
        .await
        .map_err(|e| match e {
            ChangeError::Invalid(m) => Status::invalid_argument(m),
            e => Status::unavailable(e.to_string()),
        })
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ReplicaRpc for Node {
    type PipelineStream = BoxStream<pb::ReplicaResponse>;

    async fn pipeline(
        &self,
        req: Request<Streaming<pb::ReplicaRequest>>,
    ) -> Result<Response<Self::PipelineStream>, Status> {
        let from = self.caller(&req)?;
        let faults = self.cluster.faults().clone();
        if faults.blocks(&from) {
            return Err(Status::unavailable(format!(
                "partitioned from {from} by fault injection"
            )));
        }
        let mut inbound = req.into_inner();
        // Unbounded: the executor threads must never block on a slow reader;
        // the peer's driver bounds what it has in flight.
        let (tx, rx) = mpsc::unbounded_channel::<Result<pb::ReplicaResponse, Status>>();
        let executor = self.cluster.executor().clone();
        let cluster = self.cluster.clone();
        tokio::spawn(async move {
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) | Err(_) => break,
                };
                if faults.blocks(&from) {
                    let _ = tx.send(Err(Status::unavailable("partitioned by fault injection")));
                    break;
                }
                let Some(op) = msg.op else {
                    continue;
                };
                let id = msg.id;
                if let Some(mut resp) = cluster.fetch_from_memory(&op) {
                    resp.id = id;
                    let _ = tx.send(Ok(resp));
                    continue;
                }
                let tx = tx.clone();
                let queued = executor
                    .submit(
                        op,
                        Box::new(move |mut resp| {
                            resp.id = id;
                            let _ = tx.send(Ok(resp));
                        }),
                    )
                    .await;
                if !queued {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }

    async fn push_ring(
        &self,
        req: Request<pb::RingDescription>,
    ) -> Result<Response<pb::PushRingResponse>, Status> {
        self.caller(&req)?;
        let desc = ring_from_proto(req.get_ref());
        let adopted = self
            .cluster
            .adopt_ring(desc)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(pb::PushRingResponse {
            version: self.cluster.ring().version(),
            adopted,
        }))
    }

    async fn merkle_level(
        &self,
        req: Request<pb::MerkleLevelRequest>,
    ) -> Result<Response<pb::MerkleLevelResponse>, Status> {
        self.caller(&req)?;
        let r = req.into_inner();
        let merkle = self.cluster.replica().merkle();
        let trees = r
            .ranges
            .iter()
            .map(|range| {
                let seg = Segment {
                    start: range.start,
                    end: range.end,
                };
                match merkle.level(seg, r.level) {
                    None => pb::MerkleHashes {
                        tracked: false,
                        hashes: Vec::new(),
                    },
                    Some(all) if r.nodes.is_empty() => pb::MerkleHashes {
                        tracked: true,
                        hashes: all,
                    },
                    Some(all) => pb::MerkleHashes {
                        tracked: true,
                        hashes: r
                            .nodes
                            .iter()
                            .map(|&i| all.get(i as usize).copied().unwrap_or(0))
                            .collect(),
                    },
                }
            })
            .collect();
        Ok(Response::new(pb::MerkleLevelResponse {
            trees,
            ring_version: self.cluster.ring().version(),
        }))
    }

    type ScanRangeStream = BoxStream<pb::Entry>;

    async fn scan_range(
        &self,
        req: Request<pb::ScanRangeRequest>,
    ) -> Result<Response<Self::ScanRangeStream>, Status> {
        let from = self.caller(&req)?;
        if self.cluster.faults().blocks(&from) {
            return Err(Status::unavailable("partitioned by fault injection"));
        }
        let r = req.into_inner();
        let range = r
            .range
            .ok_or_else(|| Status::invalid_argument("scan without a range"))?;
        let seg = Segment {
            start: range.start,
            end: range.end,
        };
        let replica = self.cluster.replica().clone();
        let entries = tokio::task::spawn_blocking(move || {
            if r.buckets.is_empty() {
                let resume = r.after_position.map(|p| (p, r.after_key.to_vec()));
                let limit = crate::replica::scan_page(r.limit);
                replica
                    .scan_range(seg, resume.as_ref().map(|(p, k)| (*p, k.as_slice())), limit)
                    .map_err(|e| e.to_string())
            } else {
                scan_buckets(&replica, seg, &r.buckets)
            }
            .map(|entries| (entries, r.digests_only))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(Status::internal)?;
        let (entries, digests_only) = entries;
        let out = entries.into_iter().map(move |e| {
            let digest = Replica::digest(&e.key, &e.versions);
            let newest_ms = crate::version::newest_timestamp(&e.versions).unwrap_or(0);
            Ok(pb::Entry {
                key: e.key,
                versions: if digests_only {
                    Bytes::new()
                } else {
                    e.versions
                },
                position: e.position,
                digest,
                newest_ms,
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(out))))
    }

    async fn handoff(
        &self,
        req: Request<pb::HandoffBatch>,
    ) -> Result<Response<pb::HandoffAck>, Status> {
        let from = self.caller(&req)?;
        if self.cluster.faults().blocks(&from) {
            return Err(Status::unavailable("partitioned by fault injection"));
        }
        let batch = req.into_inner();
        let pacer = self.cluster.handoff();
        let (admitted, wait) = pacer.admit(batch.entries.len());
        let replica = self.cluster.replica().clone();
        let applied =
            tokio::task::spawn_blocking(move || apply_batch(&replica, &batch.entries, admitted))
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        pacer
            .stats
            .received
            .fetch_add(applied as u64, Ordering::Relaxed);
        Ok(Response::new(pb::HandoffAck {
            accepted: applied as u32,
            retry_after_ms: wait.as_millis().min(u128::from(u32::MAX)) as u32,
        }))
    }

    async fn stream_ranges(
        &self,
        req: Request<pb::StreamRangesRequest>,
    ) -> Result<Response<pb::StreamRangesResponse>, Status> {
        self.caller(&req)?;
        let version = req.into_inner().ring_version;
        rebalance::stream_ranges(&self.cluster, version)
            .await
            .map(Response::new)
            .map_err(Status::unavailable)
    }

    async fn gossip(
        &self,
        req: Request<pb::GossipPacket>,
    ) -> Result<Response<pb::GossipAck>, Status> {
        let from = self.caller(&req)?;
        let packet = req.into_inner();
        self.cluster.deliver_gossip(&from, packet.data);
        Ok(Response::new(pb::GossipAck {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_for_the_log() {
        assert_eq!(bounded("scale out"), "scale out");
        let long = "é".repeat(10_000);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MAX_REASON_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
