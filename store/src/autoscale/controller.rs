//! The controller: every `interval_s` it reads the ring from any member, asks every member
//! for its `Status`, turns the answers into [`Signals`], lets the [`Autoscaler`] decide and,
//! on a decision, acts through an [`Actuator`] and the ring's own join and leave (data is
//! streamed before the change is in force). Every decision is logged with the signals behind
//! it, kept in a [`Log`] others can read, and counted in the ring (`ringkv status`).
//!
//! One controller per cluster: [`super::Lease`] is held for as long as it runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::actuator::Actuator;
use super::policy::{Action, Autoscaler, Policy, Signals, Verdict};
use super::signals::{NodeCounters, Sampler};
use crate::client::{Client, ClientOptions};
use crate::proto as pb;

/// How long one node's `Status` may take before the sample is left incomplete.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a new node may take to serve its first request after its join is in force.
const SERVING_TIMEOUT: Duration = Duration::from_secs(30);
/// Samples kept in the [`Log`] (a day at one a second); later ones are counted, not kept.
const MAX_SAMPLES: usize = 86_400;

/// Options for a controller's client made from a cluster's: one session per node, no
/// routing, and a deadline long enough for a join or leave that streams data (each `Status`
/// has its own short deadline).
pub fn client_options(mut opts: ClientOptions) -> ClientOptions {
    opts.timeout = Duration::from_secs(600);
    opts.routing = crate::client::Routing::Endpoints;
    opts.connections = 1;
    opts
}

/// After a node has left the ring it keeps serving this long before it is stopped, so
/// clients learn the smaller ring first ([`crate::client::RING_REFRESH`]) and no request
/// meets a stopped node.
pub const LEAVE_DRAIN: Duration = Duration::from_secs(3);

/// One decision as it was carried out. Times are seconds since the controller's origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `out` or `in`.
    pub action: Action,
    /// When the overload (for `in`, the quiet) the decision rests on began.
    pub overload_began_s: f64,
    /// When the policy decided.
    pub decided_s: f64,
    /// When the new node served its first request (out), or the smaller ring was in force
    /// and the node stopped (in); absent if the action failed.
    pub serving_s: Option<f64>,
    /// Ring members before.
    pub nodes_before: u32,
    /// Ring members after (as before, if the action failed).
    pub nodes_after: u32,
    /// The node added or removed.
    pub node: Option<String>,
    /// The signals of the deciding sample.
    pub signals: Signals,
    /// Which thresholds were crossed.
    pub why: String,
    /// Why the action failed, if it did.
    pub error: Option<String>,
}

/// What a controller did, readable while it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Log {
    /// Every decision, in order.
    pub decisions: Vec<Decision>,
    /// Every complete sample: (seconds since the origin, signals).
    pub samples: Vec<(f64, Signals)>,
    /// Samples left incomplete (a node did not answer, or had just joined).
    pub incomplete_samples: u64,
}

/// A [`Log`] shared with whoever reads it.
pub type SharedLog = Arc<Mutex<Log>>;

/// Reads the cluster's signals and acts on the policy's decisions.
pub struct Controller {
    scaler: Autoscaler,
    sampler: Sampler,
    opts: ClientOptions,
    /// Addresses to ask for the ring: the seeds, then every member seen.
    known: Vec<String>,
    clients: HashMap<String, Client>,
    origin: Instant,
    log: SharedLog,
    /// Nodes this controller added, newest last: the first to remove.
    added: Vec<String>,
}

impl Controller {
    /// A controller of the cluster reachable at `seeds`, with times counted from `origin`.
    /// The policy must be valid ([`Policy::validate`]).
    pub fn new(
        policy: Policy,
        seeds: Vec<String>,
        opts: ClientOptions,
        origin: Instant,
    ) -> Controller {
        Controller {
            scaler: Autoscaler::new(policy),
            sampler: Sampler::new(),
            opts,
            known: seeds,
            clients: HashMap::new(),
            origin,
            log: SharedLog::default(),
            added: Vec::new(),
        }
    }

    /// The log, to read while the controller runs and after.
    pub fn log(&self) -> SharedLog {
        self.log.clone()
    }

    fn secs(&self, at: Instant) -> f64 {
        match at.checked_duration_since(self.origin) {
            Some(d) => d.as_secs_f64(),
            None => -self.origin.duration_since(at).as_secs_f64(),
        }
    }

    /// Runs until `stop` turns true (checked between samples: an action under way is
    /// finished first, so no join or leave is cut off halfway).
    pub async fn run<A: Actuator>(
        &mut self,
        actuator: &mut A,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let interval = Duration::from_secs_f64(self.scaler.policy().interval_s);
        let mut next = tokio::time::Instant::now();
        loop {
            next += interval;
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if *stop.borrow() {
                return;
            }
            self.step(actuator).await;
            // After a long action, sample afresh rather than catching up.
            next = next.max(tokio::time::Instant::now());
        }
    }

    /// One sample and, if the policy says so, one action.
    pub async fn step<A: Actuator>(&mut self, actuator: &mut A) {
        let Some((ring, answered)) = self.ring().await else {
            self.log.lock().incomplete_samples += 1;
            return;
        };
        let counters = self.sample_members(&ring.members, answered).await;
        let at = Instant::now();
        let t = self.secs(at);
        let complete = counters.len() == ring.members.len() && ring.next_members.is_empty();
        // Part of the ring still gives the base of the next rates; no decision rests on it.
        let sampled = self.sampler.sample(counters);
        let signals = if complete { sampled } else { None };
        let Some(signals) = signals else {
            self.log.lock().incomplete_samples += 1;
            return;
        };
        {
            let mut log = self.log.lock();
            if log.samples.len() < MAX_SAMPLES {
                log.samples.push((t, signals));
            }
        }
        let Some(verdict) = self.scaler.observe(t, &signals) else {
            return;
        };
        let decision = self.act(actuator, &ring, verdict, t).await;
        let done = self.secs(Instant::now());
        self.scaler.acted(done);
        match &decision.error {
            None => tracing::info!(
                action = decision.action.as_str(),
                node = decision.node.as_deref().unwrap_or(""),
                nodes_after = decision.nodes_after,
                why = %decision.why,
                "autoscaler: done"
            ),
            Some(e) => tracing::warn!(
                action = decision.action.as_str(),
                why = %decision.why,
                error = %e,
                "autoscaler: action failed"
            ),
        }
        self.log.lock().decisions.push(decision);
    }

    async fn act<A: Actuator>(
        &mut self,
        actuator: &mut A,
        ring: &pb::RingDescription,
        v: Verdict,
        decided_s: f64,
    ) -> Decision {
        let before = u32::try_from(ring.members.len()).unwrap_or(u32::MAX);
        let reason = format!(
            "autoscale {}: {} (sustained since {:.1}s)",
            v.action.as_str(),
            v.why,
            v.began_s
        );
        tracing::info!(action = v.action.as_str(), why = %v.why, signals = ?v.signals, "autoscaler: decided");
        let mut d = Decision {
            action: v.action,
            overload_began_s: v.began_s,
            decided_s,
            serving_s: None,
            nodes_before: before,
            nodes_after: before,
            node: None,
            signals: v.signals,
            why: v.why,
            error: None,
        };
        let result = match v.action {
            Action::Out => self.scale_out(actuator, ring, &reason, &mut d).await,
            Action::In => self.scale_in(actuator, ring, &reason, &mut d).await,
        };
        if let Err(e) = result {
            d.error = Some(e);
        }
        d
    }

    async fn scale_out<A: Actuator>(
        &mut self,
        actuator: &mut A,
        ring: &pb::RingDescription,
        reason: &str,
        d: &mut Decision,
    ) -> Result<(), String> {
        let new = actuator.provision(reason).await?;
        d.node = Some(new.id.clone());
        let join = pb::admin_request::Op::Join(pb::JoinNode {
            id: new.id.clone(),
            address: new.address.clone(),
            zone: new.zone.clone(),
            tokens: ring.members.first().map_or(0, |m| m.tokens),
            reason: reason.to_string(),
        });
        if let Err(e) = self.admin(join, &ring.members, None).await {
            // Not in the ring: stop it, or every failed try would leave a process behind.
            return Err(match actuator.retire(&new.id, &new.address).await {
                Ok(()) => e,
                Err(r) => format!("{e}; stopping the new node failed too: {r}"),
            });
        }
        self.added.push(new.id.clone());
        d.nodes_after = d.nodes_before.saturating_add(1);
        self.known.push(new.address.clone());
        let served = self.wait_serving(&new.address).await?;
        d.serving_s = Some(self.secs(served));
        Ok(())
    }

    async fn scale_in<A: Actuator>(
        &mut self,
        actuator: &mut A,
        ring: &pb::RingDescription,
        reason: &str,
        d: &mut Decision,
    ) -> Result<(), String> {
        // The newest node this controller added, else the last member in ring order.
        while let Some(id) = self.added.last() {
            if ring.members.iter().any(|m| &m.id == id) {
                break;
            }
            self.added.pop();
        }
        let victim = self
            .added
            .last()
            .and_then(|id| ring.members.iter().find(|m| &m.id == id))
            .or_else(|| ring.members.last())
            .cloned()
            .ok_or_else(|| "the ring has no members".to_string())?;
        d.node = Some(victim.id.clone());
        let leave = pb::admin_request::Op::Leave(pb::LeaveNode {
            id: victim.id.clone(),
            reason: reason.to_string(),
        });
        self.admin(leave, &ring.members, Some(&victim.id)).await?;
        d.nodes_after = d.nodes_before.saturating_sub(1);
        if self.added.last() == Some(&victim.id) {
            self.added.pop();
        }
        tokio::time::sleep(LEAVE_DRAIN).await;
        actuator.retire(&victim.id, &victim.address).await?;
        self.clients.remove(&victim.address);
        d.serving_s = Some(self.secs(Instant::now()));
        Ok(())
    }

    /// The ring as the first member (or seed) that answers sees it, and that node's address
    /// and counters (so it is not asked twice in one sample).
    async fn ring(&mut self) -> Option<(pb::RingDescription, (String, NodeCounters))> {
        let known = self.known.clone();
        for addr in known {
            if let Some(s) = self.status_of(&addr).await
                && let Some(ring) = s.ring
            {
                let counters = NodeCounters::from_stats(&s.stats, Instant::now());
                // Remember every member, so the controller finds the cluster after its seeds
                // have left it.
                let mut known: Vec<String> =
                    ring.members.iter().map(|m| m.address.clone()).collect();
                for k in &self.known {
                    if !known.contains(k) {
                        known.push(k.clone());
                    }
                }
                known.truncate(256);
                self.known = known;
                return Some((ring, (addr, counters)));
            }
        }
        None
    }

    /// Every member's counters; `answered` is the node that gave the ring, already asked.
    async fn sample_members(
        &mut self,
        members: &[pb::Member],
        answered: (String, NodeCounters),
    ) -> BTreeMap<String, NodeCounters> {
        let mut out = BTreeMap::new();
        for m in members {
            if m.address == answered.0 {
                out.insert(m.id.clone(), answered.1);
            } else if let Some(s) = self.status_of(&m.address).await {
                out.insert(
                    m.id.clone(),
                    NodeCounters::from_stats(&s.stats, Instant::now()),
                );
            }
        }
        out
    }

    async fn client(&mut self, addr: &str) -> Option<&Client> {
        if !self.clients.contains_key(addr) {
            let c = tokio::time::timeout(
                STATUS_TIMEOUT,
                Client::connect(&[addr.to_string()], self.opts.clone()),
            )
            .await
            .ok()?
            .ok()?;
            self.clients.insert(addr.to_string(), c);
        }
        self.clients.get(addr)
    }

    async fn status_of(&mut self, addr: &str) -> Option<pb::StatusResponse> {
        let c = self.client(addr).await?;
        match tokio::time::timeout(STATUS_TIMEOUT, c.status_of(0)).await {
            Ok(Ok(s)) => Some(s),
            _ => {
                // Reconnect next time (the node may have restarted).
                self.clients.remove(addr);
                None
            }
        }
    }

    /// Sends a ring change through the first member other than `avoid` that takes it.
    async fn admin(
        &mut self,
        op: pb::admin_request::Op,
        members: &[pb::Member],
        avoid: Option<&str>,
    ) -> Result<(), String> {
        let mut last = "no member to send the change to".to_string();
        for m in members.iter().filter(|m| Some(m.id.as_str()) != avoid) {
            let Some(c) = self.client(&m.address).await else {
                last = format!("{} did not answer", m.id);
                continue;
            };
            match c.admin_of(0, op.clone()).await {
                Ok(_) => return Ok(()),
                // The change itself was refused or interrupted: do not send it twice.
                Err(e) if e.code() != Some(tonic::Code::Unavailable) => {
                    return Err(format!("{} refused the change: {e}", m.id));
                }
                Err(e) => last = format!("{}: {e}", m.id),
            }
        }
        Err(last)
    }

    /// Waits until the node at `addr` has coordinated or served a request since its join.
    async fn wait_serving(&mut self, addr: &str) -> Result<Instant, String> {
        let deadline = Instant::now() + SERVING_TIMEOUT;
        let mut base = None;
        while Instant::now() < deadline {
            if let Some(s) = self.status_of(addr).await {
                let c = NodeCounters::from_stats(&s.stats, Instant::now());
                let done = c.coordinated.saturating_add(c.served);
                match base {
                    None => base = Some(done),
                    Some(b) if done > b => return Ok(c.at),
                    Some(_) => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "the new node at {addr} joined but served no request within {}s",
            SERVING_TIMEOUT.as_secs()
        ))
    }
}
