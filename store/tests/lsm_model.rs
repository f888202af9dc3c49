//! The engine against a `BTreeMap` model: random puts, deletes, batches, gets, scans,
//! flushes, compactions and reopens, on real files, with options small enough that every
//! sequence exercises flushes, several levels and compaction.

// Test helpers outside #[test] fns may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use store::lsm::{Compression, Engine, Options, SyncPolicy, WriteBatch};

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Get(Vec<u8>),
    Scan(Vec<u8>, Vec<u8>, bool),
    Flush,
    Compact,
    Reopen,
}

/// Keys over a 3-letter alphabet, 1..=4 long: many shared prefixes and overwrites.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..3, 1..=4).prop_map(|v| v.into_iter().map(|b| b'a' + b).collect())
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        prop::collection::vec(Just(7u8), 100..400),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        10 => key().prop_map(Op::Delete),
        6 => prop::collection::vec((key(), prop::option::of(value())), 1..8).prop_map(Op::Batch),
        15 => key().prop_map(Op::Get),
        6 => (key(), key(), any::<bool>()).prop_map(|(a, b, inc)| Op::Scan(a, b, inc)),
        3 => Just(Op::Flush),
        2 => Just(Op::Compact),
        2 => Just(Op::Reopen),
    ]
}

fn options(compression: u8, background: bool) -> Options {
    Options {
        sync: SyncPolicy::Never,
        memtable_bytes: 2048,
        block_bytes: 128,
        block_restart_interval: 3,
        target_table_bytes: 2048,
        l0_compaction_trigger: 2,
        l0_slowdown_trigger: 1000,
        l0_stop_trigger: 2000,
        level1_bytes: 8 << 10,
        level_multiplier: 2,
        block_cache_bytes: 16 << 10,
        compression: match compression {
            0 => Compression::None,
            1 => Compression::Lz4,
            _ => Compression::Zstd(1),
        },
        background_compaction: background,
        uncompressed_levels: usize::from(compression) % 2,
        ..Options::default()
    }
}

fn scan_model(
    m: &BTreeMap<Vec<u8>, Vec<u8>>,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
        (&lo, &hi)
        && a > b
    {
        return Vec::new();
    }
    m.range((lo, hi))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn run(ops: Vec<Op>, compression: u8, background: bool) {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(compression, background);
    let mut engine = Some(Engine::open(dir.path(), opts.clone()).unwrap());
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut last_seq = 0;
    for op in ops {
        let e = engine.as_ref().unwrap();
        match op {
            Op::Put(k, v) => {
                let s = e.put(&k, &v).unwrap();
                assert!(s > last_seq, "sequence numbers increase");
                last_seq = s;
                model.insert(k, v);
            }
            Op::Delete(k) => {
                last_seq = e.delete(&k).unwrap();
                model.remove(&k);
            }
            Op::Batch(items) => {
                let mut b = WriteBatch::new();
                for (k, v) in &items {
                    match v {
                        Some(v) => b.put(k, v),
                        None => b.delete(k),
                    };
                }
                let s = e.write_batch(b).unwrap();
                assert_eq!(s, last_seq + items.len() as u64);
                last_seq = s;
                for (k, v) in items {
                    match v {
                        Some(v) => model.insert(k, v),
                        None => model.remove(&k),
                    };
                }
            }
            Op::Get(k) => assert_eq!(e.get(&k).unwrap(), model.get(&k).cloned(), "get {k:?}"),
            Op::Scan(a, b, inclusive) => {
                let hi = if inclusive {
                    Bound::Included(b.clone())
                } else {
                    Bound::Excluded(b.clone())
                };
                let lo = Bound::Included(a.clone());
                let got: Vec<_> = e
                    .scan((lo.clone(), hi.clone()))
                    .unwrap()
                    .map(|r| r.unwrap())
                    .collect();
                assert_eq!(got, scan_model(&model, lo, hi), "scan {a:?}..{b:?}");
            }
            Op::Flush => e.flush().unwrap(),
            Op::Compact => e.compact_all().unwrap(),
            Op::Reopen => {
                engine.take().unwrap().close().unwrap();
                let e = Engine::open(dir.path(), opts.clone()).unwrap();
                assert_eq!(
                    e.stats().last_sequence,
                    last_seq,
                    "sequence survives reopen"
                );
                engine = Some(e);
            }
        }
    }
    let e = engine.take().unwrap();
    let all: Vec<_> = e.scan(..).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(all, scan_model(&model, Bound::Unbounded, Bound::Unbounded));
    for (k, v) in &model {
        assert_eq!(e.get(k).unwrap().as_ref(), Some(v));
    }
    e.close().unwrap();
    // And once more after a final reopen.
    let e = Engine::open(dir.path(), opts).unwrap();
    let all: Vec<_> = e.scan(..).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(all, scan_model(&model, Bound::Unbounded, Bound::Unbounded));
    e.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=2000 for a longer hunt.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(48),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_btreemap_model(
        ops in prop::collection::vec(op(), 1..200),
        compression in 0u8..3,
        background in any::<bool>(),
    ) {
        run(ops, compression, background);
    }
}
