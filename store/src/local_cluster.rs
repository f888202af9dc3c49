//! A local cluster of real node processes on 127.0.0.1 (or, with `own_addresses`, each on
//! its own loopback address, so the network between them can be cut: [`netfilter`]).
//!
//! One implementation serves `ringkv cluster up`, the loadgen (which starts a
//! fresh cluster per sweep point) and the integration tests. Each node is a
//! child process started through a [`NodeLauncher`]: `ringkv node ...`, or the
//! loadgen re-executing itself in node mode. Ports are picked by the OS
//! (bind to port 0, read it back); if another process grabs one before the
//! node binds it, the start is retried with fresh ports.
//!
//! Clusters are secure by default: the cluster directory gets a CA, a certificate per node,
//! an admin token and a context key (`security::material`), which the nodes and
//! [`LocalCluster::client_security`] use; `ClusterSpec::insecure` starts them without.
//!
//! Children are killed when the cluster is dropped, so nothing is left
//! running after an error or a panic in a test. A launcher killed outright
//! (SIGKILL, no chance to clean up) leaves its nodes re-parented: each node
//! watches for that (`RINGKV_EXIT_WITH_PARENT`) and stops within a second.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub mod netfilter;

use crate::client::{Client, ClientOptions};

/// Longest wait after start for every node to reach every peer.
const PEERS_SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Environment variable a launcher sets to its own pid so that the node stops
/// when the launcher is gone, even after a SIGKILL that left it no chance to
/// stop its children (the node side is in `cli`).
pub const EXIT_WITH_PARENT_ENV: &str = "RINGKV_EXIT_WITH_PARENT";
use crate::config::PeerSpec;
use crate::security::ClientSecurity;
use crate::security::material::{self, NodeName};

/// Attempts at starting a cluster when a picked port is taken meanwhile.
const START_ATTEMPTS: usize = 3;
/// How long a node may take to answer its first `Status`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What cluster to start.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Nodes.
    pub nodes: usize,
    /// Tokens per node.
    pub tokens_per_node: u32,
    /// Zones, assigned round-robin (empty: no zones).
    pub zones: Vec<String>,
    /// N.
    pub replication: u32,
    /// Default W.
    pub write_quorum: u32,
    /// Default R.
    pub read_quorum: u32,
    /// Where node data and logs go (default: a fresh temp dir, removed on stop).
    pub base_dir: Option<PathBuf>,
    /// Extra arguments for every node (e.g. `--durability never`).
    pub extra_node_args: Vec<String>,
    /// Run without TLS and tokens (`--insecure`). By default a cluster makes its CA, node
    /// certificates, admin token and context key in its directory and uses them.
    pub insecure: bool,
    /// Put each node on its own loopback address (a block claimed for this cluster), so
    /// [`LocalCluster::partition`] can cut the network between nodes. Needs root and nftables
    /// ([`netfilter::available`]).
    pub own_addresses: bool,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            nodes: 3,
            tokens_per_node: crate::ring::DEFAULT_TOKENS_PER_NODE,
            zones: Vec::new(),
            replication: 3,
            write_quorum: 2,
            read_quorum: 2,
            base_dir: None,
            extra_node_args: Vec::new(),
            insecure: false,
            own_addresses: false,
        }
    }
}

/// How to start one node process: `program args_prefix... <node args>`.
#[derive(Clone, Debug)]
pub struct NodeLauncher {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before the node arguments (`["node"]` for `ringkv`).
    pub args_prefix: Vec<String>,
}

/// Why a local cluster could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The spec is impossible.
    #[error("invalid cluster: {0}")]
    Invalid(String),
    /// Files or processes could not be created.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A membership change failed.
    #[error("membership change failed: {0}")]
    Change(String),
    /// A node did not come up.
    #[error("node {id} did not start: {reason}\n--- last lines of {log} ---\n{tail}")]
    NodeFailed {
        /// Node id.
        id: String,
        /// Why.
        reason: String,
        /// Its log file.
        log: String,
        /// The end of its log.
        tail: String,
    },
}

/// One node of a local cluster.
#[derive(Debug)]
pub struct LocalNode {
    /// Node id (`n1`, ...).
    pub id: String,
    /// gRPC address.
    pub address: String,
    /// Zone.
    pub zone: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log file (stdout and stderr).
    pub log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl LocalNode {
    /// Node `p` of a cluster in `base_dir`: an initial member (`peers` lists them all) or,
    /// without `peers`, a node that waits to be joined.
    fn new(base_dir: &Path, spec: &ClusterSpec, p: &PeerSpec, peers: Option<&str>) -> LocalNode {
        let data_dir = base_dir.join(&p.id);
        let log = base_dir.join(format!("{}.log", p.id));
        let mut args = vec![
            "--id".to_string(),
            p.id.clone(),
            "--listen".into(),
            p.address.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        match peers {
            Some(list) => args.extend(["--peers".into(), list.to_string()]),
            None => args.push("--join".into()),
        }
        args.extend([
            "--tokens".into(),
            spec.tokens_per_node.to_string(),
            "--replication".into(),
            spec.replication.to_string(),
            "--write-quorum".into(),
            spec.write_quorum.to_string(),
            "--read-quorum".into(),
            spec.read_quorum.to_string(),
        ]);
        if !p.zone.is_empty() {
            args.extend(["--zone".into(), p.zone.clone()]);
        }
        if spec.insecure {
            args.push("--insecure".into());
        } else {
            args.extend(["--cluster-dir".into(), base_dir.display().to_string()]);
        }
        args.extend(spec.extra_node_args.iter().cloned());
        LocalNode {
            id: p.id.clone(),
            address: p.address.clone(),
            zone: p.zone.clone(),
            data_dir,
            log,
            args,
            child: None,
        }
    }

    /// OS process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A running local cluster.
#[derive(Debug)]
pub struct LocalCluster {
    nodes: Vec<LocalNode>,
    base_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    launcher: NodeLauncher,
    spec: ClusterSpec,
    /// What a client of this cluster presents.
    security: ClientSecurity,
    /// The node addresses and their packet filter, with `own_addresses`. Declared last: it is
    /// dropped (rules removed) after the nodes are killed.
    block: Option<netfilter::AddressBlock>,
}

/// Makes what is missing of the cluster's security material in `base_dir` (the CA, the
/// admin token, the context key and a certificate for each of `nodes`) and returns what
/// its clients present; nothing when the cluster is insecure.
fn make_security(
    base_dir: &Path,
    spec: &ClusterSpec,
    nodes: &[PeerSpec],
) -> Result<ClientSecurity, ClusterError> {
    if spec.insecure {
        return Ok(ClientSecurity::insecure());
    }
    let names: Vec<NodeName> = nodes
        .iter()
        .map(|p| NodeName {
            id: p.id.clone(),
            // A node on its own loopback address is dialled there.
            hosts: p
                .address
                .rsplit_once(':')
                .map(|(host, _)| host.to_string())
                .filter(|h| h != "127.0.0.1")
                .into_iter()
                .collect(),
        })
        .collect();
    let invalid = |e: crate::security::SecurityError| {
        ClusterError::Invalid(format!("cannot make the cluster's TLS material: {e}"))
    };
    material::init(base_dir, &names).map_err(invalid)?;
    ClientSecurity::from_cluster_dir(base_dir).map_err(invalid)
}

/// A loopback address whose port was free a moment ago (bound, then released), for a
/// process about to listen there.
pub fn free_loopback_address() -> std::io::Result<String> {
    let port = pick_ports(1)?.first().copied().unwrap_or(0);
    Ok(format!("127.0.0.1:{port}"))
}

/// Reserve `n` free loopback ports (bound, then released for the nodes).
fn pick_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// A free address for node `i`: on 127.0.0.1, or on the node's own address of `block`.
fn node_address(block: Option<&netfilter::AddressBlock>, i: usize) -> Result<String, ClusterError> {
    let io = |source| ClusterError::Io {
        context: "picking a free port".into(),
        source,
    };
    let ip = match block {
        Some(b) => b.ip(i).ok_or_else(|| {
            ClusterError::Invalid(format!(
                "at most {} nodes fit one address block",
                netfilter::PER_BLOCK
            ))
        })?,
        None => std::net::Ipv4Addr::LOCALHOST,
    };
    let port = std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map_err(io)?
        .port();
    Ok(format!("{ip}:{port}"))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl LocalCluster {
    /// Start a cluster and wait until every node answers.
    pub async fn start(
        spec: &ClusterSpec,
        launcher: &NodeLauncher,
    ) -> Result<LocalCluster, ClusterError> {
        if spec.nodes == 0 {
            return Err(ClusterError::Invalid(
                "a cluster needs at least one node".into(),
            ));
        }
        if spec.replication == 0 || spec.replication as usize > spec.nodes {
            return Err(ClusterError::Invalid(format!(
                "replication factor N = {} needs 1..={} (the number of nodes)",
                spec.replication, spec.nodes
            )));
        }
        for (what, q) in [("W", spec.write_quorum), ("R", spec.read_quorum)] {
            if q == 0 || q > spec.replication {
                return Err(ClusterError::Invalid(format!(
                    "{what} = {q} must be between 1 and N = {}",
                    spec.replication
                )));
            }
        }
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(spec, launcher).await {
                Ok(c) => return Ok(c),
                Err(e @ ClusterError::NodeFailed { .. }) if e.to_string().contains("in use") => {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ClusterError::Invalid("could not start".into())))
    }

    async fn try_start(
        spec: &ClusterSpec,
        launcher: &NodeLauncher,
    ) -> Result<LocalCluster, ClusterError> {
        let io = |context: &str| {
            let context = context.to_string();
            move |source| ClusterError::Io { context, source }
        };
        let (temp, base_dir) = match &spec.base_dir {
            Some(d) => {
                // Only its user may look inside: it holds keys, tokens and data.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(d)
                    .map_err(io(&format!("creating {}", d.display())))?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("ringkv-cluster-")
                    .tempdir()
                    .map_err(io("creating a temp dir"))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let block = if spec.own_addresses {
            netfilter::available().map_err(ClusterError::Invalid)?;
            Some(netfilter::AddressBlock::claim().map_err(ClusterError::Invalid)?)
        } else {
            None
        };
        let addresses = if block.is_some() {
            (0..spec.nodes)
                .map(|i| node_address(block.as_ref(), i))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            pick_ports(spec.nodes)
                .map_err(io("picking free ports"))?
                .into_iter()
                .map(|port| format!("127.0.0.1:{port}"))
                .collect()
        };
        let peers: Vec<PeerSpec> = addresses
            .into_iter()
            .enumerate()
            .map(|(i, address)| PeerSpec {
                id: format!("n{}", i + 1),
                address,
                zone: spec
                    .zones
                    .get(i % spec.zones.len().max(1))
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        let peer_list = peers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let security = make_security(&base_dir, spec, &peers)?;
        let nodes = peers
            .iter()
            .map(|p| LocalNode::new(&base_dir, spec, p, Some(&peer_list)))
            .collect();
        let mut cluster = LocalCluster {
            nodes,
            base_dir,
            _temp: temp,
            launcher: launcher.clone(),
            spec: spec.clone(),
            security,
            block,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_ready(i).await?;
        }
        cluster.wait_peers_reachable().await;
        Ok(cluster)
    }

    /// Waits (at most [`PEERS_SETTLE_TIMEOUT`]) until every node reaches every peer. A node
    /// that dialled a peer before it listened leaves that peer out of requests until it
    /// redials; a test or a measurement starting in that window would see quorums fail on a
    /// healthy cluster. Never fails: a cluster that does not settle still serves.
    async fn wait_peers_reachable(&self) {
        let deadline = tokio::time::Instant::now() + PEERS_SETTLE_TIMEOUT;
        let opts = self.client_options(Duration::from_millis(500));
        loop {
            let mut settled = true;
            for node in &self.nodes {
                let unreachable = match Client::connect(
                    std::slice::from_ref(&node.address),
                    opts.clone(),
                )
                .await
                {
                    Ok(c) => match c.status().await {
                        Ok(s) => s.stats.get("peers.unreachable").copied().unwrap_or(0),
                        Err(_) => 1,
                    },
                    Err(_) => 1,
                };
                settled &= unreachable == 0;
            }
            if settled || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn spawn(&mut self, i: usize) -> Result<(), ClusterError> {
        let launcher = self.launcher.clone();
        let node = self
            .nodes
            .get_mut(i)
            .ok_or_else(|| ClusterError::Invalid(format!("no node {i}")))?;
        let io = |context: String| move |source| ClusterError::Io { context, source };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(io(format!("opening {}", node.log.display())))?;
        let log2 = log
            .try_clone()
            .map_err(io(format!("opening {}", node.log.display())))?;
        let child = Command::new(&launcher.program)
            .args(&launcher.args_prefix)
            .args(&node.args)
            .env(EXIT_WITH_PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("starting {}", launcher.program.display())))?;
        node.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self, i: usize) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let opts = self.client_options(Duration::from_millis(500));
        loop {
            let node = self
                .nodes
                .get_mut(i)
                .ok_or_else(|| ClusterError::Invalid(format!("no node {i}")))?;
            let failed = |reason: String, node: &LocalNode| ClusterError::NodeFailed {
                id: node.id.clone(),
                reason,
                log: node.log.display().to_string(),
                tail: tail(&node.log, 20),
            };
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                node.child = None;
                let reason = if tail(&node.log, 20).contains("in use") {
                    format!("exited with {status}: address in use")
                } else {
                    format!("exited with {status}")
                };
                return Err(failed(reason, node));
            }
            if let Ok(c) = Client::connect(std::slice::from_ref(&node.address), opts.clone()).await
                && c.status().await.is_ok()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(failed(format!("no answer within {READY_TIMEOUT:?}"), node));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// gRPC endpoints of the running nodes.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.address.clone())
            .collect()
    }

    /// OS process ids of the running nodes.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(LocalNode::pid).collect()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[LocalNode] {
        &self.nodes
    }

    /// Where data and logs live.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The spec it was started with.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// What a client presents to this cluster: its CA and admin token (nothing when
    /// insecure).
    pub fn client_security(&self) -> ClientSecurity {
        self.security.clone()
    }

    /// Options for a client of this cluster with `timeout` (not token-aware, one session).
    pub fn client_options(&self, timeout: Duration) -> ClientOptions {
        ClientOptions {
            timeout,
            routing: crate::client::Routing::Endpoints,
            connections: 1,
            security: self.security.clone(),
            hedge_reads_after: None,
        }
    }

    fn signal(&self, i: usize, sig: libc::c_int) -> bool {
        match self.nodes.get(i).and_then(LocalNode::pid) {
            Some(pid) => send_signal(pid, sig),
            None => false,
        }
    }

    /// SIGKILL node `i` (a crash) and reap it.
    pub async fn kill_node(&mut self, i: usize) -> Result<(), ClusterError> {
        if let Some(node) = self.nodes.get_mut(i)
            && let Some(mut child) = node.child.take()
        {
            child.kill().await.map_err(|source| ClusterError::Io {
                context: format!("killing {}", node.id),
                source,
            })?;
        }
        Ok(())
    }

    /// Stop node `i` cleanly (SIGTERM, then SIGKILL after a grace period).
    pub async fn stop_node(&mut self, i: usize) -> Result<(), ClusterError> {
        self.signal(i, libc::SIGTERM);
        if let Some(node) = self.nodes.get_mut(i)
            && let Some(mut child) = node.child.take()
        {
            match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(node = %node.id, "did not stop after SIGTERM; killing it");
                    let _ = child.kill().await;
                }
            }
        }
        Ok(())
    }

    /// Start node `i` again (same id, address and data) and wait for it.
    pub async fn restart_node(&mut self, i: usize) -> Result<(), ClusterError> {
        if self.nodes.get(i).is_some_and(LocalNode::is_running) {
            self.stop_node(i).await?;
        }
        self.spawn(i)?;
        self.wait_ready(i).await
    }

    /// Freeze node `i` (SIGSTOP): it holds its connections but answers nothing.
    pub fn pause_node(&self, i: usize) -> bool {
        self.signal(i, libc::SIGSTOP)
    }

    /// Thaw a paused node (SIGCONT).
    pub fn resume_node(&self, i: usize) -> bool {
        self.signal(i, libc::SIGCONT)
    }

    /// Start one more node and add it to the ring (`admin join`: its ranges
    /// are streamed to it first). Returns its index.
    pub async fn add_node(&mut self, zone: Option<String>) -> Result<usize, ClusterError> {
        let i = self.add_node_process(zone).await?;
        self.join_node(i).await?;
        Ok(i)
    }

    /// Add node `i` (started by [`Self::add_node_process`]) to the ring.
    pub async fn join_node(&self, i: usize) -> Result<String, ClusterError> {
        let node = self
            .nodes
            .get(i)
            .ok_or_else(|| ClusterError::Invalid(format!("no node {i}")))?;
        let op = crate::proto::admin_request::Op::Join(crate::proto::JoinNode {
            id: node.id.clone(),
            address: node.address.clone(),
            zone: node.zone.clone(),
            tokens: self.spec.tokens_per_node,
            reason: String::new(),
        });
        self.admin_via(op, Some(&node.id)).await
    }

    /// Start one more node process outside the ring (`--join`), without
    /// adding it yet. Returns its index.
    pub async fn add_node_process(&mut self, zone: Option<String>) -> Result<usize, ClusterError> {
        let io = |context: &str| {
            let context = context.to_string();
            move |source| ClusterError::Io { context, source }
        };
        let taken: std::collections::BTreeSet<&str> =
            self.nodes.iter().map(|n| n.id.as_str()).collect();
        let id = (1..)
            .map(|i| format!("n{i}"))
            .find(|id| !taken.contains(id.as_str()))
            .unwrap_or_else(|| "n0".into());
        let address = if let Some(block) = &self.block {
            // The first address of the block no node has.
            let free = (0..netfilter::PER_BLOCK)
                .find(|&i| {
                    block.ip(i).is_some_and(|ip| {
                        let prefix = format!("{ip}:");
                        !self.nodes.iter().any(|n| n.address.starts_with(&prefix))
                    })
                })
                .unwrap_or(netfilter::PER_BLOCK);
            node_address(Some(block), free)?
        } else {
            let port = pick_ports(1)
                .map_err(io("picking a free port"))?
                .first()
                .copied()
                .unwrap_or(0);
            format!("127.0.0.1:{port}")
        };
        let zone = zone.unwrap_or_else(|| {
            let zones = &self.spec.zones;
            zones
                .get(self.nodes.len() % zones.len().max(1))
                .cloned()
                .unwrap_or_default()
        });
        let peer = PeerSpec { id, address, zone };
        make_security(&self.base_dir, &self.spec, std::slice::from_ref(&peer))?;
        self.nodes
            .push(LocalNode::new(&self.base_dir, &self.spec, &peer, None));
        let i = self.nodes.len() - 1;
        self.spawn(i)?;
        self.wait_ready(i).await?;
        Ok(i)
    }

    /// Cuts the network between `groups` of nodes (indices into [`LocalCluster::nodes`]);
    /// nodes in no group form one more group. Replaces an earlier partition. Needs
    /// `own_addresses`.
    pub fn partition(&self, groups: &[Vec<usize>]) -> Result<(), ClusterError> {
        let block = self.block.as_ref().ok_or_else(|| {
            ClusterError::Invalid(
                "partitions need a cluster started with own_addresses (each node on its own \
                 loopback address)"
                    .into(),
            )
        })?;
        let ip_of = |i: usize| -> Result<std::net::Ipv4Addr, ClusterError> {
            self.nodes
                .get(i)
                .and_then(|n| n.address.rsplit_once(':'))
                .and_then(|(host, _)| host.parse().ok())
                .ok_or_else(|| ClusterError::Invalid(format!("no node {i} in the cluster")))
        };
        let mut named: Vec<Vec<std::net::Ipv4Addr>> = groups
            .iter()
            .map(|g| g.iter().map(|&i| ip_of(i)).collect())
            .collect::<Result<_, _>>()?;
        let rest: Vec<std::net::Ipv4Addr> = (0..self.nodes.len())
            .filter(|i| !groups.iter().flatten().any(|g| g == i))
            .map(ip_of)
            .collect::<Result<_, _>>()?;
        if !rest.is_empty() {
            named.push(rest);
        }
        block.partition(&named).map_err(ClusterError::Invalid)
    }

    /// Ends a partition.
    pub fn heal(&self) -> Result<(), ClusterError> {
        match &self.block {
            Some(b) => b.heal().map_err(ClusterError::Invalid),
            None => Ok(()),
        }
    }

    /// The nftables table of this cluster's partitions (with `own_addresses`).
    pub fn partition_table(&self) -> Option<String> {
        self.block.as_ref().map(netfilter::AddressBlock::table)
    }

    /// Remove node `i` from the ring (`admin leave`: its data is handed off
    /// first), then stop its process.
    pub async fn remove_node(&mut self, i: usize) -> Result<(), ClusterError> {
        let id = self
            .nodes
            .get(i)
            .map(|n| n.id.clone())
            .ok_or_else(|| ClusterError::Invalid(format!("no node {i}")))?;
        let op = crate::proto::admin_request::Op::Leave(crate::proto::LeaveNode {
            id: id.clone(),
            reason: String::new(),
        });
        self.admin_via(op, Some(&id)).await?;
        self.stop_node(i).await
    }

    /// Send an admin request through a running node other than `avoid`.
    async fn admin_via(
        &self,
        op: crate::proto::admin_request::Op,
        avoid: Option<&str>,
    ) -> Result<String, ClusterError> {
        let via = self
            .nodes
            .iter()
            .find(|n| n.is_running() && Some(n.id.as_str()) != avoid)
            .ok_or_else(|| ClusterError::Invalid("no running node to send the change to".into()))?;
        let opts = self.client_options(Duration::from_secs(600));
        let client = Client::connect(std::slice::from_ref(&via.address), opts)
            .await
            .map_err(|e| ClusterError::Change(e.to_string()))?;
        client
            .admin_of(0, op)
            .await
            .map(|r| r.message)
            .map_err(|e| ClusterError::Change(e.to_string()))
    }

    /// Stop every node cleanly.
    pub async fn stop(mut self) -> Result<(), ClusterError> {
        for i in 0..self.nodes.len() {
            self.signal(i, libc::SIGCONT);
            self.signal(i, libc::SIGTERM);
        }
        for i in 0..self.nodes.len() {
            self.stop_node(i).await?;
        }
        Ok(())
    }
}

fn send_signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with a pid of our own child and a valid signal number
    // has no memory-safety implications.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, sig) };
    rc == 0
}
