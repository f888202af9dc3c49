//! The multiplexed `Kv.Session` protocol against real nodes: out-of-order answers, thousands
//! in flight, a bad request failing alone, the client's failover when a node dies with
//! requests in flight, and hedged reads around a frozen node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use common::{client, raw_kv, spec, start, wr};
use store::client::{Client, ClientOptions};
use store::local_cluster::LocalCluster;
use store::proto::{self as pb, session_request, session_response};
use tokio_stream::StreamExt;

/// The tests of this file run one at a time: each starts a cluster and the first pushes
/// thousands of requests, and a node starved of CPU by a neighbour test's load can be
/// suspected by its peers, which is not what these tests are about.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn put(id: u64, key: &str, w: u32) -> pb::SessionRequest {
    pb::SessionRequest {
        id,
        op: Some(session_request::Op::Put(pb::PutRequest {
            key: Bytes::from(key.to_string()),
            value: Bytes::from(vec![7u8; 100]),
            context: Bytes::new(),
            consistency: Some(pb::Consistency {
                w,
                ..Default::default()
            }),
        })),
    }
}

fn get(id: u64, key: &[u8]) -> pb::SessionRequest {
    pb::SessionRequest {
        id,
        op: Some(session_request::Op::Get(pb::GetRequest {
            key: Bytes::copy_from_slice(key),
            consistency: None,
        })),
    }
}

/// Sends `requests` on one session and collects every answer, in arrival order.
async fn exchange(
    cluster: &LocalCluster,
    address: &str,
    requests: Vec<pb::SessionRequest>,
) -> Vec<pb::SessionResponse> {
    let n = requests.len();
    let mut kv = raw_kv(cluster, address).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for r in requests {
        tx.send(r).unwrap();
    }
    let mut answers = kv
        .session(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.len() < n {
        let next = tokio::time::timeout_at(deadline, answers.next())
            .await
            .expect("every request is answered within 60 s");
        out.push(
            next.expect("the session stays open")
                .expect("no stream error"),
        );
    }
    drop(tx);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_come_back_by_id_in_any_order_with_thousands_in_flight() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = start(spec(3, 3, 2, 2)).await;
    let address = cluster.nodes()[0].address.clone();
    // A put with W = 3 needs every replica's fsync; an empty key is refused at once. Sent in
    // that order on one session, the refusal must not wait behind the put.
    let answers = exchange(&cluster, &address, vec![put(1, "slow", 3), get(2, b"")]).await;
    let ids: Vec<u64> = answers.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![2, 1], "the quick answer overtakes the slow one");
    match &answers[0].result {
        Some(session_response::Result::Error(e)) => {
            assert_eq!(e.code, tonic::Code::InvalidArgument as i32);
            assert!(e.message.contains("empty"), "{}", e.message);
        }
        other => panic!("expected an error for the empty key, got {other:?}"),
    }
    assert!(matches!(
        answers[1].result,
        Some(session_response::Result::Put(_))
    ));

    // 3,000 requests in flight at once on one stream: every id is answered exactly once.
    let n = 3000u64;
    let requests = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                put(10 + i, &format!("k{}", i % 500), 2)
            } else {
                get(10 + i, format!("k{}", i % 500).as_bytes())
            }
        })
        .collect();
    let answers = exchange(&cluster, &address, requests).await;
    let mut seen = HashSet::new();
    for a in &answers {
        assert!(seen.insert(a.id), "id {} answered twice", a.id);
        match &a.result {
            Some(session_response::Result::Put(p)) => assert!(p.acks >= 2),
            Some(session_response::Result::Get(_)) => {}
            other => panic!("request {} failed: {other:?}", a.id),
        }
    }
    assert_eq!(seen.len() as u64, n);
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_fails_alone_and_the_session_goes_on() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = start(spec(1, 1, 1, 1)).await;
    let address = cluster.nodes()[0].address.clone();
    let no_op = pb::SessionRequest { id: 5, op: None };
    let huge_key = vec![b'k'; store::config::MAX_KEY_BYTES + 1];
    let answers = exchange(
        &cluster,
        &address,
        vec![no_op, get(6, &huge_key), put(7, "fine", 1), get(8, b"fine")],
    )
    .await;
    let by_id = |id: u64| answers.iter().find(|a| a.id == id).unwrap();
    match &by_id(5).result {
        Some(session_response::Result::Error(e)) => {
            assert_eq!(e.code, tonic::Code::InvalidArgument as i32);
            assert!(e.message.contains("without an operation"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    match &by_id(6).result {
        Some(session_response::Result::Error(e)) => {
            assert!(e.message.contains("key is 1025 bytes"), "{}", e.message)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        by_id(7).result,
        Some(session_response::Result::Put(_))
    ));
    assert!(matches!(
        by_id(8).result,
        Some(session_response::Result::Get(_))
    ));
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_fails_only_writes_that_may_have_been_applied() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster = start(spec(3, 3, 2, 2)).await;
    let c = client(&cluster).await;
    let cons = wr(2, 2);
    for i in 0..200 {
        c.put(format!("k{i}").as_bytes(), b"v0", None, &cons)
            .await
            .unwrap();
    }
    // Many requests in flight on every node's session, then one node dies.
    let mut running = tokio::task::JoinSet::new();
    for i in 0..400u32 {
        let c = c.clone();
        running.spawn(async move {
            let key = format!("k{}", i % 200);
            if i % 2 == 0 {
                (
                    true,
                    c.put(key.as_bytes(), b"v1", None, &wr(2, 2)).await.err(),
                )
            } else {
                (false, c.get(key.as_bytes(), &wr(2, 2)).await.err())
            }
        });
        if i == 100 {
            cluster.kill_node(2).await.unwrap();
        }
    }
    let mut read_errors = Vec::new();
    let mut write_errors = Vec::new();
    while let Some(r) = running.join_next().await {
        let (write, err) = r.unwrap();
        if let Some(e) = err {
            if write {
                write_errors.push(e);
            } else {
                read_errors.push(e);
            }
        }
    }
    if !read_errors.is_empty() {
        for n in cluster.nodes() {
            let log = std::fs::read_to_string(&n.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!(
                "--- {} running={} log tail:\n{}",
                n.id,
                n.is_running(),
                tail.join("\n")
            );
        }
    }
    assert!(
        read_errors.is_empty(),
        "reads go on at once on the other replicas: {} failed, first: {:?}",
        read_errors.len(),
        read_errors.first()
    );
    for e in &write_errors {
        assert!(
            e.is_indeterminate(),
            "a write may fail only when it might have been applied: {e}"
        );
    }
    // Every key still answers afterwards.
    for i in 0..200 {
        c.get(format!("k{i}").as_bytes(), &cons).await.unwrap();
    }
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedged_reads_are_answered_by_the_next_replica_while_the_first_is_frozen() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = start(spec(3, 3, 2, 2)).await;
    let c = client(&cluster).await;
    for i in 0..30 {
        c.put(format!("h{i}").as_bytes(), b"v", None, &wr(3, 2))
            .await
            .unwrap();
    }
    // A long deadline: without hedging, a read whose first replica is frozen waits half of it
    // (15 s) before it asks the next one.
    let hedged = Client::connect(
        &cluster.endpoints(),
        ClientOptions {
            timeout: Duration::from_secs(30),
            security: cluster.client_security(),
            hedge_reads_after: Some(Duration::from_millis(50)),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    // Learn the ring before freezing a node, then freeze it: connections stay open, nothing
    // is answered.
    hedged.get(b"h0", &wr(2, 2)).await.unwrap();
    assert!(cluster.pause_node(0));
    let mut slowest = Duration::ZERO;
    for i in 0..30 {
        let started = std::time::Instant::now();
        let got = hedged.get(format!("h{i}").as_bytes(), &wr(2, 2)).await;
        slowest = slowest.max(started.elapsed());
        let got = got.unwrap_or_else(|e| panic!("read h{i} with n1 frozen: {e}"));
        assert_eq!(got.versions.len(), 1);
    }
    assert!(cluster.resume_node(0));
    // About a third of the keys have the frozen node first; each was answered by the next
    // replica soon after the hedge, far inside the 15 s an unhedged read would wait.
    assert!(
        slowest < Duration::from_secs(5),
        "the slowest read took {slowest:?}"
    );
    cluster.stop().await.unwrap();
}
