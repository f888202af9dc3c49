//! Cluster events during a run: kill, stop, restart, pause, resume, add or remove a node of the
//! point's local cluster at set times, so the results show what a crash, a pause or a scaling
//! step does to throughput and latency.
//!
//! Times count from the end of warm-up. Each event is carried out once its time comes, in
//! order; an event that fails (say, a restart that does not come up) is recorded with its error
//! and the run goes on. Events whose time does not come before the load ends are recorded as
//! not run. The times are recorded as they happened, relative to the measured window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use store::local_cluster::LocalCluster;

use crate::workload::{Event, EventAction};

/// What happened to one event of the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// `kill`, `stop`, `restart`, `pause`, `resume`, `add` or `remove`.
    pub action: String,
    /// The node it acted on (for `add`, the id the new node got).
    pub node: Option<String>,
    /// When it was due, seconds from the end of warm-up.
    pub planned_s: f64,
    /// When it started, seconds from the end of warm-up; absent if it never ran.
    pub started_s: Option<f64>,
    /// How long the action took (an `add` includes streaming the new node's ranges), seconds.
    pub took_s: Option<f64>,
    /// `ok`, `failed` or `not run` (the load ended first).
    pub outcome: String,
    /// The error, when it failed.
    pub message: Option<String>,
}

/// An event as it ran, before the measured window's start is known.
#[derive(Debug, Clone)]
pub struct Fired {
    action: EventAction,
    node: Option<String>,
    planned: Duration,
    started: Option<Instant>,
    took: Option<Duration>,
    error: Option<String>,
}

/// Shared between the schedule and the point that reads it once the load has ended.
pub type EventLog = Arc<Mutex<Vec<Fired>>>;

/// A point's event schedule: the future that carries it out (started with the load) and the
/// log it fills.
pub struct EventHook<'a> {
    /// [`run_schedule`], not yet polled: its clock starts when the load does.
    pub schedule: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>,
    /// What it did.
    pub log: EventLog,
    /// When set, the schedule is told to finish when the load ends and is awaited (for at
    /// most [`FINISH_GRACE`]) instead of being dropped, so an action under way (a join
    /// streaming data) completes. The autoscaler's hook sets it.
    pub finish: Option<tokio::sync::watch::Sender<bool>>,
}

/// How long a hook with `finish` may take to finish after the load ends.
pub const FINISH_GRACE: Duration = Duration::from_secs(120);

/// Carries out `events` (already in time order) against `cluster`, timed from `load_start +
/// warmup`, appending to `log`. Returns when every event has run; the caller drops the future
/// when the load ends first.
pub async fn run_schedule(
    cluster: &mut LocalCluster,
    events: Vec<Event>,
    warmup: Duration,
    log: EventLog,
) {
    let origin = tokio::time::Instant::now() + warmup;
    // Record every event as not run yet, so one the load outlasts still shows.
    let base = {
        let mut l = log.lock();
        let base = l.len();
        l.extend(events.iter().map(|e| Fired {
            action: e.action,
            node: e.node.as_ref().map(|n| n.value.clone()).or_else(|| {
                // A partition is recorded as its groups: `n1 / n2,n3`.
                (!e.groups.is_empty()).then(|| {
                    e.groups
                        .iter()
                        .map(|g| {
                            g.iter()
                                .map(|n| n.value.as_str())
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .collect::<Vec<_>>()
                        .join(" / ")
                })
            }),
            planned: e.at.value.0,
            started: None,
            took: None,
            error: None,
        }));
        base
    };
    for (k, e) in events.iter().enumerate() {
        tokio::time::sleep_until(origin + e.at.value.0).await;
        let started = Instant::now();
        if let Some(f) = log.lock().get_mut(base + k) {
            f.started = Some(started);
        }
        let result = apply(cluster, e).await;
        let mut l = log.lock();
        if let Some(f) = l.get_mut(base + k) {
            f.took = Some(started.elapsed());
            match result {
                Ok(Some(id)) => f.node = Some(id),
                Ok(None) => {}
                Err(message) => f.error = Some(message),
            }
        }
    }
}

/// Carries out one event. Returns the id of a node that `add` created.
/// The position of node `id` in the cluster.
fn index_of(cluster: &LocalCluster, id: &str) -> Result<usize, String> {
    cluster
        .nodes()
        .iter()
        .position(|n| n.id == id)
        .ok_or_else(|| format!("no node {id} in the cluster"))
}

async fn apply(cluster: &mut LocalCluster, e: &Event) -> Result<Option<String>, String> {
    let index = match &e.node {
        Some(id) => Some(index_of(cluster, &id.value)?),
        None => None,
    };
    let i = index.unwrap_or(0);
    let err = |e: store::local_cluster::ClusterError| e.to_string();
    match e.action {
        EventAction::Kill => cluster.kill_node(i).await.map_err(err)?,
        EventAction::Stop => cluster.stop_node(i).await.map_err(err)?,
        EventAction::Restart => cluster.restart_node(i).await.map_err(err)?,
        EventAction::Pause => {
            if !cluster.pause_node(i) {
                return Err("the node is not running".into());
            }
        }
        EventAction::Resume => {
            if !cluster.resume_node(i) {
                return Err("the node is not running".into());
            }
        }
        EventAction::Add => {
            let i = cluster.add_node(e.zone.clone()).await.map_err(err)?;
            return Ok(cluster.nodes().get(i).map(|n| n.id.clone()));
        }
        EventAction::Remove => cluster.remove_node(i).await.map_err(err)?,
        EventAction::Partition => {
            let groups = e
                .groups
                .iter()
                .map(|g| g.iter().map(|id| index_of(cluster, &id.value)).collect())
                .collect::<Result<Vec<Vec<usize>>, String>>()?;
            cluster.partition(&groups).map_err(err)?;
        }
        EventAction::Heal => cluster.heal().map_err(err)?,
    }
    Ok(None)
}

/// The records of `log`, with times relative to the measured window's start.
pub fn records(log: &EventLog, measure_start: Instant) -> Vec<EventRecord> {
    let rel = |t: Instant| {
        let s = if t >= measure_start {
            t.duration_since(measure_start).as_secs_f64()
        } else {
            -measure_start.duration_since(t).as_secs_f64()
        };
        (s * 1000.0).round() / 1000.0
    };
    log.lock()
        .iter()
        .map(|f| EventRecord {
            action: f.action.name().to_string(),
            node: f.node.clone(),
            planned_s: f.planned.as_secs_f64(),
            started_s: f.started.map(rel),
            took_s: f.took.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
            outcome: match (&f.started, &f.took, &f.error) {
                (None, _, _) => "not run",
                (Some(_), _, Some(_)) => "failed",
                (Some(_), Some(_), None) => "ok",
                (Some(_), None, None) => "unfinished",
            }
            .to_string(),
            message: f.error.clone(),
        })
        .collect()
}
