//! The local ringkv cluster a point runs against: its shape, derived from the workload and the
//! point. Starting and stopping the nodes is `store::local_cluster`'s job (one implementation
//! shared with `ringkv cluster up`), driven by the orchestrator (`sweep`); the loadgen starts
//! them by re-executing itself with the hidden `__node` subcommand, so `cargo run -p loadgen`
//! needs no other binary.

use store::local_cluster::ClusterSpec;

use crate::plan::Point;
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
