//! `cluster.endpoints`: the loadgen asks an already-running cluster what it is (members, N,
//! default W and R) and labels its results with that; a workload asking for another N is
//! refused up front (exit 2); node costs per operation come from the nodes' own Status. The clusters are real, secure local clusters; the loadgen finds
//! their CA and token through `cluster.security.cluster_dir`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use store::local_cluster::{ClusterSpec, LocalCluster, NodeLauncher};

fn launcher() -> NodeLauncher {
    NodeLauncher {
        program: env!("CARGO_BIN_EXE_loadgen").into(),
        args_prefix: vec!["__node".into(), "--log".into(), "warn".into()],
    }
}

async fn cluster(nodes: usize, n: u32, w: u32, r: u32) -> LocalCluster {
    let spec = ClusterSpec {
        nodes,
        tokens_per_node: 16,
        replication: n,
        write_quorum: w,
        read_quorum: r,
        ..ClusterSpec::default()
    };
    LocalCluster::start(&spec, &launcher()).await.unwrap()
}

/// A short workload against `c`'s endpoints; `extra` goes into the `cluster:` map.
fn workload(dir: &Path, c: &LocalCluster, extra: &str) -> std::path::PathBuf {
    let endpoints = c
        .endpoints()
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "name: remote\ntarget: ringkv\n\
         cluster:\n  endpoints: [{endpoints}]\n  security: {{ cluster_dir: \"{}\" }}\n{extra}\
         keys: {{ count: 200 }}\nvalues: {{ size: 100 }}\nmix: {{ read: 50, write: 50 }}\n\
         preload: true\nwarmup: 0s\nduration: 1s\nrate: 200\n",
        c.base_dir().display()
    );
    let path = dir.join("remote.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(workload: &Path, out: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", workload.to_str().unwrap(), "--quiet", "--out"])
        .arg(out)
        .env_remove("RINGKV_CLUSTER_DIR")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_carry_what_the_cluster_is_and_a_wrong_n_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (nodes, n, w, r) in [(1usize, 1u32, 1u32, 1u32), (5, 3, 3, 1)] {
        let c = cluster(nodes, n, w, r).await;
        let out = tmp.path().join(format!("out-{nodes}"));
        let (code, err) = run(&workload(tmp.path(), &c, ""), &out);
        assert_eq!(code, 0, "{err}");
        let point = &json(&out.join("summary.json"))["points"][0];
        let params = &point["params"];
        assert_eq!(params["nodes"], nodes as u64, "{params}");
        assert_eq!(params["replication"], u64::from(n), "{params}");
        assert_eq!(
            params["write_quorum"],
            u64::from(w),
            "the cluster's default W"
        );
        assert_eq!(
            params["read_quorum"],
            u64::from(r),
            "the cluster's default R"
        );
        let errors = point["ops"]["write"]["errors"].as_u64().unwrap_or(0)
            + point["ops"]["read"]["errors"].as_u64().unwrap_or(0);
        assert_eq!(errors, 0, "{point}");
        // The nodes are not local processes of the loadgen: their costs come from their own
        // Status reports, every member's (the workload lists all endpoints here).
        let res = &point["resources"];
        let cpu = res["node_cpu_us_per_op"].as_f64();
        assert!(
            cpu.is_some_and(|c| c > 0.0),
            "node CPU per op from Status: {res}"
        );
        assert!(res["fsyncs_per_op"].as_f64().is_some(), "{res}");
        let manifest = json(&out.join("manifest.json"));
        assert_eq!(manifest["cluster"]["nodes"], nodes as u64);
        assert_eq!(manifest["cluster"]["replication"], u64::from(n));

        if nodes == 1 {
            // The workload asks N = 3 of a cluster with N = 1: refused before any request.
            let wrong = workload(tmp.path(), &c, "  replication: 3\n");
            let (code, err) = run(&wrong, &tmp.path().join("wrong"));
            assert_eq!(code, 2, "{err}");
            assert!(err.contains("N = 1"), "{err}");
        }
        c.stop().await.unwrap();
    }
}
