//! Sorted string tables (`NNNNNN.sst`): immutable files of sorted internal keys.
//!
//! File layout: `data block* | filter block | properties block | index block | footer`.
//! Every block is stored as `contents | compression: u8 | crc32: u32 LE`, the CRC-32 (IEEE)
//! covering the contents and the compression byte. The 64-byte footer locates the index,
//! filter and properties blocks; see `docs/storage-format.md`.

pub mod block;
mod builder;
mod reader;

pub use builder::{TableBuilder, TableMeta};
pub(crate) use reader::TableIter;
pub use reader::TableReader;

use std::path::{Path, PathBuf};

use crate::lsm::coding::{DecodeResult, Decoder, put_u32, put_u64, u32_at, u64_at};
use crate::lsm::options::Compression;

/// Footer magic, the last 8 bytes of every table: ASCII `rkvTABLE`.
pub(crate) const MAGIC: [u8; 8] = *b"rkvTABLE";
/// Table format version written in the footer.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Footer size.
pub(crate) const FOOTER_LEN: usize = 64;
/// Bytes after each block's contents: compression byte + CRC.
pub(crate) const BLOCK_TRAILER_LEN: usize = 5;
/// Largest decompressed block accepted when reading.
pub(crate) const MAX_BLOCK_BYTES: usize = 64 << 20;

/// Compression byte values.
pub(crate) const COMPRESSION_NONE: u8 = 0;
pub(crate) const COMPRESSION_LZ4: u8 = 1;
pub(crate) const COMPRESSION_ZSTD: u8 = 2;

/// The file name of table `id`.
pub(crate) fn table_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.sst"))
}

/// Where a block lives: offset of its contents and their length (trailer excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlockHandle {
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

/// The fixed-size table footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) index: BlockHandle,
    pub(crate) filter: BlockHandle,
    pub(crate) props: BlockHandle,
}

impl Footer {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(FOOTER_LEN);
        for h in [self.index, self.filter, self.props] {
            put_u64(&mut b, h.offset);
            put_u64(&mut b, h.size);
        }
        put_u32(&mut b, FORMAT_VERSION);
        let crc = crc32fast::hash(&b);
        put_u32(&mut b, crc);
        b.extend_from_slice(&MAGIC);
        b
    }

    pub(crate) fn decode(b: &[u8]) -> DecodeResult<Footer> {
        if b.len() != FOOTER_LEN {
            return Err("footer has the wrong length");
        }
        if b.get(56..64) != Some(&MAGIC[..]) {
            return Err("bad magic: not a ringkv table, or the file is truncated");
        }
        let version = u32_at(b, 48).ok_or("footer too short")?;
        if version != FORMAT_VERSION {
            return Err("unsupported table format version");
        }
        let stored = u32_at(b, 52).ok_or("footer too short")?;
        if crc32fast::hash(b.get(..52).ok_or("footer too short")?) != stored {
            return Err("footer checksum mismatch");
        }
        let h = |i: usize| -> DecodeResult<BlockHandle> {
            Ok(BlockHandle {
                offset: u64_at(b, i * 16).ok_or("footer too short")?,
                size: u64_at(b, i * 16 + 8).ok_or("footer too short")?,
            })
        };
        Ok(Footer {
            index: h(0)?,
            filter: h(1)?,
            props: h(2)?,
        })
    }
}

/// Table-wide facts stored in the properties block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Props {
    pub(crate) entries: u64,
    pub(crate) deletions: u64,
    pub(crate) data_blocks: u64,
    pub(crate) min_seq: u64,
    pub(crate) max_seq: u64,
    /// Smallest and largest user keys.
    pub(crate) smallest: Vec<u8>,
    pub(crate) largest: Vec<u8>,
}

impl Props {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_u64(&mut b, self.entries);
        put_u64(&mut b, self.deletions);
        put_u64(&mut b, self.data_blocks);
        put_u64(&mut b, self.min_seq);
        put_u64(&mut b, self.max_seq);
        crate::lsm::coding::put_len_prefixed(&mut b, &self.smallest);
        crate::lsm::coding::put_len_prefixed(&mut b, &self.largest);
        b
    }

    pub(crate) fn decode(b: &[u8]) -> DecodeResult<Props> {
        let mut d = Decoder::new(b);
        let p = Props {
            entries: d.u64("properties: entries")?,
            deletions: d.u64("properties: deletions")?,
            data_blocks: d.u64("properties: data blocks")?,
            min_seq: d.u64("properties: min seq")?,
            max_seq: d.u64("properties: max seq")?,
            smallest: d.len_prefixed("properties: smallest key")?.to_vec(),
            largest: d.len_prefixed("properties: largest key")?.to_vec(),
        };
        if !d.is_empty() {
            return Err("properties block has trailing bytes");
        }
        Ok(p)
    }
}

/// Compresses block contents per `c`; returns the stored bytes and the compression byte.
/// Falls back to storing the block as is when compression saves less than 1/8.
pub(crate) fn compress(raw: &[u8], c: Compression) -> (std::borrow::Cow<'_, [u8]>, u8) {
    let packed = match c {
        Compression::None => None,
        Compression::Lz4 => {
            let mut out = Vec::with_capacity(raw.len() / 2 + 16);
            put_u32(&mut out, raw.len() as u32);
            out.extend_from_slice(&lz4_flex::block::compress(raw));
            Some((out, COMPRESSION_LZ4))
        }
        Compression::Zstd(level) => zstd::bulk::compress(raw, level).ok().map(|z| {
            let mut out = Vec::with_capacity(z.len() + 4);
            put_u32(&mut out, raw.len() as u32);
            out.extend_from_slice(&z);
            (out, COMPRESSION_ZSTD)
        }),
    };
    match packed {
        Some((out, kind)) if out.len() < raw.len() - raw.len() / 8 => (out.into(), kind),
        _ => (raw.into(), COMPRESSION_NONE),
    }
}

/// Reverses [`compress`].
pub(crate) fn decompress(stored: &[u8], kind: u8) -> DecodeResult<Vec<u8>> {
    match kind {
        COMPRESSION_NONE => Ok(stored.to_vec()),
        COMPRESSION_LZ4 | COMPRESSION_ZSTD => {
            let n = u32_at(stored, 0).ok_or("compressed block too short")? as usize;
            if n > MAX_BLOCK_BYTES {
                return Err("compressed block claims an implausible size");
            }
            let body = stored.get(4..).unwrap_or_default();
            let out = if kind == COMPRESSION_LZ4 {
                lz4_flex::block::decompress(body, n).map_err(|_| "lz4 block does not decompress")?
            } else {
                zstd::bulk::decompress(body, n).map_err(|_| "zstd block does not decompress")?
            };
            if out.len() != n {
                return Err("decompressed block has the wrong size");
            }
            Ok(out)
        }
        _ => Err("unknown block compression"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_rejects_damage() {
        let f = Footer {
            index: BlockHandle { offset: 1, size: 2 },
            filter: BlockHandle { offset: 3, size: 4 },
            props: BlockHandle { offset: 5, size: 6 },
        };
        let mut b = f.encode();
        assert_eq!(b.len(), FOOTER_LEN);
        assert_eq!(Footer::decode(&b), Ok(f));
        b[3] ^= 1;
        assert!(Footer::decode(&b).is_err());
    }

    #[test]
    fn compression_round_trips() {
        let raw: Vec<u8> = (0..4000u32).map(|i| (i % 7) as u8).collect();
        for c in [Compression::None, Compression::Lz4, Compression::Zstd(3)] {
            let (stored, kind) = compress(&raw, c);
            assert_eq!(decompress(&stored, kind).unwrap(), raw);
        }
        assert!(decompress(&[0xff, 0xff, 0xff, 0x7f, 1, 2], COMPRESSION_LZ4).is_err());
        assert!(decompress(&[9], 9).is_err());
    }
}
