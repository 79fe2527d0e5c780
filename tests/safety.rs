//! Safety on a machine people care about: devices that hold anything are never written,
//! nothing is left behind after signals or SIGKILL, concurrent runs do not clobber each
//! other. Root tests run under `privileged()`; they restore everything they make.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn image(dir: &Path, name: &str, size: &str) -> String {
    let p = dir.join(name);
    sh("truncate", &["-s", size, p.to_str().unwrap()]);
    p.to_str().unwrap().to_string()
}

fn blkid_type(dev: &str) -> String {
    let out = Command::new("blkid")
        .args(["-p", "-o", "value", "-s", "TYPE", dev])
        .output()
        .unwrap();
    stdout(&out).trim().to_string()
}

fn write_run(dev: &str, dir: &Path) -> std::process::Output {
    run(
        &[
            "run",
            "--target",
            dev,
            "--allow-write-device",
            "--size",
            "8M",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "-o",
            "w.json",
        ],
        dir,
    )
}

#[test]
fn a_minix_filesystem_is_never_written() {
    let Some(_l) = privileged("a_minix_filesystem_is_never_written") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "m.img", "32M");
    sh("mkfs.minix", &["-3", &img]);
    let dev = Loop::over(&img, None);
    let out = write_run(&dev.0, dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_contains(&out, "minix");
    assert_eq!(blkid_type(&dev.0), "minix", "the signature survives");
}

#[test]
fn a_filesystem_mounted_through_a_second_loop_device_is_never_written() {
    let Some(_l) = privileged("a_filesystem_mounted_through_a_second_loop_device_is_never_written")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "b.img", "48M");
    let first = Loop::over(&img, None);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    // The case: a loop device over the first one, 1 MiB in, mounted.
    let second = Loop::over(&first.0, Some("1M"));
    sh("mkfs.ext4", &["-q", &second.0]);
    sh("mount", &[&second.0, mnt.to_str().unwrap()]);
    let mounted = Mounted(mnt.clone());
    std::fs::write(mnt.join("precious"), b"keep me").unwrap();
    let out = write_run(&first.0, dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_contains(&out, &format!("{} is a loop device over it", second.0));
    drop(mounted);
    drop(second);
    // The same, through a second loop device over the same backing file.
    let third = Loop::over(&img, Some("1M"));
    sh("mount", &[&third.0, mnt.to_str().unwrap()]);
    let mounted = Mounted(mnt.clone());
    let out = write_run(&first.0, dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_contains(&out, &format!("{} maps the same backing file", third.0));
    assert_eq!(std::fs::read(mnt.join("precious")).unwrap(), b"keep me");
    drop(mounted);
    drop(third);
}

#[test]
fn a_blank_loop_device_is_written_when_allowed() {
    let Some(_l) = privileged("a_blank_loop_device_is_written_when_allowed") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "z.img", "16M");
    let dev = Loop::over(&img, None);
    let out = write_run(&dev.0, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        load_result(&dir.path().join("w.json")).runs[0]
            .verify
            .mismatches,
        0
    );
}

/// What a run may change, read back for a before/after comparison.
#[derive(Debug, PartialEq)]
struct MachineState {
    swaps: String,
    zram: Vec<(String, String)>,
    thp_knobs: Vec<(String, String)>,
    nr_hugepages: String,
    cgroups: Vec<PathBuf>,
    mounts: Vec<String>,
    files: Vec<PathBuf>,
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// thpbench-* directories in the memory cgroup tree, a few levels down.
fn thpbench_cgroups(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if e.file_name().to_string_lossy().starts_with("thpbench-") {
                out.push(e.path());
            }
            if depth > 0 {
                thpbench_cgroups(&e.path(), depth - 1, out);
            }
        }
    }
}

fn machine_state(dir: &Path) -> MachineState {
    let thp = "/sys/kernel/mm/transparent_hugepage";
    let mut thp_knobs: Vec<(String, String)> = ["enabled", "defrag"]
        .iter()
        .map(|k| (k.to_string(), read(format!("{thp}/{k}"))))
        .collect();
    for e in std::fs::read_dir(thp).unwrap().flatten() {
        let knob = e.path().join("enabled");
        if knob.exists() {
            thp_knobs.push((e.file_name().to_string_lossy().into(), read(knob)));
        }
    }
    thp_knobs.sort();
    let mut cgroups = Vec::new();
    thpbench_cgroups(Path::new("/sys/fs/cgroup/memory"), 3, &mut cgroups);
    let mut mounts: Vec<String> = read("/proc/self/mounts")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect();
    mounts.sort();
    MachineState {
        swaps: swaps(),
        zram: zram_devices()
            .into_iter()
            .map(|z| {
                let size = read(format!("/sys/block/{z}/disksize"));
                (z, size)
            })
            .collect(),
        thp_knobs,
        nr_hugepages: read("/proc/sys/vm/nr_hugepages"),
        cgroups,
        mounts,
        files: files_in(dir),
    }
}

/// The journal records of `pid`, as text.
fn journal_of(pid: u32) -> String {
    std::fs::read_dir("/run/thpbench")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("{pid}-")) && name.ends_with(".json")
        })
        .map(|e| read(e.path()))
        .collect()
}

/// Starts `thpbench run ARGS` in `dir` and waits until its journal holds `marker` (the
/// change is recorded, so the run is set up and measuring), then one more second.
fn start_until_journaled(args: &[&str], dir: &Path, marker: &str) -> std::process::Child {
    let mut child = Command::new(bin())
        .arg("run")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !journal_of(child.id()).contains(marker) {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("{args:?} ended ({status}) before journaling {marker}: {err}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{args:?}: no {marker} in the journal"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    child
}

#[test]
fn cleanup_after_sigkill_brings_the_machine_back() {
    let Some(_l) = privileged("cleanup_after_sigkill_brings_the_machine_back") else {
        return;
    };
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "swap-out",
            &["--swap-out", "--swap", "zram:256M"],
            "\"kind\": \"swap\"",
        ),
        (
            "pressure",
            &["--pressure", "--swap", "zram:256M"],
            "\"kind\": \"swap\"",
        ),
        ("mthp", &["--buffer", "mthp:64K"], "hugepages-64kB"),
        ("hugetlb", &["--buffer", "hugetlb"], "nr_hugepages"),
    ];
    let swap_file = |dir: &Path| format!("file:{}/swapfile:64M", dir.display());
    let cases = cases
        .into_iter()
        .map(|(w, f, m)| (w, f.to_vec(), m))
        .chain([(
            "swap file",
            vec!["--swap-out", "--swap", "SWAPFILE"],
            "\"kind\": \"swap\"",
        )]);
    for (what, flags, marker) in cases {
        let dir = tempfile::tempdir().unwrap();
        let before = machine_state(dir.path());
        let swap_spec = swap_file(dir.path());
        let mut args = vec!["--duration", "60s", "--warmup", "0s", "--size", "16M"];
        args.extend(flags.iter().map(|f| {
            if *f == "SWAPFILE" {
                swap_spec.as_str()
            } else {
                f
            }
        }));
        let mut child = start_until_journaled(&args, dir.path(), marker);
        let pid = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_ne!(
            machine_state(dir.path()),
            before,
            "{what}: the kill left nothing?"
        );
        // Leftovers are named by probe and stop the next run.
        let probe = run(&["probe"], dir.path());
        assert!(
            stdout(&probe).contains(&format!("pid {pid} (gone)")),
            "{what}: {}",
            stdout(&probe)
        );
        let refused = run(&["run", "--duration", "1s"], dir.path());
        assert_eq!(refused.status.code(), Some(1), "{what}");
        assert!(stderr(&refused).contains("thpbench cleanup"), "{what}");
        let out = run(&["cleanup"], dir.path());
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        assert!(stdout(&out).contains("undone:"), "{what}: {}", stdout(&out));
        assert!(
            !stderr(&out).contains("left alone"),
            "{what}: cleanup did not recognise its own changes: {}",
            stderr(&out)
        );
        assert_eq!(machine_state(dir.path()), before, "{what}: after cleanup");
        assert_eq!(journal_of(pid), "", "{what}: journal emptied");
    }
}

#[test]
fn sighup_cleans_up_like_sigint_and_exits_130() {
    let Some(_l) = privileged("sighup_cleans_up_like_sigint_and_exits_130") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let before = machine_state(dir.path());
    let args = [
        "--swap-out",
        "--swap",
        "zram:256M",
        "--duration",
        "60s",
        "--warmup",
        "0s",
        "--size",
        "16M",
        "-o",
        "r.json",
    ];
    for sig in [libc::SIGHUP, libc::SIGQUIT] {
        let child = start_until_journaled(&args, dir.path(), "\"kind\": \"swap\"");
        let pid = child.id();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, sig) };
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(130),
            "signal {sig}: {}",
            stderr(&out)
        );
        std::fs::remove_file(dir.path().join("r.json")).unwrap();
        assert_eq!(machine_state(dir.path()), before, "signal {sig}");
        assert_eq!(journal_of(pid), "");
    }
}

/// Runs thpbench with stderr (or stdout) a pipe whose reader is gone.
fn run_with_closed(stream: &str, args: &[&str], dir: &Path) -> std::process::ExitStatus {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir);
    if stream == "stderr" {
        cmd.stderr(std::process::Stdio::from(writer));
    } else {
        cmd.stdout(std::process::Stdio::from(writer));
    }
    cmd.status().unwrap()
}

#[test]
fn a_closed_output_stream_never_skips_an_undo() {
    let Some(_l) = privileged("a_closed_output_stream_never_skips_an_undo") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let before = machine_state(dir.path());
    let status = run_with_closed(
        "stderr",
        &[
            "-v",
            "run",
            "--buffer",
            "mthp:64K",
            "--duration",
            "1s",
            "-o",
            "e.json",
        ],
        dir.path(),
    );
    assert_ne!(status.code(), Some(101), "a panic");
    assert_eq!(
        status.code(),
        Some(130),
        "SIGPIPE stops the run like SIGINT"
    );
    let _ = std::fs::remove_file(dir.path().join("e.json"));
    assert_eq!(machine_state(dir.path()), before, "closed stderr");
    let status = run_with_closed(
        "stdout",
        &[
            "run",
            "--buffer",
            "mthp:64K",
            "--duration",
            "1s",
            "-o",
            "o.json",
        ],
        dir.path(),
    );
    assert_ne!(status.code(), Some(101), "a panic");
    assert!(dir.path().join("o.json").exists(), "the result is saved");
    std::fs::remove_file(dir.path().join("o.json")).unwrap();
    assert_eq!(machine_state(dir.path()), before, "closed stdout");
}

fn spawn_run(args: &[&str], dir: &Path) -> std::process::Child {
    Command::new(bin())
        .arg("run")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_mthp_runs_at_once_leave_the_knobs_as_found() {
    let Some(_l) = privileged("two_mthp_runs_at_once_leave_the_knobs_as_found") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let before = machine_state(dir.path());
    let first = start_until_journaled(
        &[
            "--buffer",
            "mthp:64K",
            "--duration",
            "3s",
            "--warmup",
            "0s",
            "--size",
            "16M",
            "-o",
            "a.json",
        ],
        dir.path(),
        "hugepages-64kB",
    );
    let refused = run(
        &[
            "run",
            "--buffer",
            "mthp:32K",
            "--no-wait",
            "--duration",
            "1s",
            "-o",
            "n.json",
        ],
        dir.path(),
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert_stderr_contains(&refused, &format!("pid {}", first.id()));
    let second = spawn_run(
        &[
            "--buffer",
            "mthp:32K",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--size",
            "16M",
            "-o",
            "b.json",
        ],
        dir.path(),
    );
    let (a, b) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    assert_stderr_contains(&b, "waiting for thpbench run pid");
    for f in ["a.json", "b.json"] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    assert_eq!(machine_state(dir.path()), before);
}

#[test]
fn two_runs_in_the_same_second_give_two_result_files() {
    let _l = machine_lock();
    let dir = world_writable_tempdir();
    // As nobody: no machine lock, so both really run at once.
    let spawn = || {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
            .args([
                "run",
                "--duration",
                "300ms",
                "--warmup",
                "0s",
                "--size",
                "8M",
                "--results-dir",
                "res",
            ])
            .current_dir(dir.path())
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    let files = files_in(&dir.path().join("res"));
    assert_eq!(files.len(), 2, "{files:?}");
}

#[test]
fn what_can_be_refused_up_front_is_refused_before_measuring() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    // A sweep case that cannot be set up stops the run before the first case is measured.
    let out = run(
        &[
            "run",
            "--sweep",
            "buffer=thp,mthp:8K",
            "--duration",
            "1s",
            "-o",
            "s.json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_contains(&out, "sweep case buffer=mthp:8K");
    assert!(
        !stderr(&out).contains("sweep case buffer=thp\n"),
        "measured first: {}",
        stderr(&out)
    );
    // mthp:2M is refused, and no error offers 2048K.
    let out = run(
        &["run", "--buffer", "mthp:4M", "--duration", "1s"],
        dir.path(),
    );
    assert!(
        !stderr(&out).contains("2048K,") && !stderr(&out).contains(", 2048K;"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &["run", "--buffer", "mthp:8K", "--duration", "1s"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !stderr(&out).contains("2048K,") && stderr(&out).contains("1024K;"),
        "{}",
        stderr(&out)
    );
    // Sizes: swap=zram:0 and zram bigger than memory, with the numbers.
    let out = run(
        &["run", "--swap-out", "--swap", "zram:0", "--duration", "1s"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "a swap of 0 bytes");
    let out = run(
        &[
            "run",
            "--target",
            "zram:1T",
            "--size",
            "1T",
            "--duration",
            "1s",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "MemAvailable is");
    // Outside a sweep the error names the workload, not an empty sweep case.
    assert_stderr_contains(&out, "workload `quick`, checked before measuring");
    assert!(!stderr(&out).contains("sweep case ,"), "{}", stderr(&out));
    // A results directory that cannot be written is found before measuring.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let out = run(
        &[
            "run",
            "--duration",
            "1s",
            "--size",
            "8M",
            "--results-dir",
            "file/res",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "results directory");
    assert!(
        !stdout(&out).contains("ops/s"),
        "it measured: {}",
        stdout(&out)
    );
}

#[test]
fn the_pressure_cgroup_is_nested_under_the_callers_own() {
    let Some(_l) = privileged("the_pressure_cgroup_is_nested_under_the_callers_own") else {
        return;
    };
    let own = read("/proc/self/cgroup")
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.splitn(3, ':').collect();
            (f.len() == 3 && f[1].split(',').any(|c| c == "memory")).then(|| f[2].to_string())
        })
        .expect("a v1 memory cgroup");
    let caller = Path::new("/sys/fs/cgroup/memory")
        .join(own.trim_start_matches('/'))
        .join(format!("thpbench-test-{}", std::process::id()));
    std::fs::create_dir(&caller).unwrap();
    let procs = caller.join("cgroup.procs");
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args([
        "-v",
        "run",
        "--pressure",
        "--swap",
        "zram:256M",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--size",
        "16M",
        "-o",
        "p.json",
    ])
    .current_dir(dir.path());
    let procs_c = std::ffi::CString::new(procs.to_str().unwrap()).unwrap();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            let fd = libc::open(procs_c.as_ptr(), libc::O_WRONLY);
            let ok = fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            libc::close(fd);
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir(&caller);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_stderr_contains(
        &out,
        &format!("moved into memory cgroup {}/thpbench-", caller.display()),
    );
    assert_stderr_contains(
        &out,
        &format!("moved back into memory cgroup {}\n", caller.display()),
    );
}

#[test]
fn no_verify_turns_verify_off_also_under_a_disturber() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--fork",
            "--no-verify",
            "--duration",
            "500ms",
            "--warmup",
            "0s",
            "--size",
            "8M",
            "-o",
            "v.json",
        ],
        dir.path(),
    );
    assert!(out.status.code() != Some(1), "{}", stderr(&out));
    let r = load_result(&dir.path().join("v.json"));
    assert!(!r.workload.verify, "as the README says");
    assert!(!r.workload.disturb.is_empty());
}
