//! Hinted handoff: replaying hints to their owner once it is back.
//!
//! The sender (the fallback holding hints) walks its hints for an owner in key
//! order and sends batches with the *current* local version set of each key.
//! The receiver applies them (an idempotent merge) and decides the pace: its
//! token bucket (`hint_replay_per_sec`, shared by every sender) says how many
//! of a batch it takes now and how long the sender must wait before the next
//! batch. A recovering node therefore sees a bounded trickle, never a storm,
//! however many fallbacks hold hints for it.
//!
//! A delivered hint is removed; if this node is not itself a replica of the
//! key and no other hint refers to it, its copy of the data is removed too
//! (unless a newer write arrived meanwhile). Hints older than
//! `hint_max_age_ms` are dropped and counted; anti-entropy repairs the rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::FailureConfig;
use crate::proto::replica_client::ReplicaClient;
use crate::proto::{Entry, HandoffAck, HandoffBatch};
use crate::replica::Replica;
use crate::replica::hints::Hint;
use crate::version::{VersionSet, now_millis};

use super::peers::FROM_HEADER;
use super::{Cluster, MemberState};

/// Hints sent per batch.
const BATCH: usize = 64;
/// How often the sender looks for owners that are back.
const SCAN_EVERY: Duration = Duration::from_millis(500);

/// Handoff counters.
#[derive(Debug, Default)]
pub struct HandoffStats {
    /// Entries this node accepted from fallbacks.
    pub received: AtomicU64,
    /// Batches this node told a sender to slow down for.
    pub throttled: AtomicU64,
    /// Local copies removed after their hints were delivered.
    pub handed_off_removed: AtomicU64,
}

/// The receiver's pace: a token bucket shared by every sender.
#[derive(Debug)]
pub struct HandoffPacer {
    per_sec: f64,
    state: Mutex<(f64, Instant)>,
    /// Counters.
    pub stats: HandoffStats,
}

impl HandoffPacer {
    /// A bucket refilled at `per_sec` entries per second (burst: one second).
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        HandoffPacer {
            per_sec,
            state: Mutex::new((per_sec, Instant::now())),
            stats: HandoffStats::default(),
        }
    }

    /// Take up to `wanted` entries; returns how many, and how long the sender
    /// should wait before the next batch.
    pub fn admit(&self, wanted: usize) -> (usize, Duration) {
        let mut st = self.state.lock();
        let now = Instant::now();
        let elapsed = now.duration_since(st.1).as_secs_f64();
        st.0 = (st.0 + elapsed * self.per_sec).min(self.per_sec);
        st.1 = now;
        let take = (st.0.floor() as usize).min(wanted);
        st.0 -= take as f64;
        // Time until a full batch is available again.
        let deficit = (wanted as f64 - st.0).max(0.0);
        let wait = Duration::from_secs_f64(deficit / self.per_sec);
        if take < wanted {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
        (take, wait)
    }
}

/// Apply a handoff batch on the receiving side (blocking: engine I/O).
/// Returns how many entries (from the front) were applied.
pub fn apply_batch(replica: &Replica, entries: &[Entry], admitted: usize) -> usize {
    let mut applied = 0;
    for e in entries.iter().take(admitted) {
        let ok = VersionSet::decode(&e.versions)
            .ok()
            .is_some_and(|set| replica.merge(&e.key, &set, None).is_ok());
        if !ok {
            break;
        }
        applied += 1;
    }
    applied
}

/// Run hint replay for this node until the process ends.
pub fn start(cluster: Arc<Cluster>, cfg: FailureConfig) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SCAN_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let targets: Vec<String> = cluster.replica().hints().totals().into_keys().collect();
            for target in targets {
                if let Err(e) = replay_to(&cluster, &cfg, &target).await {
                    tracing::debug!(%target, error = %e, "hint replay paused");
                }
            }
        }
    });
}

/// Replay every hint for `target` while it stays reachable.
async fn replay_to(
    cluster: &Arc<Cluster>,
    cfg: &FailureConfig,
    target: &str,
) -> Result<(), String> {
    let ring = cluster.ring();
    let member = ring
        .members()
        .iter()
        .chain(ring.next().map(|n| n.members()).unwrap_or(&[]))
        .find(|m| m.id == target)
        .cloned();
    let replica = cluster.replica().clone();
    let Some(member) = member else {
        // The owner left the ring: its data was handed to the new owners by
        // the transfer, so these hints have nobody to go to.
        drop_all(&replica, target).await;
        return Ok(());
    };
    if cluster.membership().state(target) != MemberState::Alive || !cluster.is_available(&member) {
        return Ok(());
    }
    let peer = cluster
        .peers()
        .get(&member.id, &member.address)
        .ok_or("bad address")?;
    // Position just after the last hint dealt with (delivered or dropped).
    let mut cursor: Option<(u64, Vec<u8>)> = None;
    loop {
        let (batch, hints) = {
            let replica = replica.clone();
            let target = target.to_string();
            let after = cursor.clone();
            let max_age = cfg.hint_max_age_ms;
            tokio::task::spawn_blocking(move || next_batch(&replica, &target, after, max_age))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
        };
        let Some(last) = hints.last() else {
            return Ok(());
        };
        if batch.is_empty() {
            // Every hint of the page was expired or stale and is gone.
            cursor = Some((last.position, last.key.clone()));
            continue;
        }
        let mut client = ReplicaClient::new(peer.channel());
        let mut req = tonic::Request::new(HandoffBatch {
            from: cluster.me().to_string(),
            entries: batch.clone(),
        });
        if let Ok(v) = cluster.me().parse() {
            req.metadata_mut().insert(FROM_HEADER, v);
        }
        req.set_timeout(Duration::from_secs(5));
        let HandoffAck {
            accepted,
            retry_after_ms,
        } = client
            .handoff(req)
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        let accepted = (accepted as usize).min(batch.len());
        let done: Vec<(Hint, Bytes)> = hints
            .into_iter()
            .zip(batch.into_iter().map(|e| e.versions))
            .take(accepted)
            .collect();
        if let Some((h, _)) = done.last() {
            // Hints beyond `accepted` go again with the next batch.
            cursor = Some((h.position, h.key.clone()));
        }
        let r = replica.clone();
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || finish_delivered(&c, &r, done))
            .await
            .map_err(|e| e.to_string())?;
        if retry_after_ms > 0 {
            tokio::time::sleep(Duration::from_millis(u64::from(retry_after_ms))).await;
        }
        if !cluster.is_available(&member) {
            return Ok(());
        }
    }
}

/// The next hints for `target` after `after`, with the data to send. Expired
/// hints and hints whose data is gone are removed on the way.
fn next_batch(
    replica: &Replica,
    target: &str,
    after: Option<(u64, Vec<u8>)>,
    max_age_ms: u64,
) -> crate::replica::Result<(Vec<Entry>, Vec<Hint>)> {
    let hints = replica.hints().pending(
        replica.engine(),
        target,
        after.as_ref().map(|(p, k)| (*p, k.as_slice())),
        BATCH,
    )?;
    let now = now_millis();
    let mut entries = Vec::with_capacity(hints.len());
    let mut kept = Vec::with_capacity(hints.len());
    let mut scanned = Vec::new();
    for h in hints {
        if now.saturating_sub(h.created_ms) > max_age_ms {
            replica.drop_hint(&h, true)?;
            scanned.push(h);
            continue;
        }
        match replica.fetch_raw(&h.key)? {
            Some(raw) => {
                entries.push(Entry {
                    key: Bytes::from(h.key.clone()),
                    versions: Bytes::from(raw),
                    position: h.position,
                    digest: 0,
                    newest_ms: 0,
                });
                kept.push(h);
            }
            None => {
                replica.drop_hint(&h, false)?;
                scanned.push(h);
            }
        }
    }
    // When every hint of the page was dropped, return them so the caller
    // moves past them; otherwise the kept ones.
    if kept.is_empty() {
        return Ok((Vec::new(), scanned));
    }
    Ok((entries, kept))
}

/// Remove delivered hints, and local copies this node only held for others.
fn finish_delivered(cluster: &Cluster, replica: &Replica, done: Vec<(Hint, Bytes)>) {
    let ring = cluster.ring();
    let me = ring.index_of(cluster.me());
    for (hint, sent) in done {
        let walk = ring.walk(hint.position);
        let owns = me.is_some_and(|m| walk.iter().take(ring.replication()).any(|&i| i == m));
        match replica.finish_handoff(&hint, &sent, owns) {
            Ok(true) => {
                cluster
                    .handoff()
                    .stats
                    .handed_off_removed
                    .fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not finish a delivered hint"),
        }
    }
}

async fn drop_all(replica: &Arc<Replica>, target: &str) {
    let replica = replica.clone();
    let target = target.to_string();
    let _ = tokio::task::spawn_blocking(move || -> crate::replica::Result<()> {
        loop {
            let hints = replica
                .hints()
                .pending(replica.engine(), &target, None, BATCH)?;
            if hints.is_empty() {
                return Ok(());
            }
            for h in hints {
                replica.hints().remove(replica.engine(), &h, true)?;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pacer_limits_to_its_rate() {
        let p = HandoffPacer::new(100);
        let (first, _) = p.admit(64);
        assert_eq!(first, 64, "a full second of burst is available at start");
        let (second, wait) = p.admit(64);
        assert!(second <= 36, "only the rest of the burst: {second}");
        assert!(wait > Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (third, _) = p.admit(64);
        assert!(
            (15..=30).contains(&third),
            "about 20 tokens refilled: {third}"
        );
    }
}
