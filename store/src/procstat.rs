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
    /// CPU time on the CPU (user + system) summed over live threads, ns (`schedstat`).
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
/// Threads that exited before the read are not in the CPU and context-switch sums; a node's
/// threads live as long as the node, so over a measured window this loses nothing that matters.
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
    let mut any = false;
    for t in tasks.flatten() {
        let dir = t.path();
        if let Ok(text) = std::fs::read_to_string(dir.join("schedstat"))
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
    if let Ok(text) = std::fs::read_to_string(base.join("io")) {
        c.read_bytes = parse_field(&text, "read_bytes").unwrap_or(0);
        c.write_bytes = parse_field(&text, "write_bytes").unwrap_or(0);
        c.rchar = parse_field(&text, "rchar").unwrap_or(0);
        c.wchar = parse_field(&text, "wchar").unwrap_or(0);
        c.has_io = true;
    }
    any.then_some(c)
}

/// The whole machine's CPU time at one instant, from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineCounters {
    /// Time the CPUs ran tasks (user + nice + system), ns. Interrupt time is left out, as
    /// a process's `schedstat` leaves it out, so the two can be compared.
    pub task_ns: u64,
    /// Time the hypervisor ran something else on this machine's virtual CPUs (`steal`), ns.
    pub steal_ns: u64,
}

impl MachineCounters {
    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: &MachineCounters) -> MachineCounters {
        MachineCounters {
            task_ns: self.task_ns.saturating_sub(earlier.task_ns),
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
    let tick = |i: usize| f.get(i).copied().unwrap_or(0).saturating_mul(tick_ns);
    if f.len() < 4 {
        return None;
    }
    Some(MachineCounters {
        task_ns: tick(0).saturating_add(tick(1)).saturating_add(tick(2)),
        steal_ns: tick(7),
    })
}

/// Reads the machine's CPU counters; `None` where `/proc/stat` is not there.
pub fn read_machine() -> Option<MachineCounters> {
    // SAFETY: sysconf(3) has no preconditions; it only reads a system constant.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tick_ns = u64::try_from(hz)
        .ok()
        .filter(|&h| h > 0)
        .map(|h| 1_000_000_000 / h)?;
    parse_machine(&std::fs::read_to_string("/proc/stat").ok()?, tick_ns)
}

#[cfg(test)]
mod machine_tests {
    use super::*;

    #[test]
    fn the_cpu_line_gives_task_and_steal_time() {
        let stat = "cpu  100 5 20 900 7 3 4 6 0 0\ncpu0 50 2 10 450 3 1 2 3 0 0\nintr 1\n";
        let m = parse_machine(stat, 10_000_000).unwrap();
        assert_eq!(m.task_ns, 125 * 10_000_000, "user + nice + system");
        assert_eq!(m.steal_ns, 6 * 10_000_000);
        let later = MachineCounters {
            task_ns: m.task_ns + 5,
            steal_ns: m.steal_ns,
        };
        assert_eq!(later.since(&m).task_ns, 5);
        assert_eq!(
            m.since(&later).task_ns,
            0,
            "a counter going back counts as zero"
        );
        assert_eq!(parse_machine("cpu  1 2\n", 1), None, "too few fields");
        assert_eq!(parse_machine("cpu  1 x 3 4\n", 1), None, "not a number");
        assert_eq!(parse_machine("intr 1\n", 1), None, "no cpu line");
    }
}
