//! A fault layer in the transport, switched by tests.
//!
//! A node started with fault injection enabled accepts `Admin` requests that
//! partition it from named peers: outgoing pipeline calls and gossip to them
//! fail as unreachable, and incoming node-to-node calls from them are refused.
//! Nothing needs root or iptables, and a node without the flag refuses the
//! admin request. The same switchboard can make the next executor batches panic, to test
//! that the executor survives it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use parking_lot::RwLock;

/// Shared switchboard of injected faults.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    enabled: AtomicBool,
    blocked: RwLock<BTreeSet<String>>,
    executor_panics: AtomicU32,
    write_stall_ms: std::sync::atomic::AtomicU64,
}

impl Faults {
    /// Faults that may be switched at run time (`--enable-fault-injection`).
    pub fn enabled() -> Self {
        let f = Faults::default();
        f.inner.enabled.store(true, Ordering::Relaxed);
        f
    }

    /// Whether this node accepts fault commands.
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled.load(Ordering::Relaxed)
    }

    /// Whether traffic with `peer` is cut.
    pub fn blocks(&self, peer: &str) -> bool {
        self.is_enabled() && self.inner.blocked.read().contains(peer)
    }

    /// Replace the set of peers this node is partitioned from.
    pub fn set_blocked(&self, peers: impl IntoIterator<Item = String>) {
        *self.inner.blocked.write() = peers.into_iter().collect();
    }

    /// Peers this node is partitioned from.
    pub fn blocked(&self) -> Vec<String> {
        self.inner.blocked.read().iter().cloned().collect()
    }

    /// Make the next `n` executor batches panic (on top of any still pending).
    pub fn add_executor_panics(&self, n: u32) {
        let _ =
            self.inner
                .executor_panics
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                    Some(p.saturating_add(n))
                });
    }

    /// Make every write batch wait `ms` before it is applied, as a stalled disk would hold
    /// it (0: no stall). In-process only, for tests.
    pub fn set_write_stall_ms(&self, ms: u64) {
        self.inner.write_stall_ms.store(ms, Ordering::Relaxed);
    }

    /// How long each write batch must wait before it is applied.
    pub fn write_stall(&self) -> Option<std::time::Duration> {
        let ms = self.inner.write_stall_ms.load(Ordering::Relaxed);
        (self.is_enabled() && ms > 0).then(|| std::time::Duration::from_millis(ms))
    }

    /// Whether this executor batch must panic (consumes one pending panic).
    pub fn take_executor_panic(&self) -> bool {
        self.is_enabled()
            && self
                .inner
                .executor_panics
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| p.checked_sub(1))
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_only_apply_when_enabled() {
        let off = Faults::default();
        off.set_blocked(["n2".to_string()]);
        assert!(!off.blocks("n2"));
        let on = Faults::enabled();
        on.set_blocked(["n2".to_string()]);
        assert!(on.blocks("n2"));
        assert!(!on.blocks("n3"));
        on.set_blocked([]);
        assert!(!on.blocks("n2"));
    }
}
