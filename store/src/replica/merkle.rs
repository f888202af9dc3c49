//! The per-range Merkle index, kept up to date on every write.
//!
//! One tree per ring segment this node replicates. A tree has a fixed shape:
//! [`FANOUT`]-ary, [`DEPTH`] levels below the root, so `FANOUT^DEPTH` leaf
//! buckets that split the segment's positions evenly. A leaf's hash is the
//! XOR of `xxh3(key ‖ encoded version set)` over its keys, so a write updates
//! it in O(1) (XOR the old entry out, the new one in) and no exchange ever
//! needs a full scan. Interior hashes are computed on demand from the leaves
//! (256 words per tree), which costs less than keeping them current.
//!
//! Replicas of a segment build identical trees from identical data because the
//! shape depends only on the segment bounds and the version encoding is
//! canonical.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::ring::Segment;

/// Children per interior node.
pub const FANOUT: usize = 16;
/// Levels below the root; leaves are at this level.
pub const DEPTH: u32 = 2;
/// Leaf buckets per tree.
pub const LEAVES: usize = FANOUT * FANOUT;

/// The hash an entry contributes to its leaf.
pub fn entry_hash(key: &[u8], encoded_versions: &[u8]) -> u64 {
    xxh3_64_with_seed(encoded_versions, xxh3_64(key))
}

/// Which leaf of a segment a position falls in.
pub fn leaf_of(segment: Segment, pos: u64) -> usize {
    let width = segment.end.wrapping_sub(segment.start);
    // Offset in 1..=width (positions are (start, end]); width 0 is the whole ring.
    let offset = pos.wrapping_sub(segment.start).wrapping_sub(1);
    let leaf = if width == 0 {
        (u128::from(offset) * LEAVES as u128) >> 64
    } else {
        u128::from(offset) * LEAVES as u128 / u128::from(width)
    };
    (leaf as usize).min(LEAVES - 1)
}

/// The positions `(start, end]` of one leaf bucket, for a range scan.
pub fn leaf_bounds(segment: Segment, leaf: usize) -> (u64, u64) {
    let width = segment.end.wrapping_sub(segment.start);
    let width = if width == 0 {
        1u128 << 64
    } else {
        u128::from(width)
    };
    // Smallest offset that maps to leaf L is ceil(L * width / LEAVES).
    let first_offset = |l: usize| -> u128 { (l as u128 * width).div_ceil(LEAVES as u128) };
    let lo = first_offset(leaf);
    let hi = first_offset(leaf + 1);
    // Positions are start + 1 + offset.
    let start = segment.start.wrapping_add(lo as u64);
    let end = segment.start.wrapping_add(hi as u64);
    (start, end)
}

#[derive(Clone, Debug)]
struct Tree {
    leaves: Box<[u64; LEAVES]>,
    /// Signed: during a rebuild a write's removal of an entry can be counted
    /// before the scan adds it.
    entries: i64,
}

impl Tree {
    fn new() -> Self {
        Tree {
            leaves: Box::new([0; LEAVES]),
            entries: 0,
        }
    }

    fn level(&self, level: u32) -> Vec<u64> {
        let mut hashes: Vec<u64> = self.leaves.to_vec();
        let mut at = DEPTH;
        while at > level {
            hashes = hashes
                .chunks(FANOUT)
                .map(|c| {
                    let mut bytes = Vec::with_capacity(c.len() * 8);
                    for h in c {
                        bytes.extend_from_slice(&h.to_le_bytes());
                    }
                    xxh3_64(&bytes)
                })
                .collect();
            at -= 1;
        }
        hashes
    }
}

/// Merkle trees for the segments one node replicates.
#[derive(Debug, Default)]
pub struct MerkleIndex {
    /// Trees keyed by segment end (segments never overlap).
    trees: Mutex<BTreeMap<u64, (Segment, Tree)>>,
}

impl MerkleIndex {
    /// An index with empty trees for these segments.
    pub fn new(segments: &[Segment]) -> Self {
        let idx = MerkleIndex::default();
        idx.reset(segments);
        idx
    }

    /// Replace the tracked segments (after a ring change) with empty trees;
    /// the caller refills them from a scan.
    pub fn reset(&self, segments: &[Segment]) {
        let mut trees = self.trees.lock();
        trees.clear();
        for &s in segments {
            trees.insert(s.end, (s, Tree::new()));
        }
    }

    /// The tracked segment holding `pos`, if any.
    pub fn segment_of(&self, pos: u64) -> Option<Segment> {
        let trees = self.trees.lock();
        Self::find(&trees, pos).map(|(s, _)| *s)
    }

    fn find(trees: &BTreeMap<u64, (Segment, Tree)>, pos: u64) -> Option<&(Segment, Tree)> {
        // The segment containing pos is the one with the smallest end >= pos,
        // or (wrapping) the one with the smallest end overall.
        let cand = trees
            .range(pos..)
            .next()
            .or_else(|| trees.iter().next())
            .map(|(_, v)| v)?;
        cand.0.contains(pos).then_some(cand)
    }

    /// Account a change of one key: `old` and `new` are entry hashes of the
    /// previous and current version sets (None when absent).
    pub fn update(&self, pos: u64, old: Option<u64>, new: Option<u64>) {
        let mut trees = self.trees.lock();
        let seg_end = match Self::find(&trees, pos) {
            Some((s, _)) => s.end,
            None => return,
        };
        if let Some((seg, tree)) = trees.get_mut(&seg_end) {
            let leaf = leaf_of(*seg, pos);
            if let Some(slot) = tree.leaves.get_mut(leaf) {
                if let Some(h) = old {
                    *slot ^= h;
                    tree.entries = tree.entries.saturating_sub(1);
                }
                if let Some(h) = new {
                    *slot ^= h;
                    tree.entries = tree.entries.saturating_add(1);
                }
            }
        }
    }

    /// Hashes at one level of a segment's tree (level 0 is the root).
    pub fn level(&self, segment: Segment, level: u32) -> Option<Vec<u64>> {
        let trees = self.trees.lock();
        let (seg, tree) = trees.get(&segment.end)?;
        (*seg == segment && level <= DEPTH).then(|| tree.level(level))
    }

    /// Root hash of a segment's tree.
    pub fn root(&self, segment: Segment) -> Option<u64> {
        self.level(segment, 0).and_then(|l| l.first().copied())
    }

    /// Tracked segments.
    pub fn segments(&self) -> Vec<Segment> {
        self.trees.lock().values().map(|(s, _)| *s).collect()
    }

    /// One hash over every tracked segment and its root: equal on two nodes
    /// that track the same segments with the same data.
    pub fn digest(&self) -> u64 {
        let trees = self.trees.lock();
        let mut bytes = Vec::with_capacity(trees.len() * 24);
        for (seg, tree) in trees.values() {
            bytes.extend_from_slice(&seg.start.to_le_bytes());
            bytes.extend_from_slice(&seg.end.to_le_bytes());
            let root = tree.level(0).first().copied().unwrap_or(0);
            bytes.extend_from_slice(&root.to_le_bytes());
        }
        xxh3_64(&bytes)
    }

    /// Entries counted across all trees.
    pub fn entries(&self) -> u64 {
        let sum: i64 = self.trees.lock().values().map(|(_, t)| t.entries).sum();
        u64::try_from(sum).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_bounds_tile_the_segment() {
        for seg in [
            Segment {
                start: 100,
                end: 100_000,
            },
            Segment {
                start: u64::MAX - 1000,
                end: 5000,
            },
            Segment { start: 7, end: 7 },
        ] {
            let mut prev_end = seg.start;
            for leaf in 0..LEAVES {
                let (s, e) = leaf_bounds(seg, leaf);
                assert_eq!(s, prev_end, "leaves are contiguous");
                prev_end = e;
                // Spot-check membership at the edges.
                if s != e {
                    assert_eq!(leaf_of(seg, s.wrapping_add(1)), leaf);
                    assert_eq!(leaf_of(seg, e), leaf);
                }
            }
            assert_eq!(prev_end, seg.end, "last leaf ends at the segment end");
        }
    }

    #[test]
    fn incremental_updates_match_a_rebuild() {
        let seg = Segment {
            start: 0,
            end: 1 << 40,
        };
        let a = MerkleIndex::new(&[seg]);
        let b = MerkleIndex::new(&[seg]);
        // a: insert k1..k50 then overwrite k1..k10 then delete k20..k30.
        let h = |k: u64, v: u64| entry_hash(&k.to_le_bytes(), &v.to_le_bytes());
        let pos = |k: u64| (k * 7919) << 20;
        for k in 1..=50 {
            a.update(pos(k), None, Some(h(k, 0)));
        }
        for k in 1..=10 {
            a.update(pos(k), Some(h(k, 0)), Some(h(k, 1)));
        }
        for k in 20..=30 {
            a.update(pos(k), Some(h(k, 0)), None);
        }
        // b: the final state directly.
        for k in 1..=50 {
            match k {
                1..=10 => b.update(pos(k), None, Some(h(k, 1))),
                20..=30 => {}
                _ => b.update(pos(k), None, Some(h(k, 0))),
            }
        }
        assert_eq!(a.root(seg), b.root(seg));
        assert_eq!(a.level(seg, DEPTH), b.level(seg, DEPTH));
        assert_eq!(a.entries(), 39);
        // One differing entry changes the root and exactly one leaf.
        b.update(pos(40), Some(h(40, 0)), Some(h(40, 9)));
        assert_ne!(a.root(seg), b.root(seg));
        let la = a.level(seg, DEPTH).unwrap();
        let lb = b.level(seg, DEPTH).unwrap();
        assert_eq!(la.iter().zip(&lb).filter(|(x, y)| x != y).count(), 1);
        assert_eq!(a.level(seg, 1).unwrap().len(), FANOUT);
    }

    #[test]
    fn positions_outside_tracked_segments_are_ignored() {
        let seg = Segment { start: 10, end: 20 };
        let idx = MerkleIndex::new(&[seg]);
        idx.update(5, None, Some(1));
        idx.update(25, None, Some(1));
        assert_eq!(idx.entries(), 0);
        idx.update(20, None, Some(1));
        assert_eq!(idx.entries(), 1);
        assert_eq!(idx.segment_of(15), Some(seg));
        assert_eq!(idx.segment_of(10), None);
    }
}
