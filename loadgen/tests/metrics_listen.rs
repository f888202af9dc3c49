//! `loadgen run --metrics-listen`: while a run goes on, `/metrics` parses as Prometheus text
//! and its operation counters move; an address off loopback is refused unless asked for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORKLOAD: &str = "name: metrics-null
target: null
keys: { count: 1000 }
values: { size: 100 }
mix: { read: 50, write: 50 }
preload: false
duration: 6s
rate: 2000
";

/// `GET /metrics` over plain HTTP/1.1; the body, or `None` while nothing listens yet.
fn scrape(addr: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
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
    Some(body.to_string())
}

fn parse(body: &str) -> prometheus_parse::Scrape {
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("parses as Prometheus text")
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

fn reads_ok(s: &prometheus_parse::Scrape) -> f64 {
    value(s, "loadgen_ops_total", &[("op", "read"), ("outcome", "ok")]).unwrap_or(0.0)
}

#[test]
fn metrics_parse_and_the_ops_counter_moves_during_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.yaml");
    std::fs::write(&file, WORKLOAD).unwrap();
    let addr = store::local_cluster::free_loopback_address().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--quiet",
            "--metrics-listen",
            &addr,
        ])
        .arg("--out")
        .arg(tmp.path().join("results"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Generous: the first scrape waits for the run to start measuring, the second for the
    // counter to move past the first (it is brought up to date once a second).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first: Option<prometheus_parse::Scrape> = None;
    let mut moved = None;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        if let Some(s) = scrape(&addr).map(|b| parse(&b)) {
            match &first {
                None if reads_ok(&s) > 0.0 => first = Some(s),
                Some(f) if reads_ok(&s) > reads_ok(f) => {
                    moved = Some(s);
                    break;
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let first = first.expect("a scrape during the measured window counted reads");
    let second = moved.expect("the read counter moved between two scrapes");
    assert_eq!(
        value(&second, "loadgen_phase", &[("phase", "measure")]),
        Some(1.0)
    );
    assert_eq!(value(&second, "loadgen_offered_rate", &[]), Some(2000.0));
    assert!(value(&second, "loadgen_achieved_rate", &[]).unwrap() > 0.0);
    assert!(value(&second, "loadgen_in_flight", &[]).is_some());
    assert_eq!(value(&second, "loadgen_points", &[]), Some(1.0));
    let histogram = value(&second, "loadgen_response_seconds", &[("op", "write")]).unwrap();
    assert!(histogram > 0.0, "{histogram}");
    assert!(
        value(
            &second,
            "loadgen_ops_total",
            &[("op", "write"), ("outcome", "ok")]
        )
        .unwrap()
            >= value(
                &first,
                "loadgen_ops_total",
                &[("op", "write"), ("outcome", "ok")]
            )
            .unwrap()
    );
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
}

#[test]
fn an_address_off_loopback_needs_metrics_public() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.yaml");
    std::fs::write(&file, WORKLOAD).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--quiet",
            "--metrics-listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--metrics-public"), "{stderr}");
}
