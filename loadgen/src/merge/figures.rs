//! One point's figures across shards. Latencies come from the shards' interval logs, added
//! histogram by histogram, so every percentile is recomputed from all the requests: averaging
//! the shards' percentiles would understate the tail whenever one host saw it and the others
//! did not. Counts and rates add up; what each loadgen measured of itself stays per shard.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::MergeError;
use crate::generator::OpKind;
use crate::record::{LoggedInterval, OverTimeAcc, new_hist, read_log, write_log};
use crate::report::shards::ShardPart;
use crate::report::summary::{
    Latency, OpSummary, PointSummary, Preload, RunSummary, ScheduleCheck, SelfCheck, set_over_time,
};
use crate::resources::{ProcessStats, Resources};

/// One shard's run of a point, and where its folder is.
pub(super) struct ShardRun<'a> {
    /// The shard number.
    pub shard: u32,
    /// Its results folder.
    pub dir: &'a Path,
    /// The point as the shard summarised it.
    pub point: &'a PointSummary,
    /// The run's own figures.
    pub run: RunSummary,
}

fn round_to(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn usage(message: String) -> MergeError {
    MergeError::Usage(message)
}

/// One interval of the merged log: the shards' `n`-th intervals added.
struct Slot {
    start_s: f64,
    end_s: f64,
    response: Histogram<u64>,
    service: Histogram<u64>,
    failed: Histogram<u64>,
}

impl Slot {
    fn new() -> Result<Slot, MergeError> {
        let hist = || new_hist().map_err(|e| MergeError::Write(e.to_string()));
        Ok(Slot {
            start_s: f64::INFINITY,
            end_s: 0.0,
            response: hist()?,
            service: hist()?,
            failed: hist()?,
        })
    }
}

/// Shards whose measured windows began further apart than this are refused: their loads did
/// not overlap, and a window start edited by hand must not make `merge` allocate a slot per
/// second of the gap.
const MAX_WINDOW_SKEW_S: f64 = 600.0;

/// Adds a shard's intervals into `slots`, each into the slot of the wall-clock second it began
/// in. `shift` is how much later than the earliest shard this one's window began (its times
/// are moved by it).
fn add_intervals(
    slots: &mut Vec<Slot>,
    intervals: &[LoggedInterval],
    shift: f64,
    path: &Path,
) -> Result<(), MergeError> {
    if !(0.0..=MAX_WINDOW_SKEW_S).contains(&shift) {
        return Err(usage(format!(
            "{}: this shard's window began {shift:.1} s after the earliest shard's; windows at \
             most {MAX_WINDOW_SKEW_S} s apart can be merged",
            path.display()
        )));
    }
    let mut current = None;
    let mut opened = 0usize;
    for i in intervals {
        // A response-time interval opens a second of the merged timeline: the wall-clock
        // second it began in, counted from the earliest shard's window (`shift` is how much
        // later this shard's began), so shards whose windows began apart still add up second
        // by second. Its service and failed histograms follow it in the log.
        let at = match current {
            Some(c) if i.service || i.failed => c,
            _ => {
                // The n-th second of a log begins about n s into its window; far later
                // means a damaged or edited log.
                let second = (shift + i.start_s).round();
                let latest = shift.ceil() + 2.0 * opened as f64 + 60.0;
                if !(0.0..=latest).contains(&second) {
                    return Err(usage(format!(
                        "{}: interval {} begins {:.1} s into its window, later than its place \
                         in the log allows; the log is damaged or was edited",
                        path.display(),
                        opened + 1,
                        i.start_s
                    )));
                }
                opened += 1;
                second as usize
            }
        };
        current = Some(at);
        while slots.len() <= at {
            slots.push(Slot::new()?);
        }
        let Some(slot) = slots.get_mut(at) else {
            continue;
        };
        let start = shift + i.start_s;
        slot.start_s = slot.start_s.min(start);
        slot.end_s = slot.end_s.max(start + i.length_s);
        let into = if i.service {
            &mut slot.service
        } else if i.failed {
            &mut slot.failed
        } else {
            &mut slot.response
        };
        into.add(&i.hist).map_err(|e| {
            usage(format!(
                "{}: a histogram holds values outside the loadgen's range ({e:?})",
                path.display()
            ))
        })?;
    }
    Ok(())
}

/// Merges one operation of one run: reads every shard's log, writes the added intervals to
/// `out/<rel>` (the first shard's log name) and returns the operation's figures.
fn merge_op(
    out: &Path,
    op: &str,
    rel: &str,
    parts: &[ShardRun<'_>],
    base_unix: Option<f64>,
) -> Result<OpSummary, MergeError> {
    let kind = OpKind::from_name(op).ok_or_else(|| {
        usage(format!(
            "unknown operation `{op}` in a shard's summary.json"
        ))
    })?;
    let mut slots: Vec<Slot> = Vec::new();
    let mut total = OpSummary {
        count: 0,
        errors: 0,
        errors_indeterminate: 0,
        errors_conflict: 0,
        found_nothing: 0,
        throughput_ops_s: 0.0,
        response: Latency::default(),
        service: Latency::default(),
        failed: None,
        worst_second_p99_us: None,
        p99_per_minute_us: Vec::new(),
    };
    for p in parts {
        let missing = || {
            usage(format!(
                "shard {} ({}) has no {op} figures for point {}",
                p.shard,
                p.dir.display(),
                p.point.id
            ))
        };
        let path = p.dir.join(inside(p.run.logs.get(op).ok_or_else(missing)?)?);
        let intervals = read_log(&path).map_err(|e| usage(e.to_string()))?;
        let shift = match (base_unix, p.run.window_start_unix_s) {
            (Some(base), Some(start)) => (start - base).max(0.0),
            _ => 0.0,
        };
        add_intervals(&mut slots, &intervals, shift, &path)?;
        let o = p.run.ops.get(op).ok_or_else(missing)?;
        total.count = total.count.saturating_add(o.count);
        total.errors = total.errors.saturating_add(o.errors);
        total.errors_indeterminate = total
            .errors_indeterminate
            .saturating_add(o.errors_indeterminate);
        total.errors_conflict = total.errors_conflict.saturating_add(o.errors_conflict);
        total.found_nothing = total.found_nothing.saturating_add(o.found_nothing);
        total.throughput_ops_s += o.throughput_ops_s;
    }
    total.throughput_ops_s = round_to(total.throughput_ops_s, 1);
    let mut totals = Slot::new()?;
    let mut over_time = OverTimeAcc::new().map_err(|e| MergeError::Write(e.to_string()))?;
    let mut window_s: f64 = 0.0;
    let mut logged = Vec::with_capacity(slots.len() * 3);
    for s in slots {
        let start_s = if s.start_s.is_finite() {
            s.start_s
        } else {
            0.0
        };
        let length_s = (s.end_s - start_s).max(0.0);
        window_s = window_s.max(start_s + length_s);
        over_time.add(
            &s.response,
            Duration::try_from_secs_f64(start_s).unwrap_or_default(),
            Duration::try_from_secs_f64(length_s).unwrap_or_default(),
        );
        // Same bounds everywhere, so the sums cannot fail.
        let _ = totals.response.add(&s.response);
        let _ = totals.service.add(&s.service);
        let _ = totals.failed.add(&s.failed);
        let interval = |hist, service, failed| LoggedInterval {
            start_s,
            length_s,
            service,
            failed,
            hist,
        };
        logged.push(interval(s.response, false, false));
        logged.push(interval(s.service, true, false));
        if !s.failed.is_empty() {
            logged.push(interval(s.failed, false, true));
        }
    }
    // Without window times (older folders) the log's start is unknown: the epoch says so.
    let start = base_unix
        .and_then(|b| Duration::try_from_secs_f64(b).ok())
        .and_then(|d| UNIX_EPOCH.checked_add(d))
        .unwrap_or(UNIX_EPOCH);
    write_log(&out.join(inside(rel)?), kind, start, &logged)
        .map_err(|e| MergeError::Write(e.to_string()))?;
    total.response = Latency::of(&totals.response);
    total.service = Latency::of(&totals.service);
    total.failed = (!totals.failed.is_empty()).then(|| Latency::of(&totals.failed));
    set_over_time(&mut total, &over_time.finish(), window_s);
    Ok(total)
}

/// The schedule keeping of all shards: tick counts add up. The lag percentiles are each
/// shard's own (their histograms are not kept), so the merged figure is the worst shard's,
/// never an average.
fn merge_schedule(parts: &[ShardRun<'_>]) -> ScheduleCheck {
    let mut s = ScheduleCheck::default();
    for p in parts {
        let r = &p.run.schedule;
        s.ticks_due = s.ticks_due.saturating_add(r.ticks_due);
        s.late_ticks = s.late_ticks.saturating_add(r.late_ticks);
        s.missed_ticks = s.missed_ticks.saturating_add(r.missed_ticks);
        s.lag_p50_us = s.lag_p50_us.max(r.lag_p50_us);
        s.lag_p99_us = s.lag_p99_us.max(r.lag_p99_us);
        s.lag_max_us = s.lag_max_us.max(r.lag_max_us);
        s.wake_lag_p99_us = s.wake_lag_p99_us.max(r.wake_lag_p99_us);
        s.wake_lag_max_us = s.wake_lag_max_us.max(r.wake_lag_max_us);
    }
    s
}

/// Per-operation counters over every shard's operations. Each loadgen's own CPU and context
/// switches add up. The nodes' counters are shared: every shard read the same cluster's
/// counters over (about) the same window, so each reading is the cluster's total for all
/// shards' operations; their mean is spread over the operations of every shard. `None`
/// unless every shard has counters.
fn merge_resources(parts: &[ShardRun<'_>]) -> Option<Resources> {
    let rs: Vec<&Resources> = parts
        .iter()
        .map(|p| p.run.resources.as_ref())
        .collect::<Option<_>>()?;
    let ops: u64 = rs.iter().map(|r| r.ops).sum();
    let all = (ops as f64).max(1.0);
    let shards = rs.len().max(1) as f64;
    let own = |f: fn(&Resources) -> f64| {
        round_to(rs.iter().map(|r| f(r) * r.ops as f64).sum::<f64>() / all, 3)
    };
    let shared = |f: fn(&Resources) -> Option<f64>| {
        let mut sum = 0.0;
        for r in &rs {
            sum += f(r)? * r.ops as f64;
        }
        Some(round_to(sum / shards / all, 3))
    };
    let mean = |f: fn(&Resources) -> Option<f64>| {
        let xs: Option<Vec<f64>> = rs.iter().map(|r| f(r)).collect();
        xs.map(|xs| xs.iter().sum::<f64>() / shards)
    };
    Some(Resources {
        ops,
        window_s: rs.iter().map(|r| r.window_s).fold(0.0, f64::max),
        node_cpu_us_per_op: shared(|r| r.node_cpu_us_per_op),
        node_voluntary_ctx_per_op: shared(|r| r.node_voluntary_ctx_per_op),
        node_involuntary_ctx_per_op: shared(|r| r.node_involuntary_ctx_per_op),
        node_read_bytes_per_op: shared(|r| r.node_read_bytes_per_op),
        node_write_bytes_per_op: shared(|r| r.node_write_bytes_per_op),
        node_syscall_read_bytes_per_op: shared(|r| r.node_syscall_read_bytes_per_op),
        node_syscall_write_bytes_per_op: shared(|r| r.node_syscall_write_bytes_per_op),
        fsyncs_per_op: shared(|r| r.fsyncs_per_op),
        engine_bytes_per_op: shared(|r| r.engine_bytes_per_op),
        // A total of the one cluster, read by every shard.
        write_stall_ms: mean(|r| r.write_stall_ms),
        // Counted only for local clusters' nodes, which shards never start.
        node_instructions_per_op: None,
        disk_bytes: mean(|r| r.disk_bytes.map(|b| b as f64)).map(|b| b.round() as u64),
        disk_bytes_per_key: mean(|r| r.disk_bytes_per_key),
        disk_bytes_per_key_replica: mean(|r| r.disk_bytes_per_key_replica),
        loadgen_cpu_us_per_op: own(|r| r.loadgen_cpu_us_per_op),
        loadgen_ctx_per_op: own(|r| r.loadgen_ctx_per_op),
        // Each shard's own machine: the busiest one's.
        other_cpu_pct: most(&rs, |r| r.other_cpu_pct),
        steal_pct: most(&rs, |r| r.steal_pct),
    })
}

/// The largest of a figure that each shard's machine reports alone; `None` if none did.
fn most(rs: &[&Resources], f: fn(&Resources) -> Option<f64>) -> Option<f64> {
    rs.iter().filter_map(|r| f(r)).reduce(f64::max)
}

/// The loadgens' cost: the busiest process's CPU percent (each loadgen is one process on its
/// own host), the CPU per operation over all of them, and every shard's reasons for being
/// client-bound.
fn merge_self_check(parts: &[ShardRun<'_>], resources: Option<&Resources>) -> SelfCheck {
    let ops = |p: &ShardRun<'_>| p.run.ops.values().map(|o| o.count).sum::<u64>() as f64;
    let all: f64 = parts.iter().map(ops).sum();
    let cpu_us_per_op = match resources {
        Some(r) => r.loadgen_cpu_us_per_op,
        None => round_to(
            parts
                .iter()
                .map(|p| p.run.self_check.cpu_us_per_op * ops(p))
                .sum::<f64>()
                / all.max(1.0),
            3,
        ),
    };
    SelfCheck {
        loadgen_cpu_pct: parts
            .iter()
            .map(|p| p.run.self_check.loadgen_cpu_pct)
            .fold(0.0, f64::max),
        cpu_us_per_op,
        reasons: per_shard(parts, |s| &s.reasons),
        shared_machine: per_shard(parts, |s| &s.shared_machine),
    }
}

/// One list of every shard's self-check, each line prefixed with its shard.
fn per_shard(parts: &[ShardRun<'_>], list: fn(&SelfCheck) -> &[String]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| {
            list(&p.run.self_check)
                .iter()
                .map(move |line| format!("shard {}: {line}", p.shard))
        })
        .collect()
}

/// A log path from a shard's summary.json, which may be hand-edited: only a relative path
/// of plain names (`hdr/p00-read.hlog`) may be read from a shard's folder or written under
/// `--out`.
fn inside(rel: &str) -> Result<&Path, MergeError> {
    let path = Path::new(rel);
    if rel.is_empty()
        || !path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return Err(usage(format!(
            "a shard's summary.json names the log `{rel}`, which is not a path inside its \
             results folder"
        )));
    }
    Ok(path)
}

/// Merges one run of a point over its shards into a one-run point summary (for
/// [`crate::report::summary::aggregate`]), writing the merged interval logs under `out`.
pub(super) fn merge_run(out: &Path, parts: &[ShardRun<'_>]) -> Result<PointSummary, MergeError> {
    let first = parts
        .first()
        .ok_or_else(|| usage("no shard to merge".into()))?;
    let base_unix = parts
        .iter()
        .filter_map(|p| p.run.window_start_unix_s)
        .reduce(f64::min);
    let mut ops = BTreeMap::new();
    for op in first.run.ops.keys() {
        let rel = first.run.logs.get(op).ok_or_else(|| {
            usage(format!(
                "shard {} ({}) has no interval log for {op} of point {}",
                first.shard,
                first.dir.display(),
                first.point.id
            ))
        })?;
        ops.insert(op.clone(), merge_op(out, op, rel, parts, base_unix)?);
    }
    let resources = merge_resources(parts);
    let consistency = first.point.consistency.clone().map(|mut c| {
        let each: Vec<&crate::consistency::Measured> = parts
            .iter()
            .filter_map(|p| p.run.consistency.as_ref())
            .collect();
        if let Some(m) = crate::consistency::Measured::combine(&each) {
            c.measured = m;
        }
        c
    });
    let offered: Option<Vec<f64>> = parts.iter().map(|p| p.point.offered_rate).collect();
    let processes: Vec<ProcessStats> = parts
        .iter()
        .flat_map(|p| {
            p.run.processes.iter().map(|x| ProcessStats {
                shard: Some(p.shard),
                ..x.clone()
            })
        })
        .collect();
    let mut preload = Preload::default();
    for p in parts {
        preload.keys = preload.keys.saturating_add(p.point.preload.keys);
        preload.failed = preload.failed.saturating_add(p.point.preload.failed);
        preload.seconds = preload.seconds.max(p.point.preload.seconds);
    }
    Ok(PointSummary {
        ops,
        offered_rate: offered.map(|o| round_to(o.iter().sum(), 3)),
        achieved_rate: round_to(parts.iter().map(|p| p.run.achieved_rate).sum(), 1),
        client_bound: parts.iter().any(|p| p.run.client_bound),
        duration_s: parts.iter().map(|p| p.run.duration_s).fold(0.0, f64::max),
        warmup_ops: parts.iter().map(|p| p.point.warmup_ops).sum(),
        preload,
        schedule: merge_schedule(parts),
        self_check: merge_self_check(parts, resources.as_ref()),
        processes,
        first_error: parts.iter().find_map(|p| {
            p.run
                .first_error
                .as_ref()
                .map(|e| format!("shard {}: {e}", p.shard))
        }),
        logs: first.run.logs.clone(),
        events: Vec::new(),
        resources,
        intervals: BTreeMap::new(),
        consistency,
        audit: None,
        autoscale: None,
        runs: Vec::new(),
        window_start_unix_s: base_unix,
        shards: Vec::new(),
        ..first.point.clone()
    })
}

/// A shard's own figures for a point (medians over its runs), kept in the merged point.
pub(super) fn shard_part(shard: u32, p: &PointSummary) -> ShardPart {
    ShardPart {
        shard,
        offered_rate: p.offered_rate,
        achieved_rate: p.achieved_rate,
        client_bound: p.client_bound,
        schedule: p.schedule.clone(),
        self_check: p.self_check.clone(),
        resources: p.resources.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = new_hist().unwrap();
        for v in values {
            h.record(*v).unwrap();
        }
        h
    }

    fn interval(start_s: f64, service: bool, values: &[u64]) -> LoggedInterval {
        LoggedInterval {
            start_s,
            length_s: 1.0,
            service,
            failed: false,
            hist: hist(values),
        }
    }

    #[test]
    fn the_nth_seconds_of_the_shards_add_up() {
        let mut slots = Vec::new();
        let a = [
            interval(0.0, false, &[1, 2]),
            interval(0.0, true, &[1]),
            interval(1.0, false, &[3]),
            interval(1.0, true, &[3]),
        ];
        let b = [
            interval(0.0, false, &[10]),
            interval(0.0, true, &[10]),
            interval(1.0, false, &[20, 30, 40]),
            interval(1.0, true, &[20]),
        ];
        add_intervals(&mut slots, &a, 0.0, Path::new("a")).unwrap();
        add_intervals(&mut slots, &b, 0.25, Path::new("b")).unwrap();
        assert_eq!(slots.len(), 2);
        let s = &slots[1];
        assert_eq!((s.response.len(), s.service.len()), (4, 2));
        assert_eq!(s.response.max(), 40);
        assert_eq!((s.start_s, s.end_s), (1.0, 2.25));
    }

    #[test]
    fn intervals_are_added_by_wall_clock_second_not_by_count() {
        let mut slots = Vec::new();
        let one = |start: f64, v: u64| [interval(start, false, &[v]), interval(start, true, &[v])];
        let a: Vec<LoggedInterval> = [one(0.0, 1), one(1.0, 2), one(2.0, 3)].concat();
        let b: Vec<LoggedInterval> = [one(0.0, 10), one(1.0, 20)].concat();
        add_intervals(&mut slots, &a, 0.0, Path::new("a")).unwrap();
        // Shard b's window began 2 s after a's: its first second is a's third.
        add_intervals(&mut slots, &b, 2.0, Path::new("b")).unwrap();
        assert_eq!(slots.len(), 4);
        let maxes: Vec<u64> = slots.iter().map(|s| s.response.max()).collect();
        assert_eq!(maxes, [1, 2, 10, 20]);
        assert_eq!(slots[2].response.len(), 2, "a's third second and b's first");
        assert_eq!((slots[3].start_s, slots[3].end_s), (3.0, 4.0));
        // Windows that began too far apart to have overlapped are refused, not allocated.
        let far = add_intervals(&mut Vec::new(), &b, 1e9, Path::new("b"));
        assert!(far.is_err());
        let edited = [one(0.0, 1), one(1e9, 2)].concat();
        assert!(add_intervals(&mut Vec::new(), &edited, 0.0, Path::new("e")).is_err());
    }

    #[test]
    fn node_counters_are_shared_and_loadgen_counters_add_up() {
        let point = PointSummary {
            index: 0,
            id: "p00".into(),
            label: String::new(),
            params: serde_json::from_value(serde_json::json!({
                "value_bytes": 100, "values": "100B", "replication": 1, "write_quorum": 1,
                "read_quorum": 1, "nodes": 1, "rate": 100.0
            }))
            .unwrap(),
            ops: BTreeMap::new(),
            offered_rate: Some(50.0),
            achieved_rate: 50.0,
            client_bound: false,
            duration_s: 10.0,
            warmup_ops: 0,
            preload: Preload::default(),
            schedule: ScheduleCheck::default(),
            self_check: SelfCheck::default(),
            processes: Vec::new(),
            first_error: None,
            logs: BTreeMap::new(),
            events: Vec::new(),
            response_time: String::new(),
            resources: None,
            intervals: BTreeMap::new(),
            consistency: None,
            audit: None,
            autoscale: None,
            runs: Vec::new(),
            window_start_unix_s: None,
            shards: Vec::new(),
        };
        // The cluster burnt 3,000 µs of CPU over the window for 300 operations in all; shard
        // 1 sent 100 of them (so read 30 µs/op), shard 2 sent 200 (15 µs/op).
        let run = |ops: u64, node: f64, loadgen: f64| {
            let mut r = RunSummary::of(1, &point);
            r.resources = Some(Resources {
                ops,
                window_s: 10.0,
                node_cpu_us_per_op: Some(node),
                loadgen_cpu_us_per_op: loadgen,
                ..Resources::default()
            });
            r
        };
        let parts = [
            ShardRun {
                shard: 1,
                dir: Path::new("a"),
                point: &point,
                run: run(100, 30.0, 4.0),
            },
            ShardRun {
                shard: 2,
                dir: Path::new("b"),
                point: &point,
                run: run(200, 15.0, 1.0),
            },
        ];
        let r = merge_resources(&parts).unwrap();
        assert_eq!(r.ops, 300);
        assert_eq!(r.node_cpu_us_per_op, Some(10.0));
        assert_eq!(r.loadgen_cpu_us_per_op, 2.0);
    }
}
