//! Swap and zram: what is active, and whether thpbench can make its own.

use std::path::Path;

use super::{capability, capability_row, info, ProbeRow};
use crate::system::{swap, zram};

pub fn rows() -> Vec<ProbeRow> {
    let swaps = swap::active_swaps();
    let swap_row = info(
        "swap devices",
        if swaps.is_empty() {
            "none active (thpbench can make zram or file swap as root)".to_string()
        } else {
            swaps
                .iter()
                .map(|s| format!("{} ({} kB, prio {})", s.name, s.size_kb, s.priority))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let zram_ok = Path::new(zram::ZRAM_CONTROL).exists();
    let zram_row = capability_row(
        capability::ZRAM,
        zram_ok,
        format!(
            "devices {:?}, free {:?}",
            zram::existing_devices(),
            zram::free_devices()
        ),
        if zram_ok {
            ""
        } else {
            "/sys/class/zram-control is missing"
        },
    );
    vec![swap_row, zram_row]
}
