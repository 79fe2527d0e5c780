//! The CPUs: which are online, and their cores, packages, nodes and SMT siblings.

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
