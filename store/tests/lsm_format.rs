//! `docs/storage-format.md` is checked against real files: the worked WAL example byte for
//! byte, and the table footer's magic and version.

// Test helpers outside #[test] fns may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use store::lsm::{Engine, Options};

fn doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/storage-format.md");
    std::fs::read_to_string(path).unwrap()
}

fn doc_example_bytes() -> Vec<u8> {
    let doc = doc();
    let start = doc.find("<!-- wal-example-begin -->").unwrap();
    let end = doc.find("<!-- wal-example-end -->").unwrap();
    doc[start..end]
        .lines()
        .filter(|l| !l.starts_with("<!--") && !l.starts_with("```"))
        .flat_map(|l| l.split_whitespace())
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

#[test]
fn wal_bytes_match_the_worked_example_in_the_format_doc() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    e.put(b"key", b"value").unwrap();
    let wal = std::fs::read(dir.path().join("000002.wal")).unwrap();
    assert!(dir.path().join("MANIFEST-000001").exists());
    let example = doc_example_bytes();
    assert_eq!(
        &wal[..example.len()],
        &example[..],
        "docs/storage-format.md is out of date"
    );
    // The rest of the preallocated file is unwritten (zero) space.
    assert!(wal[example.len()..].iter().all(|&b| b == 0));
    assert_eq!(
        wal.len(),
        64 << 20,
        "a default log is preallocated to 64 MiB"
    );
    e.close().unwrap();
}

#[test]
fn table_footer_ends_with_the_documented_magic_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    e.put(b"key", b"value").unwrap();
    e.flush().unwrap();
    e.close().unwrap();
    let table = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .unwrap();
    let bytes = std::fs::read(table).unwrap();
    let footer = &bytes[bytes.len() - 64..];
    assert_eq!(&footer[56..], b"rkvTABLE");
    assert_eq!(u32::from_le_bytes(footer[48..52].try_into().unwrap()), 1);
    let crc = u32::from_le_bytes(footer[52..56].try_into().unwrap());
    assert_eq!(crc, crc32fast::hash(&footer[..52]));
    assert!(doc().contains("`rkvTABLE`"));
}
