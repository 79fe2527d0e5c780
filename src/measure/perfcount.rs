//! Per worker thread perf counters for the measured window. Each worker opens its own
//! counters (observing the calling thread) before the run, enables them right before
//! the measured loop and disables them right after: nothing in the hot loop.
//! Software events always; hardware events where a PMU exists (not in most VMs).

use std::collections::BTreeMap;

use perf_event::events::{Hardware, Software};
use perf_event::{Builder, Counter};

pub struct ThreadCounters {
    counters: Vec<(&'static str, Counter)>,
    /// Counter name -> why it could not be opened.
    pub unavailable: BTreeMap<String, String>,
    pub kernel_included: bool,
}

enum Kind {
    Sw(Software),
    Hw(Hardware),
}

const EVENTS: [(&str, Kind); 9] = [
    ("task-clock", Kind::Sw(Software::TASK_CLOCK)),
    ("context-switches", Kind::Sw(Software::CONTEXT_SWITCHES)),
    ("cpu-migrations", Kind::Sw(Software::CPU_MIGRATIONS)),
    ("minor-faults", Kind::Sw(Software::PAGE_FAULTS_MIN)),
    ("major-faults", Kind::Sw(Software::PAGE_FAULTS_MAJ)),
    ("cycles", Kind::Hw(Hardware::CPU_CYCLES)),
    ("instructions", Kind::Hw(Hardware::INSTRUCTIONS)),
    ("cache-references", Kind::Hw(Hardware::CACHE_REFERENCES)),
    ("cache-misses", Kind::Hw(Hardware::CACHE_MISSES)),
];

pub use crate::system::probe::capability::is_hardware_counter as is_hardware;

impl ThreadCounters {
    /// Opens every counter for the calling thread, disabled. Kernel-mode counts are
    /// included when allowed (root, or perf_event_paranoid <= 1).
    pub fn open() -> ThreadCounters {
        let kernel_included = crate::system::is_root()
            || crate::system::probe::perf_event_paranoid().is_some_and(|p| p <= 1);
        let mut out = ThreadCounters {
            counters: Vec::new(),
            unavailable: BTreeMap::new(),
            kernel_included,
        };
        for (name, kind) in &EVENTS {
            let name = *name;
            let mut b = match kind {
                Kind::Sw(e) => Builder::new(*e),
                Kind::Hw(e) => Builder::new(*e),
            };
            b.exclude_kernel(!kernel_included);
            match b.build() {
                Ok(c) => out.counters.push((name, c)),
                Err(e) => {
                    let why = match e.raw_os_error() {
                        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) if is_hardware(name) => {
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

    pub fn enable(&mut self) {
        for (_, c) in &mut self.counters {
            let _ = c.reset();
            let _ = c.enable();
        }
    }

    pub fn disable(&mut self) {
        for (_, c) in &mut self.counters {
            let _ = c.disable();
        }
    }

    pub fn read(&mut self) -> BTreeMap<String, u64> {
        self.counters
            .iter_mut()
            .filter_map(|(name, c)| c.read().ok().map(|v| (name.to_string(), v)))
            .collect()
    }
}
