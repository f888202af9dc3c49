//! Cleanup after a ring change: drop local copies of ranges this node no
//! longer replicates (`ringkv cleanup`, and automatically once a join or
//! leave completes).
//!
//! It runs only on a settled ring (no transition in progress), a page at a
//! time, and stops when the ring changes under it. The automatic run waits
//! [`CLEANUP_DELAY`] after the cut-over: a node still on the transition ring
//! (for milliseconds; housekeeping catches up within seconds) may still read
//! the old replicas. What a removal guarantees per key is in
//! `replica/cleanup.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::Cluster;

/// How long after a completed ring change the automatic cleanup starts.
pub const CLEANUP_DELAY: Duration = Duration::from_secs(10);
/// How often the node looks for a completed ring change.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Keys examined per page.
const PAGE: usize = 512;
/// Keys examined per second: cleanup is a background trickle (each removal
/// is a commit-log write), not a burst that shows in the foreground p99.
const KEYS_PER_SEC: u64 = 2000;

/// Remove this node's copies of ranges it does not replicate in the ring in
/// force. Returns a one-line summary.
pub async fn cleanup(cluster: &Arc<Cluster>) -> Result<String, String> {
    let ring = cluster.ring();
    let version = ring.version();
    if ring.next().is_some() {
        return Err(format!(
            "a membership change is in progress (ring version {version}); finish it first (re-run the join or leave), then clean up"
        ));
    }
    let Some(me) = ring.index_of(cluster.me()) else {
        return Err(format!(
            "this node is not a member of ring version {version}; it has nothing to keep, stop it instead"
        ));
    };
    let (mut examined, mut removed) = (0u64, 0u64);
    let mut resume = None;
    loop {
        let now = cluster.ring();
        if now.version() != version {
            return Err(format!(
                "the ring changed during cleanup (version {version} to {}) after {removed} of {examined} keys; run it again once the change completes",
                now.version()
            ));
        }
        let c = cluster.clone();
        let replica = cluster.replica().clone();
        let page = tokio::task::spawn_blocking(move || {
            // Keep the key unless the ring in force is still the one this
            // cleanup started from and it does not put this node in the
            // key's preference list.
            let owned = |pos: u64| {
                let r = c.ring();
                r.version() != version
                    || r.next().is_some()
                    || r.walk(pos).iter().take(r.replication()).any(|&i| i == me)
            };
            replica.cleanup_page(&owned, resume, PAGE)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        examined += page.examined;
        removed += page.removed;
        match page.next {
            Some(next) => resume = Some(next),
            None => break,
        }
        tokio::time::sleep(Duration::from_millis(
            page.examined.saturating_mul(1000) / KEYS_PER_SEC,
        ))
        .await;
    }
    Ok(format!(
        "cleanup: removed {removed} of {examined} local keys this node does not replicate in ring version {version}"
    ))
}

/// Watch for completed ring changes and clean up after each one.
pub fn start(cluster: Arc<Cluster>) {
    tokio::spawn(async move {
        let mut seen = cluster.ring().version();
        let mut every = tokio::time::interval(WATCH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let ring = cluster.ring();
            if ring.version() == seen || ring.next().is_some() {
                continue;
            }
            let version = ring.version();
            seen = version;
            tokio::time::sleep(CLEANUP_DELAY).await;
            if cluster.ring().version() != version {
                continue;
            }
            match cleanup(&cluster).await {
                Ok(summary) => tracing::info!(version, "{summary}"),
                Err(e) => {
                    tracing::warn!(version, error = %e, "cleanup after a ring change stopped")
                }
            }
        }
    });
}
