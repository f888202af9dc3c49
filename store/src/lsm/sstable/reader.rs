//! Reads a table: the footer, index and filter are loaded at open and pinned in memory; data
//! blocks are read with `pread` through the block cache.

use std::cmp::Ordering;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use crate::lsm::bloom::{Bloom, hash_key};
use crate::lsm::cache::BlockCache;
use crate::lsm::coding::{u32_at, varint_at};
use crate::lsm::error::{Error, Result};
use crate::lsm::iter::InternalIterator;
use crate::lsm::key::{self, KIND_PUT};
use crate::lsm::memtable::Lookup;
use crate::lsm::sstable::block::{Block, BlockIter};
use crate::lsm::sstable::{
    BLOCK_TRAILER_LEN, BlockHandle, COMPRESSION_NONE, FOOTER_LEN, Footer, MAX_BLOCK_BYTES, Props,
    decompress,
};
use crate::lsm::stats::Stats;

/// The in-memory index: the last internal key of every data block, and where the block is.
/// `prefixes` holds the first 8 bytes of each key's user key (big-endian, zero-padded) so the
/// binary search touches one dense array and compares whole keys only on a prefix tie.
#[derive(Debug, Default)]
struct Index {
    keys: Vec<u8>,
    ends: Vec<u32>,
    prefixes: Vec<u64>,
    handles: Vec<BlockHandle>,
}

/// The first 8 bytes of `user`, big-endian, zero-padded: ordering these is consistent with
/// ordering the keys (a strictly smaller prefix means a strictly smaller key).
#[inline]
fn prefix_of(user: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = user.len().min(8);
    if let (Some(dst), Some(src)) = (b.get_mut(..n), user.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_be_bytes(b)
}

impl Index {
    #[inline]
    fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0) as usize
        };
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        self.keys.get(start..end).unwrap_or_default()
    }

    /// The first block whose last key is >= `(user, trailer)` (== `len()` if none).
    #[inline]
    fn find(&self, user: &[u8], trailer: u64) -> usize {
        let target = prefix_of(user);
        let (mut lo, mut hi) = (0usize, self.handles.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let p = self.prefixes.get(mid).copied().unwrap_or(u64::MAX);
            let less = if p != target {
                p < target
            } else {
                key::cmp_with(self.key(mid), user, trailer) == Ordering::Less
            };
            if less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn len(&self) -> usize {
        self.handles.len()
    }
}

/// An open table.
pub struct TableReader {
    pub(crate) id: u64,
    path: PathBuf,
    file: File,
    pub(crate) size: u64,
    index: Index,
    bloom: Bloom,
    pub(crate) props: Props,
    cache: Option<Arc<BlockCache>>,
    stats: Arc<Stats>,
    obsolete: AtomicBool,
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader")
            .field("id", &self.id)
            .field("size", &self.size)
            .field("entries", &self.props.entries)
            .finish()
    }
}

impl TableReader {
    /// Opens a table file on its own (no block cache); for tools and benchmarks.
    pub fn open(path: &Path, id: u64) -> Result<Self> {
        Self::open_with(path, id, None, None, Arc::new(Stats::default()))
    }

    /// Opens table `id` at `path`. `expected_size` (from the manifest) is checked against the
    /// file, which catches truncation before any read.
    pub(crate) fn open_with(
        path: &Path,
        id: u64,
        expected_size: Option<u64>,
        cache: Option<Arc<BlockCache>>,
        stats: Arc<Stats>,
    ) -> Result<Self> {
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && expected_size.is_some() {
                Error::corruption(path, 0, "a table the manifest lists is missing")
            } else {
                Error::io(path, e)
            }
        })?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if let Some(expected) = expected_size
            && expected != size
        {
            return Err(Error::corruption(
                path,
                size,
                format!(
                    "table file is {size} bytes but the manifest recorded {expected} (truncated or replaced)"
                ),
            ));
        }
        let footer_at = size
            .checked_sub(FOOTER_LEN as u64)
            .ok_or_else(|| Error::corruption(path, 0, "file shorter than a table footer"))?;
        let mut fbuf = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut fbuf, footer_at)
            .map_err(|e| Error::io(path, e))?;
        let footer = Footer::decode(&fbuf).map_err(|r| Error::corruption(path, footer_at, r))?;
        let mut t = TableReader {
            id,
            path: path.to_path_buf(),
            file,
            size,
            index: Index::default(),
            bloom: Bloom::default(),
            props: Props::default(),
            cache,
            stats,
            obsolete: AtomicBool::new(false),
        };
        let props = t.read_raw(footer.props, footer_at)?;
        t.props =
            Props::decode(&props).map_err(|r| Error::corruption(path, footer.props.offset, r))?;
        let filter = t.read_raw(footer.filter, footer_at)?;
        t.bloom = Bloom::from_bytes(filter);
        let index = Arc::new(t.read_block_uncached(footer.index, footer_at)?);
        t.index = t.parse_index(index, footer.index.offset, footer.filter.offset)?;
        if t.index.len() as u64 != t.props.data_blocks {
            return Err(Error::corruption(
                path,
                footer.index.offset,
                "index and properties disagree on the number of data blocks",
            ));
        }
        Ok(t)
    }

    fn parse_index(&self, block: Arc<Block>, offset: u64, data_end: u64) -> Result<Index> {
        let corrupt = |r: &str| Error::corruption(&self.path, offset, format!("index block: {r}"));
        let mut it = BlockIter::new(block);
        let mut index = Index::default();
        it.seek_to_first().map_err(corrupt)?;
        while it.valid() {
            let v = it.value();
            let (off, p) = varint_at(v, 0).ok_or_else(|| corrupt("bad block handle"))?;
            let (sz, _) = varint_at(v, p).ok_or_else(|| corrupt("bad block handle"))?;
            let end = off
                .checked_add(sz)
                .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN as u64));
            if end.is_none_or(|e| e > data_end) {
                return Err(corrupt("block handle points outside the data area"));
            }
            if key::split(it.key()).is_none() {
                return Err(corrupt("index key shorter than a trailer"));
            }
            index.keys.extend_from_slice(it.key());
            index
                .prefixes
                .push(prefix_of(key::split(it.key()).map_or(&[][..], |(u, _)| u)));
            let end = u32::try_from(index.keys.len()).map_err(|_| corrupt("index too large"))?;
            index.ends.push(end);
            index.handles.push(BlockHandle {
                offset: off,
                size: sz,
            });
            it.next().map_err(corrupt)?;
        }
        Ok(index)
    }

    /// Reads and verifies a block's stored bytes, returning its decompressed contents.
    fn read_raw(&self, h: BlockHandle, limit: u64) -> Result<Vec<u8>> {
        let corrupt = |r: &str| Error::corruption(&self.path, h.offset, r.to_string());
        let total = h
            .size
            .checked_add(BLOCK_TRAILER_LEN as u64)
            .filter(|&t| t <= MAX_BLOCK_BYTES as u64 + 64)
            .ok_or_else(|| corrupt("block size is implausible"))?;
        if h.offset.checked_add(total).is_none_or(|e| e > limit) {
            return Err(corrupt("block handle points past the end of the table"));
        }
        let size = h.size as usize;
        // Read straight into the block's own buffer: an uncompressed block (L0 and L1 by
        // default) is then returned without a copy.
        let mut buf = vec![0u8; total as usize];
        self.file
            .read_exact_at(&mut buf, h.offset)
            .map_err(|e| Error::io(&self.path, e))?;
        let kind = buf
            .get(size)
            .copied()
            .ok_or_else(|| corrupt("short block"))?;
        let expected = u32_at(&buf, size + 1).ok_or_else(|| corrupt("short block"))?;
        let got = crc32fast::hash(buf.get(..size + 1).unwrap_or_default());
        if got != expected {
            return Err(Error::ChecksumMismatch {
                file: self.path.clone(),
                offset: h.offset,
                expected,
                got,
            });
        }
        if kind == COMPRESSION_NONE {
            buf.truncate(size);
            return Ok(buf);
        }
        decompress(buf.get(..size).unwrap_or_default(), kind).map_err(corrupt)
    }

    fn read_block_uncached(&self, h: BlockHandle, limit: u64) -> Result<Block> {
        let raw = self.read_raw(h, limit)?;
        Block::parse(raw).map_err(|r| Error::corruption(&self.path, h.offset, r))
    }

    /// Data block `i`, from the cache or the file.
    #[inline]
    fn data_block(&self, i: usize, fill_cache: bool) -> Result<Arc<Block>> {
        let h = self.handle(i)?;
        if fill_cache && let Some(c) = &self.cache {
            if let Some(b) = c.get((self.id, h.offset)) {
                return Ok(b);
            }
            let b = Arc::new(self.read_block_uncached(h, self.size)?);
            self.stats.add(&self.stats.block_reads, 1);
            c.insert((self.id, h.offset), Arc::clone(&b));
            return Ok(b);
        }
        self.stats.add(&self.stats.block_reads, 1);
        Ok(Arc::new(self.read_block_uncached(h, self.size)?))
    }

    fn handle(&self, i: usize) -> Result<BlockHandle> {
        self.index
            .handles
            .get(i)
            .copied()
            .ok_or_else(|| Error::corruption(&self.path, 0, "block index out of range"))
    }

    /// Data block `i` if it is in the block cache (no file read).
    #[inline]
    fn cached_block(&self, i: usize) -> Result<Option<Arc<Block>>> {
        let h = self.handle(i)?;
        Ok(self.cache.as_ref().and_then(|c| c.get((self.id, h.offset))))
    }

    /// Smallest user key.
    pub(crate) fn smallest(&self) -> &[u8] {
        &self.props.smallest
    }

    /// Largest user key.
    pub(crate) fn largest(&self) -> &[u8] {
        &self.props.largest
    }

    /// True if `user` lies within the table's key range.
    #[inline]
    pub(crate) fn covers(&self, user: &[u8]) -> bool {
        user >= self.smallest() && user <= self.largest()
    }

    /// The newest version of `user` visible at `seq`. `hash` is `hash_key(user)`.
    pub(crate) fn get(&self, user: &[u8], hash: u64, seq: u64) -> Result<Lookup> {
        Ok(self
            .get_with(user, hash, seq, false)?
            .unwrap_or(Lookup::Absent))
    }

    /// As [`get`](Self::get); with `cache_only`, `None` when the answer needs a block that is
    /// not in the block cache (nothing is read from the file).
    pub(crate) fn get_with(
        &self,
        user: &[u8],
        hash: u64,
        seq: u64,
        cache_only: bool,
    ) -> Result<Option<Lookup>> {
        if !self.bloom.may_contain(hash) {
            self.stats.add(&self.stats.bloom_negatives, 1);
            return Ok(Some(Lookup::Absent));
        }
        let trailer = key::seek_trailer(seq);
        let i = self.index.find(user, trailer);
        if i >= self.index.len() {
            self.stats.add(&self.stats.bloom_false_positives, 1);
            return Ok(Some(Lookup::Absent));
        }
        let block = if cache_only {
            match self.cached_block(i)? {
                Some(b) => b,
                None => return Ok(None),
            }
        } else {
            self.data_block(i, true)?
        };
        let found = SCRATCH.with_borrow_mut(|kbuf| -> Result<Lookup> {
            let v = block
                .seek_entry(user, trailer, kbuf)
                .map_err(|r| Error::corruption(&self.path, 0, r))?;
            Ok(match (v, key::split(kbuf)) {
                (Some(v), Some((u, t))) if u == user => {
                    if key::trailer_kind(t) == KIND_PUT {
                        Lookup::Value(v.to_vec())
                    } else {
                        Lookup::Deleted
                    }
                }
                _ => Lookup::Absent,
            })
        })?;
        if found == Lookup::Absent {
            self.stats.add(&self.stats.bloom_false_positives, 1);
        }
        Ok(Some(found))
    }

    /// Looks `user` up at the newest sequence number (for tools and benchmarks).
    pub fn get_value(&self, user: &[u8]) -> Result<Option<Vec<u8>>> {
        if !self.covers(user) {
            return Ok(None);
        }
        Ok(match self.get(user, hash_key(user), key::MAX_SEQ)? {
            Lookup::Value(v) => Some(v),
            _ => None,
        })
    }

    /// Number of entries.
    pub fn entries(&self) -> u64 {
        self.props.entries
    }

    /// Marks the file for deletion once the last reader lets go of it.
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, AtomicOrdering::Release);
    }
}

thread_local! {
    /// Key scratch buffer for point lookups, so a `get` does not allocate to decode keys.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(256));
}

impl Drop for TableReader {
    fn drop(&mut self) {
        if self.obsolete.load(AtomicOrdering::Acquire)
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %self.path.display(), error = %e, "could not delete obsolete table");
        }
    }
}

/// A cursor over a whole table.
pub(crate) struct TableIter {
    table: Arc<TableReader>,
    idx: usize,
    block: Option<BlockIter>,
    fill_cache: bool,
}

impl TableIter {
    /// A cursor over `table`; `fill_cache` false for compaction reads.
    pub(crate) fn new(table: Arc<TableReader>, fill_cache: bool) -> Self {
        TableIter {
            table,
            idx: 0,
            block: None,
            fill_cache,
        }
    }

    fn corrupt(&self, reason: &str) -> Error {
        let off = self
            .table
            .index
            .handles
            .get(self.idx)
            .map_or(0, |h| h.offset);
        Error::corruption(&self.table.path, off, reason.to_string())
    }

    fn load(&mut self, idx: usize) -> Result<()> {
        self.idx = idx;
        if idx >= self.table.index.len() {
            self.block = None;
            return Ok(());
        }
        let b = self.table.data_block(idx, self.fill_cache)?;
        self.block = Some(BlockIter::new(b));
        Ok(())
    }

    /// Moves forward over exhausted blocks.
    fn settle(&mut self) -> Result<()> {
        while let Some(b) = &self.block {
            if b.valid() {
                return Ok(());
            }
            self.load(self.idx + 1)?;
            if let Some(b) = &mut self.block {
                b.seek_to_first()
                    .map_err(|r| Error::corruption(&self.table.path, 0, r))?;
            }
        }
        Ok(())
    }
}

impl InternalIterator for TableIter {
    fn valid(&self) -> bool {
        self.block.as_ref().is_some_and(BlockIter::valid)
    }

    fn key(&self) -> &[u8] {
        self.block.as_ref().map_or(&[][..], BlockIter::key)
    }

    fn value(&self) -> &[u8] {
        self.block.as_ref().map_or(&[][..], BlockIter::value)
    }

    fn next(&mut self) -> Result<()> {
        if let Some(b) = &mut self.block {
            let r = b.next();
            if let Err(r) = r {
                let e = self.corrupt(r);
                self.block = None;
                return Err(e);
            }
        }
        self.settle()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.load(0)?;
        if let Some(b) = &mut self.block
            && let Err(r) = b.seek_to_first()
        {
            let e = self.corrupt(r);
            self.block = None;
            return Err(e);
        }
        self.settle()
    }

    fn seek(&mut self, user: &[u8], trailer: u64) -> Result<()> {
        let i = self.table.index.find(user, trailer);
        self.load(i)?;
        if let Some(b) = &mut self.block
            && let Err(r) = b.seek(user, trailer)
        {
            let e = self.corrupt(r);
            self.block = None;
            return Err(e);
        }
        self.settle()
    }
}
