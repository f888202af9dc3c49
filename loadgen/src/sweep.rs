//! The cartesian sweep: one [`Point`] per combination of the `sweep:` lists, each checked before
//! anything starts.

use serde::Serialize;

use crate::workload::{
    DEFAULT_NODES, MAX_CONCURRENCY, MAX_LOCAL_NODES, Problem, Quorum, SizeSpec, Workload,
};

/// How a point drives load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// Open loop: requests arrive at `rate` ops/s whatever the target does.
    Open {
        /// Intended arrival rate, ops/s.
        rate: f64,
    },
    /// Closed loop: `concurrency` workers, each sending its next request when the last returns.
    Closed {
        /// Worker count.
        concurrency: u32,
    },
}

/// One run of the sweep: the parameters that vary between points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// 0-based position in the sweep.
    pub index: usize,
    /// Nodes in the cluster.
    pub nodes: u32,
    /// Replication factor N.
    pub replication: u32,
    /// Write quorum W.
    pub write_quorum: u32,
    /// Read quorum R.
    pub read_quorum: u32,
    /// Value sizes.
    pub values: SizeSpec,
    /// Open or closed loop.
    pub load: Load,
    /// The target has no cluster (`null`): the cluster parameters are only labels.
    #[serde(skip)]
    pub no_cluster: bool,
}

impl Point {
    /// A short human label, e.g. `n3 N3 W2 R2 1KB rate=5000`.
    pub fn label(&self) -> String {
        let load = match self.load {
            Load::Open { rate } => format!("rate={}", fmt_rate(rate)),
            Load::Closed { concurrency } => format!("conc={concurrency}"),
        };
        if self.no_cluster {
            return format!("value={} {load}", self.values);
        }
        format!(
            "nodes={} N={} W={} R={} value={} {load}",
            self.nodes, self.replication, self.write_quorum, self.read_quorum, self.values
        )
    }

    /// A file-name-safe id, e.g. `p03`.
    pub fn id(&self) -> String {
        format!("p{:02}", self.index)
    }
}

/// `5000` rather than `5000.0`, but `12.5` stays.
pub fn fmt_rate(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{}", rate as u64)
    } else {
        format!("{rate}")
    }
}

/// A default majority quorum for replication factor `n`.
pub fn majority(n: u32) -> u32 {
    n / 2 + 1
}

/// The points of a workload, in sweep order (a validated workload always expands).
pub fn points(w: &Workload) -> Result<Vec<Point>, String> {
    expand(w).map_err(|p| p.to_string())
}

/// Expands the sweep into points, refusing an impossible one (W > N, N > nodes, …) by naming it.
pub(crate) fn expand(w: &Workload) -> Result<Vec<Point>, Problem> {
    let c = &w.cluster;
    let base_nodes = c.nodes.as_ref().map(|s| s.value).unwrap_or(DEFAULT_NODES);
    let nodes_list: Vec<(u32, Option<&serde_saphyr::Spanned<u32>>)> = if w.sweep.nodes.is_empty() {
        vec![(base_nodes, c.nodes.as_ref())]
    } else {
        w.sweep.nodes.iter().map(|s| (s.value, Some(s))).collect()
    };
    let repl_list: Vec<(Option<u32>, Option<&serde_saphyr::Spanned<u32>>)> =
        if w.sweep.replication.is_empty() {
            vec![(
                c.replication.as_ref().map(|s| s.value),
                c.replication.as_ref(),
            )]
        } else {
            w.sweep
                .replication
                .iter()
                .map(|s| (Some(s.value), Some(s)))
                .collect()
        };
    let quorum_list: Vec<(Option<Quorum>, Option<&serde_saphyr::Spanned<Quorum>>)> =
        if w.sweep.quorum.is_empty() {
            vec![(None, None)]
        } else {
            w.sweep
                .quorum
                .iter()
                .map(|s| (Some(s.value), Some(s)))
                .collect()
        };
    let values_list: Vec<SizeSpec> = if w.sweep.value_size.is_empty() {
        vec![w.values.size.value.clone()]
    } else {
        w.sweep
            .value_size
            .iter()
            .map(|s| SizeSpec::Fixed(s.value))
            .collect()
    };
    let load_list = load_list(w)?;

    let mut points = Vec::new();
    for &(nodes, nodes_at) in &nodes_list {
        if nodes == 0 || nodes > MAX_LOCAL_NODES {
            let msg = format!("nodes = {nodes}: a local cluster has 1..={MAX_LOCAL_NODES} nodes");
            return Err(match nodes_at {
                Some(s) => Problem::at(s, msg),
                None => Problem::new(msg),
            });
        }
        for &(repl, repl_at) in &repl_list {
            let replication = repl.unwrap_or(nodes.min(3));
            for &(quorum, quorum_at) in &quorum_list {
                let write_quorum = quorum
                    .map(|q| q.w)
                    .or(c.write_quorum.as_ref().map(|s| s.value))
                    .unwrap_or(majority(replication));
                let read_quorum = quorum
                    .map(|q| q.r)
                    .or(c.read_quorum.as_ref().map(|s| s.value))
                    .unwrap_or(majority(replication));
                for values in &values_list {
                    for &load in &load_list {
                        let point = Point {
                            index: points.len(),
                            nodes,
                            replication,
                            write_quorum,
                            read_quorum,
                            values: values.clone(),
                            load,
                            no_cluster: w.target == crate::workload::TargetKind::Null,
                        };
                        check_point(w, &point, repl_at, quorum_at)?;
                        points.push(point);
                    }
                }
            }
        }
    }
    Ok(points)
}

fn load_list(w: &Workload) -> Result<Vec<Load>, Problem> {
    let mut out = Vec::new();
    if !w.sweep.rate.is_empty() {
        for r in &w.sweep.rate {
            out.push(check_rate(r)?);
        }
    } else if let Some(r) = &w.rate {
        out.push(check_rate(r)?);
    } else if !w.sweep.concurrency.is_empty() {
        for c in &w.sweep.concurrency {
            out.push(check_concurrency(c)?);
        }
    } else if let Some(c) = &w.concurrency {
        out.push(check_concurrency(c)?);
    }
    Ok(out)
}

fn check_rate(r: &serde_saphyr::Spanned<f64>) -> Result<Load, Problem> {
    if !(r.value.is_finite() && r.value > 0.0 && r.value <= 1e9) {
        return Err(Problem::at(
            r,
            format!("rate {} must be between 0 and 1e9 ops/s", r.value),
        ));
    }
    Ok(Load::Open { rate: r.value })
}

fn check_concurrency(c: &serde_saphyr::Spanned<u32>) -> Result<Load, Problem> {
    if !(1..=MAX_CONCURRENCY).contains(&c.value) {
        return Err(Problem::at(
            c,
            format!("concurrency must be 1..={MAX_CONCURRENCY}"),
        ));
    }
    Ok(Load::Closed {
        concurrency: c.value,
    })
}

fn check_point(
    w: &Workload,
    p: &Point,
    repl_at: Option<&serde_saphyr::Spanned<u32>>,
    quorum_at: Option<&serde_saphyr::Spanned<crate::workload::Quorum>>,
) -> Result<(), Problem> {
    let name = format!("sweep point {} ({})", p.index, p.label());
    let local = w.cluster.endpoints.is_empty();
    let problem_at_repl = |msg: String| match repl_at {
        Some(s) => Problem::at(s, msg),
        None => Problem::new(msg),
    };
    if p.replication == 0 {
        return Err(problem_at_repl(format!(
            "{name}: replication N must be at least 1"
        )));
    }
    if local && p.replication > p.nodes {
        return Err(problem_at_repl(format!(
            "{name}: replication N={} needs at least {} nodes, the cluster has {}; raise \
             `nodes` or lower `replication`",
            p.replication, p.replication, p.nodes
        )));
    }
    for (q, label, field) in [
        (p.write_quorum, "write", "write_quorum"),
        (p.read_quorum, "read", "read_quorum"),
    ] {
        let letter = if label == "write" { "W" } else { "R" };
        let msg = if q == 0 {
            Some(format!(
                "{name}: {label} quorum {letter} must be at least 1"
            ))
        } else if q > p.replication {
            Some(format!(
                "{name}: {label} quorum {letter}={q} is larger than the replication factor \
                 N={}, so every {label} would fail; use {letter} <= N",
                p.replication
            ))
        } else {
            None
        };
        if let Some(msg) = msg {
            return Err(match quorum_at {
                Some(s) => Problem::at(s, msg),
                None => {
                    let spanned = if label == "write" {
                        w.cluster.write_quorum.as_ref()
                    } else {
                        w.cluster.read_quorum.as_ref()
                    };
                    match spanned {
                        Some(s) => Problem::at(s, msg),
                        None => Problem::new(format!("{msg} (set `cluster.{field}`)")),
                    }
                }
            });
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ running the sweep

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::generator::{OpGen, OpKind, ValuePool};
use crate::record::{Live, Recorder};
use crate::report::summary::{self as summary_mod, PointFacts};
use crate::report::{Manifest, ReportError, Summary, Tools};
use crate::resources::{EngineCounters, Sampler, Snapshot, snapshot, snapshot_at};
use crate::run::{Measure, Progress, RunError, RunSpec};
use crate::target::Target;
use crate::target::null::NullTarget;
use crate::workload::TargetKind;

/// Seed offset for the preload's value sizes, so preloading does not shift the measured sequence.
const PRELOAD_SEED_SALT: u64 = 0x9e37_79b9_7f4a_7c15;
/// Requests in flight while preloading.
const PRELOAD_CONCURRENCY: u32 = 64;

/// What starts the nodes of one side of a run: the program and the arguments each node gets on
/// top of the workload's `cluster.node_args`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSide {
    /// Start nodes as `BIN node …` instead of re-executing the loadgen as `__node`.
    pub node_bin: Option<PathBuf>,
    /// Extra node arguments, after the workload's.
    pub node_args: Vec<String>,
}

/// How `loadgen run` was asked to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The workload file (recorded in the manifest).
    pub workload_file: PathBuf,
    /// Results folder; default `results/<name>/<timestamp>/`.
    pub out: Option<PathBuf>,
    /// No progress bars.
    pub quiet: bool,
    /// The command line (recorded in the manifest).
    pub command: Vec<String>,
    /// Runs per point; `None` takes the workload's `repeat:` (default 1).
    pub repeat: Option<u32>,
    /// How nodes are started.
    pub nodes: NodeSide,
}

/// Failures of a sweep run (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The results folder could not be prepared.
    #[error("{0}")]
    Results(String),
    /// A point failed.
    #[error("point {point}: {message}")]
    Point {
        /// The point id.
        point: String,
        /// What failed and what to do.
        message: String,
    },
    /// Writing results failed.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// A finished run: where it is and what it found.
#[derive(Debug)]
pub struct RunReport {
    /// The results folder.
    pub dir: PathBuf,
    /// The summary written there.
    pub summary: Summary,
    /// Chart PNGs, relative to `dir`.
    pub charts: Vec<PathBuf>,
}

fn results_dir(
    w: &crate::workload::Workload,
    opts: &RunOptions,
    now: SystemTime,
) -> Result<PathBuf, SweepError> {
    let dir = match &opts.out {
        Some(d) => d.clone(),
        None => Path::new("results")
            .join(&w.name)
            .join(crate::report::utc_compact(now)),
    };
    if dir.join("summary.json").exists() || dir.join("manifest.json").exists() {
        return Err(SweepError::Results(format!(
            "{} already holds results; pass a new --out folder",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir.join("hdr")).map_err(|e| {
        SweepError::Results(format!(
            "cannot create results folder {}: {e}",
            dir.display()
        ))
    })?;
    Ok(dir)
}

/// Kinds the mix can produce, in report order.
pub fn mix_kinds(mix: &crate::workload::Mix) -> Vec<OpKind> {
    let weights = [mix.read, mix.write, mix.delete, mix.read_modify_write];
    OpKind::ALL
        .into_iter()
        .zip(weights)
        .filter(|(_, w)| *w > 0.0)
        .map(|(k, _)| k)
        .collect()
}

/// One results folder being filled, run by run: `run_workload` drives one, `ab` two in turn.
pub struct Session {
    /// The results folder.
    pub dir: PathBuf,
    /// The workload.
    workload: crate::workload::Workload,
    /// How nodes start.
    nodes: NodeSide,
    quiet: bool,
    /// Runs per point.
    pub repeat: u32,
    /// The points, in sweep order.
    pub points: Vec<Point>,
    summary: Summary,
    pending: Vec<crate::report::PointSummary>,
}

impl Session {
    /// Prepares the results folder and writes `manifest.json`.
    pub fn begin(w: &crate::workload::Workload, opts: &RunOptions) -> Result<Session, SweepError> {
        let points = expand(w).map_err(|p| SweepError::Results(p.to_string()))?;
        let repeat = opts.repeat.unwrap_or_else(|| w.repeat_count()).max(1);
        let started = SystemTime::now();
        let dir = results_dir(w, opts, started)?;
        let manifest = Manifest {
            schema_version: summary_mod::SCHEMA_VERSION,
            workload: w,
            workload_file: opts.workload_file.display().to_string(),
            seed: w.seed,
            repeat,
            git_revision: crate::report::git_revision(),
            node_build: crate::report::NodeBuild::of(opts.nodes.node_bin.as_deref()),
            node_args: w
                .cluster
                .node_args
                .iter()
                .chain(&opts.nodes.node_args)
                .cloned()
                .collect(),
            tools: Tools::current(),
            machine: crate::resources::machine(),
            started: crate::report::utc_iso8601(started),
            command: opts.command.clone(),
            points: points.clone(),
        };
        crate::report::write_json(&dir.join("manifest.json"), &manifest)?;
        let summary = Summary {
            schema_version: summary_mod::SCHEMA_VERSION,
            name: w.name.clone(),
            target: match w.target {
                TargetKind::Ringkv => "ringkv".into(),
                TargetKind::Null => "null".into(),
            },
            started: manifest.started.clone(),
            points: Vec::new(),
        };
        Ok(Session {
            dir,
            workload: w.clone(),
            nodes: opts.nodes.clone(),
            quiet: opts.quiet,
            repeat,
            points,
            summary,
            pending: Vec::new(),
        })
    }

    /// Runs `point` once more (run `run`, 1-based), on a fresh cluster.
    pub async fn run_once(&mut self, point: &Point, run: u32) -> Result<(), SweepError> {
        let ctx = RunCtx {
            run,
            runs: self.repeat,
            nodes: self.nodes.clone(),
        };
        let w = &self.workload;
        let p = match w.target {
            TargetKind::Null => {
                run_point(
                    &NullTarget,
                    w,
                    point,
                    &self.dir,
                    self.quiet,
                    None,
                    &ctx,
                    None,
                )
                .await
            }
            TargetKind::Ringkv => {
                crate::cluster::run_ringkv_point(w, point, &self.dir, self.quiet, &ctx).await
            }
        }?;
        self.pending.push(p);
        Ok(())
    }

    /// Folds the runs of `point` into its summary and writes `summary.json` (after every point,
    /// so an interrupted run keeps what finished).
    pub fn finish_point(&mut self) -> Result<(), SweepError> {
        let runs = std::mem::take(&mut self.pending);
        if let Some(p) = summary_mod::aggregate(runs) {
            self.summary.points.push(p);
        }
        crate::report::write_json(&self.dir.join("summary.json"), &self.summary)?;
        Ok(())
    }

    /// Draws the charts and the report.
    pub fn finish(self) -> Result<RunReport, SweepError> {
        let charts = crate::report::render(&self.dir, &self.summary)?;
        Ok(RunReport {
            dir: self.dir,
            summary: self.summary,
            charts,
        })
    }

    /// Prints the point header when not quiet.
    pub fn announce(&self, point: &Point, run: u32, side: &str) {
        if self.quiet {
            return;
        }
        let runs = if self.repeat > 1 {
            format!(" run {run}/{}", self.repeat)
        } else {
            String::new()
        };
        eprintln!(
            "[{}/{}] {side}{} {}{runs}",
            point.index + 1,
            self.points.len(),
            point.id(),
            point.label()
        );
    }
}

/// Which run of a point this is, and how its nodes start.
#[derive(Debug, Clone)]
pub struct RunCtx {
    /// 1-based run number.
    pub run: u32,
    /// Runs per point.
    pub runs: u32,
    /// How nodes start.
    pub nodes: NodeSide,
}

impl RunCtx {
    /// The interval-log prefix: `p03`, or `p03-r02` with repeats.
    pub fn log_prefix(&self, point: &Point) -> String {
        if self.runs > 1 {
            format!("{}-r{:02}", point.id(), self.run)
        } else {
            point.id()
        }
    }
}

/// Runs every point of a validated workload (each `repeat` times) and writes the results folder.
pub async fn run_workload(
    w: &crate::workload::Workload,
    opts: &RunOptions,
) -> Result<RunReport, SweepError> {
    let mut session = Session::begin(w, opts)?;
    let points = session.points.clone();
    for point in &points {
        for run in 1..=session.repeat {
            session.announce(point, run, "");
            session.run_once(point, run).await?;
        }
        session.finish_point()?;
    }
    session.finish()
}

/// A local cluster's nodes, for reading their engine counters and data size.
pub struct NodeProbe {
    /// Client endpoints, one per node.
    pub endpoints: Vec<String>,
    /// Data directories, one per node.
    pub data_dirs: Vec<PathBuf>,
}

async fn engine_counters(client: &store::client::Client, n: usize) -> Option<EngineCounters> {
    let mut c = EngineCounters::default();
    for i in 0..n {
        let status = client.status_of(i).await.ok()?;
        c.fsyncs += status.stats.get("engine.fsyncs").copied().unwrap_or(0);
        c.disk_bytes_written += status
            .stats
            .get("engine.disk_bytes_written")
            .copied()
            .unwrap_or(0);
        c.nodes += 1;
    }
    Some(c)
}

struct Bar {
    bar: ProgressBar,
    total: Measure,
    /// Start of the measured window, once the runner knows it.
    window_start: std::cell::Cell<Option<Instant>>,
    /// The counter read armed for that instant.
    edge: std::cell::RefCell<Option<std::thread::JoinHandle<Snapshot>>>,
    pids: Vec<u32>,
}

impl Progress for Bar {
    fn window(&self, start: Instant) {
        self.window_start.set(Some(start));
        *self.edge.borrow_mut() = snapshot_at(self.pids.clone(), start);
    }

    fn update(&self, phase: &str, measured: Duration, live: &Live) {
        match self.total {
            Measure::For(_) => self.bar.set_position(measured.as_millis() as u64),
            Measure::Ops(_) => self.bar.set_position(live.ops),
        }
        if phase == "measure" {
            self.bar.set_message(format!(
                "{:>9.0} ops/s  errors {:>6}  p99 {:>8.3} ms",
                live.last_rate,
                live.errors,
                live.last_p99_ns as f64 / 1e6
            ));
        } else {
            self.bar.set_message(phase.to_string());
        }
    }
}

fn progress_bar(measure: Measure, quiet: bool) -> ProgressBar {
    let len = match measure {
        Measure::For(d) => d.as_millis() as u64,
        Measure::Ops(n) => n,
    };
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    if let Ok(style) = ProgressStyle::with_template("  {elapsed:>4} [{bar:30}] {percent:>3}% {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Preload, warm up, measure and summarise one run of a point against `target`. `probe`
/// names the local cluster's nodes, whose engine counters and data size are read.
#[allow(clippy::too_many_arguments)]
pub async fn run_point<T: Target>(
    target: &T,
    w: &crate::workload::Workload,
    point: &Point,
    dir: &Path,
    quiet: bool,
    events: Option<crate::events::EventHook<'_>>,
    ctx: &RunCtx,
    probe: Option<NodeProbe>,
) -> Result<crate::report::PointSummary, SweepError> {
    let key_size = w.keys.size.0 as usize;
    let pool = ValuePool::new(w.seed);
    let preload_count = match w.preload {
        crate::workload::Preload::All => w.keys.count,
        crate::workload::Preload::None => 0,
        crate::workload::Preload::Keys(n) => n.min(w.keys.count),
    };
    let preload_started = Instant::now();
    let mut preload_gen = OpGen::new(w.seed ^ PRELOAD_SEED_SALT, &w.keys, &point.values, &w.mix);
    let (written, failed, preload_error) = if preload_count > 0 {
        let bar = progress_bar(Measure::Ops(preload_count), quiet);
        bar.set_message("preload");
        let r = crate::run::preload(
            target,
            &mut preload_gen,
            &pool,
            preload_count,
            PRELOAD_CONCURRENCY,
            key_size,
            &|n| bar.set_position(n),
        )
        .await;
        bar.finish_and_clear();
        r
    } else {
        (0, 0, None)
    };
    if preload_count > 0 && written == 0 {
        return Err(SweepError::Point {
            point: point.id(),
            message: format!(
                "every preload write failed ({}); is the cluster up?",
                preload_error.unwrap_or_default()
            ),
        });
    }
    let preload = summary_mod::Preload {
        keys: written,
        failed,
        seconds: (preload_started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    };

    let measure = match (w.measure_duration(), w.ops) {
        (Some(d), _) => Measure::For(d),
        (None, Some(n)) => Measure::Ops(n),
        (None, None) => Measure::For(Duration::from_secs(10)),
    };
    let spec = RunSpec {
        load: point.load,
        warmup: w.warmup_duration(),
        measure,
        max_in_flight: w.in_flight_cap(),
        key_size,
    };
    let kinds = mix_kinds(&w.mix);
    let hdr_dir = dir.join("hdr");
    let prefix = ctx.log_prefix(point);
    let opgen = OpGen::new(w.seed, &w.keys, &point.values, &w.mix);
    let self_pid = std::process::id();
    let mut pids = vec![self_pid];
    pids.extend(target.pids());
    let sampler = Sampler::start(&target.pids());
    let bar = Bar {
        bar: progress_bar(measure, quiet),
        total: measure,
        window_start: std::cell::Cell::new(None),
        edge: std::cell::RefCell::new(None),
        pids: pids.clone(),
    };
    let engine_client = match &probe {
        Some(p) if !p.endpoints.is_empty() => store::client::Client::connect(
            &p.endpoints,
            store::client::ClientOptions {
                token_aware: false,
                ..store::client::ClientOptions::default()
            },
        )
        .await
        .ok(),
        _ => None,
    };
    let probe_nodes = probe.as_ref().map(|p| p.endpoints.len()).unwrap_or(0);
    // Reads the engine counters at the start of the measured window (a short Status call per
    // node on the driver thread, once).
    let engine_start = async {
        let client = engine_client.as_ref()?;
        // The runner announces the window before its first request; bounded wait regardless.
        for _ in 0..10_000 {
            if let Some(t) = bar.window_start.get() {
                tokio::time::sleep_until(t.into()).await;
                return engine_counters(client, probe_nodes).await;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    };
    let drive = crate::run::drive(
        target,
        opgen,
        &pool,
        &spec,
        |start, wall| Recorder::new(start, wall, &kinds, &hdr_dir, &prefix),
        &bar,
    );
    // The event schedule runs alongside the load and is dropped when the load ends.
    let with_events = async {
        match events {
            Some(hook) => {
                let mut schedule = hook.schedule;
                let mut schedule_done = false;
                tokio::pin!(drive);
                let outcome = loop {
                    tokio::select! {
                        r = &mut drive => break r,
                        () = &mut schedule, if !schedule_done => schedule_done = true,
                    }
                };
                drop(schedule);
                (outcome, Some(hook.log))
            }
            None => (drive.await, None),
        }
    };
    let ((outcome, event_log), engine_at_start) = tokio::join!(with_events, engine_start);
    let end_snapshot = snapshot(&pids);
    let engine_at_end = match &engine_client {
        Some(c) => engine_counters(c, probe_nodes).await,
        None => None,
    };
    let start_snapshot = bar
        .edge
        .borrow_mut()
        .take()
        .and_then(|h| h.join().ok())
        .unwrap_or_default();
    let outcome = outcome.map_err(|e: RunError| SweepError::Point {
        point: point.id(),
        message: e.to_string(),
    })?;
    bar.bar.finish_and_clear();
    let mut processes = sampler.stop(outcome.measure_start, outcome.measure_end);
    for (pid, pct) in crate::resources::cpu_pct_by_pid(&start_snapshot, &end_snapshot) {
        if let Some(p) = processes.iter_mut().find(|p| p.pid == pid) {
            p.cpu_pct = (pct * 10.0).round() / 10.0;
        }
    }
    let completed: u64 = outcome.recorded.ops.iter().map(|h| h.completed()).sum();
    let disk_bytes_per_key = probe.as_ref().and_then(|p| {
        let keys = w.keys.count;
        if p.data_dirs.is_empty() || keys == 0 {
            return None;
        }
        let bytes: u64 = p
            .data_dirs
            .iter()
            .map(|d| crate::resources::dir_bytes(d))
            .sum();
        Some(bytes as f64 / keys as f64)
    });
    let resources = (!start_snapshot.procs.is_empty()).then(|| {
        crate::resources::per_op(
            &start_snapshot,
            &end_snapshot,
            self_pid,
            completed,
            engine_at_start.zip(engine_at_end),
            disk_bytes_per_key,
        )
    });
    let logs = outcome
        .recorded
        .logs
        .iter()
        .map(|(k, p)| {
            let rel = p
                .strip_prefix(dir)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| p.clone());
            (*k, rel.to_string_lossy().replace('\\', "/"))
        })
        .collect();
    let mut summary = summary_mod::summarise_point(PointFacts {
        point,
        outcome: &outcome,
        processes,
        first_error: outcome.first_error.clone().or(preload_error),
        preload,
        logs,
        null_target: target.name() == "null",
        resources,
    });
    if let Some(log) = event_log {
        summary.events = crate::events::records(&log, outcome.measure_start);
    }
    if !quiet {
        print_point_line(&summary);
    }
    Ok(summary)
}

fn print_point_line(p: &crate::report::PointSummary) {
    let mut parts = vec![format!("  achieved {:.0} ops/s", p.achieved_rate)];
    if let Some(o) = p.offered_rate {
        parts.push(format!("offered {o:.0}"));
    }
    for (op, s) in &p.ops {
        parts.push(format!(
            "{op} p50 {:.3} ms p99 {:.3} ms",
            s.response.p50_us / 1000.0,
            s.response.p99_us / 1000.0
        ));
    }
    if p.client_bound {
        parts.push(format!("CLIENT-BOUND: {}", p.self_check.reasons.join("; ")));
    }
    eprintln!("{}", parts.join(", "));
}
