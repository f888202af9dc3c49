//! The loadgen's modules form layers, and every import points down:
//!
//! spec (`workload`, its `units`; leaves `stats`, `timer`) → plan (`plan`: points) →
//! `generator` → `target`, `cluster` (its shape), `events`, `resources`, `instructions` →
//! `record` → `run` → `report`, `metrics` → `sweep` (the orchestrator) → `ab`, `compare` →
//! `history`, `merge` → the binary.
//!
//! This test reads the sources and fails on any `crate::` path that points sideways or up, so
//! the module graph stays free of cycles.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::path::{Path, PathBuf};

/// Each top-level module's layer; a module may use only modules of a lower layer (or itself).
const LAYERS: &[(&str, u32)] = &[
    ("workload", 0),
    ("stats", 0),
    ("timer", 0),
    ("plan", 1),
    ("generator", 2),
    ("target", 3),
    ("cluster", 3),
    ("events", 3),
    ("resources", 3),
    ("instructions", 3),
    ("record", 4),
    ("consistency", 4),
    ("run", 5),
    ("report", 6),
    ("metrics", 6),
    ("sweep", 7),
    ("ab", 8),
    ("compare", 8),
    ("history", 9),
    ("merge", 9),
];

fn layer(module: &str) -> u32 {
    LAYERS
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module `{module}` has no layer in tests/layers.rs; add it"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_import_points_down_a_layer() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "bin" {
            continue;
        }
        let own = layer(&top);
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("crate::") {
                let used: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if used.is_empty() || used == top {
                    continue;
                }
                if layer(&used) >= own {
                    problems.push(format!(
                        "{}:{}: `{top}` (layer {own}) uses `{used}` (layer {})",
                        rel.display(),
                        n + 1,
                        layer(&used)
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports that point up or sideways:\n{}",
        problems.join("\n")
    );
}
