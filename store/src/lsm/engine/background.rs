//! Background work: flushing sealed memtables to tables, compaction, and the periodic log
//! sync of `SyncPolicy::EveryMs`, each on its own thread at a lower CPU priority.

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

impl Inner {
    pub(super) fn flush(&self) -> Result<()> {
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

    pub(super) fn open_table(&self, meta: TableMeta) -> Result<Arc<TableReader>> {
        Ok(Arc::new(TableReader::open_with(
            &table_path(&self.dir, meta.id),
            meta.id,
            Some(meta.size),
            Some(Arc::clone(&self.cache)),
            Arc::clone(&self.stats),
        )?))
    }

    /// Records `edit` durably in the manifest, then installs the resulting version.
    pub(super) fn log_and_apply(
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
    pub(super) fn flush_one(&self, mem: &Arc<Memtable>) -> Result<()> {
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

    pub(super) fn run_compaction(&self, c: Compaction) -> Result<()> {
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
}
