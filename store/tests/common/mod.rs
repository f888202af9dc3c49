//! Shared helpers for integration tests: real `ringkv` node processes on
//! 127.0.0.1 with ephemeral ports and temp data directories.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use store::client::{Client, ClientOptions, Consistency};
use store::local_cluster::{ClusterSpec, LocalCluster, NodeLauncher};

/// The `ringkv` binary built for this test run.
pub fn launcher() -> NodeLauncher {
    NodeLauncher {
        program: env!("CARGO_BIN_EXE_ringkv").into(),
        args_prefix: vec!["node".into(), "--log".into(), "warn".into()],
    }
}

/// A spec with `nodes` nodes, N/W/R as given, 32 tokens per node (small
/// rings start faster and balance well enough for correctness tests).
pub fn spec(nodes: usize, n: u32, w: u32, r: u32) -> ClusterSpec {
    ClusterSpec {
        nodes,
        tokens_per_node: 32,
        replication: n,
        write_quorum: w,
        read_quorum: r,
        ..ClusterSpec::default()
    }
}

/// Start a cluster; panics with the node's log tail if it cannot.
pub async fn start(spec: ClusterSpec) -> LocalCluster {
    match LocalCluster::start(&spec, &launcher()).await {
        Ok(c) => c,
        Err(e) => panic!("cluster did not start: {e}"),
    }
}

/// A client for one endpoint (not token-aware: that node coordinates).
pub async fn client_for(endpoint: &str) -> Client {
    let opts = ClientOptions {
        timeout: Duration::from_secs(5),
        token_aware: false,
        connections: 1,
    };
    Client::connect(&[endpoint.to_string()], opts)
        .await
        .expect("connect")
}

/// A token-aware client for the whole cluster.
pub async fn client(cluster: &LocalCluster) -> Client {
    Client::connect(&cluster.endpoints(), ClientOptions::default())
        .await
        .expect("connect")
}

/// Consistency with explicit W and R.
pub fn wr(w: u32, r: u32) -> Consistency {
    Consistency {
        w: Some(w),
        r: Some(r),
        ..Consistency::default()
    }
}

/// The single value of a key, or None; panics on siblings.
pub async fn value_of(c: &Client, key: &[u8], cons: &Consistency) -> Option<Vec<u8>> {
    let reply = c.get(key, cons).await.expect("get");
    assert!(
        reply.versions.len() <= 1,
        "unexpected siblings for {:?}: {:?}",
        String::from_utf8_lossy(key),
        reply.versions
    );
    reply.versions.first().map(|v| v.value.to_vec())
}

/// Poll `check` every 50 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A spec whose nodes detect failures, replay hints and run anti-entropy
/// fast, and accept fault-injection commands.
pub fn fast_failure_spec(nodes: usize, n: u32, w: u32, r: u32) -> ClusterSpec {
    let mut s = spec(nodes, n, w, r);
    s.extra_node_args = [
        "--enable-fault-injection",
        "--probe-period-ms",
        "200",
        "--suspect-timeout-ms",
        "1000",
        "--anti-entropy-interval-ms",
        "2000",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    s
}

/// Partition node `i` from every other node (both directions), or heal with
/// `cut = false`.
pub async fn partition(cluster: &LocalCluster, i: usize, cut: bool) {
    use store::proto::{SetFaults, admin_request::Op};
    let ids: Vec<String> = cluster.nodes().iter().map(|n| n.id.clone()).collect();
    let me = ids[i].clone();
    for (j, node) in cluster.nodes().iter().enumerate() {
        if !node.is_running() {
            continue;
        }
        let blocked: Vec<String> = if !cut {
            Vec::new()
        } else if j == i {
            ids.iter().filter(|id| **id != me).cloned().collect()
        } else {
            vec![me.clone()]
        };
        let c = client_for(&node.address).await;
        c.admin_of(
            0,
            Op::Faults(SetFaults {
                partitioned_from: blocked,
            }),
        )
        .await
        .expect("set faults");
    }
}

/// A counter from a node's status.
pub async fn stat(address: &str, name: &str) -> u64 {
    let c = client_for(address).await;
    let s = c.status().await.expect("status");
    s.stats.get(name).copied().unwrap_or(0)
}

/// Whether every replica of every segment has the same Merkle root.
pub async fn merkle_roots_agree(cluster: &LocalCluster) -> bool {
    use std::collections::BTreeMap;
    use store::proto::replica_client::ReplicaClient;
    use store::proto::{MerkleLevelRequest, Range};
    use store::ring::Ring;
    let first = &cluster
        .nodes()
        .iter()
        .find(|n| n.is_running())
        .unwrap()
        .address;
    let status = client_for(first).await.status().await.unwrap();
    let ring = Ring::new(store::wire::ring_from_proto(&status.ring.unwrap())).unwrap();
    let segments: Vec<_> = ring.segments().map(|(s, pl)| (s, pl.to_vec())).collect();
    let ranges: Vec<Range> = segments
        .iter()
        .map(|(s, _)| Range {
            start: s.start,
            end: s.end,
        })
        .collect();
    let mut roots: BTreeMap<String, Vec<Option<u64>>> = BTreeMap::new();
    for m in ring.members() {
        let Ok(mut c) = ReplicaClient::connect(format!("http://{}", m.address)).await else {
            return false;
        };
        let Ok(resp) = c
            .merkle_level(MerkleLevelRequest {
                ranges: ranges.clone(),
                level: 0,
                nodes: vec![],
            })
            .await
        else {
            return false;
        };
        let r = resp.into_inner();
        if r.ring_version != ring.version() {
            return false;
        }
        roots.insert(
            m.id.clone(),
            r.trees
                .iter()
                .map(|t| t.tracked.then(|| t.hashes.first().copied().unwrap_or(0)))
                .collect(),
        );
    }
    for (i, (_, pl)) in segments.iter().enumerate() {
        let mut seen = None;
        for &m in pl {
            let id = &ring.member(m).unwrap().id;
            let Some(root) = roots.get(id).and_then(|v| v.get(i).copied().flatten()) else {
                return false;
            };
            if *seen.get_or_insert(root) != root {
                return false;
            }
        }
    }
    true
}

/// Sum of a counter over every running node.
pub async fn stat_sum(cluster: &LocalCluster, name: &str) -> u64 {
    let mut total = 0;
    for n in cluster.nodes().iter().filter(|n| n.is_running()) {
        total += stat(&n.address, name).await;
    }
    total
}
