//! Key and value-size generators: distributions match theory, sizes stay in bounds, and the same
//! seed gives the same sequence.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use loadgen::generator::keys::{KeyChooser, Zipfian};
use loadgen::generator::{OpGen, OpKind, SizeChooser};
use loadgen::workload::{ByteSize, KeyDistributionKind, KeysConfig, Mix, SizeSpec, WeightedSize};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

fn keys(distribution: KeyDistributionKind, count: u64) -> KeysConfig {
    KeysConfig {
        count,
        size: ByteSize(16),
        distribution,
        theta: None,
        hot_set: None,
        hot_ops: None,
    }
}

#[test]
fn zipfian_099_top_key_frequencies_match_theory() {
    const N: u64 = 1000;
    const SAMPLES: u64 = 2_000_000;
    let mut chooser = KeyChooser::new(&keys(KeyDistributionKind::Zipfian, N));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let mut counts = vec![0u64; N as usize];
    for _ in 0..SAMPLES {
        let k = chooser.next(&mut rng, false);
        counts[k as usize] += 1;
    }
    let theory = Zipfian::new(N, 0.99);
    // Rejection-inversion is exact: every top rank within 3% of 1/(k+1)^0.99 / zeta(1000).
    for rank in 0..10u64 {
        let expected = theory.probability(rank);
        let observed = counts[rank as usize] as f64 / SAMPLES as f64;
        let tolerance = 0.03;
        let rel = (observed - expected).abs() / expected;
        assert!(
            rel < tolerance,
            "rank {rank}: observed {observed:.5}, theory {expected:.5} ({:.1}% off)",
            rel * 100.0
        );
    }
    // The top 10 keys of 1000 carry about 39% of the load at theta 0.99.
    let top10: f64 = (0..10).map(|r| theory.probability(r)).sum();
    let top10_observed = counts[..10].iter().sum::<u64>() as f64 / SAMPLES as f64;
    assert!(
        (top10_observed - top10).abs() < 0.02,
        "{top10_observed} vs {top10}"
    );
    // Frequencies fall with rank.
    assert!(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[9]);
}

#[test]
fn hotspot_sends_the_configured_share_to_the_hot_set() {
    let mut cfg = keys(KeyDistributionKind::Hotspot, 10_000);
    cfg.hot_set = Some(0.1);
    cfg.hot_ops = Some(0.9);
    let mut chooser = KeyChooser::new(&cfg);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let hot = (0..200_000)
        .filter(|_| chooser.next(&mut rng, false) < 1000)
        .count();
    let share = hot as f64 / 200_000.0;
    assert!((share - 0.9).abs() < 0.01, "hot share {share}");
}

#[test]
fn latest_reads_favour_recent_inserts() {
    let mut chooser = KeyChooser::new(&keys(KeyDistributionKind::Latest, 1000));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    for expected in 1000..1100 {
        assert_eq!(chooser.next(&mut rng, true), expected);
    }
    let recent = (0..100_000)
        .filter(|_| chooser.next(&mut rng, false) >= 1090)
        .count();
    assert!(recent > 30_000, "reads of the 10 newest keys: {recent}");
    assert!((0..10_000).all(|_| chooser.next(&mut rng, false) < 1100));
}

#[test]
fn uniform_and_sequential_stay_in_range() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let mut uniform = KeyChooser::new(&keys(KeyDistributionKind::Uniform, 7));
    let mut seen = [false; 7];
    for _ in 0..10_000 {
        let k = uniform.next(&mut rng, false);
        assert!(k < 7);
        seen[k as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
    let mut seq = KeyChooser::new(&keys(KeyDistributionKind::Sequential, 3));
    let got: Vec<u64> = (0..7).map(|_| seq.next(&mut rng, false)).collect();
    assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
}

#[test]
fn value_sizes_stay_within_bounds() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let uniform = SizeChooser::new(&SizeSpec::Uniform {
        min: ByteSize(100),
        max: ByteSize(10240),
    });
    let sizes: Vec<u32> = (0..100_000).map(|_| uniform.next(&mut rng)).collect();
    assert!(sizes.iter().all(|s| (100..=10240).contains(s)));
    assert_eq!(*sizes.iter().min().unwrap(), 100);
    assert_eq!(*sizes.iter().max().unwrap(), 10240);

    let weighted = SizeChooser::new(&SizeSpec::Weighted(vec![
        WeightedSize {
            size: ByteSize(100),
            weight: 3.0,
        },
        WeightedSize {
            size: ByteSize(1024),
            weight: 1.0,
        },
    ]));
    let small = (0..100_000)
        .filter(|_| weighted.next(&mut rng) == 100)
        .count();
    assert!((small as f64 / 100_000.0 - 0.75).abs() < 0.01);
    let fixed = SizeChooser::new(&SizeSpec::Fixed(ByteSize(1024)));
    assert!((0..1000).all(|_| fixed.next(&mut rng) == 1024));
}

#[test]
fn the_same_seed_gives_the_same_sequence() {
    let k = keys(KeyDistributionKind::Zipfian, 100_000);
    let values = SizeSpec::Uniform {
        min: ByteSize(100),
        max: ByteSize(10240),
    };
    let mix = Mix {
        read: 50.0,
        write: 30.0,
        delete: 10.0,
        read_modify_write: 10.0,
    };
    let run = |seed| {
        let mut g = OpGen::new(seed, &k, &values, &mix);
        (0..10_000).map(|_| g.next_op()).collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    // Every kind in the mix appears, reads and deletes carry no value.
    for kind in OpKind::ALL {
        assert!(a.iter().any(|op| op.kind == kind), "{kind:?} missing");
    }
    assert!(
        a.iter()
            .filter(|op| matches!(op.kind, OpKind::Read | OpKind::Delete))
            .all(|op| op.value_len == 0)
    );
}

#[test]
fn keys_are_fixed_width_and_distinct() {
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    loadgen::generator::write_key(&mut a, 42);
    loadgen::generator::write_key(&mut b, 43);
    assert_eq!(&a, b"k000000000000042");
    assert_ne!(a, b);
}
