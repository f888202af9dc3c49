//! The block cache: decompressed data blocks keyed by `(table id, block offset)`, within a
//! byte budget. Sharded 16 ways by key hash; each shard runs CLOCK (second chance) eviction,
//! so a hit only sets a flag under a short shard lock.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::lsm::sstable::block::Block;

const SHARDS: usize = 16;
/// Bytes charged per entry on top of the block's data.
const ENTRY_OVERHEAD: usize = 96;

/// `(table id, block offset)`.
pub(crate) type CacheKey = (u64, u64);

/// A hasher for two u64s (the cache key): one multiply-xorshift round each.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

fn shard_of(key: CacheKey) -> usize {
    let mut h = KeyHasher::default();
    h.write_u64(key.0);
    h.write_u64(key.1);
    (h.finish() >> 40) as usize % SHARDS
}

struct Entry {
    block: Arc<Block>,
    referenced: bool,
    charge: usize,
}

/// One shard: a map from key to entry, and the CLOCK ring of keys in insertion order.
#[derive(Default)]
struct Shard {
    map: HashMap<CacheKey, Entry, BuildHasherDefault<KeyHasher>>,
    ring: VecDeque<CacheKey>,
    used: usize,
    capacity: usize,
    hits: u64,
    misses: u64,
}

impl Shard {
    #[inline]
    fn get(&mut self, key: CacheKey) -> Option<Arc<Block>> {
        match self.map.get_mut(&key) {
            Some(e) => {
                e.referenced = true;
                self.hits += 1;
                Some(Arc::clone(&e.block))
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    fn insert(&mut self, key: CacheKey, block: Arc<Block>) {
        let charge = block.charge() + ENTRY_OVERHEAD;
        if charge > self.capacity {
            return;
        }
        if let Some(e) = self.map.get_mut(&key) {
            e.referenced = true;
            return;
        }
        // Second chance: a referenced entry goes round once more with its bit cleared; an
        // unreferenced one is evicted. Two full turns always free enough room.
        let mut turns = 2 * self.ring.len() + 1;
        while self.used + charge > self.capacity && turns > 0 {
            turns -= 1;
            let Some(k) = self.ring.pop_front() else {
                break;
            };
            match self.map.get_mut(&k) {
                Some(e) if e.referenced => {
                    e.referenced = false;
                    self.ring.push_back(k);
                }
                Some(_) => {
                    if let Some(e) = self.map.remove(&k) {
                        self.used -= e.charge;
                    }
                }
                None => {}
            }
        }
        if self.used + charge > self.capacity {
            return;
        }
        self.map.insert(
            key,
            Entry {
                block,
                referenced: false,
                charge,
            },
        );
        self.ring.push_back(key);
        self.used += charge;
    }
}

/// The shared block cache.
pub(crate) struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    capacity: usize,
}

impl BlockCache {
    /// A cache holding at most `capacity` bytes (0 disables it).
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity / SHARDS;
        BlockCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        capacity: per_shard,
                        ..Shard::default()
                    })
                })
                .collect(),
            capacity,
        }
    }

    /// The cached block, counting a hit or a miss.
    #[inline]
    pub(crate) fn get(&self, key: CacheKey) -> Option<Arc<Block>> {
        self.shards.get(shard_of(key))?.lock().get(key)
    }

    /// Caches `block` (evicting others if needed).
    pub(crate) fn insert(&self, key: CacheKey, block: Arc<Block>) {
        if let Some(s) = self.shards.get(shard_of(key)) {
            s.lock().insert(key, block);
        }
    }

    /// `(hits, misses, bytes used)`.
    pub(crate) fn counters(&self) -> (u64, u64, u64) {
        let mut t = (0, 0, 0);
        for s in &self.shards {
            let s = s.lock();
            t.0 += s.hits;
            t.1 += s.misses;
            t.2 += s.used as u64;
        }
        t
    }

    /// The byte budget.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: usize) -> Arc<Block> {
        let mut b = crate::lsm::sstable::block::BlockBuilder::new(16);
        let mut k = Vec::new();
        crate::lsm::key::append(&mut k, b"k", 1);
        b.add(&k, &vec![0u8; n]);
        Arc::new(Block::parse(b.finish()).unwrap())
    }

    #[test]
    fn stays_within_budget_and_keeps_hot_blocks() {
        let c = BlockCache::new(16 * 4 * 1200);
        let hot = (7u64, 0u64);
        for i in 0..400u64 {
            c.insert((1, i), block(1000));
            c.insert(hot, block(1000));
            assert!(c.get(hot).is_some());
        }
        let (_, _, used) = c.counters();
        assert!(used as usize <= c.capacity());
    }
}
