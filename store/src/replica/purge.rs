//! Tombstone purge, once every replica has the tombstone.
//!
//! A tombstone cannot simply be dropped: a replica that missed the delete
//! would hand the old value back through read repair or anti-entropy. So a
//! tombstone is purged only when (1) the coordinator saw every one of the N
//! replicas acknowledge it and told each of them so (a `Purge` record,
//! kept durably in the queue below: that record is the proof), and (2) the
//! grace period (`tombstone_grace_ms`, longer than the hint age bound) has
//! passed, so no older hint can still arrive. At that point the key is
//! removed only if its version set is still exactly the acknowledged one.
//!
//! Queue key: `p ‖ due_ms (u64 BE) ‖ user key`; value: the set's digest
//! (u64 LE), [`merkle::entry_hash`] of the encoded set.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use crate::lsm::WriteBatch;
use crate::ring::key_position;
use crate::version::VersionSet;

use super::{Replica, Result, data_key_at, merkle};

/// Prefix of purge-queue keys.
const PURGE: u8 = b'p';

fn purge_key(due_ms: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.push(PURGE);
    k.extend_from_slice(&due_ms.to_be_bytes());
    k.extend_from_slice(key);
    k
}

impl Replica {
    /// The digest a purge record refers to: the entry hash of an encoded set.
    pub fn digest(key: &[u8], encoded: &[u8]) -> u64 {
        merkle::entry_hash(key, encoded)
    }

    /// Record that every replica acknowledged this tombstone set; it may be
    /// purged at `due_ms` if unchanged by then.
    pub fn schedule_purge(&self, key: &[u8], digest: u64, due_ms: u64) -> Result<()> {
        self.engine
            .put(&purge_key(due_ms, key), &digest.to_le_bytes())?;
        Ok(())
    }

    /// Purge due tombstones (at most `limit`). Returns how many keys were
    /// removed.
    pub fn purge_due(&self, now_ms: u64, limit: usize) -> Result<usize> {
        let lo = Bound::Included(vec![PURGE]);
        let hi = Bound::Excluded(purge_key(now_ms.saturating_add(1), b""));
        let due: Vec<(Vec<u8>, Vec<u8>)> = self
            .engine
            .scan((lo, hi))?
            .take(limit)
            .collect::<std::result::Result<_, _>>()?;
        let mut purged = 0;
        for (qkey, digest) in due {
            let Some(user_key) = qkey.get(9..) else {
                self.engine.delete(&qkey)?;
                continue;
            };
            let expected = digest
                .get(..8)
                .and_then(|d| d.try_into().ok())
                .map(u64::from_le_bytes);
            let pos = key_position(user_key);
            let dkey = data_key_at(pos, user_key);
            let _guard = self.lock_for(user_key).lock();
            let mut batch = WriteBatch::new();
            batch.delete(&qkey);
            let current = self.engine.get(&dkey)?;
            let remove = match (&current, expected) {
                (Some(raw), Some(d)) => {
                    Self::digest(user_key, raw) == d
                        && VersionSet::decode(raw).is_ok_and(|s| s.is_deleted())
                }
                _ => false,
            };
            if remove {
                batch.delete(&dkey);
            }
            self.engine.write_batch(batch)?;
            if remove {
                self.account(pos, user_key, current.as_deref(), None);
                self.stats.tombstones_purged.fetch_add(1, Ordering::Relaxed);
                purged += 1;
            }
        }
        Ok(purged)
    }
}
