//! The summary's provenance lines: which thpbench, which kernel build, which machine and
//! which memory-management settings produced a result, what it could not record, and
//! (for older results) what it lacks. Debug kernels and busy machines are called out.

use std::fmt::Write;

use crate::result::{BenchResult, RunResult};

/// The config options that say how preemptible the kernel is, in the order shown.
const PREEMPT_MODELS: &[&str] = &[
    "PREEMPT_NONE",
    "PREEMPT_VOLUNTARY",
    "PREEMPT",
    "PREEMPT_LAZY",
    "PREEMPT_RT",
    "PREEMPT_DYNAMIC",
];

pub fn render(s: &mut String, r: &BenchResult) {
    let t = &r.tool;
    let commit = match (t.commit.as_str(), t.dirty) {
        ("", _) => "commit not recorded".to_string(),
        (c, Some(true)) => format!("commit {c} (dirty tree)"),
        (c, Some(false)) => format!("commit {c}"),
        (c, None) => format!("commit {c} (tree state unknown)"),
    };
    let _ = writeln!(s, "  tool     {} {}, {commit}", t.name, t.version);
    let k = &r.system.kernel;
    let mut kernel = format!("{} {}", k.release, k.version);
    if let Some(id) = &k.build_id {
        let _ = write!(kernel, ", build-id {id}");
    }
    if let Some(c) = &k.compiler {
        let _ = write!(kernel, ", built with {c}");
    }
    let _ = writeln!(s, "  kernel   {kernel}");
    if let Some(c) = &k.config {
        let preempt: Vec<&str> = PREEMPT_MODELS
            .iter()
            .copied()
            .filter(|o| c.options.get(*o).is_some_and(|v| v == "y"))
            .collect();
        let mut parts = vec![format!("sha256 {}", c.sha256)];
        if !preempt.is_empty() {
            parts.push(preempt.join("+"));
        }
        if let Some(hz) = c.options.get("HZ") {
            parts.push(format!("HZ={hz}"));
        }
        for o in ["NUMA", "ZSWAP", "ZRAM", "TRANSPARENT_HUGEPAGE"] {
            parts.push(format!("{o}={}", c.options.get(o).map_or("n", |v| v)));
        }
        let _ = writeln!(s, "  config   {} ({})", parts.join(" "), c.source);
        let debug = c.debug_options_on();
        if !debug.is_empty() {
            let _ = writeln!(
                s,
                "  WARNING: the kernel has debug options on ({}): its figures include their cost and are not a production kernel's",
                debug.join(", ")
            );
        }
    }
    let sys = &r.system;
    if let Some(m) = &sys.machine {
        let mut machine = format!(
            "{}: {} CPU{} {}",
            if sys.hostname.is_empty() {
                "(no hostname)"
            } else {
                &sys.hostname
            },
            sys.cpus.len(),
            if sys.cpus.len() == 1 { "" } else { "s" },
            if m.cpu_model.is_empty() {
                "(model unknown)"
            } else {
                &m.cpu_model
            }
        );
        if !m.microcode.is_empty() {
            let _ = write!(machine, " (microcode {})", m.microcode);
        }
        let _ = write!(
            machine,
            ", {:.1} GiB, hypervisor {}",
            m.mem_total_bytes as f64 / (1u64 << 30) as f64,
            m.hypervisor
        );
        if !m.container.is_empty() {
            let _ = write!(machine, ", container {}", m.container);
        }
        let _ = writeln!(s, "  machine  {machine}");
    }
    if let Some(mm) = &sys.mm {
        let zswap = match mm.zswap.get("enabled").map(String::as_str) {
            None => "zswap absent".to_string(),
            Some("Y") | Some("y") | Some("1") => format!(
                "zswap on ({})",
                mm.zswap.get("compressor").map_or("?", |c| c.as_str())
            ),
            Some(_) => "zswap off".to_string(),
        };
        let numa = match mm.numa_balancing.as_str() {
            "" => "numa_balancing absent".to_string(),
            "0" => "numa_balancing off".to_string(),
            v => format!("numa_balancing {v} (its hinting faults send GUP-fast to the slow path)"),
        };
        let khugepaged: Vec<String> = [
            "defrag",
            "pages_to_scan",
            "scan_sleep_millisecs",
            "max_ptes_none",
        ]
        .iter()
        .filter_map(|k| Some(format!("{k}={}", mm.khugepaged.get(*k)?)))
        .collect();
        let _ = writeln!(
            s,
            "  mm       {zswap}, {numa}, khugepaged {}",
            if khugepaged.is_empty() {
                "absent".to_string()
            } else {
                khugepaged.join(" ")
            }
        );
        let damon = mm.damon.running();
        if !damon.is_empty() {
            let _ = writeln!(
                s,
                "  NOTE: DAMON runs beside the benchmark (its schemes act on the same memory): {}",
                damon.join("; ")
            );
        }
    }
    for n in &sys.not_recorded {
        let _ = writeln!(s, "  not recorded: {n}");
    }
    let missing = r.missing_provenance();
    if !missing.is_empty() {
        let _ = writeln!(
            s,
            "  lacks (written before thpbench recorded them): {}",
            missing.join(", ")
        );
    }
}

/// The run's host line: load, steal and other tasks on the workers' CPUs, with a NOTE
/// when the machine was busy (not a reason to call the run invalid).
pub fn render_host_activity(s: &mut String, run: &RunResult) {
    let Some(a) = &run.host_activity else {
        return;
    };
    let _ = writeln!(
        s,
        "    host     load {:.2} -> {:.2}; on the workers' CPUs other tasks {:.1}%, steal {:.1}% (all CPUs {:.1}%) over {:.2}s",
        a.loadavg_1m_before,
        a.loadavg_1m_after,
        a.other_busy_share * 100.0,
        a.steal_share * 100.0,
        a.system_steal_share * 100.0,
        a.window_ns as f64 / 1e9
    );
    if let Some(flag) = a.flag() {
        let _ = writeln!(
            s,
            "    NOTE: a busy machine: {flag}; the figures may be theirs as much as the kernel's"
        );
    }
}
