//! `loadgen merge DIR... --out DIR`: the results folders of `loadgen run --shard 1/k` …
//! `k/k` put back together into one folder, as if one loadgen had driven the whole load.
//!
//! It fails closed, like `compare`: the folders must be every shard of one workload exactly
//! once, with the same points and runs. Then, per point and run, the shards' interval logs are
//! added interval by interval (`figures`), percentiles are recomputed from the added
//! histograms, counts and throughputs are summed, and each loadgen's own costs stay per shard.
//! The merged folder has the whole workload in `manifest.json`, so `compare`, `plot` and
//! `history` read it like any results folder (and compare it with a one-host run).

mod figures;

use std::path::{Path, PathBuf};

use crate::compare::{comparable_workload, json_diff, read_manifest, workload_hash};
use crate::report::shards::{Merged, MergedShard};
use crate::report::summary::{PointSummary, RunSummary, aggregate};
use crate::report::{Summary, read_summary, write_json};
use crate::workload::Shard;

/// The shards' measured windows starting further apart than this is worth a warning: their
/// loads overlapped only partly.
pub const WINDOW_SKEW_WARNING_S: f64 = 1.0;

/// Why a merge failed.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The folders are not one full set of shards of one workload, or one cannot be read
    /// (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The merged folder could not be written (exit code 1).
    #[error("{0}")]
    Write(String),
}

/// A finished merge.
#[derive(Debug)]
pub struct MergeReport {
    /// How many shards were merged.
    pub shards: u32,
    /// Chart PNGs, relative to the merged folder.
    pub charts: Vec<PathBuf>,
    /// What the reader should know (windows that did not line up, no `--start-at`).
    pub warnings: Vec<String>,
}

/// One shard's results folder.
struct ShardFolder {
    dir: PathBuf,
    manifest: serde_json::Value,
    summary: Summary,
    shard: Shard,
}

fn usage(message: String) -> MergeError {
    MergeError::Usage(message)
}

fn read_folder(dir: &Path) -> Result<ShardFolder, MergeError> {
    let summary = read_summary(dir).map_err(|e| usage(e.to_string()))?;
    let manifest = read_manifest(dir).map_err(|e| usage(e.to_string()))?;
    let shard = summary.shard.ok_or_else(|| {
        usage(format!(
            "{}: not a shard's results (summary.json has no `shard`); merge takes the folders \
             of `loadgen run FILE --shard i/k`",
            dir.display()
        ))
    })?;
    // summary.json may be hand-edited: a shard outside 1..=k or k beyond the bound would
    // size the merge by it.
    if !(1..=crate::workload::shard::MAX_SHARDS).contains(&shard.count)
        || !(1..=shard.count).contains(&shard.index)
    {
        return Err(usage(format!(
            "{}: summary.json names shard {}/{}; a shard is i/k with 1 <= i <= k <= {}",
            dir.display(),
            shard.index,
            shard.count,
            crate::workload::shard::MAX_SHARDS
        )));
    }
    Ok(ShardFolder {
        dir: dir.to_path_buf(),
        manifest,
        summary,
        shard,
    })
}

/// Checks that `folders` are every shard of one workload exactly once, run alike; returns
/// them in shard order.
fn full_set(folders: Vec<ShardFolder>) -> Result<Vec<ShardFolder>, MergeError> {
    let first = folders
        .first()
        .ok_or_else(|| usage("give the results folders of every shard".into()))?;
    let k = first.shard.count;
    let show = |f: &ShardFolder| format!("{} (shard {})", f.dir.display(), f.shard);
    for f in folders.iter().skip(1) {
        if f.shard.count != k {
            return Err(usage(format!(
                "{} and {} split the load differently; merge the shards of one run",
                show(first),
                show(f)
            )));
        }
        if workload_hash(&f.manifest) != workload_hash(&first.manifest) {
            let mut diffs = Vec::new();
            json_diff(
                &comparable_workload(&first.manifest),
                &comparable_workload(&f.manifest),
                "workload",
                &mut diffs,
            );
            return Err(usage(format!(
                "{} and {} ran different workloads ({}); merge the shards of one run",
                show(first),
                show(f),
                diffs.join("; ")
            )));
        }
        for (what, a, b) in [
            (
                "--start-at",
                serde_json::to_value(&first.summary.start_at).unwrap_or_default(),
                serde_json::to_value(&f.summary.start_at).unwrap_or_default(),
            ),
            (
                "repeat",
                first.manifest.get("repeat").cloned().unwrap_or_default(),
                f.manifest.get("repeat").cloned().unwrap_or_default(),
            ),
        ] {
            if a != b {
                return Err(usage(format!(
                    "{} and {} differ in {what} ({a} vs {b}): they did not run together",
                    show(first),
                    show(f)
                )));
            }
        }
    }
    let mut slots: Vec<Option<ShardFolder>> = (0..k).map(|_| None).collect();
    for f in folders {
        let slot = f
            .shard
            .index
            .checked_sub(1)
            .and_then(|i| slots.get_mut(i as usize));
        match slot {
            Some(Some(seen)) => {
                return Err(usage(format!(
                    "shard {} appears twice: {} and {}; pass each shard's folder once",
                    f.shard,
                    seen.dir.display(),
                    f.dir.display()
                )));
            }
            Some(slot) => *slot = Some(f),
            None => return Err(usage(format!("{}: shard out of range", show(&f)))),
        }
    }
    let missing: Vec<String> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{}/{k}", i + 1))
        .collect();
    if !missing.is_empty() {
        return Err(usage(format!(
            "shard {} missing: pass the results folder of every `--shard i/{k}` run",
            missing.join(", ")
        )));
    }
    Ok(slots.into_iter().flatten().collect())
}

/// A point's runs (a one-run point of an old folder is its own run).
fn runs_of(p: &PointSummary) -> Vec<RunSummary> {
    if p.runs.is_empty() {
        vec![RunSummary::of(1, p)]
    } else {
        p.runs.clone()
    }
}

/// Checks that every shard finished the same points, with the same operations and runs.
fn check_points(set: &[ShardFolder]) -> Result<(), MergeError> {
    for f in set {
        let planned = f
            .manifest
            .get("points")
            .and_then(|p| p.as_array())
            .map_or(f.summary.points.len(), Vec::len);
        if f.summary.points.len() < planned {
            return Err(usage(format!(
                "shard {} ({}) finished {} of {planned} points: was its run interrupted? merge \
                 complete runs",
                f.shard,
                f.dir.display(),
                f.summary.points.len()
            )));
        }
    }
    let Some(first) = set.first() else {
        return Ok(());
    };
    for f in set.iter().skip(1) {
        if f.summary.points.len() != first.summary.points.len() {
            return Err(usage(format!(
                "shard {} has {} points and shard {} has {}",
                first.shard,
                first.summary.points.len(),
                f.shard,
                f.summary.points.len()
            )));
        }
        for (a, b) in first.summary.points.iter().zip(&f.summary.points) {
            let same = a.index == b.index
                && a.params == b.params
                && a.ops.keys().eq(b.ops.keys())
                && runs_of(a).len() == runs_of(b).len();
            if !same {
                return Err(usage(format!(
                    "point {} of shard {} ({}) and of shard {} ({}) differ in parameters, \
                     operations or runs",
                    a.id, first.shard, a.label, f.shard, b.label
                )));
            }
        }
    }
    Ok(())
}

fn prepare_out(out: &Path) -> Result<(), MergeError> {
    if out.join("summary.json").exists() || out.join("manifest.json").exists() {
        return Err(usage(format!(
            "{} already holds results; pass a new --out folder",
            out.display()
        )));
    }
    std::fs::create_dir_all(out.join("hdr")).map_err(|e| {
        MergeError::Write(format!(
            "cannot create results folder {}: {e}",
            out.display()
        ))
    })
}

/// Merges the shards' results folders `dirs` into `out` (which must not hold results yet) and
/// draws its report and charts. `command` is recorded in the merged manifest.
pub fn merge(dirs: &[PathBuf], out: &Path, command: &[String]) -> Result<MergeReport, MergeError> {
    let folders = dirs
        .iter()
        .map(|d| read_folder(d))
        .collect::<Result<Vec<_>, _>>()?;
    let set = full_set(folders)?;
    check_points(&set)?;
    let first = set
        .first()
        .ok_or_else(|| usage("give the results folders of every shard".into()))?;
    prepare_out(out)?;
    let mut points = Vec::with_capacity(first.summary.points.len());
    let mut max_skew: Option<f64> = None;
    for (i, p0) in first.summary.points.iter().enumerate() {
        let shard_points: Vec<(&ShardFolder, &PointSummary)> = set
            .iter()
            .filter_map(|f| f.summary.points.get(i).map(|p| (f, p)))
            .collect();
        let shard_runs: Vec<Vec<RunSummary>> =
            shard_points.iter().map(|(_, p)| runs_of(p)).collect();
        let mut merged_runs = Vec::new();
        for r in 0..runs_of(p0).len() {
            let parts: Vec<figures::ShardRun<'_>> = shard_points
                .iter()
                .zip(&shard_runs)
                .filter_map(|((f, p), runs)| {
                    Some(figures::ShardRun {
                        shard: f.shard.index,
                        dir: &f.dir,
                        point: p,
                        run: runs.get(r)?.clone(),
                    })
                })
                .collect();
            let starts: Vec<f64> = parts
                .iter()
                .filter_map(|p| p.run.window_start_unix_s)
                .collect();
            if starts.len() >= 2 {
                let lo = starts.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = starts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let skew = ((hi - lo) * 1000.0).round() / 1000.0;
                max_skew = Some(max_skew.map_or(skew, |m: f64| m.max(skew)));
            }
            merged_runs.push(figures::merge_run(out, &parts)?);
        }
        let mut merged =
            aggregate(merged_runs).ok_or_else(|| usage(format!("point {} has no runs", p0.id)))?;
        merged.shards = shard_points
            .iter()
            .map(|(f, p)| figures::shard_part(f.shard.index, p))
            .collect();
        points.push(merged);
    }
    let info = Merged {
        shard_count: first.shard.count,
        shards: set
            .iter()
            .map(|f| MergedShard {
                shard: f.shard.index,
                folder: f.dir.display().to_string(),
                host: f
                    .manifest
                    .pointer("/machine/hostname")
                    .and_then(|h| h.as_str())
                    .unwrap_or_default()
                    .to_string(),
                started: f.summary.started.clone(),
            })
            .collect(),
        max_window_skew_s: max_skew,
    };
    let summary = Summary {
        schema_version: first.summary.schema_version,
        name: first.summary.name.clone(),
        target: first.summary.target.clone(),
        started: set
            .iter()
            .map(|f| f.summary.started.clone())
            .min()
            .unwrap_or_default(),
        points,
        shard: None,
        start_at: first.summary.start_at.clone(),
        merged: Some(info.clone()),
        search: None,
    };
    // The first shard's manifest with the whole workload: what compare and history read.
    let mut manifest = first.manifest.clone();
    if let Some(m) = manifest.as_object_mut() {
        m.remove("shard");
        m.insert("command".into(), serde_json::json!(command));
        m.insert("started".into(), serde_json::json!(summary.started));
        m.insert(
            "merged".into(),
            serde_json::to_value(&info).unwrap_or_default(),
        );
    }
    let write = |e: crate::report::ReportError| MergeError::Write(e.to_string());
    write_json(&out.join("manifest.json"), &manifest).map_err(write)?;
    write_json(&out.join("summary.json"), &summary).map_err(write)?;
    let charts = crate::report::render(out, &summary).map_err(write)?;
    let mut warnings = Vec::new();
    if first.shard.count > 1 && first.summary.start_at.is_none() {
        warnings.push(
            "the shards ran without --start-at, so their loads need not have overlapped; give \
             every host the same --start-at"
                .to_string(),
        );
    }
    if let Some(skew) = max_skew.filter(|s| *s > WINDOW_SKEW_WARNING_S) {
        warnings.push(format!(
            "the shards' measured windows began up to {skew:.1} s apart, so their loads \
             overlapped only partly (summary.json merged.max_window_skew_s); use a later \
             --start-at, or check the hosts' clocks"
        ));
    }
    Ok(MergeReport {
        shards: first.shard.count,
        charts,
        warnings,
    })
}
