//! `thpbench plot`: pictures of one or more results, drawn with plotters into one SVG or
//! PNG file, one panel under the other:
//!
//! 1. the latency percentile distribution of every result (and sweep case), x axis
//!    1/(1-p) on a log scale as HdrHistogram's plotter draws it;
//! 2. when any result's timeline has disturber actions: p99 per 100 ms of the first run of
//!    every result, with the split/collapse/swap/fork actions marked under the curves;
//! 3. when any result is a thread sweep: ops/s per thread count.
//!
//! Legends name the kernel release and workload (and the case label).

mod font;
mod percentiles;
mod pin_cost;
mod scaling;
mod style;
mod timeline;

use std::path::Path;

use anyhow::{bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

pub use font::ensure_font;
pub use percentiles::{percentile_label, PercentileSeries};
pub use pin_cost::PinCostSeries;
pub use scaling::ScalingSeries;
pub use timeline::TimelineSeries;

use crate::compare::Input;
use percentiles::draw_percentiles;
use pin_cost::draw_pin_cost;
use scaling::draw_scaling;
use style::err;
use timeline::draw_timeline;

#[derive(Debug, Clone, Default)]
pub struct PlotData {
    pub percentiles: Vec<PercentileSeries>,
    pub timelines: Vec<TimelineSeries>,
    pub scaling: Vec<ScalingSeries>,
    pub pin_cost: Vec<PinCostSeries>,
}

impl PlotData {
    /// Every legend entry, for messages and tests.
    pub fn legend_names(&self) -> Vec<String> {
        self.percentiles
            .iter()
            .map(|s| s.label.clone())
            .chain(self.timelines.iter().map(|s| s.label.clone()))
            .chain(self.scaling.iter().map(|s| s.label.clone()))
            .chain(self.pin_cost.iter().map(|s| s.label.clone()))
            .collect()
    }
}

/// Series labels: kernel release and workload, plus the file name when two inputs would
/// otherwise look the same.
fn base_labels(inputs: &[Input]) -> Vec<String> {
    let plain: Vec<String> = inputs.iter().map(|i| i.result.label()).collect();
    plain
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if plain.iter().filter(|o| *o == l).count() > 1 {
                let stem = inputs[i]
                    .path
                    .file_stem()
                    .map_or(String::new(), |s| s.to_string_lossy().into_owned());
                format!("{l} ({stem})")
            } else {
                l.clone()
            }
        })
        .collect()
}

pub fn collect(inputs: &[Input]) -> Result<PlotData> {
    let mut data = PlotData::default();
    let labels = base_labels(inputs);
    for (input, label) in inputs.iter().zip(&labels) {
        data.percentiles.extend(percentiles::collect(input, label)?);
        data.timelines
            .extend(timeline::collect(&input.result, label));
        data.scaling.extend(scaling::collect(&input.result, label));
        data.pin_cost
            .extend(pin_cost::collect(&input.result, label));
    }
    // Timelines only earn a panel when some run was disturbed.
    if !data.timelines.iter().any(|t| !t.actions.is_empty()) {
        data.timelines.clear();
    }
    if data.percentiles.is_empty() {
        bail!("none of the results holds a latency histogram with values: nothing to plot");
    }
    Ok(data)
}

const WIDTH: u32 = 1200;
const PANEL_HEIGHT: u32 = 620;

fn draw_all<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, data: &PlotData) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let panels = 1
        + usize::from(!data.timelines.is_empty())
        + usize::from(!data.scaling.is_empty())
        + usize::from(!data.pin_cost.is_empty());
    let areas = root.split_evenly((panels, 1));
    let mut next = areas.iter();
    draw_percentiles(next.next().expect("one panel"), &data.percentiles)?;
    if !data.timelines.is_empty() {
        draw_timeline(next.next().expect("timeline panel"), &data.timelines)?;
    }
    if !data.scaling.is_empty() {
        draw_scaling(next.next().expect("scaling panel"), &data.scaling)?;
    }
    if !data.pin_cost.is_empty() {
        draw_pin_cost(next.next().expect("pin cost panel"), &data.pin_cost)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

pub fn image_format(path: &Path) -> Result<ImageFormat> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => Ok(ImageFormat::Svg),
        Some("png") => Ok(ImageFormat::Png),
        _ => bail!(
            "-o {}: the file name must end in .svg or .png (that picks the format)",
            path.display()
        ),
    }
}

/// Draws `data` into `output` (.svg or .png).
pub fn render(data: &PlotData, output: &Path) -> Result<()> {
    let format = image_format(output)?;
    ensure_font()?;
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!(
                "-o {}: directory {} does not exist",
                output.display(),
                dir.display()
            );
        }
    }
    let panels = 1
        + u32::from(!data.timelines.is_empty())
        + u32::from(!data.scaling.is_empty())
        + u32::from(!data.pin_cost.is_empty());
    let size = (WIDTH, PANEL_HEIGHT * panels);
    // Drawn in a private directory, then put in place by rename: plotters opens its
    // path by name, which would follow a symlink planted at `output`.
    let private = crate::safe_fs::PrivateTempDir::new()
        .context("making a private temporary directory to draw in")?;
    let drawn = private
        .path()
        .join(output.file_name().unwrap_or("plot".as_ref()));
    match format {
        ImageFormat::Svg => draw_all(SVGBackend::new(&drawn, size).into_drawing_area(), data),
        ImageFormat::Png => draw_all(BitMapBackend::new(&drawn, size).into_drawing_area(), data),
    }
    .with_context(|| format!("drawing {}", output.display()))?;
    let bytes = std::fs::read(&drawn).with_context(|| format!("reading {}", drawn.display()))?;
    crate::util::write_atomic(output, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::histogram::{encode_compressed, new_histogram};
    use crate::result::{SweepCase, TimelinePoint};

    fn with_histogram(release: &str, scale: u64) -> crate::result::BenchResult {
        let mut r = crate::test_support::synthetic(release, &[100.0, 100.0]);
        for run in &mut r.runs {
            let mut h = new_histogram();
            for v in 1..=2000u64 {
                h.record(v * scale).unwrap();
            }
            run.histogram = encode_compressed(&h);
            run.timeline = (0..10)
                .map(|i| TimelinePoint {
                    t_ms: i * 100,
                    ops: 100,
                    bytes: 409_600,
                    p50_ns: 1000 * scale,
                    p99_ns: 5000 * scale + i * 100,
                    max_ns: 9000 * scale,
                    disturb_actions: if i % 3 == 0 {
                        [
                            ("split:cold".to_string(), 2u64),
                            ("collapse".to_string(), 1u64),
                        ]
                        .into()
                    } else {
                        Default::default()
                    },
                })
                .collect();
        }
        r
    }

    fn inputs() -> Vec<Input> {
        let mut sweep = with_histogram("6.12.0-test", 3);
        let run = sweep.runs[0].clone();
        sweep.runs.clear();
        for t in [1usize, 2, 4] {
            sweep.sweep.push(SweepCase {
                label: format!("threads={t}"),
                params: [("threads", t.to_string())].into_iter().collect(),
                runs: vec![
                    crate::result::RunResult {
                        ops_per_sec: 100.0 * t as f64,
                        ..run.clone()
                    },
                    crate::result::RunResult {
                        ops_per_sec: 110.0 * t as f64,
                        ..run.clone()
                    },
                ],
            });
        }
        vec![
            Input {
                path: "a.json".into(),
                result: with_histogram("6.1.0-test", 1),
            },
            Input {
                path: "b.json".into(),
                result: sweep,
            },
        ]
    }

    #[test]
    fn percentile_labels_read_as_percentiles() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100_000.0), "99.999%");
    }

    #[test]
    fn collects_every_panel_with_named_series() {
        let data = collect(&inputs()).unwrap();
        let names = data.legend_names();
        assert!(names.contains(&"6.1.0-test quick".to_string()), "{names:?}");
        assert!(
            names.contains(&"6.12.0-test quick [threads=4]".to_string()),
            "{names:?}"
        );
        assert_eq!(data.percentiles.len(), 4);
        assert_eq!(data.timelines.len(), 2);
        assert_eq!(data.timelines[0].actions.len(), 2);
        assert_eq!(data.scaling.len(), 1);
        assert_eq!(data.scaling[0].points[2].0, 4.0);
        // x runs over 1/(1-p): the curve climbs past 1000 (99.9%) with 4000 values.
        assert!(data.percentiles[0].points.last().unwrap().0 >= 1000.0);
    }

    /// A result with pin_cost adds the pin-cost panel: its pairs on the x axis and the
    /// result in the legend; results without it add none.
    #[test]
    fn pin_cost_adds_a_panel_with_its_pairs() {
        let mut ins = inputs();
        assert!(collect(&ins).unwrap().pin_cost.is_empty());
        let pair = |label: &str, ns: f64| crate::result::PinCost {
            label: label.into(),
            ns_per_page: ns,
            ci95_ns_per_page: Some([ns - 10.0, ns + 10.0]),
            ..Default::default()
        };
        ins[0].result.pin_cost = vec![pair("bs=4k", 180.0), pair("bs=10M", 135.0)];
        let data = collect(&ins).unwrap();
        assert_eq!(data.pin_cost.len(), 1);
        assert_eq!(data.pin_cost[0].pairs[1].1, 135.0);
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("p.svg");
        render(&data, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("Pin cost per base page"));
        assert!(text.contains("bs=10M"));
    }

    #[test]
    fn writes_svg_with_legend_and_png_with_signature() {
        let dir = tempfile::tempdir().unwrap();
        let data = collect(&inputs()).unwrap();
        let svg = dir.path().join("p.svg");
        render(&data, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..100.min(text.len())]);
        assert!(text.contains("6.1.0-test quick"));
        assert!(text.contains("6.12.0-test quick [threads=2]"));
        assert!(text.contains("split:cold actions"));
        let png = dir.path().join("p.png");
        render(&data, &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, at bytes 16..24.
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((w, h), (WIDTH, 3 * PANEL_HEIGHT));
        assert!(render(&data, &dir.path().join("p.jpg"))
            .unwrap_err()
            .to_string()
            .contains(".svg or .png"));
    }
}
