//! A run that was stopped is flagged, and a write workload's final verify pass finds
//! data that anyone else wrote into the target at any time. The stop is a real
//! SIGSTOP/SIGCONT of the binary; the foreign writer is this test, writing into the
//! target while the run goes on. The mock runs (hidden `--mock`, an in-memory target)
//! need no privilege; as root they run as `nobody`, as tests/mock.rs does.

mod common;

use std::io::BufRead;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::load_result;
use thpbench::result::{BenchResult, FinalVerify};

/// Starts `thpbench run ARGS -o r.json` in `dir` (as `nobody` under root when `mock`),
/// and returns once it has placed its workers, with the rest of its stderr.
fn start(dir: &Path, args: &[&str], as_nobody: bool) -> (Child, std::thread::JoinHandle<String>) {
    let mut cmd = if as_nobody && common::is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::bin(),
        ]);
        c
    } else {
        Command::new(common::bin())
    };
    // setpriv execs thpbench, so the child's pid is thpbench's.
    let mut child = cmd
        .arg("run")
        .args(args)
        .args(["-o", "r.json"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let started = lines.by_ref().map_while(Result::ok).any(|l| {
        seen.push(l.clone());
        l.contains("workers on CPUs")
    });
    assert!(
        started,
        "thpbench ended before placing its workers:\n{}",
        seen.join("\n")
    );
    let rest =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    (child, rest)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Stops the run for 2 s in the middle of its 3 s, then lets it go on.
fn stopped_run(extra: &[&str]) -> (Option<i32>, String, BenchResult, Duration) {
    let dir = common::world_writable_tempdir();
    let mut args = vec![
        "--mock",
        "1us",
        "--buffer",
        "4k",
        "--threads",
        "2",
        "--warmup",
        "0",
        "--duration",
        "3s",
    ];
    args.extend_from_slice(extra);
    let (mut child, rest) = start(dir.path(), &args, true);
    std::thread::sleep(Duration::from_millis(800));
    signal(&child, libc::SIGSTOP);
    let stopped_at = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let stopped_for = stopped_at.elapsed();
    signal(&child, libc::SIGCONT);
    let status = child.wait().unwrap();
    let err = rest.join().unwrap();
    let r = load_result(&dir.path().join("r.json"));
    (status.code(), err, r, stopped_for)
}

/// The stall a stopped run recorded: one, as long as the stop (less what the workers
/// did between the signal and being stopped), with next to no CPU used.
fn assert_one_stall_like_the_stop(r: &BenchResult, stopped_for: Duration, kept: bool) {
    let stalls = &r.runs[0].stalls;
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    let s = &stalls[0];
    assert_eq!(s.kind, "stopped");
    assert_eq!(s.kept, kept);
    let length = s.length_ns;
    let stopped_ns = stopped_for.as_nanos() as u64;
    assert!(
        length >= stopped_ns * 3 / 4 && length <= stopped_ns + 500_000_000,
        "a stall of {length} ns for a stop of {stopped_ns} ns"
    );
    assert!(s.t_ms < 3000, "{s:?}");
    let cpu = s
        .process_cpu_ns
        .expect("the process's CPU time over the stall");
    assert!(cpu < length / 4, "a stopped process used {cpu} ns of CPU");
}

#[test]
fn a_stopped_run_is_invalid_and_records_its_stall() {
    let (code, err, r, stopped_for) = stopped_run(&[]);
    assert_eq!(code, Some(4), "{err}");
    assert!(!r.valid);
    assert_one_stall_like_the_stop(&r, stopped_for, false);
    let reasons = r.invalid_reasons.join("\n");
    assert!(
        reasons.contains("the process did not run") && reasons.contains("--keep-stalled"),
        "{reasons}"
    );
}

#[test]
fn keep_stalled_keeps_a_stopped_run_as_measured_and_still_records_the_stall() {
    let (code, err, r, stopped_for) = stopped_run(&["--keep-stalled"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(r.valid, "{:?}", r.invalid_reasons);
    assert_one_stall_like_the_stop(&r, stopped_for, true);
    assert!(err.contains("kept as measured (--keep-stalled)"), "{err}");
}

/// The first 8 bytes of every sector of a filled target are its offset: once the last
/// sector of [0, size) holds its own, the fill is done and what is written next stays
/// unless the run writes over it.
fn wait_for_fill(f: &std::fs::File, size: u64, child: &mut Child) {
    let last = size - 512;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut b = [0u8; 8];
        if f.read_exact_at(&mut b, last).is_ok() && u64::from_le_bytes(b) == last {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "thpbench ended before its target was filled"
        );
        assert!(
            Instant::now() < deadline,
            "the target was not filled in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const FOREIGN_AT: u64 = 32 << 20;
const FOREIGN_LEN: usize = 4 << 20;

/// Writes 4 MiB of foreign data at 32 MiB into the target once it is filled, waits for
/// the run, and checks that the final pass named the foreign blocks the run did not
/// write over again, and nothing else.
fn assert_foreign_write_caught(dir: &Path, mut child: Child, target: PathBuf, size: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&target)
        .unwrap_or_else(|e| panic!("opening {}: {e}", target.display()));
    wait_for_fill(&f, size, &mut child);
    f.write_all_at(&vec![0x5a; FOREIGN_LEN], FOREIGN_AT)
        .unwrap();
    f.sync_all().unwrap();
    drop(f);
    let status = child.wait().unwrap();
    let r = load_result(&dir.join("r.json"));
    assert_eq!(status.code(), Some(3), "{:?}", r.invalid_reasons);
    assert!(!r.valid);
    let fp = final_pass(&r);
    assert_eq!(fp.blocks_checked, size / 4096, "{fp:?}");
    let bad_blocks = fp.mismatched_blocks;
    assert!(
        bad_blocks > 0,
        "the final pass missed the foreign write: {fp:?}"
    );
    assert!(bad_blocks <= (FOREIGN_LEN / 4096) as u64, "{fp:?}");
    // Each foreign block is foreign in every one of its 8 sectors.
    assert_eq!(fp.mismatches, bad_blocks * 8, "{fp:?}");
    let range = FOREIGN_AT..FOREIGN_AT + FOREIGN_LEN as u64;
    for m in &fp.first_mismatches {
        assert!(
            range.contains(&m.offset),
            "a mismatch outside the foreign write: {m:?}"
        );
        assert!(m.actual.starts_with("5a5a5a5a"), "{m:?}");
    }
    let reasons = r.invalid_reasons.join("\n");
    assert!(reasons.contains("final verify pass found"), "{reasons}");
}

/// The final verify pass of the result's first run, failing when it has none.
fn final_pass(r: &BenchResult) -> &FinalVerify {
    r.runs[0]
        .verify
        .final_pass
        .as_ref()
        .expect("a write workload's final verify pass")
}

/// The memfd behind a mock run's target, through /proc/PID/fd.
fn mock_target(pid: u32) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
        {
            let link = std::fs::read_link(e.path()).unwrap_or_default();
            if link.to_string_lossy().starts_with("/memfd:thpbench-mock") {
                return e.path();
            }
        }
        assert!(Instant::now() < deadline, "no mock target in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_final_pass_finds_a_foreign_write_into_a_mock_target_with_its_offsets() {
    let dir = common::world_writable_tempdir();
    // 1 ms per write over 16384 blocks: most of the foreign blocks stay foreign.
    let args = [
        "--mock",
        "1ms",
        "--buffer",
        "4k",
        "--threads",
        "2",
        "--warmup",
        "0",
        "--duration",
        "2s",
        "--rw",
        "randwrite",
        "--size",
        "64M",
    ];
    let (child, _rest) = start(dir.path(), &args, true);
    let target = mock_target(child.id());
    assert_foreign_write_caught(dir.path(), child, target, 64 << 20);
}

#[test]
fn the_final_pass_finds_a_foreign_write_into_a_target_file_with_its_offsets() {
    // A created file target and O_DIRECT: the real path; the writer goes through the
    // page cache, which O_DIRECT reads flush first.
    let _lock = common::machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--buffer",
        "4k",
        "--threads",
        "2",
        "--warmup",
        "0",
        "--duration",
        "2s",
        "--rw",
        "randwrite",
        "--no-lock-contention",
    ];
    let (child, _rest) = start(dir.path(), &args, false);
    let target = dir.path().join(format!(".thpbench-{}.dat", child.id()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !target.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            target.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The created file's default size.
    assert_foreign_write_caught(dir.path(), child, target, 64 << 20);
}

#[test]
fn a_clean_write_run_passes_the_final_pass_and_records_no_stall() {
    let dir = common::world_writable_tempdir();
    let args = [
        "--mock",
        "1us",
        "--buffer",
        "4k",
        "--threads",
        "2",
        "--warmup",
        "0",
        "--ops",
        "20000",
        "--rw",
        "randwrite",
    ];
    let (mut child, rest) = start(dir.path(), &args, true);
    let status = child.wait().unwrap();
    let err = rest.join().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let r = load_result(&dir.path().join("r.json"));
    assert!(r.valid, "{:?}", r.invalid_reasons);
    let run = &r.runs[0];
    let fp = final_pass(&r);
    // The mock target's default 8 MiB, every block of it, each at the generation its
    // owner last wrote (20000 writes over 2048 blocks: most were written several times).
    assert_eq!(fp.blocks_checked, 2048, "{fp:?}");
    assert_eq!(fp.bytes_checked, 8 << 20);
    assert_eq!(fp.mismatches, 0, "{fp:?}");
    assert!(fp.first_mismatches.is_empty(), "{fp:?}");
    assert!(fp.incomplete.is_none(), "{fp:?}");
    assert!(run.stalls.is_empty(), "{:?}", run.stalls);
}

#[test]
fn a_read_workload_has_no_final_pass() {
    let dir = common::world_writable_tempdir();
    let args = [
        "--mock",
        "1us",
        "--buffer",
        "4k",
        "--threads",
        "1",
        "--warmup",
        "0",
        "--ops",
        "100",
        "--rw",
        "randread",
    ];
    let (mut child, rest) = start(dir.path(), &args, true);
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "{}",
        rest.join().unwrap()
    );
    let r = load_result(&dir.path().join("r.json"));
    assert!(r.runs[0].verify.final_pass.is_none());
}
