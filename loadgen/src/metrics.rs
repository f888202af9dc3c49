//! `loadgen run --metrics-listen ADDR`: the run's live progress as Prometheus metrics at
//! `http://ADDR/metrics`, in the OpenMetrics text format (`prometheus-client`), served the way a
//! node serves its own (`store::server::serve_registry`).
//!
//! The sweep feeds [`LiveMetrics`] from the progress it already reports about once a second
//! ([`crate::record::Live`]) and at the edges of each point, so requests do no extra work; a
//! scrape reads the last figures under a short lock, on a thread of its own.
//! docs/metrics.md lists the names.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::generator::OpKind;
use crate::plan::Point;
use crate::record::{LIVE_BUCKETS_NS, Live, LiveOp};

/// What the run is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Starting or stopping a point's cluster, summarising, auditing; before the first point.
    Idle,
    /// Writing the point's keys before warm-up.
    Preload,
    /// Load whose results are thrown away.
    Warmup,
    /// The measured window.
    Measure,
    /// Every point has run.
    Done,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::Idle,
        Phase::Preload,
        Phase::Warmup,
        Phase::Measure,
        Phase::Done,
    ];

    /// The `phase` label value.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Preload => "preload",
            Phase::Warmup => "warmup",
            Phase::Measure => "measure",
            Phase::Done => "done",
        }
    }
}

/// The point under way.
#[derive(Debug, Clone, Default)]
struct Current {
    index: usize,
    id: String,
    label: String,
    run: u32,
}

#[derive(Debug, Default)]
struct State {
    points: usize,
    point: Option<Current>,
    phase: Option<Phase>,
    preload_keys: u64,
    /// Finished points' totals per kind; `live` holds the point under way.
    done: [LiveOp; OpKind::ALL.len()],
    done_late_ticks: u64,
    missed_ticks: u64,
    live: Live,
}

/// The live figures a scrape reads; clones share them.
#[derive(Debug, Clone, Default)]
pub struct LiveMetrics {
    state: Arc<Mutex<State>>,
}

fn add(into: &mut LiveOp, from: &LiveOp) {
    into.ok += from.ok;
    into.failed += from.failed;
    into.timeouts += from.timeouts;
    into.indeterminate += from.indeterminate;
    into.conflicts += from.conflicts;
    for (a, b) in into.buckets.iter_mut().zip(&from.buckets) {
        *a += b;
    }
    into.sum_ns += from.sum_ns;
}

impl LiveMetrics {
    /// Metrics of a run that has not started a point yet.
    pub fn new() -> LiveMetrics {
        LiveMetrics::default()
    }

    /// A new run (1-based) of `point`, one of `points`, begins: the last one's counts are
    /// kept in the totals.
    pub fn begin_point(&self, point: &Point, points: usize, run: u32) {
        let mut s = self.state.lock();
        let live = std::mem::take(&mut s.live);
        for (done, now) in s.done.iter_mut().zip(&live.kinds) {
            add(done, now);
        }
        s.done_late_ticks += live.late_ticks;
        s.points = points;
        s.point = Some(Current {
            index: point.index,
            id: point.id(),
            label: point.label(),
            run,
        });
        s.phase = Some(Phase::Idle);
        s.preload_keys = 0;
    }

    /// The preload has written `keys` keys so far.
    pub fn preload(&self, keys: u64) {
        let mut s = self.state.lock();
        s.phase = Some(Phase::Preload);
        s.preload_keys = keys;
    }

    /// The runner's figures of the last second, in `phase` (warm-up or measure).
    pub fn update(&self, phase: Phase, live: &Live) {
        let mut s = self.state.lock();
        s.phase = Some(phase);
        s.live = *live;
    }

    /// The point's load has ended, with `missed_ticks` never sent.
    pub fn end_point(&self, missed_ticks: u64) {
        let mut s = self.state.lock();
        s.phase = Some(Phase::Idle);
        s.missed_ticks += missed_ticks;
        s.live.in_flight = 0;
        s.live.backlog = 0;
        s.live.offered_rate = None;
        s.live.last_rate = 0.0;
    }

    /// Every point has run.
    pub fn done(&self) {
        self.state.lock().phase = Some(Phase::Done);
    }

    /// A registry whose one collector reads these figures at each scrape.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register_collector(Box::new(Scrape(self.clone())));
        r
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpOutcome {
    op: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PointLabels {
    point: String,
    label: String,
}

#[derive(Debug)]
struct Scrape(LiveMetrics);

fn gauge<V>(e: &mut DescriptorEncoder, name: &str, help: &str, v: V) -> Result<(), std::fmt::Error>
where
    ConstGauge<V>: EncodeMetric,
{
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn histogram(mut m: MetricEncoder, op: &LiveOp) -> std::fmt::Result {
    let mut buckets: Vec<(f64, u64)> = LIVE_BUCKETS_NS
        .iter()
        .map(|ns| *ns as f64 / 1e9)
        .chain([f64::INFINITY])
        .zip(op.buckets)
        .collect();
    // Without the buckets (not kept), the count still goes in the +Inf bucket.
    let bucketed: u64 = op.buckets.iter().sum();
    if let Some(last) = buckets.last_mut() {
        last.1 += op.ok.saturating_sub(bucketed);
    }
    m.encode_histogram::<NoLabelSet>(op.sum_ns / 1e9, op.ok, &buckets, None)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.state.lock();
        let mut kinds = s.done;
        for (k, now) in kinds.iter_mut().zip(&s.live.kinds) {
            add(k, now);
        }
        {
            let mut ops = e.encode_descriptor(
                "loadgen_ops",
                "Measured requests answered, by operation and outcome (warm-up excluded)",
                None,
                MetricType::Counter,
            )?;
            for kind in OpKind::ALL {
                let Some(k) = kinds.get(kind.index()) else {
                    continue;
                };
                for (outcome, n) in [
                    ("ok", k.ok),
                    ("error", k.failed),
                    ("timeout", k.timeouts),
                    ("indeterminate", k.indeterminate),
                    ("conflict", k.conflicts),
                ] {
                    let labels = OpOutcome {
                        op: kind.name(),
                        outcome,
                    };
                    ConstCounter::new(n).encode(ops.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut hist = e.encode_descriptor(
                "loadgen_response_seconds",
                "Response time of measured successful requests (open loop: from the intended \
                 start), by operation",
                None,
                MetricType::Histogram,
            )?;
            for kind in OpKind::ALL {
                if let Some(k) = kinds.get(kind.index()) {
                    histogram(hist.encode_family(&Op { op: kind.name() })?, k)?;
                }
            }
        }
        let live = &s.live;
        gauge(
            &mut e,
            "loadgen_achieved_rate",
            "Requests answered in the last second, per second",
            live.last_rate,
        )?;
        if let Some(rate) = live.offered_rate {
            gauge(
                &mut e,
                "loadgen_offered_rate",
                "Open loop: the rate the schedule intends now, ops/s",
                rate,
            )?;
        }
        gauge(
            &mut e,
            "loadgen_interval_p99_seconds",
            "p99 response time of the last second, every operation",
            live.last_p99_ns as f64 / 1e9,
        )?;
        gauge(
            &mut e,
            "loadgen_in_flight",
            "Requests sent and not yet answered",
            live.in_flight,
        )?;
        gauge(
            &mut e,
            "loadgen_backlog_ticks",
            "Open loop: requests already due but not sent yet (every worker busy)",
            live.backlog,
        )?;
        counter(
            &mut e,
            "loadgen_late_ticks",
            "Measured requests sent more than 2 ms after their intended time",
            s.done_late_ticks + live.late_ticks,
        )?;
        counter(
            &mut e,
            "loadgen_missed_ticks",
            "Open loop: measured requests never sent by the end of their point (finished \
             points)",
            s.missed_ticks,
        )?;
        gauge(
            &mut e,
            "loadgen_preload_keys",
            "Keys the point under way has preloaded",
            s.preload_keys,
        )?;
        gauge(
            &mut e,
            "loadgen_points",
            "Points in the sweep",
            s.points as u64,
        )?;
        if let Some(p) = &s.point {
            gauge(
                &mut e,
                "loadgen_point_index",
                "0-based index of the point under way (as in summary.json)",
                p.index as u64,
            )?;
            gauge(
                &mut e,
                "loadgen_point_run",
                "1-based run of the point under way (with --repeat)",
                p.run,
            )?;
            let info = Info::new(PointLabels {
                point: p.id.clone(),
                label: p.label.clone(),
            });
            info.encode(e.encode_descriptor(
                "loadgen_point",
                "The point under way: its id and label",
                None,
                info.metric_type(),
            )?)?;
        }
        let mut phases = e.encode_descriptor(
            "loadgen_phase",
            "1 for what the run is doing now (idle, preload, warmup, measure, done), else 0",
            None,
            MetricType::Gauge,
        )?;
        for phase in Phase::ALL {
            let on = u64::from(s.phase.unwrap_or(Phase::Idle) == phase);
            ConstGauge::new(on).encode(phases.encode_family(&PhaseLabel {
                phase: phase.name(),
            })?)?;
        }
        Ok(())
    }
}

/// The address `--metrics-listen` binds: `PORT` (on 127.0.0.1), `localhost:PORT` or
/// `IP:PORT`. The page is plain HTTP without authentication, so an address off loopback
/// (`0.0.0.0` included) is refused unless `public` (`--metrics-public`) says so.
pub fn listen_address(text: &str, public: bool) -> Result<SocketAddr, String> {
    let addr = if let Ok(port) = text.parse::<u16>() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    } else if let Some(port) = text.strip_prefix("localhost:") {
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("--metrics-listen {text}: `{port}` is not a port"))?;
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    } else {
        text.parse::<SocketAddr>().map_err(|_| {
            format!(
                "--metrics-listen {text}: give PORT, localhost:PORT or IP:PORT (e.g. \
                 127.0.0.1:9200)"
            )
        })?
    };
    if !addr.ip().is_loopback() && !public {
        return Err(format!(
            "--metrics-listen {addr} is not a loopback address: the metrics are plain HTTP \
             that anyone who can reach it may read; add --metrics-public to serve them there, \
             or use 127.0.0.1:{}",
            addr.port()
        ));
    }
    Ok(addr)
}

/// Serves `metrics` at `http://ADDR/metrics` from a thread of its own, with its own small
/// runtime, so a scrape never runs on the driver thread; returns the bound address (port 0
/// picks a free one). The server lives as long as the process.
pub fn serve(addr: SocketAddr, metrics: &LiveMetrics) -> Result<SocketAddr, String> {
    let fail = |e: std::io::Error| format!("cannot serve metrics on {addr}: {e}");
    let listener = std::net::TcpListener::bind(addr).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    let bound = listener.local_addr().map_err(fail)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(fail)?;
    let registry = Arc::new(metrics.registry());
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => {
                        if let Err(e) = store::server::serve_registry(registry, l).await {
                            eprintln!("warning: the metrics server stopped: {e}");
                        }
                    }
                    Err(e) => eprintln!("warning: cannot serve metrics on {bound}: {e}"),
                }
            });
        })
        .map_err(fail)?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_binds_loopback_and_other_addresses_need_public() {
        assert_eq!(
            listen_address("9200", false).unwrap(),
            "127.0.0.1:9200".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(listen_address("localhost:0", false).unwrap().port(), 0);
        assert!(listen_address("[::1]:9200", false).is_ok());
        let err = listen_address("0.0.0.0:9200", false).unwrap_err();
        assert!(err.contains("--metrics-public"), "{err}");
        assert!(listen_address("0.0.0.0:9200", true).is_ok());
        let err = listen_address("somewhere:99", false).unwrap_err();
        assert!(err.contains("IP:PORT"), "{err}");
        assert!(listen_address("localhost:x", false).is_err());
    }

    #[test]
    fn counts_survive_the_next_point_and_encode_as_open_metrics() {
        let m = LiveMetrics::new();
        let w = crate::workload::Workload::parse(
            "name: t\ntarget: null\nkeys: { count: 10 }\nvalues: { size: 100 }\nrate: 10\n\
             duration: 1s\nsweep: { keys: [10, 20] }\n",
            std::path::Path::new("t.yaml"),
        )
        .unwrap();
        let points = crate::plan::points(&w).unwrap();
        let mut live = Live::default();
        if let Some(read) = live.kinds.get_mut(OpKind::Read.index()) {
            read.ok = 5;
            read.buckets[3] = 5;
            read.sum_ns = 5e5;
        }
        m.begin_point(&points[0], 2, 1);
        m.update(Phase::Measure, &live);
        m.end_point(2);
        m.begin_point(&points[1], 2, 1);
        m.update(Phase::Measure, &live);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry()).unwrap();
        assert!(
            text.contains("loadgen_ops_total{op=\"read\",outcome=\"ok\"} 10"),
            "{text}"
        );
        assert!(text.contains("loadgen_response_seconds_count{op=\"read\"} 10"));
        assert!(text.contains("loadgen_response_seconds_bucket{le=\"0.0004\",op=\"read\"} 10"));
        assert!(text.contains("loadgen_missed_ticks_total 2"));
        assert!(text.contains("loadgen_phase{phase=\"measure\"} 1"));
        assert!(
            text.contains("label=\"value=100B keys=20 rate=10\""),
            "{text}"
        );
    }
}
