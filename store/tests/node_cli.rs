//! The `ringkv` binary's handling of bad input: clear message, exit code 2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn ringkv() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringkv"))
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("run ringkv");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn port_in_use_is_a_usage_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run(ringkv().args([
        "node",
        "--id",
        "n1",
        "--listen",
        &addr,
        "--data-dir",
        dir.path().join("d").to_str().unwrap(),
    ]));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("cannot listen on") && text.contains("in use"),
        "{text}"
    );
}

#[test]
fn missing_data_dir_parent_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/parent/data");
    let (code, text) = run(ringkv().args([
        "node",
        "--id",
        "n1",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        missing.to_str().unwrap(),
    ]));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("does not exist"), "{text}");
}

#[test]
fn quorum_larger_than_n_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run(ringkv().args([
        "node",
        "--id",
        "n1",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("d").to_str().unwrap(),
        "--replication",
        "1",
        "--write-quorum",
        "2",
    ]));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("write quorum (W) = 2"), "{text}");
}

#[test]
fn bad_peer_list_and_unknown_flags_are_usage_errors() {
    let (code, text) = run(ringkv().args(["node", "--id", "n1", "--peers", "nonsense"]));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("ID@HOST:PORT"), "{text}");
    let (code, _) = run(ringkv().args(["frobnicate"]));
    assert_eq!(code, 2);
}

#[test]
fn unknown_endpoint_is_a_clear_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, text) = run(ringkv().args(["get", "k", "--endpoint", &format!("127.0.0.1:{port}")]));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("cannot connect"), "{text}");
}
