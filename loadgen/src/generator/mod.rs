//! Seeded operation generation: which operation, on which key, with how big a value.
//!
//! [`OpGen::next`] returns a small `Copy` description ([`OpSpec`]); each worker formats the key
//! into its own buffer and slices the value from the shared [`ValuePool`], so generating an
//! operation allocates nothing.

pub mod keys;
pub mod trace;
pub mod values;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde::Serialize;

use crate::workload::{KeyDistributionKind, KeysConfig, Mix, Shard, SizeSpec};
pub use keys::{KeyChooser, Zipfian, write_key};
pub use values::{SizeChooser, ValuePool};

/// The operations a workload mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A point read.
    Read,
    /// A write.
    Write,
    /// A delete.
    Delete,
    /// A read, then a write with the context it returned.
    ReadModifyWrite,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 4] = [
        OpKind::Read,
        OpKind::Write,
        OpKind::Delete,
        OpKind::ReadModifyWrite,
    ];

    /// The name used in summary.json, CSV columns and file names.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Delete => "delete",
            OpKind::ReadModifyWrite => "read_modify_write",
        }
    }

    /// Position in [`OpKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses [`OpKind::name`].
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One operation to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSpec {
    /// What to do.
    pub kind: OpKind,
    /// Which key (format it with [`write_key`]).
    pub key_index: u64,
    /// Value size for writes (0 for reads and deletes).
    pub value_len: u32,
}

/// The seeded generator of a run's operations.
#[derive(Debug, Clone)]
pub struct OpGen {
    rng: Xoshiro256PlusPlus,
    keys: KeyChooser,
    sizes: SizeChooser,
    mix_cdf: [f64; 4],
    latest: bool,
}

impl OpGen {
    /// A generator; the same arguments give the same sequence.
    pub fn new(seed: u64, keys: &KeysConfig, values: &SizeSpec, mix: &Mix) -> OpGen {
        OpGen::for_shard(seed, keys, values, mix, Shard::WHOLE)
    }

    /// The generator of one shard of a workload split over several loadgens (`--shard`).
    ///
    /// Each shard draws from its own seed ([`Shard::seed`]) rather than taking every k-th
    /// operation of the one-process stream: the operations are drawn independently, so k
    /// streams from k seeds have exactly the one-process mix, key and size distributions
    /// between them, and a shard does not pay for generating the k − 1 operations it would
    /// skip. The key cursors of `sequential` and `latest` are split instead
    /// ([`KeyChooser::for_shard`]). `Shard::WHOLE` gives the one-process stream.
    pub fn for_shard(
        seed: u64,
        keys: &KeysConfig,
        values: &SizeSpec,
        mix: &Mix,
        shard: Shard,
    ) -> OpGen {
        let weights = [mix.read, mix.write, mix.delete, mix.read_modify_write];
        let total: f64 = weights.iter().sum();
        let mut mix_cdf = [0.0; 4];
        let mut acc = 0.0;
        for (slot, w) in mix_cdf.iter_mut().zip(weights) {
            acc += w / total;
            *slot = acc;
        }
        // The last non-zero weight catches rounding.
        if let Some(last) = weights.iter().rposition(|w| *w > 0.0)
            && let Some(slot) = mix_cdf.get_mut(last)
        {
            *slot = f64::INFINITY;
        }
        OpGen {
            rng: Xoshiro256PlusPlus::seed_from_u64(shard.seed(seed)),
            keys: KeyChooser::for_shard(keys, shard),
            sizes: SizeChooser::new(values),
            mix_cdf,
            latest: keys.distribution == KeyDistributionKind::Latest,
        }
    }

    /// The next operation.
    #[inline]
    pub fn next_op(&mut self) -> OpSpec {
        let u = keys::unit_f64(&mut self.rng);
        let kind = if u < self.mix_cdf[0] {
            OpKind::Read
        } else if u < self.mix_cdf[1] {
            OpKind::Write
        } else if u < self.mix_cdf[2] {
            OpKind::Delete
        } else {
            OpKind::ReadModifyWrite
        };
        let insert = self.latest && kind == OpKind::Write;
        let key_index = self.keys.next(&mut self.rng, insert);
        let value_len = match kind {
            OpKind::Write | OpKind::ReadModifyWrite => self.sizes.next(&mut self.rng),
            OpKind::Read | OpKind::Delete => 0,
        };
        OpSpec {
            kind,
            key_index,
            value_len,
        }
    }

    /// A value size for a preload write.
    pub fn next_size(&mut self) -> u32 {
        self.sizes.next(&mut self.rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::ByteSize;

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

    fn stream(distribution: KeyDistributionKind, shard: Shard, n: usize) -> Vec<OpSpec> {
        let mix = Mix {
            read: 0.0,
            write: 1.0,
            ..Mix::default()
        };
        let mut g = OpGen::for_shard(
            5,
            &keys(distribution, 10),
            &SizeSpec::Fixed(ByteSize(100)),
            &mix,
            shard,
        );
        (0..n).map(|_| g.next_op()).collect()
    }

    #[test]
    fn the_whole_shard_is_the_one_process_stream() {
        let mut one = OpGen::new(
            5,
            &keys(KeyDistributionKind::Zipfian, 1000),
            &SizeSpec::Fixed(ByteSize(100)),
            &Mix::default(),
        );
        let mut whole = OpGen::for_shard(
            5,
            &keys(KeyDistributionKind::Zipfian, 1000),
            &SizeSpec::Fixed(ByteSize(100)),
            &Mix::default(),
            Shard::WHOLE,
        );
        for _ in 0..1000 {
            assert_eq!(one.next_op(), whole.next_op());
        }
    }

    #[test]
    fn shards_draw_different_streams_from_one_seed() {
        let a = stream(
            KeyDistributionKind::Uniform,
            Shard { index: 1, count: 2 },
            200,
        );
        let b = stream(
            KeyDistributionKind::Uniform,
            Shard { index: 2, count: 2 },
            200,
        );
        assert_ne!(a, b);
        // Reproducible: the same shard of the same seed gives the same stream.
        assert_eq!(
            a,
            stream(
                KeyDistributionKind::Uniform,
                Shard { index: 1, count: 2 },
                200
            )
        );
    }

    #[test]
    fn cursor_distributions_are_split_between_shards() {
        let key_of = |ops: Vec<OpSpec>| ops.iter().map(|o| o.key_index).collect::<Vec<_>>();
        let shard = |index| Shard { index, count: 3 };
        // Sequential: each shard walks its own residue class, together every key in turn.
        assert_eq!(
            key_of(stream(KeyDistributionKind::Sequential, shard(2), 5)),
            [1, 4, 7, 0, 3]
        );
        let firsts: Vec<u64> = (1..=3)
            .map(|i| key_of(stream(KeyDistributionKind::Sequential, shard(i), 1))[0])
            .collect();
        assert_eq!(firsts, [0, 1, 2]);
        // Latest: every write inserts; the shards' new keys never collide.
        let mut inserted = std::collections::BTreeSet::new();
        for i in 1..=3 {
            for k in key_of(stream(KeyDistributionKind::Latest, shard(i), 50)) {
                assert!(k >= 10, "an insert creates a new key");
                assert!(inserted.insert(k), "key {k} inserted by two shards");
            }
        }
        assert_eq!(
            inserted.into_iter().collect::<Vec<_>>(),
            (10..160).collect::<Vec<_>>()
        );
    }
}
