//! `loadgen run | validate | compare | plot`. Exit codes: 0 ok, 1 runtime failure, 2 usage error
//! (bad arguments, bad workload file), 3 `compare` found a regression.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loadgen::workload::Workload;

const EXIT_RUNTIME: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_REGRESSION: u8 = 3;
const EXIT_INTERRUPTED: u8 = 130;

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
    },
    /// Check workload files without running them.
    Validate {
        /// One or more workload files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compare a candidate results folder with a baseline; exits 3 on a regression.
    Compare {
        /// Baseline results folder (or its summary.json).
        baseline: PathBuf,
        /// Candidate results folder (or its summary.json).
        candidate: PathBuf,
        /// Largest allowed regression of throughput, p50 or p99, in percent.
        #[arg(long, default_value = "10%")]
        max_regression: String,
    },
    /// Redraw the charts, report.md and points.csv of a results folder.
    Plot {
        /// The results folder.
        dir: PathBuf,
    },
    /// Run one ringkv node (how `run` starts its local clusters; same as `ringkv node`).
    #[command(name = "__node", hide = true)]
    Node(Box<store::cli::NodeArgs>),
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
        } => {
            let workload = match load(&file).and_then(|w| {
                w.with_overrides(rate, concurrency, duration, &file)
                    .map_err(|e| {
                        eprintln!("error: {e}");
                        ExitCode::from(EXIT_USAGE)
                    })
            }) {
                Ok(w) => w,
                Err(code) => return code,
            };
            run(workload, file, out, quiet)
        }
        Command::Validate { files } => validate(&files),
        Command::Compare {
            baseline,
            candidate,
            max_regression,
        } => compare(&baseline, &candidate, &max_regression),
        Command::Plot { dir } => plot(&dir),
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

fn run(workload: Workload, file: PathBuf, out: Option<PathBuf>, quiet: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let opts = loadgen::sweep::RunOptions {
        workload_file: file,
        out,
        quiet,
        command: std::env::args().collect(),
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
        Some(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
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
                if flagged > 0 {
                    println!(
                        "  note: {flagged} point(s) were client-bound (the load generator was the \
                         bottleneck); see report.md"
                    );
                }
            }
            ExitCode::SUCCESS
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

fn compare(baseline: &std::path::Path, candidate: &std::path::Path, max: &str) -> ExitCode {
    let max = match loadgen::compare::parse_percent(max) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match loadgen::compare::compare(baseline, candidate, max) {
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        Ok(c) if c.rows.is_empty() => {
            print!("{}", loadgen::compare::render(&c));
            eprintln!(
                "error: no candidate point has a baseline point with the same parameters; \
                 compare runs of the same workload"
            );
            ExitCode::from(EXIT_USAGE)
        }
        Ok(c) => {
            print!("{}", loadgen::compare::render(&c));
            if c.regressed() {
                ExitCode::from(EXIT_REGRESSION)
            } else {
                ExitCode::SUCCESS
            }
        }
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
