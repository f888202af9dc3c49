//! Membership states as failure detection sees them.

use std::collections::BTreeMap;

use parking_lot::RwLock;

/// What failure detection believes about a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Missed probes; has a window to refute before it is declared down.
    Suspect,
    /// Declared down; requests go to fallbacks.
    Down,
}

impl MemberState {
    /// Lower-case name, as `ringkv status` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Down => "down",
        }
    }
}

/// Member states and incarnations, keyed by node id.
#[derive(Debug)]
pub struct Membership {
    me: String,
    states: RwLock<BTreeMap<String, (MemberState, u64)>>,
}

impl Membership {
    /// Node `me` knows only itself, alive.
    pub fn new(me: &str) -> Self {
        let mut states = BTreeMap::new();
        states.insert(me.to_string(), (MemberState::Alive, 0));
        Membership {
            me: me.to_string(),
            states: RwLock::new(states),
        }
    }

    /// The state of a member; unknown members count as alive until failure
    /// detection says otherwise.
    pub fn state(&self, id: &str) -> MemberState {
        self.states
            .read()
            .get(id)
            .map(|(s, _)| *s)
            .unwrap_or(MemberState::Alive)
    }

    /// State and incarnation of a member, if known.
    pub fn get(&self, id: &str) -> Option<(MemberState, u64)> {
        self.states.read().get(id).copied()
    }

    /// Record what failure detection says.
    pub fn set(&self, id: &str, state: MemberState, incarnation: u64) {
        if id == self.me && state != MemberState::Alive {
            return;
        }
        self.states
            .write()
            .insert(id.to_string(), (state, incarnation));
    }

    /// Every known member.
    pub fn all(&self) -> BTreeMap<String, (MemberState, u64)> {
        self.states.read().clone()
    }
}
