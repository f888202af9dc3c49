//! Apply now, sync later: [`Engine::apply_batch`] and [`Engine::sync_through`].
//!
//! A caller that must hold a lock while it writes (the replica's per-key locks) should not
//! hold it across an `fdatasync`. `apply_batch` appends the batch to the log (handed to the
//! OS, not synced), inserts it into the memtable and publishes it, then returns its last
//! sequence number; the caller releases its locks and calls `sync_through(seq)`, which
//! returns once that sequence number is as durable as the [`SyncPolicy`] promises an
//! acknowledged write. Concurrent `sync_through` calls share one `fdatasync` (whoever holds
//! the sync lock syncs everything written so far; the others find their write covered).
//!
//! Unlike [`Engine::write_batch`], readers may see such a batch before it is durable: a crash
//! in between loses it as if it had never been written. Callers acknowledge it only after
//! `sync_through` (docs/storage-format.md, "Deferred durability").

use std::sync::atomic::Ordering;

use super::{Engine, Inner};
use crate::lsm::batch::WriteBatch;
use crate::lsm::error::{Error, Result};
use crate::lsm::key;
use crate::lsm::options::SyncPolicy;

impl Engine {
    /// Applies `batch` atomically and makes it visible, without waiting for durability;
    /// returns its last sequence number. Acknowledge it only after
    /// [`sync_through`](Engine::sync_through) of that number.
    pub fn apply_batch(&self, batch: WriteBatch) -> Result<u64> {
        let inner = &*self.inner;
        for op in batch.ops() {
            let op = op.map_err(|r| Error::corruption("<write batch>", 0, r))?;
            inner.check_key(op.key)?;
            if op.kind == key::KIND_PUT {
                inner.check_value(op.value)?;
            }
        }
        if batch.is_empty() {
            return Ok(inner.visible_seq.load(Ordering::Acquire));
        }
        inner.check_writable()?;
        let seq = inner.apply_unsynced(&batch)?;
        inner.stats.add(&inner.stats.batches, 1);
        Ok(seq)
    }

    /// Returns once every write up to sequence number `seq` is as durable as the policy
    /// promises before an acknowledgement (under `Always`: fsynced).
    pub fn sync_through(&self, seq: u64) -> Result<()> {
        let inner = &*self.inner;
        if inner.opts.sync != SyncPolicy::Always || inner.durable_seq.load(Ordering::Acquire) >= seq
        {
            return Ok(());
        }
        // Nothing is written under this lock, so a poisoned one guards nothing broken.
        let _syncing = inner
            .sync_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.durable_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        inner.check_writable()?;
        // Capture the log and how far it reaches, then sync outside the writer lock so
        // writers keep appending meanwhile. A log sealed before this point was synced when
        // it was sealed, so syncing the current one covers everything up to `upto`.
        let (file, path, upto) = {
            let mut w = inner.writer.lock();
            if let Err(e) = w.wal.write_out(&inner.stats) {
                inner.poison(&e);
                return Err(e);
            }
            let (file, path) = w.wal.file();
            (file, path, w.last_seq)
        };
        let start = std::time::Instant::now();
        if let Err(e) = file.sync_data() {
            let e = Error::io(path, e);
            inner.poison(&e);
            return Err(e);
        }
        inner.stats.add(
            &inner.stats.wal_sync_micros,
            start.elapsed().as_micros() as u64,
        );
        inner.stats.add(&inner.stats.fsyncs, 1);
        inner.stats.add(&inner.stats.wal_syncs, 1);
        inner.durable_seq.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }
}

impl Inner {
    /// Log append (handed to the OS, not synced) and memtable insert of one batch, under the
    /// writer lock, like one group of the ordinary write path.
    fn apply_unsynced(&self, batch: &WriteBatch) -> Result<u64> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        self.make_room(&mut w, batch.data.len())?;
        let first = w.last_seq + 1;
        let last = w.last_seq + u64::from(batch.count);
        if last > key::MAX_SEQ {
            return Err(Error::InvalidOptions {
                reason: "sequence numbers exhausted".into(),
            });
        }
        w.wal.append_batch(first, batch.count, &batch.data);
        // Under `Always` the record goes to the OS with the sync that acknowledges it (one
        // `write` for every batch applied meanwhile); `EveryMs` hands it over now for the
        // periodic sync; `Never` once the buffer is full, as the ordinary path does.
        let hand_over = match self.opts.sync {
            SyncPolicy::Always => Ok(()),
            SyncPolicy::EveryMs(_) | SyncPolicy::Never => w.wal.commit(&self.stats),
        };
        if let Err(e) = hand_over {
            self.poison(&e);
            return Err(e);
        }
        self.insert_and_publish(&mut w, &[batch], last, batch.user_bytes)?;
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use crate::lsm::{Engine, Options, SyncPolicy, WriteBatch};

    fn batch(k: &[u8], v: &[u8]) -> WriteBatch {
        let mut b = WriteBatch::new();
        b.put(k, v);
        b
    }

    #[test]
    fn applied_batches_are_visible_at_once_and_one_sync_covers_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            sync: SyncPolicy::Always,
            ..Options::default()
        };
        let engine = Engine::open(dir.path(), opts).unwrap();
        let before = engine.stats().fsyncs;
        let s1 = engine.apply_batch(batch(b"a", b"1")).unwrap();
        let s2 = engine.apply_batch(batch(b"b", b"2")).unwrap();
        assert!(s2 > s1);
        assert_eq!(engine.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(engine.get(b"b").unwrap(), Some(b"2".to_vec()));
        engine.sync_through(s2).unwrap();
        engine.sync_through(s1).unwrap();
        assert_eq!(engine.stats().fsyncs, before + 1, "one fsync covers both");
        engine.close().unwrap();
        let engine = Engine::open(dir.path(), Options::default()).unwrap();
        assert_eq!(engine.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(engine.get(b"b").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn an_ordinary_write_makes_earlier_applied_batches_durable() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), Options::default()).unwrap();
        let s1 = engine.apply_batch(batch(b"a", b"1")).unwrap();
        engine.put(b"b", b"2").unwrap();
        let before = engine.stats().fsyncs;
        engine.sync_through(s1).unwrap();
        assert_eq!(
            engine.stats().fsyncs,
            before,
            "already covered by the put's sync"
        );
    }
}
