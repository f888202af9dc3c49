//! Bytes a client or a peer sends are untrusted: a node refuses what is
//! malformed or implausible with a typed error, stays up, and keeps every
//! acknowledged write. Real node processes on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use store::version::{Dot, VersionVector};

/// A context from a real get with every counter rewritten to u64::MAX must be
/// refused; before, it was accepted, and a later blind put at W = 3 read back
/// as nothing at all at R = 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxed_out_context_is_refused_and_no_write_is_lost() {
    let cluster = start(spec(3, 3, 3, 3)).await;
    let c = client_for(&cluster.endpoints()[0]).await;
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
