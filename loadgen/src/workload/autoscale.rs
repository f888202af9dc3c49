//! `autoscale:` — checks that a workload's autoscaling policy can act on its points.

use super::{Problem, TargetKind, Workload};

impl Workload {
    /// An autoscaler scales a local ringkv cluster, alone: the policy must be valid, the
    /// points must start within its node bounds, and no `events` may change the cluster
    /// under it.
    pub(super) fn validate_autoscale(&self) -> Result<(), Problem> {
        let Some(a) = &self.autoscale else {
            return Ok(());
        };
        if self.target != TargetKind::Ringkv || !self.cluster.endpoints.is_empty() {
            return Err(Problem::at(
                a,
                "`autoscale` adds and removes nodes of a local cluster started per point: it \
                 needs `target: ringkv` and no `cluster.endpoints` (for a cluster on real \
                 hosts, run `ringkv autoscale`)",
            ));
        }
        if !self.events.is_empty() {
            return Err(Problem::at(
                a,
                "`autoscale` and `events` would both change the cluster during the run; use \
                 one or the other",
            ));
        }
        a.value
            .validate()
            .map_err(|m| Problem::at(a, format!("autoscale: {m}")))?;
        for n in self.node_counts() {
            if n < a.value.min_nodes || n > a.value.max_nodes {
                return Err(Problem::at(
                    a,
                    format!(
                        "a point starts with {n} nodes, outside autoscale's min_nodes {} and \
                         max_nodes {}",
                        a.value.min_nodes, a.value.max_nodes
                    ),
                ));
            }
        }
        Ok(())
    }
}
