//! Per worker thread counters for the measured window, read around the loop and never
//! in it.
//!
//! The software figures (task-clock, context switches, faults, migrations) come from the
//! kernel's own per-thread accounting, read once before and once after the loop:
//! CLOCK_THREAD_CPUTIME_ID, getrusage(RUSAGE_THREAD) and /proc/thread-self/sched. A
//! thread's perf events would give the same numbers but are switched out and in at
//! every context switch, which cost the uring engine about 1.1 us per I/O on zram, where
//! each request is handed to an io-wq thread and the worker sleeps until it completes.
//!
//! For a queued engine (uring) the CPU time of the worker's io-wq threads
//! (`iou-wrk-<tid>`, which do the device work of punted requests) is read the same way,
//! from /proc/self/task/*/schedstat, as `io-wq-task-clock`.
//!
//! Hardware events (cycles, instructions, caches) need perf events on the thread, with
//! that per-switch cost: they are opened only when asked (`hw_counters`).

use std::collections::BTreeMap;

use perf_event::events::Hardware;
use perf_event::{Builder, Counter};

use crate::result::kernel::PerfReport;

pub struct ThreadCounters {
    hardware: Vec<(&'static str, Counter)>,
    /// Counter name -> why it could not be taken.
    pub unavailable: BTreeMap<String, String>,
    /// Hardware counts include kernel mode (the software figures always do).
    pub kernel_included: bool,
    /// Also read the CPU time of this thread's io-wq workers.
    io_wq: bool,
    start: Option<Snapshot>,
    end: Option<Snapshot>,
}

const HARDWARE: [(&str, Hardware); 4] = [
    ("cycles", Hardware::CPU_CYCLES),
    ("instructions", Hardware::INSTRUCTIONS),
    ("cache-references", Hardware::CACHE_REFERENCES),
    ("cache-misses", Hardware::CACHE_MISSES),
];

/// Why the hardware counters are off unless asked.
pub const HARDWARE_OFF: &str = "off by default: a thread's hardware perf events are switched at every context switch (about 1 us per I/O where the I/O switches, as uring on zram does); --hw-counters takes them";

pub use crate::system::probe::capability::is_hardware_counter as is_hardware;

/// The calling thread's accounting at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
struct Snapshot {
    task_clock_ns: u64,
    context_switches: u64,
    minor_faults: u64,
    major_faults: u64,
    migrations: Option<u64>,
    /// tid -> CPU time (ns) of each of this thread's io-wq workers alive now.
    io_wq: BTreeMap<u32, u64>,
}

impl Snapshot {
    fn take(io_wq: bool) -> Snapshot {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid timespec to write to.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        // SAFETY: an all-zero rusage is valid, and getrusage only writes it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: ru is a valid rusage to write to.
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
        Snapshot {
            task_clock_ns: ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64,
            context_switches: (ru.ru_nvcsw + ru.ru_nivcsw) as u64,
            minor_faults: ru.ru_minflt as u64,
            major_faults: ru.ru_majflt as u64,
            migrations: std::fs::read_to_string("/proc/thread-self/sched")
                .ok()
                .and_then(|t| sched_field(&t, "se.nr_migrations")),
            io_wq: if io_wq {
                io_wq_clocks(gettid())
            } else {
                BTreeMap::new()
            },
        }
    }
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// A `name : value` line of /proc/PID/sched.
fn sched_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().parse().ok())?
    })
}

/// The CPU time (schedstat's first field, ns) of every thread of this process named
/// `iou-wrk-<tid>`: the io-wq workers that io_uring made for task `tid`.
fn io_wq_clocks(tid: u32) -> BTreeMap<u32, u64> {
    let want = format!("iou-wrk-{tid}");
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(id) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let p = e.path();
        let is_ours = std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim_end() == want);
        if !is_ours {
            continue;
        }
        if let Some(ns) = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
        {
            out.insert(id, ns);
        }
    }
    out
}

/// The counters between two snapshots. io-wq workers that appeared count from zero;
/// those that exited in between are counted in `io-wq-exited` (their time is lost, so
/// `io-wq-task-clock` is then a lower bound).
fn delta(a: &Snapshot, b: &Snapshot, io_wq: bool) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::from([
        (
            PerfReport::TASK_CLOCK.to_string(),
            b.task_clock_ns.saturating_sub(a.task_clock_ns),
        ),
        (
            "context-switches".to_string(),
            b.context_switches.saturating_sub(a.context_switches),
        ),
        (
            "minor-faults".to_string(),
            b.minor_faults.saturating_sub(a.minor_faults),
        ),
        (
            "major-faults".to_string(),
            b.major_faults.saturating_sub(a.major_faults),
        ),
    ]);
    if let (Some(x), Some(y)) = (a.migrations, b.migrations) {
        out.insert("cpu-migrations".into(), y.saturating_sub(x));
    }
    if io_wq {
        let clock: u64 = b
            .io_wq
            .iter()
            .map(|(tid, ns)| ns.saturating_sub(a.io_wq.get(tid).copied().unwrap_or(0)))
            .sum();
        let exited = a.io_wq.keys().filter(|t| !b.io_wq.contains_key(t)).count();
        out.insert(PerfReport::IO_WQ_TASK_CLOCK.into(), clock);
        if exited > 0 {
            out.insert(PerfReport::IO_WQ_EXITED.into(), exited as u64);
        }
    }
    out
}

impl ThreadCounters {
    /// Prepares the calling thread's counters: with `hardware`, opens its hardware perf
    /// events (disabled); with `io_wq`, also follows its io-wq workers. Kernel-mode
    /// hardware counts are included when allowed (root, or perf_event_paranoid <= 1).
    pub fn open(hardware: bool, io_wq: bool) -> ThreadCounters {
        let kernel_included = crate::system::is_root()
            || crate::system::probe::perf_event_paranoid().is_some_and(|p| p <= 1);
        let mut out = ThreadCounters {
            hardware: Vec::new(),
            unavailable: BTreeMap::new(),
            kernel_included,
            io_wq,
            start: None,
            end: None,
        };
        if !std::path::Path::new("/proc/thread-self/sched").exists() {
            out.unavailable.insert(
                "cpu-migrations".into(),
                "no /proc/thread-self/sched (kernel without CONFIG_SCHED_DEBUG)".into(),
            );
        }
        for (name, e) in HARDWARE {
            if !hardware {
                out.unavailable.insert(name.into(), HARDWARE_OFF.into());
                continue;
            }
            match Builder::new(e).exclude_kernel(!kernel_included).build() {
                Ok(c) => out.hardware.push((name, c)),
                Err(e) => {
                    let why = match e.raw_os_error() {
                        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => {
                            "no hardware PMU (perf_event_open answers ENOENT/EOPNOTSUPP, usual in VMs)".to_string()
                        }
                        Some(libc::EACCES) | Some(libc::EPERM) => format!(
                            "{}: lower /proc/sys/kernel/perf_event_paranoid or run as root",
                            crate::system::errno_text(&e)
                        ),
                        _ => crate::system::errno_text(&e),
                    };
                    out.unavailable.insert(name.to_string(), why);
                }
            }
        }
        out
    }

    /// Whether any hardware counter is open (the only ones that may exclude the kernel).
    pub fn hardware_taken(&self) -> bool {
        !self.hardware.is_empty()
    }

    /// Right before the measured loop, in the worker thread.
    pub fn enable(&mut self) {
        for (_, c) in &mut self.hardware {
            let _ = c.reset();
            let _ = c.enable();
        }
        self.start = Some(Snapshot::take(self.io_wq));
    }

    /// Right after the measured loop, in the worker thread.
    pub fn disable(&mut self) {
        self.end = Some(Snapshot::take(self.io_wq));
        for (_, c) in &mut self.hardware {
            let _ = c.disable();
        }
    }

    pub fn read(&mut self) -> BTreeMap<String, u64> {
        let mut out = match (&self.start, &self.end) {
            (Some(a), Some(b)) => delta(a, b, self.io_wq),
            _ => BTreeMap::new(),
        };
        for (name, c) in &mut self.hardware {
            if let Ok(v) = c.read() {
                out.insert(name.to_string(), v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_figures_are_the_threads_own_accounting_between_the_reads() {
        let mut c = ThreadCounters::open(false, false);
        c.enable();
        // Burn some CPU and fault some fresh pages in this thread.
        let mut v = vec![0u8; 64 << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        let spin_until = std::time::Instant::now() + std::time::Duration::from_millis(20);
        let mut x = 0u64;
        while std::time::Instant::now() < spin_until {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box((x, &v));
        c.disable();
        let r = c.read();
        assert!(r["task-clock"] >= 20_000_000, "{r:?}");
        assert!(r["minor-faults"] >= 1, "{r:?}");
        assert!(!r.contains_key("io-wq-task-clock"), "{r:?}");
        // Hardware counters are not taken unless asked, and say why.
        assert_eq!(c.unavailable["cycles"], HARDWARE_OFF);
        assert!(!r.contains_key("cycles"));
    }

    /// Perf events fds of this process ("anon_inode:[perf_event]").
    fn perf_fds() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|l| l.to_string_lossy().contains("perf_event"))
            })
            .count()
    }

    #[test]
    fn the_default_counters_attach_no_perf_event_to_the_thread() {
        // A perf event on the thread costs at every context switch; the default
        // (software figures, io-wq time) must not open one.
        let before = perf_fds();
        let mut c = ThreadCounters::open(false, true);
        c.enable();
        assert_eq!(perf_fds(), before);
        c.disable();
        assert!(c.read().contains_key("io-wq-task-clock"));
    }

    #[test]
    fn io_wq_time_counts_new_workers_from_zero_and_notes_the_ones_that_left() {
        let a = Snapshot {
            io_wq: BTreeMap::from([(10, 1_000), (11, 5_000)]),
            ..Snapshot::default()
        };
        let b = Snapshot {
            io_wq: BTreeMap::from([(10, 4_000), (12, 700)]),
            ..Snapshot::default()
        };
        let d = delta(&a, &b, true);
        assert_eq!(d["io-wq-task-clock"], 3_000 + 700);
        assert_eq!(d["io-wq-exited"], 1);
        assert!(!delta(&a, &b, false).contains_key("io-wq-task-clock"));
    }

    #[test]
    fn sched_fields_parse() {
        let t = "x (1, #threads: 1)\n---\nse.exec_start  :  12.5\nse.nr_migrations   :   7\n";
        assert_eq!(sched_field(t, "se.nr_migrations"), Some(7));
        assert_eq!(sched_field(t, "nr_switches"), None);
    }
}
