//! The lost-write audit of a point (`audit: true`, on by default for workloads with fault
//! events): every write the loadgen sent, with the context it carried and (when acknowledged)
//! the context of the answer, is checked after the run against a final read of every touched
//! key at R = N, by the store's own history checker ([`store::audit`], the one the nemesis
//! test uses). An acknowledged write must be present or causally superseded; an acknowledged
//! delete must not be undone. Beside it, for comparison, how many acknowledged writes a
//! last-writer-wins store would have silently dropped on the same history.
//!
//! Writes are told apart by their value's header (writer and per-key sequence), so the history
//! keeps 24 bytes per value, not the value. It keeps at most [`MAX_AUDITED_WRITES`] writes;
//! beyond that the audit says how many it could not record and fails, since an incomplete
//! history proves nothing.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use store::audit::{FinalState, Write};
use store::version::VersionVector;

use crate::generator::trace::Header;
use crate::generator::{OpKind, OpSpec, write_key};
use crate::target::{OpError, Seen};

/// Most writes one point's history holds (about 300 bytes each).
pub const MAX_AUDITED_WRITES: usize = 1_000_000;
/// Violations listed in the summary (all are counted).
const LISTED: usize = 20;

struct Entry {
    key: u64,
    seq: u64,
    delete: bool,
    context: VersionVector,
    acked: Option<VersionVector>,
    dot: Option<store::client::Dot>,
}

/// The writes of one point, for the audit.
pub struct History {
    enabled: bool,
    writer: u32,
    key_size: usize,
    entries: Vec<Entry>,
    not_recorded: u64,
    undecodable: u64,
}

impl History {
    /// A history of `writer`'s writes of keys `key_size` bytes long.
    pub fn new(enabled: bool, writer: u32, key_size: usize) -> History {
        History {
            enabled,
            writer,
            key_size,
            entries: Vec::new(),
            not_recorded: 0,
            undecodable: 0,
        }
    }

    /// Whether writes are recorded.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A context as a node handed it out: plain, or (secure clusters) followed by its
    /// signature, which a plain decode refuses as trailing bytes.
    fn decode(&mut self, bytes: &[u8]) -> Option<VersionVector> {
        match store::audit::client_context(bytes, false)
            .or_else(|_| store::audit::client_context(bytes, true))
        {
            Ok(v) => Some(v),
            Err(_) => {
                self.undecodable += 1;
                None
            }
        }
    }

    /// Records a write (`seq` is its value's sequence number) that ended with `result`;
    /// `held` is the context the loadgen held for the key when it was sent. An acknowledged
    /// write says which context it carried; for a put or delete that failed, `held` is the
    /// one it carried; a failed read-modify-write carried its get's, which is unknown, and is
    /// taken to have seen every write of the key recorded so far. Writes whose outcome is
    /// unknown or failed are kept: they may have been applied, so they may have superseded
    /// others.
    pub fn record(
        &mut self,
        op: OpSpec,
        seq: u64,
        held: Option<&Bytes>,
        result: &Result<Seen, OpError>,
    ) {
        if !self.enabled || op.kind == OpKind::Read {
            return;
        }
        if self.entries.len() >= MAX_AUDITED_WRITES {
            self.not_recorded += 1;
            return;
        }
        let sent = match result {
            Ok(Seen::Wrote { sent, .. }) => sent.as_ref(),
            _ => held,
        };
        let context = if op.kind == OpKind::ReadModifyWrite && result.is_err() {
            // Its get's context is unknown: it may have seen any write of the key acknowledged
            // so far, so it is taken to have (never blaming the store for what it may have
            // overwritten; a loss hidden behind it may go unseen).
            let mut seen = VersionVector::new();
            for e in self.entries.iter().filter(|e| e.key == op.key_index) {
                seen.join(&e.context);
                if let Some(a) = &e.acked {
                    seen.join(a);
                }
            }
            seen
        } else {
            match sent {
                Some(b) => match self.decode(b) {
                    Some(v) => v,
                    None => return,
                },
                None => VersionVector::new(),
            }
        };
        let (acked, dot) = match result {
            Ok(Seen::Wrote { context, dot, .. }) => match self.decode(context) {
                Some(v) => (Some(v), *dot),
                None => return,
            },
            _ => (None, None),
        };
        self.entries.push(Entry {
            key: op.key_index,
            seq,
            delete: op.kind == OpKind::Delete,
            context,
            acked,
            dot,
        });
    }

    /// Every key written, ascending.
    pub fn touched_keys(&self) -> Vec<u64> {
        let mut keys: Vec<u64> = self.entries.iter().map(|e| e.key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The key `key` names, as written.
    pub fn key_bytes(&self, key: u64) -> Vec<u8> {
        let mut k = vec![0u8; self.key_size];
        write_key(&mut k, key);
        k
    }

    /// The name a value goes by in the audit: its writer and sequence number.
    fn value_name(writer: u32, seq: u64) -> Vec<u8> {
        format!("w{writer}-s{seq}").into_bytes()
    }

    /// Checks the history against `finals` (every value each touched key holds after the
    /// run, read at R = N; a key missing from it could not be read).
    pub fn audit(&self, finals: &BTreeMap<u64, Vec<Bytes>>) -> Audit {
        let mut writes: Vec<(u64, u64, Write)> = self
            .entries
            .iter()
            .map(|e| {
                let w = Write {
                    key: self.key_bytes(e.key),
                    value: (!e.delete).then(|| Self::value_name(self.writer, e.seq)),
                    context: e.context.clone(),
                    acked: e.acked.clone(),
                    dot: e.dot,
                };
                (e.key, e.seq, w)
            })
            .collect();
        // Per key in the order the writes were sent (deletes have no sequence number of
        // their own, and keep their place by the order they were recorded).
        writes.sort_by_key(|(key, seq, _)| (*key, *seq));
        let writes: Vec<Write> = writes.into_iter().map(|(_, _, w)| w).collect();
        let mut states = BTreeMap::new();
        let mut foreign = 0u64;
        for (key, values) in finals {
            let names = values
                .iter()
                .filter_map(|v| match Header::parse(v) {
                    Some(h) => Some(Self::value_name(h.writer, h.seq)),
                    None => {
                        foreign += 1;
                        None
                    }
                })
                .collect();
            states.insert(self.key_bytes(*key), FinalState { values: names });
        }
        let touched = self.touched_keys();
        let unreadable = touched.iter().filter(|k| !finals.contains_key(k)).count() as u64;
        // Keys that could not be read are left out rather than taken as empty.
        let readable: Vec<Write> = writes
            .into_iter()
            .filter(|w| states.contains_key(&w.key))
            .collect();
        let report = store::audit::audit(&readable, &states);
        let lost = report
            .violations
            .iter()
            .filter(|v| matches!(v, store::audit::Violation::Lost { .. }))
            .count() as u64;
        Audit {
            writes: self.entries.len() as u64,
            acked_puts: report.acked_puts as u64,
            acked_deletes: report.acked_deletes as u64,
            present: report.present as u64,
            superseded: report.superseded as u64,
            lost_writes: lost,
            resurrected: report.violations.len() as u64 - lost,
            lww_would_lose: store::audit::lww_would_lose(&readable) as u64,
            keys_checked: touched.len() as u64 - unreadable,
            keys_unreadable: unreadable,
            writes_not_recorded: self.not_recorded + self.undecodable,
            foreign_values: foreign,
            violations: report
                .violations
                .iter()
                .take(LISTED)
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// What the audit found (`summary.json` `audit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    /// Writes and deletes recorded (acknowledged or not).
    pub writes: u64,
    /// Acknowledged puts checked.
    pub acked_puts: u64,
    /// Acknowledged deletes checked.
    pub acked_deletes: u64,
    /// Acknowledged puts found in the final state.
    pub present: u64,
    /// Acknowledged puts gone because a later write saw them.
    pub superseded: u64,
    /// Acknowledged puts gone without any later write having seen them (must be 0).
    pub lost_writes: u64,
    /// Values back after an acknowledged delete that saw them (must be 0).
    pub resurrected: u64,
    /// Acknowledged writes a last-writer-wins store would have silently dropped (their next
    /// write had not seen them).
    pub lww_would_lose: u64,
    /// Keys read back at R = N.
    pub keys_checked: u64,
    /// Touched keys that could not be read back (must be 0).
    pub keys_unreadable: u64,
    /// Writes missing from the history: beyond the cap, or with an unreadable context (must
    /// be 0 for the audit to mean anything).
    pub writes_not_recorded: u64,
    /// Values read back that no loadgen wrote (no header).
    pub foreign_values: u64,
    /// The first violations, in words.
    pub violations: Vec<String>,
}

impl Audit {
    /// True when nothing was lost or undone and the check was complete.
    pub fn passed(&self) -> bool {
        self.lost_writes == 0
            && self.resurrected == 0
            && self.keys_unreadable == 0
            && self.writes_not_recorded == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::client::Dot;

    fn ctx(dots: &[(u64, u64)]) -> Bytes {
        let mut v = VersionVector::new();
        for &(actor, counter) in dots {
            v.add(Dot { actor, counter });
        }
        Bytes::from(v.encode_context())
    }

    fn put(key: u64) -> OpSpec {
        OpSpec {
            kind: OpKind::Write,
            key_index: key,
            value_len: 100,
        }
    }

    /// Acknowledged with reply clock `dots`, having carried `sent`.
    fn acked(sent: &[(u64, u64)], dots: &[(u64, u64)]) -> Result<Seen, OpError> {
        Ok(Seen::Wrote {
            dot: None,
            context: ctx(dots),
            sent: (!sent.is_empty()).then(|| ctx(sent)),
        })
    }

    fn value(seq: u64) -> Bytes {
        let mut v = vec![0u8; 40];
        Header {
            writer: 0,
            seq,
            intended_us: 0,
        }
        .stamp(&mut v);
        Bytes::from(v)
    }

    /// Key 1: s1 acked, s2 saw it, s3 blind and concurrent with s2.
    fn history() -> History {
        let mut h = History::new(true, 0, 16);
        h.record(put(1), 1, None, &acked(&[], &[(1, 1)]));
        h.record(
            put(1),
            2,
            Some(&ctx(&[(1, 1)])),
            &acked(&[(1, 1)], &[(1, 2)]),
        );
        h.record(put(1), 3, None, &acked(&[], &[(2, 1)]));
        h
    }

    #[test]
    fn the_true_final_state_passes_with_the_lww_comparison() {
        let h = history();
        let finals = BTreeMap::from([(1, vec![value(2), value(3)])]);
        let a = h.audit(&finals);
        assert!(a.passed(), "{a:?}");
        assert_eq!((a.acked_puts, a.present, a.superseded), (3, 2, 1));
        // s3 did not see s2: last-writer-wins would have dropped s2.
        assert_eq!(a.lww_would_lose, 1);
        assert_eq!(h.touched_keys(), vec![1]);
    }

    #[test]
    fn a_doctored_final_state_with_a_dropped_write_fails_loudly() {
        let h = history();
        let finals = BTreeMap::from([(1, vec![value(3)])]);
        let a = h.audit(&finals);
        assert!(!a.passed());
        assert_eq!(a.lost_writes, 1);
        assert!(a.violations[0].contains("w0-s2"), "{:?}", a.violations);
        // A key that could not be read fails the audit too.
        let a = h.audit(&BTreeMap::new());
        assert_eq!(a.keys_unreadable, 1);
        assert!(!a.passed());
    }

    #[test]
    fn an_acknowledged_write_is_judged_by_the_context_it_carried() {
        // A read-modify-write carried its get's context (which saw s1), not the one the
        // loadgen held when it was sent (empty): s1 was superseded, not lost.
        let mut h = History::new(true, 0, 16);
        h.record(put(3), 1, None, &acked(&[], &[(1, 1)]));
        let rmw = OpSpec {
            kind: OpKind::ReadModifyWrite,
            key_index: 3,
            value_len: 100,
        };
        h.record(rmw, 2, None, &acked(&[(1, 1)], &[(1, 2)]));
        let a = h.audit(&BTreeMap::from([(3, vec![value(2)])]));
        assert!(a.passed(), "{a:?}");
        assert_eq!(a.superseded, 1);
    }

    #[test]
    fn a_failed_read_modify_write_may_have_seen_every_earlier_write() {
        let mut h = History::new(true, 0, 16);
        h.record(put(4), 1, None, &acked(&[], &[(1, 1)]));
        let rmw = OpSpec {
            kind: OpKind::ReadModifyWrite,
            key_index: 4,
            value_len: 100,
        };
        // Its outcome is unknown, and so is the context its get returned; the loadgen held none.
        h.record(rmw, 2, None, &Err(OpError::Indeterminate("broke".into())));
        let a = h.audit(&BTreeMap::from([(4, vec![value(2)])]));
        assert!(a.passed(), "{a:?}");
        assert_eq!(a.superseded, 1);
    }

    #[test]
    fn failed_writes_count_as_possible_superseders_and_reads_are_not_recorded() {
        let mut h = History::new(true, 0, 16);
        h.record(put(7), 1, None, &acked(&[], &[(1, 1)]));
        // Timed out, but it carried s1's context and may have been applied.
        h.record(put(7), 2, Some(&ctx(&[(1, 1)])), &Err(OpError::Timeout));
        let read = OpSpec {
            kind: OpKind::Read,
            key_index: 7,
            value_len: 0,
        };
        h.record(read, 0, None, &Ok(Seen::Nothing));
        let a = h.audit(&BTreeMap::from([(7, vec![value(2)])]));
        assert!(a.passed(), "{a:?}");
        assert_eq!((a.writes, a.acked_puts, a.superseded), (2, 1, 1));
    }
}
