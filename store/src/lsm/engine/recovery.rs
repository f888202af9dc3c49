//! Opening an engine: lock, manifest, tables, log replay (a torn tail is cut, damage elsewhere
//! is a typed error), then a fresh manifest and log, and the background threads.

use super::*;

/// Opening an engine: manifest, tables, log replay, fresh manifest and log, threads.
pub(super) struct Recovery;

impl Recovery {
    pub(super) fn run(dir: PathBuf, opts: Options, lock_file: File) -> Result<Engine> {
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
            sync_lock: std::sync::Mutex::new(()),
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
pub(super) fn write_memtable(
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
pub(super) enum DbFile {
    Wal(u64),
    Table(u64),
    Manifest(u64),
    Temp,
}

impl DbFile {
    pub(super) fn id(&self) -> u64 {
        match self {
            DbFile::Wal(id) | DbFile::Table(id) | DbFile::Manifest(id) => *id,
            DbFile::Temp => 0,
        }
    }

    pub(super) fn path(&self, dir: &Path) -> PathBuf {
        match self {
            DbFile::Wal(id) => wal_path(dir, *id),
            DbFile::Table(id) => table_path(dir, *id),
            DbFile::Manifest(id) => manifest::manifest_path(dir, *id),
            DbFile::Temp => dir.join("CURRENT.tmp"),
        }
    }

    pub(super) fn parse(name: &str) -> Option<DbFile> {
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

pub(super) fn list_files(dir: &Path) -> Result<Vec<DbFile>> {
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

    #[test]
    fn file_names_parse() {
        assert_eq!(DbFile::parse("000012.wal"), Some(DbFile::Wal(12)));
        assert_eq!(DbFile::parse("000012.sst"), Some(DbFile::Table(12)));
        assert_eq!(DbFile::parse("MANIFEST-000003"), Some(DbFile::Manifest(3)));
        assert_eq!(DbFile::parse("x.sst"), None);
        assert_eq!(DbFile::parse("LOCK"), None);
    }
}
