//! The progress bar of a run on a terminal: elapsed and remaining time, ops/s and the
//! p99 of the last 100 ms, read from what the workers publish every tick.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::units::human_ns;

/// Progress a worker publishes every 100 ms tick (two relaxed stores, off the hot path).
#[derive(Default)]
#[repr(align(64))]
pub struct ProgressSlot {
    pub ops: AtomicU64,
    pub bytes: AtomicU64,
    pub p99_ns: AtomicU64,
}

/// What a repeat is measured until: so many ops, or so much time.
#[derive(Debug, Clone, Copy)]
pub enum RunLength {
    Ops(u64),
    Nanos(u64),
}

pub struct RunProgress {
    bar: ProgressBar,
    by_time: bool,
    total: u64,
}

impl RunProgress {
    /// A bar for repeat `repeat` (from 0) of `repeats` of the workload `name`.
    pub fn new(name: &str, length: RunLength, repeat: usize, repeats: usize) -> RunProgress {
        let (by_time, total) = match length {
            RunLength::Ops(ops) => (false, ops),
            RunLength::Nanos(ns) => (true, ns / 1_000_000),
        };
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{} run {}/{} [{{bar:30}}] {{elapsed}} / eta {{eta}}  {{msg}}",
                name,
                repeat + 1,
                repeats
            ))
            .expect("valid template")
            .progress_chars("=> "),
        );
        RunProgress {
            bar,
            by_time,
            total,
        }
    }

    pub fn update(&self, slots: &[Arc<ProgressSlot>], elapsed_ns: u64) {
        let ops: u64 = slots.iter().map(|s| s.ops.load(Ordering::Relaxed)).sum();
        let p99 = slots
            .iter()
            .map(|s| s.p99_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let secs = (elapsed_ns as f64 / 1e9).max(1e-3);
        self.bar.set_position(if self.by_time {
            (elapsed_ns / 1_000_000).min(self.total)
        } else {
            ops.min(self.total)
        });
        self.bar.set_message(format!(
            "{:.0} ops/s  p99 {}",
            ops as f64 / secs,
            human_ns(p99 as f64)
        ));
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
