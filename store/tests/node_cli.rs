//! The `ringkv` binary's handling of bad input: clear message, exit code 2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn ringkv() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringkv"));
    for v in ["RINGKV_CLUSTER_DIR", "RINGKV_CA", "RINGKV_TOKEN"] {
        c.env_remove(v);
    }
    c
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
        "--insecure",
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
        "--insecure",
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
        "--insecure",
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
    let endpoint = store::local_cluster::free_loopback_address().unwrap();
    let (code, text) = run(ringkv().args(["get", "k", "--insecure", "--endpoint", &endpoint]));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("cannot connect"), "{text}");
}

#[test]
fn a_bare_node_refuses_to_start_and_names_ringkv_certs() {
    let dir = tempfile::tempdir().unwrap();
    let node = |extra: &[&str]| {
        let mut c = ringkv();
        c.args(["node", "--id", "n1", "--data-dir"])
            .arg(dir.path().join("d"))
            .args(extra);
        run(&mut c)
    };
    let (code, text) = node(&["--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("ringkv certs") && text.contains("--insecure"),
        "{text}"
    );
    let (code, text) = node(&["--listen", "0.0.0.0:0", "--insecure"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("loopback"), "{text}");
}

#[test]
fn a_client_command_without_a_ca_is_a_usage_error() {
    let (code, text) = run(ringkv().args(["get", "k", "--endpoint", "127.0.0.1:1"]));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("RINGKV_CLUSTER_DIR"), "{text}");
}

/// SIGPIPE must stay ignored in a node: a peer closing a connection while the node writes
/// to it killed nodes (seen as "exited with signal 13" once TLS added close alerts).
#[test]
fn a_node_ignores_sigpipe() {
    let dir = tempfile::tempdir().unwrap();
    let addr = store::local_cluster::free_loopback_address().unwrap();
    let mut child = ringkv()
        .args([
            "node",
            "--id",
            "n1",
            "--insecure",
            "--listen",
            &addr,
            "--data-dir",
        ])
        .arg(dir.path().join("d"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap();
    // Bit n-1 stands for signal n; SIGPIPE is 13 on Linux.
    let sigpipe = 1u64 << 12;
    assert_ne!(
        ignored & sigpipe,
        0,
        "SIGPIPE is not ignored (SigIgn {ignored:x})"
    );
}

#[test]
fn a_bad_autoscaling_policy_is_a_usage_error_that_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "ops_per_node: { out_above: 100, in_below: 95 }\n").unwrap();
    let (code, text) = run(ringkv()
        .args(["autoscale", "--command", "true", "--policy"])
        .arg(&policy)
        .arg("--lock")
        .arg(dir.path().join("lock")));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("in_below") && text.contains("flaps"),
        "{text}"
    );
    // The same check guards `cluster up --autoscale`, before any node starts.
    std::fs::write(&policy, "sustain: 5\n").unwrap();
    let (code, text) = run(ringkv()
        .args(["cluster", "up", "--autoscale", "--autoscale-policy"])
        .arg(&policy)
        .arg("--dir")
        .arg(dir.path().join("c")));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("unknown field") && text.contains("sustain"),
        "{text}"
    );
    assert!(!dir.path().join("c").exists(), "no cluster was started");
}

/// Runs `cmd` for at most `limit`; a process still running then is killed, and `None` says
/// it did not exit by itself (a node that started instead of refusing its flags).
fn run_bounded(cmd: &mut Command, limit: std::time::Duration) -> Option<(i32, String)> {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ringkv");
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().expect("wait for ringkv").is_some() {
            let out = child.wait_with_output().expect("read ringkv's output");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return Some((out.status.code().unwrap_or(-1), text));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Sizes and counts from flags are checked, never wrapped: `--cache-mb 2^44` once became a
/// block cache of 0 bytes (2^44 MiB wraps to 0) and the node started.
#[test]
fn node_sizes_and_thread_counts_out_of_range_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    for (flag, value, says) in [
        ("--cache-mb", "17592186044416", "--cache-mb"),
        ("--write-threads", "0", "write_threads"),
        ("--write-threads", "1000", "write_threads"),
    ] {
        let mut c = ringkv();
        c.args([
            "node",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:0",
            "--insecure",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args([flag, value]);
        let Some((code, text)) = run_bounded(&mut c, std::time::Duration::from_secs(10)) else {
            panic!("{flag} {value}: the node started instead of refusing the flag");
        };
        assert_eq!(code, 2, "{flag} {value}: {text}");
        assert!(text.contains(says), "{flag} {value}: {text}");
    }
}
