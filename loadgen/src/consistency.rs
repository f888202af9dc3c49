//! Live consistency checking: which reads were stale, by how many versions, and how long after
//! the write they missed was acknowledged.
//!
//! The checker sees every operation of a point (preload included) on the runner's thread:
//!
//! - a write gets a per-key sequence number when it is sent ([`Checker::next_seq`]), which its
//!   value's header carries ([`crate::generator::trace`]); when it is acknowledged, the
//!   version it made (its dot) and the time go into the key's table of recent
//!   acknowledged writes ([`ACKS_PER_KEY`] of them);
//! - a read that **started after** a write's acknowledgement is stale when its context does
//!   not cover that write's dot: it returned neither the write nor anything that superseded
//!   it. Concurrent writes (siblings) are judged exactly, by their dots.
//!
//! Per point: the stale-read rate, k-staleness (how many acknowledged writes a stale read
//! missed, counted up to [`ACKS_PER_KEY`]), t-visibility (for stale reads, how long after its
//! acknowledgement the oldest missed write still was not visible) and the curve "probability
//! consistent against time since the key's last acknowledgement", which PBS predicts
//! ([`pbs`]).
//!
//! Times are those the runner sees: a write counts as acknowledged when its worker resumes,
//! at or after the real answer, so staleness is never overstated by the loadgen's own delay.
//! Memory is bounded: [`MAX_TRACKED_KEYS`] keys of about 140 bytes each, allocated when the
//! point starts; reads of keys beyond that are counted as not checked.

pub mod audit;
pub mod pbs;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use store::client::Dot;
use store::version::VersionVector;

use crate::generator::trace::Header;
use crate::generator::{OpKind, OpSpec, ValuePool};
use crate::target::{OpError, Seen};

/// Recent acknowledged writes remembered per key; k-staleness is counted up to this.
pub const ACKS_PER_KEY: usize = 4;
/// Keys whose writes are tracked; reads of keys beyond are not checked.
pub const MAX_TRACKED_KEYS: u64 = 1 << 20;
/// Upper edges of the "time since acknowledgement" bins of the consistency curve, µs.
pub const CURVE_EDGES_US: [u64; 17] = [
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    u64::MAX,
];

#[derive(Debug, Clone, Copy, Default)]
struct Ack {
    dot: Dot,
    at_us: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct KeyTrack {
    next_seq: u64,
    /// The most recent acknowledgements, oldest first (`len` valid).
    acks: [Ack; ACKS_PER_KEY],
    len: u8,
}

impl KeyTrack {
    fn push(&mut self, ack: Ack) {
        let len = usize::from(self.len);
        if len < ACKS_PER_KEY {
            self.acks[len] = ack;
            self.len += 1;
        } else {
            self.acks.rotate_left(1);
            self.acks[ACKS_PER_KEY - 1] = ack;
        }
    }
}

/// The live checker of one point.
pub struct Checker {
    enabled: bool,
    writer: u32,
    history: audit::History,
    origin: Instant,
    origin_wall_us: u64,
    /// Reads that start before this are not counted (warm-up, preload).
    counted_from_us: u64,
    keys: Vec<KeyTrack>,
    untracked_seq: u64,
    checked: u64,
    stale: u64,
    not_checked: u64,
    k_counts: [u64; ACKS_PER_KEY],
    t_visibility_us: Histogram<u64>,
    curve: [(u64, u64); CURVE_EDGES_US.len()],
}

impl Checker {
    /// A checker for a point with `key_count` keys; disabled, it does nothing and allocates
    /// nothing.
    pub fn new(enabled: bool, key_count: u64) -> Result<Checker, hdrhistogram::CreationError> {
        let tracked = if enabled {
            key_count.min(MAX_TRACKED_KEYS) as usize
        } else {
            0
        };
        let origin_wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Ok(Checker {
            enabled,
            writer: 0,
            history: audit::History::new(false, 0, 0),
            origin: Instant::now(),
            origin_wall_us,
            counted_from_us: u64::MAX,
            keys: vec![KeyTrack::default(); tracked],
            untracked_seq: 0,
            checked: 0,
            stale: 0,
            not_checked: 0,
            k_counts: [0; ACKS_PER_KEY],
            t_visibility_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)?,
            curve: [(0, 0); CURVE_EDGES_US.len()],
        })
    }

    /// Stamps `writer` into every value header: the shard of a loadgen that shares the load
    /// with others (`--shard`), so their values tell apart; 0 for a single process.
    pub fn with_writer(mut self, writer: u32) -> Checker {
        self.writer = writer;
        self
    }

    /// Records every write of the point for the lost-write audit.
    pub fn with_audit(mut self, history: audit::History) -> Checker {
        self.history = history;
        self
    }

    /// Whether writes are recorded for the audit.
    pub fn auditing(&self) -> bool {
        self.enabled && self.history.enabled()
    }

    /// The point's write history.
    pub fn history(&self) -> &audit::History {
        &self.history
    }

    /// The bytes `op` writes and the write's sequence number (0 for reads, or when not
    /// checking): the pool's filler for its key and size, with (when checking) a header naming
    /// the write stamped over its start in `buf`.
    pub fn value<'b>(
        &mut self,
        pool: &'b ValuePool,
        op: OpSpec,
        intended: Instant,
        buf: &'b mut Vec<u8>,
    ) -> (&'b [u8], u64) {
        let filler = pool.slice(op.key_index, op.value_len);
        if !self.enabled || op.kind == OpKind::Read {
            return (filler, 0);
        }
        let seq = self.next_seq(op.key_index);
        if op.kind == OpKind::Delete {
            return (filler, seq);
        }
        let header = Header {
            writer: self.writer,
            seq,
            intended_us: self.wall_us(intended),
        };
        buf.clear();
        buf.extend_from_slice(filler);
        header.stamp(buf);
        (buf, seq)
    }

    /// Takes in how `op` (write number `seq`, carrying `context`), sent at `sent`, ended at
    /// `done`.
    pub fn observe(
        &mut self,
        op: OpSpec,
        seq: u64,
        context: Option<&bytes::Bytes>,
        (sent, done): (Instant, Instant),
        result: &Result<Seen, OpError>,
    ) {
        if !self.enabled {
            return;
        }
        self.history.record(op, seq, context, result);
        if let Ok(seen) = result {
            match op.kind {
                OpKind::Read => self.read(op.key_index, sent, seen),
                OpKind::Write | OpKind::Delete | OpKind::ReadModifyWrite => {
                    self.acknowledged(op.key_index, seen, done)
                }
            }
        }
    }

    /// Whether values are traced and reads checked.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Reads that start at or after `start` count (the measured window).
    pub fn count_from(&mut self, start: Instant) {
        self.counted_from_us = self.us(start);
    }

    fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_micros() as u64
    }

    /// The wall-clock time of `t`, µs since the Unix epoch (for value headers).
    pub fn wall_us(&self, t: Instant) -> u64 {
        self.origin_wall_us.saturating_add(self.us(t))
    }

    /// The sequence number of the next write of `key` (from 1).
    pub fn next_seq(&mut self, key: u64) -> u64 {
        match usize::try_from(key).ok().and_then(|i| self.keys.get_mut(i)) {
            Some(k) => {
                k.next_seq = k.next_seq.saturating_add(1);
                k.next_seq
            }
            None => {
                self.untracked_seq = self.untracked_seq.saturating_add(1);
                self.untracked_seq
            }
        }
    }

    /// A write or delete of `key` was acknowledged at `at` (what it `saw`).
    pub fn acknowledged(&mut self, key: u64, seen: &Seen, at: Instant) {
        let Seen::Wrote { dot: Some(dot), .. } = seen else {
            return;
        };
        let at_us = self.us(at);
        if let Some(k) = usize::try_from(key).ok().and_then(|i| self.keys.get_mut(i)) {
            k.push(Ack { dot: *dot, at_us });
        }
    }

    /// A read of `key` sent at `started` answered with `seen`.
    pub fn read(&mut self, key: u64, started: Instant, seen: &Seen) {
        if !self.enabled {
            return;
        }
        let s = self.us(started);
        if s < self.counted_from_us {
            return;
        }
        let Some(track) = usize::try_from(key).ok().and_then(|i| self.keys.get(i)) else {
            self.not_checked += 1;
            return;
        };
        let Seen::Read { context, .. } = seen else {
            self.not_checked += 1;
            return;
        };
        let before = &track.acks[..usize::from(track.len)];
        let mut newest_ack = None;
        let mut oldest_missed = None;
        let mut missed = 0usize;
        for a in before.iter().filter(|a| a.at_us < s) {
            newest_ack = Some(newest_ack.map_or(a.at_us, |n: u64| n.max(a.at_us)));
            match VersionVector::context_covers(context, a.dot) {
                Ok(true) => {}
                Ok(false) => {
                    missed += 1;
                    oldest_missed = Some(oldest_missed.map_or(a.at_us, |o: u64| o.min(a.at_us)));
                }
                Err(_) => {
                    self.not_checked += 1;
                    return;
                }
            }
        }
        // A key with no acknowledged write before the read cannot be read stale.
        let Some(newest) = newest_ack else { return };
        self.checked += 1;
        let bin = curve_bin(s - newest);
        if let Some(b) = self.curve.get_mut(bin) {
            b.0 += 1;
        }
        if let Some(oldest) = oldest_missed {
            self.stale += 1;
            if let Some(b) = self.curve.get_mut(bin) {
                b.1 += 1;
            }
            if let Some(c) = self.k_counts.get_mut(missed.clamp(1, ACKS_PER_KEY) - 1) {
                *c += 1;
            }
            let _ = self.t_visibility_us.record((s - oldest).max(1));
        }
    }

    /// What the point measured (`None` when checking was off).
    pub fn finish(&self) -> Option<Measured> {
        if !self.enabled {
            return None;
        }
        let h = &self.t_visibility_us;
        let ms = |q: f64| (self.stale > 0).then(|| h.value_at_quantile(q) as f64 / 1000.0);
        let curve = CURVE_EDGES_US
            .iter()
            .zip(self.curve)
            .filter(|(_, (reads, _))| *reads > 0)
            .map(|(edge, (reads, stale))| CurvePoint {
                t_upper_ms: (*edge != u64::MAX).then(|| *edge as f64 / 1000.0),
                reads,
                stale,
            })
            .collect();
        Some(Measured {
            reads_checked: self.checked,
            stale_reads: self.stale,
            reads_not_checked: self.not_checked,
            stale_rate: (self.checked > 0).then(|| self.stale as f64 / self.checked as f64),
            k_staleness: self.k_counts.to_vec(),
            t_visibility_p50_ms: ms(0.5),
            t_visibility_p99_ms: ms(0.99),
            t_visibility_p999_ms: ms(0.999),
            curve,
        })
    }
}

fn curve_bin(age_us: u64) -> usize {
    CURVE_EDGES_US
        .iter()
        .position(|&e| age_us <= e)
        .unwrap_or(CURVE_EDGES_US.len() - 1)
}

/// One bin of the consistency curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Upper edge of "time since the key's last acknowledged write" (`null`: beyond 5 s).
    pub t_upper_ms: Option<f64>,
    /// Checked reads in the bin.
    pub reads: u64,
    /// Of those, stale.
    pub stale: u64,
}

/// What a point's checker measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Reads of keys with an acknowledged write before the read started.
    pub reads_checked: u64,
    /// Of those, stale.
    pub stale_reads: u64,
    /// Reads that could not be checked (key beyond the tracked ones, or an unreadable
    /// context).
    pub reads_not_checked: u64,
    /// `stale_reads / reads_checked` (`null` when nothing was checked).
    pub stale_rate: Option<f64>,
    /// Stale reads by how many acknowledged writes they missed: 1, 2, 3, 4 or more.
    pub k_staleness: Vec<u64>,
    /// t-visibility of stale reads, ms (`null` when no read was stale).
    pub t_visibility_p50_ms: Option<f64>,
    /// 99th percentile.
    pub t_visibility_p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub t_visibility_p999_ms: Option<f64>,
    /// Checked and stale reads by time since the key's last acknowledged write.
    pub curve: Vec<CurvePoint>,
}

impl Measured {
    /// The runs of one point taken together: counts and curves added, the stale rate
    /// recomputed, t-visibility percentiles the median over the runs that had stale reads.
    pub fn combine(runs: &[&Measured]) -> Option<Measured> {
        let first = runs.first()?;
        let mut out = (*first).clone();
        if runs.len() == 1 {
            return Some(out);
        }
        let sum = |f: fn(&Measured) -> u64| runs.iter().map(|m| f(m)).sum::<u64>();
        out.reads_checked = sum(|m| m.reads_checked);
        out.stale_reads = sum(|m| m.stale_reads);
        out.reads_not_checked = sum(|m| m.reads_not_checked);
        out.stale_rate =
            (out.reads_checked > 0).then(|| out.stale_reads as f64 / out.reads_checked as f64);
        out.k_staleness = (0..ACKS_PER_KEY)
            .map(|i| runs.iter().filter_map(|m| m.k_staleness.get(i)).sum())
            .collect();
        let median = |f: fn(&Measured) -> Option<f64>| {
            let xs: Vec<f64> = runs.iter().filter_map(|m| f(m)).collect();
            crate::stats::median(&xs)
        };
        out.t_visibility_p50_ms = median(|m| m.t_visibility_p50_ms);
        out.t_visibility_p99_ms = median(|m| m.t_visibility_p99_ms);
        out.t_visibility_p999_ms = median(|m| m.t_visibility_p999_ms);
        let mut curve: Vec<CurvePoint> = Vec::new();
        for p in runs.iter().flat_map(|m| &m.curve) {
            match curve.iter_mut().find(|c| c.t_upper_ms == p.t_upper_ms) {
                Some(c) => {
                    c.reads += p.reads;
                    c.stale += p.stale;
                }
                None => curve.push(p.clone()),
            }
        }
        curve.sort_by(|a, b| {
            let key = |c: &CurvePoint| c.t_upper_ms.unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
        out.curve = curve;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const A: u64 = 11;
    const B: u64 = 22;

    fn dot(actor: u64, counter: u64) -> Dot {
        Dot { actor, counter }
    }

    /// A read context covering `dots` (as a node would hand it out, with a signature).
    fn context_of(dots: &[Dot]) -> Seen {
        let mut vv = VersionVector::new();
        for d in dots {
            vv.add(*d);
        }
        let mut bytes = vv.encode_context();
        bytes.extend_from_slice(&[0; 32]);
        Seen::Read {
            context: bytes.into(),
            empty: false,
        }
    }

    fn wrote(actor: u64, counter: u64) -> Seen {
        Seen::Wrote {
            dot: Some(dot(actor, counter)),
            context: bytes::Bytes::new(),
            sent: None,
        }
    }

    fn at(c: &Checker, ms: u64) -> Instant {
        c.origin + Duration::from_millis(ms)
    }

    #[test]
    fn a_synthetic_history_gives_the_known_answers() {
        let mut c = Checker::new(true, 10).unwrap();
        c.count_from(at(&c, 0));
        // Key 1: w1 acked at 10 ms, w2 at 20 ms (w2 saw w1: its counter is higher).
        c.acknowledged(1, &wrote(A, 1), at(&c, 10));
        c.acknowledged(1, &wrote(A, 2), at(&c, 20));
        // Started before w1's ack: nothing to miss, not checked.
        c.read(1, at(&c, 5), &context_of(&[]));
        // Saw w2 (which covers w1): fresh.
        c.read(1, at(&c, 25), &context_of(&[dot(A, 2)]));
        // Saw only w1 after w2's ack: stale by one version, 5 ms after w2's ack.
        c.read(1, at(&c, 25), &context_of(&[dot(A, 1)]));
        // Saw nothing at all: stale by two, the older missed write 20 ms old.
        c.read(1, at(&c, 30), &context_of(&[]));
        // Started between the acks and saw w1: fresh (w2 was not yet acknowledged).
        c.read(1, at(&c, 15), &context_of(&[dot(A, 1)]));
        // Key 2: concurrent siblings from two actors; a read must cover both.
        c.acknowledged(2, &wrote(A, 5), at(&c, 10));
        c.acknowledged(2, &wrote(B, 7), at(&c, 11));
        c.read(2, at(&c, 12), &context_of(&[dot(A, 5), dot(B, 7)]));
        c.read(2, at(&c, 12), &context_of(&[dot(B, 7)]));
        let m = c.finish().unwrap();
        assert_eq!(m.reads_checked, 6);
        assert_eq!(m.stale_reads, 3);
        assert_eq!(m.k_staleness, vec![2, 1, 0, 0]);
        assert_eq!(m.stale_rate, Some(0.5));
        // t-visibility: 5 ms, 20 ms and 2 ms.
        let p99 = m.t_visibility_p99_ms.unwrap();
        assert!((p99 - 20.0).abs() < 0.1, "{p99}");
        let p50 = m.t_visibility_p50_ms.unwrap();
        assert!((p50 - 5.0).abs() < 0.1, "{p50}");
        // The curve bins reads by time since the key's last ack.
        let total: u64 = m.curve.iter().map(|p| p.reads).sum();
        assert_eq!(total, 6);
    }

    #[test]
    fn reads_before_the_window_and_beyond_the_tracked_keys_are_not_counted() {
        let mut c = Checker::new(true, 2).unwrap();
        c.acknowledged(0, &wrote(A, 1), at(&c, 1));
        c.count_from(at(&c, 100));
        c.read(0, at(&c, 50), &context_of(&[]));
        c.read(5, at(&c, 150), &context_of(&[]));
        c.read(0, at(&c, 150), &Seen::Nothing);
        let m = c.finish().unwrap();
        assert_eq!(m.reads_checked, 0);
        assert_eq!(m.reads_not_checked, 2);
        assert_eq!(m.stale_rate, None);
        assert_eq!(m.t_visibility_p99_ms, None);
        assert!(Checker::new(false, 10).unwrap().finish().is_none());
    }

    #[test]
    fn sequence_numbers_count_per_key() {
        let mut c = Checker::new(true, 4).unwrap();
        assert_eq!(c.next_seq(1), 1);
        assert_eq!(c.next_seq(1), 2);
        assert_eq!(c.next_seq(2), 1);
        assert_eq!(c.next_seq(99), 1);
        assert_eq!(c.next_seq(99), 2);
    }
}
