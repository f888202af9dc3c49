//! The distributed store end to end: real node processes on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use store::client::Consistency;
use store::version::VersionVector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_write_with_overlapping_quorums_3_and_5_nodes() {
    for (nodes, n, w, r) in [(3usize, 3u32, 2u32, 2u32), (5, 3, 2, 2), (5, 5, 3, 3)] {
        let cluster = start(spec(nodes, n, w, r)).await;
        // Through every node as coordinator, not only the token owner.
        for (i, ep) in cluster.endpoints().iter().enumerate() {
            let c = client_for(&cluster, ep).await;
            for k in 0..40 {
                let key = format!("ryw-{i}-{k}");
                let value = format!("value-{k}-via-{i}");
                c.put(key.as_bytes(), value.as_bytes(), None, &wr(w, r))
                    .await
                    .expect("put");
                assert_eq!(
                    value_of(&c, key.as_bytes(), &wr(w, r)).await,
                    Some(value.into_bytes()),
                    "nodes={nodes} N={n}: read after write via node {i}"
                );
            }
        }
        cluster.stop().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_make_siblings_and_merged_context_resolves() {
    let cluster = start(spec(3, 3, 2, 2)).await;
    let eps = cluster.endpoints();
    let a = client_for(&cluster, &eps[0]).await;
    let b = client_for(&cluster, &eps[1]).await;
    let cons = wr(2, 2);
    a.put(b"cart", b"base", None, &cons).await.unwrap();
    let seen = a.get(b"cart", &cons).await.unwrap();
    // Two writers start from the same context, concurrently.
    let (ra, rb) = tokio::join!(
        a.put(b"cart", b"from-a", Some(&seen.context), &cons),
        b.put(b"cart", b"from-b", Some(&seen.context), &cons),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let got = a.get(b"cart", &wr(2, 3)).await.unwrap();
    let mut values: Vec<_> = got.versions.iter().map(|v| v.value.to_vec()).collect();
    values.sort();
    assert_eq!(
        values,
        vec![b"from-a".to_vec(), b"from-b".to_vec()],
        "both kept as siblings"
    );
    // Each put names its version's dot; the read that shows both covers both, and the
    // context each writer started from covers neither.
    let (da, db) = (ra.dot.expect("a's dot"), rb.dot.expect("b's dot"));
    assert_ne!(da, db);
    for d in [da, db] {
        assert_eq!(VersionVector::context_covers(&got.context, d), Ok(true));
        assert_eq!(VersionVector::context_covers(&seen.context, d), Ok(false));
    }
    // A put with the merged context resolves them.
    b.put(b"cart", b"merged", Some(&got.context), &cons)
        .await
        .unwrap();
    assert_eq!(
        value_of(&a, b"cart", &wr(2, 3)).await,
        Some(b"merged".to_vec())
    );
    // A delete concurrent with a put leaves the put visible beside a tombstone.
    let ctx = a.get(b"cart", &cons).await.unwrap().context;
    a.delete(b"cart", Some(&ctx), &cons).await.unwrap();
    b.put(b"cart", b"late", Some(&ctx), &cons).await.unwrap();
    let got = a.get(b"cart", &wr(2, 3)).await.unwrap();
    assert_eq!(got.versions.len(), 2, "{:?}", got.versions);
    assert!(got.versions.iter().any(|v| v.tombstone));
    assert!(got.versions.iter().any(|v| &v.value[..] == b"late"));
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_replica_is_repaired_by_a_read() {
    let mut cluster = start(spec(3, 3, 2, 2)).await;
    // n3 is down while the key is written, so it misses it.
    cluster.kill_node(2).await.unwrap();
    let eps = cluster.endpoints();
    let c = client_for(&cluster, &eps[0]).await;
    c.put(b"stale", b"fresh", None, &wr(2, 2)).await.unwrap();
    cluster.restart_node(2).await.unwrap();
    // A read at R = 3 sees n3's empty answer and repairs it in the background.
    let n3 = client_for(&cluster, &cluster.nodes()[2].address).await;
    eventually(Duration::from_secs(10), "n3 answers R = 3", || async {
        n3.get(b"stale", &wr(2, 3)).await.is_ok()
    })
    .await;
    // Then n3 alone (the others stopped) must hold the value.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.stop_node(0).await.unwrap();
    cluster.stop_node(1).await.unwrap();
    eventually(Duration::from_secs(10), "n3 alone serves the repaired value", || async {
        matches!(n3.get(b"stale", &wr(1, 1)).await, Ok(r) if r.versions.first().map(|v| &v.value[..]) == Some(&b"fresh"[..]))
    })
    .await;
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_keeps_its_data() {
    let mut cluster = start(spec(3, 3, 3, 1)).await;
    let c = client(&cluster).await;
    for k in 0..200 {
        let key = format!("keep-{k}");
        c.put(key.as_bytes(), key.as_bytes(), None, &wr(3, 1))
            .await
            .unwrap();
    }
    // A crash (SIGKILL) right after the acknowledgements, then a restart.
    cluster.kill_node(0).await.unwrap();
    cluster.restart_node(0).await.unwrap();
    cluster.stop_node(1).await.unwrap();
    cluster.stop_node(2).await.unwrap();
    let n1 = client_for(&cluster, &cluster.nodes()[0].address).await;
    // Only n1 is up: R = 1 reads its local data.
    eventually(Duration::from_secs(10), "n1 sees peers down", || async {
        n1.get(b"keep-0", &wr(1, 1)).await.is_ok()
    })
    .await;
    for k in 0..200 {
        let key = format!("keep-{k}");
        assert_eq!(
            value_of(&n1, key.as_bytes(), &wr(1, 1)).await,
            Some(key.clone().into_bytes()),
            "{key} lost across a restart"
        );
    }
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_status() {
    let cluster = start(spec(3, 3, 2, 2)).await;
    let c = client(&cluster).await;
    let invalid = |e: store::client::ClientError| {
        assert_eq!(e.code(), Some(tonic::Code::InvalidArgument), "{e}");
        e.to_string()
    };
    let msg = invalid(c.put(b"k", b"v", None, &wr(4, 2)).await.unwrap_err());
    assert!(msg.contains("W) = 4") && msg.contains("N = 3"), "{msg}");
    let msg = invalid(c.get(b"k", &wr(2, 9)).await.unwrap_err());
    assert!(msg.contains("R) = 9"), "{msg}");
    let big = vec![0u8; store::config::MAX_VALUE_BYTES + 1];
    let msg = invalid(c.put(b"k", &big, None, &wr(2, 2)).await.unwrap_err());
    assert!(msg.contains("limit is 10240 bytes"), "{msg}");
    let long_key = vec![b'k'; store::config::MAX_KEY_BYTES + 1];
    let msg = invalid(c.put(&long_key, b"v", None, &wr(2, 2)).await.unwrap_err());
    assert!(msg.contains("key is 1025 bytes"), "{msg}");
    let msg = invalid(c.put(b"", b"v", None, &wr(2, 2)).await.unwrap_err());
    assert!(msg.contains("empty"), "{msg}");
    let msg = invalid(
        c.put(b"k", b"v", Some(b"\x07garbage"), &wr(2, 2))
            .await
            .unwrap_err(),
    );
    assert!(msg.contains("context"), "{msg}");
    // The largest legal value is fine.
    let max = vec![1u8; store::config::MAX_VALUE_BYTES];
    c.put(b"k", &max, None, &Consistency::default())
        .await
        .unwrap();
    // An endpoint where nothing listens.
    let nowhere = store::local_cluster::free_loopback_address().unwrap();
    let err = store::client::Client::connect(&[nowhere], store::client::ClientOptions::default())
        .await
        .err()
        .expect("nothing listens there");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmet_quorum_says_how_many_answered() {
    let mut cluster = start(spec(3, 3, 2, 2)).await;
    cluster.kill_node(1).await.unwrap();
    cluster.kill_node(2).await.unwrap();
    let c = client_for(&cluster, &cluster.nodes()[0].address).await;
    let err = c.put(b"k", b"v", None, &wr(2, 2)).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::Unavailable), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("1 of 2 required replicas"), "{msg}");
    // W = 1 still works with one node up.
    c.put(b"k", b"v", None, &wr(1, 1)).await.unwrap();
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_sibling_is_dropped_at_the_bound_the_write_is_refused_instead() {
    let mut spec = spec(3, 3, 2, 2);
    spec.extra_node_args = vec!["--max-siblings".into(), "4".into()];
    let cluster = start(spec).await;
    let c = client(&cluster).await;
    let cons = wr(2, 3);
    // Blind writes: each is a new sibling.
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..7 {
        let v = format!("blind-{i}");
        match c.put(b"crowded", v.as_bytes(), None, &cons).await {
            Ok(_) => acked.push(v.into_bytes()),
            Err(e) => {
                // Its own code, apart from bad requests: a read and a write with its
                // context resolve it.
                assert_eq!(e.code(), Some(tonic::Code::Aborted), "{e}");
                assert!(e.to_string().contains("concurrent versions"), "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!(acked.len(), 4, "up to the bound");
    assert_eq!(refused, 3);
    // Every acknowledged write is there.
    let got = c.get(b"crowded", &cons).await.unwrap();
    let mut values: Vec<Vec<u8>> = got.versions.iter().map(|v| v.value.to_vec()).collect();
    values.sort();
    acked.sort();
    assert_eq!(values, acked);
    // A write with the context of that read resolves them and is taken.
    c.put(b"crowded", b"resolved", Some(&got.context), &cons)
        .await
        .unwrap();
    assert_eq!(
        value_of(&c, b"crowded", &cons).await,
        Some(b"resolved".to_vec())
    );
    cluster.stop().await.unwrap();
}
