//! `--instructions`: a real one-node cluster under valgrind's callgrind, its instructions per
//! operation counted between the measured window's edges; a run without it is not comparable.
//! `.ci/run` installs valgrind; without it this test fails, it never skips.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::path::Path;
use std::process::{Command, Output};

fn loadgen(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .arg(out)
        .output()
        .unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn nodes_under_callgrind_report_instructions_per_operation() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("instr.yaml");
    std::fs::write(
        &file,
        "name: instr
cluster: { nodes: 1, replication: 1, write_quorum: 1, read_quorum: 1 }
keys: { count: 200, size: 16, distribution: uniform }
values: { size: 100 }
mix: { read: 50, write: 50 }
warmup: 1s
duration: 3s
rate: 50
",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let counted = tmp.path().join("counted");
    let run = loadgen(
        &["run", file, "--instructions", "--quiet", "--out"],
        &counted,
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = read_json(&counted.join("summary.json"));
    let r = &summary["points"][0]["resources"];
    let per_op = r["node_instructions_per_op"].as_f64().unwrap();
    // A put or get through the node's session, coordinator and engine is thousands of
    // instructions at least, and far from billions.
    assert!((1_000.0..1e9).contains(&per_op), "{r}");
    assert_eq!(
        read_json(&counted.join("manifest.json"))["instrumented"],
        "callgrind"
    );
    assert!(counted.join("callgrind/p00").read_dir().unwrap().count() >= 2);
    let report = std::fs::read_to_string(counted.join("report.md")).unwrap();
    assert!(report.contains("## Instructions per operation"), "{report}");

    // The same workload without callgrind is a different measurement: compare refuses it.
    let plain = tmp.path().join("plain");
    let run = loadgen(&["run", file, "--quiet", "--out"], &plain);
    assert!(run.status.success());
    let cmp = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("compare")
        .arg(&counted)
        .arg(&plain)
        .output()
        .unwrap();
    assert_eq!(cmp.status.code(), Some(2));
    let err = String::from_utf8_lossy(&cmp.stderr);
    assert!(err.contains("instrumented"), "{err}");
}

#[test]
fn instructions_are_refused_where_there_are_no_local_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("null.yaml");
    std::fs::write(
        &file,
        "name: n\ntarget: null\nkeys: { count: 10 }\nvalues: { size: 10 }\nrate: 10\nduration: 1s\n",
    )
    .unwrap();
    let run = loadgen(
        &["run", file.to_str().unwrap(), "--instructions", "--out"],
        &tmp.path().join("o"),
    );
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("counts ringkv nodes"));
}
