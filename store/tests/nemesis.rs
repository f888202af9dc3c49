//! The nemesis: concurrent writers (blind puts, read-modify-writes with contexts, deletes) on
//! a small key set of a real 4-node cluster (N = 3, W = R = 2), while a seeded schedule
//! kills (-9), stops, pauses (SIGSTOP), partitions and restarts nodes, and joins and removes
//! one. At the end everything heals, every node runs a repair, hints drain, every key is read
//! at R = N, and `store::audit` checks that every acknowledged write is present or was
//! causally superseded, and that no acknowledged delete was undone.
//!
//! `cargo test --release -p store --test nemesis`; `NEMESIS_SEED=7 NEMESIS_SECS=120` replays
//! one seed for longer. Without `NEMESIS_SEED` it runs seeds 1, 2 and 3 (about a minute).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, client_for, eventually, fast_failure_spec, partition, start, stat_sum, wr};
use parking_lot::Mutex;
use store::audit::{self, FinalState, Write};
use store::client::Client;

const KEYS: usize = 12;
const WRITERS: usize = 3;
/// Most operations one writer issues, whatever the length.
const MAX_OPS_PER_WRITER: usize = 50_000;

/// splitmix64: a seeded sequence, so a seed replays the same schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

fn ctx(bytes: &[u8]) -> store::version::VersionVector {
    audit::client_context(bytes, true).expect("a context the cluster issued decodes")
}

/// One writer: until `deadline`, random blind puts, read-modify-writes and deletes.
async fn writer(c: Client, me: usize, seed: u64, deadline: Instant, log: Arc<Mutex<Vec<Write>>>) {
    let mut rng = Rng(seed ^ (me as u64 + 1).wrapping_mul(0x51_7cc1_b727_220a));
    let cons = wr(2, 2);
    for n in 0..MAX_OPS_PER_WRITER {
        if Instant::now() >= deadline {
            break;
        }
        let key = format!("nk{}", rng.below(KEYS as u64)).into_bytes();
        let value = format!("w{me}-{n}").into_bytes();
        let roll = rng.below(10);
        // Blind (20%), or with the context of a get first.
        let context = if roll < 2 {
            Vec::new()
        } else {
            match c.get(&key, &cons).await {
                Ok(r) => r.context.to_vec(),
                Err(_) => continue,
            }
        };
        let sent = (!context.is_empty()).then_some(context.as_slice());
        let (value, result) = if roll == 9 {
            (None, c.delete(&key, sent, &cons).await)
        } else {
            let r = c.put(&key, &value, sent, &cons).await;
            (Some(value), r)
        };
        let (acked, dot) = match result {
            Ok(reply) => (Some(ctx(&reply.context)), reply.dot),
            Err(_) => (None, None),
        };
        log.lock().push(Write {
            key,
            value,
            context: ctx(&context),
            acked,
            dot,
        });
    }
}

async fn run_seed(seed: u64, secs: u64) {
    let mut cluster = start(fast_failure_spec(4, 3, 2, 2)).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut writers = Vec::new();
    for me in 0..WRITERS {
        let c = client(&cluster).await;
        writers.push(tokio::spawn(writer(c, me, seed, deadline, log.clone())));
    }

    let mut rng = Rng(seed);
    let mut actions: Vec<String> = Vec::new();
    let mut joined: Option<usize> = None;
    let mut removed: BTreeSet<usize> = BTreeSet::new();
    while Instant::now() + Duration::from_secs(3) < deadline {
        tokio::time::sleep(rng.millis(300, 1000)).await;
        let live: Vec<usize> = (0..cluster.nodes().len())
            .filter(|i| !removed.contains(i) && cluster.nodes()[*i].is_running())
            .collect();
        let i = live[rng.below(live.len() as u64) as usize];
        let id = cluster.nodes()[i].id.clone();
        let hold = rng.millis(300, 1500);
        match rng.below(6) {
            0 => {
                cluster.kill_node(i).await.unwrap();
                tokio::time::sleep(hold).await;
                cluster.restart_node(i).await.unwrap();
                actions.push(format!("kill -9 {id}, restart"));
            }
            1 => {
                cluster.stop_node(i).await.unwrap();
                tokio::time::sleep(hold).await;
                cluster.restart_node(i).await.unwrap();
                actions.push(format!("stop {id}, restart"));
            }
            2 => {
                cluster.pause_node(i);
                tokio::time::sleep(hold).await;
                cluster.resume_node(i);
                actions.push(format!("pause {id}, resume"));
            }
            3 => {
                partition(&cluster, i, true).await;
                tokio::time::sleep(hold).await;
                partition(&cluster, i, false).await;
                actions.push(format!("partition {id}, heal"));
            }
            4 if joined.is_none() => {
                let added = tokio::time::timeout(Duration::from_secs(60), cluster.add_node(None))
                    .await
                    .expect("a join finishes within 60 s")
                    .expect("join");
                actions.push(format!("join {}", cluster.nodes()[added].id));
                joined = Some(added);
            }
            5 if joined.is_some_and(|j| !removed.contains(&j)) => {
                let j = joined.unwrap_or_default();
                let jid = cluster.nodes()[j].id.clone();
                tokio::time::timeout(Duration::from_secs(60), cluster.remove_node(j))
                    .await
                    .expect("a leave finishes within 60 s")
                    .expect("leave");
                removed.insert(j);
                actions.push(format!("leave {jid}"));
            }
            _ => {}
        }
    }
    for w in writers {
        w.await.unwrap();
    }

    // Heal everything, repair, let hints drain.
    for i in 0..cluster.nodes().len() {
        if removed.contains(&i) {
            continue;
        }
        cluster.resume_node(i);
        if !cluster.nodes()[i].is_running() {
            cluster.restart_node(i).await.unwrap();
        }
    }
    for i in 0..cluster.nodes().len() {
        if !removed.contains(&i) {
            partition(&cluster, i, false).await;
        }
    }
    let live: Vec<String> = (0..cluster.nodes().len())
        .filter(|i| !removed.contains(i))
        .map(|i| cluster.nodes()[i].address.clone())
        .collect();
    // Replay is throttled and waits for failure detection to see the target alive again; one
    // suite run on this 2-core machine (seed 2) needed more than 60 s, so the bound is 120 s.
    eventually(Duration::from_secs(120), "hints drain", || async {
        stat_sum(&cluster, "hints.pending").await == 0
    })
    .await;
    for addr in &live {
        let c = client_for(&cluster, addr).await;
        c.admin_of(
            0,
            store::proto::admin_request::Op::Repair(store::proto::Repair {}),
        )
        .await
        .expect("repair");
    }

    // Read every key at R = N and audit.
    let reader = client_for(&cluster, &live[0]).await;
    let all = wr(2, 3);
    let mut finals = BTreeMap::new();
    for k in 0..KEYS {
        let key = format!("nk{k}").into_bytes();
        let mut got = None;
        for _ in 0..20 {
            if let Ok(r) = reader.get(&key, &all).await {
                got = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let r = got.unwrap_or_else(|| panic!("seed {seed}: key nk{k} unreadable at R = 3"));
        let values = r
            .versions
            .iter()
            .filter(|v| !v.tombstone)
            .map(|v| v.value.to_vec())
            .collect();
        finals.insert(key, FinalState { values });
    }
    let writes = log.lock().clone();
    let report = audit::audit(&writes, &finals);
    println!(
        "nemesis seed {seed}: {} writes attempted, {} puts and {} deletes acknowledged; {} present, {} superseded; faults: {}",
        writes.len(),
        report.acked_puts,
        report.acked_deletes,
        report.present,
        report.superseded,
        actions.join("; ")
    );
    assert!(
        report.acked_puts > 20,
        "seed {seed}: too few acknowledged writes to mean anything ({})",
        report.acked_puts
    );
    if !report.violations.is_empty() {
        let lines: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
        panic!(
            "seed {seed} (replay: NEMESIS_SEED={seed} NEMESIS_SECS={secs}): {} violations:\n{}\nfaults: {}",
            lines.len(),
            lines.join("\n"),
            actions.join("; ")
        );
    }
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_the_nemesis() {
    let secs: u64 = std::env::var("NEMESIS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
        .clamp(5, 3600);
    let seeds: Vec<u64> = match std::env::var("NEMESIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(s) => vec![s],
        None => vec![1, 2, 3],
    };
    for seed in seeds {
        run_seed(seed, secs).await;
    }
}
