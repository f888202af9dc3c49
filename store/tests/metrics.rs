//! `ringkv node --metrics-listen`: `/metrics` parses as Prometheus text and its counters move
//! under load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};

use common::{client, spec, start, wr};

/// `GET /metrics` over plain HTTP/1.1; the body.
fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("openmetrics-text"),
        "{head}"
    );
    body.to_string()
}

/// The value of a sample (counter, gauge, or a histogram's count) with these labels.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .find_map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            prometheus_parse::Value::Histogram(h) => h.last().map(|b| b.count),
            _ => None,
        })
}

fn parse(body: &str) -> prometheus_parse::Scrape {
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("parses as Prometheus text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_under_load() {
    let metrics = store::local_cluster::free_loopback_address().unwrap();
    let mut s = spec(1, 1, 1, 1);
    s.extra_node_args = vec!["--metrics-listen".into(), metrics.clone()];
    let cluster = start(s).await;
    let before = parse(&scrape(&metrics));
    let writes_before =
        value(&before, "ringkv_replica_coordinated_writes_total", &[]).unwrap_or(0.0);

    let c = client(&cluster).await;
    for i in 0..50 {
        c.put(format!("m{i}").as_bytes(), b"v", None, &wr(1, 1))
            .await
            .unwrap();
        c.get(format!("m{i}").as_bytes(), &wr(1, 1)).await.unwrap();
    }
    // One refused request shows with its outcome.
    let huge = vec![b'k'; store::config::MAX_KEY_BYTES + 1];
    assert!(c.get(&huge, &wr(1, 1)).await.is_err());

    let after = parse(&scrape(&metrics));
    let puts = value(
        &after,
        "ringkv_request_seconds",
        &[("op", "put"), ("outcome", "ok")],
    );
    assert!(
        puts.is_some_and(|n| n >= 50.0),
        "put histogram count {puts:?}"
    );
    let gets = value(
        &after,
        "ringkv_request_seconds",
        &[("op", "get"), ("outcome", "ok")],
    );
    assert!(
        gets.is_some_and(|n| n >= 50.0),
        "get histogram count {gets:?}"
    );
    let refused = value(
        &after,
        "ringkv_request_seconds",
        &[("op", "get"), ("outcome", "invalid_argument")],
    );
    assert_eq!(refused, Some(1.0));
    let coordinated = value(&after, "ringkv_replica_coordinated_writes_total", &[]).unwrap();
    assert!(
        coordinated >= writes_before + 50.0,
        "{coordinated} vs {writes_before}"
    );
    assert_eq!(
        value(
            &after,
            "ringkv_member_state",
            &[("member", "n1"), ("state", "alive")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&after, "ringkv_hints_pending", &[]), Some(0.0));
    cluster.stop().await.unwrap();
}
