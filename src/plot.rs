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

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::compare::Input;
use crate::export::hgrm::percentile_lines;
use crate::export::{merged_histogram, select};
use crate::stats::{estimate, linear_scaling};

/// Environment variable naming a TTF/OTF font to draw text with.
pub const FONT_ENV: &str = "THPBENCH_FONT";

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", // Debian, Ubuntu: fonts-dejavu-core
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", // Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf", // Arch
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
];

const FONT_DIRS: &[&str] = &["/usr/share/fonts", "/usr/local/share/fonts"];

/// Any TrueType/OpenType font under `dir`, preferring upright sans faces.
fn scan_fonts(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth > 0 {
            scan_fonts(&p, depth - 1, found);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| x.eq_ignore_ascii_case("ttf") || x.eq_ignore_ascii_case("otf"))
        {
            found.push(p);
        }
    }
}

fn find_font() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(FONT_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "{FONT_ENV}={}: no such font file; point it at a .ttf or .otf file",
                path.display()
            );
        }
        return Ok(path);
    }
    if let Some(p) = FONT_CANDIDATES.iter().map(Path::new).find(|p| p.is_file()) {
        return Ok(p.to_path_buf());
    }
    let mut found = Vec::new();
    for dir in FONT_DIRS {
        scan_fonts(Path::new(dir), 4, &mut found);
    }
    let score = |p: &PathBuf| {
        let name = p
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().to_lowercase());
        let mut s = 0;
        for bad in ["bold", "italic", "oblique", "mono", "light", "condensed"] {
            if name.contains(bad) {
                s += 1;
            }
        }
        if !name.contains("sans") {
            s += 1;
        }
        s
    };
    found.sort_by_key(|p| (score(p), p.clone()));
    found.into_iter().next().ok_or_else(|| {
        anyhow!(
            "no TrueType font found to draw text with (looked in {} and {}); install one (Debian: apt-get install fonts-dejavu-core) or set {FONT_ENV}=/path/to/font.ttf",
            FONT_CANDIDATES[0],
            FONT_DIRS.join(", ")
        )
    })
}

/// Registers a font as plotters' `sans-serif` once per process (plotters' ab_glyph
/// backend has no fonts of its own).
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    let outcome = REGISTERED.get_or_init(|| {
        let path = find_font().map_err(|e| format!("{e:#}"))?;
        let bytes =
            std::fs::read(&path).map_err(|e| format!("reading font {}: {e}", path.display()))?;
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font("sans-serif", style, bytes).map_err(|_| {
                format!(
                    "{} is not a usable TrueType/OpenType font; set {FONT_ENV} to another",
                    path.display()
                )
            })?;
        }
        Ok(path)
    });
    outcome.as_ref().map(|_| ()).map_err(|e| anyhow!("{e}"))
}

/// One curve of the percentile panel: (1/(1-p), latency in us).
#[derive(Debug, Clone)]
pub struct PercentileSeries {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct TimelineSeries {
    pub label: String,
    /// (seconds, p99 in us)
    pub p99: Vec<(f64, f64)>,
    /// disturber name -> seconds of the intervals in which it acted
    pub actions: Vec<(String, Vec<f64>)>,
}

#[derive(Debug, Clone)]
pub struct ScalingSeries {
    pub label: String,
    /// (threads, mean ops/s, 95% CI half-width)
    pub points: Vec<(f64, f64, f64)>,
}

#[derive(Debug, Clone, Default)]
pub struct PlotData {
    pub percentiles: Vec<PercentileSeries>,
    pub timelines: Vec<TimelineSeries>,
    pub scaling: Vec<ScalingSeries>,
}

impl PlotData {
    /// Every legend entry, for messages and tests.
    pub fn legend_names(&self) -> Vec<String> {
        self.percentiles
            .iter()
            .map(|s| s.label.clone())
            .chain(self.timelines.iter().map(|s| s.label.clone()))
            .chain(self.scaling.iter().map(|s| s.label.clone()))
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
        let r = &input.result;
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
            let mut series_label = label.clone();
            if let Some(c) = case {
                series_label.push_str(&format!(" [{c}]"));
            }
            if !r.valid || r.interrupted {
                series_label.push_str(" (not evidence)");
            }
            data.percentiles.push(PercentileSeries {
                label: series_label,
                points,
            });
        }
        // Timeline of the first run (of the first case): one run, so intervals line up.
        let first_run = match r.runs.first() {
            Some(run) => Some((None, run)),
            None => r
                .sweep
                .first()
                .and_then(|c| c.runs.first().map(|run| (Some(c.label.as_str()), run))),
        };
        if let Some((case, run)) = first_run.filter(|(_, run)| !run.timeline.is_empty()) {
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
            data.timelines.push(TimelineSeries {
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
            });
        }
        let mut points = Vec::new();
        for case in &r.sweep {
            let Some(threads) = case
                .params
                .get("threads")
                .and_then(|t| t.parse::<f64>().ok())
            else {
                continue;
            };
            let ops: Vec<f64> = case.runs.iter().map(|r| r.ops_per_sec).collect();
            if let Some(e) = estimate(&ops) {
                points.push((threads, e.mean, e.ci95.unwrap_or(0.0)));
            }
        }
        if points.len() >= 2 {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            data.scaling.push(ScalingSeries {
                label: label.clone(),
                points,
            });
        }
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

/// Percentile label of x = 1/(1-p): 1 -> 0%, 10 -> 90%, 1000 -> 99.9%.
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{p:.5}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn us_label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}ms", trim_number(v / 1000.0))
    } else {
        format!("{}us", trim_number(v))
    }
}

fn trim_number(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn decades(lo: f64, hi: f64) -> (f64, f64, usize) {
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    let n = (hi / lo).log10().round() as usize;
    (lo, hi, n)
}

fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    COLORS[i % COLORS.len()]
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// The legend of every chart: upper left, on a light box.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)
}

fn draw_percentiles<DB: DrawingBackend>(
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

fn draw_timeline<DB: DrawingBackend>(
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

fn draw_scaling<DB: DrawingBackend>(
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

const WIDTH: u32 = 1200;
const PANEL_HEIGHT: u32 = 620;

fn draw_all<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, data: &PlotData) -> Result<()> {
    root.fill(&WHITE).map_err(err)?;
    let panels =
        1 + usize::from(!data.timelines.is_empty()) + usize::from(!data.scaling.is_empty());
    let areas = root.split_evenly((panels, 1));
    let mut next = areas.iter();
    draw_percentiles(next.next().expect("one panel"), &data.percentiles)?;
    if !data.timelines.is_empty() {
        draw_timeline(next.next().expect("timeline panel"), &data.timelines)?;
    }
    if !data.scaling.is_empty() {
        draw_scaling(next.next().expect("scaling panel"), &data.scaling)?;
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
    let panels = 1 + u32::from(!data.timelines.is_empty()) + u32::from(!data.scaling.is_empty());
    let size = (WIDTH, PANEL_HEIGHT * panels);
    match format {
        ImageFormat::Svg => draw_all(SVGBackend::new(output, size).into_drawing_area(), data),
        ImageFormat::Png => draw_all(BitMapBackend::new(output, size).into_drawing_area(), data),
    }
    .with_context(|| format!("writing {}", output.display()))
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
                params: [("threads".to_string(), t.to_string())].into(),
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
