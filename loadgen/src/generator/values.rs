//! Value sizes (fixed, uniform, weighted) and the pool of value bytes writes are sliced from.

use rand::{Rng, SeedableRng};

use super::keys::{below, unit_f64};
use crate::workload::{MAX_VALUE_BYTES, SizeSpec};

/// A seeded value-size chooser.
#[derive(Debug, Clone)]
pub enum SizeChooser {
    /// Always this many bytes.
    Fixed(u32),
    /// Uniform over `min..=max`.
    Uniform {
        /// Smallest.
        min: u32,
        /// Largest.
        max: u32,
    },
    /// Cumulative weights (normalised to end at 1.0) with their sizes.
    Weighted(Vec<(f64, u32)>),
}

impl SizeChooser {
    /// The chooser for a size spec (already validated: sizes 1..=10KB).
    pub fn new(spec: &SizeSpec) -> SizeChooser {
        let clamp = |b: u64| b.min(MAX_VALUE_BYTES) as u32;
        match spec {
            SizeSpec::Fixed(s) => SizeChooser::Fixed(clamp(s.0)),
            SizeSpec::Uniform { min, max } => SizeChooser::Uniform {
                min: clamp(min.0),
                max: clamp(max.0.max(min.0)),
            },
            SizeSpec::Weighted(list) => {
                let total: f64 = list.iter().map(|w| w.weight).sum();
                let mut acc = 0.0;
                let mut cdf = Vec::with_capacity(list.len());
                for w in list {
                    acc += w.weight / total;
                    cdf.push((acc, clamp(w.size.0)));
                }
                if let Some(last) = cdf.last_mut() {
                    last.0 = f64::INFINITY;
                }
                SizeChooser::Weighted(cdf)
            }
        }
    }

    /// The next value size in bytes.
    #[inline]
    pub fn next<R: Rng>(&self, rng: &mut R) -> u32 {
        match self {
            SizeChooser::Fixed(s) => *s,
            SizeChooser::Uniform { min, max } => {
                *min + below(rng, u64::from(*max - *min) + 1) as u32
            }
            SizeChooser::Weighted(cdf) => {
                let u = unit_f64(rng);
                cdf.iter()
                    .find(|(c, _)| u < *c)
                    .or(cdf.last())
                    .map(|(_, s)| *s)
                    .unwrap_or(0)
            }
        }
    }
}

/// Random, incompressible bytes that values are sliced from: `2 × MAX_VALUE_BYTES` long, so any
/// size fits at any offset below `MAX_VALUE_BYTES`.
#[derive(Debug, Clone)]
pub struct ValuePool {
    bytes: Vec<u8>,
}

impl ValuePool {
    /// A pool filled from `seed`.
    pub fn new(seed: u64) -> ValuePool {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x005e_ed0f_ba1e);
        let mut bytes = vec![0u8; 2 * MAX_VALUE_BYTES as usize];
        rng.fill_bytes(&mut bytes);
        ValuePool { bytes }
    }

    /// `len` bytes starting at an offset derived from `key_index`, so values differ by key.
    #[inline]
    pub fn slice(&self, key_index: u64, len: u32) -> &[u8] {
        let off = (key_index.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % MAX_VALUE_BYTES;
        let start = off as usize;
        let end = (start + len as usize).min(self.bytes.len());
        self.bytes.get(start..end).unwrap_or(&[])
    }
}
