//! The live tables per level ([`Version`]) and the complete read view ([`SuperVersion`]).
//!
//! Both are immutable once built and shared through `Arc`: a reader takes the current
//! `SuperVersion` and reads it without any lock, while flushes and compactions install new
//! ones. A table file is deleted only when the last `Arc` to it is dropped.

use std::collections::HashMap;
use std::sync::Arc;

use crate::lsm::error::{Error, Result};
use crate::lsm::manifest::VersionEdit;
use crate::lsm::memtable::{Lookup, Memtable};
use crate::lsm::sstable::TableReader;
use crate::lsm::stats::Stats;

/// Number of levels, L0 to L6.
pub(crate) const NUM_LEVELS: usize = 7;

/// The live tables. L0 tables may overlap and are ordered newest first; in L1 and deeper the
/// tables of a level are disjoint and sorted by key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Version {
    pub(crate) levels: [Vec<Arc<TableReader>>; NUM_LEVELS],
}

impl Version {
    /// The newest version of `user` visible at `seq`, searching L0 newest first, then one
    /// table per deeper level.
    pub(crate) fn get(&self, user: &[u8], hash: u64, seq: u64, stats: &Stats) -> Result<Lookup> {
        Ok(self
            .get_with(user, hash, seq, stats, false)?
            .unwrap_or(Lookup::Absent))
    }

    /// As [`get`](Self::get); with `cache_only`, `None` as soon as a table would have to
    /// read a block from its file.
    pub(crate) fn get_with(
        &self,
        user: &[u8],
        hash: u64,
        seq: u64,
        stats: &Stats,
        cache_only: bool,
    ) -> Result<Option<Lookup>> {
        let mut levels = self.levels.iter();
        if let Some(l0) = levels.next() {
            for t in l0 {
                if !t.covers(user) {
                    stats.add(&stats.range_skips, 1);
                    continue;
                }
                match t.get_with(user, hash, seq, cache_only)? {
                    Some(Lookup::Absent) => {}
                    found => return Ok(found),
                }
            }
        }
        for level in levels {
            if level.is_empty() {
                continue;
            }
            let i = level.partition_point(|t| t.largest() < user);
            match level.get(i) {
                Some(t) if t.smallest() <= user => {
                    match t.get_with(user, hash, seq, cache_only)? {
                        Some(Lookup::Absent) => {}
                        found => return Ok(found),
                    }
                }
                _ => stats.add(&stats.range_skips, 1),
            }
        }
        Ok(Some(Lookup::Absent))
    }

    /// The version after `edit`. `added` holds the tables the edit creates; tables the edit
    /// moves between levels are taken from this version.
    pub(crate) fn apply(&self, edit: &VersionEdit, added: &[Arc<TableReader>]) -> Result<Version> {
        let mut pool: HashMap<u64, Arc<TableReader>> = HashMap::new();
        for t in self.levels.iter().flatten().chain(added) {
            pool.insert(t.id, Arc::clone(t));
        }
        let mut next = self.clone();
        for &(level, id) in &edit.deleted {
            let l = next
                .levels
                .get_mut(level as usize)
                .ok_or_else(|| bad_edit("deleted table on a level that does not exist"))?;
            let before = l.len();
            l.retain(|t| t.id != id);
            if l.len() == before {
                return Err(bad_edit("edit deletes a table that is not live"));
            }
        }
        for &(level, id, size) in &edit.added {
            let t = pool
                .get(&id)
                .ok_or_else(|| bad_edit("edit adds a table that was not opened"))?;
            if t.size != size {
                return Err(bad_edit("edit adds a table with the wrong size"));
            }
            next.levels
                .get_mut(level as usize)
                .ok_or_else(|| bad_edit("added table on a level that does not exist"))?
                .push(Arc::clone(t));
        }
        next.sort();
        Ok(next)
    }

    /// Restores the level orderings.
    pub(crate) fn sort(&mut self) {
        let mut levels = self.levels.iter_mut();
        if let Some(l0) = levels.next() {
            l0.sort_by(|a, b| b.props.max_seq.cmp(&a.props.max_seq).then(b.id.cmp(&a.id)));
        }
        for l in levels {
            l.sort_by(|a, b| a.smallest().cmp(b.smallest()));
        }
    }

    /// Total table bytes on `level`.
    pub(crate) fn level_bytes(&self, level: usize) -> u64 {
        self.levels
            .get(level)
            .map_or(0, |l| l.iter().map(|t| t.size).sum())
    }

    /// Tables on `level` whose key range intersects `[lo, hi]`.
    pub(crate) fn overlapping(&self, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<TableReader>> {
        self.levels.get(level).map_or_else(Vec::new, |l| {
            l.iter()
                .filter(|t| t.smallest() <= hi && t.largest() >= lo)
                .cloned()
                .collect()
        })
    }

    /// True if some table below `level` may hold `user`.
    pub(crate) fn deeper_may_hold(&self, level: usize, user: &[u8]) -> bool {
        self.levels.iter().skip(level + 1).any(|l| {
            let i = l.partition_point(|t| t.largest() < user);
            l.get(i).is_some_and(|t| t.smallest() <= user)
        })
    }
}

fn bad_edit(reason: &str) -> Error {
    Error::corruption("MANIFEST", 0, reason.to_string())
}

/// Everything a reader needs: the active memtable, the immutable ones waiting for a flush
/// (newest first), and the tables.
#[derive(Clone)]
pub(crate) struct SuperVersion {
    pub(crate) mem: Arc<Memtable>,
    pub(crate) imms: Vec<Arc<Memtable>>,
    pub(crate) version: Arc<Version>,
}
