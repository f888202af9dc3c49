//! Little-endian fixed-width integers and LEB128 varints, and a bounds-checked decoder that
//! turns short or malformed input into a reason string instead of a panic.

/// Appends `v` as a LEB128 varint (1..=10 bytes).
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends `v` little-endian.
pub(crate) fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` little-endian.
pub(crate) fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends a varint length followed by the bytes.
pub(crate) fn put_len_prefixed(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Reads a little-endian u32 at `pos`, if the bytes are there.
pub(crate) fn u32_at(buf: &[u8], pos: usize) -> Option<u32> {
    let end = pos.checked_add(4)?;
    let bytes: [u8; 4] = buf.get(pos..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Reads a little-endian u64 at `pos`, if the bytes are there.
pub(crate) fn u64_at(buf: &[u8], pos: usize) -> Option<u64> {
    let end = pos.checked_add(8)?;
    let bytes: [u8; 8] = buf.get(pos..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Decodes a varint at `pos`; returns the value and the position after it.
#[inline(always)]
pub(crate) fn varint_at(buf: &[u8], pos: usize) -> Option<(u64, usize)> {
    let b = *buf.get(pos)?;
    if b < 0x80 {
        return Some((u64::from(b), pos + 1));
    }
    varint_slow(buf, pos)
}

#[inline(never)]
fn varint_slow(buf: &[u8], mut pos: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(pos)?;
        pos += 1;
        if shift == 63 && b > 1 {
            return None; // overflows u64
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some((v, pos));
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// A cursor over untrusted bytes. Every read is bounds-checked; a failure names what was
/// being read.
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Why decoding failed; callers attach the file and offset.
pub(crate) type DecodeResult<T> = std::result::Result<T, &'static str>;

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// True when every byte was consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> DecodeResult<u8> {
        let b = *self.buf.get(self.pos).ok_or(what)?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> DecodeResult<u32> {
        let v = u32_at(self.buf, self.pos).ok_or(what)?;
        self.pos += 4;
        Ok(v)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> DecodeResult<u64> {
        let v = u64_at(self.buf, self.pos).ok_or(what)?;
        self.pos += 8;
        Ok(v)
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> DecodeResult<u64> {
        let (v, next) = varint_at(self.buf, self.pos).ok_or(what)?;
        self.pos = next;
        Ok(v)
    }

    /// A varint that must fit a `usize`.
    pub(crate) fn varint_usize(&mut self, what: &'static str) -> DecodeResult<usize> {
        usize::try_from(self.varint(what)?).map_err(|_| what)
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> DecodeResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(what)?;
        let b = self.buf.get(self.pos..end).ok_or(what)?;
        self.pos = end;
        Ok(b)
    }

    pub(crate) fn len_prefixed(&mut self, what: &'static str) -> DecodeResult<&'a [u8]> {
        let n = self.varint_usize(what)?;
        self.bytes(n, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overflow() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(varint_at(&b, 0), Some((v, b.len())));
        }
        assert_eq!(varint_at(&[0xff; 11], 0), None);
        assert_eq!(varint_at(&[0x80], 0), None);
    }
}
