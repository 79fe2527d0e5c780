//! A plain heap buffer aligned for O_DIRECT, for setup and check I/O (fills, probes,
//! verify passes). It imports only the page geometry (crate::pages, a leaf).

/// A plain heap buffer aligned for O_DIRECT, for setup I/O: aligned to a base page, or to
/// more where a target asks for more (`crate::pages::dio_align`).
pub struct AlignedBuf {
    ptr: *mut u8,
    len: usize,
    align: usize,
}

impl AlignedBuf {
    /// Aligned to a base page (4, 16 or 64 KiB), which no O_DIRECT memory alignment
    /// exceeds in practice; `with_align` for a target's own.
    pub fn new(len: usize) -> AlignedBuf {
        AlignedBuf::with_align(len, crate::pages::base_page())
    }

    /// Aligned to `align` bytes (a power of two), and at least to a base page.
    pub fn with_align(len: usize, align: usize) -> AlignedBuf {
        let align = align.max(crate::pages::base_page());
        let layout = std::alloc::Layout::from_size_align(len.max(1), align).expect("valid layout");
        // SAFETY: layout has non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory allocating {len} bytes");
        AlignedBuf { ptr, len, align }
    }
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len bytes for the life of self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout =
            std::alloc::Layout::from_size_align(self.len.max(1), self.align).expect("valid layout");
        // SAFETY: allocated in new() with this layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) }
    }
}
