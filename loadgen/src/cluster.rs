//! The local ringkv cluster a point runs against: its shape, derived from the workload and the
//! point. Starting and stopping the nodes is `store::local_cluster`'s job (one implementation
//! shared with `ringkv cluster up`), driven by the orchestrator (`sweep`); the loadgen starts
//! them by re-executing itself with the hidden `__node` subcommand, so `cargo run -p loadgen`
//! needs no other binary.

use store::local_cluster::ClusterSpec;
use store::security::{ClientSecurity, files};

use crate::plan::{ClusterFacts, Point};
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
        insecure: w.cluster.insecure,
        own_addresses: w.has_partitions(),
    })
}

/// What the loadgen presents to `cluster.endpoints`: nothing when `insecure`; the
/// `security:` block's files; else what the environment names (`RINGKV_CLUSTER_DIR`, or
/// `RINGKV_CA` and `RINGKV_TOKEN`).
pub fn endpoint_security(w: &Workload) -> Result<ClientSecurity, String> {
    let c = &w.cluster;
    if c.insecure {
        return Ok(ClientSecurity::insecure());
    }
    let Some(sec) = &c.security else {
        return match ClientSecurity::from_env() {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(
                "`cluster.endpoints` needs the cluster's CA and a token: set `cluster.security` \
                 (ca, token or token_file), or RINGKV_CLUSTER_DIR, or RINGKV_CA and \
                 RINGKV_TOKEN; `cluster.insecure: true` for a cluster started --insecure"
                    .into(),
            ),
            Err(e) => Err(e.to_string()),
        };
    };
    let dir = sec.cluster_dir.as_deref();
    let from_dir = match dir {
        Some(d) => Some(ClientSecurity::from_cluster_dir(d).map_err(|e| e.to_string())?),
        None => None,
    };
    let token = match (&sec.token, &sec.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(files::read_private_text(f).map_err(|e| e.to_string())?),
        (None, None) => from_dir
            .as_ref()
            .and_then(|s| s.token.as_deref().map(String::from)),
    };
    let ca = sec
        .ca
        .clone()
        .or_else(|| dir.map(|d| d.join(files::CA_CERT)));
    let cert = sec.cert.as_deref().zip(sec.key.as_deref());
    ClientSecurity::from_parts(ca.as_deref(), token, cert).map_err(|e| e.to_string())
}

/// Asks an already-running cluster (`cluster.endpoints`) what it is: members, N, default W
/// and R, zones. `None` for a local cluster or another target.
pub async fn describe_endpoints(w: &Workload) -> Result<Option<ClusterFacts>, String> {
    if w.target != crate::workload::TargetKind::Ringkv || w.cluster.endpoints.is_empty() {
        return Ok(None);
    }
    let opts = store::client::ClientOptions {
        timeout: w.request_timeout(),
        routing: store::client::Routing::Endpoints,
        connections: 1,
        security: endpoint_security(w)?,
        hedge_reads_after: None,
    };
    let client = store::client::Client::connect(&w.cluster.endpoints, opts)
        .await
        .map_err(|e| format!("`cluster.endpoints`: {e}"))?;
    let status = client
        .status()
        .await
        .map_err(|e| format!("`cluster.endpoints`: the cluster's Status failed: {e}"))?;
    let ring = status.ring.as_ref().ok_or_else(|| {
        format!(
            "`cluster.endpoints`: {} answered Status without a ring; is it a ringkv node that has joined?",
            status.address
        )
    })?;
    let mut zones: Vec<String> = ring
        .members
        .iter()
        .map(|m| m.zone.clone())
        .filter(|z| !z.is_empty())
        .collect();
    zones.sort();
    zones.dedup();
    Ok(Some(ClusterFacts {
        nodes: u32::try_from(ring.members.len()).unwrap_or(u32::MAX),
        replication: ring.replication,
        write_quorum: status.write_quorum,
        read_quorum: status.read_quorum,
        zones,
        asked: status.address.clone(),
    }))
}
