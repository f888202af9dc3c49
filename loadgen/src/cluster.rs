//! The local ringkv cluster a point runs against: its shape, derived from the workload and the
//! point. Starting and stopping the nodes is `store::local_cluster`'s job (one implementation
//! shared with `ringkv cluster up`); the loadgen starts them by re-executing itself with the
//! hidden `__node` subcommand, so `cargo run -p loadgen` needs no other binary.

use serde::Serialize;

use crate::sweep::Point;
use crate::workload::{DEFAULT_TOKENS_PER_NODE, Workload};

/// The hidden subcommand that runs one node (`loadgen __node ARGS`).
pub const NODE_SUBCOMMAND: &str = "__node";

/// The shape of the local cluster for one point (what `store::local_cluster::ClusterSpec`
/// takes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterPlan {
    /// Nodes to start.
    pub nodes: usize,
    /// Virtual nodes per node.
    pub tokens_per_node: u32,
    /// Zones, assigned to nodes round-robin (empty: one zone).
    pub zones: Vec<String>,
    /// Replication factor N.
    pub replication: u32,
    /// Cluster default W.
    pub write_quorum: u32,
    /// Cluster default R.
    pub read_quorum: u32,
    /// Extra arguments for every node.
    pub extra_node_args: Vec<String>,
}

impl ClusterPlan {
    /// The cluster a point needs, or `None` when the workload names an already-running cluster
    /// (`cluster.endpoints`) or the target is not ringkv.
    pub fn for_point(w: &Workload, p: &Point) -> Option<ClusterPlan> {
        if w.target != crate::workload::TargetKind::Ringkv || !w.cluster.endpoints.is_empty() {
            return None;
        }
        Some(ClusterPlan {
            nodes: p.nodes as usize,
            tokens_per_node: w.cluster.tokens_per_node.unwrap_or(DEFAULT_TOKENS_PER_NODE),
            zones: w.cluster.zones.clone(),
            replication: p.replication,
            write_quorum: p.write_quorum,
            read_quorum: p.read_quorum,
            extra_node_args: w.cluster.node_args.clone(),
        })
    }
}
