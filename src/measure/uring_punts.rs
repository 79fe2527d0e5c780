//! How many of a uring worker's requests io_uring punted to its io-wq worker threads:
//! `io_uring:io_uring_submit_req` (every request submitted) and
//! `io_uring:io_uring_queue_async_work` (a request handed to io-wq, io_uring/io_uring.c
//! io_queue_iowq) counted on the worker thread, which is the task that submits. A device
//! without a nowait path (zram) has every request punted: each I/O then costs a thread
//! hand-off, which is why io_uring at queue depth 1 is slower there than pread.

use crate::result::IoUringReport;
use perf_event::events::Tracepoint;
use perf_event::{Builder, Counter};

use crate::system::mounts::{MountGuard, TRACEFS};

/// The tracepoint ids of (submit_req, queue_async_work), from tracefs.
pub fn tracepoint_ids() -> Result<(u64, u64), String> {
    if !crate::system::is_root() {
        return Err("counting io_uring tracepoints needs root (tracefs ids, perf_event_open on tracepoints)".into());
    }
    let tracefs = MountGuard::ensure("tracefs", TRACEFS).map_err(|e| format!("{e:#}"))?;
    let id = |name: &str| -> Result<u64, String> {
        let path = format!("{}/events/io_uring/{name}/id", tracefs.path());
        std::fs::read_to_string(&path)
            .map_err(|e| format!("{path}: {e} (kernel without io_uring tracepoints?)"))?
            .trim()
            .parse()
            .map_err(|_| format!("{path}: not a tracepoint id"))
    };
    Ok((id("io_uring_submit_req")?, id("io_uring_queue_async_work")?))
}

/// The two counters on the calling thread.
pub struct PuntCounters {
    submitted: Counter,
    punted: Counter,
}

impl PuntCounters {
    pub fn open((submit_id, punt_id): (u64, u64)) -> Result<PuntCounters, String> {
        let open = |id: u64, name: &str| {
            Builder::new(Tracepoint::with_id(id))
                .include_kernel()
                .build()
                .map_err(|e| {
                    format!(
                        "perf_event_open(io_uring:{name}): {}",
                        crate::system::errno_text(&e)
                    )
                })
        };
        Ok(PuntCounters {
            submitted: open(submit_id, "io_uring_submit_req")?,
            punted: open(punt_id, "io_uring_queue_async_work")?,
        })
    }

    pub fn enable(&mut self) {
        for c in [&mut self.submitted, &mut self.punted] {
            let _ = c.reset();
            let _ = c.enable();
        }
    }

    /// (submitted, punted) since `enable`.
    pub fn stop(&mut self) -> (u64, u64) {
        let _ = self.submitted.disable();
        let _ = self.punted.disable();
        (
            self.submitted.read().unwrap_or(0),
            self.punted.read().unwrap_or(0),
        )
    }
}

/// One worker's `io_uring` figures: queue depth, registered buffers, and the punt counts
/// (or why they could not be taken).
pub fn figures(
    iodepth: usize,
    fixed_buffers: bool,
    counts: Option<(u64, u64)>,
    unavailable: Option<&str>,
) -> IoUringReport {
    let mut r = IoUringReport {
        iodepth: iodepth as u32,
        fixed_buffers,
        ..IoUringReport::default()
    };
    match counts {
        Some((submitted, punted)) => {
            r.submitted = Some(submitted);
            r.punted_to_io_wq = Some(punted);
        }
        None => r.punts_unavailable = Some(unavailable.unwrap_or("not counted").to_string()),
    }
    r
}

/// Adds up the workers' figures into the run's `io_uring` object, with the punted share.
pub fn merge(per_worker: &[IoUringReport]) -> Option<IoUringReport> {
    let first = per_worker.first()?;
    let sum =
        |f: fn(&IoUringReport) -> Option<u64>| -> Option<u64> { per_worker.iter().map(f).sum() };
    let mut out = IoUringReport {
        iodepth: first.iodepth,
        fixed_buffers: first.fixed_buffers,
        ..IoUringReport::default()
    };
    match (sum(|r| r.submitted), sum(|r| r.punted_to_io_wq)) {
        (Some(submitted), Some(punted)) => {
            out.submitted = Some(submitted);
            out.punted_to_io_wq = Some(punted);
            out.punted_share = Some(punted as f64 / submitted.max(1) as f64);
        }
        _ => {
            out.punts_unavailable = Some(
                first
                    .punts_unavailable
                    .clone()
                    .unwrap_or_else(|| "not counted on every worker".into()),
            );
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_workers_and_gives_the_punted_share() {
        let w = [
            figures(4, true, Some((100, 100)), None),
            figures(4, true, Some((300, 0)), None),
        ];
        let m = merge(&w).unwrap();
        assert_eq!(m.submitted, Some(400));
        assert_eq!(m.punted_to_io_wq, Some(100));
        assert_eq!(m.punted_share, Some(0.25));
        assert_eq!(m.iodepth, 4);
        let partial = [
            figures(1, false, Some((5, 5)), None),
            figures(1, false, None, Some("no tracefs")),
        ];
        let m = merge(&partial).unwrap();
        assert!(m.submitted.is_none());
        assert_eq!(
            m.punts_unavailable.as_deref(),
            Some("not counted on every worker")
        );
        assert!(merge(&[]).is_none());
    }
}
