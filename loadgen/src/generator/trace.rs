//! Traceable values: every value a checked run writes begins with a small header naming the
//! write (writer, per-key sequence number, intended time), followed by the usual filler up to
//! the configured size. A read can then tell exactly which writes it saw, and the audit can
//! tell every write apart.
//!
//! Layout (little-endian, [`HEADER_BYTES`] bytes): `b"rk"`, format `1`, a reserved byte,
//! writer id (`u32`), sequence (`u64`, per key, from 1), intended time (`u64`, microseconds
//! since the Unix epoch).

/// Bytes the header takes at the start of a value; smaller values are refused when the
/// workload is parsed.
pub const HEADER_BYTES: usize = crate::workload::TRACE_HEADER_BYTES;

const MAGIC: [u8; 2] = *b"rk";
const FORMAT: u8 = 1;

/// Which write a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The load generator process that wrote it (its shard; 0 for a single process).
    pub writer: u32,
    /// Per-key sequence number of the write, from 1, in the order writes were sent.
    pub seq: u64,
    /// When the write was intended, microseconds since the Unix epoch.
    pub intended_us: u64,
}

impl Header {
    /// Writes the header over the start of `value`. Returns false (and leaves `value` alone)
    /// when it is shorter than [`HEADER_BYTES`].
    pub fn stamp(&self, value: &mut [u8]) -> bool {
        let Some(h) = value.get_mut(..HEADER_BYTES) else {
            return false;
        };
        h[0..2].copy_from_slice(&MAGIC);
        h[2] = FORMAT;
        h[3] = 0;
        h[4..8].copy_from_slice(&self.writer.to_le_bytes());
        h[8..16].copy_from_slice(&self.seq.to_le_bytes());
        h[16..24].copy_from_slice(&self.intended_us.to_le_bytes());
        true
    }

    /// The header at the start of `value`, or `None` when it has none (written by someone
    /// else, or too short).
    pub fn parse(value: &[u8]) -> Option<Header> {
        let h = value.get(..HEADER_BYTES)?;
        if h[0..2] != MAGIC || h[2] != FORMAT {
            return None;
        }
        let u64_at = |i: usize| {
            h.get(i..i + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        Some(Header {
            writer: u32::from_le_bytes(h.get(4..8)?.try_into().ok()?),
            seq: u64_at(8)?,
            intended_us: u64_at(16)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_value_keeps_its_size_and_names_its_write() {
        let mut v = vec![7u8; 100];
        let h = Header {
            writer: 3,
            seq: 42,
            intended_us: 1_700_000_000_000_000,
        };
        assert!(h.stamp(&mut v));
        assert_eq!(v.len(), 100);
        assert_eq!(Header::parse(&v), Some(h));
        assert_eq!(v[HEADER_BYTES..], [7u8; 100 - HEADER_BYTES]);
    }

    #[test]
    fn foreign_and_short_values_have_no_header() {
        assert_eq!(Header::parse(b"hello world, not one of ours"), None);
        assert_eq!(Header::parse(&[]), None);
        let mut short = vec![0u8; HEADER_BYTES - 1];
        let h = Header {
            writer: 0,
            seq: 1,
            intended_us: 0,
        };
        assert!(!h.stamp(&mut short));
        assert_eq!(short, vec![0u8; HEADER_BYTES - 1]);
    }
}
