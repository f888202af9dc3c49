//! [`Engine`]: the public API, the group-commit write path, the read path, recovery, and the
//! background flush, compaction and log-sync threads.
//!
//! Write path. Writers queue up; the first becomes the *leader*, takes every queued batch
//! (its *group*), assigns consecutive sequence numbers, appends one record per batch to the
//! WAL with one `write`, and under `SyncPolicy::Always` one `fdatasync` for the whole group.
//! It then inserts the group into the memtable in sequence order, publishes the group's last
//! sequence number to readers, and wakes the followers (each wakes the next). Writers that
//! queued meanwhile form the leader's next group (a few groups in a row at most, then the
//! leadership passes to the oldest waiter). Readers never see a write before it is durable
//! as the policy promises, nor part of a batch.
//!
//! Read path. A reader takes the current [`SuperVersion`] (an `Arc`, no lock held while
//! reading), then the visible sequence number, and reads memtable, immutable memtables, then
//! tables newest to oldest.

use std::collections::VecDeque;
use std::fs::File;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::lsm::batch::WriteBatch;
use crate::lsm::bloom::hash_key;
use crate::lsm::cache::BlockCache;
use crate::lsm::compaction::{self, Compaction};
use crate::lsm::error::{Error, Result};
use crate::lsm::iter::{InternalIterator, LevelIter, MemIter, MergeIter, Scan};
use crate::lsm::key;
use crate::lsm::log::LogEnd;
use crate::lsm::manifest::{self, Manifest, ManifestState, VersionEdit, sync_dir};
use crate::lsm::memtable::{Lookup, Memtable};
use crate::lsm::options::{Options, SyncPolicy};
use crate::lsm::sstable::{TableBuilder, TableIter, TableMeta, TableReader, table_path};
use crate::lsm::stats::{EngineStats, Stats};
use crate::lsm::version::{NUM_LEVELS, SuperVersion, Version};
use crate::lsm::wal::{self, WalWriter, wal_path};

mod deferred;

/// A manifest larger than this is rewritten as a fresh snapshot.
const MANIFEST_ROLL_BYTES: u64 = 16 << 20;
/// Batches (by encoded bytes) a leader takes into one group; the rest wait for the next.
const MAX_GROUP_BYTES: usize = 4 << 20;

/// The storage engine. `Send + Sync`: share it as `Arc<Engine>` between threads.
///
/// Dropping it without [`Engine::close`] also stops and joins its background threads (and
/// hands buffered log records to the OS), but cannot report errors.
pub struct Engine {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

/// How a queued writer learns its fate.
enum WaitState {
    Waiting,
    Lead,
    /// The write's result, and the next follower of the same group to wake (followers wake
    /// each other in a chain, so the leader pays for one wake-up per group).
    Done(Result<u64>, Option<Arc<Waiter>>),
}

struct Waiter {
    state: Mutex<WaitState>,
    cv: Condvar,
}

impl Waiter {
    fn set(&self, s: WaitState) {
        *self.state.lock() = s;
        self.cv.notify_one();
    }

    /// Blocks until the state leaves `Waiting`; returns it (resetting it to `Waiting`).
    fn wait(&self) -> WaitState {
        let mut st = self.state.lock();
        loop {
            match std::mem::replace(&mut *st, WaitState::Waiting) {
                WaitState::Waiting => self.cv.wait(&mut st),
                other => return other,
            }
        }
    }
}

/// Returns a follower's result after waking the next follower of its group.
fn finish_follower(r: Result<u64>, next: Option<Arc<Waiter>>) -> Result<u64> {
    if let Some(n) = next {
        n.cv.notify_one();
    }
    r
}

thread_local! {
    /// Each thread reuses one waiter: a thread waits for at most one write at a time.
    static WAITER: Arc<Waiter> = Arc::new(Waiter {
        state: Mutex::new(WaitState::Waiting),
        cv: Condvar::new(),
    });
}

struct Pending {
    batch: WriteBatch,
    waiter: Arc<Waiter>,
}

#[derive(Default)]
struct CommitQueue {
    leader_active: bool,
    queue: VecDeque<Pending>,
}

/// State only the commit leader (or `flush`, `close`) touches.
struct Writer {
    wal: WalWriter,
    mem: Arc<Memtable>,
    last_seq: u64,
    /// Microseconds of slowdown owed but not yet slept (slept in >= 1 ms steps).
    slowdown_debt_us: f64,
}

/// State guarded while the set of live tables changes.
struct VersionState {
    manifest: Manifest,
    /// Mirror of what the manifest describes (for rolling it over).
    state: ManifestState,
    /// Where the last compaction of each level ended.
    pointers: [Vec<u8>; NUM_LEVELS],
}

#[derive(Default)]
struct BgState {
    shutdown: bool,
    compaction_wanted: bool,
    /// Highest WAL id whose memtable is flushed.
    flushed_wal: u64,
}

struct Inner {
    dir: PathBuf,
    opts: Options,
    stats: Arc<Stats>,
    cache: Arc<BlockCache>,
    next_file: AtomicU64,
    visible_seq: AtomicU64,
    /// Under `SyncPolicy::Always`: every write up to here is fsynced (see [`deferred`]).
    durable_seq: AtomicU64,
    /// Held while [`Engine::sync_through`] syncs, so concurrent callers share one sync.
    sync_lock: Mutex<()>,
    sv: RwLock<Arc<SuperVersion>>,
    commit: Mutex<CommitQueue>,
    writer: Mutex<Writer>,
    versions: Mutex<VersionState>,
    /// One compaction at a time (background or `compact_all`).
    compaction_lock: Mutex<()>,
    bg: Mutex<BgState>,
    bg_cv: Condvar,
    stopping: AtomicBool,
    poisoned: AtomicBool,
    poison_reason: Mutex<String>,
    /// Held (locked) for the engine's lifetime.
    _lock_file: File,
}

impl Engine {
    /// Opens (recovering) or creates the engine in `dir`.
    ///
    /// Recovery replays the write-ahead logs not yet flushed, truncating a torn tail (a
    /// warning and the `wal_torn_tails` statistic report it) and failing with a typed error
    /// on damage anywhere else, then writes the replayed data to a table and starts a fresh
    /// manifest and log.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Engine> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::io(
                    &dir,
                    std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !opts.create_if_missing {
                    return Err(Error::MissingDir { path: dir });
                }
                std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    let _ = File::open(parent).and_then(|d| d.sync_all());
                }
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
        let lock_path = dir.join("LOCK");
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: dir }),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        Recovery::run(dir, opts, lock_file)
    }

    /// Stores `value` under `key`; returns the write's sequence number.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        self.inner.check_key(key)?;
        self.inner.check_value(value)?;
        let mut b = WriteBatch::new();
        b.put(key, value);
        let seq = self.write(b)?;
        self.inner.stats.add(&self.inner.stats.puts, 1);
        Ok(seq)
    }

    /// Deletes `key` (writes a tombstone); returns the write's sequence number.
    pub fn delete(&self, key: &[u8]) -> Result<u64> {
        self.inner.check_key(key)?;
        let mut b = WriteBatch::new();
        b.delete(key);
        let seq = self.write(b)?;
        self.inner.stats.add(&self.inner.stats.deletes, 1);
        Ok(seq)
    }

    /// Applies every operation of `batch` atomically, also across a crash. Operations take
    /// consecutive sequence numbers; returns the last one (for an empty batch, the current
    /// last sequence number).
    pub fn write_batch(&self, batch: WriteBatch) -> Result<u64> {
        for op in batch.ops() {
            let op = op.map_err(|r| Error::corruption("<write batch>", 0, r))?;
            self.inner.check_key(op.key)?;
            if op.kind == key::KIND_PUT {
                self.inner.check_value(op.value)?;
            }
        }
        if batch.is_empty() {
            return Ok(self.inner.visible_seq.load(Ordering::Acquire));
        }
        let seq = self.write(batch)?;
        self.inner.stats.add(&self.inner.stats.batches, 1);
        Ok(seq)
    }

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

    /// Writes the memtable (and any immutable ones) to tables and waits until they are
    /// durable and live.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Flushes, then merges every table into one sorted run on the deepest level in use,
    /// dropping overwritten versions and every tombstone.
    pub fn compact_all(&self) -> Result<()> {
        self.inner.flush()?;
        let _g = self.inner.compaction_lock.lock();
        let v = Arc::clone(&self.inner.super_version().version);
        match compaction::pick_all(&v) {
            Some(c) => self.inner.run_compaction(c),
            None => Ok(()),
        }
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> EngineStats {
        self.inner.engine_stats()
    }

    /// Syncs the log, stops the background threads and waits for them.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the engine runs with.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Blocks until no flush or compaction is pending (for benchmarks and tests), or until
    /// `timeout` passes; returns true if the engine is idle.
    pub fn wait_for_background(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let idle = {
                let sv = self.inner.super_version();
                let v = Arc::clone(&sv.version);
                let mut pointers: [Vec<u8>; NUM_LEVELS] = Default::default();
                sv.imms.is_empty()
                    && (!self.inner.opts.background_compaction
                        || compaction::pick(&v, &self.inner.opts, &mut pointers).is_none())
            };
            if idle {
                // A compaction may still be installing its result.
                let _g = self.inner.compaction_lock.lock();
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn write(&self, batch: WriteBatch) -> Result<u64> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let mut q = inner.commit.lock();
        if !q.leader_active {
            q.leader_active = true;
            let followers = take_group(&mut q, batch.data.len());
            drop(q);
            return inner.lead(Some(batch), followers);
        }
        let waiter = WAITER.with(Arc::clone);
        *waiter.state.lock() = WaitState::Waiting;
        q.queue.push_back(Pending {
            batch,
            waiter: Arc::clone(&waiter),
        });
        drop(q);
        match waiter.wait() {
            WaitState::Done(r, next) => finish_follower(r, next),
            WaitState::Waiting | WaitState::Lead => {
                let mut q = inner.commit.lock();
                // The previous leader promoted the front of the queue: this writer.
                let own = q.queue.pop_front();
                let own_bytes = own.as_ref().map_or(0, |p| p.batch.data.len());
                let followers = take_group(&mut q, own_bytes);
                drop(q);
                match own {
                    Some(p) if Arc::ptr_eq(&p.waiter, &waiter) => {
                        inner.lead(Some(p.batch), followers)
                    }
                    other => {
                        // Not expected; lead the group anyway and wait for our result.
                        let mut group = followers;
                        if let Some(p) = other {
                            group.insert(0, p);
                        }
                        let _ = inner.lead(None, group);
                        loop {
                            if let WaitState::Done(r, next) = waiter.wait() {
                                return finish_follower(r, next);
                            }
                        }
                    }
                }
            }
        }
    }

    fn shutdown(&self) -> Result<()> {
        let inner = &*self.inner;
        let synced = {
            let mut w = inner.writer.lock();
            w.wal.sync(&inner.stats)
        };
        inner.stopping.store(true, Ordering::Release);
        {
            let mut bg = inner.bg.lock();
            bg.shutdown = true;
            inner.bg_cv.notify_all();
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
        synced
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "engine dropped without close; syncing the log failed");
        }
    }
}

fn bound_key(b: &Bound<Vec<u8>>) -> Option<&[u8]> {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

/// Groups one leader commits back to back before it hands the leadership on.
const MAX_LEAD_ROUNDS: usize = 8;

/// Takes queued batches for one group, up to `MAX_GROUP_BYTES` including `first_bytes`.
fn take_group(q: &mut CommitQueue, first_bytes: usize) -> Vec<Pending> {
    let mut bytes = first_bytes;
    let mut group = Vec::new();
    while let Some(p) = q.queue.front() {
        if !group.is_empty() && bytes + p.batch.data.len() > MAX_GROUP_BYTES {
            break;
        }
        bytes += p.batch.data.len();
        if let Some(p) = q.queue.pop_front() {
            group.push(p);
        }
    }
    group
}

impl Inner {
    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if key.len() > self.opts.max_key_bytes {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: self.opts.max_key_bytes,
            });
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.opts.max_value_bytes {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: self.opts.max_value_bytes,
            });
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned {
                reason: self.poison_reason.lock().clone(),
            });
        }
        if self.stopping.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Refuses further writes after a failure that may have left the log or manifest in an
    /// unknown state. Recovery (reopen) sorts it out.
    fn poison(&self, e: &Error) {
        tracing::error!(error = %e, "storage engine stops accepting writes");
        let mut r = self.poison_reason.lock();
        if r.is_empty() {
            *r = e.to_string();
        }
        self.poisoned.store(true, Ordering::Release);
        let _bg = self.bg.lock();
        self.bg_cv.notify_all();
    }

    fn super_version(&self) -> Arc<SuperVersion> {
        Arc::clone(&self.sv.read())
    }

    /// Commits `own` and the followers' batches as one group; wakes the followers, passes
    /// the leadership on, and returns `own`'s result.
    fn lead(&self, own: Option<WriteBatch>, followers: Vec<Pending>) -> Result<u64> {
        let has_own = own.is_some();
        let mut own = own;
        let mut followers = followers;
        let mut own_result: Result<u64> = Ok(0);
        for round in 1.. {
            let result = {
                let mut batches: Vec<&WriteBatch> = Vec::with_capacity(followers.len() + 1);
                batches.extend(own.as_ref());
                batches.extend(followers.iter().map(|p| &p.batch));
                self.commit_group(&batches)
            };
            let skip = usize::from(own.take().is_some());
            if skip == 1 {
                own_result = match &result {
                    Ok(seqs) => Ok(seqs.first().copied().unwrap_or(0)),
                    Err(e) => Err(e.duplicate()),
                };
            }
            // Hand every follower its result, then wake the first: each wakes the next.
            let mut next: Option<Arc<Waiter>> = None;
            for (i, p) in followers.iter().enumerate().rev() {
                let r = match &result {
                    Ok(seqs) => Ok(seqs.get(i + skip).copied().unwrap_or(0)),
                    Err(e) => Err(e.duplicate()),
                };
                *p.waiter.state.lock() = WaitState::Done(r, next.take());
                next = Some(Arc::clone(&p.waiter));
            }
            if let Some(first) = next {
                first.cv.notify_one();
            }
            // Keep leading while writers are queued: the next group starts without waiting
            // for another thread to be scheduled. After a bounded number of groups (so this
            // writer's own call returns), hand the leadership to the oldest waiter.
            let mut q = self.commit.lock();
            if q.queue.is_empty() {
                q.leader_active = false;
                break;
            }
            if round >= MAX_LEAD_ROUNDS || result.is_err() {
                if let Some(front) = q.queue.front() {
                    front.waiter.set(WaitState::Lead);
                }
                break;
            }
            followers = take_group(&mut q, 0);
        }
        if has_own { own_result } else { Ok(0) }
    }

    /// Writes one group: WAL append (+ sync), memtable insert, publish. Returns the last
    /// sequence number of each batch.
    fn commit_group(&self, batches: &[&WriteBatch]) -> Result<Vec<u64>> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        let bytes: usize = batches.iter().map(|b| b.data.len()).sum();
        self.make_room(&mut w, bytes)?;

        let mut seq = w.last_seq;
        let mut lasts = Vec::with_capacity(batches.len());
        let mut user_bytes = 0;
        for b in batches {
            w.wal.append_batch(seq + 1, b.count, &b.data);
            seq += u64::from(b.count);
            lasts.push(seq);
            user_bytes += b.user_bytes;
        }
        if seq > key::MAX_SEQ {
            return Err(Error::InvalidOptions {
                reason: "sequence numbers exhausted".into(),
            });
        }
        if let Err(e) = w.wal.commit(&self.stats) {
            self.poison(&e);
            return Err(e);
        }
        let mut s = w.last_seq;
        for b in batches {
            for op in b.ops() {
                let op = op.map_err(|r| Error::corruption("<write batch>", 0, r))?;
                s += 1;
                w.mem.insert(op.key, s, op.kind, op.value);
            }
        }
        w.last_seq = seq;
        self.visible_seq.store(seq, Ordering::Release);
        if self.opts.sync == SyncPolicy::Always {
            // The group's sync covered every write before it, deferred ones included.
            self.durable_seq.fetch_max(seq, Ordering::AcqRel);
        }
        self.stats.add(&self.stats.user_bytes_written, user_bytes);
        self.stats.add(&self.stats.commit_groups, 1);
        Ok(lasts)
    }

    /// Makes sure the memtable has room, slowing the writer down (or, as a last resort,
    /// stopping it) when flushes or L0 compactions fall behind.
    fn make_room(&self, w: &mut Writer, group_bytes: usize) -> Result<()> {
        let opts = &self.opts;
        let mut slowed = false;
        let mut stop_started: Option<Instant> = None;
        loop {
            self.check_writable()?;
            let sv = self.super_version();
            let l0 = if opts.background_compaction {
                sv.version.levels.first().map_or(0, Vec::len)
            } else {
                0
            };
            let imms = sv.imms.len();
            let mem_full = w.mem.approximate_bytes() >= opts.memtable_bytes;
            if l0 >= opts.l0_stop_trigger || (mem_full && imms >= opts.max_immutable_memtables) {
                let started = *stop_started.get_or_insert_with(|| {
                    self.stats.add(&self.stats.write_stops, 1);
                    Instant::now()
                });
                let mut bg = self.bg.lock();
                if !bg.shutdown {
                    bg.compaction_wanted = true;
                    self.bg_cv.notify_all();
                    self.bg_cv.wait_for(&mut bg, Duration::from_millis(50));
                }
                let shutdown = bg.shutdown;
                drop(bg);
                let us = started.elapsed().as_micros() as u64;
                self.stats.record_stall(us);
                if shutdown {
                    return Err(Error::Closed);
                }
                continue;
            }
            if let Some(started) = stop_started.take() {
                let us = started.elapsed().as_micros() as u64;
                self.stats.add(&self.stats.write_stop_micros, us);
            }
            let l0_excess = (l0 + 1).saturating_sub(opts.l0_slowdown_trigger);
            let imm_excess = usize::from(imms > 0 && imms + 1 >= opts.max_immutable_memtables);
            let excess = l0_excess.max(imm_excess);
            if !slowed && excess > 0 {
                slowed = true;
                let rate = (opts.slowdown_bytes_per_sec >> (excess - 1).min(20)).max(1);
                w.slowdown_debt_us += group_bytes as f64 * 1e6 / rate as f64;
                if w.slowdown_debt_us >= 1000.0 {
                    let us = w.slowdown_debt_us.min(100_000.0) as u64;
                    w.slowdown_debt_us = 0.0;
                    std::thread::sleep(Duration::from_micros(us));
                    self.stats.add(&self.stats.write_slowdowns, 1);
                    self.stats.add(&self.stats.write_slowdown_micros, us);
                    self.stats.record_stall(us);
                }
                continue;
            }
            if mem_full {
                self.rotate(w)?;
                continue;
            }
            return Ok(());
        }
    }

    /// Seals the memtable: starts a new log and memtable and queues the old ones for flush.
    fn rotate(&self, w: &mut Writer) -> Result<()> {
        let id = self.next_file.fetch_add(1, Ordering::Relaxed);
        let new_wal = WalWriter::create(
            &self.dir,
            id,
            w.mem.wal_id,
            self.opts.sync,
            self.opts.wal_buffer_bytes,
            self.opts.wal_prealloc_bytes(),
            &self.stats,
        )?;
        let sealed = match self.opts.sync {
            SyncPolicy::Never => w.wal.write_out(&self.stats),
            _ => w.wal.sync(&self.stats),
        };
        if let Err(e) = sealed {
            self.poison(&e);
            let _ = std::fs::remove_file(wal_path(&self.dir, id));
            return Err(e);
        }
        if self.opts.sync != SyncPolicy::Never {
            sync_dir(&self.dir, &self.stats)?;
        }
        let new_mem = Arc::new(Memtable::new(id));
        let old_mem = std::mem::replace(&mut w.mem, Arc::clone(&new_mem));
        w.wal = new_wal;
        {
            let mut sv = self.sv.write();
            let mut next = SuperVersion::clone(&sv);
            next.imms.insert(0, old_mem);
            next.mem = new_mem;
            *sv = Arc::new(next);
        }
        let _bg = self.bg.lock();
        self.bg_cv.notify_all();
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let target = {
            let mut w = self.writer.lock();
            self.check_writable()?;
            if !w.mem.is_empty() {
                self.rotate(&mut w)?;
            }
            self.super_version().imms.first().map(|m| m.wal_id)
        };
        let Some(target) = target else {
            return Ok(());
        };
        let mut bg = self.bg.lock();
        loop {
            if bg.flushed_wal >= target {
                return Ok(());
            }
            if self.poisoned.load(Ordering::Acquire) {
                return Err(Error::Poisoned {
                    reason: self.poison_reason.lock().clone(),
                });
            }
            if bg.shutdown {
                return Err(Error::Closed);
            }
            self.bg_cv.wait_for(&mut bg, Duration::from_millis(100));
        }
    }

    fn open_table(&self, meta: TableMeta) -> Result<Arc<TableReader>> {
        Ok(Arc::new(TableReader::open_with(
            &table_path(&self.dir, meta.id),
            meta.id,
            Some(meta.size),
            Some(Arc::clone(&self.cache)),
            Arc::clone(&self.stats),
        )?))
    }

    /// Records `edit` durably in the manifest, then installs the resulting version.
    fn log_and_apply(
        &self,
        vs: &mut VersionState,
        mut edit: VersionEdit,
        added: &[Arc<TableReader>],
        flushed: Option<&Arc<Memtable>>,
    ) -> Result<()> {
        edit.next_file = Some(self.next_file.load(Ordering::Relaxed));
        let mut state = vs.state.clone();
        state
            .apply(&edit)
            .map_err(|r| Error::corruption(&self.dir, 0, format!("invalid version edit: {r}")))?;
        let current = Arc::clone(&self.super_version().version);
        let next = current.apply(&edit, added)?;
        let logged = if vs.manifest.bytes > MANIFEST_ROLL_BYTES {
            let id = self.next_file.fetch_add(1, Ordering::Relaxed);
            state.next_file = self.next_file.load(Ordering::Relaxed);
            Manifest::create(&self.dir, id, &state, &self.stats).map(|m| {
                let old = std::mem::replace(&mut vs.manifest, m);
                let _ = std::fs::remove_file(manifest::manifest_path(&self.dir, old.id));
            })
        } else {
            vs.manifest.append(&edit, &self.stats)
        };
        if let Err(e) = logged {
            self.poison(&e);
            return Err(e);
        }
        vs.state = state;
        let mut sv = self.sv.write();
        let mut nsv = SuperVersion::clone(&sv);
        nsv.version = Arc::new(next);
        if let Some(m) = flushed {
            nsv.imms.retain(|x| !Arc::ptr_eq(x, m));
        }
        *sv = Arc::new(nsv);
        Ok(())
    }

    /// Flushes the oldest immutable memtable.
    fn flush_one(&self, mem: &Arc<Memtable>) -> Result<()> {
        let id = self.next_file.fetch_add(1, Ordering::Relaxed);
        let meta = write_memtable(&self.dir, &self.opts, mem, id)?;
        let table = match meta {
            Some(m) => {
                sync_dir(&self.dir, &self.stats)?;
                self.stats.add(&self.stats.flush_bytes_written, m.size);
                Some(self.open_table(m)?)
            }
            None => None,
        };
        {
            let mut vs = self.versions.lock();
            let edit = VersionEdit {
                flushed_wal: Some(mem.wal_id),
                last_seq: Some(mem.max_seq().max(vs.state.last_seq)),
                added: table.iter().map(|t| (0u8, t.id, t.size)).collect(),
                ..VersionEdit::default()
            };
            self.log_and_apply(&mut vs, edit, table.as_slice(), Some(mem))?;
        }
        let wal = wal_path(&self.dir, mem.wal_id);
        if let Err(e) = std::fs::remove_file(&wal) {
            tracing::warn!(file = %wal.display(), error = %e, "could not delete a flushed log");
        }
        self.stats.add(&self.stats.flushes, 1);
        let mut bg = self.bg.lock();
        bg.flushed_wal = bg.flushed_wal.max(mem.wal_id);
        bg.compaction_wanted = true;
        self.bg_cv.notify_all();
        Ok(())
    }

    fn run_compaction(&self, c: Compaction) -> Result<()> {
        if c.trivial_move {
            let mut vs = self.versions.lock();
            let mut edit = VersionEdit::default();
            for (l, t) in &c.inputs {
                edit.deleted.push((*l as u8, t.id));
                edit.added.push((c.output_level as u8, t.id, t.size));
            }
            self.log_and_apply(&mut vs, edit, &[], None)?;
            self.stats.add(&self.stats.trivial_moves, 1);
            return Ok(());
        }
        let alloc = || self.next_file.fetch_add(1, Ordering::Relaxed);
        let out = compaction::merge(
            &c,
            &self.dir,
            &self.opts,
            &alloc,
            &self.stopping,
            &self.stats,
        )?;
        let opened: Result<Vec<Arc<TableReader>>> = (|| {
            if !out.tables.is_empty() {
                sync_dir(&self.dir, &self.stats)?;
            }
            out.tables.iter().map(|m| self.open_table(*m)).collect()
        })();
        let installed = opened.and_then(|tables| {
            let mut vs = self.versions.lock();
            let edit = VersionEdit {
                deleted: c.inputs.iter().map(|(l, t)| (*l as u8, t.id)).collect(),
                added: tables
                    .iter()
                    .map(|t| (c.output_level as u8, t.id, t.size))
                    .collect(),
                ..VersionEdit::default()
            };
            self.log_and_apply(&mut vs, edit, &tables, None)
        });
        if let Err(e) = installed {
            for m in &out.tables {
                let _ = std::fs::remove_file(table_path(&self.dir, m.id));
            }
            return Err(e);
        }
        for (_, t) in &c.inputs {
            t.mark_obsolete();
        }
        let written: u64 = out.tables.iter().map(|t| t.size).sum();
        self.stats
            .add(&self.stats.compaction_bytes_written, written);
        self.stats.add(&self.stats.compactions, 1);
        self.stats
            .add(&self.stats.tombstones_dropped, out.tombstones_dropped);
        let _bg = self.bg.lock();
        self.bg_cv.notify_all();
        Ok(())
    }

    fn engine_stats(&self) -> EngineStats {
        let s = &*self.stats;
        let g = Stats::get;
        let (cache_hits, cache_misses, cache_bytes) = self.cache.counters();
        let sv = self.super_version();
        let mut tables_per_level = [0u64; NUM_LEVELS];
        let mut bytes_per_level = [0u64; NUM_LEVELS];
        for (i, l) in sv.version.levels.iter().enumerate() {
            if let Some(t) = tables_per_level.get_mut(i) {
                *t = l.len() as u64;
            }
            if let Some(b) = bytes_per_level.get_mut(i) {
                *b = l.iter().map(|t| t.size).sum();
            }
        }
        let wal = g(&s.wal_bytes_written);
        let flush = g(&s.flush_bytes_written);
        let comp = g(&s.compaction_bytes_written);
        let man = g(&s.manifest_bytes_written);
        EngineStats {
            puts: g(&s.puts),
            deletes: g(&s.deletes),
            batches: g(&s.batches),
            gets: g(&s.gets),
            scans: g(&s.scans),
            last_sequence: self.visible_seq.load(Ordering::Acquire),
            user_bytes_written: g(&s.user_bytes_written),
            wal_bytes_written: wal,
            wal_writes: g(&s.wal_writes),
            wal_syncs: g(&s.wal_syncs),
            wal_sync_micros: g(&s.wal_sync_micros),
            commit_groups: g(&s.commit_groups),
            flush_bytes_written: flush,
            compaction_bytes_read: g(&s.compaction_bytes_read),
            compaction_bytes_written: comp,
            manifest_bytes_written: man,
            disk_bytes_written: wal + flush + comp + man,
            fsyncs: g(&s.fsyncs),
            flushes: g(&s.flushes),
            compactions: g(&s.compactions),
            trivial_moves: g(&s.trivial_moves),
            tombstones_dropped: g(&s.tombstones_dropped),
            bloom_negatives: g(&s.bloom_negatives),
            bloom_false_positives: g(&s.bloom_false_positives),
            range_skips: g(&s.range_skips),
            block_reads: g(&s.block_reads),
            cache_hits,
            cache_misses,
            cache_bytes,
            cache_capacity_bytes: self.cache.capacity() as u64,
            wal_torn_tails: g(&s.wal_torn_tails),
            wal_bytes_truncated: g(&s.wal_bytes_truncated),
            manifest_torn_tails: g(&s.manifest_torn_tails),
            write_slowdowns: g(&s.write_slowdowns),
            write_slowdown_micros: g(&s.write_slowdown_micros),
            write_stops: g(&s.write_stops),
            write_stop_micros: g(&s.write_stop_micros),
            write_stall_max_micros: g(&s.write_stall_max_micros),
            memtable_bytes: std::iter::once(&sv.mem)
                .chain(&sv.imms)
                .map(|m| m.approximate_bytes() as u64)
                .sum(),
            immutable_memtables: sv.imms.len() as u64,
            tables_per_level,
            bytes_per_level,
        }
    }
}

/// Background threads.
mod background {
    use super::*;

    /// CPU niceness of the flush thread: below foreground writers, so a flush does not take the
    /// cores from the requests it is making room for, but not so low that it falls behind (the
    /// write slowdown would then take over).
    const FLUSH_NICE: i32 = 5;
    /// CPU niceness of the compaction thread, which can always wait.
    const COMPACTION_NICE: i32 = 10;

    /// Lowers the calling thread's CPU priority (Linux: a thread's own nice value). Best effort:
    /// where it is not allowed or not supported the thread keeps its priority.
    fn lower_priority(nice: i32) {
        #[cfg(target_os = "linux")]
        {
            #[allow(unsafe_code)]
            // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
            let _ = unsafe {
                let tid = libc::gettid();
                libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
            };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = nice;
    }

    /// Flushes immutable memtables, oldest first, until shutdown.
    pub(super) fn flush_loop(inner: Arc<Inner>) {
        lower_priority(FLUSH_NICE);
        loop {
            let mem = {
                let mut bg = inner.bg.lock();
                loop {
                    if bg.shutdown || inner.poisoned.load(Ordering::Acquire) {
                        return;
                    }
                    if let Some(m) = inner.super_version().imms.last() {
                        break Arc::clone(m);
                    }
                    inner.bg_cv.wait_for(&mut bg, Duration::from_millis(500));
                }
            };
            if let Err(e) = inner.flush_one(&mem) {
                inner.poison(&e);
                return;
            }
        }
    }

    /// Runs compactions while any is due, until shutdown.
    pub(super) fn compaction_loop(inner: Arc<Inner>) {
        lower_priority(COMPACTION_NICE);
        loop {
            {
                let mut bg = inner.bg.lock();
                loop {
                    if bg.shutdown || inner.poisoned.load(Ordering::Acquire) {
                        return;
                    }
                    if bg.compaction_wanted {
                        bg.compaction_wanted = false;
                        break;
                    }
                    if inner
                        .bg_cv
                        .wait_for(&mut bg, Duration::from_millis(500))
                        .timed_out()
                    {
                        break;
                    }
                }
            }
            loop {
                if inner.stopping.load(Ordering::Acquire) {
                    return;
                }
                let _g = inner.compaction_lock.lock();
                let v = Arc::clone(&inner.super_version().version);
                let job = {
                    let mut vs = inner.versions.lock();
                    compaction::pick(&v, &inner.opts, &mut vs.pointers)
                };
                let Some(job) = job else { break };
                match inner.run_compaction(job) {
                    Ok(()) => {}
                    Err(Error::Closed) => return,
                    Err(e) => {
                        inner.poison(&e);
                        return;
                    }
                }
            }
        }
    }

    /// `SyncPolicy::EveryMs`: syncs the current log every period if it was written to.
    pub(super) fn sync_loop(inner: Arc<Inner>, period: Duration) {
        let mut synced_bytes = 0;
        loop {
            {
                let mut bg = inner.bg.lock();
                if bg.shutdown {
                    return;
                }
                inner.bg_cv.wait_for(&mut bg, period);
                if bg.shutdown {
                    return;
                }
            }
            let written = Stats::get(&inner.stats.wal_bytes_written);
            if written == synced_bytes {
                continue;
            }
            let (file, path) = inner.writer.lock().wal.file();
            match file.sync_data() {
                Ok(()) => {
                    synced_bytes = written;
                    inner.stats.add(&inner.stats.fsyncs, 1);
                    inner.stats.add(&inner.stats.wal_syncs, 1);
                }
                Err(e) => {
                    inner.poison(&Error::io(path, e));
                    return;
                }
            }
        }
    }
}

/// Opening an engine: manifest, tables, log replay, fresh manifest and log, threads.
struct Recovery;

impl Recovery {
    fn run(dir: PathBuf, opts: Options, lock_file: File) -> Result<Engine> {
        let stats = Arc::new(Stats::default());
        let cache = Arc::new(BlockCache::new(opts.block_cache_bytes));
        let files = list_files(&dir)?;
        let (old_manifest, mut state) = match manifest::recover(&dir, &stats)? {
            Some((id, state)) => (Some(id), state),
            None => {
                if files
                    .iter()
                    .any(|f| matches!(f, DbFile::Table(_) | DbFile::Manifest(_)))
                {
                    return Err(Error::corruption(
                        dir.join("CURRENT"),
                        0,
                        "CURRENT is missing but the directory holds tables or manifests",
                    ));
                }
                (None, ManifestState::default())
            }
        };
        let max_id = files.iter().map(DbFile::id).max().unwrap_or(0);
        let next_file = AtomicU64::new(state.next_file.max(max_id + 1).max(1));

        let mut version = Version::default();
        let mut last_seq = state.last_seq;
        for (level, tables) in state.levels.iter().enumerate() {
            for (&id, &size) in tables {
                let t = TableReader::open_with(
                    &table_path(&dir, id),
                    id,
                    Some(size),
                    Some(Arc::clone(&cache)),
                    Arc::clone(&stats),
                )?;
                last_seq = last_seq.max(t.props.max_seq);
                if let Some(l) = version.levels.get_mut(level) {
                    l.push(Arc::new(t));
                }
            }
        }
        version.sort();

        // Replay the logs that were not flushed, oldest first.
        let mut wals: Vec<u64> = files
            .iter()
            .filter_map(|f| match f {
                DbFile::Wal(id) if *id > state.flushed_wal => Some(*id),
                _ => None,
            })
            .collect();
        wals.sort_unstable();
        let recovered = Memtable::new(0);
        for &id in &wals {
            let path = wal_path(&dir, id);
            let replayed = wal::replay(&path, |seq, op| {
                recovered.insert(op.key, seq, op.kind, op.value);
                last_seq = last_seq.max(seq);
                Ok(())
            })?;
            // The log this one follows must be flushed (per the manifest) or replayed too;
            // otherwise the manifest lost an edit and data would vanish silently.
            if let Some(prev) = replayed.prev
                && prev > state.flushed_wal
                && !wals.contains(&prev)
            {
                return Err(Error::corruption(
                    manifest::manifest_path(&dir, old_manifest.unwrap_or(0)),
                    0,
                    format!(
                        "the manifest is behind the logs: log {prev} (followed by {}) is gone \
                         but the manifest does not record it as flushed",
                        path.display()
                    ),
                ));
            }
            if let LogEnd::Torn { offset, dropped } = replayed.end {
                stats.add(&stats.wal_torn_tails, 1);
                stats.add(&stats.wal_bytes_truncated, dropped);
                tracing::warn!(
                    file = %path.display(),
                    offset,
                    dropped,
                    "write-ahead log ends in a torn record (an incomplete write); truncated it there"
                );
            }
        }

        if !recovered.is_empty() {
            let id = next_file.fetch_add(1, Ordering::Relaxed);
            if let Some(meta) = write_memtable(&dir, &opts, &recovered, id)? {
                sync_dir(&dir, &stats)?;
                stats.add(&stats.flush_bytes_written, meta.size);
                let t = TableReader::open_with(
                    &table_path(&dir, id),
                    id,
                    Some(meta.size),
                    Some(Arc::clone(&cache)),
                    Arc::clone(&stats),
                )?;
                state.levels[0].insert(id, meta.size);
                if let Some(l0) = version.levels.first_mut() {
                    l0.push(Arc::new(t));
                }
                version.sort();
            }
        }
        if let Some(&w) = wals.last() {
            state.flushed_wal = state.flushed_wal.max(w);
        }
        state.last_seq = last_seq;
        let manifest_id = next_file.fetch_add(1, Ordering::Relaxed);
        let wal_id = next_file.fetch_add(1, Ordering::Relaxed);
        state.next_file = next_file.load(Ordering::Relaxed);
        let manifest = Manifest::create(&dir, manifest_id, &state, &stats)?;

        // The new manifest is durable: remove what it no longer references.
        let live: std::collections::HashSet<u64> = state
            .levels
            .iter()
            .flat_map(|l| l.keys().copied())
            .collect();
        for f in &files {
            let stale = match f {
                DbFile::Wal(id) => *id <= state.flushed_wal,
                DbFile::Table(id) => !live.contains(id),
                DbFile::Manifest(id) => Some(*id) == old_manifest || *id != manifest_id,
                DbFile::Temp => true,
            };
            if stale {
                let path = f.path(&dir);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(file = %path.display(), error = %e, "could not delete a stale file");
                }
            }
        }

        let wal = WalWriter::create(
            &dir,
            wal_id,
            state.flushed_wal,
            opts.sync,
            opts.wal_buffer_bytes,
            opts.wal_prealloc_bytes(),
            &stats,
        )?;
        sync_dir(&dir, &stats)?;
        let mem = Arc::new(Memtable::new(wal_id));
        let sv = SuperVersion {
            mem: Arc::clone(&mem),
            imms: Vec::new(),
            version: Arc::new(version),
        };
        let inner = Arc::new(Inner {
            dir,
            stats,
            cache,
            next_file,
            visible_seq: AtomicU64::new(last_seq),
            durable_seq: AtomicU64::new(last_seq),
            sync_lock: Mutex::new(()),
            sv: RwLock::new(Arc::new(sv)),
            commit: Mutex::new(CommitQueue::default()),
            writer: Mutex::new(Writer {
                wal,
                mem,
                last_seq,
                slowdown_debt_us: 0.0,
            }),
            versions: Mutex::new(VersionState {
                manifest,
                state,
                pointers: Default::default(),
            }),
            compaction_lock: Mutex::new(()),
            bg: Mutex::new(BgState {
                shutdown: false,
                compaction_wanted: true,
                flushed_wal: 0,
            }),
            bg_cv: Condvar::new(),
            stopping: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            poison_reason: Mutex::new(String::new()),
            opts,
            _lock_file: lock_file,
        });
        let engine = Engine {
            inner: Arc::clone(&inner),
            threads: Mutex::new(Vec::new()),
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(f)
                .map_err(|e| Error::io(&inner.dir, e))
        };
        let mut threads = Vec::new();
        let i = Arc::clone(&inner);
        threads.push(spawn(
            "lsm-flush",
            Box::new(move || background::flush_loop(i)),
        )?);
        if inner.opts.background_compaction {
            let i = Arc::clone(&inner);
            threads.push(spawn(
                "lsm-compact",
                Box::new(move || background::compaction_loop(i)),
            )?);
        }
        if let SyncPolicy::EveryMs(ms) = inner.opts.sync {
            let i = Arc::clone(&inner);
            threads.push(spawn(
                "lsm-sync",
                Box::new(move || background::sync_loop(i, Duration::from_millis(ms))),
            )?);
        }
        *engine.threads.lock() = threads;
        Ok(engine)
    }
}

/// Writes `mem` as table `id` in `dir`; `None` if it is empty. Keeps only the newest version
/// of each key (older ones are invisible to every reader that will see the table).
fn write_memtable(
    dir: &Path,
    opts: &Options,
    mem: &Memtable,
    id: u64,
) -> Result<Option<TableMeta>> {
    if mem.is_empty() {
        return Ok(None);
    }
    let path = table_path(dir, id);
    let mut b = TableBuilder::create(
        &path,
        id,
        opts.block_bytes,
        opts.block_restart_interval,
        opts.bloom_bits_per_key,
        opts.compression_for(0),
    )?;
    let mut ikey = Vec::new();
    let mut last: Vec<u8> = Vec::new();
    let mut have_last = false;
    let built = (|| -> Result<()> {
        for e in mem.iter() {
            let e = e.value();
            if have_last && last.as_slice() == e.user_key() {
                continue;
            }
            last.clear();
            last.extend_from_slice(e.user_key());
            have_last = true;
            ikey.clear();
            key::append(&mut ikey, e.user_key(), e.trailer());
            b.add(&ikey, e.value())?;
        }
        Ok(())
    })();
    match built.and_then(|()| b.finish()) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// The files the engine recognizes in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbFile {
    Wal(u64),
    Table(u64),
    Manifest(u64),
    Temp,
}

impl DbFile {
    fn id(&self) -> u64 {
        match self {
            DbFile::Wal(id) | DbFile::Table(id) | DbFile::Manifest(id) => *id,
            DbFile::Temp => 0,
        }
    }

    fn path(&self, dir: &Path) -> PathBuf {
        match self {
            DbFile::Wal(id) => wal_path(dir, *id),
            DbFile::Table(id) => table_path(dir, *id),
            DbFile::Manifest(id) => manifest::manifest_path(dir, *id),
            DbFile::Temp => dir.join("CURRENT.tmp"),
        }
    }

    fn parse(name: &str) -> Option<DbFile> {
        let num = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        if let Some(n) = name.strip_suffix(".wal") {
            return num(n).map(DbFile::Wal);
        }
        if let Some(n) = name.strip_suffix(".sst") {
            return num(n).map(DbFile::Table);
        }
        if let Some(n) = name.strip_prefix("MANIFEST-") {
            return num(n).map(DbFile::Manifest);
        }
        (name == "CURRENT.tmp").then_some(DbFile::Temp)
    }
}

fn list_files(dir: &Path) -> Result<Vec<DbFile>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(f) = entry.file_name().to_str().and_then(DbFile::parse) {
            out.push(f);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn engine_and_scan_are_thread_safe_types() {
        assert_send_sync::<Engine>();
        fn assert_send<T: Send>() {}
        assert_send::<Scan>();
    }

    #[test]
    fn file_names_parse() {
        assert_eq!(DbFile::parse("000012.wal"), Some(DbFile::Wal(12)));
        assert_eq!(DbFile::parse("000012.sst"), Some(DbFile::Table(12)));
        assert_eq!(DbFile::parse("MANIFEST-000003"), Some(DbFile::Manifest(3)));
        assert_eq!(DbFile::parse("x.sst"), None);
        assert_eq!(DbFile::parse("LOCK"), None);
    }
}
