//! Internal keys: a user key followed by an 8-byte little-endian trailer
//! `(sequence << 8) | kind`. They order by user key ascending, then by trailer descending,
//! so the newest version of a key comes first.

use std::cmp::Ordering;

/// Kind byte of a tombstone.
pub(crate) const KIND_DELETE: u8 = 0;
/// Kind byte of a value.
pub(crate) const KIND_PUT: u8 = 1;
/// Largest sequence number (56 bits).
pub(crate) const MAX_SEQ: u64 = (1 << 56) - 1;
/// Trailer length.
pub(crate) const TRAILER_LEN: usize = 8;

/// The trailer for `seq` and `kind`.
#[inline]
pub(crate) fn trailer(seq: u64, kind: u8) -> u64 {
    (seq << 8) | u64::from(kind)
}

/// The trailer that sorts before every entry of a user key with sequence <= `seq`: seeking
/// to `(user, seek_trailer(seq))` finds the newest version visible at `seq`.
#[inline]
pub(crate) fn seek_trailer(seq: u64) -> u64 {
    (seq << 8) | 0xff
}

/// Sequence number of a trailer.
#[inline]
pub(crate) fn trailer_seq(t: u64) -> u64 {
    t >> 8
}

/// Kind of a trailer.
#[inline]
pub(crate) fn trailer_kind(t: u64) -> u8 {
    (t & 0xff) as u8
}

/// Splits an internal key into user key and trailer. `None` if it is shorter than a trailer.
#[inline]
pub(crate) fn split(ikey: &[u8]) -> Option<(&[u8], u64)> {
    let cut = ikey.len().checked_sub(TRAILER_LEN)?;
    let (user, t) = ikey.split_at_checked(cut)?;
    let t: [u8; 8] = t.try_into().ok()?;
    Some((user, u64::from_le_bytes(t)))
}

/// User-key part of an internal key (the whole slice if it is malformed).
#[cfg(test)]
pub(crate) fn user_key(ikey: &[u8]) -> &[u8] {
    split(ikey).map_or(ikey, |(u, _)| u)
}

/// Appends the internal key for `user` and `trailer` to `buf`.
#[inline]
pub(crate) fn append(buf: &mut Vec<u8>, user: &[u8], trailer: u64) {
    buf.extend_from_slice(user);
    buf.extend_from_slice(&trailer.to_le_bytes());
}

/// Compares two `(user, trailer)` pairs in internal-key order.
#[inline]
pub(crate) fn cmp_parts(a_user: &[u8], a_trailer: u64, b_user: &[u8], b_trailer: u64) -> Ordering {
    a_user.cmp(b_user).then(b_trailer.cmp(&a_trailer))
}

/// Compares an encoded internal key with `(user, trailer)`.
#[inline]
pub(crate) fn cmp_with(ikey: &[u8], user: &[u8], trailer: u64) -> Ordering {
    let (u, t) = split(ikey).unwrap_or((ikey, 0));
    cmp_parts(u, t, user, trailer)
}

/// Compares two encoded internal keys.
#[inline]
pub(crate) fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (bu, bt) = split(b).unwrap_or((b, 0));
    cmp_with(a, bu, bt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_first_and_shorter_keys_before_longer() {
        let mut a = Vec::new();
        append(&mut a, b"k", trailer(5, KIND_PUT));
        let mut b = Vec::new();
        append(&mut b, b"k", trailer(3, KIND_PUT));
        let mut c = Vec::new();
        append(&mut c, b"ka", trailer(9, KIND_PUT));
        assert_eq!(cmp(&a, &b), Ordering::Less);
        assert_eq!(cmp(&b, &c), Ordering::Less);
        assert_eq!(cmp_with(&b, b"k", seek_trailer(4)), Ordering::Greater);
        assert_eq!(cmp_with(&a, b"k", seek_trailer(4)), Ordering::Less);
    }
}
