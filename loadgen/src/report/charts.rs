//! Charts as PNG and SVG (plotters, with the DejaVu font embedded: no system fonts needed).
//!
//! * `spectrum-<point>`: the latency percentile spectrum, percentile on a log "nines" axis;
//! * `latency-vs-value-size`, `latency-vs-quorum`, `latency-vs-replication`,
//!   `latency-vs-nodes`, `latency-vs-keys`: p50/p99/p99.9 across the sweep dimension;
//! * `latency-vs-throughput`: p99 against achieved throughput when the rate or concurrency is
//!   swept (the capacity curve);
//! * `capacity-slo`: a search's p50/p99/p99.9 against the offered rate, with the SLO's bounds
//!   and the highest passing rate;
//! * `timeline-<point>`: throughput (and an open loop's offered rate) and p99 per one-second
//!   interval.
//!
//! Log axes are drawn as log10 of the value on a linear axis, labelled with the value.

mod consistency;
mod slo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{PointSummary, ReportError, Summary};
use crate::generator::OpKind;
use crate::record::{LoggedInterval, new_hist, read_log};
use crate::workload::RateSchedule;

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;
const FONT: &str = "sans-serif";
/// Intervals shorter than this, s (the drain after the measured window), are left off timelines:
/// the bound the summary's worst second uses, so "worst 1 s p99" is the top of the chart.
const MIN_TIMELINE_S: f64 = crate::record::MIN_WORST_INTERVAL.as_secs_f64();
/// The most one-second samples of the offered rate a timeline draws (a week).
const MAX_TIMELINE_POINTS: u32 = 7 * 86_400;

static FONT_READY: OnceLock<bool> = OnceLock::new();

/// Registers the embedded DejaVu Sans as the `sans-serif` family (once).
fn ensure_font() -> bool {
    *FONT_READY.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
    })
}

fn op_color(op: &str) -> RGBColor {
    match OpKind::from_name(op) {
        Some(OpKind::Read) => RGBColor(31, 119, 180),
        Some(OpKind::Write) => RGBColor(230, 110, 0),
        Some(OpKind::Delete) => RGBColor(44, 160, 44),
        Some(OpKind::ReadModifyWrite) => RGBColor(200, 30, 40),
        None => RGBColor(90, 90, 90),
    }
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stroke {
    Solid(u32),
    Dashed,
}

/// One line of a chart, in data units (log axes are transformed when drawing).
#[derive(Debug, Clone)]
struct Line {
    label: String,
    color: RGBColor,
    stroke: Stroke,
    markers: bool,
    points: Vec<(f64, f64)>,
}

/// How x values are labelled.
#[derive(Debug, Clone)]
enum XAxis {
    /// Plain numbers.
    Linear,
    /// Seconds from zero.
    Time,
    /// x is log10(1 / (1 - p)); labels are percentiles.
    Nines,
    /// x is an index into these labels.
    Categories(Vec<String>),
}

/// A chart description, drawn the same way to PNG and SVG.
#[derive(Debug, Clone)]
struct Chart {
    title: String,
    x_desc: String,
    y_desc: String,
    y_log: bool,
    x_axis: XAxis,
    lines: Vec<Line>,
    /// Vertical markers at these x values, with labels (cluster events on timelines).
    marks: Vec<(f64, String)>,
    /// Vertical interval bars: (x, low, high, colour).
    bars: Vec<(f64, f64, f64, RGBColor)>,
    /// The legend goes to the lower right (for data near the top left).
    legend_lower_right: bool,
}

fn log10_floor_ceil(min: f64, max: f64) -> (f64, f64) {
    let lo = min.max(1e-6).log10().floor();
    let hi = max.max(1e-6).log10().ceil();
    if hi - lo < 1.0 {
        (lo, lo + 1.0)
    } else {
        (lo, hi)
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6).replace(".0M", "M")
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        let s = format!("{v:.1}");
        s.trim_end_matches(".0").to_string()
    } else {
        let decimals = ((-a.log10()).ceil() as usize + 1).min(9);
        let s = format!("{v:.decimals$}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn nines_label(x: f64) -> String {
    let p = (1.0 - 10f64.powf(-x)) * 100.0;
    let digits = (x.ceil() as i32 - 2).clamp(0, 6) as usize;
    format!("{p:.digits$}%")
}

fn range_of(lines: &[Line]) -> Option<(f64, f64, f64, f64)> {
    let mut it = lines.iter().flat_map(|l| l.points.iter());
    let first = it.next()?;
    let init = (first.0, first.0, first.1, first.1);
    Some(it.fold(init, |(x0, x1, y0, y1), p| {
        (x0.min(p.0), x1.max(p.0), y0.min(p.1), y1.max(p.1))
    }))
}

impl Chart {
    /// Draws the chart into `area` (which the caller filled and will present).
    fn draw_in<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let Some((x0, x1, y0, y1)) = range_of(&self.lines) else {
            return Ok(());
        };
        // Interval bars count towards the vertical range.
        let y1 = self.bars.iter().map(|b| b.2).fold(y1, f64::max);
        let (x0, x1) = match &self.x_axis {
            XAxis::Categories(c) => (-0.5, c.len() as f64 - 0.5),
            XAxis::Nines => (0.0, x1.ceil().max(1.0)),
            XAxis::Time => (0.0, x1.max(1.0)),
            XAxis::Linear if x1 > x0 => (x0.min(0.0), x1 * 1.05),
            XAxis::Linear => (x0 - 1.0, x1 + 1.0),
        };
        let (ylo, yhi) = if self.y_log {
            log10_floor_ceil(y0, y1)
        } else {
            (0.0, if y1 > 0.0 { y1 * 1.1 } else { 1.0 })
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT, 20))
            .margin(12)
            .margin_right(40)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, ylo..yhi)
            .map_err(|x| e(&x))?;
        let x_fmt = |x: &f64| -> String {
            match &self.x_axis {
                XAxis::Linear | XAxis::Time => fmt_num(*x),
                XAxis::Nines => nines_label(*x),
                XAxis::Categories(c) => {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 {
                        c.get(i as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                }
            }
        };
        let y_fmt = |y: &f64| {
            if self.y_log {
                fmt_num(10f64.powf(*y))
            } else {
                fmt_num(*y)
            }
        };
        let x_labels = match &self.x_axis {
            XAxis::Categories(c) => c.len().max(1),
            XAxis::Nines => (x1 as usize) + 1,
            XAxis::Linear | XAxis::Time => 10,
        };
        let y_labels = if self.y_log {
            ((yhi - ylo) as usize + 1).max(2)
        } else {
            6
        };
        chart
            .configure_mesh()
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .x_labels(x_labels)
            .y_labels(y_labels)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(205, 205, 205))
            .draw()
            .map_err(|x| e(&x))?;
        let ty = |y: f64| if self.y_log { y.max(1e-9).log10() } else { y };
        for line in &self.lines {
            let pts: Vec<(f64, f64)> = line.points.iter().map(|p| (p.0, ty(p.1))).collect();
            let width = match line.stroke {
                Stroke::Solid(w) => w,
                Stroke::Dashed => 2,
            };
            let style = ShapeStyle::from(line.color).stroke_width(width);
            let dashed = line.stroke == Stroke::Dashed;
            if width == 0 {
                // Markers only (categories that a line would wrongly connect).
                let marker = ShapeStyle::from(line.color).filled();
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 5, marker)))
                    .map_err(|x| e(&x))?
                    .label(&line.label)
                    .legend(move |(x, y)| Circle::new((x + 12, y), 5, marker));
                continue;
            }
            let anno = if dashed {
                chart.draw_series(DashedLineSeries::new(pts.clone(), 7, 5, style))
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), style))
            }
            .map_err(|x| e(&x))?;
            anno.label(&line.label).legend(move |(x, y)| {
                if dashed {
                    EmptyElement::at((x, y))
                        + DashedPathElement::new(vec![(0, 0), (24, 0)], 6, 3, style)
                } else {
                    EmptyElement::at((x, y))
                        + DashedPathElement::new(vec![(0, 0), (24, 0)], 24, 1, style)
                }
            });
            if line.markers {
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 3, style.filled())))
                    .map_err(|x| e(&x))?;
            }
        }
        for (x, lo, hi, color) in &self.bars {
            let style = ShapeStyle::from(*color).stroke_width(2);
            chart
                .draw_series(LineSeries::new(vec![(*x, ty(*lo)), (*x, ty(*hi))], style))
                .map_err(|x| e(&x))?;
        }
        let mark_style = ShapeStyle::from(RGBColor(150, 40, 40)).stroke_width(1);
        let shown = self.marks.iter().filter(|(x, _)| (x0..=x1).contains(x));
        for (k, (x, label)) in shown.enumerate() {
            // Labels of nearby events step down so they do not print over each other.
            let label_y = yhi - (k % 3) as f64 * (yhi - ylo) * 0.05;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(*x, ylo), (*x, yhi)],
                    5,
                    4,
                    mark_style,
                ))
                .map_err(|x| e(&x))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (*x, label_y),
                    (FONT, 13).into_font().color(&RGBColor(150, 40, 40)),
                )))
                .map_err(|x| e(&x))?;
        }
        chart
            .configure_series_labels()
            .position(if self.legend_lower_right {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperLeft
            })
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|x| e(&x))?;
        Ok(())
    }
}

/// One or more charts stacked vertically in one image.
#[derive(Debug, Clone)]
struct Figure {
    panels: Vec<Chart>,
}

impl Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(|x| x.to_string())?;
        let areas = root.split_evenly((self.panels.len().max(1), 1));
        for (panel, area) in self.panels.iter().zip(&areas) {
            panel.draw_in(area)?;
        }
        root.present().map_err(|x| x.to_string())
    }

    /// Writes `<dir>/<stem>.png` and `<dir>/<stem>.svg`; returns the PNG path.
    fn save(&self, dir: &Path, stem: &str) -> Result<PathBuf, ReportError> {
        let png = dir.join(format!("{stem}.png"));
        let svg = dir.join(format!("{stem}.svg"));
        let size = (
            WIDTH,
            HEIGHT * self.panels.len().max(1) as u32 * 3 / 4 + HEIGHT / 4,
        );
        let chart_err = |path: &Path, message: String| ReportError::Chart {
            path: path.to_path_buf(),
            message,
        };
        {
            let root = BitMapBackend::new(&png, size).into_drawing_area();
            self.draw(&root).map_err(|m| chart_err(&png, m))?;
        }
        {
            let root = SVGBackend::new(&svg, size).into_drawing_area();
            self.draw(&root).map_err(|m| chart_err(&svg, m))?;
        }
        Ok(png)
    }
}

/// Picks a latency unit for values up to `max_us`: (divisor from µs, unit name).
fn latency_unit(max_us: f64) -> (f64, &'static str) {
    if max_us < 1_000.0 {
        (1.0, "µs")
    } else if max_us < 10_000_000.0 {
        (1_000.0, "ms")
    } else {
        (1_000_000.0, "s")
    }
}

/// The merged response and service histograms of one operation, and its interval series.
struct OpData {
    response: Histogram<u64>,
    service: Histogram<u64>,
    intervals: Vec<LoggedInterval>,
}

fn load_point(dir: &Path, p: &PointSummary) -> Result<BTreeMap<String, OpData>, ReportError> {
    let mut out = BTreeMap::new();
    for (op, rel) in &p.logs {
        let path = dir.join(rel);
        let mut intervals = read_log(&path).map_err(|e| ReportError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // Failed requests have their own histograms; the charts show answered requests.
        intervals.retain(|i| !i.failed);
        let mut response = new_hist().map_err(|e| super::io_err(&path, e))?;
        let mut service = new_hist().map_err(|e| super::io_err(&path, e))?;
        for i in &intervals {
            let target = if i.service {
                &mut service
            } else {
                &mut response
            };
            let _ = target.add(&i.hist);
        }
        out.insert(
            op.clone(),
            OpData {
                response,
                service,
                intervals,
            },
        );
    }
    Ok(out)
}

fn spectrum(p: &PointSummary, data: &BTreeMap<String, OpData>) -> Option<Chart> {
    let max_count = data.values().map(|d| d.response.len()).max().unwrap_or(0);
    if max_count == 0 {
        return None;
    }
    let x_max = (max_count as f64).log10().floor().clamp(1.0, 6.0);
    let max_us = data
        .values()
        .map(|d| d.response.max() as f64 / 1000.0)
        .fold(0.0, f64::max);
    let (div, unit) = latency_unit(max_us);
    let mut lines = Vec::new();
    for (op, d) in data {
        for (hist, service) in [(&d.response, false), (&d.service, true)] {
            if hist.is_empty() {
                continue;
            }
            let points = (0..=200)
                .map(|i| {
                    let x = x_max * i as f64 / 200.0;
                    let q = 1.0 - 10f64.powf(-x);
                    (x, hist.value_at_quantile(q) as f64 / 1000.0 / div)
                })
                .collect();
            lines.push(Line {
                label: format!("{op} {}", if service { "service" } else { "response" }),
                color: op_color(op),
                stroke: if service {
                    Stroke::Dashed
                } else {
                    Stroke::Solid(2)
                },
                markers: false,
                points,
            });
        }
    }
    Some(Chart {
        title: format!("Latency by percentile — {} {}", p.id, p.label),
        x_desc: "Percentile".into(),
        y_desc: format!("Latency ({unit}, log scale)"),
        y_log: true,
        x_axis: XAxis::Nines,
        lines,
        marks: Vec::new(),
        legend_lower_right: false,
        bars: Vec::new(),
    })
}

fn timeline(p: &PointSummary, data: &BTreeMap<String, OpData>) -> Option<Figure> {
    // Top: throughput of all operations per interval. Bottom: p99 per operation.
    let mut totals: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let mut max_p99_us: f64 = 0.0;
    for d in data.values() {
        // A short last interval (the drain after the window) would read as a spike.
        for i in d
            .intervals
            .iter()
            .filter(|i| !i.service && i.length_s >= MIN_TIMELINE_S)
        {
            let key = (i.start_s * 1000.0).round() as u64;
            let e = totals.entry(key).or_insert((i.start_s + i.length_s, 0.0));
            e.1 += i.hist.len() as f64 / i.length_s.max(1e-9);
            if !i.hist.is_empty() {
                max_p99_us = max_p99_us.max(i.hist.value_at_quantile(0.99) as f64 / 1000.0);
            }
        }
    }
    if totals.is_empty() {
        return None;
    }
    let (div, unit) = latency_unit(max_p99_us);
    let marks: Vec<(f64, String)> = p
        .events
        .iter()
        .filter_map(|e| {
            let node = e.node.as_deref().unwrap_or("");
            e.started_s.map(|t| (t, format!("{} {node}", e.action)))
        })
        .chain(p.autoscale.iter().flat_map(|a| {
            a.decisions.iter().map(|r| &r.decision).map(|d| {
                let node = d.node.as_deref().unwrap_or("");
                let failed = if d.error.is_some() { " failed" } else { "" };
                (
                    d.decided_s,
                    format!("scale {} {node}{failed}", d.action.as_str()),
                )
            })
        }))
        .collect();
    let throughput = Chart {
        title: format!("Throughput per second — {} {}", p.id, p.label),
        x_desc: "Time since the end of warm-up (s)".into(),
        y_desc: "Throughput (ops/s)".into(),
        y_log: false,
        x_axis: XAxis::Time,
        lines: std::iter::once(Line {
            label: "all operations".into(),
            color: RGBColor(60, 60, 60),
            stroke: Stroke::Solid(2),
            markers: totals.len() < 30,
            points: totals.values().copied().collect(),
        })
        .chain(offered_line(p))
        .collect(),
        marks: marks.clone(),
        legend_lower_right: false,
        bars: Vec::new(),
    };
    let mut lines = Vec::new();
    for (op, d) in data {
        let points: Vec<(f64, f64)> = d
            .intervals
            .iter()
            .filter(|i| !i.service && !i.hist.is_empty() && i.length_s >= MIN_TIMELINE_S)
            .map(|i| {
                (
                    i.start_s + i.length_s,
                    i.hist.value_at_quantile(0.99) as f64 / 1000.0 / div,
                )
            })
            .collect();
        if !points.is_empty() {
            lines.push(Line {
                label: format!("{op} p99"),
                color: op_color(op),
                stroke: Stroke::Solid(2),
                markers: points.len() < 30,
                points,
            });
        }
    }
    let p99 = Chart {
        title: "p99 response time per second".into(),
        x_desc: "Time since the end of warm-up (s)".into(),
        y_desc: format!("p99 response time ({unit})"),
        y_log: false,
        x_axis: XAxis::Time,
        lines,
        marks: marks.clone(),
        legend_lower_right: false,
        bars: Vec::new(),
    };
    let mut panels = vec![throughput, p99];
    if let Some(a) = &p.autoscale {
        let end = totals.values().map(|v| v.0).fold(p.duration_s, f64::max);
        panels.push(Chart {
            title: "Nodes in the ring (autoscaled)".into(),
            x_desc: "Time since the end of warm-up (s)".into(),
            y_desc: "Nodes".into(),
            y_log: false,
            x_axis: XAxis::Time,
            lines: vec![Line {
                label: "nodes".into(),
                color: RGBColor(30, 110, 60),
                stroke: Stroke::Solid(2),
                markers: false,
                points: super::autoscale::node_steps(a, end),
            }],
            marks,
            legend_lower_right: true,
            bars: Vec::new(),
        });
    }
    Some(Figure { panels })
}

/// An open loop's offered rate for the timeline (see [`offered_points`]); `None` for a closed
/// loop.
fn offered_line(p: &PointSummary) -> Option<Line> {
    let schedule = p.params.schedule()?;
    Some(Line {
        label: "offered".into(),
        color: RGBColor(150, 150, 150),
        stroke: Stroke::Dashed,
        markers: false,
        points: offered_points(&schedule, p.duration_s),
    })
}

/// The schedule's mean rate over each one-second interval of a measured window of
/// `duration_s`, at the interval's end: where the timeline plots the measured throughput of
/// that interval, so a target that keeps up draws the same line.
fn offered_points(schedule: &RateSchedule, duration_s: f64) -> Vec<(f64, f64)> {
    // The intervals the throughput line draws: a last one shorter than MIN_TIMELINE_S is left
    // off.
    let seconds = (duration_s - MIN_TIMELINE_S)
        .ceil()
        .clamp(1.0, f64::from(MAX_TIMELINE_POINTS)) as u32;
    let window = duration_s.max(1e-3);
    (1..=seconds)
        .map(|k| {
            let end = f64::from(k).min(window);
            let begin = f64::from(k - 1).min(end);
            (end, schedule.mean_rate(begin, end))
        })
        .collect()
}

/// A sweep dimension a "latency vs" chart can be drawn against.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dim {
    ValueSize,
    Quorum,
    Replication,
    Nodes,
    Keys,
}

impl Dim {
    fn key(self, p: &PointSummary) -> (u64, u64) {
        match self {
            Dim::ValueSize => (p.params.value_bytes, 0),
            Dim::Quorum => (
                u64::from(p.params.write_quorum),
                u64::from(p.params.read_quorum),
            ),
            Dim::Replication => (u64::from(p.params.replication), 0),
            Dim::Nodes => (u64::from(p.params.nodes), 0),
            Dim::Keys => (p.params.keys.unwrap_or(0), 0),
        }
    }
    fn label(self, k: (u64, u64)) -> String {
        match self {
            Dim::ValueSize => crate::workload::ByteSize(k.0).to_string(),
            Dim::Quorum => format!("W={} R={}", k.0, k.1),
            Dim::Replication => format!("N={}", k.0),
            Dim::Nodes => format!("{} nodes", k.0),
            Dim::Keys => format!("{} keys", k.0),
        }
    }
    fn stem(self) -> &'static str {
        match self {
            Dim::ValueSize => "latency-vs-value-size",
            Dim::Quorum => "latency-vs-quorum",
            Dim::Replication => "latency-vs-replication",
            Dim::Nodes => "latency-vs-nodes",
            Dim::Keys => "latency-vs-keys",
        }
    }
    fn desc(self) -> &'static str {
        match self {
            Dim::ValueSize => "Value size (bytes)",
            Dim::Quorum => "Write and read quorum (W, R)",
            Dim::Replication => "Replication factor N",
            Dim::Nodes => "Cluster size",
            Dim::Keys => "Distinct keys",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Dim::ValueSize => "Response time vs value size",
            Dim::Quorum => "Response time vs quorum settings",
            Dim::Replication => "Response time vs replication factor",
            Dim::Nodes => "Response time vs cluster size",
            Dim::Keys => "Response time vs key count",
        }
    }
}

/// Everything about a point except `dim` (and the label), used to group points into lines.
fn rest_key(p: &PointSummary, dim: Option<Dim>) -> String {
    let q = &p.params;
    let mut parts = Vec::new();
    if dim != Some(Dim::ValueSize) {
        parts.push(format!("value={}", q.values));
    }
    if dim != Some(Dim::Quorum) {
        parts.push(format!("W={} R={}", q.write_quorum, q.read_quorum));
    }
    if dim != Some(Dim::Replication) {
        parts.push(format!("N={}", q.replication));
    }
    if dim != Some(Dim::Nodes) {
        parts.push(format!("nodes={}", q.nodes));
    }
    if dim != Some(Dim::Keys)
        && let Some(k) = q.keys
    {
        parts.push(format!("keys={k}"));
    }
    if dim.is_some() {
        if let Some(s) = q.schedule() {
            parts.push(format!("rate={}", s.label()));
        }
        if let Some(c) = q.concurrency {
            parts.push(format!("conc={c}"));
        }
    }
    parts.join(" ")
}

fn versus(summary: &Summary, dim: Dim) -> Vec<(String, Chart)> {
    let mut distinct: Vec<(u64, u64)> = summary.points.iter().map(|p| dim.key(p)).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 2 {
        return Vec::new();
    }
    let mut groups: BTreeMap<String, Vec<&PointSummary>> = BTreeMap::new();
    for p in &summary.points {
        groups.entry(rest_key(p, Some(dim))).or_default().push(p);
    }
    let multi = groups.len() > 1;
    let mut charts = Vec::new();
    for (gi, (rest, points)) in groups.iter().enumerate() {
        let max_us = points
            .iter()
            .flat_map(|p| p.ops.values().map(|o| o.response.p999_us))
            .fold(0.0, f64::max);
        let (div, unit) = latency_unit(max_us);
        let mut ops: Vec<&String> = points.iter().flat_map(|p| p.ops.keys()).collect();
        ops.sort();
        ops.dedup();
        let mut lines = Vec::new();
        for op in ops {
            for (name, stroke) in [
                ("p50", Stroke::Solid(1)),
                ("p99", Stroke::Solid(3)),
                ("p99.9", Stroke::Dashed),
            ] {
                let pts: Vec<(f64, f64)> = points
                    .iter()
                    .filter_map(|p| {
                        let o = p.ops.get(op.as_str())?;
                        let x = distinct.iter().position(|k| *k == dim.key(p))? as f64;
                        let v = match name {
                            "p50" => o.response.p50_us,
                            "p99" => o.response.p99_us,
                            _ => o.response.p999_us,
                        };
                        Some((x, v / div))
                    })
                    .collect();
                if !pts.is_empty() {
                    lines.push(Line {
                        label: format!("{op} {name}"),
                        color: op_color(op),
                        stroke,
                        markers: true,
                        points: pts,
                    });
                }
            }
        }
        let title = if multi {
            format!("{} ({rest})", dim.title())
        } else {
            dim.title().into()
        };
        let stem = if multi {
            format!("{}-{gi}", dim.stem())
        } else {
            dim.stem().into()
        };
        charts.push((
            stem,
            Chart {
                title,
                x_desc: dim.desc().into(),
                y_desc: format!("Response time ({unit}, log scale)"),
                y_log: true,
                x_axis: XAxis::Categories(distinct.iter().map(|k| dim.label(*k)).collect()),
                lines,
                marks: Vec::new(),
                legend_lower_right: false,
                bars: Vec::new(),
            },
        ));
    }
    charts
}

fn capacity(summary: &Summary) -> Option<Chart> {
    let mut groups: BTreeMap<String, Vec<&PointSummary>> = BTreeMap::new();
    for p in &summary.points {
        groups.entry(rest_key(p, None)).or_default().push(p);
    }
    if !groups.values().any(|g| g.len() >= 2) {
        return None;
    }
    let max_us = summary
        .points
        .iter()
        .flat_map(|p| p.ops.values().map(|o| o.response.p99_us))
        .fold(0.0, f64::max);
    let (div, unit) = latency_unit(max_us);
    let multi = groups.len() > 1;
    let mut lines = Vec::new();
    for (rest, points) in &groups {
        if points.len() < 2 {
            continue;
        }
        let mut ops: Vec<&String> = points.iter().flat_map(|p| p.ops.keys()).collect();
        ops.sort();
        ops.dedup();
        for op in ops {
            let mut pts: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|p| {
                    p.ops
                        .get(op.as_str())
                        .map(|o| (p.achieved_rate, o.response.p99_us / div))
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            lines.push(Line {
                label: if multi {
                    format!("{op} p99 ({rest})")
                } else {
                    format!("{op} p99")
                },
                color: op_color(op),
                stroke: Stroke::Solid(2),
                markers: true,
                points: pts,
            });
        }
    }
    Some(Chart {
        title: "p99 response time vs achieved throughput".into(),
        x_desc: "Achieved throughput (ops/s, all operations)".into(),
        y_desc: format!("p99 response time ({unit}, log scale)"),
        y_log: true,
        x_axis: XAxis::Linear,
        lines,
        marks: Vec::new(),
        legend_lower_right: false,
        bars: Vec::new(),
    })
}

/// Draws every chart of a results folder into `dir/charts/`; returns the PNG paths relative to
/// `dir`.
pub fn draw_all(dir: &Path, summary: &Summary) -> Result<Vec<PathBuf>, ReportError> {
    if !ensure_font() {
        return Err(ReportError::Chart {
            path: dir.join("charts"),
            message: "the embedded DejaVu font could not be loaded".into(),
        });
    }
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|e| super::io_err(&charts_dir, e))?;
    let mut written = Vec::new();
    let mut spreads = Vec::new();
    let mut push = |figure: Figure, stem: &str| -> Result<(), ReportError> {
        let png = figure.save(&charts_dir, stem)?;
        written.push(png.strip_prefix(dir).map(Path::to_path_buf).unwrap_or(png));
        Ok(())
    };
    for dim in [
        Dim::ValueSize,
        Dim::Quorum,
        Dim::Replication,
        Dim::Nodes,
        Dim::Keys,
    ] {
        for (stem, chart) in versus(summary, dim) {
            push(
                Figure {
                    panels: vec![chart],
                },
                &stem,
            )?;
        }
    }
    for (chart, stem) in [
        (capacity(summary), "latency-vs-throughput"),
        (slo::capacity_slo(summary), "capacity-slo"),
        (consistency::visibility(summary), "consistency-vs-time"),
        (consistency::stale_rates(summary), "stale-rate-vs-quorum"),
    ] {
        if let Some(chart) = chart {
            push(
                Figure {
                    panels: vec![chart],
                },
                stem,
            )?;
        }
    }
    for p in &summary.points {
        let data = load_point(dir, p)?;
        if let Some(chart) = spectrum(p, &data) {
            push(
                Figure {
                    panels: vec![chart],
                },
                &format!("spectrum-{}", p.id),
            )?;
        }
        if let Some(figure) = timeline(p, &data) {
            push(figure, &format!("timeline-{}", p.id))?;
        }
        let panels = run_spread(p);
        if !panels.is_empty() {
            let png = charts_dir.join(format!("runs-{}.png", p.id));
            draw_interval_chart(&png, &panels)?;
            spreads.push(png.strip_prefix(dir).map(Path::to_path_buf).unwrap_or(png));
        }
    }
    written.extend(spreads);
    Ok(written)
}

/// With repeated runs: per operation, the median of p50 and p99 over runs with a bar from the
/// fastest to the slowest run, and the same for CPU per operation.
fn run_spread(p: &PointSummary) -> Vec<IntervalPanel> {
    if p.runs.len() < 2 {
        return Vec::new();
    }
    let spread = |xs: Vec<f64>| -> Interval {
        let m = crate::stats::median(&xs).unwrap_or(0.0);
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (
            m,
            if lo.is_finite() { lo } else { m },
            if hi.is_finite() { hi } else { m },
        )
    };
    let ops: Vec<String> = p.ops.keys().cloned().collect();
    let label = format!("median, bar: fastest to slowest of {} runs", p.runs.len());
    let mut panels = Vec::new();
    for (name, get) in [
        (
            "p50",
            (|o: &super::OpSummary| o.response.p50_us) as fn(&super::OpSummary) -> f64,
        ),
        ("p99", |o| o.response.p99_us),
    ] {
        let values: Vec<Interval> = ops
            .iter()
            .map(|op| {
                spread(
                    p.runs
                        .iter()
                        .filter_map(|r| r.ops.get(op).map(|o| get(o) / 1000.0))
                        .collect(),
                )
            })
            .collect();
        panels.push(IntervalPanel {
            title: format!("{} {name} response time over runs ({})", p.id, p.label),
            y_desc: format!("{name} (ms)"),
            categories: ops.clone(),
            series: vec![(label.clone(), values)],
            marks: Vec::new(),
        });
    }
    let cpu: Vec<(String, Vec<f64>)> = [
        (
            "node CPU",
            (|r: &crate::resources::Resources| r.node_cpu_us_per_op)
                as fn(&crate::resources::Resources) -> Option<f64>,
        ),
        ("loadgen CPU", |r| Some(r.loadgen_cpu_us_per_op)),
    ]
    .into_iter()
    .filter_map(|(name, get)| {
        let xs: Option<Vec<f64>> = p
            .runs
            .iter()
            .map(|r| r.resources.as_ref().and_then(get))
            .collect();
        xs.map(|xs| (name.to_string(), xs))
    })
    .collect();
    if !cpu.is_empty() {
        panels.push(IntervalPanel {
            title: format!("{} CPU per operation over runs", p.id),
            y_desc: "µs per operation".into(),
            categories: cpu.iter().map(|(n, _)| n.clone()).collect(),
            series: vec![(label, cpu.into_iter().map(|(_, xs)| spread(xs)).collect())],
            marks: Vec::new(),
        });
    }
    panels
}

/// A median with its interval: (median, low, high).
pub type Interval = (f64, f64, f64);

/// One panel of an interval chart: per category, a median and its interval for each series.
#[derive(Debug, Clone)]
pub struct IntervalPanel {
    /// Panel title.
    pub title: String,
    /// Y axis description.
    pub y_desc: String,
    /// One label per x position.
    pub categories: Vec<String>,
    /// (series label, one (median, low, high) per category).
    pub series: Vec<(String, Vec<Interval>)>,
    /// Vertical markers between categories (x in category units), with labels.
    pub marks: Vec<(f64, String)>,
}

const SERIES_COLORS: [RGBColor; 2] = [RGBColor(90, 90, 90), RGBColor(200, 30, 40)];

/// Draws panels of medians with interval bars (e.g. baseline against candidate) to `png` and an
/// SVG beside it.
pub fn draw_interval_chart(png: &Path, panels: &[IntervalPanel]) -> Result<(), ReportError> {
    if !ensure_font() {
        return Err(ReportError::Chart {
            path: png.to_path_buf(),
            message: "the embedded DejaVu font could not be loaded".into(),
        });
    }
    let mut charts = Vec::new();
    for panel in panels {
        let n = panel.series.len().max(1) as f64;
        let mut lines = Vec::new();
        let mut bars = Vec::new();
        for (k, (label, values)) in panel.series.iter().enumerate() {
            let color = SERIES_COLORS
                .get(k % SERIES_COLORS.len())
                .copied()
                .unwrap_or(BLACK);
            let offset = (k as f64 - (n - 1.0) / 2.0) * 0.15;
            let points: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .map(|(i, (m, _, _))| (i as f64 + offset, *m))
                .collect();
            for (i, (_, lo, hi)) in values.iter().enumerate() {
                bars.push((i as f64 + offset, *lo, *hi, color));
            }
            lines.push(Line {
                label: label.clone(),
                color,
                stroke: Stroke::Solid(0),
                markers: true,
                points,
            });
        }
        charts.push(Chart {
            title: panel.title.clone(),
            x_desc: String::new(),
            y_desc: panel.y_desc.clone(),
            y_log: false,
            x_axis: XAxis::Categories(panel.categories.clone()),
            lines,
            marks: panel.marks.clone(),
            legend_lower_right: false,
            bars,
        });
    }
    if charts.is_empty() {
        return Ok(());
    }
    let figure = Figure { panels: charts };
    let dir = png.parent().unwrap_or(Path::new("."));
    let stem = png
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "compare".into());
    std::fs::create_dir_all(dir).map_err(|e| super::io_err(dir, e))?;
    figure.save(dir, &stem)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_labels_read_as_percentiles() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(5.0), "99.999%");
    }

    #[test]
    fn the_offered_line_is_the_schedules_mean_per_second() {
        use crate::workload::RateStep;
        let step = |at_s, rate, ramp| RateStep { at_s, rate, ramp };
        // 200 ops/s rising to 2000 over 2 s, held for 1 s, then 500.
        let schedule = RateSchedule::new(vec![
            step(0.0, 200.0, false),
            step(2.0, 2000.0, true),
            step(3.0, 500.0, false),
        ])
        .unwrap();
        let points = offered_points(&schedule, 4.01);
        let want = [(1.0, 650.0), (2.0, 1550.0), (3.0, 2000.0), (4.0, 500.0)];
        assert_eq!(points.len(), want.len());
        for ((x, y), (wx, wy)) in points.iter().zip(want) {
            assert_eq!(*x, wx);
            assert!((y - wy).abs() < 1e-9, "{x}: {y} != {wy}");
        }
        // A constant rate is a flat line.
        let flat = offered_points(&RateSchedule::constant(5000.0).unwrap(), 2.0);
        assert_eq!(flat, vec![(1.0, 5000.0), (2.0, 5000.0)]);
    }

    #[test]
    fn numbers_are_labelled_compactly() {
        assert_eq!(fmt_num(1000.0), "1000");
        assert_eq!(fmt_num(25_000.0), "25k");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(2.0), "2");
    }
}
