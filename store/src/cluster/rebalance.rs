//! Join and leave: one explicit admin step that moves data, then the ring.
//!
//! `ringkv admin join|leave` reaches one node, which runs the change:
//!
//! 1. **Transition.** It pushes ring version `v+1`: the current members plus
//!    `next_members`, the membership being moved to. Every member of both must
//!    adopt it (or the step stops and says who is unreachable). From then on
//!    every coordinator writes to the replicas of *both* rings (the new ones
//!    count towards no quorum), and reads still use the current ring.
//! 2. **Transfer.** Each node that gains ranges in the next ring pulls them
//!    (`StreamRanges`) from the current replicas: from `N - W + 1` of them, so
//!    every acknowledged write is seen. Transfers are paged (back-pressure:
//!    the next page is asked for only after the last one is durably applied)
//!    and checkpointed per range and source in the engine, so a restart or a
//!    failure resumes where it stopped, not from zero.
//! 3. **Cut-over.** It pushes version `v+2`: the next membership alone. The
//!    new owners already hold everything (old data streamed, new data written
//!    to them since step 1), so reads for moved ranges are served correctly
//!    throughout. A leaving node hands its data off in step 2, before it is
//!    stopped.
//!
//! Re-running the same command resumes a transition left half-done; a
//! different change is refused until the current one finishes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::proto::replica_client::ReplicaClient;
use crate::proto::{Range, ScanRangeRequest, StreamRangesRequest, StreamRangesResponse};
use crate::replica::{LocalWrite, Replica};
use crate::ring::{Ring, RingDescription, RingMember, Segment};
use crate::version::VersionSet;
use crate::wire::ring_to_proto_plain;

use super::Cluster;
use super::pace::Pace;
use super::peers::FROM_HEADER;

/// Entries per transfer page.
const PAGE: u32 = 512;
/// Prefix of transfer checkpoints in the engine's metadata space.
const CHECKPOINT_PREFIX: &[u8] = b"mxfer/";
/// Transferred entries merged per engine batch (the key locks of a batch are held while it
/// is read and written, so foreground writes to those keys wait at most one batch).
const APPLY_BATCH: usize = 64;
/// Deadline of one transfer page.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Range-transfer counters.
#[derive(Debug, Default)]
pub struct TransferStats {
    /// Entries received by transfers into this node.
    pub entries: AtomicU64,
    /// Bytes of version sets received.
    pub bytes: AtomicU64,
    /// Ranges completed.
    pub ranges: AtomicU64,
    /// Ranges that resumed from a checkpoint.
    pub resumed: AtomicU64,
}

/// A membership change.
#[derive(Clone, Debug)]
pub enum Change {
    /// Add a member.
    Join(RingMember),
    /// Remove a member by id.
    Leave(String),
}

/// Why a change could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// The change is impossible as asked.
    #[error("{0}")]
    Invalid(String),
    /// A member could not be reached; the transition stays in place.
    #[error(
        "{0}; the change is left in transition at ring version {1}: re-run the same command to resume"
    )]
    Interrupted(String, u64),
}

fn target_members(
    current: &[RingMember],
    change: &Change,
    n: u32,
) -> Result<Vec<RingMember>, ChangeError> {
    let mut next: Vec<RingMember> = current.to_vec();
    match change {
        Change::Join(m) => {
            if m.id.is_empty() || m.address.is_empty() {
                return Err(ChangeError::Invalid("join needs ID@HOST:PORT".into()));
            }
            if let Some(existing) = next.iter().find(|x| x.id == m.id) {
                if existing == m {
                    return Err(ChangeError::Invalid(format!(
                        "{} is already a member",
                        m.id
                    )));
                }
                return Err(ChangeError::Invalid(format!(
                    "a member named {} already exists at {}",
                    m.id, existing.address
                )));
            }
            next.push(m.clone());
        }
        Change::Leave(id) => {
            if !next.iter().any(|x| &x.id == id) {
                return Err(ChangeError::Invalid(format!("{id} is not a member")));
            }
            next.retain(|x| &x.id != id);
            if next.len() < n as usize {
                return Err(ChangeError::Invalid(format!(
                    "removing {id} would leave {} members, fewer than N = {n}",
                    next.len()
                )));
            }
        }
    }
    next.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(next)
}

fn same_members(a: &[RingMember], b: &[RingMember]) -> bool {
    let ids = |v: &[RingMember]| v.iter().map(|m| m.id.clone()).collect::<BTreeSet<_>>();
    ids(a) == ids(b)
}

/// Run a membership change from this node (the admin step). `by_autoscaler` counts it in the
/// ring's [`crate::ring::Autoscaled`] once it is in force.
pub async fn change_membership(
    cluster: &Arc<Cluster>,
    change: Change,
    by_autoscaler: bool,
) -> Result<String, ChangeError> {
    let ring = cluster.ring();
    let desc = ring.description().clone();
    let trans = if desc.next_members.is_empty() {
        let next = target_members(&desc.members, &change, desc.replication)?;
        RingDescription::new(
            desc.version.saturating_add(1),
            desc.replication,
            desc.members.clone(),
        )
        .with_next(next)
        .with_autoscaled(desc.autoscaled)
    } else {
        // A transition is in place: resume it if it is this change.
        let wanted = target_members(&desc.members, &change, desc.replication)?;
        if !same_members(&wanted, &desc.next_members) {
            return Err(ChangeError::Invalid(format!(
                "another membership change is in progress (ring version {}); re-run it to finish it first",
                desc.version
            )));
        }
        desc.clone()
    };
    let everyone = union(&trans.members, &trans.next_members);
    push_everywhere(cluster, &trans, &everyone).await?;

    // Transfer: every member of the next ring pulls what it gains.
    let trans_ring = Ring::new(trans.clone()).map_err(|e| ChangeError::Invalid(e.to_string()))?;
    let mut moved = StreamRangesResponse::default();
    if let Some(next) = trans_ring.next() {
        for m in next.members() {
            let r = stream_on(cluster, m, trans.version).await.map_err(|e| {
                ChangeError::Interrupted(format!("transfer to {} failed: {e}", m.id), trans.version)
            })?;
            moved.entries += r.entries;
            moved.bytes += r.bytes;
            moved.ranges += r.ranges;
            moved.resumed_ranges += r.resumed_ranges;
        }
    }

    let mut autoscaled = trans.autoscaled;
    if by_autoscaler {
        match change {
            Change::Join(_) => autoscaled.out = autoscaled.out.saturating_add(1),
            Change::Leave(_) => autoscaled.r#in = autoscaled.r#in.saturating_add(1),
        }
    }
    let fin = RingDescription::new(
        trans.version.saturating_add(1),
        trans.replication,
        trans.next_members.clone(),
    )
    .with_autoscaled(autoscaled);
    push_everywhere(cluster, &fin, &everyone).await?;
    Ok(format!(
        "ring version {} in force: {} members; moved {} entries ({} bytes) over {} ranges ({} resumed from a checkpoint)",
        fin.version,
        fin.members.len(),
        moved.entries,
        moved.bytes,
        moved.ranges,
        moved.resumed_ranges
    ))
}

fn union(a: &[RingMember], b: &[RingMember]) -> Vec<RingMember> {
    let mut out: Vec<RingMember> = a.to_vec();
    for m in b {
        if !out.iter().any(|x| x.id == m.id) {
            out.push(m.clone());
        }
    }
    out
}

/// Push a ring to every listed member (this node adopts locally). All must
/// adopt it or already hold a newer one.
async fn push_everywhere(
    cluster: &Arc<Cluster>,
    desc: &RingDescription,
    members: &[RingMember],
) -> Result<(), ChangeError> {
    for m in members {
        let result = if m.id == cluster.me() {
            cluster.adopt_ring(desc.clone()).await.map(|_| ())
        } else {
            push_to(cluster, m, desc).await
        };
        result.map_err(|e| {
            ChangeError::Interrupted(
                format!("{} did not take ring version {}: {e}", m.id, desc.version),
                desc.version,
            )
        })?;
    }
    Ok(())
}

async fn push_to(cluster: &Cluster, m: &RingMember, desc: &RingDescription) -> Result<(), String> {
    let peer = cluster
        .peers()
        .get(&m.id, &m.address)
        .ok_or("bad address")?;
    let mut client = ReplicaClient::new(peer.channel());
    let mut req = tonic::Request::new(ring_to_proto_plain(desc));
    req.set_timeout(Duration::from_secs(10));
    client
        .push_ring(req)
        .await
        .map(|_| ())
        .map_err(|s| s.message().to_string())
}

async fn stream_on(
    cluster: &Arc<Cluster>,
    m: &RingMember,
    version: u64,
) -> Result<StreamRangesResponse, String> {
    if m.id == cluster.me() {
        return stream_ranges(cluster, version).await;
    }
    let peer = cluster
        .peers()
        .get(&m.id, &m.address)
        .ok_or("bad address")?;
    let mut client = ReplicaClient::new(peer.channel());
    let mut req = tonic::Request::new(StreamRangesRequest {
        ring_version: version,
    });
    if let Ok(v) = cluster.me().parse() {
        req.metadata_mut().insert(FROM_HEADER, v);
    }
    client
        .stream_ranges(req)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| s.message().to_string())
}

/// One interval `(start, end]` this node gains, and where to pull it from.
#[derive(Clone, Debug)]
pub struct Gain {
    /// The interval.
    pub range: Segment,
    /// Its current replicas, in preference order.
    pub sources: Vec<RingMember>,
}

/// Intervals `me` replicates in the next ring but not in the current one.
pub fn gained_ranges(ring: &Ring, me: &str) -> Vec<Gain> {
    let Some(next) = ring.next() else {
        return Vec::new();
    };
    let n = ring.replication();
    let mut tokens: Vec<u64> = ring.tokens().iter().chain(next.tokens()).copied().collect();
    tokens.sort_unstable();
    tokens.dedup();
    let mut out = Vec::new();
    for (i, &end) in tokens.iter().enumerate() {
        let start = if i == 0 {
            tokens.last().copied().unwrap_or(end)
        } else {
            tokens.get(i - 1).copied().unwrap_or(end)
        };
        let in_next = next
            .walk(end)
            .iter()
            .take(n)
            .any(|&x| next.member(x).is_some_and(|m| m.id == me));
        let cur: Vec<RingMember> = ring
            .walk(end)
            .iter()
            .take(n)
            .filter_map(|&x| ring.member(x).cloned())
            .collect();
        if in_next && !cur.iter().any(|m| m.id == me) {
            out.push(Gain {
                range: Segment { start, end },
                sources: cur,
            });
        }
    }
    out
}

fn checkpoint_key(version: u64, range: Segment, source: &str) -> Vec<u8> {
    let mut k = CHECKPOINT_PREFIX.to_vec();
    k.extend_from_slice(&version.to_be_bytes());
    k.extend_from_slice(&range.end.to_be_bytes());
    k.extend_from_slice(source.as_bytes());
    k
}

/// Checkpoint value: `done (u8) ‖ position (u64 LE) ‖ key`.
fn decode_checkpoint(v: &[u8]) -> Option<(bool, u64, Vec<u8>)> {
    let (&done, rest) = v.split_first()?;
    let pos = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    Some((done == 1, pos, rest.get(8..)?.to_vec()))
}

fn encode_checkpoint(done: bool, pos: u64, key: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + key.len());
    v.push(u8::from(done));
    v.extend_from_slice(&pos.to_le_bytes());
    v.extend_from_slice(key);
    v
}

/// Pull every range this node gains in transition `version` (the
/// `StreamRanges` RPC). Resumes from checkpoints.
pub async fn stream_ranges(
    cluster: &Arc<Cluster>,
    version: u64,
) -> Result<StreamRangesResponse, String> {
    let ring = cluster.ring();
    if ring.version() > version && ring.next().is_none() {
        return Ok(StreamRangesResponse::default());
    }
    if ring.version() != version || ring.next().is_none() {
        return Err(format!(
            "this node holds ring version {}, not transition {version}",
            ring.version()
        ));
    }
    // Reading N - W + 1 replicas meets every write quorum, so every
    // acknowledged write is pulled; an unreachable source is replaced by the
    // next replica of the range.
    let n = ring.replication() as u32;
    let needed = (n.saturating_sub(cluster.write_quorum()) + 1) as usize;
    let gains = gained_ranges(&ring, cluster.me());
    let mut out = StreamRangesResponse::default();
    // The transfer throttle, over all ranges and pages: with vnodes most gained ranges hold
    // less than a page, so a throttle that slept only after a full page (as it once did)
    // never slept at all.
    let mut pace = Pace::new(cluster.failure_config().transfer_entries_per_sec);
    for gain in gains {
        let mut resumed = false;
        let mut pulled_from = 0;
        let mut failures = Vec::new();
        for src in &gain.sources {
            if pulled_from == needed {
                break;
            }
            match pull_range(cluster, version, gain.range, src, &mut pace).await {
                Ok((entries, bytes, was_resumed)) => {
                    out.entries += entries;
                    out.bytes += bytes;
                    resumed |= was_resumed;
                    pulled_from += 1;
                }
                Err(e) => failures.push(e),
            }
        }
        if pulled_from < needed {
            return Err(format!(
                "range {} reached {pulled_from} of {needed} replicas: {}",
                gain.range,
                failures.join("; ")
            ));
        }
        out.ranges += 1;
        out.resumed_ranges += u64::from(resumed);
        let t = cluster.transfer();
        t.ranges.fetch_add(1, Ordering::Relaxed);
        t.resumed.fetch_add(u64::from(resumed), Ordering::Relaxed);
    }
    Ok(out)
}

/// Pull one range from one source, page by page, checkpointing after each.
async fn pull_range(
    cluster: &Arc<Cluster>,
    version: u64,
    range: Segment,
    source: &RingMember,
    pace: &mut Pace,
) -> Result<(u64, u64, bool), String> {
    let replica = cluster.replica().clone();
    let ckey = checkpoint_key(version, range, &source.id);
    let engine_get = {
        let replica = replica.clone();
        let ckey = ckey.clone();
        tokio::task::spawn_blocking(move || replica.engine().get(&ckey))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    let mut resume: Option<(u64, Vec<u8>)> = None;
    let mut resumed = false;
    if let Some((done, pos, key)) = engine_get.as_deref().and_then(decode_checkpoint) {
        if done {
            return Ok((0, 0, true));
        }
        resume = Some((pos, key));
        resumed = true;
    }
    if source.id == cluster.me() {
        return Ok((0, 0, resumed));
    }
    let peer = cluster
        .peers()
        .get(&source.id, &source.address)
        .ok_or("bad address")?;
    let mut client = ReplicaClient::new(peer.channel())
        .max_decoding_message_size(crate::config::MAX_MESSAGE_BYTES);
    let (mut entries, mut bytes) = (0u64, 0u64);
    loop {
        let mut req = tonic::Request::new(ScanRangeRequest {
            range: Some(Range {
                start: range.start,
                end: range.end,
            }),
            after_position: resume.as_ref().map(|(p, _)| *p),
            after_key: resume
                .as_ref()
                .map(|(_, k)| Bytes::from(k.clone()))
                .unwrap_or_default(),
            buckets: Vec::new(),
            limit: PAGE,
            digests_only: false,
        });
        req.set_timeout(PAGE_TIMEOUT);
        if let Ok(v) = cluster.me().parse() {
            req.metadata_mut().insert(FROM_HEADER, v);
        }
        let mut stream = client
            .scan_range(req)
            .await
            .map_err(|s| format!("{}: {}", source.id, s.message()))?
            .into_inner();
        let mut page = Vec::new();
        while let Some(e) = stream
            .message()
            .await
            .map_err(|s| format!("{}: {}", source.id, s.message()))?
        {
            page.push(e);
        }
        let full = page.len() >= PAGE as usize;
        let last = page.last().map(|e| (e.position, e.key.to_vec()));
        let page_entries = page.len() as u64;
        let page_bytes: u64 = page.iter().map(|e| e.versions.len() as u64).sum();
        // Apply the page and its checkpoint before asking for the next one.
        let r = replica.clone();
        let ck = ckey.clone();
        let checkpoint = encode_checkpoint(
            !full,
            last.as_ref().map_or(0, |(p, _)| *p),
            last.as_ref().map_or(&[][..], |(_, k)| k.as_slice()),
        );
        tokio::task::spawn_blocking(move || apply_page(&r, page, &ck, &checkpoint))
            .await
            .map_err(|e| e.to_string())??;
        entries += page_entries;
        bytes += page_bytes;
        let t = cluster.transfer();
        t.entries.fetch_add(page_entries, Ordering::Relaxed);
        t.bytes.fetch_add(page_bytes, Ordering::Relaxed);
        pace.step_by(page_entries).await;
        if !full {
            return Ok((entries, bytes, resumed));
        }
        resume = last;
    }
}

/// Apply a transferred page: its entries merged in batches of [`APPLY_BATCH`] (one
/// commit-log record each, key locks held only for one batch), one sync for the whole page,
/// then its checkpoint. A sync per key kept the joining node's log busy and stalled the
/// client writes that wait for it as a pending replica.
fn apply_page(
    replica: &Replica,
    page: Vec<crate::proto::Entry>,
    checkpoint_key: &[u8],
    checkpoint: &[u8],
) -> Result<(), String> {
    let mut writes = page
        .into_iter()
        .map(|e| {
            let incoming = VersionSet::decode(&e.versions)
                .map_err(|err| format!("key {:?}: {err}", String::from_utf8_lossy(&e.key)))?;
            Ok(LocalWrite::Merge {
                key: e.key,
                incoming,
            })
        })
        .collect::<Result<Vec<_>, String>>()?
        .into_iter();
    let mut last_seq = 0;
    loop {
        let batch: Vec<LocalWrite> = writes.by_ref().take(APPLY_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let (results, seq) = replica.apply_many(batch).map_err(|e| e.to_string())?;
        if let Some(Err(refused)) = results.into_iter().find(Result::is_err) {
            return Err(refused.to_string());
        }
        last_seq = seq;
    }
    replica.sync_through(last_seq).map_err(|e| e.to_string())?;
    replica
        .engine()
        .put(checkpoint_key, checkpoint)
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: usize) -> RingMember {
        RingMember {
            id: format!("n{i}"),
            address: format!("127.0.0.1:{}", 7000 + i),
            zone: String::new(),
            tokens: 64,
        }
    }

    #[test]
    fn gained_ranges_cover_exactly_the_new_share() {
        let cur: Vec<RingMember> = (1..=3).map(member).collect();
        let next: Vec<RingMember> = (1..=4).map(member).collect();
        let desc = RingDescription::new(2, 3, cur).with_next(next);
        let ring = Ring::new(desc).unwrap();
        let gains = gained_ranges(&ring, "n4");
        let share: f64 = gains.iter().map(|g| g.range.share()).sum();
        // n4 replicates about N/4 = 3/4 of the ring next; it held nothing.
        assert!((share - 0.75).abs() < 0.12, "share {share}");
        for g in &gains {
            assert_eq!(g.sources.len(), 3);
            assert!(g.sources.iter().all(|s| s.id != "n4"));
        }
        // Old members gain nothing when a node joins.
        for id in ["n1", "n2", "n3"] {
            assert!(gained_ranges(&ring, id).is_empty(), "{id} gains nothing");
        }
    }

    #[test]
    fn changes_are_validated() {
        let cur: Vec<RingMember> = (1..=3).map(member).collect();
        assert!(target_members(&cur, &Change::Join(member(2)), 3).is_err());
        assert!(target_members(&cur, &Change::Leave("n9".into()), 3).is_err());
        let err = target_members(&cur, &Change::Leave("n1".into()), 3).unwrap_err();
        assert!(err.to_string().contains("fewer than N = 3"), "{err}");
        assert_eq!(
            target_members(&cur, &Change::Join(member(4)), 3)
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn checkpoints_round_trip() {
        let v = encode_checkpoint(false, 42, b"key");
        assert_eq!(decode_checkpoint(&v), Some((false, 42, b"key".to_vec())));
        assert_eq!(decode_checkpoint(&[1]), None);
    }
}
