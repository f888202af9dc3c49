//! Key distributions over key indexes `0..count`, and the key bytes for an index.
//!
//! The zipfian generator follows Gray et al., "Quickly Generating Billion-Record Synthetic
//! Databases" (SIGMOD 1994), the method YCSB uses: rank 0 and 1 are exact, the tail comes from a
//! closed-form inverse. Ranks map to key indexes directly (no scrambling): the store hashes keys
//! onto its ring anyway, so hot keys still land on different nodes.

use rand::Rng;

use crate::workload::{DEFAULT_THETA, KeyDistributionKind, KeysConfig};

/// Default hotspot parameters (YCSB's): 20% of keys get 80% of operations.
pub const DEFAULT_HOT_SET: f64 = 0.2;
/// See [`DEFAULT_HOT_SET`].
pub const DEFAULT_HOT_OPS: f64 = 0.8;

/// Number of decimal digits of `n` (at least 1).
pub fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Writes the key for `index` into `buf`: `k` followed by the zero-padded decimal index, filling
/// the whole buffer. Indexes too wide for the buffer keep their low digits.
pub fn write_key(buf: &mut [u8], mut index: u64) {
    let Some((first, rest)) = buf.split_first_mut() else {
        return;
    };
    *first = b'k';
    for b in rest.iter_mut().rev() {
        *b = b'0' + (index % 10) as u8;
        index /= 10;
    }
}

/// A uniform float in `[0, 1)` from 53 random bits.
#[inline]
pub fn unit_f64<R: Rng>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in `0..n` (`n >= 1`) by multiply-shift; the bias is below 2^-40 for the
/// key counts a workload can have.
#[inline]
pub fn below<R: Rng>(rng: &mut R, n: u64) -> u64 {
    ((rng.next_u64() as u128 * n as u128) >> 64) as u64
}

/// Zipfian ranks over `0..n` with skew `theta` (0 < theta < 1): P(rank k) ∝ 1/(k+1)^theta.
#[derive(Debug, Clone)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    rank1_threshold: f64,
}

/// ζ(n, θ) summed from `from + 1` to `to` inclusive.
fn zeta_range(from: u64, to: u64, theta: f64) -> f64 {
    (from + 1..=to).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipfian {
    /// A generator over `n >= 1` items.
    pub fn new(n: u64, theta: f64) -> Zipfian {
        let n = n.max(1);
        let mut z = Zipfian {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan: zeta_range(0, n, theta),
            eta: 0.0,
            rank1_threshold: 1.0 + 0.5f64.powf(theta),
        };
        z.update_eta();
        z
    }

    fn update_eta(&mut self) {
        let zeta2 = 1.0 + 0.5f64.powf(self.theta);
        self.eta = if self.n > 2 {
            (1.0 - (2.0 / self.n as f64).powf(1.0 - self.theta)) / (1.0 - zeta2 / self.zetan)
        } else {
            0.0
        };
    }

    /// Number of items.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Always false: a generator has at least one item.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The exact probability of `rank` under the distribution the generator approximates.
    pub fn probability(&self, rank: u64) -> f64 {
        1.0 / ((rank + 1) as f64).powf(self.theta) / self.zetan
    }

    /// Adds items up to `new_n` (incrementally updates ζ; used by `latest` as keys are inserted).
    pub fn grow_to(&mut self, new_n: u64) {
        if new_n > self.n {
            self.zetan += zeta_range(self.n, new_n, self.theta);
            self.n = new_n;
            self.update_eta();
        }
    }

    /// The rank for a uniform `u` in `[0, 1)`.
    #[inline]
    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < self.rank1_threshold || self.n <= 2 {
            return 1.min(self.n - 1);
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }
}

/// A seeded key chooser for one run.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    /// Uniform over `0..n`.
    Uniform {
        /// Key count.
        n: u64,
    },
    /// Zipfian ranks.
    Zipfian(Zipfian),
    /// Reads favour recent inserts; writes insert the next key.
    Latest {
        /// Recency ranks over the keys inserted so far.
        zipf: Zipfian,
        /// Keys inserted so far (`0..inserted` exist).
        inserted: u64,
    },
    /// A hot set gets most operations.
    Hotspot {
        /// Key count.
        n: u64,
        /// Keys `0..hot` are hot.
        hot: u64,
        /// Fraction of operations going to the hot keys.
        hot_ops: f64,
    },
    /// `0, 1, 2, …` wrapping at `n`.
    Sequential {
        /// Key count.
        n: u64,
        /// Next key.
        next: u64,
    },
}

impl KeyChooser {
    /// The chooser a `keys:` section describes.
    pub fn new(cfg: &KeysConfig) -> KeyChooser {
        let n = cfg.count.max(1);
        let theta = cfg.theta.unwrap_or(DEFAULT_THETA);
        match cfg.distribution {
            KeyDistributionKind::Uniform => KeyChooser::Uniform { n },
            KeyDistributionKind::Zipfian => KeyChooser::Zipfian(Zipfian::new(n, theta)),
            KeyDistributionKind::Latest => KeyChooser::Latest {
                zipf: Zipfian::new(n, theta),
                inserted: n,
            },
            KeyDistributionKind::Hotspot => {
                let set = cfg.hot_set.unwrap_or(DEFAULT_HOT_SET);
                let hot = ((n as f64 * set).round() as u64).clamp(1, n);
                KeyChooser::Hotspot {
                    n,
                    hot,
                    hot_ops: cfg.hot_ops.unwrap_or(DEFAULT_HOT_OPS),
                }
            }
            KeyDistributionKind::Sequential => KeyChooser::Sequential { n, next: 0 },
        }
    }

    /// The key index for the next operation; `insert` is true for a write under `latest`.
    #[inline]
    pub fn next<R: Rng>(&mut self, rng: &mut R, insert: bool) -> u64 {
        match self {
            KeyChooser::Uniform { n } => below(rng, *n),
            KeyChooser::Zipfian(z) => z.rank(unit_f64(rng)),
            KeyChooser::Latest { zipf, inserted } => {
                if insert {
                    let key = *inserted;
                    *inserted += 1;
                    zipf.grow_to(*inserted);
                    key
                } else {
                    let back = zipf.rank(unit_f64(rng));
                    inserted.saturating_sub(1).saturating_sub(back)
                }
            }
            KeyChooser::Hotspot { n, hot, hot_ops } => {
                if unit_f64(rng) < *hot_ops || *hot >= *n {
                    below(rng, *hot)
                } else {
                    *hot + below(rng, *n - *hot)
                }
            }
            KeyChooser::Sequential { n, next } => {
                let key = *next;
                *next = (*next + 1) % *n;
                key
            }
        }
    }
}
