//! Node configuration and every named limit.
//!
//! A node is configured by `ringkv node` flags, optionally layered over a YAML
//! file (`--config FILE`, same field names). Limits are enforced at the edge
//! (the gRPC server) with a clear `INVALID_ARGUMENT`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ring::{DEFAULT_TOKENS_PER_NODE, RingDescription, RingMember};
use crate::security::NodePaths;

/// Largest key a client may write, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value a client may write, in bytes (10 KiB).
pub const MAX_VALUE_BYTES: usize = 10 * 1024;
/// Default bound on concurrent versions kept per key.
pub const DEFAULT_MAX_SIBLINGS: usize = 16;
/// Threads applying writes to the engine, unless configured. One means every write that
/// arrives during a commit-log fsync joins the next batch, so under load fsyncs and thread
/// wake-ups are fewest; two let a second batch start while the first waits for its fsync,
/// which shortens write latency at low load by about half an fsync and costs throughput at
/// saturation (docs/performance.md, "Write threads").
pub const DEFAULT_WRITE_THREADS: usize = 1;
/// Most write threads a node accepts.
pub const MAX_WRITE_THREADS: usize = 16;
/// Default replication factor (N).
pub const DEFAULT_REPLICATION: u32 = 3;
/// Default write quorum (W).
pub const DEFAULT_WRITE_QUORUM: u32 = 2;
/// Default read quorum (R).
pub const DEFAULT_READ_QUORUM: u32 = 2;
/// Default deadline for one client request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest gRPC message a node accepts (a full sibling set plus slack).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How the commit log is made durable before a write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// fsync (group commit) before every acknowledgement.
    #[default]
    Always,
    /// fsync at most every `sync_interval_ms`; a power loss may lose that window.
    Interval,
    /// Never fsync explicitly; the OS decides.
    Never,
}

/// Everything a node needs to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Stable node id (`n1`).
    pub id: String,
    /// gRPC listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Address peers and clients use to reach this node (defaults to `listen`).
    #[serde(default)]
    pub advertise: Option<String>,
    /// Where the engine, ring and hints live.
    pub data_dir: PathBuf,
    /// Failure zone.
    #[serde(default)]
    pub zone: String,
    /// Initial members (including this node). Used only when the data
    /// directory holds no ring yet.
    #[serde(default)]
    pub peers: Vec<PeerSpec>,
    /// Start outside the ring, waiting to be added with `ringkv admin join`
    /// (the node adopts the ring the admin step pushes to it).
    #[serde(default)]
    pub join: bool,
    /// Tokens (virtual nodes) for each initial member.
    #[serde(default = "default_tokens")]
    pub tokens: u32,
    /// N.
    #[serde(default = "default_replication")]
    pub replication: u32,
    /// Default W.
    #[serde(default = "default_w")]
    pub write_quorum: u32,
    /// Default R.
    #[serde(default = "default_r")]
    pub read_quorum: u32,
    /// Whether writes to fallback nodes count towards W by default.
    #[serde(default)]
    pub sloppy: bool,
    /// Versions kept per key before the oldest are dropped.
    #[serde(default = "default_max_siblings")]
    pub max_siblings: usize,
    /// Commit-log durability.
    #[serde(default)]
    pub durability: Durability,
    /// fsync interval for [`Durability::Interval`].
    #[serde(default = "default_sync_interval_ms")]
    pub sync_interval_ms: u64,
    /// Threads applying writes to the engine (1 to [`MAX_WRITE_THREADS`]).
    #[serde(default = "default_write_threads")]
    pub write_threads: usize,
    /// Engine block cache budget.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: usize,
    /// Engine memtable budget.
    #[serde(default = "default_memtable_bytes")]
    pub memtable_bytes: usize,
    /// Share of reads that ask all N replicas instead of R, so read repair
    /// sees every replica (the rest are left to anti-entropy).
    #[serde(default = "default_read_repair_chance")]
    pub read_repair_chance: f64,
    /// Client request deadline in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Background task intervals and bounds (failure handling).
    #[serde(default)]
    pub failure: FailureConfig,
    /// TLS, tokens and the context key.
    #[serde(default)]
    pub security: SecurityConfig,
    /// Serve Prometheus metrics (`/metrics`, plain HTTP) here; none by default.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

/// Where a node's security material is. Either a cluster directory (`ringkv certs`
/// makes one) or each file by itself (a file given by itself wins); or `insecure`, on a
/// loopback address only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// A cluster directory: `ca.pem`, `nodes/ID.pem`, `nodes/ID.key`, `tokens`, `cluster.key`.
    pub cluster_dir: Option<PathBuf>,
    /// The cluster CA certificate.
    pub ca: Option<PathBuf>,
    /// This node's certificate.
    pub cert: Option<PathBuf>,
    /// This node's private key.
    pub key: Option<PathBuf>,
    /// The hashed tokens file.
    pub tokens: Option<PathBuf>,
    /// The context-signing key file.
    pub cluster_key: Option<PathBuf>,
    /// No TLS, no tokens, unsigned contexts: for experiments on loopback only.
    pub insecure: bool,
}

impl SecurityConfig {
    /// The files this node uses, or `None` when it runs insecure.
    pub fn resolve(&self, id: &str, listen: &SocketAddr) -> Result<Option<NodePaths>, ConfigError> {
        if self.insecure {
            if !crate::security::is_loopback(listen) {
                return Err(ConfigError::Security(format!(
                    "--insecure is refused on {listen}: without TLS and tokens anyone who reaches the port can read and change everything; it is allowed on loopback addresses only"
                )));
            }
            return Ok(None);
        }
        let from_dir = self
            .cluster_dir
            .as_ref()
            .map(|d| NodePaths::in_cluster_dir(d, id));
        let pick = |own: &Option<PathBuf>, dir: Option<&PathBuf>, flag: &str| {
            own.clone().or_else(|| dir.cloned()).ok_or_else(|| {
                ConfigError::Security(format!(
                    "no TLS material: missing {flag}. Pass --cluster-dir DIR (or set RINGKV_CLUSTER_DIR); make one with `ringkv certs --dir DIR --nodes {id}`. For an experiment on loopback, --insecure runs without TLS or tokens"
                ))
            })
        };
        let d = from_dir.as_ref();
        Ok(Some(NodePaths {
            ca: pick(&self.ca, d.map(|p| &p.ca), "--tls-ca")?,
            cert: pick(&self.cert, d.map(|p| &p.cert), "--tls-cert")?,
            key: pick(&self.key, d.map(|p| &p.key), "--tls-key")?,
            tokens: pick(&self.tokens, d.map(|p| &p.tokens), "--tokens-file")?,
            cluster_key: pick(
                &self.cluster_key,
                d.map(|p| &p.cluster_key),
                "--cluster-key-file",
            )?,
        }))
    }
}

/// Intervals and bounds of the failure-handling machinery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailureConfig {
    /// SWIM probe period in milliseconds.
    pub probe_period_ms: u64,
    /// How long a suspect member has to refute before it is declared down.
    pub suspect_timeout_ms: u64,
    /// Hint bytes kept per target node before new hints are dropped.
    pub hint_max_bytes_per_target: u64,
    /// Hints older than this are dropped (and left to anti-entropy).
    pub hint_max_age_ms: u64,
    /// Hints a receiver accepts per second while replaying (its pace).
    pub hint_replay_per_sec: u32,
    /// Period between anti-entropy rounds (0 disables the periodic rounds).
    pub anti_entropy_interval_ms: u64,
    /// Keys anti-entropy exchanges per second at most (0: no limit).
    pub anti_entropy_keys_per_sec: u32,
    /// How long a fully acknowledged tombstone is kept before it is purged.
    pub tombstone_grace_ms: u64,
    /// Entries per second a node pulls when it gains ranges, over all its ranges and pages
    /// (0: no limit). The default keeps a join from taking the CPU from foreground requests
    /// (an unthrottled join showed as a 290 ms p99 blip in `workloads/failover.yaml`, and
    /// later, when the throttle skipped ranges smaller than a page, as that run's worst
    /// second).
    pub transfer_entries_per_sec: u32,
}

impl Default for FailureConfig {
    fn default() -> Self {
        FailureConfig {
            probe_period_ms: 500,
            suspect_timeout_ms: 2_000,
            hint_max_bytes_per_target: 256 * 1024 * 1024,
            hint_max_age_ms: 3 * 3600 * 1000,
            hint_replay_per_sec: 5_000,
            anti_entropy_interval_ms: 30_000,
            anti_entropy_keys_per_sec: 1_000,
            tombstone_grace_ms: 4 * 3600 * 1000,
            transfer_entries_per_sec: 5_000,
        }
    }
}

fn default_tokens() -> u32 {
    DEFAULT_TOKENS_PER_NODE
}
fn default_replication() -> u32 {
    DEFAULT_REPLICATION
}
fn default_w() -> u32 {
    DEFAULT_WRITE_QUORUM
}
fn default_r() -> u32 {
    DEFAULT_READ_QUORUM
}
fn default_max_siblings() -> usize {
    DEFAULT_MAX_SIBLINGS
}
fn default_write_threads() -> usize {
    DEFAULT_WRITE_THREADS
}
fn default_sync_interval_ms() -> u64 {
    50
}
fn default_cache_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_memtable_bytes() -> usize {
    8 * 1024 * 1024
}
/// Share of reads that ask every replica, unless configured.
pub const DEFAULT_READ_REPAIR_CHANCE: f64 = 0.1;

fn default_read_repair_chance() -> f64 {
    DEFAULT_READ_REPAIR_CHANCE
}
fn default_timeout_ms() -> u64 {
    DEFAULT_REQUEST_TIMEOUT.as_millis() as u64
}

/// One initial member: `ID@ADDR` or `ID@ADDR/ZONE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSpec {
    /// Node id.
    pub id: String,
    /// Its gRPC address.
    pub address: String,
    /// Its zone.
    #[serde(default)]
    pub zone: String,
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Bad `--peers` entry.
    #[error("peer {0:?} is not ID@HOST:PORT or ID@HOST:PORT/ZONE")]
    BadPeer(String),
    /// Quorum out of range.
    #[error("{what} = {value} must be between 1 and the replication factor N = {n}")]
    BadQuorum {
        /// `write quorum (W)` or `read quorum (R)`.
        what: &'static str,
        /// The value given.
        value: u32,
        /// N.
        n: u32,
    },
    /// Replication larger than the membership.
    #[error("replication factor N = {n} needs at least {n} members, but the ring has {members}")]
    NotEnoughMembers {
        /// N.
        n: u32,
        /// Members listed.
        members: usize,
    },
    /// Empty node id.
    #[error("the node id must not be empty")]
    EmptyId,
    /// This node is not in the member list.
    #[error("node {0:?} is not in --peers; list every member, this node included")]
    SelfNotInPeers(String),
    /// The config file could not be read or parsed.
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong (with line and column for YAML errors).
        message: String,
    },
    /// Security material missing, or `insecure` where it is not allowed.
    #[error("{0}")]
    Security(String),
    /// A thread count out of range.
    #[error("write_threads = {0} must be between 1 and {MAX_WRITE_THREADS}")]
    BadWriteThreads(usize),
}

impl std::str::FromStr for PeerSpec {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigError::BadPeer(s.to_string());
        let (id, rest) = s.split_once('@').ok_or_else(bad)?;
        let (address, zone) = match rest.split_once('/') {
            Some((a, z)) => (a, z),
            None => (rest, ""),
        };
        if id.is_empty() || !address.contains(':') {
            return Err(bad());
        }
        Ok(PeerSpec {
            id: id.to_string(),
            address: address.to_string(),
            zone: zone.to_string(),
        })
    }
}

impl std::fmt::Display for PeerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.id, self.address)?;
        if !self.zone.is_empty() {
            write!(f, "/{}", self.zone)?;
        }
        Ok(())
    }
}

/// Check W and R against N; shared by node start-up and per-request checks.
pub fn check_quorum(what: &'static str, value: u32, n: u32) -> Result<(), ConfigError> {
    if value == 0 || value > n {
        return Err(ConfigError::BadQuorum { what, value, n });
    }
    Ok(())
}

impl NodeConfig {
    /// A config with defaults for everything but identity and place.
    pub fn new(id: impl Into<String>, listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            id: id.into(),
            listen,
            advertise: None,
            data_dir: data_dir.into(),
            zone: String::new(),
            peers: Vec::new(),
            join: false,
            tokens: default_tokens(),
            replication: default_replication(),
            write_quorum: default_w(),
            read_quorum: default_r(),
            sloppy: false,
            max_siblings: default_max_siblings(),
            durability: Durability::default(),
            sync_interval_ms: default_sync_interval_ms(),
            write_threads: default_write_threads(),
            cache_bytes: default_cache_bytes(),
            memtable_bytes: default_memtable_bytes(),
            request_timeout_ms: default_timeout_ms(),
            read_repair_chance: default_read_repair_chance(),
            failure: FailureConfig::default(),
            security: SecurityConfig::default(),
            metrics_listen: None,
        }
    }

    /// Read a YAML config file.
    pub fn from_yaml_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        serde_saphyr::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The address others should dial.
    pub fn advertised_address(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }

    /// The ring a fresh data directory starts from: `--peers` (or just this
    /// node when none are given), version 1.
    pub fn initial_ring(&self) -> Result<RingDescription, ConfigError> {
        if self.join {
            // Version 0: a placeholder any pushed ring supersedes.
            let me = RingMember {
                id: self.id.clone(),
                address: self.advertised_address(),
                zone: self.zone.clone(),
                tokens: self.tokens,
            };
            return Ok(RingDescription::new(0, 1, vec![me]));
        }
        let mut members: Vec<RingMember> = self
            .peers
            .iter()
            .map(|p| RingMember {
                id: p.id.clone(),
                address: p.address.clone(),
                zone: p.zone.clone(),
                tokens: self.tokens,
            })
            .collect();
        if members.is_empty() {
            members.push(RingMember {
                id: self.id.clone(),
                address: self.advertised_address(),
                zone: self.zone.clone(),
                tokens: self.tokens,
            });
        }
        if !members.iter().any(|m| m.id == self.id) {
            return Err(ConfigError::SelfNotInPeers(self.id.clone()));
        }
        Ok(RingDescription::new(1, self.replication, members))
    }

    /// Check the config is usable before anything is opened.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.is_empty() {
            return Err(ConfigError::EmptyId);
        }
        let n = self.replication;
        let members = self.peers.len().max(1);
        if n == 0 || (n as usize > members && !self.join) {
            return Err(ConfigError::NotEnoughMembers { n, members });
        }
        check_quorum("write quorum (W)", self.write_quorum, n)?;
        check_quorum("read quorum (R)", self.read_quorum, n)?;
        if !(1..=MAX_WRITE_THREADS).contains(&self.write_threads) {
            return Err(ConfigError::BadWriteThreads(self.write_threads));
        }
        self.security.resolve(&self.id, &self.listen)?;
        self.initial_ring().map(|_| ())
    }

    /// Client request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_spec_parses_with_and_without_zone() {
        let p: PeerSpec = "n1@127.0.0.1:7001".parse().unwrap();
        assert_eq!(
            (p.id.as_str(), p.address.as_str(), p.zone.as_str()),
            ("n1", "127.0.0.1:7001", "")
        );
        let p: PeerSpec = "n2@127.0.0.1:7002/b".parse().unwrap();
        assert_eq!(p.zone, "b");
        assert_eq!(p.to_string(), "n2@127.0.0.1:7002/b");
        assert!("n1".parse::<PeerSpec>().is_err());
        assert!("@127.0.0.1:1".parse::<PeerSpec>().is_err());
        assert!("n1@nohost".parse::<PeerSpec>().is_err());
    }

    #[test]
    fn quorum_larger_than_n_is_refused() {
        let mut c = NodeConfig::new("n1", "127.0.0.1:0".parse().unwrap(), "/tmp/x");
        c.replication = 1;
        c.write_quorum = 2;
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("write quorum (W) = 2"), "{err}");
    }

    #[test]
    fn yaml_config_reports_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.yaml");
        std::fs::write(
            &path,
            "id: n1\nlisten: 127.0.0.1:7001\ndata_dir: /tmp/d\nbogus: 1\n",
        )
        .unwrap();
        let err = NodeConfig::from_yaml_file(&path).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
