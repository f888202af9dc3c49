//! Actor epochs end to end (issue 11, item 2), with real node processes on
//! 127.0.0.1: a fallback that handed a write off and dropped its copy must
//! not, on its next write of that key, claim the write it handed off.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use store::client::Consistency;

fn sloppy(w: u32, r: u32) -> Consistency {
    Consistency {
        sloppy: Some(true),
        ..wr(w, r)
    }
}

/// Owner down, hinted write through fallback F, owner back, handoff (F drops
/// its copy), owner down again, blind write through F, owner back, read at
/// R = N: both versions are there as siblings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_write_after_handoff_keeps_the_handed_off_version() {
    // 4 nodes, N = 3: a key that node 0 does not replicate has node 0 as its
    // only fallback.
    let mut cluster = start(fast_failure_spec(4, 3, 2, 2)).await;
    let f_addr = cluster.nodes()[0].address.clone();
    let f = client_for(&cluster, &f_addr).await;
    let status = f.status().await.unwrap();
    let ring = store::ring::Ring::new(store::wire::ring_from_proto(status.ring.as_ref().unwrap()))
        .unwrap();
    let f_idx = ring.index_of(&cluster.nodes()[0].id).unwrap();
    let key = (0..10_000)
        .map(|i| format!("epoch-{i}"))
        .find(|k| !ring.preference_list(k.as_bytes()).contains(&f_idx))
        .unwrap();
    let owner_id = ring
        .member(ring.preference_list(key.as_bytes())[0])
        .unwrap()
        .id
        .clone();
    let owner = cluster
        .nodes()
        .iter()
        .position(|n| n.id == owner_id)
        .unwrap();

    let hinted_write = |value: &'static str| {
        let f = f.clone();
        let key = key.clone();
        async move {
            // Until F sees the owner gone and stores the write with a hint.
            let mut last = None;
            for _ in 0..100 {
                match f
                    .put(key.as_bytes(), value.as_bytes(), None, &sloppy(3, 1))
                    .await
                {
                    Ok(_) => return,
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("hinted write of {value} never acknowledged: {last:?}");
        }
    };
    let drained = |want_removed: u64| {
        let f = f.clone();
        async move {
            eventually(
                Duration::from_secs(30),
                "hints delivered and copy dropped",
                || {
                    let f = f.clone();
                    async move {
                        stat_of(&f, "hints.pending").await == 0
                            && stat_of(&f, "handoff.handed_off_removed").await >= want_removed
                    }
                },
            )
            .await;
        }
    };

    cluster.kill_node(owner).await.unwrap();
    hinted_write("v1").await;
    cluster.restart_node(owner).await.unwrap();
    drained(1).await;
    cluster.kill_node(owner).await.unwrap();
    hinted_write("v2").await;
    cluster.restart_node(owner).await.unwrap();
    drained(2).await;

    let got = f.get(key.as_bytes(), &wr(2, 3)).await.unwrap();
    let mut values: Vec<Vec<u8>> = got.versions.iter().map(|v| v.value.to_vec()).collect();
    values.sort();
    values.dedup();
    assert_eq!(
        values,
        vec![b"v1".to_vec(), b"v2".to_vec()],
        "the handed-off write and the later blind write are siblings"
    );
    assert!(
        stat(&cluster, &f_addr, "replica.actor_epoch").await >= 1,
        "F moved to a new actor epoch when it dropped its copy"
    );
    cluster.stop().await.unwrap();
}
