//! HdrHistogram recording and interval logs.
//!
//! The driver thread records into per-operation histograms (response time and service time, in
//! nanoseconds). Once a second the interval's histograms are swapped for spares and shipped to a
//! writer thread, which appends them to one interval log per operation (V2 + DEFLATE, the
//! standard `#[Histogram log format version 1.3]` header and legend), adds them into the totals,
//! and hands the emptied histograms back. Recording an operation therefore never allocates, and
//! the driver never stops to compress a log.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};

use crate::generator::OpKind;

/// Length of one interval in the logs and the over-time charts.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Largest latency a histogram holds (one hour, in ns); larger values are clamped to it.
pub const HIST_MAX_NS: u64 = 3_600_000_000_000;
/// Significant decimal digits kept by every histogram.
pub const HIST_SIGFIG: u8 = 3;
/// A request sent later than this after its intended time counts as a late tick.
pub const LATE_TICK_THRESHOLD: Duration = Duration::from_millis(2);
/// The tag service-time histograms carry in the interval logs (response time is untagged).
pub const SERVICE_TAG: &str = "service";
/// The tag of failed requests' response times in the interval logs: failures are kept apart so
/// fast failures cannot pull the percentiles of real answers down.
pub const FAILED_TAG: &str = "failed";

/// What can go wrong while recording or reading logs.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A histogram could not be created (bad bounds; a bug).
    #[error("cannot create a histogram: {0:?}")]
    Create(hdrhistogram::CreationError),
    /// Writing or reading a log failed.
    #[error("interval log {path}: {message}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The writer thread died.
    #[error("the interval-log writer thread stopped unexpectedly")]
    WriterGone,
}

/// An empty latency histogram with the standard bounds.
pub fn new_hist() -> Result<Histogram<u64>, RecordError> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, HIST_SIGFIG).map_err(RecordError::Create)
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Answered successfully.
    Ok,
    /// A read answered successfully that found no value; counted as answered, and apart.
    Empty,
    /// Failed.
    Failed,
    /// A write that failed with its outcome unknown (it may have been applied); counted
    /// among the failures and apart.
    Indeterminate,
    /// No answer within the request timeout (a read, or a write known not to be applied);
    /// counted among the failures and apart.
    TimedOut,
    /// A write refused at the store's sibling bound (nothing applied); counted among the
    /// failures and apart.
    Conflict,
}

/// Response and service time of one operation kind, failed requests apart, plus counts.
#[derive(Debug, Clone)]
pub struct OpHistograms {
    /// Successful requests (and open-loop ticks never sent, see `missed`): from the intended
    /// start (open loop) or the send (closed loop) to the answer, ns.
    pub response: Histogram<u64>,
    /// Successful requests: from the actual send to the answer, ns.
    pub service: Histogram<u64>,
    /// Failed requests: from the intended start (or send) to the failure, ns.
    pub failed: Histogram<u64>,
    /// Operations that failed (`failed.len()`).
    pub errors: u64,
    /// Of those, writes whose outcome is unknown.
    pub indeterminate: u64,
    /// Of those, requests that timed out (and are not indeterminate writes).
    pub timeouts: u64,
    /// Of those, writes refused at the sibling bound.
    pub conflicts: u64,
    /// Reads answered that found no value (counted in `response` too).
    pub empty: u64,
    /// Open-loop ticks never sent by the end of the drain, recorded in `response` at their
    /// intended time with the end of the run as their completion.
    pub missed: u64,
}

impl OpHistograms {
    fn new() -> Result<OpHistograms, RecordError> {
        Ok(OpHistograms {
            response: new_hist()?,
            service: new_hist()?,
            failed: new_hist()?,
            errors: 0,
            indeterminate: 0,
            timeouts: 0,
            conflicts: 0,
            empty: 0,
            missed: 0,
        })
    }

    fn reset(&mut self) {
        self.response.reset();
        self.service.reset();
        self.failed.reset();
        self.errors = 0;
        self.indeterminate = 0;
        self.timeouts = 0;
        self.conflicts = 0;
        self.empty = 0;
        self.missed = 0;
    }

    fn add(&mut self, other: &OpHistograms) {
        // Same bounds on both sides, so addition cannot fail.
        let _ = self.response.add(&other.response);
        let _ = self.service.add(&other.service);
        let _ = self.failed.add(&other.failed);
        self.errors += other.errors;
        self.indeterminate += other.indeterminate;
        self.timeouts += other.timeouts;
        self.conflicts += other.conflicts;
        self.empty += other.empty;
        self.missed += other.missed;
    }

    /// Requests answered, successfully or not (never-sent ticks excluded).
    pub fn completed(&self) -> u64 {
        self.response.len().saturating_sub(self.missed) + self.failed.len()
    }
}

/// One interval's histograms for every operation kind.
struct IntervalSet {
    ops: Vec<OpHistograms>,
    start: Duration,
    length: Duration,
}

impl IntervalSet {
    fn new() -> Result<Box<IntervalSet>, RecordError> {
        let ops = OpKind::ALL
            .iter()
            .map(|_| OpHistograms::new())
            .collect::<Result<_, _>>()?;
        Ok(Box::new(IntervalSet {
            ops,
            start: Duration::ZERO,
            length: Duration::ZERO,
        }))
    }
}

/// Intervals shorter than this (the drain after the window) are left out of [`OverTime`]'s
/// worst interval: a handful of late answers would read as a spike.
pub const MIN_WORST_INTERVAL: Duration = Duration::from_millis(500);
/// A minute of the window whose intervals cover less than this (the last part-minute) has no
/// entry in [`OverTime::per_minute_p99_ns`].
pub const MIN_MINUTE_COVERED: Duration = Duration::from_secs(30);

/// How one operation kind's response-time p99 moved over the measured window, from its
/// one-second intervals (answered requests only, as in the logs' untagged histograms).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverTime {
    /// The highest p99 of any interval at least [`MIN_WORST_INTERVAL`] long, ns: the worst
    /// second a timeline shows. `None` when no such interval answered a request.
    pub worst_interval_p99_ns: Option<u64>,
    /// The p99 of each minute of the window, ns, each interval counted in the minute its start
    /// falls in; `None` for a minute that answered nothing of this kind.
    pub per_minute_p99_ns: Vec<Option<u64>>,
}

/// Folds consecutive intervals of one kind into an [`OverTime`].
pub struct OverTimeAcc {
    minute: u64,
    covered: Duration,
    hist: Histogram<u64>,
    out: OverTime,
}

impl OverTimeAcc {
    /// Nothing seen yet.
    pub fn new() -> Result<OverTimeAcc, RecordError> {
        Ok(OverTimeAcc {
            minute: 0,
            covered: Duration::ZERO,
            hist: new_hist()?,
            out: OverTime::default(),
        })
    }

    /// One interval's response times; `start` counts from the window's start, and intervals
    /// come in order.
    pub fn add(&mut self, response: &Histogram<u64>, start: Duration, length: Duration) {
        if length >= MIN_WORST_INTERVAL && !response.is_empty() {
            let p99 = response.value_at_quantile(0.99);
            let worst = self.out.worst_interval_p99_ns.get_or_insert(p99);
            *worst = (*worst).max(p99);
        }
        let minute = start.as_secs() / 60;
        if minute > self.minute {
            // A minute between the two had no intervals, so it would have no entry anyway.
            self.close_minute();
            self.minute = minute;
        }
        // Same bounds on both sides, so addition cannot fail.
        let _ = self.hist.add(response);
        self.covered = self.covered.saturating_add(length);
    }

    fn close_minute(&mut self) {
        if self.covered >= MIN_MINUTE_COVERED {
            let p99 = (!self.hist.is_empty()).then(|| self.hist.value_at_quantile(0.99));
            self.out.per_minute_p99_ns.push(p99);
        }
        self.hist.reset();
        self.covered = Duration::ZERO;
    }

    /// What the intervals showed.
    pub fn finish(mut self) -> OverTime {
        self.close_minute();
        // A kind the workload never issued has no minutes, rather than a row of gaps.
        if self.out.per_minute_p99_ns.iter().all(Option::is_none) {
            self.out.per_minute_p99_ns.clear();
        }
        self.out
    }
}

/// Everything recorded for one point's measured phase.
#[derive(Debug)]
pub struct Recorded {
    /// Totals per operation kind, indexed by [`OpKind::index`].
    pub ops: Vec<OpHistograms>,
    /// p99 over time per operation kind, indexed by [`OpKind::index`].
    pub over_time: Vec<OverTime>,
    /// Open loop: send minus intended time, ns, for every measured request.
    pub schedule_lag: Histogram<u64>,
    /// How late the pacer woke for due ticks, ns, weighted per tick (the generator's own lag).
    pub wake_lag: Histogram<u64>,
    /// Requests sent more than [`LATE_TICK_THRESHOLD`] after their intended time.
    pub late_ticks: u64,
    /// Operations issued during warm-up (not recorded).
    pub warmup_ops: u64,
    /// Intervals written to each log.
    pub intervals: u64,
    /// The measured window: from its start to the last interval's end.
    pub measured: Duration,
    /// The interval log of each kind that has one.
    pub logs: Vec<(OpKind, PathBuf)>,
}

/// Upper bounds (ns) of the live response-time buckets: 50 µs doubling to about 1.6 s, the
/// bounds of the nodes' own request histogram, so the two read side by side.
pub const LIVE_BUCKETS_NS: [u64; 16] = {
    let mut b = [0u64; 16];
    let mut i = 0;
    while i < b.len() {
        b[i] = 50_000 << i;
        i += 1;
    }
    b
};

/// One operation kind's measured requests so far, brought up to date each time an interval
/// closes (never per request).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LiveOp {
    /// Answered successfully.
    pub ok: u64,
    /// Failed, timeouts, indeterminate writes and conflicts not included.
    pub failed: u64,
    /// Timed out.
    pub timeouts: u64,
    /// Writes whose outcome is unknown.
    pub indeterminate: u64,
    /// Writes refused at the sibling bound.
    pub conflicts: u64,
    /// Successful requests' response times per bucket of [`LIVE_BUCKETS_NS`] (not
    /// cumulative); the last slot counts those above every bound. Kept only when the
    /// recorder was asked to ([`Recorder::with_live_buckets`]).
    pub buckets: [u64; LIVE_BUCKETS_NS.len() + 1],
    /// Sum of those response times, ns.
    pub sum_ns: f64,
}

/// Live numbers for the progress bar and `--metrics-listen`, handed out about once a second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Live {
    /// Completed measured operations.
    pub ops: u64,
    /// Failed measured operations.
    pub errors: u64,
    /// Operations completed in the last interval, per second.
    pub last_rate: f64,
    /// p99 response time of the last interval, ns (over all kinds).
    pub last_p99_ns: u64,
    /// Per operation kind, indexed by [`OpKind::index`]: the measured window so far.
    pub kinds: [LiveOp; OpKind::ALL.len()],
    /// Measured requests sent more than [`LATE_TICK_THRESHOLD`] late.
    pub late_ticks: u64,
    /// Operations completed during warm-up.
    pub warmup_ops: u64,
    /// Requests sent and not yet answered (set by the runner).
    pub in_flight: u64,
    /// Open loop: ticks already due but not yet sent (set by the runner); the ones still
    /// unsent at the end of the drain become missed ticks.
    pub backlog: u64,
    /// Open loop: the schedule's rate now, ops/s (set by the runner).
    pub offered_rate: Option<f64>,
}

/// Records one point's operations on the driver thread.
pub struct Recorder {
    measure_start: Instant,
    interval_start: Instant,
    current: Box<IntervalSet>,
    to_writer: Sender<Box<IntervalSet>>,
    spares: Receiver<Box<IntervalSet>>,
    writer: JoinHandle<Result<Totals, RecordError>>,
    schedule_lag: Histogram<u64>,
    wake_lag: Histogram<u64>,
    late_ticks: u64,
    warmup_ops: u64,
    intervals: u64,
    logs: Vec<(OpKind, PathBuf)>,
    live: Live,
    interval_ops: u64,
    live_buckets: bool,
}

#[inline]
fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Recorder {
    /// A recorder whose measured phase starts at `measure_start`; interval logs for `kinds` are
    /// written to `dir/<prefix>-<kind>.hlog`. `wall_start` is the wall-clock time of
    /// `measure_start` (the logs' StartTime).
    pub fn new(
        measure_start: Instant,
        wall_start: SystemTime,
        kinds: &[OpKind],
        dir: &Path,
        prefix: &str,
    ) -> Result<Recorder, RecordError> {
        let logs: Vec<(OpKind, PathBuf)> = kinds
            .iter()
            .map(|k| (*k, dir.join(format!("{prefix}-{}.hlog", k.name()))))
            .collect();
        let (to_writer, from_driver) = channel::<Box<IntervalSet>>();
        let (to_driver, spares) = channel::<Box<IntervalSet>>();
        // Two spares are enough: the writer hands each set back within the interval.
        for _ in 0..2 {
            let _ = to_driver.send(IntervalSet::new()?);
        }
        let writer_logs = logs.clone();
        let writer = std::thread::Builder::new()
            .name("hlog-writer".into())
            .spawn(move || write_logs(writer_logs, wall_start, from_driver, to_driver))
            .map_err(|e| RecordError::Log {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(Recorder {
            measure_start,
            interval_start: measure_start,
            current: IntervalSet::new()?,
            to_writer,
            spares,
            writer,
            schedule_lag: new_hist()?,
            wake_lag: new_hist()?,
            late_ticks: 0,
            warmup_ops: 0,
            intervals: 0,
            logs,
            live: Live::default(),
            interval_ops: 0,
            live_buckets: false,
        })
    }

    /// Also keeps the live response-time buckets of [`LiveOp`] (one pass over each kind's
    /// interval histogram when the interval closes; off unless someone reads them).
    pub fn with_live_buckets(mut self, on: bool) -> Recorder {
        self.live_buckets = on;
        self
    }

    /// When the measured phase starts.
    pub fn measure_start(&self) -> Instant {
        self.measure_start
    }

    /// Records one completed operation. `intended` is when it should have been sent (for a
    /// closed loop, when it was sent). Operations intended before the measured phase are warm-up
    /// and only counted.
    #[inline]
    pub fn record(
        &mut self,
        kind: OpKind,
        intended: Instant,
        sent: Instant,
        done: Instant,
        outcome: RequestOutcome,
    ) {
        if intended < self.measure_start {
            self.warmup_ops += 1;
            return;
        }
        let lag = sent.saturating_duration_since(intended);
        if lag > LATE_TICK_THRESHOLD {
            self.late_ticks += 1;
        }
        self.schedule_lag.saturating_record(ns(lag));
        if let Some(slot) = self.current.ops.get_mut(kind.index()) {
            let response = ns(done.saturating_duration_since(intended));
            if matches!(outcome, RequestOutcome::Ok | RequestOutcome::Empty) {
                slot.empty += u64::from(outcome == RequestOutcome::Empty);
                slot.response.saturating_record(response);
                slot.service
                    .saturating_record(ns(done.saturating_duration_since(sent)));
            } else {
                slot.failed.saturating_record(response);
                slot.errors += 1;
                match outcome {
                    RequestOutcome::Indeterminate => slot.indeterminate += 1,
                    RequestOutcome::TimedOut => slot.timeouts += 1,
                    RequestOutcome::Conflict => slot.conflicts += 1,
                    RequestOutcome::Ok | RequestOutcome::Empty | RequestOutcome::Failed => {}
                }
                self.live.errors += 1;
            }
        }
        self.live.ops += 1;
        self.interval_ops += 1;
    }

    /// Records an open-loop tick that was never sent: at its intended time, completing at `end`
    /// (the end of the run), so it shows in the percentiles and the maximum. Only
    /// measured-phase ticks count.
    #[inline]
    pub fn record_missed(&mut self, kind: OpKind, intended: Instant, end: Instant) {
        if intended < self.measure_start {
            return;
        }
        if let Some(slot) = self.current.ops.get_mut(kind.index()) {
            slot.response
                .saturating_record(ns(end.saturating_duration_since(intended)));
            slot.missed += 1;
        }
    }

    /// Notes how late the driver woke for a tick it was sleeping towards; `ticks` requests fell
    /// due meanwhile. Only measured-phase wakes count.
    #[inline]
    pub fn record_wake_lag(&mut self, intended: Instant, lag: Duration, ticks: u64) {
        if intended >= self.measure_start {
            self.wake_lag.saturating_record_n(ns(lag), ticks);
        }
    }

    /// Live numbers for the progress bar (the runner's fields left at zero).
    pub fn live(&self) -> Live {
        Live {
            late_ticks: self.late_ticks,
            warmup_ops: self.warmup_ops,
            ..self.live
        }
    }

    /// Closes the current interval at `now` and ships it to the log writer. Does nothing before
    /// the measured phase.
    pub fn rotate(&mut self, now: Instant) -> Result<(), RecordError> {
        if now <= self.measure_start {
            return Ok(());
        }
        let length = now.saturating_duration_since(self.interval_start);
        if length.is_zero() {
            return Ok(());
        }
        let mut p99 = 0;
        for slot in &self.current.ops {
            if !slot.response.is_empty() {
                p99 = p99.max(slot.response.value_at_quantile(0.99));
            }
        }
        self.live.last_p99_ns = p99;
        self.live.last_rate = self.interval_ops as f64 / length.as_secs_f64();
        for (live, slot) in self.live.kinds.iter_mut().zip(&self.current.ops) {
            add_interval(live, slot, self.live_buckets);
        }
        self.interval_ops = 0;
        let spare = match self.spares.try_recv() {
            Ok(s) => s,
            Err(_) => IntervalSet::new()?,
        };
        let mut full = std::mem::replace(&mut self.current, spare);
        full.start = self
            .interval_start
            .saturating_duration_since(self.measure_start);
        full.length = length;
        self.interval_start = now;
        self.intervals += 1;
        self.to_writer
            .send(full)
            .map_err(|_| RecordError::WriterGone)
    }

    /// Closes the last interval at `now`, waits for the writer, and returns the totals.
    pub fn finish(mut self, now: Instant) -> Result<Recorded, RecordError> {
        self.rotate(now)?;
        let measured = self
            .interval_start
            .saturating_duration_since(self.measure_start);
        drop(self.to_writer);
        let (ops, over_time) = self.writer.join().map_err(|_| RecordError::WriterGone)??;
        Ok(Recorded {
            ops,
            over_time,
            schedule_lag: self.schedule_lag,
            wake_lag: self.wake_lag,
            late_ticks: self.late_ticks,
            warmup_ops: self.warmup_ops,
            intervals: self.intervals,
            measured,
            logs: self.logs,
        })
    }
}

/// Adds one closed interval of a kind to its live totals.
fn add_interval(live: &mut LiveOp, slot: &OpHistograms, buckets: bool) {
    let failed = slot.errors;
    live.ok += slot.response.len().saturating_sub(slot.missed);
    live.timeouts += slot.timeouts;
    live.indeterminate += slot.indeterminate;
    live.conflicts += slot.conflicts;
    live.failed += failed.saturating_sub(slot.timeouts + slot.indeterminate + slot.conflicts);
    if !buckets || slot.response.is_empty() {
        return;
    }
    for v in slot.response.iter_recorded() {
        let value = v.value_iterated_to();
        let n = v.count_at_value();
        let i = LIVE_BUCKETS_NS.partition_point(|bound| *bound < value);
        if let Some(b) = live.buckets.get_mut(i) {
            *b += n;
        }
        live.sum_ns += value as f64 * n as f64;
    }
}

/// Seconds since the epoch, as HdrHistogram logs write them.
fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The header HdrHistogram's Java `HistogramLogWriter` writes (the Rust crate writes none).
fn write_header(out: &mut impl Write, start: SystemTime, kind: OpKind) -> std::io::Result<()> {
    let t = epoch_secs(start);
    writeln!(
        out,
        "#[Logged with loadgen {} (ringkv), operation {}]",
        env!("CARGO_PKG_VERSION"),
        kind.name()
    )?;
    writeln!(
        out,
        "#[Values are nanoseconds. Untagged: response time of answered requests and of ticks \
         never sent; Tag=service: service time; Tag=failed: response time of failed requests]"
    )?;
    writeln!(out, "#[Histogram log format version 1.3]")?;
    writeln!(
        out,
        "#[StartTime: {t:.3} (seconds since epoch), {}]",
        crate::workload::units::utc_iso8601(start)
    )?;
    writeln!(out, "#[BaseTime: {t:.3} (seconds since epoch)]")?;
    writeln!(
        out,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )
}

/// What the log writer hands back: totals and p99 over time, each per operation kind.
type Totals = (Vec<OpHistograms>, Vec<OverTime>);

fn write_logs(
    logs: Vec<(OpKind, PathBuf)>,
    start: SystemTime,
    from_driver: Receiver<Box<IntervalSet>>,
    to_driver: Sender<Box<IntervalSet>>,
) -> Result<Totals, RecordError> {
    let log_err = |path: &Path, e: &dyn std::fmt::Display| RecordError::Log {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut totals: Vec<OpHistograms> = OpKind::ALL
        .iter()
        .map(|_| OpHistograms::new())
        .collect::<Result<_, _>>()?;
    let mut over_time: Vec<OverTimeAcc> = OpKind::ALL
        .iter()
        .map(|_| OverTimeAcc::new())
        .collect::<Result<_, _>>()?;
    let mut files = Vec::with_capacity(logs.len());
    for (kind, path) in &logs {
        let file = File::create(path).map_err(|e| log_err(path, &e))?;
        let mut out = BufWriter::new(file);
        write_header(&mut out, start, *kind).map_err(|e| log_err(path, &e))?;
        files.push(out);
    }
    let mut serializers: Vec<V2DeflateSerializer> =
        logs.iter().map(|_| V2DeflateSerializer::new()).collect();
    let builder = IntervalLogWriterBuilder::new();
    let mut writers = Vec::with_capacity(logs.len());
    for ((out, ser), (_, path)) in files.iter_mut().zip(serializers.iter_mut()).zip(&logs) {
        writers.push(
            builder
                .begin_log_with(out, ser)
                .map_err(|e| log_err(path, &e))?,
        );
    }
    let service_tag = Tag::new(SERVICE_TAG);
    let failed_tag = Tag::new(FAILED_TAG);
    while let Ok(mut set) = from_driver.recv() {
        for (writer, (kind, path)) in writers.iter_mut().zip(&logs) {
            let Some(slot) = set.ops.get(kind.index()) else {
                continue;
            };
            writer
                .write_histogram(&slot.response, set.start, set.length, None)
                .map_err(|e| log_err(path, &e))?;
            writer
                .write_histogram(&slot.service, set.start, set.length, service_tag)
                .map_err(|e| log_err(path, &e))?;
            if !slot.failed.is_empty() {
                writer
                    .write_histogram(&slot.failed, set.start, set.length, failed_tag)
                    .map_err(|e| log_err(path, &e))?;
            }
        }
        for ((total, acc), slot) in totals.iter_mut().zip(&mut over_time).zip(&mut set.ops) {
            total.add(slot);
            acc.add(&slot.response, set.start, set.length);
            slot.reset();
        }
        // The driver may have finished; then the spare is simply dropped.
        let _ = to_driver.send(set);
    }
    drop(writers);
    for (out, (_, path)) in files.iter_mut().zip(&logs) {
        out.flush().map_err(|e| log_err(path, &e))?;
    }
    Ok((
        totals,
        over_time.into_iter().map(OverTimeAcc::finish).collect(),
    ))
}

/// One interval read back from a log.
#[derive(Debug, Clone)]
pub struct LoggedInterval {
    /// Seconds since the log's BaseTime.
    pub start_s: f64,
    /// Interval length, seconds.
    pub length_s: f64,
    /// Response-time (`false`) or service-time (`true`) histogram.
    pub service: bool,
    /// A histogram of failed requests (tag `failed`).
    pub failed: bool,
    /// The histogram, ns.
    pub hist: Histogram<u64>,
}

/// Reads every interval of a log written by [`Recorder`] (or any V2 interval log).
pub fn read_log(path: &Path) -> Result<Vec<LoggedInterval>, RecordError> {
    let err = |m: String| RecordError::Log {
        path: path.to_path_buf(),
        message: m,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut decoder = hdrhistogram::serialization::Deserializer::new();
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| err(format!("cannot parse: {e:?}")))?;
        let LogEntry::Interval(h) = entry else {
            continue;
        };
        let raw = base64_decode(h.encoded_histogram())
            .ok_or_else(|| err("an interval's histogram is not valid base64".into()))?;
        let hist: Histogram<u64> = decoder
            .deserialize(&mut raw.as_slice())
            .map_err(|e| err(format!("cannot decode a histogram: {e:?}")))?;
        out.push(LoggedInterval {
            start_s: h.start_timestamp().as_secs_f64(),
            length_s: h.duration().as_secs_f64(),
            service: h.tag().map(|t| t.as_str() == SERVICE_TAG).unwrap_or(false),
            failed: h.tag().map(|t| t.as_str() == FAILED_TAG).unwrap_or(false),
            hist,
        });
    }
    Ok(out)
}

/// Writes `intervals` as an interval log of operation `kind` whose StartTime and BaseTime are
/// `start` (the format [`Recorder`] writes and [`read_log`] reads; `loadgen merge` writes the
/// shards' added intervals with it).
pub fn write_log(
    path: &Path,
    kind: OpKind,
    start: SystemTime,
    intervals: &[LoggedInterval],
) -> Result<(), RecordError> {
    let err = |e: &dyn std::fmt::Display| RecordError::Log {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO);
    let file = File::create(path).map_err(|e| err(&e))?;
    let mut out = BufWriter::new(file);
    write_header(&mut out, start, kind).map_err(|e| err(&e))?;
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut writer = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| err(&e))?;
        for i in intervals {
            let tag = if i.service {
                Tag::new(SERVICE_TAG)
            } else if i.failed {
                Tag::new(FAILED_TAG)
            } else {
                None
            };
            writer
                .write_histogram(&i.hist, secs(i.start_s), secs(i.length_s), tag)
                .map_err(|e| err(&e))?;
        }
    }
    out.flush().map_err(|e| err(&e))
}

/// Standard base64 (with padding) decoding, enough for HdrHistogram logs.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let bytes: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let trimmed: &[u8] = {
        let end = bytes
            .iter()
            .rposition(|b| *b != b'=')
            .map(|p| p + 1)
            .unwrap_or(0);
        bytes.get(..end)?
    };
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let produced = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        for i in 0..produced {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert!(base64_decode("a").is_none());
    }

    #[test]
    fn interval_logs_have_the_standard_header_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let mut rec =
            Recorder::new(start, SystemTime::now(), &[OpKind::Read], dir.path(), "p00").unwrap();
        for i in 0..1000u64 {
            let t = start + Duration::from_micros(i);
            rec.record(
                OpKind::Read,
                t,
                t,
                t + Duration::from_micros(100 + i),
                RequestOutcome::Ok,
            );
        }
        rec.rotate(start + Duration::from_secs(1)).unwrap();
        let t = start + Duration::from_millis(1500);
        rec.record(
            OpKind::Read,
            t,
            t,
            t + Duration::from_millis(3),
            RequestOutcome::Failed,
        );
        rec.record(
            OpKind::Read,
            t,
            t,
            t + Duration::from_millis(3),
            RequestOutcome::Indeterminate,
        );
        let done = rec.finish(start + Duration::from_secs(2)).unwrap();
        assert_eq!(done.intervals, 2);
        // The failure has a histogram of its own, so it cannot pull the percentiles down.
        assert_eq!(done.ops[0].response.len(), 1000);
        assert_eq!(done.ops[0].failed.len(), 2);
        assert_eq!(done.ops[0].errors, 2);
        assert_eq!(
            done.ops[0].indeterminate, 1,
            "outcome unknown, counted apart"
        );
        assert_eq!(done.ops[0].completed(), 1002);

        let path = dir.path().join("p00-read.hlog");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("#[Histogram log format version 1.3]"));
        assert!(text.contains("#[StartTime: "));
        assert!(text.contains("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\""));
        assert!(text.contains("Tag=service,"));
        assert!(text.contains("Tag=failed,"));
        let intervals = read_log(&path).unwrap();
        assert_eq!(intervals.len(), 5);
        let responses: u64 = intervals
            .iter()
            .filter(|i| !i.service && !i.failed)
            .map(|i| i.hist.len())
            .sum();
        assert_eq!(responses, 1000);
        let failed: Vec<&LoggedInterval> = intervals.iter().filter(|i| i.failed).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].hist.max() / 1_000_000, 3);
        assert!((intervals[2].start_s - 1.0).abs() < 1e-3);

        // What write_log writes reads back the same.
        let copy = dir.path().join("copy.hlog");
        write_log(&copy, OpKind::Read, SystemTime::now(), &intervals).unwrap();
        let again = read_log(&copy).unwrap();
        assert_eq!(again.len(), intervals.len());
        for (a, b) in again.iter().zip(&intervals) {
            assert_eq!(
                (a.service, a.failed, a.hist.len()),
                (b.service, b.failed, b.hist.len())
            );
            assert_eq!(
                a.hist.value_at_quantile(0.99),
                b.hist.value_at_quantile(0.99)
            );
            assert!((a.start_s - b.start_s).abs() < 1e-3);
        }
        assert!(
            std::fs::read_to_string(&copy)
                .unwrap()
                .contains("#[Histogram log format version 1.3]")
        );
    }

    #[test]
    fn over_time_gives_the_worst_second_and_each_whole_minute() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let mut rec = Recorder::new(
            start,
            SystemTime::now(),
            &[OpKind::Write],
            dir.path(),
            "p00",
        )
        .unwrap();
        // 150 one-second intervals of 100 writes: 1 ms each, except second 70, all 40 ms, and
        // the 0.2 s drain at the end, whose one answer took 900 ms.
        for second in 0..150u64 {
            let latency = if second == 70 { 40 } else { 1 };
            for i in 0..100u64 {
                let t = start + Duration::from_secs(second) + Duration::from_millis(i * 10);
                let done = t + Duration::from_millis(latency);
                rec.record(OpKind::Write, t, t, done, RequestOutcome::Ok);
            }
            rec.rotate(start + Duration::from_secs(second + 1)).unwrap();
        }
        let t = start + Duration::from_secs(150);
        rec.record(
            OpKind::Write,
            t,
            t,
            t + Duration::from_millis(900),
            RequestOutcome::Ok,
        );
        let done = rec.finish(start + Duration::from_millis(150_200)).unwrap();
        let w = &done.over_time[OpKind::Write.index()];
        let worst_ms = w.worst_interval_p99_ns.unwrap() as f64 / 1e6;
        assert!((worst_ms - 40.0).abs() < 0.1, "worst second {worst_ms} ms");
        // Minutes 0 and 1 are whole; the last 30.2 s count too.
        let minutes: Vec<f64> = w
            .per_minute_p99_ns
            .iter()
            .map(|p| p.unwrap() as f64 / 1e6)
            .collect();
        assert_eq!(minutes.len(), 3, "{minutes:?}");
        assert!((minutes[0] - 1.0).abs() < 0.01, "{minutes:?}");
        // Second 70 is 1/60 of minute 1, more than 1%; the drain's one slow answer is not.
        assert!((minutes[1] - 40.0).abs() < 0.1, "{minutes:?}");
        assert!((minutes[2] - 1.0).abs() < 0.01, "{minutes:?}");
        // A kind never requested has nothing.
        assert_eq!(done.over_time[OpKind::Read.index()], OverTime::default());
    }

    #[test]
    fn live_totals_count_outcomes_and_bucket_response_times_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let kinds = [OpKind::Read, OpKind::Write];
        let mut rec = Recorder::new(start, SystemTime::now(), &kinds, dir.path(), "p00")
            .unwrap()
            .with_live_buckets(true);
        let t = start + Duration::from_millis(1);
        let ok = |ms: u64| (t, t + Duration::from_millis(ms), RequestOutcome::Ok);
        for (kind, (sent, done, outcome)) in [
            (OpKind::Read, ok(1)),
            (OpKind::Read, ok(1)),
            (OpKind::Read, ok(10_000)),
            (OpKind::Write, ok(1)),
            (OpKind::Write, (t, t, RequestOutcome::Failed)),
            (OpKind::Write, (t, t, RequestOutcome::TimedOut)),
            (OpKind::Write, (t, t, RequestOutcome::Indeterminate)),
            (OpKind::Write, (t, t, RequestOutcome::Conflict)),
        ] {
            rec.record(kind, sent, sent, done, outcome);
        }
        // Warm-up operations are only counted.
        rec.record(
            OpKind::Read,
            start - Duration::from_millis(1),
            start,
            t,
            RequestOutcome::Ok,
        );
        assert_eq!(
            rec.live().kinds[OpKind::Read.index()].ok,
            0,
            "until the interval closes"
        );
        rec.rotate(start + Duration::from_secs(1)).unwrap();
        let live = rec.live();
        assert_eq!(live.warmup_ops, 1);
        let read = live.kinds[OpKind::Read.index()];
        assert_eq!((read.ok, read.failed, read.timeouts), (3, 0, 0));
        // 1 ms falls in the bucket up to 1.6 ms (50 µs << 5); 10 s above every bound.
        assert_eq!(read.buckets[5], 2);
        assert_eq!(read.buckets[LIVE_BUCKETS_NS.len()], 1);
        assert!(read.sum_ns > 10e9, "{}", read.sum_ns);
        let write = live.kinds[OpKind::Write.index()];
        assert_eq!(
            (
                write.ok,
                write.failed,
                write.timeouts,
                write.indeterminate,
                write.conflicts
            ),
            (1, 1, 1, 1, 1)
        );
        rec.finish(start + Duration::from_secs(2)).unwrap();
    }
}
