//! The node's arguments and entry point, shared by `ringkv node` and the loadgen's node
//! mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{EXIT_FAILURE, EXIT_USAGE};
use crate::cluster::Faults;
use crate::config::{Durability, NodeConfig, PeerSpec};

/// Arguments of a node (`ringkv node`).
#[derive(Args, Clone, Debug, Default)]
pub struct NodeArgs {
    /// Node id, unique in the cluster (e.g. n1).
    #[arg(long)]
    pub id: Option<String>,
    /// gRPC listen address (default 127.0.0.1:7001: loopback unless told otherwise).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address others use to reach this node (default: the listen address).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Data directory (created if its parent exists).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Every member, this node included: ID@HOST:PORT[/ZONE],...
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<PeerSpec>,
    /// This node's failure zone.
    #[arg(long)]
    pub zone: Option<String>,
    /// Virtual nodes per member.
    #[arg(long)]
    pub tokens: Option<u32>,
    /// Start outside the ring; add it with `ringkv admin join ID@ADDR`.
    #[arg(long)]
    pub join: bool,
    /// Replication factor N.
    #[arg(long)]
    pub replication: Option<u32>,
    /// Default write quorum W.
    #[arg(long)]
    pub write_quorum: Option<u32>,
    /// Default read quorum R.
    #[arg(long)]
    pub read_quorum: Option<u32>,
    /// Count hinted writes to fallback nodes towards W by default.
    #[arg(long)]
    pub sloppy: bool,
    /// Commit-log durability before an acknowledgement.
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
    /// Concurrent versions per key a new write may leave (merges of replicas
    /// may hold up to 4x); a write beyond it is refused (INVALID_ARGUMENT:
    /// read and write with that context to resolve), never made room for by
    /// dropping an acknowledged version (counted in replica.siblings_refused).
    #[arg(long)]
    pub max_siblings: Option<usize>,
    /// Share of reads that ask all N replicas (read repair) instead of R.
    #[arg(long)]
    pub read_repair_chance: Option<f64>,
    /// Engine block cache in MiB.
    #[arg(long)]
    pub cache_mb: Option<usize>,
    /// Threads applying writes to the engine: 1 (the default) batches the most writes per
    /// fsync; 2 or more start a batch while another waits for its fsync, for lower write
    /// latency at low load on a device that syncs in parallel.
    #[arg(long)]
    pub write_threads: Option<usize>,
    /// YAML file with the same fields (flags given here win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Accept test-only fault commands (network partitions).
    #[arg(long)]
    pub enable_fault_injection: bool,
    /// Failure-handling intervals and bounds.
    #[command(flatten)]
    pub failure: FailureArgs,
    /// TLS, tokens and the context key.
    #[command(flatten)]
    pub security: SecurityArgs,
    /// Serve Prometheus metrics at http://ADDR/metrics (plain HTTP; keep it on loopback
    /// or a private network), e.g. 127.0.0.1:9100.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Log filter (tracing env-filter syntax), e.g. info or ringkv=debug.
    #[arg(long, default_value = "info")]
    pub log: String,
}

/// Where a node listens without `--listen`: loopback, so nothing is exposed by default.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7001);

/// Where the node's security material is (see `ringkv certs`).
#[derive(Args, Clone, Debug, Default)]
pub struct SecurityArgs {
    /// Cluster directory made by `ringkv certs` (ca.pem, nodes/ID.pem, nodes/ID.key, tokens,
    /// cluster.key).
    #[arg(long, env = crate::security::CLUSTER_DIR_ENV)]
    pub cluster_dir: Option<PathBuf>,
    /// The cluster CA certificate (overrides the cluster directory's).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// This node's certificate.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// This node's private key (must not be readable by other users).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Hashed client tokens with roles (re-read when it changes).
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
    /// The key causal contexts are signed under.
    #[arg(long)]
    pub cluster_key_file: Option<PathBuf>,
    /// No TLS, no tokens, unsigned contexts. For experiments; loopback addresses only.
    #[arg(long)]
    pub insecure: bool,
}

/// Failure-handling knobs (defaults in `FailureConfig`).
#[derive(Args, Clone, Debug, Default)]
pub struct FailureArgs {
    /// SWIM probe period.
    #[arg(long)]
    pub probe_period_ms: Option<u64>,
    /// Time a suspect member has to refute before it is declared down.
    #[arg(long)]
    pub suspect_timeout_ms: Option<u64>,
    /// Period of Merkle anti-entropy rounds (0 turns periodic rounds off).
    #[arg(long)]
    pub anti_entropy_interval_ms: Option<u64>,
    /// Keys anti-entropy exchanges per second at most (0: no limit).
    #[arg(long)]
    pub anti_entropy_keys_per_sec: Option<u32>,
    /// Hints this node accepts per second when an owner replays them to it.
    #[arg(long)]
    pub hint_replay_per_sec: Option<u32>,
    /// Hints older than this are dropped (anti-entropy repairs instead).
    #[arg(long)]
    pub hint_max_age_ms: Option<u64>,
    /// Hint bytes kept per target before new hints are refused.
    #[arg(long)]
    pub hint_max_bytes: Option<u64>,
    /// How long a tombstone every replica acknowledged is kept before purge.
    #[arg(long)]
    pub tombstone_grace_ms: Option<u64>,
    /// Entries per second pulled when gaining ranges (default 5000; 0: no limit).
    #[arg(long)]
    pub transfer_entries_per_sec: Option<u32>,
}

/// `--durability` values.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DurabilityArg {
    /// fsync (group commit) before every acknowledgement.
    Always,
    /// fsync every 50 ms.
    Interval,
    /// Leave flushing to the OS.
    Never,
}

/// Resolve flags (over an optional config file) into a node config.
pub fn node_config(args: &NodeArgs) -> Result<NodeConfig, String> {
    let mut cfg = match &args.config {
        Some(path) => NodeConfig::from_yaml_file(path).map_err(|e| e.to_string())?,
        None => {
            let id = args.id.clone().ok_or("--id is required (or --config)")?;
            let listen = args.listen.unwrap_or(DEFAULT_LISTEN);
            let dir = args
                .data_dir
                .clone()
                .ok_or("--data-dir is required (or --config)")?;
            NodeConfig::new(id, listen, dir)
        }
    };
    if let Some(v) = &args.id {
        cfg.id = v.clone();
    }
    if let Some(v) = args.listen {
        cfg.listen = v;
    }
    if let Some(v) = &args.advertise {
        cfg.advertise = Some(v.clone());
    }
    if let Some(v) = &args.data_dir {
        cfg.data_dir = v.clone();
    }
    if !args.peers.is_empty() {
        cfg.peers = args.peers.clone();
    }
    if let Some(v) = &args.zone {
        cfg.zone = v.clone();
    }
    // This node's own zone comes from --zone when --peers omits it.
    if let Some(me) = cfg.peers.iter_mut().find(|p| p.id == cfg.id)
        && me.zone.is_empty()
    {
        me.zone = cfg.zone.clone();
    }
    if let Some(v) = args.tokens {
        cfg.tokens = v;
    }
    if args.join {
        cfg.join = true;
    }
    if let Some(v) = args.replication {
        cfg.replication = v;
    } else if cfg.peers.len() < cfg.replication as usize && args.config.is_none() && !cfg.join {
        // A small cluster started without --replication: N = its size.
        cfg.replication = cfg.peers.len().max(1) as u32;
        cfg.write_quorum = cfg.write_quorum.min(cfg.replication);
        cfg.read_quorum = cfg.read_quorum.min(cfg.replication);
    }
    if let Some(v) = args.write_quorum {
        cfg.write_quorum = v;
    }
    if let Some(v) = args.read_quorum {
        cfg.read_quorum = v;
    }
    if args.sloppy {
        cfg.sloppy = true;
    }
    if let Some(d) = args.durability {
        cfg.durability = match d {
            DurabilityArg::Always => Durability::Always,
            DurabilityArg::Interval => Durability::Interval,
            DurabilityArg::Never => Durability::Never,
        };
    }
    if let Some(v) = args.max_siblings {
        cfg.max_siblings = v.max(1);
    }
    if let Some(v) = args.read_repair_chance {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("--read-repair-chance {v} must be between 0 and 1"));
        }
        cfg.read_repair_chance = v;
    }
    if let Some(mb) = args.cache_mb {
        cfg.cache_bytes = mb.checked_mul(1024 * 1024).ok_or_else(|| {
            format!("--cache-mb {mb} is more bytes than this machine can address")
        })?;
    }
    if let Some(v) = args.write_threads {
        cfg.write_threads = v;
    }
    let f = &args.failure;
    let fc = &mut cfg.failure;
    if let Some(v) = f.probe_period_ms {
        fc.probe_period_ms = v;
    }
    if let Some(v) = f.suspect_timeout_ms {
        fc.suspect_timeout_ms = v;
    }
    if let Some(v) = f.anti_entropy_interval_ms {
        fc.anti_entropy_interval_ms = v;
    }
    if let Some(v) = f.anti_entropy_keys_per_sec {
        fc.anti_entropy_keys_per_sec = v;
    }
    if let Some(v) = f.hint_replay_per_sec {
        fc.hint_replay_per_sec = v;
    }
    if let Some(v) = f.hint_max_age_ms {
        fc.hint_max_age_ms = v;
    }
    if let Some(v) = f.hint_max_bytes {
        fc.hint_max_bytes_per_target = v;
    }
    if let Some(v) = f.tombstone_grace_ms {
        fc.tombstone_grace_ms = v;
    }
    if let Some(v) = f.transfer_entries_per_sec {
        fc.transfer_entries_per_sec = v;
    }
    if let Some(a) = args.metrics_listen {
        cfg.metrics_listen = Some(a);
    }
    let s = &args.security;
    let sc = &mut cfg.security;
    for (flag, into) in [
        (&s.cluster_dir, &mut sc.cluster_dir),
        (&s.tls_ca, &mut sc.ca),
        (&s.tls_cert, &mut sc.cert),
        (&s.tls_key, &mut sc.key),
        (&s.tokens_file, &mut sc.tokens),
        (&s.cluster_key_file, &mut sc.cluster_key),
    ] {
        if flag.is_some() {
            into.clone_from(flag);
        }
    }
    if s.insecure {
        sc.insecure = true;
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

pub(super) fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

pub use crate::local_cluster::EXIT_WITH_PARENT_ENV;

/// Resolves once this process's parent is no longer `pid` (it died and the
/// process was re-parented). Never resolves when `pid` is `None`.
async fn parent_gone(pid: Option<u32>) {
    let Some(pid) = pid else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tick.tick().await;
        if std::os::unix::process::parent_id() != pid {
            tracing::warn!(
                launcher = pid,
                "the process that started this node is gone; stopping"
            );
            return;
        }
    }
}

/// Run a node in the foreground until SIGINT/SIGTERM. The one node entry
/// point: `ringkv node` and `loadgen __node` both call it.
pub fn run_node_blocking(args: NodeArgs) -> ExitCode {
    init_logging(&args.log);
    let cfg = match node_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringkv node: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let faults = if args.enable_fault_injection {
        Faults::enabled()
    } else {
        Faults::default()
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ringkv node: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let id = cfg.id.clone();
    let launcher = std::env::var(EXIT_WITH_PARENT_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    let stop = async move {
        tokio::select! {
            () = shutdown_signal() => {}
            () = parent_gone(launcher) => {}
        }
    };
    match rt.block_on(crate::server::run_node(cfg, faults, stop, None)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringkv node {id}: {e}");
            ExitCode::from(if e.is_usage() {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            })
        }
    }
}
