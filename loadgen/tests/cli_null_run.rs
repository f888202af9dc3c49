//! The `loadgen` binary end to end against the `null` target: a sweep produces every result
//! file (manifest, summary, CSV, report, interval logs, PNG and SVG charts), `plot` redraws
//! them, `compare` gates on regressions, and usage errors exit 2 with a position.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::path::Path;
use std::process::{Command, Output};

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap()
}

const WORKLOAD: &str = "name: cli-null
seed: 3
target: null
keys: { count: 5000, size: 16, distribution: zipfian }
values: { size: 1KB }
mix: { read: 70, write: 20, delete: 10 }
preload: 1000
warmup: 500ms
duration: 2s
rate: 20000
sweep:
  value_size: [100, 10KB]
  quorum: [[1, 1], [2, 2]]
";

fn assert_valid_png(path: &Path) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(
        info.width >= 800 && info.height >= 400,
        "{}",
        path.display()
    );
    // Not blank: some pixels are not white.
    assert!(buf.iter().any(|b| *b < 200), "{} is blank", path.display());
}

#[test]
fn a_null_sweep_writes_every_result_file_and_compare_gates() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.yaml");
    std::fs::write(&file, WORKLOAD).unwrap();
    let out = tmp.path().join("results");
    let run = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        out.to_str().unwrap()
    );

    for f in ["manifest.json", "summary.json", "points.csv", "report.md"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 3);
    assert!(manifest["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert_eq!(manifest["workload"]["name"], "cli-null");
    assert!(
        manifest["tools"]["rustc"]
            .as_str()
            .unwrap()
            .starts_with("rustc")
    );

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let points = summary["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    for p in points {
        for key in [
            "value_bytes",
            "replication",
            "write_quorum",
            "read_quorum",
            "nodes",
            "rate",
        ] {
            assert!(p["params"].get(key).is_some(), "params.{key}");
        }
        for op in ["read", "write", "delete"] {
            let o = &p["ops"][op];
            for key in [
                "count",
                "errors",
                "throughput_ops_s",
                "p50_us",
                "p90_us",
                "p99_us",
                "p999_us",
                "max_us",
            ] {
                assert!(o.get(key).is_some(), "ops.{op}.{key}");
                assert!(
                    o["service"].get(key).is_some()
                        || key == "count"
                        || key == "errors"
                        || key == "throughput_ops_s"
                );
            }
            assert!(o["count"].as_u64().unwrap() > 0);
        }
        assert_eq!(p["offered_rate"], 20000.0);
        assert!(p["achieved_rate"].as_f64().unwrap() > 15000.0);
        // The null target does no work, so every point measures the load generator.
        assert_eq!(p["client_bound"], true);
        assert_eq!(p["preload"]["keys"], 1000);
        assert_eq!(p["processes"][0]["role"], "loadgen");
    }
    let csv = std::fs::read_to_string(out.join("points.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 * 3);
    assert!(csv.starts_with("point,label,op,value_bytes"));

    let log = std::fs::read_to_string(out.join("hdr/p00-read.hlog")).unwrap();
    assert!(log.contains("#[Histogram log format version 1.3]"));
    assert!(log.contains(
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    ));
    assert!(
        log.lines()
            .filter(|l| l.starts_with("Tag=service,"))
            .count()
            >= 2
    );
    assert!(log.lines().any(|l| l.contains(",HISTF")));

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| p03 |"));
    for stem in [
        "latency-vs-value-size-0",
        "latency-vs-quorum-1",
        "spectrum-p00",
        "timeline-p03",
    ] {
        assert!(
            report.contains(&format!("charts/{stem}.png")),
            "report lacks {stem}"
        );
        assert_valid_png(&out.join(format!("charts/{stem}.png")));
        let svg = std::fs::read_to_string(out.join(format!("charts/{stem}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("Percentile") || svg.contains("<svg"));
    }

    // plot redraws the charts from the folder alone.
    std::fs::remove_dir_all(out.join("charts")).unwrap();
    let plot = loadgen(&["plot", out.to_str().unwrap()]);
    assert!(
        plot.status.success(),
        "{}",
        String::from_utf8_lossy(&plot.stderr)
    );
    assert_valid_png(&out.join("charts/spectrum-p02.png"));

    // compare: a run against itself passes; a candidate with many more errors fails with exit
    // code 3 even with one run a side (a count test on the totals); a folder without its
    // manifest cannot be checked and fails closed with exit code 2.
    let same = loadgen(&["compare", out.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    assert!(String::from_utf8_lossy(&same.stdout).contains("PASS"));

    let worse = tmp.path().join("worse");
    std::fs::create_dir_all(&worse).unwrap();
    let mut doctored = summary.clone();
    for p in doctored["points"].as_array_mut().unwrap() {
        for run in p["runs"].as_array_mut().unwrap() {
            let count = run["ops"]["read"]["count"].as_u64().unwrap();
            run["ops"]["read"]["errors"] = serde_json::json!(count / 2);
        }
    }
    std::fs::write(worse.join("summary.json"), doctored.to_string()).unwrap();
    let no_manifest = loadgen(&["compare", out.to_str().unwrap(), worse.to_str().unwrap()]);
    assert_eq!(no_manifest.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_manifest.stderr).contains("manifest.json"));
    std::fs::copy(out.join("manifest.json"), worse.join("manifest.json")).unwrap();
    let cmp = loadgen(&[
        "compare",
        out.to_str().unwrap(),
        worse.to_str().unwrap(),
        "--max-regression",
        "10%",
    ]);
    let table = String::from_utf8_lossy(&cmp.stdout);
    assert_eq!(cmp.status.code(), Some(3), "{table}");
    assert!(
        table.contains("REGRESSION") && table.contains("errors"),
        "{table}"
    );
    assert!(String::from_utf8_lossy(&cmp.stderr).contains("deprecated"));

    // The folder is never overwritten.
    let again = loadgen(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds results"));
}

#[test]
fn usage_errors_exit_2_and_name_the_position() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\nkeys: { count: 10 }\nvalues: { size: 1KB }\nrate: 5\nduration: 1s\nrat: 3\n",
    )
    .unwrap();
    let out = loadgen(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:6:1") && err.contains("unknown field `rat`"),
        "{err}"
    );

    let run = loadgen(&["run", bad.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));

    assert_eq!(loadgen(&["run"]).status.code(), Some(2));
    assert_eq!(loadgen(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        loadgen(&["compare", "a", "b", "--max-regression", "lots"])
            .status
            .code(),
        Some(2)
    );
    let missing = loadgen(&["run", "/nonexistent/x.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read workload"));
    assert!(loadgen(&["--help"]).status.success());
}
