//! `loadgen history` over committed results folders of schema version 1 (written before
//! `schema_version`, repeated runs and resource counters existed): they still read, folders are
//! ordered by the start time in their manifests whatever the argument order, the step in p99
//! is found with its revision, and the nightly gate's exit code depends on `--recent`. The
//! same old folders still compare.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::path::PathBuf;
use std::process::{Command, Output};

fn loadgen(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap()
}

fn folders() -> Vec<String> {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/history-v1");
    // Newest first on purpose: history orders by the manifests' start times.
    (1..=10)
        .rev()
        .map(|i| base.join(format!("r{i:02}")).display().to_string())
        .collect()
}

#[test]
fn old_schema_folders_give_a_change_point_and_the_nightly_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("history.png");
    let json = tmp.path().join("history.json");
    let mut args = vec!["history".to_string()];
    args.extend(folders());
    args.extend([
        "--chart".into(),
        chart.display().to_string(),
        "--json".into(),
        json.display().to_string(),
    ]);
    let out = loadgen(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The step is at the 7th folder by time (index 6), revision 0707…, about +50%.
    assert!(
        text.contains("read p99 at folder 6 (revision 0707070707070707070707070707070707070707"),
        "{text}"
    );
    assert!(text.contains("(worse)") && text.contains("FAIL"), "{text}");
    assert!(chart.is_file());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["entries"][0]["started"], "2026-10-10T02:00:00Z");
    assert!(
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["index"] == 6)
    );

    // The change is older than the newest 2 folders: the nightly gate passes.
    let mut args = vec!["history".to_string()];
    args.extend(folders());
    args.extend(["--recent".into(), "2".into()]);
    let out = loadgen(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Old folders still compare: one run a side leaves the sample metrics inconclusive, which
    // passes with a warning.
    let f = folders();
    let out = loadgen(&["compare".into(), f[9].clone(), f[8].clone()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("inconclusive"));
}
