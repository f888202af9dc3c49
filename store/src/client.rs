//! The Rust client: what the CLI and the loadgen use.
//!
//! Async and cheap to clone. It keeps one or more HTTP/2 connections per node
//! and, when token-aware, sends each request straight to the first replica of
//! the key's preference list (that node coordinates the write locally, which
//! saves a hop); otherwise it spreads requests over the given endpoints.
//! A request that cannot reach its node is retried once on another.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tonic::transport::{Channel, Endpoint};

use crate::config::MAX_MESSAGE_BYTES;
use crate::proto::kv_client::KvClient;
use crate::proto::{self as pb};
use crate::ring::{Ring, key_position};
use crate::wire::ring_from_proto;

pub use crate::coordinator::Consistency;

/// How the client connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Deadline per request (also sent to the coordinator).
    pub timeout: Duration,
    /// Route each key to its first replica (learned from `Status`).
    pub token_aware: bool,
    /// HTTP/2 connections per node.
    pub connections: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(5),
            token_aware: true,
            connections: 1,
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
    /// The node answered with an error status.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(tonic::Status),
}

fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DeadlineExceeded => "deadline exceeded",
        tonic::Code::FailedPrecondition => "failed precondition",
        tonic::Code::NotFound => "not found",
        tonic::Code::Unimplemented => "unimplemented",
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
}

/// Answer to a delete.
pub type DeleteReply = PutReply;

struct Router {
    ring: Ring,
    /// Channel index per ring member index.
    member_channel: Vec<Option<usize>>,
}

/// A connection to a ringkv cluster.
#[derive(Clone)]
pub struct Client {
    /// One entry per node, each with `connections` clients.
    nodes: Arc<Vec<Vec<KvClient<Channel>>>>,
    router: Option<Arc<Router>>,
    next: Arc<AtomicUsize>,
    opts: ClientOptions,
}

fn channel_for(addr: &str, opts: &ClientOptions) -> Result<Endpoint, ClientError> {
    let uri = if addr.starts_with("http://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Ok(Endpoint::from_shared(uri)
        .map_err(|_| ClientError::BadEndpoint(addr.to_string()))?
        .connect_timeout(Duration::from_secs(2).min(opts.timeout))
        .tcp_nodelay(true))
}

fn kv(channel: Channel) -> KvClient<Channel> {
    KvClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn clients(ep: &Endpoint, n: usize) -> Vec<KvClient<Channel>> {
    (0..n.max(1)).map(|_| kv(ep.connect_lazy())).collect()
}

impl Client {
    /// Connect to a cluster through any of `endpoints`. Fails with a clear
    /// error when none answers.
    pub async fn connect(endpoints: &[String], opts: ClientOptions) -> Result<Client, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        let mut nodes = Vec::new();
        let mut by_addr: HashMap<String, usize> = HashMap::new();
        let mut last_err = None;
        let mut status = None;
        for addr in endpoints {
            let ep = channel_for(addr, &opts)?;
            if status.is_none() {
                match ep.connect().await {
                    Ok(ch) => {
                        let mut c = kv(ch);
                        match c.status(pb::StatusRequest {}).await {
                            Ok(s) => status = Some(s.into_inner()),
                            Err(e) => last_err = Some(ClientError::Status(e)),
                        }
                    }
                    Err(e) => {
                        last_err = Some(ClientError::Connect {
                            endpoint: addr.clone(),
                            reason: transport_reason(&e),
                        });
                    }
                }
            }
            by_addr.insert(addr.trim_start_matches("http://").to_string(), nodes.len());
            nodes.push(clients(&ep, opts.connections));
        }
        let Some(status) = status else {
            return Err(last_err.unwrap_or(ClientError::NoEndpoints));
        };
        let mut router = None;
        if opts.token_aware
            && let Some(desc) = status.ring.as_ref()
            && let Ok(ring) = Ring::new(ring_from_proto(desc))
        {
            let mut member_channel = Vec::with_capacity(ring.members().len());
            for m in ring.members() {
                let idx = match by_addr.get(&m.address) {
                    Some(&i) => i,
                    None => {
                        let ep = channel_for(&m.address, &opts)?;
                        by_addr.insert(m.address.clone(), nodes.len());
                        nodes.push(clients(&ep, opts.connections));
                        nodes.len() - 1
                    }
                };
                member_channel.push(Some(idx));
            }
            router = Some(Arc::new(Router {
                ring,
                member_channel,
            }));
        }
        Ok(Client {
            nodes: Arc::new(nodes),
            router,
            next: Arc::new(AtomicUsize::new(0)),
            opts,
        })
    }

    /// The node to ask first for `key`.
    fn pick(&self, key: &[u8]) -> usize {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = &self.router
            && let Some(&first) = r.ring.walk(key_position(key)).first()
            && let Some(Some(idx)) = r.member_channel.get(first)
        {
            return *idx;
        }
        n % self.nodes.len().max(1)
    }

    fn client(&self, node: usize) -> Option<KvClient<Channel>> {
        let conns = self.nodes.get(node % self.nodes.len().max(1))?;
        let n = self.next.load(Ordering::Relaxed);
        conns.get(n % conns.len().max(1)).cloned()
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

    /// Run `call` on the key's node; on a transport failure, once more on the
    /// next node.
    async fn with_retry<T, F, Fut>(&self, key: &[u8], call: F) -> Result<T, ClientError>
    where
        F: Fn(KvClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let first = self.pick(key);
        let attempts = self.nodes.len().min(2);
        let mut last = None;
        for attempt in 0..attempts {
            let Some(c) = self.client(first + attempt) else {
                break;
            };
            let fut = call(c);
            match tokio::time::timeout(self.opts.timeout + Duration::from_millis(500), fut).await {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                Ok(Err(s)) if is_transport_failure(&s) => last = Some(ClientError::Status(s)),
                Ok(Err(s)) => return Err(ClientError::Status(s)),
                Err(_) => {
                    return Err(ClientError::Status(tonic::Status::deadline_exceeded(
                        "no answer before the client deadline",
                    )));
                }
            }
        }
        Err(last.unwrap_or(ClientError::NoEndpoints))
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
        let req = pb::PutRequest {
            key: Bytes::copy_from_slice(key),
            value: Bytes::copy_from_slice(value),
            context: context.map(Bytes::copy_from_slice).unwrap_or_default(),
            consistency: Some(self.wire_consistency(c)),
        };
        let r = self
            .with_retry(key, |mut cl| {
                let req = req.clone();
                async move { cl.put(req).await }
            })
            .await?;
        Ok(PutReply {
            context: r.context,
            acks: r.acks,
        })
    }

    /// Every concurrent version of `key`.
    pub async fn get(&self, key: &[u8], c: &Consistency) -> Result<GetReply, ClientError> {
        let req = pb::GetRequest {
            key: Bytes::copy_from_slice(key),
            consistency: Some(self.wire_consistency(c)),
        };
        let r = self
            .with_retry(key, |mut cl| {
                let req = req.clone();
                async move { cl.get(req).await }
            })
            .await?;
        Ok(GetReply {
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
        })
    }

    /// Delete `key` (a versioned tombstone).
    pub async fn delete(
        &self,
        key: &[u8],
        context: Option<&[u8]>,
        c: &Consistency,
    ) -> Result<DeleteReply, ClientError> {
        let req = pb::DeleteRequest {
            key: Bytes::copy_from_slice(key),
            context: context.map(Bytes::copy_from_slice).unwrap_or_default(),
            consistency: Some(self.wire_consistency(c)),
        };
        let r = self
            .with_retry(key, |mut cl| {
                let req = req.clone();
                async move { cl.delete(req).await }
            })
            .await?;
        Ok(PutReply {
            context: r.context,
            acks: r.acks,
        })
    }

    /// Status of the first reachable node.
    pub async fn status(&self) -> Result<pb::StatusResponse, ClientError> {
        self.with_retry(b"", |mut cl| async move {
            cl.status(pb::StatusRequest {}).await
        })
        .await
    }

    /// Status of node `i` of the endpoints given to `connect`.
    pub async fn status_of(&self, i: usize) -> Result<pb::StatusResponse, ClientError> {
        let mut cl = self.client(i).ok_or(ClientError::NoEndpoints)?;
        cl.status(pb::StatusRequest {})
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
        let mut cl = self.client(i).ok_or(ClientError::NoEndpoints)?;
        cl.admin(pb::AdminRequest { op: Some(op) })
            .await
            .map(tonic::Response::into_inner)
            .map_err(ClientError::Status)
    }
}

/// A status that means "could not reach the node" rather than an answer.
fn is_transport_failure(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::Unavailable && std::error::Error::source(s).is_some()
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
