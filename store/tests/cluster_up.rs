//! `ringkv cluster up`: secure with nothing to type, and the nodes it starts never outlive it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn nodes_stop_when_cluster_up_is_killed_outright() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Command::new(env!("CARGO_BIN_EXE_ringkv"))
        .args(["cluster", "up", "--nodes", "2", "--dir"])
        .arg(dir.path().join("c"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Endpoints are printed as "  n1  127.0.0.1:PORT  data ...", then "try:".
    let mut endpoints = Vec::new();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    for line in lines.by_ref().take(20) {
        let line = line.unwrap();
        if line.starts_with("try:") {
            break;
        }
        if let Some(addr) = line
            .split_whitespace()
            .nth(1)
            .filter(|a| a.starts_with("127.0.0.1:"))
        {
            endpoints.push(addr.to_string());
        }
    }
    assert_eq!(endpoints.len(), 2, "cluster up printed its endpoints");
    for ep in &endpoints {
        assert!(TcpStream::connect(ep).is_ok(), "node {ep} is serving");
    }
    // Secure by default, and nothing to type: the CLI finds the CA and admin token through
    // RINGKV_CLUSTER_DIR; without it, it says where to look.
    let ringkv = |with_dir: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ringkv"));
        c.args(["put", "k", "v", "--endpoint", &endpoints[0]])
            .env_remove("RINGKV_CA")
            .env_remove("RINGKV_TOKEN")
            .env_remove("RINGKV_CLUSTER_DIR");
        if with_dir {
            c.env("RINGKV_CLUSTER_DIR", dir.path().join("c"));
        }
        c.output().unwrap()
    };
    let out = ringkv(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ringkv(false);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RINGKV_CLUSTER_DIR"));

    // SIGKILL: `cluster up` gets no chance to stop its children.
    up.kill().unwrap();
    up.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut alive = endpoints.clone();
    while !alive.is_empty() && Instant::now() < deadline {
        alive.retain(|ep| TcpStream::connect(ep).is_ok());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        alive.is_empty(),
        "nodes still serving after their launcher died: {alive:?}"
    );
}
