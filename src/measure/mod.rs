//! Measurement: the clock, per-thread latency recording, and merging after the run.

pub mod gup_slow;
pub mod gup_test;
pub mod histogram;
pub mod lockstat;
pub mod perfcount;
pub mod pin_cost;
pub mod stall;
pub mod trace_rings;
pub mod uring_punts;

/// CLOCK_MONOTONIC in nanoseconds, through the vDSO (no system call).
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
