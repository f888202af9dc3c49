//! Cleanup after a join (issue 11, item 4), with real node processes on
//! 127.0.0.1: once the change completes, the old nodes drop their copies of
//! the ranges they lost, and every acknowledged write stays readable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

/// Keys a node holds locally (one ScanRange page over the whole ring).
async fn local_keys(
    cluster: &store::local_cluster::LocalCluster,
    address: &str,
) -> BTreeSet<String> {
    use store::proto::replica_client::ReplicaClient;
    use store::proto::{Range, ScanRangeRequest};
    let mut rc = ReplicaClient::new(peer_channel(cluster, address, "n1").await);
    let mut stream = rc
        .scan_range(ScanRangeRequest {
            range: Some(Range { start: 0, end: 0 }),
            digests_only: true,
            ..ScanRangeRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut keys = BTreeSet::new();
    while let Some(e) = stream.message().await.unwrap() {
        keys.insert(String::from_utf8_lossy(&e.key).into_owned());
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_join_old_nodes_drop_what_they_no_longer_replicate() {
    let mut cluster = start(fast_failure_spec(3, 2, 1, 2)).await;
    let c = client(&cluster).await;
    let keys: Vec<String> = (0..400).map(|i| format!("c-{i}")).collect();
    for k in &keys {
        c.put(k.as_bytes(), b"v", None, &wr(2, 2)).await.unwrap();
    }
    let n4 = cluster.add_node(None).await.expect("join n4");
    let status = client_for(&cluster, &cluster.nodes()[n4].address)
        .await
        .status()
        .await
        .unwrap();
    let ring = store::ring::Ring::new(store::wire::ring_from_proto(status.ring.as_ref().unwrap()))
        .unwrap();
    assert!(ring.next().is_none(), "the join completed");
    for i in 0..3 {
        let (id, address) = (
            cluster.nodes()[i].id.clone(),
            cluster.nodes()[i].address.clone(),
        );
        let me = ring.index_of(&id).unwrap();
        let should: BTreeSet<String> = keys
            .iter()
            .filter(|k| ring.preference_list(k.as_bytes()).contains(&me))
            .cloned()
            .collect();
        eventually(
            Duration::from_secs(40),
            &format!("{id} holds only what it replicates"),
            || {
                let address = address.clone();
                let should = should.clone();
                let cluster = &cluster;
                async move { local_keys(cluster, &address).await == should }
            },
        )
        .await;
    }
    assert!(stat_sum(&cluster, "replica.cleaned_up").await > 0);
    // Nothing acknowledged is gone, and an explicit cleanup finds nothing more.
    for k in &keys {
        assert_eq!(
            value_of(&c, k.as_bytes(), &wr(1, 2)).await,
            Some(b"v".to_vec()),
            "{k}"
        );
    }
    cluster.stop().await.unwrap();
}
