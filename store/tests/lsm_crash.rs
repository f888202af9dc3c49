//! Crash safety: a child process (this test binary, re-run in writer mode) writes with
//! `SyncPolicy::Always` from several threads and is SIGKILLed at a random moment, over and
//! over on the same directory. After every kill the directory is reopened: every write the
//! child acknowledged must be there with its value, batches must be all-or-nothing, and no
//! key may hold anything but the value written to it.

// Test helpers outside #[test] fns may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use store::lsm::{Engine, Options, SyncPolicy, WriteBatch};

const CHILD_DIR: &str = "RINGKV_LSM_CRASH_DIR";
const CHILD_START: &str = "RINGKV_LSM_CRASH_START";
const THREADS: u64 = 4;
const BATCH_KEYS: u64 = 4;

/// Small memtables and levels, so flushes and compactions are often in flight at the kill.
fn options() -> Options {
    Options {
        sync: SyncPolicy::Always,
        memtable_bytes: 24 << 10,
        block_bytes: 512,
        target_table_bytes: 32 << 10,
        l0_compaction_trigger: 2,
        level1_bytes: 96 << 10,
        ..Options::default()
    }
}

fn value_of(id: u64) -> Vec<u8> {
    format!("value-{id}-{}", "x".repeat((id % 97) as usize)).into_bytes()
}

fn is_batch(id: u64) -> bool {
    id.is_multiple_of(5)
}

fn put_key(id: u64) -> Vec<u8> {
    format!("p{id:09}").into_bytes()
}

fn batch_key(id: u64, j: u64) -> Vec<u8> {
    format!("b{id:09}-{j}").into_bytes()
}

/// Writer mode: runs only when the parent test sets `CHILD_DIR`.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let start: u64 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    let engine = std::sync::Arc::new(Engine::open(&dir, options()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let engine = std::sync::Arc::clone(&engine);
            std::thread::spawn(move || {
                for n in 0..200_000u64 {
                    if Instant::now() > deadline {
                        return;
                    }
                    let id = start + n * THREADS + t;
                    if is_batch(id) {
                        let mut b = WriteBatch::new();
                        for j in 0..BATCH_KEYS {
                            b.put(&batch_key(id, j), &value_of(id));
                        }
                        engine.write_batch(b).unwrap();
                    } else {
                        engine.put(&put_key(id), &value_of(id)).unwrap();
                    }
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {id}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A tiny deterministic PRNG (xorshift), seeded from the clock; the seed is printed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Checks the reopened directory against what was acknowledged; returns the highest id seen.
fn verify(dir: &std::path::Path, acked: &BTreeMap<u64, ()>) -> u64 {
    let e = Engine::open(dir, options()).unwrap();
    for &id in acked.keys() {
        if is_batch(id) {
            for j in 0..BATCH_KEYS {
                assert_eq!(
                    e.get(&batch_key(id, j)).unwrap(),
                    Some(value_of(id)),
                    "acked batch {id}"
                );
            }
        } else {
            assert_eq!(
                e.get(&put_key(id)).unwrap(),
                Some(value_of(id)),
                "acked put {id}"
            );
        }
    }
    // Everything present is whole: exact values, complete batches.
    let mut batch_keys: BTreeMap<u64, u64> = BTreeMap::new();
    let mut max_id = 0;
    for row in e.scan(..).unwrap() {
        let (k, v) = row.unwrap();
        let k = String::from_utf8(k).unwrap();
        let id: u64 = k[1..10].parse().unwrap();
        max_id = max_id.max(id);
        assert_eq!(v, value_of(id), "key {k} holds a value never written to it");
        if k.starts_with('b') {
            *batch_keys.entry(id).or_default() += 1;
        }
    }
    for (id, n) in batch_keys {
        assert_eq!(n, BATCH_KEYS, "batch {id} is partially present");
    }
    e.close().unwrap();
    max_id
}

#[test]
fn acknowledged_writes_survive_sigkill_at_random_moments() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let mut acked: BTreeMap<u64, ()> = BTreeMap::new();
    let mut start = 0u64;
    let test_deadline = Instant::now() + Duration::from_secs(60);
    let mut kills_mid_write = 0;
    for round in 0..10 {
        if Instant::now() > test_deadline {
            break;
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_START, start.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ACK ") {
                    let _ = tx.send(id.trim().parse::<u64>().unwrap());
                }
            }
        });
        // Kill at a random moment: sometimes during open/recovery, mostly while writing.
        let delay = Duration::from_millis(rng.next() % 600);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        reader.join().unwrap();
        let before = acked.len();
        for id in rx.try_iter() {
            acked.insert(id, ());
        }
        if acked.len() > before {
            kills_mid_write += 1;
        }
        let max_seen = verify(dir.path(), &acked);
        eprintln!(
            "round {round}: killed after {delay:?}, {} acked in total",
            acked.len()
        );
        // Next child writes fresh ids (unacked ids from this round may exist; they were
        // checked to be whole, and are left alone).
        start = max_seen.max(acked.keys().next_back().copied().unwrap_or(0)) + 1;
        start += THREADS - start % THREADS;
    }
    assert!(
        kills_mid_write >= 3,
        "too few kills landed while writing ({kills_mid_write})"
    );
}
