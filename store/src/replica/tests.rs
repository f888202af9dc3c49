//! Replica-level scenarios: real engines in temp directories, several
//! replicas in one process, each step driven by hand so the order of events
//! is exact.

use std::path::Path;

use bytes::Bytes;

use super::*;
use crate::lsm::SyncPolicy;

const MAX: usize = 64;

fn open_with(dir: &Path, id: &str, sync: SyncPolicy) -> Replica {
    Replica::open(
        dir,
        ReplicaOptions {
            node_id: id.to_string(),
            max_key_bytes: 1024,
            max_value_bytes: 10240,
            max_siblings: MAX,
            engine: lsm::Options {
                sync,
                ..lsm::Options::default()
            },
        },
    )
    .unwrap()
}

fn open(dir: &Path, id: &str) -> Replica {
    open_with(dir, id, SyncPolicy::Always)
}

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

/// Deliver F's hints for `owner` the way handoff does: send the current set,
/// the owner merges it, then F removes the hint and (not being a replica of
/// the key) its own copy.
fn hand_off(f: &Replica, owner: &Replica, owner_id: &str) {
    let hints = f.hints().pending(f.engine(), owner_id, None, 64).unwrap();
    assert!(!hints.is_empty(), "F holds hints for {owner_id}");
    for hint in hints {
        let sent = f.fetch_raw(&hint.key).unwrap().unwrap();
        owner
            .merge(&hint.key, &VersionSet::decode(&sent).unwrap(), None)
            .unwrap();
        f.hints().remove(f.engine(), &hint, false).unwrap();
        assert!(f.remove_if_unchanged(&hint.key, &sent).unwrap());
    }
}

/// Issue 11, item 2, at the replica level: owner O down, hinted write v1
/// through fallback F (also stored at G), O back, handoff, F drops its copy,
/// O down again, blind write v2 through F from an empty local state. Before
/// actor epochs F minted v2 with its old actor, whose clock entry claimed v1,
/// and G dropped v1 on merge.
#[test]
fn fallback_blind_write_after_handoff_keeps_both_versions() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let f = open(dirs[0].path(), "f");
    let o = open(dirs[1].path(), "o");
    let g = open(dirs[2].path(), "g");
    let key = b"cart";
    let s1 = f
        .coordinate_put(key, val("v1"), &VersionVector::new(), 1, Some("o"))
        .unwrap();
    g.merge(key, &s1, None).unwrap();
    hand_off(&f, &o, "o");
    assert!(f.fetch(key).unwrap().is_none(), "F dropped its copy");
    let s2 = f
        .coordinate_put(key, val("v2"), &VersionVector::new(), 2, Some("o"))
        .unwrap();
    g.merge(key, &s2, None).unwrap();
    assert_eq!(values(&g.fetch(key).unwrap().unwrap()), ["v1", "v2"]);
    // Read at R = N: every replica's set merged.
    let mut all = o.fetch(key).unwrap().unwrap();
    for r in [&f, &g] {
        all.merge(&r.fetch(key).unwrap().unwrap(), MAX);
    }
    assert_eq!(values(&all), ["v1", "v2"], "both kept as siblings");
    // The new epoch survives a restart.
    let actor = f.actor();
    drop(f);
    let f = open(dirs[0].path(), "f");
    assert_eq!(f.actor(), actor);
}

/// A removal that drops no history of the current actor (the set came from
/// elsewhere) keeps the epoch: clocks do not grow for nothing.
#[test]
fn removing_a_set_the_node_never_wrote_keeps_the_actor() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let f = open(dirs[0].path(), "f");
    let g = open(dirs[1].path(), "g");
    let set = g
        .coordinate_put(b"k", val("v"), &VersionVector::new(), 1, None)
        .unwrap();
    f.merge(b"k", &set, None).unwrap();
    let raw = f.fetch_raw(b"k").unwrap().unwrap();
    let before = f.actor();
    assert!(f.remove_if_unchanged(b"k", &raw).unwrap());
    assert_eq!(f.actor(), before);
}

/// Under `--durability interval|never` an unclean stop may lose the tail of
/// the commit log, and with it dots the node minted and other replicas kept:
/// the next start must mint with a new actor. A clean stop, or an unclean
/// one with every write synced, keeps the actor.
#[test]
fn unclean_restart_without_synced_writes_starts_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let r = open_with(dir.path(), "n", SyncPolicy::EveryMs(1000));
    let first = r.actor();
    r.coordinate_put(b"k", val("v"), &VersionVector::new(), 1, None)
        .unwrap();
    drop(r); // no clean shutdown
    let r = open_with(dir.path(), "n", SyncPolicy::EveryMs(1000));
    let second = r.actor();
    assert_ne!(
        first, second,
        "an unclean stop under interval moves the epoch"
    );
    r.shutdown().unwrap();
    drop(r);
    let r = open_with(dir.path(), "n", SyncPolicy::Never);
    assert_eq!(r.actor(), second, "a clean stop keeps it");
    r.shutdown().unwrap();
    drop(r);
    let r = open(dir.path(), "n");
    drop(r); // unclean, but every write was synced
    let r = open(dir.path(), "n");
    assert_eq!(
        r.actor(),
        second,
        "nothing acknowledged can be lost under always"
    );
}
