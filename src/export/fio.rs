//! fio's formats, so that fio's own tools and the tools built on them read thpbench
//! results: `fio-json` (fio's JSON+ output, `--output-format=json+`) and `fio-log` (fio's
//! per-job IOPS, bandwidth and latency logs, `write_{iops,bw,lat}_log`).
//!
//! JSON+: one job per selected run (the run's workers are one group, as fio's
//! `group_reporting` makes of `numjobs` workers). Its `bins` are fio's latency buckets
//! (stat.h: FIO_IO_U_PLAT_BITS = 6, 64 buckets per power of two, 29 groups, 1,856 buckets;
//! exact below 128 ns), keyed by the value fio gives each bucket (`plat_idx_to_val`), and
//! counted from the run's HdrHistogram. Its buckets (3 significant figures: 1 ns below
//! 2,048 ns, then 2^(msb-10)) nest inside fio's (2^(msb-6)), so every HdrHistogram bucket
//! falls into exactly one fio bucket and the counts are exact. Percentiles are computed as
//! fio computes them from those buckets (`calc_clat_percentiles`), with fio's default
//! list, keyed as fio prints them ("99.000000").
//!
//! What thpbench times is one whole call (pread/pwrite, or io_uring submit to
//! completion): fio's total latency. It is written as `lat_ns` and, as for fio's
//! synchronous engines where submission is part of the call, as `clat_ns` too; `slat_ns`
//! has no samples. `iops`, `bw_bytes` and `runtime` are fio's: total I/Os and bytes over
//! the run's wall time (`duration_ns`), not thpbench's `ops_per_sec` (the I/O's own rate
//! over the time spent inside the calls), which the job carries under `thpbench`.
//! A `readwrite` result has one histogram of reads and writes together: its jobs carry
//! it as fio's `mixed` (what fio writes with `unified_rw_reporting=mixed`).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::{case_workload, Exporter, Selection, StubFiles};
use crate::measure::histogram::decode_compressed;
use crate::result::RunResult;
use crate::workload::{Engine, Rw, Workload};

/// stat.h: FIO_IO_U_PLAT_BITS, FIO_IO_U_PLAT_VAL, FIO_IO_U_PLAT_GROUP_NR, FIO_IO_U_PLAT_NR.
pub const PLAT_BITS: u32 = 6;
pub const PLAT_VAL: u64 = 1 << PLAT_BITS;
pub const PLAT_GROUP_NR: usize = 29;
pub const PLAT_NR: usize = PLAT_GROUP_NR * PLAT_VAL as usize;

/// fio's default `percentile_list`.
pub const FIO_PERCENTILES: [f64; 17] = [
    1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95,
    99.99,
];

/// The fio bucket a latency in ns falls into (stat.c `plat_val_to_idx`).
pub fn plat_val_to_idx(val: u64) -> usize {
    let msb = if val == 0 {
        0
    } else {
        63 - val.leading_zeros()
    };
    if msb <= PLAT_BITS {
        return val as usize;
    }
    let error_bits = msb - PLAT_BITS;
    let base = ((error_bits + 1) as usize) << PLAT_BITS;
    let offset = ((PLAT_VAL - 1) & (val >> error_bits)) as usize;
    (base + offset).min(PLAT_NR - 1)
}

/// The value fio gives a bucket, the middle of its range (stat.c `plat_idx_to_val`).
pub fn plat_idx_to_val(idx: usize) -> u64 {
    assert!(idx < PLAT_NR, "fio bucket {idx} is beyond {PLAT_NR}");
    if idx < (PLAT_VAL as usize) << 1 {
        return idx as u64;
    }
    let error_bits = (idx >> PLAT_BITS) as u32 - 1;
    let base = 1u64 << (error_bits + PLAT_BITS);
    let k = (idx as u64) % PLAT_VAL;
    // fio computes base + (k + 0.5) * 2^error_bits in double and truncates.
    base + ((k as f64 + 0.5) * (1u64 << error_bits) as f64) as u64
}

/// fio's bucket counts of a histogram.
pub fn fio_buckets(h: &Histogram<u64>) -> Vec<u64> {
    let mut plat = vec![0u64; PLAT_NR];
    for v in h.iter_recorded() {
        plat[plat_val_to_idx(v.value_iterated_to())] += v.count_at_value();
    }
    plat
}

/// fio's `calc_clat_percentiles`: for each percentile, the value of the first bucket at
/// which the running count reaches that share of `nr`.
pub fn fio_percentiles(plat: &[u64], nr: u64, list: &[f64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(list.len());
    let mut sum = 0u64;
    let mut j = 0;
    for (i, &c) in plat.iter().enumerate() {
        sum += c;
        while j < list.len() && sum as f64 >= list[j] / 100.0 * nr as f64 {
            out.push(plat_idx_to_val(i));
            j += 1;
        }
        if j == list.len() {
            break;
        }
    }
    out
}

/// A latency object as fio writes it: min, max, mean, stddev, N, and with samples the
/// percentiles and the bins.
fn lat_object(run: &RunResult, h: &Histogram<u64>) -> Value {
    let l = &run.latency_ns;
    let mut obj = Map::new();
    obj.insert("min".into(), json!(l.min));
    obj.insert("max".into(), json!(l.max));
    obj.insert("mean".into(), json!(l.mean));
    obj.insert("stddev".into(), json!(l.stddev));
    obj.insert("N".into(), json!(h.len()));
    if !h.is_empty() {
        let plat = fio_buckets(h);
        let values = fio_percentiles(&plat, h.len(), &FIO_PERCENTILES);
        let pct: Map<String, Value> = FIO_PERCENTILES
            .iter()
            .zip(values)
            .map(|(p, v)| (format!("{p:.6}"), json!(v)))
            .collect();
        obj.insert("percentile".into(), Value::Object(pct));
        let bins: Map<String, Value> = plat
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (plat_idx_to_val(i).to_string(), json!(c)))
            .collect();
        obj.insert("bins".into(), Value::Object(bins));
    }
    Value::Object(obj)
}

/// A latency object with no samples (fio's for a direction a job did not do).
fn empty_lat() -> Value {
    json!({"min": 0, "max": 0, "mean": 0.0, "stddev": 0.0, "N": 0})
}

/// fio's per-direction object; `None` for a direction the run did not do.
fn ddir_object(run: Option<(&RunResult, &Histogram<u64>)>) -> Value {
    let Some((run, h)) = run else {
        return json!({
            "io_bytes": 0, "io_kbytes": 0, "bw_bytes": 0, "bw": 0, "iops": 0.0,
            "runtime": 0, "total_ios": 0, "short_ios": 0, "drop_ios": 0,
            "slat_ns": empty_lat(), "clat_ns": empty_lat(), "lat_ns": empty_lat(),
        });
    };
    let runtime_ms = run.duration_ns / 1_000_000;
    // fio: bw_bytes = 1000 * io_bytes / runtime (integer), iops = 1000.0 * ios / runtime.
    let bw_bytes = (1000 * run.bytes).checked_div(runtime_ms).unwrap_or(0);
    let iops = if runtime_ms > 0 {
        1000.0 * run.ops as f64 / runtime_ms as f64
    } else {
        0.0
    };
    let lat = lat_object(run, h);
    json!({
        "io_bytes": run.bytes,
        "io_kbytes": run.bytes >> 10,
        "bw_bytes": bw_bytes,
        "bw": bw_bytes / 1024,
        "iops": iops,
        "runtime": runtime_ms,
        "total_ios": run.ops,
        "short_ios": 0,
        "drop_ios": 0,
        "slat_ns": empty_lat(),
        "clat_ns": lat.clone(),
        "lat_ns": lat,
    })
}

/// fio's `rw=` name of a workload's direction.
fn fio_rw(rw: Rw) -> &'static str {
    match rw {
        Rw::Read => "read",
        Rw::Write => "write",
        Rw::RandRead => "randread",
        Rw::RandWrite => "randwrite",
        Rw::ReadWrite => "readwrite",
    }
}

/// The name fio would give the engine thpbench drives.
fn fio_ioengine(w: &Workload) -> &'static str {
    match w.engine {
        Engine::Dio => "psync",
        Engine::Uring => "io_uring",
        Engine::Gup => "thpbench-gup (vmsplice, no device)",
    }
}

/// `quick`, `quick run 1`, `quick threads=4 run 1`: a job's name.
fn job_name(workload: &str, case: Option<&str>, repeat: usize, several: bool) -> String {
    match (case, several) {
        (Some(c), _) => format!("{workload} {c} run {repeat}"),
        (None, true) => format!("{workload} run {repeat}"),
        (None, false) => workload.to_string(),
    }
}

pub struct FioJson;

impl Exporter for FioJson {
    fn export(&self, sel: &Selection, source: &Path, out: &mut dyn Write) -> Result<()> {
        let r = sel.result;
        let mut jobs = Vec::new();
        for (groupid, s) in sel.runs.iter().enumerate() {
            let w = case_workload(r, s.case);
            let h = decode_compressed(&s.run.histogram).with_context(|| {
                format!(
                    "{}: the histogram of run {} does not decode",
                    source.display(),
                    s.run.repeat
                )
            })?;
            let data = Some((s.run, &h));
            let mut job = Map::new();
            job.insert(
                "jobname".into(),
                json!(job_name(
                    &r.workload.name,
                    s.case,
                    s.run.repeat,
                    sel.is_several()
                )),
            );
            job.insert("groupid".into(), json!(groupid));
            job.insert("error".into(), json!(0));
            job.insert("eta".into(), json!(0));
            job.insert("elapsed".into(), json!(s.run.duration_ns / 1_000_000_000));
            job.insert(
                "job options".into(),
                json!({
                    "name": r.workload.name,
                    "ioengine": fio_ioengine(&w),
                    "rw": fio_rw(w.rw),
                    "bs": w.bs.0.to_string(),
                    "iodepth": w.iodepth.to_string(),
                    "numjobs": s.run.threads.len().to_string(),
                    "direct": "1",
                    "group_reporting": "1",
                }),
            );
            if w.rw == Rw::ReadWrite {
                job.insert("mixed".into(), ddir_object(data));
            } else {
                let (read, write) = if w.rw.writes() {
                    (None, data)
                } else {
                    (data, None)
                };
                job.insert("read".into(), ddir_object(read));
                job.insert("write".into(), ddir_object(write));
                job.insert("trim".into(), ddir_object(None));
            }
            job.insert("job_runtime".into(), json!(s.run.duration_ns / 1_000_000));
            job.insert(
                "thpbench".into(),
                json!({
                    "case": s.case,
                    "run": s.run.repeat,
                    "ops_per_sec": s.run.ops_per_sec,
                    "bytes_per_sec": s.run.bytes_per_sec,
                    "verify_mismatches": s.run.verify.mismatches,
                    "buffer": s.run.buffer.backing,
                    "thp_coverage_after": s.run.buffer.thp_coverage_after,
                }),
            );
            jobs.push(Value::Object(job));
        }
        let start = super::hlog::parse_rfc3339(&r.started_at).unwrap_or(0.0);
        let doc = json!({
            "fio version": format!("{}-{}", r.tool.name, r.tool.version),
            "timestamp": start as u64,
            "timestamp_ms": (start * 1000.0) as u64,
            "time": r.started_at,
            "global options": {
                "kernel": r.system.kernel.release,
                "kernel_version": r.system.kernel.version,
                "hostname": r.system.hostname,
                "valid": r.valid.to_string(),
            },
            "jobs": jobs,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        out.write_all(b"\n")?;
        Ok(())
    }
}

/// fio's data direction number in a log line (0 read, 1 write).
fn log_ddir(w: &Workload, source: &Path) -> Result<u8> {
    match w.rw {
        Rw::ReadWrite => bail!(
            "{}: a readwrite result holds reads and writes in one timeline, and fio's logs keep \
             them apart; export fio-json (it writes fio's `mixed`) or csv instead",
            source.display()
        ),
        rw if rw.writes() => Ok(1),
        _ => Ok(0),
    }
}

/// fio's per-job logs from the 100 ms timeline, as fio writes them with
/// `log_avg_msec=100`: `time (ms), value, direction, block size, priority`, time at the
/// end of the window. `_iops`: I/Os per second in the window; `_bw`: KiB/s; `_lat`: the
/// window's largest latency in ns (what fio logs with `log_max_value=1`: the timeline
/// keeps p50, p99 and max per window, not the mean), left out for windows with no I/O
/// completed. Files are named as fio's `per_job_logs` names them: `<stub>_iops.<job>.log`,
/// jobs from 1.
pub struct FioLog;

impl FioLog {
    pub fn logs(sel: &Selection, source: &Path) -> Result<StubFiles> {
        let tick_ms = crate::measure::histogram::TICK_NS / 1_000_000;
        let mut files = Vec::new();
        for (i, s) in sel.runs.iter().enumerate() {
            let w = case_workload(sel.result, s.case);
            let ddir = log_ddir(&w, source)?;
            if s.run.timeline.is_empty() {
                bail!(
                    "{}: run {} has no timeline; fio's logs are made from it",
                    source.display(),
                    s.run.repeat
                );
            }
            let bs = w.bs.0;
            let (mut iops, mut bw, mut lat) = (String::new(), String::new(), String::new());
            for p in &s.run.timeline {
                let end = p.t_ms + tick_ms;
                let per_sec = 1000 / tick_ms;
                iops.push_str(&format!("{end}, {}, {ddir}, {bs}, 0\n", p.ops * per_sec));
                bw.push_str(&format!(
                    "{end}, {}, {ddir}, {bs}, 0\n",
                    p.bytes * per_sec / 1024
                ));
                if p.ops > 0 {
                    lat.push_str(&format!("{end}, {}, {ddir}, {bs}, 0\n", p.max_ns));
                }
            }
            let job = i + 1;
            files.push((format!("_iops.{job}.log"), iops.into_bytes()));
            files.push((format!("_bw.{job}.log"), bw.into_bytes()));
            files.push((format!("_lat.{job}.log"), lat.into_bytes()));
        }
        Ok(files)
    }
}

impl Exporter for FioLog {
    fn export(&self, _sel: &Selection, source: &Path, _out: &mut dyn Write) -> Result<()> {
        bail!(
            "{}: fio-log writes several files (fio's per-job _iops, _bw and _lat logs); give \
             -o STUB, e.g. -o out/thpbench for out/thpbench_iops.1.log",
            source.display()
        )
    }

    fn files(&self, sel: &Selection, source: &Path) -> Result<Option<StubFiles>> {
        Self::logs(sel, source).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::select;
    use crate::measure::histogram::{encode_compressed, new_histogram};

    #[test]
    fn bucket_values_are_fios() {
        // Bucket values from a real fio json+ output (tools/fio_jsonplus_clat2csv's
        // example), and fio's largest bucket (the script's sentinel).
        for v in [
            12u64,
            127,
            168960,
            177152,
            183296,
            189440,
            214016,
            246784,
            272384,
            329728,
            1003520,
            1089536,
            17112760320,
        ] {
            assert_eq!(plat_idx_to_val(plat_val_to_idx(v)), v, "{v}");
        }
        assert_eq!(plat_val_to_idx(17112760320), PLAT_NR - 1);
        assert_eq!(PLAT_NR, 1856);
        // 64 buckets per power of two above 128 ns: 128..255 in steps of 2.
        assert_eq!(plat_val_to_idx(128), 128);
        assert_eq!(plat_val_to_idx(129), 128);
        assert_eq!(plat_val_to_idx(130), 129);
        assert_eq!(plat_idx_to_val(128), 129);
        // Everything beyond fio's range lands in the last bucket, as in fio.
        assert_eq!(plat_val_to_idx(u64::MAX / 2), PLAT_NR - 1);
    }

    #[test]
    fn every_value_lands_in_the_bucket_whose_range_holds_it() {
        for idx in 128..PLAT_NR - 1 {
            let mid = plat_idx_to_val(idx);
            assert_eq!(plat_val_to_idx(mid), idx);
            assert!(plat_idx_to_val(idx + 1) > mid);
        }
    }

    #[test]
    fn json_plus_counts_every_op_and_reads_percentiles_as_fio() {
        let mut r = crate::test_support::synthetic("6.1.0", &[100.0]);
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        r.runs[0].histogram = encode_compressed(&h);
        r.runs[0].ops = 1000;
        let src = Path::new("r.json");
        let mut out = Vec::new();
        FioJson
            .export(&select(&r, src, None, None).unwrap(), src, &mut out)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let read = &v["jobs"][0]["read"];
        assert_eq!(read["total_ios"], 1000);
        assert_eq!(read["runtime"], 1000);
        assert_eq!(read["iops"], 1000.0);
        let clat = &read["clat_ns"];
        assert_eq!(clat["N"], 1000);
        let bins: u64 = clat["bins"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(bins, 1000);
        // p50 is the 500th value, 500 us, in fio's bucket [499712, 503808): value 501760.
        assert_eq!(clat["percentile"]["50.000000"], 501760);
        assert_eq!(v["jobs"][0]["write"]["total_ios"], 0);
        assert!(v["jobs"][0]["write"]["clat_ns"].get("bins").is_none());
    }

    #[test]
    fn readwrite_is_fios_mixed_and_has_no_logs() {
        let mut r = crate::test_support::synthetic("6.1.0", &[100.0]);
        r.workload.rw = Rw::ReadWrite;
        let mut h = new_histogram();
        h.record(5000).unwrap();
        r.runs[0].histogram = encode_compressed(&h);
        r.runs[0].timeline = vec![crate::result::TimelinePoint {
            ops: 1,
            ..Default::default()
        }];
        let src = Path::new("r.json");
        let sel = select(&r, src, None, None).unwrap();
        let mut out = Vec::new();
        FioJson.export(&sel, src, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let job = &v["jobs"][0];
        assert_eq!(job["mixed"]["clat_ns"]["N"], 1);
        assert!(job.get("read").is_none() && job.get("write").is_none());
        let err = FioLog::logs(&sel, src).unwrap_err().to_string();
        assert!(err.contains("readwrite"), "{err}");
    }

    #[test]
    fn logs_have_one_line_per_window_at_its_end() {
        let mut r = crate::test_support::synthetic("6.1.0", &[100.0]);
        r.runs[0].timeline = (0..3)
            .map(|i| crate::result::TimelinePoint {
                t_ms: i * 100,
                ops: if i == 1 { 0 } else { 50 },
                bytes: if i == 1 { 0 } else { 50 * 4096 },
                max_ns: 7000,
                ..Default::default()
            })
            .collect();
        let src = Path::new("r.json");
        let files = FioLog::logs(&select(&r, src, None, None).unwrap(), src).unwrap();
        let text = |suffix: &str| {
            String::from_utf8(files.iter().find(|f| f.0 == suffix).unwrap().1.clone()).unwrap()
        };
        assert_eq!(
            text("_iops.1.log"),
            "100, 500, 0, 4096, 0\n200, 0, 0, 4096, 0\n300, 500, 0, 4096, 0\n"
        );
        assert_eq!(
            text("_bw.1.log").lines().next(),
            Some("100, 2000, 0, 4096, 0")
        );
        assert_eq!(text("_lat.1.log").lines().count(), 2);
    }
}
