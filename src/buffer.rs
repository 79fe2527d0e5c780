//! I/O buffers with a requested backing (PMD THP, mTHP, base pages, hugetlb), mapped
//! aligned to the folio size, madvise'd and prefaulted, with proof of what backs them.
//!
//! Layout. `private`: thread t owns `[t*R, (t+1)*R)` with R = bs rounded up to the
//! folio size, so each thread's I/O lands in its own folios. `shared`: the buffer is
//! `threads*bs` rounded up to the folio size and cut into chunks (a base page, or larger
//! when bs would need more than IOV_MAX chunks); chunk j of thread t's I/O is chunk
//! `j*threads + t` of the buffer, so every thread pins the same folios through
//! distinct subpages: the situation the 2011 tail-page refcounting fix was about.

use anyhow::{bail, Context, Result};

use crate::system::pagemap::{self, Coverage};
use crate::system::KnobGuard;
use crate::workload::{Backing, Share};

const IOV_MAX: usize = 1024;

pub use crate::aligned::AlignedBuf;

/// One contiguous piece of a thread's I/O: `len` bytes at `offset` into the mapping,
/// carrying the bytes at `io_offset` into the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub offset: usize,
    pub len: usize,
    pub io_offset: usize,
}

pub struct IoBuffers {
    base: *mut u8,
    len: usize,
    pub backing: Backing,
    pub share: Share,
    pub folio_bytes: u64,
    /// Per thread, the pieces its I/O of `bs` bytes lands in.
    pub segments: Vec<Vec<Segment>>,
    /// mTHP knobs changed for this buffer; restored after the buffer is unmapped.
    _knobs: Vec<KnobGuard>,
}

// SAFETY: the mapping is plain memory; threads only touch their own segments, and the
// kernel (direct I/O, madvise) is what the benchmark is about.
unsafe impl Send for IoBuffers {}
unsafe impl Sync for IoBuffers {}

impl IoBuffers {
    pub fn new(
        backing: Backing,
        share: Share,
        threads: usize,
        bs: usize,
        per_page_iovecs: bool,
    ) -> Result<IoBuffers> {
        Self::new_placed(backing, share, threads, bs, per_page_iovecs, &|_| Ok(()))
    }

    /// As `new`, with `place` called on the mapping before it is faulted (NUMA policy).
    pub fn new_placed(
        backing: Backing,
        share: Share,
        threads: usize,
        bs: usize,
        per_page_iovecs: bool,
        place: &dyn Fn(&IoBuffers) -> Result<()>,
    ) -> Result<IoBuffers> {
        let pmd = crate::pages::pmd_size() as usize;
        let folio = folio_size(backing, crate::pages::base_page(), pmd);
        let mut knobs = Vec::new();
        match backing {
            Backing::Thp => {
                crate::system::thp::pmd_thp_usable().map_err(anyhow::Error::msg)?;
            }
            Backing::Mthp(sz) => {
                if !crate::system::is_root() {
                    bail!("buffer = mthp:{} needs root: the per-size knob /sys/kernel/mm/transparent_hugepage/hugepages-{}kB/enabled must be set, and proving the folio size reads /proc/kpageflags", crate::units::format_size(sz), sz / 1024);
                }
                knobs = crate::system::thp::configure_mthp(sz)?;
            }
            Backing::Hugetlb => {
                knobs.extend(reserve_hugetlb(
                    layout(share, threads, bs, pmd, per_page_iovecs).1 / pmd,
                )?);
            }
            Backing::Base => {}
        }
        let (segments, len) = layout(share, threads, bs, folio, per_page_iovecs);
        let map_flags = libc::MAP_PRIVATE
            | libc::MAP_ANONYMOUS
            | if backing == Backing::Hugetlb {
                libc::MAP_HUGETLB
            } else {
                0
            };
        let map_len = if backing == Backing::Hugetlb {
            len
        } else {
            len + folio
        };
        // SAFETY: a fresh anonymous mapping; trimmed and owned below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                map_flags,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            if backing == Backing::Hugetlb {
                bail!(
                    "mmap(MAP_HUGETLB) of {} failed: {}; reserve huge pages first: echo {} > /proc/sys/vm/nr_hugepages (as root)",
                    crate::units::format_size(len as u64),
                    crate::system::errno_text(&e),
                    HugetlbPool::read().total_for(len.div_ceil(pmd))
                );
            }
            bail!(
                "mmap of {} bytes failed: {}",
                map_len,
                crate::system::errno_text(&e)
            );
        }
        let base = if backing == Backing::Hugetlb {
            raw as usize
        } else {
            // Trim to a folio-aligned start, so that every folio-sized block of the buffer
            // can be one folio.
            let start = (raw as usize).next_multiple_of(folio);
            let head = start - raw as usize;
            let tail = map_len - head - len;
            // SAFETY: both ranges lie inside the mapping just made.
            unsafe {
                if head > 0 {
                    libc::munmap(raw, head);
                }
                if tail > 0 {
                    libc::munmap((start + len) as *mut libc::c_void, tail);
                }
            }
            start
        } as *mut u8;
        let buffers = IoBuffers {
            base,
            len,
            backing,
            share,
            folio_bytes: folio as u64,
            segments,
            _knobs: knobs,
        };
        let advice = match backing {
            Backing::Thp | Backing::Mthp(_) => Some(libc::MADV_HUGEPAGE),
            Backing::Base => Some(libc::MADV_NOHUGEPAGE),
            Backing::Hugetlb => None,
        };
        if let Some(advice) = advice {
            // SAFETY: the range is our mapping.
            if unsafe { libc::madvise(base as *mut libc::c_void, len, advice) } != 0 {
                let e = std::io::Error::last_os_error();
                bail!(
                    "madvise({}) on the buffer failed: {}",
                    if advice == libc::MADV_HUGEPAGE {
                        "MADV_HUGEPAGE"
                    } else {
                        "MADV_NOHUGEPAGE"
                    },
                    crate::system::errno_text(&e)
                );
            }
        }
        place(&buffers)?;
        buffers.prefault();
        Ok(buffers)
    }

    /// Touches every page with a write, so that faults (and huge page allocation) happen
    /// now and not in the measured loop.
    pub fn prefault(&self) {
        for off in (0..self.len).step_by(crate::pages::base_page()) {
            // SAFETY: off < len, inside the mapping.
            unsafe { std::ptr::write_volatile(self.base.add(off), 0) };
        }
    }

    pub fn base(&self) -> *mut u8 {
        self.base
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Worker `t`'s part of the mapping, (offset, len), widened to whole folios. With
    /// `slots` segment sets per worker (a queued engine keeps one I/O in flight per
    /// slot), worker t owns sets t*slots..(t+1)*slots.
    pub fn thread_range(&self, t: usize, slots: usize) -> (usize, usize) {
        let folio = self.folio_bytes as usize;
        let sets = &self.segments[t * slots..(t + 1) * slots];
        let start = sets.iter().flatten().map(|s| s.offset).min().unwrap_or(0);
        let end = sets
            .iter()
            .flatten()
            .map(|s| s.offset + s.len)
            .max()
            .unwrap_or(0);
        let start = start / folio * folio;
        (start, end.next_multiple_of(folio).min(self.len) - start)
    }

    /// The iovecs of thread `t`'s I/O, in I/O order.
    pub fn iovecs(&self, t: usize) -> Vec<libc::iovec> {
        self.segments[t]
            .iter()
            .map(|s| libc::iovec {
                // SAFETY: segments lie inside the mapping (see layout()).
                iov_base: unsafe { self.base.add(s.offset) } as *mut libc::c_void,
                iov_len: s.len,
            })
            .collect()
    }

    pub fn coverage(&self) -> Result<Coverage> {
        if self.backing == Backing::Hugetlb {
            // MAP_HUGETLB either maps huge pages or fails; smaps confirms it.
            let mut c = pagemap::smaps_coverage(self.base as usize, self.len, self.folio_bytes)?;
            c.method = "smaps";
            return Ok(c);
        }
        pagemap::coverage(self.base as usize, self.len, self.folio_bytes)
            .context("reading /proc/self/pagemap")
    }
}

impl Drop for IoBuffers {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what new() kept.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

/// Makes sure `pages` default-size huge pages are free in the hugetlb pool: as root, the
/// pool is grown for the run (and shrunk back afterwards by the guard).
fn reserve_hugetlb(pages: usize) -> Result<Option<KnobGuard>> {
    let pool = HugetlbPool::read();
    let available = pool.available();
    if available >= pages {
        return Ok(None);
    }
    let want = pool.total_for(pages);
    if !crate::system::is_root() {
        bail!(
            "buffer = hugetlb needs {pages} free huge pages but the pool has {available} to spare ({} free, {} of them reserved by other mappings); grow it as root: echo {want} > /proc/sys/vm/nr_hugepages",
            pool.free, pool.reserved
        );
    }
    let guard = KnobGuard::set("/proc/sys/vm/nr_hugepages", &want.to_string())?;
    let now = crate::system::read_trimmed("/proc/sys/vm/nr_hugepages")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if now < want {
        bail!("asked the kernel for {want} huge pages, it found only {now} (memory too fragmented); try echo 1 > /proc/sys/vm/compact_memory");
    }
    Ok(guard)
}

/// The default-size hugetlb pool, from /proc/meminfo.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HugetlbPool {
    pub total: usize,
    pub free: usize,
    /// Free pages promised to mappings that have not faulted them yet (HugePages_Rsvd):
    /// free, but not ours to take.
    pub reserved: usize,
}

impl HugetlbPool {
    pub fn read() -> HugetlbPool {
        HugetlbPool::parse(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default())
    }

    pub fn parse(meminfo: &str) -> HugetlbPool {
        let field = |name: &str| -> usize {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        HugetlbPool {
            total: field("HugePages_Total:"),
            free: field("HugePages_Free:"),
            reserved: field("HugePages_Rsvd:"),
        }
    }

    /// Pages a new mapping can have.
    pub fn available(&self) -> usize {
        self.free.saturating_sub(self.reserved)
    }

    /// The pool size that leaves `pages` available: never less than it is now, so the
    /// remedy never shrinks a pool other processes use.
    pub fn total_for(&self, pages: usize) -> usize {
        self.total + pages.saturating_sub(self.available())
    }
}

/// The folio a backing asks for, in bytes: the PMD size, a base page, or the mTHP size.
pub fn folio_size(backing: Backing, page: usize, pmd: usize) -> usize {
    match backing {
        Backing::Thp | Backing::Hugetlb => pmd,
        Backing::Base => page,
        Backing::Mthp(sz) => sz as usize,
    }
}

/// Why a `shared` layout would not share: the threads must all put I/O into every
/// folio of the buffer, which fails when a chunk fills a folio (e.g. buffer = 4k, or
/// mthp:16K with a bs that needs 16 KiB chunks) or when there are more threads than
/// chunks per folio. None for layouts that share, and for private ones.
pub fn sharing_problem(
    backing: Backing,
    share: Share,
    threads: usize,
    bs: usize,
    per_page_iovecs: bool,
) -> Option<String> {
    sharing_problem_paged(
        backing,
        share,
        threads,
        bs,
        per_page_iovecs,
        crate::pages::base_page(),
        crate::pages::pmd_size() as usize,
    )
}

/// `sharing_problem` for a given base page and PMD size.
pub fn sharing_problem_paged(
    backing: Backing,
    share: Share,
    threads: usize,
    bs: usize,
    per_page_iovecs: bool,
    page: usize,
    pmd: usize,
) -> Option<String> {
    if share != Share::Shared || threads < 2 {
        return None;
    }
    let folio = folio_size(backing, page, pmd);
    let (segments, len) = layout_paged(share, threads, bs, folio, per_page_iovecs, page);
    let mut threads_in = vec![vec![false; threads]; len / folio];
    for (t, segs) in segments.iter().enumerate() {
        for s in segs {
            let folios = s.offset / folio..(s.offset + s.len).div_ceil(folio);
            for in_folio in &mut threads_in[folios] {
                in_folio[t] = true;
            }
        }
    }
    let partial = threads_in
        .iter()
        .filter(|f| f.iter().any(|&x| x) && !f.iter().all(|&x| x))
        .count();
    (partial > 0).then(|| {
        format!(
            "share = shared with {threads} threads, bs = {bs} and {backing} buffers ({} KiB folios, I/O cut into {} KiB chunks): in {partial} of {} folios not every thread has a page, so they are not shared by all threads; use a larger folio (buffer = thp), a bs whose chunks are smaller than the folio, or fewer threads",
            folio / 1024,
            chunk_size(bs, page) / 1024,
            len / folio
        )
    })
}

/// Whether private I/O of `bs` is cut into the same iovecs as shared I/O: with
/// per_page_iovecs, or when bs is a single chunk.
pub fn private_cut_as_shared(bs: usize, per_page_iovecs: bool) -> bool {
    per_page_iovecs || bs.div_ceil(chunk_size(bs, crate::pages::base_page())) == 1
}

/// The iovec chunk for `bs`: a base page, or larger when bs would need more than IOV_MAX.
fn chunk_size(bs: usize, page: usize) -> usize {
    let mut chunk = page;
    while bs.div_ceil(chunk) > IOV_MAX {
        chunk *= 2;
    }
    chunk
}

/// Computes the per-thread segments and the total buffer length. `per_page_iovecs`
/// splits private I/O into the same chunks shared I/O uses (contiguous here), so that
/// private and shared differ only in whose folios the pages are.
pub fn layout(
    share: Share,
    threads: usize,
    bs: usize,
    folio: usize,
    per_page_iovecs: bool,
) -> (Vec<Vec<Segment>>, usize) {
    let page = crate::pages::base_page();
    layout_paged(share, threads, bs, folio, per_page_iovecs, page)
}

/// `layout` with chunks cut from base pages of `page` bytes.
pub fn layout_paged(
    share: Share,
    threads: usize,
    bs: usize,
    folio: usize,
    per_page_iovecs: bool,
    page: usize,
) -> (Vec<Vec<Segment>>, usize) {
    let chunk = chunk_size(bs, page);
    let nchunks = bs.div_ceil(chunk);
    let piece = |j: usize| chunk.min(bs - j * chunk);
    match share {
        Share::Private => {
            let region = bs.next_multiple_of(folio);
            let segs = (0..threads)
                .map(|t| {
                    if per_page_iovecs {
                        (0..nchunks)
                            .map(|j| Segment {
                                offset: t * region + j * chunk,
                                len: piece(j),
                                io_offset: j * chunk,
                            })
                            .collect()
                    } else {
                        vec![Segment {
                            offset: t * region,
                            len: bs,
                            io_offset: 0,
                        }]
                    }
                })
                .collect();
            (segs, region * threads)
        }
        Share::Shared => {
            let segs = (0..threads)
                .map(|t| {
                    (0..nchunks)
                        .map(|j| Segment {
                            offset: (j * threads + t) * chunk,
                            len: piece(j),
                            io_offset: j * chunk,
                        })
                        .collect()
                })
                .collect();
            let len = (nchunks * threads * chunk).next_multiple_of(folio);
            (segs, len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hugetlb_remedy_never_shrinks_a_pool_others_use() {
        // 4 pages, all free but reserved by another process's mapping.
        let pool = HugetlbPool::parse(
            "HugePages_Total:       4\nHugePages_Free:        4\nHugePages_Rsvd:        4\n",
        );
        assert_eq!(pool.available(), 0);
        assert_eq!(pool.total_for(2), 6);
        let idle = HugetlbPool::parse("HugePages_Total: 4\nHugePages_Free: 3\nHugePages_Rsvd: 0\n");
        assert_eq!(idle.total_for(2), 4);
        assert_eq!(idle.total_for(5), 6);
    }

    #[test]
    fn private_layout_gives_each_thread_its_own_folios() {
        let (segs, len) = layout_paged(Share::Private, 3, 4096, 2 << 20, false, 4096);
        assert_eq!(len, 3 * (2 << 20));
        assert_eq!(
            segs[1],
            vec![Segment {
                offset: 2 << 20,
                len: 4096,
                io_offset: 0
            }]
        );
    }

    #[test]
    fn shared_layout_interleaves_subpages_of_the_same_folio() {
        let (segs, len) = layout_paged(Share::Shared, 2, 16384, 2 << 20, false, 4096);
        assert_eq!(len, 2 << 20);
        let offs: Vec<usize> = segs[1].iter().map(|s| s.offset).collect();
        assert_eq!(offs, vec![4096, 3 * 4096, 5 * 4096, 7 * 4096]);
        // No two threads share a byte.
        let mut all: Vec<usize> = segs.iter().flatten().map(|s| s.offset).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 8);
    }

    #[test]
    fn per_page_private_layout_matches_shared_chunking_in_own_folios() {
        let (p, _) = layout_paged(Share::Private, 2, 16384, 2 << 20, true, 4096);
        let (sh, _) = layout_paged(Share::Shared, 2, 16384, 2 << 20, true, 4096);
        assert_eq!(p[1].len(), sh[1].len());
        let offs: Vec<usize> = p[1].iter().map(|s| s.offset).collect();
        assert_eq!(
            offs,
            vec![
                2 << 20,
                (2 << 20) + 4096,
                (2 << 20) + 8192,
                (2 << 20) + 12288
            ]
        );
    }

    #[test]
    fn shared_layouts_in_which_some_threads_own_a_folio_alone_are_refused() {
        // 4 KiB pages and 2 MiB PMDs, as on x86-64.
        let refused =
            |b, t, bs| sharing_problem_paged(b, Share::Shared, t, bs, false, 4096, 2 << 20);
        // One 4 KiB chunk per 4 KiB folio: every folio belongs to one thread.
        assert!(refused(Backing::Base, 2, 8192).is_some());
        // 10 MiB needs 16 KiB chunks (IOV_MAX): a 16 KiB folio holds one chunk.
        assert!(refused(Backing::Mthp(16 << 10), 2, 10 << 20).is_some());
        // 4 chunks per 16 KiB folio, 3 threads with 2 chunks each: the second folio
        // holds chunks 4 and 5 only (threads 1 and 2).
        let why = refused(Backing::Mthp(16 << 10), 3, 8192).unwrap();
        assert!(why.contains("in 1 of 2 folios"), "{why}");
        // More threads than chunks per folio.
        assert!(refused(Backing::Mthp(16 << 10), 5, 4096).is_some());
        assert_eq!(refused(Backing::Thp, 2, 64 << 10), None);
        assert_eq!(refused(Backing::Mthp(16 << 10), 2, 8192), None);
        assert_eq!(
            refused(Backing::Base, 1, 8192),
            None,
            "one thread: the control"
        );
        assert_eq!(
            sharing_problem_paged(Backing::Base, Share::Private, 2, 8192, false, 4096, 2 << 20),
            None
        );
    }

    #[test]
    fn with_16k_base_pages_shared_io_is_cut_into_16k_chunks() {
        // 64 KiB of I/O per thread, 2 threads, one 32 MiB PMD THP (16 KiB pages).
        let (segs, len) = layout_paged(Share::Shared, 2, 64 << 10, 32 << 20, false, 16 << 10);
        assert_eq!(len, 32 << 20);
        let offs: Vec<usize> = segs[1].iter().map(|s| s.offset).collect();
        assert_eq!(
            offs,
            vec![16 << 10, 3 * (16 << 10), 5 * (16 << 10), 7 * (16 << 10)]
        );
        assert!(segs[1].iter().all(|s| s.len == 16 << 10));
        // A 16 KiB buffer = 4k (one base page) folio holds one chunk: refused as on
        // x86-64, where it takes 4 KiB pages.
        let refused =
            |b, bs| sharing_problem_paged(b, Share::Shared, 2, bs, false, 16 << 10, 32 << 20);
        assert!(refused(Backing::Base, 32 << 10).is_some());
        assert_eq!(refused(Backing::Thp, 64 << 10), None);
        // 64 KiB mTHP: 4 chunks of 16 KiB, two per thread.
        assert_eq!(refused(Backing::Mthp(64 << 10), 32 << 10), None);
    }

    #[test]
    fn shared_layout_stays_within_iov_max() {
        let (segs, _) = layout_paged(Share::Shared, 4, 10 << 20, 2 << 20, false, 4096);
        assert!(segs[0].len() <= IOV_MAX);
        assert_eq!(segs[0].iter().map(|s| s.len).sum::<usize>(), 10 << 20);
    }

    #[test]
    fn base_page_buffer_is_mapped_aligned_and_measured_in_base_pages() {
        let test = "base_page_buffer_is_mapped_aligned_and_measured_in_base_pages";
        if !crate::test_support::require_root(test, "/proc/kpageflags") {
            return;
        }
        let b = IoBuffers::new(Backing::Base, Share::Private, 2, 8192, false).unwrap();
        let page = crate::pages::base_page();
        assert_eq!(b.base() as usize % page, 0);
        assert_eq!(b.iovecs(1)[0].iov_len, 8192);
        let c = b.coverage().unwrap();
        assert_eq!(c.fraction, 1.0, "{c:?}");
        assert_eq!(
            c.by_folio_pages,
            std::collections::BTreeMap::from([(1, (b.len() / page) as u64)]),
            "MADV_NOHUGEPAGE: every page its own folio"
        );
        // Half of it dropped: half of it is backed.
        // SAFETY: the second half of the buffer's mapping.
        let rc = unsafe {
            libc::madvise(
                b.base().add(b.len() / 2) as *mut libc::c_void,
                b.len() / 2,
                libc::MADV_DONTNEED,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(b.coverage().unwrap().fraction, 0.5);
    }
}
