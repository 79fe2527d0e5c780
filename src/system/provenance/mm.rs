//! Memory-management settings that change what the measured paths cost: zswap, NUMA
//! balancing, khugepaged and DAMON.

use std::collections::BTreeMap;
use std::path::Path;

use crate::result::provenance::{DamonContext, DamonInfo, Kdamond};
use crate::result::MmSettings;
use crate::system::read_trimmed;

/// khugepaged's files that are counters, not settings.
const KHUGEPAGED_COUNTERS: &[&str] = &["full_scans", "pages_collapsed"];

fn dir_values(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
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

/// Numbered subdirectories of `dir` (kdamonds/0, contexts/0, schemes/0), in order.
fn numbered(dir: &Path) -> Vec<(u32, std::path::PathBuf)> {
    let mut out: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn range(dir: &Path) -> String {
    let v = |f: &str| read_trimmed(dir.join(f)).unwrap_or_else(|_| "?".into());
    let max = v("max");
    // The sysfs default maxima read as the type's limit: say `max`.
    let max = if max == "4294967295" || max == "18446744073709551615" {
        "max".to_string()
    } else {
        max
    };
    format!("{}..{max}", v("min"))
}

/// One scheme as `action age=.. nr_accesses=.. sz=.. quota=MSms/BYTES`.
fn scheme(dir: &Path) -> String {
    let action = read_trimmed(dir.join("action")).unwrap_or_else(|_| "?".into());
    let ap = dir.join("access_pattern");
    let q = |f: &str| read_trimmed(dir.join("quotas").join(f)).unwrap_or_else(|_| "?".into());
    format!(
        "{action} age={} nr_accesses={} sz={} quota={}ms/{}B",
        range(&ap.join("age")),
        range(&ap.join("nr_accesses")),
        range(&ap.join("sz")),
        q("ms"),
        q("bytes")
    )
}

pub fn damon() -> DamonInfo {
    let mut info = DamonInfo::default();
    let admin = Path::new("/sys/kernel/mm/damon/admin/kdamonds");
    match std::fs::read_dir(admin) {
        Ok(_) => {
            for (index, k) in numbered(admin) {
                let contexts = numbered(&k.join("contexts"))
                    .into_iter()
                    .map(|(_, c)| DamonContext {
                        operations: read_trimmed(c.join("operations")).unwrap_or_default(),
                        schemes: numbered(&c.join("schemes"))
                            .into_iter()
                            .map(|(_, s)| scheme(&s))
                            .collect(),
                    })
                    .collect();
                info.kdamonds.push(Kdamond {
                    index,
                    state: read_trimmed(k.join("state")).unwrap_or_default(),
                    pid: read_trimmed(k.join("pid"))
                        .ok()
                        .and_then(|p| p.parse().ok()),
                    contexts,
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => info.unreadable = format!("{}: {e}", admin.display()),
    }
    for m in ["damon_reclaim", "damon_lru_sort", "damon_stat"] {
        if let Ok(v) = read_trimmed(format!("/sys/module/{m}/parameters/enabled")) {
            info.modules.insert(m.to_string(), v);
        }
    }
    info
}

pub fn mm_settings() -> MmSettings {
    let mut khugepaged = crate::system::thp::khugepaged();
    khugepaged.retain(|k, _| !KHUGEPAGED_COUNTERS.contains(&k.as_str()));
    MmSettings {
        zswap: dir_values(Path::new("/sys/module/zswap/parameters")),
        numa_balancing: read_trimmed("/proc/sys/kernel/numa_balancing").unwrap_or_default(),
        khugepaged,
        damon: damon(),
    }
}
