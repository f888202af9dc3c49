//! Durable hints for hinted handoff.
//!
//! When a preference-list replica is down, a fallback node stores the write in
//! its own data space *and* a hint naming the intended owner. The hint is a
//! reference, not a copy: replaying it sends the fallback's current version
//! set of the key, so many writes of one key while the owner is down make one
//! hint, and a replay is idempotent (the owner merges).
//!
//! Hint key: `h ‖ len(target) (u8) ‖ target ‖ position (u64 BE) ‖ user key`;
//! value: `created_ms (u64 LE) ‖ bytes (u32 LE)`, where `bytes` is the size of
//! the version set when the hint was last written (what handoff will move).
//!
//! Hints are bounded per target in bytes; a write that would exceed the bound
//! is refused (the coordinator then does not count that fallback), and the
//! refusal is counted. Hints older than the configured age are dropped at
//! replay, counted, and left to anti-entropy.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::lsm::{Engine, WriteBatch};

use super::{ReplicaError, Result};

/// Prefix of hint keys.
const HINT: u8 = b'h';
/// Longest node id a hint can name.
const MAX_TARGET_LEN: usize = 255;

/// Per-target totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetTotals {
    /// Hints held.
    pub count: u64,
    /// Bytes of data they refer to.
    pub bytes: u64,
}

/// Counters of the hint book.
#[derive(Debug, Default)]
pub struct HintStats {
    /// Hints written (new or refreshed).
    pub stored: AtomicU64,
    /// Hints refused because the target's byte bound was reached.
    pub refused: AtomicU64,
    /// Hints dropped because they were older than the age bound.
    pub expired: AtomicU64,
    /// Hints delivered to their owner.
    pub delivered: AtomicU64,
}

/// Hints held by this node, by target.
#[derive(Debug)]
pub struct HintBook {
    totals: Mutex<BTreeMap<String, TargetTotals>>,
    max_bytes_per_target: AtomicU64,
    stats: HintStats,
}

/// A hint about to be written in the same batch as its data.
#[derive(Debug)]
pub struct PreparedHint {
    target: String,
    key: Vec<u8>,
    value: [u8; 12],
    bytes: u64,
    /// Bytes of the hint this one overwrites, if any.
    replaces: Option<u64>,
}

impl PreparedHint {
    /// Add the hint record to a batch.
    pub fn add_to(&self, batch: &mut WriteBatch) {
        batch.put(&self.key, &self.value);
    }
}

/// One hint read back for replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// The owner to deliver to.
    pub target: String,
    /// Ring position of the key.
    pub position: u64,
    /// User key.
    pub key: Vec<u8>,
    /// When the hint was (last) written.
    pub created_ms: u64,
    /// Size of the version set it refers to.
    pub bytes: u64,
}

fn hint_prefix(target: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + target.len());
    k.push(HINT);
    k.push(target.len().min(MAX_TARGET_LEN) as u8);
    k.extend_from_slice(target.as_bytes());
    k
}

fn hint_key(target: &str, pos: u64, key: &[u8]) -> Vec<u8> {
    let mut k = hint_prefix(target);
    k.extend_from_slice(&pos.to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn parse_hint(k: &[u8], v: &[u8]) -> Option<Hint> {
    let (&p, rest) = k.split_first()?;
    if p != HINT {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let target = std::str::from_utf8(rest.get(..len as usize)?).ok()?;
    let rest = rest.get(len as usize..)?;
    let position = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let key = rest.get(8..)?.to_vec();
    let created_ms = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    let bytes = u64::from(u32::from_le_bytes(v.get(8..12)?.try_into().ok()?));
    Some(Hint {
        target: target.to_string(),
        position,
        key,
        created_ms,
        bytes,
    })
}

impl HintBook {
    /// Load the per-target totals from the engine.
    pub fn load(engine: &Engine) -> Result<HintBook> {
        let mut totals: BTreeMap<String, TargetTotals> = BTreeMap::new();
        let range = (Bound::Included(vec![HINT]), Bound::Excluded(vec![HINT + 1]));
        for item in engine.scan(range)? {
            let (k, v) = item?;
            let hint = parse_hint(&k, &v).ok_or(ReplicaError::Metadata("hint"))?;
            let t = totals.entry(hint.target).or_default();
            t.count += 1;
            t.bytes += hint.bytes;
        }
        Ok(HintBook {
            totals: Mutex::new(totals),
            max_bytes_per_target: AtomicU64::new(u64::MAX),
            stats: HintStats::default(),
        })
    }

    /// Bound hints per target (bytes of data referred to).
    pub fn set_max_bytes_per_target(&self, max: u64) {
        self.max_bytes_per_target.store(max, Ordering::Relaxed);
    }

    /// Counters.
    pub fn stats(&self) -> &HintStats {
        &self.stats
    }

    /// Totals for every target with hints.
    pub fn totals(&self) -> BTreeMap<String, TargetTotals> {
        self.totals.lock().clone()
    }

    /// Totals for one target.
    pub fn totals_for(&self, target: &str) -> TargetTotals {
        self.totals.lock().get(target).copied().unwrap_or_default()
    }

    /// Build the hint record for a write, or refuse it when the target's bound
    /// is reached. `bytes` is the size of the data the hint refers to.
    pub fn prepare(
        &self,
        engine: &Engine,
        target: &str,
        pos: u64,
        key: &[u8],
        bytes: u64,
    ) -> Result<PreparedHint> {
        if target.is_empty() || target.len() > MAX_TARGET_LEN {
            return Err(ReplicaError::Metadata("hint target"));
        }
        let hkey = hint_key(target, pos, key);
        // A key hinted again replaces its hint; account only the growth.
        let replaces = engine
            .get(&hkey)?
            .and_then(|v| parse_hint(&hkey, &v))
            .map(|h| h.bytes);
        let max = self.max_bytes_per_target.load(Ordering::Relaxed);
        let current = self
            .totals_for(target)
            .bytes
            .saturating_sub(replaces.unwrap_or(0));
        if current.saturating_add(bytes) > max {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(ReplicaError::HintsFull {
                target: target.to_string(),
                max_bytes: max,
            });
        }
        let mut value = [0u8; 12];
        value[..8].copy_from_slice(&crate::version::now_millis().to_le_bytes());
        value[8..].copy_from_slice(&(bytes.min(u64::from(u32::MAX)) as u32).to_le_bytes());
        Ok(PreparedHint {
            target: target.to_string(),
            key: hkey,
            value,
            bytes,
            replaces,
        })
    }

    /// Record that a prepared hint was written.
    pub fn committed(&self, hint: PreparedHint) {
        self.stats.stored.fetch_add(1, Ordering::Relaxed);
        let mut totals = self.totals.lock();
        let t = totals.entry(hint.target).or_default();
        match hint.replaces {
            Some(old) => t.bytes = t.bytes.saturating_sub(old) + hint.bytes,
            None => {
                t.count += 1;
                t.bytes += hint.bytes;
            }
        }
    }

    /// Up to `limit` hints for `target`, in key order after `after` (a
    /// position and key) when resuming.
    pub fn pending(
        &self,
        engine: &Engine,
        target: &str,
        after: Option<(u64, &[u8])>,
        limit: usize,
    ) -> Result<Vec<Hint>> {
        let prefix = hint_prefix(target);
        let mut end = prefix.clone();
        // The prefix ends with the target bytes; bump the length byte instead
        // of the last byte so the bound is exact for every target.
        if let Some(len) = end.get_mut(1) {
            *len = len.saturating_add(1);
        }
        end.truncate(2);
        let lo = match after {
            Some((pos, key)) => Bound::Excluded(hint_key(target, pos, key)),
            None => Bound::Included(prefix.clone()),
        };
        let mut out = Vec::new();
        for item in engine.scan((lo, Bound::Excluded(end)))? {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                continue;
            }
            if let Some(h) = parse_hint(&k, &v)
                && h.target == target
            {
                out.push(h);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Remove a hint (delivered or expired) whatever it says now. Only for
    /// targets that left the ring; otherwise the key's lock must be held and
    /// the record compared first (see `Replica::finish_handoff`).
    pub fn remove(&self, engine: &Engine, hint: &Hint, expired: bool) -> Result<()> {
        engine.delete(&hint_key(&hint.target, hint.position, &hint.key))?;
        self.forget(hint, expired);
        Ok(())
    }

    /// The record stored now for the same target and key as `hint` (it may
    /// have been refreshed since `hint` was read).
    pub fn stored(&self, engine: &Engine, hint: &Hint) -> Result<Option<Hint>> {
        let k = hint_key(&hint.target, hint.position, &hint.key);
        Ok(engine.get(&k)?.and_then(|v| parse_hint(&k, &v)))
    }

    /// Add the removal of a hint record to a batch; call [`HintBook::forget`]
    /// once the batch is written.
    pub fn delete_into(&self, hint: &Hint, batch: &mut WriteBatch) {
        batch.delete(&hint_key(&hint.target, hint.position, &hint.key));
    }

    /// Account a hint record that was removed.
    pub fn forget(&self, hint: &Hint, expired: bool) {
        let counter = if expired {
            &self.stats.expired
        } else {
            &self.stats.delivered
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut totals = self.totals.lock();
        if let Some(t) = totals.get_mut(&hint.target) {
            t.count = t.count.saturating_sub(1);
            t.bytes = t.bytes.saturating_sub(hint.bytes);
            if t.count == 0 {
                totals.remove(&hint.target);
            }
        }
    }

    /// Whether any target other than `except` has a hint for this key.
    pub fn any_other_for_key(
        &self,
        engine: &Engine,
        except: &str,
        pos: u64,
        key: &[u8],
    ) -> Result<bool> {
        let targets: Vec<String> = self.totals.lock().keys().cloned().collect();
        for t in targets.iter().filter(|t| t.as_str() != except) {
            if engine.get(&hint_key(t, pos, key))?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_keys_round_trip() {
        let k = hint_key("n2", 42, b"user-key");
        let h = parse_hint(&k, &[1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]).unwrap();
        assert_eq!(h.target, "n2");
        assert_eq!(h.position, 42);
        assert_eq!(h.key, b"user-key");
        assert_eq!(h.created_ms, 1);
        assert_eq!(h.bytes, 7);
        assert!(parse_hint(&k[..5], &[0; 12]).is_none());
        assert!(parse_hint(&k, &[0; 3]).is_none());
    }
}
