//! `loadgen ab`: interleaved A/B runs in one invocation. Both sides run the same workload; they
//! differ only in how their nodes start (binary, arguments). For every point the runs go
//! A B A B …, each on a fresh cluster, so slow drifts of a shared machine fall on both sides
//! alike. The two results folders (`<out>/a`, `<out>/b`) are then compared like any other two.

use std::path::PathBuf;

use crate::sweep::{NodeSide, RunOptions, Session, SweepError};
use crate::workload::Workload;

/// What `ab` was asked to run.
#[derive(Debug, Clone)]
pub struct AbOptions {
    /// The workload file (recorded in the manifests).
    pub workload_file: PathBuf,
    /// Folder that receives `a/` and `b/`.
    pub out: PathBuf,
    /// Runs per point and side; `None` takes the workload's `repeat:`.
    pub repeat: Option<u32>,
    /// Side A's nodes.
    pub a: NodeSide,
    /// Side B's nodes.
    pub b: NodeSide,
    /// No progress output.
    pub quiet: bool,
    /// The command line.
    pub command: Vec<String>,
}

/// Splits a `--X-node-args` value into arguments at whitespace (no shell quoting).
pub fn split_args(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Runs both sides, interleaved, and returns their results folders (A, B).
pub async fn run_ab(w: &Workload, opts: &AbOptions) -> Result<(PathBuf, PathBuf), SweepError> {
    let side = |name: &str, nodes: &NodeSide| RunOptions {
        workload_file: opts.workload_file.clone(),
        out: Some(opts.out.join(name)),
        quiet: opts.quiet,
        command: opts.command.clone(),
        repeat: opts.repeat,
        nodes: nodes.clone(),
        shard: None,
        start_at: None,
        metrics: None,
    };
    let facts = crate::cluster::describe_endpoints(w)
        .await
        .map_err(SweepError::Results)?;
    let mut a = Session::begin(w, &side("a", &opts.a), facts.as_ref())?;
    let mut b = Session::begin(w, &side("b", &opts.b), facts.as_ref())?;
    let points = a.points.clone();
    for point in &points {
        for run in 1..=a.repeat {
            a.announce(point, run, "A ");
            a.run_once(point, run).await?;
            b.announce(point, run, "B ");
            b.run_once(point, run).await?;
        }
        a.finish_point()?;
        b.finish_point()?;
    }
    let a = a.finish()?;
    let b = b.finish()?;
    Ok((a.dir, b.dir))
}
