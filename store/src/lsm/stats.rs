//! Engine counters. [`Stats`] is the live set of atomics; [`EngineStats`] is a plain snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::lsm::version::NUM_LEVELS;

/// Live counters, updated with relaxed atomics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) puts: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) gets: AtomicU64,
    pub(crate) scans: AtomicU64,
    pub(crate) user_bytes_written: AtomicU64,
    pub(crate) wal_bytes_written: AtomicU64,
    pub(crate) wal_writes: AtomicU64,
    pub(crate) wal_syncs: AtomicU64,
    pub(crate) wal_sync_micros: AtomicU64,
    pub(crate) commit_groups: AtomicU64,
    pub(crate) flush_bytes_written: AtomicU64,
    pub(crate) compaction_bytes_read: AtomicU64,
    pub(crate) compaction_bytes_written: AtomicU64,
    pub(crate) manifest_bytes_written: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) trivial_moves: AtomicU64,
    pub(crate) tombstones_dropped: AtomicU64,
    pub(crate) bloom_negatives: AtomicU64,
    pub(crate) bloom_false_positives: AtomicU64,
    pub(crate) range_skips: AtomicU64,
    pub(crate) block_reads: AtomicU64,
    pub(crate) wal_torn_tails: AtomicU64,
    pub(crate) wal_bytes_truncated: AtomicU64,
    pub(crate) manifest_torn_tails: AtomicU64,
    pub(crate) write_slowdowns: AtomicU64,
    pub(crate) write_slowdown_micros: AtomicU64,
    pub(crate) write_stops: AtomicU64,
    pub(crate) write_stop_micros: AtomicU64,
    pub(crate) write_stall_max_micros: AtomicU64,
}

impl Stats {
    #[inline]
    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn record_stall(&self, micros: u64) {
        self.write_stall_max_micros
            .fetch_max(micros, Ordering::Relaxed);
    }
}

/// A snapshot of the engine's counters. All plain numbers; see [`EngineStats::to_pairs`] for
/// a flat export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Single puts acknowledged.
    pub puts: u64,
    /// Single deletes acknowledged.
    pub deletes: u64,
    /// Write batches acknowledged.
    pub batches: u64,
    /// Point reads served.
    pub gets: u64,
    /// Scans started.
    pub scans: u64,
    /// Highest sequence number visible to readers.
    pub last_sequence: u64,
    /// Key + value bytes written by callers.
    pub user_bytes_written: u64,
    /// Bytes appended to write-ahead logs.
    pub wal_bytes_written: u64,
    /// `write` calls on the write-ahead log.
    pub wal_writes: u64,
    /// `fdatasync` calls on the write-ahead log.
    pub wal_syncs: u64,
    /// Total time spent in those `fdatasync` calls, in microseconds.
    pub wal_sync_micros: u64,
    /// Commit groups (one leader, any followers) written.
    pub commit_groups: u64,
    /// SSTable bytes written by memtable flushes.
    pub flush_bytes_written: u64,
    /// SSTable bytes read by compactions.
    pub compaction_bytes_read: u64,
    /// SSTable bytes written by compactions.
    pub compaction_bytes_written: u64,
    /// Manifest bytes written.
    pub manifest_bytes_written: u64,
    /// All bytes written to disk: WAL + flushes + compactions + manifest.
    pub disk_bytes_written: u64,
    /// `fsync`/`fdatasync` calls of any file or directory.
    pub fsyncs: u64,
    /// Memtables flushed.
    pub flushes: u64,
    /// Compactions that rewrote tables.
    pub compactions: u64,
    /// Compactions that moved a table down a level without rewriting it.
    pub trivial_moves: u64,
    /// Tombstones dropped by compaction at the bottom of the tree.
    pub tombstones_dropped: u64,
    /// Table lookups skipped because the bloom filter excluded the key.
    pub bloom_negatives: u64,
    /// Bloom filter said "maybe" but the table did not hold the key.
    pub bloom_false_positives: u64,
    /// Table lookups skipped because the key was outside the table's range.
    pub range_skips: u64,
    /// Data blocks read from disk (block cache misses included).
    pub block_reads: u64,
    /// Block cache hits.
    pub cache_hits: u64,
    /// Block cache misses.
    pub cache_misses: u64,
    /// Block cache bytes in use.
    pub cache_bytes: u64,
    /// Block cache budget.
    pub cache_capacity_bytes: u64,
    /// Torn WAL tails truncated at recovery.
    pub wal_torn_tails: u64,
    /// Bytes dropped with torn WAL tails.
    pub wal_bytes_truncated: u64,
    /// Torn manifest tails ignored at recovery.
    pub manifest_torn_tails: u64,
    /// Write groups slowed down because L0 or the flush queue fell behind.
    pub write_slowdowns: u64,
    /// Total time writers spent slowed down, in microseconds.
    pub write_slowdown_micros: u64,
    /// Write groups that had to wait for a flush or compaction.
    pub write_stops: u64,
    /// Total time writers spent stopped, in microseconds.
    pub write_stop_micros: u64,
    /// Longest single slowdown or stop, in microseconds.
    pub write_stall_max_micros: u64,
    /// Bytes in the active and immutable memtables.
    pub memtable_bytes: u64,
    /// Immutable memtables waiting to be flushed.
    pub immutable_memtables: u64,
    /// Live tables per level, L0 first.
    pub tables_per_level: [u64; NUM_LEVELS],
    /// Live table bytes per level, L0 first.
    pub bytes_per_level: [u64; NUM_LEVELS],
}

const TABLE_NAMES: [&str; NUM_LEVELS] = [
    "tables_l0",
    "tables_l1",
    "tables_l2",
    "tables_l3",
    "tables_l4",
    "tables_l5",
    "tables_l6",
];
const BYTES_NAMES: [&str; NUM_LEVELS] = [
    "bytes_l0", "bytes_l1", "bytes_l2", "bytes_l3", "bytes_l4", "bytes_l5", "bytes_l6",
];

impl EngineStats {
    /// Disk bytes written per user byte written (0 before any write).
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes_written == 0 {
            0.0
        } else {
            self.disk_bytes_written as f64 / self.user_bytes_written as f64
        }
    }

    /// Every counter as `(name, value)`, for export (metrics, JSON, the status RPC).
    /// `write_amplification_milli` is the write amplification times 1000.
    pub fn to_pairs(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![
            ("puts", self.puts),
            ("deletes", self.deletes),
            ("batches", self.batches),
            ("gets", self.gets),
            ("scans", self.scans),
            ("last_sequence", self.last_sequence),
            ("user_bytes_written", self.user_bytes_written),
            ("wal_bytes_written", self.wal_bytes_written),
            ("wal_writes", self.wal_writes),
            ("wal_syncs", self.wal_syncs),
            ("wal_sync_micros", self.wal_sync_micros),
            ("commit_groups", self.commit_groups),
            ("flush_bytes_written", self.flush_bytes_written),
            ("compaction_bytes_read", self.compaction_bytes_read),
            ("compaction_bytes_written", self.compaction_bytes_written),
            ("manifest_bytes_written", self.manifest_bytes_written),
            ("disk_bytes_written", self.disk_bytes_written),
            (
                "write_amplification_milli",
                (self.write_amplification() * 1000.0) as u64,
            ),
            ("fsyncs", self.fsyncs),
            ("flushes", self.flushes),
            ("compactions", self.compactions),
            ("trivial_moves", self.trivial_moves),
            ("tombstones_dropped", self.tombstones_dropped),
            ("bloom_negatives", self.bloom_negatives),
            ("bloom_false_positives", self.bloom_false_positives),
            ("range_skips", self.range_skips),
            ("block_reads", self.block_reads),
            ("cache_hits", self.cache_hits),
            ("cache_misses", self.cache_misses),
            ("cache_bytes", self.cache_bytes),
            ("cache_capacity_bytes", self.cache_capacity_bytes),
            ("wal_torn_tails", self.wal_torn_tails),
            ("wal_bytes_truncated", self.wal_bytes_truncated),
            ("manifest_torn_tails", self.manifest_torn_tails),
            ("write_slowdowns", self.write_slowdowns),
            ("write_slowdown_micros", self.write_slowdown_micros),
            ("write_stops", self.write_stops),
            ("write_stop_micros", self.write_stop_micros),
            ("write_stall_max_micros", self.write_stall_max_micros),
            ("memtable_bytes", self.memtable_bytes),
            ("immutable_memtables", self.immutable_memtables),
        ];
        for (name, n) in TABLE_NAMES.iter().zip(self.tables_per_level) {
            v.push((name, n));
        }
        for (name, n) in BYTES_NAMES.iter().zip(self.bytes_per_level) {
            v.push((name, n));
        }
        v
    }
}
