//! Staleness measured end to end against real local clusters: at W1 R1 with random routing
//! some reads are stale, and at W2 R2 (W + R > N) none is; `summary.json`, `points.csv` and
//! `report.md` carry the figures and PBS's predictions beside them.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

mod common;

use std::path::Path;

#[test]
fn w1r1_reads_stale_and_w2r2_never_does() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("consistency.yaml");
    // Acknowledged as soon as applied (no fsync wait), so a W = 1 write is acknowledged while
    // the other replicas may not have it yet: reads elsewhere right after can miss it.
    std::fs::write(
        &workload,
        "name: consistency-test
target: ringkv
cluster: { nodes: 3, replication: 3, node_args: [--durability, never] }
client: { routing: random }
keys: { count: 4, size: 16, distribution: uniform }
values: { size: 64 }
mix: { read: 50, write: 50 }
preload: true
warmup: 1s
duration: 4s
rate: 1500
connections: 2
sweep:
  quorum: [[1, 1], [2, 2]]
",
    )
    .unwrap();
    let out = tmp.path().join("results");
    let summary = common::run_ok(&workload, &out);
    let points = summary["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    let (w1r1, w2r2) = (&points[0]["consistency"], &points[1]["consistency"]);
    assert_eq!(points[0]["params"]["write_quorum"], 1);
    assert_eq!(points[1]["params"]["read_quorum"], 2);
    for c in [w1r1, w2r2] {
        assert_eq!(c["routing"], "random");
        assert!(c["reads_checked"].as_u64().unwrap() > 1000, "{c}");
    }
    assert!(w1r1["stale_reads"].as_u64().unwrap() > 0, "{w1r1}");
    assert!(w1r1["stale_rate"].as_f64().unwrap() > 0.0);
    assert!(w1r1["t_visibility_p99_ms"].as_f64().unwrap() > 0.0);
    assert!((w1r1["pbs_stale_rate_t0"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(w2r2["stale_reads"], 0, "{w2r2}");
    assert_eq!(w2r2["stale_rate"], 0.0);
    assert!(w2r2["t_visibility_p99_ms"].is_null());
    assert_eq!(w2r2["pbs_stale_rate_t0"], 0.0);

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Consistency"));
    let csv = std::fs::read_to_string(out.join("points.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("stale_rate"));
    for chart in ["consistency-vs-time.png", "stale-rate-vs-quorum.png"] {
        assert!(
            Path::new(&out.join("charts").join(chart)).is_file(),
            "{chart}"
        );
    }
}

#[test]
fn the_audit_finds_no_lost_write_through_kills_pauses_and_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    // workloads/nemesis.yaml, shortened for CI: the same mix and faults, fewer of them.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads/nemesis.yaml"),
    )
    .unwrap();
    let head = text.split("duration:").next().unwrap();
    let workload = tmp.path().join("nemesis.yaml");
    std::fs::write(
        &workload,
        format!(
            "{head}duration: 9s
rate: 1000
audit: true
events:
  - {{ at: 1s, action: kill, node: n2 }}
  - {{ at: 3s, action: restart, node: n2 }}
  - {{ at: 4s, action: pause, node: n3 }}
  - {{ at: 5s, action: resume, node: n3 }}
  - {{ at: 6s, action: partition, groups: [[n1], [n2, n3]] }}
  - {{ at: 7.5s, action: heal }}
"
        ),
    )
    .unwrap();
    let out = tmp.path().join("results");
    let summary = common::run_ok(&workload, &out);
    let audit = &summary["points"][0]["audit"];
    assert_eq!(audit["lost_writes"], 0, "{audit}");
    assert_eq!(audit["resurrected"], 0, "{audit}");
    assert_eq!(audit["keys_unreadable"], 0, "{audit}");
    assert_eq!(audit["writes_not_recorded"], 0, "{audit}");
    assert!(audit["acked_puts"].as_u64().unwrap() > 1000, "{audit}");
    assert!(audit["lww_would_lose"].as_u64().is_some());
    let events = summary["points"][0]["events"].as_array().unwrap();
    let cut = events.iter().find(|e| e["action"] == "partition").unwrap();
    assert_eq!(cut["outcome"], "ok", "{cut}");
    assert_eq!(cut["node"], "n1 / n2,n3");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Lost-write audit"));
}
