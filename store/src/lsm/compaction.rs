//! Leveled compaction.
//!
//! L0 holds whole flushed memtables, which may overlap. When L0 reaches
//! `l0_compaction_trigger` tables, all of them merge with the overlapping L1 tables into new
//! L1 tables. Each deeper level has a byte budget `level1_bytes * level_multiplier^(n-1)`;
//! the level furthest over budget gives up one table (round-robin over the key space) to
//! merge with the overlapping tables of the next level. A table with no overlap below simply
//! moves down (a manifest edit, no rewrite).
//!
//! The merge keeps only the newest version of each key (readers of older snapshots keep the
//! old tables alive through their `Arc`s). A tombstone is dropped only when no table below
//! the output level may hold the key, so nothing older can resurface.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::lsm::error::{Error, Result};
use crate::lsm::iter::{InternalIterator, LevelIter, MergeIter};
use crate::lsm::key::{self, KIND_DELETE};
use crate::lsm::options::Options;
use crate::lsm::sstable::{TableBuilder, TableIter, TableMeta, TableReader, table_path};
use crate::lsm::stats::Stats;
use crate::lsm::version::{NUM_LEVELS, Version};

/// One planned compaction.
pub(crate) struct Compaction {
    /// Input tables with their levels.
    pub(crate) inputs: Vec<(usize, Arc<TableReader>)>,
    /// Where the merged tables go.
    pub(crate) output_level: usize,
    /// Move the single input down without rewriting it.
    pub(crate) trivial_move: bool,
    /// The version the compaction was planned on (tombstone decisions look below it).
    pub(crate) version: Arc<Version>,
}

/// Byte budget of `level` (>= 1).
pub(crate) fn max_bytes(opts: &Options, level: usize) -> u64 {
    let mut b = opts.level1_bytes;
    for _ in 1..level {
        b = b.saturating_mul(opts.level_multiplier);
    }
    b
}

/// Picks the most urgent compaction, if any level is over its trigger or budget.
/// `pointers[level]` remembers where the last compaction of that level ended.
pub(crate) fn pick(
    v: &Arc<Version>,
    opts: &Options,
    pointers: &mut [Vec<u8>; NUM_LEVELS],
) -> Option<Compaction> {
    let mut best: Option<(f64, usize)> = None;
    let l0 = v.levels.first().map_or(0, Vec::len);
    let score0 = l0 as f64 / opts.l0_compaction_trigger as f64;
    if score0 >= 1.0 {
        best = Some((score0, 0));
    }
    for level in 1..NUM_LEVELS - 1 {
        let score = v.level_bytes(level) as f64 / max_bytes(opts, level) as f64;
        if score >= 1.0 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, level));
        }
    }
    let (_, level) = best?;
    if level == 0 {
        let l0 = v.levels.first()?;
        let lo = l0.iter().map(|t| t.smallest()).min()?.to_vec();
        let hi = l0.iter().map(|t| t.largest()).max()?.to_vec();
        let mut inputs: Vec<(usize, Arc<TableReader>)> =
            l0.iter().map(|t| (0, Arc::clone(t))).collect();
        inputs.extend(v.overlapping(1, &lo, &hi).into_iter().map(|t| (1, t)));
        return Some(Compaction {
            inputs,
            output_level: 1,
            trivial_move: false,
            version: Arc::clone(v),
        });
    }
    let tables = v.levels.get(level)?;
    let pointer = pointers.get(level).cloned().unwrap_or_default();
    let t = tables
        .iter()
        .find(|t| t.smallest() > pointer.as_slice())
        .or_else(|| tables.first())?;
    if let Some(p) = pointers.get_mut(level) {
        *p = t.largest().to_vec();
    }
    let below = v.overlapping(level + 1, t.smallest(), t.largest());
    let trivial_move = below.is_empty();
    let mut inputs = vec![(level, Arc::clone(t))];
    inputs.extend(below.into_iter().map(|t| (level + 1, t)));
    Some(Compaction {
        inputs,
        output_level: level + 1,
        trivial_move,
        version: Arc::clone(v),
    })
}

/// A compaction of every live table into one sorted run on the deepest non-empty level
/// (at least L1). Drops every tombstone.
pub(crate) fn pick_all(v: &Arc<Version>) -> Option<Compaction> {
    let inputs: Vec<(usize, Arc<TableReader>)> = v
        .levels
        .iter()
        .enumerate()
        .flat_map(|(l, ts)| ts.iter().map(move |t| (l, Arc::clone(t))))
        .collect();
    if inputs.is_empty() {
        return None;
    }
    let deepest = inputs.iter().map(|(l, _)| *l).max().unwrap_or(1).max(1);
    Some(Compaction {
        inputs,
        output_level: deepest,
        trivial_move: false,
        version: Arc::clone(v),
    })
}

/// What a merge produced.
pub(crate) struct MergeOutcome {
    pub(crate) tables: Vec<TableMeta>,
    pub(crate) bytes_read: u64,
    pub(crate) tombstones_dropped: u64,
}

/// Merges the inputs of `c` into new tables (written and synced, not yet live).
/// `alloc_id` hands out file ids; `stop` aborts the merge (shutdown).
pub(crate) fn merge(
    c: &Compaction,
    dir: &Path,
    opts: &Options,
    alloc_id: &dyn Fn() -> u64,
    stop: &AtomicBool,
    stats: &Stats,
) -> Result<MergeOutcome> {
    // Children newest first: L0 tables one by one, then each deeper level as one run.
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    let mut by_level: [Vec<Arc<TableReader>>; NUM_LEVELS] = Default::default();
    for (l, t) in &c.inputs {
        if *l == 0 {
            children.push(Box::new(TableIter::new(Arc::clone(t), false)));
        } else if let Some(v) = by_level.get_mut(*l) {
            v.push(Arc::clone(t));
        }
    }
    for mut tables in by_level.into_iter().skip(1) {
        if !tables.is_empty() {
            tables.sort_by(|a, b| a.smallest().cmp(b.smallest()));
            children.push(Box::new(LevelIter::new(tables, false)));
        }
    }
    let mut merged = MergeIter::new(children);
    let mut out = MergeOutcome {
        tables: Vec::new(),
        bytes_read: c.inputs.iter().map(|(_, t)| t.size).sum(),
        tombstones_dropped: 0,
    };
    let mut created: Vec<u64> = Vec::new();
    let result = (|| -> Result<()> {
        merged.seek_to_first()?;
        let mut builder: Option<TableBuilder> = None;
        let mut last_user: Vec<u8> = Vec::new();
        let mut have_last = false;
        let mut n = 0u64;
        while merged.valid() {
            n += 1;
            if n.is_multiple_of(4096) && stop.load(Ordering::Relaxed) {
                return Err(Error::Closed);
            }
            let ikey = merged.key();
            let (user, trailer) = key::split(ikey).ok_or_else(|| {
                Error::corruption(
                    dir,
                    0,
                    "compaction input holds an internal key shorter than its trailer",
                )
            })?;
            if have_last && user == last_user.as_slice() {
                merged.next()?;
                continue;
            }
            last_user.clear();
            last_user.extend_from_slice(user);
            have_last = true;
            if key::trailer_kind(trailer) == KIND_DELETE
                && !c.version.deeper_may_hold(c.output_level, user)
            {
                out.tombstones_dropped += 1;
                merged.next()?;
                continue;
            }
            if builder
                .as_ref()
                .is_some_and(|b| b.estimated_size() >= opts.target_table_bytes)
                && let Some(b) = builder.take()
            {
                out.tables.push(b.finish()?);
            }
            let b = match &mut builder {
                Some(b) => b,
                None => {
                    let id = alloc_id();
                    created.push(id);
                    builder.insert(TableBuilder::create(
                        &table_path(dir, id),
                        id,
                        opts.block_bytes,
                        opts.block_restart_interval,
                        opts.bloom_bits_per_key,
                        opts.compression_for(c.output_level),
                    )?)
                }
            };
            b.add(ikey, merged.value())?;
            merged.next()?;
        }
        if let Some(b) = builder.take() {
            out.tables.push(b.finish()?);
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            stats.add(&stats.compaction_bytes_read, out.bytes_read);
            Ok(out)
        }
        Err(e) => {
            // Outputs are not in the manifest yet: remove them (recovery would too).
            for id in created {
                let _ = std::fs::remove_file(table_path(dir, id));
            }
            Err(e)
        }
    }
}
