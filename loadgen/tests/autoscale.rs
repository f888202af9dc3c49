//! `autoscale:` end to end against real nodes, shortened for CI but with the same logic as
//! `workloads/autoscale.yaml`: a step up in load gives a scale-out, the new node takes its
//! share, a step down gives a scale-in, no request fails, and every acknowledged write reads
//! back afterwards (the audit).

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

mod common;

const WORKLOAD: &str = "name: autoscale-ci
seed: 1
target: ringkv
cluster: { nodes: 3, replication: 3 }
keys: { count: 3000, size: 16, distribution: uniform }
values: { size: 100 }
mix: { read: 50, write: 50 }
preload: true
warmup: 1s
duration: 30s
rate:
  - { at: 0s, rate: 150 }
  - { at: 3s, rate: 900 }
  - { at: 16s, rate: 60 }
autoscale:
  interval_s: 0.5
  sustain_out_s: 2
  sustain_in_s: 3
  cooldown_s: 2
  max_nodes: 4
  ops_per_node: { out_above: 250, in_below: 150 }
  cpu_per_node: null
  queue_per_node: null
  # Beside the rest of the suite the machine is loaded; the latency guard is unit-tested.
  max_p99_service_ms: null
";

#[test]
fn a_step_up_scales_out_a_step_down_scales_in_with_no_error_and_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("autoscale.yaml");
    std::fs::write(&file, WORKLOAD).unwrap();
    let summary = common::run_ok(&file, &dir.path().join("out"));
    let p = &summary["points"][0];
    let a = &p["autoscale"];
    let decisions = a["decisions"].as_array().unwrap();
    let actions: Vec<&str> = decisions
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["out", "in"], "{a:#}");
    let (out, inn) = (&decisions[0], &decisions[1]);
    assert_eq!(out["nodes_after"], 4);
    assert_eq!(inn["nodes_after"], 3);
    assert_eq!(a["nodes_end"], 3);
    for d in decisions {
        assert!(d["error"].is_null(), "{d:#}");
        let began = d["overload_began_s"].as_f64().unwrap();
        let decided = d["decided_s"].as_f64().unwrap();
        let serving = d["serving_s"].as_f64().unwrap();
        assert!(began <= decided && decided <= serving, "{d:#}");
        assert!(d["signals"]["ops_per_node"].as_f64().is_some(), "{d:#}");
        for phase in d["phases"].as_array().unwrap() {
            assert_eq!(phase["errors"], 0, "{phase:#}");
        }
    }
    // The scale-out came after the step up (at 3 s) and the scale-in after the step down.
    assert!(out["overload_began_s"].as_f64().unwrap() >= 2.5, "{out:#}");
    assert!(inn["overload_began_s"].as_f64().unwrap() >= 15.5, "{inn:#}");
    // The new node took its share: once it served, the least busy node coordinated a fair
    // part of the mean, and the mean per node fell.
    let serving = out["serving_s"].as_f64().unwrap();
    let decided_in = inn["decided_s"].as_f64().unwrap();
    let after: Vec<&serde_json::Value> = a["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            let t = s["t_s"].as_f64().unwrap();
            t > serving + 1.0 && t < 15.5 && t < decided_in
        })
        .collect();
    assert!(!after.is_empty(), "{a:#}");
    for s in &after {
        assert_eq!(s["nodes"], 4, "{s:#}");
        let mean = s["ops_per_node"].as_f64().unwrap();
        assert!(mean < 250.0, "{s:#}");
        assert!(s["ops_min_node"].as_f64().unwrap() > mean / 3.0, "{s:#}");
    }
    // No request failed, and nothing acknowledged was lost.
    for (op, o) in p["ops"].as_object().unwrap() {
        assert_eq!(o["errors"], 0, "{op}: {o:#}");
    }
    assert_eq!(p["audit"]["lost_writes"], 0, "{:#}", p["audit"]);
}
