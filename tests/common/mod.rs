//! Helpers for the integration tests, which run the built binary for real.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_thpbench")
}

/// Tests that create zram devices, swap or files, or that compare the machine's state
/// before and after, take this lock so that they do not see each other's changes.
pub fn machine_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn is_root() -> bool {
    thpbench::system::is_root()
}

/// The crate's rule (`CI=true` or `CI=1`), so that tests and unit tests agree on it.
pub fn in_ci() -> bool {
    thpbench::test_support::in_ci()
}

/// True when the test can go on as root. Outside CI a non-root run skips with the reason
/// printed; in CI (root on the reference machine) a missing privilege is a failure.
pub fn require_root(test: &str) -> bool {
    thpbench::test_support::require_root(test, "zram, swap, kpageflags")
}

/// `require_root` and `machine_lock` together: the lock when the test may go on.
pub fn privileged(test: &str) -> Option<MutexGuard<'static, ()>> {
    require_root(test).then(machine_lock)
}

pub fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running thpbench")
}

/// Waits until `child` (a `thpbench --verbose run` with stderr piped) says its first run
/// is measuring, so that a signal sent next meets the measured phase, not the setup.
/// Fails, killing the child, if it ends or stays silent for 2 minutes (a bound against
/// hanging; the measured phase starts within seconds). Returns the rest of stderr,
/// line by line, read on a thread so that the child never blocks on a full pipe.
pub fn wait_until_measuring(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("the child's stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut before = Vec::new();
    loop {
        let left = limit.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("run 0: measuring") => return rx,
            Ok(line) => before.push(line),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "thpbench never said it was measuring ({e:?}); its stderr:\n{}",
                    before.join("\n")
                );
            }
        }
    }
}

/// A directory anyone may write, sticky as /tmp is (thpbench refuses to make files in
/// one that is not), for runs as `nobody`.
pub fn world_writable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    dir
}

/// Runs thpbench as `nobody` (uid/gid 65534, no groups) through setpriv.
pub fn run_as_nobody(args: &[&str], cwd: &Path) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running setpriv (util-linux)")
}

/// What a failed run said: its exit status, stderr, and the end of its stdout (where
/// the summary names why a result is invalid).
pub fn failure(o: &Output) -> String {
    let out = stdout(o);
    let tail: Vec<&str> = out.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(
        "{}\n--- stderr:\n{}\n--- stdout (last 40 lines):\n{}",
        o.status,
        stderr(o),
        tail.join("\n")
    )
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A result file through the typed schema (`BenchResult`): a renamed or missing key is a
/// failure here, where a keyed read of JSON would give null.
pub fn load_result(path: &Path) -> thpbench::result::BenchResult {
    thpbench::result::BenchResult::load(path)
        .unwrap_or_else(|e| panic!("loading the result {}: {e:#}", path.display()))
}

/// `thpbench run ARGS -o r.json` in `dir` through `runner` (`run` or `run_as_nobody`):
/// asserts that it succeeded and returns the result.
pub fn result_of_run(
    runner: fn(&[&str], &Path) -> Output,
    args: &[&str],
    dir: &Path,
) -> thpbench::result::BenchResult {
    output_and_result_of_run(runner, args, dir).1
}

/// `result_of_run`, with the run's output as well (for what it printed).
pub fn output_and_result_of_run(
    runner: fn(&[&str], &Path) -> Output,
    args: &[&str],
    dir: &Path,
) -> (Output, thpbench::result::BenchResult) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend(["-o", "r.json"]);
    let out = runner(&all, dir);
    assert!(out.status.success(), "thpbench {all:?}: {}", failure(&out));
    (out, load_result(&dir.join("r.json")))
}

/// JSON of a foreign format (what `export` writes for fio, KCIDB, Bencher), read by key:
/// thpbench's own files are read through their types (`load_result`).
pub fn load_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The rows `thpbench probe --json` printed, through their type (`ProbeRow`).
pub fn probe_rows(out: &Output) -> Vec<thpbench::system::probe::ProbeRow> {
    assert!(out.status.success(), "thpbench probe: {}", failure(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("probe --json is not a list of rows ({e}): {}", stdout(out)))
}

/// The probe row about `what`, failing when there is none.
pub fn probe_row<'a>(
    rows: &'a [thpbench::system::probe::ProbeRow],
    what: &str,
) -> &'a thpbench::system::probe::ProbeRow {
    rows.iter()
        .find(|r| r.what == what)
        .unwrap_or_else(|| panic!("probe has no row `{what}`: {rows:?}"))
}

/// The workload `thpbench run --print-workload --json ARGS` resolved, through its type.
pub fn printed_workload(args: &[&str], dir: &Path) -> thpbench::workload::Workload {
    let mut all = vec!["run", "--print-workload", "--json"];
    all.extend_from_slice(args);
    let out = run(&all, dir);
    assert!(out.status.success(), "{args:?}: {}", failure(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not a workload ({e}): {}", stdout(&out)))
}

/// What `compare --format json` prints, as far as the tests read it. The crate only
/// writes this JSON (for scripts), so its types have no reader: these mirror them under
/// the names they serialise to, so that a key the output lacks or renames fails to
/// deserialise instead of reading as null.
pub mod compare_json {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    pub struct Comparison {
        pub groups: Vec<Group>,
        pub system_differences: Vec<SystemDifference>,
        pub sections: Vec<Section>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Group {
        pub runs_counted: usize,
    }

    #[derive(Debug, Deserialize)]
    pub struct SystemDifference {
        pub setting: String,
        /// `machine`, `conditions` or `note`.
        pub kind: String,
    }

    #[derive(Debug, Deserialize)]
    pub struct Section {
        pub rows: Vec<Row>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Row {
        pub metric: Metric,
        /// One per group; null where the group lacks the metric.
        pub cells: Vec<Option<Cell>>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Metric {
        pub key: String,
    }

    #[derive(Debug, Deserialize)]
    pub struct Cell {
        /// `baseline`, `better`, `worse`, `noise`, ...
        pub verdict: String,
        pub test: Option<Test>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Test {
        pub p_value: f64,
    }

    /// The comparison a `compare ... --format json` run printed.
    pub fn of(out: &std::process::Output) -> Comparison {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not a comparison ({e}): {}", super::failure(out)))
    }
}

/// zram devices that exist now, e.g. ["zram0"].
pub fn zram_devices() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| n.starts_with("zram"))
        .collect();
    v.sort();
    v
}

pub fn swaps() -> String {
    std::fs::read_to_string("/proc/swaps").unwrap_or_default()
}

/// Every file in `dir`, recursively, as paths relative to it.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(
                files_in(&p)
                    .into_iter()
                    .map(|f| Path::new(&e.file_name()).join(f)),
            );
        } else {
            out.push(PathBuf::from(e.file_name()));
        }
    }
    out.sort();
    out
}

/// Asserts that the run left nothing in `dir` but its result, r.json (its data file and
/// anything else it made are gone).
pub fn assert_only_result_left(dir: &Path) {
    assert_eq!(files_in(dir), vec![PathBuf::from("r.json")]);
}

/// Asserts that what the run printed on stderr contains `text`, showing it all when not.
pub fn assert_stderr_contains(out: &Output, text: &str) {
    let err = stderr(out);
    assert!(err.contains(text), "expected {text:?} on stderr:\n{err}");
}

/// `thpbench run workloads/seed-torture.toml --duration DURATION -o DIR/r.json`, from the
/// crate's root where the workload file is.
pub fn seed_torture_command(duration: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args([
        "run",
        "workloads/seed-torture.toml",
        "--duration",
        duration,
        "-o",
    ])
    .arg(dir.join("r.json"))
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// A loop device made for a test (`losetup -f --show [-o OFFSET] BACKING`), detached on
/// drop, also when the test fails.
pub struct Loop(pub String);

impl Loop {
    pub fn over(backing: impl AsRef<std::ffi::OsStr>, offset: Option<&str>) -> Loop {
        let mut cmd = Command::new("losetup");
        if let Some(o) = offset {
            cmd.args(["-o", o]);
        }
        let out = cmd.args(["-f", "--show"]).arg(backing).output().unwrap();
        assert!(out.status.success(), "losetup: {}", stderr(&out));
        Loop(stdout(&out).trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// A filesystem mounted for a test, unmounted (lazily) on drop.
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Runs `cmd ARGS`, asserting it succeeded.
pub fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", stderr(&out));
}

/// Saves a synthetic result as `dir/name`; its path as text, for the command line.
pub fn save(dir: &Path, name: &str, r: &thpbench::result::BenchResult) -> String {
    let p = dir.join(name);
    r.save(&p).unwrap();
    p.to_str().unwrap().to_string()
}
