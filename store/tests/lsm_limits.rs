//! Size limits: oversized keys and values are refused with typed errors, and nothing of a
//! refused batch is written.

// Test helpers outside #[test] fns may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use store::lsm::{Engine, Error, Options, WriteBatch};

#[test]
fn oversized_key_is_refused_with_key_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    let key = vec![b'k'; 1025];
    let err = e.put(&key, b"v").unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyTooLarge {
                len: 1025,
                max: 1024
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("max_key_bytes"));
    assert!(matches!(e.delete(&key), Err(Error::KeyTooLarge { .. })));
    e.put(&key[..1024], b"v").unwrap();
}

#[test]
fn oversized_value_is_refused_with_value_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    let err = e.put(b"k", &vec![0u8; 10 * 1024 + 1]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ValueTooLarge {
                len: 10241,
                max: 10240
            }
        ),
        "{err}"
    );
    e.put(b"k", &vec![0u8; 10 * 1024]).unwrap();
    assert_eq!(e.get(b"k").unwrap().map(|v| v.len()), Some(10 * 1024));
}

#[test]
fn empty_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(e.put(b"", b"v"), Err(Error::EmptyKey)));
}

#[test]
fn batch_with_one_oversized_value_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    let mut b = WriteBatch::new();
    b.put(b"a", b"1")
        .put(b"b", &vec![0u8; 20_000])
        .put(b"c", b"3");
    assert!(matches!(e.write_batch(b), Err(Error::ValueTooLarge { .. })));
    assert_eq!(e.get(b"a").unwrap(), None);
    assert_eq!(e.stats().last_sequence, 0);
}

#[test]
fn limits_are_options() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_value_bytes: 64 * 1024,
        max_key_bytes: 16,
        ..Options::default()
    };
    let e = Engine::open(dir.path(), opts).unwrap();
    e.put(b"k", &vec![1u8; 64 * 1024]).unwrap();
    e.flush().unwrap();
    assert_eq!(e.get(b"k").unwrap().map(|v| v.len()), Some(64 * 1024));
    assert!(matches!(
        e.put(&[b'x'; 17], b"v"),
        Err(Error::KeyTooLarge { max: 16, .. })
    ));
}
