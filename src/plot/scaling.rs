//! When any result is a thread sweep: ops/s per thread count with its confidence
//! interval, against linear scaling from the smallest count.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{color, draw_legend, err};
use crate::result::BenchResult;
use crate::stats::{estimate, linear_scaling};

#[derive(Debug, Clone)]
pub struct ScalingSeries {
    pub label: String,
    /// (threads, mean ops/s, 95% CI half-width)
    pub points: Vec<(f64, f64, f64)>,
}

/// Mean ops/s per thread count, when the result is a sweep over at least two counts.
pub(super) fn collect(r: &BenchResult, label: &str) -> Option<ScalingSeries> {
    let mut points = Vec::new();
    for case in &r.sweep {
        let Some(threads) = case.params.threads.map(|t| t as f64) else {
            continue;
        };
        let ops: Vec<f64> = case.runs.iter().map(|r| r.ops_per_sec).collect();
        if let Some(e) = estimate(&ops) {
            points.push((threads, e.mean, e.ci95.unwrap_or(0.0)));
        }
    }
    if points.len() < 2 {
        return None;
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(ScalingSeries {
        label: label.to_string(),
        points,
    })
}

pub(super) fn draw_scaling<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[ScalingSeries],
) -> Result<()> {
    let xmax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    // Room for the error bars and for the linear-scaling line.
    let ymax = series
        .iter()
        .flat_map(|s| {
            let (t0, ops0, _) = s.points[0];
            s.points
                .iter()
                .map(move |p| (p.1 + p.2).max(linear_scaling(t0, ops0, p.0)))
        })
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Throughput by thread count (mean, 95% CI)",
            ("sans-serif", 24),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..xmax * 1.05 + 0.5, 0.0..ymax * 1.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("ops/s")
        .x_label_formatter(&|x| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|p| (p.0, p.1)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2)));
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 4, c.filled())),
            )
            .map_err(err)?;
        // Linear scaling from the smallest thread count, for the eye to measure against.
        let (t0, ops0, _) = s.points[0];
        let ideal = c.mix(0.45).stroke_width(1);
        chart
            .draw_series(LineSeries::new(
                s.points
                    .iter()
                    .map(|p| (p.0, linear_scaling(t0, ops0, p.0))),
                ideal,
            ))
            .map_err(err)?
            .label(format!(
                "{}: linear from {t0} thread{}",
                s.label,
                if t0 == 1.0 { "" } else { "s" }
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], ideal));
        // The confidence interval as a vertical line through each point.
        chart
            .draw_series(s.points.iter().filter(|p| p.2 > 0.0).map(|p| {
                PathElement::new(vec![(p.0, p.1 - p.2), (p.0, p.1 + p.2)], c.stroke_width(2))
            }))
            .map_err(err)?;
    }
    draw_legend(&mut chart)
}
