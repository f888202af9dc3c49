//! Shared helpers for integration tests: real `ringkv` node processes on
//! 127.0.0.1 with ephemeral ports and temp data directories.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use store::client::{Client, ClientOptions, Consistency};
use store::local_cluster::{ClusterSpec, LocalCluster, NodeLauncher};
use store::proto::kv_client::KvClient;
use store::security::Bearer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

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

/// Set to a directory to keep every test cluster's data, logs and TLS material there
/// (`c<pid>-<n>` per cluster) instead of in temp dirs removed at the end: for reading the
/// node logs of a failed run.
pub const KEEP_DIR_ENV: &str = "RINGKV_TEST_KEEP_DIR";

/// Start a cluster; panics with the node's log tail if it cannot.
pub async fn start(mut spec: ClusterSpec) -> LocalCluster {
    if let Some(d) = std::env::var_os(KEEP_DIR_ENV) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::path::Path::new(&d).join(format!("c{}-{n}", std::process::id()));
        spec.base_dir = Some(dir);
    }
    match LocalCluster::start(&spec, &launcher()).await {
        Ok(c) => c,
        Err(e) => panic!("cluster did not start: {e}"),
    }
}

/// A client for one endpoint (not token-aware: that node coordinates), with the cluster's
/// CA and admin token.
pub async fn client_for(cluster: &LocalCluster, endpoint: &str) -> Client {
    let opts = cluster.client_options(Duration::from_secs(5));
    Client::connect(&[endpoint.to_string()], opts)
        .await
        .expect("connect")
}

/// A token-aware client for the whole cluster.
pub async fn client(cluster: &LocalCluster) -> Client {
    let opts = ClientOptions {
        security: cluster.client_security(),
        ..ClientOptions::default()
    };
    Client::connect(&cluster.endpoints(), opts)
        .await
        .expect("connect")
}

/// A TLS channel to `address` trusting the cluster's CA, presenting `identity` (PEM
/// certificate and key) when given.
pub async fn tls_channel(
    cluster: &LocalCluster,
    address: &str,
    identity: Option<(Vec<u8>, Vec<u8>)>,
) -> Channel {
    let ca = std::fs::read(cluster.base_dir().join(store::security::files::CA_CERT)).unwrap();
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some((c, k)) = identity {
        tls = tls.identity(Identity::from_pem(c, k));
    }
    Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("TLS connect")
}

/// A channel to `address` that presents node `as_node`'s certificate: what a peer sees.
pub async fn peer_channel(cluster: &LocalCluster, address: &str, as_node: &str) -> Channel {
    use store::security::files;
    let dir = cluster.base_dir();
    let pem = |p: std::path::PathBuf| std::fs::read(p).unwrap();
    let identity = (
        pem(files::node_cert(dir, as_node)),
        pem(files::node_key(dir, as_node)),
    );
    tls_channel(cluster, address, Some(identity)).await
}

/// A raw `Kv` stub to `address` with the cluster's TLS and admin token.
pub async fn raw_kv(
    cluster: &LocalCluster,
    address: &str,
) -> KvClient<InterceptedService<Channel, Bearer>> {
    let sec = cluster.client_security();
    let channel = Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(sec.tls_config().unwrap())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    KvClient::with_interceptor(channel, Bearer(sec.bearer().unwrap()))
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
        let c = client_for(cluster, &node.address).await;
        c.admin_of(
            0,
            Op::Faults(SetFaults {
                partitioned_from: blocked,
                executor_panics: 0,
            }),
        )
        .await
        .expect("set faults");
    }
}

/// A counter from a node's status.
pub async fn stat(cluster: &LocalCluster, address: &str, name: &str) -> u64 {
    stat_of(&client_for(cluster, address).await, name).await
}

/// A counter from the status of the node a client is connected to.
pub async fn stat_of(c: &Client, name: &str) -> u64 {
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
    let status = client_for(cluster, first).await.status().await.unwrap();
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
        let mut c = ReplicaClient::new(peer_channel(cluster, &m.address, "n1").await);
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
        total += stat(cluster, &n.address, name).await;
    }
    total
}
