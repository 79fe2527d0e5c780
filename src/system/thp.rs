//! Transparent huge page settings: the global knobs, the mTHP sizes, and the per-size
//! knobs that an `mthp:SIZE` buffer needs set (and restored afterwards).

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use super::{read_selected, read_trimmed, KnobGuard};
use crate::result::ThpInfo;

pub use crate::pages::THP_SYSFS;

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

// The geometry is read in one place (crate::pages); thp's callers keep these names.
pub use crate::pages::{mthp_sizes_kb, pmd_size};

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
