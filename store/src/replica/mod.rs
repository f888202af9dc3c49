//! One node's local, versioned view of its data.
//!
//! The replica wraps the LSM engine with versions: every key maps to a
//! [`VersionSet`]. It knows nothing about peers: the coordinator and the
//! cluster layer decide what to send where; the replica applies it durably.
//!
//! Engine key space (one engine, prefixes keep the parts apart):
//!
//! | prefix | key                                   | value                      |
//! |--------|---------------------------------------|----------------------------|
//! | `d`    | `d ‖ position (u64 BE) ‖ user key`     | encoded [`VersionSet`]     |
//! | `h`    | see [`hints`]                          | hint record                |
//! | `m`    | `m ‖ name`                             | node metadata (actor id…)  |
//! | `p`    | see [`hints`] (tombstone purge queue)  | expected set hash          |
//!
//! Data keys start with the ring position so a ring segment (or a Merkle leaf
//! bucket) is one contiguous range scan.
//!
//! Writes to one key are serialised by a striped lock: read the current set,
//! merge or update, write back, update the Merkle index.

mod cleanup;
mod delivery;
pub mod epochs;
pub mod hints;
pub mod merkle;
mod purge;
#[cfg(test)]
mod tests;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::lsm::{self, Engine, WriteBatch};
use crate::ring::{Segment, key_position};
use crate::version::{
    Actor, CounterExhausted, DecodeError, UpdateError, VersionSet, VersionVector,
};

pub use cleanup::CleanupPage;
pub use merkle::MerkleIndex;

/// One write of a batch: the key's resulting set, or why this write alone was refused (the
/// set is then as it was).
pub type WriteResult = std::result::Result<VersionSet, ReplicaError>;

/// Prefix of data keys.
const DATA: u8 = b'd';
/// Prefix of metadata keys.
const META: u8 = b'm';
/// Number of stripes of the per-key write lock.
const LOCK_STRIPES: usize = 1024;
/// Overhead allowed per sibling on top of the value (dot, timestamp, lengths).
const SIBLING_OVERHEAD: usize = 64;
/// A merge may leave this many times the sibling bound (`--max-siblings`): writes taken on
/// both sides of a partition must still merge, and nothing is dropped to make room.
pub const MERGE_SIBLINGS_FACTOR: usize = 4;
/// Most clock entries a version set from a peer may carry (16 bytes each),
/// and the room kept for two such clocks in every stored set.
pub const MAX_CLOCK_ENTRIES: usize = 1024;
/// Most entries one range scan returns to a peer (a request for 0, or for
/// more, gets this many; the caller resumes after the last one).
pub const MAX_SCAN_ENTRIES: usize = 1024;

/// The page size for a scan a peer asked for: `requested`, or
/// [`MAX_SCAN_ENTRIES`] when it is 0 ("no limit") or larger.
pub fn scan_page(requested: u32) -> usize {
    match usize::try_from(requested) {
        Ok(0) | Err(_) => MAX_SCAN_ENTRIES,
        Ok(n) => n.min(MAX_SCAN_ENTRIES),
    }
}

/// What a replica needs to open.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    /// This node's id; a data directory belongs to exactly one node.
    pub node_id: String,
    /// Largest user key.
    pub max_key_bytes: usize,
    /// Largest user value.
    pub max_value_bytes: usize,
    /// Versions kept per key.
    pub max_siblings: usize,
    /// Engine settings (limits are derived from the ones above).
    pub engine: lsm::Options,
}

/// Why a replica operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] lsm::Error),
    /// A stored or received version set does not decode.
    #[error("version data for a key is corrupt: {0}")]
    Versions(#[from] DecodeError),
    /// The data directory belongs to another node.
    #[error(
        "data directory {dir} belongs to node {owner:?}, not {requested:?}; use that id or another directory"
    )]
    WrongNode {
        /// The directory.
        dir: PathBuf,
        /// The id recorded in it.
        owner: String,
        /// The id this process was started with.
        requested: String,
    },
    /// The hint store for a target is full; the write was not taken.
    #[error("hints for {target} reached their bound of {max_bytes} bytes; hint refused")]
    HintsFull {
        /// The node the hint was for.
        target: String,
        /// The configured bound.
        max_bytes: u64,
    },
    /// The key's clock leaves no fresh dot for this node.
    #[error(transparent)]
    Exhausted(#[from] CounterExhausted),
    /// A write from a peer that no replica may store (too large, or a clock
    /// no node can have made). Only that write fails.
    #[error("refused: {0}")]
    Invalid(String),
    /// A write refused because the key would hold more concurrent versions than the
    /// sibling bound; nothing changed. Only that write fails.
    #[error("refused: {0}")]
    TooManySiblings(#[from] crate::version::TooManySiblings),
    /// Metadata in the engine is malformed.
    #[error("node metadata {0:?} is corrupt")]
    Metadata(&'static str),
    /// A node file in the data directory could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Result alias for replica operations.
pub type Result<T> = std::result::Result<T, ReplicaError>;

/// Counters a replica keeps.
#[derive(Debug, Default)]
pub struct ReplicaStats {
    /// Local coordinated writes.
    pub coordinated_writes: AtomicU64,
    /// Merges applied (replication, read repair, hints, anti-entropy).
    pub merges: AtomicU64,
    /// Merges that changed nothing (the local set already dominated).
    pub merges_noop: AtomicU64,
    /// Writes and merges refused because the key would exceed its sibling bound (nothing is
    /// ever dropped to make room).
    pub siblings_refused: AtomicU64,
    /// Local reads.
    pub fetches: AtomicU64,
    /// Tombstones purged after every replica had them.
    pub tombstones_purged: AtomicU64,
    /// Keys removed by cleanup (ranges no longer replicated).
    pub cleaned_up: AtomicU64,
}

/// A node's local versioned store.
pub struct Replica {
    engine: Arc<Engine>,
    epochs: epochs::Epochs,
    node_id: String,
    max_siblings: usize,
    max_key_bytes: usize,
    max_value_bytes: usize,
    locks: Box<[Mutex<()>]>,
    /// Serialises Merkle rebuilds (two interleaved scans would count twice).
    rebuilding: Mutex<()>,
    merkle: MerkleIndex,
    stats: ReplicaStats,
    hints: hints::HintBook,
}

/// Which lock stripe guards a key.
fn stripe_of(key: &[u8]) -> usize {
    (xxhash_rust::xxh3::xxh3_64(key) as usize) % LOCK_STRIPES
}

/// A key a [`Replica::write_many`] batch touches.
struct Touched {
    key: Bytes,
    pos: u64,
    /// The set as the batch leaves it.
    set: VersionSet,
    /// The stored bytes before the batch.
    old: Option<Vec<u8>>,
    changed: bool,
}

/// One write for [`Replica::write_many`].
#[derive(Clone, Debug)]
pub enum LocalWrite {
    /// A client write this replica coordinates (mints the dot).
    Coordinate {
        /// User key.
        key: Bytes,
        /// The value, or None for a tombstone.
        value: Option<Bytes>,
        /// What the writer saw.
        context: VersionVector,
        /// Wall-clock time of the write.
        timestamp_ms: u64,
    },
    /// A version set from another replica.
    Merge {
        /// User key.
        key: Bytes,
        /// The set to merge in.
        incoming: VersionSet,
    },
}

impl LocalWrite {
    /// The user key written.
    pub fn key(&self) -> &Bytes {
        match self {
            LocalWrite::Coordinate { key, .. } | LocalWrite::Merge { key, .. } => key,
        }
    }
}

/// Engine key of a user key.
pub fn data_key(key: &[u8]) -> Vec<u8> {
    data_key_at(key_position(key), key)
}

fn data_key_at(pos: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.push(DATA);
    k.extend_from_slice(&pos.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Split an engine data key into position and user key.
fn parse_data_key(k: &[u8]) -> Option<(u64, &[u8])> {
    let (&p, rest) = k.split_first()?;
    if p != DATA {
        return None;
    }
    let pos = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some((pos, rest.get(8..)?))
}

/// Engine key range holding ring positions `(start, end]` (non-wrapping).
fn position_range(start: u64, end: u64) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = match start.checked_add(1) {
        Some(s) => Bound::Included(vec_pos(s)),
        None => Bound::Excluded(vec![DATA + 1]),
    };
    let hi = match end.checked_add(1) {
        Some(e) => Bound::Excluded(vec_pos(e)),
        None => Bound::Excluded(vec![DATA + 1]),
    };
    (lo, hi)
}

fn vec_pos(pos: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(DATA);
    k.extend_from_slice(&pos.to_be_bytes());
    k
}

/// One versioned entry read from a range.
#[derive(Clone, Debug)]
pub struct RangeEntry {
    /// Ring position of the key.
    pub position: u64,
    /// User key.
    pub key: Bytes,
    /// Encoded version set.
    pub versions: Bytes,
}

impl Replica {
    /// Open (or create) the replica in `dir`.
    pub fn open(dir: &Path, opts: ReplicaOptions) -> Result<Replica> {
        let mut engine_opts = opts.engine.clone();
        engine_opts.max_key_bytes = opts.max_key_bytes + 64;
        engine_opts.max_value_bytes = opts.max_siblings.max(1)
            * MERGE_SIBLINGS_FACTOR
            * (opts.max_value_bytes + SIBLING_OVERHEAD)
            + 2 * MAX_CLOCK_ENTRIES * 20
            + 4096;
        let engine = Arc::new(Engine::open(dir, engine_opts)?);
        let base = Self::load_identity(&engine, dir, &opts.node_id)?;
        let tail_may_be_lost = !matches!(opts.engine.sync, lsm::SyncPolicy::Always);
        let epochs = epochs::Epochs::open(dir, base, tail_may_be_lost)?;
        let hints = hints::HintBook::load(&engine)?;
        let locks = (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect();
        Ok(Replica {
            engine,
            epochs,
            node_id: opts.node_id,
            max_siblings: opts.max_siblings.max(1),
            max_key_bytes: opts.max_key_bytes,
            max_value_bytes: opts.max_value_bytes,
            locks,
            rebuilding: Mutex::new(()),
            merkle: MerkleIndex::default(),
            stats: ReplicaStats::default(),
            hints,
        })
    }

    /// Read or mint this directory's base actor id, and check the node id.
    fn load_identity(engine: &Engine, dir: &Path, node_id: &str) -> Result<Actor> {
        let id_key = [META, b'i', b'd'];
        let actor_key = [META, b'a', b'c', b't', b'o', b'r'];
        match engine.get(&id_key)? {
            Some(owner) if owner != node_id.as_bytes() => Err(ReplicaError::WrongNode {
                dir: dir.to_path_buf(),
                owner: String::from_utf8_lossy(&owner).into_owned(),
                requested: node_id.to_string(),
            }),
            Some(_) => {
                let raw = engine
                    .get(&actor_key)?
                    .ok_or(ReplicaError::Metadata("actor"))?;
                let bytes: [u8; 8] = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| ReplicaError::Metadata("actor"))?;
                Ok(u64::from_le_bytes(bytes))
            }
            None => {
                let actor: u64 = rand::random();
                let mut batch = WriteBatch::new();
                batch.put(&actor_key, &actor.to_le_bytes());
                batch.put(&id_key, node_id.as_bytes());
                engine.write_batch(batch)?;
                Ok(actor)
            }
        }
    }

    /// The actor this node mints new dots with now: the data directory's
    /// base id at the current epoch (see [`epochs`]).
    pub fn actor(&self) -> Actor {
        self.epochs.actor()
    }

    /// The actor epochs (current epoch, bumps).
    pub fn epochs(&self) -> &epochs::Epochs {
        &self.epochs
    }

    /// The node id this directory belongs to.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The engine underneath (stats, flush).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Counters.
    pub fn stats(&self) -> &ReplicaStats {
        &self.stats
    }

    /// The Merkle index.
    pub fn merkle(&self) -> &MerkleIndex {
        &self.merkle
    }

    /// The hint book (hinted handoff and the purge queue).
    pub fn hints(&self) -> &hints::HintBook {
        &self.hints
    }

    fn lock_for(&self, key: &[u8]) -> &Mutex<()> {
        // LOCK_STRIPES entries exist and `stripe_of` is below it.
        &self.locks[stripe_of(key)]
    }

    fn read_set(&self, dkey: &[u8]) -> Result<Option<(VersionSet, Vec<u8>)>> {
        match self.engine.get(dkey)? {
            None => Ok(None),
            Some(raw) => Ok(Some((VersionSet::decode(&raw)?, raw))),
        }
    }

    /// Apply a write as the coordinating replica: drop what `context` saw,
    /// add `value` (None: a tombstone) under a fresh dot of this actor, store
    /// durably. Returns the resulting set, to replicate to the others.
    /// `hint_for` names the owner when this node is a fallback for it.
    pub fn coordinate_put(
        &self,
        key: &[u8],
        value: Option<Bytes>,
        context: &VersionVector,
        timestamp_ms: u64,
        hint_for: Option<&str>,
    ) -> Result<VersionSet> {
        let max = self.max_siblings;
        let set = self.write_with(key, hint_for, |set| {
            // Read under the key's lock: a removal moving the epoch holds it.
            let actor = self.epochs.actor();
            set.update(context, actor, value, timestamp_ms, max)
                .map_err(|e| self.refused(e))?;
            Ok(true)
        })?;
        self.stats
            .coordinated_writes
            .fetch_add(1, Ordering::Relaxed);
        Ok(set)
    }

    /// Check one write from a peer before it joins a batch with others: the
    /// key and every value within their limits, a clock of at most
    /// [`MAX_CLOCK_ENTRIES`], and no counter ahead of this node's clock by
    /// more than the allowed skew. A write refused here fails alone.
    pub fn check_write(&self, write: &LocalWrite) -> Result<()> {
        let key = write.key();
        if key.is_empty() || key.len() > self.max_key_bytes {
            return Err(ReplicaError::Invalid(format!(
                "the key is {} bytes; the limit is 1 to {} bytes",
                key.len(),
                self.max_key_bytes
            )));
        }
        match write {
            LocalWrite::Coordinate { value, context, .. } => {
                self.check_value(value.as_ref())?;
                Self::check_clock(context)
            }
            LocalWrite::Merge { incoming, .. } => self.check_set(incoming),
        }
    }

    fn check_value(&self, value: Option<&Bytes>) -> Result<()> {
        match value {
            Some(v) if v.len() > self.max_value_bytes => Err(ReplicaError::Invalid(format!(
                "a value is {} bytes; the limit is {} bytes",
                v.len(),
                self.max_value_bytes
            ))),
            _ => Ok(()),
        }
    }

    fn check_clock(clock: &VersionVector) -> Result<()> {
        let entries = clock.iter().count();
        if entries > MAX_CLOCK_ENTRIES {
            return Err(ReplicaError::Invalid(format!(
                "the clock has {entries} entries; the limit is {MAX_CLOCK_ENTRIES}"
            )));
        }
        clock
            .check_not_ahead(crate::version::now_micros())
            .map_err(|e| ReplicaError::Invalid(e.to_string()))
    }

    fn check_set(&self, set: &VersionSet) -> Result<()> {
        Self::check_clock(set.clock())?;
        let mut dots = VersionVector::new();
        for s in set.siblings() {
            self.check_value(s.value.as_ref())?;
            dots.add(s.dot);
        }
        dots.check_not_ahead(crate::version::now_micros())
            .map_err(|e| ReplicaError::Invalid(e.to_string()))
    }

    /// Merge a version set from another replica (replication, read repair,
    /// hint replay, anti-entropy). `hint_for` names the owner when this node
    /// stores the write on another's behalf. Returns the resulting set.
    pub fn merge(
        &self,
        key: &[u8],
        incoming: &VersionSet,
        hint_for: Option<&str>,
    ) -> Result<VersionSet> {
        self.check_set(incoming)?;
        let cap = self.merge_cap();
        self.stats.merges.fetch_add(1, Ordering::Relaxed);
        self.write_with(key, hint_for, |set| {
            set.merge(incoming, cap)
                .map_err(|e| self.refused(UpdateError::TooMany(e)))
        })
    }

    /// The one write path: under the key's lock, read the current set, let
    /// `change` modify it, and write it back (with a hint in the same atomic
    /// batch when `hint_for` is set). Skips the write when nothing changed.
    fn write_with(
        &self,
        key: &[u8],
        hint_for: Option<&str>,
        change: impl FnOnce(&mut VersionSet) -> Result<bool>,
    ) -> Result<VersionSet> {
        let pos = key_position(key);
        let dkey = data_key_at(pos, key);
        let _guard = self.lock_for(key).lock();
        let (mut set, old_raw) = match self.read_set(&dkey)? {
            Some((s, raw)) => (s, Some(raw)),
            None => (VersionSet::new(), None),
        };
        let changed = change(&mut set)?;
        if !changed && hint_for.is_none() && old_raw.is_some() {
            self.stats.merges_noop.fetch_add(1, Ordering::Relaxed);
            return Ok(set);
        }
        let new_raw = set.encode();
        match hint_for {
            None => {
                self.engine.put(&dkey, &new_raw)?;
            }
            Some(target) => {
                let hint =
                    self.hints
                        .prepare(&self.engine, target, pos, key, new_raw.len() as u64)?;
                let mut batch = WriteBatch::new();
                batch.put(&dkey, &new_raw);
                hint.add_to(&mut batch);
                self.engine.write_batch(batch)?;
                self.hints.committed(hint);
            }
        }
        self.account(pos, key, old_raw.as_deref(), Some(&new_raw));
        Ok(set)
    }

    /// Apply many hint-free writes as one atomic engine batch and wait until
    /// it is durable: [`apply_many`](Self::apply_many), then the engine's
    /// `sync_through`.
    pub fn write_many(&self, writes: Vec<LocalWrite>) -> Result<Vec<WriteResult>> {
        let (sets, seq) = self.apply_many(writes)?;
        self.engine.sync_through(seq)?;
        Ok(sets)
    }

    /// Wait until every write applied up to engine sequence number `seq` is
    /// durable (see [`apply_many`](Self::apply_many)).
    pub fn sync_through(&self, seq: u64) -> Result<()> {
        Ok(self.engine.sync_through(seq)?)
    }

    /// Apply many hint-free writes as one atomic engine batch: one commit-log
    /// record for all of them. Keys are locked in stripe order, so concurrent
    /// batches cannot deadlock; the locks are released before durability is
    /// awaited, so batches do not queue behind each other's fsync. Each write
    /// sees the effect of the earlier ones on the same key. Returns the
    /// resulting set of each write (or why that write alone was refused: the
    /// sibling bound), in order, and the engine sequence number to pass to
    /// [`sync_through`](Self::sync_through) before acknowledging any of them;
    /// an engine failure fails them all.
    pub fn apply_many(&self, writes: Vec<LocalWrite>) -> Result<(Vec<WriteResult>, u64)> {
        // Callers check each write first (`check_write`) so that a bad one
        // fails alone; this is the backstop.
        for w in &writes {
            self.check_write(w)?;
        }
        let mut stripes: Vec<usize> = writes.iter().map(|w| stripe_of(w.key())).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let _guards: Vec<_> = stripes
            .iter()
            .filter_map(|&i| self.locks.get(i))
            .map(|m| m.lock())
            .collect();
        let mut touched: Vec<Touched> = Vec::new();
        let mut results = Vec::with_capacity(writes.len());
        for w in writes {
            let key = w.key().clone();
            let slot = match touched.iter().position(|t| t.key == key) {
                Some(i) => i,
                None => {
                    let pos = key_position(&key);
                    let (set, old) = match self.read_set(&data_key_at(pos, &key))? {
                        Some((s, raw)) => (s, Some(raw)),
                        None => (VersionSet::new(), None),
                    };
                    touched.push(Touched {
                        key: key.clone(),
                        pos,
                        set,
                        old,
                        changed: false,
                    });
                    touched.len() - 1
                }
            };
            let Some(entry) = touched.get_mut(slot) else {
                continue;
            };
            let outcome = match w {
                LocalWrite::Coordinate {
                    value,
                    context,
                    timestamp_ms,
                    ..
                } => entry
                    .set
                    .update(
                        &context,
                        self.epochs.actor(),
                        value,
                        timestamp_ms,
                        self.max_siblings,
                    )
                    .map(|_| {
                        self.stats
                            .coordinated_writes
                            .fetch_add(1, Ordering::Relaxed);
                        true
                    }),
                LocalWrite::Merge { incoming, .. } => {
                    self.stats.merges.fetch_add(1, Ordering::Relaxed);
                    let out = entry.set.merge(&incoming, self.merge_cap());
                    if out == Ok(false) && entry.old.is_some() {
                        self.stats.merges_noop.fetch_add(1, Ordering::Relaxed);
                    }
                    out.map(|changed| changed || entry.old.is_none())
                        .map_err(UpdateError::TooMany)
                }
            };
            // A refused write fails alone; the set is as it was, and the others go on.
            let changed = match outcome {
                Ok(changed) => changed,
                Err(e) => {
                    results.push(Err(self.refused(e)));
                    continue;
                }
            };
            entry.changed |= changed;
            results.push(Ok(entry.set.clone()));
        }
        let mut batch = WriteBatch::new();
        let mut encoded = Vec::with_capacity(touched.len());
        for t in &touched {
            if t.changed {
                let raw = t.set.encode();
                batch.put(&data_key_at(t.pos, &t.key), &raw);
                encoded.push(Some(raw));
            } else {
                encoded.push(None);
            }
        }
        // Even a batch that changed nothing waits for earlier writes: a merge that found
        // its set already applied (by a write not yet durable) must not be acknowledged
        // before that write is.
        let seq = self.engine.apply_batch(batch)?;
        for (t, new) in touched.iter().zip(encoded) {
            if let Some(new) = new {
                self.account(t.pos, &t.key, t.old.as_deref(), Some(&new));
            }
        }
        Ok((results, seq))
    }

    /// The local version set of a key.
    pub fn fetch(&self, key: &[u8]) -> Result<Option<VersionSet>> {
        self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        Ok(self.read_set(&data_key(key))?.map(|(s, _)| s))
    }

    /// The local encoded version set of a key (no decode).
    pub fn fetch_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        Ok(self.engine.get(&data_key(key))?)
    }

    /// The local encoded version set of a key if it can be had from memory
    /// (memtables and block cache): `None` when a table block would have to be
    /// read from disk. Never blocks on I/O, so async code may call it.
    pub fn fetch_raw_cached(&self, key: &[u8]) -> Result<Option<Option<Vec<u8>>>> {
        let found = self.engine.get_cached(&data_key(key))?;
        if found.is_some() {
            self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        }
        Ok(found)
    }

    /// Remove a key's data if its set still encodes to `expected` (data
    /// handed off to its owner, ranges no longer owned). Returns whether it
    /// was removed. When the set holds dots of the current actor, the actor
    /// epoch moves on first, so no later write claims them.
    pub fn remove_if_unchanged(&self, key: &[u8], expected: &[u8]) -> Result<bool> {
        let pos = key_position(key);
        let dkey = data_key_at(pos, key);
        let _guard = self.lock_for(key).lock();
        match self.engine.get(&dkey)? {
            Some(raw) if raw == expected => {
                self.retire_actor_for(&raw)?;
                self.engine.delete(&dkey)?;
                self.account(pos, key, Some(&raw), None);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Before a local set goes: move the actor epoch on if the set holds
    /// history of the current actor (an undecodable set counts as holding it).
    fn retire_actor_for(&self, raw: &[u8]) -> Result<()> {
        match VersionSet::decode(raw) {
            Ok(set) => self.epochs.retire_if_written(set.clock())?,
            Err(_) => {
                let mut all = VersionVector::new();
                all.add(crate::version::Dot {
                    actor: self.epochs.actor(),
                    counter: 1,
                });
                self.epochs.retire_if_written(&all)?
            }
        };
        Ok(())
    }

    /// Entries with positions in `(start, end]` (wrapping allowed), after
    /// `(after_position, after_key)` when resuming, at most `limit`.
    pub fn scan_range(
        &self,
        segment: Segment,
        resume: Option<(u64, &[u8])>,
        limit: usize,
    ) -> Result<Vec<RangeEntry>> {
        let mut out = Vec::new();
        // A wrapping segment is two plain ranges: (start, MAX] then [0, end].
        let parts: Vec<(u64, u64, bool)> = if segment.start < segment.end {
            vec![(segment.start, segment.end, false)]
        } else {
            vec![(segment.start, u64::MAX, false), (0, segment.end, true)]
        };
        for (start, end, from_zero) in parts {
            let (mut lo, hi) = position_range(start, end);
            if from_zero {
                lo = Bound::Included(vec_pos(0));
            }
            if let Some((rp, rk)) = resume {
                let in_part = if from_zero {
                    rp <= end
                } else {
                    rp > start && rp <= end
                };
                let past_part = !from_zero && segment.start >= segment.end && rp <= segment.end;
                if past_part {
                    // Resume point is in the wrapped part; skip this one.
                    continue;
                }
                if in_part {
                    lo = Bound::Excluded(data_key_at(rp, rk));
                }
            }
            for item in self.engine.scan((lo, hi))? {
                let (k, v) = item?;
                let Some((pos, user_key)) = parse_data_key(&k) else {
                    continue;
                };
                out.push(RangeEntry {
                    position: pos,
                    key: Bytes::copy_from_slice(user_key),
                    versions: Bytes::from(v),
                });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Rebuild the Merkle index for these segments from a scan of local data
    /// (at start-up and after a ring change; writes keep it current after).
    ///
    /// Reset and scan snapshot happen together under every key lock, so each
    /// write either finished entirely before (the scan sees its value and
    /// its Merkle update went to the old trees) or commits after the
    /// snapshot (the scan adds the old entry and the write's own update
    /// swaps it for the new one). Writes therefore must commit to the engine
    /// and update the index under their key's lock. The scan itself runs
    /// without the locks.
    pub fn rebuild_merkle(&self, segments: &[Segment]) -> Result<()> {
        let _one_rebuild_at_a_time = self.rebuilding.lock();
        let (lo, hi) = (Bound::Included(vec![DATA]), Bound::Excluded(vec![DATA + 1]));
        let scan = {
            let _all_keys: Vec<_> = self.locks.iter().map(|m| m.lock()).collect();
            self.merkle.reset(segments);
            self.engine.scan((lo, hi))?
        };
        for item in scan {
            let (k, v) = item?;
            if let Some((pos, user_key)) = parse_data_key(&k) {
                self.merkle
                    .update(pos, None, Some(merkle::entry_hash(user_key, &v)));
            }
        }
        Ok(())
    }

    fn account(&self, pos: u64, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) {
        self.merkle.update(
            pos,
            old.map(|o| merkle::entry_hash(key, o)),
            new.map(|n| merkle::entry_hash(key, n)),
        );
    }

    /// The error for a refused update, counted (and logged when it is the sibling bound).
    fn refused(&self, e: UpdateError) -> ReplicaError {
        match e {
            UpdateError::Exhausted(x) => ReplicaError::Exhausted(x),
            UpdateError::TooMany(t) => {
                self.stats.siblings_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    would = t.would,
                    max = t.max,
                    "sibling bound reached; the write was refused (nothing is dropped)"
                );
                ReplicaError::TooManySiblings(t)
            }
        }
    }

    /// The most siblings a merge may leave: above the bound for new writes, so replicas
    /// that took writes on both sides of a partition can still be merged.
    fn merge_cap(&self) -> usize {
        self.max_siblings.saturating_mul(MERGE_SIBLINGS_FACTOR)
    }

    /// Flush the engine at shutdown and record the clean stop (so the next
    /// start keeps the actor epoch). Call after the last write.
    pub fn shutdown(&self) -> Result<()> {
        self.engine.flush()?;
        self.epochs.mark_clean()
    }

    /// Flush and close the engine. Call once, at shutdown.
    pub fn close(self) -> Result<()> {
        match Arc::try_unwrap(self.engine) {
            Ok(engine) => engine.close()?,
            Err(shared) => shared.flush()?,
        }
        self.epochs.mark_clean()
    }
}
