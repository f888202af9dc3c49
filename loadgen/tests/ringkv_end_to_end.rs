//! End to end against a real local cluster: `workloads/ci-smoke.yaml` starts three ringkv nodes
//! per point (the loadgen binary re-executed as `__node`), and produces every result file with
//! valid PNG charts; no node outlives the run.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::path::Path;
use std::process::Command;
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
    let run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            workload.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
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
            let log = out.join(p["logs"][op].as_str().unwrap());
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(text.contains("#[Histogram log format version 1.3]"));
        }
        assert!(p["achieved_rate"].as_f64().unwrap() > 400.0);
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
