//! Per-CPU perf ring buffers sampling kernel tracepoints system-wide, and the reader that
//! drains them while a run goes on: the machinery the lock-contention tracer (lockstat)
//! and the GUP slow-path tracer (gup_slow) share. Each tracepoint is sampled on every
//! event with TID and TIME on CLOCK_MONOTONIC (so it lines up with the run's timeline),
//! plus what the caller asks for (CALLCHAIN, CPU, RAW); callchains are kernel-only.

use std::sync::atomic::{AtomicBool, Ordering};

use perf_event::events::Tracepoint;
use perf_event::{Builder, Clock, SampleFlag, Sampler};

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;

/// The id of tracepoint `group:name` under the mounted tracefs at `tracefs`, the one
/// place it is read (events/GROUP/NAME/id); `missing` says which kernels lack it.
pub fn tracepoint_id(tracefs: &str, group: &str, name: &str, missing: &str) -> Result<u64, String> {
    let path = format!("{tracefs}/events/{group}/{name}/id");
    std::fs::read_to_string(&path)
        .map_err(|e| format!("{path}: {e} ({missing})"))?
        .trim()
        .parse()
        .map_err(|_| format!("{path}: not a tracepoint id"))
}

/// One tracepoint to sample: its tracefs id, its name for messages (`lock:contention_end`)
/// and the sample fields beyond TID|TIME.
pub struct TracepointSpec {
    pub id: u64,
    pub name: String,
    pub extra: SampleFlag,
}

/// One CPU's ring for one tracepoint; `spec` indexes the list given to `open_per_cpu`.
pub struct TraceRing {
    pub sampler: Sampler,
    pub spec: usize,
}

/// What a ring yields: a PERF_RECORD_SAMPLE body, or how many samples the kernel dropped.
pub enum RingRecord<'a> {
    Sample(&'a [u8]),
    Lost(u64),
}

/// Opens and enables every tracepoint of `specs` on every online CPU, each with a ring of
/// `pages` data pages, or `fallback_pages` where the larger ring cannot be mapped
/// (EPERM/ENOMEM: more than perf_event_mlock_kb without CAP_IPC_LOCK).
pub fn open_per_cpu(
    specs: &[TracepointSpec],
    pages: usize,
    fallback_pages: usize,
) -> Result<Vec<TraceRing>, String> {
    let mut rings = Vec::new();
    for cpu in crate::system::cpu::online_cpus() {
        for (spec, tp) in specs.iter().enumerate() {
            let mut b = Builder::new(Tracepoint::with_id(tp.id));
            b.any_pid()
                .one_cpu(cpu)
                .sample_period(1)
                .sample(SampleFlag::TID | SampleFlag::TIME | tp.extra)
                .include_kernel()
                .exclude_callchain_user(true)
                .clockid(Clock::MONOTONIC)
                .wakeup_events(1 << 20);
            let open = || {
                b.build().map_err(|e| {
                    format!(
                        "perf_event_open({}) on CPU {cpu}: {}",
                        tp.name,
                        crate::system::errno_text(&e)
                    )
                })
            };
            let page = crate::pages::base_page();
            let mapped = open()?.sampled(pages * page);
            let mut sampler = match mapped {
                Ok(s) => s,
                Err(_) => open()?.sampled(fallback_pages * page).map_err(|e| {
                    format!(
                        "mapping the ring buffer of {} ({fallback_pages} pages): {}",
                        tp.name,
                        crate::system::errno_text(&e)
                    )
                })?,
            };
            sampler
                .enable()
                .map_err(|e| format!("enabling the tracepoint {}: {e}", tp.name))?;
            rings.push(TraceRing { sampler, spec });
        }
    }
    Ok(rings)
}

/// Drains `rings` every 5 ms, handing each record to `each` with its ring's index, until
/// `stop` is set; then disables the rings and drains them a last time.
pub fn drain_until_stopped(
    rings: &mut [TraceRing],
    stop: &AtomicBool,
    mut each: impl FnMut(usize, RingRecord),
) {
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping {
            for r in rings.iter_mut() {
                let _ = r.sampler.disable();
            }
        }
        for (i, r) in rings.iter_mut().enumerate() {
            while let Some(rec) = r.sampler.next_record() {
                let data = rec.to_contiguous();
                match rec.ty() {
                    PERF_RECORD_SAMPLE => each(i, RingRecord::Sample(&data)),
                    PERF_RECORD_LOST => each(i, RingRecord::Lost(u64_at(&data, 8).unwrap_or(0))),
                    _ => {}
                }
            }
        }
        if stopping {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The native-endian u32 at byte `offset` of a record, if the record is that long.
pub fn u32_at(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

/// The native-endian u64 at byte `offset` of a record, if the record is that long.
pub fn u64_at(data: &[u8], offset: usize) -> Option<u64> {
    let bytes = data.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_ne_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracepoint_id_is_read_from_its_group_and_name_or_said_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        std::fs::create_dir_all(format!("{root}/events/lock/contention_end")).unwrap();
        std::fs::write(format!("{root}/events/lock/contention_end/id"), "1234\n").unwrap();
        std::fs::create_dir_all(format!("{root}/events/io_uring/junk")).unwrap();
        std::fs::write(format!("{root}/events/io_uring/junk/id"), "x\n").unwrap();
        assert_eq!(
            tracepoint_id(root, "lock", "contention_end", "old kernel"),
            Ok(1234)
        );
        let missing = tracepoint_id(root, "lock", "contention_begin", "old kernel").unwrap_err();
        assert!(
            missing.contains("events/lock/contention_begin/id")
                && missing.ends_with("(old kernel)")
        );
        let junk = tracepoint_id(root, "io_uring", "junk", "old kernel").unwrap_err();
        assert!(junk.ends_with("not a tracepoint id"), "{junk}");
    }

    #[test]
    fn fields_past_the_end_of_a_record_are_none() {
        let mut d = 7u32.to_ne_bytes().to_vec();
        d.extend_from_slice(&9u64.to_ne_bytes());
        assert_eq!(u32_at(&d, 0), Some(7));
        assert_eq!(u64_at(&d, 4), Some(9));
        assert_eq!(u64_at(&d, 5), None);
        assert_eq!(u32_at(&d, usize::MAX - 1), None);
    }
}
