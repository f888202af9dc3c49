//! Resource sampling with sysinfo: the CPU and RSS of the load generator itself and of every
//! node process, twice a second, on a thread of its own; and a description of the machine.

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
