//! What a result was measured on besides the kernel and the workload: the machine
//! (architecture, hostname, CPU model and count, memory, hypervisor) and the conditions
//! (base page and PMD size, THP settings, the kernel command line, zswap, NUMA
//! balancing, khugepaged, DAMON). The page sizes are the kernel's build, but they change
//! what every per-page figure counts (a 16 KiB base page, a 32 MiB PMD): results of two
//! page sizes are kept apart like two set-ups of one machine. Results that
//! differ in either are never pooled, and compare refuses them unless told otherwise;
//! other differences (microcode, lockdown, thpbench's commit) are printed.

use serde::Serialize;

use crate::result::BenchResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingKind {
    /// Another machine.
    Machine,
    /// The same machine set up differently.
    Condition,
    /// Worth knowing, not a reason to refuse.
    Note,
}

/// One setting of one result; `value` None where the result does not record it (an
/// older result), which then matches any value.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    pub kind: SettingKind,
    pub value: Option<String>,
}

/// Command-line parameters that name the boot's files and console, not what the kernel
/// does: left out, since they differ between any two kernels.
const CMDLINE_IGNORED: &[&str] = &[
    "BOOT_IMAGE",
    "initrd",
    "root",
    "rootflags",
    "rootfstype",
    "rootwait",
    "ro",
    "rw",
    "quiet",
    "splash",
    "loglevel",
    "console",
    "earlycon",
    "earlyprintk",
    "vt.handoff",
    "resume",
    "resume_offset",
    "crashkernel",
];
const CMDLINE_IGNORED_PREFIXES: &[&str] = &["rd.", "systemd.", "LANG"];

/// The command line's parameters that can change how the kernel runs, sorted: without
/// the boot files and console, and without what follows `--` (init's arguments).
pub fn relevant_cmdline(cmdline: &str) -> String {
    let mut params: Vec<&str> = cmdline
        .split_whitespace()
        .take_while(|p| *p != "--")
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            !CMDLINE_IGNORED.contains(&key)
                && !CMDLINE_IGNORED_PREFIXES.iter().any(|x| key.starts_with(x))
        })
        .collect();
    params.sort_unstable();
    params.join(" ")
}

const KHUGEPAGED_SETTINGS: &[&str] = &[
    "defrag",
    "max_ptes_none",
    "max_ptes_swap",
    "max_ptes_shared",
    "pages_to_scan",
    "scan_sleep_millisecs",
    "alloc_sleep_millisecs",
];
const ZSWAP_SETTINGS: &[&str] = &["enabled", "compressor", "zpool", "max_pool_percent"];

/// Memory sizes within this share of each other are one size: MemTotal moves by a few
/// MiB between kernels (what each reserves).
const MEMORY_TOLERANCE: f64 = 0.03;

pub fn settings_of(r: &BenchResult) -> Vec<Setting> {
    let s = &r.system;
    let mut out = Vec::new();
    let mut push = |name: &str, kind, value: Option<String>| {
        out.push(Setting {
            name: name.to_string(),
            kind,
            value,
        })
    };
    let nonempty = |v: &str| (!v.is_empty()).then(|| v.to_string());
    use SettingKind::*;
    // An arm64 guest under qemu has the same hostname ("(none)") as an x86_64 one.
    push("architecture", Machine, nonempty(&s.kernel.machine));
    push("hostname", Machine, nonempty(&s.hostname));
    push(
        "CPUs",
        Machine,
        (!s.cpus.is_empty()).then(|| s.cpus.len().to_string()),
    );
    let m = s.machine.as_ref();
    push("CPU model", Machine, m.and_then(|m| nonempty(&m.cpu_model)));
    push(
        "memory",
        Machine,
        m.filter(|m| m.mem_total_bytes > 0)
            .map(|m| m.mem_total_bytes.to_string()),
    );
    push(
        "hypervisor",
        Machine,
        m.and_then(|m| nonempty(&m.hypervisor)),
    );
    push(
        "base page",
        Condition,
        (s.base_page_bytes > 0).then(|| s.base_page_bytes.to_string()),
    );
    push(
        "PMD size",
        Condition,
        (s.thp.pmd_size_bytes > 0).then(|| s.thp.pmd_size_bytes.to_string()),
    );
    push("THP enabled", Condition, nonempty(&s.thp.enabled));
    push("THP defrag", Condition, nonempty(&s.thp.defrag));
    push(
        "THP shmem_enabled",
        Condition,
        nonempty(&s.thp.shmem_enabled),
    );
    if !s.thp.mthp.is_empty() {
        let mthp: Vec<String> = s.thp.mthp.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        push("mTHP", Condition, Some(mthp.join(" ")));
    }
    // An older result kept the command line too: it is compared whenever present.
    push(
        "kernel command line",
        Condition,
        nonempty(&s.kernel.cmdline).map(|c| relevant_cmdline(&c)),
    );
    if let Some(mm) = &s.mm {
        for key in ZSWAP_SETTINGS {
            if let Some(v) = mm.zswap.get(*key) {
                push(&format!("zswap {key}"), Condition, Some(v.clone()));
            }
        }
        push("numa_balancing", Condition, nonempty(&mm.numa_balancing));
        for key in KHUGEPAGED_SETTINGS {
            if let Some(v) = mm.khugepaged.get(*key) {
                push(&format!("khugepaged {key}"), Condition, Some(v.clone()));
            }
        }
        let damon = mm.damon.running();
        push(
            "DAMON",
            Condition,
            mm.damon.unreadable.is_empty().then(|| {
                if damon.is_empty() {
                    "none running".to_string()
                } else {
                    damon.join("; ")
                }
            }),
        );
    }
    // How the uring engine's ring was set up changes where its completions run (the
    // submitter's wait, or task work that interrupts it): two setups are two methods. A
    // uring result from before the setup was recorded had none ("none").
    if let Some(u) = r.all_runs().find_map(|v| v.run.io_uring.as_ref()) {
        let flags = if u.setup_flags.is_empty() {
            "none".to_string()
        } else {
            u.setup_flags.join("|")
        };
        push("io_uring setup", Condition, Some(flags));
    }
    push("microcode", Note, m.and_then(|m| nonempty(&m.microcode)));
    push("container", Note, m.map(|m| m.container.clone()));
    push("lockdown", Note, nonempty(&r.system.lockdown));
    let commit = match (&r.tool.commit, r.tool.dirty) {
        (c, _) if c.is_empty() => None,
        (c, Some(true)) => Some(format!("{c} (dirty)")),
        (c, _) => Some(c.clone()),
    };
    push("thpbench commit", Note, commit);
    out
}

/// Whether two values of one setting are the same.
pub fn same_value(name: &str, a: &str, b: &str) -> bool {
    if name == "memory" {
        if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
            return (x - y).abs() <= MEMORY_TOLERANCE * x.max(y);
        }
    }
    a == b
}

/// A value as a person reads it.
pub fn display_value(name: &str, value: &str) -> String {
    match (name, value.parse::<u64>()) {
        ("memory", Ok(bytes)) => format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64),
        ("base page" | "PMD size", Ok(bytes)) => crate::units::format_size(bytes),
        _ if value.is_empty() => "(none)".into(),
        _ => value.to_string(),
    }
}

/// Whether two results may be pooled: every machine and condition setting both record
/// is the same.
pub fn compatible(a: &[Setting], b: &[Setting]) -> bool {
    a.iter()
        .filter(|s| s.kind != SettingKind::Note)
        .all(|s| match (&s.value, find(b, &s.name)) {
            (Some(x), Some(y)) => same_value(&s.name, x, y),
            _ => true,
        })
}

fn find<'a>(settings: &'a [Setting], name: &str) -> Option<&'a String> {
    settings
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.value.as_ref())
}

/// A setting that differs between the results compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemDifference {
    pub setting: String,
    pub kind: SettingKind,
    /// (value, the files with it), in the order the files were given; files that do not
    /// record the setting are left out.
    pub values: Vec<(String, Vec<String>)>,
}

/// Every setting on which the files disagree, machine first, then conditions, then notes.
pub fn differences(files: &[(String, Vec<Setting>)]) -> Vec<SystemDifference> {
    let mut names: Vec<(SettingKind, String)> = Vec::new();
    for (_, settings) in files {
        for s in settings {
            if !names.iter().any(|(_, n)| *n == s.name) {
                names.push((s.kind, s.name.clone()));
            }
        }
    }
    let mut out = Vec::new();
    for kind in [
        SettingKind::Machine,
        SettingKind::Condition,
        SettingKind::Note,
    ] {
        for (_, name) in names.iter().filter(|(k, _)| *k == kind) {
            let mut values: Vec<(String, Vec<String>)> = Vec::new();
            for (file, settings) in files {
                let Some(v) = find(settings, name) else {
                    continue;
                };
                match values.iter_mut().find(|(x, _)| same_value(name, x, v)) {
                    Some((_, fs)) => fs.push(file.clone()),
                    None => values.push((v.clone(), vec![file.clone()])),
                }
            }
            if values.len() > 1 {
                out.push(SystemDifference {
                    setting: name.clone(),
                    kind,
                    values: values
                        .into_iter()
                        .map(|(v, fs)| (display_value(name, &v), fs))
                        .collect(),
                });
            }
        }
    }
    out
}

impl SystemDifference {
    /// `bench1 (a.json, b.json); other (c.json)`.
    pub fn values_text(&self) -> String {
        let values: Vec<String> = self
            .values
            .iter()
            .map(|(v, fs)| format!("{v} ({})", fs.join(", ")))
            .collect();
        values.join("; ")
    }
}

impl SettingKind {
    pub fn word(self) -> &'static str {
        match self {
            SettingKind::Machine => "machine",
            SettingKind::Condition => "condition",
            SettingKind::Note => "note",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_keeps_what_changes_the_kernel() {
        assert_eq!(
            relevant_cmdline("BOOT_IMAGE=/vmlinuz-6.1 root=UUID=x ro quiet splash mitigations=off transparent_hugepage=always -- --init-arg"),
            "mitigations=off transparent_hugepage=always"
        );
        assert_eq!(
            relevant_cmdline("BOOT_IMAGE=/vmlinuz-6.12 root=/dev/sda1 rw"),
            ""
        );
    }

    #[test]
    fn two_io_uring_setups_are_two_conditions() {
        let uring = |flags: &[&str]| {
            let mut r = BenchResult::new(Default::default(), Default::default());
            r.runs.push(crate::result::RunResult {
                io_uring: Some(crate::result::IoUringReport {
                    setup_flags: flags.iter().map(|f| f.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            });
            settings_of(&r)
        };
        let fio_like = uring(&["COOP_TASKRUN", "SINGLE_ISSUER", "DEFER_TASKRUN"]);
        let older = uring(&[]);
        assert_eq!(
            find(&older, "io_uring setup").map(String::as_str),
            Some("none")
        );
        assert!(!compatible(&fio_like, &older));
        assert!(compatible(&fio_like, &fio_like));
        // A result without a uring run says nothing about the ring.
        assert!(compatible(
            &fio_like,
            &settings_of(&BenchResult::new(Default::default(), Default::default()))
        ));
    }

    #[test]
    fn memory_within_a_few_percent_is_one_size() {
        assert!(same_value("memory", "17179869184", "17000000000"));
        assert!(!same_value("memory", "17179869184", "8589934592"));
        assert!(!same_value("hostname", "a", "b"));
        assert_eq!(display_value("memory", "17179869184"), "16.0 GiB");
    }
}
