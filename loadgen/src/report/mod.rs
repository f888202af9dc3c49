//! The results folder: `manifest.json`, `summary.json`, `points.csv`, `report.md` and `charts/`.
//!
//! Everything but the manifest and summary is derived from the summary and the interval logs,
//! so `loadgen plot DIR` can redraw a folder's charts and report from its files alone.

pub mod autoscale;
pub mod charts;
pub mod csv;
pub mod markdown;
pub mod search;
pub mod shards;
pub mod summary;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::resources::Machine;
use crate::workload::Workload;
pub use summary::{ConsistencySummary, Latency, OpSummary, Params, PointSummary, Summary};

/// Report-writing failures.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written or read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A chart could not be drawn.
    #[error("chart {path}: {message}")]
    Chart {
        /// The chart file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

pub(crate) fn io_err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// `manifest.json`: what ran, where and with what.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest<'a> {
    /// Format version (see [`summary::SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The workload as parsed (defaults not filled in; sizes in bytes).
    pub workload: &'a Workload,
    /// The workload file.
    pub workload_file: String,
    /// The seed of every generator.
    pub seed: u64,
    /// Runs per point, each on a fresh cluster.
    pub repeat: u32,
    /// `git rev-parse HEAD` of the working directory, when available.
    pub git_revision: Option<String>,
    /// What the nodes ran: the measured build.
    pub node_build: NodeBuild,
    /// Every node's extra arguments: the workload's `cluster.node_args`, then the command line's.
    pub node_args: Vec<String>,
    /// What the nodes ran under (`callgrind` with `--instructions`); their CPU and latency
    /// figures are then the instrumented process's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instrumented: Option<&'static str>,
    /// Versions of the tools that produced the folder.
    pub tools: Tools,
    /// The machine.
    pub machine: Machine,
    /// When the run started (UTC).
    pub started: String,
    /// The command line.
    pub command: Vec<String>,
    /// Every sweep point, in order.
    pub points: Vec<crate::plan::Point>,
    /// What an already-running cluster (`cluster.endpoints`) said it is, from its Status;
    /// `None` for local clusters (the points say what was started).
    pub cluster: Option<crate::plan::ClusterFacts>,
    /// This loadgen's share of the workload (`--shard i/k`); the workload above is the whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::workload::Shard>,
    /// When warm-up of the first point was to begin (`--start-at`, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
}

/// The node build a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct NodeBuild {
    /// The executable that ran the nodes.
    pub program: String,
    /// `__node` (the loadgen re-executing itself) or `node` (`--node-bin`).
    pub subcommand: String,
    /// The git revision the node binary was built from: the loadgen's build revision when the
    /// loadgen runs the nodes (a `-dirty` suffix means uncommitted changes); for `--node-bin`,
    /// the HEAD of the checkout the binary sits in, when it sits in one.
    pub git_revision: Option<String>,
    /// FNV-1a 64 of the executable's bytes, to tell two builds apart.
    pub binary_fnv64: Option<String>,
}

impl NodeBuild {
    /// Describes the node build: `node_bin`, or this executable.
    pub fn of(node_bin: Option<&Path>) -> NodeBuild {
        match node_bin {
            Some(bin) => {
                let dir = bin.parent().filter(|d| !d.as_os_str().is_empty());
                let git_revision = dir.and_then(|d| {
                    let out = std::process::Command::new("git")
                        .arg("-C")
                        .arg(d)
                        .args(["rev-parse", "HEAD"])
                        .output()
                        .ok()?;
                    let rev = String::from_utf8(out.stdout).ok()?.trim().to_string();
                    (out.status.success() && !rev.is_empty()).then_some(rev)
                });
                NodeBuild {
                    program: bin.display().to_string(),
                    subcommand: "node".into(),
                    git_revision,
                    binary_fnv64: file_fnv64(bin),
                }
            }
            None => {
                let exe = std::env::current_exe().ok();
                let rev = env!("LOADGEN_GIT_REVISION");
                NodeBuild {
                    program: exe
                        .as_ref()
                        .map(|e| e.display().to_string())
                        .unwrap_or_default(),
                    subcommand: crate::cluster::NODE_SUBCOMMAND.into(),
                    git_revision: (!rev.is_empty()).then(|| rev.to_string()),
                    binary_fnv64: exe.as_deref().and_then(file_fnv64),
                }
            }
        }
    }
}

/// FNV-1a 64 of `bytes`.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn file_fnv64(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| format!("{:016x}", fnv64(&b)))
}

/// Tool versions recorded in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Tools {
    /// This crate.
    pub loadgen: &'static str,
    /// The `store` crate it was built with.
    pub store: &'static str,
    /// rustc that built the binary.
    pub rustc: &'static str,
    /// HdrHistogram crate (log format V2 + DEFLATE).
    pub hdrhistogram: &'static str,
    /// Charting crate.
    pub plotters: &'static str,
}

impl Tools {
    /// The versions this binary was built with.
    pub fn current() -> Tools {
        Tools {
            loadgen: env!("CARGO_PKG_VERSION"),
            store: env!("CARGO_PKG_VERSION"),
            rustc: env!("LOADGEN_RUSTC_VERSION"),
            hdrhistogram: "7.6",
            plotters: "0.3.7",
        }
    }
}

/// The commit of the current directory's git checkout, if git and a checkout are there.
pub fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!rev.is_empty()).then_some(rev)
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ReportError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| io_err(path, e))?;
    std::fs::write(path, text + "\n").map_err(|e| io_err(path, e))
}

/// Reads `summary.json` from a results folder.
pub fn read_summary(dir: &Path) -> Result<Summary, ReportError> {
    let path = if dir.is_file() {
        dir.to_path_buf()
    } else {
        dir.join("summary.json")
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        io_err(
            &path,
            format!("{e}; is this a results folder (it holds summary.json)?"),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| io_err(&path, format!("not a loadgen summary: {e}")))
}

/// Writes `points.csv`, `report.md` and `charts/` from the summary and interval logs in `dir`.
/// Returns the chart files written.
pub fn render(dir: &Path, summary: &Summary) -> Result<Vec<PathBuf>, ReportError> {
    csv::write(&dir.join("points.csv"), summary)?;
    let charts = charts::draw_all(dir, summary)?;
    markdown::write(&dir.join("report.md"), dir, summary, &charts)?;
    Ok(charts)
}

pub use crate::workload::units::{utc_compact, utc_iso8601};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_formatting_matches_known_instants() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(utc_iso8601(t), "2023-11-14T22:13:20Z");
        assert_eq!(utc_compact(UNIX_EPOCH), "19700101T000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_iso8601(leap), "2000-02-29T00:00:00Z");
    }
}
