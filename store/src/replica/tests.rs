//! Replica-level scenarios: real engines in temp directories, several
//! replicas in one process, each step driven by hand so the order of events
//! is exact.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        assert!(f.finish_handoff(&hint, &sent, false).unwrap());
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
        all.merge(&r.fetch(key).unwrap().unwrap(), MAX).unwrap();
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

/// Issue 11, item 5: a write lands on the fallback after handoff read a key's
/// set but before the delivery is acknowledged. Its refreshed hint must stay
/// (and so must the local copy) until that newer version is delivered too.
#[test]
fn delivered_hint_removal_keeps_a_newer_hint_for_the_same_key() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let f = open(dirs[0].path(), "f");
    let o = open(dirs[1].path(), "o");
    let key = b"k";
    f.coordinate_put(key, val("v1"), &VersionVector::new(), 1, Some("o"))
        .unwrap();
    let hint = f
        .hints()
        .pending(f.engine(), "o", None, 64)
        .unwrap()
        .remove(0);
    let sent = f.fetch_raw(key).unwrap().unwrap();
    // A newer write while the batch is on the wire.
    let ctx = f.fetch(key).unwrap().unwrap().clock().clone();
    f.coordinate_put(key, val("v2"), &ctx, 2, Some("o"))
        .unwrap();
    o.merge(key, &VersionSet::decode(&sent).unwrap(), None)
        .unwrap();
    assert!(!f.finish_handoff(&hint, &sent, false).unwrap());
    let pending = f.hints().pending(f.engine(), "o", None, 64).unwrap();
    assert_eq!(pending.len(), 1, "the newer hint is still there");
    assert_eq!(f.hints().totals_for("o").count, 1);
    assert_eq!(values(&f.fetch(key).unwrap().unwrap()), ["v2"]);
    // Delivering it then removes hint and copy.
    hand_off(&f, &o, "o");
    assert_eq!(values(&o.fetch(key).unwrap().unwrap()), ["v2"]);
    assert!(f.hints().totals().is_empty());
}

/// Issue 11, item 6: a rebuild of the Merkle index racing a write whose
/// engine commit landed before the rebuild's scan but whose Merkle update
/// runs after the reset. The leaf must end up exact.
#[test]
fn merkle_rebuild_racing_a_write_in_flight_ends_exact() {
    use crate::ring::Segment;
    let dir = tempfile::tempdir().unwrap();
    let r = Arc::new(open(dir.path(), "n"));
    let segs = [Segment { start: 7, end: 7 }];
    r.rebuild_merkle(&segs).unwrap();
    for i in 0..20 {
        let k = format!("k{i}");
        r.coordinate_put(k.as_bytes(), val("v"), &VersionVector::new(), 1, None)
            .unwrap();
    }
    // A write in flight, done by hand: commit, then (later) its Merkle update.
    let key = b"k3";
    let pos = key_position(key);
    let dkey = data_key_at(pos, key);
    let guard = r.lock_for(key).lock();
    let old = r.engine.get(&dkey).unwrap().unwrap();
    let mut set = VersionSet::decode(&old).unwrap();
    let ctx = set.clock().clone();
    set.update(&ctx, r.actor(), val("new"), 9, MAX).unwrap();
    let new = set.encode();
    r.engine.put(&dkey, &new).unwrap();
    let rebuild = {
        let r = Arc::clone(&r);
        std::thread::spawn(move || r.rebuild_merkle(&segs))
    };
    // Give the rebuild every chance to run now (it must wait for the write).
    let deadline = Instant::now() + Duration::from_millis(500);
    while !rebuild.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    r.account(pos, key, Some(&old), Some(&new));
    drop(guard);
    rebuild.join().unwrap().unwrap();
    let raced = r.merkle().root(segs[0]);
    r.rebuild_merkle(&segs).unwrap();
    assert_eq!(raced, r.merkle().root(segs[0]), "the leaf is exact");
    assert_eq!(r.merkle().entries(), 20);
}

/// Issue 11, item 7: one oversized set from a peer is refused on its own;
/// the unrelated writes it would have shared a batch with go through.
#[test]
fn oversized_set_from_a_peer_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), "n");
    let set = |v: Vec<u8>| {
        let mut s = VersionSet::new();
        s.update(&VersionVector::new(), 42, Some(Bytes::from(v)), 1, MAX)
            .unwrap();
        s
    };
    let writes: Vec<LocalWrite> = (0..5)
        .map(|i| LocalWrite::Merge {
            key: Bytes::from(format!("k{i}")),
            incoming: set(if i == 2 { vec![0; 11_000] } else { vec![1; 10] }),
        })
        .collect();
    let mut ok = Vec::new();
    for w in writes {
        match r.check_write(&w) {
            Ok(()) => ok.push(w),
            Err(e) => {
                assert_eq!(w.key().as_ref(), b"k2");
                assert!(e.to_string().contains("limit"), "{e}");
            }
        }
    }
    assert_eq!(ok.len(), 4);
    assert_eq!(r.write_many(ok).unwrap().len(), 4);
    // A clock no node can have made is refused the same way.
    let mut ahead = VersionVector::new();
    ahead.add(crate::version::Dot {
        actor: 9,
        counter: u64::MAX,
    });
    let mut crafted = set(vec![1]);
    crafted
        .merge(
            &VersionSet::decode(&{
                let mut s = VersionSet::new();
                s.update(&ahead, 7, None, 1, MAX).unwrap();
                s.encode()
            })
            .unwrap(),
            MAX,
        )
        .unwrap();
    assert!(r.merge(b"k9", &crafted, None).is_err());
    assert!(r.fetch(b"k9").unwrap().is_none());
}

/// Cleanup removes what the node does not replicate, keeps what it does and
/// what a pending hint refers to, pages, and moves the actor epoch when it
/// drops the node's own writes.
#[test]
fn cleanup_removes_unowned_keys_but_not_hinted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), "n");
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    for k in &keys {
        r.coordinate_put(k.as_bytes(), val("v"), &VersionVector::new(), 1, None)
            .unwrap();
    }
    r.coordinate_put(b"hinted", val("h"), &VersionVector::new(), 1, Some("o"))
        .unwrap();
    let owned = |pos: u64| pos.is_multiple_of(2);
    let actor = r.actor();
    let (mut resume, mut removed, mut pages) = (None, 0, 0);
    loop {
        let page = r.cleanup_page(&owned, resume, 7).unwrap();
        removed += page.removed;
        pages += 1;
        assert!(pages < 100);
        match page.next {
            Some(n) => resume = Some(n),
            None => break,
        }
    }
    let unowned = keys
        .iter()
        .filter(|k| !owned(key_position(k.as_bytes())))
        .count() as u64;
    assert_eq!(removed, unowned);
    for k in &keys {
        let kept = r.fetch(k.as_bytes()).unwrap().is_some();
        assert_eq!(kept, owned(key_position(k.as_bytes())), "{k}");
    }
    assert!(r.fetch(b"hinted").unwrap().is_some(), "a hint refers to it");
    assert_ne!(r.actor(), actor, "its own writes were dropped: new epoch");
}
