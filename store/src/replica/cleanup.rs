//! Cleanup: removing local data of ranges this node no longer replicates.
//!
//! After a join or leave a node keeps its old copy of the ranges it lost. Left
//! there, a copy can come back: when the node regains the range later, its
//! stale sets (and versions whose tombstones were purged meanwhile elsewhere)
//! would flow back through anti-entropy. Cleanup removes them, a page at a
//! time, each key only if its set is still exactly what the scan read (so a
//! write landing meanwhile is never lost), and never a key a pending hint
//! refers to (the hint replays the local set). Removing a set that holds the
//! current actor's dots moves the actor epoch on, as for handoff.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use super::{DATA, Replica, Result, data_key_at, parse_data_key};

/// What one page of cleanup did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupPage {
    /// Keys looked at.
    pub examined: u64,
    /// Keys removed.
    pub removed: u64,
    /// Where the next page starts (None: the scan reached the end).
    pub next: Option<(u64, Vec<u8>)>,
}

impl Replica {
    /// Examine up to `limit` keys after `resume` and remove those at
    /// positions `owned` says this node does not replicate. `owned` is asked
    /// again just before each removal, so a ring change during the page keeps
    /// the key.
    pub fn cleanup_page(
        &self,
        owned: &dyn Fn(u64) -> bool,
        resume: Option<(u64, Vec<u8>)>,
        limit: usize,
    ) -> Result<CleanupPage> {
        let lo = match &resume {
            Some((pos, key)) => Bound::Excluded(data_key_at(*pos, key)),
            None => Bound::Included(vec![DATA]),
        };
        let mut page = CleanupPage::default();
        for item in self.engine.scan((lo, Bound::Excluded(vec![DATA + 1])))? {
            let (k, v) = item?;
            let Some((pos, key)) = parse_data_key(&k) else {
                continue;
            };
            page.examined += 1;
            if !owned(pos)
                && !self.hints.any_other_for_key(&self.engine, "", pos, key)?
                && !owned(pos)
                && self.remove_if_unchanged(key, &v)?
            {
                page.removed += 1;
                self.stats.cleaned_up.fetch_add(1, Ordering::Relaxed);
            }
            if page.examined as usize >= limit.max(1) {
                page.next = Some((pos, key.to_vec()));
                return Ok(page);
            }
        }
        Ok(page)
    }
}
