//! Side-by-side benchmark of ringkv's storage engine and fjall, in one process, on the same
//! data, with the same block cache budget, A/B interleaved over several rounds (the order
//! alternates each round; medians are reported).
//!
//! ```sh
//! cargo run --release -p benches --bin engine_compare -- \
//!     --keys 1000000 --value-bytes 100 --json results/engine/compare.json
//! ```
//!
//! Workloads (16-byte keys in random order, values compressible about 2:1):
//! - `fillrandom`: insert every key into an empty database, one thread, no per-write fsync
//!   on either side (ringkv `SyncPolicy::Never`, fjall's default buffered journal).
//! - `readrandom`: after the fill (flushed and compactions settled), point reads of random
//!   existing keys, one thread.
//! - `readmissing`: point reads of keys that were never written, one thread.
//! - `fillsync`: `--sync-threads` writers (64) into an empty database, each write durable
//!   before it returns (ringkv `SyncPolicy::Always`, fjall `insert` + `persist(SyncData)`).
//! - `fillsync1`: the same with one writer: the single-writer fsync rate.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{fill_value, key16, splitmix64};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(about = "ringkv storage engine vs fjall, side by side")]
struct Args {
    /// Keys to insert in fillrandom.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Where to write the JSON results.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Block cache budget for both engines, MiB.
    #[arg(long, default_value_t = 64)]
    cache_mib: u64,
    /// Rounds; each runs every workload on both engines, order alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Point reads per read workload (default: min(keys, 1M)).
    #[arg(long)]
    read_ops: Option<u64>,
    /// Writer threads for fillsync.
    #[arg(long, default_value_t = 64)]
    sync_threads: u64,
    /// Durable writes per fillsync run (all threads together).
    #[arg(long, default_value_t = 16_000)]
    sync_ops: u64,
    /// Durable writes per single-writer fillsync1 run.
    #[arg(long, default_value_t = 2_000)]
    sync1_ops: u64,
    /// Directory for the databases (default: a fresh temp dir; must be on the disk to test).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Engines to run (for profiling one side; a comparison needs both).
    #[arg(long, value_delimiter = ',', default_value = "ringkv,fjall")]
    engines: Vec<String>,
    /// Workloads to run: fill (fillrandom + reads) and/or sync (fillsync + fillsync1).
    #[arg(long, value_delimiter = ',', default_value = "fill,sync")]
    workloads: Vec<String>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ringkv,
    Fjall,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ringkv => "ringkv",
            Kind::Fjall => "fjall",
        }
    }
}

enum Db {
    Ringkv(store::lsm::Engine),
    Fjall(fjall::Database, fjall::Keyspace),
}

impl Db {
    fn open(kind: Kind, dir: &Path, cache_bytes: u64, durable: bool) -> Res<Db> {
        Ok(match kind {
            Kind::Ringkv => {
                let opts = store::lsm::Options {
                    sync: if durable {
                        store::lsm::SyncPolicy::Always
                    } else {
                        store::lsm::SyncPolicy::Never
                    },
                    block_cache_bytes: cache_bytes as usize,
                    max_value_bytes: 1 << 20,
                    ..store::lsm::Options::default()
                };
                Db::Ringkv(store::lsm::Engine::open(dir, opts)?)
            }
            Kind::Fjall => {
                let db = fjall::Database::builder(dir)
                    .cache_size(cache_bytes)
                    .open()?;
                let ks = db.keyspace("bench", fjall::KeyspaceCreateOptions::default)?;
                Db::Fjall(db, ks)
            }
        })
    }

    #[inline]
    fn put(&self, k: &[u8], v: &[u8]) -> Res<()> {
        match self {
            Db::Ringkv(e) => {
                e.put(k, v)?;
            }
            Db::Fjall(_, ks) => ks.insert(k, v)?,
        }
        Ok(())
    }

    /// A write that is durable when it returns.
    #[inline]
    fn put_durable(&self, k: &[u8], v: &[u8]) -> Res<()> {
        match self {
            Db::Ringkv(e) => {
                e.put(k, v)?; // opened with SyncPolicy::Always
            }
            Db::Fjall(db, ks) => {
                ks.insert(k, v)?;
                db.persist(fjall::PersistMode::SyncData)?;
            }
        }
        Ok(())
    }

    #[inline]
    fn get(&self, k: &[u8]) -> Res<bool> {
        Ok(match self {
            Db::Ringkv(e) => e.get(k)?.is_some(),
            Db::Fjall(_, ks) => ks.get(k)?.is_some(),
        })
    }

    /// Flushes memtables and waits (up to 10 minutes) until compactions have settled.
    fn settle(&self) -> Res<()> {
        match self {
            Db::Ringkv(e) => {
                e.flush()?;
                e.wait_for_background(Duration::from_secs(600));
            }
            Db::Fjall(db, ks) => {
                ks.rotate_memtable_and_wait()?;
                let deadline = Instant::now() + Duration::from_secs(600);
                while Instant::now() < deadline
                    && (db.outstanding_flushes() > 0
                        || db.active_compactions() > 0
                        || ks.l0_table_count() >= 4)
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Ok(())
    }

    fn close(self) -> Res<()> {
        match self {
            Db::Ringkv(e) => e.close()?,
            Db::Fjall(db, ks) => {
                drop(ks);
                drop(db);
            }
        }
        Ok(())
    }
}

/// Bytes this process has passed to write(2) and friends so far (`wchar` in /proc/self/io).
fn bytes_written_by_process() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

fn progress(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{msg}");
}

struct Fill {
    ops_s: f64,
    write_amp: Option<f64>,
    internal_write_amp: Option<f64>,
}

fn fillrandom(db: &Db, args: &Args, label: &str) -> Res<Fill> {
    let wchar0 = bytes_written_by_process();
    let mut k = [0u8; 16];
    let mut v = vec![0u8; args.value_bytes];
    let tenth = (args.keys / 10).max(1);
    let start = Instant::now();
    for i in 0..args.keys {
        key16(i, &mut k);
        fill_value(i, &mut v);
        db.put(&k, &v)?;
        if (i + 1) % tenth == 0 {
            let s = start.elapsed().as_secs_f64();
            progress(&format!(
                "  {label} fillrandom {:>3}% {:>10.0} ops/s",
                (i + 1) * 100 / args.keys,
                (i + 1) as f64 / s
            ));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    progress(&format!("  {label} settling (flush + compactions)"));
    db.settle()?;
    let user = args.keys as f64 * (16 + args.value_bytes) as f64;
    let write_amp = match (wchar0, bytes_written_by_process()) {
        (Some(a), Some(b)) => Some((b - a) as f64 / user),
        _ => None,
    };
    let internal_write_amp = match db {
        Db::Ringkv(e) => {
            let st = e.stats();
            progress(&format!(
                "  {label} tables per level {:?}, {} compactions, {} write stalls",
                st.tables_per_level,
                st.compactions,
                st.write_stops + st.write_slowdowns
            ));
            Some(st.write_amplification())
        }
        Db::Fjall(_, ks) => {
            progress(&format!(
                "  {label} {} tables, {} in L0",
                ks.table_count(),
                ks.l0_table_count()
            ));
            None
        }
    };
    Ok(Fill {
        ops_s: args.keys as f64 / secs,
        write_amp,
        internal_write_amp,
    })
}

/// Point reads on every open database, interleaved in chunks (engine order alternating per
/// chunk) so that noise from other processes hits both engines alike. Returns ops/s per
/// database, in `dbs` order.
fn reads(dbs: &[(Kind, Db)], args: &Args, missing: bool) -> Res<Vec<f64>> {
    const CHUNK: u64 = 20_000;
    let ops = args.read_ops.unwrap_or(args.keys.min(1_000_000));
    let mut k = [0u8; 16];
    let mut secs = vec![0.0f64; dbs.len()];
    let mut found = vec![0u64; dbs.len()];
    let mut chunk_start = 0;
    let mut chunk_no = 0usize;
    while chunk_start < ops {
        let chunk_end = (chunk_start + CHUNK).min(ops);
        for step in 0..dbs.len() {
            let d = (chunk_no + step) % dbs.len();
            let Some((_, db)) = dbs.get(d) else { continue };
            let start = Instant::now();
            let mut f = 0;
            for n in chunk_start..chunk_end {
                let i = if missing {
                    // Keys numbered past the filled range: never written.
                    args.keys + (1 << 40) + n
                } else {
                    splitmix64(n ^ 0x5EED) % args.keys
                };
                key16(i, &mut k);
                f += u64::from(db.get(&k)?);
            }
            if let Some(s) = secs.get_mut(d) {
                *s += start.elapsed().as_secs_f64();
            }
            if let Some(x) = found.get_mut(d) {
                *x += f;
            }
        }
        chunk_start = chunk_end;
        chunk_no += 1;
    }
    let what = if missing { "readmissing" } else { "readrandom" };
    let expected = if missing { 0 } else { ops };
    let mut rates = Vec::new();
    for (((kind, _), secs), found) in dbs.iter().zip(&secs).zip(&found) {
        if *found != expected {
            return Err(format!(
                "[{}] {what}: {found} of {ops} reads found a value, expected {expected}",
                kind.name()
            )
            .into());
        }
        let rate = ops as f64 / secs;
        progress(&format!("  [{}] {what} {rate:>10.0} ops/s", kind.name()));
        rates.push(rate);
    }
    Ok(rates)
}

/// Asks the OS to write back dirty pages (`sync(1)`), so an engine's fsyncs do not pay for
/// writeback left over from an earlier phase or the other engine.
fn os_sync() {
    let _ = std::process::Command::new("sync").status();
}

fn fillsync(kind: Kind, dir: &Path, args: &Args, threads: u64, ops: u64, label: &str) -> Res<f64> {
    os_sync();
    let db = Arc::new(Db::open(kind, dir, args.cache_mib << 20, true)?);
    let per = (ops / threads).max(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = Arc::clone(&db);
            let value_bytes = args.value_bytes;
            std::thread::spawn(move || -> Res<()> {
                let mut k = [0u8; 16];
                let mut v = vec![0u8; value_bytes];
                for n in 0..per {
                    let i = t * per + n;
                    key16(i, &mut k);
                    fill_value(i, &mut v);
                    db.put_durable(&k, &v)?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "a fillsync writer panicked")??;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = (per * threads) as f64 / secs;
    let name = if threads == 1 {
        "fillsync1"
    } else {
        "fillsync"
    };
    let detail = match &*db {
        Db::Ringkv(e) => {
            let st = e.stats();
            format!(
                " ({} writes in {} commit groups, {} log fsyncs of {} us on average)",
                st.puts,
                st.commit_groups,
                st.wal_syncs,
                st.wal_sync_micros / st.wal_syncs.max(1)
            )
        }
        Db::Fjall(..) => String::new(),
    };
    progress(&format!(
        "  {label} {name} ({threads} threads) {rate:>10.0} ops/s{detail}"
    ));
    if let Ok(db) = Arc::try_unwrap(db) {
        db.close()?;
    }
    Ok(rate)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s.get(n / 2).copied().unwrap_or(0.0),
        n => {
            (s.get(n / 2 - 1).copied().unwrap_or(0.0) + s.get(n / 2).copied().unwrap_or(0.0)) / 2.0
        }
    }
}

#[derive(Default)]
struct Series {
    fillrandom: Vec<f64>,
    readrandom: Vec<f64>,
    readmissing: Vec<f64>,
    fillsync: Vec<f64>,
    fillsync1: Vec<f64>,
    write_amp: Vec<f64>,
    internal_write_amp: Vec<f64>,
}

impl Series {
    fn to_json(&self) -> Value {
        let wa = if self.write_amp.is_empty() {
            Value::Null
        } else {
            json!(median(&self.write_amp))
        };
        let mut o = json!({
            "fillrandom_ops_s": median(&self.fillrandom).round(),
            "readrandom_ops_s": median(&self.readrandom).round(),
            "readmissing_ops_s": median(&self.readmissing).round(),
            "fillsync_ops_s": median(&self.fillsync).round(),
            "fillsync1_ops_s": median(&self.fillsync1).round(),
            "write_amplification": wa,
            "rounds": {
                "fillrandom_ops_s": self.fillrandom.iter().map(|x| x.round()).collect::<Vec<_>>(),
                "readrandom_ops_s": self.readrandom.iter().map(|x| x.round()).collect::<Vec<_>>(),
                "readmissing_ops_s": self.readmissing.iter().map(|x| x.round()).collect::<Vec<_>>(),
                "fillsync_ops_s": self.fillsync.iter().map(|x| x.round()).collect::<Vec<_>>(),
                "fillsync1_ops_s": self.fillsync1.iter().map(|x| x.round()).collect::<Vec<_>>(),
                "write_amplification": self.write_amp.clone(),
            },
        });
        if !self.internal_write_amp.is_empty()
            && let Some(m) = o.as_object_mut()
        {
            m.insert(
                "write_amplification_engine_stats".into(),
                json!(median(&self.internal_write_amp)),
            );
        }
        o
    }
}

fn machine() -> Value {
    let (brand, memory) = match sysinfo::System::new() {
        Ok(mut sys) => {
            sys.refresh_memory();
            sys.refresh_cpu_all();
            let brand = sys.cpus().first().map(|c| c.brand().to_string());
            (brand, Some(sys.total_memory()))
        }
        Err(_) => (None, None),
    };
    json!({
        "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "physical_cores": sysinfo::System::physical_core_count().ok(),
        "memory_bytes": memory,
        "os": sysinfo::System::long_os_version().ok(),
        "kernel": sysinfo::System::kernel_version().ok(),
        "cpu_brand": brand,
    })
}

fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() -> Res<()> {
    let args = Args::parse();
    if args.keys == 0 || args.rounds == 0 || args.sync_threads == 0 {
        return Err("--keys, --rounds and --sync-threads must be positive".into());
    }
    let tmp;
    let base = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("engine-compare")
                .tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let cache_bytes = args.cache_mib << 20;
    progress(&format!(
        "engine_compare: {} keys x {} B values, cache {} MiB, {} rounds, in {}",
        args.keys,
        args.value_bytes,
        args.cache_mib,
        args.rounds,
        base.display()
    ));
    let mut series = [Series::default(), Series::default()];
    let total_start = Instant::now();
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [Kind::Ringkv, Kind::Fjall]
        } else {
            [Kind::Fjall, Kind::Ringkv]
        };
        progress(&format!(
            "round {}/{} ({} first), {:.0}s elapsed",
            round + 1,
            args.rounds,
            order.first().map_or("", |k| k.name()),
            total_start.elapsed().as_secs_f64()
        ));
        let order: Vec<Kind> = order
            .into_iter()
            .filter(|k| args.engines.iter().any(|e| e == k.name()))
            .collect();
        let run_fill = args.workloads.iter().any(|w| w == "fill");
        let run_sync = args.workloads.iter().any(|w| w == "sync");
        if run_fill {
            // Fill each engine on its own (its background work is part of its cost), then
            // read from both with the reads interleaved.
            let mut dbs: Vec<(Kind, Db)> = Vec::new();
            for &kind in &order {
                let label = format!("[{}]", kind.name());
                let s = &mut series[kind as usize];
                let dir = base.join(format!("r{round}-{}-fill", kind.name()));
                let db = Db::open(kind, &dir, cache_bytes, false)?;
                let fill = fillrandom(&db, &args, &label)?;
                s.fillrandom.push(fill.ops_s);
                s.write_amp.extend(fill.write_amp);
                s.internal_write_amp.extend(fill.internal_write_amp);
                dbs.push((kind, db));
            }
            for (missing, what) in [(false, "readrandom"), (true, "readmissing")] {
                progress(&format!(
                    "  reading ({what}), engines interleaved in chunks"
                ));
                let rates = reads(&dbs, &args, missing)?;
                for ((kind, _), rate) in dbs.iter().zip(rates) {
                    let s = &mut series[*kind as usize];
                    if missing {
                        s.readmissing.push(rate);
                    } else {
                        s.readrandom.push(rate);
                    }
                }
            }
            for (kind, db) in dbs {
                db.close()?;
                std::fs::remove_dir_all(base.join(format!("r{round}-{}-fill", kind.name())))?;
            }
        }
        for &kind in order.iter().filter(|_| run_sync) {
            let label = format!("[{}]", kind.name());
            let s = &mut series[kind as usize];
            let dir = base.join(format!("r{round}-{}-sync", kind.name()));
            s.fillsync.push(fillsync(
                kind,
                &dir,
                &args,
                args.sync_threads,
                args.sync_ops,
                &label,
            )?);
            std::fs::remove_dir_all(&dir)?;
            let dir = base.join(format!("r{round}-{}-sync1", kind.name()));
            s.fillsync1
                .push(fillsync(kind, &dir, &args, 1, args.sync1_ops, &label)?);
            std::fs::remove_dir_all(&dir)?;
        }
    }
    let [r, f] = &series;
    let ratio = |a: &[f64], b: &[f64]| {
        let d = median(b);
        if d > 0.0 {
            json!((median(a) / d * 1000.0).round() / 1000.0)
        } else {
            Value::Null
        }
    };
    let group_commit = |s: &Series| {
        let one = median(&s.fillsync1);
        if one > 0.0 {
            json!((median(&s.fillsync) / one * 10.0).round() / 10.0)
        } else {
            Value::Null
        }
    };
    let out = json!({
        "engines": { "ringkv": r.to_json(), "fjall": f.to_json() },
        "ratios": {
            "fillrandom": ratio(&r.fillrandom, &f.fillrandom),
            "readrandom": ratio(&r.readrandom, &f.readrandom),
            "readmissing": ratio(&r.readmissing, &f.readmissing),
            "fillsync": ratio(&r.fillsync, &f.fillsync),
        },
        "group_commit": {
            "ringkv_fillsync_threads_over_single_writer": group_commit(r),
            "fjall_fillsync_threads_over_single_writer": group_commit(f),
        },
        "params": {
            "keys": args.keys,
            "key_bytes": 16,
            "value_bytes": args.value_bytes,
            "value_compressibility": "about 2:1 (first half random, second half a copy)",
            "cache_bytes": cache_bytes,
            "cache_bytes_ringkv": cache_bytes,
            "cache_bytes_fjall": cache_bytes,
            "rounds": args.rounds,
            "read_ops": args.read_ops.unwrap_or(args.keys.min(1_000_000)),
            "read_threads": 1,
            "fill_threads": 1,
            "sync_threads": args.sync_threads,
            "sync_note": "each fillsync/fillsync1 run starts after sync(1), so leftover writeback is not charged to it",
            "sync_ops": args.sync_ops,
            "sync1_ops": args.sync1_ops,
            "method": "one process; each round fills a fresh database per engine (fillrandom times the inserts only; then the engine flushes and its compactions settle), then runs readrandom and readmissing on both databases interleaved in chunks of 20k reads (engine order alternating per chunk), then fillsync and fillsync1 per engine on fresh databases; the engine order alternates each round; figures are medians over rounds",
            "ringkv": "SyncPolicy::Never for fill (user-space WAL buffer), SyncPolicy::Always (group commit) for fillsync; other options default",
            "fjall": "fjall 3.1 defaults (buffered journal, background flush/compaction workers on the same cores); fillsync: insert + persist(SyncData) per write",
            "write_amplification": "bytes the process passed to write(2) (/proc/self/io wchar) during fill + settle, over key+value bytes inserted; same method for both engines",
        },
        "machine": machine(),
        "git_revision": git_revision(),
        "elapsed_s": total_start.elapsed().as_secs_f64().round(),
    });
    let text = serde_json::to_string_pretty(&out)?;
    if let Some(path) = &args.json {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, format!("{text}\n"))?;
        progress(&format!("wrote {}", path.display()));
    }
    println!("{text}");
    Ok(())
}
