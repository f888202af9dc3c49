//! The consistency charts: the probability that a read is consistent against the time since
//! its key's last acknowledged write (measured, one line per point, with PBS's WARS curve
//! from the replica round trips the nodes measured dashed beside it, and the t = 0
//! prediction at the left edge), and the stale rate of every point beside the predictions.

use plotters::style::RGBColor;

use super::{Chart, Line, Stroke, XAxis};
use crate::report::{PointSummary, Summary};

/// A colour per point, cycling.
fn point_color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(230, 110, 0),
        RGBColor(44, 160, 44),
        RGBColor(200, 30, 40),
        RGBColor(148, 103, 189),
        RGBColor(90, 90, 90),
    ];
    COLORS[i % COLORS.len()]
}

fn short_label(p: &PointSummary) -> String {
    let q = &p.params;
    format!("W{} R{}", q.write_quorum, q.read_quorum)
}

/// Label of a curve bin by its upper edge.
fn bin_label(t_upper_ms: Option<f64>) -> String {
    match t_upper_ms {
        Some(t) if t < 1.0 => format!("≤{:.0}µs", t * 1000.0),
        Some(t) if t < 1000.0 => format!("≤{t}ms"),
        Some(t) => format!("≤{}s", t / 1000.0),
        None => ">5s".into(),
    }
}

/// P(consistent) against time since the key's last acknowledged write, per point.
pub(super) fn visibility(summary: &Summary) -> Option<Chart> {
    let points: Vec<&PointSummary> = summary
        .points
        .iter()
        .filter(|p| {
            p.consistency
                .as_ref()
                .is_some_and(|c| !c.measured.curve.is_empty())
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    let mut edges: Vec<Option<f64>> = crate::consistency::CURVE_EDGES_US
        .iter()
        .map(|&e| (e != u64::MAX).then(|| e as f64 / 1000.0))
        .collect();
    // Only the bins some point has reads in.
    edges.retain(|e| {
        points.iter().any(|p| {
            p.consistency
                .as_ref()
                .is_some_and(|c| c.measured.curve.iter().any(|b| b.t_upper_ms == *e))
        })
    });
    let mut lines = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let Some(c) = &p.consistency else { continue };
        let color = point_color(i);
        let pts: Vec<(f64, f64)> = edges
            .iter()
            .enumerate()
            .filter_map(|(x, e)| {
                let b = c.measured.curve.iter().find(|b| b.t_upper_ms == *e)?;
                (b.reads > 0).then(|| (x as f64, 1.0 - b.stale as f64 / b.reads as f64))
            })
            .collect();
        lines.push(Line {
            label: format!("{} measured", short_label(p)),
            color,
            stroke: Stroke::Solid(2),
            markers: true,
            points: pts,
        });
        let wars: Vec<(f64, f64)> = edges
            .iter()
            .enumerate()
            .filter_map(|(x, e)| {
                let p = c.pbs_wars_curve.iter().find(|p| p.t_upper_ms == *e)?;
                Some((x as f64, p.p_consistent))
            })
            .collect();
        if !wars.is_empty() {
            lines.push(Line {
                label: format!("{} PBS WARS (measured legs)", short_label(p)),
                color,
                stroke: Stroke::Dashed,
                markers: false,
                points: wars,
            });
        }
        if let Some(pred) = c.pbs_stale_rate_t0 {
            lines.push(Line {
                label: format!("{} PBS at t = 0", short_label(p)),
                color,
                stroke: Stroke::Solid(0),
                markers: false,
                points: vec![(0.0, 1.0 - pred)],
            });
        }
    }
    Some(Chart {
        title: "Probability a read is consistent vs time since the write's ack".into(),
        x_desc: "Time from the key's last acknowledged write to the read's start".into(),
        y_desc: "P(consistent)".into(),
        y_log: false,
        x_axis: XAxis::Categories(edges.into_iter().map(bin_label).collect()),
        lines,
        marks: Vec::new(),
        legend_lower_right: true,
        bars: Vec::new(),
    })
}

/// Stale rate per point: measured, ringkv's t = 0 prediction and PBS's closed form.
pub(super) fn stale_rates(summary: &Summary) -> Option<Chart> {
    let points: Vec<&PointSummary> = summary
        .points
        .iter()
        .filter(|p| p.consistency.is_some())
        .collect();
    if points.len() < 2 {
        return None;
    }
    let series = |f: fn(&crate::report::ConsistencySummary) -> Option<f64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .enumerate()
            .filter_map(|(x, p)| Some((x as f64, f(p.consistency.as_ref()?)?)))
            .collect()
    };
    let lines = vec![
        Line {
            label: "measured".into(),
            color: RGBColor(31, 119, 180),
            stroke: Stroke::Solid(0),
            markers: false,
            points: series(|c| c.measured.stale_rate),
        },
        Line {
            label: "predicted, t = 0 (ringkv's replica choice)".into(),
            color: RGBColor(230, 110, 0),
            stroke: Stroke::Solid(0),
            markers: false,
            points: series(|c| c.pbs_stale_rate_t0),
        },
        Line {
            label: "PBS WARS, t = 0 (legs measured in the run)".into(),
            color: RGBColor(44, 160, 44),
            stroke: Stroke::Solid(0),
            markers: false,
            points: series(|c| c.pbs_wars_stale_rate_t0),
        },
        Line {
            label: "PBS closed form, t = 0".into(),
            color: RGBColor(90, 90, 90),
            stroke: Stroke::Solid(0),
            markers: false,
            points: series(|c| c.pbs_closed_form_t0),
        },
    ];
    Some(Chart {
        title: "Stale reads vs quorum settings".into(),
        x_desc: "Point".into(),
        y_desc: "Fraction of checked reads that were stale".into(),
        y_log: false,
        x_axis: XAxis::Categories(points.iter().map(|p| short_label(p)).collect()),
        lines,
        marks: Vec::new(),
        legend_lower_right: false,
        bars: Vec::new(),
    })
}
