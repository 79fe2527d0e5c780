//! Where kernel developers already run benchmarks: each export read by the tool it is
//! for (fio's `fio_jsonplus_clat2csv` and `fio2gnuplot`, KernelCI's kcidb-io), and the
//! LKP and mmtests parsers in integrations/ on results of real runs made here.
//!
//! The tools are installed where missing (Debian's fio package; kcidb-io from PyPI into
//! a virtualenv under target/tmp, kept between runs). Where that cannot be done the test
//! skips with the reason, except under CI=true, where it fails.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use common::*;
use thpbench::export::fio::{fio_percentiles, plat_idx_to_val, plat_val_to_idx, PLAT_NR};
use thpbench::measure::histogram::decode_compressed;
use thpbench::result::BenchResult;

/// Real results, made once for all tests: the quick workload, 2 repeats of 1 s; and a
/// sweep over threads 1 and 2, 1 s each.
struct RealRuns {
    plain: PathBuf,
    sweep: PathBuf,
}

/// The quick workload needs no root (a file target under the test's directory), so these
/// run for anyone; as root they carry the kernel's reports too.
fn real_runs() -> (MutexGuard<'static, ()>, &'static RealRuns) {
    static RUNS: OnceLock<RealRuns> = OnceLock::new();
    let lock = machine_lock();
    let runs = RUNS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-real-runs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let make = |name: &str, extra: &[&str]| {
            let out = dir.join(name);
            let mut args = vec!["run", "--duration", "1s", "--warmup", "0s", "-q"];
            args.extend_from_slice(extra);
            args.extend(["-o", out.to_str().unwrap()]);
            let o = run(&args, &dir);
            assert!(o.status.success(), "thpbench {args:?}: {}", stderr(&o));
            out
        };
        RealRuns {
            plain: make("plain.json", &["--repeat", "2"]),
            sweep: make("sweep.json", &["--threads", "1,2"]),
        }
    });
    (lock, runs)
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// fio's tools (Debian's fio package), installed with apt-get where missing and root.
fn fio_tools(test: &str) -> bool {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _g = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let have = || on_path("fio") && on_path("fio_jsonplus_clat2csv") && on_path("fio2gnuplot");
    if !have() && is_root() {
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-q", "fio"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !install() {
            let _ = Command::new("apt-get").args(["update", "-q"]).output();
            install();
        }
    }
    if have() {
        return true;
    }
    assert!(
        !in_ci(),
        "{test}: fio's tools (fio, fio_jsonplus_clat2csv, fio2gnuplot) are missing and apt-get install fio failed"
    );
    eprintln!("SKIP {test}: fio's tools are missing (apt-get install fio)");
    false
}

fn sh(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn export(result: &Path, format: &str, out: &Path) {
    let o = run(
        &[
            "export",
            result.to_str().unwrap(),
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
        ],
        out.parent().unwrap(),
    );
    assert!(o.status.success(), "export {format}: {}", stderr(&o));
}

#[test]
fn fio_jsonplus_clat2csv_reads_the_fio_json_export() {
    let test = "fio_jsonplus_clat2csv_reads_the_fio_json_export";
    let (_lock, r) = real_runs();
    if !fio_tools(test) {
        return;
    }
    let result = BenchResult::load(&r.plain).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.fio.json");
    export(&r.plain, "fio-json", &json);
    sh(Command::new("fio_jsonplus_clat2csv")
        .arg(&json)
        .arg(dir.path().join("out.csv")));
    // The script's own check: its CSV holds every bin of our JSON.
    sh(Command::new("fio_jsonplus_clat2csv")
        .arg(&json)
        .arg(dir.path().join("out.csv"))
        .arg("--validate"));
    let doc = load_json(&json);
    for (i, run) in result.runs.iter().enumerate() {
        let csv = std::fs::read_to_string(dir.path().join(format!("out_job{i}.csv"))).unwrap();
        let mut lines = csv.lines();
        let cols: Vec<&str> = lines.next().unwrap().split(',').map(str::trim).collect();
        let col = |name: &str| cols.iter().position(|c| *c == name).unwrap();
        let (count, cumulative) = (col("read_clat_ns_count"), col("read_clat_ns_cumulative"));
        // (bucket value, count, cumulative) of every row.
        let rows: Vec<(u64, u64, u64)> = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').map(str::trim).collect();
                (
                    f[0].parse().unwrap(),
                    f[count].parse().unwrap(),
                    f[cumulative].parse().unwrap(),
                )
            })
            .collect();
        let h = decode_compressed(&run.histogram).unwrap();
        // Every op counted, once.
        assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), run.ops);
        assert_eq!(rows.last().unwrap().2, h.len());
        assert_eq!(h.len(), run.ops);
        // Each row's count is what the histogram holds in that fio bucket.
        for &(value, n, _) in &rows {
            let idx = plat_val_to_idx(value);
            let in_bucket: u64 = h
                .iter_recorded()
                .filter(|v| plat_val_to_idx(v.value_iterated_to()) == idx)
                .map(|v| v.count_at_value())
                .sum();
            assert_eq!(n, in_bucket, "bucket {value}");
        }
        // Each percentile of the JSON is, in the CSV, the first bucket whose running
        // count reaches it, and the fio bucket of the histogram's own percentile.
        let pct = doc["jobs"][i]["read"]["clat_ns"]["percentile"]
            .as_object()
            .unwrap();
        assert_eq!(pct.len(), 17);
        for (p, v) in pct {
            let p: f64 = p.parse().unwrap();
            let want = v.as_u64().unwrap();
            let first = rows
                .iter()
                .find(|r| r.2 as f64 >= p / 100.0 * run.ops as f64)
                .unwrap();
            assert_eq!(first.0, want, "p{p} from the CSV");
            assert_eq!(
                plat_val_to_idx(h.value_at_quantile(p / 100.0)),
                plat_val_to_idx(want),
                "p{p}: the histogram's value is in another fio bucket"
            );
        }
        let read = &doc["jobs"][i]["read"];
        assert_eq!(read["total_ios"], run.ops);
        assert_eq!(read["runtime"], run.duration_ns / 1_000_000);
    }
}

#[test]
fn the_bucket_scheme_and_percentiles_are_real_fios() {
    let test = "the_bucket_scheme_and_percentiles_are_real_fios";
    if !fio_tools(test) {
        return;
    }
    // Buffered random reads and fsync'd writes on a file: latencies from below 1 us to
    // milliseconds, over many of fio's bucket groups.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = sh(Command::new("fio").current_dir(dir.path()).args([
        "--name=buckets",
        "--filename=f",
        "--size=4M",
        "--bs=4k",
        "--rw=randrw",
        "--fsync=8",
        "--number_ios=3000",
        "--ioengine=psync",
        "--output-format=json+",
    ]));
    let doc: serde_json::Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
    let mut groups = std::collections::BTreeSet::new();
    for ddir in ["read", "write"] {
        let clat = &doc["jobs"][0][ddir]["clat_ns"];
        let mut plat = vec![0u64; PLAT_NR];
        for (k, c) in clat["bins"].as_object().unwrap() {
            let v: u64 = k.parse().unwrap();
            let idx = plat_val_to_idx(v);
            assert_eq!(plat_idx_to_val(idx), v, "fio's bin {v} is not one of ours");
            plat[idx] += c.as_u64().unwrap();
            groups.insert(idx / 64);
        }
        let n = clat["N"].as_u64().unwrap();
        let mut listed: Vec<(f64, u64)> = clat["percentile"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(p, v)| (p.parse().unwrap(), v.as_u64().unwrap()))
            .collect();
        listed.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (keys, want): (Vec<f64>, Vec<u64>) = listed.into_iter().unzip();
        assert_eq!(fio_percentiles(&plat, n, &keys), want, "{ddir}");
    }
    assert!(groups.len() >= 3, "fio's latencies spanned only {groups:?}");
}

#[test]
fn fio2gnuplot_reads_the_fio_logs() {
    let test = "fio2gnuplot_reads_the_fio_logs";
    let (_lock, r) = real_runs();
    if !fio_tools(test) {
        return;
    }
    let result = BenchResult::load(&r.plain).unwrap();
    let dir = tempfile::tempdir().unwrap();
    export(&r.plain, "fio-log", &dir.path().join("thpbench"));
    sh(Command::new("fio2gnuplot")
        .current_dir(dir.path())
        .args(["-i", "-o", "iops"]));
    let global = std::fs::read_to_string(dir.path().join("iops.global")).unwrap();
    let get = |k: &str| -> f64 {
        global
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} in {global}"))
            .parse()
            .unwrap()
    };
    let points: Vec<u64> = result
        .runs
        .iter()
        .flat_map(|r| r.timeline.iter().map(|p| p.ops * 10))
        .collect();
    assert_eq!(get("disks_count"), result.runs.len() as f64);
    assert_eq!(get("values_count"), points.len() as f64);
    assert_eq!(get("max"), *points.iter().max().unwrap() as f64);
    assert_eq!(get("min"), *points.iter().min().unwrap() as f64);
    let mean = points.iter().sum::<u64>() as f64 / points.len() as f64;
    assert!((get("avg") - mean).abs() < 0.01, "{global}");
}

/// A virtualenv with kcidb-io under target/tmp, made once and kept; None (with the
/// reason printed) where pip cannot reach PyPI, outside CI.
fn kcidb_python(test: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kcidb-venv");
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import kcidb_io"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready() {
        return Some(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output();
    let why = match made {
        Ok(o) if o.status.success() => {
            let pip = Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "kcidb-io"])
                .output()
                .expect("running pip");
            if pip.status.success() && ready() {
                return Some(python);
            }
            format!("pip install kcidb-io failed: {}", stderr(&pip).trim())
        }
        Ok(o) => format!("python3 -m venv failed: {}", stderr(&o).trim()),
        Err(e) => format!("python3: {e}"),
    };
    assert!(!in_ci(), "{test}: {why}");
    eprintln!("SKIP {test}: {why}");
    None
}

/// kcidb-io's verdict on a document: Ok, or its error.
fn kcidb_validate(python: &Path, doc: &Path) -> Result<(), String> {
    let o = Command::new(python)
        .args([
            "-c",
            "import json, sys, kcidb_io\n\
             kcidb_io.schema.LATEST.validate(json.load(open(sys.argv[1])))",
        ])
        .arg(doc)
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(stderr(&o))
    }
}

#[test]
fn kcidb_io_validates_the_kcidb_export() {
    let test = "kcidb_io_validates_the_kcidb_export";
    let Some(python) = kcidb_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A synthetic result with a sweep, a failed verify and disturbers with colons in
    // their names; and an invalid one.
    let mut swept = thpbench::test_support::synthetic("6.1.0-rc1+", &[]);
    swept.sweep = (1..=2)
        .map(|t| thpbench::result::SweepCase {
            label: format!("threads={t} buffer=thp"),
            params: [("threads", t.to_string())].into_iter().collect(),
            runs: (0..2)
                .map(|i| {
                    let mut run = thpbench::test_support::synthetic_run(i, 1000.0 * t as f64);
                    run.verify.enabled = true;
                    run.verify.mismatches = u64::from(t == 2 && i == 1);
                    run.disturbers = vec![thpbench::result::DisturberReport {
                        name: "split:cold".into(),
                        actions: 10,
                        ..Default::default()
                    }];
                    run
                })
                .collect(),
        })
        .collect();
    let mut invalid = thpbench::test_support::synthetic("6.1.0", &[100.0]);
    invalid.valid = false;
    invalid.invalid_reasons = vec!["THP coverage 0.20 below 0.99".into()];
    let mut docs = Vec::new();
    for (name, r) in [("swept", &swept), ("invalid", &invalid)] {
        let src = dir.path().join(format!("{name}.json"));
        r.save(&src).unwrap();
        let out = dir.path().join(format!("{name}.kcidb.json"));
        export(&src, "kcidb", &out);
        docs.push(out);
    }
    {
        let (_lock, real) = real_runs();
        for src in [&real.plain, &real.sweep] {
            let out = dir.path().join(format!(
                "real-{}.kcidb.json",
                src.file_stem().unwrap().to_str().unwrap()
            ));
            export(src, "kcidb", &out);
            docs.push(out);
        }
    }
    for doc in &docs {
        kcidb_validate(&python, doc)
            .unwrap_or_else(|e| panic!("{}: kcidb-io refuses it: {e}", doc.display()));
    }
    let swept_doc = load_json(&docs[0]);
    let tests = swept_doc["tests"].as_array().unwrap();
    let status = |path: &str| {
        tests
            .iter()
            .find(|t| t["path"] == path)
            .unwrap_or_else(|| panic!("no test {path}"))["status"]
            .clone()
    };
    assert_eq!(
        status("thpbench.quick.threads_2_buffer_thp.integrity.verify"),
        "FAIL"
    );
    assert_eq!(
        status("thpbench.quick.threads_1_buffer_thp.integrity.verify"),
        "PASS"
    );
    assert_eq!(
        status("thpbench.quick.threads_1_buffer_thp.ops_per_sec"),
        "DONE"
    );
    let invalid_doc = load_json(&docs[1]);
    assert!(invalid_doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] != "DONE"));
    // The validator does refuse what KCIDB forbids: a path with an empty level.
    let mut bad = swept_doc.clone();
    bad["tests"][0]["path"] = "thpbench.quick.latency_ns.p99.".into();
    let bad_path = dir.path().join("bad.json");
    std::fs::write(&bad_path, serde_json::to_string(&bad).unwrap()).unwrap();
    assert!(kcidb_validate(&python, &bad_path).is_err());
}

/// `key: value` lines as a map.
fn key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn integrations(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("integrations")
        .join(path)
}

#[test]
fn lkp_program_runs_thpbench_and_parse_reads_its_output() {
    let (_lock, real) = real_runs();
    // LKP's run with the two functions it uses from LKP's lib (die, log_cmd), written
    // here so that the test needs no lkp-tests checkout.
    let dir = tempfile::tempdir().unwrap();
    let lkp = dir.path().join("lkp");
    std::fs::create_dir_all(lkp.join("lib")).unwrap();
    std::fs::write(
        lkp.join("lib/debug.sh"),
        "die() { echo \"$@\" >&2; exit 99; }\n",
    )
    .unwrap();
    std::fs::write(
        lkp.join("lib/reproduce-log.sh"),
        "log_cmd() { echo \"$@\"; \"$@\"; }\n",
    )
    .unwrap();
    let results = dir.path().join("result");
    std::fs::create_dir_all(&results).unwrap();
    let program = integrations("lkp/programs/thpbench");
    let out = Command::new(program.join("run"))
        .current_dir(dir.path())
        .env("LKP_SRC", &lkp)
        .env("TMP_RESULT_ROOT", &results)
        .env("THPBENCH", bin())
        .env("workload", "quick")
        .env("runtime", "1s")
        .env("repeat", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "run: {}", stderr(&out));
    let result = BenchResult::load(&results.join("thpbench.json")).unwrap();
    assert_eq!(result.runs.len(), 2);
    assert_eq!(result.workload.duration.0, 1_000_000_000);
    let parse = |input: &[u8]| {
        let mut child = Command::new(program.join("parse"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "parse: {}", stderr(&o));
        key_values(&stdout(&o))
    };
    let kv = parse(&out.stdout);
    assert_eq!(kv["valid"], if result.valid { "1" } else { "0" });
    assert_eq!(kv["runs"], "2");
    let ops = mean(result.runs.iter().map(|r| r.ops_per_sec));
    assert!((kv["ops_per_sec"].parse::<f64>().unwrap() - ops).abs() < 0.001);
    let p99 = mean(result.runs.iter().map(|r| r.latency_ns.p99 as f64));
    assert!((kv["latency_p99_ns"].parse::<f64>().unwrap() - p99).abs() < 0.001);
    let mismatches: u64 = result.runs.iter().map(|r| r.verify.mismatches).sum();
    assert_eq!(kv["verify_mismatches"], mismatches.to_string());
    let faults = mean(result.runs.iter().map(|r| r.vmstat_delta["pgfault"] as f64));
    assert!((kv["vmstat.pgfault"].parse::<f64>().unwrap() - faults).abs() < 0.001);

    // A sweep: every case under its own prefix.
    let sweep = BenchResult::load(&real.sweep).unwrap();
    let kv = parse(&std::fs::read(&real.sweep).unwrap());
    for case in &sweep.sweep {
        let prefix = case.label.replace('=', "_");
        let ops = mean(case.runs.iter().map(|r| r.ops_per_sec));
        let got: f64 = kv[&format!("{prefix}.ops_per_sec")].parse().unwrap();
        assert!((got - ops).abs() < 0.001, "{prefix}");
    }
    assert!(!kv.contains_key("ops_per_sec"), "a sweep has no plain runs");
}

#[test]
fn mmtests_parse_results_reads_real_runs() {
    let (_lock, real) = real_runs();
    // mmtests' log directory: one result per iteration.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&real.plain, dir.path().join("thpbench-1.json")).unwrap();
    std::fs::copy(&real.sweep, dir.path().join("thpbench-2.json")).unwrap();
    let plain = BenchResult::load(&real.plain).unwrap();
    let sweep = BenchResult::load(&real.sweep).unwrap();
    let pack = integrations("mmtests/shellpack_src/src/thpbench");
    let rows = |parser: &str| -> Vec<Vec<String>> {
        sh(Command::new(pack.join(parser)).arg(dir.path()))
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    };
    let value = |rows: &[Vec<String>], metric: &str, case: &str, iteration: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r[0] == metric && r[1] == case && r[3] == iteration)
            .map(|r| {
                assert_eq!(r.len(), 6, "{r:?}");
                r[4].parse().unwrap()
            })
            .collect()
    };
    let close = |a: &[f64], b: &[f64]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() < 1e-6 * y.abs().max(1.0))
    };

    let throughput = rows("parse-results");
    let want: Vec<f64> = plain.runs.iter().map(|r| r.ops_per_sec).collect();
    assert!(close(&value(&throughput, "ops/s", "_", "1"), &want));
    for case in &sweep.sweep {
        let want: Vec<f64> = case
            .runs
            .iter()
            .map(|r| r.bytes_per_sec / 1048576.0)
            .collect();
        let got = value(&throughput, "MiB/s", &case.label.replace(' ', ","), "2");
        assert!(close(&got, &want), "{}: {got:?} vs {want:?}", case.label);
    }

    let latency = rows("parse-results-latency");
    let want: Vec<f64> = plain
        .runs
        .iter()
        .map(|r| r.latency_ns.p99 as f64 / 1000.0)
        .collect();
    assert!(close(&value(&latency, "p99", "_", "1"), &want));

    let integrity = rows("parse-results-integrity");
    let want: Vec<f64> = plain
        .runs
        .iter()
        .map(|r| r.verify.mismatches as f64)
        .collect();
    assert!(close(&value(&integrity, "mismatches", "_", "1"), &want));
    let invalid = if plain.valid { 0.0 } else { 1.0 };
    assert!(value(&integrity, "invalid", "_", "1")
        .iter()
        .all(|v| *v == invalid));
}

/// Bencher's published JSON schema of BMF (https://bencher.dev/docs/reference/bencher-metric-format).
const BMF_SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema",
  "type": "object",
  "patternProperties": {".+": {"type": "object", "patternProperties": {".+": {
    "type": "object",
    "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"}, "upper_value": {"type": "number"}},
    "required": ["value"]}}}}
}"#;

#[test]
fn bmf_export_is_what_bencher_reads() {
    let test = "bmf_export_is_what_bencher_reads";
    let (_lock, real) = real_runs();
    // kcidb-io brings jsonschema into its virtualenv.
    let Some(python) = kcidb_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("bmf.schema.json");
    std::fs::write(&schema, BMF_SCHEMA).unwrap();
    for src in [&real.plain, &real.sweep] {
        let out = dir.path().join("bmf.json");
        export(src, "bmf", &out);
        sh(Command::new(&python)
            .arg("-c")
            .arg(
                "import json, sys, jsonschema\n\
             jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
            )
            .arg(&out)
            .arg(&schema));
        let doc = load_json(&out);
        let result = BenchResult::load(src).unwrap();
        let benches = doc.as_object().unwrap();
        assert_eq!(benches.len(), result.sweep.len().max(1));
        for (name, measures) in benches {
            for (measure, m) in measures.as_object().unwrap() {
                assert!(
                    measure.len() <= 64,
                    "{name}: measure {measure} is too long for Bencher"
                );
                if let (Some(lo), Some(hi)) = (m["lower_value"].as_f64(), m["upper_value"].as_f64())
                {
                    let v = m["value"].as_f64().unwrap();
                    assert!(lo <= v && v <= hi, "{name} {measure}: {m}");
                }
            }
        }
        // The plain result's ops/s is the mean of its two repeats, with bounds.
        if result.sweep.is_empty() {
            let ops = &doc["quick"]["ops_per_sec"];
            let want = mean(result.runs.iter().map(|r| r.ops_per_sec));
            assert!((ops["value"].as_f64().unwrap() - want).abs() < 1e-6);
            assert!(ops["lower_value"].is_number());
        }
    }
}
