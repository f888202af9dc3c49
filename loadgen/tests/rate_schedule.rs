//! A rate schedule end to end against the `null` target: the runner sends exactly the
//! integral of the schedule over the measured window, and the results record the schedule
//! (summary.json, manifest, report, the timeline's offered line). A bad schedule is a usage
//! error (exit code 2) that names the entry.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

mod common;

use std::process::Command;

/// 1 s of warm-up at 200 ops/s; then 200 rising to 2000 over 2 s, held for 1 s, then 500.
const WORKLOAD: &str = "name: rate-schedule
seed: 5
target: null
keys: { count: 1000, size: 16 }
values: { size: 100 }
mix: { read: 70, write: 30 }
preload: false
warmup: 1s
duration: 4s
rate:
  - {at: 0s, rate: 200}
  - {at: 2s, rate: 2000, ramp: true}
  - {at: 3s, rate: 500}
";

/// The schedule's integral over the measured window: (200 + 2000) / 2 × 2 + 2000 + 500.
const MEASURED_OPS: f64 = 2200.0 + 2000.0 + 500.0;

#[test]
fn a_null_run_sends_the_integral_of_the_schedule_and_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.yaml");
    std::fs::write(&file, WORKLOAD).unwrap();
    let out = tmp.path().join("results");
    let summary = common::run_ok(&file, &out);
    let p = &summary["points"][0];

    // Every tick due is recorded (sent, or missed and counted): exactly the integral, to the
    // rounding of one tick at each edge of the window.
    let counts: Vec<u64> = p["ops"]
        .as_object()
        .unwrap()
        .values()
        .map(|o| o["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), 2);
    let recorded: u64 = counts.iter().sum();
    let due = p["schedule"]["ticks_due"].as_u64().unwrap();
    assert_eq!(recorded, due, "{p}");
    assert!(
        (recorded as f64 - MEASURED_OPS).abs() <= counts.len() as f64,
        "{recorded} operations recorded, the schedule integrates to {MEASURED_OPS}"
    );
    assert_eq!(p["schedule"]["missed_ticks"], 0);
    // Warm-up ran at the first rate: 200 ops/s for 1 s.
    let warmup = p["warmup_ops"].as_u64().unwrap();
    assert!(warmup.abs_diff(200) <= 1, "{warmup} warm-up operations");
    // The offered rate is the schedule's mean over the window.
    let offered = p["offered_rate"].as_f64().unwrap();
    assert!(
        (offered - MEASURED_OPS / 4.0).abs() < 1e-6,
        "offered {offered}"
    );

    // The schedule is recorded as steps; `params.rate` is for constant rates.
    assert!(p["params"].get("rate").is_none(), "{}", p["params"]);
    assert_eq!(
        p["params"]["rate_schedule"],
        serde_json::json!([
            { "at_s": 0.0, "rate": 200.0, "ramp": false },
            { "at_s": 2.0, "rate": 2000.0, "ramp": true },
            { "at_s": 3.0, "rate": 500.0, "ramp": false },
        ])
    );
    assert!(
        p["label"].as_str().unwrap().ends_with("rate=200..2000"),
        "{}",
        p["label"]
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["points"][0]["load"]["open"]["rate"][1]["rate"],
        2000.0
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("rate 200 at 0s, ramp to 2000 by 2s, 500 at 3s"),
        "{report}"
    );
    let svg = std::fs::read_to_string(out.join("charts/timeline-p00.svg")).unwrap();
    assert!(svg.contains("offered"), "the timeline has no offered line");
}

#[test]
fn a_bad_schedule_is_a_usage_error_naming_the_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yaml");
    let cases = [
        (
            "  - {at: 0s, rate: 200}\n  - {at: 0s, rate: 300}\n",
            "bad.yaml:12:",
            "time order",
        ),
        (
            "  - {at: 1s, rate: 200}\n",
            "bad.yaml:11:",
            "must be `at: 0s`",
        ),
        (
            "  - {at: 0s, rate: 200, ramp: true}\n",
            "bad.yaml:11:",
            "cannot ramp",
        ),
        (
            "  - {at: 0s, rate: 0}\n",
            "bad.yaml:11:",
            "between 0 and 1e9",
        ),
    ];
    for (entries, position, message) in cases {
        let head = WORKLOAD.split("  - {at").next().unwrap();
        std::fs::write(&bad, format!("{head}{entries}")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["validate", bad.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(position) && err.contains(message), "{err}");
    }
}
