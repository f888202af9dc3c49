//! Data and index blocks: prefix-compressed entries with restart points.
//!
//! Uncompressed layout:
//! `entry* | restart: u32 LE * num_restarts | num_restarts: u32 LE`, where an entry is
//! `shared: varint | unshared: varint | value_len: varint | key[shared..] | value` and `shared`
//! is the length of the prefix shared with the previous key (0 at every restart point).

use std::cmp::Ordering;

use crate::lsm::coding::{DecodeResult, put_varint, u32_at, varint_at};
use crate::lsm::key;

/// Builds one block.
#[derive(Debug)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    interval: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    /// A builder with a restart point every `interval` entries.
    pub fn new(interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::with_capacity(4096 + 512),
            restarts: vec![0],
            counter: 0,
            interval: interval.max(1),
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry; keys must arrive in increasing order.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.counter < self.interval {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
            0
        };
        let unshared = key.get(shared..).unwrap_or_default();
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, unshared.len() as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(unshared);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(unshared);
        self.counter += 1;
        self.entries += 1;
    }

    /// Size of the block if it were finished now.
    pub fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// True if no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The last key added.
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Finishes the block and resets the builder for the next one.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.buf = Vec::with_capacity(out.capacity());
        self.restarts.clear();
        self.restarts.push(0);
        self.counter = 0;
        self.last_key.clear();
        self.entries = 0;
        out
    }
}

/// A decoded (decompressed, checksum-verified) block.
#[derive(Debug)]
pub struct Block {
    data: Vec<u8>,
    restarts_off: usize,
    num_restarts: usize,
}

/// Position and extent of one entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryPos {
    value_start: usize,
    value_end: usize,
    next: usize,
}

impl Block {
    /// Validates the restart array of `data`.
    pub fn parse(data: Vec<u8>) -> DecodeResult<Block> {
        let n = data
            .len()
            .checked_sub(4)
            .and_then(|p| u32_at(&data, p))
            .ok_or("block shorter than its restart count")? as usize;
        if n == 0 {
            return Err("block has no restart point");
        }
        let restarts_off = n
            .checked_mul(4)
            .and_then(|b| data.len().checked_sub(4 + b))
            .ok_or("restart array larger than the block")?;
        let b = Block {
            data,
            restarts_off,
            num_restarts: n,
        };
        for i in 0..n {
            if b.restart(i).is_none() {
                return Err("restart point outside the block");
            }
        }
        Ok(b)
    }

    /// Bytes this block costs in the cache.
    pub(crate) fn charge(&self) -> usize {
        self.data.capacity()
    }

    /// Offset of restart point `i`.
    #[inline]
    fn restart(&self, i: usize) -> Option<usize> {
        let off = u32_at(&self.data, self.restarts_off + 4 * i)? as usize;
        (off < self.restarts_off || (off == 0 && self.restarts_off == 0)).then_some(off)
    }

    /// Decodes the entry at `pos`, updating `key` (which holds the previous key).
    #[inline]
    fn decode(&self, pos: usize, key: &mut Vec<u8>) -> DecodeResult<EntryPos> {
        const BAD: &str = "malformed block entry";
        let (shared, p) = varint_at(&self.data, pos).ok_or(BAD)?;
        let (unshared, p) = varint_at(&self.data, p).ok_or(BAD)?;
        let (vlen, p) = varint_at(&self.data, p).ok_or(BAD)?;
        let shared = usize::try_from(shared).map_err(|_| BAD)?;
        let unshared = usize::try_from(unshared).map_err(|_| BAD)?;
        let vlen = usize::try_from(vlen).map_err(|_| BAD)?;
        if shared > key.len() {
            return Err("block entry shares more bytes than the previous key has");
        }
        let key_end = p.checked_add(unshared).ok_or(BAD)?;
        let value_end = key_end.checked_add(vlen).ok_or(BAD)?;
        if value_end > self.restarts_off {
            return Err("block entry runs into the restart array");
        }
        key.truncate(shared);
        key.extend_from_slice(self.data.get(p..key_end).ok_or(BAD)?);
        Ok(EntryPos {
            value_start: key_end,
            value_end,
            next: value_end,
        })
    }

    /// The key stored whole at restart point `i` (restart entries share nothing).
    #[inline]
    fn restart_key(&self, i: usize) -> DecodeResult<&[u8]> {
        const BAD: &str = "malformed restart entry";
        let pos = self.restart(i).ok_or(BAD)?;
        let (shared, p) = varint_at(&self.data, pos).ok_or(BAD)?;
        let (unshared, p) = varint_at(&self.data, p).ok_or(BAD)?;
        let (_, p) = varint_at(&self.data, p).ok_or(BAD)?;
        if shared != 0 {
            return Err("restart entry shares a prefix");
        }
        let end = usize::try_from(unshared)
            .ok()
            .and_then(|u| p.checked_add(u))
            .filter(|&e| e <= self.restarts_off)
            .ok_or(BAD)?;
        self.data.get(p..end).ok_or(BAD)
    }

    #[inline]
    fn value(&self, e: EntryPos) -> &[u8] {
        self.data
            .get(e.value_start..e.value_end)
            .unwrap_or_default()
    }

    /// Index of the restart block to start a linear search for `(user, trailer)` from.
    fn restart_for(&self, user: &[u8], trailer: u64) -> DecodeResult<usize> {
        let (mut lo, mut hi) = (0usize, self.num_restarts);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key::cmp_with(self.restart_key(mid)?, user, trailer) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.saturating_sub(1))
    }

    /// The first entry whose internal key is >= `(user, trailer)`, as `(key, value)`; `key`
    /// is a scratch buffer that receives the entry's key.
    pub(crate) fn seek_entry<'a>(
        &'a self,
        user: &[u8],
        trailer: u64,
        key: &mut Vec<u8>,
    ) -> DecodeResult<Option<&'a [u8]>> {
        let r = self.restart_for(user, trailer)?;
        let mut pos = self.restart(r).ok_or("restart point outside the block")?;
        key.clear();
        while pos < self.restarts_off {
            let e = self.decode(pos, key)?;
            if key::cmp_with(key, user, trailer) != Ordering::Less {
                return Ok(Some(self.value(e)));
            }
            pos = e.next;
        }
        Ok(None)
    }

    /// Number of entries (decodes the whole block; for tests and benchmarks).
    pub fn count_entries(&self) -> DecodeResult<usize> {
        let mut key = Vec::new();
        let mut pos = 0;
        let mut n = 0;
        while pos < self.restarts_off {
            pos = self.decode(pos, &mut key)?.next;
            n += 1;
        }
        Ok(n)
    }

    /// Benchmark helper: the value stored under exactly internal key `(user, trailer)`'s
    /// first match at or after it.
    pub fn find(&self, user: &[u8], trailer: u64) -> Option<Vec<u8>> {
        let mut k = Vec::new();
        self.seek_entry(user, trailer, &mut k)
            .ok()
            .flatten()
            .map(<[u8]>::to_vec)
    }
}

/// A cursor over one block, owning a reference to it.
pub(crate) struct BlockIter {
    block: std::sync::Arc<Block>,
    key: Vec<u8>,
    cur: Option<EntryPos>,
}

impl BlockIter {
    pub(crate) fn new(block: std::sync::Arc<Block>) -> Self {
        BlockIter {
            block,
            key: Vec::new(),
            cur: None,
        }
    }

    pub(crate) fn valid(&self) -> bool {
        self.cur.is_some()
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn value(&self) -> &[u8] {
        self.cur.map_or(&[][..], |e| self.block.value(e))
    }

    fn load(&mut self, pos: usize) -> DecodeResult<()> {
        if pos >= self.block.restarts_off {
            self.cur = None;
            return Ok(());
        }
        match self.block.decode(pos, &mut self.key) {
            Ok(e) => {
                self.cur = Some(e);
                Ok(())
            }
            Err(e) => {
                self.cur = None;
                Err(e)
            }
        }
    }

    pub(crate) fn seek_to_first(&mut self) -> DecodeResult<()> {
        self.key.clear();
        self.load(0)
    }

    pub(crate) fn next(&mut self) -> DecodeResult<()> {
        match self.cur {
            Some(e) => self.load(e.next),
            None => Ok(()),
        }
    }

    pub(crate) fn seek(&mut self, user: &[u8], trailer: u64) -> DecodeResult<()> {
        let r = self.block.restart_for(user, trailer)?;
        let pos = self
            .block
            .restart(r)
            .ok_or("restart point outside the block")?;
        self.key.clear();
        self.load(pos)?;
        while self.valid() && key::cmp_with(&self.key, user, trailer) == Ordering::Less {
            self.next()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ikey(user: &[u8], seq: u64) -> Vec<u8> {
        let mut k = Vec::new();
        key::append(&mut k, user, key::trailer(seq, key::KIND_PUT));
        k
    }

    #[test]
    fn seek_and_iterate_across_restart_points() {
        let mut b = BlockBuilder::new(4);
        let keys: Vec<Vec<u8>> = (0..50u32)
            .map(|i| format!("key{i:04}").into_bytes())
            .collect();
        for (i, k) in keys.iter().enumerate() {
            b.add(&ikey(k, 7), format!("v{i}").as_bytes());
        }
        let block = Arc::new(Block::parse(b.finish()).unwrap());
        assert_eq!(block.count_entries().unwrap(), 50);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                block.find(k, key::seek_trailer(9)),
                Some(format!("v{i}").into_bytes())
            );
        }
        let mut it = BlockIter::new(block.clone());
        it.seek(b"key0010x", key::seek_trailer(9)).unwrap();
        assert_eq!(key::user_key(it.key()), b"key0011");
        let mut n = 0;
        it.seek_to_first().unwrap();
        while it.valid() {
            n += 1;
            it.next().unwrap();
        }
        assert_eq!(n, 50);
        it.seek(b"zzz", key::seek_trailer(9)).unwrap();
        assert!(!it.valid());
    }

    #[test]
    fn garbage_blocks_are_errors_not_panics() {
        for data in [
            vec![],
            vec![1, 0, 0, 0],
            vec![0xff; 40],
            vec![0, 0, 0, 0, 1, 0, 0, 0],
        ] {
            if let Ok(b) = Block::parse(data) {
                let _ = b.count_entries();
                let _ = b.find(b"k", 5);
            }
        }
    }
}
