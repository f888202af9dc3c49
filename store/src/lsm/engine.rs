//! [`Engine`]: the public API and the state its parts share. The parts, one file each:
//!
//! - [`write`]: the group-commit write path. Writers queue up; the first becomes the
//!   *leader*, takes every queued batch (its *group*), assigns consecutive sequence numbers,
//!   appends one record per batch to the WAL with one `write`, and under
//!   `SyncPolicy::Always` one `fdatasync` for the whole group. It then inserts the group into
//!   the memtable in sequence order, publishes the group's last sequence number to readers,
//!   and wakes the followers (each wakes the next). Readers never see a write of this path
//!   before it is durable as the policy promises, nor part of a batch.
//! - [`deferred`]: apply now, sync later (`apply_batch`, `sync_through`) for callers that
//!   hold locks while writing; such a batch is visible before it is durable.
//! - [`read`]: a reader takes the current [`SuperVersion`] (an `Arc`, no lock held while
//!   reading), then the visible sequence number, and reads memtable, immutable memtables,
//!   then tables newest to oldest; `get_cached` does the same without touching a file.
//! - [`background`]: flush, compaction and the periodic log sync, on their own threads.
//! - [`recovery`]: opening an engine (manifest, tables, log replay).

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
    /// Held while [`Engine::sync_through`] syncs, so concurrent callers share one sync. A
    /// `std` mutex: its waiters sleep on a futex, where `parking_lot`'s would spin through
    /// `sched_yield` calls for the whole of an `fdatasync`.
    sync_lock: std::sync::Mutex<()>,
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

mod background;
mod read;
mod recovery;
mod write;

use recovery::{Recovery, write_memtable};
use write::CommitQueue;

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
}
