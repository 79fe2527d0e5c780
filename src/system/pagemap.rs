//! Proof of backing: how much of a buffer sits in folios of at least a given size.
//!
//! As root, /proc/self/pagemap gives each page's PFN and /proc/kpageflags tells compound
//! heads and tails (KPF_COMPOUND_HEAD = 15, KPF_COMPOUND_TAIL = 16, KPF_THP = 22; see
//! Documentation/admin-guide/mm/pagemap.rst), so the folio size of every page is known
//! exactly, mTHP included. Without root the PFNs read as zero, and the fallback is
//! /proc/self/smaps' AnonHugePages, which only counts PMD-mapped THPs.
//!
//! Pages here are base pages of the running kernel (crate::pages::base_page: 4, 16 or
//! 64 KiB): pagemap has one entry per base page and a PFN numbers base pages, so folio
//! sizes are counted in base pages; the pure functions take the page size.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_PFN_MASK: u64 = (1 << 55) - 1;
const KPF_COMPOUND_HEAD: u64 = 1 << 15;
const KPF_COMPOUND_TAIL: u64 = 1 << 16;
const KPF_HUGE: u64 = 1 << 17;
const KPF_THP: u64 = 1 << 22;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    /// Share of the range's base pages that are in a folio of at least the asked size.
    pub fraction: f64,
    /// Base pages of the range; `present` and `swapped` count base pages too.
    pub pages: u64,
    pub present: u64,
    pub swapped: u64,
    /// Folio size in base pages -> number of base pages of the range in folios of that
    /// size.
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
    let page = crate::pages::base_page() as u64;
    let npages = crate::pages::pages_spanned(addr as u64, len as u64, page);
    let mut entries = vec![0u8; npages as usize * 8];
    pagemap.read_exact_at(
        &mut entries,
        crate::pages::pagemap_offset(addr as u64, page),
    )?;
    let entries: Vec<u64> = entries
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().expect("8-byte chunk")))
        .collect();
    coverage_of_entries(&entries, &kpageflags, folio_bytes, page)
}

/// One page of a mapping as pagemap and kpageflags see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageState {
    pub present: bool,
    pub swapped: bool,
    /// 0 where PFNs are hidden (not root).
    pub pfn: u64,
    /// Base pages in the folio holding the page; 0 when not present or unknown.
    pub folio_pages: u64,
}

/// Reads single pages' folios, cheaply enough to look at the page a disturber acts on
/// before and after each action (a few small preads each).
pub struct FolioProbe {
    pagemap: File,
    kpageflags: Option<File>,
}

impl FolioProbe {
    pub fn open() -> std::io::Result<FolioProbe> {
        Ok(FolioProbe {
            pagemap: File::open("/proc/self/pagemap")?,
            kpageflags: File::open("/proc/kpageflags").ok(),
        })
    }

    /// Whether folio sizes can be read (root: kpageflags, and PFNs in pagemap).
    pub fn sees_folios(&self) -> bool {
        self.kpageflags.is_some()
    }

    pub fn page(&self, addr: usize) -> std::io::Result<PageState> {
        let mut b = [0u8; 8];
        let page = crate::pages::base_page() as u64;
        self.pagemap
            .read_exact_at(&mut b, crate::pages::pagemap_offset(addr as u64, page))?;
        let e = u64::from_ne_bytes(b);
        let mut state = PageState {
            present: e & PM_PRESENT != 0,
            swapped: e & PM_SWAPPED != 0,
            pfn: if e & PM_PRESENT != 0 {
                e & PM_PFN_MASK
            } else {
                0
            },
            folio_pages: 0,
        };
        if let (true, Some(flags)) = (state.pfn != 0, &self.kpageflags) {
            state.folio_pages = folio_pages(flags, state.pfn, &mut HashMap::new())?;
        }
        Ok(state)
    }
}

/// Where the flags of each PFN come from: /proc/kpageflags, or a table in tests.
pub trait PageFlags {
    /// Reads the flags of `out.len()` PFNs from `first_pfn` on; returns how many were
    /// read (fewer at the end of memory).
    fn read_flags(&self, first_pfn: u64, out: &mut [u64]) -> std::io::Result<usize>;
}

impl PageFlags for File {
    fn read_flags(&self, first_pfn: u64, out: &mut [u64]) -> std::io::Result<usize> {
        let mut buf = vec![0u8; out.len() * 8];
        let got = self.read_at(&mut buf, first_pfn * 8)? / 8;
        for (o, c) in out.iter_mut().zip(buf[..got * 8].chunks_exact(8)) {
            *o = u64::from_ne_bytes(c.try_into().expect("8-byte chunk"));
        }
        Ok(got)
    }
}

impl PageFlags for [u64] {
    fn read_flags(&self, first_pfn: u64, out: &mut [u64]) -> std::io::Result<usize> {
        let from = (first_pfn as usize).min(self.len());
        let n = out.len().min(self.len() - from);
        out[..n].copy_from_slice(&self[from..from + n]);
        Ok(n)
    }
}

/// Coverage of the pages whose /proc/self/pagemap entries are `entries`, in folios of
/// at least `folio_bytes`, with base pages of `page` bytes; `None` when every present
/// page's PFN is hidden (not root).
pub fn coverage_of_entries(
    entries: &[u64],
    flags: &(impl PageFlags + ?Sized),
    folio_bytes: u64,
    page: u64,
) -> std::io::Result<Option<Coverage>> {
    let npages = entries.len() as u64;
    let want_pages = (folio_bytes / page).max(1);
    let mut cov = Coverage {
        pages: npages,
        method: "kpageflags",
        ..Coverage::default()
    };
    let mut folio_cache: HashMap<u64, u64> = HashMap::new();
    let mut covered = 0u64;
    let mut any_pfn = false;
    for &e in entries {
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
        let size = folio_pages(flags, pfn, &mut folio_cache)?;
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

fn flags_at(flags: &(impl PageFlags + ?Sized), pfn: u64) -> std::io::Result<u64> {
    let mut f = [0u64; 1];
    if flags.read_flags(pfn, &mut f)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("/proc/kpageflags has no entry for PFN {pfn}"),
        ));
    }
    Ok(f[0])
}

/// Largest folio: 2^18 base pages (1 GiB with 4 KiB pages; arm64's largest hugetlb
/// sizes, 1 GiB with 16 KiB and 16 GiB with 64 KiB pages, are no more pages). Folios
/// are naturally aligned, so the head of a tail page is at most this many pages back.
const MAX_FOLIO_PAGES: u64 = 1 << 18;

/// Number of pages in the folio holding `pfn`: find the head, count the tails after it.
fn folio_pages(
    flags: &(impl PageFlags + ?Sized),
    pfn: u64,
    cache: &mut HashMap<u64, u64>,
) -> std::io::Result<u64> {
    let own = flags_at(flags, pfn)?;
    if own & (KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL) == 0 {
        return Ok(1);
    }
    let head = if own & KPF_COMPOUND_TAIL != 0 {
        match head_before(flags, pfn)? {
            Some(h) => h,
            None => return Ok(1),
        }
    } else {
        pfn
    };
    if let Some(&n) = cache.get(&head) {
        return Ok(n);
    }
    // Only THP and hugetlb folios count as huge; other compound pages (slab, ...) cannot
    // back an anonymous buffer, but check rather than assume.
    if flags_at(flags, head)? & (KPF_THP | KPF_HUGE) == 0 {
        cache.insert(head, 1);
        return Ok(1);
    }
    let mut n = 1u64;
    let mut block = vec![0u64; 512];
    'count: while n < MAX_FOLIO_PAGES {
        let got = flags.read_flags(head + n, &mut block)?;
        if got == 0 {
            break;
        }
        for &f in &block[..got] {
            if f & KPF_COMPOUND_TAIL == 0 {
                break 'count;
            }
            n += 1;
        }
    }
    cache.insert(head, n);
    Ok(n)
}

/// The compound head before tail page `pfn`, read back in blocks of 512 flags.
fn head_before(flags: &(impl PageFlags + ?Sized), pfn: u64) -> std::io::Result<Option<u64>> {
    let mut block = vec![0u64; 512];
    let mut p = pfn;
    while pfn - p < MAX_FOLIO_PAGES && p > 0 {
        let start = p.saturating_sub(512);
        let n = (p - start) as usize;
        let got = flags.read_flags(start, &mut block[..n])?;
        // The first page back that is no tail must be the head; anything else means
        // the folio changed under us.
        if let Some(i) = block[..got]
            .iter()
            .rposition(|f| f & KPF_COMPOUND_TAIL == 0)
        {
            return Ok((block[i] & KPF_COMPOUND_HEAD != 0).then_some(start + i as u64));
        }
        if got < n {
            return Ok(None);
        }
        p = start;
    }
    Ok(None)
}

/// AnonHugePages of the VMAs overlapping the range, scaled by the overlap. Only PMD
/// THPs are visible this way, so a folio size below the PMD size reads as 0; for
/// base-page folios the resident pages (Rss) count.
pub fn smaps_coverage(addr: usize, len: usize, folio_bytes: u64) -> std::io::Result<Coverage> {
    let text = std::fs::read_to_string("/proc/self/smaps")?;
    Ok(coverage_of_smaps(
        &text,
        addr,
        len,
        folio_bytes,
        crate::pages::pmd_size(),
        crate::pages::base_page() as u64,
    ))
}

/// smaps_coverage over the text of /proc/self/smaps.
pub fn coverage_of_smaps(
    text: &str,
    addr: usize,
    len: usize,
    folio_bytes: u64,
    pmd: u64,
    page: u64,
) -> Coverage {
    let (start, end) = (addr as u64, (addr + len) as u64);
    let (mut huge_bytes, mut hugetlb_bytes, mut rss_bytes) = (0f64, 0f64, 0f64);
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
        } else if line.starts_with("Rss:") {
            rss_bytes += kb(line) * overlap;
        }
    }
    let counted = if folio_bytes <= page {
        rss_bytes + hugetlb_bytes
    } else if folio_bytes <= pmd {
        huge_bytes + hugetlb_bytes
    } else {
        0.0
    };
    Coverage {
        fraction: if len == 0 {
            0.0
        } else {
            (counted / len as f64).min(1.0)
        },
        pages: crate::pages::pages_spanned(addr as u64, len as u64, page),
        method: "smaps",
        ..Coverage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests' synthetic memory has 4 KiB pages and 2 MiB PMDs unless they say so.
    const PAGE: u64 = 4096;
    const PMD_PAGES: u64 = 512;

    /// A physical memory of `pfns` pages in which a folio of 2^order pages sits at
    /// `head`, another of the same order right after it (so that counting tails must
    /// stop at the next head), and order-0 pages everywhere else.
    fn memory(pfns: usize, head: u64, order: u32) -> Vec<u64> {
        let mut flags = vec![0u64; pfns];
        let n = 1u64 << order;
        if order > 0 {
            for first in [head, head + n] {
                flags[first as usize] = KPF_COMPOUND_HEAD | KPF_THP;
                for t in first + 1..first + n {
                    flags[t as usize] = KPF_COMPOUND_TAIL | KPF_THP;
                }
            }
        }
        flags
    }

    fn present(pfn: u64) -> u64 {
        PM_PRESENT | pfn
    }

    #[test]
    fn every_folio_order_from_4k_to_2m_is_measured_from_head_and_tail_flags() {
        for order in 0..=9u32 {
            let n = 1u64 << order;
            // Naturally aligned, and not at PFN 0, with pages before and after.
            let head = 4 * PMD_PAGES;
            let flags = memory(8 * PMD_PAGES as usize, head, order);
            // A buffer mapping the first folio's pages in reverse order (tails before the
            // head), then one order-0 page.
            let mut entries: Vec<u64> = (head..head + n).rev().map(present).collect();
            entries.push(present(PMD_PAGES));
            let c = coverage_of_entries(&entries, flags.as_slice(), n * PAGE, PAGE)
                .unwrap()
                .unwrap();
            let mut want = std::collections::BTreeMap::from([(n, n)]);
            *want.entry(1).or_default() += 1;
            assert_eq!(c.by_folio_pages, want, "order {order}");
            assert_eq!(c.present, n + 1);
            let expect = n as f64 / (n + 1) as f64;
            let expect = if order == 0 { 1.0 } else { expect };
            assert!((c.fraction - expect).abs() < 1e-12, "order {order}: {c:?}");
            // Asking for the next size up: nothing of this folio counts.
            let bigger = coverage_of_entries(&entries, flags.as_slice(), 2 * n * PAGE, PAGE)
                .unwrap()
                .unwrap();
            assert_eq!(bigger.fraction, 0.0, "order {order} asked at {}", 2 * n);
        }
    }

    #[test]
    fn with_16k_and_64k_base_pages_a_pmd_thp_is_counted_in_those_pages() {
        // 16 KiB pages: a 32 MiB PMD THP is 2048 base pages; 64 KiB: 512 MiB is 8192.
        for (page, pmd) in [(16u64 << 10, 32u64 << 20), (64 << 10, 512 << 20)] {
            let n = pmd / page;
            let order = n.ilog2();
            let head = 2 * n;
            let flags = memory(6 * n as usize, head, order);
            let entries: Vec<u64> = (head..head + n).map(present).collect();
            let c = coverage_of_entries(&entries, flags.as_slice(), pmd, page)
                .unwrap()
                .unwrap();
            assert_eq!(c.fraction, 1.0, "{page}: {c:?}");
            assert_eq!(c.by_folio_pages, std::collections::BTreeMap::from([(n, n)]));
            // Read with x86-64's 4 KiB the same folio would look 4 or 16 times smaller
            // than a PMD: the page size is what makes it a PMD THP.
            let wrong = coverage_of_entries(&entries, flags.as_slice(), pmd, 4096)
                .unwrap()
                .unwrap();
            assert_eq!(wrong.fraction, 0.0, "{page}");
            // A 64 KiB mTHP on a 16 KiB kernel is 4 base pages.
            if page == 16 << 10 {
                let flags = memory(64, 16, 2);
                let entries: Vec<u64> = (16..20).map(present).collect();
                let c = coverage_of_entries(&entries, flags.as_slice(), 64 << 10, page)
                    .unwrap()
                    .unwrap();
                assert_eq!((c.fraction, c.pages), (1.0, 4));
            }
        }
        // smaps: Rss counted as base-page folios of 16 KiB, AnonHugePages as the PMD.
        let (a, mb) = (0x4000_0000u64, 1u64 << 20);
        let text = smaps((a, a + 64 * mb), 65536, 32768);
        let c = coverage_of_smaps(
            &text,
            a as usize,
            64 * mb as usize,
            32 * mb,
            32 * mb,
            16 << 10,
        );
        assert_eq!((c.fraction, c.pages), (0.5, 4096), "{c:?}");
        let c = coverage_of_smaps(
            &text,
            a as usize,
            64 * mb as usize,
            16 << 10,
            32 * mb,
            16 << 10,
        );
        assert_eq!(c.fraction, 1.0, "{c:?}");
    }

    #[test]
    fn a_compound_page_that_is_no_thp_counts_as_a_base_page() {
        let mut flags = memory(2048, 512, 4);
        for f in &mut flags[512..528] {
            *f &= !KPF_THP;
        }
        let entries: Vec<u64> = (512..528).map(present).collect();
        let c = coverage_of_entries(&entries, flags.as_slice(), 16 * PAGE, PAGE)
            .unwrap()
            .unwrap();
        assert_eq!(c.fraction, 0.0, "{c:?}");
        assert_eq!(c.by_folio_pages.get(&1), Some(&16));
    }

    #[test]
    fn hidden_pfns_give_no_kpageflags_answer_and_swapped_pages_are_counted() {
        let flags = memory(2048, 512, 9);
        assert_eq!(
            coverage_of_entries(&[PM_PRESENT, PM_PRESENT], flags.as_slice(), 2 << 20, PAGE)
                .unwrap(),
            None
        );
        let c = coverage_of_entries(&[PM_SWAPPED, present(512)], flags.as_slice(), 2 << 20, PAGE)
            .unwrap()
            .unwrap();
        assert_eq!((c.swapped, c.present), (1, 1));
        assert_eq!(c.fraction, 0.5);
    }

    fn smaps(vma: (u64, u64), rss_kb: u64, anon_huge_kb: u64) -> String {
        format!(
            "{:x}-{:x} rw-p 00000000 00:00 0\nSize: {} kB\nRss: {rss_kb} kB\nAnonHugePages: {anon_huge_kb} kB\nPrivate_Hugetlb: 0 kB\n\
             7f0000000000-7f0000400000 rw-p 00000000 00:00 0\nRss: 4096 kB\nAnonHugePages: 4096 kB\n",
            vma.0,
            vma.1,
            (vma.1 - vma.0) / 1024,
        )
    }

    #[test]
    fn smaps_coverage_reads_the_overlapping_vma_only() {
        let (a, mb) = (0x5000_0000u64, 1u64 << 20);
        let pmd = 2 * mb;
        // The buffer is the whole 4 MiB VMA, half of it in a PMD THP.
        let text = smaps((a, a + 4 * mb), 4096, 2048);
        let c = coverage_of_smaps(&text, a as usize, 4 * mb as usize, pmd, pmd, PAGE);
        assert_eq!(c.fraction, 0.5, "{c:?}");
        // The buffer is half of an 8 MiB VMA: its share of the VMA's AnonHugePages.
        let text = smaps((a, a + 8 * mb), 8192, 4096);
        let c = coverage_of_smaps(&text, a as usize, 4 * mb as usize, pmd, pmd, PAGE);
        assert_eq!(c.fraction, 0.5, "{c:?}");
        // A PMD THP is a folio of at least 64 KiB; a folio above the PMD size is never
        // seen by smaps.
        let c = coverage_of_smaps(&text, a as usize, 4 * mb as usize, 64 << 10, pmd, PAGE);
        assert!(
            c.fraction > 0.0,
            "64K folios count where AnonHugePages does"
        );
        let c = coverage_of_smaps(&text, a as usize, 4 * mb as usize, 2 * pmd, pmd, PAGE);
        assert_eq!(c.fraction, 0.0);
    }

    #[test]
    fn smaps_coverage_of_base_pages_is_what_is_resident() {
        let (a, mb) = (0x5000_0000u64, 1u64 << 20);
        let text = smaps((a, a + 4 * mb), 1024, 0);
        let c = coverage_of_smaps(&text, a as usize, 4 * mb as usize, PAGE, 2 * mb, PAGE);
        assert_eq!(
            c.fraction, 0.25,
            "a quarter of the pages are resident: {c:?}"
        );
        let c = coverage_of_smaps("", a as usize, 4 * mb as usize, PAGE, 2 * mb, PAGE);
        assert_eq!(c.fraction, 0.0, "no VMA, nothing resident");
    }

    #[test]
    fn a_split_thp_is_seen_split_in_kpageflags() {
        let test = "a_split_thp_is_seen_split_in_kpageflags";
        if !crate::test_support::require_root(test, "/proc/kpageflags") {
            return;
        }
        let pmd = crate::system::thp::pmd_size();
        let pmd_pages = pmd / crate::pages::base_page() as u64;
        let b = crate::buffer::IoBuffers::new(
            crate::workload::Backing::Thp,
            crate::workload::Share::Private,
            1,
            4096,
            false,
        )
        .unwrap();
        let c = kpageflags_coverage(b.base() as usize, b.len(), pmd)
            .unwrap()
            .unwrap();
        assert!(c.fraction >= 0.99, "{c:?}");
        assert_eq!(
            c.by_folio_pages.keys().collect::<Vec<_>>(),
            vec![&pmd_pages]
        );
        // MADV_COLD on one page of the THP splits it (KERNEL-FACTS.md).
        let page = crate::pages::base_page();
        let last = b.base() as usize + b.len() - page;
        // SAFETY: the last page of the buffer's mapping.
        assert_eq!(
            unsafe { libc::madvise(last as *mut libc::c_void, page, libc::MADV_COLD) },
            0
        );
        let c = kpageflags_coverage(b.base() as usize, b.len(), pmd)
            .unwrap()
            .unwrap();
        assert_eq!(c.fraction, 0.0, "{c:?}");
        assert!(!c.by_folio_pages.contains_key(&pmd_pages), "{c:?}");
    }
}
