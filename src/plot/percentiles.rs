//! The latency percentile distribution of every result and sweep case, x axis 1/(1-p)
//! on a log scale as HdrHistogram's plotter draws it.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{color, decades, draw_legend, err, us_label};
use crate::compare::Input;
use crate::export::hgrm::percentile_lines;
use crate::export::{merged_histogram, select};

/// One curve of the percentile panel: (1/(1-p), latency in us).
#[derive(Debug, Clone)]
pub struct PercentileSeries {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One curve per case of the result (plain runs count as one case).
pub(super) fn collect(input: &Input, label: &str) -> Result<Vec<PercentileSeries>> {
    let r = &input.result;
    let mut out = Vec::new();
    let mut cases: Vec<Option<&str>> = Vec::new();
    if !r.runs.is_empty() {
        cases.push(None);
    }
    cases.extend(r.sweep.iter().map(|c| Some(c.label.as_str())));
    for case in cases {
        let sel = select(r, &input.path, case, None)?;
        let h = merged_histogram(&sel, &input.path)?;
        let points: Vec<(f64, f64)> = percentile_lines(&h, 5)
            .into_iter()
            .filter(|l| !l.last)
            .map(|l| {
                (
                    1.0 / (1.0 - l.percentile),
                    (l.value as f64 / 1000.0).max(1e-3),
                )
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let mut series_label = label.to_string();
        if let Some(c) = case {
            series_label.push_str(&format!(" [{c}]"));
        }
        if !r.valid || r.interrupted {
            series_label.push_str(" (not evidence)");
        }
        out.push(PercentileSeries {
            label: series_label,
            points,
        });
    }
    Ok(out)
}

/// Percentile label of x = 1/(1-p): 1 -> 0%, 10 -> 90%, 1000 -> 99.9%.
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{p:.5}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

pub(super) fn draw_percentiles<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[PercentileSeries],
) -> Result<()> {
    let xmax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(10.0, f64::max);
    let (ylo, yhi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold((f64::MAX, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (_, xhi, xdecades) = decades(1.0, xmax);
    let (ylo, yhi, ydecades) = decades(ylo, yhi);
    let mut chart = ChartBuilder::on(area)
        .caption("Latency by percentile", ("sans-serif", 24))
        .margin(12)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0..xhi).log_scale(), (ylo..yhi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(xdecades + 1)
        .y_labels(ydecades + 1)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| us_label(*y))
        .x_desc("percentile")
        .y_desc("latency per operation")
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2)));
    }
    draw_legend(&mut chart)
}
