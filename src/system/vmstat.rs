//! /proc/vmstat snapshots and the deltas that prove what happened during a run.
//!
//! /proc/vmstat's thp_split_page, thp_swpout and thp_deferred_split_page count PMD-sized
//! folios only (mm/huge_memory.c, mm/page_io.c check the order); what happens to an mTHP
//! folio is counted per size in /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/
//! stats/ (6.9+), which the snapshot takes in as `mthp_<size>kB_<stat>`.

use std::collections::BTreeMap;

/// Counters kept in results: everything about THP, swap, compaction and faults.
pub fn is_tracked(name: &str) -> bool {
    ["thp_", "pswp", "swp", "zswp", "compact_", MTHP_PREFIX]
        .iter()
        .any(|p| name.starts_with(p))
        || name == "pgfault"
        || name == "pgmajfault"
}

const MTHP_PREFIX: &str = "mthp_";

/// Tracked values that are levels, not event counts (their delta is a change of level):
/// the per-size mTHP nr_anon and nr_anon_partially_mapped.
pub fn is_gauge(name: &str) -> bool {
    name.starts_with(MTHP_PREFIX)
        && (name.ends_with("_nr_anon") || name.ends_with("_nr_anon_partially_mapped"))
}
const MTHP_STATS: &str = "/sys/kernel/mm/transparent_hugepage";

#[derive(Debug, Clone, Default)]
pub struct Vmstat(pub BTreeMap<String, u64>);

/// The per-size mTHP counters under `dir`: hugepages-<size>kB/stats/<stat> as
/// `mthp_<size>kB_<stat>`. Kernels before 6.9 have none.
fn mthp_stats(dir: &std::path::Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(sizes) = std::fs::read_dir(dir) else {
        return out;
    };
    for size in sizes.flatten() {
        let name = size.file_name().to_string_lossy().into_owned();
        let Some(size_kb) = name.strip_prefix("hugepages-") else {
            continue;
        };
        let Ok(stats) = std::fs::read_dir(size.path().join("stats")) else {
            continue;
        };
        for stat in stats.flatten() {
            let value = std::fs::read_to_string(stat.path())
                .ok()
                .and_then(|v| v.trim().parse().ok());
            if let Some(v) = value {
                let stat = stat.file_name().to_string_lossy().into_owned();
                out.insert(format!("{MTHP_PREFIX}{size_kb}_{stat}"), v);
            }
        }
    }
    out
}

impl Vmstat {
    pub fn parse(text: &str) -> Vmstat {
        Vmstat(
            text.lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    Some((k.to_string(), v.trim().parse().ok()?))
                })
                .collect(),
        )
    }

    pub fn snapshot() -> std::io::Result<Vmstat> {
        let mut v = Vmstat::parse(&std::fs::read_to_string("/proc/vmstat")?);
        v.0.extend(mthp_stats(std::path::Path::new(MTHP_STATS)));
        Ok(v)
    }

    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// The change of every tracked counter from `before` to `self`: zeros included for
    /// /proc/vmstat, so that "did not move" is visible; the per-size mTHP counters (18
    /// for each of up to 9 sizes) only where they moved.
    pub fn delta_since(&self, before: &Vmstat) -> BTreeMap<String, i64> {
        self.0
            .iter()
            .filter(|(k, _)| is_tracked(k))
            .map(|(k, &after)| (k.clone(), after as i64 - before.get(k) as i64))
            .filter(|(k, d)| *d != 0 || !k.starts_with(MTHP_PREFIX))
            .collect()
    }
}

/// Whether counter `name` is `pattern`, where a `*` in the pattern stands for any text
/// (`mthp_*_split` is the split count of every mTHP size).
pub fn counter_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_keeps_tracked_counters_only() {
        let a = Vmstat::parse("nr_free_pages 10\nthp_split_page 3\npswpout 100\npgfault 7\n");
        let b = Vmstat::parse("nr_free_pages 99\nthp_split_page 5\npswpout 100\npgfault 9\n");
        let d = b.delta_since(&a);
        assert_eq!(d.get("thp_split_page"), Some(&2));
        assert_eq!(d.get("pswpout"), Some(&0));
        assert_eq!(d.get("pgfault"), Some(&2));
        assert!(!d.contains_key("nr_free_pages"));
    }

    #[test]
    fn mthp_stats_are_read_per_size_and_kept_only_where_they_moved() {
        let dir = tempfile::tempdir().unwrap();
        for (size, split) in [("64kB", "3"), ("16kB", "0")] {
            let stats = dir.path().join(format!("hugepages-{size}/stats"));
            std::fs::create_dir_all(&stats).unwrap();
            std::fs::write(stats.join("split"), format!("{split}\n")).unwrap();
            std::fs::write(stats.join("swpout"), "7\n").unwrap();
        }
        // Not a size directory: ignored.
        std::fs::write(dir.path().join("enabled"), "[madvise]\n").unwrap();
        let before = Vmstat(mthp_stats(dir.path()));
        assert_eq!(before.get("mthp_64kB_split"), 3);
        assert_eq!(before.get("mthp_16kB_swpout"), 7);
        assert_eq!(before.0.len(), 4);
        let mut after = before.clone();
        after.0.insert("mthp_64kB_split".into(), 5);
        let d = after.delta_since(&before);
        assert_eq!(d.get("mthp_64kB_split"), Some(&2));
        assert!(
            !d.contains_key("mthp_16kB_swpout"),
            "unmoved mTHP counters are left out"
        );
    }

    #[test]
    fn only_the_mthp_anon_levels_are_gauges() {
        assert!(is_gauge("mthp_64kB_nr_anon"));
        assert!(is_gauge("mthp_64kB_nr_anon_partially_mapped"));
        assert!(!is_gauge("mthp_64kB_split"));
        assert!(!is_gauge("thp_split_page"));
    }

    #[test]
    fn counter_patterns_match_every_size() {
        assert!(counter_matches("mthp_*_split", "mthp_64kB_split"));
        assert!(!counter_matches("mthp_*_split", "mthp_64kB_split_failed"));
        assert!(!counter_matches("mthp_*_split", "mthp_split"));
        assert!(counter_matches("thp_split_page", "thp_split_page"));
        assert!(!counter_matches("thp_split_page", "thp_split_page_failed"));
    }

    #[test]
    fn live_vmstat_has_thp_counters() {
        let v = Vmstat::snapshot().unwrap();
        assert!(
            v.0.contains_key("thp_fault_alloc"),
            "no thp_fault_alloc in /proc/vmstat"
        );
    }
}
