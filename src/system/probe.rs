//! `thpbench probe`: what this machine lets thpbench do, each finding with the reason
//! and the remedy. The same checks decide, during a run, what is recorded unavailable.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;

use super::{mounts, read_trimmed, swap, thp, zram};

#[derive(Debug, Clone, Serialize)]
pub struct ProbeRow {
    pub what: String,
    pub available: bool,
    /// What was found (a setting, a version, a list).
    pub value: String,
    pub reason: String,
    pub remedy: String,
}

fn row(
    what: &str,
    available: bool,
    value: impl Into<String>,
    reason: impl Into<String>,
    remedy: impl Into<String>,
) -> ProbeRow {
    ProbeRow {
        what: what.into(),
        available,
        value: value.into(),
        reason: reason.into(),
        remedy: remedy.into(),
    }
}

fn info(what: &str, value: impl Into<String>) -> ProbeRow {
    row(what, true, value, "", "")
}

pub fn kernel_info() -> crate::result::KernelInfo {
    let uts = nix::sys::utsname::uname().ok();
    crate::result::KernelInfo {
        release: uts
            .as_ref()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        version: uts
            .as_ref()
            .map(|u| u.version().to_string_lossy().into_owned())
            .unwrap_or_default(),
        cmdline: read_trimmed("/proc/cmdline").unwrap_or_default(),
    }
}

pub fn system_info() -> crate::result::SystemInfo {
    crate::result::SystemInfo {
        kernel: kernel_info(),
        lockdown: mounts::lockdown_mode(),
        thp: thp::info(),
        cpus: super::cpu::topology(),
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// Tries one madvise advice on a fresh 2 MiB-aligned THP mapping. Ok(()) when the kernel
/// knows the advice (EINVAL means it does not).
pub fn try_madvise(advice: libc::c_int) -> Result<(), String> {
    let len = 4usize << 20;
    // SAFETY: a fresh private anonymous mapping, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap failed: {}", std::io::Error::last_os_error()));
    }
    let aligned = ((p as usize + (2 << 20) - 1) & !((2 << 20) - 1)) as *mut libc::c_void;
    // SAFETY: aligned..aligned+2MiB lies inside the mapping.
    let r = unsafe {
        libc::madvise(aligned, 2 << 20, libc::MADV_HUGEPAGE);
        std::ptr::write_bytes(aligned as *mut u8, 1, 2 << 20);
        let r = libc::madvise(aligned, 2 << 20, advice);
        let e = std::io::Error::last_os_error();
        libc::munmap(p, len);
        if r == 0 {
            Ok(())
        } else {
            Err(e)
        }
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Err("EINVAL: this kernel does not know the advice".into())
        }
        // EAGAIN/ENOMEM from MADV_COLLAPSE still prove the advice exists.
        Err(e)
            if advice == MADV_COLLAPSE
                && matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOMEM)) =>
        {
            Ok(())
        }
        Err(e) => Err(super::errno_text(&e)),
    }
}

pub const MADV_COLLAPSE: libc::c_int = 25;

/// Checks O_DIRECT on the filesystem holding `dir`: create a scratch file, one aligned
/// write and read. Err names the filesystem type.
pub fn check_o_direct(dir: &Path) -> Result<String, String> {
    let fs = filesystem_type(dir).unwrap_or_else(|| "unknown".into());
    let path = dir.join(format!(".thpbench-probe-{}", std::process::id()));
    let made = swap::RemoveFile::create(&path, |p| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(p)
    });
    let (_cleanup, f) = match made {
        Ok(made) => made,
        Err(e) => {
            return Err(format!(
                "open with O_DIRECT on {fs} failed: {}",
                super::errno_text(&e)
            ))
        }
    };
    let mut buf = crate::buffer::AlignedBuf::new(4096);
    buf.as_mut_slice().fill(0x5a);
    use std::os::unix::fs::FileExt;
    if let Err(e) = f.write_at(buf.as_slice(), 0) {
        return Err(format!(
            "aligned O_DIRECT write on {fs} failed: {}",
            super::errno_text(&e)
        ));
    }
    match f.read_at(buf.as_mut_slice(), 0) {
        Ok(4096) => Ok(fs),
        Ok(n) => Err(format!(
            "aligned O_DIRECT read on {fs} returned {n} bytes, not 4096"
        )),
        Err(e) => Err(format!(
            "aligned O_DIRECT read on {fs} failed: {}",
            super::errno_text(&e)
        )),
    }
}

/// Filesystem type of the mount holding `path` (longest mount-point prefix).
pub fn filesystem_type(path: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(path).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(1)?.to_string(), f.get(2)?.to_string()))
        })
        .filter(|(mp, _)| abs.starts_with(mp))
        .max_by_key(|(mp, _)| mp.len())
        .map(|(_, t)| t)
}

pub fn perf_event_paranoid() -> Option<i32> {
    read_trimmed("/proc/sys/kernel/perf_event_paranoid")
        .ok()?
        .parse()
        .ok()
}

pub fn software_events() -> Result<(), String> {
    perf_event::Builder::new(perf_event::events::Software::TASK_CLOCK)
        .build()
        .map(|_| ())
        .map_err(|e| super::errno_text(&e))
}

pub fn hardware_pmu() -> Result<(), String> {
    perf_event::Builder::new(perf_event::events::Hardware::CPU_CYCLES)
        .build()
        .map(|_| ())
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => {
                "no hardware PMU: perf_event_open(cycles) answers ENOENT/EOPNOTSUPP (usual in VMs)"
                    .into()
            }
            _ => super::errno_text(&e),
        })
}

/// Where tracefs is, mounting nothing: Some(path) when mounted.
pub fn tracefs_mounted() -> Option<&'static str> {
    [mounts::TRACEFS, "/sys/kernel/debug/tracing"]
        .into_iter()
        .find(|p| Path::new(&format!("{p}/events")).exists())
}

/// Whether the lock contention tracepoints exist (mounting tracefs for the look if root).
pub fn contention_tracepoints() -> Result<(), String> {
    let check = |base: &str| {
        ["contention_begin", "contention_end"]
            .iter()
            .all(|t| Path::new(&format!("{base}/events/lock/{t}/id")).exists())
    };
    if let Some(base) = tracefs_mounted() {
        return if check(base) {
            Ok(())
        } else {
            Err(format!("{base}/events/lock/contention_begin is missing: the kernel predates 5.19 or lacks the lock tracepoints"))
        };
    }
    if !super::is_root() {
        return Err("tracefs is not mounted and mounting it needs root".into());
    }
    let guard =
        mounts::MountGuard::ensure("tracefs", mounts::TRACEFS).map_err(|e| format!("{e:#}"))?;
    if check(guard.path()) {
        Ok(())
    } else {
        Err("lock:contention_begin/end are missing (kernel before 5.19?)".into())
    }
}

/// Whether /sys/kernel/debug/split_huge_pages takes writes: an empty range of our own
/// pid is written, which splits nothing.
pub fn split_huge_pages_writable() -> Result<(), String> {
    if !super::is_root() {
        return Err("needs root".into());
    }
    let _guard =
        mounts::MountGuard::ensure("debugfs", mounts::DEBUGFS).map_err(|e| format!("{e:#}"))?;
    let path = format!("{}/split_huge_pages", mounts::DEBUGFS);
    if !Path::new(&path).exists() {
        return Err(format!(
            "{path} does not exist (kernel without CONFIG_DEBUG_FS or THP)"
        ));
    }
    match super::write_knob(&path, &format!("{},0x0,0x1000", std::process::id())) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(format!(
            "EPERM: kernel lockdown is `{}`, which forbids debugfs writes",
            mounts::lockdown_mode()
        )),
        Err(e) => Err(super::errno_text(&e)),
    }
}

pub fn probe(target_dir: &Path) -> Vec<ProbeRow> {
    let mut rows = Vec::new();
    let k = kernel_info();
    rows.push(info("kernel release", &k.release));
    rows.push(info("kernel version", &k.version));
    rows.push(info("kernel cmdline", &k.cmdline));
    let lockdown = mounts::lockdown_mode();
    rows.push(row(
        "kernel lockdown",
        lockdown == "none",
        &lockdown,
        match lockdown.as_str() {
            "none" => "",
            "unknown" => "securityfs could not be read (not root?)",
            _ => "lockdown forbids debugfs writes (split_huge_pages) and raw kernel memory access",
        },
        if lockdown == "none" {
            ""
        } else {
            "boot with lockdown=none where policy allows; thpbench falls back to madvise splits"
        },
    ));

    let t = thp::info();
    let thp_ok = thp::pmd_thp_usable();
    rows.push(row(
        "THP enabled",
        thp_ok.is_ok(),
        &t.enabled,
        thp_ok.clone().err().unwrap_or_default(),
        if thp_ok.is_ok() {
            ""
        } else {
            "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"
        },
    ));
    rows.push(info("THP defrag", &t.defrag));
    rows.push(info("THP shmem_enabled", &t.shmem_enabled));
    rows.push(info(
        "THP PMD size",
        crate::units::format_size(t.pmd_size_bytes),
    ));
    let kh = thp::khugepaged();
    rows.push(info(
        "khugepaged",
        kh.iter()
            .filter(|(k, _)| {
                [
                    "defrag",
                    "max_ptes_none",
                    "pages_to_scan",
                    "scan_sleep_millisecs",
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
    ));
    rows.push(row(
        "mTHP sizes",
        !t.mthp.is_empty(),
        t.mthp
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(" "),
        if t.mthp.is_empty() {
            "no hugepages-<size>kB directories (kernel before 6.8)"
        } else {
            ""
        },
        if t.mthp.is_empty() {
            "use buffer = thp or 4k"
        } else {
            ""
        },
    ));

    let swaps = swap::active_swaps();
    rows.push(info(
        "swap devices",
        if swaps.is_empty() {
            "none active (thpbench can make zram or file swap as root)".to_string()
        } else {
            swaps
                .iter()
                .map(|s| format!("{} ({} kB, prio {})", s.name, s.size_kb, s.priority))
                .collect::<Vec<_>>()
                .join(", ")
        },
    ));
    let zram_ok = Path::new(zram::ZRAM_CONTROL).exists();
    rows.push(row(
        "zram",
        zram_ok,
        format!(
            "devices {:?}, free {:?}",
            zram::existing_devices(),
            zram::free_devices()
        ),
        if zram_ok {
            ""
        } else {
            "/sys/class/zram-control is missing"
        },
        if zram_ok { "" } else { "modprobe zram" },
    ));
    let root = super::is_root();
    rows.push(row(
        "privileges",
        root,
        format!("euid {}, CAP_SYS_ADMIN {}", nix::unistd::geteuid(), if super::has_cap_sys_admin() { "yes" } else { "no" }),
        if root { "" } else { "not root: zram targets and swap, mTHP knobs, kpageflags, tracefs and system-wide tracing are unavailable; file targets with THP buffers still run" },
        if root { "" } else { "run as root (sudo) for the full set" },
    ));
    let paranoid = perf_event_paranoid();
    rows.push(info(
        "perf_event_paranoid",
        paranoid.map_or("unreadable".into(), |p| p.to_string()),
    ));
    let sw = software_events();
    rows.push(row(
        "perf software events",
        sw.is_ok(),
        "task-clock, context-switches, page-faults",
        sw.err().unwrap_or_default(),
        "lower /proc/sys/kernel/perf_event_paranoid or run as root",
    ));
    let hw = hardware_pmu();
    rows.push(row(
        "perf hardware PMU",
        hw.is_ok(),
        "cycles, instructions, cache misses",
        hw.err().unwrap_or_default(),
        "run on bare metal or a VM with a virtual PMU for hardware counters",
    ));
    let tfs = tracefs_mounted();
    rows.push(row(
        "tracefs",
        tfs.is_some() || root,
        tfs.map_or("not mounted".to_string(), |p| format!("mounted at {p}")),
        if tfs.is_some() {
            ""
        } else if root {
            "not mounted; thpbench mounts it for the run and unmounts it after"
        } else {
            "not mounted and not root"
        },
        if tfs.is_some() || root {
            ""
        } else {
            "mount -t tracefs tracefs /sys/kernel/tracing, or run as root"
        },
    ));
    let lc = contention_tracepoints();
    rows.push(row(
        "lock:contention_begin/end",
        lc.is_ok(),
        "tracepoints",
        lc.err().unwrap_or_default(),
        "needs Linux 5.19+ and root (or perf_event_paranoid <= -1)",
    ));
    let sp = split_huge_pages_writable();
    rows.push(row(
        "debugfs split_huge_pages",
        sp.is_ok(),
        "/sys/kernel/debug/split_huge_pages",
        sp.err().unwrap_or_default(),
        "split with madvise instead (split methods cold, pageout, dontneed, mprotect)",
    ));
    let gt = crate::measure::gup_test::unavailable();
    rows.push(row(
        "debugfs gup_test",
        gt.is_none(),
        "/sys/kernel/debug/gup_test (in-kernel GUP_FAST/PIN_FAST benchmark for the gup engine)",
        gt.as_ref().map(|u| u.reason.clone()).unwrap_or_default(),
        "CONFIG_GUP_TEST=y and no lockdown; the gup engine's user-space figures work without it",
    ));
    for (name, advice) in [
        ("MADV_COLLAPSE", MADV_COLLAPSE),
        ("MADV_PAGEOUT", libc::MADV_PAGEOUT),
        ("MADV_COLD", libc::MADV_COLD),
    ] {
        let r = try_madvise(advice);
        rows.push(row(
            name,
            r.is_ok(),
            "madvise on a scratch THP mapping",
            r.err().unwrap_or_default(),
            "needs Linux 5.4+ (COLD, PAGEOUT) or 6.1+ (COLLAPSE)",
        ));
    }
    let od = check_o_direct(target_dir);
    rows.push(row(
        "O_DIRECT",
        od.is_ok(),
        format!("{} ({})", target_dir.display(), od.as_ref().map_or_else(|_| filesystem_type(target_dir).unwrap_or_default(), |fs| fs.clone())),
        od.clone().err().unwrap_or_default(),
        if od.is_ok() { "" } else { "use a target on a filesystem that supports O_DIRECT (ext4, xfs, btrfs) or a zram:SIZE target" },
    ));
    let topo = super::cpu::topology();
    rows.push(info(
        "CPUs",
        format!(
            "online {}; {}",
            crate::units::format_cpu_list(&topo.iter().map(|c| c.cpu).collect::<Vec<_>>()),
            topo.iter()
                .map(|c| format!(
                    "cpu{}: core {} pkg {} node {}{}",
                    c.cpu,
                    c.core_id.map_or("?".into(), |v| v.to_string()),
                    c.package_id.map_or("?".into(), |v| v.to_string()),
                    c.numa_node.map_or("?".into(), |v| v.to_string()),
                    if c.smt_siblings.is_empty() {
                        String::new()
                    } else {
                        format!(" smt {}", crate::units::format_cpu_list(&c.smt_siblings))
                    }
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    ));
    rows.push(super::journal::probe_row());
    rows
}

pub fn print_table(rows: &[ProbeRow]) {
    let w = rows.iter().map(|r| r.what.len()).max().unwrap_or(10);
    for r in rows {
        println!(
            "{:w$}  {:3}  {}",
            r.what,
            if r.available { "yes" } else { "no" },
            r.value
        );
        if !r.reason.is_empty() {
            println!("{:w$}       why: {}", "", r.reason);
        }
        if !r.available && !r.remedy.is_empty() {
            println!("{:w$}       fix: {}", "", r.remedy);
        }
    }
}
