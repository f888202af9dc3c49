//! The orchestrator: runs every point of the plan (each `repeat` times, each on a fresh cluster
//! for ringkv), reads the resource counters at the edges of each measured window, and writes the
//! results folder.

use crate::plan::expand_for;
pub use crate::plan::{Load, Point, fmt_rate, majority, points};

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
use crate::target::null::{NullTarget, QueueingNull};
use crate::workload::TargetKind;

/// Seed offset for the preload's value sizes, so preloading does not shift the measured sequence.
const PRELOAD_SEED_SALT: u64 = 0x9e37_79b9_7f4a_7c15;
/// Requests in flight while preloading. More in flight means larger commit batches on the
/// nodes: 100k keys of 1 KB loaded at a median 11,247 keys/s with 64 (3 runs), 18,925 with
/// 256 (6 runs) and 19,201 with 1,024 (3 runs, spread wider), the builds alternating.
const PRELOAD_CONCURRENCY: u32 = 256;

/// What starts the nodes of one side of a run: the program and the arguments each node gets on
/// top of the workload's `cluster.node_args`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSide {
    /// Start nodes as `BIN node …` instead of re-executing the loadgen as `__node`.
    pub node_bin: Option<PathBuf>,
    /// Extra node arguments, after the workload's.
    pub node_args: Vec<String>,
    /// Run the nodes under callgrind and count their instructions per operation
    /// ([`crate::instructions`]).
    pub instructions: bool,
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
    /// This loadgen's share of the workload (`--shard i/k`); `None` runs the whole.
    pub shard: Option<crate::workload::Shard>,
    /// Begin warm-up of the first point at this wall-clock time (`--start-at`).
    pub start_at: Option<SystemTime>,
    /// Live progress for `--metrics-listen` to serve (`None`: not served).
    pub metrics: Option<crate::metrics::LiveMetrics>,
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
    /// The workload cannot run against this cluster as written (exit code 2).
    #[error("{0}")]
    Usage(String),
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
    /// This loadgen's share of the load.
    shard: crate::workload::Shard,
    /// `--start-at`, until the first run has waited for it.
    start_at: Option<SystemTime>,
    metrics: Option<crate::metrics::LiveMetrics>,
    /// `manifest.json` as written, kept to add the points a search makes as it goes.
    manifest: serde_json::Value,
}

impl Session {
    /// Prepares the results folder and writes `manifest.json`. `facts` describe an
    /// already-running cluster ([`crate::cluster::describe_endpoints`]).
    pub fn begin(
        w: &crate::workload::Workload,
        opts: &RunOptions,
        facts: Option<&crate::plan::ClusterFacts>,
    ) -> Result<Session, SweepError> {
        let points = expand_for(w, facts).map_err(|p| SweepError::Usage(p.to_string()))?;
        let shard = opts.shard.unwrap_or_default();
        shard::check(w, &points, shard).map_err(SweepError::Usage)?;
        let start_at = opts.start_at.map(crate::workload::shard::start_at_text);
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
            instrumented: opts
                .nodes
                .instructions
                .then_some(crate::instructions::INSTRUMENT),
            tools: Tools::current(),
            machine: crate::resources::machine(),
            started: crate::report::utc_iso8601(started),
            command: opts.command.clone(),
            points: points.clone(),
            cluster: facts.cloned(),
            shard: opts.shard,
            start_at: start_at.clone(),
        };
        crate::report::write_json(&dir.join("manifest.json"), &manifest)?;
        let manifest_json =
            serde_json::to_value(&manifest).map_err(|e| crate::report::ReportError::Io {
                path: dir.join("manifest.json"),
                message: e.to_string(),
            })?;
        let summary = Summary {
            schema_version: summary_mod::SCHEMA_VERSION,
            name: w.name.clone(),
            target: match w.target {
                TargetKind::Ringkv => "ringkv".into(),
                TargetKind::Null => "null".into(),
                TargetKind::Redis => "redis".into(),
            },
            started: manifest.started.clone(),
            points: Vec::new(),
            shard: opts.shard,
            start_at,
            merged: None,
            search: None,
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
            shard,
            start_at: opts.start_at,
            metrics: opts.metrics.clone(),
            manifest: manifest_json,
        })
    }

    /// Adds a point made during the run (a search's next step) to the plan and to
    /// `manifest.json`, which lists every point that ran.
    pub fn add_point(&mut self, point: Point) -> Result<(), SweepError> {
        let value = serde_json::to_value(&point).map_err(|e| crate::report::ReportError::Io {
            path: self.dir.join("manifest.json"),
            message: e.to_string(),
        })?;
        if let Some(list) = self
            .manifest
            .get_mut("points")
            .and_then(|v| v.as_array_mut())
        {
            list.push(value);
        }
        self.points.push(point);
        crate::report::write_json(&self.dir.join("manifest.json"), &self.manifest)?;
        Ok(())
    }

    /// Runs `point` once more (run `run`, 1-based), on a fresh cluster.
    pub async fn run_once(&mut self, point: &Point, run: u32) -> Result<(), SweepError> {
        if let Some(m) = &self.metrics {
            m.begin_point(point, self.points.len(), run);
        }
        let ctx = RunCtx {
            run,
            runs: self.repeat,
            nodes: self.nodes.clone(),
            shard: self.shard,
            start_at: self.start_at.take(),
            metrics: self.metrics.clone(),
        };
        let w = &self.workload;
        let p = match (w.target, &w.null_model) {
            (TargetKind::Null, None) => self.run_in_process(&NullTarget, point, &ctx).await,
            // Fresh servers for every run, as a ringkv point gets a fresh cluster.
            (TargetKind::Null, Some(m)) => {
                let target = QueueingNull::new(m.value.servers, m.value.service_time.0);
                self.run_in_process(&target, point, &ctx).await
            }
            (TargetKind::Ringkv, _) => {
                run_ringkv_point(w, point, &self.dir, self.quiet, &ctx).await
            }
            (TargetKind::Redis, _) => run_redis_point(w, point, &self.dir, self.quiet, &ctx).await,
        }?;
        self.pending.push(p);
        Ok(())
    }

    /// One run of `point` against a target in this process (no cluster, no nodes to probe).
    async fn run_in_process<T: Target>(
        &self,
        target: &T,
        point: &Point,
        ctx: &RunCtx,
    ) -> Result<crate::report::PointSummary, SweepError> {
        let w = &self.workload;
        let check = checker_for(w, point, ctx)?;
        run_point(
            target, &check, w, point, &self.dir, self.quiet, None, ctx, None,
        )
        .await
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
        if let Some(m) = &self.metrics {
            m.done();
        }
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
    /// This loadgen's share of the load (`Shard::WHOLE` without `--shard`).
    pub shard: crate::workload::Shard,
    /// Wait for this wall-clock time before warm-up (`--start-at`; the first run only).
    pub start_at: Option<SystemTime>,
    /// Where live progress goes besides the progress bar.
    pub metrics: Option<crate::metrics::LiveMetrics>,
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
    // Refused rather than faked: a partition event must really cut the network.
    if w.has_partitions() {
        store::local_cluster::netfilter::available().map_err(SweepError::Usage)?;
    }
    let facts = crate::cluster::describe_endpoints(w)
        .await
        .map_err(SweepError::Results)?;
    let mut session = Session::begin(w, opts, facts.as_ref())?;
    if let Some(shard) = opts.shard.filter(|s| !s.is_whole())
        && !opts.quiet
    {
        eprintln!(
            "shard {shard}: this loadgen drives 1/{} of the load; `loadgen merge` joins the \
             shards' results folders",
            shard.count
        );
    }
    if let (Some(search), Some(slo)) = (&w.search, &w.slo) {
        let searched = search::run(&mut session, search.value.max_rate(), &slo.value).await;
        // A step that could not run still leaves a report of what the search found.
        let report = session.finish();
        searched?;
        return report;
    }
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

/// A cluster's nodes, for reading their engine counters and data size.
pub struct NodeProbe {
    /// Client endpoints, one per node.
    pub endpoints: Vec<String>,
    /// Data directories, one per node (empty for a remote cluster: its stored data is read
    /// from its members' Status instead).
    pub data_dirs: Vec<PathBuf>,
    /// What a client of the cluster presents.
    pub security: store::client::ClientSecurity,
    /// The nodes run under callgrind, dumping into this folder.
    pub callgrind_dir: Option<PathBuf>,
}

/// Every node's Status figures (`None` when a node does not answer).
async fn node_stats(
    client: &store::client::Client,
    n: usize,
) -> Option<Vec<std::collections::HashMap<String, u64>>> {
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        all.push(client.status_of(i).await.ok()?.stats);
    }
    Some(all)
}

/// The engine and process counters of the nodes, summed.
fn engine_counters(stats: &[std::collections::HashMap<String, u64>]) -> EngineCounters {
    let mut c = EngineCounters::default();
    for status in stats {
        let get = |k: &str| status.get(k).copied().unwrap_or(0);
        c.fsyncs += get("engine.fsyncs");
        c.disk_bytes_written += get("engine.disk_bytes_written");
        c.write_stall_us += get("engine.write_slowdown_micros") + get("engine.write_stop_micros");
        let p = &mut c.process;
        p.cpu_ns += get("process.cpu_ns");
        p.voluntary_ctx += get("process.voluntary_ctx");
        p.involuntary_ctx += get("process.involuntary_ctx");
        p.read_bytes += get("process.read_bytes");
        p.write_bytes += get("process.write_bytes");
        p.rchar += get("process.rchar");
        p.wchar += get("process.wchar");
        p.has_io = status.contains_key("process.wchar");
        c.nodes += 1;
    }
    c
}

struct Bar {
    bar: ProgressBar,
    total: Measure,
    /// Start of the measured window, once the runner knows it.
    window_start: std::cell::Cell<Option<Instant>>,
    /// The counter read armed for that instant.
    edge: std::cell::RefCell<Option<std::thread::JoinHandle<Snapshot>>>,
    pids: Vec<u32>,
    /// The nodes run under callgrind: their pids, zeroed at the window's start.
    callgrind_pids: Option<Vec<u32>>,
    /// The zeroing armed for that instant; gives the edge's midpoint.
    zero: std::cell::RefCell<Option<std::thread::JoinHandle<Result<Instant, String>>>>,
    metrics: Option<crate::metrics::LiveMetrics>,
}

impl Progress for Bar {
    fn window(&self, start: Instant) {
        self.window_start.set(Some(start));
        *self.edge.borrow_mut() = snapshot_at(self.pids.clone(), start);
        if let Some(pids) = &self.callgrind_pids {
            *self.zero.borrow_mut() = crate::instructions::zero_at(pids.clone(), start);
        }
    }

    fn update(&self, phase: &str, measured: Duration, live: &Live) {
        if let Some(m) = &self.metrics {
            let phase = if phase == "measure" {
                crate::metrics::Phase::Measure
            } else {
                crate::metrics::Phase::Warmup
            };
            m.update(phase, live);
        }
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

/// The consistency checker of one run of a point: on when the workload checks consistency,
/// recording writes for the audit when it audits. A shard stamps its number into its values.
pub fn checker_for(
    w: &crate::workload::Workload,
    point: &Point,
    ctx: &RunCtx,
) -> Result<std::cell::RefCell<crate::consistency::Checker>, SweepError> {
    let writer = if ctx.shard.is_whole() {
        0
    } else {
        ctx.shard.index
    };
    let check = crate::consistency::Checker::new(w.checks_consistency(), point.keys)
        .map_err(|e| SweepError::Point {
            point: point.id(),
            message: format!("cannot make the consistency histograms: {e}"),
        })?
        .with_writer(writer)
        .with_audit(crate::consistency::audit::History::new(
            w.audits(),
            writer,
            w.keys.size.0 as usize,
        ));
    Ok(std::cell::RefCell::new(check))
}

/// Preload, warm up, measure and summarise one run of a point against `target`, checking
/// reads and recording writes with `check`. `probe` names the local cluster's nodes, whose
/// engine counters and data size are read.
#[allow(clippy::too_many_arguments)]
pub async fn run_point<T: Target>(
    target: &T,
    check: &std::cell::RefCell<crate::consistency::Checker>,
    w: &crate::workload::Workload,
    point: &Point,
    dir: &Path,
    quiet: bool,
    events: Option<crate::events::EventHook<'_>>,
    ctx: &RunCtx,
    probe: Option<NodeProbe>,
) -> Result<crate::report::PointSummary, SweepError> {
    let key_size = w.keys.size.0 as usize;
    let keys = point.keys_config(w);
    let pool = ValuePool::new(w.seed);
    let preload_count = match w.preload {
        crate::workload::Preload::All => point.keys,
        crate::workload::Preload::None => 0,
        crate::workload::Preload::Keys(n) => n.min(point.keys),
    };
    let shard = ctx.shard;
    let preload_spec = crate::run::PreloadSpec {
        count: preload_count,
        first: shard.offset(),
        stride: u64::from(shard.count),
        concurrency: PRELOAD_CONCURRENCY,
        key_size,
    };
    let preload_started = Instant::now();
    let mut preload_gen = OpGen::for_shard(
        w.seed ^ PRELOAD_SEED_SALT,
        &keys,
        &point.values,
        &w.mix,
        shard,
    );
    let (written, failed, preload_error) = if preload_spec.keys() > 0 {
        let bar = progress_bar(Measure::Ops(preload_spec.keys()), quiet);
        bar.set_message("preload");
        let r = crate::run::preload(target, &mut preload_gen, &pool, check, preload_spec, &|n| {
            bar.set_position(n);
            if let Some(m) = &ctx.metrics {
                m.preload(n);
            }
        })
        .await;
        bar.finish_and_clear();
        r
    } else {
        (0, 0, None)
    };
    if preload_spec.keys() > 0 && written == 0 {
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
        (None, Some(n)) => Measure::Ops(shard.share_of(n)),
        (None, None) => Measure::For(Duration::from_secs(10)),
    };
    let spec = RunSpec {
        load: point.load.share(shard).map_err(SweepError::Usage)?,
        warmup: w.warmup_duration(),
        measure,
        max_in_flight: w.in_flight_cap(),
        key_size,
        pipeline: w.pipeline_depth(),
    };
    let kinds = mix_kinds(&w.mix);
    let hdr_dir = dir.join("hdr");
    let prefix = ctx.log_prefix(point);
    let opgen = OpGen::for_shard(w.seed, &keys, &point.values, &w.mix, shard);
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
        callgrind_pids: probe
            .as_ref()
            .and_then(|p| p.callgrind_dir.as_ref())
            .map(|_| target.pids()),
        zero: std::cell::RefCell::new(None),
        metrics: ctx.metrics.clone(),
    };
    let engine_client = match &probe {
        Some(p) if !p.endpoints.is_empty() => store::client::Client::connect(
            &p.endpoints,
            store::client::ClientOptions {
                // Token-aware, so a remote cluster's every member is asked, not only the
                // endpoints listed.
                routing: store::client::Routing::TokenAware,
                security: p.security.clone(),
                ..store::client::ClientOptions::default()
            },
        )
        .await
        .ok(),
        _ => None,
    };
    let probe_nodes = engine_client
        .as_ref()
        .map(store::client::Client::node_count)
        .unwrap_or(0);
    // Reads the engine counters at the start of the measured window (a short Status call per
    // node on the driver thread, once).
    let engine_start = async {
        let client = engine_client.as_ref()?;
        // The runner announces the window before its first request; bounded wait regardless.
        for _ in 0..10_000 {
            if let Some(t) = bar.window_start.get() {
                tokio::time::sleep_until(t.into()).await;
                return node_stats(client, probe_nodes)
                    .await
                    .map(|s| engine_counters(&s));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    };
    if let Some(at) = ctx.start_at {
        shard::wait_for_start(at, quiet).await;
    }
    let drive = crate::run::drive(
        target,
        opgen,
        &pool,
        check,
        &spec,
        |start, wall| {
            Recorder::new(start, wall, &kinds, &hdr_dir, &prefix)
                .map(|r| r.with_live_buckets(ctx.metrics.is_some()))
        },
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
                if let Some(finish) = &hook.finish
                    && !schedule_done
                {
                    let _ = finish.send(true);
                    let _ = tokio::time::timeout(crate::events::FINISH_GRACE, &mut schedule).await;
                }
                drop(schedule);
                (outcome, Some(hook.log))
            }
            None => (drive.await, None),
        }
    };
    let ((outcome, event_log), engine_at_start) = tokio::join!(with_events, engine_start);
    let end_snapshot = snapshot(&pids);
    // One Status round at the window's end: engine counters, and the replica round trips
    // the nodes measured (for PBS's WARS model).
    let stats_at_end = match &engine_client {
        Some(c) => node_stats(c, probe_nodes).await,
        None => None,
    };
    let engine_at_end = stats_at_end.as_deref().map(engine_counters);
    let legs = stats_at_end
        .as_deref()
        .filter(|_| check.borrow().enabled())
        .and_then(crate::consistency::pbs::ReplicaLegs::from_status);
    let start_snapshot = bar
        .edge
        .borrow_mut()
        .take()
        .and_then(|h| h.join().ok())
        .unwrap_or_default();
    if let Some(m) = &ctx.metrics {
        m.end_point(outcome.as_ref().map_or(0, |o| o.missed_ticks));
    }
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
    // What the nodes store now, preload and run included: a local cluster's data
    // directories, or a remote cluster's engine tables as its members report them.
    let disk = probe.as_ref().and_then(|p| {
        let bytes = if p.data_dirs.is_empty() {
            crate::resources::engine_table_bytes(stats_at_end.as_deref()?)?
        } else {
            p.data_dirs
                .iter()
                .map(|d| crate::resources::dir_bytes(d))
                .fold(0u64, u64::saturating_add)
        };
        Some(crate::resources::DiskUsage {
            bytes,
            keys: point.keys,
            replicas: point.replication,
        })
    });
    let instructions = match (&bar.callgrind_pids, probe.as_ref()) {
        (
            Some(pids),
            Some(NodeProbe {
                callgrind_dir: Some(d),
                ..
            }),
        ) => Some(
            count_instructions(&bar, pids.clone(), d.clone(), &prefix, completed, &outcome)
                .await
                .map_err(|e| SweepError::Point {
                    point: point.id(),
                    message: format!("counting instructions: {e}"),
                })?,
        ),
        _ => None,
    };
    let resources = (!start_snapshot.procs.is_empty()).then(|| {
        let mut r = crate::resources::per_op(
            &start_snapshot,
            &end_snapshot,
            self_pid,
            completed,
            engine_at_start.zip(engine_at_end),
            disk,
        );
        r.node_instructions_per_op = instructions.flatten();
        // Against endpoints the system under test may run on this machine without being
        // one of the run's processes: it would count as "other programs".
        if pids.len() == 1 && target.name() != "null" {
            r.other_cpu_pct = None;
        }
        r
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
        consistency: consistency_summary(w, point, &check.borrow(), legs),
    });
    if let Some(log) = event_log {
        summary.events = crate::events::records(&log, outcome.measure_start);
    }
    if !quiet {
        print_point_line(&summary);
    }
    Ok(summary)
}

/// Dumps the callgrind counters the window's start zeroed and turns them into instructions
/// per operation (`None`: the zeroing landed too far from the window's start to scale).
async fn count_instructions(
    bar: &Bar,
    pids: Vec<u32>,
    dir: PathBuf,
    tag: &str,
    completed: u64,
    outcome: &crate::run::Outcome,
) -> Result<Option<f64>, String> {
    let zeroed = bar
        .zero
        .borrow_mut()
        .take()
        .ok_or("the window's start was never announced")?
        .join()
        .map_err(|_| "the zeroing thread panicked".to_string())??;
    let tag = tag.to_string();
    let total =
        tokio::task::spawn_blocking(move || crate::instructions::dump_total(&pids, &dir, &tag))
            .await
            .map_err(|e| format!("the dump task failed: {e}"))??;
    Ok(crate::instructions::per_op(
        total,
        completed,
        zeroed,
        (outcome.measure_start, outcome.measure_end),
    ))
}

/// The point's consistency measurement beside PBS's predictions for its N, W, R, nodes and
/// routing.
fn consistency_summary(
    w: &crate::workload::Workload,
    point: &Point,
    check: &crate::consistency::Checker,
    legs: Option<crate::consistency::pbs::ReplicaLegs>,
) -> Option<summary_mod::ConsistencySummary> {
    use crate::consistency::{CURVE_EDGES_US, pbs};
    let measured = check.finish()?;
    let routing = w.client.routing.routing();
    // WARS at t = 0 and at the middle of every bin of the measured curve.
    let mut ts = vec![0.0];
    let mut lower = 0.0;
    let mut uppers = Vec::new();
    for &e in &CURVE_EDGES_US {
        let upper = if e == u64::MAX { lower * 2.0 } else { e as f64 };
        ts.push((lower + upper) / 2.0);
        uppers.push((e != u64::MAX).then(|| e as f64 / 1000.0));
        lower = upper;
    }
    let setting = pbs::Setting {
        n: point.replication,
        w: point.write_quorum,
        r: point.read_quorum,
        nodes: point.nodes,
        routing,
        read_repair_chance: store::config::DEFAULT_READ_REPAIR_CHANCE,
    };
    let wars = legs
        .as_ref()
        .and_then(|l| pbs::wars(setting, l, &ts, WARS_TRIALS));
    Some(summary_mod::ConsistencySummary {
        routing: routing.name().to_string(),
        measured,
        pbs_stale_rate_t0: pbs::ringkv_t0(setting),
        pbs_closed_form_t0: pbs::closed_form_t0(
            point.replication,
            point.write_quorum,
            point.read_quorum,
        ),
        pbs_wars_stale_rate_t0: wars.as_ref().and_then(|p| p.first().copied()),
        pbs_wars_curve: wars
            .map(|p| {
                uppers
                    .iter()
                    .zip(p.iter().skip(1))
                    .map(|(u, stale)| summary_mod::WarsPoint {
                        t_upper_ms: *u,
                        p_consistent: 1.0 - stale,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        replica_legs: legs,
    })
}

/// Monte-Carlo trials of the WARS model per point.
const WARS_TRIALS: u32 = 20_000;

/// Starts a local `redis-server` (with `cluster.start`) or connects to `cluster.endpoints`,
/// and runs the point against it.
async fn run_redis_point(
    w: &crate::workload::Workload,
    point: &Point,
    dir: &Path,
    quiet: bool,
    ctx: &RunCtx,
) -> Result<crate::report::PointSummary, SweepError> {
    use crate::target::redis::{RedisServer, RedisTarget};
    let err = |message: String| SweepError::Point {
        point: point.id(),
        message,
    };
    let server = if w.cluster.start {
        Some(RedisServer::start().await.map_err(err)?)
    } else {
        None
    };
    let (address, pids) = match &server {
        Some(s) => (s.address().to_string(), vec![s.pid()]),
        None => (
            w.cluster.endpoints.first().cloned().unwrap_or_default(),
            Vec::new(),
        ),
    };
    let target = RedisTarget::connect(
        &address,
        w.connection_count() as usize,
        w.request_timeout(),
        pids,
    )
    .await
    .map_err(err)?;
    run_point(
        &target,
        &checker_for(w, point, ctx)?,
        w,
        point,
        dir,
        quiet,
        None,
        ctx,
        None,
    )
    .await
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
    if let Some(per_key) = p.resources.as_ref().and_then(|r| r.disk_bytes_per_key) {
        parts.push(format!("disk {per_key:.0} B/key"));
    }
    if let Some(c) = &p.consistency
        && let Some(rate) = c.measured.stale_rate
    {
        parts.push(format!(
            "stale {:.3}% of {} reads",
            rate * 100.0,
            c.measured.reads_checked
        ));
    }
    if p.client_bound {
        parts.push(format!("CLIENT-BOUND: {}", p.self_check.reasons.join("; ")));
    }
    if !p.self_check.shared_machine.is_empty() {
        parts.push(format!(
            "SHARED MACHINE: {}",
            p.self_check.shared_machine.join("; ")
        ));
    }
    eprintln!("{}", parts.join(", "));
}

// ------------------------------------------------------------------ a ringkv point

mod autoscale;
mod final_audit;
pub mod search;
mod shard;

mod local {
    use std::path::Path;

    use store::local_cluster::{LocalCluster, NodeLauncher};

    use super::final_audit::{final_audit, print_audit_line};
    use crate::cluster::{NODE_SUBCOMMAND, cluster_spec_for_point};
    use crate::events::{EventHook, EventLog, run_schedule};
    use crate::report::PointSummary;
    use crate::sweep::{NodeProbe, Point, RunCtx, SweepError};
    use crate::target::ringkv::{RingkvOptions, RingkvTarget};
    use crate::workload::Workload;

    /// This program, to re-execute as `__node`. On Linux `/proc/self/exe`, which names the
    /// running binary even after a rebuild replaced the file at its path: a long sweep may
    /// outlive a `cargo build` in another terminal.
    fn own_executable() -> std::io::Result<std::path::PathBuf> {
        let proc_exe = Path::new("/proc/self/exe");
        if cfg!(target_os = "linux") && proc_exe.exists() {
            return Ok(proc_exe.to_path_buf());
        }
        std::env::current_exe()
    }

    fn point_err(p: &Point, message: String) -> SweepError {
        SweepError::Point {
            point: p.id(),
            message,
        }
    }

    /// Starts the point's cluster (unless the workload names `cluster.endpoints`), runs the
    /// point against it, and stops it. The cluster is also killed if this future is dropped
    /// (Ctrl-C) or the run fails: `LocalCluster` kills its nodes on drop.
    pub async fn run_ringkv_point(
        w: &Workload,
        point: &Point,
        dir: &Path,
        quiet: bool,
        ctx: &RunCtx,
    ) -> Result<PointSummary, SweepError> {
        let callgrind_dir = if ctx.nodes.instructions {
            if w.cluster.endpoints.is_empty() {
                crate::instructions::check_tools().map_err(|e| point_err(point, e))?;
            } else {
                return Err(point_err(
                    point,
                    "--instructions counts the nodes of a local cluster; this workload names \
                     `cluster.endpoints`"
                        .into(),
                ));
            }
            let d = dir.join("callgrind").join(ctx.log_prefix(point));
            std::fs::create_dir_all(&d)
                .map_err(|e| point_err(point, format!("cannot make {}: {e}", d.display())))?;
            Some(d)
        } else {
            None
        };
        let mut cluster = match cluster_spec_for_point(w, point) {
            Some(mut spec) => {
                spec.extra_node_args
                    .extend(ctx.nodes.node_args.iter().cloned());
                if !quiet {
                    eprintln!("  starting {} local nodes", spec.nodes);
                }
                let launcher = match &ctx.nodes.node_bin {
                    Some(bin) => NodeLauncher {
                        program: bin.clone(),
                        args_prefix: vec!["node".to_string()],
                    },
                    None => NodeLauncher {
                        program: own_executable().map_err(|e| {
                            point_err(point, format!("cannot find the loadgen executable: {e}"))
                        })?,
                        args_prefix: vec![NODE_SUBCOMMAND.to_string()],
                    },
                };
                let launcher = match &callgrind_dir {
                    Some(d) => crate::instructions::wrap(&launcher, d),
                    None => launcher,
                };
                Some(LocalCluster::start(&spec, &launcher).await.map_err(|e| {
                    point_err(point, format!("the local cluster did not start: {e}"))
                })?)
            }
            None => None,
        };
        let (endpoints, pids, security) = match &cluster {
            Some(c) => (c.endpoints(), c.pids(), c.client_security()),
            None => (
                w.cluster.endpoints.clone(),
                Vec::new(),
                crate::cluster::endpoint_security(w).map_err(|e| point_err(point, e))?,
            ),
        };
        let opts = RingkvOptions {
            endpoints,
            timeout: w.request_timeout(),
            connections: w.connection_count() as usize,
            write_quorum: point.write_quorum,
            read_quorum: point.read_quorum,
            sloppy: w.cluster.sloppy,
            key_count: point.keys,
            pids,
            driver_threads: crate::target::ringkv::driver_threads_for(
                point
                    .load
                    .share(ctx.shard)
                    .ok()
                    .and_then(|l| l.schedule().map(|s| s.max_rate())),
            ),
            security,
            routing: w.client.routing.routing(),
            hedge_reads_after: w.client.hedge_reads_after.map(|d| d.0),
        };
        // A remote cluster's nodes report their own counters and table sizes in Status; there
        // are no data directories to measure.
        let probe = Some(match cluster.as_ref() {
            Some(c) => NodeProbe {
                endpoints: c.endpoints(),
                data_dirs: c.nodes().iter().map(|n| n.data_dir.clone()).collect(),
                security: c.client_security(),
                callgrind_dir: callgrind_dir.clone(),
            },
            None => NodeProbe {
                endpoints: w.cluster.endpoints.clone(),
                data_dirs: Vec::new(),
                security: opts.security.clone(),
                callgrind_dir: None,
            },
        });
        let result = match RingkvTarget::connect(&opts).await {
            Ok(target) => {
                let mut scaling = None;
                let events = match (cluster.as_mut(), &w.autoscale) {
                    (Some(c), Some(policy)) => {
                        let (hook, s) =
                            super::autoscale::start(c, &policy.value, w.warmup_duration())
                                .map_err(|e| point_err(point, e))?;
                        scaling = Some(s);
                        Some(hook)
                    }
                    (Some(c), None) if !w.events.is_empty() => {
                        let log = EventLog::default();
                        let schedule = run_schedule(
                            c,
                            w.events_in_order().into_iter().cloned().collect(),
                            w.warmup_duration(),
                            log.clone(),
                        );
                        Some(EventHook {
                            schedule: Box::pin(schedule),
                            log,
                            finish: None,
                        })
                    }
                    _ => None,
                };
                let check = crate::sweep::checker_for(w, point, ctx)?;
                let summary = crate::sweep::run_point(
                    &target, &check, w, point, dir, quiet, events, ctx, probe,
                )
                .await;
                let check = check.into_inner();
                let summary = match (summary, scaling) {
                    (Ok(mut s), Some(scaling)) => {
                        scaling.record(dir, &mut s);
                        Ok(s)
                    }
                    (other, _) => other,
                };
                match summary {
                    Ok(mut s) if check.auditing() => {
                        let audit =
                            final_audit(&opts.endpoints, &opts.security, check.history(), point)
                                .await;
                        if !quiet {
                            print_audit_line(&audit);
                        }
                        s.audit = Some(audit);
                        Ok(s)
                    }
                    other => other,
                }
            }
            Err(e) => Err(point_err(
                point,
                format!("cannot connect to the cluster: {e}"),
            )),
        };
        if let Some(c) = cluster
            && let Err(e) = c.stop().await
        {
            eprintln!("warning: point {}: stopping the cluster: {e}", point.id());
        }
        result
    }
}

use local::run_ringkv_point;
