//! `points.csv`: one row per point and operation, every figure of `summary.json` in flat columns.

use std::fmt::Write as _;
use std::path::Path;

use super::{ReportError, Summary, io_err};

/// The header row.
pub const COLUMNS: &[&str] = &[
    "point",
    "label",
    "op",
    "value_bytes",
    "values",
    "nodes",
    "replication",
    "write_quorum",
    "read_quorum",
    "keys",
    "rate",
    "concurrency",
    "offered_rate",
    "achieved_rate",
    "client_bound",
    "duration_s",
    "count",
    "errors",
    "errors_indeterminate",
    "errors_conflict",
    "throughput_ops_s",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
    "service_p50_us",
    "service_p90_us",
    "service_p99_us",
    "service_p999_us",
    "service_max_us",
    "late_ticks",
    "missed_ticks",
    "loadgen_cpu_pct",
    "cpu_us_per_op",
    "response_time",
    "runs",
    "node_cpu_us_per_op",
    "fsyncs_per_op",
    "engine_bytes_per_op",
    "node_write_bytes_per_op",
    "node_voluntary_ctx_per_op",
    "node_involuntary_ctx_per_op",
    "disk_bytes",
    "disk_bytes_per_key",
    "disk_bytes_per_key_replica",
    "node_instructions_per_op",
    "loadgen_cpu_us_per_op",
    "failed_p99_us",
    "reads_checked",
    "stale_rate",
    "t_visibility_p99_ms",
    "pbs_stale_rate_t0",
];

fn field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The CSV text for a summary.
pub fn to_csv(summary: &Summary) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for p in &summary.points {
        for (op, s) in &p.ops {
            let cells: Vec<String> = vec![
                p.id.clone(),
                p.label.clone(),
                op.clone(),
                p.params.value_bytes.to_string(),
                p.params.values.clone(),
                p.params.nodes.to_string(),
                p.params.replication.to_string(),
                p.params.write_quorum.to_string(),
                p.params.read_quorum.to_string(),
                opt(p.params.keys),
                opt(p.params.rate),
                opt(p.params.concurrency),
                opt(p.offered_rate),
                p.achieved_rate.to_string(),
                p.client_bound.to_string(),
                p.duration_s.to_string(),
                s.count.to_string(),
                s.errors.to_string(),
                s.errors_indeterminate.to_string(),
                s.errors_conflict.to_string(),
                s.throughput_ops_s.to_string(),
                s.response.p50_us.to_string(),
                s.response.p90_us.to_string(),
                s.response.p99_us.to_string(),
                s.response.p999_us.to_string(),
                s.response.max_us.to_string(),
                s.service.p50_us.to_string(),
                s.service.p90_us.to_string(),
                s.service.p99_us.to_string(),
                s.service.p999_us.to_string(),
                s.service.max_us.to_string(),
                p.schedule.late_ticks.to_string(),
                p.schedule.missed_ticks.to_string(),
                p.self_check.loadgen_cpu_pct.to_string(),
                p.self_check.cpu_us_per_op.to_string(),
                p.response_time.clone(),
                p.runs.len().max(1).to_string(),
                opt(p.resources.as_ref().and_then(|r| r.node_cpu_us_per_op)),
                opt(p.resources.as_ref().and_then(|r| r.fsyncs_per_op)),
                opt(p.resources.as_ref().and_then(|r| r.engine_bytes_per_op)),
                opt(p.resources.as_ref().and_then(|r| r.node_write_bytes_per_op)),
                opt(p
                    .resources
                    .as_ref()
                    .and_then(|r| r.node_voluntary_ctx_per_op)),
                opt(p
                    .resources
                    .as_ref()
                    .and_then(|r| r.node_involuntary_ctx_per_op)),
                opt(p.resources.as_ref().and_then(|r| r.disk_bytes)),
                opt(p.resources.as_ref().and_then(|r| r.disk_bytes_per_key)),
                opt(p
                    .resources
                    .as_ref()
                    .and_then(|r| r.disk_bytes_per_key_replica)),
                opt(p
                    .resources
                    .as_ref()
                    .and_then(|r| r.node_instructions_per_op)),
                opt(p.resources.as_ref().map(|r| r.loadgen_cpu_us_per_op)),
                opt(s.failed.map(|f| f.p99_us)),
                opt(p.consistency.as_ref().map(|c| c.measured.reads_checked)),
                opt(p.consistency.as_ref().and_then(|c| c.measured.stale_rate)),
                opt(p
                    .consistency
                    .as_ref()
                    .and_then(|c| c.measured.t_visibility_p99_ms)),
                opt(p.consistency.as_ref().and_then(|c| c.pbs_stale_rate_t0)),
            ];
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                field(&mut out, c);
            }
            let _ = writeln!(out);
        }
    }
    out
}

/// Writes `points.csv`.
pub fn write(path: &Path, summary: &Summary) -> Result<(), ReportError> {
    std::fs::write(path, to_csv(summary)).map_err(|e| io_err(path, e))
}
