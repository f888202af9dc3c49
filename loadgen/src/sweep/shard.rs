//! Several load hosts, the runner's side: which workloads can be split over `--shard i/k`, and
//! waiting for `--start-at` so every shard begins warm-up at the same wall-clock time.

use std::time::{Duration, SystemTime};

use crate::plan::{Load, Point};
use crate::workload::{KeyDistributionKind, Shard, TargetKind, Workload};

/// A shard whose preparation ends later than this after `--start-at` says so: its load will
/// not overlap the others' exactly.
const LATE_START_WARNING: Duration = Duration::from_millis(500);

/// Refuses what cannot be split over `shard.count` loadgens, naming what to change:
///
/// - a local cluster (ringkv without `cluster.endpoints`, redis with `cluster.start`): every
///   loadgen would start a cluster of its own and measure it alone;
/// - the lost-write audit: it needs every write of the run in one history, and each loadgen
///   sees only its own;
/// - a closed loop with fewer workers than shards, or `ops:` fewer than shards;
/// - `sequential` keys fewer than shards (two shards would walk the same keys);
/// - `null_model`: every loadgen would simulate servers of its own for its share;
/// - `search`: each step's verdict needs the whole load's latencies.
pub fn check(w: &Workload, points: &[Point], shard: Shard) -> Result<(), String> {
    if shard.is_whole() {
        return Ok(());
    }
    let k = shard.count;
    let local = match w.target {
        TargetKind::Ringkv => w.cluster.endpoints.is_empty(),
        TargetKind::Redis => w.cluster.start,
        TargetKind::Null => false,
    };
    if local {
        return Err(format!(
            "--shard {shard}: the workload starts a local cluster, and {k} loadgens would each \
             start and measure their own; name one shared cluster with `cluster.endpoints` (or \
             use the `null` target)"
        ));
    }
    if w.null_model.is_some() {
        return Err(format!(
            "--shard {shard}: with `null_model` each of {k} loadgens would simulate its own \
             servers and see 1/{k} of the load; run it from one loadgen"
        ));
    }
    if w.search.is_some() {
        return Err(format!(
            "--shard {shard}: a search judges every step on the whole load's latencies, and \
             each of {k} loadgens sees only its own; run the search from one loadgen"
        ));
    }
    if w.audits() {
        return Err(format!(
            "--shard {shard}: the lost-write audit needs every write of the run in one history, \
             and each of {k} loadgens sees only its own; set `audit: false`"
        ));
    }
    // Every point's key count (a `sweep.keys` entry replaces `keys.count`).
    let fewest = points.iter().map(|p| p.keys).min().unwrap_or(w.keys.count);
    if w.keys.distribution == KeyDistributionKind::Sequential && fewest < u64::from(k) {
        return Err(format!(
            "--shard {shard}: {fewest} sequential keys cannot be split over {k} loadgens; use \
             at most {fewest} shards"
        ));
    }
    if let Some(ops) = w.ops
        && ops < u64::from(k)
    {
        return Err(format!(
            "--shard {shard}: `ops: {ops}` cannot be split over {k} loadgens; measure at least \
             {k} operations"
        ));
    }
    for p in points {
        if let Load::Closed { .. } = p.load {
            p.load
                .share(shard)
                .map_err(|e| format!("--shard {shard}, point {}: {e}", p.id()))?;
        }
    }
    Ok(())
}

/// Waits until `at` (the `--start-at` time). A shard that is already late starts at once and
/// says so on stderr: the results folder records when its window began, and `merge` reports
/// how far the shards' windows were apart.
pub async fn wait_for_start(at: SystemTime, quiet: bool) {
    match at.duration_since(SystemTime::now()) {
        Ok(wait) => {
            if !quiet {
                eprintln!(
                    "  waiting {:.1} s for --start-at {}",
                    wait.as_secs_f64(),
                    crate::workload::shard::start_at_text(at)
                );
            }
            tokio::time::sleep(wait).await;
        }
        Err(late) if late.duration() > LATE_START_WARNING => eprintln!(
            "warning: preparing (connecting, preloading) ended {:.1} s after --start-at {}; \
             starting now, so this loadgen's load overlaps the others' only partly. Give a \
             later --start-at.",
            late.duration().as_secs_f64(),
            crate::workload::shard::start_at_text(at)
        ),
        Err(_) => {}
    }
}
