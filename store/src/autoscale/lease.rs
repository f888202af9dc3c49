//! One controller per cluster: an exclusive `flock(2)` on a lock file, held for as long as
//! the controller runs and released by the kernel when its process ends, however it ends.
//! A second controller that finds the lock taken refuses to start and names the holder.
//!
//! The lock is as wide as the file system it lives on: for a local cluster, the cluster's own
//! directory; for real hosts, run the controller where every would-be controller sees the same
//! file (one host, or a single-replica deployment), see `docs/autoscaling.md`.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct Lease {
    _file: File,
    path: PathBuf,
}

impl Lease {
    /// Takes the lock at `path` (creating the file) without waiting.
    pub fn acquire(path: &Path) -> Result<Lease, String> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("cannot open the autoscaler lock {}: {e}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(format!(
                "another autoscaler holds {} ({}); only one may act on a cluster",
                path.display(),
                holder.trim()
            ));
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "pid {}", std::process::id());
        Ok(Lease {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_controller_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autoscale.lock");
        let first = Lease::acquire(&path).unwrap();
        let e = Lease::acquire(&path).unwrap_err();
        assert!(e.contains("another autoscaler") && e.contains("pid"), "{e}");
        drop(first);
        // Another test thread forking a child in this instant shares the lock's open file
        // description until the child's exec closes it (CLOEXEC), so the release is seen
        // within moments rather than at once: retry, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match Lease::acquire(&path) {
                Ok(_) => break,
                Err(e) if std::time::Instant::now() >= deadline => panic!("{e}"),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    }
}
