//! The read path: point reads (memtables, then tables newest to oldest) and ordered scans.

use super::*;

impl Engine {
    /// The newest value of `key`, or `None` if it is absent or deleted.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let inner = &*self.inner;
        inner.stats.add(&inner.stats.gets, 1);
        let sv = inner.super_version();
        let seq = inner.visible_seq.load(Ordering::Acquire);
        for mem in std::iter::once(&sv.mem).chain(&sv.imms) {
            match mem.get(key, seq) {
                Lookup::Value(v) => return Ok(Some(v)),
                Lookup::Deleted => return Ok(None),
                Lookup::Absent => {}
            }
        }
        match sv.version.get(key, hash_key(key), seq, &inner.stats)? {
            Lookup::Value(v) => Ok(Some(v)),
            Lookup::Deleted | Lookup::Absent => Ok(None),
        }
    }

    /// As [`get`](Engine::get), but only from memory: `None` when the answer would need a
    /// block read from a table file (the caller then reads on a thread that may block).
    pub fn get_cached(&self, key: &[u8]) -> Result<Option<Option<Vec<u8>>>> {
        let inner = &*self.inner;
        let sv = inner.super_version();
        let seq = inner.visible_seq.load(Ordering::Acquire);
        for mem in std::iter::once(&sv.mem).chain(&sv.imms) {
            match mem.get(key, seq) {
                Lookup::Value(v) => {
                    inner.stats.add(&inner.stats.gets, 1);
                    return Ok(Some(Some(v)));
                }
                Lookup::Deleted => {
                    inner.stats.add(&inner.stats.gets, 1);
                    return Ok(Some(None));
                }
                Lookup::Absent => {}
            }
        }
        let found = sv
            .version
            .get_with(key, hash_key(key), seq, &inner.stats, true)?;
        if found.is_some() {
            inner.stats.add(&inner.stats.gets, 1);
        }
        Ok(found.map(|l| match l {
            Lookup::Value(v) => Some(v),
            Lookup::Deleted | Lookup::Absent => None,
        }))
    }

    /// An ordered iterator over the keys in `range` and their newest values, as of now.
    /// Tombstones are skipped. The scan holds no lock: writes continue while it runs and do
    /// not show up in it.
    pub fn scan(&self, range: impl RangeBounds<Vec<u8>>) -> Result<Scan> {
        let inner = &*self.inner;
        inner.stats.add(&inner.stats.scans, 1);
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        let sv = inner.super_version();
        let seq = inner.visible_seq.load(Ordering::Acquire);
        let (lo, hi) = (bound_key(&start), bound_key(&end));
        let in_range = |t: &Arc<TableReader>| {
            lo.is_none_or(|lo| t.largest() >= lo) && hi.is_none_or(|hi| t.smallest() <= hi)
        };
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        for mem in std::iter::once(&sv.mem).chain(&sv.imms) {
            children.push(Box::new(MemIter::new(Arc::clone(mem))));
        }
        let mut levels = sv.version.levels.iter();
        if let Some(l0) = levels.next() {
            for t in l0.iter().filter(|t| in_range(t)) {
                children.push(Box::new(TableIter::new(Arc::clone(t), true)));
            }
        }
        for level in levels {
            let tables: Vec<_> = level.iter().filter(|t| in_range(t)).cloned().collect();
            if !tables.is_empty() {
                children.push(Box::new(LevelIter::new(tables, true)));
            }
        }
        Ok(Scan::new(MergeIter::new(children), seq, start, end))
    }
}

pub(super) fn bound_key(b: &Bound<Vec<u8>>) -> Option<&[u8]> {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}
