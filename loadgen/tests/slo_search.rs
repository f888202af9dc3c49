//! `search: max_rate` under an `slo`: the search finds the knee of a target whose capacity is
//! known (the `null` target's model of one server with a 100 µs service time saturates at
//! 10,000 ops/s), records every step as a point, and draws the capacity chart; a bad `slo`,
//! `search` or `null_model` is refused before anything runs, naming what to fix.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

mod common;

use std::path::Path;
use std::process::Command;

use loadgen::workload::{Workload, WorkloadError};

fn parse(text: &str) -> Result<Workload, WorkloadError> {
    Workload::parse(text, Path::new("test.yaml"))
}

/// The smallest search; lines 6 and 7 hold `slo` and `search`, extra lines start at 8.
const SEARCH: &str = "name: s
target: null
keys: { count: 100 }
values: { size: 100 }
duration: 1s
slo: { p99: 10ms }
search: max_rate
";

#[test]
fn a_search_takes_defaults_and_plans_its_first_step() {
    let w = parse(SEARCH).unwrap();
    let s = w.search.as_ref().unwrap().value.max_rate().clone();
    assert_eq!(
        (s.start_rate(), s.max_rate(), s.max_steps()),
        (1000.0, 1e6, 20)
    );
    assert!((s.precision_fraction() - 0.05).abs() < 1e-12);
    assert!((w.slo.as_ref().unwrap().value.error_budget() - 0.001).abs() < 1e-12);
    let points = loadgen::sweep::points(&w).unwrap();
    assert_eq!(points.len(), 1);
    assert!(
        points[0].label().ends_with("rate=1000"),
        "{}",
        points[0].label()
    );

    let full = SEARCH
        .replace(
            "slo: { p99: 10ms }",
            "slo: { p50: 1ms, p99: 10ms, p999: 50ms, errors: 0.5% }",
        )
        .replace(
            "search: max_rate",
            "search: { max_rate: { start: 500, max: 8000, precision: 2%, steps: 12 } }",
        );
    let w = parse(&full).unwrap();
    let s = w.search.as_ref().unwrap().value.max_rate().clone();
    assert_eq!(
        (s.start_rate(), s.max_rate(), s.max_steps()),
        (500.0, 8000.0, 12)
    );
    assert_eq!(
        w.slo.as_ref().unwrap().value.to_string(),
        "p50 ≤ 1ms, p99 ≤ 10ms, p99.9 ≤ 50ms, errors ≤ 0.5%"
    );
}

#[test]
fn a_bad_search_or_slo_is_refused_naming_what_to_fix() {
    let with_slo = |slo: &str| SEARCH.replace("slo: { p99: 10ms }", slo);
    let with_search = |search: &str| SEARCH.replace("search: max_rate", search);
    // (text, expected message, line of the problem)
    let cases = [
        (
            SEARCH.replace("search: max_rate\n", "rate: 100\n"),
            "add `search: max_rate`",
            6,
        ),
        (
            SEARCH.replace("slo: { p99: 10ms }\n", ""),
            "needs an objective",
            6,
        ),
        (format!("{SEARCH}rate: 100\n"), "remove `rate`", 8),
        (
            format!("{SEARCH}concurrency: 8\n"),
            "remove `concurrency`",
            8,
        ),
        (
            format!("{SEARCH}sweep: {{ rate: [100, 200] }}\n"),
            "remove `sweep.rate`",
            8,
        ),
        (
            format!("{SEARCH}sweep: {{ value_size: [100, 200] }}\n"),
            "one file per configuration",
            8,
        ),
        (with_slo("slo: {}"), "`slo` is empty", 6),
        (with_slo("slo: { p99: 0ms }"), "longer than 0s", 6),
        (with_slo("slo: { errors: 0.1 }"), "with its sign", 6),
        (with_slo("slo: { errors: 200% }"), "at most 100%", 6),
        (with_slo("slo: { p95: 5ms }"), "unknown field `p95`", 6),
        (with_search("search: min_rate"), "min_rate", 7),
        (
            with_search("search: { max_rate: { start: 5000, max: 1000 } }"),
            "is above `max`",
            7,
        ),
        (
            with_search("search: { max_rate: { precision: 0% } }"),
            "above 0%",
            7,
        ),
        (
            with_search("search: { max_rate: { steps: 1 } }"),
            "2..=100",
            7,
        ),
        (
            with_search("search: { max_rate: { start: 0 } }"),
            "between 0 and 1e9",
            7,
        ),
        (
            with_search("search: { max_rate: { stride: 2 } }"),
            "unknown field `stride`",
            7,
        ),
    ];
    for (text, expected, line) in cases {
        let err = parse(&text).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected `{expected}` in: {err}"
        );
        assert_eq!(err.line_column().map(|(l, _)| l), Some(line), "{err}");
    }
    // The command line cannot replace the rate the search chooses.
    let err = parse(SEARCH)
        .unwrap()
        .with_overrides(Some(500.0), None, None, Path::new("test.yaml"))
        .unwrap_err();
    assert!(err.to_string().contains("search chooses the rate"), "{err}");
}

#[test]
fn the_null_model_applies_to_the_null_target_with_sane_servers() {
    let model = |m: &str| format!("{SEARCH}null_model: {m}\n");
    let w = parse(&model("{ servers: 4, service_time: 250us }")).unwrap();
    let m = w.null_model.unwrap().value;
    assert_eq!(m.servers, 4);
    assert!((m.capacity() - 16_000.0).abs() < 1e-6);
    for (text, expected) in [
        (
            model("{ service_time: 100us }").replace("target: null", "target: ringkv"),
            "set `target: null`",
        ),
        (model("{ servers: 0, service_time: 100us }"), "1..=10000"),
        (model("{ service_time: 0s }"), "above 0s"),
        (model("{ servers: 2 }"), "service_time"),
    ] {
        let err = parse(&text).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected `{expected}` in: {err}"
        );
        assert_eq!(err.line_column().map(|(l, _)| l), Some(8), "{err}");
    }
}

/// One simulated server of 100 µs: 10,000 ops/s. A 50 ms p99 is far above what the loadgen's
/// own hiccups on a loaded machine add below the knee, while above it the queue grows by
/// (rate / 10,000 − 1) seconds per second, so a step 3% over the knee already exceeds 50 ms
/// within its 2 s (warm-up included): the bound is sharp on the upper side and forgiving on
/// the lower.
const KNEE: &str = "name: knee
seed: 3
target: null
null_model: { servers: 1, service_time: 100us }
keys: { count: 1000, size: 16 }
values: { size: 100 }
mix: { read: 50, write: 50 }
preload: false
warmup: 500ms
duration: 1500ms
slo: { p99: 50ms, errors: 0.1% }
search: { max_rate: { start: 2500, max: 40000, precision: 5%, steps: 12 } }
";

#[test]
fn the_search_finds_the_knee_of_one_100us_server_within_ten_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("knee.yaml");
    std::fs::write(&file, KNEE).unwrap();
    let out = tmp.path().join("results");
    let summary = common::run_ok(&file, &out);
    let search = &summary["search"];

    assert_eq!(search["outcome"], "found", "{search:#}");
    let pass = search["highest_passing_rate"].as_f64().unwrap();
    let fail = search["lowest_failing_rate"].as_f64().unwrap();
    assert!(
        (9_000.0..=11_000.0).contains(&pass),
        "highest passing rate {pass}, the knee is at 10,000: {search:#}"
    );
    assert!(fail > pass && (fail - pass) / pass <= 0.05, "{search:#}");
    assert!(
        search["confidence"].as_str().unwrap().contains("ran once"),
        "{search:#}"
    );

    // Every step is an ordinary point of the folder, judged from its own summary.
    let steps = search["steps"].as_array().unwrap();
    let points = summary["points"].as_array().unwrap();
    assert_eq!(steps.len(), points.len());
    assert!(steps.len() <= 12);
    for (step, point) in steps.iter().zip(points) {
        assert_eq!(step["point"], point["id"]);
        assert_eq!(step["rate"], point["offered_rate"]);
    }
    // The ramp doubles from the start; the first failing ramp step ends it.
    let ramp: Vec<f64> = steps
        .iter()
        .take_while(|s| s["phase"] == "ramp")
        .map(|s| s["rate"].as_f64().unwrap())
        .collect();
    assert_eq!(ramp[..2], [2500.0, 5000.0]);
    assert_eq!(steps[ramp.len() - 1]["passed"], false);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["points"].as_array().unwrap().len(), steps.len());

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Highest rate under the SLO"), "{report}");
    let svg = std::fs::read_to_string(out.join("charts/capacity-slo.svg")).unwrap();
    assert!(svg.contains("SLO p99 50ms") && svg.contains("highest passing"));
    assert!(out.join("charts/capacity-slo.png").is_file());
}

#[test]
fn validate_describes_a_search_and_refuses_a_bad_one_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.yaml");
    let validate = |text: &str| {
        std::fs::write(&file, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["validate", file.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let ok = validate(KNEE);
    assert!(ok.status.success());
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(
        said.contains("2500 to 40000 ops/s, at most 12 steps"),
        "{said}"
    );
    let bad = validate(&KNEE.replace("slo: { p99: 50ms, errors: 0.1% }\n", ""));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("w.yaml:11:") && err.contains("needs an objective"),
        "{err}"
    );
}

/// A step that cannot run (here: nodes that refuse their arguments) ends the search with an
/// error, and the folder still says so: `outcome: error` with the message, and a report.
#[test]
fn a_step_that_cannot_run_ends_the_search_with_its_error_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("broken.yaml");
    std::fs::write(
        &file,
        "name: broken-search
target: ringkv
cluster: { nodes: 1, replication: 1, node_args: [\"--no-such-flag\"] }
keys: { count: 100 }
values: { size: 100 }
preload: false
warmup: 0s
duration: 1s
slo: { p99: 10ms }
search: max_rate
",
    )
    .unwrap();
    let out = tmp.path().join("results");
    let run = common::run(&file, &out);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let summary = common::summary(&out);
    let search = &summary["search"];
    assert_eq!(search["outcome"], "error", "{search:#}");
    let error = search["error"].as_str().unwrap();
    assert!(error.contains("no-such-flag"), "{error}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("The search stopped at step 1"), "{report}");
}
