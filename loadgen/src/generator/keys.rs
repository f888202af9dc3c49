//! Key distributions over key indexes `0..count`, and the key bytes for an index.
//!
//! The zipfian generator samples ranks exactly (rejection-inversion; see [`Zipfian`]). Ranks map
//! to key indexes directly (no scrambling): the store hashes keys onto its ring anyway, so hot
//! keys still land on different nodes.

use rand::Rng;

use crate::workload::{DEFAULT_THETA, KeyDistributionKind, KeysConfig, Shard};

/// Default hotspot parameters (YCSB's): 20% of keys get 80% of operations.
pub const DEFAULT_HOT_SET: f64 = 0.2;
/// See [`DEFAULT_HOT_SET`].
pub const DEFAULT_HOT_OPS: f64 = 0.8;

pub use crate::workload::units::digits;

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

/// Zipfian ranks over `0..n` with exponent `theta`: P(rank k) ∝ 1/(k+1)^theta, exactly.
///
/// Sampling is rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-inversion to
/// generate variates from monotone discrete distributions", 1996): O(1) per sample with no
/// O(n) set-up, so `latest` can grow the key space as it inserts. (YCSB's generator, after
/// Gray et al., is an approximation that over-weights rank 2 by about 18% at theta 0.99.)
#[derive(Debug, Clone)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

/// `ln(1 + x) / x`, accurate near zero.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near zero.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

impl Zipfian {
    /// A generator over `n >= 1` items; `theta > 0`.
    pub fn new(n: u64, theta: f64) -> Zipfian {
        let mut z = Zipfian {
            n: n.max(1),
            theta,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n as f64 + 0.5);
        z.s = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// `1 / x^theta`.
    fn h(&self, x: f64) -> f64 {
        (-self.theta * x.ln()).exp()
    }

    /// An antiderivative of `h`.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.theta) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.theta)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }

    /// Number of items.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Always false: a generator has at least one item.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The exact probability of `rank` (computes the normalising sum: O(n), for tests and docs).
    pub fn probability(&self, rank: u64) -> f64 {
        let zeta: f64 = (1..=self.n)
            .map(|i| 1.0 / (i as f64).powf(self.theta))
            .sum();
        1.0 / ((rank + 1) as f64).powf(self.theta) / zeta
    }

    /// Grows the item count to `new_n` (used by `latest` as keys are inserted). O(1).
    pub fn grow_to(&mut self, new_n: u64) {
        if new_n > self.n {
            self.n = new_n;
            self.h_integral_n = self.h_integral(new_n as f64 + 0.5);
        }
    }

    /// The next rank, 0-based.
    #[inline]
    pub fn sample<R: Rng>(&self, rng: &mut R) -> u64 {
        // The acceptance rate is above 90% for every theta; the bound only guards the loop.
        let mut k = 1u64;
        for _ in 0..64 {
            let u = self.h_integral_n + unit_f64(rng) * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            k = ((x + 0.5) as u64).clamp(1, self.n);
            let kf = k as f64;
            if kf - x <= self.s || u >= self.h_integral(kf + 0.5) - self.h(kf) {
                break;
            }
        }
        k - 1
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
        /// The key the next insert creates.
        next_insert: u64,
        /// Keys between two inserts of this generator (the number of shards: the others
        /// insert the keys in between).
        stride: u64,
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
    /// `0, 1, 2, …` wrapping at `n` (a shard: its offset, then every `stride`-th key).
    Sequential {
        /// Key count.
        n: u64,
        /// Next key.
        next: u64,
        /// Step between keys (the number of shards).
        stride: u64,
    },
}

impl KeyChooser {
    /// The chooser a `keys:` section describes.
    pub fn new(cfg: &KeysConfig) -> KeyChooser {
        KeyChooser::for_shard(cfg, Shard::WHOLE)
    }

    /// The chooser of one shard of the workload. The random distributions draw every key
    /// independently, so each shard keeps the whole distribution (its seed tells the streams
    /// apart). The two with a cursor split it instead: `sequential` starts at the shard's offset
    /// and steps by the shard count, and `latest` inserts every `count`-th new key, so two
    /// shards never walk or insert the same keys.
    pub fn for_shard(cfg: &KeysConfig, shard: Shard) -> KeyChooser {
        let n = cfg.count.max(1);
        let stride = u64::from(shard.count.max(1));
        let theta = cfg.theta.unwrap_or(DEFAULT_THETA);
        match cfg.distribution {
            KeyDistributionKind::Uniform => KeyChooser::Uniform { n },
            KeyDistributionKind::Zipfian => KeyChooser::Zipfian(Zipfian::new(n, theta)),
            KeyDistributionKind::Latest => KeyChooser::Latest {
                zipf: Zipfian::new(n, theta),
                inserted: n,
                next_insert: n.saturating_add(shard.offset()),
                stride,
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
            KeyDistributionKind::Sequential => KeyChooser::Sequential {
                n,
                next: shard.offset() % n,
                stride: stride % n,
            },
        }
    }

    /// The key index for the next operation; `insert` is true for a write under `latest`.
    #[inline]
    pub fn next<R: Rng>(&mut self, rng: &mut R, insert: bool) -> u64 {
        match self {
            KeyChooser::Uniform { n } => below(rng, *n),
            KeyChooser::Zipfian(z) => z.sample(rng),
            KeyChooser::Latest {
                zipf,
                inserted,
                next_insert,
                stride,
            } => {
                if insert {
                    let key = *next_insert;
                    *next_insert = next_insert.saturating_add(*stride);
                    // The other shards insert the keys in between at about the same pace.
                    *inserted = key.saturating_add(1);
                    zipf.grow_to(*inserted);
                    key
                } else {
                    let back = zipf.sample(rng);
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
            KeyChooser::Sequential { n, next, stride } => {
                let key = *next;
                // `next < n` and `stride < n`, so the sum fits in a u128 and wraps at `n`.
                *next = ((u128::from(*next) + u128::from(*stride)) % u128::from(*n)) as u64;
                key
            }
        }
    }
}
