//! When any result has `pin_cost`: per pair, the cost of per-I/O pinning per base page
//! with its 95% interval as whiskers, one series per result.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{color, draw_legend, err};
use crate::result::BenchResult;

#[derive(Debug, Clone)]
pub struct PinCostSeries {
    pub label: String,
    /// (pair label, ns per page, interval [lo, hi] when the repeats give one)
    pub pairs: Vec<(String, f64, Option<[f64; 2]>)>,
}

pub(super) fn collect(r: &BenchResult, label: &str) -> Option<PinCostSeries> {
    if r.pin_cost.is_empty() {
        return None;
    }
    Some(PinCostSeries {
        label: label.to_string(),
        pairs: r
            .pin_cost
            .iter()
            .map(|p| (p.label.clone(), p.ns_per_page, p.ci95_ns_per_page))
            .collect(),
    })
}

pub(super) fn draw_pin_cost<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[PinCostSeries],
) -> Result<()> {
    let mut pairs: Vec<String> = Vec::new();
    for s in series {
        for (p, _, _) in &s.pairs {
            if !pairs.contains(p) {
                pairs.push(p.clone());
            }
        }
    }
    let top = |v: &(String, f64, Option<[f64; 2]>)| v.2.map_or(v.1, |ci| ci[1].max(v.1));
    let bottom = |v: &(String, f64, Option<[f64; 2]>)| v.2.map_or(v.1, |ci| ci[0].min(v.1));
    let all = || series.iter().flat_map(|s| s.pairs.iter());
    let ymax = all().map(top).fold(1.0, f64::max);
    // A pin cost can come out negative within noise: show it, not clip it.
    let ymin = all().map(bottom).fold(0.0, f64::min);
    let n = pairs.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Pin cost per base page: per-I/O pins minus registered buffers (mean, 95% CI)",
            ("sans-serif", 24),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..n - 0.5, ymin * 1.1..ymax * 1.1)
        .map_err(err)?;
    let names = pairs.clone();
    chart
        .configure_mesh()
        .x_desc("pair (the cases' other parameters)")
        .y_desc("ns per base page")
        .x_labels(pairs.len().max(1))
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    // Series side by side within each pair's slot.
    let width = 0.6 / series.len().max(1) as f64;
    for (si, s) in series.iter().enumerate() {
        let c = color(si);
        let offset = -0.3 + width * (si as f64 + 0.5);
        let points: Vec<(f64, f64, Option<[f64; 2]>)> = s
            .pairs
            .iter()
            .filter_map(|(label, v, ci)| {
                let x = pairs.iter().position(|p| p == label)? as f64 + offset;
                Some((x, *v, *ci))
            })
            .collect();
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 5, c.filled())),
            )
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| Circle::new((x + 12, y), 5, c.filled()));
        chart
            .draw_series(points.iter().filter_map(|p| {
                let [lo, hi] = p.2?;
                Some(PathElement::new(
                    vec![(p.0, lo), (p.0, hi)],
                    c.stroke_width(2),
                ))
            }))
            .map_err(err)?;
    }
    draw_legend(&mut chart)
}
