//! Resources of the load generator and of every node process:
//!
//! - exact counters read at the two edges of the measured window ([`ProcCounters`]): CPU time
//!   with nanosecond resolution (the process's CPU-time clock), context switches
//!   (`/proc/PID/task/*/status`) and I/O bytes (`/proc/PID/io`), turned into per-operation
//!   figures ([`Resources`]);
//! - RSS sampled with sysinfo twice a second on a thread of its own;
//! - a description of the machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// How often processes are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// One sample of one process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// The process.
    pub pid: u32,
    /// CPU time used since the process started, ms (all threads).
    pub cpu_ms: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// CPU and memory of one process over a measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// `loadgen` or `node`.
    pub role: String,
    /// Operating-system process id.
    pub pid: u32,
    /// Mean CPU over the window, percent of one core (may exceed 100 with several threads).
    pub cpu_pct: f64,
    /// Largest resident set size seen, bytes.
    pub rss_max_bytes: u64,
    /// Samples inside the window.
    pub samples: usize,
    /// In a merged folder: the shard (load host) the process ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
}

/// A running sampler; [`Sampler::stop`] ends it and returns the samples.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<Sample>>>,
    self_pid: u32,
}

impl Sampler {
    /// Starts sampling this process and `pids`.
    pub fn start(pids: &[u32]) -> Sampler {
        let self_pid = std::process::id();
        let mut all: Vec<Pid> = vec![Pid::from_u32(self_pid)];
        all.extend(pids.iter().map(|p| Pid::from_u32(*p)));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || sample_loop(&all, &flag))
            .ok();
        Sampler {
            stop,
            handle,
            self_pid,
        }
    }

    /// Stops sampling and summarises each process over `[from, to]`.
    pub fn stop(mut self, from: Instant, to: Instant) -> Vec<ProcessStats> {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self
            .handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        summarise(&samples, self.self_pid, from, to)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn sample_loop(pids: &[Pid], stop: &AtomicBool) -> Vec<Sample> {
    let Ok(mut sys) = System::new() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        sys.refresh_processes_specifics(ProcessesToUpdate::Some(pids), true, kind);
        let at = Instant::now();
        for pid in pids {
            if let Some(p) = sys.process(*pid) {
                out.push(Sample {
                    at,
                    pid: pid.as_u32(),
                    cpu_ms: p.accumulated_cpu_time(),
                    rss_bytes: p.memory(),
                });
            }
        }
        next += SAMPLE_EVERY;
        // Sleep in short steps so stopping is prompt.
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
        }
    }
    out
}

/// CPU percent from the accumulated CPU time between the first and last sample in the window.
fn summarise(samples: &[Sample], self_pid: u32, from: Instant, to: Instant) -> Vec<ProcessStats> {
    let mut pids: Vec<u32> = samples.iter().map(|s| s.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    // The load generator first, then nodes in pid order.
    pids.sort_by_key(|p| *p != self_pid);
    pids.into_iter()
        .map(|pid| {
            let inside: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.pid == pid && s.at >= from && s.at <= to)
                .collect();
            let cpu_pct = match (inside.first(), inside.last()) {
                (Some(a), Some(b)) if b.at > a.at => {
                    let wall = b.at.duration_since(a.at).as_secs_f64() * 1000.0;
                    b.cpu_ms.saturating_sub(a.cpu_ms) as f64 / wall * 100.0
                }
                _ => 0.0,
            };
            ProcessStats {
                role: if pid == self_pid {
                    "loadgen".into()
                } else {
                    "node".into()
                },
                pid,
                cpu_pct,
                rss_max_bytes: inside.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
                samples: inside.len(),
                shard: None,
            }
        })
        .collect()
}

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// Physical cores, when known.
    pub physical_cores: Option<usize>,
    /// CPU model.
    pub cpu_brand: String,
    /// Total memory, bytes.
    pub memory_bytes: u64,
    /// Operating system, e.g. `Linux 13 Debian GNU/Linux`.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
    /// Host name.
    pub hostname: String,
}

/// Describes this machine (fields sysinfo cannot read are left empty).
pub fn machine() -> Machine {
    let mut cpus = 0;
    let mut cpu_brand = String::new();
    let mut memory_bytes = 0;
    if let Ok(mut sys) = System::new() {
        sys.refresh_memory();
        sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
        cpus = sys.cpus().len();
        cpu_brand = sys
            .cpus()
            .first()
            .map(|c| c.brand().to_string())
            .unwrap_or_default();
        memory_bytes = sys.total_memory();
    }
    Machine {
        cpus,
        physical_cores: System::physical_core_count().ok(),
        cpu_brand,
        memory_bytes,
        os: System::long_os_version().unwrap_or_default(),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: System::cpu_arch(),
        hostname: System::host_name().unwrap_or_default(),
    }
}

// ------------------------------------------------------------------ exact window counters

pub use store::procstat::{
    MachineCounters, ProcCounters, read_counters, read_machine, read_other_programs,
};

/// Counters of several processes at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When the snapshot was taken.
    pub at: Option<Instant>,
    /// One entry per process that could be read.
    pub procs: Vec<ProcCounters>,
    /// The whole machine's CPU counters, where `/proc/stat` could be read.
    pub machine: Option<MachineCounters>,
    /// CPU time of every other user-space process, ns, by pid (sorted), where `/proc` could
    /// be read.
    pub others: Option<Vec<(u32, u64)>>,
}

/// Reads every pid now.
pub fn snapshot(pids: &[u32]) -> Snapshot {
    let procs = pids.iter().filter_map(|p| read_counters(*p)).collect();
    Snapshot {
        at: Some(Instant::now()),
        procs,
        machine: read_machine(),
        others: read_other_programs(pids),
    }
}

/// Reads `pids` on a thread of its own at `at` (the start of the measured window), so the
/// driver thread is not delayed; join the handle after the window.
pub fn snapshot_at(pids: Vec<u32>, at: Instant) -> Option<JoinHandle<Snapshot>> {
    std::thread::Builder::new()
        .name("window-edge".into())
        .spawn(move || {
            // Sleep to within 2 ms, then spin: a read exactly at the edge matters more here
            // than 2 ms of one core.
            let now = Instant::now();
            if at > now + Duration::from_millis(2) {
                std::thread::sleep(at - now - Duration::from_millis(2));
            }
            while Instant::now() < at {
                std::hint::spin_loop();
            }
            snapshot(&pids)
        })
        .ok()
}

/// Engine counters of the nodes (from their `Status` RPC), summed over nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineCounters {
    /// `engine.fsyncs`.
    pub fsyncs: u64,
    /// `engine.disk_bytes_written`.
    pub disk_bytes_written: u64,
    /// `engine.write_slowdown_micros` + `engine.write_stop_micros`: time writers were held back
    /// because flushes or compactions fell behind.
    pub write_stall_us: u64,
    /// The nodes' own process counters (`process.*`), summed: used when the node processes
    /// are not local (`cluster.endpoints`).
    pub process: ProcCounters,
    /// Nodes that answered.
    pub nodes: usize,
}

/// Per-operation resource figures of one run of a point, from the counters at the edges of the
/// measured window. "Node" figures are summed over the nodes the point started with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Operations completed in the measured window (the divisor).
    pub ops: u64,
    /// Length of the window between the two counter reads, seconds.
    pub window_s: f64,
    /// Node CPU (user + system), µs per operation; absent without nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_cpu_us_per_op: Option<f64>,
    /// Node voluntary context switches per operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_voluntary_ctx_per_op: Option<f64>,
    /// Node involuntary context switches per operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_involuntary_ctx_per_op: Option<f64>,
    /// Node storage reads, bytes per operation (`/proc/PID/io` `read_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_read_bytes_per_op: Option<f64>,
    /// Node storage writes, bytes per operation (`write_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_write_bytes_per_op: Option<f64>,
    /// Node bytes through read-like syscalls per operation, network included (`rchar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_syscall_read_bytes_per_op: Option<f64>,
    /// Node bytes through write-like syscalls per operation, network included (`wchar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_syscall_write_bytes_per_op: Option<f64>,
    /// Engine fsyncs per operation (`engine.fsyncs` from each node's `Status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsyncs_per_op: Option<f64>,
    /// Engine bytes written to disk per operation (`engine.disk_bytes_written`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_bytes_per_op: Option<f64>,
    /// Milliseconds the nodes' engines held writers back in the window (slowdowns and stops,
    /// because flushes or compactions fell behind), summed over nodes: a total, not per
    /// operation. Absent in folders written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_stall_ms: Option<f64>,
    /// Node instructions per operation, counted by callgrind (`--instructions` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_instructions_per_op: Option<f64>,
    /// The nodes' stored data at the end of the run, bytes, summed over nodes: the size of
    /// their data directories (a local cluster) or of their engines' live tables (from each
    /// member's `Status`, `engine.bytes_l*`, for `cluster.endpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
    /// `disk_bytes` per key of the point (its `keys.count` or `sweep.keys` entry): every
    /// replica's copy included, so about N times one copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes_per_key: Option<f64>,
    /// `disk_bytes_per_key` / N: the bytes one copy of a key takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes_per_key_replica: Option<f64>,
    /// The load generator's own CPU, µs per operation.
    pub loadgen_cpu_us_per_op: f64,
    /// The load generator's context switches (both kinds) per operation.
    pub loadgen_ctx_per_op: f64,
    /// CPU time every user-space program outside the run (the loadgen and its local nodes)
    /// used on this machine over the window, percent of one core. Kernel threads are left
    /// out: much of their work is for the nodes. Linux only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_cpu_pct: Option<f64>,
    /// CPU time the hypervisor gave to something else while this machine's virtual CPUs
    /// had work (`steal` in `/proc/stat`), percent of one core. Linux only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal_pct: Option<f64>,
}

/// The nodes' stored data at the end of a run, and what to divide it by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskUsage {
    /// Bytes, summed over nodes.
    pub bytes: u64,
    /// The point's key count.
    pub keys: u64,
    /// Replication factor N: copies of each key.
    pub replicas: u32,
}

/// Exact CPU percent of each process over the window, by pid.
pub fn cpu_pct_by_pid(start: &Snapshot, end: &Snapshot) -> Vec<(u32, f64)> {
    let window = match (start.at, end.at) {
        (Some(a), Some(b)) if b > a => b.duration_since(a).as_secs_f64(),
        _ => return Vec::new(),
    };
    end.procs
        .iter()
        .filter_map(|e| {
            let s = start.procs.iter().find(|s| s.pid == e.pid)?;
            let ns = e.cpu_ns.saturating_sub(s.cpu_ns) as f64;
            Some((e.pid, ns / 1e9 / window * 100.0))
        })
        .collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Per-operation figures from the two snapshots. `self_pid` is the load generator; every other
/// pid counts as a node. `engine` holds the engine counters at both edges, when read; `disk`
/// the nodes' stored data at the end, when measured.
pub fn per_op(
    start: &Snapshot,
    end: &Snapshot,
    self_pid: u32,
    ops: u64,
    engine: Option<(EngineCounters, EngineCounters)>,
    disk: Option<DiskUsage>,
) -> Resources {
    let window_s = match (start.at, end.at) {
        (Some(a), Some(b)) if b > a => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let per = |x: u64| -> f64 {
        if ops == 0 {
            0.0
        } else {
            round3(x as f64 / ops as f64)
        }
    };
    let mut node = ProcCounters::default();
    let mut node_count = 0;
    let mut node_io = true;
    let mut me = ProcCounters::default();
    for e in &end.procs {
        let Some(s) = start.procs.iter().find(|s| s.pid == e.pid) else {
            continue;
        };
        let d = e.since(s);
        if e.pid == self_pid {
            me = d;
        } else {
            node_count += 1;
            node_io &= d.has_io;
            node.cpu_ns += d.cpu_ns;
            node.voluntary_ctx += d.voluntary_ctx;
            node.involuntary_ctx += d.involuntary_ctx;
            node.read_bytes += d.read_bytes;
            node.write_bytes += d.write_bytes;
            node.rchar += d.rchar;
            node.wchar += d.wchar;
        }
    }
    let engine = engine.filter(|(s, e)| s.nodes > 0 && s.nodes == e.nodes);
    // No local node processes (a remote cluster): the nodes' own reports, from Status.
    if node_count == 0
        && let Some((s, e)) = engine
        && e.process.cpu_ns > 0
    {
        node = e.process.since(&s.process);
        node_count = e.nodes;
        node_io = node.has_io;
    }
    let nodes = node_count > 0;
    let io = nodes && node_io;
    // The machine beside the run: CPU time of every other program, and time stolen by the
    // hypervisor, as percent of one core over the window.
    let pct_of_window = |ns: u64| round3(ns as f64 / (window_s * 1e9) * 100.0);
    let others = match (&start.others, &end.others) {
        (Some(a), Some(b)) if window_s > 0.0 => Some(others_since(a, b)),
        _ => None,
    };
    let steal = match (start.machine, end.machine) {
        (Some(a), Some(b)) if window_s > 0.0 => Some(b.since(&a).steal_ns),
        _ => None,
    };
    Resources {
        other_cpu_pct: others.map(pct_of_window),
        steal_pct: steal.map(pct_of_window),
        ops,
        window_s: round3(window_s),
        node_cpu_us_per_op: nodes.then(|| per(node.cpu_ns) / 1000.0).map(round3),
        node_voluntary_ctx_per_op: nodes.then(|| per(node.voluntary_ctx)),
        node_involuntary_ctx_per_op: nodes.then(|| per(node.involuntary_ctx)),
        node_read_bytes_per_op: io.then(|| per(node.read_bytes)),
        node_write_bytes_per_op: io.then(|| per(node.write_bytes)),
        node_syscall_read_bytes_per_op: io.then(|| per(node.rchar)),
        node_syscall_write_bytes_per_op: io.then(|| per(node.wchar)),
        fsyncs_per_op: engine.map(|(s, e)| per(e.fsyncs.saturating_sub(s.fsyncs))),
        engine_bytes_per_op: engine
            .map(|(s, e)| per(e.disk_bytes_written.saturating_sub(s.disk_bytes_written))),
        write_stall_ms: engine
            .map(|(s, e)| round3(e.write_stall_us.saturating_sub(s.write_stall_us) as f64 / 1e3)),
        node_instructions_per_op: None,
        disk_bytes: disk.map(|d| d.bytes),
        disk_bytes_per_key: disk
            .filter(|d| d.keys > 0)
            .map(|d| round3(d.bytes as f64 / d.keys as f64)),
        disk_bytes_per_key_replica: disk
            .filter(|d| d.keys > 0 && d.replicas > 0)
            .map(|d| round3(d.bytes as f64 / d.keys as f64 / f64::from(d.replicas))),
        loadgen_cpu_us_per_op: round3(per(me.cpu_ns) / 1000.0),
        loadgen_ctx_per_op: per(me.voluntary_ctx + me.involuntary_ctx),
    }
}

/// CPU time the other programs used between two readings (each sorted by pid), ns: a
/// program that started in between counts whole, one that ended in between not at all.
fn others_since(start: &[(u32, u64)], end: &[(u32, u64)]) -> u64 {
    end.iter()
        .map(
            |&(pid, ns)| match start.binary_search_by_key(&pid, |&(p, _)| p) {
                Ok(i) => ns.saturating_sub(start.get(i).map_or(0, |&(_, s)| s)),
                Err(_) => ns,
            },
        )
        .fold(0u64, u64::saturating_add)
}

/// The live table bytes of every node's engine (`engine.bytes_l0` … from each `Status`),
/// summed: what a remote cluster stores, without its write-ahead logs and memtables. `None`
/// when no node reported them.
pub fn engine_table_bytes(stats: &[std::collections::HashMap<String, u64>]) -> Option<u64> {
    let mut seen = false;
    let mut total = 0u64;
    for status in stats {
        for (name, bytes) in status {
            if name
                .strip_prefix("engine.bytes_l")
                .is_some_and(|level| !level.is_empty() && level.chars().all(|c| c.is_ascii_digit()))
            {
                seen = true;
                total = total.saturating_add(*bytes);
            }
        }
    }
    seen.then_some(total)
}

/// Disk space the regular files under `dir` take, bytes (bounded depth; symlinks not
/// followed): allocated blocks, as `du` counts them, not file lengths. The engine sizes each
/// write-ahead log up front as a sparse file (up to 64 MiB), so a length says how large the
/// log may grow, not what is stored.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    fn walk(dir: &std::path::Path, depth: u32) -> u64 {
        if depth > 8 {
            return 0;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut total = 0;
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_file() {
                total = allocated_bytes(&meta).saturating_add(total);
            } else if meta.is_dir() {
                total = walk(&e.path(), depth + 1).saturating_add(total);
            }
        }
        total
    }
    walk(dir, 0)
}

#[cfg(unix)]
fn allocated_bytes(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    // `st_blocks` counts 512-byte units whatever the file system's block size.
    meta.blocks().saturating_mul(512)
}

#[cfg(not(unix))]
fn allocated_bytes(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

#[cfg(test)]
mod counter_tests {
    use super::*;

    #[test]
    fn own_counters_grow_with_work() {
        let pid = std::process::id();
        let a = snapshot(&[pid]);
        // Busy for 50 ms (the CPU clock advances at ticks and context switches).
        let until = Instant::now() + Duration::from_millis(50);
        let mut x = 0u64;
        while Instant::now() < until {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        let b = snapshot(&[pid]);
        let r = per_op(&a, &b, pid, 1000, None, None);
        assert!(r.loadgen_cpu_us_per_op > 0.0, "{r:?}");
        assert!(r.node_cpu_us_per_op.is_none());
        let pct = cpu_pct_by_pid(&a, &b);
        assert_eq!(pct.len(), 1);
    }

    #[test]
    fn disk_bytes_are_divided_by_keys_and_replicas() {
        let s = Snapshot::default();
        let disk = DiskUsage {
            bytes: 6_000,
            keys: 10,
            replicas: 3,
        };
        let r = per_op(&s, &s, 1, 0, None, Some(disk));
        assert_eq!(r.disk_bytes, Some(6_000));
        assert_eq!(r.disk_bytes_per_key, Some(600.0));
        assert_eq!(r.disk_bytes_per_key_replica, Some(200.0));
        let none = per_op(&s, &s, 1, 0, None, None);
        assert_eq!(none.disk_bytes_per_key, None);
    }

    /// Other programs' CPU is what they used between the edges (a new one counts whole);
    /// steal is the hypervisor's share; both as percent of one core over the window.
    #[test]
    fn the_machine_beside_the_run_is_what_other_programs_used() {
        let t0 = Instant::now();
        let a = Snapshot {
            at: Some(t0),
            procs: Vec::new(),
            machine: Some(MachineCounters { steal_ns: 0 }),
            others: Some(vec![(10, 5_000_000_000), (11, 1_000_000_000)]),
        };
        // 10 s: program 10 used 1 s more, 11 nothing, 12 (new) 2 s; 0.5 s stolen.
        let b = Snapshot {
            at: Some(t0 + Duration::from_secs(10)),
            procs: Vec::new(),
            machine: Some(MachineCounters {
                steal_ns: 500_000_000,
            }),
            others: Some(vec![
                (10, 6_000_000_000),
                (11, 1_000_000_000),
                (12, 2_000_000_000),
            ]),
        };
        let r = per_op(&a, &b, 1, 1000, None, None);
        assert_eq!(r.other_cpu_pct, Some(30.0), "3 s of 10 s");
        assert_eq!(r.steal_pct, Some(5.0));
        let blind = Snapshot {
            others: None,
            machine: None,
            ..b.clone()
        };
        let r = per_op(&a, &blind, 1, 1000, None, None);
        assert_eq!((r.other_cpu_pct, r.steal_pct), (None, None));
    }

    #[test]
    fn a_sparse_file_counts_what_is_written_not_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("wal")).unwrap();
        f.set_len(64 << 20).unwrap();
        std::fs::write(dir.path().join("table"), vec![7u8; 100_000]).unwrap();
        let bytes = dir_bytes(dir.path());
        assert!((100_000..(1 << 20)).contains(&bytes), "{bytes}");
    }

    #[test]
    fn engine_table_bytes_sum_every_level_of_every_node() {
        let node = |pairs: &[(&str, u64)]| -> std::collections::HashMap<String, u64> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let stats = [
            node(&[
                ("engine.bytes_l0", 100),
                ("engine.bytes_l1", 20),
                ("engine.fsyncs", 9),
            ]),
            node(&[("engine.bytes_l6", 3), ("engine.bytes_written", 1_000)]),
        ];
        assert_eq!(engine_table_bytes(&stats), Some(123));
        assert_eq!(engine_table_bytes(&[node(&[("engine.fsyncs", 1)])]), None);
    }
}
