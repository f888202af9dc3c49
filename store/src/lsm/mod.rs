//! `store::lsm`: the storage engine every ringkv node keeps its data in.
//!
//! A synchronous, thread-safe log-structured merge tree. No tokio, no network: the replica
//! layer calls it from `spawn_blocking` or a dedicated thread.
//!
//! Module map (one idea per file, named as the papers name it):
//! - [`engine`]: [`Engine`], the public API; the group-commit write path and the read path.
//! - `options`: [`Options`], [`SyncPolicy`], [`Compression`].
//! - `error`: [`Error`], the typed errors.
//! - `batch`: [`WriteBatch`], an atomic group of puts and deletes.
//! - `log`: the checksummed record framing shared by the WAL and the manifest.
//! - `wal`: the write-ahead log (commit log) writer and its recovery.
//! - `memtable`: the in-memory ordered table (a lock-free skiplist) with a byte budget.
//! - `sstable`: sorted string tables: blocks, builder, reader, footer.
//! - `bloom`: the per-table bloom filter (cache-line blocked).
//! - `cache`: the sharded CLOCK block cache.
//! - `iter`: merging iterators and [`Scan`].
//! - `manifest`: the log of version edits that records the live tables.
//! - `version`: the set of live tables per level, and the read view (`SuperVersion`).
//! - `compaction`: leveled compaction: picking and merging.
//! - `stats`: counters, exported as [`EngineStats`].
//! - `coding`, `key`: byte-level encodings shared by the formats above.
//!
//! The on-disk formats are specified byte by byte in `docs/storage-format.md`.

// Everything below decodes bytes read from disk: an index out of range must be a typed
// `Corruption` error, never a panic.
#![deny(clippy::indexing_slicing)]

mod batch;
mod bloom;
mod cache;
mod coding;
mod compaction;
pub mod engine;
mod error;
mod iter;
mod key;
mod log;
mod manifest;
mod memtable;
mod options;
mod sstable;
mod stats;
mod version;
mod wal;

pub use batch::WriteBatch;
pub use engine::Engine;
pub use error::{Error, Result};
pub use iter::Scan;
pub use options::{Compression, Options, SyncPolicy};
pub use stats::EngineStats;

/// Internals exposed for the micro-benchmarks in `benches/` only. Not a stable API.
#[doc(hidden)]
pub mod bench_internals {
    pub use super::bloom::{Bloom, BloomBuilder, hash_key};
    pub use super::memtable::Memtable;
    pub use super::sstable::block::{Block, BlockBuilder};
    pub use super::sstable::{TableBuilder, TableReader};
}
