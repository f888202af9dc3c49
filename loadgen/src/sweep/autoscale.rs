//! `autoscale:` in a point: the controller runs in the loadgen beside the load, reads every
//! node's signals, and adds or removes nodes of the point's local cluster; at the end of the
//! load it finishes the action under way, and its log becomes the point's `autoscale`.

use std::path::Path;
use std::time::{Duration, Instant};

use store::autoscale::{Controller, Lease, Policy, SharedLog};
use store::local_cluster::LocalCluster;

use crate::events::{EventHook, EventLog};
use crate::report::PointSummary;
use crate::report::autoscale::summarise;

/// An autoscaler running on a point's cluster.
pub struct Autoscaling {
    log: SharedLog,
    policy: Policy,
    nodes_start: u32,
    /// Held until the point ends: one controller per cluster.
    _lease: Lease,
}

/// Starts a controller of `cluster` whose times count from the end of warm-up; returns the
/// hook the point runs beside its load.
pub fn start<'a>(
    cluster: &'a mut LocalCluster,
    policy: &Policy,
    warmup: Duration,
) -> Result<(EventHook<'a>, Autoscaling), String> {
    let lease = Lease::acquire(&cluster.base_dir().join("autoscale.lock"))?;
    let opts = store::autoscale::controller::client_options(
        cluster.client_options(Duration::from_secs(600)),
    );
    let mut controller = Controller::new(
        policy.clone(),
        cluster.endpoints(),
        opts,
        Instant::now() + warmup,
    );
    let log = controller.log();
    let nodes_start = u32::try_from(cluster.nodes().len()).unwrap_or(u32::MAX);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let schedule = async move {
        controller.run(cluster, rx).await;
    };
    Ok((
        EventHook {
            schedule: Box::pin(schedule),
            log: EventLog::default(),
            finish: Some(tx),
        },
        Autoscaling {
            log,
            policy: policy.clone(),
            nodes_start,
            _lease: lease,
        },
    ))
}

impl Autoscaling {
    /// Puts what the controller did into the point's summary (`dir` is the results folder).
    pub fn record(self, dir: &Path, summary: &mut PointSummary) {
        let log = self.log.lock().clone();
        summary.autoscale = Some(summarise(
            &log,
            &self.policy,
            self.nodes_start,
            dir,
            &summary.logs,
            summary.duration_s,
        ));
    }
}
