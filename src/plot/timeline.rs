//! When any result's timeline has disturber actions: p99 per 100 ms of the first run of
//! every result, with the split/collapse/swap/fork actions marked under the curves.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{color, decades, draw_legend, err, us_label};
use crate::result::BenchResult;

#[derive(Debug, Clone)]
pub struct TimelineSeries {
    pub label: String,
    /// (seconds, p99 in us)
    pub p99: Vec<(f64, f64)>,
    /// disturber name -> seconds of the intervals in which it acted
    pub actions: Vec<(String, Vec<f64>)>,
}

/// p99 per 100 ms of the first run (of the first case): one run, so intervals line up.
pub(super) fn collect(r: &BenchResult, label: &str) -> Option<TimelineSeries> {
    let first_run = match r.runs.first() {
        Some(run) => Some((None, run)),
        None => r
            .sweep
            .first()
            .and_then(|c| c.runs.first().map(|run| (Some(c.label.as_str()), run))),
    };
    let (case, run) = first_run.filter(|(_, run)| !run.timeline.is_empty())?;
    let mut actions: Vec<(String, Vec<f64>)> = Vec::new();
    for p in &run.timeline {
        for (name, count) in &p.disturb_actions {
            if *count == 0 {
                continue;
            }
            let t = p.t_ms as f64 / 1000.0;
            match actions.iter_mut().find(|(n, _)| n == name) {
                Some((_, ts)) => ts.push(t),
                None => actions.push((name.clone(), vec![t])),
            }
        }
    }
    Some(TimelineSeries {
        label: match case {
            Some(c) => format!("{label} [{c}] run {}", run.repeat),
            None => format!("{label} run {}", run.repeat),
        },
        p99: run
            .timeline
            .iter()
            .map(|p| (p.t_ms as f64 / 1000.0, (p.p99_ns as f64 / 1000.0).max(1e-3)))
            .collect(),
        actions,
    })
}

pub(super) fn draw_timeline<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[TimelineSeries],
) -> Result<()> {
    let tmax = series
        .iter()
        .flat_map(|s| s.p99.iter().map(|p| p.0))
        .fold(0.1, f64::max)
        + 0.1;
    let (ylo, yhi) = series
        .iter()
        .flat_map(|s| s.p99.iter().map(|p| p.1))
        .fold((f64::MAX, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (ylo, yhi, ydecades) = decades(ylo, yhi);
    // A lane under the curves for each disturber's marks: one decade of room.
    let mut names: Vec<&str> = series
        .iter()
        .flat_map(|s| s.actions.iter().map(|(n, _)| n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let floor = ylo / 10.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "p99 latency per 100 ms, disturber actions marked below",
            ("sans-serif", 24),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..tmax, (floor..yhi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .y_labels(ydecades + 2)
        .y_label_formatter(&|y| us_label(*y))
        .x_desc("seconds into the run")
        .y_desc("p99 latency")
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(s.p99.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2)));
    }
    // Marks: series i, disturber k -> a row of ticks in the bottom decade.
    let rows = (series.len() * names.len()).max(1) as f64;
    let mut row = 0.0;
    for (i, s) in series.iter().enumerate() {
        for (k, name) in names.iter().enumerate() {
            row += 1.0;
            let Some((_, times)) = s.actions.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let y = floor * 10f64.powf(row / (rows + 1.0));
            let c = color(i);
            let marker_name = format!("{} actions: {}", name, s.label);
            let shape = k % 3;
            let points: Vec<(f64, f64)> = times.iter().map(|t| (*t, y)).collect();
            let anno = match shape {
                0 => chart.draw_series(
                    points
                        .iter()
                        .map(|p| TriangleMarker::new(*p, 5, c.filled())),
                ),
                1 => chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled()))),
                _ => chart.draw_series(points.iter().map(|p| Cross::new(*p, 4, c.stroke_width(2)))),
            }
            .map_err(err)?;
            anno.label(marker_name).legend(move |(x, y)| match shape {
                0 => TriangleMarker::new((x + 12, y), 5, c.filled()).into_dyn(),
                1 => Circle::new((x + 12, y), 4, c.filled()).into_dyn(),
                _ => Cross::new((x + 12, y), 4, c.stroke_width(2)).into_dyn(),
            });
        }
    }
    draw_legend(&mut chart)
}
