//! loadgen: runs YAML workload files against ringkv (or the `null` target), sweeping value
//! size, replication, quorums, rate or concurrency and cluster size, and leaves a
//! self-describing results folder with HdrHistogram logs, a report and charts.
//!
//! The modules are layers; each uses only those above it in this list (`tests/layers.rs`
//! checks it):
//!
//! - [`workload`]  — spec: the YAML schema (serde) and its validation; `units` (sizes, durations,
//!   timestamps); `shard` (`--shard i/k`, `--start-at`)
//! - [`stats`]     — small-sample statistics for the gate (hand-written; a leaf)
//! - [`timer`]     — sub-millisecond waits (timerfd) for the open-loop pacer (a leaf)
//! - [`plan`]      — the cartesian sweep of points; loading a workload file
//! - [`generator`] — seeded key distributions, value sizes and the operation mix
//! - [`target`]    — the `Target` trait; drivers: ringkv, null, and a stall target for tests
//! - [`cluster`]   — the shape of a point's local ringkv cluster (`__node` re-exec)
//! - [`events`]    — kill, restart, pause, add or remove nodes on a schedule during a point
//! - [`resources`] — /proc counters at the window's edges, RSS samples, the machine
//! - [`instructions`] — opt-in: nodes under callgrind, instructions per operation
//! - [`record`]    — HdrHistogram recording and 1-second interval logs
//! - [`consistency`] — live stale-read checking (k-staleness, t-visibility) and PBS predictions
//! - [`run`]       — open-loop (coordinated-omission corrected) and closed-loop runners
//! - [`report`]    — summary.json (medians over runs), points.csv, report.md and charts
//! - [`metrics`]   — the live progress as Prometheus metrics (`run --metrics-listen`)
//! - [`sweep`]     — the orchestrator: every point, `repeat` times, on fresh clusters; or a
//!   search for the highest rate that meets an SLO
//! - [`ab`]        — interleaved A/B runs of two node builds or argument sets
//! - [`compare`]   — baseline vs candidate: the statistical, fail-closed CI gate
//! - [`history`]   — change points over a series of results folders, the nightly gate
//! - [`merge`]     — the results folders of several load hosts (`--shard`) put together
//!
//! `docs/loadgen.md` documents the workload schema and the results folder.

pub mod ab;
pub mod cluster;
pub mod compare;
pub mod consistency;
pub mod events;
pub mod generator;
pub mod history;
pub mod instructions;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod record;
pub mod report;
pub mod resources;
pub mod run;
pub mod stats;
pub mod sweep;
pub mod target;
pub mod timer;
pub mod workload;
