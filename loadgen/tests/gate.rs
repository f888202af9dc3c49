//! The performance gate end to end on the `null` target: an interleaved A/A run passes, its
//! JSON and JUnit outputs parse, a doctored candidate with 30% more CPU per operation fails
//! with exit code 3, and every fail-closed case (a different workload, a missing point, an
//! unreadable folder) exits 2. Performance is never asserted: only verdicts on controlled data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::path::Path;
use std::process::{Command, Output};

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap()
}

const WORKLOAD: &str = "name: gate-null
seed: 5
target: null
keys: { count: 2000, size: 16 }
values: { size: 100 }
mix: { read: 80, write: 20 }
preload: 500
warmup: 100ms
duration: 300ms
rate: 5000
repeat: 5
sweep:
  value_size: [100, 1KB]
";

/// A minimal XML well-formedness check: balanced tags, quoted attributes, one root.
fn assert_well_formed_xml(text: &str) {
    let body = text
        .trim()
        .strip_prefix("<?xml")
        .and_then(|r| r.split_once("?>"))
        .map(|(_, rest)| rest)
        .expect("an XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        let text_before = &rest[..open];
        assert!(!text_before.contains('>'), "stray '>' in {text_before:?}");
        let close = rest[open..].find('>').expect("an unclosed tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else {
            let name = tag.split_whitespace().next().unwrap().trim_end_matches('/');
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name.to_string());
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1);
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["manifest.json", "summary.json"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn a_null_a_a_run_passes_and_every_fail_closed_case_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.yaml");
    std::fs::write(&file, WORKLOAD).unwrap();
    let out = tmp.path().join("ab");
    let json = tmp.path().join("gate.json");
    let junit = tmp.path().join("gate.xml");
    let ab = loadgen(&[
        "ab",
        file.to_str().unwrap(),
        "--repeat",
        "5",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&ab.stdout);
    assert_eq!(
        ab.status.code(),
        Some(0),
        "{table}\n{}",
        String::from_utf8_lossy(&ab.stderr)
    );
    assert!(table.contains("PASS"), "{table}");

    // Both sides keep every run, today's fields hold the medians.
    let (a, b) = (out.join("a"), out.join("b"));
    let summary = read_json(&a.join("summary.json"));
    assert_eq!(summary["schema_version"], 2);
    for p in summary["points"].as_array().unwrap() {
        assert_eq!(p["runs"].as_array().unwrap().len(), 5);
        assert!(p["ops"]["read"]["p99_us"].as_f64().unwrap() > 0.0);
        assert!(p["params"]["value_bytes"].as_u64().unwrap() > 0);
        assert!(p["resources"]["loadgen_cpu_us_per_op"].as_f64().unwrap() > 0.0);
        assert!(p["intervals"]["read.p99_us"].as_array().is_some());
        assert!(p["self_check"]["cpu_us_per_op"].as_f64().is_some());
        assert_eq!(p["processes"][0]["role"], "loadgen");
    }
    let manifest = read_json(&a.join("manifest.json"));
    assert_eq!(manifest["schema_version"], 2);
    assert_eq!(manifest["repeat"], 5);
    assert!(manifest["node_build"]["program"].is_string());

    // The JSON and JUnit outputs parse.
    let verdict = read_json(&json);
    assert!(!verdict["rows"].as_array().unwrap().is_empty());
    assert!(verdict["rows"][0]["verdict"].is_string());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_well_formed_xml(&xml);
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(out.join("compare.md").is_file() && out.join("compare.png").is_file());

    // A doctored candidate: 30% more CPU per operation in every run. For the null target the
    // load generator's own CPU is the system's CPU, so it gates. The real run-to-run spread of
    // 300 ms runs on a shared machine can be wide enough to leave +30% undecided (that is the
    // statistics working), so both sides get a controlled spread around the real median: the
    // verdict is then determined, and the rest of the folders stay real.
    let steady = tmp.path().join("steady");
    let worse = tmp.path().join("worse");
    copy_folder(&a, &steady);
    copy_folder(&a, &worse);
    for (dir, factor) in [(&steady, 1.0), (&worse, 1.3)] {
        let mut s = read_json(&dir.join("summary.json"));
        for p in s["points"].as_array_mut().unwrap() {
            let median = p["resources"]["loadgen_cpu_us_per_op"].as_f64().unwrap();
            let jitter = [1.0, 1.01, 0.99, 1.02, 0.98];
            for (run, j) in p["runs"].as_array_mut().unwrap().iter_mut().zip(jitter) {
                run["resources"]["loadgen_cpu_us_per_op"] = serde_json::json!(median * j * factor);
            }
        }
        write_json(&dir.join("summary.json"), &s);
    }
    let same = loadgen(&[
        "compare",
        steady.to_str().unwrap(),
        steady.to_str().unwrap(),
    ]);
    assert_eq!(same.status.code(), Some(0));
    let junit2 = tmp.path().join("worse.xml");
    let cmp = loadgen(&[
        "compare",
        steady.to_str().unwrap(),
        worse.to_str().unwrap(),
        "--junit",
        junit2.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&cmp.stdout);
    assert_eq!(cmp.status.code(), Some(3), "{table}");
    assert!(
        table.contains("REGRESSION") && table.contains("cpu_us_per_op"),
        "{table}"
    );
    let xml = std::fs::read_to_string(&junit2).unwrap();
    assert_well_formed_xml(&xml);
    assert!(xml.contains("<failure"), "{xml}");

    // Fail closed: a different workload.
    let other = tmp.path().join("other");
    copy_folder(&b, &other);
    let mut m = read_json(&other.join("manifest.json"));
    m["workload"]["rate"] = serde_json::json!(6000.0);
    write_json(&other.join("manifest.json"), &m);
    let cmp = loadgen(&["compare", a.to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(cmp.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&cmp.stderr).contains("workloads differ"),
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );

    // Fail closed: a baseline point missing from the candidate.
    let short = tmp.path().join("short");
    copy_folder(&b, &short);
    let mut s = read_json(&short.join("summary.json"));
    s["points"].as_array_mut().unwrap().pop();
    write_json(&short.join("summary.json"), &s);
    let cmp = loadgen(&["compare", a.to_str().unwrap(), short.to_str().unwrap()]);
    assert_eq!(cmp.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&cmp.stderr).contains("missing from the candidate"));

    // Fail closed: an unreadable folder.
    let cmp = loadgen(&["compare", a.to_str().unwrap(), "/nonexistent/results"]);
    assert_eq!(cmp.status.code(), Some(2));

    // Usage errors exit 2.
    for bad in [
        vec!["compare", "x", "y", "--confidence", "100"],
        vec!["compare", "x", "y", "--min-effect", "bogus=5%"],
        vec!["ab", file.to_str().unwrap(), "--repeat", "0"],
    ] {
        assert_eq!(loadgen(&bad).status.code(), Some(2), "{bad:?}");
    }
}
