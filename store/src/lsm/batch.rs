//! [`WriteBatch`]: puts and deletes applied atomically, with consecutive sequence numbers.

use crate::lsm::coding::{DecodeResult, Decoder, put_varint};
use crate::lsm::key::{KIND_DELETE, KIND_PUT};

/// A group of puts and deletes that [`Engine::write_batch`](crate::lsm::Engine::write_batch)
/// applies atomically: after a crash either all of them are present or none.
///
/// Operations take consecutive sequence numbers in the order they were added, so a later
/// operation on the same key wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// Operations encoded as in the WAL record body (see `docs/storage-format.md`).
    pub(crate) data: Vec<u8>,
    pub(crate) count: u32,
    /// Key and value bytes, for the write-amplification statistic.
    pub(crate) user_bytes: u64,
}

/// One decoded operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Op<'a> {
    pub(crate) kind: u8,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `value` under `key`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.data.reserve(key.len() + value.len() + 11);
        self.data.push(KIND_PUT);
        put_varint(&mut self.data, key.len() as u64);
        self.data.extend_from_slice(key);
        put_varint(&mut self.data, value.len() as u64);
        self.data.extend_from_slice(value);
        self.count += 1;
        self.user_bytes += (key.len() + value.len()) as u64;
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.data.push(KIND_DELETE);
        put_varint(&mut self.data, key.len() as u64);
        self.data.extend_from_slice(key);
        self.count += 1;
        self.user_bytes += key.len() as u64;
        self
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True if the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every operation, keeping the allocation.
    pub fn clear(&mut self) {
        self.data.clear();
        self.count = 0;
        self.user_bytes = 0;
    }

    /// The operations in order.
    pub(crate) fn ops(&self) -> Ops<'_> {
        Ops::new(&self.data)
    }
}

/// Iterates over encoded operations; yields an error reason on malformed bytes.
pub(crate) struct Ops<'a> {
    dec: Decoder<'a>,
}

impl<'a> Ops<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Ops {
            dec: Decoder::new(data),
        }
    }

    fn decode(&mut self) -> DecodeResult<Op<'a>> {
        let kind = self.dec.u8("operation kind")?;
        let key = self.dec.len_prefixed("operation key")?;
        let value = match kind {
            KIND_PUT => self.dec.len_prefixed("operation value")?,
            KIND_DELETE => &[],
            _ => return Err("unknown operation kind"),
        };
        Ok(Op { kind, key, value })
    }
}

impl<'a> Iterator for Ops<'a> {
    type Item = DecodeResult<Op<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.dec.is_empty() {
            return None;
        }
        let r = self.decode();
        if r.is_err() {
            // Stop after the first malformed operation.
            self.dec = Decoder::new(&[]);
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_in_order() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1").delete(b"b").put(b"c", b"");
        let ops: Vec<_> = b.ops().map(|o| o.unwrap()).collect();
        assert_eq!(ops.len(), 3);
        assert_eq!(
            (ops[0].kind, ops[0].key, ops[0].value),
            (KIND_PUT, &b"a"[..], &b"1"[..])
        );
        assert_eq!((ops[1].kind, ops[1].key), (KIND_DELETE, &b"b"[..]));
        assert_eq!(b.user_bytes, 4);
    }
}
