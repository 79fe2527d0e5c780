//! tracefs and the lock tracepoints, and the debugfs files thpbench writes or reads
//! (split_huge_pages, gup_test).

use std::path::Path;

use super::{capability, capability_row, capability_row_with_remedy, ProbeRow};
use crate::system::{errno_text, is_root, mounts, write_knob};

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
    if !is_root() {
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
    if !is_root() {
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
    match write_knob(&path, &format!("{},0x0,0x1000", std::process::id())) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(format!(
            "EPERM: kernel lockdown is `{}`, which forbids debugfs writes",
            mounts::lockdown_mode()
        )),
        Err(e) => Err(errno_text(&e)),
    }
}

/// Opens the kernel's GUP benchmark (debugfs gup_test, CONFIG_GUP_TEST), mounting
/// debugfs for as long as the guard lives; Err says why it cannot be had.
pub fn open_gup_test() -> Result<(std::fs::File, mounts::MountGuard), String> {
    if !crate::system::is_root() {
        return Err("debugfs needs root".into());
    }
    let guard =
        mounts::MountGuard::ensure("debugfs", mounts::DEBUGFS).map_err(|e| format!("{e:#}"))?;
    let path = format!("{}/gup_test", guard.path());
    if !std::path::Path::new(&path).exists() {
        return Err(format!(
            "{path} does not exist: this kernel is built without CONFIG_GUP_TEST"
        ));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| {
            let lockdown = crate::system::mounts::lockdown_mode();
            let why = if e.raw_os_error() == Some(libc::EPERM) && lockdown != "none" {
                format!(" (kernel lockdown={lockdown} forbids debugfs files with ioctls)")
            } else {
                String::new()
            };
            format!("opening {path}: {}{why}", crate::system::errno_text(&e))
        })?;
    Ok((file, guard))
}

pub fn rows() -> Vec<ProbeRow> {
    let root = is_root();
    let tfs = tracefs_mounted();
    let gup_test = open_gup_test().err();
    vec![
        capability_row(
            capability::TRACEFS,
            tfs.is_some() || root,
            tfs.map_or("not mounted".to_string(), |p| format!("mounted at {p}")),
            if tfs.is_some() {
                ""
            } else if root {
                "not mounted; thpbench mounts it for the run and unmounts it after"
            } else {
                "not mounted and not root"
            },
        ),
        capability_row_with_remedy(
            capability::LOCK_CONTENTION,
            contention_tracepoints(),
            "tracepoints",
        ),
        capability_row_with_remedy(
            capability::SPLIT_HUGE_PAGES,
            split_huge_pages_writable(),
            "/sys/kernel/debug/split_huge_pages",
        ),
        capability_row_with_remedy(
            capability::GUP_TEST,
            gup_test.map_or(Ok(()), Err),
            "/sys/kernel/debug/gup_test (in-kernel GUP_FAST/PIN_FAST benchmark for the gup engine)",
        ),
    ]
}
