//! The machine's CPU and NUMA topology read from sysfs (`/sys/devices/system`, or any
//! root with the same layout, so that selection is tested on synthetic trees), and the
//! choice of worker and housekeeping CPUs on it.
//!
//! Worker order when `threads = N` picks fewer CPUs than the spec offers: cores are
//! taken round-robin over the (NUMA node, package) groups in ascending order, each
//! group giving its lowest-numbered unused core (by the number of the core's first
//! thread); once every core has a worker, the second SMT threads follow in the same
//! order, then the third, and so on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::units::{format_cpu_list, parse_cpu_list};

/// Where the kernel publishes CPU and node topology.
pub const SYSFS_SYSTEM: &str = "/sys/devices/system";

/// One online logical CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalCpu {
    pub cpu: usize,
    /// `core_id`: unique within a package only.
    pub core_id: u32,
    pub package: u32,
    pub node: u32,
    /// Online threads of the same core, this one included, ascending.
    pub core_threads: Vec<usize>,
}

impl LogicalCpu {
    /// The core's identity across the machine: (package, core_id).
    pub fn core_key(&self) -> (u32, u32) {
        (self.package, self.core_id)
    }
}

/// One NUMA node: its CPUs and memory (bytes, from the node's meminfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: u32,
    pub cpus: Vec<usize>,
    pub mem_total: Option<u64>,
    pub mem_free: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    /// Online CPUs, ascending.
    pub cpus: Vec<LogicalCpu>,
    /// Nodes, ascending; a machine without NUMA shows one node 0.
    pub nodes: Vec<Node>,
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_num<T: std::str::FromStr>(path: impl AsRef<Path>) -> Option<T> {
    read(path).and_then(|s| s.parse().ok())
}

/// Numbered entries `prefixN` of a sysfs directory, ascending.
fn numbered_entries(dir: &Path, prefix: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix(prefix))
                        .and_then(|n| n.parse().ok())
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// A `Node N MemFree:  123 kB` line of a node's meminfo, in bytes.
pub fn node_meminfo_bytes(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.split_once(':').filter(|(k, _)| k.ends_with(key))?.1;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

impl Topology {
    /// The running machine's topology.
    pub fn current() -> Topology {
        Topology::read(Path::new(SYSFS_SYSTEM))
    }

    /// Reads `<root>/cpu/online`, `<root>/cpu/cpuN/topology/*` and
    /// `<root>/node/nodeN/{cpulist,meminfo}`. Missing files degrade to one package,
    /// one node and one thread per core, never to an error.
    pub fn read(root: &Path) -> Topology {
        let cpu_dir = root.join("cpu");
        let online = read(cpu_dir.join("online"))
            .and_then(|s| parse_cpu_list(&s).ok())
            .unwrap_or_else(|| {
                numbered_entries(&cpu_dir, "cpu")
                    .into_iter()
                    .map(|c| c as usize)
                    .collect()
            });
        let node_dir = root.join("node");
        let mut nodes: Vec<Node> = numbered_entries(&node_dir, "node")
            .into_iter()
            .map(|id| {
                let dir = node_dir.join(format!("node{id}"));
                let meminfo = read(dir.join("meminfo")).unwrap_or_default();
                Node {
                    id,
                    cpus: read(dir.join("cpulist"))
                        .and_then(|s| parse_cpu_list(&s).ok())
                        .unwrap_or_default(),
                    mem_total: node_meminfo_bytes(&meminfo, "MemTotal"),
                    mem_free: node_meminfo_bytes(&meminfo, "MemFree"),
                }
            })
            .collect();
        let cpus: Vec<LogicalCpu> = online
            .iter()
            .map(|&cpu| {
                let topo = cpu_dir.join(format!("cpu{cpu}/topology"));
                let mut core_threads: Vec<usize> = read(topo.join("thread_siblings_list"))
                    .and_then(|s| parse_cpu_list(&s).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| online.contains(c))
                    .collect();
                if !core_threads.contains(&cpu) {
                    core_threads.push(cpu);
                    core_threads.sort_unstable();
                }
                LogicalCpu {
                    cpu,
                    core_id: read_num(topo.join("core_id")).unwrap_or(cpu as u32),
                    package: read_num(topo.join("physical_package_id")).unwrap_or(0),
                    node: nodes
                        .iter()
                        .find(|n| n.cpus.contains(&cpu))
                        .map_or(0, |n| n.id),
                    core_threads,
                }
            })
            .collect();
        if nodes.is_empty() {
            nodes.push(Node {
                id: 0,
                cpus: online.clone(),
                mem_total: None,
                mem_free: None,
            });
        }
        Topology { cpus, nodes }
    }

    pub fn cpu(&self, cpu: usize) -> Option<&LogicalCpu> {
        self.cpus.iter().find(|c| c.cpu == cpu)
    }

    /// Distinct cores (by their first online thread).
    pub fn core_count(&self) -> usize {
        self.cpus
            .iter()
            .filter(|c| c.core_threads.first() == Some(&c.cpu))
            .count()
    }

    pub fn package_count(&self) -> usize {
        let mut p: Vec<u32> = self.cpus.iter().map(|c| c.package).collect();
        p.dedup();
        p.sort_unstable();
        p.dedup();
        p.len()
    }

    /// Most threads any core has.
    pub fn threads_per_core(&self) -> usize {
        self.cpus
            .iter()
            .map(|c| c.core_threads.len())
            .max()
            .unwrap_or(1)
    }

    /// `allowed` CPUs in worker order (see the module doc): the first allowed thread of
    /// every core round-robin over (node, package) groups, then the second threads, ...
    pub fn spread_order(&self, allowed: &[usize]) -> Vec<usize> {
        // Per core, its allowed threads ascending; cores keyed by first allowed thread.
        let mut cores: BTreeMap<(u32, u32), Vec<&LogicalCpu>> = BTreeMap::new();
        for c in self.cpus.iter().filter(|c| allowed.contains(&c.cpu)) {
            cores.entry(c.core_key()).or_default().push(c);
        }
        // (node, package) -> that group's cores, by first thread.
        let mut groups: BTreeMap<(u32, u32), Vec<Vec<usize>>> = BTreeMap::new();
        for threads in cores.values() {
            let first = threads[0];
            groups
                .entry((first.node, first.package))
                .or_default()
                .push(threads.iter().map(|c| c.cpu).collect());
        }
        for g in groups.values_mut() {
            g.sort_by_key(|t| t[0]);
        }
        let max_threads = groups.values().flatten().map(Vec::len).max().unwrap_or(0);
        let max_cores = groups.values().map(Vec::len).max().unwrap_or(0);
        let mut order = Vec::new();
        for thread in 0..max_threads {
            for core in 0..max_cores {
                for g in groups.values() {
                    if let Some(&cpu) = g.get(core).and_then(|t| t.get(thread)) {
                        order.push(cpu);
                    }
                }
            }
        }
        order
    }
}

pub use crate::workload::CpuSpec;

/// The worker CPUs and, for people, why these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub cpus: Vec<usize>,
    pub why: String,
}

/// Chooses worker CPUs among `allowed` (online and in the affinity mask). `threads` 0
/// takes all the spec offers; N takes the first N in worker order.
pub fn select(
    topo: &Topology,
    allowed: &[usize],
    spec: &CpuSpec,
    threads: usize,
) -> Result<Selection, String> {
    let allowed_list = format_cpu_list(allowed);
    let (offer, what): (Vec<usize>, String) = match spec {
        CpuSpec::List(list) => {
            if let Some(bad) = list.iter().find(|c| !allowed.contains(c)) {
                return Err(format!("CPU {bad} is not online or not in this process's affinity mask (allowed: {allowed_list})"));
            }
            return Ok(Selection {
                cpus: list.clone(),
                why: format!("cpus = \"{}\" as listed", format_cpu_list(list)),
            });
        }
        CpuSpec::Threads => (
            topo.spread_order(allowed),
            "every online logical CPU (SMT siblings included)".into(),
        ),
        CpuSpec::Cores => (
            topo.spread_order(allowed),
            format!(
                "one per physical core, its first thread ({} cores, {} packages, {} nodes, {} threads per core)",
                topo.core_count(),
                topo.package_count(),
                topo.nodes.len(),
                topo.threads_per_core()
            ),
        ),
        CpuSpec::Node(n) => {
            let node = topo.nodes.iter().find(|x| x.id == *n).ok_or_else(|| {
                format!(
                    "node:{n}: no NUMA node {n} here (nodes: {})",
                    topo.nodes.iter().map(|x| x.id.to_string()).collect::<Vec<_>>().join(", ")
                )
            })?;
            let on_node: Vec<usize> = allowed.iter().copied().filter(|c| node.cpus.contains(c)).collect();
            if on_node.is_empty() {
                return Err(format!(
                    "node:{n}: none of node {n}'s CPUs ({}) is online and allowed (allowed: {allowed_list})",
                    format_cpu_list(&node.cpus)
                ));
            }
            (topo.spread_order(&on_node), format!("one per physical core of NUMA node {n}"))
        }
    };
    let cores_offered = first_threads(topo, &offer);
    let per_core = !matches!(spec, CpuSpec::Threads);
    let all = if per_core {
        cores_offered.clone()
    } else {
        offer.clone()
    };
    let (cpus, why) = match threads {
        0 => (all, what),
        n if n <= all.len() => (
            all[..n].to_vec(),
            format!("{what}; threads = {n}: spread over nodes and packages"),
        ),
        n if n <= offer.len() => (
            offer[..n].to_vec(),
            format!("{what}; threads = {n} is more than the {} cores, so SMT siblings take the rest", cores_offered.len()),
        ),
        n => {
            return Err(format!(
                "threads = {n} but only {} CPUs are available ({allowed_list}); thpbench runs one pinned worker per CPU",
                offer.len()
            ))
        }
    };
    let mut sorted = cpus;
    sorted.sort_unstable();
    Ok(Selection { cpus: sorted, why })
}

/// Of `order`, the CPUs that come first on their core within `order`.
fn first_threads(topo: &Topology, order: &[usize]) -> Vec<usize> {
    let mut seen = Vec::new();
    order
        .iter()
        .copied()
        .filter(|&c| {
            let key = topo.cpu(c).map(LogicalCpu::core_key);
            if seen.contains(&key) {
                false
            } else {
                seen.push(key);
                true
            }
        })
        .collect()
}

/// CPUs for disturbers and collectors: the allowed CPUs of cores no worker uses where
/// there are any, else the idle SMT siblings of workers, else (none idle) the workers'
/// own CPUs. Returns the CPUs and which of the three it was.
pub fn housekeeping(
    topo: &Topology,
    allowed: &[usize],
    workers: &[usize],
) -> (Vec<usize>, &'static str) {
    let worker_cores: Vec<_> = workers
        .iter()
        .filter_map(|&c| topo.cpu(c))
        .map(LogicalCpu::core_key)
        .collect();
    let idle = |c: &&usize| !workers.contains(c);
    let free_cores: Vec<usize> = allowed
        .iter()
        .filter(idle)
        .copied()
        .filter(|&c| {
            topo.cpu(c)
                .is_some_and(|x| !worker_cores.contains(&x.core_key()))
        })
        .collect();
    if !free_cores.is_empty() {
        return (free_cores, "free cores");
    }
    let siblings: Vec<usize> = allowed.iter().filter(idle).copied().collect();
    if !siblings.is_empty() {
        return (siblings, "SMT siblings of workers");
    }
    (Vec::new(), "none free: they share the workers' CPUs")
}

/// A synthetic sysfs tree for tests: `cpus` as (cpu, package, core_id, node).
pub fn write_fake_sysfs(
    root: &Path,
    cpus: &[(usize, u32, u32, u32)],
    offline: &[usize],
) -> std::io::Result<()> {
    let w = |p: PathBuf, s: &str| -> std::io::Result<()> {
        std::fs::create_dir_all(p.parent().unwrap_or(root))?;
        std::fs::write(p, format!("{s}\n"))
    };
    let online: Vec<usize> = cpus
        .iter()
        .map(|c| c.0)
        .filter(|c| !offline.contains(c))
        .collect();
    w(root.join("cpu/online"), &format_cpu_list(&online))?;
    let mut nodes: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for &(cpu, package, core, node) in cpus {
        nodes.entry(node).or_default().push(cpu);
        if offline.contains(&cpu) {
            // The kernel removes an offline CPU's topology directory.
            std::fs::create_dir_all(root.join(format!("cpu/cpu{cpu}")))?;
            continue;
        }
        let siblings: Vec<usize> = cpus
            .iter()
            .filter(|c| c.1 == package && c.2 == core && !offline.contains(&c.0))
            .map(|c| c.0)
            .collect();
        let t = root.join(format!("cpu/cpu{cpu}/topology"));
        w(t.join("core_id"), &core.to_string())?;
        w(t.join("physical_package_id"), &package.to_string())?;
        w(t.join("thread_siblings_list"), &format_cpu_list(&siblings))?;
    }
    for (node, list) in nodes {
        let d = root.join(format!("node/node{node}"));
        let on: Vec<usize> = list.into_iter().filter(|c| !offline.contains(c)).collect();
        w(d.join("cpulist"), &format_cpu_list(&on))?;
        w(
            d.join("meminfo"),
            &format!(
                "Node {node} MemTotal:       1048576 kB\nNode {node} MemFree:         524288 kB"
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
