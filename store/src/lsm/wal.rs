//! The write-ahead log (commit log). One file per memtable, `NNNNNN.wal`.
//!
//! Records are framed by [`crate::lsm::log`]. The first record of a log is a header naming
//! the log it follows, so recovery can tell when the manifest is behind the logs (a flushed
//! log deleted, its manifest edit lost). Every other record holds one whole write batch, so
//! a batch is atomic across crashes: its record is either intact or dropped with the torn
//! tail.
//!
//! Record payloads:
//! - header: `type = 2: u8 | format: u8 = 1 | previous log id: u64 LE`;
//! - batch: `type = 1: u8 | first_seq: u64 LE | count: u32 LE | count operations`, an
//!   operation being `kind: u8 | key_len: varint | key | value_len: varint | value` (no value
//!   for deletes).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::lsm::batch::{Op, Ops};
use crate::lsm::coding::{Decoder, put_u32, put_u64};
use crate::lsm::error::{Error, Result};
use crate::lsm::log::{self, LogEnd};
use crate::lsm::options::SyncPolicy;
use crate::lsm::stats::Stats;

/// Payload type of a batch record.
const RECORD_BATCH: u8 = 1;
/// Payload type of the header record.
const RECORD_HEADER: u8 = 2;
/// WAL format version, in the header record.
const WAL_FORMAT: u8 = 1;

/// The file name of WAL `id`.
pub(crate) fn wal_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.wal"))
}

/// Appends batch records to the current log file. Only the commit leader touches it.
pub(crate) struct WalWriter {
    path: PathBuf,
    file: Arc<File>,
    /// Where the next record goes (the file itself may be preallocated beyond it).
    offset: u64,
    /// Records not yet handed to the OS.
    buf: Vec<u8>,
    policy: SyncPolicy,
    buffer_limit: usize,
    /// Records were handed to the OS since the last `fdatasync`.
    dirty: bool,
}

impl WalWriter {
    /// Creates log file `id`, which follows log `prev`, in `dir`, and writes its header (the
    /// caller syncs the directory).
    pub(crate) fn create(
        dir: &Path,
        id: u64,
        prev: u64,
        policy: SyncPolicy,
        buffer_limit: usize,
        prealloc: u64,
        stats: &Stats,
    ) -> Result<Self> {
        let path = wal_path(dir, id);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // Size the file up front (sparse, zero-filled): appends then leave the file size
        // alone, so an `fdatasync` need not write the inode. Recovery reads a zero tail as
        // unwritten space.
        if prealloc > 0 {
            file.set_len(prealloc).map_err(|e| Error::io(&path, e))?;
            if policy != SyncPolicy::Never {
                file.sync_all().map_err(|e| Error::io(&path, e))?;
                stats.add(&stats.fsyncs, 1);
            }
        }
        let mut w = WalWriter {
            path,
            file: Arc::new(file),
            offset: 0,
            buf: Vec::with_capacity(buffer_limit.clamp(4096, 1 << 20)),
            policy,
            buffer_limit,
            dirty: false,
        };
        let mut header = vec![RECORD_HEADER, WAL_FORMAT];
        put_u64(&mut header, prev);
        log::append_record(&mut w.buf, &header);
        w.write_out(stats)?;
        Ok(w)
    }

    /// Appends the record of one batch whose operations take sequence numbers from `first_seq`.
    pub(crate) fn append_batch(&mut self, first_seq: u64, count: u32, ops: &[u8]) {
        let start = log::begin_record(&mut self.buf);
        self.buf.push(RECORD_BATCH);
        put_u64(&mut self.buf, first_seq);
        put_u32(&mut self.buf, count);
        self.buf.extend_from_slice(ops);
        log::finish_record(&mut self.buf, start);
    }

    /// Makes the records appended so far as durable as the policy promises before an ack:
    /// `Always` writes and syncs, `EveryMs` writes, `Never` writes once the buffer is full.
    pub(crate) fn commit(&mut self, stats: &Stats) -> Result<()> {
        match self.policy {
            SyncPolicy::Always => {
                self.write_out(stats)?;
                self.sync(stats)
            }
            SyncPolicy::EveryMs(_) => self.write_out(stats),
            SyncPolicy::Never => {
                if self.buf.len() >= self.buffer_limit {
                    self.write_out(stats)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Hands buffered records to the OS.
    pub(crate) fn write_out(&mut self, stats: &Stats) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.buf, self.offset)
            .map_err(|e| Error::io(&self.path, e))?;
        self.offset += self.buf.len() as u64;
        stats.add(&stats.wal_bytes_written, self.buf.len() as u64);
        stats.add(&stats.wal_writes, 1);
        self.buf.clear();
        self.dirty = true;
        Ok(())
    }

    /// Writes out and `fdatasync`s the log.
    pub(crate) fn sync(&mut self, stats: &Stats) -> Result<()> {
        self.write_out(stats)?;
        if self.dirty {
            let start = std::time::Instant::now();
            self.file
                .sync_data()
                .map_err(|e| Error::io(&self.path, e))?;
            stats.add(&stats.wal_sync_micros, start.elapsed().as_micros() as u64);
            stats.add(&stats.fsyncs, 1);
            stats.add(&stats.wal_syncs, 1);
            self.dirty = false;
        }
        Ok(())
    }

    /// The open file, for the periodic sync thread.
    pub(crate) fn file(&self) -> (Arc<File>, PathBuf) {
        (Arc::clone(&self.file), self.path.clone())
    }
}

/// What replaying a log found.
pub(crate) struct Replayed {
    /// How the log ended.
    pub(crate) end: LogEnd,
    /// The log this one follows, from its header (`None` if the header did not survive).
    pub(crate) prev: Option<u64>,
}

/// Replays log file `path`, calling `each(seq, op)` for every operation of every intact
/// batch. A torn tail is cut off the file (and synced) and reported in the result; damage
/// before the tail is an error.
pub(crate) fn replay(
    path: &Path,
    mut each: impl FnMut(u64, Op<'_>) -> Result<()>,
) -> Result<Replayed> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut prev = None;
    let mut first = true;
    let end = log::read_records(path, &data, |offset, payload| {
        let corrupt =
            |reason: &str| Error::corruption(path, offset, format!("WAL record: {reason}"));
        let mut dec = Decoder::new(payload);
        let kind = dec.u8("record type").map_err(corrupt)?;
        let is_first = std::mem::replace(&mut first, false);
        match kind {
            RECORD_HEADER if is_first => {
                if dec.u8("format").map_err(corrupt)? != WAL_FORMAT {
                    return Err(corrupt("unsupported WAL format version"));
                }
                prev = Some(dec.u64("previous log id").map_err(corrupt)?);
                return Ok(());
            }
            RECORD_BATCH => {}
            _ => return Err(corrupt("unknown or misplaced record type")),
        }
        let first_seq = dec.u64("batch sequence number").map_err(corrupt)?;
        let count = dec.u32("batch count").map_err(corrupt)?;
        let ops = payload.get(dec.pos()..).unwrap_or_default();
        // Decode the whole batch before applying any of it.
        let decoded: Vec<Op<'_>> = Ops::new(ops)
            .collect::<std::result::Result<_, _>>()
            .map_err(corrupt)?;
        if decoded.len() as u64 != u64::from(count) {
            return Err(corrupt("operation count does not match the header"));
        }
        for (n, op) in decoded.into_iter().enumerate() {
            each(first_seq.saturating_add(n as u64), op)?;
        }
        Ok(())
    })?;
    if let LogEnd::Torn { offset, .. } = end {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        f.set_len(offset).map_err(|e| Error::io(path, e))?;
        f.sync_all().map_err(|e| Error::io(path, e))?;
    }
    Ok(Replayed { end, prev })
}
