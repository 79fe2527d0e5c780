//! CSV forms: the per-100 ms timeline (`csv`) and the percentile table (`percentiles-csv`,
//! exactly what Java HdrHistogram's `outputPercentileDistribution(..., useCsvFormat =
//! true)` writes). Two formats rather than two tables in one file, so that every CSV tool
//! reads each as it is.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::hgrm::{percentile_lines, TICKS_PER_HALF_DISTANCE, VALUE_SCALING_RATIO};
use super::{java_fixed, merged_histogram, Exporter, Selection};

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `case,run,t_ms,ops,bytes,p50_ns,p99_ns,max_ns,actions:<disturber>...`: one row per
/// 100 ms interval of every selected run; `case` is empty for a plain result.
pub struct TimelineCsv;

impl Exporter for TimelineCsv {
    fn export(&self, sel: &Selection, _source: &Path, out: &mut dyn Write) -> Result<()> {
        let disturbers: BTreeSet<&str> = sel
            .runs
            .iter()
            .flat_map(|s| s.run.timeline.iter())
            .flat_map(|p| p.disturb_actions.keys().map(String::as_str))
            .chain(
                sel.runs
                    .iter()
                    .flat_map(|s| s.run.disturbers.iter().map(|d| d.name.as_str())),
            )
            .collect();
        let mut s = String::from("case,run,t_ms,ops,bytes,p50_ns,p99_ns,max_ns");
        for d in &disturbers {
            s.push(',');
            s.push_str(&field(&format!("actions:{d}")));
        }
        s.push('\n');
        for sel_run in &sel.runs {
            for p in &sel_run.run.timeline {
                s.push_str(&format!(
                    "{},{},{},{},{},{},{},{}",
                    field(sel_run.case.unwrap_or("")),
                    sel_run.run.repeat,
                    p.t_ms,
                    p.ops,
                    p.bytes,
                    p.p50_ns,
                    p.p99_ns,
                    p.max_ns
                ));
                for d in &disturbers {
                    s.push_str(&format!(
                        ",{}",
                        p.disturb_actions.get(*d).copied().unwrap_or(0)
                    ));
                }
                s.push('\n');
            }
        }
        out.write_all(s.as_bytes())?;
        Ok(())
    }
}

/// `"Value","Percentile","TotalCount","1/(1-Percentile)"` of the merged histogram of the
/// selected runs, values in us.
pub struct PercentilesCsv;

impl Exporter for PercentilesCsv {
    fn export(&self, sel: &Selection, source: &Path, out: &mut dyn Write) -> Result<()> {
        let h = merged_histogram(sel, source)?;
        let decimals = usize::from(h.sigfig());
        let mut s = String::from("\"Value\",\"Percentile\",\"TotalCount\",\"1/(1-Percentile)\"\n");
        for line in percentile_lines(&h, TICKS_PER_HALF_DISTANCE) {
            let value = java_fixed(line.value as f64 / VALUE_SCALING_RATIO, decimals);
            let pct = java_fixed(line.percentile, 12);
            let inverse = if line.last {
                "Infinity".to_string()
            } else {
                java_fixed(1.0 / (1.0 - line.percentile), 2)
            };
            s.push_str(&format!("{value},{pct},{},{inverse}\n", line.total_count));
        }
        out.write_all(s.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::select;
    use crate::measure::histogram::{encode_compressed, new_histogram};
    use crate::result::TimelinePoint;

    #[test]
    fn timeline_has_a_header_and_one_row_per_interval_with_actions() {
        let mut r = crate::test_support::synthetic("6.1.0", &[100.0]);
        r.runs[0].timeline = (0..3)
            .map(|i| TimelinePoint {
                t_ms: i * 100,
                ops: 10 + i,
                bytes: 4096 * (10 + i),
                p50_ns: 1000,
                p99_ns: 5000,
                max_ns: 9000,
                disturb_actions: if i == 1 {
                    [("split:cold".to_string(), 4u64)].into()
                } else {
                    Default::default()
                },
            })
            .collect();
        let src = Path::new("r.json");
        let mut out = Vec::new();
        TimelineCsv
            .export(&select(&r, src, None, None).unwrap(), src, &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "case,run,t_ms,ops,bytes,p50_ns,p99_ns,max_ns,actions:split:cold"
        );
        assert_eq!(lines[2], ",0,100,11,45056,1000,5000,9000,4");
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn percentile_csv_ends_with_infinity() {
        let mut r = crate::test_support::synthetic("6.1.0", &[100.0]);
        let mut h = new_histogram();
        for v in [1000u64, 2000, 3000, 4000] {
            h.record(v).unwrap();
        }
        r.runs[0].histogram = encode_compressed(&h);
        let src = Path::new("r.json");
        let mut out = Vec::new();
        PercentilesCsv
            .export(&select(&r, src, None, None).unwrap(), src, &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "1.000,0.000000000000,1,1.00");
        assert_eq!(lines[7], "3.001,0.550000000000,3,2.22");
        assert_eq!(*lines.last().unwrap(), "4.001,1.000000000000,4,Infinity");
    }
}
