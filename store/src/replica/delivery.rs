//! What a fallback does with its hints once they are delivered or dropped.
//!
//! Handoff reads a page of hints and the current version set of each key,
//! sends them, and only then removes what was delivered. A write can land in
//! between, refreshing the same hint record for a newer version. Removal
//! therefore happens under the key's lock and only if the local set is still
//! exactly what was sent; the hint record and (when this node keeps the key
//! only for its owner) the local copy go in one atomic batch.

use crate::lsm::WriteBatch;
use crate::ring::key_position;

use super::hints::Hint;
use super::{Replica, Result, data_key, data_key_at};

impl Replica {
    /// After `hint` was delivered with the encoded set `sent`: remove the
    /// hint, and also the local copy when this node does not replicate the
    /// key itself (`owns` false) and no other hint refers to it. Returns
    /// whether the local copy was removed.
    pub fn finish_handoff(&self, hint: &Hint, sent: &[u8], owns: bool) -> Result<bool> {
        let pos = key_position(&hint.key);
        let dkey = data_key_at(pos, &hint.key);
        let _guard = self.lock_for(&hint.key).lock();
        if self.engine.get(&dkey)?.as_deref() != Some(sent) {
            // A newer version arrived after the batch was read; its hint is
            // the same record, refreshed, and goes with the next delivery.
            return Ok(false);
        }
        let Some(stored) = self.hints.stored(&self.engine, hint)? else {
            return Ok(false);
        };
        let remove_copy = !owns
            && !self.hints.any_other_for_key(
                &self.engine,
                &hint.target,
                hint.position,
                &hint.key,
            )?;
        let mut batch = WriteBatch::new();
        self.hints.delete_into(&stored, &mut batch);
        if remove_copy {
            self.retire_actor_for(sent)?;
            batch.delete(&dkey);
        }
        self.engine.write_batch(batch)?;
        self.hints.forget(&stored, false);
        if remove_copy {
            self.account(pos, &hint.key, Some(sent), None);
        }
        Ok(remove_copy)
    }

    /// Drop a hint that expired (`expired`) or whose data is gone, unless it
    /// was refreshed since it was read (or, when not expired, the data came
    /// back). Returns whether it was dropped.
    pub fn drop_hint(&self, hint: &Hint, expired: bool) -> Result<bool> {
        let _guard = self.lock_for(&hint.key).lock();
        let Some(stored) = self.hints.stored(&self.engine, hint)? else {
            return Ok(false);
        };
        if stored != *hint {
            return Ok(false);
        }
        if !expired && self.engine.get(&data_key(&hint.key))?.is_some() {
            return Ok(false);
        }
        let mut batch = WriteBatch::new();
        self.hints.delete_into(&stored, &mut batch);
        self.engine.write_batch(batch)?;
        self.hints.forget(&stored, expired);
        Ok(true)
    }
}
