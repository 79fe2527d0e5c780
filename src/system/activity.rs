//! How busy the machine was besides thpbench while a run measured: the load average, and
//! on the workers' CPUs the time stolen by the hypervisor and the time other tasks ran,
//! from /proc/stat per-CPU deltas less thpbench's own threads' time
//! (/proc/self/task/*/stat). Sampled from the main thread, at most every
//! [`SAMPLE_EVERY_NS`], while every worker still runs (a finished worker's thread and
//! its time are gone from /proc), so the window ends within that much of the run's end.

use std::collections::BTreeMap;

use crate::result::HostActivity;

/// How often the main thread reads /proc while the workers run: two small reads, on a
/// housekeeping CPU.
pub const SAMPLE_EVERY_NS: u64 = 200_000_000;

/// /proc/stat's per-CPU fields user, nice, system, idle, iowait, irq, softirq, steal
/// (guest time is already inside user and nice).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTicks {
    pub busy: u64,
    pub idle: u64,
    pub steal: u64,
}

impl CpuTicks {
    fn total(&self) -> u64 {
        self.busy + self.idle + self.steal
    }
}

/// Per CPU (None: the `cpu` line of all CPUs) its ticks, from /proc/stat text.
pub fn parse_proc_stat(text: &str) -> BTreeMap<Option<usize>, CpuTicks> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(name) = f.next().and_then(|n| n.strip_prefix("cpu")) else {
            continue;
        };
        let cpu = if name.is_empty() {
            None
        } else {
            match name.parse() {
                Ok(n) => Some(n),
                Err(_) => continue,
            }
        };
        let v: Vec<u64> = f.take(8).filter_map(|x| x.parse().ok()).collect();
        if v.len() < 8 {
            continue;
        }
        out.insert(
            cpu,
            CpuTicks {
                busy: v[0] + v[1] + v[2] + v[5] + v[6],
                idle: v[3] + v[4],
                steal: v[7],
            },
        );
    }
    out
}

/// (CPU it last ran on, utime + stime ticks) of a /proc/<pid>/task/<tid>/stat line.
pub fn parse_task_stat(text: &str) -> Option<(usize, u64)> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is f[0]: utime is field 14, stime 15, processor 39.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let cpu: usize = f.get(36)?.parse().ok()?;
    Some((cpu, utime + stime))
}

fn own_threads() -> BTreeMap<u32, (usize, u64)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        if let Some(s) = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|t| parse_task_stat(&t))
        {
            out.insert(tid, s);
        }
    }
    out
}

fn loadavg_1m() -> f64 {
    crate::system::read_trimmed("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

#[derive(Debug, Clone)]
struct Sample {
    at_ns: u64,
    cpus: BTreeMap<Option<usize>, CpuTicks>,
    threads: BTreeMap<u32, (usize, u64)>,
}

impl Sample {
    fn take() -> Option<Sample> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        Some(Sample {
            at_ns: crate::clock::now_ns(),
            cpus: parse_proc_stat(&text),
            threads: own_threads(),
        })
    }
}

/// The figures between two samples over `cpus`.
fn activity(
    cpus: &[usize],
    start: &Sample,
    end: &Sample,
    load: (f64, f64),
) -> Option<HostActivity> {
    let delta = |cpu: Option<usize>| -> Option<CpuTicks> {
        let (a, b) = (start.cpus.get(&cpu)?, end.cpus.get(&cpu)?);
        Some(CpuTicks {
            busy: b.busy.saturating_sub(a.busy),
            idle: b.idle.saturating_sub(a.idle),
            steal: b.steal.saturating_sub(a.steal),
        })
    };
    let mut sum = CpuTicks::default();
    for &cpu in cpus {
        let d = delta(Some(cpu))?;
        sum.busy += d.busy;
        sum.idle += d.idle;
        sum.steal += d.steal;
    }
    // Our threads' time, credited to the CPU each was last seen on (the workers are
    // pinned, so theirs is exact).
    let ours: u64 = end
        .threads
        .iter()
        .filter(|(_, (cpu, _))| cpus.contains(cpu))
        .map(|(tid, (_, t))| t.saturating_sub(start.threads.get(tid).map_or(0, |s| s.1)))
        .sum();
    let all = delta(None).unwrap_or_default();
    let share = |x: u64, of: u64| if of == 0 { 0.0 } else { x as f64 / of as f64 };
    Some(HostActivity {
        loadavg_1m_before: load.0,
        loadavg_1m_after: load.1,
        window_ns: end.at_ns.saturating_sub(start.at_ns),
        cpus: cpus.to_vec(),
        ticks: sum.total(),
        steal_share: share(sum.steal, sum.total()),
        other_busy_share: share(sum.busy.saturating_sub(ours), sum.total()),
        system_steal_share: share(all.steal, all.total()),
    })
}

/// The sampler of one run, started when the workers are released.
pub struct ActivityProbe {
    cpus: Vec<usize>,
    loadavg_before: f64,
    start: Option<Sample>,
    last: Option<Sample>,
}

impl ActivityProbe {
    pub fn start(cpus: &[usize]) -> ActivityProbe {
        ActivityProbe {
            cpus: cpus.to_vec(),
            loadavg_before: loadavg_1m(),
            start: Sample::take(),
            last: None,
        }
    }

    /// Call while every worker still runs; reads /proc at most every SAMPLE_EVERY_NS.
    pub fn sample(&mut self) {
        let due = self
            .last
            .as_ref()
            .or(self.start.as_ref())
            .is_some_and(|s| crate::clock::now_ns() >= s.at_ns + SAMPLE_EVERY_NS);
        if due {
            if let Some(s) = Sample::take() {
                self.last = Some(s);
            }
        }
    }

    /// The run's figures; a run shorter than one sampling period is read at its end
    /// (then a worker that already stopped has its time counted as another task's).
    pub fn finish(self) -> Option<HostActivity> {
        let start = self.start?;
        let end = self.last.or_else(Sample::take)?;
        activity(
            &self.cpus,
            &start,
            &end,
            (self.loadavg_before, loadavg_1m()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_and_task_stat_parse() {
        let stat = "cpu  63674 1690 15593 8776 2780 0 303 470 0 0\ncpu0 31675 821 7196 5025 1648 0 6 272 0 0\ncpu1 31999 869 8396 3751 1131 0 296 197 0 0\nintr 1 2 3\n";
        let p = parse_proc_stat(stat);
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[&Some(1)],
            CpuTicks {
                busy: 31999 + 869 + 8396 + 296,
                idle: 3751 + 1131,
                steal: 197
            }
        );
        // A line as the kernel writes it (this is `cat`'s own), the name given spaces and
        // a parenthesis: utime 150, stime 50, processor 3.
        let task = "23955 (thpbench w1 (x)) R 23953 23953 9328 0 -1 4194304 99 0 0 0 150 50 0 0 20 0 1 0 241649 3133440 390 18446744073709551615 94292925116416 94292925136297 140732913193520 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0";
        assert_eq!(parse_task_stat(task), Some((3, 200)));
        assert_eq!(parse_task_stat("1 (init) S 0"), None);
    }

    fn sample(
        at_ns: u64,
        cpus: &[(Option<usize>, CpuTicks)],
        threads: &[(u32, usize, u64)],
    ) -> Sample {
        Sample {
            at_ns,
            cpus: cpus.iter().copied().collect(),
            threads: threads.iter().map(|&(t, c, v)| (t, (c, v))).collect(),
        }
    }

    /// Over 100 ticks of CPU 1: 60 busy of which our worker took 40, 10 stolen: others
    /// ran 20%. A thread on another CPU does not count against CPU 1.
    #[test]
    fn others_are_busy_time_less_our_threads_on_the_workers_cpus() {
        let t = |busy, idle, steal| CpuTicks { busy, idle, steal };
        let start = sample(
            0,
            &[
                (None, t(0, 0, 0)),
                (Some(0), t(0, 0, 0)),
                (Some(1), t(100, 0, 0)),
            ],
            &[(10, 1, 5), (11, 0, 0)],
        );
        let end = sample(
            1_000_000_000,
            &[
                (None, t(150, 40, 10)),
                (Some(0), t(50, 10, 0)),
                (Some(1), t(160, 30, 10)),
            ],
            &[(10, 1, 45), (11, 0, 50)],
        );
        let a = activity(&[1], &start, &end, (1.0, 2.0)).unwrap();
        assert_eq!(a.ticks, 100);
        assert!((a.other_busy_share - 0.2).abs() < 1e-12, "{a:?}");
        assert!((a.steal_share - 0.1).abs() < 1e-12);
        assert!((a.system_steal_share - 0.05).abs() < 1e-12);
        assert_eq!(a.window_ns, 1_000_000_000);
        assert!(a.flag().unwrap().contains("20.0%"), "{:?}", a.flag());
        // All of it ours: nothing to flag.
        let quiet = sample(1, &[(Some(1), t(160, 40, 0))], &[(10, 1, 65)]);
        let start = sample(0, &[(Some(1), t(100, 0, 0))], &[(10, 1, 5)]);
        let a = activity(&[1], &start, &quiet, (0.0, 0.0)).unwrap();
        assert_eq!(a.other_busy_share, 0.0);
        assert_eq!(a.flag(), None);
    }
}
