//! The plan: one [`Point`] per combination of the workload's `sweep:` lists, each checked before
//! anything starts, and the loading of a workload file (parse, validate, expand).

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_saphyr::Spanned;

use crate::workload::rate::{
    RateEntry, ScheduleError, StepField, rate_in_range, rate_out_of_range,
};
use crate::workload::{
    DEFAULT_NODES, DurationSpec, MAX_CONCURRENCY, MAX_LOCAL_NODES, Problem, Quorum, RateSchedule,
    RateSpec, RateStep, Shard, SizeSpec, Workload, WorkloadError,
};

pub use crate::workload::rate::fmt_rate;

/// How a point drives load.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// Open loop: requests arrive on the rate schedule whatever the target does.
    Open {
        /// Intended arrival rate over time (a constant rate is a one-step schedule). Shared:
        /// cloning a `Load` copies a pointer. Written as a number when constant, else as the
        /// list of steps.
        #[serde(serialize_with = "serialize_rate")]
        rate: Arc<RateSchedule>,
    },
    /// Closed loop: `concurrency` workers, each sending its next request when the last returns.
    Closed {
        /// Worker count.
        concurrency: u32,
    },
}

impl Load {
    /// An open loop at a constant `rate`, ops/s (checked like the workload's `rate`).
    pub fn open(rate: f64) -> Result<Load, String> {
        let schedule = RateSchedule::constant(rate).map_err(|e| e.to_string())?;
        Ok(Load::Open {
            rate: Arc::new(schedule),
        })
    }

    /// The open loop's schedule; `None` for a closed loop.
    pub fn schedule(&self) -> Option<&RateSchedule> {
        match self {
            Load::Open { rate } => Some(rate),
            Load::Closed { .. } => None,
        }
    }

    /// The part of this load one shard drives: every rate of the schedule divided by the shard
    /// count, or the shard's part of the workers ([`Shard::share_of`]). Refuses a closed loop
    /// with fewer workers than shards (a loadgen with no worker would measure nothing).
    pub fn share(&self, shard: Shard) -> Result<Load, String> {
        if shard.is_whole() {
            return Ok(self.clone());
        }
        match self {
            Load::Open { rate } => {
                let k = f64::from(shard.count);
                let steps = rate
                    .steps()
                    .iter()
                    .map(|s| RateStep {
                        rate: s.rate / k,
                        ..*s
                    })
                    .collect();
                let schedule = RateSchedule::new(steps)
                    .map_err(|e| format!("rate / {} shards: {e}", shard.count))?;
                Ok(Load::Open {
                    rate: Arc::new(schedule),
                })
            }
            Load::Closed { concurrency } if *concurrency < shard.count => Err(format!(
                "concurrency {concurrency} cannot be split over {} loadgens: each needs at \
                 least one worker; use at most {concurrency} shards or raise `concurrency`",
                shard.count
            )),
            Load::Closed { concurrency } => Ok(Load::Closed {
                // At most `concurrency`, so it fits.
                concurrency: u32::try_from(shard.share_of(u64::from(*concurrency)))
                    .unwrap_or(*concurrency),
            }),
        }
    }
}

fn serialize_rate<S: serde::Serializer>(rate: &Arc<RateSchedule>, s: S) -> Result<S::Ok, S::Error> {
    match rate.constant_rate() {
        Some(r) => s.serialize_f64(r),
        None => rate.steps().serialize(s),
    }
}

/// What an already-running cluster (`cluster.endpoints`) says it is, from its `Status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterFacts {
    /// Ring members.
    pub nodes: u32,
    /// Replication factor N.
    pub replication: u32,
    /// The cluster's default W.
    pub write_quorum: u32,
    /// The cluster's default R.
    pub read_quorum: u32,
    /// Distinct zones of the members (empty: no zones).
    pub zones: Vec<String>,
    /// The endpoint that answered.
    pub asked: String,
}

/// One run of the sweep: the parameters that vary between points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// 0-based position in the sweep.
    pub index: usize,
    /// Nodes in the cluster.
    pub nodes: u32,
    /// Replication factor N.
    pub replication: u32,
    /// Write quorum W.
    pub write_quorum: u32,
    /// Read quorum R.
    pub read_quorum: u32,
    /// Value sizes.
    pub values: SizeSpec,
    /// Distinct keys (`keys.count`, or this point's entry of `sweep.keys`).
    pub keys: u64,
    /// The key count is swept, so it labels the point (and is one of its parameters).
    #[serde(skip)]
    pub keys_swept: bool,
    /// Open or closed loop.
    pub load: Load,
    /// The target has no cluster (`null`): the cluster parameters are only labels.
    #[serde(skip)]
    pub no_cluster: bool,
}

impl Point {
    /// A short human label, e.g. `nodes=3 N=3 W=2 R=2 value=1KB rate=5000` (a schedule reads
    /// `rate=500..6000`, its lowest and highest rate; a swept key count adds `keys=100000`
    /// after the value).
    pub fn label(&self) -> String {
        let mut load = match &self.load {
            Load::Open { rate } => format!("rate={}", rate.label()),
            Load::Closed { concurrency } => format!("conc={concurrency}"),
        };
        // Only a swept key count is named, so the labels of other workloads (which `history`
        // matches points by) stay as they were.
        if self.keys_swept {
            load = format!("keys={} {load}", self.keys);
        }
        if self.no_cluster {
            return format!("value={} {load}", self.values);
        }
        format!(
            "nodes={} N={} W={} R={} value={} {load}",
            self.nodes, self.replication, self.write_quorum, self.read_quorum, self.values
        )
    }

    /// The workload's `keys:` section with this point's key count.
    pub fn keys_config(&self, w: &Workload) -> crate::workload::KeysConfig {
        crate::workload::KeysConfig {
            count: self.keys,
            ..w.keys.clone()
        }
    }

    /// A file-name-safe id, e.g. `p03`.
    pub fn id(&self) -> String {
        format!("p{:02}", self.index)
    }
}

/// A default majority quorum for replication factor `n`.
pub fn majority(n: u32) -> u32 {
    n / 2 + 1
}

/// The points of a workload, in sweep order (a validated workload always expands).
pub fn points(w: &Workload) -> Result<Vec<Point>, String> {
    expand(w).map_err(|p| p.to_string())
}

/// Expands the sweep into points, refusing an impossible one (W > N, N > nodes, …) by naming it.
pub(crate) fn expand(w: &Workload) -> Result<Vec<Point>, Problem> {
    expand_for(w, None)
}

/// The points of a workload; against an already-running cluster, `facts` supply what the
/// workload does not set (nodes, N, default W and R), and a point asking for another N is
/// refused.
pub(crate) fn expand_for(
    w: &Workload,
    facts: Option<&ClusterFacts>,
) -> Result<Vec<Point>, Problem> {
    let c = &w.cluster;
    let base_nodes = c.nodes.as_ref().map(|s| s.value).unwrap_or(DEFAULT_NODES);
    let nodes_list: Vec<(u32, Option<&serde_saphyr::Spanned<u32>>)> = if let Some(f) = facts {
        vec![(f.nodes, None)]
    } else if w.sweep.nodes.is_empty() {
        vec![(base_nodes, c.nodes.as_ref())]
    } else {
        w.sweep.nodes.iter().map(|s| (s.value, Some(s))).collect()
    };
    let repl_list: Vec<(Option<u32>, Option<&serde_saphyr::Spanned<u32>>)> =
        if w.sweep.replication.is_empty() {
            vec![(
                c.replication.as_ref().map(|s| s.value),
                c.replication.as_ref(),
            )]
        } else {
            w.sweep
                .replication
                .iter()
                .map(|s| (Some(s.value), Some(s)))
                .collect()
        };
    let quorum_list: Vec<(Option<Quorum>, Option<&serde_saphyr::Spanned<Quorum>>)> =
        if w.sweep.quorum.is_empty() {
            vec![(None, None)]
        } else {
            w.sweep
                .quorum
                .iter()
                .map(|s| (Some(s.value), Some(s)))
                .collect()
        };
    let values_list: Vec<SizeSpec> = if w.sweep.value_size.is_empty() {
        vec![w.values.size.value.clone()]
    } else {
        w.sweep
            .value_size
            .iter()
            .map(|s| SizeSpec::Fixed(s.value))
            .collect()
    };
    let load_list = load_list(w)?;
    // Outermost, so against a running cluster the data only grows from point to point.
    let keys_list: Vec<u64> = if w.sweep.keys.is_empty() {
        vec![w.keys.count]
    } else {
        w.sweep.keys.iter().map(|s| s.value).collect()
    };

    let mut points = Vec::new();
    for &keys in &keys_list {
        for &(nodes, nodes_at) in &nodes_list {
            if facts.is_none() && (nodes == 0 || nodes > MAX_LOCAL_NODES) {
                let msg =
                    format!("nodes = {nodes}: a local cluster has 1..={MAX_LOCAL_NODES} nodes");
                return Err(match nodes_at {
                    Some(s) => Problem::at(s, msg),
                    None => Problem::new(msg),
                });
            }
            for &(repl, repl_at) in &repl_list {
                let replication = repl
                    .or(facts.map(|f| f.replication))
                    .unwrap_or(nodes.min(3));
                if let Some(f) = facts
                    && replication != f.replication
                {
                    let msg = format!(
                        "replication N = {replication}, but the cluster at `cluster.endpoints` \
                     ({}) has N = {} (from its Status); N is the cluster's, not the \
                     workload's: remove `replication` or point at a cluster with N = \
                     {replication}",
                        f.asked, f.replication
                    );
                    return Err(match repl_at {
                        Some(s) => Problem::at(s, msg),
                        None => Problem::new(msg),
                    });
                }
                for &(quorum, quorum_at) in &quorum_list {
                    let write_quorum = quorum
                        .map(|q| q.w)
                        .or(c.write_quorum.as_ref().map(|s| s.value))
                        .or(facts.map(|f| f.write_quorum))
                        .unwrap_or(majority(replication));
                    let read_quorum = quorum
                        .map(|q| q.r)
                        .or(c.read_quorum.as_ref().map(|s| s.value))
                        .or(facts.map(|f| f.read_quorum))
                        .unwrap_or(majority(replication));
                    for values in &values_list {
                        for load in &load_list {
                            let point = Point {
                                index: points.len(),
                                nodes,
                                replication,
                                write_quorum,
                                read_quorum,
                                values: values.clone(),
                                keys,
                                keys_swept: !w.sweep.keys.is_empty(),
                                load: load.clone(),
                                no_cluster: w.target != crate::workload::TargetKind::Ringkv,
                            };
                            check_point(w, &point, repl_at, quorum_at)?;
                            points.push(point);
                        }
                    }
                }
            }
        }
    }
    Ok(points)
}

fn load_list(w: &Workload) -> Result<Vec<Load>, Problem> {
    let mut out = Vec::new();
    if let Some(search) = &w.search {
        // The search's first step; it makes the others as it goes.
        out.push(check_rate(search, search.value.max_rate().start_rate())?);
    } else if !w.sweep.rate.is_empty() {
        for r in &w.sweep.rate {
            out.push(check_rate(r, r.value)?);
        }
    } else if let Some(r) = &w.rate {
        out.push(match &r.value {
            RateSpec::Constant(v) => check_rate(r, *v)?,
            RateSpec::Schedule(entries) => check_schedule(r, entries)?,
        });
    } else if !w.sweep.concurrency.is_empty() {
        for c in &w.sweep.concurrency {
            out.push(check_concurrency(c)?);
        }
    } else if let Some(c) = &w.concurrency {
        out.push(check_concurrency(c)?);
    }
    Ok(out)
}

fn check_rate<T>(at: &Spanned<T>, rate: f64) -> Result<Load, Problem> {
    if !rate_in_range(rate) {
        return Err(Problem::at(at, rate_out_of_range(rate)));
    }
    Load::open(rate).map_err(|m| Problem::at(at, m))
}

/// Checks a `rate:` list, pointing at the entry (and field) that is wrong.
fn check_schedule(at: &Spanned<RateSpec>, entries: &[RateEntry]) -> Result<Load, Problem> {
    let steps = entries
        .iter()
        .map(|e| RateStep {
            at_s: e.at.value.0.as_secs_f64(),
            rate: e.rate.value,
            ramp: e.ramps(),
        })
        .collect();
    match RateSchedule::new(steps) {
        Ok(schedule) => Ok(Load::Open {
            rate: Arc::new(schedule),
        }),
        Err(e @ ScheduleError::Empty) => Err(Problem::at(at, e.to_string())),
        Err(ScheduleError::Step {
            index,
            field,
            message,
        }) => Err(match entries.get(index) {
            Some(entry) => match (field, &entry.ramp) {
                (StepField::Rate, _) => Problem::at(&entry.rate, message),
                (StepField::Ramp, Some(ramp)) => Problem::at(ramp, message),
                _ => Problem::at(&entry.at, message),
            },
            None => Problem::at(at, message),
        }),
    }
}

fn check_concurrency(c: &serde_saphyr::Spanned<u32>) -> Result<Load, Problem> {
    if !(1..=MAX_CONCURRENCY).contains(&c.value) {
        return Err(Problem::at(
            c,
            format!("concurrency must be 1..={MAX_CONCURRENCY}"),
        ));
    }
    Ok(Load::Closed {
        concurrency: c.value,
    })
}

fn check_point(
    w: &Workload,
    p: &Point,
    repl_at: Option<&serde_saphyr::Spanned<u32>>,
    quorum_at: Option<&serde_saphyr::Spanned<crate::workload::Quorum>>,
) -> Result<(), Problem> {
    let name = format!("sweep point {} ({})", p.index, p.label());
    let local = w.cluster.endpoints.is_empty();
    let problem_at_repl = |msg: String| match repl_at {
        Some(s) => Problem::at(s, msg),
        None => Problem::new(msg),
    };
    if p.replication == 0 {
        return Err(problem_at_repl(format!(
            "{name}: replication N must be at least 1"
        )));
    }
    if local && p.replication > p.nodes {
        return Err(problem_at_repl(format!(
            "{name}: replication N={} needs at least {} nodes, the cluster has {}; raise \
             `nodes` or lower `replication`",
            p.replication, p.replication, p.nodes
        )));
    }
    for (q, label, field) in [
        (p.write_quorum, "write", "write_quorum"),
        (p.read_quorum, "read", "read_quorum"),
    ] {
        let letter = if label == "write" { "W" } else { "R" };
        let msg = if q == 0 {
            Some(format!(
                "{name}: {label} quorum {letter} must be at least 1"
            ))
        } else if q > p.replication {
            Some(format!(
                "{name}: {label} quorum {letter}={q} is larger than the replication factor \
                 N={}, so every {label} would fail; use {letter} <= N",
                p.replication
            ))
        } else {
            None
        };
        if let Some(msg) = msg {
            return Err(match quorum_at {
                Some(s) => Problem::at(s, msg),
                None => {
                    let spanned = if label == "write" {
                        w.cluster.write_quorum.as_ref()
                    } else {
                        w.cluster.read_quorum.as_ref()
                    };
                    match spanned {
                        Some(s) => Problem::at(s, msg),
                        None => Problem::new(format!("{msg} (set `cluster.{field}`)")),
                    }
                }
            });
        }
    }
    Ok(())
}

impl Workload {
    /// Reads, parses and validates a workload file.
    pub fn load(path: &Path) -> Result<Workload, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Workload::parse(&text, path)
    }

    /// Parses and validates YAML text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Workload, WorkloadError> {
        let workload: Workload = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            WorkloadError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: crate::workload::parse_message(&e),
            }
        })?;
        workload.validate().map_err(|p| p.into_error(path))?;
        crate::plan::expand(&workload).map_err(|p| p.into_error(path))?;
        Ok(workload)
    }

    /// Replaces how the load is driven and for how long (the `run` command's `--rate`,
    /// `--concurrency` and `--duration`), then validates again. A rate or concurrency given
    /// here replaces the file's, including a sweep over them or a rate schedule.
    pub fn with_overrides(
        mut self,
        rate: Option<f64>,
        concurrency: Option<u32>,
        duration: Option<DurationSpec>,
        path: &Path,
    ) -> Result<Workload, WorkloadError> {
        let unknown = serde_saphyr::Location::UNKNOWN;
        if rate.is_some() && concurrency.is_some() {
            return Err(Problem::new("give --rate or --concurrency, not both").into_error(path));
        }
        if self.search.is_some() && (rate.is_some() || concurrency.is_some()) {
            return Err(Problem::new(
                "--rate and --concurrency do not apply to a `search:` workload: the search \
                 chooses the rate of every step (set `search.max_rate.start` to move it)",
            )
            .into_error(path));
        }
        if let Some(r) = rate {
            self.rate = Some(Spanned::new(RateSpec::Constant(r), unknown, unknown));
            self.concurrency = None;
            self.pipeline = None;
            self.sweep.rate.clear();
            self.sweep.concurrency.clear();
        }
        if let Some(c) = concurrency {
            self.concurrency = Some(Spanned::new(c, unknown, unknown));
            self.rate = None;
            self.max_in_flight = None;
            self.sweep.rate.clear();
            self.sweep.concurrency.clear();
        }
        if let Some(d) = duration {
            self.duration = Some(d);
            self.ops = None;
        }
        self.validate().map_err(|p| p.into_error(path))?;
        crate::plan::expand(&self).map_err(|p| p.into_error(path))?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_drives_its_part_of_the_rate_or_the_workers() {
        let half = Shard { index: 2, count: 2 };
        let open = Load::open(3000.0).unwrap().share(half).unwrap();
        assert_eq!(open.schedule().unwrap().constant_rate(), Some(1500.0));
        let steps = vec![
            RateStep {
                at_s: 0.0,
                rate: 500.0,
                ramp: false,
            },
            RateStep {
                at_s: 60.0,
                rate: 6000.0,
                ramp: true,
            },
        ];
        let ramp = Load::Open {
            rate: Arc::new(RateSchedule::new(steps).unwrap()),
        }
        .share(half)
        .unwrap();
        let s = ramp.schedule().unwrap().steps();
        assert_eq!(
            (s[0].rate, s[1].rate, s[1].at_s, s[1].ramp),
            (250.0, 3000.0, 60.0, true)
        );

        let parts: Vec<Load> = (1..=3)
            .map(|index| {
                Load::Closed { concurrency: 8 }
                    .share(Shard { index, count: 3 })
                    .unwrap()
            })
            .collect();
        assert_eq!(
            parts,
            [3, 3, 2].map(|concurrency| Load::Closed { concurrency })
        );
        let e = Load::Closed { concurrency: 2 }
            .share(Shard { index: 1, count: 3 })
            .unwrap_err();
        assert!(e.contains("at least one worker"), "{e}");
        assert_eq!(
            Load::Closed { concurrency: 2 }.share(Shard::WHOLE),
            Ok(Load::Closed { concurrency: 2 })
        );
    }

    fn mix_of(line: &str) -> crate::workload::Mix {
        let text = format!(
            "name: m\ntarget: \"null\"\nkeys: {{ count: 10, size: 8 }}\nvalues: {{ size: 10 }}\n{line}duration: 1s\nconcurrency: 1\n"
        );
        Workload::parse(&text, std::path::Path::new("m.yaml"))
            .unwrap()
            .mix
    }

    #[test]
    fn a_weight_left_out_of_a_given_mix_is_zero() {
        let m = mix_of("mix: { read: 100 }\n");
        assert_eq!(
            (m.read, m.write, m.delete, m.read_modify_write),
            (100.0, 0.0, 0.0, 0.0)
        );
        let m = mix_of("mix: { write: 1 }\n");
        assert_eq!((m.read, m.write), (0.0, 1.0));
        // No mix at all is the documented default, half reads and half writes.
        let m = mix_of("");
        assert_eq!((m.read, m.write), (50.0, 50.0));
    }
}
