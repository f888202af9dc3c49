//! Engine options. Every limit is a named, documented field with a default.

use crate::lsm::error::{Error, Result};

/// Default largest key, in bytes.
pub const DEFAULT_MAX_KEY_BYTES: usize = 1024;
/// Default largest value, in bytes.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 10 * 1024;

/// When the write-ahead log reaches stable storage.
///
/// What each policy keeps after a crash (see also `docs/storage-format.md`):
///
/// | policy      | process crash (SIGKILL)                | OS crash / power loss               |
/// |-------------|----------------------------------------|-------------------------------------|
/// | `Always`    | every acknowledged write               | every acknowledged write            |
/// | `EveryMs(n)`| every acknowledged write               | all but the last ~`n` ms of writes  |
/// | `Never`     | all but the last `wal_buffer_bytes`    | whatever the OS had written back    |
///
/// In every case recovery yields a prefix of the acknowledged history: a batch is either
/// wholly present or wholly absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` the log before a write is acknowledged. Concurrent writers share one
    /// `fdatasync` (group commit).
    Always,
    /// Hand every write to the OS before acknowledging it; a background thread calls
    /// `fdatasync` every `n` milliseconds.
    EveryMs(u64),
    /// Buffer log records in user space (`Options::wal_buffer_bytes`) and never call
    /// `fdatasync` on the log. Tables written by flushes and compactions are still synced.
    Never,
}

/// Block compression for SSTable data blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Store blocks as they are.
    None,
    /// LZ4 block compression (fast; the default).
    Lz4,
    /// Zstandard at the given level (1..=22; 3 is a good start).
    Zstd(i32),
}

/// Engine options. Build with struct-update syntax: `Options { sync: SyncPolicy::Never,
/// ..Options::default() }`.
#[derive(Debug, Clone)]
pub struct Options {
    /// When the log is synced; default `Always`.
    pub sync: SyncPolicy,
    /// Largest key accepted, in bytes; default 1 KiB.
    pub max_key_bytes: usize,
    /// Largest value accepted, in bytes; default 10 KiB.
    pub max_value_bytes: usize,
    /// Memtable byte budget; when reached it becomes immutable and is flushed; default 64 MiB.
    pub memtable_bytes: usize,
    /// Immutable memtables allowed to wait for the flush thread before writers stop; default 4.
    pub max_immutable_memtables: usize,
    /// Target uncompressed size of an SSTable data block; default 4 KiB.
    pub block_bytes: usize,
    /// Keys between restart points in a block; default 16.
    pub block_restart_interval: usize,
    /// Bloom filter bits per key (0 disables filters); default 10.
    pub bloom_bits_per_key: usize,
    /// Data block compression; default LZ4.
    pub compression: Compression,
    /// Levels, from L0, whose tables are written without compression regardless of
    /// `compression`; default 2 (L0 and L1). These small, hot levels are read most and
    /// rewritten most, so they trade some disk space for no decompression on reads and no
    /// compression on flushes.
    pub uncompressed_levels: usize,
    /// Block cache budget in bytes (decompressed blocks); default 64 MiB.
    pub block_cache_bytes: usize,
    /// Create the data directory if it is missing; default true.
    pub create_if_missing: bool,
    /// Size at which compaction starts a new output table; default 64 MiB.
    pub target_table_bytes: u64,
    /// L0 tables that trigger an L0 -> L1 compaction; default 4.
    pub l0_compaction_trigger: usize,
    /// L0 tables at which writes are slowed down (rate halves with each further table);
    /// default 12.
    pub l0_slowdown_trigger: usize,
    /// L0 tables at which writes wait for compaction; default 24.
    pub l0_stop_trigger: usize,
    /// Byte budget of L1; each deeper level gets `level_multiplier` times more; default 256 MiB.
    pub level1_bytes: u64,
    /// Size ratio between adjacent levels; default 10.
    pub level_multiplier: u64,
    /// Write rate allowed when L0 first reaches `l0_slowdown_trigger`, in bytes per second;
    /// default 64 MiB/s.
    pub slowdown_bytes_per_sec: u64,
    /// User-space log buffer under `SyncPolicy::Never`; default 256 KiB.
    pub wal_buffer_bytes: usize,
    /// Run background compactions (flushes always run); default true. Tests turn it off to
    /// shape the tree by hand with `compact_all`.
    pub background_compaction: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: SyncPolicy::Always,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            memtable_bytes: 64 << 20,
            max_immutable_memtables: 4,
            block_bytes: 4096,
            block_restart_interval: 16,
            bloom_bits_per_key: 10,
            compression: Compression::Lz4,
            uncompressed_levels: 2,
            block_cache_bytes: 64 << 20,
            create_if_missing: true,
            target_table_bytes: 64 << 20,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 12,
            l0_stop_trigger: 24,
            level1_bytes: 256 << 20,
            level_multiplier: 10,
            slowdown_bytes_per_sec: 64 << 20,
            wal_buffer_bytes: 256 << 10,
            background_compaction: true,
        }
    }
}

/// Keys and values longer than this cannot be encoded in the formats (32-bit lengths) even
/// if the options allow them.
pub(crate) const HARD_MAX_ENTRY_BYTES: usize = 1 << 30;

impl Options {
    /// Bytes to preallocate for each write-ahead log: about what one memtable's records
    /// take, rounded up to 64 KiB, at most 64 MiB.
    pub(crate) fn wal_prealloc_bytes(&self) -> u64 {
        (self.memtable_bytes as u64)
            .min(64 << 20)
            .div_ceil(64 << 10)
            * (64 << 10)
    }

    /// The compression for tables written to `level`.
    pub(crate) fn compression_for(&self, level: usize) -> Compression {
        if level < self.uncompressed_levels {
            Compression::None
        } else {
            self.compression
        }
    }

    /// Checks that the options make sense together.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidOptions {
                reason: reason.to_string(),
            })
        };
        if self.max_key_bytes == 0 || self.max_key_bytes > HARD_MAX_ENTRY_BYTES {
            return bad("max_key_bytes must be between 1 and 2^30");
        }
        if self.max_value_bytes > HARD_MAX_ENTRY_BYTES {
            return bad("max_value_bytes must be at most 2^30");
        }
        if self.memtable_bytes < 1024 {
            return bad("memtable_bytes must be at least 1024");
        }
        if self.block_bytes < 64 || self.block_bytes > (16 << 20) {
            return bad("block_bytes must be between 64 and 16 MiB");
        }
        if self.block_restart_interval == 0 {
            return bad("block_restart_interval must be at least 1");
        }
        if self.bloom_bits_per_key > 64 {
            return bad("bloom_bits_per_key must be at most 64");
        }
        if self.max_immutable_memtables == 0 {
            return bad("max_immutable_memtables must be at least 1");
        }
        if self.l0_compaction_trigger == 0
            || self.l0_slowdown_trigger < self.l0_compaction_trigger
            || self.l0_stop_trigger <= self.l0_slowdown_trigger
        {
            return bad("need 1 <= l0_compaction_trigger <= l0_slowdown_trigger < l0_stop_trigger");
        }
        if self.level_multiplier < 2 || self.level1_bytes == 0 || self.target_table_bytes == 0 {
            return bad("need level_multiplier >= 2, level1_bytes > 0, target_table_bytes > 0");
        }
        if let SyncPolicy::EveryMs(0) = self.sync {
            return bad("SyncPolicy::EveryMs needs a period of at least 1 ms");
        }
        if let Compression::Zstd(level) = self.compression
            && !(1..=22).contains(&level)
        {
            return bad("Compression::Zstd level must be 1..=22");
        }
        if self.slowdown_bytes_per_sec == 0 {
            return bad("slowdown_bytes_per_sec must be positive");
        }
        Ok(())
    }
}
