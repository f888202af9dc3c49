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

use crate::workload::{KeyDistributionKind, KeysConfig, Mix, SizeSpec};
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
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            keys: KeyChooser::new(keys),
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
