//! The redis target against real `redis-server` processes: one the loadgen starts for the run
//! (and stops), and one the test starts and names in `cluster.endpoints`. `.ci/run` installs
//! Debian's redis-server; without it these tests fail, they never skip.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

mod common;

use std::path::Path;

fn workload(dir: &Path, cluster: &str) -> std::path::PathBuf {
    workload_driven(dir, cluster, "warmup: 0.5s\nduration: 2s\nrate: 3000")
}

fn workload_driven(dir: &Path, cluster: &str, load: &str) -> std::path::PathBuf {
    let path = dir.join("redis.yaml");
    std::fs::write(
        &path,
        format!(
            "name: redis-test
target: redis
cluster: {cluster}
keys: {{ count: 2000, size: 16, distribution: zipfian }}
values: {{ size: 1KB }}
mix: {{ read: 45, write: 45, delete: 5, read_modify_write: 5 }}
preload: true
{load}
connections: 4
"
        ),
    )
    .unwrap();
    path
}

fn check(summary: &serde_json::Value) {
    assert_eq!(summary["target"], "redis");
    let p = &summary["points"][0];
    assert_eq!(p["preload"]["keys"], 2000, "{}", p["preload"]);
    let ops = p["ops"].as_object().unwrap();
    let total: u64 = ops.values().map(|o| o["count"].as_u64().unwrap()).sum();
    let errors: u64 = ops.values().map(|o| o["errors"].as_u64().unwrap()).sum();
    assert!(total >= 5_000, "{total} operations");
    assert_eq!(errors, 0, "{}", p["first_error"]);
    assert!(
        p.get("consistency").is_none(),
        "redis values are not traced"
    );
}

#[test]
fn a_server_the_loadgen_starts_is_loaded_and_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let summary = common::run_ok(
        &workload(tmp.path(), "{ start: true }"),
        &tmp.path().join("out"),
    );
    check(&summary);
    // The server was sampled as the target's process, and is gone.
    let procs = summary["points"][0]["processes"].as_array().unwrap();
    let pid = procs
        .iter()
        .find(|p| p["role"] != "loadgen")
        .and_then(|p| p["pid"].as_u64())
        .expect("the server's process");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "redis-server {pid} outlived the run"
    );
}

#[test]
fn a_running_server_is_reached_through_its_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    // The same server the loadgen would start, started here and named by its endpoint.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(loadgen::target::redis::RedisServer::start())
        .expect("redis-server (Debian: apt-get install redis-server)");
    let summary = common::run_ok(
        &workload(
            tmp.path(),
            &format!("{{ endpoints: [\"{}\"] }}", server.address()),
        ),
        &tmp.path().join("out"),
    );
    drop(server);
    check(&summary);
}

#[test]
fn a_pipelined_closed_loop_sends_batches_and_counts_every_answer() {
    let tmp = tempfile::tempdir().unwrap();
    // 50,000 operations in batches of 16 from 4 workers: the last batch is cut to the limit.
    let summary = common::run_ok(
        &workload_driven(
            tmp.path(),
            "{ start: true }",
            "ops: 50000\nconcurrency: 4\npipeline: 16",
        ),
        &tmp.path().join("out"),
    );
    check(&summary);
    let ops = summary["points"][0]["ops"].as_object().unwrap();
    let total: u64 = ops.values().map(|o| o["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 50_000, "{ops:?}");
}

/// Reads only, `preload` as given, against a server the loadgen starts.
fn reads_found_nothing(dir: &Path, preload: bool, load: &str) -> (u64, u64) {
    let path = dir.join(format!("reads-{preload}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: redis-reads
target: redis
cluster: {{ start: true }}
keys: {{ count: 2000, size: 16, distribution: uniform }}
values: {{ size: 100 }}
mix: {{ read: 100 }}
preload: {preload}
{load}
"
        ),
    )
    .unwrap();
    let summary = common::run_ok(&path, &dir.join(format!("out-{preload}")));
    let read = &summary["points"][0]["ops"]["read"];
    (
        read["count"].as_u64().unwrap(),
        read["found_nothing"].as_u64().unwrap(),
    )
}

#[test]
fn reads_that_find_no_value_are_counted_apart() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing written: every GET answers nil, one by one and in pipelines alike.
    for load in [
        "ops: 3000\nconcurrency: 4",
        "ops: 3000\nconcurrency: 4\npipeline: 16",
    ] {
        let (count, empty) = reads_found_nothing(tmp.path(), false, load);
        assert_eq!((count, empty), (3000, 3000), "{load}");
        let report = std::fs::read_to_string(tmp.path().join("out-false/report.md")).unwrap();
        assert!(
            report.contains("3000 of 3000 reads (100.0%) found no value"),
            "{report}"
        );
        std::fs::remove_dir_all(tmp.path().join("out-false")).unwrap();
    }
    // Every key preloaded: every GET finds its value.
    let (count, empty) = reads_found_nothing(tmp.path(), true, "ops: 3000\nconcurrency: 4");
    assert_eq!((count, empty), (3000, 0));
    let report = std::fs::read_to_string(tmp.path().join("out-true/report.md")).unwrap();
    assert!(!report.contains("found no value"), "{report}");
}
