//! Coordinated omission: a target that stalls for 1 s during an open-loop run at 1,000 ops/s
//! must show the stall in p99 and max response time, while service time does not. A closed loop
//! against the same stall hides it — the reason the open loop measures from intended times.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::time::{Duration, Instant};

use loadgen::generator::{OpGen, OpKind, ValuePool};
use loadgen::record::Live;
use loadgen::record::Recorder;
use loadgen::run::{Measure, NoProgress, Outcome, Progress, RunSpec, drive};
use loadgen::sweep::Load;
use loadgen::target::stall::StallTarget;
use loadgen::workload::{ByteSize, KeyDistributionKind, KeysConfig, Mix, SizeSpec};

const STALL_AFTER: Duration = Duration::from_millis(1500);
const STALL_FOR: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(4);

fn run_against_stall(load: Load) -> Outcome {
    run_against(load, STALL_AFTER, STALL_FOR, MEASURE, &NoProgress)
}

fn run_against(
    load: Load,
    stall_after: Duration,
    stall_for: Duration,
    measure: Duration,
    progress: &impl Progress,
) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = KeysConfig {
        count: 1000,
        size: ByteSize(16),
        distribution: KeyDistributionKind::Uniform,
        theta: None,
        hot_set: None,
        hot_ops: None,
    };
    let mix = Mix {
        read: 100.0,
        write: 0.0,
        delete: 0.0,
        read_modify_write: 0.0,
    };
    let opgen = OpGen::new(1, &keys, &SizeSpec::Fixed(ByteSize(100)), &mix);
    let pool = ValuePool::new(1);
    let spec = RunSpec {
        load,
        warmup: Duration::ZERO,
        measure: Measure::For(measure),
        max_in_flight: 1,
        key_size: 16,
        pipeline: 1,
    };
    let target = StallTarget {
        stall_start: Instant::now() + stall_after,
        stall_for,
        service: Duration::from_micros(100),
    };
    let started = Instant::now();
    let outcome = runtime
        .block_on(drive(
            &target,
            opgen,
            &pool,
            &std::cell::RefCell::new(loadgen::consistency::Checker::new(false, 0).unwrap()),
            &spec,
            |start, wall| Recorder::new(start, wall, &[OpKind::Read], dir.path(), "p00"),
            progress,
        ))
        .unwrap();
    // Bounded: the run ends on its own schedule.
    assert!(started.elapsed() < measure + stall_for + Duration::from_secs(8));
    outcome
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[test]
fn open_loop_shows_a_stall_in_response_time_but_not_in_service_time() {
    let outcome = run_against_stall(Load::open(1000.0).unwrap());
    let read = &outcome.recorded.ops[OpKind::Read.index()];
    let response_p99 = ms(read.response.value_at_quantile(0.99));
    let response_max = ms(read.response.max());
    let service_p99 = ms(read.service.value_at_quantile(0.99));
    let service_p50 = ms(read.service.value_at_quantile(0.50));
    // ~1,000 of ~4,000 requests were due during the stall and waited for it.
    assert!(
        response_p99 > 900.0,
        "response p99 {response_p99} ms should show the 1 s stall"
    );
    assert!(response_max > 950.0, "response max {response_max} ms");
    assert!(
        service_p99 < 20.0,
        "service p99 {service_p99} ms should not show the stall"
    );
    assert!(service_p50 < 5.0, "service p50 {service_p50} ms");
    // Nothing dropped: every tick of the window was sent, and the rate was kept.
    assert_eq!(outcome.missed_ticks, 0);
    assert_eq!(outcome.ticks_due, 4000);
    assert!(
        read.response.len() >= 3990,
        "{} requests recorded",
        read.response.len()
    );
    assert!(
        outcome.recorded.late_ticks >= 900,
        "late ticks {}",
        outcome.recorded.late_ticks
    );
}

#[test]
fn closed_loop_hides_the_same_stall_which_is_coordinated_omission() {
    let outcome = run_against_stall(Load::Closed { concurrency: 1 });
    let read = &outcome.recorded.ops[OpKind::Read.index()];
    let response_p99 = ms(read.response.value_at_quantile(0.99));
    // One request saw the stall; the thousands that "should" have been sent were never sent.
    assert!(ms(read.response.max()) > 900.0);
    assert!(
        response_p99 < 20.0,
        "closed-loop p99 {response_p99} ms hides the stall"
    );
}

/// A stall that outlasts the drain: the ticks due during it are never sent. They are recorded
/// at their intended time with the end of the run as their completion, so they show in p99 and
/// max (not only in the missed-tick count).
#[test]
fn ticks_never_sent_show_in_p99_and_max() {
    // 1 s measured at 1,000 ops/s; the target stalls from 0.5 s for 6 s, past the 5 s drain.
    let outcome = run_against(
        Load::open(1000.0).unwrap(),
        Duration::from_millis(500),
        Duration::from_secs(6),
        Duration::from_secs(1),
        &NoProgress,
    );
    let read = &outcome.recorded.ops[OpKind::Read.index()];
    assert!(
        outcome.missed_ticks >= 400,
        "missed ticks {}",
        outcome.missed_ticks
    );
    assert_eq!(read.missed, outcome.missed_ticks);
    let p99 = ms(read.response.value_at_quantile(0.99));
    assert!(
        p99 > 4000.0,
        "p99 {p99} ms should show the never-sent ticks"
    );
    assert!(ms(read.response.max()) > 5000.0);
    // They are not answered requests.
    assert!(read.completed() < 700, "completed {}", read.completed());
}

/// Keeps the last live figures the runner reported.
#[derive(Default)]
struct LastLive(std::cell::Cell<Option<Live>>);

impl Progress for LastLive {
    fn update(&self, _: &str, _: Duration, live: &Live) {
        self.0.set(Some(*live));
    }
}

#[test]
fn the_live_figures_end_with_every_answered_request_counted() {
    // 1.5 s measured: the last half second closes after the last once-a-second update.
    let last = LastLive::default();
    let outcome = run_against(
        Load::open(1000.0).unwrap(),
        Duration::from_secs(3600),
        Duration::ZERO,
        Duration::from_millis(1500),
        &last,
    );
    let read = &outcome.recorded.ops[OpKind::Read.index()];
    let answered = read.response.len() - read.missed;
    let live = last.0.get().expect("the runner reported live figures");
    assert_eq!(
        live.kinds[OpKind::Read.index()].ok,
        answered,
        "the live totals (what --metrics-listen serves) must include the last partial second"
    );
}
