//! What the figures describe: the I/O's own rate (not the harness's), the worker count
//! actually used, and the region of the target the I/O covered.

mod common;

use common::*;
use thpbench::result::BenchResult;

/// One second of 4 KiB random writes over 16 MiB of a file in `dir`, verify on (the
/// default), no warm-up, with `extra` flags.
fn verified_random_writes(
    extra: &[&str],
    dir: &std::path::Path,
) -> (std::process::Output, BenchResult) {
    let mut args = vec![
        "--rw",
        "randwrite",
        "--bs",
        "4k",
        "--size",
        "16M",
        "--duration",
        "1s",
        "--warmup",
        "0s",
    ];
    args.extend_from_slice(extra);
    output_and_result_of_run(run, &args, dir)
}

#[test]
fn ops_per_sec_is_the_ios_own_rate_with_verify_timed_beside_it() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    // Random writes with verify: each write is stamped before and read back and checked
    // after, all outside the timed call.
    let (out, r) = verified_random_writes(&["--threads", "2"], dir.path());
    let run = &r.runs[0];
    let threads = &run.threads;
    // Each worker's rate is 1 / its mean latency; the run's rate is their sum.
    let from_latency: f64 = threads.iter().map(|t| 1e9 / t.latency_ns.mean).sum();
    let ops_per_sec = run.ops_per_sec;
    assert!(
        (ops_per_sec / from_latency - 1.0).abs() < 0.01,
        "ops_per_sec {ops_per_sec} vs {from_latency} from the per-thread latencies"
    );
    let bytes_per_sec = run.bytes_per_sec;
    assert!((bytes_per_sec / (ops_per_sec * 4096.0) - 1.0).abs() < 1e-9);
    // The I/O time is the sum of the recorded latencies; verify's time is apart from it,
    // and both fit in the workers' share of the wall time.
    let duration = run.duration_ns as f64;
    for t in threads {
        let io = t.io_time_ns as f64;
        let latencies = t.latency_ns.mean * t.ops as f64;
        assert!((io / latencies - 1.0).abs() < 0.01, "{t:?}");
        let verify = t.verify_time_ns as f64;
        assert!(verify > 0.0, "verify was on but took no time: {t:?}");
        assert!(io + verify <= duration, "{t:?} in {duration} ns");
    }
    let io_sum: u64 = threads.iter().map(|t| t.io_time_ns).sum();
    assert_eq!(run.io_time_ns, io_sum);
    // One read-back per measured write (dio reads each back right after it).
    assert_eq!(run.verify.readbacks, run.ops, "{:?}", run.verify);
    assert!(stdout(&out).contains("verifying"), "{}", stdout(&out));
}

/// uring's read-backs are verify's time too: before, a queued engine's verify time held
/// only the stamping and checking, and a verified write run said it spent about half its
/// time in I/O calls, 1 % verifying, and nothing on the other half (its read-backs).
#[test]
fn uring_verify_time_holds_its_read_backs() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = verified_random_writes(
        &["--engine", "uring", "--iodepth", "1", "--threads", "1"],
        dir.path(),
    );
    let run = &r.runs[0];
    let t = &run.threads[0];
    // Every measured write was read back, and the summary says the writes ran beside them.
    assert_eq!(run.verify.readbacks, run.ops, "{:?}", run.verify);
    assert!(
        stdout(&out).contains(&format!("{} written blocks read back", run.ops)),
        "{}",
        stdout(&out)
    );
    // The read-backs ran in batches with nothing measured in flight: the time neither in
    // I/O nor in verify is the loop's bookkeeping, a small share.
    let duration = run.duration_ns as f64;
    let (io, verify) = (t.io_time_ns as f64, t.verify_time_ns as f64);
    // At depth 1 nothing of verify's overlaps an I/O (deeper, a slot is stamped while
    // others are in flight, and that time counts in both), and the run ends after its
    // last read-backs.
    assert!(io + verify <= duration, "{t:?} in {duration} ns");
    let unaccounted = duration - io - verify;
    assert!(
        unaccounted < 0.25 * duration,
        "{:.1}% of the run neither in I/O nor verifying: io {io} verify {verify} of {duration} ns",
        unaccounted / duration * 100.0
    );
    assert!(stdout(&out).contains("verifying"), "{}", stdout(&out));
}

#[test]
fn threads_zero_is_stored_as_the_worker_count_used() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let r = result_of_run(
        run,
        &[
            "--threads",
            "0",
            "--size",
            "8M",
            "--duration",
            "300ms",
            "--warmup",
            "0s",
        ],
        dir.path(),
    );
    let used = r.runs[0].threads.len();
    assert!(used > 0);
    assert_eq!(r.workload.threads, used, "{:?}", r.workload);
}

/// With verify off, writes carry the pattern's kind of data from every buffer they can
/// come from: the one-at-a-time loop's (dio) and each queued slot's (uring at depth 4).
#[test]
fn writes_without_verify_carry_pattern_data_not_zeros() {
    let _l = machine_lock();
    for engine in [
        &["--engine", "dio"][..],
        &["--engine", "uring", "--iodepth", "4"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        // An existing file, overwritten on purpose (--force) and kept: what the writes put
        // there stays to be looked at.
        std::fs::write(dir.path().join("mine.dat"), vec![0u8; 1 << 20]).unwrap();
        let mut args = vec![
            "--target",
            "mine.dat",
            "--force",
            "--no-verify",
            "--rw",
            "write",
            "--bs",
            "64k",
            "--size",
            "1M",
            "--threads",
            "1",
            "--duration",
            "300ms",
            "--warmup",
            "0s",
        ];
        args.extend_from_slice(engine);
        let r = result_of_run(run, &args, dir.path());
        assert!(r.runs[0].ops >= 16, "{engine:?}: every block written");
        // A zero-filled buffer would write zeros, which zram stores without compressing:
        // verify off would then measure different I/O from verify on.
        let data = std::fs::read(dir.path().join("mine.dat")).unwrap();
        let zero_blocks = data
            .chunks(4096)
            .filter(|b| b.iter().all(|&x| x == 0))
            .count();
        assert_eq!(zero_blocks, 0, "{engine:?}: 4 KiB blocks written as zeros");
        // The pattern of a block in the region's middle (block 8 of 16 here), as verify
        // would write there: zram's LZO took longer on the pattern of the region's first
        // bytes with a zero tag, and 4 KiB random writes ran slower without verify than
        // with it (results/observer/2026-12-03-verify-off-write-pattern.txt).
        let offset_word = u64::from_le_bytes(data[..8].try_into().unwrap());
        assert_eq!(
            offset_word,
            8 * 65536,
            "{engine:?}: the header of the data written"
        );
        // Its tag, as verify's first write of that block: generation 1 under the nonce.
        let tag = u64::from_le_bytes(data[8..16].try_into().unwrap());
        assert_eq!(tag & 0xffff_ffff, 1, "{engine:?}: tag {tag:#x}");
    }
}

fn target_of(r: &BenchResult) -> (String, u64, u64) {
    let t = r.runs[0].target.as_ref().expect("the target is recorded");
    (t.kind.clone(), t.size_bytes, t.region_bytes)
}

#[test]
fn an_existing_file_is_used_whole_unless_size_narrows_it() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.dat"), vec![7u8; 8 << 20]).unwrap();
    let read = |extra: &[&str], out: &str| {
        let mut args = vec![
            "run",
            "--target",
            "mine.dat",
            "--no-verify",
            "--duration",
            "200ms",
            "--warmup",
            "0s",
            "--threads",
            "1",
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        let o = run(&args, dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        (load_result(&dir.path().join(out)), stdout(&o))
    };
    let (r, summary) = read(&[], "whole.json");
    assert_eq!(
        target_of(&r),
        ("file (existing)".to_string(), 8 << 20, 8 << 20)
    );
    let target = r.runs[0].target.as_ref().expect("the target is recorded");
    assert!(target.path.ends_with("mine.dat"), "{target:?}");
    assert!(!summary.contains("narrower"), "{summary}");
    // An explicit size narrows the region, and the summary says so.
    let (r, summary) = read(&["--size", "2M"], "narrow.json");
    assert_eq!(
        target_of(&r),
        ("file (existing)".to_string(), 8 << 20, 2 << 20)
    );
    assert!(summary.contains("narrower than the target"), "{summary}");
}

#[test]
fn a_block_device_is_used_whole_by_default() {
    let Some(_l) = privileged("a_block_device_is_used_whole_by_default") else {
        return;
    };
    // Larger than the 64 MiB that used to be the region on any device.
    let dev = thpbench::system::zram::ZramDevice::create(128 << 20).unwrap();
    let path = dev.path();
    let dir = tempfile::tempdir().unwrap();
    let r = result_of_run(
        run,
        &[
            "--target",
            path.to_str().unwrap(),
            "--no-verify",
            "--duration",
            "200ms",
            "--warmup",
            "0s",
            "--threads",
            "1",
        ],
        dir.path(),
    );
    assert_eq!(
        target_of(&r),
        ("block device".to_string(), 128 << 20, 128 << 20)
    );
    drop(dev);
}
