//! Automatic scaling on traffic: a [`policy`] that decides from the nodes' own load signals
//! ([`signals`]), a [`controller`] that samples the cluster and carries decisions out through
//! the ring's join and leave, [`actuator`]s that start and stop node processes (a local
//! cluster's, or an operator's command), and a [`lease`] so only one controller acts.
//! `docs/autoscaling.md` explains the policy and its defaults.

pub mod actuator;
pub mod controller;
pub mod lease;
pub mod policy;
pub mod signals;

pub use actuator::{Actuator, CommandActuator, Provisioned, SharedCluster};
pub use controller::{Controller, Decision, Log, SharedLog};
pub use lease::Lease;
pub use policy::{Action, Autoscaler, Bound, Policy, Signals, Verdict};
