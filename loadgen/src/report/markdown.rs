//! `report.md`: the points table, the self-checks, and the charts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::summary::{PointSummary, SUSTAINED_SHARE};
use super::{ReportError, Summary, io_err};

fn ms(us: f64) -> String {
    if us >= 100_000.0 {
        format!("{:.0}", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.1}", us / 1000.0)
    } else {
        format!("{:.3}", us / 1000.0)
    }
}

/// The Markdown text of a report.
pub fn to_markdown(summary: &Summary, charts: &[PathBuf]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {} — loadgen report\n", summary.name);
    let _ = writeln!(
        s,
        "Target `{}`, started {}. `manifest.json` holds the workload, seed, git revision and \
         machine; `summary.json` and `points.csv` every figure below; `hdr/` one HdrHistogram \
         interval log per point and operation.\n",
        summary.target, summary.started
    );
    let _ = writeln!(
        s,
        "Response time is measured from the intended start of each request (open loop: \
         corrected for coordinated omission); service time from the actual send. Times in ms. \
         Warm-up is excluded.\n"
    );
    super::search::markdown_section(&mut s, summary);
    let _ = writeln!(s, "## Points\n");
    // A key count is a column only when it is swept; otherwise it is the workload's.
    let keys_swept = summary.points.iter().any(|p| p.params.keys.is_some());
    let mut head = vec!["point", "nodes", "N", "W", "R", "value"];
    if keys_swept {
        head.push("keys");
    }
    head.extend([
        "load",
        "op",
        "count",
        "errors",
        "ops/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "worst 1 s p99",
        "service p99",
        "offered",
        "achieved",
        "disk B/key (per copy)",
        "client bound",
    ]);
    let _ = writeln!(s, "| {} |", head.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
    for p in &summary.points {
        let disk = p
            .resources
            .as_ref()
            .and_then(|r| {
                let per_key = r.disk_bytes_per_key?;
                Some(match r.disk_bytes_per_key_replica {
                    Some(copy) => format!("{per_key:.1} ({copy:.1})"),
                    None => format!("{per_key:.1}"),
                })
            })
            .unwrap_or_else(|| "—".into());
        for (op, o) in &p.ops {
            let mut row = vec![
                p.id.clone(),
                p.params.nodes.to_string(),
                p.params.replication.to_string(),
                p.params.write_quorum.to_string(),
                p.params.read_quorum.to_string(),
                p.params.values.clone(),
            ];
            if keys_swept {
                row.push(p.params.keys.map_or("—".into(), |k| k.to_string()));
            }
            row.extend([
                p.params.load_text(),
                op.clone(),
                o.count.to_string(),
                o.errors.to_string(),
                format!("{:.0}", o.throughput_ops_s),
                ms(o.response.p50_us),
                ms(o.response.p90_us),
                ms(o.response.p99_us),
                ms(o.response.p999_us),
                ms(o.response.max_us),
                o.worst_second_p99_us.map_or("—".into(), ms),
                ms(o.service.p99_us),
                p.offered_rate
                    .map(|r| format!("{r:.0}"))
                    .unwrap_or_else(|| "—".into()),
                format!("{:.0}", p.achieved_rate),
                disk.clone(),
                if p.client_bound { "**yes**" } else { "no" }.into(),
            ]);
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
    }
    let _ = writeln!(s, "\n## Self-check\n");
    let _ = writeln!(
        s,
        "| point | loadgen CPU % | CPU µs/op | schedule lag p99 (ms) | wake lag p99 (ms) | late \
         ticks | missed ticks | node CPU % | node RSS max (MB) |"
    );
    let _ = writeln!(s, "|{}", "---|".repeat(9));
    for p in &summary.points {
        let nodes: Vec<_> = p.processes.iter().filter(|x| x.role == "node").collect();
        let cpu = nodes
            .iter()
            .map(|n| format!("{:.0}", n.cpu_pct))
            .collect::<Vec<_>>()
            .join(" / ");
        let rss = nodes
            .iter()
            .map(|n| format!("{:.0}", n.rss_max_bytes as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.3} | {} | {} | {} | {} | {} | {} |",
            p.id,
            p.self_check.loadgen_cpu_pct,
            p.self_check.cpu_us_per_op,
            ms(p.schedule.lag_p99_us),
            ms(p.schedule.wake_lag_p99_us),
            p.schedule.late_ticks,
            p.schedule.missed_ticks,
            if cpu.is_empty() { "—".into() } else { cpu },
            if rss.is_empty() { "—".into() } else { rss },
        );
    }
    if summary.points.iter().any(|p| p.resources.is_some()) {
        let _ = writeln!(
            s,
            "\n## Resources per operation\n\nRead from /proc and the nodes' Status at the edges \
             of the measured window (medians over runs), summed over nodes.\n\n| point | runs | \
             node CPU µs/op | loadgen CPU µs/op | node ctx switches/op (vol / invol) | node \
             disk write B/op | fsyncs/op | engine B/op |\n|---|---|---|---|---|---|---|---|"
        );
        let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
        for p in &summary.points {
            let Some(r) = &p.resources else { continue };
            let interval = |k: &str| {
                p.intervals
                    .get(&format!("resources.{k}"))
                    .map(|[a, b]| format!(" [{a:.1}–{b:.1}]"))
                    .unwrap_or_default()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {}{} | {:.2} | {} / {} | {} | {} | {} |",
                p.id,
                p.runs.len().max(1),
                f(r.node_cpu_us_per_op),
                interval("node_cpu_us_per_op"),
                r.loadgen_cpu_us_per_op,
                f(r.node_voluntary_ctx_per_op),
                f(r.node_involuntary_ctx_per_op),
                f(r.node_write_bytes_per_op),
                f(r.fsyncs_per_op),
                f(r.engine_bytes_per_op),
            );
        }
    }
    per_minute_section(&mut s, summary);
    instructions_section(&mut s, summary);
    consistency_section(&mut s, summary);
    audit_section(&mut s, summary);
    super::autoscale::markdown_section(&mut s, summary);
    super::shards::markdown_section(&mut s, summary);
    if summary.points.iter().any(|p| p.runs.len() > 1) {
        let _ = writeln!(
            s,
            "\n## Runs\n\nEvery point ran more than once, each on a fresh cluster; the tables \
             above show medians over runs. p99 response time (ms) of each run:\n"
        );
        for p in &summary.points {
            for op in p.ops.keys() {
                let each: Vec<String> = p
                    .runs
                    .iter()
                    .filter_map(|r| r.ops.get(op).map(|o| ms(o.response.p99_us)))
                    .collect();
                let _ = writeln!(s, "- {} {op}: {}", p.id, each.join(", "));
            }
        }
    }
    let flagged: Vec<(&PointSummary, &[String])> = summary
        .points
        .iter()
        .filter(|p| p.client_bound)
        .map(|p| (p, p.self_check.reasons.as_slice()))
        .collect();
    flagged_points(
        &mut s,
        "**Client-bound points** — the load generator, not the target, was the bottleneck; \
         their latencies are not the target's:",
        &flagged,
    );
    let shared: Vec<(&PointSummary, &[String])> = summary
        .points
        .iter()
        .filter(|p| !p.self_check.shared_machine.is_empty())
        .map(|p| (p, p.self_check.shared_machine.as_slice()))
        .collect();
    flagged_points(
        &mut s,
        "**Shared machine** — something besides this run used the CPUs during these points' \
         windows; their latency and CPU figures carry that noise:",
        &shared,
    );
    let short: Vec<_> = summary
        .points
        .iter()
        .filter(|p| {
            p.offered_rate
                .is_some_and(|o| p.achieved_rate < SUSTAINED_SHARE * o)
        })
        .collect();
    if !short.is_empty() {
        let _ = writeln!(
            s,
            "\n**Offered rate not sustained** (achieved < {:.0}% of offered):\n",
            SUSTAINED_SHARE * 100.0
        );
        for p in short {
            let _ = writeln!(
                s,
                "- {}: offered {:.0} ops/s, achieved {:.0} ops/s, {} ticks missed",
                p.id,
                p.offered_rate.unwrap_or(0.0),
                p.achieved_rate,
                p.schedule.missed_ticks
            );
        }
    }
    let errors: Vec<_> = summary
        .points
        .iter()
        .filter(|p| p.first_error.is_some())
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(s, "\n**Errors** (first message per point):\n");
        for p in errors {
            let unknown: u64 = p.ops.values().map(|o| o.errors_indeterminate).sum();
            let conflicts: u64 = p.ops.values().map(|o| o.errors_conflict).sum();
            let mut notes = Vec::new();
            if unknown > 0 {
                notes.push(format!(
                    "{unknown} of the failed writes have an unknown outcome: they may have been applied"
                ));
            }
            if conflicts > 0 {
                notes.push(format!(
                    "{conflicts} writes were refused because their key held too many concurrent versions (the sibling bound): nothing was applied, and a read-modify-write resolves the key"
                ));
            }
            let note = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            };
            let _ = writeln!(
                s,
                "- {}: {}{note}",
                p.id,
                p.first_error.as_deref().unwrap_or("")
            );
        }
    }
    empty_reads_note(&mut s, summary);
    if summary.points.iter().any(|p| !p.events.is_empty()) {
        let _ = writeln!(
            s,
            "\n## Cluster events\n\nTimes in seconds from the end of warm-up; the timeline \
             charts mark them.\n\n| point | action | node | due (s) | started (s) | took (s) | \
             outcome |\n|---|---|---|---|---|---|---|"
        );
        for p in &summary.points {
            for e in &p.events {
                let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
                let outcome = match &e.message {
                    Some(m) => format!("{}: {}", e.outcome, m.replace('|', "/").replace('\n', " ")),
                    None => e.outcome.clone(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.3} | {} | {} | {} |",
                    p.id,
                    e.action,
                    e.node.as_deref().unwrap_or("—"),
                    e.planned_s,
                    opt(e.started_s),
                    opt(e.took_s),
                    outcome
                );
            }
        }
    }
    let _ = writeln!(s, "\n## Charts\n");
    for c in charts {
        let rel = c.to_string_lossy().replace('\\', "/");
        let name = c
            .file_stem()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let _ = writeln!(s, "### {name}\n\n![{name}]({rel})\n");
    }
    s
}

/// Points whose reads found no value: a miss is cheaper to serve than a hit, so their read
/// figures flatter the system unless that is the point of the workload.
fn empty_reads_note(s: &mut String, summary: &Summary) {
    let mut lines = Vec::new();
    for p in &summary.points {
        let Some(read) = p.ops.get("read") else {
            continue;
        };
        if read.found_nothing == 0 || read.count == 0 {
            continue;
        }
        let pct = read.found_nothing as f64 * 100.0 / read.count as f64;
        lines.push(format!(
            "- {}: {} of {} reads ({pct:.1}%) found no value",
            p.id, read.found_nothing, read.count
        ));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n**Reads that found nothing** (cheaper to serve than a hit: with `preload: false`, \
         only the keys written so far exist):\n\n{}",
        lines.join("\n")
    );
}

/// Long windows: p99 minute by minute, and how long the engines held writers back.
fn per_minute_section(s: &mut String, summary: &Summary) {
    let long: Vec<&PointSummary> = summary
        .points
        .iter()
        .filter(|p| p.ops.values().any(|o| !o.p99_per_minute_us.is_empty()))
        .collect();
    if long.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Per minute\n\np99 response time (ms) of each minute of the measured window \
         (medians over runs); \"worst 1 s p99\" in the table above is the worst second's.\n"
    );
    for p in long {
        for (op, o) in &p.ops {
            if o.p99_per_minute_us.is_empty() {
                continue;
            }
            let each: Vec<String> = o
                .p99_per_minute_us
                .iter()
                .map(|m| m.map_or("—".into(), ms))
                .collect();
            let _ = writeln!(s, "- {} {op}: {}", p.id, each.join(", "));
        }
        if let Some(stall) = p.resources.as_ref().and_then(|r| r.write_stall_ms) {
            let _ = writeln!(
                s,
                "- {}: the nodes' engines held writers back for {stall:.1} ms in all (write \
                 slowdowns and stops, summed over nodes)",
                p.id
            );
        }
    }
}

/// Instructions per operation, when the nodes ran under callgrind (`--instructions`).
fn instructions_section(s: &mut String, summary: &Summary) {
    let counted: Vec<_> = summary
        .points
        .iter()
        .filter_map(|p| {
            let n = p.resources.as_ref()?.node_instructions_per_op?;
            Some((p, n))
        })
        .collect();
    if counted.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Instructions per operation\n\nThe nodes ran under callgrind (`--instructions`): \
         instructions they executed in the measured window per operation, summed over nodes \
         (medians over runs). Their CPU and latency figures above are the instrumented \
         processes'.\n\n| point | runs | node instructions/op |\n|---|---|---|"
    );
    for (p, n) in counted {
        let _ = writeln!(s, "| {} | {} | {n:.0} |", p.id, p.runs.len().max(1));
    }
}

/// Stale reads per point beside PBS's predictions.
fn consistency_section(s: &mut String, summary: &Summary) {
    if !summary.points.iter().any(|p| p.consistency.is_some()) {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Consistency\n\nEvery written value names its write; a read that started after a \
         write was acknowledged but returned neither it nor a write that superseded it is \
         stale. k: how many acknowledged writes a stale read missed (1, 2, 3, 4+). \
         t-visibility: for stale reads, the time since the oldest missed write's \
         acknowledgement. Predicted: the chance a read started at the moment of the \
         acknowledgement misses it (t = 0, no anti-entropy), for ringkv's replica choice under \
         the routing used, by PBS's WARS model fed with the replica round trips the nodes \
         measured in the run, and by PBS's closed form (uniform choice).\n\n| point | \
         routing | N | W | R | reads checked | stale | stale rate | k = 1/2/3/4+ | t-visibility \
         p50 / p99 / p99.9 (ms) | predicted t = 0 | WARS t = 0 | PBS closed form |\n|{}",
        "---|".repeat(13)
    );
    let rate = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.4}%", v * 100.0));
    let t = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
    for p in &summary.points {
        let Some(c) = &p.consistency else { continue };
        let m = &c.measured;
        let k: Vec<String> = m.k_staleness.iter().map(u64::to_string).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} | {} | {} |",
            p.id,
            c.routing,
            p.params.replication,
            p.params.write_quorum,
            p.params.read_quorum,
            m.reads_checked,
            m.stale_reads,
            rate(m.stale_rate),
            k.join("/"),
            t(m.t_visibility_p50_ms),
            t(m.t_visibility_p99_ms),
            t(m.t_visibility_p999_ms),
            rate(c.pbs_stale_rate_t0),
            rate(c.pbs_wars_stale_rate_t0),
            rate(c.pbs_closed_form_t0),
        );
    }
}

/// The lost-write audit per point.
fn audit_section(s: &mut String, summary: &Summary) {
    if !summary.points.iter().any(|p| p.audit.is_some()) {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Lost-write audit\n\nAfter the load, every key written was read back at R = N \
         and checked: an acknowledged write must be present or superseded by a write that saw \
         it. Last-writer-wins: acknowledged writes whose next write had not seen them, which a \
         last-writer-wins store would have dropped.\n\n| point | verdict | writes | acked \
         puts / deletes | present | superseded | lost | resurrected | keys checked / \
         unreadable | last-writer-wins would lose |\n|{}",
        "---|".repeat(10)
    );
    for p in &summary.points {
        let Some(a) = &p.audit else { continue };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} / {} | {} | {} | {} | {} | {} / {} | {} |",
            p.id,
            if a.passed() { "pass" } else { "**FAILED**" },
            a.writes,
            a.acked_puts,
            a.acked_deletes,
            a.present,
            a.superseded,
            a.lost_writes,
            a.resurrected,
            a.keys_checked,
            a.keys_unreadable,
            a.lww_would_lose,
        );
        for v in &a.violations {
            let _ = writeln!(s, "\n- {}: {}", p.id, v.replace('|', "/"));
        }
    }
}

/// Writes `report.md`.
pub fn write(
    path: &Path,
    _dir: &Path,
    summary: &Summary,
    charts: &[PathBuf],
) -> Result<(), ReportError> {
    std::fs::write(path, to_markdown(summary, charts)).map_err(|e| io_err(path, e))
}

/// A heading and one line per point with its reasons; nothing when no point is listed.
fn flagged_points(s: &mut String, heading: &str, points: &[(&PointSummary, &[String])]) {
    if points.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n{heading}\n");
    for (p, why) in points {
        let _ = writeln!(s, "- {} ({}): {}", p.id, p.label, why.join("; "));
    }
}
