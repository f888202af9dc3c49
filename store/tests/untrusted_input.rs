//! Bytes a client or a peer sends are untrusted: a node refuses what is
//! malformed or implausible with a typed error, stays up, and keeps every
//! acknowledged write. Real node processes on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use store::version::{Dot, VersionVector};

/// A context from a real get with every counter rewritten to u64::MAX must be
/// refused; before, it was accepted, and a later blind put at W = 3 read back
/// as nothing at all at R = 3. On an insecure cluster: there contexts are not
/// signed, so this is the validation of what is inside a context (a secure
/// cluster refuses any crafted context earlier, by its signature: tests/security.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxed_out_context_is_refused_and_no_write_is_lost() {
    let cluster = start(store::local_cluster::ClusterSpec {
        insecure: true,
        ..spec(3, 3, 3, 3)
    })
    .await;
    let c = client_for(&cluster, &cluster.endpoints()[0]).await;
    let all = wr(3, 3);
    c.put(b"crafted", b"v1", None, &all).await.expect("put v1");
    let seen = c.get(b"crafted", &all).await.expect("get");
    let real = VersionVector::decode_context(&seen.context).expect("a real context decodes");
    assert!(!real.is_empty());
    let mut maxed = VersionVector::new();
    for (actor, _) in real.iter() {
        maxed.add(Dot {
            actor,
            counter: u64::MAX,
        });
    }
    let err = c
        .put(b"crafted", b"evil", Some(&maxed.encode_context()), &all)
        .await
        .expect_err("a context claiming counters far in the future is refused");
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    assert!(
        err.to_string().contains("ahead"),
        "says what is wrong: {err}"
    );

    // An oversized context is refused the same way.
    let mut huge = VersionVector::new();
    for actor in 0..1000u64 {
        huge.add(Dot { actor, counter: 1 });
    }
    let err = c
        .put(b"crafted", b"big", Some(&huge.encode_context()), &all)
        .await
        .expect_err("an oversized context is refused");
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    assert!(
        err.to_string().contains("limit"),
        "says what is wrong: {err}"
    );

    // The key still works: a blind put is kept next to v1.
    c.put(b"crafted", b"blind", None, &all)
        .await
        .expect("blind put");
    let got = c.get(b"crafted", &all).await.expect("get at R = 3");
    let mut values: Vec<Vec<u8>> = got.versions.iter().map(|v| v.value.to_vec()).collect();
    values.sort();
    assert_eq!(values, vec![b"blind".to_vec(), b"v1".to_vec()]);
    cluster.stop().await.expect("stop");
}

/// Every malformed message a peer could send, fed to a real node: a ring
/// with version u64::MAX, one far ahead, one with 100,000 members, a scan
/// with no limit, a Merkle scan naming buckets that do not exist, an
/// oversized version set in a pipeline next to unrelated writes, and garbage
/// in a handoff batch. Each is refused (or bounded) on its own; the node
/// stays up, its ring does not move, and it keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_peer_messages_are_refused_and_the_node_keeps_serving() {
    use bytes::Bytes;
    use store::proto::replica_client::ReplicaClient;
    use store::proto::{
        Entry, HandoffBatch, Member, Merge, Range, ReplicaRequest, ScanRangeRequest,
        replica_request::Op, replica_response,
    };
    use store::version::VersionSet;

    let cluster = start(spec(3, 3, 1, 1)).await;
    let addr = cluster.nodes()[0].address.clone();
    let c = client_for(&cluster, &addr).await;
    let before = c.status().await.unwrap().ring.unwrap();
    let mut rc = ReplicaClient::new(peer_channel(&cluster, &addr, "n2").await);

    // Rings: version at the end of the range, far ahead, too many members.
    let mut evil = before.clone();
    evil.version = u64::MAX;
    assert!(
        rc.push_ring(evil.clone()).await.is_err(),
        "u64::MAX refused"
    );
    evil.version = before.version + (1 << 40);
    assert!(rc.push_ring(evil).await.is_err(), "far ahead refused");
    let mut many = before.clone();
    many.version = before.version + 1;
    many.members = (0..100_000)
        .map(|i| Member {
            id: format!("x{i}"),
            address: format!("127.0.0.1:{}", 1000 + i % 50_000),
            tokens: 4096,
            ..Member::default()
        })
        .collect();
    assert!(rc.push_ring(many).await.is_err(), "100,000 members refused");
    let now = c.status().await.unwrap().ring.unwrap();
    assert_eq!(now.version, before.version, "the ring did not move");

    // A scan without a limit is paged, not the whole range at once.
    for i in 0..(store::replica::MAX_SCAN_ENTRIES + 100) {
        c.put(format!("scan-{i}").as_bytes(), b"v", None, &wr(1, 1))
            .await
            .unwrap();
    }
    let whole = Range { start: 0, end: 0 };
    let mut stream = rc
        .scan_range(ScanRangeRequest {
            range: Some(whole),
            limit: 0,
            ..ScanRangeRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = 0;
    while let Some(e) = stream.message().await.unwrap() {
        assert!(!e.key.is_empty());
        got += 1;
    }
    assert_eq!(got, store::replica::MAX_SCAN_ENTRIES, "limit 0 is one page");
    // Buckets that do not exist, many times over, ask for nothing.
    let mut stream = rc
        .scan_range(ScanRangeRequest {
            range: Some(whole),
            buckets: vec![u32::MAX; 100_000],
            digests_only: true,
            ..ScanRangeRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_none());

    // An oversized set among unrelated merges fails alone.
    let set = |value: Vec<u8>| {
        let mut s = VersionSet::new();
        s.update(
            &VersionVector::new(),
            42,
            Some(Bytes::from(value)),
            store::version::now_millis(),
            64,
        )
        .unwrap();
        Bytes::from(s.encode())
    };
    let requests: Vec<ReplicaRequest> = (0..9u64)
        .map(|i| ReplicaRequest {
            id: i,
            op: Some(Op::Merge(Merge {
                key: Bytes::from(format!("pipe-{i}")),
                versions: if i == 4 {
                    set(vec![7; 2 << 20])
                } else {
                    set(b"small".to_vec())
                },
                hint_for: String::new(),
            })),
        })
        .collect();
    let mut replies = rc
        .pipeline(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut answered = 0;
    while let Some(r) = replies.message().await.unwrap() {
        answered += 1;
        match (r.id, r.result) {
            (4, Some(replica_response::Result::Error(e))) => {
                assert!(r.invalid, "a bad set is the sender's error: {e}");
                assert!(e.contains("limit"), "says what is wrong: {e}");
            }
            (4, other) => panic!("the oversized set was taken: {other:?}"),
            (i, Some(replica_response::Result::Error(e))) => {
                panic!("unrelated merge {i} failed with the oversized one: {e}")
            }
            _ => {}
        }
        if answered == 9 {
            break;
        }
    }
    assert_eq!(answered, 9);

    // Garbage and an oversized set in a handoff batch.
    let ack = rc
        .handoff(HandoffBatch {
            from: "n2".into(),
            entries: vec![
                Entry {
                    key: Bytes::from_static(b"h1"),
                    versions: Bytes::from_static(b"\x01\xff\xff"),
                    ..Entry::default()
                },
                Entry {
                    key: Bytes::from_static(b"h2"),
                    versions: set(vec![1; 2 << 20]),
                    ..Entry::default()
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.accepted, 0);

    // Still up, still serving.
    c.put(b"after", b"ok", None, &wr(3, 3)).await.unwrap();
    assert_eq!(
        value_of(&c, b"after", &wr(3, 3)).await,
        Some(b"ok".to_vec())
    );
    cluster.stop().await.expect("stop");
}
