//! `ringkv autoscale` against real nodes, acting through an operator's command (the recipe in
//! `scripts/autoscale-local-node.sh`): load makes it add a node, quiet makes it remove one,
//! no request fails meanwhile, every acknowledged write is still there, the ring counts both
//! changes, and a second controller is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use store::client::{Client, ClientOptions, Consistency};
use store::local_cluster::LocalCluster;

const POLICY: &str = "
interval_s: 0.5
sustain_out_s: 1
sustain_in_s: 2
cooldown_s: 2
min_nodes: 3
max_nodes: 4
ops_per_node: {out_above: 40, in_below: 30}
cpu_per_node: null
queue_per_node: null
max_p99_service_ms: null
";

/// The controller process, killed however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Nodes the scaling script started (pid files in its directory), killed however the test
/// ends.
struct ScaledNodes(std::path::PathBuf);

impl Drop for ScaledNodes {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "pid")
                && let Ok(pid) = std::fs::read_to_string(e.path())
            {
                // The shell's own `kill`: no procps needed.
                let _ = Command::new("sh")
                    .arg("-c")
                    .arg(format!("kill -9 {}", pid.trim()))
                    .status();
            }
        }
    }
}

async fn members(c: &Client) -> usize {
    c.status()
        .await
        .ok()
        .and_then(|s| s.ring)
        .filter(|r| r.next_members.is_empty())
        .map_or(0, |r| r.members.len())
}

/// Writes keys `k0`, `k1`, … at about 300 a second until `done` says stop (at most 60 s);
/// returns the keys acknowledged and the number of failed writes.
async fn write_until(c: &Client, done: impl Fn(usize) -> bool, from: usize) -> (usize, usize) {
    let started = Instant::now();
    let mut failed = 0;
    let mut i = from;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while started.elapsed() < Duration::from_secs(60) {
        tick.tick().await;
        for _ in 0..3 {
            let key = format!("k{i}");
            match c
                .put(
                    key.as_bytes(),
                    key.as_bytes(),
                    None,
                    &Consistency::default(),
                )
                .await
            {
                Ok(_) => i += 1,
                Err(e) => {
                    eprintln!("write {key} failed: {e}");
                    failed += 1;
                }
            }
        }
        if done(i) {
            break;
        }
    }
    (i, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringkv_autoscale_adds_a_node_under_load_and_removes_it_when_quiet_losing_nothing() {
    let cluster: LocalCluster = common::start(common::spec(3, 3, 2, 2)).await;
    let base = cluster.base_dir().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let pool = work.path().join("pool");
    let spare = store::local_cluster::free_loopback_address().unwrap();
    std::fs::write(&pool, format!("{spare}\n")).unwrap();
    let policy = work.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let lock = work.path().join("autoscale.lock");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/autoscale-local-node.sh"
    );
    let bin = env!("CARGO_BIN_EXE_ringkv");
    let autoscale = |log: &str| {
        let mut cmd = Command::new(bin);
        cmd.args(["autoscale", "--endpoint"])
            .arg(cluster.endpoints().join(","))
            .arg("--policy")
            .arg(&policy)
            .arg("--lock")
            .arg(&lock)
            .arg("--command")
            .arg(format!("sh {script}"))
            .env("RINGKV_CLUSTER_DIR", &base)
            .env("RINGKV_SCALE_DIR", work.path().join("scaled"))
            .env("RINGKV_ADDRESS_POOL", &pool)
            .env("RINGKV_BIN", bin)
            .env(
                "RINGKV_NODE_ARGS",
                "--tokens 32 --replication 3 --write-quorum 2 --read-quorum 2 --log warn",
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(work.path().join(log)).unwrap())
            .stderr(std::fs::File::create(work.path().join(format!("{log}.err"))).unwrap());
        cmd
    };
    let _scaled = ScaledNodes(work.path().join("scaled"));
    let controller = KillOnDrop(autoscale("controller.log").spawn().unwrap());
    let out = |f: &str| std::fs::read_to_string(work.path().join(f)).unwrap_or_default();
    let started = Instant::now();
    while !out("controller.log").contains("holding") && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        out("controller.log").contains("holding"),
        "{}",
        out("controller.log.err")
    );

    // A second controller on the same lock is refused at once.
    let second = autoscale("second.log").output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = std::fs::read_to_string(work.path().join("second.log.err")).unwrap();
    assert!(err.contains("another autoscaler"), "{err}");

    let c = Client::connect(
        &cluster.endpoints(),
        ClientOptions {
            security: cluster.client_security(),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    let watcher = common::client(&cluster).await;
    // ~300 writes a second is ~100 per node: over 40, so it scales out to 4 (the maximum).
    let scaled_out = std::sync::atomic::AtomicBool::new(false);
    let load = write_until(
        &c,
        |_| scaled_out.load(std::sync::atomic::Ordering::Relaxed),
        0,
    );
    let watch = async {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(50) {
            if members(&watcher).await == 4 {
                // Keep loading a moment so requests meet the new ring.
                tokio::time::sleep(Duration::from_secs(2)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        scaled_out.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let ((written, failed), ()) = tokio::join!(load, watch);
    let log = || {
        let dir = work.path();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        format!("{}{}", read("controller.log"), read("controller.log.err"))
    };
    assert_eq!(
        members(&watcher).await,
        4,
        "no scale-out; controller log:\n{}",
        log()
    );
    assert_eq!(failed, 0, "writes failed while scaling out");

    // Quiet: it removes the node it added, and only that one.
    let started = Instant::now();
    while members(&watcher).await != 3 && started.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        members(&watcher).await,
        3,
        "no scale-in; controller log:\n{}",
        log()
    );
    let status = watcher.status().await.unwrap();
    let ring = status.ring.unwrap();
    assert_eq!((ring.autoscaled_out, ring.autoscaled_in), (1, 1));
    let mut ids: Vec<String> = ring.members.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["n1", "n2", "n3"]);

    // `ringkv status` shows the counts.
    let out = Command::new(bin)
        .args(["status", "--endpoint", &cluster.endpoints()[0]])
        .env("RINGKV_CLUSTER_DIR", &base)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("autoscaler: 1 nodes added, 1 removed"),
        "{text}"
    );

    // Nothing lost: every acknowledged write reads back.
    let c = common::client(&cluster).await;
    for i in 0..written {
        let key = format!("k{i}");
        let got = c
            .get(key.as_bytes(), &Consistency::default())
            .await
            .unwrap();
        assert!(
            got.versions
                .iter()
                .any(|v| v.value.as_ref() == key.as_bytes()),
            "{key} lost after scaling out and in"
        );
    }
    // The controller prints each decision once carried out: the node it removed keeps serving
    // for a few seconds (clients learn the smaller ring), then stops.
    let started = Instant::now();
    while !log().contains("autoscale in") && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(controller);
    let text = log();
    assert!(
        text.contains("autoscale out") && text.contains("autoscale in"),
        "{text}"
    );
}
