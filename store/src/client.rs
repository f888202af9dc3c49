//! The Rust client: what the CLI and the loadgen use.
//!
//! Async and cheap to clone. Requests travel on long-lived multiplexed sessions
//! (`Kv.Session`, [`session`]): `connections` sessions per node, each on its own
//! HTTP/2 connection, opened when first needed and reopened after a failure.
//! Routing ([`Routing`]): token-aware, each request goes straight to the first
//! replica of the key's preference list (that node coordinates the write
//! locally, which saves a hop), and to the next replicas in order when that one
//! cannot be reached; random, each request goes to a member chosen uniformly
//! (every member learned from `Status`), then the next members; by endpoints,
//! requests are spread round-robin over the endpoints given.
//!
//! Failover (`docs/wire.md`, "Sessions"):
//! - a request that surely reached no node (no connection, or the session was
//!   already closed) goes to the next node;
//! - a read whose connection breaks, that gets no answer within its share of
//!   the deadline, or whose coordinator could not gather R replies
//!   (UNAVAILABLE), is asked again of the next node;
//! - a write whose connection breaks or times out in flight is not repeated:
//!   it may have been applied, so it fails with [`ClientError::Indeterminate`];
//! - with [`ClientOptions::hedge_reads_after`], a read still unanswered after
//!   that long is also sent to the next replicas, and the first answer wins.

mod session;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tonic::transport::{Channel, Endpoint};

use crate::config::MAX_MESSAGE_BYTES;
use crate::proto::kv_client::KvClient;
use crate::proto::{self as pb};
use crate::ring::{Ring, key_position};
use crate::security::Bearer;
pub use crate::security::ClientSecurity;
use crate::wire::ring_from_proto;
use tonic::service::interceptor::InterceptedService;

pub use crate::coordinator::Consistency;
pub use crate::version::Dot;

/// How the client connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Deadline per request (also sent to the coordinator).
    pub timeout: Duration,
    /// Which node coordinates each request.
    pub routing: Routing,
    /// Sessions (each on its own HTTP/2 connection) per node. Many requests share one
    /// session; more help only when one connection's task is the bottleneck.
    pub connections: usize,
    /// The CA to trust and the token to present (the default is none: an insecure cluster).
    pub security: ClientSecurity,
    /// Hedged reads: a read not answered within this long is also sent to the next replica,
    /// and the first answer wins (`None`, the default: ask the next replica only after a
    /// failure or the attempt's share of the deadline). Costs an extra read for every read
    /// slower than this, so set it near the read p95-p99.
    pub hedge_reads_after: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(5),
            routing: Routing::TokenAware,
            connections: 1,
            security: ClientSecurity::default(),
            hedge_reads_after: None,
        }
    }
}

/// Which node a request is sent to (it coordinates the request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Routing {
    /// The key's first replica, then the next ones (learned from `Status`).
    #[default]
    TokenAware,
    /// A member chosen uniformly at random per request, then the next members.
    Random,
    /// The endpoints given, round-robin (no ring needed).
    Endpoints,
}

impl Routing {
    /// The name used in workload files and results.
    pub fn name(self) -> &'static str {
        match self {
            Routing::TokenAware => "token_aware",
            Routing::Random => "random",
            Routing::Endpoints => "endpoints",
        }
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No endpoints were given.
    #[error("no endpoints given; pass at least one HOST:PORT")]
    NoEndpoints,
    /// An endpoint is not HOST:PORT.
    #[error("endpoint {0:?} is not HOST:PORT")]
    BadEndpoint(String),
    /// Could not connect.
    #[error("cannot connect to {endpoint}: {reason}; is a ringkv node running there?")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// The transport error.
        reason: String,
    },
    /// The security material is unusable.
    #[error("{0}")]
    Security(String),
    /// The node answered with an error status.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(tonic::Status),
    /// A write was in flight when its connection broke or its deadline passed: it may or
    /// may not have been applied. Read the key to find out.
    #[error("outcome unknown: {reason}; the write may or may not have been applied")]
    Indeterminate {
        /// What happened.
        reason: String,
    },
}

fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DeadlineExceeded => "deadline exceeded",
        tonic::Code::FailedPrecondition => "failed precondition",
        tonic::Code::NotFound => "not found",
        tonic::Code::Unimplemented => "unimplemented",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::PermissionDenied => "permission denied",
        _ => "error",
    }
}

impl ClientError {
    /// The gRPC status code, if the node answered.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Status(s) => Some(s.code()),
            _ => None,
        }
    }

    /// Whether a write that failed this way may still have been applied.
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, ClientError::Indeterminate { .. })
    }
}

/// One concurrent version of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionValue {
    /// The value (empty for a tombstone).
    pub value: Bytes,
    /// A delete concurrent with other versions.
    pub tombstone: bool,
    /// When it was written (ms since the epoch).
    pub timestamp_ms: u64,
}

/// Answer to a get.
#[derive(Clone, Debug)]
pub struct GetReply {
    /// Concurrent versions; empty when absent.
    pub versions: Vec<VersionValue>,
    /// Causal context to pass to the next put or delete.
    pub context: Bytes,
    /// Replicas merged.
    pub replies: u32,
}

/// Answer to a put.
#[derive(Clone, Debug)]
pub struct PutReply {
    /// Context covering the new version.
    pub context: Bytes,
    /// Acknowledgements counted.
    pub acks: u32,
    /// The new version's dot: a later read's context covers it
    /// ([`VersionVector::context_covers`](crate::version::VersionVector::context_covers)) once
    /// the write is visible or superseded. `None` from a node that did not say.
    pub dot: Option<Dot>,
}

/// Answer to a delete.
pub type DeleteReply = PutReply;

struct Router {
    ring: Ring,
    /// Node index per ring member index.
    member_node: Vec<Option<usize>>,
}

/// After a failed connection attempt, a node is not dialled again for this long; requests go
/// to the next node meanwhile.
const REDIAL_AFTER: Duration = Duration::from_millis(200);
/// A read waits at most this share of what is left of its deadline before it asks the next
/// replica (the last attempt waits for all of it).
const READ_ATTEMPT_SHARE: u32 = 2;
/// Most nodes one request tries.
const MAX_ATTEMPTS: usize = 3;

/// One node: where it is and its sessions.
struct NodeConn {
    address: String,
    endpoint: Endpoint,
    bearer: Bearer,
    /// For unary calls off the hot path (status, admin).
    channel: Channel,
    slots: Vec<parking_lot::Mutex<Slot>>,
    /// Serialises (re)connecting, so a broken node is dialled once, not once per request.
    dial: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Slot {
    session: Option<Arc<session::Session>>,
    failed_at: Option<tokio::time::Instant>,
    last_error: String,
}

/// Why no session to a node could be had (nothing was sent).
struct NoSession(String);

impl NodeConn {
    fn new(address: &str, opts: &ClientOptions) -> Result<NodeConn, ClientError> {
        let endpoint = channel_for(address, opts)?;
        Ok(NodeConn {
            address: strip_scheme(address).to_string(),
            channel: endpoint.connect_lazy(),
            endpoint,
            bearer: bearer(opts)?,
            slots: (0..opts.connections.max(1))
                .map(|_| parking_lot::Mutex::new(Slot::default()))
                .collect(),
            dial: tokio::sync::Mutex::new(()),
        })
    }

    fn kv(&self) -> Kv {
        kv(self.channel.clone(), self.bearer.clone())
    }

    /// An open session of slot `i`, dialling if needed (and not failed just now).
    async fn session(&self, i: usize) -> Result<Arc<session::Session>, NoSession> {
        let slot = self
            .slots
            .get(i % self.slots.len().max(1))
            .ok_or_else(|| NoSession("no session slots".into()))?;
        let fresh =
            |slot: &parking_lot::Mutex<Slot>| -> Option<Result<Arc<session::Session>, NoSession>> {
                let s = slot.lock();
                if let Some(sess) = &s.session
                    && sess.is_open()
                {
                    return Some(Ok(sess.clone()));
                }
                if let Some(at) = s.failed_at
                    && at.elapsed() < REDIAL_AFTER
                {
                    return Some(Err(NoSession(s.last_error.clone())));
                }
                None
            };
        if let Some(r) = fresh(slot) {
            return r;
        }
        let _dialling = self.dial.lock().await;
        if let Some(r) = fresh(slot) {
            return r;
        }
        let opened = match self.endpoint.connect().await {
            Ok(channel) => session::Session::open(kv(channel, self.bearer.clone()))
                .await
                .map_err(|s| format!("{}: {}", code_name(s.code()), s.message())),
            Err(e) => Err(transport_reason(&e)),
        };
        let mut s = slot.lock();
        match opened {
            Ok(sess) => {
                let sess = Arc::new(sess);
                s.session = Some(sess.clone());
                s.failed_at = None;
                Ok(sess)
            }
            Err(reason) => {
                let reason = format!("cannot connect to {}: {reason}", self.address);
                s.session = None;
                s.failed_at = Some(tokio::time::Instant::now());
                s.last_error = reason.clone();
                Err(NoSession(reason))
            }
        }
    }
}

/// A connection to a ringkv cluster.
#[derive(Clone)]
pub struct Client {
    view: Arc<parking_lot::RwLock<Arc<View>>>,
    next: Arc<AtomicUsize>,
    opts: ClientOptions,
}

/// What requests are routed by: the nodes known (the endpoints given, then ring members
/// learned) and, unless routing by endpoints, the ring. Replaced whole when a newer ring is
/// learned; a request keeps the view it started with.
struct View {
    nodes: Vec<Arc<NodeConn>>,
    router: Option<Router>,
}

/// How often a client that routes by the ring asks a node for a newer one, so members that
/// joined get their share and members that left stop getting requests.
pub const RING_REFRESH: Duration = Duration::from_secs(1);

impl View {
    /// The view over `nodes` (reused by address, new members added) with `desc` as its ring.
    fn with_ring(
        nodes: &[Arc<NodeConn>],
        desc: &pb::RingDescription,
        opts: &ClientOptions,
    ) -> Result<View, ClientError> {
        let mut nodes = nodes.to_vec();
        let router = match Ring::new(ring_from_proto(desc)) {
            Ok(ring) => {
                let mut member_node = Vec::with_capacity(ring.members().len());
                for m in ring.members() {
                    let idx = match nodes.iter().position(|n| n.address == m.address) {
                        Some(i) => i,
                        None => {
                            nodes.push(Arc::new(NodeConn::new(&m.address, opts)?));
                            nodes.len() - 1
                        }
                    };
                    member_node.push(Some(idx));
                }
                Some(Router { ring, member_node })
            }
            Err(_) => None,
        };
        Ok(View { nodes, router })
    }

    fn ring_version(&self) -> Option<u64> {
        self.router.as_ref().map(|r| r.ring.version())
    }
}

/// Every [`RING_REFRESH`], asks the known nodes for their ring and adopts a newer one; ends
/// when the client is dropped.
fn spawn_ring_refresh(view: std::sync::Weak<parking_lot::RwLock<Arc<View>>>, opts: ClientOptions) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RING_REFRESH).await;
            let Some(cell) = view.upgrade() else { return };
            let current = cell.read().clone();
            for node in &current.nodes {
                let mut kv = node.kv();
                let asked = tokio::time::timeout(RING_REFRESH, kv.status(pb::StatusRequest {}));
                let Ok(Ok(status)) = asked.await else {
                    continue;
                };
                let Some(desc) = status.into_inner().ring else {
                    continue;
                };
                if current.ring_version().is_some_and(|v| desc.version <= v) {
                    break;
                }
                if let Ok(next) = View::with_ring(&current.nodes, &desc, &opts)
                    && next.router.is_some()
                {
                    *cell.write() = Arc::new(next);
                }
                break;
            }
        }
    });
}

fn strip_scheme(addr: &str) -> &str {
    addr.trim_start_matches("http://")
        .trim_start_matches("https://")
}

fn bearer(opts: &ClientOptions) -> Result<Bearer, ClientError> {
    opts.security
        .bearer()
        .map(Bearer)
        .map_err(|e| ClientError::Security(e.to_string()))
}

fn channel_for(addr: &str, opts: &ClientOptions) -> Result<Endpoint, ClientError> {
    let tls = opts.security.tls_config();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let uri = format!("{scheme}://{}", strip_scheme(addr));
    let mut endpoint =
        Endpoint::from_shared(uri).map_err(|_| ClientError::BadEndpoint(addr.to_string()))?;
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| ClientError::Security(format!("the TLS settings cannot be used: {e}")))?;
    }
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2).min(opts.timeout))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5)))
}

/// A client stub that presents the token on every call.
pub(crate) type Kv = KvClient<InterceptedService<Channel, Bearer>>;

fn kv(channel: Channel, bearer: Bearer) -> Kv {
    KvClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Which operation a request is, for the failover rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

impl Client {
    /// Connect to a cluster through any of `endpoints`. Fails with a clear
    /// error when none answers. Sessions are opened here, on the current
    /// runtime, which then runs their connection and reader tasks.
    pub async fn connect(endpoints: &[String], opts: ClientOptions) -> Result<Client, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        let mut nodes: Vec<Arc<NodeConn>> = Vec::new();
        let mut last_err = None;
        let mut status = None;
        for addr in endpoints {
            let node = NodeConn::new(addr, &opts)?;
            if status.is_none() {
                match node.endpoint.connect().await {
                    Ok(ch) => match kv(ch, node.bearer.clone())
                        .status(pb::StatusRequest {})
                        .await
                    {
                        Ok(s) => status = Some(s.into_inner()),
                        Err(e) => last_err = Some(ClientError::Status(e)),
                    },
                    Err(e) => {
                        last_err = Some(ClientError::Connect {
                            endpoint: addr.clone(),
                            reason: transport_reason(&e),
                        });
                    }
                }
            }
            nodes.push(Arc::new(node));
        }
        let Some(status) = status else {
            return Err(last_err.unwrap_or(ClientError::NoEndpoints));
        };
        let by_ring = opts.routing != Routing::Endpoints;
        let view = match status.ring.as_ref() {
            Some(desc) if by_ring => View::with_ring(&nodes, desc, &opts)?,
            _ => View {
                nodes,
                router: None,
            },
        };
        let client = Client {
            view: Arc::new(parking_lot::RwLock::new(Arc::new(view))),
            next: Arc::new(AtomicUsize::new(0)),
            opts,
        };
        if by_ring {
            spawn_ring_refresh(Arc::downgrade(&client.view), client.opts.clone());
        }
        // Open every session now, so the first requests do not pay for it; a node that
        // cannot be reached is retried when a request needs it.
        let view = client.view();
        let opening = view.nodes.iter().flat_map(|n| {
            (0..n.slots.len()).map(move |i| async move {
                let _ = n.session(i).await;
            })
        });
        futures_util::future::join_all(opening).await;
        Ok(client)
    }

    /// Nodes to try for `key`, best first, at most [`MAX_ATTEMPTS`]: the key's preference
    /// list when token-aware, members from a random one on when random, else the endpoints
    /// round-robin.
    fn order(&self, view: &View, key: &[u8]) -> ([usize; MAX_ATTEMPTS], usize) {
        let mut out = [0usize; MAX_ATTEMPTS];
        let mut len = 0;
        let n = view.nodes.len().max(1);
        if let Some(r) = &view.router {
            // Adds member `m`'s node unless it is there already; true once `out` is full.
            let mut add = |m: usize| {
                if let Some(Some(idx)) = r.member_node.get(m)
                    && !out[..len].contains(idx)
                {
                    out[len] = *idx;
                    len += 1;
                }
                len == out.len()
            };
            let members = r.member_node.len();
            match self.opts.routing {
                Routing::Random if members > 0 => {
                    let first = rand::random_range(0..members);
                    for i in 0..members {
                        if add((first + i) % members) {
                            break;
                        }
                    }
                }
                _ => {
                    for &m in r.ring.walk(key_position(key)) {
                        if add(m) {
                            break;
                        }
                    }
                }
            }
        }
        if len == 0 {
            let first = self.next.fetch_add(1, Ordering::Relaxed);
            len = n.min(MAX_ATTEMPTS);
            for (i, slot) in out.iter_mut().take(len).enumerate() {
                *slot = (first + i) % n;
            }
        }
        (out, len)
    }

    /// The view requests are routed by now.
    fn view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    fn wire_consistency(&self, c: &Consistency) -> pb::Consistency {
        let timeout = c.timeout.unwrap_or(self.opts.timeout);
        pb::Consistency {
            w: c.w.unwrap_or(0),
            r: c.r.unwrap_or(0),
            sloppy: c.sloppy,
            timeout_ms: timeout.as_millis().min(u128::from(u32::MAX)) as u32,
        }
    }

    /// Run one request on a session of the key's node, failing over as the module docs say.
    async fn request(
        &self,
        key: &[u8],
        kind: Kind,
        timeout: Duration,
        op: pb::session_request::Op,
    ) -> Result<pb::session_response::Result, ClientError> {
        // The node applies `timeout` itself; allow a little more for the answer to travel.
        let deadline = tokio::time::Instant::now() + timeout + Duration::from_millis(500);
        let view = self.view();
        let (order, len) = self.order(&view, key);
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        let mut failures: Vec<String> = Vec::new();
        let result = match self.opts.hedge_reads_after {
            Some(after) if kind == Kind::Read && len > 1 => {
                let (first, rest) = order[..len].split_at(1);
                self.hedged(
                    &view,
                    (first, rest),
                    after,
                    deadline,
                    slot,
                    &op,
                    &mut failures,
                )
                .await
            }
            _ => {
                let nodes = &order[..len];
                self.attempts(&view, nodes, kind, deadline, slot, &op, &mut failures)
                    .await
            }
        };
        result.unwrap_or_else(|| {
            Err(ClientError::Status(tonic::Status::unavailable(format!(
                "no node answered ({} tried): {}",
                failures.len(),
                failures.join("; ")
            ))))
        })
    }

    /// A hedged read: `first` is asked, and unless it answers within `after` (or fails
    /// sooner), `rest` are asked too, in order; the first answer wins. `None` when neither
    /// answered (the reasons are in `failures`).
    #[allow(clippy::too_many_arguments)]
    async fn hedged(
        &self,
        view: &View,
        (first, rest): (&[usize], &[usize]),
        after: Duration,
        deadline: tokio::time::Instant,
        slot: usize,
        op: &pb::session_request::Op,
        failures: &mut Vec<String>,
    ) -> Option<Result<pb::session_response::Result, ClientError>> {
        let (mut first_failures, mut rest_failures) = (Vec::new(), Vec::new());
        let first_failed = tokio::sync::Notify::new();
        let ask = async |nodes: &[usize], failures: &mut Vec<String>| {
            self.attempts(view, nodes, Kind::Read, deadline, slot, op, failures)
                .await
        };
        // The attempts borrow the failure lists until this block drops them.
        let result = {
            let primary = async {
                let r = ask(first, &mut first_failures).await;
                if !matches!(r, Some(Ok(_))) {
                    first_failed.notify_one();
                }
                r
            };
            let hedge = async {
                tokio::select! {
                    () = tokio::time::sleep(after) => {}
                    () = first_failed.notified() => {}
                }
                ask(rest, &mut rest_failures).await
            };
            tokio::pin!(primary, hedge);
            let (mut primary_done, mut hedge_done) = (false, false);
            let mut first_error = None;
            loop {
                let r = tokio::select! {
                    r = &mut primary, if !primary_done => { primary_done = true; r }
                    r = &mut hedge, if !hedge_done => { hedge_done = true; r }
                };
                match r {
                    Some(Ok(answer)) => break Some(Ok(answer)),
                    // A refusal another replica would repeat (bad request, no permission)
                    // is final, as on the unhedged path.
                    Some(Err(ClientError::Status(s))) if s.code() != tonic::Code::Unavailable => {
                        break Some(Err(ClientError::Status(s)));
                    }
                    Some(Err(e)) if first_error.is_none() => first_error = Some(e),
                    _ => {}
                }
                if primary_done && hedge_done {
                    break first_error.take().map(Err);
                }
            }
        };
        failures.append(&mut first_failures);
        failures.append(&mut rest_failures);
        result
    }

    /// Asks `nodes` in order until one answers, as the module docs say; `None` when none did
    /// before the deadline (the reasons are in `failures`).
    #[allow(clippy::too_many_arguments)]
    async fn attempts(
        &self,
        view: &View,
        nodes: &[usize],
        kind: Kind,
        deadline: tokio::time::Instant,
        slot: usize,
        op: &pb::session_request::Op,
        failures: &mut Vec<String>,
    ) -> Option<Result<pb::session_response::Result, ClientError>> {
        use session::CallError;
        let len = nodes.len();
        for (attempt, &node_idx) in nodes.iter().enumerate() {
            let Some(node) = view.nodes.get(node_idx) else {
                continue;
            };
            let sess = match node.session(slot).await {
                Ok(s) => s,
                Err(NoSession(reason)) => {
                    failures.push(reason);
                    continue;
                }
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let last = attempt + 1 == len;
            let wait = if kind == Kind::Read && !last {
                left / READ_ATTEMPT_SHARE
            } else {
                left
            };
            match sess.call(op.clone(), wait).await {
                // A coordinator that could not gather R replies may see the cluster worse
                // than another does (a peer it has just suspected); a read is safe to ask again.
                Ok(pb::session_response::Result::Error(e))
                    if kind == Kind::Read
                        && tonic::Code::from_i32(e.code) == tonic::Code::Unavailable
                        && !last =>
                {
                    failures.push(format!("{}: {}", node.address, e.message));
                }
                Ok(pb::session_response::Result::Error(e)) => {
                    return Some(Err(ClientError::Status(tonic::Status::new(
                        tonic::Code::from_i32(e.code),
                        e.message,
                    ))));
                }
                Ok(answer) => return Some(Ok(answer)),
                Err(CallError::NotSent) => {
                    failures.push(format!("{}: session closed", node.address));
                }
                Err(CallError::Lost(reason)) if kind == Kind::Write => {
                    return Some(Err(ClientError::Indeterminate {
                        reason: format!("{}: {reason}", node.address),
                    }));
                }
                Err(CallError::Timeout) if kind == Kind::Write => {
                    return Some(Err(ClientError::Indeterminate {
                        reason: format!("{}: no answer before the client deadline", node.address),
                    }));
                }
                Err(CallError::Lost(reason)) => {
                    failures.push(format!("{}: {reason}", node.address))
                }
                Err(CallError::Timeout) => {
                    failures.push(format!("{}: no answer in {wait:?}", node.address));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        None
    }

    fn timeout_of(&self, c: &Consistency) -> Duration {
        c.timeout.unwrap_or(self.opts.timeout)
    }

    /// Store `value` under `key`; `context` from an earlier get supersedes
    /// the versions it saw.
    pub async fn put(
        &self,
        key: &[u8],
        value: &[u8],
        context: Option<&[u8]>,
        c: &Consistency,
    ) -> Result<PutReply, ClientError> {
        let op = pb::session_request::Op::Put(pb::PutRequest {
            key: Bytes::copy_from_slice(key),
            value: Bytes::copy_from_slice(value),
            context: context.map(Bytes::copy_from_slice).unwrap_or_default(),
            consistency: Some(self.wire_consistency(c)),
        });
        match self
            .request(key, Kind::Write, self.timeout_of(c), op)
            .await?
        {
            pb::session_response::Result::Put(r) => Ok(PutReply {
                context: r.context,
                acks: r.acks,
                dot: r.dot.map(|d| Dot {
                    actor: d.actor,
                    counter: d.counter,
                }),
            }),
            _ => Err(mismatched("put")),
        }
    }

    /// Every concurrent version of `key`.
    pub async fn get(&self, key: &[u8], c: &Consistency) -> Result<GetReply, ClientError> {
        let op = pb::session_request::Op::Get(pb::GetRequest {
            key: Bytes::copy_from_slice(key),
            consistency: Some(self.wire_consistency(c)),
        });
        match self
            .request(key, Kind::Read, self.timeout_of(c), op)
            .await?
        {
            pb::session_response::Result::Get(r) => Ok(GetReply {
                versions: r
                    .versions
                    .into_iter()
                    .map(|v| VersionValue {
                        value: v.value,
                        tombstone: v.tombstone,
                        timestamp_ms: v.timestamp_ms,
                    })
                    .collect(),
                context: r.context,
                replies: r.replies,
            }),
            _ => Err(mismatched("get")),
        }
    }

    /// Delete `key` (a versioned tombstone).
    pub async fn delete(
        &self,
        key: &[u8],
        context: Option<&[u8]>,
        c: &Consistency,
    ) -> Result<DeleteReply, ClientError> {
        let op = pb::session_request::Op::Delete(pb::DeleteRequest {
            key: Bytes::copy_from_slice(key),
            context: context.map(Bytes::copy_from_slice).unwrap_or_default(),
            consistency: Some(self.wire_consistency(c)),
        });
        match self
            .request(key, Kind::Write, self.timeout_of(c), op)
            .await?
        {
            pb::session_response::Result::Delete(r) => Ok(PutReply {
                context: r.context,
                acks: r.acks,
                dot: r.dot.map(|d| Dot {
                    actor: d.actor,
                    counter: d.counter,
                }),
            }),
            _ => Err(mismatched("delete")),
        }
    }

    /// Status of the first reachable node.
    pub async fn status(&self) -> Result<pb::StatusResponse, ClientError> {
        let mut last = None;
        for node in self.view().nodes.iter() {
            match node.kv().status(pb::StatusRequest {}).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) => last = Some(ClientError::Status(s)),
            }
        }
        Err(last.unwrap_or(ClientError::NoEndpoints))
    }

    /// Nodes this client knows: the endpoints given to `connect`, then (token-aware) the
    /// other ring members it learned of.
    pub fn node_count(&self) -> usize {
        self.view().nodes.len()
    }

    /// Node `i` of the view: the endpoints given to `connect`, then the members learned.
    fn node(&self, i: usize) -> Result<Arc<NodeConn>, ClientError> {
        self.view()
            .nodes
            .get(i)
            .cloned()
            .ok_or(ClientError::NoEndpoints)
    }

    /// Status of node `i` of the endpoints given to `connect` (then of the ring members
    /// learned, see [`Client::node_count`]).
    pub async fn status_of(&self, i: usize) -> Result<pb::StatusResponse, ClientError> {
        let node = self.node(i)?;
        node.kv()
            .status(pb::StatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(ClientError::Status)
    }

    /// Send an admin request to node `i` of the endpoints given to `connect`.
    pub async fn admin_of(
        &self,
        i: usize,
        op: pb::admin_request::Op,
    ) -> Result<pb::AdminResponse, ClientError> {
        let node = self.node(i)?;
        node.kv()
            .admin(pb::AdminRequest { op: Some(op) })
            .await
            .map(tonic::Response::into_inner)
            .map_err(ClientError::Status)
    }
}

/// The node answered a request with the answer to another kind of request.
fn mismatched(what: &str) -> ClientError {
    ClientError::Status(tonic::Status::internal(format!(
        "the node answered a {what} with another kind of answer"
    )))
}

fn transport_reason(e: &tonic::transport::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}
