//! The local ringkv cluster a point runs against: its shape, derived from the workload and the
//! point. Starting and stopping the nodes is `store::local_cluster`'s job (one implementation
//! shared with `ringkv cluster up`); the loadgen starts them by re-executing itself with the
//! hidden `__node` subcommand, so `cargo run -p loadgen` needs no other binary.

use store::local_cluster::ClusterSpec;

use crate::sweep::Point;
use crate::workload::{DEFAULT_TOKENS_PER_NODE, Workload};

/// The hidden subcommand that runs one node (`loadgen __node ARGS`).
pub const NODE_SUBCOMMAND: &str = "__node";

/// The local cluster a point needs, or `None` when the workload names an already-running
/// cluster (`cluster.endpoints`) or the target is not ringkv.
pub fn cluster_spec_for_point(w: &Workload, p: &Point) -> Option<ClusterSpec> {
    if w.target != crate::workload::TargetKind::Ringkv || !w.cluster.endpoints.is_empty() {
        return None;
    }
    Some(ClusterSpec {
        nodes: p.nodes as usize,
        tokens_per_node: w.cluster.tokens_per_node.unwrap_or(DEFAULT_TOKENS_PER_NODE),
        zones: w.cluster.zones.clone(),
        replication: p.replication,
        write_quorum: p.write_quorum,
        read_quorum: p.read_quorum,
        base_dir: None,
        extra_node_args: w.cluster.node_args.clone(),
    })
}

mod local {
    use std::path::Path;

    use store::local_cluster::{LocalCluster, NodeLauncher};

    use super::{NODE_SUBCOMMAND, cluster_spec_for_point};
    use crate::events::{EventHook, EventLog, run_schedule};
    use crate::report::PointSummary;
    use crate::sweep::{NodeProbe, Point, RunCtx, SweepError};
    use crate::target::ringkv::{RingkvOptions, RingkvTarget};
    use crate::workload::Workload;

    fn point_err(p: &Point, message: String) -> SweepError {
        SweepError::Point {
            point: p.id(),
            message,
        }
    }

    /// Starts the point's cluster (unless the workload names `cluster.endpoints`), runs the
    /// point against it, and stops it. The cluster is also killed if this future is dropped
    /// (Ctrl-C) or the run fails: `LocalCluster` kills its nodes on drop.
    pub async fn run_ringkv_point(
        w: &Workload,
        point: &Point,
        dir: &Path,
        quiet: bool,
        ctx: &RunCtx,
    ) -> Result<PointSummary, SweepError> {
        let mut cluster = match cluster_spec_for_point(w, point) {
            Some(mut spec) => {
                spec.extra_node_args
                    .extend(ctx.nodes.node_args.iter().cloned());
                if !quiet {
                    eprintln!("  starting {} local nodes", spec.nodes);
                }
                let launcher = match &ctx.nodes.node_bin {
                    Some(bin) => NodeLauncher {
                        program: bin.clone(),
                        args_prefix: vec!["node".to_string()],
                    },
                    None => NodeLauncher {
                        program: std::env::current_exe().map_err(|e| {
                            point_err(point, format!("cannot find the loadgen executable: {e}"))
                        })?,
                        args_prefix: vec![NODE_SUBCOMMAND.to_string()],
                    },
                };
                Some(LocalCluster::start(&spec, &launcher).await.map_err(|e| {
                    point_err(point, format!("the local cluster did not start: {e}"))
                })?)
            }
            None => None,
        };
        let (endpoints, pids) = match &cluster {
            Some(c) => (c.endpoints(), c.pids()),
            None => (w.cluster.endpoints.clone(), Vec::new()),
        };
        let opts = RingkvOptions {
            endpoints,
            timeout: w.request_timeout(),
            connections: w.connection_count() as usize,
            write_quorum: point.write_quorum,
            read_quorum: point.read_quorum,
            sloppy: w.cluster.sloppy,
            key_count: w.keys.count,
            pids,
        };
        let probe = cluster.as_ref().map(|c| NodeProbe {
            endpoints: c.endpoints(),
            data_dirs: c.nodes().iter().map(|n| n.data_dir.clone()).collect(),
        });
        let result = match RingkvTarget::connect(&opts).await {
            Ok(target) => {
                let events = match cluster.as_mut() {
                    Some(c) if !w.events.is_empty() => {
                        let log = EventLog::default();
                        let schedule = run_schedule(
                            c,
                            w.events_in_order().into_iter().cloned().collect(),
                            w.warmup_duration(),
                            log.clone(),
                        );
                        Some(EventHook {
                            schedule: Box::pin(schedule),
                            log,
                        })
                    }
                    _ => None,
                };
                crate::sweep::run_point(&target, w, point, dir, quiet, events, ctx, probe).await
            }
            Err(e) => Err(point_err(
                point,
                format!("cannot connect to the cluster: {e}"),
            )),
        };
        if let Some(c) = cluster
            && let Err(e) = c.stop().await
        {
            eprintln!("warning: point {}: stopping the cluster: {e}", point.id());
        }
        result
    }
}

pub use local::run_ringkv_point;
