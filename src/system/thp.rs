//! Transparent huge page settings: the global knobs, the mTHP sizes, and the per-size
//! knobs that an `mthp:SIZE` buffer needs set (and restored afterwards).

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use super::{read_selected, read_trimmed, KnobGuard};
use crate::result::ThpInfo;

pub const THP_SYSFS: &str = "/sys/kernel/mm/transparent_hugepage";

pub fn info() -> ThpInfo {
    let knob = |f: &str| {
        read_selected(format!("{THP_SYSFS}/{f}")).unwrap_or_else(|_| "unavailable".into())
    };
    ThpInfo {
        enabled: knob("enabled"),
        defrag: knob("defrag"),
        shmem_enabled: knob("shmem_enabled"),
        pmd_size_bytes: pmd_size(),
        mthp: mthp_sizes_kb()
            .into_iter()
            .map(|kb| {
                (
                    format!("{kb}kB"),
                    read_selected(format!("{THP_SYSFS}/hugepages-{kb}kB/enabled"))
                        .unwrap_or_else(|_| "unavailable".into()),
                )
            })
            .collect(),
    }
}

/// The PMD huge page size; 2 MiB on x86-64 when sysfs does not say.
pub fn pmd_size() -> u64 {
    read_trimmed(format!("{THP_SYSFS}/hpage_pmd_size"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2 << 20)
}

/// The sizes (in kB) that anonymous mTHP can use (a `hugepages-<size>kB/enabled` knob;
/// 8 kB has only `shmem_enabled`), ascending.
pub fn mthp_sizes_kb() -> Vec<u64> {
    let mut sizes: Vec<u64> = std::fs::read_dir(THP_SYSFS)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_prefix("hugepages-")?
                        .strip_suffix("kB")?
                        .parse()
                        .ok()
                        .filter(|_| e.path().join("enabled").exists())
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort_unstable();
    sizes
}

/// khugepaged settings, for the probe.
pub fn khugepaged() -> BTreeMap<String, String> {
    std::fs::read_dir(format!("{THP_SYSFS}/khugepaged"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_string();
                    Some((name, read_trimmed(e.path()).ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether MADV_HUGEPAGE regions get PMD THPs under the current global setting.
pub fn pmd_thp_usable() -> Result<(), String> {
    match read_selected(format!("{THP_SYSFS}/enabled")) {
        Ok(m) if m == "always" || m == "madvise" => Ok(()),
        Ok(m) => Err(format!(
            "{THP_SYSFS}/enabled is `{m}`: set it to madvise (echo madvise > {THP_SYSFS}/enabled, as root)"
        )),
        Err(e) => Err(format!("{THP_SYSFS}/enabled cannot be read ({e}): this kernel has no THP support")),
    }
}

/// Makes MADV_HUGEPAGE regions get folios of exactly `size` bytes: the size's own knob
/// to `madvise` (unless already always/madvise) and every larger size to `never`, since
/// the kernel tries the largest allowed order first. Needs root; returns the guards.
/// Whether `mthp:SIZE` can be used here: a size below the PMD size (the PMD size itself
/// is `buffer = "thp"`) with a per-size knob. Checked before anything is measured.
pub fn check_mthp_size(size: u64) -> Result<()> {
    let kb = size / 1024;
    let pmd_kb = pmd_size() / 1024;
    let usable: Vec<u64> = mthp_sizes_kb()
        .into_iter()
        .filter(|&s| s < pmd_kb)
        .collect();
    if !usable.contains(&kb) {
        bail!(
            "buffer = mthp:{kb}K: this kernel offers no {kb} kB mTHP size for anonymous memory (it has: {}; the PMD size {}K is buffer = \"thp\"); pick one of those",
            usable
                .iter()
                .map(|s| format!("{s}K"))
                .collect::<Vec<_>>()
                .join(", "),
            pmd_kb
        );
    }
    Ok(())
}

pub fn configure_mthp(size: u64) -> Result<Vec<KnobGuard>> {
    check_mthp_size(size)?;
    let kb = size / 1024;
    let sizes = mthp_sizes_kb();
    let mut guards = Vec::new();
    let knob = |kb: u64| format!("{THP_SYSFS}/hugepages-{kb}kB/enabled");
    let global = read_selected(format!("{THP_SYSFS}/enabled")).unwrap_or_default();
    let own = read_selected(knob(kb))?;
    let own_ok = own == "always" || own == "madvise" || (own == "inherit" && global != "never");
    if !own_ok {
        guards.extend(KnobGuard::set(knob(kb), "madvise")?);
    }
    for &larger in sizes.iter().filter(|&&s| s > kb) {
        guards.extend(KnobGuard::set(knob(larger), "never")?);
    }
    Ok(guards)
}
