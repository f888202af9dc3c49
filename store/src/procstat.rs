//! One process's counters from `/proc`, with nanosecond CPU resolution: what the loadgen
//! samples for local node processes at the edges of a measured window, and what a node
//! reports about itself in `Status` (`process.*`), so a remote cluster's per-operation costs
//! come from the same code.

/// Counters of one process at one instant, read from `/proc`. Fields that could not be read are
/// zero and the matching `has_*` flag is false.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcCounters {
    /// The process.
    pub pid: u32,
    /// CPU time (user + system) of the whole process, exited threads included, ns (the
    /// process's CPU-time clock; where that cannot be read, the sum of live threads'
    /// `schedstat`).
    pub cpu_ns: u64,
    /// Voluntary context switches summed over live threads.
    pub voluntary_ctx: u64,
    /// Involuntary context switches summed over live threads.
    pub involuntary_ctx: u64,
    /// Bytes the process caused to be read from storage (`read_bytes`).
    pub read_bytes: u64,
    /// Bytes the process caused to be written to storage (`write_bytes`).
    pub write_bytes: u64,
    /// Bytes passed to read-like syscalls, sockets included (`rchar`).
    pub rchar: u64,
    /// Bytes passed to write-like syscalls, sockets included (`wchar`).
    pub wchar: u64,
    /// `/proc/PID/io` was readable.
    pub has_io: bool,
}

impl ProcCounters {
    /// What happened between `earlier` and this reading of the same process (counters that
    /// went backwards count as zero).
    pub fn since(&self, earlier: &ProcCounters) -> ProcCounters {
        ProcCounters {
            pid: self.pid,
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            voluntary_ctx: self.voluntary_ctx.saturating_sub(earlier.voluntary_ctx),
            involuntary_ctx: self.involuntary_ctx.saturating_sub(earlier.involuntary_ctx),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            rchar: self.rchar.saturating_sub(earlier.rchar),
            wchar: self.wchar.saturating_sub(earlier.wchar),
            has_io: self.has_io && earlier.has_io,
        }
    }
}

fn parse_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim_start_matches(':').trim().parse().ok())
}

/// Reads the counters of `pid`; `None` when the process is gone or `/proc` is not there.
/// CPU time includes threads that have exited (a tokio blocking-pool thread that idles out
/// mid-window, say); the context-switch sums are over live threads only (the kernel keeps
/// the exited threads' switches only for `getrusage` of the process itself).
pub fn read_counters(pid: u32) -> Option<ProcCounters> {
    read_at(&std::path::PathBuf::from(format!("/proc/{pid}")), pid)
}

/// This process's counters.
pub fn read_self() -> Option<ProcCounters> {
    read_at(std::path::Path::new("/proc/self"), std::process::id())
}

fn read_at(base: &std::path::Path, pid: u32) -> Option<ProcCounters> {
    let mut c = ProcCounters {
        pid,
        ..ProcCounters::default()
    };
    let tasks = std::fs::read_dir(base.join("task")).ok()?;
    // The process's CPU-time clock; only where it cannot be read, the live threads' sum.
    let clock = process_cpu_ns(pid);
    let mut any = clock.is_some();
    for t in tasks.flatten() {
        let dir = t.path();
        if clock.is_none()
            && let Ok(text) = std::fs::read_to_string(dir.join("schedstat"))
            && let Some(ns) = text
                .split_whitespace()
                .next()
                .and_then(|f| f.parse::<u64>().ok())
        {
            c.cpu_ns += ns;
            any = true;
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("status")) {
            c.voluntary_ctx += parse_field(&text, "voluntary_ctxt_switches").unwrap_or(0);
            c.involuntary_ctx += parse_field(&text, "nonvoluntary_ctxt_switches").unwrap_or(0);
        }
    }
    if let Some(ns) = clock {
        c.cpu_ns = ns;
    }
    if let Ok(text) = std::fs::read_to_string(base.join("io")) {
        c.read_bytes = parse_field(&text, "read_bytes").unwrap_or(0);
        c.write_bytes = parse_field(&text, "write_bytes").unwrap_or(0);
        c.rchar = parse_field(&text, "rchar").unwrap_or(0);
        c.wchar = parse_field(&text, "wchar").unwrap_or(0);
        c.has_io = true;
    }
    any.then_some(c)
}

/// The whole machine's stolen CPU time at one instant, from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineCounters {
    /// Time the hypervisor ran something else on this machine's virtual CPUs (`steal`), ns.
    pub steal_ns: u64,
}

impl MachineCounters {
    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: &MachineCounters) -> MachineCounters {
        MachineCounters {
            steal_ns: self.steal_ns.saturating_sub(earlier.steal_ns),
        }
    }
}

/// Parses the aggregate `cpu` line of `/proc/stat` text; `tick_ns` is the length of one
/// clock tick. `None` when the line is missing or malformed.
pub fn parse_machine(stat: &str, tick_ns: u64) -> Option<MachineCounters> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if f.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal … (kernels before 2.6.11 had no steal)
    Some(MachineCounters {
        steal_ns: f.get(7).copied().unwrap_or(0).saturating_mul(tick_ns),
    })
}

/// CPU time (user + system) of every user-space process on the machine except `exclude`,
/// ns, by pid, from `/proc/PID/stat` (clock-tick resolution). Kernel threads are left out:
/// much of their work (block I/O completion, writeback) is done for the processes that are
/// excluded. `None` where `/proc` is not there.
pub fn read_other_programs(exclude: &[u32]) -> Option<Vec<(u32, u64)>> {
    let tick_ns = tick_ns()?;
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if exclude.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(ticks) = user_process_ticks(&stat) {
            out.push((pid, ticks.saturating_mul(tick_ns)));
        }
    }
    out.sort_unstable();
    Some(out)
}

/// `utime + stime` of a `/proc/PID/stat` line, `None` for a kernel thread or a malformed line.
fn user_process_ticks(stat: &str) -> Option<u64> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... flags(6) ... utime(11) stime(12).
    let flags: u64 = f.get(6)?.parse().ok()?;
    if flags & PF_KTHREAD != 0 {
        return None;
    }
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

/// The CPU time of process `pid` so far, exited threads included, from its CPU-time clock
/// (`clock_getcpuclockid(3)`): nanoseconds, and monotonic, unlike a sum over the threads
/// still alive. `None` where the clock cannot be read (the process is gone, or not Linux).
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid, writable clockid_t for the call's duration.
    #[allow(unsafe_code)]
    let found = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
    if found != 0 {
        return None;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration; an unknown or
    // stale clock id makes the call fail with EINVAL, never write elsewhere.
    #[allow(unsafe_code)]
    let read = unsafe { libc::clock_gettime(clock, &mut ts) };
    if read != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn tick_ns() -> Option<u64> {
    // SAFETY: sysconf(3) has no preconditions; it only reads a system constant.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz)
        .ok()
        .filter(|&h| h > 0)
        .map(|h| 1_000_000_000 / h)
}

/// Reads the machine's CPU counters; `None` where `/proc/stat` is not there.
pub fn read_machine() -> Option<MachineCounters> {
    parse_machine(&std::fs::read_to_string("/proc/stat").ok()?, tick_ns()?)
}

#[cfg(test)]
mod machine_tests {
    use super::*;

    #[test]
    fn the_cpu_line_gives_steal_time() {
        let stat = "cpu  100 5 20 900 7 3 4 6 0 0\ncpu0 50 2 10 450 3 1 2 3 0 0\nintr 1\n";
        let m = parse_machine(stat, 10_000_000).unwrap();
        assert_eq!(m.steal_ns, 6 * 10_000_000);
        let later = MachineCounters {
            steal_ns: m.steal_ns + 5,
        };
        assert_eq!(later.since(&m).steal_ns, 5);
        assert_eq!(
            m.since(&later).steal_ns,
            0,
            "a counter going back counts as zero"
        );
        assert_eq!(parse_machine("cpu  1 2\n", 1), None, "too few fields");
        assert_eq!(parse_machine("cpu  1 x 3 4\n", 1), None, "not a number");
        assert_eq!(parse_machine("intr 1\n", 1), None, "no cpu line");
    }

    #[test]
    fn a_user_process_counts_and_a_kernel_thread_does_not() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime ...
        let user = "42 (my (odd) prog) S 1 42 42 0 -1 4194304 10 0 0 0 70 30 0 0 20 0 1 0";
        assert_eq!(user_process_ticks(user), Some(100));
        let kthread = "7 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 5 9 0 0 20 0 1 0";
        assert_eq!(user_process_ticks(kthread), None);
        assert_eq!(user_process_ticks("9 (x) S 1"), None, "truncated");
        let me = std::process::id();
        let others = read_other_programs(&[me]).unwrap();
        assert!(others.iter().all(|(pid, _)| *pid != me), "excluded");
    }
}

#[cfg(test)]
mod process_tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A thread that exits takes its CPU time out of a sum over live threads: summed that
    /// way, a process whose busy thread ended inside a measured window seemed to have run
    /// backwards, and the window's CPU read as zero (seen as a flaky loadgen unit test).
    #[test]
    fn cpu_time_keeps_what_exited_threads_used() {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_millis(100);
            let mut x = 0u64;
            while Instant::now() < until {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            ready_tx.send(()).unwrap();
            exit_rx.recv().unwrap();
        });
        ready_rx.recv().unwrap();
        let before = read_counters(std::process::id()).unwrap();
        exit_tx.send(()).unwrap();
        worker.join().unwrap();
        let after = read_counters(std::process::id()).unwrap();
        assert!(
            after.cpu_ns >= before.cpu_ns,
            "CPU time went backwards when a thread exited: {} ns, then {} ns",
            before.cpu_ns,
            after.cpu_ns
        );
    }
}
