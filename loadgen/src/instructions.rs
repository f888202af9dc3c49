//! Instructions per operation, counted by valgrind's callgrind (opt-in: `loadgen run
//! --instructions`). Hardware counters are often missing (virtual machines, containers); an
//! instruction count from a simulated CPU does not depend on the machine's load, so it moves
//! only when the code does.
//!
//! The local cluster's nodes start under `valgrind --tool=callgrind` (no cache or branch
//! simulation: only `Ir`, instructions executed). At the measured window's start every node's
//! counters are zeroed and at its end dumped, both with `callgrind_control`; the dumps' totals,
//! summed over nodes, divided by the operations completed in between, give
//! `node_instructions_per_op`.
//!
//! `callgrind_control` reaches a node through valgrind's gdbserver within about a quarter of a
//! second, so an edge is known only to within that: the operation count is scaled to the time
//! between the zeroing's midpoint and the window's end (the dump comes after the last
//! operation; an idle node executes next to nothing). Under valgrind a node runs 20-50 times
//! slower and one thread at a time, so run it at a low rate; its CPU and latency figures are
//! those of the instrumented process and are not comparable with an uninstrumented run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use store::local_cluster::NodeLauncher;

/// The valgrind executable.
pub const VALGRIND: &str = "valgrind";
/// The tool that zeroes and dumps a running callgrind's counters.
pub const CONTROL: &str = "callgrind_control";
/// What `manifest.json` says the nodes ran under.
pub const INSTRUMENT: &str = "callgrind";

/// Fails with what to install unless valgrind and callgrind_control are on the PATH.
pub fn check_tools() -> Result<(), String> {
    for tool in [VALGRIND, CONTROL] {
        let found = Command::new(tool)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Err(format!(
                "--instructions needs `{tool}` on the PATH (Debian: apt-get install valgrind)"
            ));
        }
    }
    Ok(())
}

/// Starts each node as `valgrind --tool=callgrind … <launcher>`, its dumps in `out_dir`.
pub fn wrap(launcher: &NodeLauncher, out_dir: &Path) -> NodeLauncher {
    // valgrind resolves the program in its own process, where `/proc/self/exe` is valgrind:
    // name this process's executable by its pid instead (it still names the running binary).
    let program = if launcher.program == Path::new("/proc/self/exe") {
        PathBuf::from(format!("/proc/{}/exe", std::process::id()))
    } else {
        launcher.program.clone()
    };
    let mut args = vec![
        "--tool=callgrind".to_string(),
        "--cache-sim=no".into(),
        "--branch-sim=no".into(),
        "--dump-instr=no".into(),
        "--dump-line=no".into(),
        "--vgdb=yes".into(),
        format!(
            "--callgrind-out-file={}",
            out_dir.join("callgrind.%p").display()
        ),
        program.display().to_string(),
    ];
    args.extend(launcher.args_prefix.iter().cloned());
    NodeLauncher {
        program: PathBuf::from(VALGRIND),
        args_prefix: args,
    }
}

/// Runs `callgrind_control ARGS PID` for every pid at once; returns the midpoint between the
/// first start and the last return.
fn control_all(pids: &[u32], args: &[&str]) -> Result<Instant, String> {
    let start = Instant::now();
    let children: Vec<_> = pids
        .iter()
        .map(|pid| {
            Command::new(CONTROL)
                .args(args)
                .arg(pid.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map(|c| (*pid, c))
                .map_err(|e| format!("cannot run {CONTROL}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    for (pid, child) in children {
        let out = child
            .wait_with_output()
            .map_err(|e| format!("{CONTROL} for node {pid}: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains("OK") {
            return Err(format!(
                "{CONTROL} {} {pid} failed: {}{}",
                args.join(" "),
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let end = Instant::now();
    Ok(start + end.saturating_duration_since(start) / 2)
}

/// Zeroes every node's counters at `at` on a thread of its own; the handle gives the edge's
/// midpoint.
pub fn zero_at(pids: Vec<u32>, at: Instant) -> Option<JoinHandle<Result<Instant, String>>> {
    std::thread::Builder::new()
        .name("callgrind-zero".into())
        .spawn(move || {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            control_all(&pids, &["--zero"])
        })
        .ok()
}

/// Dumps every node's counters (tagged `tag`) and returns the instructions executed since the
/// zeroing, summed over nodes.
pub fn dump_total(pids: &[u32], out_dir: &Path, tag: &str) -> Result<u64, String> {
    control_all(pids, &[&format!("--dump={tag}")])?;
    let mut total = 0u64;
    for pid in pids {
        total = total.saturating_add(dumped(out_dir, *pid, tag)?);
    }
    Ok(total)
}

/// The `totals:` of the dump of `pid` triggered with `tag` (callgrind names dumps
/// `callgrind.PID.N`; the trigger is in each file's header).
fn dumped(out_dir: &Path, pid: u32, tag: &str) -> Result<u64, String> {
    let prefix = format!("callgrind.{pid}.");
    let trigger = format!("desc: Trigger: dump {tag}");
    // The dump file is written by the node itself, a moment after the command returns.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = std::fs::read_dir(out_dir)
            .map_err(|e| format!("cannot read {}: {e}", out_dir.display()))?;
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            if text.lines().any(|l| l.trim_end() == trigger)
                && let Some(n) = totals(&text)
            {
                return Ok(n);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "node {pid} wrote no callgrind dump `{tag}` into {}",
                out_dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `totals:` line of a callgrind dump (`summary:` in older formats), instructions.
fn totals(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("totals:"))
        .or_else(|| text.lines().find(|l| l.starts_with("summary:")))?;
    line.split_once(':')?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Instructions per operation: `instructions` over the operations completed between the
/// zeroing's midpoint and the window's end, taken as the window's `completed` scaled by the
/// share of the window that was counted (the load is steady across the edge: warm-up runs the
/// same load before it). `None` when the edge is implausibly far from the window's start.
pub fn per_op(
    instructions: u64,
    completed: u64,
    zeroed: Instant,
    (measure_start, measure_end): (Instant, Instant),
) -> Option<f64> {
    let window = measure_end
        .saturating_duration_since(measure_start)
        .as_secs_f64();
    let counted = if zeroed >= measure_start {
        measure_end.saturating_duration_since(zeroed).as_secs_f64()
    } else {
        window
            + measure_start
                .saturating_duration_since(zeroed)
                .as_secs_f64()
    };
    let share = counted / window;
    if completed == 0 || !share.is_finite() || !(0.5..=1.5).contains(&share) {
        return None;
    }
    Some((instructions as f64 / (completed as f64 * share)).round())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_a_dump() {
        let dump = "# callgrind format\nversion: 1\ndesc: Trigger: dump w1\n\
                    events: Ir\nsummary: 4457\n\nfn=(1) main\n3 4457\ntotals: 4525\n";
        assert_eq!(totals(dump), Some(4525));
        assert_eq!(totals("events: Ir\nsummary: 17\n"), Some(17));
        assert_eq!(totals("events: Ir\ntotals: lots\n"), None);
        assert_eq!(totals(""), None);
    }

    #[test]
    fn operations_are_scaled_to_the_counted_share_of_the_window() {
        let start = Instant::now();
        let end = start + Duration::from_secs(10);
        // Zeroed 1 s late: 90% of the window's operations were counted.
        let late = per_op(900_000, 1000, start + Duration::from_secs(1), (start, end));
        assert_eq!(late, Some(1000.0));
        // Zeroed 1 s early: 110%.
        let early = start.checked_sub(Duration::from_secs(1)).unwrap_or(start);
        if early < start {
            assert_eq!(per_op(1_100_000, 1000, early, (start, end)), Some(1000.0));
        }
        // An edge 6 s off, or no operations: no figure.
        assert_eq!(
            per_op(1, 1000, start + Duration::from_secs(6), (start, end)),
            None
        );
        assert_eq!(per_op(1, 0, start, (start, end)), None);
    }

    #[test]
    fn the_launcher_runs_the_node_under_callgrind() {
        let inner = NodeLauncher {
            program: PathBuf::from("/bin/loadgen"),
            args_prefix: vec!["__node".into()],
        };
        let l = wrap(&inner, Path::new("/tmp/x"));
        assert_eq!(l.program, PathBuf::from("valgrind"));
        assert_eq!(l.args_prefix[0], "--tool=callgrind");
        assert!(
            l.args_prefix
                .contains(&"--callgrind-out-file=/tmp/x/callgrind.%p".into())
        );
        assert_eq!(
            &l.args_prefix[l.args_prefix.len() - 2..],
            ["/bin/loadgen", "__node"]
        );
    }
}
