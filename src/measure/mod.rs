//! Measurement: the clock, per-thread latency recording, and merging after the run.

pub mod gup_slow;
pub mod gup_test;
pub mod histogram;
pub mod lockstat;
pub mod perfcount;
pub mod stall;
pub mod trace_rings;
pub mod uring_punts;

pub use crate::clock::now_ns;
