//! loadgen: runs YAML workload files against ringkv (or the `null` target), sweeping value
//! size, replication, quorums, rate or concurrency and cluster size, and leaves a
//! self-describing results folder with HdrHistogram logs, a report and charts.
//!
//! - [`workload`]  — the YAML schema (serde) and its validation (line and column on errors)
//! - [`sweep`]     — the cartesian sweep of points, and running each one
//! - [`generator`] — seeded key distributions, value sizes and the operation mix
//! - [`target`]    — the `Target` trait; drivers: ringkv, null, and a stall target for tests
//! - [`run`]       — open-loop (coordinated-omission corrected) and closed-loop runners
//! - [`timer`]     — sub-millisecond waits (timerfd) for the open-loop pacer
//! - [`record`]    — HdrHistogram recording and 1-second interval logs
//! - [`resources`] — sysinfo sampling of the loadgen and node processes; the machine
//! - [`cluster`]   — start and stop a local ringkv cluster per point (`__node` re-exec)
//! - [`events`]    — kill, restart, pause, add or remove nodes on a schedule during a point
//! - [`report`]    — summary.json, points.csv, report.md and charts (plotters)
//! - [`compare`]   — baseline vs candidate, the CI gate
//!
//! `docs/loadgen.md` documents the workload schema and the results folder.

pub mod ab;
pub mod cluster;
pub mod compare;
pub mod events;
pub mod generator;
pub mod history;
pub mod record;
pub mod report;
pub mod resources;
pub mod run;
pub mod stats;
pub mod sweep;
pub mod target;
pub mod timer;
pub mod workload;
