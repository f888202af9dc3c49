//! Micro-benchmarks of the storage engine's parts: memtable insert, block encode and decode,
//! bloom probe, and a point lookup in one SSTable.
//!
//! `cargo bench -p benches --bench lsm`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use store::lsm::Compression;
use store::lsm::bench_internals::{
    Block, BlockBuilder, Bloom, BloomBuilder, Memtable, TableBuilder, TableReader, hash_key,
};

/// 16-byte keys in random order, as in `engine_compare`.
fn key(i: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    benches::key16(i, &mut out);
    out
}

fn internal_key(user: &[u8], seq: u64) -> Vec<u8> {
    let mut k = user.to_vec();
    k.extend_from_slice(&((seq << 8) | 1).to_le_bytes());
    k
}

fn memtable_insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("memtable");
    const N: u64 = 10_000;
    g.throughput(Throughput::Elements(N));
    let value = [7u8; 100];
    g.bench_function("insert_10k_random_16B_keys_100B_values", |b| {
        b.iter_batched(
            || Memtable::new(1),
            |m| {
                for i in 0..N {
                    m.insert(&key(i), i + 1, 1, &value);
                }
                m
            },
            BatchSize::SmallInput,
        )
    });
    let m = Memtable::new(1);
    for i in 0..100_000 {
        m.insert(&key(i), i + 1, 1, &value);
    }
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("get_hit_in_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % 100_000;
            black_box(m.contains(&key(i), u64::MAX >> 8))
        })
    });
    g.finish();
}

fn sorted_entries(n: u64, value_len: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut keys: Vec<[u8; 16]> = (0..n).map(key).collect();
    keys.sort();
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            (
                internal_key(k, i as u64 + 1),
                vec![(i % 251) as u8; value_len],
            )
        })
        .collect()
}

fn block_encode_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("block");
    // About one 4 KiB block of 16-byte keys with 100-byte values.
    let entries = sorted_entries(32, 100);
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.bench_function("encode_4k_block", |b| {
        let mut builder = BlockBuilder::new(16);
        b.iter(|| {
            for (k, v) in &entries {
                builder.add(k, v);
            }
            black_box(builder.finish())
        })
    });
    let mut builder = BlockBuilder::new(16);
    for (k, v) in &entries {
        builder.add(k, v);
    }
    let raw = builder.finish();
    g.bench_function("decode_and_scan_4k_block", |b| {
        b.iter(|| {
            let block = Block::parse(black_box(raw.clone())).unwrap_or_else(|_| unreachable!());
            black_box(block.count_entries())
        })
    });
    let block = Block::parse(raw.clone()).unwrap_or_else(|_| unreachable!());
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("seek_in_4k_block", |b| {
        b.iter(|| {
            i = (i + 5) % entries.len();
            let user = &entries[i].0[..16];
            black_box(block.find(user, u64::MAX >> 8))
        })
    });
    g.finish();
}

fn bloom_probe(c: &mut Criterion) {
    let mut g = c.benchmark_group("bloom");
    const N: u64 = 1_000_000;
    let mut b = BloomBuilder::new();
    for i in 0..N {
        b.add_hash(hash_key(&key(i)));
    }
    let bloom = Bloom::from_bytes(b.build(10));
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("probe_present_1M_keys", |bch| {
        bch.iter(|| {
            i = (i + 7919) % N;
            black_box(bloom.may_contain(hash_key(&key(i))))
        })
    });
    let mut j = N;
    g.bench_function("probe_absent_1M_keys", |bch| {
        bch.iter(|| {
            j += 1;
            black_box(bloom.may_contain(hash_key(&key(j))))
        })
    });
    g.finish();
}

fn sst_point_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("sstable");
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
    let path = dir.path().join("000001.sst");
    let mut b = TableBuilder::create(&path, 1, 4096, 16, 10, Compression::Lz4)
        .unwrap_or_else(|_| unreachable!());
    for (k, v) in sorted_entries(N, 100) {
        b.add(&k, &v).unwrap_or_else(|_| unreachable!());
    }
    b.finish().unwrap_or_else(|_| unreachable!());
    let t = TableReader::open(&path, 1).unwrap_or_else(|_| unreachable!());
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    // No block cache here: each lookup reads (from the OS page cache), checks and
    // decompresses one block.
    g.bench_function("get_hit_100k_keys_uncached_block", |bch| {
        bch.iter(|| {
            i = (i + 7919) % N;
            black_box(t.get_value(&key(i)).unwrap_or_else(|_| unreachable!()))
        })
    });
    let mut j = N;
    g.bench_function("get_miss_100k_keys_bloom", |bch| {
        bch.iter(|| {
            j += 1;
            black_box(t.get_value(&key(j)).unwrap_or_else(|_| unreachable!()))
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    memtable_insert,
    block_encode_decode,
    bloom_probe,
    sst_point_lookup
);
criterion_main!(benches);
