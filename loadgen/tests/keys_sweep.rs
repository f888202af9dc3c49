//! `sweep.keys` against a real local cluster: each point preloads its own key count on a fresh
//! one-node cluster, is labelled by it, and reports the disk bytes its keys take in
//! `summary.json`, `points.csv` and `report.md`.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

mod common;

#[test]
fn a_keys_sweep_preloads_each_count_and_reports_disk_bytes_per_key() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("keys.yaml");
    std::fs::write(
        &workload,
        "name: keys-sweep-test
target: ringkv
cluster: { nodes: 1, replication: 1 }
keys: { count: 100, size: 16 }
values: { size: 256 }
mix: { read: 80, write: 20 }
preload: true
duration: 1s
rate: 200
connections: 1
sweep:
  keys: [1000, 5000]
",
    )
    .unwrap();
    let out = tmp.path().join("results");
    let summary = common::run_ok(&workload, &out);
    let points = summary["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    let mut disk = Vec::new();
    for (p, keys) in points.iter().zip([1000u64, 5000]) {
        assert_eq!(p["params"]["keys"], keys, "{}", p["params"]);
        let label = p["label"].as_str().unwrap();
        assert!(label.contains(&format!("keys={keys}")), "{label}");
        assert_eq!(p["preload"]["keys"], keys);
        assert_eq!(p["preload"]["failed"], 0);
        let r = &p["resources"];
        let per_key = r["disk_bytes_per_key"].as_f64().unwrap();
        assert!(per_key > 0.0, "{r}");
        // One replica: a copy is the whole of it.
        assert_eq!(r["disk_bytes_per_key_replica"].as_f64().unwrap(), per_key);
        let bytes = r["disk_bytes"].as_u64().unwrap();
        assert!(
            (per_key * keys as f64 - bytes as f64).abs() <= keys as f64,
            "{r}"
        );
        disk.push(bytes);
    }
    // Five times the keys (each written once, 256-byte values) take more room.
    assert!(disk[1] > disk[0], "{disk:?}");

    let csv = std::fs::read_to_string(out.join("points.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for column in ["keys", "disk_bytes", "disk_bytes_per_key"] {
        assert!(header.contains(&column), "{column} in {header:?}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("disk B/key"), "{report}");
    assert!(out.join("charts/latency-vs-keys.png").is_file());
}
