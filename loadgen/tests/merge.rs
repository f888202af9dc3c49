//! Several load hosts: two `loadgen run --shard i/2 --start-at T` processes against the `null`
//! target, run at once, then `loadgen merge`. The merged totals are the shards' sums, the
//! merged p99 is the p99 of the added histograms (never an average of percentiles), and a set
//! that is not every shard of one workload exactly once is refused with exit code 2.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use loadgen::record::{new_hist, read_log};
use loadgen::report::Latency;

const WORKLOAD: &str = "name: shards
seed: 7
target: null
keys: { count: 5000, size: 16, distribution: zipfian }
values: { size: 100 }
mix: { read: 70, write: 30 }
preload: 1000
warmup: 300ms
duration: 2s
rate: 8000
sweep:
  value_size: [100, 1KB]
";

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `file` as shards `shards` of 2, all at once, each into `dir/s<i>`; returns the folders.
fn run_shards(file: &Path, dir: &Path, shards: &[u32], start_at: Option<&str>) -> Vec<PathBuf> {
    let children: Vec<(PathBuf, std::process::Child)> = shards
        .iter()
        .map(|i| {
            let out = dir.join(format!("s{i}"));
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
            cmd.args(["run", file.to_str().unwrap(), "--quiet", "--out"])
                .arg(&out)
                .args(["--shard", &format!("{i}/2")]);
            if let Some(t) = start_at {
                cmd.args(["--start-at", t]);
            }
            let child = cmd
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(out, child)| {
            let done = child.wait_with_output().unwrap();
            assert!(done.status.success(), "{}", stderr(&done));
            out
        })
        .collect()
}

fn merge(dirs: &[&Path], out: &Path) -> Output {
    let mut args = vec!["merge"];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    args.extend(["--out", out.to_str().unwrap()]);
    loadgen(&args)
}

/// The response-time p99 of a point and operation over the given folders' logs, added.
fn added_p99_us(dirs: &[&Path], point: usize, op: &str) -> f64 {
    let mut all = new_hist().unwrap();
    for d in dirs {
        let s = json(&d.join("summary.json"));
        let rel = s["points"][point]["logs"][op].as_str().unwrap();
        for i in read_log(&d.join(rel)).unwrap() {
            if !i.service && !i.failed {
                all.add(&i.hist).unwrap();
            }
        }
    }
    Latency::of(&all).p99_us
}

#[test]
fn two_shards_run_at_once_merge_into_their_sum() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.yaml");
    std::fs::write(&file, WORKLOAD).unwrap();
    // Far enough ahead for both processes to start and preload on a loaded machine.
    let start_at =
        loadgen::workload::shard::start_at_text(SystemTime::now() + Duration::from_secs(4));
    let shards = run_shards(&file, tmp.path(), &[1, 2], Some(&start_at));
    let (a, b) = (shards[0].as_path(), shards[1].as_path());
    let (sa, sb) = (json(&a.join("summary.json")), json(&b.join("summary.json")));
    for (s, i) in [(&sa, 1), (&sb, 2)] {
        assert_eq!(s["shard"], serde_json::json!({ "index": i, "count": 2 }));
        assert_eq!(s["start_at"], start_at.as_str());
        // Each drives half of the rate; the points keep the whole workload's parameters.
        assert_eq!(s["points"][0]["offered_rate"], 4000.0);
        assert_eq!(s["points"][0]["params"]["rate"], 8000.0);
        assert_eq!(s["points"][0]["preload"]["keys"], 500);
    }
    assert_eq!(json(&a.join("manifest.json"))["shard"]["index"], 1);

    let out = tmp.path().join("merged");
    let m = merge(&[b, a], &out);
    assert!(m.status.success(), "{}", stderr(&m));
    let merged = json(&out.join("summary.json"));
    assert_eq!(merged["merged"]["shard_count"], 2);
    assert!(merged["merged"]["max_window_skew_s"].is_number());
    assert!(merged["shard"].is_null());
    let points = merged["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (i, p) in points.iter().enumerate() {
        let (pa, pb) = (&sa["points"][i], &sb["points"][i]);
        let sum = |f: &dyn Fn(&serde_json::Value) -> f64| f(pa) + f(pb);
        assert_eq!(p["offered_rate"].as_f64().unwrap(), 8000.0);
        assert!(
            (p["achieved_rate"].as_f64().unwrap() - sum(&|x| x["achieved_rate"].as_f64().unwrap()))
                .abs()
                < 0.2
        );
        for op in ["read", "write"] {
            let o = &p["ops"][op];
            for field in ["count", "errors", "errors_indeterminate"] {
                assert_eq!(
                    o[field].as_u64().unwrap(),
                    pa["ops"][op][field].as_u64().unwrap() + pb["ops"][op][field].as_u64().unwrap(),
                    "{op}.{field} of point {i}"
                );
            }
            let thr = sum(&|x| x["ops"][op]["throughput_ops_s"].as_f64().unwrap());
            assert!((o["throughput_ops_s"].as_f64().unwrap() - thr).abs() < 0.2);
            // The tail comes from the added histograms, not from the shards' percentiles.
            assert_eq!(o["p99_us"].as_f64().unwrap(), added_p99_us(&[a, b], i, op));
            assert_eq!(
                o["p99_us"].as_f64().unwrap(),
                added_p99_us(&[&out], i, op),
                "the merged log holds the added histograms"
            );
        }
        // Each host's loadgen is kept, tagged with its shard.
        let hosts: Vec<u64> = p["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["shard"].as_u64().unwrap())
            .collect();
        assert_eq!(hosts, [1, 2]);
        assert_eq!(p["shards"].as_array().unwrap().len(), 2);
    }
    for f in ["manifest.json", "points.csv", "report.md"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    // Usable like any results folder.
    let cmp = loadgen(&["compare", out.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(cmp.status.code(), Some(0), "{}", stderr(&cmp));
    let plot = loadgen(&["plot", out.to_str().unwrap()]);
    assert!(plot.status.success(), "{}", stderr(&plot));

    // Not one full set: exit 2, saying what is wrong.
    let missing = merge(&[a], &tmp.path().join("m1"));
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("shard 2/2 missing"),
        "{}",
        stderr(&missing)
    );
    let twice = merge(&[a, a, b], &tmp.path().join("m2"));
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        stderr(&twice).contains("appears twice"),
        "{}",
        stderr(&twice)
    );
    let not_a_shard = merge(&[a, &out], &tmp.path().join("m3"));
    assert_eq!(not_a_shard.status.code(), Some(2));
    assert!(stderr(&not_a_shard).contains("not a shard"));
    let again = merge(&[a, b], &out);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already holds results"));

    // Hand-edited folders are refused, not trusted: a shard count that would size the merge,
    // and a log path outside the folder (it would be read there and written outside --out).
    let edited = |from: &Path, name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let copy = tmp.path().join(name);
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(from)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
        let mut s = json(&copy.join("summary.json"));
        edit(&mut s);
        std::fs::write(copy.join("summary.json"), s.to_string()).unwrap();
        copy
    };
    let huge = |i: u32| {
        move |s: &mut serde_json::Value| {
            s["shard"] = serde_json::json!({ "index": i, "count": 4_000_000_000u64 })
        }
    };
    let huge1 = edited(a, "huge1", &huge(1));
    let huge2 = edited(b, "huge2", &huge(2));
    let m = merge(&[&huge1, &huge2], &tmp.path().join("m4"));
    assert_eq!(m.status.code(), Some(2), "{}", stderr(&m));
    assert!(stderr(&m).contains("1 <= i <= k"), "{}", stderr(&m));
    let escaping = edited(b, "escaping", &|s| {
        for p in s["points"].as_array_mut().unwrap() {
            for r in p["runs"].as_array_mut().into_iter().flatten() {
                r["logs"]["read"] = serde_json::json!("../../outside.hlog");
            }
            p["logs"]["read"] = serde_json::json!("../../outside.hlog");
        }
    });
    let m = merge(&[a, &escaping], &tmp.path().join("m5"));
    assert_eq!(m.status.code(), Some(2), "{}", stderr(&m));
    assert!(stderr(&m).contains("not a path inside"), "{}", stderr(&m));
}

#[test]
fn shards_of_different_workloads_are_not_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let short = WORKLOAD
        .replace("duration: 2s", "duration: 300ms")
        .replace("warmup: 300ms", "warmup: 0s")
        .replace("  value_size: [100, 1KB]", "  value_size: [100]");
    let (one, other) = (tmp.path().join("one.yaml"), tmp.path().join("other.yaml"));
    std::fs::write(&one, &short).unwrap();
    std::fs::write(&other, short.replace("seed: 7", "seed: 8")).unwrap();
    let first = run_shards(&one, &tmp.path().join("one"), &[1], None);
    let second = run_shards(&other, &tmp.path().join("other"), &[2], None);
    let m = merge(&[&first[0], &second[0]], &tmp.path().join("m"));
    assert_eq!(m.status.code(), Some(2));
    let e = stderr(&m);
    assert!(
        e.contains("different workloads") && e.contains("seed"),
        "{e}"
    );
}

#[test]
fn bad_shard_and_start_at_values_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.yaml");
    std::fs::write(&file, WORKLOAD).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", file.to_str().unwrap(), "--quiet"];
        args.extend(extra);
        loadgen(&args)
    };
    for (args, says) in [
        (&["--shard", "0/2"][..], "shards count from 1"),
        (&["--shard", "3/2"], "shards count from 1"),
        (&["--shard", "1/2000"], "1..=1024"),
        (&["--shard", "half"], "not a shard"),
        (&["--start-at", "2001-01-01T00:00:00Z"], "ago"),
        (&["--start-at", "tomorrow"], "not a time"),
        (
            &["--concurrency", "1", "--shard", "1/2"],
            "at least one worker",
        ),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    // Several loadgens each starting their own local cluster would not share one.
    let local = tmp.path().join("local.yaml");
    std::fs::write(&local, WORKLOAD.replace("target: null\n", "")).unwrap();
    let o = loadgen(&["run", local.to_str().unwrap(), "--shard", "1/2", "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cluster.endpoints"), "{}", stderr(&o));
}
