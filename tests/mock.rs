//! The run loop, verify, validity and exit codes through the mock engine and its
//! in-memory target (hidden `--mock`): these run as any user and never skip. As root
//! they run thpbench as `nobody`, to show that a mock run needs no privilege.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{load_result, stderr};

/// Runs as `nobody` where the tests are root, else as the tester.
fn runner() -> fn(&[&str], &Path) -> Output {
    if common::is_root() {
        common::run_as_nobody
    } else {
        common::run
    }
}

/// `thpbench run --mock 1us` over a 4 KiB-page buffer, one thread, no warm-up (so that
/// operation N of the first worker is its Nth measured one), and `extra`.
fn mock_run(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--mock",
        "1us",
        "--buffer",
        "4k",
        "--threads",
        "1",
        "--warmup",
        "0",
        "-o",
        "r.json",
    ];
    args.extend_from_slice(extra);
    runner()(&args, dir)
}

#[test]
fn a_clean_mock_run_is_valid_and_spins_its_time_per_operation() {
    let dir = common::world_writable_tempdir();
    let out = mock_run(dir.path(), &["--ops", "5000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    assert!(r.valid, "{:?}", r.invalid_reasons);
    assert_eq!(r.mock.as_ref().map(|m| m.op_ns), Some(1000));
    let run = &r.runs[0];
    assert_eq!(run.ops, 5000);
    assert_eq!(
        run.target.as_ref().map(|t| t.kind.as_str()),
        Some("mock (in memory)")
    );
    // The default level compares the 16-byte header of each 4 KiB page read.
    assert_eq!(run.verify.bytes_checked, 5000 * 16);
    // The mock's time per operation reaches the figures: each op spins 1 us at least.
    assert!(run.latency_ns.min >= 1000, "{:?}", run.latency_ns);
}

/// The verify levels compare what they say: `pages` the 16-byte header of every base
/// page read, `full` every byte, and the result and summary name the level.
#[test]
fn the_verify_level_sets_what_each_read_compares() {
    for (level, per_op) in [("pages", 2 * 16u64), ("full", 8192)] {
        let dir = common::world_writable_tempdir();
        let out = mock_run(
            dir.path(),
            &[
                "--ops",
                "100",
                "--rw",
                "read",
                "--bs",
                "8k",
                "--verify-level",
                level,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let r = load_result(&dir.path().join("r.json"));
        let verify = &r.runs[0].verify;
        assert_eq!(verify.level.map(|l| l.name()), Some(level), "{verify:?}");
        assert_eq!(
            verify.bytes_checked,
            r.runs[0].ops * per_op,
            "{level}: {verify:?}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let said = if level == "pages" {
            "page headers"
        } else {
            "every byte"
        };
        assert!(text.contains(said), "{text}");
    }
}

#[test]
fn an_injected_mismatch_exits_3_and_names_its_offset() {
    let dir = common::world_writable_tempdir();
    // Sequential reads from block 0: the 3rd read is at 2 x 4096.
    let out = mock_run(
        dir.path(),
        &["--ops", "10", "--rw", "read", "--mock-mismatch-at", "3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    assert!(!r.valid);
    let verify = &r.runs[0].verify;
    assert_eq!(verify.mismatches, 1);
    assert_eq!(verify.first_mismatches[0].offset, 8192);
    assert!(
        r.invalid_reasons[0].contains("target offset 8192"),
        "{:?}",
        r.invalid_reasons
    );
}

#[test]
fn a_short_io_or_an_io_error_exits_1_naming_the_offset() {
    for (flag, says) in [
        (
            "--mock-short-at",
            "short read of 2048 bytes instead of 4096 at offset 8192",
        ),
        (
            "--mock-error-at",
            "read of 4096 bytes at offset 8192 failed: EIO",
        ),
    ] {
        let dir = common::world_writable_tempdir();
        let out = mock_run(dir.path(), &["--ops", "10", "--rw", "read", flag, "3"]);
        assert_eq!(out.status.code(), Some(1), "{flag}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{flag}: {}", stderr(&out));
    }
}

#[test]
fn a_sweep_of_two_mock_cases_measures_both() {
    let dir = common::world_writable_tempdir();
    let out = mock_run(dir.path(), &["--ops", "100", "--sweep", "bs=4k,8k"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    let measured: Vec<(&str, u64, u64)> = r
        .sweep
        .iter()
        .map(|c| (c.label.as_str(), c.runs[0].ops, c.runs[0].bytes))
        .collect();
    assert_eq!(
        measured,
        [("bs=4k", 100, 100 * 4096), ("bs=8k", 100, 100 * 8192)]
    );
}

#[test]
fn sigint_during_a_mock_run_saves_a_partial_result_and_exits_130() {
    let dir = common::world_writable_tempdir();
    let mut cmd = if common::is_root() {
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
    // --verbose says when the workers are released ("run 0: measuring"): the signal must
    // come while they measure, not during setup, however slow the machine is.
    let mut child = cmd
        .args(["--verbose", "run", "--mock", "1us", "--buffer", "4k"])
        .args(["--threads", "1", "--warmup", "0", "--duration", "120s"])
        .args(["-o", "r.json"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // setpriv execs thpbench, so the child's pid is thpbench's.
    let rest = common::wait_until_measuring(&mut child);
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    let rest: Vec<String> = rest.iter().collect();
    assert_eq!(status.code(), Some(130), "{}", rest.join("\n"));
    let r = load_result(&dir.path().join("r.json"));
    assert!(r.interrupted);
    assert!(!r.valid);
    assert!(r.runs[0].interrupted);
    assert!(r.runs[0].ops > 0, "{:?}", r.runs[0]);
}

#[test]
fn the_fault_options_need_mock() {
    let dir = common::world_writable_tempdir();
    let out = runner()(&["run", "--mock-error-at", "3"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--mock"), "{}", stderr(&out));
}
