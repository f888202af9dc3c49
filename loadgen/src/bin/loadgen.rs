//! `loadgen run | validate | compare | ab | history | plot | merge`. Exit codes: 0 ok (for
//! `compare` and `ab`: no regression, an inconclusive verdict included), 1 runtime failure, 2
//! usage error or incomparable results (bad arguments, bad workload file, different workloads,
//! a missing point, an unreadable folder, shard folders that are not one full set), 3 `compare`
//! or `ab` found a regression.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loadgen::workload::Workload;

/// The store's request path allocates small buffers at a high rate on many threads; glibc's
/// allocator cost 14% of all CPU at capacity (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_REGRESSION: u8 = 3;
const EXIT_INTERRUPTED: u8 = 130;
/// A point's lost-write audit found a lost or resurrected write, or could not check every key.
const EXIT_AUDIT: u8 = 4;

/// YAML-driven load generator for ringkv.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a workload file: every sweep point, then the results folder and charts.
    Run {
        /// The workload file (see workloads/ and docs/loadgen.md).
        file: PathBuf,
        /// Results folder (default: results/<name>/<UTC timestamp>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bars; print only the results folder (for CI).
        #[arg(long, short)]
        quiet: bool,
        /// Run an open loop at this rate (ops/s) instead of the file's rate or concurrency.
        #[arg(long)]
        rate: Option<f64>,
        /// Run a closed loop with this many workers instead of the file's rate or concurrency.
        #[arg(long)]
        concurrency: Option<u32>,
        /// Measure each point for this long (e.g. 30s) instead of the file's duration or ops.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<loadgen::workload::DurationSpec>,
        /// Run every point K times, each on a fresh cluster (replaces the file's `repeat:`).
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: Option<u32>,
        /// Start the local clusters without TLS or tokens (`cluster.insecure: true`), to
        /// measure what security costs.
        #[arg(long)]
        insecure: bool,
        /// Run the local nodes under valgrind's callgrind and report their instructions per
        /// operation (slow: keep the rate low; see docs/loadgen.md).
        #[arg(long)]
        instructions: bool,
        /// Drive share i of k of the load (1/k of the rate or the workers, an operation stream
        /// of its own), for k loadgens on several hosts against one cluster; `loadgen merge`
        /// joins their results folders.
        #[arg(long, value_name = "i/k", value_parser = loadgen::workload::Shard::parse)]
        shard: Option<loadgen::workload::Shard>,
        /// Prepare (connect, preload), then begin warm-up of the first point at this
        /// wall-clock time: RFC 3339 UTC (2026-11-28T20:00:00Z) or Unix seconds.
        #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
        start_at: Option<std::time::SystemTime>,
        /// Serve the live progress as Prometheus metrics at http://ADDR/metrics (plain HTTP):
        /// PORT (on 127.0.0.1), localhost:PORT or IP:PORT.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<String>,
        /// Let --metrics-listen take an address off loopback (anyone who reaches it can read
        /// the metrics).
        #[arg(long, requires = "metrics_listen")]
        metrics_public: bool,
    },
    /// Check workload files without running them.
    Validate {
        /// One or more workload files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compare a candidate results folder with a baseline: a statistical verdict per point,
    /// operation and metric. Exits 0 (no regression), 3 (regression) or 2 (incomparable).
    Compare {
        /// Baseline results folder (or its summary.json).
        baseline: PathBuf,
        /// Candidate results folder (or its summary.json).
        candidate: PathBuf,
        #[command(flatten)]
        gate: GateArgs,
    },
    /// Interleaved A/B runs of one workload (A B A B …, each on a fresh cluster), then compare.
    /// With no --a-*/--b-* flags it is an A/A run. Exits 0, 3 or 2 like compare; 1 when a run
    /// cannot complete.
    Ab {
        /// The workload file.
        file: PathBuf,
        /// Runs per point and side (replaces the file's `repeat:`).
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: Option<u32>,
        /// Extra node arguments for side A, e.g. "--read-repair-chance 0.1".
        #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
        a_node_args: Option<String>,
        /// Extra node arguments for side B, e.g. "--read-repair-chance 1.0".
        #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
        b_node_args: Option<String>,
        /// Start side A's nodes as `PATH node …` (default: this loadgen's `__node`).
        #[arg(long, value_name = "PATH")]
        a_node_bin: Option<PathBuf>,
        /// Start side B's nodes as `PATH node …`.
        #[arg(long, value_name = "PATH")]
        b_node_bin: Option<PathBuf>,
        /// Run both sides' nodes under callgrind; instructions per operation then gate.
        #[arg(long)]
        instructions: bool,
        /// Results folder: receives a/, b/ and the comparison (default results/<name>/ab-<UTC>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        gate: GateArgs,
    },
    /// Change points over a series of results folders (E-Divisive means with a t-test), ordered
    /// by start time. Exits 3 when a change for the worse falls within the newest N folders.
    History {
        /// Results folders of one workload, in any order.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// How many of the newest folders the gate looks at.
        #[arg(long, value_name = "N", default_value_t = 5)]
        recent: usize,
        /// Largest p-value of a change point.
        #[arg(long, value_name = "P", default_value_t = loadgen::history::DEFAULT_MAX_P)]
        max_p: f64,
        /// Write the series with their change points as a chart (PNG, and an SVG beside it).
        #[arg(long, value_name = "FILE")]
        chart: Option<PathBuf>,
        /// Write the change points as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Redraw the charts, report.md and points.csv of a results folder.
    Plot {
        /// The results folder.
        dir: PathBuf,
    },
    /// Merge the results folders of `run --shard 1/k` … `k/k` into one: histograms added,
    /// counts and throughputs summed, percentiles recomputed, charts redrawn. Exits 2 unless
    /// the folders are every shard of one workload exactly once.
    Merge {
        /// The shards' results folders, in any order.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged results folder (must not hold results yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run one ringkv node (how `run` starts its local clusters; same as `ringkv node`).
    #[command(name = "__node", hide = true)]
    Node(Box<store::cli::NodeArgs>),
}

/// How compare decides and what it writes (shared by `compare` and `ab`).
#[derive(clap::Args, Debug)]
struct GateArgs {
    /// Confidence of a verdict, in percent: the family-wise false-alarm rate is 100 − this.
    #[arg(long, value_name = "PCT", default_value = "99")]
    confidence: String,
    /// Minimum effect: smaller changes never fail. `5%` for every metric, or `p99=10%` for one
    /// (repeatable). Default 5%.
    #[arg(long, value_name = "[METRIC=]PCT")]
    min_effect: Vec<String>,
    /// Deprecated alias of --min-effect.
    #[arg(long, value_name = "PCT", hide = true)]
    max_regression: Option<String>,
    /// Write the comparison as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the comparison as JUnit XML (one test case per metric).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Markdown block for a pull-request comment.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Write a chart of baseline against candidate (PNG; an SVG is written beside it).
    #[arg(long, value_name = "FILE")]
    chart: Option<PathBuf>,
}

impl GateArgs {
    fn options(&self) -> Result<loadgen::compare::Options, String> {
        let mut o = loadgen::compare::Options {
            confidence: loadgen::compare::parse_confidence(&self.confidence)?,
            ..loadgen::compare::Options::default()
        };
        if let Some(m) = &self.max_regression {
            eprintln!(
                "warning: --max-regression is deprecated; it now means --min-effect {m} (the \
                 smallest change that may fail, if it is also significant)"
            );
            o.set_min_effect(m)?;
        }
        for m in &self.min_effect {
            o.set_min_effect(m)?;
        }
        Ok(o)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Run {
            file,
            out,
            quiet,
            rate,
            concurrency,
            duration,
            repeat,
            insecure,
            instructions,
            shard,
            start_at,
            metrics_listen,
            metrics_public,
        } => {
            let metrics = match metrics_listen
                .as_deref()
                .map(|a| loadgen::metrics::listen_address(a, metrics_public))
                .transpose()
            {
                Ok(addr) => addr,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let workload = match load(&file).and_then(|mut w| {
                w.cluster.insecure |= insecure;
                w.with_overrides(rate, concurrency, duration, &file)
                    .map_err(|e| {
                        eprintln!("error: {e}");
                        ExitCode::from(EXIT_USAGE)
                    })
            }) {
                Ok(w) => w,
                Err(code) => return code,
            };
            if let Err(code) = instructions_allowed(instructions, &workload) {
                return code;
            }
            let nodes = loadgen::sweep::NodeSide {
                instructions,
                ..loadgen::sweep::NodeSide::default()
            };
            run(
                workload,
                file,
                RunFlags {
                    out,
                    quiet,
                    repeat,
                    shard,
                    start_at,
                    nodes,
                    metrics_at: metrics,
                },
            )
        }
        Command::Validate { files } => validate(&files),
        Command::Compare {
            baseline,
            candidate,
            gate,
        } => match gate.options() {
            Ok(o) => compare(&baseline, &candidate, &o, &gate),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Ab {
            file,
            repeat,
            a_node_args,
            b_node_args,
            a_node_bin,
            b_node_bin,
            instructions,
            out,
            quiet,
            gate,
        } => {
            let o = match gate.options() {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let workload = match load(&file) {
                Ok(w) => w,
                Err(code) => return code,
            };
            if let Err(code) = instructions_allowed(instructions, &workload) {
                return code;
            }
            for bin in [&a_node_bin, &b_node_bin].into_iter().flatten() {
                if !bin.is_file() {
                    eprintln!(
                        "error: node binary {} does not exist; build it (cargo build --release \
                         -p store) and pass its path",
                        bin.display()
                    );
                    return ExitCode::from(EXIT_USAGE);
                }
            }
            let side = |args: &Option<String>, bin: &Option<PathBuf>| loadgen::sweep::NodeSide {
                node_bin: bin.clone(),
                node_args: args
                    .as_deref()
                    .map(loadgen::ab::split_args)
                    .unwrap_or_default(),
                instructions,
            };
            let out = out.unwrap_or_else(|| {
                PathBuf::from("results").join(&workload.name).join(format!(
                    "ab-{}",
                    loadgen::report::utc_compact(std::time::SystemTime::now())
                ))
            });
            let opts = loadgen::ab::AbOptions {
                workload_file: file,
                out,
                repeat,
                a: side(&a_node_args, &a_node_bin),
                b: side(&b_node_args, &b_node_bin),
                quiet,
                command: std::env::args().collect(),
            };
            ab(&workload, &opts, &o, &gate)
        }
        Command::Plot { dir } => plot(&dir),
        Command::Merge { dirs, out } => merge(&dirs, &out),
        Command::History {
            dirs,
            recent,
            max_p,
            chart,
            json,
        } => history(&dirs, recent, max_p, chart.as_deref(), json.as_deref()),
        Command::Node(args) => store::cli::run_node_blocking(*args),
    }
}

fn load(file: &std::path::Path) -> Result<Workload, ExitCode> {
    Workload::load(file).map_err(|e| {
        eprintln!("error: {e}");
        let code = match e {
            loadgen::workload::WorkloadError::Read { .. } => EXIT_RUNTIME,
            _ => EXIT_USAGE,
        };
        ExitCode::from(code)
    })
}

fn parse_duration(text: &str) -> Result<loadgen::workload::DurationSpec, String> {
    loadgen::workload::DurationSpec::parse(text)
}

fn parse_start_at(text: &str) -> Result<std::time::SystemTime, String> {
    loadgen::workload::shard::parse_start_at(text, std::time::SystemTime::now())
}

/// Reports a failed run or A/B run: exit 2 when the workload cannot run as written, else 1.
fn sweep_failed(e: &loadgen::sweep::SweepError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(match e {
        loadgen::sweep::SweepError::Usage(_) => EXIT_USAGE,
        _ => EXIT_RUNTIME,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_RUNTIME)
        })
}

fn ab(
    w: &Workload,
    opts: &loadgen::ab::AbOptions,
    o: &loadgen::compare::Options,
    gate: &GateArgs,
) -> ExitCode {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = loadgen::ab::run_ab(w, opts) => Some(r),
            () = interrupted() => None,
        }
    });
    match result {
        None => {
            eprintln!("interrupted: finished points are in the summary.json of a/ and b/");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Some(Err(e)) => sweep_failed(&e),
        Some(Ok((a, b))) => {
            if !opts.quiet {
                eprintln!("A: {}\nB: {}", a.display(), b.display());
            }
            let mut gate_files = GateFiles::from(gate);
            for (slot, name) in [
                (&mut gate_files.json, "compare.json"),
                (&mut gate_files.junit, "compare.xml"),
                (&mut gate_files.markdown, "compare.md"),
                (&mut gate_files.chart, "compare.png"),
            ] {
                if slot.is_none() {
                    *slot = Some(opts.out.join(name));
                }
            }
            compare_with(&a, &b, o, &gate_files)
        }
    }
}

/// `--instructions` counts a local ringkv cluster's nodes: refused, with a usage error,
/// for other targets and for `cluster.endpoints`.
fn instructions_allowed(instructions: bool, w: &Workload) -> Result<(), ExitCode> {
    if !instructions {
        return Ok(());
    }
    let problem = if w.target != loadgen::workload::TargetKind::Ringkv {
        Some("--instructions counts ringkv nodes; this workload's target is not ringkv")
    } else if !w.cluster.endpoints.is_empty() {
        Some(
            "--instructions counts the nodes of a local cluster; this workload names `cluster.endpoints`",
        )
    } else {
        None
    };
    match problem {
        Some(p) => {
            eprintln!("error: {p}");
            Err(ExitCode::from(EXIT_USAGE))
        }
        None => Ok(()),
    }
}

/// `run`'s flags besides the workload's own overrides.
struct RunFlags {
    out: Option<PathBuf>,
    quiet: bool,
    repeat: Option<u32>,
    shard: Option<loadgen::workload::Shard>,
    start_at: Option<std::time::SystemTime>,
    nodes: loadgen::sweep::NodeSide,
    metrics_at: Option<std::net::SocketAddr>,
}

fn run(workload: Workload, file: PathBuf, flags: RunFlags) -> ExitCode {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let RunFlags {
        out,
        quiet,
        repeat,
        shard,
        start_at,
        nodes,
        metrics_at,
    } = flags;
    let metrics = match metrics_at {
        Some(addr) => {
            let m = loadgen::metrics::LiveMetrics::new();
            match loadgen::metrics::serve(addr, &m) {
                Ok(bound) => {
                    if !quiet {
                        eprintln!("metrics: http://{bound}/metrics");
                    }
                    Some(m)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            }
        }
        None => None,
    };
    let opts = loadgen::sweep::RunOptions {
        workload_file: file,
        out,
        quiet,
        command: std::env::args().collect(),
        repeat,
        nodes,
        shard,
        start_at,
        metrics,
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = loadgen::sweep::run_workload(&workload, &opts) => Some(r),
            () = interrupted() => None,
        }
    });
    match result {
        None => {
            eprintln!("interrupted: finished points are in summary.json of the results folder");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Some(Err(e)) => sweep_failed(&e),
        Some(Ok(report)) => {
            let dir = report.dir.display();
            if quiet {
                println!("{dir}");
            } else {
                println!("results: {dir}/");
                println!("  report:  {dir}/report.md");
                println!("  summary: {dir}/summary.json  (points.csv for spreadsheets)");
                println!(
                    "  charts:  {dir}/charts/ ({} charts, PNG and SVG)",
                    report.charts.len()
                );
                let flagged = report
                    .summary
                    .points
                    .iter()
                    .filter(|p| p.client_bound)
                    .count();
                if let Some(s) = &report.summary.search {
                    let rate = |r: Option<f64>| r.map_or("none".into(), |r| format!("{r:.0}"));
                    println!(
                        "  highest rate under the SLO: {} ops/s (lowest failing: {}); see \
                         report.md",
                        rate(s.highest_passing_rate),
                        rate(s.lowest_failing_rate)
                    );
                }
                if flagged > 0 {
                    println!(
                        "  note: {flagged} point(s) were client-bound (the load generator was the \
                         bottleneck); see report.md"
                    );
                }
            }
            let failed: Vec<&str> = report
                .summary
                .points
                .iter()
                .filter(|p| p.audit.as_ref().is_some_and(|a| !a.passed()))
                .map(|p| p.id.as_str())
                .collect();
            if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "error: the lost-write audit failed for point(s) {}: see `audit` in \
                     summary.json and report.md",
                    failed.join(", ")
                );
                ExitCode::from(EXIT_AUDIT)
            }
        }
    }
}

/// Ctrl-C or SIGTERM. Either ends the run future, which drops (and so kills) any local cluster.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        match load(file) {
            Ok(w) => match loadgen::sweep::points(&w) {
                Ok(_) if w.search.is_some() => {
                    let s = w.search.as_ref().map(|s| s.value.max_rate().clone());
                    let s = s.unwrap_or_default();
                    println!(
                        "{}: ok, a search for the highest rate under the SLO ({} to {} ops/s, \
                         at most {} steps)",
                        file.display(),
                        s.start_rate(),
                        s.max_rate(),
                        s.max_steps()
                    );
                }
                Ok(points) => println!("{}: ok, {} point(s)", file.display(), points.len()),
                Err(msg) => {
                    eprintln!("error: {}: {msg}", file.display());
                    failed = true;
                }
            },
            Err(_) => failed = true,
        }
    }
    if failed {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// Where compare writes its outputs.
struct GateFiles {
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    markdown: Option<PathBuf>,
    chart: Option<PathBuf>,
}

impl From<&GateArgs> for GateFiles {
    fn from(g: &GateArgs) -> Self {
        GateFiles {
            json: g.json.clone(),
            junit: g.junit.clone(),
            markdown: g.markdown.clone(),
            chart: g.chart.clone(),
        }
    }
}

fn compare(
    baseline: &std::path::Path,
    candidate: &std::path::Path,
    o: &loadgen::compare::Options,
    gate: &GateArgs,
) -> ExitCode {
    compare_with(baseline, candidate, o, &GateFiles::from(gate))
}

fn compare_with(
    baseline: &std::path::Path,
    candidate: &std::path::Path,
    o: &loadgen::compare::Options,
    files: &GateFiles,
) -> ExitCode {
    let c = match loadgen::compare::compare(baseline, candidate, o) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    print!("{}", loadgen::compare::render(&c));
    let write = |path: &Option<PathBuf>, text: String| -> bool {
        match path {
            Some(p) => match std::fs::write(p, text) {
                Ok(()) => true,
                Err(e) => {
                    eprintln!("error: cannot write {}: {e}", p.display());
                    false
                }
            },
            None => true,
        }
    };
    let json = serde_json::to_string_pretty(&c).unwrap_or_default() + "\n";
    let mut ok = write(&files.json, json);
    ok &= write(&files.junit, loadgen::compare::junit(&c));
    ok &= write(&files.markdown, loadgen::compare::markdown(&c));
    if let Some(chart) = &files.chart
        && let Err(e) = loadgen::compare::draw_chart(chart, &c)
    {
        eprintln!("error: {e}");
        ok = false;
    }
    if !ok {
        return ExitCode::from(EXIT_RUNTIME);
    }
    if c.inconclusive().next().is_some() && !c.regressed() {
        eprintln!(
            "warning: the verdict is inconclusive for some primary metrics; the gate passes, \
             but add runs (--repeat) to decide them"
        );
    }
    if c.regressed() {
        ExitCode::from(EXIT_REGRESSION)
    } else {
        ExitCode::SUCCESS
    }
}

fn history(
    dirs: &[PathBuf],
    recent: usize,
    max_p: f64,
    chart: Option<&std::path::Path>,
    json: Option<&std::path::Path>,
) -> ExitCode {
    if !(max_p > 0.0 && max_p < 1.0) {
        eprintln!("error: --max-p must be between 0 and 1");
        return ExitCode::from(EXIT_USAGE);
    }
    let h = match loadgen::history::analyse(dirs, recent, max_p) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    print!("{}", loadgen::history::render(&h));
    if let Some(path) = chart
        && let Err(e) = loadgen::history::draw_chart(path, &h)
    {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_RUNTIME);
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&h).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(EXIT_RUNTIME);
        }
    }
    if h.failing().next().is_some() {
        ExitCode::from(EXIT_REGRESSION)
    } else {
        ExitCode::SUCCESS
    }
}

fn plot(dir: &std::path::Path) -> ExitCode {
    let summary = match loadgen::report::read_summary(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match loadgen::report::render(dir, &summary) {
        Ok(charts) => {
            println!(
                "redrew {} charts in {}/charts/ and {}/report.md",
                charts.len(),
                dir.display(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn merge(dirs: &[PathBuf], out: &std::path::Path) -> ExitCode {
    let command: Vec<String> = std::env::args().collect();
    match loadgen::merge::merge(dirs, out, &command) {
        Ok(report) => {
            println!(
                "merged {} shards into {}/ ({} charts); compare and plot read it like any \
                 results folder",
                report.shards,
                out.display(),
                report.charts.len()
            );
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                loadgen::merge::MergeError::Usage(_) => EXIT_USAGE,
                _ => EXIT_RUNTIME,
            })
        }
    }
}
