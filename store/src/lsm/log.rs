//! Checksummed record framing, shared by the write-ahead log and the manifest.
//!
//! A record is `crc32: u32 LE | len: u32 LE | payload: len bytes`, where `crc32` is CRC-32
//! (IEEE) over the 4 length bytes followed by the payload. Records follow each other with no
//! padding.
//!
//! Recovery reads records until the end of the file or a tail of zero bytes (logs are
//! preallocated, so zeros are unwritten space). The first record that fails to decode (too
//! short, length past the end of the file, bad checksum) is classified:
//! - a **torn tail** if no valid record can be found anywhere after it: the file is cut at
//!   that offset and the caller reports the truncation;
//! - **corruption** otherwise: records that were written after the damaged one exist, so
//!   dropping them would lose acknowledged data silently. This is a typed error.

use std::path::Path;

use crate::lsm::coding::u32_at;
use crate::lsm::error::{Error, Result};

/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 8;
/// Largest payload the framing accepts (the writer never produces more).
pub(crate) const MAX_PAYLOAD: usize = 1 << 30;
/// How many payload bytes the torn-tail classifier may checksum while looking for valid records
/// after a damaged one; past this budget the damage is reported as corruption.
const RESCAN_BUDGET_BYTES: u64 = 256 << 20;

/// Appends one framed record to `buf`.
pub(crate) fn append_record(buf: &mut Vec<u8>, payload: &[u8]) {
    let len = payload.len() as u32;
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(payload);
    buf.extend_from_slice(&h.finalize().to_le_bytes());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Starts a record in `buf` whose payload the caller appends next; finish it with
/// [`finish_record`]. Returns the record's start offset in `buf`.
pub(crate) fn begin_record(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    start
}

/// Fills in the header of the record begun at `start`.
pub(crate) fn finish_record(buf: &mut [u8], start: usize) {
    let Some(rec) = buf.get_mut(start..) else {
        return;
    };
    let len = (rec.len().saturating_sub(HEADER_LEN)) as u32;
    if let Some(l) = rec.get_mut(4..8) {
        l.copy_from_slice(&len.to_le_bytes());
    }
    let crc = crc32fast::hash(rec.get(4..).unwrap_or_default());
    if let Some(c) = rec.get_mut(0..4) {
        c.copy_from_slice(&crc.to_le_bytes());
    }
}

/// How a log ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogEnd {
    /// Every byte belonged to a valid record.
    Clean,
    /// The bytes from `offset` on are an incomplete write and must be dropped.
    Torn {
        /// Offset of the first byte of the torn tail.
        offset: u64,
        /// How many written (non-zero-tail) bytes the torn tail holds.
        dropped: u64,
    },
}

/// Is there a valid record at `pos`?
fn record_at(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let crc = u32_at(data, pos)?;
    let len = u32_at(data, pos.checked_add(4)?)? as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    let start = pos.checked_add(HEADER_LEN)?;
    let end = start.checked_add(len)?;
    let payload = data.get(start..end)?;
    let lenb = data.get(pos + 4..start)?;
    let mut h = crc32fast::Hasher::new();
    h.update(lenb);
    h.update(payload);
    (h.finalize() == crc).then_some((payload, end))
}

/// Looks for any valid record starting after `pos`, within the checksum budget.
/// `Some(true)`: found one. `Some(false)`: proved there is none. `None`: budget exhausted.
fn valid_record_after(data: &[u8], pos: usize) -> Option<bool> {
    let mut budget = RESCAN_BUDGET_BYTES;
    let mut p = pos + 1;
    while p + HEADER_LEN <= data.len() {
        if let Some(len) = u32_at(data, p + 4) {
            let len = len as usize;
            // Records are never empty (both payload kinds carry a header of their own).
            if len > 0 && len <= data.len() - p - HEADER_LEN {
                budget = budget.checked_sub(len as u64)?;
                if record_at(data, p).is_some() {
                    return Some(true);
                }
            }
        }
        p += 1;
    }
    Some(false)
}

/// Reads every record of `data` (the whole content of `file`) and hands each payload with its
/// offset to `each`. See the module docs for how damage is classified.
pub(crate) fn read_records(
    file: &Path,
    data: &[u8],
    mut each: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<LogEnd> {
    let mut pos = 0usize;
    while pos < data.len() {
        if let Some((payload, end)) = record_at(data, pos)
            && !payload.is_empty()
        {
            each(pos as u64, payload)?;
            pos = end;
            continue;
        }
        // A tail of zero bytes is unwritten (preallocated) space: the log ends cleanly.
        if data.get(pos..).is_some_and(|t| t.iter().all(|&b| b == 0)) {
            return Ok(LogEnd::Clean);
        }
        // Damaged or incomplete record at `pos`.
        return match valid_record_after(data, pos) {
            Some(false) => Ok(LogEnd::Torn {
                offset: pos as u64,
                // Written bytes dropped (not counting the zeros of preallocated space).
                dropped: data
                    .iter()
                    .rposition(|&b| b != 0)
                    .map_or(0, |last| (last + 1).saturating_sub(pos))
                    as u64,
            }),
            Some(true) => Err(describe_damage(file, data, pos, "valid records follow it")),
            None => Err(describe_damage(
                file,
                data,
                pos,
                "the damaged tail is too large to prove it is an incomplete write",
            )),
        };
    }
    Ok(LogEnd::Clean)
}

fn describe_damage(file: &Path, data: &[u8], pos: usize, why: &str) -> Error {
    let stored = u32_at(data, pos);
    let len = u32_at(data, pos + 4).map(|l| l as usize);
    match (stored, len) {
        (Some(expected), Some(len)) if len <= data.len() - pos - HEADER_LEN && len > 0 => {
            let got = data
                .get(pos + 4..pos + HEADER_LEN + len)
                .map(crc32fast::hash)
                .unwrap_or(0);
            if got != expected {
                return Error::ChecksumMismatch {
                    file: file.to_path_buf(),
                    offset: pos as u64,
                    expected,
                    got,
                };
            }
            Error::corruption(file, pos as u64, format!("empty log record, and {why}"))
        }
        _ => Error::corruption(
            file,
            pos as u64,
            format!("log record header or length is invalid, and {why}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(payloads: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        for p in payloads {
            append_record(&mut b, p);
        }
        b
    }

    fn read(data: &[u8]) -> Result<(Vec<Vec<u8>>, LogEnd)> {
        let mut out = Vec::new();
        let end = read_records(Path::new("t.log"), data, |_, p| {
            out.push(p.to_vec());
            Ok(())
        })?;
        Ok((out, end))
    }

    #[test]
    fn torn_tail_is_cut_at_the_last_whole_record() {
        let data = log_of(&[b"one", b"two", b"three"]);
        for cut in 1..data.len() {
            let (recs, end) = read(&data[..cut]).unwrap();
            let whole = [11usize, 22, 35].iter().filter(|&&e| e <= cut).count();
            assert_eq!(recs.len(), whole, "cut {cut}");
            let boundary = [0usize, 11, 22]
                .into_iter()
                .filter(|&e| e <= cut)
                .max()
                .unwrap();
            if data[boundary..cut].iter().all(|&b| b == 0) {
                assert_eq!(end, LogEnd::Clean, "cut {cut}");
            } else {
                assert!(matches!(end, LogEnd::Torn { .. }), "cut {cut}");
            }
        }
    }

    #[test]
    fn flipped_byte_in_the_middle_is_a_typed_error() {
        let mut data = log_of(&[b"one", b"two", b"three"]);
        data[9] ^= 0x40;
        let err = read(&data).unwrap_err();
        assert!(err.is_corruption(), "{err}");
    }

    #[test]
    fn zero_filled_tail_is_unwritten_space() {
        let mut data = log_of(&[b"one"]);
        data.extend_from_slice(&[0u8; 100]);
        let (recs, end) = read(&data).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(end, LogEnd::Clean);
        // A torn record followed by zeros is still a torn tail.
        data[12] = 7;
        let (recs, end) = read(&data).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(
            end,
            LogEnd::Torn {
                offset: 11,
                dropped: 2
            }
        );
    }

    #[test]
    fn record_framed_in_place_matches_append_record() {
        let mut a = Vec::new();
        let s = begin_record(&mut a);
        a.extend_from_slice(b"payload");
        finish_record(&mut a, s);
        assert_eq!(a, log_of(&[b"payload"]));
    }
}
