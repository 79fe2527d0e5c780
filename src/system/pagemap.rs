//! Proof of backing: how much of a buffer sits in folios of at least a given size.
//!
//! As root, /proc/self/pagemap gives each page's PFN and /proc/kpageflags tells compound
//! heads and tails (KPF_COMPOUND_HEAD = 15, KPF_COMPOUND_TAIL = 16, KPF_THP = 22; see
//! Documentation/admin-guide/mm/pagemap.rst), so the folio size of every page is known
//! exactly, mTHP included. Without root the PFNs read as zero, and the fallback is
//! /proc/self/smaps' AnonHugePages, which only counts PMD-mapped THPs.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

const PAGE: u64 = 4096;
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_PFN_MASK: u64 = (1 << 55) - 1;
const KPF_COMPOUND_HEAD: u64 = 1 << 15;
const KPF_COMPOUND_TAIL: u64 = 1 << 16;
const KPF_HUGE: u64 = 1 << 17;
const KPF_THP: u64 = 1 << 22;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    /// Share of the range's pages that are in a folio of at least the asked size.
    pub fraction: f64,
    pub pages: u64,
    pub present: u64,
    pub swapped: u64,
    /// Folio size in pages -> number of pages of the range in folios of that size.
    pub by_folio_pages: std::collections::BTreeMap<u64, u64>,
    /// `kpageflags` or `smaps`.
    pub method: &'static str,
}

/// Measures the share of `[addr, addr+len)` in folios of at least `folio_bytes`.
pub fn coverage(addr: usize, len: usize, folio_bytes: u64) -> std::io::Result<Coverage> {
    match kpageflags_coverage(addr, len, folio_bytes) {
        Ok(Some(c)) => Ok(c),
        Ok(None) | Err(_) => smaps_coverage(addr, len, folio_bytes),
    }
}

/// Exact per-folio coverage; `None` when PFNs are hidden (not root).
pub fn kpageflags_coverage(
    addr: usize,
    len: usize,
    folio_bytes: u64,
) -> std::io::Result<Option<Coverage>> {
    let pagemap = File::open("/proc/self/pagemap")?;
    let kpageflags = match File::open("/proc/kpageflags") {
        Ok(f) => f,
        Err(_) => return Ok(None),
    };
    let npages = (len as u64).div_ceil(PAGE);
    let mut entries = vec![0u8; npages as usize * 8];
    pagemap.read_exact_at(&mut entries, (addr as u64 / PAGE) * 8)?;
    let want_pages = (folio_bytes / PAGE).max(1);
    let mut cov = Coverage {
        pages: npages,
        method: "kpageflags",
        ..Coverage::default()
    };
    let mut folio_cache: HashMap<u64, u64> = HashMap::new();
    let mut covered = 0u64;
    let mut any_pfn = false;
    for chunk in entries.chunks_exact(8) {
        let e = u64::from_ne_bytes(chunk.try_into().unwrap());
        if e & PM_SWAPPED != 0 {
            cov.swapped += 1;
        }
        if e & PM_PRESENT == 0 {
            continue;
        }
        cov.present += 1;
        let pfn = e & PM_PFN_MASK;
        if pfn == 0 {
            continue;
        }
        any_pfn = true;
        let size = folio_pages(&kpageflags, pfn, &mut folio_cache)?;
        *cov.by_folio_pages.entry(size).or_default() += 1;
        if size >= want_pages {
            covered += 1;
        }
    }
    if !any_pfn && cov.present > 0 {
        return Ok(None);
    }
    cov.fraction = if npages == 0 {
        0.0
    } else {
        covered as f64 / npages as f64
    };
    Ok(Some(cov))
}

fn flags_at(kpageflags: &File, pfn: u64) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    kpageflags.read_exact_at(&mut b, pfn * 8)?;
    Ok(u64::from_ne_bytes(b))
}

/// Number of pages in the folio holding `pfn`: find the head, count the tails after it.
fn folio_pages(kpageflags: &File, pfn: u64, cache: &mut HashMap<u64, u64>) -> std::io::Result<u64> {
    let flags = flags_at(kpageflags, pfn)?;
    if flags & (KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL) == 0 {
        return Ok(1);
    }
    // Only THP and hugetlb folios count as huge; other compound pages (slab, ...) cannot
    // back an anonymous buffer, but check rather than assume.
    let mut head = pfn;
    if flags & KPF_COMPOUND_TAIL != 0 {
        // Folios are naturally aligned, so the head is at most 2^18 pages back (1 GiB);
        // walk back in blocks.
        let mut found = None;
        let mut p = pfn;
        while found.is_none() && pfn - p < (1 << 18) && p > 0 {
            let start = p.saturating_sub(512);
            let n = (p - start) as usize;
            let mut buf = vec![0u8; n * 8];
            kpageflags.read_exact_at(&mut buf, start * 8)?;
            for i in (0..n).rev() {
                let f = u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
                if f & KPF_COMPOUND_HEAD != 0 {
                    found = Some(start + i as u64);
                    break;
                }
            }
            p = start;
        }
        match found {
            Some(h) => head = h,
            None => return Ok(1),
        }
    }
    if let Some(&n) = cache.get(&head) {
        return Ok(n);
    }
    let head_flags = flags_at(kpageflags, head)?;
    if head_flags & (KPF_THP | KPF_HUGE) == 0 {
        cache.insert(head, 1);
        return Ok(1);
    }
    let mut n = 1u64;
    loop {
        let mut buf = vec![0u8; 512 * 8];
        let got = kpageflags.read_at(&mut buf, (head + n) * 8)?;
        if got == 0 {
            break;
        }
        let mut ended = false;
        for c in buf[..got - got % 8].chunks_exact(8) {
            let f = u64::from_ne_bytes(c.try_into().unwrap());
            if f & KPF_COMPOUND_TAIL == 0 {
                ended = true;
                break;
            }
            n += 1;
        }
        if ended || n >= (1 << 18) {
            break;
        }
    }
    cache.insert(head, n);
    Ok(n)
}

/// AnonHugePages of the VMAs overlapping the range, scaled by the overlap. Only PMD
/// THPs are visible this way, so a folio size below the PMD size reads as 0.
pub fn smaps_coverage(addr: usize, len: usize, folio_bytes: u64) -> std::io::Result<Coverage> {
    let text = std::fs::read_to_string("/proc/self/smaps")?;
    let (start, end) = (addr as u64, (addr + len) as u64);
    let pmd = super::thp::pmd_size();
    let mut huge_bytes = 0f64;
    let mut hugetlb_bytes = 0f64;
    let mut cur: Option<(u64, u64)> = None;
    for line in text.lines() {
        if let Some((range, _)) = line.split_once(' ') {
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                    cur = (a < end && b > start).then_some((a, b));
                    continue;
                }
            }
        }
        let Some((a, b)) = cur else { continue };
        let overlap = (b.min(end) - a.max(start)) as f64 / (b - a) as f64;
        let kb = |l: &str| -> f64 {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                * 1024.0
        };
        if line.starts_with("AnonHugePages:") {
            huge_bytes += kb(line) * overlap;
        } else if line.starts_with("Private_Hugetlb:") || line.starts_with("Shared_Hugetlb:") {
            hugetlb_bytes += kb(line) * overlap;
        }
    }
    let counted = if folio_bytes <= pmd {
        huge_bytes + hugetlb_bytes
    } else {
        0.0
    };
    let fraction = if folio_bytes <= PAGE {
        1.0
    } else {
        (counted / len as f64).min(1.0)
    };
    Ok(Coverage {
        fraction,
        pages: (len as u64).div_ceil(PAGE),
        method: "smaps",
        ..Coverage::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_pages_count_as_order_zero() {
        let len = 64 * 4096;
        let mut v = vec![1u8; len];
        v[0] = 2;
        let c = coverage(v.as_ptr() as usize, len, 4096).unwrap();
        assert!(
            c.fraction >= 0.99,
            "every present page is in a folio of >= 4K: {c:?}"
        );
    }
}
