//! KernelCI's KCIDB I/O data (schema 5.3, as `kcidb_io.schema.LATEST` validates it), for
//! `kci-dev submit --from-json`: one checkout (the kernel release), one build (the
//! release and `uname -v`, which tell two builds of a release apart), and tests on that
//! build:
//!
//! - one test per figure of every sweep case (`thpbench.<workload>[.<case>].<figure>`),
//!   status DONE, whose `number` is the mean over the selected runs, in SI units with the
//!   prefix for display (latencies in s, throughput in B/s); `misc` holds each run's value
//!   and the 95 % interval;
//! - integrity tests: `...integrity.verify` (FAIL when any byte read back differed, PASS
//!   when every byte matched, SKIP with verify off), `...integrity.<figure>` for the other
//!   integrity figures (fork children that saw their buffer change), and `thpbench.<workload>.validity` (PASS for a valid result,
//!   ERROR when the conditions the workload asked for did not hold or it was interrupted:
//!   such a run says nothing about the kernel either way).
//!
//! A result that is not evidence has its figures as ERROR, not DONE, so that no dashboard
//! counts them as measurements.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use super::{figures, Exporter, Selection};
use crate::compare::{Category, Unit};
use crate::result::{BenchResult, KernelInfo};

/// KCIDB's schema version this writes.
pub const MAJOR: u32 = 5;
pub const MINOR: u32 = 3;
/// The CI system's name in ids and `origin`; a lab that submits under its own name sets
/// THPBENCH_KCIDB_ORIGIN.
pub const DEFAULT_ORIGIN: &str = "thpbench";
pub const ORIGIN_ENV: &str = "THPBENCH_KCIDB_ORIGIN";
/// The verify figure, written as the `integrity.verify` test from the runs' reports.
const VERIFY_KEY: &str = "verify.mismatches";

/// 64-bit FNV-1a: a hash that stays the same across Rust versions, for ids.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What tells one kernel build from another. Today `uname -r` and `uname -v` (the build
/// number and time); when results carry the kernel's GNU build-id, return that here and
/// every build id follows.
pub fn build_identity(kernel: &KernelInfo) -> String {
    format!("{}\n{}", kernel.release, kernel.version)
}

/// A KCIDB path segment: letters, digits, `_` and `-` only (`p99.9` would be two levels).
fn segment(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches('_').to_string();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// A dotted key (`latency_ns.p99`, `disturbers.split:cold.actions`) as path segments.
fn path_of(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| p.split('.'))
        .map(segment)
        .collect::<Vec<_>>()
        .join(".")
}

/// The figure's mean in the unit KCIDB displays: (value, unit, prefix).
fn number(unit: Unit, mean: f64) -> Value {
    let (value, unit, prefix) = match unit {
        Unit::OpsPerSec => (mean, Some("op/s"), Some("metric")),
        Unit::BytesPerSec => (mean, Some("B/s"), Some("binary")),
        Unit::Nanoseconds => (mean / 1e9, Some("s"), Some("metric")),
        Unit::Count => (mean, None, Some("metric")),
        Unit::PerOp => (mean, Some("/op"), None),
        Unit::Percent => (mean, Some("%"), None),
        Unit::Plain => (mean, None, None),
    };
    let mut n = Map::new();
    n.insert("value".into(), json!(value));
    if let Some(u) = unit {
        n.insert("unit".into(), json!(u));
    }
    if let Some(p) = prefix {
        n.insert("prefix".into(), json!(p));
    }
    Value::Object(n)
}

fn origin() -> Result<String> {
    let origin = std::env::var(ORIGIN_ENV).unwrap_or_else(|_| DEFAULT_ORIGIN.into());
    if origin.is_empty()
        || !origin
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!(
            "{ORIGIN_ENV}={origin:?}: a KCIDB origin is lower-case letters, digits and _ \
             (the name your CI system submits under, e.g. my_lab)"
        );
    }
    Ok(origin)
}

/// The checkout, the build and the ids tests hang from.
struct Ids {
    origin: String,
    checkout: String,
    build: String,
    /// Unique to this result: the build, the host, the start time and the tool.
    result: String,
}

impl Ids {
    fn new(r: &BenchResult) -> Result<Ids> {
        let origin = origin()?;
        let k = &r.system.kernel;
        let build_key = format!("{:016x}", fnv1a(&build_identity(k)));
        let result_key = format!(
            "{:016x}",
            fnv1a(&format!(
                "{build_key}\n{}\n{}\n{} {}",
                r.system.hostname, r.started_at, r.tool.name, r.tool.version
            ))
        );
        Ok(Ids {
            checkout: format!("{origin}:{}", k.release),
            build: format!("{origin}:{}-{build_key}", k.release),
            result: format!("{origin}:{result_key}"),
            origin,
        })
    }

    fn test(&self, path: &str) -> String {
        format!("{}.{path}", self.result)
    }
}

pub struct Kcidb;

impl Exporter for Kcidb {
    fn export(&self, sel: &Selection, _source: &Path, out: &mut dyn Write) -> Result<()> {
        let doc = kcidb_document(sel)?;
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        out.write_all(b"\n")?;
        Ok(())
    }
}

/// The KCIDB document of the selected runs.
pub fn kcidb_document(sel: &Selection) -> Result<Value> {
    let r = sel.result;
    let ids = Ids::new(r)?;
    let k = &r.system.kernel;
    let checkout = json!({
        "id": ids.checkout,
        "origin": ids.origin,
        "comment": format!("Linux {} (uname -r; the source commit is not recorded)", k.release),
        "misc": {"release": k.release},
    });
    let build = json!({
        "id": ids.build,
        "checkout_id": ids.checkout,
        "origin": ids.origin,
        "comment": format!("uname -r {}, uname -v {}", k.release, k.version),
        "misc": {"release": k.release, "version": k.version, "cmdline": k.cmdline},
    });
    let not_evidence = r.not_evidence_reason();
    let workload = segment(&r.workload.name);
    let environment = json!({
        "comment": r.system.hostname,
        "misc": {
            "cpus": r.system.cpus.len(),
            "lockdown": r.system.lockdown,
            "thp_enabled": r.system.thp.enabled,
            "thp_defrag": r.system.thp.defrag,
        },
    });
    let test = |path: String, status: &str, comment: String, extra: Map<String, Value>| {
        let mut t = Map::new();
        t.insert("id".into(), json!(ids.test(&path)));
        t.insert("build_id".into(), json!(ids.build));
        t.insert("origin".into(), json!(ids.origin));
        t.insert("path".into(), json!(path));
        t.insert("status".into(), json!(status));
        t.insert("comment".into(), json!(comment));
        t.insert("start_time".into(), json!(r.started_at));
        t.insert("environment".into(), environment.clone());
        t.extend(extra);
        Value::Object(t)
    };
    let mut tests = Vec::new();
    let figs = figures(sel);
    for f in &figs {
        if f.def.category == Category::Integrity {
            continue;
        }
        let Some(est) = crate::stats::estimate(&f.values) else {
            continue;
        };
        let path = match f.case {
            Some(c) => path_of(&["thpbench", &workload, c, &f.def.key]),
            None => path_of(&["thpbench", &workload, &f.def.key]),
        };
        let status = if not_evidence.is_some() {
            "ERROR"
        } else {
            "DONE"
        };
        let comment = match &not_evidence {
            Some(why) => format!("{}: not evidence: {why}", f.def.label),
            None => format!("{}, mean of {} run(s)", f.def.label, est.n),
        };
        let mut extra = Map::new();
        extra.insert("number".into(), number(f.def.unit, est.mean));
        extra.insert(
            "misc".into(),
            json!({
                "key": f.def.key,
                "case": f.case,
                "values": f.values,
                "stddev": est.stddev,
                "ci95": est.ci95,
                "thpbench_version": r.tool.version,
            }),
        );
        tests.push(test(path, status, comment, extra));
    }
    // Integrity, per case: verify and fork children.
    let mut cases: Vec<Option<&str>> = Vec::new();
    for s in &sel.runs {
        if !cases.contains(&s.case) {
            cases.push(s.case);
        }
    }
    for case in cases {
        let runs: Vec<_> = sel
            .runs
            .iter()
            .filter(|s| s.case == case)
            .map(|s| s.run)
            .collect();
        let base = match case {
            Some(c) => path_of(&["thpbench", &workload, c, "integrity"]),
            None => path_of(&["thpbench", &workload, "integrity"]),
        };
        let verified: Vec<_> = runs.iter().filter(|r| r.verify.enabled).collect();
        let (status, comment, mismatches) = if verified.is_empty() {
            ("SKIP", "verify was off: nothing was checked".to_string(), 0)
        } else {
            let mismatches: u64 = verified.iter().map(|r| r.verify.mismatches).sum();
            let bytes: u64 = verified.iter().map(|r| r.verify.bytes_checked).sum();
            let failing = verified.iter().filter(|r| r.verify.mismatches > 0).count();
            if mismatches > 0 {
                (
                    "FAIL",
                    format!(
                        "{mismatches} mismatches in {failing} of {} runs ({bytes} bytes checked)",
                        verified.len()
                    ),
                    mismatches,
                )
            } else {
                (
                    "PASS",
                    format!(
                        "every byte read matched ({bytes} bytes checked in {} runs)",
                        verified.len()
                    ),
                    0,
                )
            }
        };
        let mut extra = Map::new();
        if status != "SKIP" {
            extra.insert("number".into(), number(Unit::Count, mismatches as f64));
        }
        tests.push(test(format!("{base}.verify"), status, comment, extra));
        // Other integrity figures (fork children that saw their buffer change): any is a
        // failure.
        for f in figs.iter().filter(|f| {
            f.case == case && f.def.category == Category::Integrity && f.def.key != VERIFY_KEY
        }) {
            let n: f64 = f.values.iter().sum();
            let mut extra = Map::new();
            extra.insert("number".into(), number(Unit::Count, n));
            tests.push(test(
                format!("{base}.{}", path_of(&[&f.def.key])),
                if n > 0.0 { "FAIL" } else { "PASS" },
                format!("{}: {n} over {} run(s)", f.def.label, f.values.len()),
                extra,
            ));
        }
    }
    let (status, comment) = match &not_evidence {
        Some(why) => ("ERROR", format!("not evidence: {why}")),
        None => ("PASS", "every condition the workload asked for held".into()),
    };
    tests.push(test(
        path_of(&["thpbench", &workload, "validity"]),
        status,
        comment,
        Map::new(),
    ));
    Ok(json!({
        "version": {"major": MAJOR, "minor": MINOR},
        "checkouts": [checkout],
        "builds": [build],
        "tests": tests,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::select;

    fn doc(r: &BenchResult) -> Value {
        let src = Path::new("r.json");
        kcidb_document(&select(r, src, None, None).unwrap()).unwrap()
    }

    #[test]
    fn paths_are_kcidb_paths_and_ids_are_unique() {
        let mut r = crate::test_support::synthetic("6.1.0", &[100.0, 110.0]);
        r.runs[0].verify.enabled = true;
        r.runs[1].verify.enabled = true;
        r.runs[1].verify.mismatches = 3;
        let d = doc(&r);
        let tests = d["tests"].as_array().unwrap();
        let mut ids: Vec<&str> = tests.iter().map(|t| t["id"].as_str().unwrap()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate test ids");
        for t in tests {
            let p = t["path"].as_str().unwrap();
            assert!(
                p.split('.').all(|s| !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')),
                "{p}"
            );
        }
        let get = |p: &str| tests.iter().find(|t| t["path"] == p).unwrap();
        let ops = get("thpbench.quick.ops_per_sec");
        assert_eq!(ops["status"], "DONE");
        assert_eq!(ops["number"]["value"], 105.0);
        let p99 = get("thpbench.quick.latency_ns.p99");
        assert_eq!(p99["number"]["unit"], "s");
        let verify = get("thpbench.quick.integrity.verify");
        assert_eq!(verify["status"], "FAIL");
        assert_eq!(verify["number"]["value"], 3.0);
        assert_eq!(get("thpbench.quick.validity")["status"], "PASS");
    }

    #[test]
    fn another_build_of_the_same_release_is_another_build() {
        let a = crate::test_support::synthetic("6.1.0", &[100.0]);
        let mut b = a.clone();
        b.system.kernel.version = "#2 SMP".into();
        assert_eq!(doc(&a)["checkouts"][0]["id"], doc(&b)["checkouts"][0]["id"]);
        assert_ne!(doc(&a)["builds"][0]["id"], doc(&b)["builds"][0]["id"]);
    }

    #[test]
    fn an_invalid_result_reports_no_measurements() {
        let mut r = crate::test_support::synthetic("6.1.0", &[100.0]);
        r.valid = false;
        r.invalid_reasons = vec!["buffer coverage 0.4 below 0.99".into()];
        let d = doc(&r);
        let tests = d["tests"].as_array().unwrap();
        assert!(tests.iter().all(|t| t["status"] != "DONE"));
        let validity = tests
            .iter()
            .find(|t| t["path"] == "thpbench.quick.validity")
            .unwrap();
        assert_eq!(validity["status"], "ERROR");
        assert!(validity["comment"]
            .as_str()
            .unwrap()
            .contains("coverage 0.4"));
    }

    #[test]
    fn segments_keep_only_what_kcidb_allows() {
        assert_eq!(
            path_of(&[
                "thpbench",
                "quick",
                "threads=4 buffer=thp",
                "disturbers.split:cold.actions"
            ]),
            "thpbench.quick.threads_4_buffer_thp.disturbers.split_cold.actions"
        );
    }
}
