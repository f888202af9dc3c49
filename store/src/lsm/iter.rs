//! Iterators over internal entries, the merge of many of them, and [`Scan`], the public
//! ordered range iterator.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use crate::lsm::error::{Error, Result};
use crate::lsm::key::{self, KIND_PUT};
use crate::lsm::memtable::Memtable;
use crate::lsm::sstable::{TableIter, TableReader};

/// A cursor over internal entries in internal-key order.
pub(crate) trait InternalIterator: Send {
    /// True if positioned on an entry.
    fn valid(&self) -> bool;
    /// The entry's internal key (only when valid).
    fn key(&self) -> &[u8];
    /// The entry's value (only when valid).
    fn value(&self) -> &[u8];
    /// Moves to the next entry.
    fn next(&mut self) -> Result<()>;
    /// Moves to the first entry.
    fn seek_to_first(&mut self) -> Result<()>;
    /// Moves to the first entry >= `(user, trailer)`.
    fn seek(&mut self, user: &[u8], trailer: u64) -> Result<()>;
}

/// Entries copied from the memtable per refill.
const MEM_CHUNK: usize = 128;

/// A cursor over a memtable that copies entries out in small chunks, so it owns everything
/// it holds and never pins the skiplist.
pub(crate) struct MemIter {
    mem: Arc<Memtable>,
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
    exhausted: bool,
}

impl MemIter {
    pub(crate) fn new(mem: Arc<Memtable>) -> Self {
        MemIter {
            mem,
            buf: VecDeque::new(),
            exhausted: true,
        }
    }

    fn fill_from(&mut self, from: Bound<(&[u8], u64)>) {
        self.buf.clear();
        let n = self.mem.chunk(from, MEM_CHUNK, &mut self.buf);
        self.exhausted = n < MEM_CHUNK;
    }
}

impl InternalIterator for MemIter {
    fn valid(&self) -> bool {
        !self.buf.is_empty()
    }

    fn key(&self) -> &[u8] {
        self.buf.front().map_or(&[][..], |(k, _)| k)
    }

    fn value(&self) -> &[u8] {
        self.buf.front().map_or(&[][..], |(_, v)| v)
    }

    fn next(&mut self) -> Result<()> {
        let Some((last, _)) = self.buf.pop_front() else {
            return Ok(());
        };
        if self.buf.is_empty() && !self.exhausted {
            let (user, trailer) = key::split(&last).unwrap_or((&last, 0));
            let (user, trailer) = (user.to_vec(), trailer);
            self.fill_from(Bound::Excluded((&user, trailer)));
        }
        Ok(())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.fill_from(Bound::Unbounded);
        Ok(())
    }

    fn seek(&mut self, user: &[u8], trailer: u64) -> Result<()> {
        self.fill_from(Bound::Included((user, trailer)));
        Ok(())
    }
}

/// A cursor over the non-overlapping, sorted tables of one level (L1 and deeper).
pub(crate) struct LevelIter {
    tables: Vec<Arc<TableReader>>,
    idx: usize,
    cur: Option<TableIter>,
    fill_cache: bool,
}

impl LevelIter {
    pub(crate) fn new(tables: Vec<Arc<TableReader>>, fill_cache: bool) -> Self {
        LevelIter {
            tables,
            idx: 0,
            cur: None,
            fill_cache,
        }
    }

    fn open(&mut self, idx: usize) {
        self.idx = idx;
        self.cur = self
            .tables
            .get(idx)
            .map(|t| TableIter::new(Arc::clone(t), self.fill_cache));
    }

    fn settle(&mut self) -> Result<()> {
        while let Some(c) = &self.cur {
            if c.valid() {
                return Ok(());
            }
            self.open(self.idx + 1);
            if let Some(c) = &mut self.cur {
                c.seek_to_first()?;
            }
        }
        Ok(())
    }
}

impl InternalIterator for LevelIter {
    fn valid(&self) -> bool {
        self.cur.as_ref().is_some_and(InternalIterator::valid)
    }

    fn key(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[][..], InternalIterator::key)
    }

    fn value(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[][..], InternalIterator::value)
    }

    fn next(&mut self) -> Result<()> {
        if let Some(c) = &mut self.cur {
            c.next()?;
        }
        self.settle()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.open(0);
        if let Some(c) = &mut self.cur {
            c.seek_to_first()?;
        }
        self.settle()
    }

    fn seek(&mut self, user: &[u8], trailer: u64) -> Result<()> {
        let i = self.tables.partition_point(|t| t.largest() < user);
        self.open(i);
        if let Some(c) = &mut self.cur {
            c.seek(user, trailer)?;
        }
        self.settle()
    }
}

/// Merges children in internal-key order. Children come newest first; internal keys are
/// unique, so ties cannot happen between valid children.
pub(crate) struct MergeIter {
    children: Vec<Box<dyn InternalIterator>>,
    cur: Option<usize>,
}

impl MergeIter {
    pub(crate) fn new(children: Vec<Box<dyn InternalIterator>>) -> Self {
        MergeIter {
            children,
            cur: None,
        }
    }

    fn pick(&mut self) {
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate() {
            if !c.valid() {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let bk = self.children.get(b).map_or(&[][..], |c| c.key());
                    if key::cmp(c.key(), bk) == std::cmp::Ordering::Less {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        self.cur = best;
    }
}

impl InternalIterator for MergeIter {
    fn valid(&self) -> bool {
        self.cur.is_some()
    }

    fn key(&self) -> &[u8] {
        self.cur
            .and_then(|i| self.children.get(i))
            .map_or(&[][..], |c| c.key())
    }

    fn value(&self) -> &[u8] {
        self.cur
            .and_then(|i| self.children.get(i))
            .map_or(&[][..], |c| c.value())
    }

    fn next(&mut self) -> Result<()> {
        if let Some(c) = self.cur.and_then(|i| self.children.get_mut(i)) {
            c.next()?;
        }
        self.pick();
        Ok(())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        for c in &mut self.children {
            c.seek_to_first()?;
        }
        self.pick();
        Ok(())
    }

    fn seek(&mut self, user: &[u8], trailer: u64) -> Result<()> {
        for c in &mut self.children {
            c.seek(user, trailer)?;
        }
        self.pick();
        Ok(())
    }
}

/// An ordered scan over a consistent snapshot: the newest value of each key visible at the
/// snapshot, tombstones skipped. It owns what it reads (memtables, table handles), so it holds
/// no lock and writers proceed while it runs; tables it reads are kept on disk until it is
/// dropped.
///
/// Yields `Result<(key, value)>`; after an error it yields nothing more.
pub struct Scan {
    merge: MergeIter,
    snapshot: u64,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    last_user: Vec<u8>,
    have_last: bool,
    started: bool,
    done: bool,
}

impl Scan {
    pub(crate) fn new(
        merge: MergeIter,
        snapshot: u64,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> Self {
        Scan {
            merge,
            snapshot,
            start,
            end,
            last_user: Vec::new(),
            have_last: false,
            started: false,
            done: false,
        }
    }

    fn position(&mut self) -> Result<()> {
        match &self.start {
            Bound::Unbounded => self.merge.seek_to_first(),
            Bound::Included(k) | Bound::Excluded(k) => {
                let k = k.clone();
                self.merge.seek(&k, u64::MAX)
            }
        }
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if !self.started {
            self.started = true;
            self.position()?;
        }
        while self.merge.valid() {
            let Some((user, trailer)) = key::split(self.merge.key()) else {
                return Err(Error::corruption(
                    "",
                    0,
                    "internal key shorter than its trailer",
                ));
            };
            let past_end = match &self.end {
                Bound::Unbounded => false,
                Bound::Included(e) => user > e.as_slice(),
                Bound::Excluded(e) => user >= e.as_slice(),
            };
            if past_end {
                return Ok(None);
            }
            let skip = key::trailer_seq(trailer) > self.snapshot
                || (self.have_last && user == self.last_user.as_slice())
                || matches!(&self.start, Bound::Excluded(s) if s.as_slice() == user);
            if skip {
                self.merge.next()?;
                continue;
            }
            self.last_user.clear();
            self.last_user.extend_from_slice(user);
            self.have_last = true;
            let item = (key::trailer_kind(trailer) == KIND_PUT)
                .then(|| (user.to_vec(), self.merge.value().to_vec()));
            self.merge.next()?;
            if let Some(item) = item {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }
}

impl Iterator for Scan {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("snapshot", &self.snapshot)
            .field("done", &self.done)
            .finish()
    }
}
