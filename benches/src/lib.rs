//! Shared helpers for ringkv's benchmarks.

/// SplitMix64: a fast, well-mixed 64-bit hash of `x`; the benchmarks derive keys and values
/// from it so every run (and both engines) sees the same data.
#[inline]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 16-byte key number `i`: 16 lowercase hex digits of `splitmix64(i)`, so keys arrive
/// in random order when `i` counts up.
#[inline]
pub fn key16(i: u64, out: &mut [u8; 16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let h = splitmix64(i);
    for (n, b) in out.iter_mut().enumerate() {
        *b = HEX
            .get(((h >> (60 - 4 * n)) & 0xf) as usize)
            .copied()
            .unwrap_or(b'0');
    }
}

/// Fills `out` with the value for key number `i`: the first half pseudo-random, the second
/// half a copy of the first, so it compresses about 2:1 (like db_bench's default).
pub fn fill_value(i: u64, out: &mut [u8]) {
    let half = out.len() / 2;
    let mut x = splitmix64(i ^ 0xA5A5_A5A5_A5A5_A5A5);
    let (first, second) = out.split_at_mut(half);
    for chunk in first.chunks_mut(8) {
        x = splitmix64(x);
        let bytes = x.to_le_bytes();
        for (d, s) in chunk.iter_mut().zip(bytes) {
            *d = s;
        }
    }
    for (d, s) in second.iter_mut().zip(first.iter().cycle()) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hex_and_distinct() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        key16(1, &mut a);
        key16(2, &mut b);
        assert_ne!(a, b);
        assert!(a.iter().all(u8::is_ascii_hexdigit));
    }
}
