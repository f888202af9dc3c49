//! End to end against a real local cluster: `workloads/ci-smoke.yaml` starts three ringkv nodes
//! per point (the loadgen binary re-executed as `__node`), and produces every result file with
//! valid PNG charts; no node outlives the run.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

fn assert_valid_png(path: &Path) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(info.width >= 800 && info.height >= 400);
    assert!(buf.iter().any(|b| *b < 200), "{} is blank", path.display());
}

#[test]
fn ci_smoke_against_a_real_cluster_writes_every_result_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let workload = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads/ci-smoke.yaml");
    let started = Instant::now();
    common::run_ok(&workload, &out);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );

    for f in ["manifest.json", "summary.json", "points.csv", "report.md"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["target"], "ringkv");
    let points = summary["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    let mut node_pids = Vec::new();
    for p in points {
        assert_eq!(p["params"]["nodes"], 3);
        assert_eq!(p["preload"]["failed"], 0);
        for op in ["read", "write", "delete"] {
            let o = &p["ops"][op];
            assert!(o["count"].as_u64().unwrap() > 0, "{op}");
            assert_eq!(o["errors"], 0, "{op}: {}", p["first_error"]);
            assert!(o["p99_us"].as_f64().unwrap() > 0.0);
            assert!(o["service"]["p50_us"].as_f64().unwrap() > 0.0);
            // The worst second's p99 is one second's; the window's p50 lies below it.
            let worst = o["worst_second_p99_us"].as_f64().unwrap();
            assert!(worst >= o["p50_us"].as_f64().unwrap(), "{op}: {o}");
            assert!(
                o.get("p99_per_minute_us").is_none(),
                "a short window has no minutes"
            );
            let log = out.join(p["logs"][op].as_str().unwrap());
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(text.contains("#[Histogram log format version 1.3]"));
        }
        // Every key was preloaded, so only reads of keys deleted since find nothing.
        let read = &p["ops"]["read"];
        let empty = read["found_nothing"].as_u64().unwrap();
        assert!(
            empty > 0 && empty < read["count"].as_u64().unwrap() / 4,
            "{empty} of {} reads found nothing",
            read["count"]
        );
        assert!(p["achieved_rate"].as_f64().unwrap() > 400.0);
        assert!(p["resources"]["write_stall_ms"].as_f64().unwrap() >= 0.0);
        // What else used the machine in the window is measured (Linux: /proc/stat).
        for field in ["other_cpu_pct", "steal_pct"] {
            let pct = p["resources"][field].as_f64();
            assert!(pct.is_some_and(|x| x >= 0.0), "{field}: {pct:?}");
        }
        let nodes: Vec<_> = p["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["role"] == "node")
            .collect();
        assert_eq!(nodes.len(), 3, "every node process is sampled");
        assert!(
            nodes
                .iter()
                .all(|n| n["rss_max_bytes"].as_u64().unwrap() > 0)
        );
        node_pids.extend(nodes.iter().map(|n| n["pid"].as_u64().unwrap()));
    }
    for stem in [
        "latency-vs-value-size",
        "spectrum-p00",
        "spectrum-p01",
        "timeline-p01",
    ] {
        assert_valid_png(&out.join(format!("charts/{stem}.png")));
        assert!(out.join(format!("charts/{stem}.svg")).is_file());
    }
    // Nothing is left running.
    for pid in node_pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie_or_gone = stat.is_empty() || stat.contains(") Z ");
        assert!(zombie_or_gone, "node pid {pid} still running");
    }
}

#[test]
fn cluster_events_run_during_the_measured_window_and_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let workload = tmp.path().join("events.yaml");
    std::fs::write(
        &workload,
        "name: events
cluster: { nodes: 3, replication: 3, write_quorum: 2, read_quorum: 2 }
keys: { count: 2000 }
values: { size: 1KB }
warmup: 1s
duration: 12s
rate: 300
events:
  - { at: 1s, action: kill, node: n3 }
  - { at: 3s, action: restart, node: n3 }
  - { at: 5s, action: add }
",
    )
    .unwrap();
    common::run_ok(&workload, &out);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let p = &summary["points"][0];
    let events = p["events"].as_array().unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["node"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(seen, [("kill", "n3"), ("restart", "n3"), ("add", "n4")]);
    for e in events {
        assert_eq!(e["outcome"], "ok", "{e}");
        let planned = e["planned_s"].as_f64().unwrap();
        let started = e["started_s"].as_f64().unwrap();
        assert!(started >= planned - 0.1 && started < planned + 1.0, "{e}");
    }
    // W = 2 of N = 3: the store keeps answering while one node is down. Requests that the
    // killed node was coordinating fail; nothing else should.
    for op in ["read", "write"] {
        let o = &p["ops"][op];
        let (count, errors) = (o["count"].as_u64().unwrap(), o["errors"].as_u64().unwrap());
        assert!(count > 1000, "{op}: {count}");
        assert!(errors * 20 < count, "{op}: {errors} errors of {count}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Cluster events"), "{report}");
    assert_valid_png(&out.join("charts/timeline-p00.png"));
}
