//! Merkle anti-entropy, ring sync and the tombstone reaper.
//!
//! A round, for every peer that shares segments with this node:
//!
//! 1. one `MerkleLevel` call fetches the peer's roots of every shared segment;
//! 2. for each segment whose roots differ, walk down the fixed-shape tree
//!    (16 children, then 256 leaves) fetching only the children of differing
//!    nodes;
//! 3. for the differing leaf buckets, the peer sends `(key, digest)` pairs
//!    (`ScanRange` with `digests_only`), compared against the local bucket;
//! 4. only the keys that differ move: pulled with `Fetch` and merged locally,
//!    then the local result pushed back with `Merge` (siblings where
//!    concurrent — merging is the same as for replication).
//!
//! Rounds run every `anti_entropy_interval_ms` and on demand (`ringkv
//! repair`). The same loop asks peers for their ring version and adopts a
//! newer ring (a node that was down during an admin change catches up), and
//! purges due tombstones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::config::FailureConfig;
use crate::proto::replica_client::ReplicaClient;
use crate::proto::{
    Fetch, Merge, MerkleLevelRequest, Range, ScanRangeRequest, replica_request, replica_response,
};
use crate::replica::merkle::{DEPTH, FANOUT, leaf_bounds};
use crate::replica::{RangeEntry, Replica};
use crate::ring::{RingMember, Segment};
use crate::version::{VersionSet, now_millis};
use crate::wire::ring_from_proto;

use super::Cluster;
use super::pace::Pace;
use super::peers::FROM_HEADER;

/// Differing segments walked per second at most: each costs a few calls and
/// range scans on both sides, so a round spreads them out.
const SEGMENTS_PER_SEC: u32 = 50;
/// Keys written this recently are not exchanged (they are likely in flight).
const SETTLE_MS: u64 = 5_000;
/// Deadline of one anti-entropy call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Tombstones purged per reaper pass.
const PURGE_BATCH: usize = 1024;
/// How often due tombstones are purged and peers' rings are checked.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(2);

/// Anti-entropy counters.
#[derive(Debug, Default)]
pub struct AntiEntropyStats {
    /// Rounds completed.
    pub rounds: AtomicU64,
    /// Segment comparisons (one per segment per peer).
    pub segments_compared: AtomicU64,
    /// Comparisons whose roots differed.
    pub segments_differing: AtomicU64,
    /// Keys pulled from peers and merged locally.
    pub keys_pulled: AtomicU64,
    /// Keys pushed to peers.
    pub keys_pushed: AtomicU64,
}

/// What one round did.
#[derive(Clone, Debug, Default)]
pub struct RoundReport {
    /// Peers compared with.
    pub peers: usize,
    /// Segment comparisons.
    pub segments: u64,
    /// Comparisons that differed.
    pub differing: u64,
    /// Keys pulled.
    pub pulled: u64,
    /// Keys pushed.
    pub pushed: u64,
    /// Peers that could not be compared, with why.
    pub skipped: Vec<String>,
}

impl std::fmt::Display for RoundReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "compared {} segments with {} peers: {} differed, {} keys pulled, {} pushed",
            self.segments, self.peers, self.differing, self.pulled, self.pushed
        )?;
        if !self.skipped.is_empty() {
            write!(f, "; skipped: {}", self.skipped.join("; "))?;
        }
        Ok(())
    }
}

/// Start the periodic rounds and housekeeping.
pub fn start(cluster: Arc<Cluster>, cfg: FailureConfig) {
    let c = cluster.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HOUSEKEEPING_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            sync_ring(&c).await;
            let replica = c.replica().clone();
            let _ =
                tokio::task::spawn_blocking(move || replica.purge_due(now_millis(), PURGE_BATCH))
                    .await;
        }
    });
    if cfg.anti_entropy_interval_ms == 0 {
        return;
    }
    tokio::spawn(async move {
        let period = Duration::from_millis(cfg.anti_entropy_interval_ms);
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let report = run_round(&cluster).await;
            if report.differing > 0 {
                tracing::info!(%report, "anti-entropy round repaired differences");
            }
        }
    });
}

fn request<T>(cluster: &Cluster, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(CALL_TIMEOUT);
    if let Ok(v) = cluster.me().parse() {
        req.metadata_mut().insert(FROM_HEADER, v);
    }
    req
}

fn client_for(
    cluster: &Cluster,
    m: &RingMember,
) -> Option<ReplicaClient<tonic::transport::Channel>> {
    let peer = cluster.peers().get(&m.id, &m.address)?;
    Some(
        ReplicaClient::new(peer.channel())
            .max_decoding_message_size(crate::config::MAX_MESSAGE_BYTES),
    )
}

/// Adopt a newer ring held by any peer.
async fn sync_ring(cluster: &Arc<Cluster>) {
    let ring = cluster.ring();
    let members: Vec<RingMember> = ring
        .members()
        .iter()
        .chain(ring.next().map(|n| n.members()).unwrap_or(&[]))
        .filter(|m| m.id != cluster.me() && cluster.is_available(m))
        .cloned()
        .collect();
    for m in members {
        let Some(peer) = cluster.peers().get(&m.id, &m.address) else {
            continue;
        };
        let mut kv = crate::proto::kv_client::KvClient::new(peer.channel());
        let mut req = tonic::Request::new(crate::proto::StatusRequest {});
        req.set_timeout(Duration::from_secs(1));
        if let Ok(s) = kv.status(req).await
            && let Some(r) = s.into_inner().ring
            && r.version > cluster.ring().version()
        {
            let _ = cluster.adopt_ring(ring_from_proto(&r)).await;
        }
    }
}

/// One anti-entropy round with every peer sharing segments with this node.
pub async fn run_round(cluster: &Arc<Cluster>) -> RoundReport {
    let ring = cluster.ring();
    let mut report = RoundReport::default();
    let Some(me) = ring.index_of(cluster.me()) else {
        return report;
    };
    let mut shared: BTreeMap<usize, Vec<Segment>> = BTreeMap::new();
    for (seg, pl) in ring.segments() {
        if pl.contains(&me) {
            for &p in pl.iter().filter(|&&p| p != me) {
                shared.entry(p).or_default().push(seg);
            }
        }
    }
    for (peer_idx, segments) in shared {
        let Some(member) = ring.member(peer_idx).cloned() else {
            continue;
        };
        if !cluster.is_available(&member) {
            report.skipped.push(format!("{} unavailable", member.id));
            continue;
        }
        match compare_with(cluster, &member, &segments, &mut report).await {
            Ok(()) => report.peers += 1,
            Err(e) => report.skipped.push(format!("{}: {e}", member.id)),
        }
    }
    let s = cluster.anti_entropy();
    s.rounds.fetch_add(1, Ordering::Relaxed);
    s.segments_compared
        .fetch_add(report.segments, Ordering::Relaxed);
    s.segments_differing
        .fetch_add(report.differing, Ordering::Relaxed);
    s.keys_pulled.fetch_add(report.pulled, Ordering::Relaxed);
    s.keys_pushed.fetch_add(report.pushed, Ordering::Relaxed);
    report
}

fn range(seg: Segment) -> Range {
    Range {
        start: seg.start,
        end: seg.end,
    }
}

async fn remote_level(
    cluster: &Cluster,
    client: &mut ReplicaClient<tonic::transport::Channel>,
    segs: &[Segment],
    level: u32,
    nodes: Vec<u32>,
) -> Result<Vec<Option<Vec<u64>>>, String> {
    let resp = client
        .merkle_level(request(
            cluster,
            MerkleLevelRequest {
                ranges: segs.iter().copied().map(range).collect(),
                level,
                nodes,
            },
        ))
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    Ok(resp
        .trees
        .into_iter()
        .map(|t| t.tracked.then_some(t.hashes))
        .collect())
}

async fn compare_with(
    cluster: &Arc<Cluster>,
    member: &RingMember,
    segments: &[Segment],
    report: &mut RoundReport,
) -> Result<(), String> {
    let mut client = client_for(cluster, member).ok_or("bad address")?;
    let merkle = cluster.replica().merkle();
    let roots = remote_level(cluster, &mut client, segments, 0, Vec::new()).await?;
    let mut pace = Pace::new(SEGMENTS_PER_SEC);
    for (seg, remote) in segments.iter().zip(roots) {
        report.segments += 1;
        let (Some(remote), Some(local)) = (remote, merkle.level(*seg, 0)) else {
            continue;
        };
        if remote == local {
            continue;
        }
        report.differing += 1;
        pace.step().await;
        let leaves = differing_leaves(cluster, &mut client, *seg).await?;
        let (pulled, pushed) = sync_buckets(cluster, member, &mut client, *seg, &leaves).await?;
        report.pulled += pulled;
        report.pushed += pushed;
    }
    Ok(())
}

/// Walk down the tree of one segment, returning leaf indexes that differ.
async fn differing_leaves(
    cluster: &Arc<Cluster>,
    client: &mut ReplicaClient<tonic::transport::Channel>,
    seg: Segment,
) -> Result<Vec<u32>, String> {
    let merkle = cluster.replica().merkle();
    let mut candidates: Vec<u32> = (0..FANOUT as u32).collect();
    for level in 1..=DEPTH {
        let local = merkle
            .level(seg, level)
            .ok_or("segment no longer tracked")?;
        let remote = remote_level(cluster, client, &[seg], level, candidates.clone())
            .await?
            .into_iter()
            .next()
            .flatten()
            .ok_or("peer no longer tracks the segment")?;
        let differing: Vec<u32> = candidates
            .iter()
            .zip(remote)
            .filter(|(i, h)| local.get(**i as usize) != Some(h))
            .map(|(i, _)| *i)
            .collect();
        if level == DEPTH || differing.is_empty() {
            return Ok(differing);
        }
        candidates = differing
            .iter()
            .flat_map(|&i| (i * FANOUT as u32)..((i + 1) * FANOUT as u32))
            .collect();
    }
    Ok(Vec::new())
}

/// Exchange the keys that differ in some leaf buckets. Returns (pulled, pushed).
async fn sync_buckets(
    cluster: &Arc<Cluster>,
    member: &RingMember,
    client: &mut ReplicaClient<tonic::transport::Channel>,
    seg: Segment,
    leaves: &[u32],
) -> Result<(u64, u64), String> {
    // The roots differed but no leaf does any more (writes in flight landed
    // meanwhile). An empty bucket list would ask the peer for the whole
    // segment, so there is nothing to exchange.
    if leaves.is_empty() {
        return Ok((0, 0));
    }
    let mut stream = client
        .scan_range(request(
            cluster,
            ScanRangeRequest {
                range: Some(range(seg)),
                after_position: None,
                after_key: Bytes::new(),
                buckets: leaves.to_vec(),
                limit: 0,
                digests_only: true,
            },
        ))
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    // Keys written in the last SETTLE_MS are most likely still on their way
    // to some replica (replication in flight, a hint being replayed): leave
    // them to a later round instead of moving them twice.
    let settled_before = now_millis().saturating_sub(SETTLE_MS);
    let mut remote: BTreeMap<Bytes, u64> = BTreeMap::new();
    let mut recent: std::collections::BTreeSet<Bytes> = std::collections::BTreeSet::new();
    while let Some(e) = stream
        .message()
        .await
        .map_err(|s| s.message().to_string())?
    {
        if e.newest_ms > settled_before {
            recent.insert(e.key.clone());
        }
        remote.insert(e.key, e.digest);
    }
    let replica = cluster.replica().clone();
    let buckets = leaves.to_vec();
    let local: Vec<RangeEntry> =
        tokio::task::spawn_blocking(move || scan_buckets(&replica, seg, &buckets))
            .await
            .map_err(|e| e.to_string())??;
    for e in &local {
        if crate::version::newest_timestamp(&e.versions).is_some_and(|t| t > settled_before) {
            recent.insert(e.key.clone());
        }
    }
    let local_digest: BTreeMap<Bytes, u64> = local
        .iter()
        .filter(|e| !recent.contains(&e.key))
        .map(|e| (e.key.clone(), Replica::digest(&e.key, &e.versions)))
        .collect();
    remote.retain(|k, _| !recent.contains(k));
    let to_pull: Vec<Bytes> = remote
        .iter()
        .filter(|(k, d)| local_digest.get(*k) != Some(d))
        .map(|(k, _)| k.clone())
        .collect();
    let mut to_push: Vec<Bytes> = local_digest
        .iter()
        .filter(|(k, d)| remote.get(*k) != Some(d))
        .map(|(k, _)| k.clone())
        .collect();
    let mut pace = Pace::new(cluster.failure_config().anti_entropy_keys_per_sec);
    let mut pulled = 0;
    for key in &to_pull {
        pace.step().await;
        let op = replica_request::Op::Fetch(Fetch { key: key.clone() });
        let resp = cluster
            .send(member, op, CALL_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let Some(replica_response::Result::Versions(raw)) = resp.result else {
            continue;
        };
        if raw.is_empty() {
            continue;
        }
        let set = VersionSet::decode(&raw).map_err(|e| e.to_string())?;
        let replica = cluster.replica().clone();
        let k = key.clone();
        tokio::task::spawn_blocking(move || replica.merge(&k, &set, None))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        pulled += 1;
        // The merged result may now differ from the peer's: push it back.
        if !to_push.contains(key) {
            to_push.push(key.clone());
        }
    }
    let mut pushed = 0;
    for key in to_push {
        pace.step().await;
        let replica = cluster.replica().clone();
        let k = key.clone();
        let raw = tokio::task::spawn_blocking(move || replica.fetch_raw(&k))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let Some(raw) = raw else { continue };
        if remote.get(&key) == Some(&Replica::digest(&key, &raw)) {
            continue;
        }
        let op = replica_request::Op::Merge(Merge {
            key,
            versions: Bytes::from(raw),
            hint_for: String::new(),
        });
        cluster
            .send(member, op, CALL_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        pushed += 1;
    }
    Ok((pulled, pushed))
}

/// Local entries of some leaf buckets of a segment.
pub fn scan_buckets(
    replica: &Replica,
    seg: Segment,
    leaves: &[u32],
) -> Result<Vec<RangeEntry>, String> {
    let mut out = Vec::new();
    // The list comes from a peer: each existing bucket once, at most.
    let wanted: std::collections::BTreeSet<usize> = leaves
        .iter()
        .filter_map(|&l| usize::try_from(l).ok())
        .filter(|&l| l < crate::replica::merkle::LEAVES)
        .collect();
    for leaf in wanted {
        let (start, end) = leaf_bounds(seg, leaf);
        if start == end {
            continue;
        }
        let sub = Segment { start, end };
        out.extend(
            replica
                .scan_range(sub, None, usize::MAX)
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}
