//! What a merged results folder (`loadgen merge`) records about the shards it took together.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::summary::{ScheduleCheck, SelfCheck, Summary};
use crate::resources::Resources;

/// `summary.json` `merged`: the shard folders a merged folder was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// How many loadgens shared the workload.
    pub shard_count: u32,
    /// Every shard, in shard order.
    pub shards: Vec<MergedShard>,
    /// The largest distance between the shards' measured-window starts over every point and
    /// run, seconds: how far their loads were from overlapping exactly (absent when the shard
    /// folders do not record their windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_window_skew_s: Option<f64>,
}

/// One shard of a merged folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedShard {
    /// Its number, `1..=shard_count`.
    pub shard: u32,
    /// The folder it was read from.
    pub folder: String,
    /// The host it ran on (its manifest's `machine.hostname`).
    pub host: String,
    /// When its run started (its summary's `started`).
    pub started: String,
}

/// One shard's own figures for a point of a merged folder: the load host's view, kept beside
/// the merged totals so a client-bound host or an uneven share shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPart {
    /// The shard number.
    pub shard: u32,
    /// Its offered rate (open loop), ops/s.
    pub offered_rate: Option<f64>,
    /// Its completed operations per second.
    pub achieved_rate: f64,
    /// Whether this loadgen limited its share of the point.
    pub client_bound: bool,
    /// Its schedule keeping.
    pub schedule: ScheduleCheck,
    /// Its own cost.
    pub self_check: SelfCheck,
    /// Its resource counters per operation (its own operations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

/// The report's "Load hosts" section: for a shard's folder, which share it drove; for a merged
/// folder, every shard's host and, per point, its own rate and cost.
pub fn markdown_section(s: &mut String, summary: &Summary) {
    if let Some(shard) = summary.shard {
        let _ = writeln!(
            s,
            "\n## Load hosts\n\nThis loadgen drove shard {shard} of the load{}: the figures \
             are its own (the parameters are the whole workload's). `loadgen merge` joins the \
             shards' folders.",
            summary
                .start_at
                .as_deref()
                .map(|t| format!(", starting at {t}"))
                .unwrap_or_default()
        );
    }
    let Some(m) = &summary.merged else {
        return;
    };
    let _ = writeln!(
        s,
        "\n## Load hosts\n\n{} loadgens shared the load{}; the tables above add their \
         histograms and counts. Their measured windows began at most {} apart.\n\n| shard | \
         host | folder | started |\n|---|---|---|---|",
        m.shard_count,
        summary
            .start_at
            .as_deref()
            .map(|t| format!(", starting at {t}"))
            .unwrap_or_default(),
        m.max_window_skew_s
            .map_or("an unknown time".to_string(), |x| format!("{x:.3} s"))
    );
    for h in &m.shards {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            h.shard, h.host, h.folder, h.started
        );
    }
    let _ = writeln!(
        s,
        "\n| point | shard | offered | achieved | loadgen CPU % | CPU µs/op | client bound |\n\
         |---|---|---|---|---|---|---|"
    );
    for p in &summary.points {
        for part in &p.shards {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.0} | {:.3} | {} |",
                p.id,
                part.shard,
                part.offered_rate
                    .map_or("—".to_string(), |r| format!("{r:.0}")),
                part.achieved_rate,
                part.self_check.loadgen_cpu_pct,
                part.self_check.cpu_us_per_op,
                if part.client_bound { "**yes**" } else { "no" },
            );
        }
    }
}
