//! Damaged files: bytes flipped and files truncated in the WAL, tables, manifest and
//! `CURRENT`. Opening or reading must give a typed error or a reported truncation; never a
//! panic, and never wrong data silently.

// Test helpers outside #[test] fns may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use store::lsm::{Compression, Engine, Error, Options, SyncPolicy};

const N: usize = 300;

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Always,
        block_bytes: 256,
        background_compaction: false,
        // Compress every level, so damaged compressed blocks are exercised too.
        uncompressed_levels: 0,
        // Small logs (they are preallocated to about a memtable) keep the copies cheap.
        memtable_bytes: 256 << 10,
        ..Options::default()
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn val(i: usize) -> Vec<u8> {
    format!("value-{i}-{}", "v".repeat(i % 30)).into_bytes()
}

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().contains(suffix))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != "LOCK" {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// A directory whose data lives only in the WAL (nothing flushed).
fn wal_only_db() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), opts()).unwrap();
    for i in 0..N {
        e.put(&key(i), &val(i)).unwrap();
    }
    e.close().unwrap();
    dir
}

/// A directory whose data lives in tables, written by several flushes (several manifest
/// edits), and nothing in the WAL.
fn table_db(compression: Compression) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(
        dir.path(),
        Options {
            compression,
            ..opts()
        },
    )
    .unwrap();
    for i in 0..N {
        e.put(&key(i), &val(i)).unwrap();
        if i % 100 == 99 {
            e.flush().unwrap();
        }
    }
    e.close().unwrap();
    dir
}

/// What reading everything back found.
struct Outcome {
    /// Keys returned with their right value.
    intact: usize,
    /// Keys returned as absent.
    missing: Vec<usize>,
    /// Reads that failed with a corruption error.
    errors: usize,
}

/// Opens `dir` and reads every key. Panics on wrong data or on an untyped failure.
fn read_back(dir: &Path) -> Result<(Outcome, store::lsm::EngineStats), Error> {
    let e = Engine::open(dir, opts())?;
    let mut out = Outcome {
        intact: 0,
        missing: Vec::new(),
        errors: 0,
    };
    for i in 0..N {
        match e.get(&key(i)) {
            Ok(Some(v)) => {
                assert_eq!(v, val(i), "key {i} returned a wrong value silently");
                out.intact += 1;
            }
            Ok(None) => out.missing.push(i),
            Err(err) => {
                assert!(
                    err.is_corruption(),
                    "read failed with a non-corruption error: {err}"
                );
                out.errors += 1;
            }
        }
    }
    for row in e.scan(..).unwrap() {
        match row {
            Ok((k, v)) => {
                let i: usize = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
                assert_eq!(v, val(i), "scan returned a wrong value silently");
            }
            Err(err) => {
                assert!(err.is_corruption(), "{err}");
                break;
            }
        }
    }
    let stats = e.stats();
    e.close().unwrap();
    Ok((out, stats))
}

/// Bytes of a (preallocated) log that were written: up to its last non-zero byte.
fn written_len(path: &Path) -> u64 {
    let b = std::fs::read(path).unwrap();
    b.iter().rposition(|&x| x != 0).map_or(0, |p| p as u64 + 1)
}

fn flip(path: &Path, offset: usize, mask: u8) {
    let mut b = std::fs::read(path).unwrap();
    b[offset] ^= mask;
    std::fs::write(path, b).unwrap();
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[test]
fn recover_after_torn_wal_tail() {
    let src = wal_only_db();

    let wal = files_with(src.path(), ".wal").pop().unwrap();
    truncate(&wal, written_len(&wal) - 3);
    let (out, stats) = read_back(src.path()).unwrap();
    assert_eq!(stats.wal_torn_tails, 1, "the truncation is reported");
    assert!(stats.wal_bytes_truncated > 0);
    assert_eq!(out.missing, vec![N - 1], "only the torn last write is lost");
    assert_eq!(out.intact, N - 1);
}

#[test]
fn wal_cut_at_any_point_recovers_a_prefix_and_reports_the_cut() {
    let src = wal_only_db();
    let wal_name = files_with(src.path(), ".wal").pop().unwrap();
    let len = written_len(&wal_name);
    let mut previous_intact = 0;
    for cut in (0..len).step_by(97).chain([len - 1]) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let wal = dir.path().join(wal_name.file_name().unwrap());
        truncate(&wal, cut);
        let (out, stats) = read_back(dir.path()).unwrap();
        // A prefix: keys 0..intact present, the rest absent.
        assert_eq!(
            out.missing,
            (out.intact..N).collect::<Vec<_>>(),
            "cut at {cut}"
        );
        assert!(out.intact >= previous_intact);
        previous_intact = out.intact;
        if out.intact < N && cut > 0 {
            // A cut inside a record is reported; a cut on a record boundary is a clean end.
            assert!(stats.wal_torn_tails <= 1);
        }
    }
}

#[test]
fn wal_byte_flipped_mid_log_is_a_typed_corruption_error_naming_the_file() {
    let src = wal_only_db();
    let wal = files_with(src.path(), ".wal").pop().unwrap();
    flip(&wal, 20, 0x10);
    let err = Engine::open(src.path(), opts()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(
        err.to_string()
            .contains(wal.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn wal_random_flips_give_typed_errors_or_reported_truncations() {
    let src = wal_only_db();
    let wal_name = files_with(src.path(), ".wal").pop().unwrap();
    let len = written_len(&wal_name) as usize;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..40 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let offset = (x as usize) % len;
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        flip(
            &dir.path().join(wal_name.file_name().unwrap()),
            offset,
            1 << (x % 8),
        );
        match read_back(dir.path()) {
            Err(err) => assert!(err.is_corruption(), "offset {offset}: {err}"),
            Ok((out, stats)) => {
                // Only a flip in the final record can be taken for a torn tail.
                assert_eq!(
                    stats.wal_torn_tails, 1,
                    "offset {offset}: damage went unreported"
                );
                assert_eq!(out.missing, vec![N - 1], "offset {offset}");
            }
        }
    }
}

#[test]
fn table_flips_anywhere_are_detected() {
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd(3)] {
        let src = table_db(compression);
        let tables = files_with(src.path(), ".sst");
        assert!(tables.len() >= 3);
        let name = tables[1].file_name().unwrap().to_owned();
        let len = std::fs::metadata(&tables[1]).unwrap().len() as usize;
        // Every 13th byte: data blocks, filter, properties, index and footer.
        for offset in (0..len).step_by(13).chain([len - 1, len - 9]) {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(src.path(), dir.path());
            flip(&dir.path().join(&name), offset, 0x04);
            match read_back(dir.path()) {
                Err(err) => assert!(err.is_corruption(), "offset {offset}: {err}"),
                Ok((out, _)) => {
                    assert!(
                        out.missing.is_empty(),
                        "offset {offset}: keys vanished silently"
                    );
                    assert!(out.errors > 0, "offset {offset}: the flip went unnoticed");
                }
            }
        }
    }
}

#[test]
fn truncated_table_is_a_typed_error_at_open() {
    let src = table_db(Compression::Lz4);
    let t = files_with(src.path(), ".sst").pop().unwrap();
    let len = std::fs::metadata(&t).unwrap().len();
    for cut in [0, 10, len / 2, len - 1] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        truncate(&dir.path().join(t.file_name().unwrap()), cut);
        let err = Engine::open(dir.path(), opts()).unwrap_err();
        assert!(err.is_corruption(), "cut {cut}: {err}");
    }
}

#[test]
fn manifest_damage_is_an_error_or_a_reported_truncation() {
    let src = table_db(Compression::Lz4);
    let m = files_with(src.path(), "MANIFEST").pop().unwrap();
    let name = m.file_name().unwrap().to_owned();
    let len = std::fs::metadata(&m).unwrap().len() as usize;
    let check = |dir: &Path, what: &str| match read_back(dir) {
        Err(err) => assert!(err.is_corruption(), "{what}: {err}"),
        Ok((out, stats)) => {
            if !out.missing.is_empty() {
                assert_eq!(
                    stats.manifest_torn_tails, 1,
                    "{what}: data vanished unreported"
                );
            }
            assert_eq!(out.errors, 0, "{what}");
        }
    };
    for offset in (0..len).step_by(3) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        flip(&dir.path().join(&name), offset, 0x20);
        check(dir.path(), &format!("flip at {offset}"));
    }
    for cut in 0..len as u64 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        truncate(&dir.path().join(&name), cut);
        check(dir.path(), &format!("cut at {cut}"));
    }
}

#[test]
fn damaged_or_missing_current_is_a_typed_error() {
    let src = table_db(Compression::Lz4);
    let current = src.path().join("CURRENT");
    std::fs::write(&current, b"MANIFEST-9x9\n").unwrap();
    assert!(
        Engine::open(src.path(), opts())
            .unwrap_err()
            .is_corruption()
    );
    std::fs::remove_file(&current).unwrap();
    let err = Engine::open(src.path(), opts()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("CURRENT"), "{err}");
}
