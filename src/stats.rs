//! Statistics over repeats: estimates with Student's t confidence intervals, Welch's
//! t-test, relative change and thread-scaling efficiency. A leaf: it imports nothing of
//! the crate, so compare, run, summary and plot can all use it (criterion's src/stats/).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Two-sided significance level of the t-test.
pub const ALPHA: f64 = 0.05;

/// Mean and spread of one metric over repeats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for a single value.
    pub stddev: f64,
    /// Half-width of the 95% confidence interval of the mean (Student's t); `None` with
    /// fewer than two values, where there is no spread to speak of.
    pub ci95: Option<f64>,
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom.
fn t_quantile_975(df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df)
        .map(|t| t.inverse_cdf(1.0 - ALPHA / 2.0))
        .unwrap_or(f64::NAN)
}

pub fn estimate(values: &[f64]) -> Option<Estimate> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(Estimate {
            n,
            mean,
            stddev: 0.0,
            ci95: None,
        });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let stddev = var.sqrt();
    let ci95 = t_quantile_975((n - 1) as f64) * stddev / (n as f64).sqrt();
    Some(Estimate {
        n,
        mean,
        stddev,
        ci95: Some(ci95),
    })
}

/// Welch's unequal-variance t-test of `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WelchTest {
    pub t: f64,
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Needs at least two values on each side. When both sides have no spread at all (e.g. a
/// vmstat counter that is 0 in every run), equal means give p = 1, and different means
/// no test at all (None): no spread says nothing about the noise (two HDR-quantised
/// percentiles per side can each repeat exactly), so p = 0 would call better or worse
/// on that alone.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<WelchTest> {
    let ea = estimate(a)?;
    let eb = estimate(b)?;
    if ea.n < 2 || eb.n < 2 {
        return None;
    }
    let va = ea.stddev.powi(2) / ea.n as f64;
    let vb = eb.stddev.powi(2) / eb.n as f64;
    let diff = eb.mean - ea.mean;
    if va + vb == 0.0 {
        return (diff == 0.0).then_some(WelchTest {
            t: 0.0,
            df: (ea.n + eb.n - 2) as f64,
            p_value: 1.0,
        });
    }
    let t = diff / (va + vb).sqrt();
    let df = (va + vb).powi(2) / (va.powi(2) / (ea.n - 1) as f64 + vb.powi(2) / (eb.n - 1) as f64);
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p_value = (2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0);
    Some(WelchTest { t, df, p_value })
}

/// Half-width of the Welch 95% interval of mean(a) - mean(b) (unequal variances,
/// Welch-Satterthwaite degrees of freedom); None below two values on either side, 0
/// when neither side spreads.
pub fn welch_ci95_of_difference(a: &[f64], b: &[f64]) -> Option<f64> {
    let (ea, eb) = (estimate(a)?, estimate(b)?);
    if ea.n < 2 || eb.n < 2 {
        return None;
    }
    let va = ea.stddev.powi(2) / ea.n as f64;
    let vb = eb.stddev.powi(2) / eb.n as f64;
    let se2 = va + vb;
    if se2 == 0.0 {
        return Some(0.0);
    }
    let df = se2.powi(2) / (va.powi(2) / (ea.n - 1) as f64 + vb.powi(2) / (eb.n - 1) as f64);
    Some(t_quantile_975(df) * se2.sqrt())
}

// ------------------------------------------------------------------------------------

/// Change of `mean` against `base` in %. `None` where the base is 0 and the mean is not
/// (no finite ratio); 0 when both are 0.
pub fn change_pct(base: f64, mean: f64) -> Option<f64> {
    if base != 0.0 {
        Some((mean - base) / base.abs() * 100.0)
    } else if mean == 0.0 {
        Some(0.0)
    } else {
        None
    }
}

/// Throughput at `threads` if it grew linearly from `reference_ops` at
/// `reference_threads`.
pub fn linear_scaling(reference_threads: f64, reference_ops: f64, threads: f64) -> f64 {
    reference_ops * threads / reference_threads
}

/// Thread-scaling efficiency: `ops` at `threads` over linear scaling from the reference
/// point (1.0 = perfect). `None` when the reference has no throughput or no threads.
pub fn scaling_efficiency(
    reference_threads: f64,
    reference_ops: f64,
    threads: f64,
    ops: f64,
) -> Option<f64> {
    (reference_ops > 0.0 && reference_threads > 0.0)
        .then(|| ops / linear_scaling(reference_threads, reference_ops, threads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_welch_interval_of_a_difference_uses_welch_satterthwaite_df() {
        // Variances 1 and 1 over 3 values each: se^2 = 2/3, df = 4, t(0.975, 4) = 2.7764.
        let half = welch_ci95_of_difference(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!(
            (half - 2.7764 * (2.0f64 / 3.0).sqrt()).abs() < 1e-3,
            "{half}"
        );
        assert_eq!(welch_ci95_of_difference(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(
            welch_ci95_of_difference(&[2.0, 2.0], &[1.0, 1.0]),
            Some(0.0)
        );
    }

    #[test]
    fn welch_matches_a_known_textbook_value() {
        // Two samples whose Welch t and df are easy to check by hand:
        // means 100.4 and 120, variances 1.3 and 2.5 (n = 5 each):
        // t = 19.6 / sqrt(0.26 + 0.5) = 22.483, df = 0.5776 / (0.0169 + 0.0625) = 7.2745.
        let a = [100.0, 101.0, 99.0, 100.0, 102.0];
        let b = [120.0, 119.0, 121.0, 122.0, 118.0];
        let t = welch_t_test(&a, &b).unwrap();
        assert!((t.t - 22.4834).abs() < 1e-3, "{t:?}");
        assert!((t.df - 7.2745).abs() < 1e-3, "{t:?}");
        assert!(t.p_value < 1e-6, "{t:?}");
    }

    /// n = 2 p99s that repeat exactly on each side (HDR buckets) but differ between the
    /// sides: no spread to judge by, so no test (formerly p = 0, "better" or "worse").
    #[test]
    fn zero_variance_pairs_with_different_means_get_no_p_value() {
        assert_eq!(welch_t_test(&[1023.0, 1023.0], &[1031.0, 1031.0]), None);
        let same = welch_t_test(&[7.0, 7.0], &[7.0, 7.0]).unwrap();
        assert_eq!(same.p_value, 1.0);
    }

    #[test]
    fn confidence_interval_uses_students_t() {
        // n = 5, s = sqrt(1.3): t(0.975, 4) = 2.776445 -> half-width 1.41571.
        let e = estimate(&[100.0, 101.0, 99.0, 100.0, 102.0]).unwrap();
        assert!((e.mean - 100.4).abs() < 1e-9);
        assert!((e.ci95.unwrap() - 1.41571).abs() < 1e-4, "{e:?}");
        assert_eq!(estimate(&[5.0]).unwrap().ci95, None);
    }

    #[test]
    fn scaling_efficiency_is_throughput_over_linear_scaling() {
        // 1 thread at 100 ops/s, 4 threads at 324: 324 / 400.
        assert_eq!(linear_scaling(1.0, 100.0, 4.0), 400.0);
        assert!((scaling_efficiency(1.0, 100.0, 4.0, 324.0).unwrap() - 0.81).abs() < 1e-12);
        // From 2 threads at 180: 4 threads ideally 360.
        assert!((scaling_efficiency(2.0, 180.0, 4.0, 324.0).unwrap() - 0.9).abs() < 1e-12);
        assert_eq!(scaling_efficiency(1.0, 0.0, 4.0, 324.0), None);
    }

    #[test]
    fn change_is_relative_to_the_base_and_undefined_from_zero() {
        assert_eq!(change_pct(100.0, 120.0), Some(20.0));
        assert_eq!(change_pct(-50.0, -25.0), Some(50.0));
        assert_eq!(change_pct(0.0, 0.0), Some(0.0));
        assert_eq!(change_pct(0.0, 3.0), None);
    }
}
