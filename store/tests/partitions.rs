//! Real network partitions: each node on its own loopback address, nftables DROP rules between
//! them. A cut-off node is marked down by its peers and strict W = 3 writes fail while it lasts;
//! after the heal they succeed again; the rules go with the cluster, and those of a run that
//! died are cleared by the next. Needs root and nftables: without them this test fails, it
//! never skips (`.ci/run` installs nftables).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use store::local_cluster::netfilter;

fn table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

async fn member_state(c: &store::client::Client, id: &str) -> String {
    c.status()
        .await
        .ok()
        .and_then(|s| s.ring)
        .and_then(|r| r.members.into_iter().find(|m| m.id == id))
        .map(|m| m.state)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_really_cuts_a_node_off_until_it_heals() {
    netfilter::available().expect("partitions need root and nftables here");
    let mut spec = fast_failure_spec(3, 3, 2, 2);
    spec.own_addresses = true;
    let cluster = start(spec).await;
    let addresses: Vec<&str> = cluster.nodes().iter().map(|n| n.address.as_str()).collect();
    assert!(
        addresses
            .iter()
            .all(|a| a.starts_with("127.") && !a.starts_with("127.0.0.1:"))
    );
    let table = cluster.partition_table().expect("own addresses");
    let n1 = client_for(&cluster, &cluster.nodes()[0].address).await;
    let strict = store::client::Consistency {
        w: Some(3),
        r: Some(3),
        sloppy: Some(false),
        timeout: Some(Duration::from_secs(2)),
    };
    n1.put(b"before", b"v", None, &strict)
        .await
        .expect("W = 3 before the partition");

    cluster.partition(&[vec![2]]).expect("partition n3 off");
    assert!(table_exists(&table));
    eventually(Duration::from_secs(20), "n1 marks n3 down", || async {
        member_state(&n1, "n3").await == "down"
    })
    .await;
    let err = n1
        .put(b"during", b"v", None, &strict)
        .await
        .expect_err("W = 3 must fail while n3 is cut off");
    assert_eq!(err.code(), Some(tonic::Code::Unavailable), "{err}");
    // The client still reaches n3 itself (clients are not cut), and n3 sees its peers down.
    let n3 = client_for(&cluster, &cluster.nodes()[2].address).await;
    eventually(Duration::from_secs(20), "n3 marks n1 down", || async {
        member_state(&n3, "n1").await == "down"
    })
    .await;

    cluster.heal().expect("heal");
    assert!(!table_exists(&table));
    eventually(
        Duration::from_secs(20),
        "n1 sees n3 alive again",
        || async { member_state(&n1, "n3").await == "alive" },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "W = 3 succeeds after the heal",
        || async { n1.put(b"after", b"v", None, &strict).await.is_ok() },
    )
    .await;
    cluster.partition(&[vec![0]]).expect("partition again");
    cluster.stop().await.expect("stop");
    assert!(!table_exists(&table), "the rules go with the cluster");
}

#[test]
fn rules_left_by_a_run_that_died_are_cleared_by_the_next() {
    netfilter::available().expect("partitions need root and nftables here");
    // A run that died: its claim names a process that is gone, its table is still there.
    let dead = netfilter::AddressBlock::claim().expect("claim");
    let table = dead.table();
    let ip = dead.ip(0).unwrap();
    dead.partition(&[vec![ip], vec![dead.ip(1).unwrap()]])
        .expect("rules");
    let block: u32 = table.trim_start_matches("ringkv_").parse().unwrap();
    std::mem::forget(dead);
    std::fs::write(format!("/tmp/ringkv-net/{block}.pid"), "4194303").unwrap();
    assert!(table_exists(&table));
    let next = netfilter::AddressBlock::claim().expect("claim");
    assert!(!table_exists(&table), "the dead run's table is gone");
    assert!(!std::path::Path::new(&format!("/tmp/ringkv-net/{block}.pid")).exists());
    assert_ne!(next.table(), table);
}
