//! CPU topology from sysfs: which CPUs are online, their cores, packages, SMT siblings
//! and NUMA nodes.

use crate::result::CpuInfo;
use crate::units::parse_cpu_list;

const CPU_SYSFS: &str = "/sys/devices/system/cpu";

pub fn online_cpus() -> Vec<usize> {
    super::read_trimmed(format!("{CPU_SYSFS}/online"))
        .ok()
        .and_then(|s| parse_cpu_list(&s).ok())
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
        })
}

/// CPUs this process may run on (its affinity mask), which can be fewer than online.
pub fn allowed_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => online_cpus()
            .into_iter()
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => online_cpus(),
    }
}

pub fn topology() -> Vec<CpuInfo> {
    online_cpus()
        .into_iter()
        .map(|cpu| {
            let base = format!("{CPU_SYSFS}/cpu{cpu}");
            let num = |f: &str| {
                super::read_trimmed(format!("{base}/topology/{f}"))
                    .ok()
                    .and_then(|s| s.parse().ok())
            };
            let numa_node = std::fs::read_dir(&base).ok().and_then(|dir| {
                dir.flatten().find_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix("node"))
                        .and_then(|n| n.parse().ok())
                })
            });
            let smt_siblings = super::read_trimmed(format!("{base}/topology/thread_siblings_list"))
                .ok()
                .and_then(|s| parse_cpu_list(&s).ok())
                .unwrap_or_default()
                .into_iter()
                .filter(|&c| c != cpu)
                .collect();
            CpuInfo {
                cpu,
                core_id: num("core_id"),
                package_id: num("physical_package_id"),
                numa_node,
                smt_siblings,
            }
        })
        .collect()
}

/// The calling thread's CPU affinity narrowed; the old mask is put back on drop (on the
/// same thread: a guard is made and dropped by the thread it restricts).
pub struct AffinityGuard {
    old: nix::sched::CpuSet,
}

impl AffinityGuard {
    pub fn restrict_current(cpus: &[usize]) -> nix::Result<AffinityGuard> {
        let me = nix::unistd::Pid::from_raw(0);
        let old = nix::sched::sched_getaffinity(me)?;
        let mut set = nix::sched::CpuSet::new();
        for &c in cpus {
            set.set(c)?;
        }
        nix::sched::sched_setaffinity(me, &set)?;
        Ok(AffinityGuard { old })
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &self.old);
    }
}

/// The CPU the calling thread runs on now.
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu has no preconditions.
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).ok()
}

/// Pins the calling thread to one CPU and checks that it now runs there.
pub fn pin_current_thread(cpu: usize) -> anyhow::Result<()> {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        anyhow::bail!(
            "could not pin a thread to CPU {cpu}: sched_setaffinity failed (is CPU {cpu} online and in this process's cpuset? allowed: {})",
            crate::units::format_cpu_list(&allowed_cpus())
        );
    }
    // The kernel migrates the thread at the next scheduling point; yield once so that
    // sched_getcpu reports where it really runs.
    std::thread::yield_now();
    match current_cpu() {
        Some(now) if now == cpu => Ok(()),
        Some(now) => anyhow::bail!("pinned to CPU {cpu} but sched_getcpu reports CPU {now}"),
        None => anyhow::bail!("sched_getcpu failed after pinning to CPU {cpu}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_lists_every_online_cpu() {
        let online = online_cpus();
        assert!(!online.is_empty());
        let topo = topology();
        assert_eq!(topo.iter().map(|c| c.cpu).collect::<Vec<_>>(), online);
    }

    #[test]
    fn affinity_guard_restores_the_old_mask() {
        std::thread::spawn(|| {
            let before = allowed_cpus();
            let first = before[0];
            {
                let _g = AffinityGuard::restrict_current(&[first]).unwrap();
                assert_eq!(allowed_cpus(), vec![first]);
            }
            assert_eq!(allowed_cpus(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn pinning_moves_the_thread() {
        let last = *allowed_cpus().last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(last).unwrap();
            assert_eq!(current_cpu(), Some(last));
        })
        .join()
        .unwrap();
    }
}
