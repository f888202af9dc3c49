//! Quorum reads and writes, read repair, sloppy quorum.
//!
//! Any node coordinates any request:
//!
//! - **Targets.** The ring's walk for the key gives the preference list (first
//!   N) and the fallbacks after it. A preference-list member that is
//!   unavailable is replaced by the next available fallback, which stores the
//!   write with a hint naming the owner. A hinted write counts towards W only
//!   when the request (or the cluster default) says `sloppy`.
//! - **Writes.** One target coordinates the write: it mints the new dot
//!   against its local versions and returns the resulting set (this node,
//!   when it is a target; otherwise the first target, one pipelined hop). The
//!   set is then merged into every other target in parallel; the client is
//!   answered after W acknowledgements.
//! - **Reads.** Every target is asked; the client is answered after R replies,
//!   merged by version (concurrent versions become siblings). The remaining
//!   replies are awaited in the background and any replica that did not
//!   already have the merged result is repaired (read repair).

pub mod legs;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

use crate::cluster::{Cluster, PeerError};
use crate::config::check_quorum;
use crate::proto::{CoordinatePut, Fetch, Merge, Purge, replica_request, replica_response};
use crate::ring::{RingMember, key_position};
use crate::version::{Dot, VersionSet, VersionVector, now_millis};

/// Per-request consistency; `None` means the node's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Consistency {
    /// Write quorum.
    pub w: Option<u32>,
    /// Read quorum.
    pub r: Option<u32>,
    /// Count hinted writes towards W.
    pub sloppy: Option<bool>,
    /// Deadline for the whole request.
    pub timeout: Option<Duration>,
}

/// The node's defaults and limits.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// Default W.
    pub write_quorum: u32,
    /// Default R.
    pub read_quorum: u32,
    /// Default sloppiness.
    pub sloppy: bool,
    /// Default deadline.
    pub timeout: Duration,
    /// Largest key.
    pub max_key_bytes: usize,
    /// Largest value.
    pub max_value_bytes: usize,
    /// How long a tombstone every replica acknowledged is kept before purge.
    pub tombstone_grace: Duration,
    /// Share of reads that ask all N replicas (for read repair) rather than R.
    pub read_repair_chance: f64,
}

/// Why a request failed; maps onto gRPC status codes at the edge.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CoordError {
    /// The request can never succeed as given (INVALID_ARGUMENT).
    #[error("{0}")]
    InvalidArgument(String),
    /// The write was refused because the key holds too many concurrent versions (the sibling
    /// bound); nothing changed. A read and a write with the context it returned resolve them
    /// (ABORTED: retry at the level of the read-modify-write, not the same request).
    #[error("{0}")]
    Conflict(String),
    /// Too few replicas answered (UNAVAILABLE).
    #[error(
        "{what} quorum not met: {got} of {needed} required replicas answered ({tried} tried){detail}"
    )]
    Unavailable {
        /// `write` or `read`.
        what: &'static str,
        /// Replicas that answered successfully (counting towards the quorum).
        got: u32,
        /// W or R.
        needed: u32,
        /// Replicas asked.
        tried: u32,
        /// Why the others failed.
        detail: String,
    },
    /// A replica failed in a way retrying elsewhere would not fix (INTERNAL).
    #[error("{0}")]
    Internal(String),
}

/// What a write returns.
#[derive(Clone, Debug)]
pub struct WriteOutcome {
    /// Context covering the new version.
    pub context: VersionVector,
    /// Acknowledgements counted towards W before answering.
    pub acks: u32,
    /// The new version's dot (`None` only if the coordinating replica's set no longer holds
    /// it, which a sibling bound can cause).
    pub dot: Option<Dot>,
}

/// What a read returns.
#[derive(Clone, Debug)]
pub struct ReadOutcome {
    /// Merged versions of the replies (empty set when absent).
    pub versions: VersionSet,
    /// Replies merged.
    pub replies: u32,
}

/// A read whose R replicas have not all answered after this long asks one more replica (and
/// another after each further wait): far above a healthy fetch round trip here (p50 about
/// 0.2 ms in README's consistency runs), far below any timeout. Cassandra calls this
/// speculative retry.
pub const SPECULATE_READ_AFTER: Duration = Duration::from_millis(50);

/// Coordinator counters.
#[derive(Debug, Default)]
pub struct CoordStats {
    /// Writes (puts and deletes) coordinated.
    pub writes: AtomicU64,
    /// Reads coordinated.
    pub reads: AtomicU64,
    /// Writes that failed their quorum.
    pub write_quorum_failures: AtomicU64,
    /// Reads that failed their quorum.
    pub read_quorum_failures: AtomicU64,
    /// Reads that asked one more replica because the first ones were slow to answer.
    pub read_speculations: AtomicU64,
    /// Writes sent to a fallback with a hint.
    pub hinted_writes: AtomicU64,
    /// Writes whose coordinating replica was another node.
    pub forwarded_writes: AtomicU64,
    /// Replicas repaired after a read.
    pub read_repairs: AtomicU64,
    /// Recent replica round trips (for staleness models).
    pub legs: legs::Legs,
}

/// One replica to contact for a request.
#[derive(Clone, Debug)]
struct Target {
    member: RingMember,
    /// The owner this fallback stands in for.
    hint_for: Option<String>,
    /// A replica of the ring being moved to (join/leave in progress) that is not a replica
    /// now (a pending replica): it gets every write, and a write waits for one more
    /// acknowledgement per pending replica.
    extra: bool,
}

impl Target {
    /// Whether its acknowledgement counts towards a quorum. A pending replica's does (a write
    /// waits for W plus the pending replicas, see [`Coordinator::write`]).
    fn counts(&self, sloppy: bool) -> bool {
        self.hint_for.is_none() || sloppy
    }

    /// A preference-list replica answering for itself.
    fn is_primary(&self) -> bool {
        !self.extra && self.hint_for.is_none()
    }
}

/// Quorum logic over a [`Cluster`].
pub struct Coordinator {
    cluster: Arc<Cluster>,
    defaults: Defaults,
    stats: Arc<CoordStats>,
}

impl Coordinator {
    /// A coordinator for this node.
    pub fn new(cluster: Arc<Cluster>, defaults: Defaults) -> Self {
        Coordinator {
            cluster,
            defaults,
            stats: Arc::new(CoordStats::default()),
        }
    }

    /// The cluster underneath.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Defaults and limits.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// Counters.
    pub fn stats(&self) -> &CoordStats {
        &self.stats
    }

    fn check_key(&self, key: &[u8]) -> Result<(), CoordError> {
        if key.is_empty() {
            return Err(CoordError::InvalidArgument(
                "the key is empty; keys must be 1 byte or longer".into(),
            ));
        }
        if key.len() > self.defaults.max_key_bytes {
            return Err(CoordError::InvalidArgument(format!(
                "the key is {} bytes; the limit is {} bytes",
                key.len(),
                self.defaults.max_key_bytes
            )));
        }
        Ok(())
    }

    /// Targets for a key: every preference-list member, each unavailable one
    /// replaced by the next available fallback (with a hint). With `writes`,
    /// also the replicas of the next ring during a join or leave (extras).
    fn targets(&self, key: &[u8], writes: bool) -> (Vec<Target>, u32) {
        let ring = self.cluster.ring();
        let n = ring.replication();
        let pos = key_position(key);
        let walk = ring.walk(pos);
        let members = ring.members();
        let member = |i: usize| members.get(i).cloned();
        let mut fallbacks = walk
            .iter()
            .skip(n)
            .filter_map(|&i| member(i))
            .filter(|m| self.cluster.is_available(m));
        let mut out = Vec::with_capacity(n + 1);
        for &i in walk.iter().take(n) {
            let Some(m) = member(i) else { continue };
            if self.cluster.is_available(&m) {
                out.push(Target {
                    member: m,
                    hint_for: None,
                    extra: false,
                });
            } else if let Some(f) = fallbacks.next() {
                out.push(Target {
                    member: f,
                    hint_for: Some(m.id.clone()),
                    extra: false,
                });
            }
        }
        if writes && let Some(next) = ring.next() {
            for &i in next.walk(pos).iter().take(n) {
                if let Some(m) = next.member(i)
                    && !walk
                        .iter()
                        .take(n)
                        .any(|&c| members.get(c).is_some_and(|cm| cm.id == m.id))
                    && !out.iter().any(|t| t.member.id == m.id)
                    && self.cluster.is_available(m)
                {
                    out.push(Target {
                        member: m.clone(),
                        hint_for: None,
                        extra: true,
                    });
                }
            }
        }
        (out, n as u32)
    }

    fn quorum(
        &self,
        what: &'static str,
        asked: Option<u32>,
        default: u32,
        n: u32,
    ) -> Result<u32, CoordError> {
        let q = asked.unwrap_or(default);
        check_quorum(what, q, n).map_err(|e| CoordError::InvalidArgument(e.to_string()))?;
        Ok(q)
    }

    /// Store a value (or, with `None`, a tombstone) with a causal context.
    pub async fn write(
        &self,
        key: Bytes,
        value: Option<Bytes>,
        context: Bytes,
        c: Consistency,
    ) -> Result<WriteOutcome, CoordError> {
        self.check_key(&key)?;
        if let Some(v) = &value
            && v.len() > self.defaults.max_value_bytes
        {
            return Err(CoordError::InvalidArgument(format!(
                "the value is {} bytes; the limit is {} bytes",
                v.len(),
                self.defaults.max_value_bytes
            )));
        }
        // Checked here so a bad context is the caller's error, not a replica's.
        let seen = VersionVector::decode_context(&context).map_err(|e| {
            CoordError::InvalidArgument(format!(
                "the causal context is not one this store issued ({e}); pass the context from a get, or none"
            ))
        })?;
        let (targets, n) = self.targets(&key, true);
        let asked_w = self.quorum("write quorum (W)", c.w, self.defaults.write_quorum, n)?;
        // During a join or leave, wait for W plus the key's pending replicas (those of the next
        // ring that are not replicas now; Cassandra's rule). Of the W + p acknowledgements at
        // most p come from replicas about to leave, so at least W of the next ring hold the
        // write and R of them after the cut-over still overlap it.
        let pending = targets.iter().filter(|t| t.extra).count();
        let w = asked_w.saturating_add(u32::try_from(pending).unwrap_or(u32::MAX));
        let sloppy = c.sloppy.unwrap_or(self.defaults.sloppy);
        let deadline = Instant::now() + c.timeout.unwrap_or(self.defaults.timeout);
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        let hinted = targets.iter().filter(|t| t.hint_for.is_some()).count();
        self.stats
            .hinted_writes
            .fetch_add(hinted as u64, Ordering::Relaxed);

        // Pick the coordinating replica: this node if it is a target, else the
        // targets in order until one applies the write.
        let me = self.cluster.me().to_string();
        let mut order: Vec<usize> = (0..targets.len())
            .filter(|&i| targets.get(i).is_some_and(|t| !t.extra))
            .collect();
        if let Some(pos) = targets.iter().position(|t| t.member.id == me) {
            order.retain(|&i| i != pos);
            order.insert(0, pos);
        }
        let timestamp_ms = now_millis();
        let mut failures: Vec<String> = Vec::new();
        // The coordinating replica's result: its index, the set, its encoding, and (when it
        // is this node) the local write's durable acknowledgement, still to come.
        let mut coordinated: Option<(usize, VersionSet, Bytes, Option<Pending>)> = None;
        for i in order {
            let Some(t) = targets.get(i) else { continue };
            let op = replica_request::Op::Coordinate(CoordinatePut {
                key: key.clone(),
                value: value.clone().unwrap_or_default(),
                tombstone: value.is_none(),
                context: context.clone(),
                timestamp_ms,
                hint_for: t.hint_for.clone().unwrap_or_default(),
            });
            let left = deadline.saturating_duration_since(Instant::now());
            let result = if t.member.id == me && t.hint_for.is_none() {
                // Local: hear the new set as soon as it is applied and send it to the other
                // replicas while this node's fsync runs; its ack joins the others'.
                let started = Instant::now();
                self.cluster.coordinate_local(op, left).await.map(|m| {
                    let target = t.clone();
                    let peer = me.clone();
                    let stats = self.stats.clone();
                    let durable: Pending = Box::pin(async move {
                        let r = match tokio::time::timeout_at(deadline, m.durable).await {
                            Ok(Ok(resp)) => crate::cluster::peers::check_response(&peer, resp),
                            Ok(Err(_)) => Err(PeerError::Disconnected(peer)),
                            Err(_) => Err(PeerError::Timeout(peer)),
                        };
                        if r.is_ok() {
                            stats.legs.local_durable.record(started.elapsed());
                        }
                        (target, r)
                    });
                    (m.set, m.encoded, Some(durable))
                })
            } else {
                match self.cluster.send(&t.member, op, left).await {
                    Ok(resp) => match versions_of(&resp) {
                        Some(b) => match VersionSet::decode(&b) {
                            Ok(set) => Ok((set, b, None)),
                            Err(_) => {
                                failures.push(format!(
                                    "{}: answered with unreadable versions",
                                    t.member.id
                                ));
                                continue;
                            }
                        },
                        None => {
                            failures.push(format!("{}: answered without versions", t.member.id));
                            continue;
                        }
                    },
                    Err(e) => Err(e),
                }
            };
            match result {
                Ok((set, encoded, durable)) => {
                    coordinated = Some((i, set, encoded, durable));
                    break;
                }
                Err(PeerError::Remote {
                    peer,
                    message,
                    conflict: true,
                    ..
                }) => {
                    return Err(CoordError::Conflict(format!("{peer}: {message}")));
                }
                Err(PeerError::Remote {
                    peer,
                    message,
                    invalid: true,
                    ..
                }) => {
                    return Err(CoordError::InvalidArgument(format!("{peer}: {message}")));
                }
                Err(e) => failures.push(e.to_string()),
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        let Some((coord_idx, set, encoded, local_durable)) = coordinated else {
            self.stats
                .write_quorum_failures
                .fetch_add(1, Ordering::Relaxed);
            return Err(unavailable("write", 0, w, targets.len(), &failures));
        };
        if targets.get(coord_idx).is_some_and(|t| t.member.id != me) {
            self.stats.forwarded_writes.fetch_add(1, Ordering::Relaxed);
        }
        let context_out = set.clock().clone();
        let dot = new_dot(&set, &seen, value.as_ref(), timestamp_ms);
        let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
        // A remote coordinating replica answered after its write was durable: it counts
        // now. The local one counts when its durable answer arrives.
        let mut acks: u32 = 0;
        let mut primaries_acked = 0usize;
        match local_durable {
            Some(d) => pending.push(d),
            None => {
                if let Some(t) = targets.get(coord_idx) {
                    acks += u32::from(t.counts(sloppy));
                    primaries_acked += usize::from(t.is_primary());
                }
            }
        }
        for (i, t) in targets.iter().enumerate() {
            if i == coord_idx {
                continue;
            }
            let cluster = self.cluster.clone();
            let t = t.clone();
            let op = replica_request::Op::Merge(Merge {
                key: key.clone(),
                versions: encoded.clone(),
                hint_for: t.hint_for.clone().unwrap_or_default(),
            });
            let stats = self.stats.clone();
            pending.push(Box::pin(async move {
                let started = Instant::now();
                let left = deadline.saturating_duration_since(started);
                let r = cluster.send(&t.member, op, left).await;
                if r.is_ok() {
                    stats.legs.merge.record(started.elapsed());
                }
                (t, r)
            }));
        }
        while acks < w {
            let Some((t, result)) = pending.next().await else {
                break;
            };
            match result {
                Ok(_) => {
                    acks += u32::from(t.counts(sloppy));
                    primaries_acked += usize::from(t.is_primary());
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        // Stragglers finish in the background. A tombstone every replica of
        // the preference list acknowledged is scheduled for purge.
        if set.is_deleted() && acks >= w {
            let purge = PurgePlan {
                cluster: self.cluster.clone(),
                key: key.clone(),
                digest: crate::replica::Replica::digest(&key, &encoded),
                due_ms: now_millis()
                    .saturating_add(self.defaults.tombstone_grace.as_millis() as u64),
                primaries: targets
                    .iter()
                    .filter(|t| t.is_primary())
                    .map(|t| t.member.clone())
                    .collect(),
                n: n as usize,
            };
            tokio::spawn(purge.run_after(pending, primaries_acked));
        } else {
            finish_in_background(pending);
        }
        if acks < w {
            self.stats
                .write_quorum_failures
                .fetch_add(1, Ordering::Relaxed);
            return Err(unavailable("write", acks, w, targets.len(), &failures));
        }
        Ok(WriteOutcome {
            context: context_out,
            acks,
            dot,
        })
    }

    /// Read every concurrent version of a key.
    pub async fn read(&self, key: Bytes, c: Consistency) -> Result<ReadOutcome, CoordError> {
        self.check_key(&key)?;
        let (targets, n) = self.targets(&key, false);
        let r = self.quorum("read quorum (R)", c.r, self.defaults.read_quorum, n)?;
        let sloppy = c.sloppy.unwrap_or(self.defaults.sloppy);
        let timeout = c.timeout.unwrap_or(self.defaults.timeout);
        let deadline = Instant::now() + timeout;
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        // Ask R replicas (this node first: no network hop), and all of them
        // with probability `read_repair_chance`; a failure brings in the next, and so does
        // silence for `SPECULATE_READ_AFTER` (a frozen or overloaded replica that no failure
        // detector has caught yet).
        let me = self.cluster.me();
        let mut order: Vec<Target> = targets.clone();
        order.sort_by_key(|t| t.member.id != me);
        let all = rand::random::<f64>() < self.defaults.read_repair_chance;
        let mut unasked = order.into_iter();
        let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
        let ask = |t: Target| -> Pending {
            let cluster = self.cluster.clone();
            let op = replica_request::Op::Fetch(Fetch { key: key.clone() });
            // Another replica's answer is timed; this node's own has no network leg.
            let stats = (t.member.id != me).then(|| self.stats.clone());
            Box::pin(async move {
                let started = Instant::now();
                let left = deadline.saturating_duration_since(started);
                let r = cluster.send(&t.member, op, left).await;
                if let (Some(stats), true) = (stats, r.is_ok()) {
                    stats.legs.fetch.record(started.elapsed());
                }
                (t, r)
            })
        };
        let mut counting_in_flight = 0u32;
        for t in unasked.by_ref() {
            let counts = t.counts(sloppy);
            pending.push(ask(t));
            counting_in_flight += u32::from(counts);
            if counting_in_flight >= r && !all {
                break;
            }
        }
        let mut merged = VersionSet::new();
        let mut replies: Vec<(Target, VersionSet)> = Vec::new();
        let mut counted = 0u32;
        let mut failures = Vec::new();
        while counted < r {
            let next = if unasked.len() > 0 {
                match tokio::time::timeout(SPECULATE_READ_AFTER, pending.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        // Past the deadline a new request would fail at once; wait for
                        // those in flight instead.
                        if Instant::now() >= deadline {
                            unasked.by_ref().for_each(drop);
                            continue;
                        }
                        if let Some(t) = unasked.next() {
                            self.stats.read_speculations.fetch_add(1, Ordering::Relaxed);
                            pending.push(ask(t));
                        }
                        continue;
                    }
                }
            } else {
                pending.next().await
            };
            let Some((t, result)) = next else {
                break;
            };
            let failed = match result
                .map_err(|e| e.to_string())
                .and_then(|resp| decode_reply(&resp).map_err(|e| format!("{}: {e}", t.member.id)))
            {
                Ok(set) => {
                    // Unbounded: a read never refuses what the replicas hold.
                    let _ = merged.merge(&set, usize::MAX);
                    counted += u32::from(t.counts(sloppy));
                    replies.push((t, set));
                    false
                }
                Err(e) => {
                    failures.push(e);
                    true
                }
            };
            if failed && let Some(next) = unasked.next() {
                pending.push(ask(next));
            }
        }
        if counted < r {
            self.stats
                .read_quorum_failures
                .fetch_add(1, Ordering::Relaxed);
            finish_in_background(pending);
            return Err(unavailable("read", counted, r, targets.len(), &failures));
        }
        // Read repair with everything that answers before the deadline.
        let disagree = replies.iter().any(|(_, s)| *s != merged);
        if pending.is_empty() && !disagree {
            return Ok(ReadOutcome {
                versions: merged,
                replies: counted,
            });
        }
        let cluster = self.cluster.clone();
        let stats = self.stats.clone();
        let result = merged.clone();
        tokio::spawn(async move {
            let mut merged = merged;
            while let Ok(Some((t, result))) =
                tokio::time::timeout_at(deadline, pending.next()).await
            {
                // A replica that failed is skipped; the others still count.
                if let Ok(resp) = result
                    && let Ok(set) = decode_reply(&resp)
                {
                    // Unbounded: a read never refuses what the replicas hold.
                    let _ = merged.merge(&set, usize::MAX);
                    replies.push((t, set));
                }
            }
            read_repair(&cluster, &stats, key, merged, replies, deadline).await;
        });
        Ok(ReadOutcome {
            versions: result,
            replies: counted,
        })
    }
}

/// The dot of the version a write made, found in the coordinating replica's resulting set:
/// the sibling the write's context did not cover, with its value and timestamp. Among equal
/// candidates (the same value written at the same millisecond, concurrently), the newest.
fn new_dot(
    set: &VersionSet,
    context: &VersionVector,
    value: Option<&Bytes>,
    timestamp_ms: u64,
) -> Option<Dot> {
    set.siblings()
        .iter()
        .filter(|s| {
            !context.covers(s.dot) && s.timestamp_ms == timestamp_ms && s.value.as_ref() == value
        })
        .map(|s| s.dot)
        .max_by_key(|d| d.counter)
}

/// One replica request in flight.
type Pending = Pin<Box<dyn Future<Output = MergeResult> + Send>>;

/// Let requests nobody waits for any more run to completion (a replica still
/// applies a write that was sent to it) without holding up the caller.
fn finish_in_background(mut pending: FuturesUnordered<Pending>) {
    if !pending.is_empty() {
        tokio::spawn(async move { while pending.next().await.is_some() {} });
    }
}

/// What is needed to purge a tombstone once every replica acknowledged it.
struct PurgePlan {
    cluster: Arc<Cluster>,
    key: Bytes,
    digest: u64,
    due_ms: u64,
    primaries: Vec<RingMember>,
    n: usize,
}

type MergeResult = (Target, Result<crate::proto::ReplicaResponse, PeerError>);

impl PurgePlan {
    /// Wait for the remaining acknowledgements; if all N preference-list
    /// replicas answered for themselves, record the purge on each.
    async fn run_after(self, mut pending: FuturesUnordered<Pending>, mut acked: usize) {
        while let Some((t, result)) = pending.next().await {
            if result.is_ok() {
                acked += usize::from(t.is_primary());
            }
        }
        if acked < self.n || self.primaries.len() < self.n {
            return;
        }
        for m in &self.primaries {
            let op = replica_request::Op::Purge(Purge {
                key: self.key.clone(),
                digest: self.digest,
                due_ms: self.due_ms,
            });
            if let Err(e) = self.cluster.send(m, op, Duration::from_secs(2)).await {
                tracing::debug!(replica = %m.id, error = %e, "purge record not delivered; the tombstone stays");
            }
        }
    }
}

/// Send the merged set to every replica whose reply it supersedes.
async fn read_repair(
    cluster: &Cluster,
    stats: &CoordStats,
    key: Bytes,
    merged: VersionSet,
    replies: Vec<(Target, VersionSet)>,
    deadline: Instant,
) {
    if merged.is_empty() {
        return;
    }
    let encoded = Bytes::from(merged.encode());
    for (t, set) in replies {
        if t.hint_for.is_some() || set == merged {
            continue;
        }
        let op = replica_request::Op::Merge(Merge {
            key: key.clone(),
            versions: encoded.clone(),
            hint_for: String::new(),
        });
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(200));
        match cluster.send(&t.member, op, left).await {
            Ok(_) => {
                stats.read_repairs.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(replica = %t.member.id, error = %e, "read repair failed"),
        }
    }
}

fn versions_of(resp: &crate::proto::ReplicaResponse) -> Option<Bytes> {
    match &resp.result {
        Some(replica_response::Result::Versions(b)) => Some(b.clone()),
        _ => None,
    }
}

fn decode_reply(resp: &crate::proto::ReplicaResponse) -> Result<VersionSet, String> {
    match versions_of(resp) {
        Some(b) if b.is_empty() => Ok(VersionSet::new()),
        Some(b) => VersionSet::decode(&b).map_err(|e| e.to_string()),
        None => Err("empty answer".into()),
    }
}

fn unavailable(
    what: &'static str,
    got: u32,
    needed: u32,
    tried: usize,
    failures: &[String],
) -> CoordError {
    let detail = if failures.is_empty() {
        String::new()
    } else {
        format!(": {}", failures.join("; "))
    };
    CoordError::Unavailable {
        what,
        got,
        needed,
        tried: tried as u32,
        detail,
    }
}
