//! How many of a uring worker's requests io_uring punted to its io-wq worker threads:
//! `io_uring:io_uring_queue_async_work` (a request handed to io-wq, io_uring/io_uring.c
//! io_queue_iowq) counted for the worker thread, which is the task that submits, against
//! the requests it submitted (the engine's own count: what each io_uring_enter consumed,
//! so no tracepoint fires for it; `io_uring:io_uring_submit_req` did, and each firing
//! of a tracepoint with a counter on it costs the I/O that fires it). A device
//! without a nowait path (zram) has every request punted: each I/O then costs a thread
//! hand-off, which is why io_uring at queue depth 1 is slower there than pread.
//!
//! The counters are CPU-wide on the worker's CPU (it is pinned there) with a tracepoint
//! filter on its tid (`common_pid == TID`), not events on the thread: a thread's perf
//! events are switched out and in at every context switch, and on zram the worker
//! switches twice per I/O (about 1 us per I/O). A CPU-wide event is not switched.

use crate::result::IoUringReport;
use perf_event::events::Tracepoint;
use perf_event::{Builder, Counter};

use crate::system::mounts::{MountGuard, TRACEFS};

/// The tracepoint id of queue_async_work, from tracefs.
pub fn tracepoint_id() -> Result<u64, String> {
    if !crate::system::is_root() {
        return Err("counting io_uring tracepoints needs root (tracefs ids, perf_event_open on tracepoints)".into());
    }
    let tracefs = MountGuard::ensure("tracefs", TRACEFS).map_err(|e| format!("{e:#}"))?;
    super::trace_rings::tracepoint_id(
        tracefs.path(),
        "io_uring",
        "io_uring_queue_async_work",
        "kernel without io_uring tracepoints?",
    )
}

/// The punt counter for the calling thread, on the CPU it runs on.
pub struct PuntCounter {
    punted: Counter,
}

/// PERF_EVENT_IOC_SET_FILTER: _IOW('$', 6, char *).
const PERF_EVENT_IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;

/// The tracepoint filter that keeps `tid`'s events only.
fn tid_filter(tid: u32) -> String {
    format!("common_pid == {tid}")
}

impl PuntCounter {
    /// Opens the counter for the calling thread on its current CPU; the caller is
    /// pinned there for the measured loop.
    pub fn open(punt_id: u64) -> Result<PuntCounter, String> {
        // SAFETY: sched_getcpu and gettid have no preconditions.
        let (cpu, tid) = unsafe { (libc::sched_getcpu(), libc::gettid()) };
        if cpu < 0 {
            return Err(format!(
                "sched_getcpu: {}",
                crate::system::errno_text(&std::io::Error::last_os_error())
            ));
        }
        let filter = std::ffi::CString::new(tid_filter(tid as u32)).expect("no NUL");
        let open = |id: u64, name: &str| {
            let c = Builder::new(Tracepoint::with_id(id))
                .include_kernel()
                .any_pid()
                .one_cpu(cpu as usize)
                .build()
                .map_err(|e| {
                    format!(
                        "perf_event_open(io_uring:{name}, CPU {cpu}): {}",
                        crate::system::errno_text(&e)
                    )
                })?;
            use std::os::fd::AsRawFd;
            // SAFETY: the fd is a perf event's, the filter a NUL-terminated string that
            // outlives the call.
            let rc =
                unsafe { libc::ioctl(c.as_raw_fd(), PERF_EVENT_IOC_SET_FILTER, filter.as_ptr()) };
            if rc != 0 {
                return Err(format!(
                    "setting the filter {:?} on io_uring:{name}: {}",
                    filter,
                    crate::system::errno_text(&std::io::Error::last_os_error())
                ));
            }
            Ok(c)
        };
        Ok(PuntCounter {
            punted: open(punt_id, "io_uring_queue_async_work")?,
        })
    }

    pub fn enable(&mut self) {
        let _ = self.punted.reset();
        let _ = self.punted.enable();
    }

    /// Requests punted since `enable`.
    pub fn stop(&mut self) -> u64 {
        let _ = self.punted.disable();
        self.punted.read().unwrap_or(0)
    }
}

/// One worker's `io_uring` figures: queue depth, registered buffers, the requests it
/// submitted (always known: its own count) and those punted (or why they were not
/// counted).
pub fn figures(
    iodepth: usize,
    fixed_buffers: bool,
    submitted: u64,
    punted: Option<u64>,
    unavailable: Option<&str>,
) -> IoUringReport {
    IoUringReport {
        iodepth: iodepth as u32,
        fixed_buffers,
        submitted: Some(submitted),
        punted_to_io_wq: punted,
        punts_unavailable: match punted {
            Some(_) => None,
            None => Some(unavailable.unwrap_or("not counted").to_string()),
        },
        ..IoUringReport::default()
    }
}

/// Adds up the workers' figures into the run's `io_uring` object, with the punted share.
pub fn merge(per_worker: &[IoUringReport]) -> Option<IoUringReport> {
    let first = per_worker.first()?;
    let sum =
        |f: fn(&IoUringReport) -> Option<u64>| -> Option<u64> { per_worker.iter().map(f).sum() };
    let mut out = IoUringReport {
        iodepth: first.iodepth,
        fixed_buffers: first.fixed_buffers,
        setup_flags: first.setup_flags.clone(),
        ..IoUringReport::default()
    };
    out.submitted = sum(|r| r.submitted);
    match (out.submitted, sum(|r| r.punted_to_io_wq)) {
        (Some(submitted), Some(punted)) => {
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
            figures(4, true, 100, Some(100), None),
            figures(4, true, 300, Some(0), None),
        ];
        let m = merge(&w).unwrap();
        assert_eq!(m.submitted, Some(400));
        assert_eq!(m.punted_to_io_wq, Some(100));
        assert_eq!(m.punted_share, Some(0.25));
        assert_eq!(m.iodepth, 4);
        let partial = [
            figures(1, false, 5, Some(5), None),
            figures(1, false, 7, None, Some("no tracefs")),
        ];
        let m = merge(&partial).unwrap();
        // Submissions are the engine's own count, known without the punt counter.
        assert_eq!(m.submitted, Some(12));
        assert!(m.punted_to_io_wq.is_none() && m.punted_share.is_none());
        assert_eq!(
            m.punts_unavailable.as_deref(),
            Some("not counted on every worker")
        );
        assert!(merge(&[]).is_none());
    }
}
