//! Security on real nodes (the default): TLS everywhere, tokens with roles, node identity by
//! certificate between peers, and signed causal contexts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{client, peer_channel, raw_kv, spec, start, tls_channel, wr};
use store::client::{Client, ClientOptions, ClientSecurity};
use store::local_cluster::LocalCluster;
use store::proto::kv_client::KvClient;
use store::proto::replica_client::ReplicaClient;
use store::proto::{self as pb, MerkleLevelRequest};
use store::security::material::{self, NodeName};
use store::security::tokens::{RELOAD_EVERY, Role, TokenStore, new_token};
use store::security::{Bearer, files};
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// A client of `cluster` presenting `token`.
async fn client_with_token(cluster: &LocalCluster, token: &str) -> Client {
    let sec = ClientSecurity {
        token: Some(token.into()),
        ..cluster.client_security()
    };
    let opts = ClientOptions {
        security: sec,
        ..cluster.client_options(Duration::from_secs(5))
    };
    Client::connect(&cluster.endpoints()[..1], opts)
        .await
        .expect("connect")
}

/// Adds a token with `role` to the cluster's tokens file and waits until nodes re-read it.
async fn add_token(cluster: &LocalCluster, role: Role, name: &str) -> String {
    let token = new_token().unwrap();
    files::append_private(
        &cluster.base_dir().join(files::TOKENS),
        &TokenStore::line(role, &token, name),
    )
    .unwrap();
    tokio::time::sleep(RELOAD_EVERY + Duration::from_millis(200)).await;
    token
}

fn get_req(key: &str) -> pb::GetRequest {
    pb::GetRequest {
        key: Bytes::from(key.to_string()),
        consistency: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_missing_or_weak_tokens_are_refused() {
    let cluster = start(spec(1, 1, 1, 1)).await;
    let address = cluster.nodes()[0].address.clone();

    // Plaintext HTTP/2 to a TLS port: no answer at all.
    let plain = match KvClient::connect(format!("http://{address}")).await {
        Ok(mut kv) => kv.get(get_req("k")).await.map(|_| ()).map_err(|e| e.code()),
        Err(_) => Err(Code::Unavailable),
    };
    assert!(plain.is_err(), "a plaintext call was answered");

    // TLS but no token.
    let mut kv = KvClient::new(tls_channel(&cluster, &address, None).await);
    let err = kv.get(get_req("k")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = kv.status(pb::StatusRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // A token nobody issued.
    let bogus = Bearer(Some("Bearer rkv_0000".parse().unwrap()));
    let mut kv = KvClient::with_interceptor(tls_channel(&cluster, &address, None).await, bogus);
    let err = kv.get(get_req("k")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // A read token reads but cannot write, on unary calls and in sessions (the client's path),
    // nor administer.
    let admin = client(&cluster).await;
    admin.put(b"k", b"v", None, &wr(1, 1)).await.unwrap();
    let read = add_token(&cluster, Role::Read, "reader").await;
    let reader = client_with_token(&cluster, &read).await;
    assert_eq!(reader.get(b"k", &wr(1, 1)).await.unwrap().versions.len(), 1);
    let err = reader.put(b"k", b"w", None, &wr(1, 1)).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::PermissionDenied), "{err}");
    let err = reader.delete(b"k", None, &wr(1, 1)).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::PermissionDenied), "{err}");
    let err = reader
        .admin_of(0, pb::admin_request::Op::Repair(pb::Repair {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::PermissionDenied), "{err}");

    // A readwrite token writes but cannot administer.
    let rw = add_token(&cluster, Role::ReadWrite, "writer").await;
    let writer = client_with_token(&cluster, &rw).await;
    writer.put(b"k2", b"v", None, &wr(1, 1)).await.unwrap();
    let err = writer
        .admin_of(0, pb::admin_request::Op::Repair(pb::Repair {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::PermissionDenied), "{err}");
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_rotate_without_a_restart() {
    let cluster = start(spec(1, 1, 1, 1)).await;
    let old = add_token(&cluster, Role::ReadWrite, "old").await;
    let new = add_token(&cluster, Role::ReadWrite, "new").await;
    // Both valid at once.
    for t in [&old, &new] {
        let c = client_with_token(&cluster, t).await;
        c.put(b"r", b"v", None, &wr(1, 1)).await.unwrap();
    }
    // Revoke the old one by deleting its line.
    let path = cluster.base_dir().join(files::TOKENS);
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.ends_with(" old"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, kept).unwrap();
    tokio::time::sleep(RELOAD_EVERY + Duration::from_millis(200)).await;
    let c = client_with_token(&cluster, &new).await;
    c.put(b"r", b"w", None, &wr(1, 1)).await.unwrap();
    let opts = ClientOptions {
        security: ClientSecurity {
            token: Some(old.as_str().into()),
            ..cluster.client_security()
        },
        ..cluster.client_options(Duration::from_secs(5))
    };
    let refused = match Client::connect(&cluster.endpoints(), opts).await {
        Ok(c) => c.put(b"r", b"x", None, &wr(1, 1)).await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert_eq!(
        refused.unwrap_err().code(),
        Some(Code::Unauthenticated),
        "a revoked token still works"
    );
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_nodes_of_this_cluster_make_node_to_node_calls() {
    let cluster = start(spec(2, 2, 1, 1)).await;
    let address = cluster.nodes()[0].address.clone();
    let level = || MerkleLevelRequest {
        ranges: vec![],
        level: 0,
        nodes: vec![],
    };

    // A peer's certificate works.
    let mut peer = ReplicaClient::new(peer_channel(&cluster, &address, "n2").await);
    peer.merkle_level(level()).await.expect("a node may call");

    // No certificate: UNAUTHENTICATED.
    let mut anon = ReplicaClient::new(tls_channel(&cluster, &address, None).await);
    let err = anon.merkle_level(level()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = anon
        .scan_range(pb::ScanRangeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // A client certificate of this cluster: PERMISSION_DENIED.
    let (cert, key) = material::issue_client(cluster.base_dir(), "app").unwrap();
    let mut app =
        ReplicaClient::new(tls_channel(&cluster, &address, Some((cert.into(), key.into()))).await);
    let err = app.merkle_level(level()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // A node that claims to be another node than its certificate says.
    let mut req = tonic::Request::new(level());
    req.metadata_mut()
        .insert(store::cluster::peers::FROM_HEADER, "n1".parse().unwrap());
    let err = peer.merkle_level(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // A node certificate from another CA cannot even connect, so cannot push a ring.
    let other = tempfile::tempdir().unwrap();
    let n9: NodeName = "n9".parse().unwrap();
    material::init(other.path(), &[n9]).unwrap();
    let ca = std::fs::read(cluster.base_dir().join(files::CA_CERT)).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(
            std::fs::read(files::node_cert(other.path(), "n9")).unwrap(),
            std::fs::read(files::node_key(other.path(), "n9")).unwrap(),
        ));
    let ring = client(&cluster).await.status().await.unwrap().ring.unwrap();
    let pushed = match Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
    {
        Ok(ch) => ReplicaClient::new(ch).push_ring(ring).await.map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(pushed.is_err(), "a foreign node pushed a ring");
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_cannot_join() {
    let mut cluster = start(spec(2, 2, 1, 1)).await;
    // A node started with its own CA: the cluster cannot verify it, nor it the cluster.
    let other = tempfile::tempdir().unwrap();
    let addr = store::local_cluster::free_loopback_address().unwrap();
    material::init(other.path(), &["n3".parse().unwrap()]).unwrap();
    let mut stranger = std::process::Command::new(env!("CARGO_BIN_EXE_ringkv"))
        .args([
            "node",
            "--id",
            "n3",
            "--join",
            "--replication",
            "2",
            "--listen",
            &addr,
        ])
        .arg("--data-dir")
        .arg(other.path().join("data"))
        .arg("--cluster-dir")
        .arg(other.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let opts = cluster.client_options(Duration::from_secs(20));
    let c = Client::connect(&cluster.endpoints()[..1], opts)
        .await
        .unwrap();
    let joined = c
        .admin_of(
            0,
            pb::admin_request::Op::Join(pb::JoinNode {
                id: "n3".into(),
                address: addr.clone(),
                zone: String::new(),
                tokens: 32,
                reason: String::new(),
            }),
        )
        .await;
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert!(
        joined.is_err(),
        "a node of another cluster joined: {joined:?}"
    );
    let ring = c.status().await.unwrap().ring.unwrap();
    assert!(
        ring.members.iter().all(|m| m.id != "n3"),
        "the stranger is in the ring"
    );
    cluster.kill_node(1).await.unwrap();
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_moved_context_is_invalid_argument() {
    let cluster = start(spec(1, 1, 1, 1)).await;
    let c = client(&cluster).await;
    c.put(b"a", b"1", None, &wr(1, 1)).await.unwrap();
    c.put(b"b", b"1", None, &wr(1, 1)).await.unwrap();
    let ctx = c.get(b"a", &wr(1, 1)).await.unwrap().context;
    assert!(!ctx.is_empty());
    // The real context works.
    c.put(b"a", b"2", Some(&ctx), &wr(1, 1)).await.unwrap();
    // One bit flipped anywhere: refused, and nothing is written.
    for i in [0, ctx.len() / 2, ctx.len() - 1] {
        let mut bad = ctx.to_vec();
        bad[i] ^= 1;
        let err = c
            .put(b"a", b"evil", Some(&bad), &wr(1, 1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    }
    // A context of key a used on key b.
    let err = c
        .put(b"b", b"evil", Some(&ctx), &wr(1, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    // Unsigned raw bytes, as a client might craft them.
    let err = c
        .delete(b"a", Some(&ctx[..ctx.len() - 32]), &wr(1, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    let got = c.get(b"b", &wr(1, 1)).await.unwrap();
    assert_eq!(got.versions.len(), 1);
    assert_eq!(
        &got.versions[0].value[..],
        b"1",
        "a refused write changed nothing"
    );
    // Raw Kv stub with the admin token: the same refusal on the unary path.
    let mut kv = raw_kv(&cluster, &cluster.nodes()[0].address).await;
    let err = kv
        .put(pb::PutRequest {
            key: Bytes::from_static(b"b"),
            value: Bytes::from_static(b"evil"),
            context: ctx.clone(),
            consistency: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    cluster.stop().await.unwrap();
}
