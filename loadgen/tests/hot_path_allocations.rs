//! The hot path allocates nothing: a closed-loop run of millions of operations against the
//! `null` target makes a few hundred allocations in total (set-up, one interval set a second),
//! not one per operation; so does an open loop following a rate ramp.
#![allow(clippy::unwrap_used, clippy::panic, unsafe_code)] // a counting allocator needs unsafe

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use loadgen::consistency::Checker;
use loadgen::generator::{OpGen, OpKind, ValuePool};
use loadgen::record::Recorder;
use loadgen::run::{Measure, NoProgress, RunSpec, drive};
use loadgen::sweep::Load;
use loadgen::target::null::NullTarget;
use loadgen::workload::{
    ByteSize, KeyDistributionKind, KeysConfig, Mix, RateSchedule, RateStep, SizeSpec,
};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocation counter is global: one measured run at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `load` against the null target with the consistency checker on; returns the
/// allocations made during the run and the operations recorded.
fn count_allocations(load: Load, measure: Measure) -> (u64, u64) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = KeysConfig {
        count: 1_000_000,
        size: ByteSize(16),
        distribution: KeyDistributionKind::Zipfian,
        theta: None,
        hot_set: None,
        hot_ops: None,
    };
    let mix = Mix {
        read: 80.0,
        write: 15.0,
        delete: 5.0,
        read_modify_write: 0.0,
    };
    let opgen = OpGen::new(1, &keys, &SizeSpec::Fixed(ByteSize(1024)), &mix);
    let pool = ValuePool::new(1);
    let spec = RunSpec {
        load,
        warmup: Duration::ZERO,
        measure,
        max_in_flight: 4,
        key_size: 16,
        pipeline: 1,
    };
    let kinds = [OpKind::Read, OpKind::Write, OpKind::Delete];
    // With the consistency checker on: every write's value is stamped with its header.
    let check = std::cell::RefCell::new(Checker::new(true, keys.count).unwrap());
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let outcome = runtime
        .block_on(drive(
            &NullTarget,
            opgen,
            &pool,
            &check,
            &spec,
            |start, wall| Recorder::new(start, wall, &kinds, dir.path(), "p00"),
            &NoProgress,
        ))
        .unwrap();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let ops: u64 = outcome.recorded.ops.iter().map(|o| o.response.len()).sum();
    eprintln!("{allocations} allocations for {ops} operations");
    (allocations, ops)
}

#[test]
fn a_closed_loop_against_null_does_not_allocate_per_operation() {
    let (allocations, ops) =
        count_allocations(Load::Closed { concurrency: 4 }, Measure::Ops(2_000_000));
    assert_eq!(ops, 2_000_000);
    assert!(
        allocations < 5_000,
        "{allocations} allocations for {ops} operations: the hot path allocates"
    );
}

#[test]
fn an_open_loop_on_a_ramp_does_not_allocate_per_operation() {
    // 1,000 ops/s rising to 20,000 over 1 s, then held for 0.5 s: 20,500 ticks.
    let schedule = RateSchedule::new(vec![
        RateStep {
            at_s: 0.0,
            rate: 1000.0,
            ramp: false,
        },
        RateStep {
            at_s: 1.0,
            rate: 20_000.0,
            ramp: true,
        },
    ])
    .unwrap();
    let load = Load::Open {
        rate: Arc::new(schedule),
    };
    let (allocations, ops) = count_allocations(load, Measure::For(Duration::from_millis(1500)));
    assert_eq!(ops, 20_500);
    assert!(
        allocations < 2_000,
        "{allocations} allocations for {ops} operations: the hot path allocates"
    );
}
