//! The lost-write audit: given what clients did (every write they attempted, with the
//! context it carried, and which were acknowledged) and what a final read at R = N returns,
//! check that **every acknowledged write is present or was causally superseded** by a write
//! whose context covered it, and that no acknowledged delete was undone.
//!
//! One implementation, used by the nemesis test (`tests/nemesis.rs`) and meant for the
//! loadgen's audit. It needs no network: callers decode the contexts they hold
//! ([`client_context`]) and pass values, which must be unique per write.
//!
//! Superseding is judged by clocks: a put's reply context is the clock of the version set
//! its write produced, so a later write whose context dominates that clock saw it. Every
//! attempted write counts as a possible superseder, acknowledged or not (a write whose
//! outcome is unknown, or whose quorum failed, may still have been applied somewhere), so
//! the audit never blames the store for a write a client itself overwrote; it may miss a
//! loss hidden behind such a write.

use std::collections::{BTreeMap, HashSet};

use crate::version::{DecodeError, Dot, VersionVector};

/// One write a client attempted.
#[derive(Clone, Debug)]
pub struct Write {
    /// The key.
    pub key: Vec<u8>,
    /// The value written (unique per write); `None` for a delete.
    pub value: Option<Vec<u8>>,
    /// The context the write carried (empty for a blind write).
    pub context: VersionVector,
    /// When acknowledged: the context of the reply (covers the write).
    pub acked: Option<VersionVector>,
    /// When acknowledged: the version the write made, as the node named it. With it, "a
    /// later write saw this one" is exact (that write's context covers the dot); without it,
    /// the audit falls back to the reply's clock, which also covers any concurrent siblings
    /// the coordinator held, and so may call a superseded write lost.
    pub dot: Option<Dot>,
}

impl Write {
    /// Whether a write carrying `context` had seen this (acknowledged) one.
    fn seen_by(&self, context: &VersionVector) -> bool {
        match (self.dot, &self.acked) {
            (Some(dot), _) => context.covers(dot),
            (None, Some(reply)) => dominates(context, reply),
            (None, None) => false,
        }
    }
}

/// What a final read of a key returned.
#[derive(Clone, Debug, Default)]
pub struct FinalState {
    /// The values of every sibling (tombstones left out).
    pub values: Vec<Vec<u8>>,
}

/// A violation the audit found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged put is neither present nor superseded.
    Lost {
        /// The key.
        key: Vec<u8>,
        /// The value that vanished.
        value: Vec<u8>,
    },
    /// A value an acknowledged delete had seen is back.
    Resurrected {
        /// The key.
        key: Vec<u8>,
        /// The value that came back.
        value: Vec<u8>,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Violation::Lost { key, value } => write!(
                f,
                "key {:?}: acknowledged write {:?} is gone and no later write saw it",
                s(key),
                s(value)
            ),
            Violation::Resurrected { key, value } => write!(
                f,
                "key {:?}: {:?} is back after an acknowledged delete that saw it",
                s(key),
                s(value)
            ),
        }
    }
}

/// What the audit found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Acknowledged puts checked.
    pub acked_puts: usize,
    /// Of those, found in the final state.
    pub present: usize,
    /// Of those, gone because a later write saw them.
    pub superseded: usize,
    /// Acknowledged deletes checked.
    pub acked_deletes: usize,
    /// Everything wrong.
    pub violations: Vec<Violation>,
}

/// Whether `a` has seen everything `b` has.
pub fn dominates(a: &VersionVector, b: &VersionVector) -> bool {
    b.iter().all(|(actor, n)| a.get(actor) >= n)
}

/// Decodes a context a client holds: on a secure cluster it ends in a signature tag
/// (`signed`), which a client cannot check and the audit does not need.
pub fn client_context(bytes: &[u8], signed: bool) -> Result<VersionVector, DecodeError> {
    let raw = if signed && !bytes.is_empty() {
        let cut = bytes
            .len()
            .checked_sub(crate::security::contexts::TAG_BYTES)
            .ok_or(DecodeError::Truncated)?;
        bytes.get(..cut).ok_or(DecodeError::Truncated)?
    } else {
        bytes
    };
    VersionVector::decode_context(raw)
}

/// Audits `writes` against the final state of every key they touched. A key missing from
/// `finals` is taken as read back empty.
pub fn audit(writes: &[Write], finals: &BTreeMap<Vec<u8>, FinalState>) -> Report {
    let mut report = Report::default();
    let empty = FinalState::default();
    let mut by_key: BTreeMap<&[u8], Vec<&Write>> = BTreeMap::new();
    for w in writes {
        by_key.entry(w.key.as_slice()).or_default().push(w);
    }
    for (key, ws) in by_key {
        let fin = finals.get(key).unwrap_or(&empty);
        let present: HashSet<&[u8]> = fin.values.iter().map(Vec::as_slice).collect();
        for w in &ws {
            if w.acked.is_none() {
                continue;
            }
            match &w.value {
                Some(v) => {
                    report.acked_puts += 1;
                    if present.contains(v.as_slice()) {
                        report.present += 1;
                    } else if ws.iter().any(|x| w.seen_by(&x.context)) {
                        report.superseded += 1;
                    } else {
                        report.violations.push(Violation::Lost {
                            key: key.to_vec(),
                            value: v.clone(),
                        });
                    }
                }
                None => {
                    report.acked_deletes += 1;
                    // Every value this delete saw must stay gone.
                    for x in &ws {
                        if let Some(v) = &x.value
                            && x.acked.is_some()
                            && present.contains(v.as_slice())
                            && x.seen_by(&w.context)
                        {
                            report.violations.push(Violation::Resurrected {
                                key: key.to_vec(),
                                value: v.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    report
}

/// How many acknowledged writes a last-writer-wins store would have silently dropped on the
/// same history, for comparison: per key, in the order `writes` lists them (the order they
/// were sent), an acknowledged write whose next write did not see it (that write's context
/// does not cover its dot, or without a dot, its reply clock). Under last-writer-wins that
/// next write replaces it without anyone having read it; ringkv keeps both as siblings.
pub fn lww_would_lose(writes: &[Write]) -> usize {
    let mut by_key: BTreeMap<&[u8], Vec<&Write>> = BTreeMap::new();
    for w in writes {
        by_key.entry(w.key.as_slice()).or_default().push(w);
    }
    by_key
        .values()
        .flat_map(|ws| ws.windows(2))
        .filter(|pair| match pair {
            [w, next] => w.acked.is_some() && !w.seen_by(&next.context),
            _ => false,
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Dot;

    fn vv(dots: &[(u64, u64)]) -> VersionVector {
        let mut v = VersionVector::new();
        for &(actor, counter) in dots {
            v.add(Dot { actor, counter });
        }
        v
    }

    fn put(key: &str, value: &str, ctx: VersionVector, acked: Option<VersionVector>) -> Write {
        Write {
            key: key.into(),
            value: Some(value.into()),
            context: ctx,
            acked,
            dot: None,
        }
    }

    fn state(values: &[&str]) -> FinalState {
        FinalState {
            values: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn a_write_superseded_by_its_dot_is_not_lost_though_its_reply_covered_a_sibling() {
        // s (actor 2) and a (actor 1) are concurrent; a's coordinator already held s, so a's
        // reply clock covers both. b saw a but not s: it supersedes a, and s stays.
        let s_ = put("k", "s", vv(&[]), Some(vv(&[(2, 1)])));
        let mut a = put("k", "a", vv(&[]), Some(vv(&[(1, 1), (2, 1)])));
        a.dot = Some(Dot {
            actor: 1,
            counter: 1,
        });
        let b = put("k", "b", vv(&[(1, 1)]), Some(vv(&[(1, 2)])));
        let fin = BTreeMap::from([(b"k".to_vec(), state(&["s", "b"]))]);
        let r = audit(&[s_.clone(), a.clone(), b.clone()], &fin);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.superseded, 1);
        // Without the dot only the reply's clock can tell, and it says a was not seen.
        a.dot = None;
        let r = audit(&[s_, a, b], &fin);
        assert_eq!(r.violations.len(), 1);
    }

    #[test]
    fn last_writer_wins_would_lose_the_writes_their_successor_did_not_see() {
        let a = put("k", "a", vv(&[]), Some(vv(&[(1, 1)])));
        // b saw a: nothing lost under either.
        let b = put("k", "b", vv(&[(1, 1)]), Some(vv(&[(1, 2)])));
        // c is blind: under LWW it silently replaces b.
        let c = put("k", "c", vv(&[]), Some(vv(&[(2, 1)])));
        // Another key's history does not interleave.
        let x = put("x", "x", vv(&[]), Some(vv(&[(1, 5)])));
        assert_eq!(
            lww_would_lose(&[a.clone(), b.clone(), x.clone(), c.clone()]),
            1
        );
        assert_eq!(lww_would_lose(&[a, b]), 0);
        assert_eq!(lww_would_lose(&[x]), 0);
    }

    #[test]
    fn present_and_superseded_writes_pass_and_a_dropped_one_is_reported() {
        let a = put("k", "a", vv(&[]), Some(vv(&[(1, 1)])));
        // b saw a (its context dominates a's reply): a may go.
        let b = put("k", "b", vv(&[(1, 1)]), Some(vv(&[(1, 2)])));
        // c is blind and concurrent with b: it must stay.
        let c = put("k", "c", vv(&[]), Some(vv(&[(2, 1)])));
        let finals = BTreeMap::from([(b"k".to_vec(), state(&["b", "c"]))]);
        let r = audit(&[a.clone(), b.clone(), c.clone()], &finals);
        assert_eq!((r.acked_puts, r.present, r.superseded), (3, 2, 1));
        assert!(r.violations.is_empty(), "{:?}", r.violations);

        // A doctored history: c dropped from the final state.
        let doctored = BTreeMap::from([(b"k".to_vec(), state(&["b"]))]);
        let r = audit(&[a, b, c], &doctored);
        assert_eq!(
            r.violations,
            vec![Violation::Lost {
                key: b"k".to_vec(),
                value: b"c".to_vec()
            }]
        );
    }

    #[test]
    fn an_unacknowledged_write_may_supersede_but_is_never_required() {
        let a = put("k", "a", vv(&[]), Some(vv(&[(1, 1)])));
        let lost_in_flight = put("k", "x", vv(&[(1, 1)]), None);
        let finals = BTreeMap::from([(b"k".to_vec(), state(&[]))]);
        let r = audit(&[a, lost_in_flight], &finals);
        assert_eq!((r.acked_puts, r.superseded), (1, 1));
        assert!(r.violations.is_empty());
    }

    #[test]
    fn a_value_back_after_a_delete_that_saw_it_is_reported() {
        let a = put("k", "a", vv(&[]), Some(vv(&[(1, 1)])));
        let del = Write {
            key: b"k".to_vec(),
            value: None,
            context: vv(&[(1, 1)]),
            acked: Some(vv(&[(1, 2)])),
            dot: None,
        };
        let gone = BTreeMap::new();
        assert!(
            audit(&[a.clone(), del.clone()], &gone)
                .violations
                .is_empty()
        );
        let back = BTreeMap::from([(b"k".to_vec(), state(&["a"]))]);
        assert_eq!(
            audit(&[a, del], &back).violations,
            vec![Violation::Resurrected {
                key: b"k".to_vec(),
                value: b"a".to_vec()
            }]
        );
    }
}
