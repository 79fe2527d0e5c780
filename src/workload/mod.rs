//! The workload spec: what a run does. Read from TOML (unknown keys rejected), overridden
//! by command-line flags, validated, and stored resolved in every result.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::units::{parse_size, Duration, Size};

mod disturb;
mod spec;
mod sweep;

pub use disturb::{DisturbKind, DisturbSpec, SplitMethod};
pub use spec::{CpuSpec, Numa, SwapSpec, VerifyLevel};
pub use sweep::{sweep_cases, SweepCaseSpec, SweepParams, SweepValue, TypedSweepKey};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Short name, used in result file names and legends.
    pub name: String,
    pub description: String,
    /// `dio`: pread/pwrite with O_DIRECT; `uring`: io_uring O_DIRECT reads/writes;
    /// `gup`: vmsplice page references, no device (a control).
    pub engine: Engine,
    /// I/Os each worker keeps in flight (fio's meaning); only the uring engine queues.
    pub iodepth: u32,
    /// uring: register the buffers once (a long-term pin) and use READ_FIXED/WRITE_FIXED
    /// instead of pinning the pages on every I/O.
    pub fixed_buffers: bool,
    /// CPUs to run one pinned worker each on: "cores" (empty means the same: one per
    /// physical core), "threads" (every logical CPU), "node:N", or a list like "0-3,6".
    pub cpus: String,
    /// Number of workers taken from what `cpus` offers, spread over nodes and packages
    /// (src/system/topology.rs); 0 means all of it. Ignored when `cpus` is a list.
    pub threads: usize,
    /// NUMA placement of the buffers: "local" (each worker's on its node; a run below
    /// 99 % local is invalid), "interleave", or "any" (no policy).
    pub numa: Numa,
    /// Block size of one operation.
    pub bs: Size,
    pub rw: Rw,
    /// Percentage of reads for `readwrite`.
    pub rwmix_read: u8,
    /// Measured time per repeat; ignored when `bytes` or `ops` is set.
    pub duration: Duration,
    /// Stop each repeat after this many bytes in total (all workers).
    pub bytes: Option<Size>,
    /// Stop each repeat after this many operations in total (all workers).
    pub ops: Option<u64>,
    /// Unmeasured time before each repeat.
    pub warmup: Duration,
    /// Independent measured runs in one result.
    pub repeat: usize,
    /// A file path, a block device, or `zram:SIZE`. `.` or empty: a temporary file in
    /// the current directory.
    pub target: String,
    /// The I/O region: the first `size` bytes of the target. Absent: the whole target
    /// (a block device, an existing file, a zram device), or 64 MiB for a created file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Overwrite an existing file target (it is otherwise only read).
    pub force: bool,
    /// Allow writes to a block device that holds no filesystem and is not mounted.
    pub allow_write_device: bool,
    pub buffer: Backing,
    pub share: Share,
    /// Split private I/O into one iovec per base page, as shared I/O always is, so that
    /// private and shared cases differ only in folio sharing (for shared-vs-private ratios).
    pub per_page_iovecs: bool,
    /// Accept buffers that are not fully backed as asked; the result is marked invalid.
    pub allow_fallback: bool,
    /// Stamp every 512 B sector and check what is read (see `verify_level`).
    pub verify: bool,
    /// How much of each read verify checks: `pages` (the header of every base page, the
    /// default: cheap enough to keep on while measuring) or `full` (every byte).
    #[serde(default)]
    pub verify_level: crate::workload::VerifyLevel,
    pub seed: u64,
    /// Disturbers acting on the buffers while the I/O runs.
    pub disturb: Vec<DisturbSpec>,
    /// Swap to use for swap-out: `zram:SIZE`, `file:PATH:SIZE` or `existing`.
    pub swap: Option<String>,
    /// Trace lock:contention_begin/end during measured runs (when available).
    pub lock_contention: bool,
    /// Per-thread counters, read around the measured loop (task-clock, context
    /// switches, faults, migrations; uring: its io-wq threads' CPU and the punt counts).
    pub perf: bool,
    /// Also the hardware perf events (cycles, instructions, caches) on each worker
    /// thread, where a PMU exists. Off by default: a thread's perf events are switched
    /// at every context switch, a cost per I/O wherever the I/O sleeps.
    pub hw_counters: bool,
    /// Sweep: workload key -> values; every combination is measured in one invocation,
    /// e.g. `sweep = { threads = [1, 2, 4], buffer = ["4k", "thp"] }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sweep: BTreeMap<String, Vec<SweepValue>>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "custom".into(),
            description: String::new(),
            engine: Engine::Dio,
            iodepth: 1,
            fixed_buffers: false,
            cpus: String::new(),
            threads: 0,
            numa: Numa::Local,
            bs: Size(4096),
            rw: Rw::RandRead,
            rwmix_read: 50,
            duration: Duration(5_000_000_000),
            bytes: None,
            ops: None,
            warmup: Duration(500_000_000),
            repeat: 1,
            target: String::new(),
            size: None,
            force: false,
            allow_write_device: false,
            buffer: Backing::Thp,
            share: Share::Private,
            per_page_iovecs: false,
            allow_fallback: false,
            verify: true,
            verify_level: crate::workload::VerifyLevel::Pages,
            seed: 0x7468_7062_656e_6368, // "thpbench"
            disturb: Vec::new(),
            swap: None,
            lock_contention: true,
            perf: true,
            hw_counters: false,
            sweep: BTreeMap::new(),
        }
    }
}

/// The built-in default workload, identical to workloads/quick.toml.
pub const QUICK_TOML: &str = include_str!("../../workloads/quick.toml");

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Dio,
    Uring,
    Gup,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Rw {
    Read,
    Write,
    RandRead,
    RandWrite,
    ReadWrite,
}

impl Rw {
    pub fn is_random(self) -> bool {
        matches!(self, Rw::RandRead | Rw::RandWrite)
    }
    pub fn writes(self) -> bool {
        matches!(self, Rw::Write | Rw::RandWrite | Rw::ReadWrite)
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Share {
    #[default]
    Private,
    Shared,
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Share::Private => "private",
            Share::Shared => "shared",
        })
    }
}

/// What backs the I/O buffers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backing {
    /// PMD-sized transparent huge pages (MADV_HUGEPAGE).
    #[default]
    Thp,
    /// Base pages only (MADV_NOHUGEPAGE): written `4k` (as results always have), parsed
    /// also from `base`; 16 KiB pages on a 16K arm64 kernel.
    Base,
    /// Multi-size THP of the given size in bytes: a size the kernel lists under
    /// /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB (16 KiB .. 1 MiB with 4 KiB
    /// pages, 64 KiB .. 16 MiB with 16 KiB pages).
    Mthp(u64),
    /// hugetlbfs pages of the default huge page size (MAP_HUGETLB).
    Hugetlb,
}

impl fmt::Display for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Thp => f.write_str("thp"),
            Backing::Base => f.write_str("4k"),
            Backing::Mthp(sz) => write!(f, "mthp:{}", crate::units::format_size(*sz)),
            Backing::Hugetlb => f.write_str("hugetlb"),
        }
    }
}

impl std::str::FromStr for Backing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "thp" | "pmd" => Ok(Backing::Thp),
            "4k" | "base" | "none" => Ok(Backing::Base),
            "hugetlb" => Ok(Backing::Hugetlb),
            other => match other.strip_prefix("mthp:") {
                Some(size) => {
                    let bytes = parse_size(size)?;
                    if !bytes.is_power_of_two() || bytes < 8192 {
                        return Err(format!(
                            "mthp size `{size}` must be a power of two of at least 8K (16K..1M on x86-64)"
                        ));
                    }
                    Ok(Backing::Mthp(bytes))
                }
                None => Err(format!(
                    "unknown buffer backing `{s}`; use thp, 4k, mthp:SIZE (e.g. mthp:64K) or hugetlb"
                )),
            },
        }
    }
}

impl Serialize for Backing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Backing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parse errors that point at the place in the file, as compilers do.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}")]
pub struct WorkloadParseError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Workload {
    /// Buffer slots per worker: the uring engine keeps `iodepth` I/Os in flight, each
    /// in its own slot; the other engines have one I/O at a time.
    pub fn slots_per_worker(&self) -> usize {
        if self.engine == Engine::Uring {
            self.iodepth as usize
        } else {
            1
        }
    }
    /// Keys that may be absent from a serialized workload (optional ones) but can be swept.
    const KNOWN_KEYS: &'static [&'static str] = &["bytes", "ops", "swap"];

    /// The one rule for verify: what the workload asks (`verify`, on by default, with or
    /// without disturbers; --verify and --no-verify set it), except for the gup engine,
    /// which moves no data and so has nothing to check. Returns why it turned verify off.
    pub fn settle_verify(&mut self) -> Option<&'static str> {
        if self.engine == Engine::Gup && self.verify {
            self.verify = false;
            return Some("the gup engine reads no data, so verify is off");
        }
        None
    }

    /// Parses a workload file's text. `path` is only used in messages.
    pub fn from_toml(text: &str, path: &str) -> Result<Workload, WorkloadParseError> {
        toml::from_str::<Workload>(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => line_column(text, span.start),
                None => (1, 1),
            };
            let mut message = e.message().trim().to_string();
            // Name the field when the message does not (bad values: "unknown size suffix").
            let line_text = text.lines().nth(line - 1).unwrap_or("");
            if let Some((key, _)) = line_text.split_once('=') {
                let key = key.trim();
                if !key.is_empty() && !key.starts_with('[') && !message.contains(key) {
                    message = format!("`{key}`: {message}");
                }
            }
            WorkloadParseError {
                path: path.to_string(),
                line,
                column,
                message,
            }
        })
    }

    pub fn load(path: &Path) -> anyhow::Result<Workload> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read workload file {}: {e}", path.display()))?;
        let mut w = Workload::from_toml(&text, &path.display().to_string())?;
        if w.name == Workload::default().name {
            if let Some(stem) = path.file_stem() {
                w.name = stem.to_string_lossy().into_owned();
            }
        }
        Ok(w)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a workload always serializes")
    }

    /// Checks what can be checked without looking at the machine, but for its page
    /// geometry (base page and PMD size, crate::pages).
    pub fn validate(&self) -> Result<(), String> {
        let bs = self.bs.bytes();
        if !(512..=64 << 20).contains(&bs) {
            return Err(format!(
                "bs = {} is out of range: use 512 bytes to 64M",
                self.bs
            ));
        }
        if !bs.is_multiple_of(512) {
            return Err(format!(
                "bs = {bs} is not a multiple of 512: O_DIRECT needs sector-aligned sizes"
            ));
        }
        if let Some(size) = self.size.filter(|s| s.bytes() < bs) {
            return Err(format!(
                "size = {size} is smaller than bs = {}: the region must hold at least one block",
                self.bs
            ));
        }
        if self.rwmix_read > 100 {
            return Err(format!(
                "rwmix_read = {} is a percentage: use 0..100",
                self.rwmix_read
            ));
        }
        if self.repeat == 0 {
            return Err("repeat = 0: at least one measured run is needed".into());
        }
        if self.duration.as_nanos() == 0 && self.bytes.is_none() && self.ops.is_none() {
            return Err(
                "duration = 0 and neither bytes nor ops set: the run would never stop".into(),
            );
        }
        if let Some(Size(0)) = self.bytes {
            return Err(
                "bytes = 0: nothing to do; set a positive byte count or use duration".into(),
            );
        }
        if self.ops == Some(0) {
            return Err("ops = 0: nothing to do; set a positive count or use duration".into());
        }
        if !self.cpus.is_empty() {
            let spec = CpuSpec::parse(&self.cpus).map_err(|e| format!("cpus: {e}"))?;
            if self.threads > 0 && matches!(spec, CpuSpec::List(_)) {
                return Err(format!(
                    "cpus = \"{}\" lists the CPUs, so threads = {} would be ignored; list {} CPUs, or take {} from \"cores\", \"threads\" or \"node:N\"",
                    self.cpus, self.threads, self.threads, self.threads
                ));
            }
        }
        self.validate_engine()?;
        if let Backing::Mthp(sz) = self.buffer {
            let pmd = crate::pages::pmd_size();
            if sz >= pmd {
                return Err(format!(
                    "buffer = {}: mTHP sizes are below this kernel's PMD size ({}); use buffer = \"thp\" for {}",
                    self.buffer,
                    crate::units::format_size(pmd),
                    crate::units::format_size(pmd)
                ));
            }
        }
        for d in &self.disturb {
            if d.kind == DisturbKind::Split && d.method.is_none() {
                return Err("[[disturb]] kind = \"split\" needs a method: cold, pageout, dontneed, mprotect or debugfs".into());
            }
            if d.kind != DisturbKind::Split && d.method.is_some() {
                return Err(format!(
                    "[[disturb]] kind = \"{}\" takes no method (only split does)",
                    d.kind.as_str()
                ));
            }
            if !(d.fraction > 0.0 && d.fraction <= 1.0) {
                return Err(format!(
                    "[[disturb]] {}: fraction = {} must be in (0, 1]",
                    d.label(),
                    d.fraction
                ));
            }
            if d.every.as_nanos() < 100_000 {
                return Err(format!(
                    "[[disturb]] {}: every = {} is below 100us; the disturber would starve the workers",
                    d.label(),
                    d.every
                ));
            }
        }
        if let Some(swap) = &self.swap {
            SwapSpec::parse(swap).map_err(|e| format!("swap: {e}"))?;
        }
        Ok(())
    }
}

impl Workload {
    /// The engine's own limits: queue depth, registered buffers, gup's page multiples.
    fn validate_engine(&self) -> Result<(), String> {
        if !(1..=256).contains(&self.iodepth) {
            return Err(format!(
                "iodepth = {} is out of range: use 1 to 256 I/Os in flight per worker",
                self.iodepth
            ));
        }
        if self.engine != Engine::Uring && self.iodepth != 1 {
            return Err(format!(
                "iodepth = {} needs engine = \"uring\": the {} engine does one I/O at a time",
                self.iodepth,
                self.engine.as_str()
            ));
        }
        if self.engine != Engine::Uring && self.fixed_buffers {
            return Err(format!(
                "fixed_buffers = true needs engine = \"uring\" (io_uring registered buffers), not {}",
                self.engine.as_str()
            ));
        }
        let page = crate::pages::base_page() as u64;
        if self.engine == Engine::Gup && !self.bs.bytes().is_multiple_of(page) {
            return Err(format!(
                "bs = {} with engine = \"gup\": vmsplice references whole base pages ({} on this kernel), so bs must be a multiple of {}",
                self.bs,
                crate::units::format_size(page),
                crate::units::format_size(page)
            ));
        }
        Ok(())
    }
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Dio => "dio",
            Engine::Uring => "uring",
            Engine::Gup => "gup",
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Workload::default().validate().unwrap();
    }

    #[test]
    fn a_disturber_left_at_its_defaults_in_toml_is_the_flags_one() {
        for kind in ["pressure", "fork", "collapse"] {
            let w = Workload::from_toml(&format!("[[disturb]]\nkind = \"{kind}\"\n"), "t.toml")
                .unwrap();
            let d = &w.disturb[0];
            assert_eq!(*d, DisturbSpec::new(d.kind, None), "{kind}");
        }
        let w = Workload::from_toml("[[disturb]]\nkind = \"pressure\"\n", "t.toml").unwrap();
        assert_eq!(w.disturb[0].fraction, 0.5);
        assert_eq!(w.disturb[0].every, Duration(50_000_000));
        let w = Workload::from_toml(
            "[[disturb]]\nkind = \"pressure\"\nfraction = 0.25\nevery = \"1s\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(w.disturb[0].fraction, 0.25);
        assert_eq!(w.disturb[0].every, Duration(1_000_000_000));
        let err = Workload::from_toml("[[disturb]]\nkind = \"fork\"\nholds = \"1s\"\n", "t.toml")
            .unwrap_err();
        assert!(err.to_string().contains("holds"), "{err}");
    }

    #[test]
    fn the_gup_engine_turns_verify_off_and_says_so() {
        let mut w = Workload {
            engine: Engine::Gup,
            ..Workload::default()
        };
        assert!(w.settle_verify().is_some_and(|why| why.contains("gup")));
        assert!(!w.verify);
        let mut dio = Workload::default();
        assert_eq!(dio.settle_verify(), None);
        assert!(dio.verify);
    }

    #[test]
    fn parses_sizes_and_enums_from_toml() {
        let w = Workload::from_toml(
            "name = \"t\"\nbs = \"10M\"\nrw = \"read\"\nbuffer = \"mthp:64K\"\nshare = \"shared\"\nduration = \"2s\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(w.bs, Size(10 << 20));
        assert_eq!(w.rw, Rw::Read);
        assert_eq!(w.buffer, Backing::Mthp(64 << 10));
        assert_eq!(w.share, Share::Shared);
        assert_eq!(w.duration, Duration(2_000_000_000));
        w.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_rejected_with_line_and_column() {
        let err = Workload::from_toml("name = \"x\"\n\nthreds = 4\n", "w.toml").unwrap_err();
        assert_eq!((err.line, err.column), (3, 1));
        assert!(err.message.contains("threds"), "{}", err.message);
        assert!(err.to_string().starts_with("w.toml:3:1:"), "{err}");
    }

    #[test]
    fn bad_value_points_at_the_value() {
        let err = Workload::from_toml("bs = \"4q\"\n", "w.toml").unwrap_err();
        assert_eq!(err.line, 1);
        assert_eq!(err.column, 6);
        assert!(
            err.message.contains("unknown size suffix") && err.message.starts_with("`bs`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn validation_rejects_bad_specs() {
        let mut w = Workload {
            bs: Size(1000),
            ..Workload::default()
        };
        assert!(w.validate().unwrap_err().contains("multiple of 512"));
        w.bs = Size(128 << 20);
        assert!(w.validate().unwrap_err().contains("out of range"));
        w.bs = Size(4096);
        w.repeat = 0;
        assert!(w.validate().is_err());
        w.repeat = 1;
        w.disturb.push(DisturbSpec::new(DisturbKind::Split, None));
        assert!(w.validate().unwrap_err().contains("needs a method"));
        w.disturb[0].method = Some(SplitMethod::Cold);
        w.validate().unwrap();
        w.disturb[0].fraction = 0.0;
        assert!(w.validate().unwrap_err().contains("fraction"));
    }

    #[test]
    fn resolved_spec_round_trips_through_toml_and_json() {
        let mut w = Workload {
            buffer: Backing::Mthp(16 << 10),
            bytes: Some(Size(1 << 30)),
            ..Workload::default()
        };
        w.disturb.push(DisturbSpec::new(
            DisturbKind::Split,
            Some(SplitMethod::Dontneed),
        ));
        w.swap = Some("zram:1G".into());
        let back = Workload::from_toml(&w.to_toml(), "x").unwrap();
        assert_eq!(back, w);
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<Workload>(&json).unwrap(), w);
    }

    #[test]
    fn sweep_cases_are_the_cartesian_product_and_each_is_validated() {
        let w = Workload::from_toml(
            "sweep = { threads = [1, 2], buffer = [\"4k\", \"thp\"] }\n",
            "s.toml",
        )
        .unwrap();
        let cases = sweep_cases(&w).unwrap();
        let labels: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            labels,
            [
                "buffer=4k threads=1",
                "buffer=4k threads=2",
                "buffer=thp threads=1",
                "buffer=thp threads=2"
            ]
        );
        assert_eq!(cases[3].2.threads, 2);
        assert_eq!(cases[0].2.buffer, Backing::Base);
        assert!(cases.iter().all(|c| c.2.sweep.is_empty()));
        let bad = Workload::from_toml("sweep = { bs = [\"4q\"] }\n", "s.toml").unwrap();
        assert!(sweep_cases(&bad)
            .unwrap_err()
            .contains("unknown size suffix"));
        let unknown = Workload::from_toml("sweep = { bogus = [1] }\n", "s.toml").unwrap();
        assert!(sweep_cases(&unknown)
            .unwrap_err()
            .contains("not a workload key"));
        assert_eq!(sweep_cases(&Workload::default()).unwrap().len(), 1);
        // The one validation covers a workload without a sweep too.
        let unswept = Workload {
            bs: Size(1000),
            ..Workload::default()
        };
        assert!(sweep_cases(&unswept)
            .unwrap_err()
            .contains("multiple of 512"));
    }

    #[test]
    fn engine_limits_are_checked() {
        let mut w = Workload {
            engine: Engine::Uring,
            iodepth: 16,
            fixed_buffers: true,
            ..Workload::default()
        };
        w.validate().unwrap();
        w.iodepth = 0;
        assert!(w.validate().unwrap_err().contains("1 to 256"));
        w.iodepth = 257;
        assert!(w.validate().unwrap_err().contains("1 to 256"));
        w.iodepth = 2;
        w.engine = Engine::Dio;
        assert!(w
            .validate()
            .unwrap_err()
            .contains("needs engine = \"uring\""));
        w.iodepth = 1;
        assert!(w.validate().unwrap_err().contains("fixed_buffers"));
        w.fixed_buffers = false;
        w.engine = Engine::Gup;
        w.bs = Size(512 * 3);
        let page = crate::units::format_size(crate::pages::base_page() as u64);
        assert!(w
            .validate()
            .unwrap_err()
            .contains(&format!("multiple of {page}")));
    }

    #[test]
    fn fixed_buffers_sweeps_as_booleans() {
        let w = Workload::from_toml(
            "engine = \"uring\"\nsweep = { fixed_buffers = [false, true] }\n",
            "s.toml",
        )
        .unwrap();
        let cases = sweep_cases(&w).unwrap();
        assert_eq!(cases[0].0, "fixed_buffers=false");
        assert!(!cases[0].2.fixed_buffers && cases[1].2.fixed_buffers);
        assert_eq!(SweepValue::parse("true"), SweepValue::Bool(true));
    }

    #[test]
    fn backing_parses() {
        assert_eq!("thp".parse::<Backing>().unwrap(), Backing::Thp);
        assert_eq!("4k".parse::<Backing>().unwrap(), Backing::Base);
        assert!("mthp:48K".parse::<Backing>().is_err());
        assert!("huge"
            .parse::<Backing>()
            .unwrap_err()
            .contains("unknown buffer backing"));
    }
}
