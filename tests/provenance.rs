//! Provenance end to end: a real run records the tool's commit, the kernel's build-id,
//! config and compiler, the machine, the mm settings and per run the host's activity,
//! each checked against what the system says through another route (readelf on the
//! kernel's notes, sha256sum of the config); compare refuses results edited to another
//! machine or conditions and separates two builds of one release.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use thpbench::result::BenchResult;
use thpbench::test_support::synthetic;

/// `bytes` as the one SHT_NOTE section of a minimal ELF64 file, so that binutils'
/// `readelf -n` parses the kernel's notes and this test does not trust our parser.
fn notes_as_elf(notes: &[u8]) -> Vec<u8> {
    let shstrtab = b"\0.notes\0.shstrtab\0";
    let notes_off = 64u64;
    let str_off = notes_off + notes.len() as u64;
    let sh_off = (str_off + shstrtab.len() as u64).next_multiple_of(8);
    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF");
    elf.push(2); // ELFCLASS64
    elf.push(if cfg!(target_endian = "little") { 1 } else { 2 });
    elf.push(1); // EV_CURRENT
    elf.resize(16, 0);
    let u16_ = |v: u16| v.to_ne_bytes();
    let u32_ = |v: u32| v.to_ne_bytes();
    let u64_ = |v: u64| v.to_ne_bytes();
    elf.extend_from_slice(&u16_(1)); // ET_REL
    elf.extend_from_slice(&u16_(62)); // EM_X86_64 (readelf -n does not care)
    elf.extend_from_slice(&u32_(1));
    elf.extend_from_slice(&u64_(0)); // entry
    elf.extend_from_slice(&u64_(0)); // phoff
    elf.extend_from_slice(&u64_(sh_off));
    elf.extend_from_slice(&u32_(0)); // flags
    elf.extend_from_slice(&u16_(64)); // ehsize
    elf.extend_from_slice(&u16_(0)); // phentsize
    elf.extend_from_slice(&u16_(0)); // phnum
    elf.extend_from_slice(&u16_(64)); // shentsize
    elf.extend_from_slice(&u16_(3)); // shnum
    elf.extend_from_slice(&u16_(2)); // shstrndx
    assert_eq!(elf.len(), 64);
    elf.extend_from_slice(notes);
    elf.extend_from_slice(shstrtab);
    elf.resize(sh_off as usize, 0);
    let section = |name: u32, kind: u32, off: u64, size: u64, align: u64| {
        let mut s = Vec::new();
        s.extend_from_slice(&u32_(name));
        s.extend_from_slice(&u32_(kind));
        s.extend_from_slice(&u64_(0)); // flags
        s.extend_from_slice(&u64_(0)); // addr
        s.extend_from_slice(&u64_(off));
        s.extend_from_slice(&u64_(size));
        s.extend_from_slice(&u32_(0)); // link
        s.extend_from_slice(&u32_(0)); // info
        s.extend_from_slice(&u64_(align));
        s.extend_from_slice(&u64_(0)); // entsize
        s
    };
    elf.extend(section(0, 0, 0, 0, 0));
    elf.extend(section(1, 7, notes_off, notes.len() as u64, 4)); // SHT_NOTE
    elf.extend(section(8, 3, str_off, shstrtab.len() as u64, 1)); // SHT_STRTAB
    elf
}

/// The build-id `readelf -n` reads from the kernel's notes; None (with why printed) where
/// readelf is missing, outside CI.
fn readelf_build_id(notes: &[u8], dir: &Path) -> Option<String> {
    let elf = dir.join("kernel-notes.elf");
    std::fs::write(&elf, notes_as_elf(notes)).unwrap();
    let out = match Command::new("readelf").arg("-n").arg(&elf).output() {
        Ok(o) => o,
        Err(e) => {
            assert!(!in_ci(), "readelf is needed in CI: {e}");
            eprintln!("readelf not run ({e}): the build-id is checked against the raw bytes only");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("readelf -n printed no Build ID:\n{text}"));
    Some(id.trim().to_string())
}

#[test]
fn a_real_run_records_its_provenance() {
    let Some(_lock) = privileged("a_real_run_records_its_provenance") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = run(
        &[
            "run",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--repeat",
            "2",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = BenchResult::load(&out).unwrap();

    // The tool: the commit this binary was built from, also in --version.
    assert!(!r.tool.commit.is_empty());
    let version = stdout(&run(&["--version"], dir.path()));
    let short: String = r.tool.commit.chars().take(12).collect();
    assert!(version.contains(&format!("commit {short}")), "{version}");
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output();
    if let Some(head) = head.ok().filter(|h| h.status.success()) {
        assert_eq!(r.tool.commit, String::from_utf8_lossy(&head.stdout).trim());
        assert!(r.tool.dirty.is_some());
    }

    // The kernel's build-id, as readelf reads the notes, and as bytes in them.
    let k = &r.system.kernel;
    match std::fs::read("/sys/kernel/notes") {
        Ok(notes) => {
            let id = k.build_id.clone().expect("no build_id recorded");
            assert_eq!(id.len() % 2, 0);
            let bytes: Vec<u8> = (0..id.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap())
                .collect();
            let mut needle = b"GNU\0".to_vec();
            needle.extend_from_slice(&bytes);
            assert!(notes.windows(needle.len()).any(|w| w == needle.as_slice()));
            if let Some(readelf) = readelf_build_id(&notes, dir.path()) {
                assert_eq!(id, readelf);
            }
        }
        Err(e) => assert!(
            r.system
                .not_recorded
                .iter()
                .any(|n| n.starts_with("kernel build-id")),
            "/sys/kernel/notes: {e}, and the result does not say so"
        ),
    }
    // The compiler, from /proc/version.
    let proc_version = std::fs::read_to_string("/proc/version").unwrap();
    let compiler = k.compiler.clone().expect("no compiler recorded");
    assert!(
        proc_version.contains(&format!("({compiler})")),
        "{compiler}\n{proc_version}"
    );
    // The config: its digest is what sha256sum gives for the same text.
    if Path::new("/proc/config.gz").exists() {
        let c = k.config.as_ref().expect("no config recorded");
        assert_eq!(c.source, "/proc/config.gz");
        let sum = Command::new("sh")
            .args(["-c", "zcat /proc/config.gz | sha256sum"])
            .output()
            .unwrap();
        let sum = String::from_utf8_lossy(&sum.stdout);
        assert_eq!(sum.split_whitespace().next(), Some(c.sha256.as_str()));
        let zcat = Command::new("zcat")
            .arg("/proc/config.gz")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&zcat.stdout);
        for (name, value) in [
            ("TRANSPARENT_HUGEPAGE", "y"),
            ("LOCKDEP", "n"),
            ("KASAN", "n"),
        ] {
            let set = text.lines().any(|l| l == format!("CONFIG_{name}=y"));
            assert_eq!(c.options[name] == "y", set, "{name}");
            let _ = value;
        }
    }
    // The machine and the mm settings.
    let m = r.system.machine.as_ref().expect("no machine recorded");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(m.mem_total_bytes, kb * 1024);
    assert!(!m.cpu_model.is_empty());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let flagged = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
    assert_eq!(m.hypervisor != "none", flagged, "{}", m.hypervisor);
    let mm = r.system.mm.as_ref().expect("no mm settings recorded");
    assert_eq!(
        mm.numa_balancing,
        std::fs::read_to_string("/proc/sys/kernel/numa_balancing")
            .map_or(String::new(), |s| s.trim().to_string())
    );
    assert!(
        mm.khugepaged.contains_key("pages_to_scan") && !mm.khugepaged.contains_key("full_scans")
    );
    let kdamonds = std::fs::read_to_string("/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds");
    if let Ok(n) = kdamonds {
        assert_eq!(mm.damon.kdamonds.len(), n.trim().parse::<usize>().unwrap());
    }
    // Per run: the activity on the workers' CPUs.
    for run in &r.runs {
        let a = run.host_activity.as_ref().expect("no host activity");
        let workers: Vec<usize> = run.threads.iter().map(|t| t.cpu).collect();
        assert_eq!(a.cpus, workers);
        assert!(a.ticks > 0 && a.window_ns > 0, "{a:?}");
        assert!((0.0..=1.0).contains(&a.other_busy_share), "{a:?}");
        assert!(a.loadavg_1m_before >= 0.0);
    }
    // The summary says it all and lacks nothing.
    assert!(
        r.missing_provenance().is_empty(),
        "{:?}",
        r.missing_provenance()
    );
    let shown = stdout(&run(&["show", out.to_str().unwrap()], dir.path()));
    assert!(
        shown.contains(&format!(
            "build-id {}",
            k.build_id.clone().unwrap_or_default()
        )),
        "{shown}"
    );
    assert!(shown.contains("    host     load "), "{shown}");
}

/// A result edited to another hostname, 64 CPUs, THP `always` and `mitigations=off` is
/// refused (exit 1, naming what differs and the flag); with --allow-different-machines it
/// is compared in a column of its own, the differences at the top.
#[test]
fn compare_refuses_an_edited_machine_and_allows_it_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(
        dir.path(),
        "a.json",
        &synthetic("6.18.0", &[100.0, 101.0, 99.0]),
    );
    let mut edited = synthetic("6.18.0", &[100.0, 102.0, 98.0]);
    edited.system.hostname = "elsewhere".into();
    edited.system.cpus = (0..64)
        .map(|cpu| thpbench::result::CpuInfo {
            cpu,
            ..Default::default()
        })
        .collect();
    edited.system.thp.enabled = "always".into();
    edited.system.kernel.cmdline.push_str(" mitigations=off");
    let b = save(dir.path(), "b.json", &edited);
    let o = run(&["compare", &a, &b], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    for what in [
        "hostname (machine): bench1",
        "elsewhere",
        "CPUs (machine): 4",
        "64",
        "THP enabled (condition): madvise",
        "always",
        "kernel command line (condition): (none)",
        "mitigations=off",
        "--allow-different-machines",
    ] {
        assert!(err.contains(what), "{what}: {err}");
    }
    let o = run(
        &["compare", &a, &b, "--allow-different-machines"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[2].starts_with("DIFFERENT MACHINES OR CONDITIONS"),
        "{out}"
    );
    assert!(
        lines[3].contains("hostname (machine): bench1 (") && lines[3].contains("elsewhere ("),
        "{out}"
    );
    let header = lines.iter().find(|l| l.starts_with("metric")).unwrap();
    assert!(header.contains("hostname=elsewhere"), "{header}");
    // JSON says the same for scripts.
    let o = run(
        &[
            "compare",
            &a,
            &b,
            "--allow-different-machines",
            "--format",
            "json",
        ],
        dir.path(),
    );
    let v = compare_json::of(&o);
    assert_eq!(v.groups.len(), 2);
    assert_eq!(v.system_differences[0].setting, "hostname");
    assert_eq!(v.system_differences[0].kind, "machine");
}

/// Same release, same `uname -v` (a reproducible build), different build-ids: two
/// columns, told apart by the build-id.
#[test]
fn compare_separates_two_builds_of_one_release() {
    let dir = tempfile::tempdir().unwrap();
    let mut before = synthetic("6.18.44", &[100.0, 101.0, 99.0]);
    let mut after = synthetic("6.18.44", &[80.0, 81.0, 79.0]);
    before.system.kernel.version = "#1 SMP PREEMPT_DYNAMIC @0".into();
    after.system.kernel.version = "#1 SMP PREEMPT_DYNAMIC @0".into();
    before.system.kernel.build_id = Some("101ab6e3d5f53bc0865c1d94a477176448a261a6".into());
    after.system.kernel.build_id = Some("2c1f0e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d".into());
    let a = save(dir.path(), "before.json", &before);
    let b = save(dir.path(), "after.json", &after);
    let o = run(&["compare", &a, &b], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().find(|l| l.starts_with("metric")).unwrap();
    assert!(
        header.contains("6.18.44 quick [build 101ab6e3d5f5]"),
        "{header}"
    );
    assert!(
        header.contains("6.18.44 quick [build 2c1f0e9d8a7b]"),
        "{header}"
    );
    let ops = out.lines().find(|l| l.starts_with("ops/s")).unwrap();
    assert!(ops.contains("worse"), "{ops}");
}

/// The committed older results, which record no build-id, machine or mm settings, still
/// compare, with a note saying what they lack.
#[test]
fn older_results_compare_and_say_what_they_lack() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let a = root.join("results/reference/seed-torture-1x5s-verify-2026-11-28-1.json");
    let b = root.join("results/reference/seed-torture-1x5s-verify-2026-11-28-3.json");
    let o = run(&["compare", a.to_str().unwrap(), b.to_str().unwrap()], root);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("lack thpbench commit, kernel build-id"),
        "{out}"
    );
    assert!(
        out.contains("grouped by kernel release and `uname -v`"),
        "{out}"
    );
    let shown = stdout(&run(&["show", a.to_str().unwrap()], root));
    assert!(
        shown.contains(
            "lacks (written before thpbench recorded them): thpbench commit, kernel build-id"
        ),
        "{shown}"
    );
}
