//! The memtable: a lock-free ordered skiplist of internal entries with a byte budget.
//!
//! Entries are ordered by user key, then newest first. Lookups borrow the probe key through a
//! trait object (`dyn KeyView`), so a `get` allocates nothing to search.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};

use crossbeam_skiplist::SkipSet;

use crate::lsm::key::{self, KIND_PUT};

/// Estimated bytes a skiplist node costs beyond its key and value.
const ENTRY_OVERHEAD: usize = 64;

/// One version of one key: `buf` holds the user key followed by the value. `prefix` caches
/// the key's first 8 bytes so most comparisons stay inside the skiplist node.
pub(crate) struct MemEntry {
    prefix: u64,
    trailer: u64,
    key_len: usize,
    buf: Box<[u8]>,
}

impl MemEntry {
    #[inline]
    pub(crate) fn user_key(&self) -> &[u8] {
        self.buf.get(..self.key_len).unwrap_or_default()
    }
    #[inline]
    pub(crate) fn value(&self) -> &[u8] {
        self.buf.get(self.key_len..).unwrap_or_default()
    }
    #[inline]
    pub(crate) fn trailer(&self) -> u64 {
        self.trailer
    }
}

/// The first 8 bytes of `user`, big-endian, zero-padded. A strictly smaller prefix means a
/// strictly smaller key; equal prefixes need a full comparison.
#[inline]
pub(crate) fn key_prefix(user: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = user.len().min(8);
    if let (Some(dst), Some(src)) = (b.get_mut(..n), user.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_be_bytes(b)
}

/// Internal-key order over `(prefix, user key, trailer)`.
#[inline]
fn cmp_entries(ap: u64, au: &[u8], at: u64, bp: u64, bu: &[u8], bt: u64) -> Ordering {
    ap.cmp(&bp).then_with(|| key::cmp_parts(au, at, bu, bt))
}

/// What a memtable entry and a lookup probe have in common.
pub(crate) trait KeyView {
    fn prefix(&self) -> u64;
    fn user(&self) -> &[u8];
    fn trailer(&self) -> u64;
}

impl KeyView for MemEntry {
    #[inline]
    fn prefix(&self) -> u64 {
        self.prefix
    }
    #[inline]
    fn user(&self) -> &[u8] {
        self.user_key()
    }
    #[inline]
    fn trailer(&self) -> u64 {
        self.trailer
    }
}

/// A borrowed `(user key, trailer)` probe.
pub(crate) struct Probe<'a> {
    prefix: u64,
    user: &'a [u8],
    trailer: u64,
}

impl<'a> Probe<'a> {
    #[inline]
    pub(crate) fn new(user: &'a [u8], trailer: u64) -> Self {
        Probe {
            prefix: key_prefix(user),
            user,
            trailer,
        }
    }
}

impl KeyView for Probe<'_> {
    #[inline]
    fn prefix(&self) -> u64 {
        self.prefix
    }
    #[inline]
    fn user(&self) -> &[u8] {
        self.user
    }
    #[inline]
    fn trailer(&self) -> u64 {
        self.trailer
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for MemEntry {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for dyn KeyView + '_ {}
impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for dyn KeyView + '_ {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_entries(
            self.prefix(),
            self.user(),
            self.trailer(),
            other.prefix(),
            other.user(),
            other.trailer(),
        )
    }
}

impl PartialEq for MemEntry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for MemEntry {}
impl PartialOrd for MemEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MemEntry {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        // The 8-byte prefix decides most comparisons without a memcmp; it
        // orders like the key bytes, so the order is the same.
        cmp_entries(
            self.prefix,
            self.user_key(),
            self.trailer,
            other.prefix,
            other.user_key(),
            other.trailer,
        )
    }
}

/// The result of a point lookup in one layer of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The newest visible version is this value.
    Value(Vec<u8>),
    /// The newest visible version is a tombstone.
    Deleted,
    /// This layer holds no visible version.
    Absent,
}

/// An ordered in-memory table of entries, fed by one write-ahead log.
pub struct Memtable {
    set: SkipSet<MemEntry>,
    bytes: AtomicUsize,
    /// The WAL holding this memtable's writes.
    pub(crate) wal_id: u64,
    max_seq: AtomicU64,
}

impl Memtable {
    /// An empty memtable fed by WAL `wal_id`.
    pub fn new(wal_id: u64) -> Self {
        Memtable {
            set: SkipSet::new(),
            bytes: AtomicUsize::new(0),
            wal_id,
            max_seq: AtomicU64::new(0),
        }
    }

    /// Inserts one version. Concurrent inserts are safe; the engine inserts from the commit
    /// leader only, in sequence order.
    pub fn insert(&self, user: &[u8], seq: u64, kind: u8, value: &[u8]) {
        let mut buf = Vec::with_capacity(user.len() + value.len());
        buf.extend_from_slice(user);
        buf.extend_from_slice(value);
        let entry = MemEntry {
            prefix: key_prefix(user),
            trailer: key::trailer(seq, kind),
            key_len: user.len(),
            buf: buf.into_boxed_slice(),
        };
        self.bytes.fetch_add(
            user.len() + value.len() + ENTRY_OVERHEAD,
            AtomicOrdering::Relaxed,
        );
        self.max_seq.fetch_max(seq, AtomicOrdering::Relaxed);
        self.set.insert(entry);
    }

    /// The newest version of `user` with sequence number <= `seq`.
    pub(crate) fn get(&self, user: &[u8], seq: u64) -> Lookup {
        let probe = Probe::new(user, key::seek_trailer(seq));
        let Some(e) = self
            .set
            .lower_bound(Bound::Included(&probe as &dyn KeyView))
        else {
            return Lookup::Absent;
        };
        let e = e.value();
        if e.user_key() != user {
            return Lookup::Absent;
        }
        if key::trailer_kind(e.trailer) == KIND_PUT {
            Lookup::Value(e.value().to_vec())
        } else {
            Lookup::Deleted
        }
    }

    /// Like [`Memtable::get`], for benchmarks: true if a visible value exists.
    pub fn contains(&self, user: &[u8], seq: u64) -> bool {
        matches!(self.get(user, seq), Lookup::Value(_))
    }

    /// Approximate bytes held.
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(AtomicOrdering::Relaxed)
    }

    /// Number of entries (versions).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// True if nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Highest sequence number inserted.
    pub(crate) fn max_seq(&self) -> u64 {
        self.max_seq.load(AtomicOrdering::Relaxed)
    }

    /// Every entry in order (newest version of a key first).
    pub(crate) fn iter(
        &self,
    ) -> impl Iterator<Item = crossbeam_skiplist::set::Entry<'_, MemEntry>> {
        self.set.iter()
    }

    /// Copies up to `max` entries starting at `from` (an internal-key bound) into `out` as
    /// `(internal key, value)`; returns how many were copied.
    pub(crate) fn chunk(
        &self,
        from: Bound<(&[u8], u64)>,
        max: usize,
        out: &mut std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
    ) -> usize {
        let first = match from {
            Bound::Included((user, trailer)) => {
                let probe = Probe::new(user, trailer);
                self.set
                    .lower_bound(Bound::Included(&probe as &dyn KeyView))
            }
            Bound::Excluded((user, trailer)) => {
                let probe = Probe::new(user, trailer);
                self.set
                    .lower_bound(Bound::Excluded(&probe as &dyn KeyView))
            }
            Bound::Unbounded => self.set.front(),
        };
        let mut cur = first;
        let mut n = 0;
        while let Some(e) = cur {
            if n >= max {
                break;
            }
            let v = e.value();
            let mut ikey = Vec::with_capacity(v.key_len + key::TRAILER_LEN);
            key::append(&mut ikey, v.user_key(), v.trailer);
            out.push_back((ikey, v.value().to_vec()));
            n += 1;
            cur = e.next();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsm::key::KIND_DELETE;

    #[test]
    fn get_sees_the_newest_version_at_or_below_the_snapshot() {
        let m = Memtable::new(1);
        m.insert(b"k", 1, KIND_PUT, b"v1");
        m.insert(b"k", 3, KIND_DELETE, b"");
        m.insert(b"k", 5, KIND_PUT, b"v5");
        m.insert(b"kk", 2, KIND_PUT, b"other");
        assert_eq!(m.get(b"k", 0), Lookup::Absent);
        assert_eq!(m.get(b"k", 2), Lookup::Value(b"v1".to_vec()));
        assert_eq!(m.get(b"k", 4), Lookup::Deleted);
        assert_eq!(m.get(b"k", 9), Lookup::Value(b"v5".to_vec()));
        assert_eq!(m.get(b"j", 9), Lookup::Absent);
        assert_eq!(m.get(b"kk", 9), Lookup::Value(b"other".to_vec()));
    }
}
