//! Privileges and perf counters.

use super::{capability, capability_row, capability_row_with_remedy, info, ProbeRow};
use crate::system::{errno_text, read_trimmed};

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
        .map_err(|e| errno_text(&e))
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
            _ => errno_text(&e),
        })
}

pub fn rows() -> Vec<ProbeRow> {
    let root = crate::system::is_root();
    vec![
        capability_row(
            capability::ROOT,
            root,
            format!(
                "euid {}, CAP_SYS_ADMIN {}",
                nix::unistd::geteuid(),
                if crate::system::has_cap_sys_admin() {
                    "yes"
                } else {
                    "no"
                }
            ),
            if root {
                ""
            } else {
                "not root: zram targets and swap, mTHP knobs, kpageflags, tracefs and system-wide tracing are unavailable; file targets with THP buffers still run"
            },
        ),
        info(
            "perf_event_paranoid",
            perf_event_paranoid().map_or("unreadable".into(), |p| p.to_string()),
        ),
        capability_row_with_remedy(
            capability::PERF_SOFTWARE,
            software_events(),
            "task-clock, context-switches, page-faults",
        ),
        capability_row_with_remedy(
            capability::PERF_HARDWARE,
            hardware_pmu(),
            "cycles, instructions, cache misses",
        ),
    ]
}
