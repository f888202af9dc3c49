//! Scenario tests of the engine's behaviour: snapshots, concurrency, group commit,
//! compaction, recovery, slowdown, statistics. Real files in temp dirs; every loop is bounded
//! in count and time.

// Test helpers outside #[test] fns may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use store::lsm::{Engine, Error, Options, SyncPolicy, WriteBatch};

fn small(sync: SyncPolicy) -> Options {
    Options {
        sync,
        memtable_bytes: 16 << 10,
        block_bytes: 512,
        target_table_bytes: 32 << 10,
        level1_bytes: 128 << 10,
        block_cache_bytes: 256 << 10,
        ..Options::default()
    }
}

fn k(i: usize) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

#[test]
fn put_get_delete_with_increasing_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    let s1 = e.put(b"a", b"1").unwrap();
    let s2 = e.put(b"b", b"2").unwrap();
    let s3 = e.delete(b"a").unwrap();
    assert!(s1 < s2 && s2 < s3);
    assert_eq!(e.get(b"a").unwrap(), None);
    assert_eq!(e.get(b"b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(e.get(b"zz").unwrap(), None);
    let mut b = WriteBatch::new();
    b.put(b"c", b"3").put(b"d", b"4").delete(b"b");
    assert_eq!(e.write_batch(b).unwrap(), s3 + 3);
    let all: Vec<_> = e.scan(..).unwrap().map(Result::unwrap).collect();
    assert_eq!(
        all,
        vec![
            (b"c".to_vec(), b"3".to_vec()),
            (b"d".to_vec(), b"4".to_vec())
        ]
    );
    e.close().unwrap();
}

#[test]
fn reopen_replays_unflushed_writes_even_without_close() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = Engine::open(dir.path(), Options::default()).unwrap();
        for i in 0..500 {
            e.put(&k(i), format!("v{i}").as_bytes()).unwrap();
        }
        e.delete(&k(7)).unwrap();
        // Dropped, not closed: background threads must stop, nothing must panic.
    }
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    assert_eq!(e.get(&k(7)).unwrap(), None);
    assert_eq!(e.get(&k(8)).unwrap(), Some(b"v8".to_vec()));
    assert_eq!(e.stats().last_sequence, 501);
    assert_eq!(e.scan(..).unwrap().count(), 499);
    e.close().unwrap();
}

#[test]
fn scan_is_a_consistent_snapshot_while_writes_continue() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(Engine::open(dir.path(), small(SyncPolicy::Never)).unwrap());
    const KEYS: usize = 50;
    let mut b = WriteBatch::new();
    for i in 0..KEYS {
        b.put(&k(i), b"round-00000");
    }
    e.write_batch(b).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let rounds_done = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (e, stop, rounds_done) = (Arc::clone(&e), Arc::clone(&stop), Arc::clone(&rounds_done));
        std::thread::spawn(move || {
            let mut round = 1;
            while !stop.load(Ordering::Relaxed) && round < 20_000 {
                // Each round rewrites every key in one atomic batch (values are padded so
                // memtables fill up and flushes run during the scans).
                let v = format!("round-{round:05}{}", "x".repeat(100));
                let mut b = WriteBatch::new();
                for i in 0..KEYS {
                    b.put(&k(i), v.as_bytes());
                }
                e.write_batch(b).unwrap();
                round += 1;
                rounds_done.store(round, Ordering::Relaxed);
            }
            round
        })
    };
    // Scan for 2 s, and on past that (up to 60 s) until both sides have made progress: on a
    // busy machine (the suite runs tests in parallel on two cores) 2 s can pass with one scan.
    let started = Instant::now();
    let mut scans = 0;
    while scans < 2_000 && started.elapsed() < Duration::from_secs(60) {
        let progressed = scans > 1 && rounds_done.load(Ordering::Relaxed) > 2;
        if progressed && started.elapsed() >= Duration::from_secs(2) {
            break;
        }
        let rows: Vec<_> = e.scan(..).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows.len(), KEYS, "every key present in every snapshot");
        let first = &rows[0].1;
        assert!(
            rows.iter().all(|(_, v)| v == first),
            "a scan never sees half a batch"
        );
        scans += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(
        rounds > 1 && scans > 1,
        "{rounds} write rounds, {scans} scans"
    );
    assert!(e.stats().flushes > 0, "flushes ran during the scans");
}

#[test]
fn concurrent_writers_and_readers_see_their_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(Engine::open(dir.path(), small(SyncPolicy::Never)).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for i in 0..1_000 {
                    let key = format!("t{t}-{i:05}");
                    e.put(key.as_bytes(), key.as_bytes()).unwrap();
                    assert_eq!(
                        e.get(key.as_bytes()).unwrap(),
                        Some(key.clone().into_bytes())
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(e.scan(..).unwrap().count(), 8_000);
    let e = Arc::try_unwrap(e).unwrap();
    e.close().unwrap();
    let e = Engine::open(dir.path(), small(SyncPolicy::Never)).unwrap();
    assert_eq!(e.scan(..).unwrap().count(), 8_000);
}

#[test]
fn group_commit_shares_one_fsync_among_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(Engine::open(dir.path(), Options::default()).unwrap());
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for i in 0..40 {
                    e.put(format!("t{t}-{i}").as_bytes(), b"value").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = e.stats();
    assert_eq!(s.puts, 32 * 40);
    assert!(
        s.wal_syncs * 2 < s.puts,
        "expected shared fsyncs: {} syncs for {} puts",
        s.wal_syncs,
        s.puts
    );
}

#[test]
fn tombstone_reaches_last_level_and_is_dropped_there() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        background_compaction: false,
        ..small(SyncPolicy::Never)
    };
    let e = Engine::open(dir.path(), opts).unwrap();
    for i in 0..200 {
        e.put(&k(i), &[b'v'; 50]).unwrap();
    }
    e.compact_all().unwrap();
    let s = e.stats();
    assert_eq!(s.tables_per_level[0], 0);
    assert!(s.tables_per_level[1] > 0);
    for i in 0..100 {
        e.delete(&k(i)).unwrap();
    }
    e.flush().unwrap();
    // The tombstones sit in L0 above the values in L1: they must hide them.
    assert!(e.stats().tables_per_level[0] > 0);
    assert_eq!(e.get(&k(5)).unwrap(), None);
    assert_eq!(e.scan(..).unwrap().count(), 100);
    e.compact_all().unwrap();
    let s = e.stats();
    assert_eq!(
        s.tombstones_dropped, 100,
        "tombstones dropped at the bottom"
    );
    assert_eq!(s.tables_per_level[0], 0);
    assert_eq!(e.get(&k(5)).unwrap(), None);
    assert_eq!(e.get(&k(150)).unwrap(), Some(vec![b'v'; 50]));
    assert_eq!(e.scan(..).unwrap().count(), 100);
    e.close().unwrap();
}

#[test]
fn background_compaction_keeps_l0_small_and_data_intact() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), small(SyncPolicy::Never)).unwrap();
    for round in 0..4 {
        for i in 0..2_000 {
            e.put(&k(i), format!("{round}-{i}").as_bytes()).unwrap();
        }
    }
    for i in (0..2_000).step_by(3) {
        e.delete(&k(i)).unwrap();
    }
    e.flush().unwrap();
    assert!(e.wait_for_background(Duration::from_secs(30)));
    let s = e.stats();
    assert!(s.compactions > 0, "{s:?}");
    assert!(s.tables_per_level[0] < 4, "{s:?}");
    for i in 0..2_000 {
        let want = (i % 3 != 0).then(|| format!("3-{i}").into_bytes());
        assert_eq!(e.get(&k(i)).unwrap(), want);
    }
    assert!(s.write_amplification() > 1.0);
}

#[test]
fn writes_slow_down_smoothly_without_multi_second_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        memtable_bytes: 32 << 10,
        max_immutable_memtables: 2,
        l0_compaction_trigger: 2,
        l0_slowdown_trigger: 3,
        l0_stop_trigger: 8,
        slowdown_bytes_per_sec: 4 << 20,
        ..small(SyncPolicy::Never)
    };
    let e = Arc::new(Engine::open(dir.path(), opts).unwrap());
    let deadline = Instant::now() + Duration::from_secs(3);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                let mut worst = Duration::ZERO;
                let mut n = 0;
                while Instant::now() < deadline && n < 20_000 {
                    let start = Instant::now();
                    e.put(format!("t{t}-{n:06}").as_bytes(), &[7u8; 1000])
                        .unwrap();
                    worst = worst.max(start.elapsed());
                    n += 1;
                }
                (n, worst)
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        let (n, worst) = t.join().unwrap();
        total += n;
        assert!(
            worst < Duration::from_millis(1500),
            "a write waited {worst:?}"
        );
    }
    let s = e.stats();
    assert!(s.write_stall_max_micros < 1_500_000, "{s:?}");
    assert!(total > 0);
}

#[test]
fn every_ms_policy_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), small(SyncPolicy::EveryMs(5))).unwrap();
    e.put(b"k", b"v").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while e.stats().wal_syncs == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(e.stats().wal_syncs >= 1);
    e.close().unwrap();
}

#[test]
fn stats_count_cache_hits_bloom_negatives_and_write_amplification() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), small(SyncPolicy::Never)).unwrap();
    for i in 0..3_000 {
        e.put(&k(i), &[1u8; 40]).unwrap();
    }
    e.flush().unwrap();
    for _ in 0..3 {
        for i in 0..100 {
            assert!(e.get(&k(i)).unwrap().is_some());
            assert!(e.get(format!("key{i:06}x").as_bytes()).unwrap().is_none());
        }
    }
    let s = e.stats();
    assert!(s.cache_hits > 0 && s.cache_misses > 0, "{s:?}");
    assert!(s.bloom_negatives > 0, "{s:?}");
    assert!(s.disk_bytes_written > s.user_bytes_written);
    assert!(s.fsyncs > 0);
    let pairs = s.to_pairs();
    assert!(
        pairs
            .iter()
            .any(|(n, v)| *n == "cache_hits" && *v == s.cache_hits)
    );
    assert!(pairs.iter().any(|(n, _)| *n == "tables_l1"));
}

#[test]
fn open_without_create_if_missing_names_the_missing_dir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = Engine::open(
        &missing,
        Options {
            create_if_missing: false,
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::MissingDir { path } if path == &missing),
        "{err}"
    );
    assert!(err.to_string().contains("nope"));
    let e = Engine::open(&missing, Options::default()).unwrap();
    e.close().unwrap();
}

#[test]
fn second_engine_on_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    let err = Engine::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    e.close().unwrap();
    Engine::open(dir.path(), Options::default())
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Engine::open(
        dir.path(),
        Options {
            l0_stop_trigger: 1,
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidOptions { .. }), "{err}");
}

#[test]
fn bounded_scans_see_every_key_while_it_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(Engine::open(dir.path(), small(SyncPolicy::Never)).unwrap());
    const KEYS: usize = 400;
    for i in 0..KEYS {
        e.put(&k(i), b"first").unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (e, stop) = (Arc::clone(&e), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) && n < 2_000_000 {
                e.put(&k(n % KEYS), &[b'x'; 200]).unwrap();
                n += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut scans = 0;
    while Instant::now() < deadline && scans < 5_000 {
        let lo = scans % (KEYS - 50);
        let rows: Vec<_> = e
            .scan(k(lo)..k(lo + 50))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows.len(),
            50,
            "scan {scans} of [{lo}, {}) missed keys",
            lo + 50
        );
        scans += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn get_cached_answers_from_memory_and_declines_a_cold_table_block() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path(), Options::default()).unwrap();
        engine.put(b"on-disk", b"1").unwrap();
        engine.flush().unwrap();
        engine.close().unwrap();
    }
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    engine.put(b"in-memory", b"2").unwrap();
    assert_eq!(
        engine.get_cached(b"in-memory").unwrap(),
        Some(Some(b"2".to_vec()))
    );
    // The table's block is not cached after a reopen: the caller must read from disk.
    assert_eq!(engine.get_cached(b"on-disk").unwrap(), None);
    assert_eq!(engine.get(b"on-disk").unwrap(), Some(b"1".to_vec()));
    // Now it is.
    assert_eq!(
        engine.get_cached(b"on-disk").unwrap(),
        Some(Some(b"1".to_vec()))
    );
    // A key the bloom filter and memtables rule out needs no block at all.
    assert_eq!(engine.get_cached(b"never-written").unwrap(), Some(None));
}
