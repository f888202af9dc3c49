//! Helpers shared by the loadgen's integration tests.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)] // test helpers may fail loudly

use std::path::Path;
use std::process::Command;

/// `loadgen run WORKLOAD --quiet --out OUT`, whatever its exit status.
pub fn run(workload: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", workload.to_str().unwrap(), "--quiet", "--out"])
        .arg(out)
        .output()
        .unwrap()
}

/// The summary.json of results folder `out`.
pub fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// `loadgen run WORKLOAD --quiet --out OUT`, which must succeed; returns its summary.json.
pub fn run_ok(workload: &Path, out: &Path) -> serde_json::Value {
    let run = run(workload, out);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    summary(out)
}
