//! `thpbench export`: one result's latency data in the formats other tools read, one
//! file per format behind the [`Exporter`] trait.

pub mod bmf;
pub mod csv;
pub mod fio;
pub mod hgrm;
pub mod hlog;
pub mod kcidb;

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;

use crate::measure::histogram::{decode_compressed, new_histogram};
use crate::result::{BenchResult, RunResult};
use crate::workload::Workload;

/// One run chosen for export, with the sweep case it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct SelectedRun<'a> {
    /// The sweep case label; `None` for a plain result.
    pub case: Option<&'a str>,
    pub run: &'a RunResult,
}

/// The runs a command works on, and whether several were chosen.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    pub result: &'a BenchResult,
    pub runs: Vec<SelectedRun<'a>>,
}

impl Selection<'_> {
    /// True when the runs come from more than one run or case, so that each needs a tag.
    pub fn is_several(&self) -> bool {
        self.runs.len() > 1
    }
}

/// Files a format writes beside the `-o` stub: what follows the stub, and the contents.
pub type StubFiles = Vec<(String, Vec<u8>)>;

pub trait Exporter {
    /// Writes the selected runs. `source` names the result file in messages.
    fn export(&self, sel: &Selection, source: &Path, out: &mut dyn Write) -> Result<()>;

    /// Formats that are several files (fio's per-job logs) give them here, each named by
    /// what follows the `-o` stub; `None` for a format that is one stream.
    fn files(&self, _sel: &Selection, _source: &Path) -> Result<Option<StubFiles>> {
        Ok(None)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// HdrHistogram percentile distribution (outputPercentileDistribution), in us.
    Hgrm,
    /// HdrHistogram interval log: per-second histograms, V2 + DEFLATE, base64.
    Hlog,
    /// The per-100 ms timeline: ops, bytes, p50, p99, max, disturber actions.
    Csv,
    /// The percentile table as HdrHistogram writes it in CSV form.
    PercentilesCsv,
    /// fio's JSON+ output: one job per run, fio's latency buckets and percentiles.
    FioJson,
    /// fio's per-job IOPS, bandwidth and latency logs from the timeline (several files).
    FioLog,
    /// KernelCI's KCIDB I/O data: checkout, build, one test per figure and integrity check.
    Kcidb,
    /// Bencher's metric format: every figure's mean with its 95 % interval as bounds.
    Bmf,
}

pub fn exporter(format: ExportFormat) -> Box<dyn Exporter> {
    match format {
        ExportFormat::Hgrm => Box::new(hgrm::Hgrm),
        ExportFormat::Hlog => Box::new(hlog::Hlog),
        ExportFormat::Csv => Box::new(csv::TimelineCsv),
        ExportFormat::PercentilesCsv => Box::new(csv::PercentilesCsv),
        ExportFormat::FioJson => Box::new(fio::FioJson),
        ExportFormat::FioLog => Box::new(fio::FioLog),
        ExportFormat::Kcidb => Box::new(kcidb::Kcidb),
        ExportFormat::Bmf => Box::new(bmf::Bmf),
    }
}

/// The workload a run ran: the result's, with its sweep case's parameters applied.
pub fn case_workload(result: &BenchResult, case: Option<&str>) -> Workload {
    case.and_then(|label| {
        crate::workload::sweep_cases(&result.workload)
            .ok()?
            .into_iter()
            .find(|(l, _, _)| l == label)
            .map(|(_, _, w)| w)
    })
    .unwrap_or_else(|| result.workload.clone())
}

/// Chooses runs by sweep case label and repeat index. Without `case`, a sweep result
/// gives the runs of every case; without `run`, every run.
pub fn select<'a>(
    result: &'a BenchResult,
    source: &Path,
    case: Option<&str>,
    run: Option<usize>,
) -> Result<Selection<'a>> {
    let mut pools: Vec<(Option<&'a str>, &'a [RunResult])> = result.measured_groups().collect();
    if let Some(wanted) = case {
        let labels: Vec<&str> = result.sweep.iter().map(|c| c.label.as_str()).collect();
        if labels.is_empty() {
            bail!(
                "--case {wanted}: {} is not a sweep; leave --case out",
                source.display()
            );
        }
        pools.retain(|(label, _)| *label == Some(wanted));
        if pools.is_empty() {
            bail!(
                "--case {wanted}: {} has no such sweep case; its cases are: {}",
                source.display(),
                labels.join(", ")
            );
        }
    }
    let mut runs = Vec::new();
    for (label, pool) in &pools {
        for r in pool.iter() {
            if run.is_none_or(|n| r.repeat == n) {
                runs.push(SelectedRun {
                    case: *label,
                    run: r,
                });
            }
        }
    }
    if runs.is_empty() {
        match run {
            Some(n) => {
                let have: Vec<String> = pools
                    .iter()
                    .flat_map(|(_, p)| p.iter().map(|r| r.repeat.to_string()))
                    .collect();
                bail!(
                    "--run {n}: {} has no run {n}; its runs are: {}",
                    source.display(),
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                )
            }
            None => bail!("{} holds no runs to export", source.display()),
        }
    }
    Ok(Selection { result, runs })
}

/// One figure of one sweep case (or of a plain result) over the selected runs: its
/// definition and one value per run that has it, in run order.
#[derive(Debug, Clone)]
pub struct Figure<'a> {
    pub case: Option<&'a str>,
    pub def: crate::compare::MetricDef,
    pub values: Vec<f64>,
}

/// Every figure `compare` knows of the selected runs, by case, in the order a run's
/// figures come (throughput, latency, kernel reports, conditions, integrity).
pub fn figures<'a>(sel: &Selection<'a>) -> Vec<Figure<'a>> {
    let mut out: Vec<Figure<'a>> = Vec::new();
    for s in &sel.runs {
        for (def, v) in crate::compare::run_metrics(s.run) {
            match out
                .iter_mut()
                .find(|f| f.case == s.case && f.def.key == def.key)
            {
                Some(f) => f.values.push(v),
                None => out.push(Figure {
                    case: s.case,
                    def,
                    values: vec![v],
                }),
            }
        }
    }
    out
}

/// The merged latency histogram of the selected runs.
pub fn merged_histogram(sel: &Selection, source: &Path) -> Result<Histogram<u64>> {
    let mut total = new_histogram();
    for s in &sel.runs {
        let h = decode_compressed(&s.run.histogram).with_context(|| {
            format!(
                "{}: the histogram of run {} does not decode",
                source.display(),
                s.run.repeat
            )
        })?;
        total
            .add(&h)
            .map_err(|e| anyhow::anyhow!("{}: cannot merge histograms: {e:?}", source.display()))?;
    }
    Ok(total)
}

/// Formats like Java's `String.format("%.Nf")`, which HdrHistogram's text formats come
/// from: Java rounds the shortest decimal form of the double half up (2.5005 -> 2.501),
/// where Rust rounds the exact binary value half to even. Matching it keeps our output
/// byte-identical to HdrHistogram's.
pub fn java_fixed(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let negative = v.is_sign_negative() && v != 0.0;
    // Rust's Display of f64 is the shortest round-trip form and never uses exponents.
    let shortest = format!("{}", v.abs());
    let (int, frac) = shortest.split_once('.').unwrap_or((&shortest, ""));
    let mut digits: Vec<u8> = int
        .bytes()
        .chain(frac.bytes().chain(std::iter::repeat(b'0')).take(decimals))
        .map(|b| b - b'0')
        .collect();
    if frac.len() > decimals && frac.as_bytes()[decimals] >= b'5' {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - decimals;
    let mut s = String::with_capacity(digits.len() + 2);
    if negative {
        s.push('-');
    }
    s.extend(digits[..split].iter().map(|d| char::from(b'0' + d)));
    if decimals > 0 {
        s.push('.');
        s.extend(digits[split..].iter().map(|d| char::from(b'0' + d)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_fixed_rounds_like_java_formatter() {
        assert_eq!(java_fixed(2.5005, 3), "2.501");
        assert_eq!(java_fixed(0.125, 2), "0.13");
        assert_eq!(java_fixed(1.005, 2), "1.01");
        assert_eq!(java_fixed(9.9996, 3), "10.000");
        assert_eq!(java_fixed(0.1, 12), "0.100000000000");
        assert_eq!(java_fixed(1.0 / 0.9, 2), "1.11");
        assert_eq!(java_fixed(42.0, 0), "42");
        assert_eq!(java_fixed(-1.5, 1), "-1.5");
        assert_eq!(java_fixed(0.30000000000000004, 12), "0.300000000000");
    }

    #[test]
    fn selection_explains_missing_runs_and_cases() {
        let r = crate::test_support::synthetic("6.1.0", &[100.0, 101.0]);
        let src = Path::new("r.json");
        assert_eq!(select(&r, src, None, None).unwrap().runs.len(), 2);
        assert_eq!(select(&r, src, None, Some(1)).unwrap().runs.len(), 1);
        let err = select(&r, src, None, Some(7)).unwrap_err().to_string();
        assert!(err.contains("runs are: 0, 1"), "{err}");
        let err = select(&r, src, Some("threads=2"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a sweep"), "{err}");
    }
}
