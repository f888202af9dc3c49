//! Real network partitions for a local cluster. Each node listens on its own loopback address
//! and dials its peers from it; a partition is a set of nftables DROP rules between the
//! addresses of different groups, so node-to-node packets are lost on the way exactly as on a
//! cut network, while clients (which connect from 127.0.0.1) still reach every node.
//!
//! Addresses come in blocks: block `b` is `127.(1 + b / 256).(b % 256).1` to `.250`. A run
//! claims a free block under an exclusive lock on `/tmp/ringkv-net/lock` and records it as
//! `/tmp/ringkv-net/<b>.pid`; its rules live in the nftables table `inet ringkv_<b>`, so
//! parallel runs never share addresses or rules. The table and the claim are removed when the
//! [`AddressBlock`] is dropped (the end of the run, Ctrl-C), and a later claim removes those a
//! crashed run left behind (its pid is gone).
//!
//! Needs root and the `nft` command (Debian's `nftables`); [`available`] says why not.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where claims and the lock live.
const DIR: &str = "/tmp/ringkv-net";
/// Blocks to choose from.
const BLOCKS: u32 = 60_000;
/// Addresses per block (the last octet, 1..=250).
pub const PER_BLOCK: usize = 250;

/// Why partitions cannot be made here, if they cannot.
pub fn available() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false);
    if !root {
        return Err(
            "network partitions need root (they add nftables rules); run as root, or drop the \
             partition events"
                .into(),
        );
    }
    match Command::new("nft")
        .args(["list", "tables"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "network partitions need nftables, and `nft list tables` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!(
            "network partitions need the `nft` command (Debian: apt-get install nftables): {e}"
        )),
    }
}

/// A claimed block of loopback addresses and its nftables table.
#[derive(Debug)]
pub struct AddressBlock {
    block: u32,
    claim: PathBuf,
}

fn table_of(block: u32) -> String {
    format!("ringkv_{block}")
}

fn nft(args: &[&str], script: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new("nft");
    cmd.args(args)
        .stdin(if script.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run nft: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (script, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot feed nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("nft did not finish: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn delete_table(block: u32) {
    // Absent already is fine.
    let _ = nft(&["delete", "table", "inet", &table_of(block)], None);
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl AddressBlock {
    /// Claims a free block, first clearing the claims and tables of runs that are gone.
    pub fn claim() -> Result<AddressBlock, String> {
        let dir = Path::new(DIR);
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {DIR}: {e}"))?;
        let lock = std::fs::File::create(dir.join("lock"))
            .map_err(|e| format!("cannot open {DIR}/lock: {e}"))?;
        lock.lock()
            .map_err(|e| format!("cannot lock {DIR}/lock: {e}"))?;
        let mut taken = std::collections::BTreeSet::new();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {DIR}: {e}"))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(block) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pid"))
                .and_then(|b| b.parse::<u32>().ok())
            else {
                continue;
            };
            let owner = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            if owner.is_some_and(pid_alive) {
                taken.insert(block);
            } else {
                delete_table(block);
                let _ = std::fs::remove_file(&path);
            }
        }
        for _ in 0..1000 {
            let block = rand::random_range(0..BLOCKS);
            if taken.contains(&block) {
                continue;
            }
            let claim = dir.join(format!("{block}.pid"));
            std::fs::write(&claim, std::process::id().to_string())
                .map_err(|e| format!("cannot write {}: {e}", claim.display()))?;
            // A table of that name from before is stale.
            delete_table(block);
            return Ok(AddressBlock { block, claim });
        }
        Err("no free block of loopback addresses".into())
    }

    /// The address of node `i` (0-based; `i` < [`PER_BLOCK`]).
    pub fn ip(&self, i: usize) -> Option<Ipv4Addr> {
        let last = u8::try_from(i + 1)
            .ok()
            .filter(|&l| usize::from(l) <= PER_BLOCK)?;
        let second = u8::try_from(1 + self.block / 256).ok()?;
        let third = (self.block % 256) as u8;
        Some(Ipv4Addr::new(127, second, third, last))
    }

    /// Cuts the network between the groups: every packet from an address of one group to an
    /// address of another is dropped (replacing any earlier partition).
    pub fn partition(&self, groups: &[Vec<Ipv4Addr>]) -> Result<(), String> {
        let table = table_of(self.block);
        let mut script = format!(
            "table inet {table} {{}}\nflush table inet {table}\ntable inet {table} {{\n  chain cut {{\n    type filter hook input priority -10; policy accept;\n"
        );
        for (i, from) in groups.iter().enumerate() {
            for (j, to) in groups.iter().enumerate() {
                if i == j {
                    continue;
                }
                for a in from {
                    for b in to {
                        script.push_str(&format!("    ip saddr {a} ip daddr {b} drop\n"));
                    }
                }
            }
        }
        script.push_str("  }\n}\n");
        nft(&["-f", "-"], Some(&script))
    }

    /// Ends the partition: every node reaches every other again.
    pub fn heal(&self) -> Result<(), String> {
        let table = table_of(self.block);
        nft(
            &["-f", "-"],
            Some(&format!(
                "table inet {table} {{}}\ndelete table inet {table}\n"
            )),
        )
    }

    /// The nftables table this block's rules live in.
    pub fn table(&self) -> String {
        table_of(self.block)
    }
}

impl Drop for AddressBlock {
    fn drop(&mut self) {
        delete_table(self.block);
        let _ = std::fs::remove_file(&self.claim);
    }
}
