//! Actor epochs: which actor this node mints new dots with, kept on disk.
//!
//! The rule is [`ActorEpochs`]' (see `version.rs` and docs/failures.md,
//! "Actor epochs"); this module makes it durable. The epoch lives in its own
//! small file, written with fsync and an atomic rename *before* the removal
//! that needs it is written, so no commit-log durability setting can lose a
//! bump that a removal relied on.
//!
//! Files in the data directory:
//!
//! - `ACTOR_EPOCH`: the epoch, a u64 (8 bytes, little-endian). Absent = 0.
//! - `RUNNING`: present while the node runs; removed by a clean shutdown. A
//!   start that finds it, with a commit log not synced on every write, may
//!   have lost acknowledged dots of the current actor, so it moves to the
//!   next epoch.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::version::{Actor, ActorEpochs, VersionVector};

use super::{ReplicaError, Result};

/// File holding the current epoch.
pub const EPOCH_FILE: &str = "ACTOR_EPOCH";
/// File present while the node runs.
pub const RUNNING_FILE: &str = "RUNNING";

/// The node's actor epochs, durable.
#[derive(Debug)]
pub struct Epochs {
    dir: PathBuf,
    state: Mutex<ActorEpochs>,
    /// The current actor, readable without the lock.
    actor: AtomicU64,
    /// Epochs started by this process.
    pub bumps: AtomicU64,
}

fn file_err(path: &Path, e: &std::io::Error) -> ReplicaError {
    ReplicaError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| file_err(dir, &e))
}

impl Epochs {
    /// Load the epoch of `base` in `dir`; start the next one when the last
    /// run did not stop cleanly and `tail_may_be_lost` (the commit log is
    /// not synced before every acknowledgement). Marks the node as running.
    pub fn open(dir: &Path, base: Actor, tail_may_be_lost: bool) -> Result<Epochs> {
        let path = dir.join(EPOCH_FILE);
        let stored = match std::fs::read(&path) {
            Ok(bytes) => {
                let raw: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| ReplicaError::Metadata("actor epoch"))?;
                u64::from_le_bytes(raw)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(file_err(&path, &e)),
        };
        let epochs = Epochs {
            dir: dir.to_path_buf(),
            state: Mutex::new(ActorEpochs::new(base, stored)),
            actor: AtomicU64::new(ActorEpochs::new(base, stored).actor()),
            bumps: AtomicU64::new(0),
        };
        let running = dir.join(RUNNING_FILE);
        if tail_may_be_lost && running.exists() {
            let mut state = epochs.state.lock();
            epochs.advance(&mut state)?;
            tracing::warn!(
                epoch = state.epoch(),
                "the last run did not stop cleanly and the commit log was not synced on every write; minting with a new actor"
            );
        }
        std::fs::File::create(&running)
            .and_then(|f| f.sync_all())
            .map_err(|e| file_err(&running, &e))?;
        sync_dir(dir)?;
        Ok(epochs)
    }

    /// The actor to mint new dots with.
    pub fn actor(&self) -> Actor {
        self.actor.load(Ordering::Acquire)
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.state.lock().epoch()
    }

    /// Call before removing a local set with this clock: moves (durably) to
    /// the next epoch when the set holds history of the current actor.
    /// Returns whether it did.
    pub fn retire_if_written(&self, clock: &VersionVector) -> Result<bool> {
        let mut state = self.state.lock();
        if !state.must_retire(clock) {
            return Ok(false);
        }
        self.advance(&mut state)?;
        Ok(true)
    }

    /// Move to the next epoch: on disk first, then in memory.
    fn advance(&self, state: &mut ActorEpochs) -> Result<()> {
        let next = state
            .next()
            .ok_or(ReplicaError::Metadata("actor epoch exhausted"))?;
        let path = self.dir.join(EPOCH_FILE);
        let tmp = self.dir.join(format!("{EPOCH_FILE}.tmp"));
        std::fs::write(&tmp, next.epoch().to_le_bytes())
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| file_err(&path, &e))?;
        sync_dir(&self.dir)?;
        *state = next;
        self.actor.store(next.actor(), Ordering::Release);
        self.bumps.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Record a clean stop (everything acknowledged is durable).
    pub fn mark_clean(&self) -> Result<()> {
        let running = self.dir.join(RUNNING_FILE);
        match std::fs::remove_file(&running) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(file_err(&running, &e)),
        }
    }
}
