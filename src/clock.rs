//! The clock every timing uses. A leaf: it imports nothing of the crate.

/// CLOCK_MONOTONIC in nanoseconds, through the vDSO (no system call).
#[inline]
pub fn now_ns() -> u64 {
    ns(libc::CLOCK_MONOTONIC)
}

/// The clock `id` (CLOCK_BOOTTIME, CLOCK_PROCESS_CPUTIME_ID, ...) in nanoseconds.
#[inline]
pub fn ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
