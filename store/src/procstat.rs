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
