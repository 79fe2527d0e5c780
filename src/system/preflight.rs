//! Checks of one workload (one sweep case) against this machine, made before anything is
//! measured: what can be refused up front costs no measurement and changes nothing.

use anyhow::{bail, Result};

use super::swap::SwapSpec;
use crate::units::format_size;
use crate::workload::{Backing, Workload};

/// zram holds its data in RAM: thpbench's zram devices together may use at most this
/// share of MemAvailable, leaving the rest to the buffers and everything else.
const ZRAM_SHARE_OF_AVAILABLE: f64 = 0.75;

pub fn mem_available() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// The bytes of a `zram:SIZE` target the run fills: the device, or `size` if smaller.
pub fn zram_target_region(w: &Workload) -> Option<Result<u64, String>> {
    let size = w.target.trim().strip_prefix("zram:")?;
    Some(crate::units::parse_size(size).and_then(|dev| {
        if dev == 0 {
            Err(format!(
                "target = \"{}\": a zram device needs a size above 0, e.g. zram:1G",
                w.target
            ))
        } else {
            Ok(w.size.map_or(dev, |s| s.bytes().min(dev)))
        }
    }))
}

/// Everything about one case that can be checked without changing the machine.
pub fn check_case(w: &Workload) -> Result<()> {
    if let Backing::Mthp(size) = w.buffer {
        super::thp::check_mthp_size(size)?;
    }
    let mut zram_bytes = Vec::new();
    if let Some(region) = zram_target_region(w) {
        let region = region.map_err(anyhow::Error::msg)?;
        zram_bytes.push(("the zram target", region));
    }
    if let Some(spec) = &w.swap {
        match SwapSpec::parse(spec).map_err(|e| anyhow::anyhow!("swap = {e}"))? {
            SwapSpec::Zram(0) | SwapSpec::File(_, 0) => bail!(
                "swap = \"{spec}\": a swap of 0 bytes holds nothing; give a size, e.g. zram:1G"
            ),
            SwapSpec::Zram(size) => zram_bytes.push(("the zram swap", size)),
            _ => {}
        }
    }
    check_zram_memory(&zram_bytes, mem_available())
}

/// Refuses zram devices that together would take more than their share of free memory.
pub fn check_zram_memory(uses: &[(&str, u64)], available: Option<u64>) -> Result<()> {
    let total: u64 = uses.iter().map(|(_, b)| b).sum();
    let (Some(available), true) = (available, total > 0) else {
        return Ok(());
    };
    let limit = (available as f64 * ZRAM_SHARE_OF_AVAILABLE) as u64;
    if total > limit {
        bail!(
            "{} would hold {} in RAM (zram keeps its data in memory), but MemAvailable is {} and thpbench lets zram use at most {} (3/4 of it); use a smaller size (--size, zram:SIZE) or a file target / swap file",
            uses.iter()
                .map(|(what, b)| format!("{what} ({})", format_size(*b)))
                .collect::<Vec<_>>()
                .join(" and "),
            format_size(total),
            format_size(available),
            format_size(limit)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zram_beyond_three_quarters_of_available_memory_is_refused_with_the_numbers() {
        let g = 1u64 << 30;
        assert!(check_zram_memory(&[("the zram target", 2 * g)], Some(4 * g)).is_ok());
        let e = check_zram_memory(
            &[("the zram target", 2 * g), ("the zram swap", 2 * g)],
            Some(4 * g),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("the zram target (1G") || e.contains("the zram target (2"),
            "{e}"
        );
        assert!(e.contains("MemAvailable is 4"), "{e}");
    }

    #[test]
    fn a_zram_target_fills_at_most_size() {
        let mut w = Workload {
            target: "zram:1G".into(),
            size: Some(crate::units::Size(64 << 20)),
            ..Default::default()
        };
        assert_eq!(zram_target_region(&w), Some(Ok(64 << 20)));
        w.target = "zram:0".into();
        assert!(zram_target_region(&w).unwrap().is_err());
    }
}
