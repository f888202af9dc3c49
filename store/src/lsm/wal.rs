//! The write-ahead log (commit log). One file per memtable, `NNNNNN.wal`.
//!
//! Each record (framed by [`crate::lsm::log`]) holds one whole write batch, so a batch is
//! atomic across crashes: its record is either intact or dropped with the torn tail.
//! Record payload: `first_seq: u64 LE | count: u32 LE | count operations`, an operation being
//! `kind: u8 | key_len: varint | key | value_len: varint | value` (no value for deletes).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::lsm::batch::{Op, Ops};
use crate::lsm::coding::{Decoder, put_u32, put_u64};
use crate::lsm::error::{Error, Result};
use crate::lsm::log::{self, LogEnd};
use crate::lsm::options::SyncPolicy;
use crate::lsm::stats::Stats;

/// The file name of WAL `id`.
pub(crate) fn wal_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.wal"))
}

/// Appends batch records to the current log file. Only the commit leader touches it.
pub(crate) struct WalWriter {
    path: PathBuf,
    file: Arc<File>,
    /// Records not yet handed to the OS.
    buf: Vec<u8>,
    policy: SyncPolicy,
    buffer_limit: usize,
    /// Records were handed to the OS since the last `fdatasync`.
    dirty: bool,
}

impl WalWriter {
    /// Creates log file `id` in `dir` (the caller syncs the directory).
    pub(crate) fn create(
        dir: &Path,
        id: u64,
        policy: SyncPolicy,
        buffer_limit: usize,
    ) -> Result<Self> {
        let path = wal_path(dir, id);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(WalWriter {
            path,
            file: Arc::new(file),
            buf: Vec::with_capacity(buffer_limit.clamp(4096, 1 << 20)),
            policy,
            buffer_limit,
            dirty: false,
        })
    }

    /// Appends the record of one batch whose operations take sequence numbers from `first_seq`.
    pub(crate) fn append_batch(&mut self, first_seq: u64, count: u32, ops: &[u8]) {
        let start = log::begin_record(&mut self.buf);
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
        (&*self.file)
            .write_all(&self.buf)
            .map_err(|e| Error::io(&self.path, e))?;
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
            self.file
                .sync_data()
                .map_err(|e| Error::io(&self.path, e))?;
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

/// Replays log file `path`, calling `each(first_seq, op_index, op)` for every operation of
/// every intact batch. A torn tail is cut off the file (and synced) and returned as
/// `LogEnd::Torn`; damage before the tail is an error.
pub(crate) fn replay(
    path: &Path,
    mut each: impl FnMut(u64, Op<'_>) -> Result<()>,
) -> Result<LogEnd> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let end = log::read_records(path, &data, |offset, payload| {
        let corrupt =
            |reason: &str| Error::corruption(path, offset, format!("WAL record: {reason}"));
        let mut dec = Decoder::new(payload);
        let first_seq = dec.u64("batch sequence number").map_err(corrupt)?;
        let count = dec.u32("batch count").map_err(corrupt)?;
        let ops = payload.get(dec.pos()..).unwrap_or_default();
        let mut n = 0u32;
        for op in Ops::new(ops) {
            let op = op.map_err(corrupt)?;
            each(first_seq.saturating_add(u64::from(n)), op)?;
            n = n.saturating_add(1);
        }
        if n != count {
            return Err(corrupt("operation count does not match the header"));
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
    Ok(end)
}
