//! The ring this node serves: one versioned description, adopted only when
//! newer, persisted in the data directory (`ring.json`) so a restart keeps
//! what the cluster agreed on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::ring::{Ring, RingDescription, RingError};

/// File name of the persisted ring.
pub const RING_FILE: &str = "ring.json";
/// How far ahead of the ring in force an adopted version may be. Admin
/// changes move it by 1 or 2, so a node that missed many changes is still far
/// inside this; a peer pushing a version near the end of the range is not.
pub const MAX_RING_VERSION_STEP: u64 = 1 << 20;

/// Why a ring could not be loaded, stored or adopted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The description is unusable.
    #[error("ring version {version}: {source}")]
    Invalid {
        /// Version of the refused description.
        version: u64,
        /// What is wrong with it.
        source: RingError,
    },
    /// Reading or writing `ring.json` failed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A version too far ahead of the ring in force.
    #[error(
        "ring version {version} is more than {max_step} ahead of the ring in force ({current}); refused"
    )]
    TooFarAhead {
        /// The version offered.
        version: u64,
        /// The version in force.
        current: u64,
        /// [`MAX_RING_VERSION_STEP`].
        max_step: u64,
    },
    /// Same version, different content: two admins raced.
    #[error(
        "ring version {0} is already adopted with a different membership; an admin change must use a new version"
    )]
    Conflict(u64),
}

/// The current ring, shared by every task of the node.
#[derive(Debug)]
pub struct Topology {
    current: RwLock<Arc<Ring>>,
    path: PathBuf,
}

impl Topology {
    /// Load `ring.json` from `dir`, or start from `initial` when there is none.
    pub fn open(dir: &Path, initial: RingDescription) -> Result<Topology, TopologyError> {
        let path = dir.join(RING_FILE);
        let desc = match std::fs::read(&path) {
            Ok(bytes) => {
                let stored: RingDescription =
                    serde_json::from_slice(&bytes).map_err(|e| TopologyError::File {
                        path: path.clone(),
                        message: format!(
                            "corrupt ring file ({e}); restore it or remove the data directory"
                        ),
                    })?;
                if stored.version < initial.version {
                    initial
                } else {
                    stored
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => initial,
            Err(e) => {
                return Err(TopologyError::File {
                    path,
                    message: e.to_string(),
                });
            }
        };
        let version = desc.version;
        let ring = Ring::new(desc).map_err(|source| TopologyError::Invalid { version, source })?;
        let t = Topology {
            current: RwLock::new(Arc::new(ring)),
            path,
        };
        t.persist(t.ring().description())?;
        Ok(t)
    }

    /// The ring in force.
    pub fn ring(&self) -> Arc<Ring> {
        self.current.read().clone()
    }

    /// Adopt `desc` if it is newer than the current ring. Returns whether it
    /// was adopted. The same version with a different shape is a conflict.
    pub fn adopt(&self, desc: RingDescription) -> Result<bool, TopologyError> {
        let version = desc.version;
        let ring = Ring::new(desc).map_err(|source| TopologyError::Invalid { version, source })?;
        let mut current = self.current.write();
        if version < current.version() {
            return Ok(false);
        }
        if version - current.version() > MAX_RING_VERSION_STEP {
            return Err(TopologyError::TooFarAhead {
                version,
                current: current.version(),
                max_step: MAX_RING_VERSION_STEP,
            });
        }
        if version == current.version() {
            if ring.description() == current.description() {
                return Ok(false);
            }
            return Err(TopologyError::Conflict(version));
        }
        self.persist(ring.description())?;
        *current = Arc::new(ring);
        Ok(true)
    }

    fn persist(&self, desc: &RingDescription) -> Result<(), TopologyError> {
        let err = |e: std::io::Error| TopologyError::File {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let bytes = serde_json::to_vec_pretty(desc).map_err(|e| TopologyError::File {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingMember;

    fn desc(version: u64, ids: &[&str]) -> RingDescription {
        RingDescription::new(
            version,
            1,
            ids.iter()
                .map(|id| RingMember {
                    id: id.to_string(),
                    address: format!("127.0.0.1:1{}", id.len()),
                    zone: String::new(),
                    tokens: 8,
                })
                .collect(),
        )
    }

    #[test]
    fn adopts_only_newer_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let t = Topology::open(dir.path(), desc(1, &["a"])).unwrap();
        assert!(t.adopt(desc(2, &["a", "b"])).unwrap());
        assert!(!t.adopt(desc(1, &["a", "c"])).unwrap(), "older is ignored");
        assert!(!t.adopt(desc(2, &["a", "b"])).unwrap(), "same is a no-op");
        assert!(matches!(
            t.adopt(desc(2, &["a", "c"])),
            Err(TopologyError::Conflict(2))
        ));
        drop(t);
        let again = Topology::open(dir.path(), desc(1, &["a"])).unwrap();
        assert_eq!(again.ring().version(), 2, "restart keeps the adopted ring");
        assert_eq!(again.ring().members().len(), 2);
    }

    #[test]
    fn versions_far_ahead_or_at_the_end_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = Topology::open(dir.path(), desc(1, &["a"])).unwrap();
        assert!(t.adopt(desc(u64::MAX, &["a", "b"])).is_err());
        assert!(matches!(
            t.adopt(desc(2 + MAX_RING_VERSION_STEP, &["a", "b"])),
            Err(TopologyError::TooFarAhead { .. })
        ));
        assert_eq!(t.ring().version(), 1);
        assert!(
            t.adopt(desc(1 + MAX_RING_VERSION_STEP, &["a", "b"]))
                .unwrap()
        );
    }

    #[test]
    fn corrupt_ring_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RING_FILE), b"{not json").unwrap();
        let err = Topology::open(dir.path(), desc(1, &["a"])).unwrap_err();
        assert!(err.to_string().contains("corrupt ring file"), "{err}");
    }
}
