//! The kernel's own GUP benchmark: `/sys/kernel/debug/gup_test` (CONFIG_GUP_TEST,
//! mm/gup_test.c). Its GUP_FAST_BENCHMARK and PIN_FAST_BENCHMARK ioctls walk a user
//! range in calls of `nr_pages_per_call` pages with get_user_pages_fast() or
//! pin_user_pages_fast(), then drop every reference (put_page() or
//! unpin_user_pages()), and time both halves with ktime in microseconds. Run on the gup
//! engine's own buffer after its measured loop, it is the kernel-side figure to set
//! beside the engine's user-space ns per page: what is left is the system call, the
//! pipe and the iovec walk.
//!
//! Distribution kernels (Debian's, this machine's) are built without it; under kernel
//! lockdown debugfs refuses to open a file with ioctls (EPERM).

use crate::result::Unavailable;
use crate::system::mounts::MountGuard;

const WHAT: &str = "gup_test (in-kernel GUP benchmark)";

/// `struct gup_test` of mm/gup_test.h (76 bytes of fields, 80 with the u64 alignment).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GupTestArgs {
    pub get_delta_usec: u64,
    pub put_delta_usec: u64,
    pub addr: u64,
    pub size: u64,
    pub nr_pages_per_call: u32,
    pub gup_flags: u32,
    pub test_flags: u32,
    /// For DUMP_USER_PAGES_TEST only; zero means "dump nothing".
    pub which_pages: [u32; 8],
}

// _IOWR('g', 1, struct gup_test) and _IOWR('g', 2, struct gup_test): the numbers have
// been stable since gup_benchmark became gup_test (5.11); the later tests were renumbered.
nix::ioctl_readwrite!(gup_fast_benchmark, b'g', 1, GupTestArgs);
nix::ioctl_readwrite!(pin_fast_benchmark, b'g', 2, GupTestArgs);

pub use crate::result::kernel::{KernelGupFigure, KernelGupReport};

/// Why the in-kernel benchmark cannot run here, or None where it can.
pub fn unavailable() -> Option<Unavailable> {
    match open() {
        Ok(_) => None,
        Err(reason) => Some(crate::system::probe::capability::gup_test().unavailable(WHAT, reason)),
    }
}

/// Opens the benchmark file, mounting debugfs for as long as the guard lives.
fn open() -> Result<(std::fs::File, MountGuard), String> {
    crate::system::probe::tracing::open_gup_test()
}

/// Calls per benchmark: enough for the microsecond clock to resolve the figure, few
/// enough to stay well under a second.
const MIN_GET_USEC: u64 = 20_000;
const MAX_CALLS: u64 = 200;

/// Runs GUP_FAST_BENCHMARK and PIN_FAST_BENCHMARK over `[addr, addr + len)` in calls of
/// `pages_per_call` pages. The range must be mapped and populated (the engine's buffer
/// after its run).
pub fn run(addr: usize, len: usize, pages_per_call: u32) -> KernelGupReport {
    let mut report = KernelGupReport {
        nr_pages_per_call: pages_per_call,
        gup_flags: 0,
        ..KernelGupReport::default()
    };
    let (file, _guard) = match open() {
        Ok(f) => f,
        Err(reason) => {
            report.reason = reason;
            return report;
        }
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    type Ioctl = unsafe fn(libc::c_int, *mut GupTestArgs) -> nix::Result<libc::c_int>;
    let benchmarks: [(&str, Ioctl); 2] = [
        ("GUP_FAST_BENCHMARK", gup_fast_benchmark),
        ("PIN_FAST_BENCHMARK", pin_fast_benchmark),
    ];
    for (i, (name, ioctl)) in benchmarks.into_iter().enumerate() {
        let mut fig = KernelGupFigure::default();
        while fig.calls < MAX_CALLS && fig.get_usec < MIN_GET_USEC {
            let mut args = GupTestArgs {
                addr: addr as u64,
                size: len as u64,
                nr_pages_per_call: pages_per_call,
                gup_flags: report.gup_flags,
                ..GupTestArgs::default()
            };
            // SAFETY: args is a valid struct gup_test the kernel reads and writes back;
            // the range is this process's own mapped buffer.
            if let Err(e) = unsafe { ioctl(fd, &mut args) } {
                report.reason = format!("{name} on {len} bytes at {addr:#x}: {e}");
                return report;
            }
            // The kernel stops early where a call takes fewer pages than asked, and
            // says so through size: count what it walked.
            fig.calls += 1;
            fig.pages += args.size / crate::pages::base_page() as u64;
            fig.get_usec += args.get_delta_usec;
            fig.put_usec += args.put_delta_usec;
        }
        if fig.pages == 0 {
            report.reason = format!("{name} on {len} bytes at {addr:#x} took no pages");
            return report;
        }
        let pages = fig.pages as f64;
        fig.get_ns_per_page = fig.get_usec as f64 * 1000.0 / pages;
        fig.put_ns_per_page = fig.put_usec as f64 * 1000.0 / pages;
        if i == 0 {
            report.gup_fast = Some(fig);
        } else {
            report.pin_fast = Some(fig);
        }
    }
    report.available = true;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_and_ioctl_numbers_match_the_kernel_header() {
        // mm/gup_test.h: four __u64, three __u32 and __u32[8]: 76 bytes, padded to 80.
        assert_eq!(std::mem::size_of::<GupTestArgs>(), 80);
        assert_eq!(std::mem::offset_of!(GupTestArgs, nr_pages_per_call), 32);
        assert_eq!(std::mem::offset_of!(GupTestArgs, which_pages), 44);
        // _IOWR('g', nr, 80 bytes) = dir 3 << 30 | 80 << 16 | 'g' << 8 | nr.
        assert_eq!(
            nix::request_code_readwrite!(b'g', 1, std::mem::size_of::<GupTestArgs>()),
            0xc050_6701
        );
        assert_eq!(
            nix::request_code_readwrite!(b'g', 2, std::mem::size_of::<GupTestArgs>()),
            0xc050_6702
        );
    }
}
