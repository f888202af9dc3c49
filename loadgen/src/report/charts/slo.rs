//! `capacity-slo`: the capacity curve of a search — p50, p99 and p99.9 response time against
//! the offered rate of every step, the SLO's bounds as horizontal lines, and the highest rate
//! that met the SLO marked.

use plotters::style::RGBColor;

use super::{Chart, Line, Stroke, XAxis, latency_unit, op_color};
use crate::report::{PointSummary, Summary};
use crate::workload::rate::fmt_rate;

/// The colour of the SLO's bounds.
const SLO_COLOR: RGBColor = RGBColor(150, 40, 40);

/// The chart, when the summary has a search with at least one step.
pub(super) fn capacity_slo(summary: &Summary) -> Option<Chart> {
    let search = summary.search.as_ref()?;
    let mut steps: Vec<(f64, &PointSummary)> = search
        .steps
        .iter()
        .filter_map(|s| {
            let p = summary.points.iter().find(|p| p.id == s.point)?;
            Some((s.rate, p))
        })
        .collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bounds = &search.latency_bounds_us;
    let max_us = steps
        .iter()
        .flat_map(|(_, p)| p.ops.values().map(|o| o.response.p999_us))
        .chain(bounds.values().copied())
        .fold(0.0, f64::max);
    let (div, unit) = latency_unit(max_us);
    let mut ops: Vec<&String> = steps.iter().flat_map(|(_, p)| p.ops.keys()).collect();
    ops.sort();
    ops.dedup();
    let mut lines = Vec::new();
    for op in ops {
        for (name, stroke) in [
            ("p50", Stroke::Solid(1)),
            ("p99", Stroke::Solid(3)),
            ("p99.9", Stroke::Dashed),
        ] {
            let points: Vec<(f64, f64)> = steps
                .iter()
                .filter_map(|(rate, p)| {
                    let o = p.ops.get(op.as_str())?;
                    let v = match name {
                        "p50" => o.response.p50_us,
                        "p99" => o.response.p99_us,
                        _ => o.response.p999_us,
                    };
                    Some((*rate, v / div))
                })
                .collect();
            lines.push(Line {
                label: format!("{op} {name}"),
                color: op_color(op),
                stroke,
                markers: true,
                points,
            });
        }
    }
    let right = steps.last().map_or(1.0, |s| s.0) * 1.05;
    for (name, &bound_us) in bounds {
        lines.push(Line {
            label: format!("SLO {name} {}", fmt_ms(bound_us)),
            color: SLO_COLOR,
            stroke: Stroke::Dashed,
            markers: false,
            points: vec![(0.0, bound_us / div), (right, bound_us / div)],
        });
    }
    let marks = search
        .highest_passing_rate
        .map(|r| vec![(r, format!("highest passing: {} ops/s", fmt_rate(r)))])
        .unwrap_or_default();
    Some(Chart {
        title: format!("Capacity under the SLO ({})", search.slo),
        x_desc: "Offered rate (ops/s)".into(),
        y_desc: format!("Response time ({unit}, log scale)"),
        y_log: true,
        x_axis: XAxis::Linear,
        lines,
        marks,
        bars: Vec::new(),
        legend_lower_right: false,
    })
}

fn fmt_ms(us: f64) -> String {
    crate::workload::DurationSpec(std::time::Duration::from_secs_f64(us / 1e6)).to_string()
}
