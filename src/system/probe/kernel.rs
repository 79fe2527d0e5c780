//! The kernel (release, command line, lockdown) and its THP settings.

use super::{capability, capability_row, info, ProbeRow};
use crate::system::{mounts, read_trimmed, thp};

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
        machine: uts
            .as_ref()
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// Everything a result records about the system, provenance included.
pub fn system_info() -> crate::result::SystemInfo {
    let mut system = crate::result::SystemInfo {
        kernel: kernel_info(),
        lockdown: mounts::lockdown_mode(),
        thp: thp::info(),
        cpus: crate::system::cpu::topology(),
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        base_page_bytes: crate::pages::base_page() as u64,
        ..Default::default()
    };
    crate::system::provenance::record(&mut system);
    system
}

pub fn rows() -> Vec<ProbeRow> {
    let k = kernel_info();
    let mut rows = vec![
        info("kernel release", &k.release),
        info("kernel version", &k.version),
        info("kernel cmdline", &k.cmdline),
    ];
    rows.extend(provenance_rows(&k.release));
    let lockdown = mounts::lockdown_mode();
    rows.push(capability_row(
        capability::LOCKDOWN,
        lockdown == "none",
        &lockdown,
        match lockdown.as_str() {
            "none" => "",
            "unknown" => "securityfs could not be read (not root?)",
            _ => "lockdown forbids debugfs writes (split_huge_pages) and raw kernel memory access",
        },
    ));
    rows.extend(thp_rows());
    rows
}

/// What every result records about the kernel build and the machine, as `run` reads it.
fn provenance_rows(release: &str) -> Vec<ProbeRow> {
    use crate::system::provenance::{kernel, machine, mm};
    let either = |r: Result<String, String>| r.unwrap_or_else(|why| format!("not recorded: {why}"));
    let config = match kernel::config(release) {
        Ok(c) => {
            let debug = c.debug_options_on();
            let debug = if debug.is_empty() {
                "no debug options on".to_string()
            } else {
                format!(
                    "DEBUG OPTIONS ON: {} (figures include their cost)",
                    debug.join(", ")
                )
            };
            format!("{} sha256 {}, {debug}", c.source, c.sha256)
        }
        Err(why) => format!("not recorded: {why}"),
    };
    let (m, _) = machine::machine_info();
    let damon = mm::damon();
    let running = damon.running();
    vec![
        info("kernel build-id", either(kernel::build_id())),
        info("kernel compiler", either(kernel::compiler())),
        info("kernel config", config),
        info(
            "machine",
            format!(
                "{} (microcode {}), {:.1} GiB, hypervisor {}{}",
                m.cpu_model,
                if m.microcode.is_empty() {
                    "-"
                } else {
                    &m.microcode
                },
                m.mem_total_bytes as f64 / (1u64 << 30) as f64,
                m.hypervisor,
                if m.container.is_empty() {
                    String::new()
                } else {
                    format!(", container {}", m.container)
                }
            ),
        ),
        info(
            "DAMON",
            if !damon.unreadable.is_empty() {
                format!("not recorded: {}", damon.unreadable)
            } else if running.is_empty() {
                "none running".to_string()
            } else {
                running.join("; ")
            },
        ),
    ]
}

fn thp_rows() -> Vec<ProbeRow> {
    let t = thp::info();
    let thp_ok = thp::pmd_thp_usable();
    let khugepaged = thp::khugepaged()
        .iter()
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
        .join(" ");
    let mthp = t
        .mthp
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        capability_row(
            capability::THP,
            thp_ok.is_ok(),
            &t.enabled,
            thp_ok.err().unwrap_or_default(),
        ),
        info("THP defrag", &t.defrag),
        info("THP shmem_enabled", &t.shmem_enabled),
        info("THP PMD size", crate::units::format_size(t.pmd_size_bytes)),
        info("khugepaged", khugepaged),
        capability_row(
            capability::MTHP,
            !t.mthp.is_empty(),
            mthp,
            if t.mthp.is_empty() {
                "no hugepages-<size>kB directories (kernel before 6.8)"
            } else {
                ""
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_result_records_this_kernel_s_page_geometry() {
        let sys = super::system_info();
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        assert_eq!(sys.base_page_bytes, page);
        assert_eq!(sys.thp.pmd_size_bytes, crate::pages::pmd_size());
        assert!(sys.thp.pmd_size_bytes > page, "{:?}", sys.thp);
        assert_eq!(sys.kernel.machine, std::env::consts::ARCH);
    }
}
