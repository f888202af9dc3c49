//! The YAML workload schema (serde) and its validation.
//!
//! `docs/loadgen.md` is the reference for every field. Parsing refuses unknown fields and reports
//! line and column; [`Workload::load`] then validates the whole file, including every sweep point
//! (see [`crate::plan`]), before anything starts.

mod autoscale;
pub mod null_model;
pub mod rate;
pub mod shard;
pub mod slo;
pub mod units;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub use null_model::NullModel;
pub use rate::{RateSchedule, RateSpec, RateStep};
pub use shard::Shard;
pub use slo::{MaxRateSearch, SearchSpec, Slo};
pub use units::{ByteSize, DurationSpec, Percent, Preload, Quorum, SizeSpec, WeightedSize};

/// The store refuses values larger than this (10 KB); so does the workload validation.
pub const MAX_VALUE_BYTES: u64 = 10 * 1024;
/// The store refuses keys larger than this (1 KB).
pub const MAX_KEY_BYTES: u64 = 1024;
/// The most nodes a local cluster may have on one machine.
pub const MAX_LOCAL_NODES: u32 = 32;
/// The most concurrent workers or in-flight requests a point may ask for.
pub const MAX_CONCURRENCY: u32 = 100_000;
/// Default number of client connections.
pub const DEFAULT_CONNECTIONS: u32 = 4;
/// The most requests a closed-loop worker may send together (`pipeline:`).
pub const MAX_PIPELINE: u32 = 1024;
/// Default cap on requests in flight for an open-loop run.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 256;
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of local nodes.
pub const DEFAULT_NODES: u32 = 3;
/// Default virtual nodes (tokens) per node.
pub const DEFAULT_TOKENS_PER_NODE: u32 = 64;

/// Which system the load goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A ringkv cluster: local nodes started per point, or `cluster.endpoints`.
    #[default]
    Ringkv,
    /// Does nothing and answers at once: measures the load generator itself.
    Null,
    /// A redis server (`cluster.endpoints`, or `cluster.start: true` for a local one): the
    /// calibration target.
    Redis,
}

/// `cluster:` — the local cluster to start per point, or an existing one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Nodes to start (default 3).
    pub nodes: Option<Spanned<u32>>,
    /// Virtual nodes per node on the ring (default 64).
    pub tokens_per_node: Option<u32>,
    /// Zones assigned to nodes round-robin (default: none).
    pub zones: Vec<String>,
    /// Replication factor N (default min(3, nodes)).
    pub replication: Option<Spanned<u32>>,
    /// Write quorum W (default a majority of N).
    pub write_quorum: Option<Spanned<u32>>,
    /// Read quorum R (default a majority of N).
    pub read_quorum: Option<Spanned<u32>>,
    /// Count hinted writes towards W (default: the cluster's default).
    pub sloppy: Option<bool>,
    /// Endpoints of an already-running cluster; nothing is started when set.
    pub endpoints: Vec<String>,
    /// Extra command-line arguments for every node started.
    pub node_args: Vec<String>,
    /// Local nodes: start them `--insecure` (no TLS, no tokens), to measure what security
    /// costs. Endpoints: the cluster is insecure; talk plaintext without a token.
    pub insecure: bool,
    /// How to reach `endpoints` securely (default: `RINGKV_CLUSTER_DIR`, or `RINGKV_CA` and
    /// `RINGKV_TOKEN`). Local clusters make and use their own material.
    pub security: Option<EndpointSecurity>,
    /// `target: redis` only: start a local `redis-server` for the run.
    pub start: bool,
}

/// `cluster.security:` — the CA, token and optional client certificate for `endpoints`.
/// Relative paths are relative to the working directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointSecurity {
    /// A cluster directory holding `ca.pem` and `admin.token`.
    pub cluster_dir: Option<PathBuf>,
    /// The cluster CA certificate.
    pub ca: Option<PathBuf>,
    /// The token itself.
    pub token: Option<String>,
    /// A file holding the token (must not be readable by other users).
    pub token_file: Option<PathBuf>,
    /// A client certificate (needs `key`).
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    pub key: Option<PathBuf>,
}

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDistributionKind {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// Zipfian over key ranks, skew `theta` (default 0.99), sampled exactly.
    Zipfian,
    /// Zipfian over recency: reads favour the newest keys; writes insert new keys.
    Latest,
    /// A hot set of `hot_set` of the keys gets `hot_ops` of the operations.
    Hotspot,
    /// Keys in order, wrapping around.
    Sequential,
}

/// `keys:` — the key space.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Number of distinct keys.
    pub count: u64,
    /// Key length in bytes (default 16).
    #[serde(default = "default_key_size")]
    pub size: ByteSize,
    /// The distribution (default uniform).
    #[serde(default)]
    pub distribution: KeyDistributionKind,
    /// Zipfian/latest skew, 0 < theta <= 5 (default 0.99).
    pub theta: Option<f64>,
    /// Hotspot: fraction of keys that are hot (default 0.2).
    pub hot_set: Option<f64>,
    /// Hotspot: fraction of operations that go to the hot keys (default 0.8).
    pub hot_ops: Option<f64>,
}

fn default_key_size() -> ByteSize {
    ByteSize(16)
}

/// The zipfian skew used when `theta` is not given.
pub const DEFAULT_THETA: f64 = 0.99;

/// `values:` — what writes carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesConfig {
    /// Fixed size, uniform range or weighted list.
    pub size: Spanned<SizeSpec>,
}

/// `mix:` — relative weights of the operations. A weight left out of a given mix is 0
/// (`mix: { read: 100 }` is reads only); a workload without `mix:` gets [`Mix::default`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// Point reads (`get`).
    #[serde(default)]
    pub read: f64,
    /// Writes (`put`, superseding the last context the client saw for the key).
    #[serde(default)]
    pub write: f64,
    /// Deletes.
    #[serde(default)]
    pub delete: f64,
    /// Read-modify-write: a `get`, then a `put` with the context it returned (YCSB F).
    #[serde(default)]
    pub read_modify_write: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            read: 50.0,
            write: 50.0,
            delete: 0.0,
            read_modify_write: 0.0,
        }
    }
}

/// `sweep:` — lists whose cartesian product is the set of points.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sweep {
    /// Fixed value sizes (each replaces `values.size`).
    pub value_size: Vec<Spanned<ByteSize>>,
    /// Replication factors N.
    pub replication: Vec<Spanned<u32>>,
    /// (W, R) pairs.
    pub quorum: Vec<Spanned<Quorum>>,
    /// Open-loop arrival rates (ops/s).
    pub rate: Vec<Spanned<f64>>,
    /// Closed-loop worker counts.
    pub concurrency: Vec<Spanned<u32>>,
    /// Cluster sizes.
    pub nodes: Vec<Spanned<u32>>,
    /// Key counts (each replaces `keys.count`). Left out of the serialized workload when
    /// empty, so the workload hash of files without it is unchanged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Spanned<u64>>,
}

/// A parsed workload file. Build one with [`Workload::load`] or [`Workload::parse`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Names the results folder: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Seed of every generator; the same seed gives the same operations.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `ringkv` (default) or `null`.
    #[serde(default)]
    pub target: TargetKind,
    /// The cluster to start per point, or `endpoints:` of a running one.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// The key space.
    pub keys: KeysConfig,
    /// Value sizes.
    pub values: ValuesConfig,
    /// Operation weights.
    #[serde(default)]
    pub mix: Mix,
    /// What to write before warm-up (default every key).
    #[serde(default)]
    pub preload: Preload,
    /// Load before measuring; excluded from results (default 0s).
    pub warmup: Option<DurationSpec>,
    /// How long to measure each point.
    pub duration: Option<DurationSpec>,
    /// Or: how many operations to measure per point.
    pub ops: Option<u64>,
    /// Open loop: arrival rate in ops/s, or a schedule of steps and ramps.
    pub rate: Option<Spanned<RateSpec>>,
    /// Closed loop: number of workers, each with one request in flight.
    pub concurrency: Option<Spanned<u32>>,
    /// Open loop: most requests in flight at once (default 256).
    pub max_in_flight: Option<u32>,
    /// Client connections (default 4).
    pub connections: Option<u32>,
    /// Closed loop: requests each worker sends together, waiting for all their answers before
    /// the next batch, as `redis-benchmark -P` does (default 1). The redis target sends a batch
    /// as one wire-level pipeline; ringkv has the batch in flight on its sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<u32>,
    /// Per-request timeout (default 2s).
    pub timeout: Option<DurationSpec>,
    /// Lists to sweep over.
    #[serde(default)]
    pub sweep: Sweep,
    /// Changes to the local cluster during the measured phase of every point.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Runs of every point, each on a fresh cluster (default 1); `--repeat` replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Spanned<u32>>,
    /// How the client sends requests.
    #[serde(default)]
    pub client: ClientConfig,
    /// Trace written values and check every read for staleness (default on for ringkv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Spanned<bool>>,
    /// Audit for lost writes after each point (default on when `events` has faults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Spanned<bool>>,
    /// Scale each point's local cluster on its traffic with this policy
    /// (`docs/autoscaling.md`; `{}` takes the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Spanned<store::autoscale::Policy>>,
    /// The objective a `search` step must meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Spanned<Slo>>,
    /// Instead of fixed points: search for the highest open-loop rate that meets `slo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Spanned<SearchSpec>>,
    /// `target: null` only: simulated servers with a fixed service time (default: none, every
    /// request answers at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_model: Option<Spanned<NullModel>>,
}

/// `client:` — how requests reach the cluster.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Which node coordinates each request.
    pub routing: RoutingKind,
    /// Hedged reads: a read unanswered after this long is also sent to the next replica,
    /// the first answer wins (default off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hedge_reads_after: Option<DurationSpec>,
}

/// `client.routing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingKind {
    /// The key's first replica (it coordinates, saving a hop).
    #[default]
    TokenAware,
    /// A node chosen uniformly at random per request (PBS's model of replica choice).
    Random,
}

impl RoutingKind {
    /// The client's routing.
    pub fn routing(self) -> store::client::Routing {
        match self {
            RoutingKind::TokenAware => store::client::Routing::TokenAware,
            RoutingKind::Random => store::client::Routing::Random,
        }
    }
}

/// Bytes of the header that names each write when consistency is checked
/// (`generator::trace`); values must be at least this long then.
pub const TRACE_HEADER_BYTES: usize = 24;

/// The most runs `repeat:` or `--repeat` may ask for per point.
pub const MAX_REPEAT: u32 = 100;

/// What an event does to the local cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// SIGKILL the node (a crash); its data stays for a `restart`.
    Kill,
    /// Stop the node cleanly (SIGTERM).
    Stop,
    /// Start a killed or stopped node again, same id, address and data.
    Restart,
    /// Freeze the node (SIGSTOP): connections stay open, nothing is answered.
    Pause,
    /// Thaw a paused node (SIGCONT).
    Resume,
    /// Start a new node and join it to the ring (`ringkv admin join`).
    Add,
    /// Take the node out of the ring (`ringkv admin leave`: hand its data off), then stop it.
    Remove,
    /// Cut the network between `groups` of nodes (packet-filter DROP rules between their
    /// loopback addresses); nodes in no group form one more group.
    Partition,
    /// End the partition.
    Heal,
}

impl EventAction {
    /// The name used in the workload file and the results.
    pub fn name(self) -> &'static str {
        match self {
            EventAction::Kill => "kill",
            EventAction::Stop => "stop",
            EventAction::Restart => "restart",
            EventAction::Pause => "pause",
            EventAction::Resume => "resume",
            EventAction::Add => "add",
            EventAction::Remove => "remove",
            EventAction::Partition => "partition",
            EventAction::Heal => "heal",
        }
    }
}

/// `events:` entry — one change to the local cluster at a time in the measured phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// When, counted from the end of warm-up (the start of the measured window).
    pub at: Spanned<DurationSpec>,
    /// What to do.
    pub action: EventAction,
    /// The node, by id (`n1` … `nN`; nodes added by earlier `add` events are `nN+1`, …).
    /// Every action but `add` needs one.
    pub node: Option<Spanned<String>>,
    /// `add` only: the new node's zone (default: the next zone round-robin).
    pub zone: Option<String>,
    /// `partition` only: the groups of node ids that can reach each other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<Spanned<String>>>,
}

fn default_seed() -> u64 {
    1
}

/// Why a workload file was refused. Every variant is a usage error (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The file could not be read.
    #[error("cannot read workload {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema.
    #[error("{}", located(path, *line, *column, message))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What is wrong and what to do.
        message: String,
    },
    /// The file parses but asks for something impossible.
    #[error("{}", located(path, *line, *column, message))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What is wrong and what to do.
        message: String,
    },
}

fn located(path: &Path, line: u64, column: u64, message: &str) -> String {
    if line > 0 {
        format!("{}:{line}:{column}: {message}", path.display())
    } else {
        format!("{}: {message}", path.display())
    }
}

impl WorkloadError {
    /// Line and column of the problem, when known.
    pub fn line_column(&self) -> Option<(u64, u64)> {
        match self {
            WorkloadError::Parse { line, column, .. }
            | WorkloadError::Invalid { line, column, .. }
                if *line > 0 =>
            {
                Some((*line, *column))
            }
            _ => None,
        }
    }
}

/// A validation failure before a file name is attached.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) at: Option<serde_saphyr::Location>,
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn new(message: impl Into<String>) -> Problem {
        Problem {
            at: None,
            message: message.into(),
        }
    }
    pub(crate) fn at<T>(spanned: &Spanned<T>, message: impl Into<String>) -> Problem {
        Problem {
            at: Some(spanned.referenced),
            message: message.into(),
        }
    }
    pub(crate) fn into_error(self, path: &Path) -> WorkloadError {
        let (line, column) = match self.at {
            Some(l) if l != serde_saphyr::Location::UNKNOWN => (l.line(), l.column()),
            _ => (0, 0),
        };
        WorkloadError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message: self.message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Workload {
    /// Runs per point (`repeat:`, default 1).
    pub fn repeat_count(&self) -> u32 {
        self.repeat.as_ref().map(|r| r.value).unwrap_or(1)
    }

    /// Measured phase length, when given as a duration.
    pub fn measure_duration(&self) -> Option<Duration> {
        self.duration.map(|d| d.0)
    }

    /// Warm-up length (zero when not given).
    pub fn warmup_duration(&self) -> Duration {
        self.warmup.map(|d| d.0).unwrap_or(Duration::ZERO)
    }

    /// Per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT)
    }

    /// Client connections.
    pub fn connection_count(&self) -> u32 {
        self.connections.unwrap_or(DEFAULT_CONNECTIONS)
    }

    /// Closed loop: requests per worker batch (1: one at a time).
    pub fn pipeline_depth(&self) -> u32 {
        self.pipeline.unwrap_or(1)
    }

    /// Open loop: cap on requests in flight.
    pub fn in_flight_cap(&self) -> u32 {
        self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT)
    }

    /// Whether written values are traced and reads checked: ringkv targets, unless
    /// `consistency: false`.
    pub fn checks_consistency(&self) -> bool {
        self.target == TargetKind::Ringkv && self.consistency.as_ref().is_none_or(|c| c.value)
    }

    /// Whether each point ends with the lost-write audit: `audit:`, by default on when
    /// `events` has a fault (kill, stop, pause, remove).
    pub fn audits(&self) -> bool {
        match &self.audit {
            Some(a) => a.value,
            None => {
                self.checks_consistency()
                    && (self.autoscale.is_some()
                        || self.events.iter().any(|e| {
                            matches!(
                                e.action,
                                EventAction::Kill
                                    | EventAction::Stop
                                    | EventAction::Pause
                                    | EventAction::Remove
                            )
                        }))
            }
        }
    }

    /// Whether `events` cut the network (the cluster then puts each node on its own address).
    pub fn has_partitions(&self) -> bool {
        self.events
            .iter()
            .any(|e| e.action == EventAction::Partition)
    }

    /// Whether the run is open loop (a rate is given, at top level or in the sweep, or a
    /// search chooses it).
    pub fn is_open_loop(&self) -> bool {
        self.rate.is_some() || !self.sweep.rate.is_empty() || self.search.is_some()
    }

    /// Checks everything that does not depend on the sweep point.
    pub(crate) fn validate(&self) -> Result<(), Problem> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || self.name.starts_with('.')
        {
            return Err(Problem::new(format!(
                "name `{}` must be letters, digits, `-`, `_` or `.` (it names the results folder)",
                self.name
            )));
        }
        if let Some(r) = &self.repeat
            && !(1..=MAX_REPEAT).contains(&r.value)
        {
            return Err(Problem::at(
                r,
                format!("repeat must be 1..={MAX_REPEAT} runs per point"),
            ));
        }
        match (&self.duration, &self.ops) {
            (Some(_), Some(_)) => {
                return Err(Problem::new("give either `duration` or `ops`, not both"));
            }
            (None, None) => {
                return Err(Problem::new(
                    "say how long to measure: add `duration: 30s` or `ops: 100000`",
                ));
            }
            (Some(d), None) if d.0.is_zero() => {
                return Err(Problem::new("`duration` must be longer than 0s"));
            }
            (None, Some(0)) => return Err(Problem::new("`ops` must be at least 1")),
            _ => {}
        }
        self.validate_search()?;
        let open = self.is_open_loop();
        let closed = self.concurrency.is_some() || !self.sweep.concurrency.is_empty();
        self.validate_rate_schedule(closed)?;
        if open && closed {
            return Err(Problem::new(
                "choose one loop: `rate` (open loop, fixed arrival rate) or `concurrency` \
                 (closed loop), not both",
            ));
        }
        if !open && !closed {
            return Err(Problem::new(
                "say how to drive the load: add `rate: 1000` (open loop, ops/s) or \
                 `concurrency: 16` (closed loop)",
            ));
        }
        if self.max_in_flight.is_some() && !open {
            return Err(Problem::new(
                "`max_in_flight` applies to an open loop (`rate`); a closed loop has \
                 `concurrency` requests in flight",
            ));
        }
        if let Some(m) = self.max_in_flight
            && !(1..=MAX_CONCURRENCY).contains(&m)
        {
            return Err(Problem::new(format!(
                "`max_in_flight` must be 1..={MAX_CONCURRENCY}"
            )));
        }
        if self.pipeline.is_some() && open {
            return Err(Problem::new(
                "`pipeline` applies to a closed loop (`concurrency`): an open loop sends each \
                 request at its own arrival time",
            ));
        }
        if let Some(p) = self.pipeline
            && !(1..=MAX_PIPELINE).contains(&p)
        {
            return Err(Problem::new(format!(
                "`pipeline` must be 1..={MAX_PIPELINE}"
            )));
        }
        if let Some(c) = self.connections
            && !(1..=1024).contains(&c)
        {
            return Err(Problem::new("`connections` must be 1..=1024"));
        }
        if self.request_timeout().is_zero() {
            return Err(Problem::new("`timeout` must be longer than 0s"));
        }
        if let Some(h) = self.client.hedge_reads_after {
            if self.target != TargetKind::Ringkv {
                return Err(Problem::new(
                    "`client.hedge_reads_after` applies to the ringkv target",
                ));
            }
            if h.0.is_zero() || h.0 >= self.request_timeout() {
                return Err(Problem::new(
                    "`client.hedge_reads_after` must be longer than 0s and shorter than \
                     `timeout`",
                ));
            }
        }
        self.validate_keys()?;
        self.validate_values()?;
        self.validate_mix()?;
        self.validate_cluster()?;
        self.validate_events()?;
        self.validate_autoscale()?;
        self.validate_null_model()
    }

    /// A `rate` schedule is the point's whole load: it cannot be swept over or combined with a
    /// closed loop. (Its entries are checked with the points, in [`crate::plan`].)
    fn validate_rate_schedule(&self, closed: bool) -> Result<(), Problem> {
        let Some(r) = &self.rate else {
            return Ok(());
        };
        if !matches!(r.value, RateSpec::Schedule(_)) {
            return Ok(());
        }
        if let Some(first) = self.sweep.rate.first() {
            return Err(Problem::at(
                first,
                "`sweep.rate` cannot be combined with a `rate` schedule: the schedule sets the \
                 rate over time; remove one of them",
            ));
        }
        if closed {
            return Err(Problem::at(
                r,
                "a `rate` schedule drives an open loop; `concurrency` asks for a closed loop: \
                 choose one, not both",
            ));
        }
        Ok(())
    }

    /// Node counts the points of this workload start with.
    fn node_counts(&self) -> Vec<u32> {
        if self.sweep.nodes.is_empty() {
            vec![
                self.cluster
                    .nodes
                    .as_ref()
                    .map_or(DEFAULT_NODES, |n| n.value),
            ]
        } else {
            self.sweep.nodes.iter().map(|n| n.value).collect()
        }
    }

    /// Events in the order they run (by time; ties in file order).
    pub fn events_in_order(&self) -> Vec<&Event> {
        let mut events: Vec<&Event> = self.events.iter().collect();
        events.sort_by_key(|e| e.at.value);
        events
    }

    fn validate_events(&self) -> Result<(), Problem> {
        let Some(first) = self.events.first() else {
            return Ok(());
        };
        if self.target != TargetKind::Ringkv || !self.cluster.endpoints.is_empty() {
            return Err(Problem::at(
                &first.at,
                "`events` change a local cluster started per point: they need `target: ringkv` \
                 and no `cluster.endpoints`",
            ));
        }
        for e in &self.events {
            if let Some(d) = self.measure_duration()
                && e.at.value.0 >= d
            {
                return Err(Problem::at(
                    &e.at,
                    format!(
                        "event at {} would come after the measured window ({}); events are \
                         timed from the end of warm-up",
                        e.at.value,
                        DurationSpec(d)
                    ),
                ));
            }
            if e.action == EventAction::Partition {
                if e.node.is_some() || e.zone.is_some() {
                    return Err(Problem::at(
                        &e.at,
                        "`partition` takes `groups: [[n1], [n2, n3]]`, not `node` or `zone`",
                    ));
                }
                if e.groups.iter().all(Vec::is_empty) {
                    return Err(Problem::at(
                        &e.at,
                        "`partition` needs `groups`, e.g. `groups: [[n1], [n2, n3]]` (nodes in \
                         no group form one more group)",
                    ));
                }
                let mut seen = std::collections::BTreeSet::new();
                for n in e.groups.iter().flatten() {
                    if !seen.insert(n.value.as_str()) {
                        return Err(Problem::at(
                            n,
                            format!("node `{}` is in two groups of one partition", n.value),
                        ));
                    }
                }
                continue;
            }
            if !e.groups.is_empty() {
                return Err(Problem::at(&e.at, "`groups` applies to `partition` only"));
            }
            if e.action == EventAction::Heal {
                if e.node.is_some() || e.zone.is_some() {
                    return Err(Problem::at(&e.at, "`heal` takes no `node` or `zone`"));
                }
                continue;
            }
            match (e.action, &e.node) {
                (EventAction::Add, Some(n)) => {
                    return Err(Problem::at(
                        n,
                        "`add` starts a new node and names it; remove `node` (use `zone` to \
                         place it)",
                    ));
                }
                (EventAction::Add, None) => {}
                (a, None) => {
                    return Err(Problem::at(
                        &e.at,
                        format!("`{}` needs `node: ID` (for example `node: n2`)", a.name()),
                    ));
                }
                (_, Some(_)) if e.zone.is_some() => {
                    return Err(Problem::at(&e.at, "`zone` applies to `add` only"));
                }
                _ => {}
            }
        }
        // Replay the schedule for every cluster size: each named node must exist by then.
        for nodes in self.node_counts() {
            let mut known = nodes;
            for e in self.events_in_order() {
                if e.action == EventAction::Add {
                    known += 1;
                    continue;
                }
                for node in e.node.iter().chain(e.groups.iter().flatten()) {
                    let index = node
                        .value
                        .strip_prefix('n')
                        .and_then(|n| n.parse::<u32>().ok())
                        .filter(|n| (1..=known).contains(n));
                    if index.is_none() {
                        return Err(Problem::at(
                            node,
                            format!(
                                "no node `{}` at {} in a {nodes}-node cluster: nodes are \
                                 n1..n{known} by then",
                                node.value, e.at.value
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_keys(&self) -> Result<(), Problem> {
        let k = &self.keys;
        if k.size.0 == 0 || k.size.0 > MAX_KEY_BYTES {
            return Err(Problem::new(format!(
                "`keys.size` must be 1..={MAX_KEY_BYTES} bytes (the store's key limit)"
            )));
        }
        check_key_count("keys.count", k.count, k.size.0).map_err(Problem::new)?;
        for s in &self.sweep.keys {
            check_key_count("sweep.keys", s.value, k.size.0).map_err(|m| Problem::at(s, m))?;
        }
        // A running cluster keeps what earlier points wrote: with fewer keys than before, a
        // point would read only part of the data it holds and its disk bytes per key would
        // count keys it never touches.
        if !self.cluster.endpoints.is_empty() {
            for pair in self.sweep.keys.windows(2) {
                if let [a, b] = pair
                    && b.value < a.value
                {
                    return Err(Problem::at(
                        b,
                        format!(
                            "`sweep.keys` against `cluster.endpoints` must not decrease ({} \
                             after {}): the cluster keeps every key earlier points wrote; list \
                             the key counts in increasing order",
                            b.value, a.value
                        ),
                    ));
                }
            }
        }
        use KeyDistributionKind as K;
        let skewed = matches!(k.distribution, K::Zipfian | K::Latest);
        if let Some(theta) = k.theta {
            if !skewed {
                return Err(Problem::new(
                    "`keys.theta` applies to the zipfian and latest distributions only",
                ));
            }
            if !(theta > 0.0 && theta <= 5.0) {
                return Err(Problem::new(format!(
                    "`keys.theta` {theta} must be above 0 and at most 5; YCSB uses 0.99"
                )));
            }
        }
        for (name, v) in [("hot_set", k.hot_set), ("hot_ops", k.hot_ops)] {
            if let Some(v) = v {
                if k.distribution != K::Hotspot {
                    return Err(Problem::new(format!(
                        "`keys.{name}` applies to the hotspot distribution only"
                    )));
                }
                if !(v > 0.0 && v <= 1.0) {
                    return Err(Problem::new(format!("`keys.{name}` must be in (0, 1]")));
                }
            }
        }
        Ok(())
    }

    fn validate_values(&self) -> Result<(), Problem> {
        let spec = &self.values.size;
        check_value_spec(&spec.value).map_err(|m| Problem::at(spec, m))?;
        for s in &self.sweep.value_size {
            check_value_size(s.value).map_err(|m| Problem::at(s, m))?;
        }
        if let Some(a) = &self.audit
            && a.value
            && !self.checks_consistency()
        {
            return Err(Problem::at(
                a,
                "the audit needs traced values: it runs against ringkv with `consistency` on",
            ));
        }
        if self.checks_consistency() {
            let header = TRACE_HEADER_BYTES as u64;
            let too_small = |size: u64| {
                format!(
                    "value size {size} B is smaller than the {header}-byte header that names each \
                     write for the consistency check; use values of at least {header} B, or set \
                     `consistency: false`"
                )
            };
            // A swept size replaces `values.size`.
            if self.sweep.value_size.is_empty() && spec.value.min_bytes() < header {
                return Err(Problem::at(spec, too_small(spec.value.min_bytes())));
            }
            for s in &self.sweep.value_size {
                if s.value.0 < header {
                    return Err(Problem::at(s, too_small(s.value.0)));
                }
            }
        }
        Ok(())
    }

    fn validate_mix(&self) -> Result<(), Problem> {
        let m = self.mix;
        let weights = [m.read, m.write, m.delete, m.read_modify_write];
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err(Problem::new(
                "`mix` weights must be zero or positive numbers",
            ));
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            return Err(Problem::new("`mix` needs at least one positive weight"));
        }
        Ok(())
    }

    fn validate_redis(&self) -> Result<(), Problem> {
        let c = &self.cluster;
        if self.target != TargetKind::Redis {
            if c.start {
                return Err(Problem::new(
                    "`cluster.start` is for `target: redis`; ringkv clusters start by default",
                ));
            }
            return Ok(());
        }
        match (c.start, c.endpoints.len()) {
            (true, 0) | (false, 1) => {}
            (true, _) => {
                return Err(Problem::new(
                    "`target: redis`: give `cluster.start: true` or `cluster.endpoints`, not both",
                ));
            }
            (false, 0) => {
                return Err(Problem::new(
                    "`target: redis` needs a server: `cluster: { start: true }` starts a local \
                     redis-server, or `cluster: { endpoints: [\"HOST:PORT\"] }` names one",
                ));
            }
            (false, _) => {
                return Err(Problem::new(
                    "`target: redis` talks to one server: give one endpoint",
                ));
            }
        }
        let ringkv_only = c.nodes.is_some()
            || c.tokens_per_node.is_some()
            || !c.zones.is_empty()
            || c.replication.is_some()
            || c.write_quorum.is_some()
            || c.read_quorum.is_some()
            || c.sloppy.is_some()
            || !c.node_args.is_empty()
            || c.insecure
            || c.security.is_some();
        if ringkv_only {
            return Err(Problem::new(
                "`target: redis` takes only `cluster.start` or `cluster.endpoints`; the other \
                 `cluster` fields shape a ringkv cluster",
            ));
        }
        let s = &self.sweep;
        for (field, first) in [
            ("nodes", s.nodes.first().map(|x| x.referenced)),
            ("replication", s.replication.first().map(|x| x.referenced)),
            ("quorum", s.quorum.first().map(|x| x.referenced)),
        ] {
            if let Some(at) = first {
                return Err(Problem {
                    at: Some(at),
                    message: format!("`sweep.{field}` shapes a ringkv cluster; redis has none"),
                });
            }
        }
        if let Some(e) = self.events.first() {
            return Err(Problem::at(
                &e.at,
                "`events` change a local ringkv cluster; `target: redis` has none",
            ));
        }
        Ok(())
    }

    fn validate_cluster(&self) -> Result<(), Problem> {
        self.validate_redis()?;
        if self.target == TargetKind::Redis {
            return Ok(());
        }
        let c = &self.cluster;
        if !c.endpoints.is_empty() {
            if self.target == TargetKind::Null {
                return Err(Problem::new("`cluster.endpoints` needs `target: ringkv`"));
            }
            for (field, list) in [
                ("nodes", &self.sweep.nodes),
                ("replication", &self.sweep.replication),
            ] {
                if let Some(first) = list.first() {
                    return Err(Problem::at(
                        first,
                        format!(
                            "`sweep.{field}` needs a local cluster started per point; remove \
                             `cluster.endpoints` or the sweep"
                        ),
                    ));
                }
            }
            if c.nodes.is_some() || c.tokens_per_node.is_some() || !c.zones.is_empty() {
                return Err(Problem::new(
                    "`cluster.endpoints` is an already-running cluster: remove `nodes`, \
                     `tokens_per_node` and `zones`, which only shape a local cluster",
                ));
            }
        }
        if let Some(sec) = &c.security {
            if c.endpoints.is_empty() {
                return Err(Problem::new(
                    "`cluster.security` is for `cluster.endpoints`; a local cluster makes and uses its own CA and token",
                ));
            }
            if c.insecure {
                return Err(Problem::new(
                    "`cluster.insecure` and `cluster.security` contradict each other; keep one",
                ));
            }
            if sec.token.is_some() && sec.token_file.is_some() {
                return Err(Problem::new(
                    "`cluster.security`: give `token` or `token_file`, not both",
                ));
            }
            if sec.cert.is_some() != sec.key.is_some() {
                return Err(Problem::new(
                    "`cluster.security`: a client certificate needs both `cert` and `key`",
                ));
            }
            if sec.cluster_dir.is_none() && sec.ca.is_none() {
                return Err(Problem::new(
                    "`cluster.security` needs `ca` (the cluster CA certificate) or `cluster_dir`",
                ));
            }
        }
        if let Some(t) = c.tokens_per_node
            && !(1..=4096).contains(&t)
        {
            return Err(Problem::new("`cluster.tokens_per_node` must be 1..=4096"));
        }
        if c.zones.iter().any(|z| z.is_empty()) {
            return Err(Problem::new("`cluster.zones` entries must not be empty"));
        }
        Ok(())
    }
}

/// Checks a key count (`keys.count` or an entry of `sweep.keys`) against the key length: keys
/// are `k` and the zero-padded index, so `size` must hold the digits of the largest index.
fn check_key_count(field: &str, count: u64, size: u64) -> Result<(), String> {
    if count == 0 {
        return Err(format!("`{field}` must be at least 1"));
    }
    let digits = crate::workload::units::digits(count.saturating_sub(1)) as u64;
    if digits.saturating_add(1) > size {
        return Err(format!(
            "`keys.size` {size} is too short for {count} keys (`{field}`): it needs at least {} \
             bytes; raise `keys.size`",
            digits + 1
        ));
    }
    Ok(())
}

fn check_value_size(size: ByteSize) -> Result<(), String> {
    if size.0 == 0 || size.0 > MAX_VALUE_BYTES {
        return Err(format!(
            "value size {size} is out of range: values are 1 byte to 10KB (the store's limit)"
        ));
    }
    Ok(())
}

fn check_value_spec(spec: &SizeSpec) -> Result<(), String> {
    match spec {
        SizeSpec::Fixed(s) => check_value_size(*s),
        SizeSpec::Uniform { min, max } => {
            check_value_size(*min)?;
            check_value_size(*max)?;
            if min > max {
                return Err(format!(
                    "value size range {min}..{max}: min is larger than max"
                ));
            }
            Ok(())
        }
        SizeSpec::Weighted(list) => {
            if list.is_empty() {
                return Err("the weighted value-size list is empty".into());
            }
            for w in list {
                check_value_size(w.size)?;
                if !w.weight.is_finite() || w.weight < 0.0 {
                    return Err(format!("weight {} must be zero or positive", w.weight));
                }
            }
            if list.iter().map(|w| w.weight).sum::<f64>() <= 0.0 {
                return Err("the weighted value-size list needs a positive weight".into());
            }
            Ok(())
        }
    }
}

/// serde-saphyr's own rendering includes a source snippet and its own position prefix; keep the
/// sentence that names the problem (the position is reported separately) and say what to do.
pub(crate) fn parse_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first = full
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML")
        .trim();
    let mut msg = first.trim_start_matches("error: ").to_string();
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
        && rest
            .split_once(": ")
            .is_some_and(|(pos, _)| pos.contains("column"))
    {
        msg = after.to_string();
    }
    if let Some((head, _)) = msg.split_once(", set DuplicateKeyPolicy") {
        msg = format!("{head}: each field may appear once");
    }
    if msg.contains("unknown field") {
        msg.push_str(" (docs/loadgen.md lists every field)");
    } else if msg.starts_with("invalid ") {
        msg.push_str(" (this field has the wrong type of value; docs/loadgen.md shows each field)");
    }
    msg
}
