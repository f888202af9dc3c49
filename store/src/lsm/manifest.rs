//! The manifest: a log of [`VersionEdit`]s recording which tables are live, on which level,
//! and which write-ahead logs are already flushed. `CURRENT` names the manifest in use.
//!
//! Crash safety: a flush or compaction first writes and syncs its new tables, then appends
//! and syncs one edit record; only then are the WAL or input tables it replaces deleted. A
//! crash before the edit is durable leaves the old state (plus orphan files that recovery
//! deletes); after, the new one. A new manifest is written whole and synced before `CURRENT`
//! is replaced by rename, so `CURRENT` always names a complete manifest.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::lsm::coding::{DecodeResult, Decoder, put_varint};
use crate::lsm::error::{Error, Result};
use crate::lsm::log::{self, LogEnd};
use crate::lsm::stats::Stats;
use crate::lsm::version::NUM_LEVELS;

/// Manifest format version, recorded in the first edit of every manifest.
pub(crate) const MANIFEST_FORMAT: u64 = 1;

const TAG_FORMAT: u8 = 1;
const TAG_FLUSHED_WAL: u8 = 2;
const TAG_NEXT_FILE: u8 = 3;
const TAG_LAST_SEQ: u8 = 4;
const TAG_DELETED: u8 = 5;
const TAG_ADDED: u8 = 6;

/// One atomic change to the set of live tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VersionEdit {
    /// Manifest format (first edit of a manifest only).
    pub(crate) format: Option<u64>,
    /// Every WAL with an id up to this one is flushed to tables.
    pub(crate) flushed_wal: Option<u64>,
    /// File ids below this one are taken.
    pub(crate) next_file: Option<u64>,
    /// Highest sequence number in any table.
    pub(crate) last_seq: Option<u64>,
    /// `(level, table id)` removed.
    pub(crate) deleted: Vec<(u8, u64)>,
    /// `(level, table id, file size)` added.
    pub(crate) added: Vec<(u8, u64, u64)>,
}

impl VersionEdit {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        let mut field = |tag: u8, v: Option<u64>| {
            if let Some(v) = v {
                b.push(tag);
                put_varint(&mut b, v);
            }
        };
        field(TAG_FORMAT, self.format);
        field(TAG_FLUSHED_WAL, self.flushed_wal);
        field(TAG_NEXT_FILE, self.next_file);
        field(TAG_LAST_SEQ, self.last_seq);
        for &(level, id) in &self.deleted {
            b.push(TAG_DELETED);
            b.push(level);
            put_varint(&mut b, id);
        }
        for &(level, id, size) in &self.added {
            b.push(TAG_ADDED);
            b.push(level);
            put_varint(&mut b, id);
            put_varint(&mut b, size);
        }
        b
    }

    pub(crate) fn decode(payload: &[u8]) -> DecodeResult<VersionEdit> {
        let mut d = Decoder::new(payload);
        let mut e = VersionEdit::default();
        while !d.is_empty() {
            match d.u8("edit tag")? {
                TAG_FORMAT => e.format = Some(d.varint("format version")?),
                TAG_FLUSHED_WAL => e.flushed_wal = Some(d.varint("flushed WAL id")?),
                TAG_NEXT_FILE => e.next_file = Some(d.varint("next file id")?),
                TAG_LAST_SEQ => e.last_seq = Some(d.varint("last sequence")?),
                TAG_DELETED => {
                    let level = d.u8("deleted table level")?;
                    let id = d.varint("deleted table id")?;
                    e.deleted.push((level, id));
                }
                TAG_ADDED => {
                    let level = d.u8("added table level")?;
                    let id = d.varint("added table id")?;
                    let size = d.varint("added table size")?;
                    e.added.push((level, id, size));
                }
                _ => return Err("unknown edit tag"),
            }
        }
        Ok(e)
    }
}

/// The state a manifest describes.
#[derive(Debug, Clone, Default)]
pub(crate) struct ManifestState {
    /// Per level: table id -> file size.
    pub(crate) levels: [BTreeMap<u64, u64>; NUM_LEVELS],
    pub(crate) flushed_wal: u64,
    pub(crate) next_file: u64,
    pub(crate) last_seq: u64,
}

impl ManifestState {
    pub(crate) fn apply(&mut self, e: &VersionEdit) -> DecodeResult<()> {
        if let Some(f) = e.format
            && f != MANIFEST_FORMAT
        {
            return Err("unsupported manifest format version");
        }
        if let Some(w) = e.flushed_wal {
            self.flushed_wal = self.flushed_wal.max(w);
        }
        if let Some(n) = e.next_file {
            self.next_file = self.next_file.max(n);
        }
        if let Some(s) = e.last_seq {
            self.last_seq = self.last_seq.max(s);
        }
        for &(level, id) in &e.deleted {
            let l = self
                .levels
                .get_mut(level as usize)
                .ok_or("deleted table on a level that does not exist")?;
            l.remove(&id)
                .ok_or("edit deletes a table that is not live")?;
        }
        for &(level, id, size) in &e.added {
            if self.levels.iter().any(|l| l.contains_key(&id)) {
                return Err("edit adds a table that is already live");
            }
            self.levels
                .get_mut(level as usize)
                .ok_or("added table on a level that does not exist")?
                .insert(id, size);
        }
        Ok(())
    }

    /// An edit that recreates this state from nothing (the first record of a new manifest).
    pub(crate) fn snapshot(&self) -> VersionEdit {
        VersionEdit {
            format: Some(MANIFEST_FORMAT),
            flushed_wal: Some(self.flushed_wal),
            next_file: Some(self.next_file),
            last_seq: Some(self.last_seq),
            deleted: Vec::new(),
            added: self
                .levels
                .iter()
                .enumerate()
                .flat_map(|(level, l)| l.iter().map(move |(&id, &size)| (level as u8, id, size)))
                .collect(),
        }
    }
}

/// The file name of manifest `id`.
pub(crate) fn manifest_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("MANIFEST-{id:06}"))
}

/// `fsync`s a directory so that file creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path, stats: &Stats) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io(dir, e))?;
    d.sync_all().map_err(|e| Error::io(dir, e))?;
    stats.add(&stats.fsyncs, 1);
    Ok(())
}

/// The manifest being appended to.
pub(crate) struct Manifest {
    pub(crate) id: u64,
    path: PathBuf,
    file: File,
    pub(crate) bytes: u64,
}

impl Manifest {
    /// Writes a new manifest `id` holding `state`, syncs it, and points `CURRENT` at it.
    pub(crate) fn create(
        dir: &Path,
        id: u64,
        state: &ManifestState,
        stats: &Stats,
    ) -> Result<Manifest> {
        let path = manifest_path(dir, id);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut rec = Vec::new();
        log::append_record(&mut rec, &state.snapshot().encode());
        file.write_all(&rec).map_err(|e| Error::io(&path, e))?;
        file.sync_data().map_err(|e| Error::io(&path, e))?;
        stats.add(&stats.fsyncs, 1);
        stats.add(&stats.manifest_bytes_written, rec.len() as u64);

        let tmp = dir.join("CURRENT.tmp");
        let name = format!("MANIFEST-{id:06}\n");
        {
            let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            f.write_all(name.as_bytes())
                .map_err(|e| Error::io(&tmp, e))?;
            f.sync_data().map_err(|e| Error::io(&tmp, e))?;
            stats.add(&stats.fsyncs, 1);
        }
        let current = dir.join("CURRENT");
        std::fs::rename(&tmp, &current).map_err(|e| Error::io(&current, e))?;
        sync_dir(dir, stats)?;
        Ok(Manifest {
            id,
            path,
            file,
            bytes: rec.len() as u64,
        })
    }

    /// Appends `edit` and syncs it: when this returns, the edit survives a crash.
    pub(crate) fn append(&mut self, edit: &VersionEdit, stats: &Stats) -> Result<()> {
        let mut rec = Vec::new();
        log::append_record(&mut rec, &edit.encode());
        self.file
            .write_all(&rec)
            .map_err(|e| Error::io(&self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| Error::io(&self.path, e))?;
        stats.add(&stats.fsyncs, 1);
        stats.add(&stats.manifest_bytes_written, rec.len() as u64);
        self.bytes += rec.len() as u64;
        Ok(())
    }
}

/// Reads `CURRENT` and the manifest it names. `Ok(None)` if there is no `CURRENT` (a new
/// database). A torn final record is dropped and reported (warning + statistic); any other
/// damage is an error.
pub(crate) fn recover(dir: &Path, stats: &Stats) -> Result<Option<(u64, ManifestState)>> {
    let current = dir.join("CURRENT");
    let name = match std::fs::read(&current) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&current, e)),
    };
    let id = std::str::from_utf8(&name)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|s| s.strip_prefix("MANIFEST-"))
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Error::corruption(&current, 0, "CURRENT does not name a manifest"))?;
    let path = manifest_path(dir, id);
    let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let mut state = ManifestState::default();
    let mut records = 0u64;
    let end = log::read_records(&path, &data, |offset, payload| {
        let edit = VersionEdit::decode(payload)
            .map_err(|r| Error::corruption(&path, offset, format!("manifest edit: {r}")))?;
        if records == 0 && edit.format.is_none() {
            return Err(Error::corruption(
                &path,
                offset,
                "manifest does not start with a format record",
            ));
        }
        state
            .apply(&edit)
            .map_err(|r| Error::corruption(&path, offset, format!("manifest edit: {r}")))?;
        records += 1;
        Ok(())
    })?;
    if records == 0 {
        return Err(Error::corruption(
            &path,
            0,
            "manifest holds no complete record",
        ));
    }
    if let LogEnd::Torn { offset, dropped } = end {
        stats.add(&stats.manifest_torn_tails, 1);
        tracing::warn!(
            file = %path.display(),
            offset,
            dropped,
            "manifest ends in a torn record; ignoring it (the change it described never completed)"
        );
    }
    Ok(Some((id, state)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_round_trip() {
        let e = VersionEdit {
            format: Some(1),
            flushed_wal: Some(7),
            next_file: Some(12),
            last_seq: Some(99),
            deleted: vec![(0, 3), (1, 4)],
            added: vec![(1, 10, 4096), (2, 11, 1 << 40)],
        };
        assert_eq!(VersionEdit::decode(&e.encode()), Ok(e));
        assert!(VersionEdit::decode(&[42]).is_err());
        assert!(VersionEdit::decode(&[TAG_ADDED, 1]).is_err());
    }
}
