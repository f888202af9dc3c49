//! Per-table bloom filter over user keys, blocked by cache line: all probes for a key fall in
//! one 64-byte block, so a negative answer costs one cache miss.
//!
//! Serialized as `num_blocks * 64` bytes of bits followed by one byte `k` (probes per key).
//! Key hash: XXH3-64 of the user key. The block is `((hash >> 32) * num_blocks) >> 32`; the
//! probe bits come from `x = hash as u32`, repeating `x = x * 0x9E3779B9 (mod 2^32)` and
//! taking the top 9 bits of `x` as a bit index in the block (bit `i` is bit `i % 8` of byte
//! `i / 8`).

const BLOCK_BYTES: usize = 64;
const BLOCK_BITS: u32 = 512;
const GOLDEN: u32 = 0x9E37_79B9;

/// The hash the filter is built and probed with.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// A read-only filter.
#[derive(Debug, Clone, Default)]
pub struct Bloom {
    bits: Vec<u8>,
    num_blocks: u64,
    k: u8,
}

impl Bloom {
    /// Parses a serialized filter. An empty or malformed filter answers "maybe" to everything
    /// (the table's data blocks are still checksummed, so no wrong answer can follow).
    pub fn from_bytes(mut data: Vec<u8>) -> Self {
        let Some(k) = data.pop() else {
            return Bloom::default();
        };
        if data.is_empty() || !data.len().is_multiple_of(BLOCK_BYTES) || k == 0 || k > 30 {
            return Bloom::default();
        }
        Bloom {
            num_blocks: (data.len() / BLOCK_BYTES) as u64,
            bits: data,
            k,
        }
    }

    /// False only if the key (whose [`hash_key`] is `hash`) is certainly absent.
    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        if self.num_blocks == 0 {
            return true;
        }
        let block = (((hash >> 32) * self.num_blocks) >> 32) as usize;
        let Some(bits) = self
            .bits
            .get(block * BLOCK_BYTES..(block + 1) * BLOCK_BYTES)
        else {
            return true;
        };
        let mut x = hash as u32;
        for _ in 0..self.k {
            x = x.wrapping_mul(GOLDEN);
            let bit = x >> (32 - 9);
            let byte = bits.get((bit / 8) as usize).copied().unwrap_or(0xff);
            if byte & (1 << (bit % 8)) == 0 {
                return false;
            }
        }
        true
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.bits.len()
    }
}

/// Collects key hashes while a table is written, then builds its filter.
#[derive(Debug, Default)]
pub struct BloomBuilder {
    hashes: Vec<u64>,
}

impl BloomBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key hash (duplicates are harmless).
    pub fn add_hash(&mut self, hash: u64) {
        self.hashes.push(hash);
    }

    /// Serializes a filter with `bits_per_key` bits per added key (0: an empty filter).
    pub fn build(&self, bits_per_key: usize) -> Vec<u8> {
        if bits_per_key == 0 || self.hashes.is_empty() {
            return vec![0];
        }
        let k = ((bits_per_key as f64) * 0.69).round().clamp(1.0, 12.0) as u8;
        let total_bits = self.hashes.len().saturating_mul(bits_per_key);
        let num_blocks = total_bits.div_ceil(BLOCK_BITS as usize).max(1);
        let mut out = vec![0u8; num_blocks * BLOCK_BYTES + 1];
        for &h in &self.hashes {
            let block = (((h >> 32) * num_blocks as u64) >> 32) as usize;
            let mut x = h as u32;
            for _ in 0..k {
                x = x.wrapping_mul(GOLDEN);
                let bit = (x >> (32 - 9)) as usize;
                if let Some(b) = out.get_mut(block * BLOCK_BYTES + bit / 8) {
                    *b |= 1 << (bit % 8);
                }
            }
        }
        if let Some(last) = out.last_mut() {
            *last = k;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let mut b = BloomBuilder::new();
        for i in 0..10_000u32 {
            b.add_hash(hash_key(format!("key{i}").as_bytes()));
        }
        let f = Bloom::from_bytes(b.build(10));
        for i in 0..10_000u32 {
            assert!(f.may_contain(hash_key(format!("key{i}").as_bytes())));
        }
        let fp = (0..10_000u32)
            .filter(|i| f.may_contain(hash_key(format!("other{i}").as_bytes())))
            .count();
        assert!(fp < 250, "false positive rate too high: {fp}/10000");
    }

    #[test]
    fn malformed_filters_answer_maybe() {
        for bytes in [vec![], vec![7], vec![1, 2, 3], vec![0; 65]] {
            assert!(Bloom::from_bytes(bytes).may_contain(42));
        }
    }
}
