//! Open-loop (fixed arrival rate) and closed-loop runners for one point.
//!
//! Both run a fixed set of worker futures on the current thread (no task per operation). Each
//! worker claims the next operation, awaits the target in place, and records it.
//!
//! * Open loop: request `i` is intended for `start + i / rate` (on a rate schedule, when the
//!   schedule's integral reaches `i`: [`crate::workload::rate::Pace`]). A worker sleeps until a
//!   tick is due, claims it, and sends it; if every worker is busy (the target is slow), due
//!   ticks wait and are sent as soon as a worker frees up. Response time is measured from the
//!   intended time, so waiting is charged to the target (coordinated-omission correction);
//!   service time is measured from the actual send. Ticks sent late are counted; ticks never
//!   sent before the drain deadline are counted as missed. Nothing is dropped silently.
//! * Closed loop: `concurrency` workers, each sending its next request when the last returns.
//!
//! Operations intended before the end of warm-up are sent but not recorded.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;

use crate::consistency::Checker;
use crate::generator::{OpGen, OpSpec, ValuePool, write_key};
use crate::plan::Load;
use crate::record::{INTERVAL, Live, RecordError, Recorded, Recorder, RequestOutcome};
use crate::target::{BatchOp, OpError, Seen, Target};
use crate::timer::PreciseTimer;
use crate::workload::rate::{Pace, RateSchedule};

/// After the measured window, backlogged open-loop ticks keep being sent for at most this long;
/// the rest are reported as missed.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// The pacer wakes at most once per this gap. At rates above 1 / gap, due ticks are announced in
/// small batches; each waits at most this long, which is charged to response time and shows in
/// the schedule lag. A timerfd wake costs a few µs of CPU, so waking per tick at 200k ops/s
/// would make the load generator the bottleneck.
pub const MIN_PACER_GAP: Duration = Duration::from_micros(50);
/// A worker that never had to wait yields to the others after this many operations.
const YIELD_EVERY: u32 = 64;

/// How long the measured phase lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// For a fixed time.
    For(Duration),
    /// For a fixed number of operations.
    Ops(u64),
}

/// What one point's run needs besides the target and the generator.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Open or closed loop.
    pub load: Load,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// The measured phase.
    pub measure: Measure,
    /// Open loop: most requests in flight.
    pub max_in_flight: u32,
    /// Key length in bytes.
    pub key_size: usize,
    /// Closed loop: requests each worker sends together before waiting for their answers
    /// (1: one at a time).
    pub pipeline: u32,
}

/// What happened during a point's run.
#[derive(Debug)]
pub struct Outcome {
    /// Histograms and counters of the measured phase.
    pub recorded: Recorded,
    /// Open loop: the intended rate, ops/s: the schedule's mean over the measured window (the
    /// rate itself when constant).
    pub offered_rate: Option<f64>,
    /// Open loop: ticks intended within the measured window.
    pub ticks_due: u64,
    /// Open loop: of those, never sent before the drain deadline.
    pub missed_ticks: u64,
    /// Wall-clock time the measured phase started.
    pub measure_start_wall: SystemTime,
    /// Monotonic time the measured phase started.
    pub measure_start: Instant,
    /// Monotonic time the last measured operation completed.
    pub measure_end: Instant,
    /// The first failed operation's message.
    pub first_error: Option<String>,
}

/// Runner failures.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Recording failed.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// Called about once a second with the phase name, the elapsed measured time and live numbers.
pub trait Progress {
    /// Updates the display.
    fn update(&self, phase: &str, measured: Duration, live: &Live);

    /// Called once, before any request, with the instant the measured window will start, so
    /// resource counters can be read exactly at that edge.
    fn window(&self, _start: Instant) {}
}

/// A progress sink that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: &str, _: Duration, _: &Live) {}
}

struct Shared<'a> {
    opgen: RefCell<OpGen>,
    pool: &'a ValuePool,
    check: &'a RefCell<Checker>,
    rec: RefCell<Recorder>,
    /// Open loop: next tick to claim. Closed loop: measured operations sent.
    next: Cell<u64>,
    error: RefCell<Option<RecordError>>,
    first_op_error: RefCell<Option<String>>,
    /// Open loop: idle workers wait here for the pacer.
    idle: tokio::sync::Notify,
    /// Open loop: the pacer waits here until a worker claims the tick it announced.
    claimed: tokio::sync::Notify,
    pacer_waiting: Cell<bool>,
    stop: Cell<bool>,
}

impl Shared<'_> {
    /// Sends `op` (intended at `intended`, sent at `sent`) and takes in its answer; returns
    /// how it ended and when.
    async fn send<T: Target>(
        &self,
        target: &T,
        op: OpSpec,
        key: &[u8],
        buf: &mut Vec<u8>,
        intended: Instant,
        sent: Instant,
    ) -> (RequestOutcome, Instant) {
        let (result, done) = traced(
            target,
            self.check,
            self.pool,
            op,
            key,
            buf,
            (intended, sent),
        )
        .await;
        (self.note(result), done)
    }

    #[inline]
    fn note(&self, result: Result<Seen, OpError>) -> RequestOutcome {
        match result {
            Ok(seen) if seen.found_nothing() => RequestOutcome::Empty,
            Ok(_) => RequestOutcome::Ok,
            Err(e) => {
                let mut first = self.first_op_error.borrow_mut();
                if first.is_none() {
                    *first = Some(e.to_string());
                }
                match e {
                    OpError::Indeterminate(_) => RequestOutcome::Indeterminate,
                    OpError::Timeout => RequestOutcome::TimedOut,
                    OpError::Failed(_) => RequestOutcome::Failed,
                    OpError::Conflict(_) => RequestOutcome::Conflict,
                }
            }
        }
    }
}

/// Open-loop schedule: tick `i` is intended at `start + pace.time_of(i)`.
#[derive(Debug)]
struct Schedule {
    start: Instant,
    pace: Pace,
    first_measured: u64,
    limit: u64,
    drain_deadline: Instant,
}

impl Schedule {
    /// Ticks intended before the end of warm-up are not measured; those intended in the
    /// measured window (or the first `n` after warm-up, for `Measure::Ops(n)`) are.
    fn new(rate: &RateSchedule, spec: &RunSpec, start: Instant) -> Schedule {
        let pace = rate.pace(spec.warmup);
        let warmup = spec.warmup.as_secs_f64();
        let first_measured = pace.ticks_before(warmup);
        let limit = match spec.measure {
            Measure::For(d) => pace
                .ticks_before(warmup + d.as_secs_f64())
                .max(first_measured.saturating_add(1)),
            Measure::Ops(n) => first_measured.saturating_add(n),
        };
        let mut s = Schedule {
            start,
            pace,
            first_measured,
            limit,
            drain_deadline: start,
        };
        let end = s.intended(s.limit);
        s.drain_deadline = end.checked_add(DRAIN_GRACE).unwrap_or(end);
        s
    }

    #[inline]
    fn intended(&self, tick: u64) -> Instant {
        self.at(self.pace.time_of(tick))
    }

    /// `secs` after the start of warm-up.
    #[inline]
    fn at(&self, secs: f64) -> Instant {
        // `Pace` times are finite, at least 0 and at most `MAX_TIME_S`, so this does not fail.
        let d = Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO);
        self.start.checked_add(d).unwrap_or(self.start)
    }

    /// The mean intended rate over the measured window, ops/s (exactly the rate when constant).
    fn offered_rate(&self, rate: &RateSchedule, spec: &RunSpec) -> f64 {
        if let Some(r) = rate.constant_rate() {
            return r;
        }
        let from = spec.warmup.as_secs_f64();
        let to = match spec.measure {
            Measure::For(d) => from + d.as_secs_f64(),
            Measure::Ops(_) => self.pace.time_of(self.limit),
        };
        if to > from {
            (self.pace.ops_until(to) - self.pace.ops_until(from)) / (to - from)
        } else {
            self.pace.rate_at(from)
        }
    }
}

/// Runs one point against `target` and returns what was recorded. `new_recorder` receives the
/// monotonic and wall-clock start of the measured phase; `check` traces values and checks
/// reads from the start of that phase.
pub async fn drive<T, F, P>(
    target: &T,
    opgen: OpGen,
    pool: &ValuePool,
    check: &RefCell<Checker>,
    spec: &RunSpec,
    new_recorder: F,
    progress: &P,
) -> Result<Outcome, RunError>
where
    T: Target,
    F: FnOnce(Instant, SystemTime) -> Result<Recorder, RecordError>,
    P: Progress,
{
    // A short lead so every worker is parked before the first tick.
    let start = Instant::now() + Duration::from_millis(5);
    let wall_start = SystemTime::now() + Duration::from_millis(5);
    let (schedule, measure_start, closed_end) = match &spec.load {
        Load::Open { rate } => {
            let s = Schedule::new(rate, spec, start);
            let measure_start = s.intended(s.first_measured);
            (Some(s), measure_start, None)
        }
        Load::Closed { .. } => {
            let measure_start = start + spec.warmup;
            let end = match spec.measure {
                Measure::For(d) => Some(measure_start + d),
                Measure::Ops(_) => None,
            };
            (None, measure_start, end)
        }
    };
    let measure_start_wall = wall_start + measure_start.saturating_duration_since(start);
    progress.window(measure_start);
    check.borrow_mut().count_from(measure_start);
    let shared = Shared {
        opgen: RefCell::new(opgen),
        pool,
        check,
        rec: RefCell::new(new_recorder(measure_start, measure_start_wall)?),
        next: Cell::new(0),
        error: RefCell::new(None),
        first_op_error: RefCell::new(None),
        idle: tokio::sync::Notify::new(),
        claimed: tokio::sync::Notify::new(),
        pacer_waiting: Cell::new(false),
        stop: Cell::new(false),
    };

    let workers = async {
        match (&spec.load, &schedule) {
            (Load::Open { .. }, Some(s)) => {
                let n = spec.max_in_flight.max(1);
                let workers = async {
                    join_all((0..n).map(|_| open_worker(target, &shared, s, spec.key_size))).await;
                    shared.stop.set(true);
                    shared.claimed.notify_one();
                };
                tokio::join!(workers, pacer(&shared, s));
            }
            (Load::Closed { concurrency }, _) => {
                let limit = match spec.measure {
                    Measure::Ops(n) => Some(n),
                    Measure::For(_) => None,
                };
                let n = (*concurrency).max(1);
                let bounds = ClosedBounds {
                    measure_start,
                    end: closed_end,
                    limit,
                    key_size: spec.key_size,
                };
                if spec.pipeline > 1 {
                    join_all((0..n).map(|_| {
                        closed_batch_worker(target, &shared, &bounds, spec.pipeline as usize)
                    }))
                    .await;
                } else {
                    join_all((0..n).map(|_| closed_worker(target, &shared, &bounds))).await;
                }
            }
            _ => {}
        }
    };
    // Live numbers, read once a second (never per request): the recorder's, plus what only
    // the runner knows (requests in flight, due ticks not yet sent, the rate intended now).
    let live_now = |rec: &Recorder, now: Instant| -> Live {
        let mut live = rec.live();
        let answered = live.warmup_ops.saturating_add(live.ops);
        match (&spec.load, &schedule) {
            (Load::Open { .. }, Some(s)) => {
                let sent = shared.next.get();
                let elapsed = now.saturating_duration_since(s.start).as_secs_f64();
                let due = s.pace.ticks_before(elapsed).min(s.limit);
                live.in_flight = sent.saturating_sub(answered);
                live.backlog = due.saturating_sub(sent);
                live.offered_rate = Some(s.pace.rate_at(elapsed));
            }
            (Load::Closed { concurrency }, _) => {
                live.in_flight = u64::from(*concurrency) * u64::from(spec.pipeline.max(1));
            }
            _ => {}
        }
        live
    };
    let ticker = async {
        let mut tick = tokio::time::interval_at((measure_start + INTERVAL).into(), INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warm = tokio::time::interval(Duration::from_millis(500));
        loop {
            let now = Instant::now();
            if now < measure_start {
                let live = live_now(&shared.rec.borrow(), now);
                progress.update("warm-up", Duration::ZERO, &live);
                warm.tick().await;
                continue;
            }
            tick.tick().await;
            let now = Instant::now();
            let mut rec = shared.rec.borrow_mut();
            if let Err(e) = rec.rotate(now) {
                *shared.error.borrow_mut() = Some(e);
            }
            progress.update(
                "measure",
                now.saturating_duration_since(measure_start),
                &live_now(&rec, now),
            );
        }
    };
    tokio::select! {
        biased;
        () = workers => {}
        () = ticker => {}
    }
    let measure_end = Instant::now();
    if let Some(e) = shared.error.borrow_mut().take() {
        return Err(e.into());
    }
    // Ticks never sent: recorded at their intended time, completing now, so a target that stalls
    // past the drain shows in p99 and max instead of vanishing from the histograms.
    if let Some(s) = &schedule {
        let mut rec = shared.rec.borrow_mut();
        let mut opgen = shared.opgen.borrow_mut();
        for tick in shared.next.get().max(s.first_measured)..s.limit {
            let kind = opgen.next_op().kind;
            rec.record_missed(kind, s.intended(tick), measure_end);
        }
    }
    // The last, partial interval: closed now so the live figures (the progress line and
    // `--metrics-listen`) end with every answered request, not the last full second's.
    {
        let mut rec = shared.rec.borrow_mut();
        rec.rotate(measure_end)?;
        progress.update(
            "measure",
            measure_end.saturating_duration_since(measure_start),
            &live_now(&rec, measure_end),
        );
    }
    let recorded = shared.rec.into_inner().finish(measure_end)?;
    let (offered_rate, ticks_due, missed_ticks) = match (&schedule, &spec.load) {
        (Some(s), Load::Open { rate }) => {
            let due = s.limit.saturating_sub(s.first_measured);
            let sent_measured = shared.next.get().saturating_sub(s.first_measured).min(due);
            (Some(s.offered_rate(rate, spec)), due, due - sent_measured)
        }
        _ => (None, 0, 0),
    };
    Ok(Outcome {
        recorded,
        offered_rate,
        ticks_due,
        missed_ticks,
        measure_start_wall,
        measure_start,
        measure_end,
        first_error: shared.first_op_error.into_inner(),
    })
}

/// Announces each tick when it is due: wakes one idle worker, then waits until some worker has
/// claimed it. Busy workers claim due ticks on their own as they finish, so the pacer only
/// matters when workers are idle.
async fn pacer(s: &Shared<'_>, sched: &Schedule) {
    let timer = PreciseTimer::new();
    let mut last_wake = Instant::now();
    loop {
        let tick = s.next.get();
        let now = Instant::now();
        if s.stop.get() || tick >= sched.limit || now >= sched.drain_deadline {
            s.stop.set(true);
            s.idle.notify_waiters();
            return;
        }
        let due_s = sched.pace.time_of(tick);
        let intended = sched.at(due_s);
        if intended > now {
            timer
                .sleep_until(intended.max(last_wake + MIN_PACER_GAP))
                .await;
            last_wake = Instant::now();
            if s.next.get() == tick {
                // Weighted by the ticks that fell due while the pacer was late (at the rate
                // intended then), so the percentiles read per request, like response time.
                let late = last_wake.saturating_duration_since(intended);
                let ticks = 1 + (late.as_secs_f64() * sched.pace.rate_at(due_s)) as u64;
                s.rec.borrow_mut().record_wake_lag(intended, late, ticks);
            }
        }
        if s.next.get() == tick && !s.stop.get() {
            s.pacer_waiting.set(true);
            s.idle.notify_one();
            s.claimed.notified().await;
        }
    }
}

async fn open_worker<T: Target>(target: &T, s: &Shared<'_>, sched: &Schedule, key_size: usize) {
    let mut key = vec![0u8; key_size];
    let mut buf = value_buffer(s);
    let mut now = Instant::now();
    let mut unyielded = 0u32;
    loop {
        let tick = s.next.get();
        if s.stop.get() || tick >= sched.limit || now >= sched.drain_deadline {
            return;
        }
        let intended = sched.intended(tick);
        if intended > now {
            // Not due: wait for the pacer to announce it.
            s.idle.notified().await;
            now = Instant::now();
            unyielded = 0;
            continue;
        }
        s.next.set(tick + 1);
        if s.pacer_waiting.get() {
            s.pacer_waiting.set(false);
            s.claimed.notify_one();
        }
        let op = s.opgen.borrow_mut().next_op();
        write_key(&mut key, op.key_index);
        let sent = now;
        let (outcome, done) = s.send(target, op, &key, &mut buf, intended, sent).await;
        now = done;
        s.rec
            .borrow_mut()
            .record(op.kind, intended, sent, now, outcome);
        unyielded += 1;
        if unyielded >= YIELD_EVERY {
            unyielded = 0;
            tokio::task::yield_now().await;
            now = Instant::now();
        }
    }
}

/// When a closed loop's workers stop.
struct ClosedBounds {
    measure_start: Instant,
    /// `Measure::For`: the end of the measured window.
    end: Option<Instant>,
    /// `Measure::Ops`: measured operations to send in all.
    limit: Option<u64>,
    key_size: usize,
}

impl ClosedBounds {
    /// How many of the `want` next operations a worker may send at `now`: 0 when the run is
    /// over. Claims them against the measured-operations limit.
    fn claim(&self, s: &Shared<'_>, now: Instant, want: u64) -> u64 {
        if self.end.is_some_and(|e| now >= e) {
            return 0;
        }
        if now >= self.measure_start
            && let Some(limit) = self.limit
        {
            let sent = s.next.get();
            let n = want.min(limit.saturating_sub(sent));
            s.next.set(sent + n);
            return n;
        }
        want
    }
}

async fn closed_worker<T: Target>(target: &T, s: &Shared<'_>, b: &ClosedBounds) {
    let mut key = vec![0u8; b.key_size];
    let mut buf = value_buffer(s);
    let mut now = Instant::now();
    let mut unyielded = 0u32;
    loop {
        if b.claim(s, now, 1) == 0 {
            return;
        }
        let op = s.opgen.borrow_mut().next_op();
        write_key(&mut key, op.key_index);
        let sent = now;
        let (outcome, done) = s.send(target, op, &key, &mut buf, sent, sent).await;
        now = done;
        s.rec.borrow_mut().record(op.kind, sent, sent, now, outcome);
        unyielded += 1;
        if unyielded >= YIELD_EVERY {
            unyielded = 0;
            tokio::task::yield_now().await;
            now = Instant::now();
        }
    }
}

/// A closed-loop worker with `pipeline` requests per batch: it sends them together (one
/// wire-level pipeline where the target has one), waits for every answer, records each from
/// the batch's send to its own answer, and sends the next batch.
async fn closed_batch_worker<T: Target>(
    target: &T,
    s: &Shared<'_>,
    b: &ClosedBounds,
    pipeline: usize,
) {
    let mut keys = vec![vec![0u8; b.key_size]; pipeline];
    let mut bufs: Vec<Vec<u8>> = (0..pipeline).map(|_| value_buffer(s)).collect();
    let mut ops = Vec::with_capacity(pipeline);
    let mut seqs = Vec::with_capacity(pipeline);
    let mut contexts = Vec::with_capacity(pipeline);
    let mut now = Instant::now();
    loop {
        let n = b.claim(s, now, pipeline as u64) as usize;
        if n == 0 {
            return;
        }
        let sent = now;
        ops.clear();
        seqs.clear();
        contexts.clear();
        let auditing = s.check.borrow().auditing();
        let mut batch = Vec::with_capacity(n);
        for (key, buf) in keys.iter_mut().zip(bufs.iter_mut()).take(n) {
            let op = s.opgen.borrow_mut().next_op();
            write_key(key, op.key_index);
            contexts.push(if auditing {
                target.context_of(op.key_index)
            } else {
                None
            });
            let (value, seq) = s.check.borrow_mut().value(s.pool, op, sent, buf);
            ops.push(op);
            seqs.push(seq);
            batch.push(BatchOp {
                op,
                key: key.as_slice(),
                value,
            });
        }
        let answers = target.execute_batch(&batch).await;
        drop(batch);
        now = Instant::now();
        let mut answers = answers.into_iter();
        for ((op, seq), context) in ops.iter().zip(&seqs).zip(&contexts) {
            let (result, done) = answers.next().unwrap_or_else(|| {
                let missing = "the target answered fewer requests than the batch held";
                (Err(OpError::Failed(missing.into())), now)
            });
            s.check
                .borrow_mut()
                .observe(*op, *seq, context.as_ref(), (sent, done), &result);
            let outcome = s.note(result);
            s.rec
                .borrow_mut()
                .record(op.kind, sent, sent, done, outcome);
        }
        // A batch is many operations: let the other workers run after every one.
        tokio::task::yield_now().await;
        now = Instant::now();
    }
}

/// Sends `op` with its value (stamped with the write's header when checking; `(intended,
/// sent)` times it), lets the checker take in the answer, and returns it with the time it
/// came.
async fn traced<T: Target>(
    target: &T,
    check: &RefCell<Checker>,
    pool: &ValuePool,
    op: OpSpec,
    key: &[u8],
    buf: &mut Vec<u8>,
    (intended, sent): (Instant, Instant),
) -> (Result<Seen, OpError>, Instant) {
    let context = if check.borrow().auditing() {
        target.context_of(op.key_index)
    } else {
        None
    };
    let (value, seq) = check.borrow_mut().value(pool, op, intended, buf);
    let result = target.execute(op, key, value).await;
    let done = Instant::now();
    check
        .borrow_mut()
        .observe(op, seq, context.as_ref(), (sent, done), &result);
    (result, done)
}

/// A worker's buffer for traced values (empty, allocating nothing, when checking is off).
fn value_buffer(s: &Shared<'_>) -> Vec<u8> {
    if s.check.borrow().enabled() {
        Vec::with_capacity(crate::workload::MAX_VALUE_BYTES as usize)
    } else {
        Vec::new()
    }
}

/// What to preload: keys `first, first + stride, …` below `count`, `concurrency` writes at a
/// time. One loadgen writes the first `count` keys (`first` 0, `stride` 1); shard `i` of `k`
/// writes every `k`-th of them from `i − 1`, so the shards preload the same keys between them.
#[derive(Debug, Clone, Copy)]
pub struct PreloadSpec {
    /// Keys below this index are preloaded (the first ones).
    pub count: u64,
    /// The first key this loadgen writes.
    pub first: u64,
    /// Step between the keys this loadgen writes (at least 1).
    pub stride: u64,
    /// Writes in flight.
    pub concurrency: u32,
    /// Key length in bytes.
    pub key_size: usize,
}

impl PreloadSpec {
    /// How many keys this loadgen writes.
    pub fn keys(&self) -> u64 {
        let stride = self.stride.max(1);
        self.count.saturating_sub(self.first).div_ceil(stride)
    }
}

/// Writes the keys of `spec` once each (values sized by `opgen`, traced by `check`) before
/// warm-up. Returns (written, failed, first error message).
pub async fn preload<T: Target>(
    target: &T,
    opgen: &mut OpGen,
    pool: &ValuePool,
    check: &RefCell<Checker>,
    spec: PreloadSpec,
    progress: &dyn Fn(u64),
) -> (u64, u64, Option<String>) {
    let PreloadSpec {
        count,
        first,
        stride,
        concurrency,
        key_size,
    } = spec;
    let stride = stride.max(1);
    let next = Cell::new(first);
    let done = Cell::new(0u64);
    let failed = Cell::new(0u64);
    let first_error: RefCell<Option<String>> = RefCell::new(None);
    let opgen = RefCell::new(opgen);
    let worker = || async {
        let mut key = vec![0u8; key_size];
        let mut buf = Vec::new();
        let mut unyielded = 0u32;
        loop {
            let i = next.get();
            if i >= count {
                return;
            }
            next.set(i.saturating_add(stride));
            write_key(&mut key, i);
            let len = opgen.borrow_mut().next_size();
            let op = crate::generator::OpSpec {
                kind: crate::generator::OpKind::Write,
                key_index: i,
                value_len: len,
            };
            let sent = Instant::now();
            let (result, _) = traced(target, check, pool, op, &key, &mut buf, (sent, sent)).await;
            if let Err(e) = result {
                failed.set(failed.get() + 1);
                first_error
                    .borrow_mut()
                    .get_or_insert_with(|| e.to_string());
            }
            done.set(done.get() + 1);
            if done.get().is_multiple_of(4096) {
                progress(done.get());
            }
            unyielded += 1;
            if unyielded >= YIELD_EVERY {
                unyielded = 0;
                tokio::task::yield_now().await;
            }
        }
    };
    join_all((0..concurrency.max(1)).map(|_| worker())).await;
    progress(done.get());
    (
        done.get() - failed.get(),
        failed.get(),
        first_error.into_inner(),
    )
}
