//! Bencher Metric Format (BMF) JSON, which Bencher (`bencher run --adapter json`) and
//! other continuous-benchmarking services read:
//!
//! ```json
//! {"quick": {"latency_ns.p99": {"value": 5120.0, "lower_value": 4980.2, "upper_value": 5259.8}}}
//! ```
//!
//! One benchmark per sweep case (`<workload>` or `<workload> <case>`), one measure per
//! figure `compare` knows (its key; stored units: ns, ops/s, bytes/s), valued at the mean
//! over the selected runs, with the 95 % confidence interval (Student's t) as the bounds
//! where there are two runs or more. The counters that only prove conditions (vmstat,
//! disturber actions) are left out: they are not performance; so is the lock wait per
//! caller (each run's top callers, a different set every time; the total stays). A result that is not
//! evidence is refused: a service would chart it as a measurement.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use super::{figures, Exporter, Selection};
use crate::compare::Category;

pub struct Bmf;

impl Exporter for Bmf {
    fn export(&self, sel: &Selection, source: &Path, out: &mut dyn Write) -> Result<()> {
        if let Some(why) = sel.result.not_evidence_reason() {
            bail!(
                "{}: not evidence ({why}); continuous-benchmarking services would chart it as a \
                 measurement. Export it as kcidb (which marks it ERROR) or fix the run",
                source.display()
            );
        }
        let name = &sel.result.workload.name;
        let mut doc: Map<String, Value> = Map::new();
        for f in figures(sel) {
            // Conditions are not performance; the per-caller lock rows are the top callers
            // of each run, a different set every time (the total wait stays).
            if f.def.category == Category::Conditions
                || f.def.key.starts_with("lock_contention.by_caller.")
            {
                continue;
            }
            let Some(est) = crate::stats::estimate(&f.values) else {
                continue;
            };
            let bench = match f.case {
                Some(c) => format!("{name} {c}"),
                None => name.clone(),
            };
            let mut m = Map::new();
            m.insert("value".into(), json!(est.mean));
            if let Some(ci) = est.ci95 {
                m.insert("lower_value".into(), json!(est.mean - ci));
                m.insert("upper_value".into(), json!(est.mean + ci));
            }
            doc.entry(bench)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("a benchmark is an object")
                .insert(f.def.key.clone(), Value::Object(m));
        }
        serde_json::to_writer_pretty(&mut *out, &Value::Object(doc))?;
        out.write_all(b"\n")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::select;

    #[test]
    fn bounds_are_the_95_percent_interval_of_the_mean() {
        let r = crate::test_support::synthetic("6.1.0", &[100.0, 110.0, 120.0]);
        let src = Path::new("r.json");
        let mut out = Vec::new();
        Bmf.export(&select(&r, src, None, None).unwrap(), src, &mut out)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let ops = &v["quick"]["ops_per_sec"];
        assert_eq!(ops["value"], 110.0);
        // stddev 10, n 3: t(0.975, 2) = 4.303 -> half-width 24.84.
        let lower = ops["lower_value"].as_f64().unwrap();
        let upper = ops["upper_value"].as_f64().unwrap();
        assert!((110.0 - lower - 24.84).abs() < 0.01, "{lower}");
        assert!((upper - 110.0 - 24.84).abs() < 0.01, "{upper}");
        assert!(v["quick"].get("latency_ns.p99").is_some());
    }

    #[test]
    fn a_result_that_is_not_evidence_is_refused() {
        let mut r = crate::test_support::synthetic("6.1.0", &[100.0]);
        r.interrupted = true;
        let src = Path::new("r.json");
        let err = Bmf
            .export(&select(&r, src, None, None).unwrap(), src, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not evidence"), "{err}");
    }
}
