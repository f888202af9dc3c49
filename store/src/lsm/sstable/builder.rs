//! Writes one table, front to back, through a buffered file.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::lsm::bloom::{BloomBuilder, hash_key};
use crate::lsm::coding::put_varint;
use crate::lsm::error::{Error, Result};
use crate::lsm::key;
use crate::lsm::options::Compression;
use crate::lsm::sstable::block::BlockBuilder;
use crate::lsm::sstable::{BlockHandle, Footer, Props, compress};

/// Builds a table file. Internal keys must be added in increasing order.
pub struct TableBuilder {
    id: u64,
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    data: BlockBuilder,
    index: BlockBuilder,
    bloom: BloomBuilder,
    block_bytes: usize,
    bits_per_key: usize,
    compression: Compression,
    props: Props,
    last_user: Vec<u8>,
    have_key: bool,
    scratch: Vec<u8>,
    /// Offset up to which the file has been synced.
    synced: u64,
}

/// A table being written is synced every this many bytes, so its final
/// fsync is small: one large fsync at the end of a flush would hold the
/// file system's journal, and with it every commit-log fsync (each write's
/// acknowledgement), for as long as it takes to write the whole table.
const SYNC_EVERY_BYTES: u64 = 1 << 20;

impl TableBuilder {
    /// Creates `path` (which must not exist).
    pub fn create(
        path: &Path,
        id: u64,
        block_bytes: usize,
        restart_interval: usize,
        bits_per_key: usize,
        compression: Compression,
    ) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(TableBuilder {
            id,
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(256 << 10, file),
            offset: 0,
            data: BlockBuilder::new(restart_interval),
            index: BlockBuilder::new(1),
            bloom: BloomBuilder::new(),
            block_bytes,
            bits_per_key,
            compression,
            props: Props {
                min_seq: u64::MAX,
                ..Props::default()
            },
            last_user: Vec::new(),
            synced: 0,
            have_key: false,
            scratch: Vec::new(),
        })
    }

    /// Appends an entry (internal key, value).
    pub fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let Some((user, trailer)) = key::split(ikey) else {
            return Err(Error::corruption(
                &self.path,
                self.offset,
                "internal key shorter than its trailer",
            ));
        };
        if !self.have_key || user != self.last_user.as_slice() {
            self.bloom.add_hash(hash_key(user));
            if !self.have_key {
                self.props.smallest = user.to_vec();
            }
            self.last_user.clear();
            self.last_user.extend_from_slice(user);
            self.have_key = true;
        }
        let seq = key::trailer_seq(trailer);
        self.props.min_seq = self.props.min_seq.min(seq);
        self.props.max_seq = self.props.max_seq.max(seq);
        self.props.entries += 1;
        if key::trailer_kind(trailer) == key::KIND_DELETE {
            self.props.deletions += 1;
        }
        self.data.add(ikey, value);
        if self.data.estimated_size() >= self.block_bytes {
            self.finish_data_block()?;
        }
        Ok(())
    }

    /// Bytes written so far plus the open block.
    pub fn estimated_size(&self) -> u64 {
        self.offset + self.data.estimated_size() as u64
    }

    /// Entries added.
    pub fn entries(&self) -> u64 {
        self.props.entries
    }

    fn write_block(&mut self, raw: &[u8], compression: Compression) -> Result<BlockHandle> {
        let (stored, kind) = compress(raw, compression);
        let mut h = crc32fast::Hasher::new();
        h.update(&stored);
        h.update(&[kind]);
        let crc = h.finalize();
        let handle = BlockHandle {
            offset: self.offset,
            size: stored.len() as u64,
        };
        let path = &self.path;
        let io = |e| Error::io(path, e);
        self.out.write_all(&stored).map_err(io)?;
        self.out.write_all(&[kind]).map_err(io)?;
        self.out.write_all(&crc.to_le_bytes()).map_err(io)?;
        self.offset += stored.len() as u64 + 5;
        if self.offset - self.synced >= SYNC_EVERY_BYTES {
            self.out.flush().map_err(io)?;
            self.out.get_ref().sync_data().map_err(io)?;
            self.synced = self.offset;
        }
        Ok(handle)
    }

    fn finish_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let last = self.data.last_key().to_vec();
        let raw = self.data.finish();
        let handle = self.write_block(&raw, self.compression)?;
        self.scratch.clear();
        put_varint(&mut self.scratch, handle.offset);
        put_varint(&mut self.scratch, handle.size);
        self.index.add(&last, &self.scratch);
        self.props.data_blocks += 1;
        Ok(())
    }

    /// Writes the filter, properties, index and footer, syncs the file, and returns its
    /// metadata. The caller syncs the directory.
    pub fn finish(mut self) -> Result<TableMeta> {
        self.finish_data_block()?;
        if self.props.entries == 0 {
            self.props.min_seq = 0;
        }
        self.props.largest = std::mem::take(&mut self.last_user);
        let filter = self.bloom.build(self.bits_per_key);
        let filter = self.write_block_raw(&filter)?;
        let props = self.props.encode();
        let props = self.write_block_raw(&props)?;
        let index = self.index.finish();
        let index = self.write_block(&index, Compression::None)?;
        let footer = Footer {
            index,
            filter,
            props,
        }
        .encode();
        let path = self.path.clone();
        self.out
            .write_all(&footer)
            .map_err(|e| Error::io(&path, e))?;
        self.offset += footer.len() as u64;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_data().map_err(|e| Error::io(&path, e))?;
        Ok(TableMeta {
            id: self.id,
            size: self.offset,
        })
    }

    fn write_block_raw(&mut self, raw: &[u8]) -> Result<BlockHandle> {
        self.write_block(raw, Compression::None)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Id and size of a finished table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMeta {
    /// Table id (file number).
    pub id: u64,
    /// File size in bytes.
    pub size: u64,
}
