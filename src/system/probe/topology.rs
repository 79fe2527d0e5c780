//! The CPUs: which are online, and their cores, packages, nodes and SMT siblings; the
//! topology in sum, with each NUMA node's CPUs and memory.

use super::{info, ProbeRow};
use crate::units::format_cpu_list;

pub fn row() -> ProbeRow {
    let topo = crate::system::cpu::topology();
    let cpus = topo
        .iter()
        .map(|c| {
            format!(
                "cpu{}: core {} pkg {} node {}{}",
                c.cpu,
                c.core_id.map_or("?".into(), |v| v.to_string()),
                c.package_id.map_or("?".into(), |v| v.to_string()),
                c.numa_node.map_or("?".into(), |v| v.to_string()),
                if c.smt_siblings.is_empty() {
                    String::new()
                } else {
                    format!(" smt {}", format_cpu_list(&c.smt_siblings))
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    info(
        "CPUs",
        format!(
            "online {}; {cpus}",
            format_cpu_list(&topo.iter().map(|c| c.cpu).collect::<Vec<_>>()),
        ),
    )
}

/// Cores, threads per core, packages, and each node's CPUs and memory.
pub fn topology_row(t: &crate::system::topology::Topology) -> ProbeRow {
    let nodes = t
        .nodes
        .iter()
        .map(|n| {
            let mem =
                |b: Option<u64>| b.map_or("?".into(), |b| crate::units::human_bytes(b as f64));
            format!(
                "node {}: cpus {}, memory {} ({} free)",
                n.id,
                format_cpu_list(&n.cpus),
                mem(n.mem_total),
                mem(n.mem_free)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    info(
        "topology",
        format!(
            "{} cores, {} threads per core, {} packages, {} NUMA nodes; {nodes}",
            t.core_count(),
            t.threads_per_core(),
            t.package_count(),
            t.nodes.len()
        ),
    )
}
