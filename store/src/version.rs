//! Causal versions: dotted version vectors with siblings.
//!
//! Every stored value (or tombstone) carries a *dot* — `(actor, counter)`, the
//! one event that wrote it. A [`VersionSet`] is what a replica keeps per key:
//! the concurrent siblings plus a *clock* (a version vector) that summarises
//! every dot the set has seen, whether kept or superseded.
//!
//! - A put with the context (clock) from a get supersedes exactly the dots
//!   that context covers; anything else stays as a sibling.
//! - Merging two sets keeps a sibling unless the other side has seen its dot
//!   (covered by its clock) and dropped it.
//!
//! Actors are 64-bit ids: a base minted once per data directory, so a wiped
//! node never reuses an old identity, at an epoch that moves on whenever the
//! node's own history for a key may be incomplete ([`ActorEpochs`]). Counters
//! come from a per-actor hybrid clock (`max(local + 1, context + 1, now_µs)`),
//! so they keep growing even after a tombstone was purged and the per-key
//! history is gone; they never wrap, and a client context may not claim
//! counters ahead of the clock ([`VersionVector::decode_context`]).
//!
//! The encoding is canonical (siblings sorted by dot, clock sorted by actor),
//! so equal sets have equal bytes — the Merkle index hashes those bytes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes};

/// Identity of a writer (one per node data directory).
pub type Actor = u64;

/// Format byte of an encoded [`VersionSet`].
const SET_FORMAT: u8 = 1;
/// Format byte of an encoded context ([`VersionVector`]).
const CONTEXT_FORMAT: u8 = 1;
/// Cap on entries decoded from untrusted bytes, to bound allocations.
const MAX_DECODED_ENTRIES: u64 = 1 << 16;
/// Largest causal context a client may send, in bytes (about 250 actors).
/// A bigger one is refused: it would bloat the key's clock for good.
pub const MAX_CONTEXT_BYTES: usize = 4096;
/// How far ahead of this node's clock a counter in a client context may be,
/// in microseconds. Counters are minted from the wall clock, so a genuine
/// context is ahead at most by the clock skew between nodes; a counter
/// further ahead was not minted by any node and would claim (and so drop)
/// writes that have not happened yet.
pub const MAX_CONTEXT_SKEW_MICROS: u64 = 60_000_000;

/// One write event: `counter` is unique for `actor`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dot {
    /// Who wrote.
    pub actor: Actor,
    /// Which of the actor's events.
    pub counter: u64,
}

/// A version vector: for each actor, the highest counter seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VersionVector(BTreeMap<Actor, u64>);

/// Result of comparing two version vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordering {
    /// Same history.
    Equal,
    /// Left has seen everything right has, and more.
    Descends,
    /// Right has seen everything left has, and more.
    Precedes,
    /// Each has seen something the other has not.
    Concurrent,
}

/// A causal context that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Bytes ended early.
    #[error("version data is truncated")]
    Truncated,
    /// Unknown format byte.
    #[error("unknown version format {0}")]
    UnknownFormat(u8),
    /// A count or length is out of range.
    #[error("version data has an implausible {0}")]
    Implausible(&'static str),
    /// Bytes left over after the structure.
    #[error("version data has {0} trailing bytes")]
    Trailing(usize),
    /// A context larger than [`MAX_CONTEXT_BYTES`].
    #[error("the context is {len} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A counter further ahead of the clock than [`MAX_CONTEXT_SKEW_MICROS`].
    #[error(
        "counter {counter} of actor {actor:016x} is ahead of this node's clock (at most {limit} is plausible)"
    )]
    CounterAhead {
        /// The actor.
        actor: Actor,
        /// The counter claimed.
        counter: u64,
        /// The largest counter accepted now.
        limit: u64,
    },
}

/// A change that would leave a key with more concurrent versions than allowed. Nothing is
/// dropped to make room: the change is refused and the set stays as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the key would have {would} concurrent versions, more than the limit of {max}; read it and \
     write with the context that read returned, which resolves them"
)]
pub struct TooManySiblings {
    /// Siblings the change would leave.
    pub would: usize,
    /// The limit.
    pub max: usize,
}

/// Why an update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// No fresh dot is left.
    #[error(transparent)]
    Exhausted(#[from] CounterExhausted),
    /// The key has too many siblings already.
    #[error(transparent)]
    TooMany(#[from] TooManySiblings),
}

/// A write that cannot get a fresh dot: the key's clock already claims the
/// actor's largest counter. Only a corrupt or crafted clock gets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "actor {actor:016x} has no counter left for this key (its clock is at {seen}); the write is refused"
)]
pub struct CounterExhausted {
    /// The actor that would mint the dot.
    pub actor: Actor,
    /// The key's clock entry for it.
    pub seen: u64,
}

impl VersionVector {
    /// The empty vector (nothing seen).
    pub fn new() -> Self {
        Self::default()
    }

    /// Highest counter seen for `actor` (0 if none).
    pub fn get(&self, actor: Actor) -> u64 {
        self.0.get(&actor).copied().unwrap_or(0)
    }

    /// Whether the vector covers (has seen) this dot.
    pub fn covers(&self, dot: Dot) -> bool {
        self.get(dot.actor) >= dot.counter
    }

    /// Record a dot.
    pub fn add(&mut self, dot: Dot) {
        let e = self.0.entry(dot.actor).or_insert(0);
        *e = (*e).max(dot.counter);
    }

    /// Pointwise maximum.
    pub fn join(&mut self, other: &VersionVector) {
        for (&a, &c) in &other.0 {
            self.add(Dot {
                actor: a,
                counter: c,
            });
        }
    }

    /// Causal comparison.
    pub fn compare(&self, other: &VersionVector) -> Ordering {
        let mut left_ahead = false;
        let mut right_ahead = false;
        for (&a, &c) in &self.0 {
            if c > other.get(a) {
                left_ahead = true;
            }
        }
        for (&a, &c) in &other.0 {
            if c > self.get(a) {
                right_ahead = true;
            }
        }
        match (left_ahead, right_ahead) {
            (false, false) => Ordering::Equal,
            (true, false) => Ordering::Descends,
            (false, true) => Ordering::Precedes,
            (true, true) => Ordering::Concurrent,
        }
    }

    /// Whether nothing has been seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in actor order.
    pub fn iter(&self) -> impl Iterator<Item = (Actor, u64)> + '_ {
        self.0.iter().map(|(&a, &c)| (a, c))
    }

    /// The opaque context bytes handed to clients.
    pub fn encode_context(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.0.len() * 12);
        out.put_u8(CONTEXT_FORMAT);
        self.encode_into(&mut out);
        out
    }

    /// Decode and check a client context; empty bytes mean "no context".
    /// Refuses contexts over [`MAX_CONTEXT_BYTES`] and counters more than
    /// [`MAX_CONTEXT_SKEW_MICROS`] ahead of this node's clock.
    pub fn decode_context(bytes: &[u8]) -> Result<VersionVector, DecodeError> {
        Self::decode_context_at(bytes, now_micros())
    }

    /// [`VersionVector::decode_context`] with the clock given (`now_micros`,
    /// microseconds since the Unix epoch).
    pub fn decode_context_at(bytes: &[u8], now_micros: u64) -> Result<VersionVector, DecodeError> {
        if bytes.is_empty() {
            return Ok(VersionVector::new());
        }
        if bytes.len() > MAX_CONTEXT_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_CONTEXT_BYTES,
            });
        }
        let mut buf = bytes;
        let format = take_u8(&mut buf)?;
        if format != CONTEXT_FORMAT {
            return Err(DecodeError::UnknownFormat(format));
        }
        let vv = VersionVector::decode_from(&mut buf)?;
        if !buf.is_empty() {
            return Err(DecodeError::Trailing(buf.len()));
        }
        vv.check_not_ahead(now_micros)?;
        Ok(vv)
    }

    /// Whether the context a node handed out (`bytes`, as from a get) covers `dot`, without
    /// decoding it into a map. Bytes after the clock (a node's signature) are ignored: this is
    /// a client-side lookup, never a check of the context's integrity.
    pub fn context_covers(bytes: &[u8], dot: Dot) -> Result<bool, DecodeError> {
        if bytes.is_empty() {
            return Ok(false);
        }
        let mut buf = bytes;
        let format = take_u8(&mut buf)?;
        if format != CONTEXT_FORMAT {
            return Err(DecodeError::UnknownFormat(format));
        }
        let n = take_varint(&mut buf)?;
        for _ in 0..n {
            let a = take_u64(&mut buf)?;
            let c = take_varint(&mut buf)?;
            if a == dot.actor {
                return Ok(c >= dot.counter);
            }
        }
        Ok(false)
    }

    /// Refuse a vector with a counter beyond `now_micros` plus the allowed
    /// skew: no node can have minted it yet.
    pub fn check_not_ahead(&self, now_micros: u64) -> Result<(), DecodeError> {
        let limit = now_micros.saturating_add(MAX_CONTEXT_SKEW_MICROS);
        match self.0.iter().find(|&(_, &c)| c > limit) {
            Some((&actor, &counter)) => Err(DecodeError::CounterAhead {
                actor,
                counter,
                limit,
            }),
            None => Ok(()),
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        put_varint(out, self.0.len() as u64);
        for (&a, &c) in &self.0 {
            out.put_u64_le(a);
            put_varint(out, c);
        }
    }

    fn decode_from(buf: &mut &[u8]) -> Result<VersionVector, DecodeError> {
        let n = take_varint(buf)?;
        if n > MAX_DECODED_ENTRIES {
            return Err(DecodeError::Implausible("clock length"));
        }
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let a = take_u64(buf)?;
            let c = take_varint(buf)?;
            map.insert(a, c);
        }
        Ok(VersionVector(map))
    }
}

/// One concurrent version of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sibling {
    /// The write that made it.
    pub dot: Dot,
    /// Wall-clock time of the write, milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// The value, or `None` for a tombstone (a delete).
    pub value: Option<Bytes>,
}

impl Sibling {
    /// Whether this version is a delete.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// What a replica stores for a key: concurrent siblings and the clock of
/// everything seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionSet {
    clock: VersionVector,
    /// Sorted by dot.
    siblings: Vec<Sibling>,
}

impl VersionSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The clock: every dot this set has seen. This is the causal context
    /// handed to clients.
    pub fn clock(&self) -> &VersionVector {
        &self.clock
    }

    /// The concurrent versions, sorted by dot.
    pub fn siblings(&self) -> &[Sibling] {
        &self.siblings
    }

    /// No siblings at all.
    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty()
    }

    /// Every sibling is a tombstone (the key reads as absent).
    pub fn is_deleted(&self) -> bool {
        self.siblings.iter().all(Sibling::is_tombstone)
    }

    /// Apply a local write by `actor`: drop what `context` has seen and add the new sibling
    /// with a fresh dot. Refused, with the set unchanged, when no counter above everything
    /// seen is left, or when the set would hold more than `max_siblings` siblings (nothing is
    /// ever dropped to make room: each sibling is an acknowledged write).
    pub fn update(
        &mut self,
        context: &VersionVector,
        actor: Actor,
        value: Option<Bytes>,
        timestamp_ms: u64,
        max_siblings: usize,
    ) -> Result<Dot, UpdateError> {
        let kept = self
            .siblings
            .iter()
            .filter(|s| !context.covers(s.dot))
            .count();
        if kept + 1 > max_siblings.max(1) {
            return Err(TooManySiblings {
                would: kept + 1,
                max: max_siblings.max(1),
            }
            .into());
        }
        let seen = self.clock.get(actor).max(context.get(actor));
        let next = seen
            .checked_add(1)
            .ok_or(CounterExhausted { actor, seen })?;
        let counter = fresh_counter(next).ok_or(CounterExhausted { actor, seen })?;
        self.siblings.retain(|s| !context.covers(s.dot));
        let dot = Dot { actor, counter };
        self.clock.join(context);
        self.clock.add(dot);
        self.siblings.push(Sibling {
            dot,
            timestamp_ms,
            value,
        });
        self.siblings.sort_by_key(|s| s.dot);
        Ok(dot)
    }

    /// Merge another replica's set into this one. Returns true if this set changed. Refused,
    /// with this set unchanged, when the result would hold more than `max_siblings` siblings.
    pub fn merge(
        &mut self,
        other: &VersionSet,
        max_siblings: usize,
    ) -> Result<bool, TooManySiblings> {
        let before = self.clone();
        let mut kept: Vec<Sibling> = Vec::with_capacity(self.siblings.len() + other.siblings.len());
        for s in &self.siblings {
            let in_other = other.siblings.iter().any(|o| o.dot == s.dot);
            if in_other || !other.clock.covers(s.dot) {
                kept.push(s.clone());
            }
        }
        for o in &other.siblings {
            let in_self = self.siblings.iter().any(|s| s.dot == o.dot);
            if !in_self && !self.clock.covers(o.dot) {
                kept.push(o.clone());
            }
        }
        kept.sort_by_key(|s| s.dot);
        kept.dedup_by_key(|s| s.dot);
        if kept.len() > max_siblings.max(1) {
            return Err(TooManySiblings {
                would: kept.len(),
                max: max_siblings.max(1),
            });
        }
        self.siblings = kept;
        self.clock.join(&other.clock);
        Ok(*self != before)
    }

    /// Whether this set has seen everything `other` has (merging `other` in
    /// would change nothing).
    pub fn dominates(&self, other: &VersionSet) -> bool {
        matches!(
            self.clock.compare(&other.clock),
            Ordering::Equal | Ordering::Descends
        ) && other
            .siblings
            .iter()
            .all(|o| self.siblings.iter().any(|s| s.dot == o.dot) || self.clock.covers(o.dot))
    }

    /// Canonical bytes (see docs/storage-format.md, "Version sets").
    pub fn encode(&self) -> Vec<u8> {
        let payload: usize = self
            .siblings
            .iter()
            .map(|s| s.value.as_ref().map_or(0, Bytes::len) + 24)
            .sum();
        let mut out = Vec::with_capacity(4 + self.clock.0.len() * 12 + payload);
        out.put_u8(SET_FORMAT);
        self.clock.encode_into(&mut out);
        put_varint(&mut out, self.siblings.len() as u64);
        for s in &self.siblings {
            out.put_u64_le(s.dot.actor);
            put_varint(&mut out, s.dot.counter);
            put_varint(&mut out, s.timestamp_ms);
            match &s.value {
                None => out.put_u8(0),
                Some(v) => {
                    out.put_u8(1);
                    put_varint(&mut out, v.len() as u64);
                    out.extend_from_slice(v);
                }
            }
        }
        out
    }

    /// Decode bytes made by [`VersionSet::encode`]. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<VersionSet, DecodeError> {
        let mut buf = bytes;
        let format = take_u8(&mut buf)?;
        if format != SET_FORMAT {
            return Err(DecodeError::UnknownFormat(format));
        }
        let clock = VersionVector::decode_from(&mut buf)?;
        let n = take_varint(&mut buf)?;
        if n > MAX_DECODED_ENTRIES {
            return Err(DecodeError::Implausible("sibling count"));
        }
        let mut siblings = Vec::with_capacity((n as usize).min(64));
        for _ in 0..n {
            let actor = take_u64(&mut buf)?;
            let counter = take_varint(&mut buf)?;
            let timestamp_ms = take_varint(&mut buf)?;
            let value = match take_u8(&mut buf)? {
                0 => None,
                1 => {
                    let len = take_varint(&mut buf)?;
                    let len = usize::try_from(len)
                        .ok()
                        .filter(|&l| l <= buf.len())
                        .ok_or(DecodeError::Truncated)?;
                    let v = Bytes::copy_from_slice(buf.get(..len).ok_or(DecodeError::Truncated)?);
                    buf.advance(len);
                    Some(v)
                }
                _ => return Err(DecodeError::Implausible("sibling kind")),
            };
            siblings.push(Sibling {
                dot: Dot { actor, counter },
                timestamp_ms,
                value,
            });
        }
        if !buf.is_empty() {
            return Err(DecodeError::Trailing(buf.len()));
        }
        Ok(VersionSet { clock, siblings })
    }
}

/// The newest write time among the siblings of an encoded set, read without
/// copying any value (None if the bytes do not decode).
pub fn newest_timestamp(bytes: &[u8]) -> Option<u64> {
    let mut buf = bytes;
    if take_u8(&mut buf).ok()? != SET_FORMAT {
        return None;
    }
    VersionVector::decode_from(&mut buf).ok()?;
    let n = take_varint(&mut buf).ok()?;
    let mut newest = 0;
    for _ in 0..n {
        take_u64(&mut buf).ok()?;
        take_varint(&mut buf).ok()?;
        newest = newest.max(take_varint(&mut buf).ok()?);
        if take_u8(&mut buf).ok()? == 1 {
            let len = usize::try_from(take_varint(&mut buf).ok()?).ok()?;
            buf = buf.get(len..)?;
        }
    }
    Some(newest)
}

/// The actors one data directory writes as: a random base id, minted once,
/// and an epoch. The actor of epoch 0 is the base itself (so directories
/// written before epochs existed keep their identity); every later epoch's
/// actor is derived from the base and the epoch.
///
/// A dot `(actor, c)` with clock entry `actor: c` claims every earlier dot of
/// that actor for the key. That is only true while the node still has every
/// dot it minted for the key, so the epoch moves on whenever it may not:
/// when a local version set that holds the current actor is removed (handed
/// off, cleaned up), and after an unclean stop when the commit log was not
/// synced on every write. Writes always mint with the current epoch's actor;
/// see docs/failures.md, "Actor epochs".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActorEpochs {
    base: Actor,
    epoch: u64,
}

impl ActorEpochs {
    /// The actors of `base` at `epoch`.
    pub fn new(base: Actor, epoch: u64) -> Self {
        ActorEpochs { base, epoch }
    }

    /// The data directory's base id.
    pub fn base(&self) -> Actor {
        self.base
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The actor new dots are minted with.
    pub fn actor(&self) -> Actor {
        if self.epoch == 0 {
            self.base
        } else {
            xxhash_rust::xxh3::xxh3_64_with_seed(&self.epoch.to_le_bytes(), self.base)
        }
    }

    /// Whether dropping a local set with this clock loses history of the
    /// current actor (it minted a dot for that key), so the epoch must move
    /// on before the set goes. A set without the current actor holds no
    /// history of it: every dot it mints for a key lands in the local set.
    pub fn must_retire(&self, clock: &VersionVector) -> bool {
        clock.get(self.actor()) > 0
    }

    /// The next epoch (None after the last one).
    pub fn next(&self) -> Option<ActorEpochs> {
        Some(ActorEpochs {
            base: self.base,
            epoch: self.epoch.checked_add(1)?,
        })
    }
}

/// Highest counter this process has handed out.
static LAST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A counter at least `min`, at least the wall clock in microseconds, and
/// larger than any this process handed out before: fresh for the actor even
/// when the key's own history is gone. None when the process has handed out
/// the largest counter already (never wraps).
///
/// A `min` far ahead of the clock (a corrupt clock from a peer) is honoured
/// for its key but does not drag the process-wide counter with it, so one bad
/// key cannot use up the counters of every other key.
fn fresh_counter(min: u64) -> Option<u64> {
    let now = now_micros();
    let mut last = LAST_COUNTER.load(AtomicOrdering::Relaxed);
    loop {
        let next = min.max(now).max(last.checked_add(1)?);
        let record = if next > now.saturating_add(MAX_CONTEXT_SKEW_MICROS) {
            last
        } else {
            next
        };
        match LAST_COUNTER.compare_exchange_weak(
            last,
            record,
            AtomicOrdering::Relaxed,
            AtomicOrdering::Relaxed,
        ) {
            Ok(_) => return Some(next),
            Err(seen) => last = seen,
        }
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_millis() -> u64 {
    now_micros() / 1000
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = take_u8(buf)?;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError::Implausible("varint"))
}

fn take_u8(buf: &mut &[u8]) -> Result<u8, DecodeError> {
    if buf.is_empty() {
        return Err(DecodeError::Truncated);
    }
    Ok(buf.get_u8())
}

fn take_u64(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    if buf.len() < 8 {
        return Err(DecodeError::Truncated);
    }
    Ok(buf.get_u64_le())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Actor = 1;
    const B: Actor = 2;
    const MAX: usize = 64;

    fn val(s: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn values(set: &VersionSet) -> Vec<String> {
        let mut v: Vec<String> = set
            .siblings()
            .iter()
            .map(|s| match &s.value {
                Some(b) => String::from_utf8_lossy(b).into_owned(),
                None => "<tombstone>".into(),
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_context_covers_the_dots_of_what_it_saw_and_no_others() {
        let mut s = VersionSet::new();
        let d1 = s
            .update(&VersionVector::new(), A, val("v1"), 1, MAX)
            .unwrap();
        let ctx = s.clock().encode_context();
        let d2 = s
            .update(&VersionVector::new(), B, val("v2"), 2, MAX)
            .unwrap();
        assert_eq!(VersionVector::context_covers(&ctx, d1), Ok(true));
        assert_eq!(VersionVector::context_covers(&ctx, d2), Ok(false));
        // A node's signature after the clock is ignored.
        let mut signed = s.clock().encode_context();
        signed.extend_from_slice(&[0xAB; 32]);
        assert_eq!(VersionVector::context_covers(&signed, d1), Ok(true));
        assert_eq!(VersionVector::context_covers(&signed, d2), Ok(true));
        let later = Dot {
            actor: A,
            counter: d1.counter + 1,
        };
        assert_eq!(VersionVector::context_covers(&signed, later), Ok(false));
        assert_eq!(VersionVector::context_covers(&[], d1), Ok(false));
        assert!(VersionVector::context_covers(&[9, 1], d1).is_err());
        assert!(VersionVector::context_covers(&ctx[..ctx.len() - 1], d2).is_err());
    }

    #[test]
    fn put_with_context_supersedes_what_it_saw() {
        let mut s = VersionSet::new();
        s.update(&VersionVector::new(), A, val("v1"), 1, MAX)
            .unwrap();
        let ctx = s.clock().clone();
        s.update(&ctx, A, val("v2"), 2, MAX).unwrap();
        assert_eq!(values(&s), ["v2"]);
    }

    #[test]
    fn blind_concurrent_puts_become_siblings_and_merged_context_resolves() {
        let mut s = VersionSet::new();
        s.update(&VersionVector::new(), A, val("x"), 1, MAX)
            .unwrap();
        // Two clients both read nothing, then write.
        s.update(&VersionVector::new(), A, val("y"), 2, MAX)
            .unwrap();
        assert_eq!(values(&s), ["x", "y"]);
        // A reader sees both and writes with the merged context.
        let ctx = s.clock().clone();
        s.update(&ctx, A, val("z"), 3, MAX).unwrap();
        assert_eq!(values(&s), ["z"]);
    }

    #[test]
    fn concurrent_writes_at_two_replicas_merge_into_siblings() {
        let mut base = VersionSet::new();
        base.update(&VersionVector::new(), A, val("v0"), 1, MAX)
            .unwrap();
        let ctx = base.clock().clone();
        let mut at_a = base.clone();
        let mut at_b = base.clone();
        at_a.update(&ctx, A, val("from-a"), 2, MAX).unwrap();
        at_b.update(&ctx, B, val("from-b"), 2, MAX).unwrap();
        let mut m1 = at_a.clone();
        m1.merge(&at_b, MAX).unwrap();
        let mut m2 = at_b.clone();
        m2.merge(&at_a, MAX).unwrap();
        assert_eq!(values(&m1), ["from-a", "from-b"]);
        assert_eq!(m1, m2, "merge is commutative");
        assert_eq!(m1.encode(), m2.encode(), "encoding is canonical");
    }

    #[test]
    fn stale_replica_catches_up_without_resurrecting() {
        let mut fresh = VersionSet::new();
        fresh
            .update(&VersionVector::new(), A, val("old"), 1, MAX)
            .unwrap();
        let stale = fresh.clone();
        let ctx = fresh.clock().clone();
        fresh.update(&ctx, A, val("new"), 2, MAX).unwrap();
        let mut repaired = stale.clone();
        let changed = repaired.merge(&fresh, MAX).unwrap();
        assert!(changed);
        assert_eq!(values(&repaired), ["new"]);
        let mut f2 = fresh.clone();
        let changed = f2.merge(&stale, MAX).unwrap();
        assert!(!changed, "an older set changes nothing");
        assert!(fresh.dominates(&stale));
        assert!(!stale.dominates(&fresh));
    }

    #[test]
    fn delete_concurrent_with_put_is_a_sibling() {
        let mut s = VersionSet::new();
        s.update(&VersionVector::new(), A, val("v"), 1, MAX)
            .unwrap();
        let ctx = s.clock().clone();
        let mut del = s.clone();
        del.update(&ctx, A, None, 2, MAX).unwrap();
        assert!(del.is_deleted());
        let mut put = s.clone();
        put.update(&ctx, B, val("w"), 2, MAX).unwrap();
        del.merge(&put, MAX).unwrap();
        assert_eq!(values(&del), ["<tombstone>", "w"]);
        assert!(!del.is_deleted());
    }

    #[test]
    fn a_write_beyond_the_sibling_bound_is_refused_and_nothing_is_dropped() {
        let mut s = VersionSet::new();
        for i in 0..4 {
            s.update(&VersionVector::new(), A, val(&format!("v{i}")), i, 4)
                .unwrap();
        }
        let before = s.clone();
        assert_eq!(
            s.update(&VersionVector::new(), A, val("v4"), 4, 4),
            Err(UpdateError::TooMany(TooManySiblings { would: 5, max: 4 }))
        );
        assert_eq!(s, before, "a refused write changes nothing");
        // A write that saw them all resolves them, and fits.
        let ctx = s.clock().clone();
        s.update(&ctx, A, val("resolved"), 5, 4).unwrap();
        assert_eq!(values(&s), ["resolved"]);
        // A merge beyond its cap is refused too, leaving the set as it was.
        let mut other = VersionSet::new();
        for i in 0..3 {
            other
                .update(&VersionVector::new(), B, val(&format!("b{i}")), i, 4)
                .unwrap();
        }
        let before = s.clone();
        assert_eq!(
            s.merge(&other, 3),
            Err(TooManySiblings { would: 4, max: 3 })
        );
        assert_eq!(s, before);
        assert_eq!(s.merge(&other, 4), Ok(true));
        assert_eq!(s.siblings().len(), 4);
    }

    #[test]
    fn dots_stay_fresh_after_history_is_gone() {
        // A purged tombstone leaves no per-key clock; a stale context from
        // before must not cover the next write.
        let mut s = VersionSet::new();
        s.update(&VersionVector::new(), A, val("v"), 1, MAX)
            .unwrap();
        let old_ctx = s.clock().clone();
        let mut after_purge = VersionSet::new();
        after_purge
            .update(&VersionVector::new(), A, val("new"), 2, MAX)
            .unwrap();
        let mut other = VersionSet::new();
        other
            .update(&old_ctx, B, val("stale-writer"), 3, MAX)
            .unwrap();
        after_purge.merge(&other, MAX).unwrap();
        assert_eq!(values(&after_purge), ["new", "stale-writer"]);
    }

    #[test]
    fn context_round_trip_and_garbage() {
        let mut vv = VersionVector::new();
        vv.add(Dot {
            actor: 7,
            counter: 300,
        });
        vv.add(Dot {
            actor: 1,
            counter: 1,
        });
        let bytes = vv.encode_context();
        assert_eq!(VersionVector::decode_context(&bytes).unwrap(), vv);
        assert!(VersionVector::decode_context(&[]).unwrap().is_empty());
        assert!(VersionVector::decode_context(&[9, 9]).is_err());
        assert!(VersionVector::decode_context(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn crafted_context_counters_are_refused() {
        let now = 1_700_000_000_000_000;
        let mut vv = VersionVector::new();
        vv.add(Dot {
            actor: A,
            counter: u64::MAX,
        });
        let bytes = vv.encode_context();
        assert!(
            VersionVector::decode_context(&bytes).is_err(),
            "a counter at u64::MAX is far beyond any clock"
        );
        assert!(matches!(
            VersionVector::decode_context_at(&bytes, now),
            Err(DecodeError::CounterAhead {
                actor: A,
                counter: u64::MAX,
                ..
            })
        ));
        // Within the skew is fine; just past it is not.
        let at = |counter| {
            let mut v = VersionVector::new();
            v.add(Dot { actor: B, counter });
            VersionVector::decode_context_at(&v.encode_context(), now)
        };
        assert!(at(now + MAX_CONTEXT_SKEW_MICROS).is_ok());
        assert!(at(now + MAX_CONTEXT_SKEW_MICROS + 1).is_err());
        // A context over the size limit is refused before it is decoded.
        let mut big = VersionVector::new();
        for actor in 0..(MAX_CONTEXT_BYTES as u64 / 9) {
            big.add(Dot { actor, counter: 1 });
        }
        let err = VersionVector::decode_context_at(&big.encode_context(), now).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TooLarge {
                max: MAX_CONTEXT_BYTES,
                ..
            }
        ));
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[test]
    fn update_and_merge_never_wrap_or_panic() {
        // A clock that claims the last counter (a corrupt or crafted peer set).
        let mut maxed = VersionVector::new();
        maxed.add(Dot {
            actor: A,
            counter: u64::MAX,
        });
        let mut s = VersionSet::new();
        s.update(&VersionVector::new(), A, val("v1"), 1, MAX)
            .unwrap();
        let before = s.clone();
        assert_eq!(
            s.update(&maxed, A, val("v2"), 2, MAX),
            Err(UpdateError::Exhausted(CounterExhausted {
                actor: A,
                seen: u64::MAX
            })),
            "no dot can be fresh: refuse instead of wrapping"
        );
        assert_eq!(s, before, "a refused write changes nothing");
        // Another actor still writes, and its dot is fresh.
        let dot = s.update(&maxed, B, val("v3"), 3, MAX).unwrap();
        assert!(dot.counter > 0 && s.siblings().iter().any(|x| x.dot == dot));
        // Merging sets at the extremes never panics and stays commutative.
        let crafted = VersionSet {
            clock: maxed.clone(),
            siblings: vec![Sibling {
                dot: Dot {
                    actor: A,
                    counter: u64::MAX,
                },
                timestamp_ms: u64::MAX,
                value: val("max"),
            }],
        };
        let mut m1 = s.clone();
        m1.merge(&crafted, MAX).unwrap();
        let mut m2 = crafted.clone();
        m2.merge(&s, MAX).unwrap();
        assert_eq!(m1, m2);
        assert_eq!(m1.clock().get(A), u64::MAX);
        assert!(m1.update(&VersionVector::new(), A, None, 4, MAX).is_err());
        // The process-wide counter was not dragged to the end by that key.
        let mut other = VersionSet::new();
        let d = other
            .update(&VersionVector::new(), A, val("x"), 5, MAX)
            .unwrap();
        assert!(d.counter < u64::MAX / 2, "{d:?}");
    }

    /// A random history on three replicas (actor = replica): local writes
    /// with the context of some replica (or none), and merges between them.
    fn arb_replicas() -> impl Strategy<Value = Vec<VersionSet>> {
        prop::collection::vec((0usize..3, 0usize..4, any::<bool>(), any::<bool>()), 0..12).prop_map(
            |ops| {
                let mut reps = vec![VersionSet::new(); 3];
                for (i, ctx_from, tomb, is_merge) in ops {
                    if is_merge {
                        let other = reps[ctx_from % 3].clone();
                        reps[i].merge(&other, MAX).unwrap();
                    } else {
                        let ctx = reps
                            .get(ctx_from)
                            .map(|r| r.clock().clone())
                            .unwrap_or_default();
                        let value = if tomb { None } else { val(&format!("w{i}")) };
                        reps[i].update(&ctx, i as Actor, value, 0, MAX).unwrap();
                    }
                }
                reps
            },
        )
    }

    /// A history on three replicas with what a test can know that the sets
    /// do not: every dot minted (each one acknowledged), which dots each
    /// replica has really seen, and which dots a write's context superseded
    /// after seeing them.
    struct History {
        reps: Vec<VersionSet>,
        minted: Vec<Dot>,
        superseded: std::collections::BTreeSet<Dot>,
    }

    /// Run `(replica, other, kind, tombstone)` operations: kind 0-1 is a write
    /// at `replica` with the context of replica `other` (none when 3), kind 2
    /// merges `other` into `replica`, kind 3 hands `replica`'s set off to
    /// `other` and removes it locally (hinted handoff, cleanup), moving the
    /// actor epoch on as the replica does.
    fn run_history(ops: &[(usize, usize, u8, bool)]) -> History {
        use std::collections::BTreeSet;
        let mut reps = vec![VersionSet::new(); 3];
        let mut seen: Vec<BTreeSet<Dot>> = vec![BTreeSet::new(); 3];
        let mut epochs: Vec<ActorEpochs> = (0..3).map(|i| ActorEpochs::new(100 + i, 0)).collect();
        let mut minted = Vec::new();
        let mut superseded = BTreeSet::new();
        for (step, &(i, other, kind, tomb)) in ops.iter().enumerate() {
            match kind {
                0 | 1 => {
                    let (ctx, ctx_seen) = match (reps.get(other), seen.get(other)) {
                        (Some(r), Some(s)) => (r.clock().clone(), s.clone()),
                        _ => (VersionVector::new(), BTreeSet::new()),
                    };
                    let value = if tomb { None } else { val(&format!("w{step}")) };
                    let dot = reps[i]
                        .update(&ctx, epochs[i].actor(), value, step as u64, MAX)
                        .unwrap();
                    minted.push(dot);
                    superseded.extend(ctx_seen.iter().filter(|d| ctx.covers(**d)).copied());
                    seen[i].extend(ctx_seen);
                    seen[i].insert(dot);
                }
                2 => {
                    let j = other % 3;
                    let incoming = reps[j].clone();
                    reps[i].merge(&incoming, MAX).unwrap();
                    let s = seen[j].clone();
                    seen[i].extend(s);
                }
                _ => {
                    let j = other % 3;
                    if i == j {
                        continue;
                    }
                    let outgoing = reps[i].clone();
                    reps[j].merge(&outgoing, MAX).unwrap();
                    let s = seen[i].clone();
                    seen[j].extend(s);
                    if epochs[i].must_retire(outgoing.clock()) {
                        epochs[i] = epochs[i].next().unwrap();
                    }
                    reps[i] = VersionSet::new();
                    seen[i].clear();
                }
            }
        }
        History {
            reps,
            minted,
            superseded,
        }
    }

    #[test]
    fn fallback_reusing_its_actor_after_handoff_keeps_both_writes() {
        // F (0) coordinates a hinted write, hands it off to the owner (1) and
        // drops its copy; a later blind write through F must not claim it.
        let h = run_history(&[(0, 3, 0, false), (0, 1, 3, false), (0, 3, 0, false)]);
        let mut all = h.reps[1].clone();
        all.merge(&h.reps[0], MAX).unwrap();
        assert_eq!(values(&all), ["w0", "w2"]);
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(reps in arb_replicas()) {
            for s in reps {
                let bytes = s.encode();
                prop_assert_eq!(VersionSet::decode(&bytes).unwrap(), s);
            }
        }

        #[test]
        fn newest_timestamp_matches_a_full_decode(reps in arb_replicas()) {
            for s in reps {
                let newest = s.siblings().iter().map(|x| x.timestamp_ms).max().unwrap_or(0);
                prop_assert_eq!(newest_timestamp(&s.encode()), Some(newest));
            }
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = VersionSet::decode(&bytes);
            let _ = VersionVector::decode_context(&bytes);
            let _ = newest_timestamp(&bytes);
        }

        #[test]
        fn merge_is_commutative_idempotent_associative(reps in arb_replicas()) {
            let (a, b, c) = (&reps[0], &reps[1], &reps[2]);
            let mut ab = a.clone(); ab.merge(b, MAX).unwrap();
            let mut ba = b.clone(); ba.merge(a, MAX).unwrap();
            prop_assert_eq!(&ab, &ba);
            let mut aa = a.clone(); aa.merge(a, MAX).unwrap();
            prop_assert_eq!(&aa, a);
            let mut ab_c = ab.clone(); ab_c.merge(c, MAX).unwrap();
            let mut bc = b.clone(); bc.merge(c, MAX).unwrap();
            let mut a_bc = a.clone(); a_bc.merge(&bc, MAX).unwrap();
            prop_assert_eq!(&ab_c, &a_bc);
            // After merging everything, every replica dominates each input.
            for r in [a, b, c] {
                prop_assert!(ab_c.dominates(r));
            }
        }

        #[test]
        fn acknowledged_dot_is_never_dropped_unless_a_context_that_saw_it_superseded_it(
            ops in prop::collection::vec((0usize..3, 0usize..4, 0u8..4, any::<bool>()), 0..24)
        ) {
            let history = run_history(&ops);
            let mut all = VersionSet::new();
            for r in &history.reps {
                all.merge(r, MAX).unwrap();
            }
            for d in &history.minted {
                let kept = all.siblings().iter().any(|x| x.dot == *d);
                prop_assert!(
                    kept || history.superseded.contains(d),
                    "dot {:?} was acknowledged, never superseded, and is gone: {:?}",
                    d,
                    all
                );
            }
        }

        #[test]
        fn no_write_is_lost_unless_superseded(reps in arb_replicas()) {
            // Each replica's latest own write either survives the full merge,
            // or some surviving sibling was written with a context covering it.
            let mut all = reps[0].clone();
            all.merge(&reps[1], MAX).unwrap();
            all.merge(&reps[2], MAX).unwrap();
            for r in &reps {
                for s in r.siblings() {
                    let kept = all.siblings().iter().any(|x| x.dot == s.dot);
                    prop_assert!(kept || all.clock().covers(s.dot));
                }
            }
        }
    }
}
