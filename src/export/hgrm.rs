//! The `.hgrm` percentile distribution: the text Java HdrHistogram's
//! `outputPercentileDistribution(out, 5, 1000.0)` prints for a histogram of nanoseconds,
//! so values are in microseconds. The HdrHistogram plotter
//! (hdrhistogram.github.io/HdrHistogram/plotFiles.html) reads it.
//!
//! The iteration is Java's `PercentileIterator`, reproduced here rather than taken from
//! the `hdrhistogram` crate's `iter_quantiles`: the crate steps in quantiles (0..1), and
//! 0.1 + 0.1 + 0.1 > 0.3 in floating point, so it reaches some levels one value later
//! than Java, which steps in percent (10 + 10 + 10 == 30).

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use hdrhistogram::Histogram;

use super::{java_fixed, merged_histogram, Exporter, Selection};

/// Ticks per half distance to 100%, HdrHistogram's default.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// ns -> us.
pub const VALUE_SCALING_RATIO: f64 = 1000.0;

/// One line of the distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentileLine {
    /// The highest value equivalent to the one iterated to, in recorded units (ns).
    pub value: u64,
    /// The percentile level iterated to, as a fraction (0..=1).
    pub percentile: f64,
    /// Count of all values up to and including this one.
    pub total_count: u64,
    /// The extra last line at 100%, which has no 1/(1-Percentile) column.
    pub last: bool,
}

/// Java's `PercentileIterator` over `h`.
pub fn percentile_lines(h: &Histogram<u64>, ticks_per_half_distance: u32) -> Vec<PercentileLine> {
    let total = h.len();
    let mut out = Vec::new();
    if total == 0 {
        return out;
    }
    let mut level = 0.0_f64; // percent, as Java keeps it
    let mut running = 0u64;
    let mut last_value = 0u64;
    for v in h.iter_recorded() {
        let count = v.count_at_value();
        running += count;
        last_value = v.value_iterated_to();
        loop {
            let reached = 100.0 * running as f64 / total as f64 >= level;
            if !reached {
                break;
            }
            out.push(PercentileLine {
                value: last_value,
                percentile: level / 100.0,
                total_count: running,
                last: false,
            });
            level += 100.0 / ticks_at(level, ticks_per_half_distance) as f64;
            // Java's iterator stops stepping once every count is seen; the last step is
            // the separate 100% line below.
            if running >= total {
                break;
            }
        }
        if running >= total {
            break;
        }
    }
    out.push(PercentileLine {
        value: last_value,
        percentile: 1.0,
        total_count: running,
        last: true,
    });
    out
}

/// Java: `ticksPerHalfDistance * 2^((long) log2(100 / (100 - level)) + 1)`.
fn ticks_at(level: f64, ticks_per_half_distance: u32) -> i64 {
    let halvings = ((100.0 / (100.0 - level)).ln() / 2.0_f64.ln()) as i64;
    i64::from(ticks_per_half_distance) * 2.0_f64.powi((halvings + 1) as i32) as i64
}

/// Java's mean: every count at the middle of its bucket, summed, then divided once.
fn java_mean(h: &Histogram<u64>) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let total: f64 = h
        .iter_recorded()
        .map(|v| h.median_equivalent(v.value_iterated_to()) as f64 * v.count_at_value() as f64)
        .sum();
    total / h.len() as f64
}

fn java_stddev(h: &Histogram<u64>) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let mean = java_mean(h);
    let total: f64 = h
        .iter_recorded()
        .map(|v| {
            let d = h.median_equivalent(v.value_iterated_to()) as f64 - mean;
            d * d * v.count_at_value() as f64
        })
        .sum();
    (total / h.len() as f64).sqrt()
}

/// Sub-buckets per bucket, as Java computes it from the significant figures.
fn sub_bucket_count(h: &Histogram<u64>) -> u64 {
    let largest_single_unit = 2.0 * 10f64.powi(i32::from(h.sigfig()));
    let magnitude = largest_single_unit.log2().ceil() as u32;
    let half_magnitude = magnitude.max(1) - 1;
    1u64 << (half_magnitude + 1)
}

/// The whole `.hgrm` text of `h`, values divided by `scaling_ratio`.
pub fn render(h: &Histogram<u64>, scaling_ratio: f64) -> String {
    // Java prints values with as many decimals as the histogram has significant figures.
    let decimals = usize::from(h.sigfig());
    let mut s = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for line in percentile_lines(h, TICKS_PER_HALF_DISTANCE) {
        let value = java_fixed(line.value as f64 / scaling_ratio, decimals);
        let pct = java_fixed(line.percentile, 12);
        if line.last {
            s.push_str(&format!("{value:>12} {pct:>2} {:>10}\n", line.total_count));
        } else {
            let inverse = java_fixed(1.0 / (1.0 - line.percentile), 2);
            s.push_str(&format!(
                "{value:>12} {pct:>2} {:>10} {inverse:>14}\n",
                line.total_count
            ));
        }
    }
    let fixed = |v: f64| java_fixed(v / scaling_ratio, decimals);
    s.push_str(&format!(
        "#[Mean    = {:>12}, StdDeviation   = {:>12}]\n",
        fixed(java_mean(h)),
        fixed(java_stddev(h))
    ));
    let max = if h.is_empty() { 0 } else { h.max() };
    s.push_str(&format!(
        "#[Max     = {:>12}, Total count    = {:>12}]\n",
        fixed(max as f64),
        h.len()
    ));
    s.push_str(&format!(
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]\n",
        h.buckets(),
        sub_bucket_count(h)
    ));
    s
}

pub struct Hgrm;

impl Exporter for Hgrm {
    fn export(&self, sel: &Selection, source: &Path, out: &mut dyn Write) -> Result<()> {
        let h = merged_histogram(sel, source)?;
        out.write_all(render(&h, VALUE_SCALING_RATIO).as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::histogram::new_histogram;

    /// Four values, one each, worked through Java's iterator by hand:
    /// 1000 ns and 2000 ns are exact (the first bucket has 1 ns resolution up to 2047);
    /// 3000 and 4000 fall in the second bucket (2 ns resolution), so Java prints their
    /// highest equivalent values 3001 and 4001. Levels: 0, 10, 20 at 1000 (25% of the
    /// count); 30, 40, 50 at 2000 (50%); the tick halves at 50%: 55, 60, 65, 70, 75 at
    /// 3000 (75%); it halves again at 75%: 77.5 at 4000, which holds the last count, so
    /// the 100% line follows. Mean of the bucket middles 1000, 2000, 3001, 4001 = 2500.5,
    /// population standard deviation sqrt(5004001 / 4) = 1118.48.
    const EXPECTED: &str = "       Value     Percentile TotalCount 1/(1-Percentile)

       1.000 0.000000000000          1           1.00
       1.000 0.100000000000          1           1.11
       1.000 0.200000000000          1           1.25
       2.000 0.300000000000          2           1.43
       2.000 0.400000000000          2           1.67
       2.000 0.500000000000          2           2.00
       3.001 0.550000000000          3           2.22
       3.001 0.600000000000          3           2.50
       3.001 0.650000000000          3           2.86
       3.001 0.700000000000          3           3.33
       3.001 0.750000000000          3           4.00
       4.001 0.775000000000          4           4.44
       4.001 1.000000000000          4
#[Mean    =        2.501, StdDeviation   =        1.118]
#[Max     =        4.001, Total count    =            4]
#[Buckets =           26, SubBuckets     =         2048]
";

    #[test]
    fn hgrm_matches_java_hdrhistogram_on_known_values() {
        let mut h = new_histogram();
        for v in [1000u64, 2000, 3000, 4000] {
            h.record(v).unwrap();
        }
        let text = render(&h, VALUE_SCALING_RATIO);
        for (got, want) in text.lines().zip(EXPECTED.lines()) {
            assert_eq!(got, want);
        }
        assert_eq!(text, EXPECTED);
    }

    #[test]
    fn a_single_value_gives_the_first_and_the_last_line() {
        let mut h = new_histogram();
        h.record_n(80_000, 10).unwrap();
        let lines = percentile_lines(&h, 5);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].percentile, 0.0);
        assert!(lines[1].last && lines[1].total_count == 10);
        // 80000 lies in a bucket of 64 ns: its highest equivalent is 80063.
        assert_eq!(lines[1].value, h.highest_equivalent(80_000));
        assert_eq!(lines[1].value, 80_063);
    }

    #[test]
    fn empty_histogram_has_header_and_footer_only() {
        let text = render(&new_histogram(), VALUE_SCALING_RATIO);
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("Total count    =            0"));
    }
}
