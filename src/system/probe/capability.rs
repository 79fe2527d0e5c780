//! The one list of what a machine may lack, each with its remedy. `thpbench probe` shows
//! them as rows; a run that finds one missing records it unavailable with the same
//! remedy, so that the two never say different things.

use crate::result::Unavailable;

/// Something thpbench can do only where the machine allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// The probe row that shows it.
    pub what: &'static str,
    /// What to do where it is missing.
    pub remedy: &'static str,
}

impl Capability {
    /// The result's record of it missing during a run: `what` says which measurement
    /// went without it, `reason` what the kernel answered.
    pub fn unavailable(&self, what: impl Into<String>, reason: impl Into<String>) -> Unavailable {
        Unavailable::new(what, reason, self.remedy)
    }
}

pub const PERF_SOFTWARE: Capability = Capability {
    what: "perf software events",
    remedy: "lower /proc/sys/kernel/perf_event_paranoid or run as root",
};

pub const PERF_HARDWARE: Capability = Capability {
    what: "perf hardware PMU",
    remedy: "run on bare metal or a VM with a virtual PMU for hardware counters",
};

/// Not a probe row of its own: the paranoid level is shown as a value.
pub const PERF_KERNEL_MODE: Capability = Capability {
    what: "kernel-mode perf counts",
    remedy: "run as root or set /proc/sys/kernel/perf_event_paranoid to 1",
};

pub const LOCK_CONTENTION: Capability = Capability {
    what: "lock:contention_begin/end",
    remedy: "needs Linux 5.19+ and root (or perf_event_paranoid <= -1)",
};

pub const SPLIT_HUGE_PAGES: Capability = Capability {
    what: "debugfs split_huge_pages",
    remedy: "split with madvise instead (split methods cold, pageout, dontneed, mprotect)",
};

pub const GUP_TEST: Capability = Capability {
    what: "debugfs gup_test",
    remedy:
        "CONFIG_GUP_TEST=y and no lockdown; the gup engine's user-space figures work without it",
};

pub const MADVISE: Capability = Capability {
    what: "MADV_COLLAPSE, MADV_PAGEOUT, MADV_COLD",
    remedy: "needs Linux 5.4+ (COLD, PAGEOUT) or 6.1+ (COLLAPSE)",
};

pub const O_DIRECT: Capability = Capability {
    what: "O_DIRECT",
    remedy: "use a target on a filesystem that supports O_DIRECT (ext4, xfs, btrfs) or a zram:SIZE target",
};

pub const LOCKDOWN: Capability = Capability {
    what: "kernel lockdown",
    remedy: "boot with lockdown=none where policy allows; thpbench falls back to madvise splits",
};

pub const THP: Capability = Capability {
    what: "THP enabled",
    remedy: "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled",
};

pub const MTHP: Capability = Capability {
    what: "mTHP sizes",
    remedy: "use buffer = thp or 4k",
};

pub const ZRAM: Capability = Capability {
    what: "zram",
    remedy: "modprobe zram",
};

pub const ROOT: Capability = Capability {
    what: "privileges",
    remedy: "run as root (sudo) for the full set",
};

pub const TRACEFS: Capability = Capability {
    what: "tracefs",
    remedy: "mount -t tracefs tracefs /sys/kernel/tracing, or run as root",
};

/// Every capability, in probe order.
pub const ALL: [Capability; 14] = [
    LOCKDOWN,
    THP,
    MTHP,
    ZRAM,
    ROOT,
    PERF_SOFTWARE,
    PERF_HARDWARE,
    PERF_KERNEL_MODE,
    TRACEFS,
    LOCK_CONTENTION,
    SPLIT_HUGE_PAGES,
    GUP_TEST,
    MADVISE,
    O_DIRECT,
];

/// True for the perf counters that need a hardware PMU.
pub fn is_hardware_counter(name: &str) -> bool {
    matches!(
        name,
        "cycles" | "instructions" | "cache-references" | "cache-misses"
    )
}

/// The capability a perf counter needs: a hardware PMU for cycles and the like, the
/// paranoid level for software events.
pub fn perf(counter: &str) -> Capability {
    if is_hardware_counter(counter) {
        PERF_HARDWARE
    } else {
        PERF_SOFTWARE
    }
}

/// Kernel-mode counting (root, or perf_event_paranoid <= 1).
pub fn perf_kernel_mode() -> Capability {
    PERF_KERNEL_MODE
}

/// The lock:contention_begin/end tracepoints, read system-wide.
pub fn lock_contention() -> Capability {
    LOCK_CONTENTION
}

/// The in-kernel GUP benchmark (debugfs gup_test).
pub fn gup_test() -> Capability {
    GUP_TEST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_capability_has_a_name_and_a_remedy_of_its_own() {
        let mut names: Vec<_> = ALL.iter().map(|c| c.what).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "{names:?}");
        assert!(ALL.iter().all(|c| !c.remedy.is_empty()));
    }

    #[test]
    fn hardware_counters_take_the_pmu_remedy() {
        assert_eq!(perf("cycles"), PERF_HARDWARE);
        assert_eq!(perf("page-faults"), PERF_SOFTWARE);
    }
}
