//! Where a result came from, beyond the kernel release: the kernel build (build-id, config,
//! compiler), the machine (CPU, microcode, hypervisor, memory), the memory-management
//! settings that change these paths' costs (zswap, NUMA balancing, khugepaged, DAMON), and
//! per run how busy the machine was besides thpbench. Every field is optional so that
//! results written before thpbench recorded it still load; `missing` names what they lack.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The kernel's configuration: where it was read, a digest of the whole text, and the
/// options that change the cost of these paths.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct KernelConfig {
    /// `/proc/config.gz` or `/boot/config-<release>`.
    pub source: String,
    /// SHA-256 of the configuration text (decompressed), hex.
    pub sha256: String,
    /// `NAME` (without CONFIG_) -> `y`, `m`, `n` (not set) or the value. The debug
    /// options are always listed (`n` when absent); THP, PREEMPT, NUMA, ZRAM, ZSWAP, HZ and
    /// DAMON options where the config names them.
    pub options: BTreeMap<String, String>,
}

/// Debug options that make the memory-management and locking paths slower than a
/// production kernel's; a result from a kernel with one on says so.
pub const DEBUG_OPTIONS: &[&str] = &[
    "LOCKDEP",
    "PROVE_LOCKING",
    "LOCK_STAT",
    "DEBUG_LOCK_ALLOC",
    "DEBUG_SPINLOCK",
    "DEBUG_MUTEXES",
    "DEBUG_RWSEMS",
    "DEBUG_ATOMIC_SLEEP",
    "PROVE_RCU",
    "KASAN",
    "KCSAN",
    "KMSAN",
    "UBSAN",
    "KCOV",
    "GCOV_KERNEL",
    "DEBUG_VM",
    "DEBUG_VM_PGFLAGS",
    "DEBUG_VM_RB",
    "DEBUG_VM_MAPLE_TREE",
    "PAGE_OWNER",
    "DEBUG_PAGEALLOC",
    "DEBUG_PAGEALLOC_ENABLE_DEFAULT",
    "PAGE_POISONING",
    "PAGE_TABLE_CHECK",
    "SLUB_DEBUG_ON",
    "DEBUG_OBJECTS",
    "DEBUG_KMEMLEAK",
];

/// Option name prefixes recorded where the config names them (they change these paths'
/// costs or behaviour, but are not debug options).
pub const COST_OPTION_PREFIXES: &[&str] = &[
    "TRANSPARENT_HUGEPAGE",
    "PREEMPT",
    "NUMA",
    "ZRAM",
    "ZSWAP",
    "HZ",
    "NO_HZ",
    "DAMON",
    "MITIGATION_",
];

impl KernelConfig {
    /// The debug options that are on (`y`), in [`DEBUG_OPTIONS`] order.
    pub fn debug_options_on(&self) -> Vec<&'static str> {
        DEBUG_OPTIONS
            .iter()
            .copied()
            .filter(|o| self.options.get(*o).is_some_and(|v| v == "y"))
            .collect()
    }
}

/// The machine: what tells two machines apart (with the hostname and CPU list kept in
/// `system`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MachineInfo {
    /// /proc/cpuinfo `model name` (or `cpu model`, `Processor`), of the first CPU.
    pub cpu_model: String,
    /// /proc/cpuinfo `microcode` of the first CPU, where the architecture has it.
    pub microcode: String,
    /// `none`, or the hypervisor: its CPUID vendor (`kvm`, `xen`, `microsoft`, `vmware`,
    /// ...), /sys/hypervisor/type, or `unknown vendor` with only the cpuinfo flag.
    pub hypervisor: String,
    /// A container this ran in (`docker`, `podman`, ...), or empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// /proc/meminfo MemTotal, bytes.
    pub mem_total_bytes: u64,
}

/// Memory-management settings that change what the measured paths cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MmSettings {
    /// /sys/module/zswap/parameters: name -> value (empty without zswap).
    pub zswap: BTreeMap<String, String>,
    /// /proc/sys/kernel/numa_balancing (`0` off; its hinting faults send GUP-fast to the
    /// slow path), or empty without it.
    pub numa_balancing: String,
    /// /sys/kernel/mm/transparent_hugepage/khugepaged settings (its counters left out).
    pub khugepaged: BTreeMap<String, String>,
    /// DAMON: the running kdamonds and their schemes, and the DAMON modules' switches.
    pub damon: DamonInfo,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DamonInfo {
    /// Every kdamond of /sys/kernel/mm/damon/admin.
    pub kdamonds: Vec<Kdamond>,
    /// damon_reclaim, damon_lru_sort, damon_stat: module -> `enabled` value.
    pub modules: BTreeMap<String, String>,
    /// Why DAMON could not be read (not root, no DAMON_SYSFS), when it could not.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub unreadable: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Kdamond {
    pub index: u32,
    /// `on` or `off`.
    pub state: String,
    pub pid: Option<u32>,
    /// Per context: its operations (`paddr`, `vaddr`, `fvaddr`) and schemes, each as
    /// `action age=MIN..MAX nr_accesses=MIN..MAX sz=MIN..MAX quota=MSms/BYTES`.
    pub contexts: Vec<DamonContext>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DamonContext {
    pub operations: String,
    pub schemes: Vec<String>,
}

impl DamonInfo {
    /// One line per running kdamond, e.g. `kdamond.0: paddr pageout age=12..max ...`;
    /// modules that are on, as `damon_reclaim on`. Empty when nothing runs.
    pub fn running(&self) -> Vec<String> {
        let mut out = Vec::new();
        for k in self.kdamonds.iter().filter(|k| k.state == "on") {
            let contexts: Vec<String> = k
                .contexts
                .iter()
                .map(|c| {
                    if c.schemes.is_empty() {
                        format!("{} (no schemes)", c.operations)
                    } else {
                        format!("{} {}", c.operations, c.schemes.join(", "))
                    }
                })
                .collect();
            out.push(format!("kdamond.{}: {}", k.index, contexts.join("; ")));
        }
        for (m, v) in &self.modules {
            if v == "Y" || v == "y" || v == "1" {
                out.push(format!("{m} on"));
            }
        }
        out
    }
}

/// How busy the machine was besides thpbench during one measured run: the load average,
/// and over the workers' CPUs (from /proc/stat per-CPU deltas) the share stolen by the
/// hypervisor and the share other tasks ran (busy time less thpbench's own threads').
/// Flagged in the summary above [`HostActivity::BUSY_FLAG`], never invalid.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HostActivity {
    /// /proc/loadavg's 1-minute figure before and after the run.
    pub loadavg_1m_before: f64,
    pub loadavg_1m_after: f64,
    /// The span the CPU figures cover (the measured window while every worker ran), ns.
    pub window_ns: u64,
    /// The CPUs the shares are over.
    pub cpus: Vec<usize>,
    /// Ticks (USER_HZ) those CPUs accounted over the window, all states.
    pub ticks: u64,
    /// steal / all ticks on those CPUs.
    pub steal_share: f64,
    /// (busy ticks - thpbench's own threads' ticks) / all ticks on those CPUs, at least 0.
    pub other_busy_share: f64,
    /// steal / all ticks over every CPU.
    pub system_steal_share: f64,
}

impl HostActivity {
    /// A share of the workers' CPUs taken by others (or stolen) worth a note.
    pub const BUSY_FLAG: f64 = 0.05;
    pub const STEAL_FLAG: f64 = 0.02;

    /// What to tell the reader about this run, if anything.
    pub fn flag(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.other_busy_share >= Self::BUSY_FLAG {
            parts.push(format!(
                "other tasks ran {:.1}% of the workers' CPU time",
                self.other_busy_share * 100.0
            ));
        }
        if self.steal_share >= Self::STEAL_FLAG {
            parts.push(format!(
                "the hypervisor stole {:.1}% of it",
                self.steal_share * 100.0
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}
