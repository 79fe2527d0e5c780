//! Text and markdown forms of a comparison. Both are aligned column tables; the markdown
//! one is also a valid GitHub table, so the same text reads well in a mail (plain, as
//! mmtests' compare-kernels tables) and renders in a pull request.

use std::fmt::Write;

use crate::compare::{
    Cell, Comparison, SettingKind, Unit, Verdict, ALLOW_DIFFERENT_MACHINES, MAIN_SECTION,
};
use crate::stats::ALPHA;

/// A table of text cells; column 0 is left-aligned, the others right-aligned.
struct Grid {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Grid {
    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        w
    }

    fn pad(text: &str, width: usize, col: usize) -> String {
        if col == 0 {
            format!("{text:<width$}")
        } else {
            format!("{text:>width$}")
        }
    }

    fn text(&self) -> String {
        let w = self.widths();
        let mut s = String::new();
        let line = |cells: &[String]| -> String {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| Grid::pad(c, w[i], i))
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        s.push_str(&line(&self.header));
        s.push('\n');
        for row in &self.rows {
            s.push_str(&line(row));
            s.push('\n');
        }
        s
    }

    fn markdown(&self) -> String {
        let w: Vec<usize> = self.widths().into_iter().map(|x| x.max(3)).collect();
        let mut s = String::new();
        let line = |cells: &[String]| -> String {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| Grid::pad(&c.replace('|', "\\|"), w[i], i))
                .collect();
            format!("| {} |", parts.join(" | "))
        };
        s.push_str(&line(&self.header));
        s.push('\n');
        let rule: Vec<String> = w
            .iter()
            .enumerate()
            .map(|(i, &width)| {
                if i == 0 {
                    format!(":{}", "-".repeat(width - 1))
                } else {
                    format!("{}:", "-".repeat(width - 1))
                }
            })
            .collect();
        s.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            s.push_str(&line(row));
            s.push('\n');
        }
        s
    }
}

fn number(unit: Unit, v: f64) -> String {
    format!("{:.*}", unit.decimals(), unit.scale(v))
}

/// `mean ± ci95`, or the mean alone for one run.
fn value_text(unit: Unit, cell: &Cell) -> String {
    if let Some(c) = cell.integrity {
        // Pass/fail shows in every column, the baseline's too.
        let mark = if c.bad > 0 { "FAIL" } else { "pass" };
        return format!("{mark}: {} of {} {}", c.bad, c.of, c.what);
    }
    let e = &cell.estimate;
    match e.ci95 {
        Some(ci) => format!("{} ± {}", number(unit, e.mean), number(unit, ci)),
        None => number(unit, e.mean),
    }
}

fn change_text(cell: &Cell, threshold: Option<f64>) -> String {
    let pct = cell
        .change_pct
        .map_or_else(|| "from 0".to_string(), |p| format!("{p:+.2}%"));
    match cell.verdict {
        Verdict::Baseline => String::new(),
        Verdict::Better => format!("{pct} better"),
        Verdict::Worse if cell.beyond_threshold => {
            format!("{pct} WORSE > {}%", threshold.unwrap_or(0.0))
        }
        Verdict::Worse => format!("{pct} worse"),
        Verdict::Changed => format!("{pct} changed"),
        Verdict::Noise => format!("{pct} noise"),
        Verdict::Untested => format!("{pct} (n<2)"),
        Verdict::NotEvidence => format!("{pct} (not evidence)"),
        Verdict::NoBaseline => "(no baseline)".into(),
        Verdict::Pass => "pass".into(),
        Verdict::Fail => "FAIL: lost data".into(),
    }
}

fn metric_name(label: &str, unit: Unit) -> String {
    match unit.suffix() {
        "" => label.to_string(),
        s if label == s => label.to_string(),
        s => format!("{label} ({s})"),
    }
}

fn section_grid(cmp: &Comparison, section: usize) -> Grid {
    let order = column_order(cmp);
    let mut header = vec!["metric".to_string()];
    for &gi in &order {
        let g = &cmp.groups[gi];
        header.push(g.label.clone());
        if gi != cmp.baseline {
            header.push("change".into());
        }
    }
    let rows =
        cmp.sections[section]
            .rows
            .iter()
            .map(|row| {
                let mut cells = vec![metric_name(&row.metric.label, row.metric.unit)];
                for &gi in &order {
                    let cell = row.cells[gi].as_ref();
                    cells.push(cell.map_or_else(|| "-".into(), |c| value_text(row.metric.unit, c)));
                    if gi != cmp.baseline {
                        cells.push(cell.map_or_else(String::new, |c| {
                            change_text(c, cmp.fail_on_regression_pct)
                        }));
                    }
                }
                cells
            })
            .collect();
    Grid { header, rows }
}

/// The baseline first, then the others in the order given.
fn column_order(cmp: &Comparison) -> Vec<usize> {
    let mut order = vec![cmp.baseline];
    order.extend((0..cmp.groups.len()).filter(|&i| i != cmp.baseline));
    order
}

/// One row per pin-cost pair, per group: ns per I/O and per base page with the interval.
fn pin_cost_grid(cmp: &Comparison) -> Option<Grid> {
    if cmp.pin_cost.is_empty() {
        return None;
    }
    let mut labels: Vec<&str> = Vec::new();
    for g in &cmp.pin_cost {
        for p in &g.pairs {
            if !labels.contains(&p.label.as_str()) {
                labels.push(&p.label);
            }
        }
    }
    let mut header = vec!["pair".to_string()];
    for g in &cmp.pin_cost {
        header.push(format!("{} ns/IO", cmp.groups[g.group].label));
        header.push("ns/base page".into());
    }
    let with_ci = |mean: f64, ci: Option<[f64; 2]>| match ci {
        Some([lo, hi]) => format!("{mean:.1} ± {:.1}", (hi - lo) / 2.0),
        None => format!("{mean:.1}"),
    };
    let rows = labels
        .iter()
        .map(|label| {
            let mut row = vec![if label.is_empty() { "all" } else { label }.to_string()];
            for g in &cmp.pin_cost {
                match g.pairs.iter().find(|p| p.label == *label) {
                    Some(p) => {
                        row.push(with_ci(p.ns_per_io, p.ci95_ns_per_io));
                        row.push(with_ci(p.ns_per_page, p.ci95_ns_per_page));
                    }
                    None => row.extend(["-".to_string(), "-".to_string()]),
                }
            }
            row
        })
        .collect();
    Some(Grid { header, rows })
}

fn scaling_grid(cmp: &Comparison) -> Option<Grid> {
    if cmp.scaling.is_empty() {
        return None;
    }
    let mut threads: Vec<usize> = cmp
        .scaling
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.threads))
        .collect();
    threads.sort();
    threads.dedup();
    let mut header = vec!["threads".to_string()];
    for s in &cmp.scaling {
        header.push(format!("{} ops/s", cmp.groups[s.group].label));
        header.push("efficiency".into());
    }
    let rows = threads
        .iter()
        .map(|t| {
            let mut row = vec![t.to_string()];
            for s in &cmp.scaling {
                match s.points.iter().find(|p| p.threads == *t) {
                    Some(p) => {
                        let e = &p.ops_per_sec;
                        row.push(match e.ci95 {
                            Some(ci) => format!("{:.1} ± {:.1}", e.mean, ci),
                            None => format!("{:.1}", e.mean),
                        });
                        row.push(
                            p.efficiency
                                .map_or_else(|| "-".into(), |x| format!("{:.1}%", x * 100.0)),
                        );
                    }
                    None => {
                        row.push("-".into());
                        row.push("-".into());
                    }
                }
            }
            row
        })
        .collect();
    Some(Grid { header, rows })
}

fn legend(cmp: &Comparison) -> String {
    let mut s = format!(
        "Each value: mean ± 95% confidence interval (Student's t) over the runs; no ± with one run. \
         change: against the baseline, Welch's t-test, two-sided: better/worse = significant at p < {ALPHA}, \
         noise = inside the noise (p ≥ {ALPHA}), changed = significant for a counter that has no good direction, \
         (n<2) = too few runs to test, or no spread on either side with different means (nothing to judge the noise by); \
         integrity rows (lost data) are pass/FAIL, never a test."
    );
    if let Some(pct) = cmp.fail_on_regression_pct {
        let _ = write!(
            s,
            " WORSE > {pct}% = a significant regression beyond --fail-on-regression {pct}."
        );
    }
    s.push_str(" Latencies in microseconds.");
    s
}

/// Breaks `text` into lines of at most `width` characters at spaces, as mail wants it.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

enum Style {
    Text,
    Markdown,
}

fn render(cmp: &Comparison, style: Style) -> String {
    let md = matches!(style, Style::Markdown);
    let grid = |g: &Grid| if md { g.markdown() } else { g.text() };
    let mut s = String::new();
    let base = &cmp.groups[cmp.baseline];
    if md {
        let _ = writeln!(s, "**thpbench compare**, baseline `{}`\n", base.label);
    } else {
        let _ = writeln!(s, "thpbench compare, baseline {}\n", base.label);
    }
    render_system_differences(&mut s, cmp, md);
    for gi in column_order(cmp) {
        let g = &cmp.groups[gi];
        let item = format!(
            "{}: kernel {} ({}{}), workload {}, {} run{} counted, from {}",
            g.label,
            g.kernel_release,
            g.kernel_version,
            g.kernel_build_id
                .as_ref()
                .map_or(String::new(), |id| format!(", build-id {id}")),
            g.workload,
            g.runs_counted,
            if g.runs_counted == 1 { "" } else { "s" },
            g.files.join(", ")
        );
        let _ = writeln!(s, "{}{}", if md { "- " } else { "  " }, item);
    }
    if !cmp.differences.is_empty() {
        let _ = writeln!(
            s,
            "\nWorkload parameters that differ (compared with --force):"
        );
        for d in &cmp.differences {
            let values: Vec<String> = d
                .values
                .iter()
                .map(|(files, v)| format!("{v} ({files})"))
                .collect();
            let _ = writeln!(
                s,
                "{}{}: {}",
                if md { "- " } else { "  " },
                d.parameter,
                values.join(", ")
            );
        }
    }
    for (i, section) in cmp.sections.iter().enumerate() {
        s.push('\n');
        if section.name != MAIN_SECTION {
            if md {
                let _ = writeln!(s, "**{}**\n", section.name);
            } else {
                let _ = writeln!(s, "{}:", section.name);
            }
        }
        s.push_str(&grid(&section_grid(cmp, i)));
    }
    if let Some(g) = scaling_grid(cmp) {
        let reference = cmp.scaling[0].reference_threads;
        let title = format!(
            "Thread scaling: efficiency = ops/s at N threads / (N/{reference} × ops/s at {reference} thread{})",
            if reference == 1 { "" } else { "s" }
        );
        if md {
            let _ = writeln!(s, "\n**{title}**\n");
        } else {
            let _ = writeln!(s, "\n{title}:");
        }
        s.push_str(&grid(&g));
    }
    if let Some(g) = pin_cost_grid(cmp) {
        let title = "Pin cost: time per I/O (I/O time over I/Os; at queue depth > 1 the inverse of the throughput) with per-I/O pins minus with registered buffers (fixed_buffers), ± 95% CI";
        if md {
            let _ = writeln!(s, "\n**{title}**\n");
        } else {
            let _ = writeln!(s, "\n{title}:");
        }
        s.push_str(&grid(&g));
    }
    s.push('\n');
    s.push_str(&wrap(&legend(cmp), 88));
    let excluded: Vec<String> = cmp
        .groups
        .iter()
        .flat_map(|g| {
            g.excluded.iter().map(|e| match e.run {
                Some(run) => format!("{} run {}: {}", e.file, run, e.reason),
                None => format!("{}: {}", e.file, e.reason),
            })
        })
        .collect();
    if !excluded.is_empty() {
        let _ = writeln!(s, "\nNot counted as evidence:");
        for e in excluded {
            let _ = writeln!(s, "{}{e}", if md { "- " } else { "  " });
        }
    }
    if !cmp.notes.is_empty() {
        let _ = writeln!(s, "\nNotes:");
        for n in &cmp.notes {
            let _ = writeln!(s, "{}{n}", if md { "- " } else { "  " });
        }
    }
    s
}

/// What differs besides the kernel, first thing: the machine and conditions (compared
/// only with --allow-different-machines), then what is only worth knowing.
fn render_system_differences(s: &mut String, cmp: &Comparison, md: bool) {
    let bullet = if md { "- " } else { "  " };
    let (refused, noted): (Vec<_>, Vec<_>) = cmp
        .system_differences
        .iter()
        .partition(|d| d.kind != SettingKind::Note);
    if !refused.is_empty() {
        let _ = writeln!(
            s,
            "{}DIFFERENT MACHINES OR CONDITIONS (compared with {ALLOW_DIFFERENT_MACHINES}, never pooled): a change below may be theirs, not the kernel's{}",
            if md { "**" } else { "" },
            if md { "**" } else { ":" }
        );
        for d in refused {
            let _ = writeln!(
                s,
                "{bullet}{} ({}): {}",
                d.setting,
                d.kind.word(),
                d.values_text()
            );
        }
        s.push('\n');
    }
    if !noted.is_empty() {
        let _ = writeln!(s, "Also differs besides the kernel:");
        for d in noted {
            let _ = writeln!(s, "{bullet}{}: {}", d.setting, d.values_text());
        }
        s.push('\n');
    }
}

pub fn render_text(cmp: &Comparison) -> String {
    render(cmp, Style::Text)
}

pub fn render_markdown(cmp: &Comparison) -> String {
    render(cmp, Style::Markdown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{compare, CompareOptions, Input};
    use crate::test_support::synthetic;
    use std::path::PathBuf;

    fn two() -> Comparison {
        let inputs = vec![
            Input {
                path: PathBuf::from("a.json"),
                result: synthetic("6.1.0", &[100.0, 101.0, 99.0, 100.0, 102.0]),
            },
            Input {
                path: PathBuf::from("b.json"),
                result: synthetic("6.12.0", &[120.0, 119.0, 121.0, 122.0, 118.0]),
            },
        ];
        compare(&inputs, &CompareOptions::default()).unwrap()
    }

    #[test]
    fn markdown_table_is_aligned_and_carries_spread_and_verdict() {
        let md = render_markdown(&two());
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert!(table.len() >= 4, "{md}");
        // Every line of the table has the same width: it reads as plain text too.
        let width = table[0].chars().count();
        assert!(table.iter().all(|l| l.chars().count() == width), "{md}");
        assert!(table[0].contains("6.1.0 quick") && table[0].contains("6.12.0 quick"));
        let ops = table.iter().find(|l| l.starts_with("| ops/s ")).unwrap();
        assert!(ops.contains("100.4 ± 1.4"), "{ops}");
        assert!(ops.contains("+19.52% better"), "{ops}");
        assert!(
            table[1].starts_with("| :--") && table[1].contains("--: |"),
            "{}",
            table[1]
        );
    }

    #[test]
    fn text_form_names_the_baseline_and_explains_the_marks() {
        let text = render_text(&two());
        assert!(
            text.starts_with("thpbench compare, baseline 6.1.0 quick"),
            "{text}"
        );
        assert!(text.contains("Welch's t-test"), "{text}");
        assert!(!text.contains('|'), "{text}");
    }
}
