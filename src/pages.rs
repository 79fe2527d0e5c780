//! The running kernel's page geometry, read in this one place: the base page size
//! (sysconf(_SC_PAGESIZE): 4 KiB on x86-64, 4, 16 or 64 KiB on arm64), the PMD size
//! (sysfs `hpage_pmd_size`: 2 MiB with 4 KiB pages, 32 MiB with 16 KiB, 512 MiB with
//! 64 KiB) and the mTHP sizes the kernel offers (`hugepages-<size>kB`). Nothing else in
//! the crate assumes 4 KiB or 2 MiB; the pure helpers take the page size, so tests can
//! use 16 or 64 KiB pages on a 4 KiB machine. Also the O_DIRECT alignment of a target,
//! from the target's own limits. A leaf: it imports nothing of the crate.

use std::os::fd::AsRawFd;
use std::sync::OnceLock;

pub const THP_SYSFS: &str = "/sys/kernel/mm/transparent_hugepage";

/// The base page size in bytes: what /proc/self/pagemap has one entry per, what a PFN
/// counts, what the kernel faults and pins one at a time.
pub fn base_page() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no memory effects.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        assert!(
            v > 0 && (v as usize).is_power_of_two(),
            "sysconf(_SC_PAGESIZE) returned {v}, not a page size; Linux always answers it"
        );
        v as usize
    })
}

/// The PMD (huge page) size in bytes: sysfs `hpage_pmd_size`, or, where the kernel has
/// no THP sysfs, the size one page table maps (see `pmd_of_page`).
pub fn pmd_size() -> u64 {
    std::fs::read_to_string(format!("{THP_SYSFS}/hpage_pmd_size"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| pmd_of_page(base_page() as u64))
}

/// What one last-level page table maps on x86-64 and arm64: page/8 entries of 8 bytes,
/// each mapping a page (4K -> 2M, 16K -> 32M, 64K -> 512M).
pub fn pmd_of_page(page: u64) -> u64 {
    page * (page / 8)
}

/// The sizes (in kB) that anonymous mTHP can use (a `hugepages-<size>kB/enabled` knob;
/// a size with only `shmem_enabled` is left out), ascending. They depend on the base
/// page size: orders 2 .. PMD order (the PMD size is listed too since 6.8), so 16K..2M
/// with 4 KiB pages, 64K..32M with 16 KiB pages.
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

/// Base pages that `[addr, addr + len)` touches (a partial page counts).
pub fn pages_spanned(addr: u64, len: u64, page: u64) -> u64 {
    if len == 0 {
        return 0;
    }
    (addr + len).div_ceil(page) - addr / page
}

/// The byte offset in /proc/self/pagemap of the entry (8 bytes per base page) of the
/// page holding `addr`.
pub fn pagemap_offset(addr: u64, page: u64) -> u64 {
    addr / page * 8
}

/// The O_DIRECT limits of an open file or block device: the alignment of the file
/// offset and length, and of the memory address, in bytes, and where they came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DioAlign {
    pub offset: u32,
    pub memory: u32,
    /// `statx`, `logical block size`, or `base page` (neither answered).
    pub source: &'static str,
}

/// The target's own O_DIRECT alignment: statx(STATX_DIOALIGN) where the kernel and the
/// filesystem give it (6.1+), else the device's logical block size (BLKSSZGET; block
/// devices), else the base page size, which every O_DIRECT path accepts.
pub fn dio_align(f: &std::fs::File) -> DioAlign {
    let fd = f.as_raw_fd();
    // SAFETY: zeroed is a valid statx; statx writes into it; the path is empty with
    // AT_EMPTY_PATH, so the call is about fd itself.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut st,
        )
    };
    if rc == 0 && st.stx_mask & libc::STATX_DIOALIGN != 0 && st.stx_dio_offset_align > 0 {
        return DioAlign {
            offset: st.stx_dio_offset_align,
            memory: st.stx_dio_mem_align,
            source: "statx",
        };
    }
    let mut lbs: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int; on a non-block fd it fails with ENOTTY.
    if unsafe { libc::ioctl(fd, libc::BLKSSZGET, &mut lbs) } == 0 && lbs > 0 {
        return DioAlign {
            offset: lbs as u32,
            memory: lbs as u32,
            source: "logical block size",
        };
    }
    let page = base_page() as u32;
    DioAlign {
        offset: page,
        memory: page,
        source: "base page",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pmd_is_what_one_page_table_maps_for_each_arm64_page_size() {
        assert_eq!(pmd_of_page(4 << 10), 2 << 20);
        assert_eq!(pmd_of_page(16 << 10), 32 << 20);
        assert_eq!(pmd_of_page(64 << 10), 512 << 20);
    }

    #[test]
    fn pagemap_entries_are_indexed_per_base_page_of_any_size() {
        let addr = 0x7f00_0000_0000u64 + 3 * (16 << 10) + 100;
        // 4 KiB pages: 4 entries per 16 KiB; 16 KiB pages: one; 64 KiB: a quarter.
        assert_eq!(
            pagemap_offset(addr, 4 << 10),
            (0x7f00_0000_0000 / 4096 + 12) * 8
        );
        assert_eq!(
            pagemap_offset(addr, 16 << 10),
            (0x7f00_0000_0000 / (16 << 10) + 3) * 8
        );
        assert_eq!(
            pagemap_offset(addr, 64 << 10),
            (0x7f00_0000_0000 / (64 << 10)) * 8
        );
        // 2 MiB starting on a page boundary: 512, 128 or 32 base pages; one byte more
        // reaches into one more page.
        let a = 0x4000_0000u64;
        for (page, n) in [(4u64 << 10, 512), (16 << 10, 128), (64 << 10, 32)] {
            assert_eq!(pages_spanned(a, 2 << 20, page), n);
            assert_eq!(pages_spanned(a + 1, 2 << 20, page), n + 1);
        }
        assert_eq!(pages_spanned(a, 0, 4096), 0);
    }

    #[test]
    fn the_running_kernel_geometry_is_consistent() {
        let page = base_page() as u64;
        assert!(page.is_power_of_two() && page >= 4096, "{page}");
        let pmd = pmd_size();
        assert!(
            pmd > page && pmd.is_multiple_of(page),
            "pmd {pmd}, page {page}"
        );
        // sysfs lists the PMD size too (hugepages-2048kB with 4 KiB pages, since 6.8).
        for kb in mthp_sizes_kb() {
            assert!(kb * 1024 > page && kb * 1024 <= pmd, "{kb}kB");
        }
    }

    #[test]
    fn a_file_s_dio_alignment_is_a_power_of_two_no_larger_than_a_page() {
        let f = std::fs::File::open("/proc/self/exe").expect("own binary");
        let a = dio_align(&f);
        for v in [a.offset, a.memory] {
            assert!(v.is_power_of_two(), "{a:?}");
            assert!(v as usize <= base_page(), "{a:?}");
        }
    }
}
