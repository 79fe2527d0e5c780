//! Command-line interface: one clap struct per subcommand. A leaf: it imports nothing of
//! the crate; `commands` turns these arguments into domain types (sizes, durations and
//! backings arrive as text and are parsed there, so a bad value is still a usage error).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "thpbench",
    // The version, the git commit and whether the tree was dirty (build.rs).
    version = env!("THPBENCH_LONG_VERSION"),
    about = "Benchmark Linux memory management: O_DIRECT I/O into THP-backed buffers while huge pages are split, collapsed and swapped underneath",
    long_about = "thpbench reproduces, on today's kernels, what the 2011 patch \"thp: tail page refcounting fix\" was about: pinned threads run dd-like O_DIRECT loops into buffers backed by transparent huge pages, while the huge pages are split, collapsed and swapped out under the I/O. It reports latency histograms, throughput, the vmstat counters that prove the conditions, and checks every byte.\n\nStart with `thpbench probe` to see what this machine allows, then `thpbench run` for the quick default workload.",
    after_help = "Exit codes: 0 success, 1 error, 2 usage error, 3 data mismatch found by --verify, 4 result invalid (an asked-for condition did not hold), 130 interrupted."
)]
pub struct Cli {
    /// Print what thpbench changes on the system and other details.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what this machine lets thpbench do, with reasons and remedies.
    Probe(ProbeArgs),
    /// Run a workload (the quick default without arguments) and save the result.
    Run(Box<RunArgs>),
    /// Print the summary of a saved result.
    Show(ShowArgs),
    /// Compare results: kernel A vs kernel B, with confidence intervals and significance.
    Compare(CompareArgs),
    /// Export a result for other tools: hgrm, hlog, csv, fio JSON+ and logs, KCIDB, BMF.
    Export(ExportArgs),
    /// Plot results: latency percentiles, disturbed timelines, thread scaling (SVG/PNG).
    Plot(PlotArgs),
    /// Judge a result against a good and a bad reference, for `git bisect run`: exit 0
    /// like good, 1 like bad or corrupted, 125 invalid or undecided, 128 failure.
    Bisect(Box<BisectArgs>),
    /// Run one workload on several kernels (Debian packages, .deb files, bzImages, source
    /// trees), each booted under qemu, and end with compare and plot.
    Kernels(Box<KernelsArgs>),
    /// Undo what killed or crashed runs left on this machine (swap, zram devices, THP
    /// and hugetlb knobs, cgroups, mounts, data files), from the journal in /run/thpbench.
    /// Each is first recognised as the one thpbench made; anything else is left alone.
    Cleanup(CleanupArgs),
    /// Print the exit codes and what they mean (for scripts: --json).
    #[command(hide = true)]
    ExitCodes(ExitCodesArgs),
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "KERNEL: host (this machine, no qemu); a Debian kernel package (linux-image-cloud-amd64: meta packages are followed); FILE.deb; PATH/bzImage[:MODDIR]; a kernel source tree DIR or DIR@COMMIT (built out of tree into the cache with the options the workloads need, see docs/kernels.md).\n\nExamples:\n  thpbench kernels --duration 3s quick host linux-image-cloud-amd64 linux-image-6.12-cloud-amd64 -- --repeat 3\n  thpbench kernels quick linux-image-6.12-cloud-amd64 ~/linux@v6.12 ~/linux\n  thpbench kernels --smp 4 --numa 2 --mem 4G quick linux-image-cloud-amd64 -- --cpus node:1\n  thpbench kernels --self-test"
)]
pub struct KernelsArgs {
    /// WORKLOAD (a file, or the name of one in workloads/) then KERNEL...; with
    /// --self-test at most one KERNEL (default linux-image-cloud-amd64).
    #[arg(value_name = "WORKLOAD KERNEL")]
    pub positional: Vec<String>,
    /// Passed to `thpbench run` on every kernel, after `--` (e.g. -- --repeat 3 --bs 64k).
    #[arg(last = true, value_name = "RUN-ARGS")]
    pub run_args: Vec<String>,
    /// Where results, logs, comparison and plot go (default:
    /// results/kernels/<UTC time>-<workload>).
    #[arg(short, long)]
    pub out_dir: Option<PathBuf>,
    /// Measured time per repeat, e.g. 3s (default: the workload's).
    #[arg(short, long)]
    pub duration: Option<String>,
    /// Warm-up per repeat (default: the workload's).
    #[arg(short, long)]
    pub warmup: Option<String>,
    /// Workers (default: the workload's; 0 = all CPUs).
    #[arg(short, long)]
    pub threads: Option<String>,
    /// auto (KVM when a probe boot works, else TCG), kvm or tcg (default: env
    /// THPBENCH_ACCEL, else auto).
    #[arg(long)]
    pub accel: Option<String>,
    /// Guest vCPUs: a count or a qemu -smp spec, e.g. 4,sockets=1,cores=2,threads=2.
    #[arg(long, default_value = "2")]
    pub smp: String,
    /// NUMA nodes in the guest, vCPUs and memory split evenly (0 or 1: one node).
    #[arg(long, default_value_t = 0)]
    pub numa: u32,
    /// Guest memory, e.g. 3G or 512M.
    #[arg(long, default_value = "3G")]
    pub mem: String,
    /// Guest transparent_hugepage= (always, madvise, never), `default` for the kernel's
    /// own, or `host` for this machine's current mode.
    #[arg(long, default_value = "host")]
    pub thp: String,
    /// Seconds one guest may run before it is killed.
    #[arg(long, default_value_t = 1200)]
    pub timeout: u64,
    /// The thpbench binary the guests run (default: this one).
    #[arg(long)]
    pub thpbench: Option<PathBuf>,
    /// Downloaded packages, extracted kernels, tree builds (default: env
    /// THPBENCH_KERNEL_CACHE, else ~/.cache/thpbench-kernels).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Guest architecture: auto (each kernel's image says: a bzImage is x86_64, an
    /// Image arm64), x86_64 or arm64. arm64 guests run on qemu-system-aarch64 -M virt
    /// (TCG on an x86_64 host) and need an aarch64 thpbench: scripts/build-aarch64.sh,
    /// found beside this binary or given with --thpbench.
    #[arg(long, default_value = "auto")]
    pub arch: String,
    /// Source trees: the base config (default: the tree's .config, else the arch's
    /// defconfig); the fragment the workloads need is merged into it.
    #[arg(long, value_name = "FILE")]
    pub kernel_config: Option<PathBuf>,
    /// Source trees: also build CONFIG_GUP_TEST (the gup engine's in-kernel benchmark).
    #[arg(long)]
    pub gup_test: bool,
    /// Source trees: make -j (default: the number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Skip `thpbench compare` and `thpbench plot`.
    #[arg(long)]
    pub no_compare: bool,
    /// Keep the temporary directory (initramfs, disk images, logs).
    #[arg(long)]
    pub keep: bool,
    /// Run nothing: compare and plot the results already in --out-dir.
    #[arg(long)]
    pub compare_only: bool,
    /// Boot ONE kernel (default linux-image-cloud-amd64) with a 2 s quick workload and
    /// check the result (release, ops > 0, histogram count = ops).
    #[arg(long)]
    pub self_test: bool,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Refuse while a run holds the machine lock, instead of waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct ExitCodesArgs {
    /// Print JSON: [{code, name, meaning}].
    #[arg(long)]
    pub json: bool,
    /// The codes of `thpbench bisect` (git bisect run's contract) instead of run's.
    #[arg(long)]
    pub bisect: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Directory or file whose filesystem is checked for O_DIRECT.
    #[arg(long, default_value = ".")]
    pub target: PathBuf,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub result: PathBuf,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  thpbench run                                  quick default: 4K random O_DIRECT reads, THP buffers, 5 s\n  thpbench run workloads/dd-direct.toml         the seed's dd bs=10M iflag=direct loop\n  thpbench run --target zram:1G --bs 10M --rw read --cpus 0-1\n  thpbench run --buffer mthp:64K --share shared --duration 10s\n  thpbench run workloads/seed-torture.toml --baseline"
)]
pub struct RunArgs {
    /// Workload file (TOML). Without it, the built-in quick workload.
    pub workload: Option<PathBuf>,

    /// Workload name (used in the result file name).
    #[arg(long, help_heading = "Workload")]
    pub name: Option<String>,
    /// Engine: dio (pread/pwrite O_DIRECT), uring (io_uring O_DIRECT) or gup (vmsplice
    /// page references, a control).
    #[arg(long, value_enum, help_heading = "Workload")]
    pub engine: Option<Engine>,
    /// uring: I/Os each worker keeps in flight, 1 to 256.
    #[arg(long, help_heading = "Workload")]
    pub iodepth: Option<u32>,
    /// uring: register the buffers once (long-term pin) and use READ_FIXED/WRITE_FIXED.
    #[arg(long, help_heading = "Workload")]
    pub fixed_buffers: bool,
    /// CPUs to pin one worker each to: cores (default: one per physical core), threads
    /// (every logical CPU), node:N (the cores of NUMA node N), or a list, e.g. 0-3,6.
    /// With --threads N, N of what cores, threads or node:N offer.
    #[arg(long, help_heading = "Workload")]
    pub cpus: Option<String>,
    /// Number of workers (taken from --cpus, default one per core); 0 = all. A list
    /// (1,2,4) sweeps the thread count, like will-it-scale.
    #[arg(long, help_heading = "Workload")]
    pub threads: Option<String>,
    /// Where buffer memory goes: local (each worker's buffer on its node; below 99 %
    /// the run is invalid), interleave (round-robin over nodes), any (no policy).
    #[arg(long, value_enum, help_heading = "Workload")]
    pub numa: Option<Numa>,
    /// Block size of one I/O, 512 to 64M (suffixes k, M, G).
    #[arg(long, help_heading = "Workload")]
    pub bs: Option<String>,
    /// I/O pattern.
    #[arg(long, value_enum, help_heading = "Workload")]
    pub rw: Option<Rw>,
    /// Percentage of reads in readwrite.
    #[arg(long, help_heading = "Workload")]
    pub rwmix_read: Option<u8>,
    /// Measured time per repeat, e.g. 5s, 500ms.
    #[arg(long, help_heading = "Workload")]
    pub duration: Option<String>,
    /// Stop each repeat after this many bytes (all workers together).
    #[arg(long, help_heading = "Workload")]
    pub bytes: Option<String>,
    /// Stop each repeat after this many operations (all workers together).
    #[arg(long, help_heading = "Workload")]
    pub ops: Option<u64>,
    /// Unmeasured warm-up before each repeat.
    #[arg(long, help_heading = "Workload")]
    pub warmup: Option<String>,
    /// Independent measured runs in one result.
    #[arg(long, help_heading = "Workload")]
    pub repeat: Option<usize>,
    /// Sweep a workload key over values, e.g. --sweep buffer=4k,mthp:64K,thp; repeat the
    /// flag for a cartesian product. All cases land in one result.
    #[arg(long, value_name = "KEY=V1,V2,...", help_heading = "Workload")]
    pub sweep: Vec<String>,

    /// File, block device, directory (a file is made there), or zram:SIZE (root).
    #[arg(long, help_heading = "Target")]
    pub target: Option<String>,
    /// Size of the file or I/O region.
    #[arg(long, help_heading = "Target")]
    pub size: Option<String>,
    /// Overwrite an existing file target.
    #[arg(long, help_heading = "Target")]
    pub force: bool,
    /// Allow writes to a blank, unmounted block device.
    #[arg(long, help_heading = "Target")]
    pub allow_write_device: bool,

    /// Buffer backing: thp (PMD size), 4k (base pages), mthp:SIZE (a size the kernel lists, e.g. mthp:64K; root) or hugetlb.
    #[arg(long, help_heading = "Buffers")]
    pub buffer: Option<String>,
    /// private: each thread its own huge pages; shared: all threads in the same ones.
    #[arg(long, value_enum, help_heading = "Buffers")]
    pub share: Option<Share>,
    /// Measure even if the buffers are not fully backed as asked (result marked invalid).
    #[arg(long, help_heading = "Buffers")]
    pub allow_fallback: bool,

    /// Stamp the target and check what is read (default on).
    #[arg(long, overrides_with = "no_verify", help_heading = "Integrity")]
    pub verify: bool,
    /// What verify checks of each read: `pages` (default) reads the 16-byte header of every
    /// base page (offset, fill nonce, generation: a page that holds another offset's data,
    /// stale data or none fails), cheap enough not to move the figures; `full` checks every
    /// byte, which costs about a second pass over the data (README: What the observer
    /// costs). Writes are stamped whole either way, and a write workload's final pass
    /// checks every byte after the measured window.
    #[arg(long, value_enum, help_heading = "Integrity")]
    pub verify_level: Option<VerifyLevel>,
    /// Do not check the data. Writes then carry one body of the pattern, stamped once,
    /// where verify stamps every write anew and reads it back: on zram that costs 4 KiB
    /// random writes about 4 % at queue depth 1 and 7 % at 16 (README: What the observer
    /// costs), so compare writes with verify on against on, off against off.
    #[arg(long, help_heading = "Integrity")]
    pub no_verify: bool,
    /// Seed of the verify pattern.
    #[arg(long, help_heading = "Integrity")]
    pub seed: Option<u64>,

    /// Split the huge pages under the I/O: cold, pageout, dontneed, mprotect, debugfs.
    #[arg(long, value_enum, help_heading = "Disturbers")]
    pub split: Vec<SplitMethod>,
    /// Collapse split ranges back with MADV_COLLAPSE.
    #[arg(long, help_heading = "Disturbers")]
    pub collapse: bool,
    /// Page whole huge pages out with MADV_PAGEOUT (needs swap: see --swap).
    #[arg(long, help_heading = "Disturbers")]
    pub swap_out: bool,
    /// Fork children that hold the buffers while direct-I/O reads are in flight.
    #[arg(long, help_heading = "Disturbers")]
    pub fork: bool,
    /// Force reclaim waves on the buffers through a memory cgroup limit (root, needs swap).
    #[arg(long, help_heading = "Disturbers")]
    pub pressure: bool,
    /// Interval between disturber rounds.
    #[arg(long, help_heading = "Disturbers")]
    pub every: Option<String>,
    /// Swap for swap-out: zram:SIZE, file:PATH:SIZE or existing.
    #[arg(long, help_heading = "Disturbers")]
    pub swap: Option<String>,
    /// Also run the workload without disturbers, in the same invocation, and compare.
    #[arg(long, help_heading = "Disturbers")]
    pub baseline: bool,

    /// Do not trace lock contention.
    #[arg(long, help_heading = "Measurement")]
    pub no_lock_contention: bool,
    /// Do not collect the per-thread counters (task-clock, switches, faults, io_uring punts).
    #[arg(long, help_heading = "Measurement")]
    pub no_perf: bool,
    /// Keep a run in which the process did not run for a while (SIGSTOP, a frozen
    /// cgroup, a paused VM) as measured; the stall is still recorded. Without it such a
    /// run is invalid.
    #[arg(long, help_heading = "Measurement")]
    pub keep_stalled: bool,
    /// Also count cycles, instructions and cache events per worker thread (a PMU is
    /// needed; these cost at every context switch, so they are off by default).
    #[arg(long, help_heading = "Measurement")]
    pub hw_counters: bool,

    /// Print the result JSON to stdout (the summary is not printed).
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Write the result here instead of results/<time>-<kernel>-<workload>.json.
    #[arg(short, long, help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Directory for results.
    #[arg(long, default_value = "results", help_heading = "Output")]
    pub results_dir: PathBuf,
    /// Print the resolved workload as TOML (as JSON with --json) and exit without running.
    #[arg(long, help_heading = "Output")]
    pub print_workload: bool,
    /// Testing aid: corrupt the target at this offset after filling it.
    #[arg(long, hide = true)]
    pub inject_corruption_at: Option<u64>,
    /// Testing aid: the first worker's Nth write (from 1) is answered as done but not made.
    #[arg(long, hide = true)]
    pub drop_write: Option<u64>,
    /// Testing aid: the first worker's Nth read (from 1, read-backs included) is answered
    /// as done but its data never lands in the buffer.
    #[arg(long, hide = true)]
    pub drop_read: Option<u64>,
    /// Testing aid: an in-memory target and a mock engine taking this long per operation
    /// (e.g. 2us); no root, no device, and the result is never evidence.
    #[arg(long, hide = true, value_name = "TIME")]
    pub mock: Option<String>,
    /// Testing aid (--mock): the first worker's Nth operation (from 1) reads a wrong byte.
    #[arg(long, hide = true, requires = "mock")]
    pub mock_mismatch_at: Option<u64>,
    /// Testing aid (--mock): the first worker's Nth operation moves half its bytes.
    #[arg(long, hide = true, requires = "mock")]
    pub mock_short_at: Option<u64>,
    /// Testing aid (--mock): the first worker's Nth operation fails with EIO.
    #[arg(long, hide = true, requires = "mock")]
    pub mock_error_at: Option<u64>,
    /// Refuse to start while another run holds the machine lock, instead of waiting.
    #[arg(long, help_heading = "Safety")]
    pub no_wait: bool,
    /// Undo what a killed run left on this machine (as `thpbench cleanup`) before starting.
    #[arg(long, help_heading = "Safety")]
    pub cleanup_first: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Results are grouped by kernel build (its build-id, labelled by uname -r; uname -r and -v for older results without one), machine, conditions, workload name and parameters; the runs of a group are pooled as repeats. Results from different machines (hostname, CPU model and count, memory, hypervisor) or conditions (THP settings, kernel command line, zswap, numa_balancing, khugepaged, DAMON) are refused unless --allow-different-machines, and never pooled. Each value is the mean with its 95% confidence interval; changes are judged with Welch's t-test (p < 0.05).\n\nExamples:\n  thpbench compare results/a.json results/b.json\n  thpbench compare --baseline 6.1.0 --format markdown results/*.json\n  thpbench compare --fail-on-regression 5 old.json new.json"
)]
pub struct CompareArgs {
    /// Result files (JSON from `thpbench run`).
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// The reference column: one of the result files, or a kernel release (`uname -r`).
    /// Default: the first result.
    #[arg(long, value_name = "FILE|RELEASE")]
    pub baseline: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: CompareFormat,
    /// Compare results whose workload parameters differ (the output names them).
    #[arg(long)]
    pub force: bool,
    /// Compare results from different machines or conditions (hostname, CPUs, memory,
    /// hypervisor, THP settings, kernel command line, zswap, NUMA balancing, khugepaged,
    /// DAMON): never pooled, and the differences are printed first.
    #[arg(long)]
    pub allow_different_machines: bool,
    /// Exit 1 when a metric got significantly worse by more than PCT percent.
    #[arg(long, value_name = "PCT")]
    pub fail_on_regression: Option<f64>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The rule (docs/bisect.md): the samples are the metric's per-repeat values. The references must separate: at least --min-samples a side, their ranges disjoint, their means --min-change % apart. The result is like the reference on whose side of the midpoint between the two means its 95% confidence interval lies wholly; else undecided. Several --metric: bad if any says bad, good if all say good. Corrupted data (verify mismatches, fork children that saw their copy change) is always bad.\n\nExit codes (git bisect run's): 0 like the good reference, 1 like the bad one or data corrupted, 125 skip (the result is invalid or interrupted, the evidence stays undecided, or with --kernel: the kernel does not build or boot), 128 abort (unreadable file, bad arguments, references that do not separate, qemu or other tools missing).\n\nExamples:\n  thpbench bisect --good good/*.json --bad bad/*.json -- result.json\n  thpbench bisect --good g.json --bad b.json --metric latency_ns.p99 -- result.json\n  git bisect run thpbench bisect --good ~/g.json --bad ~/b.json -- result.json\n  thpbench bisect --good g.json --bad b.json --repeat-until 10 --run workloads/quick.toml --duration 2s\n  git bisect run thpbench bisect --good ~/g.json --bad ~/b.json --metric gup_slow_path.per_1000_io --kernel . --run quick --duration 2s\n\nWith --kernel the first boot runs --min-samples repeats, each further boot one more, until decided or --repeat-until; a tree that does not build, a kernel that does not boot and a run that fails in the guest exit 125."
)]
pub struct BisectArgs {
    /// Results of the good kernel; their runs are pooled (at least --min-samples).
    #[arg(long, required = true, num_args = 1.., value_name = "GOOD.json")]
    pub good: Vec<PathBuf>,
    /// Results of the bad kernel; their runs are pooled (at least --min-samples).
    #[arg(long, required = true, num_args = 1.., value_name = "BAD.json")]
    pub bad: Vec<PathBuf>,
    /// The figure to judge, a key as `compare --format json` names it (ops_per_sec,
    /// latency_ns.p99, ...); repeat for several. Default: ops_per_sec.
    #[arg(long, value_name = "KEY")]
    pub metric: Vec<String>,
    /// The sweep case whose runs are the samples (its label, e.g. threads=4).
    #[arg(long, value_name = "LABEL")]
    pub case: Option<String>,
    /// The references' means must differ by at least PCT percent.
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    pub min_change: f64,
    /// Samples each reference needs, and the result before it is judged (LKP: 3).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub min_samples: usize,
    /// Judge results whose workload parameters differ from the references'.
    #[arg(long)]
    pub force: bool,
    /// Print the verdict and its figures as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --run or --kernel: at most N repeats, added one at a time until the verdict
    /// is decided (default 10).
    #[arg(long, value_name = "N")]
    pub repeat_until: Option<usize>,
    /// Boot this kernel under qemu and run the workload there (a form `thpbench kernels`
    /// takes: a source tree DIR or DIR@COMMIT, e.g. `.` in `git bisect run`, built into
    /// the cache; PATH/bzImage[:MODDIR]; a .deb; a package). The workload: WORKLOAD, or
    /// --run WORKLOAD [RUN FLAGS]. A tree that does not build, or a kernel that does
    /// not boot, exits 125 (skip).
    #[arg(long, value_name = "KERNEL")]
    pub kernel: Option<String>,
    /// With --kernel: where the guests' results, run logs and consoles go (default:
    /// CACHE/bisect/<UTC time>-<kernel>, outside the tree git bisect checks out).
    #[arg(
        long,
        value_name = "DIR",
        requires = "kernel",
        help_heading = "With --kernel"
    )]
    pub out_dir: Option<PathBuf>,
    /// With --kernel: auto, kvm or tcg (as `thpbench kernels --accel`).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub accel: Option<String>,
    /// With --kernel: guest vCPUs or a qemu -smp spec (default 2).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub smp: Option<String>,
    /// With --kernel: guest NUMA nodes.
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub numa: Option<String>,
    /// With --kernel: guest memory (default 3G).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub mem: Option<String>,
    /// With --kernel: guest transparent_hugepage= (default: this machine's mode).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub thp: Option<String>,
    /// With --kernel: seconds one boot may take before it is killed (default 1200).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub timeout: Option<String>,
    /// With --kernel: guest architecture (as `thpbench kernels --arch`).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub arch: Option<String>,
    /// With --kernel: the kernel cache (default: env THPBENCH_KERNEL_CACHE, else
    /// ~/.cache/thpbench-kernels).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub cache_dir: Option<PathBuf>,
    /// With --kernel, a source tree: the base config (default: the tree's .config, else
    /// the arch's defconfig), merged with the fragment the workloads need.
    #[arg(
        long,
        value_name = "FILE",
        requires = "kernel",
        help_heading = "With --kernel"
    )]
    pub kernel_config: Option<PathBuf>,
    /// With --kernel, a source tree: also build CONFIG_GUP_TEST.
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub gup_test: bool,
    /// With --kernel, a source tree: make -j (default: the number of CPUs).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub jobs: Option<String>,
    /// With --kernel: the thpbench binary the guest runs (default: this one).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub thpbench: Option<PathBuf>,
    /// With --kernel: keep the temporary directory (initramfs, disk image).
    #[arg(long, requires = "kernel", help_heading = "With --kernel")]
    pub keep: bool,
    /// Testing aid: judge mock results (--mock) as if they were evidence.
    #[arg(long, hide = true)]
    pub allow_mock: bool,
    /// The result files to judge (their runs are pooled). After `--` when they follow
    /// --good or --bad. With --kernel: the WORKLOAD (a file, a name in workloads/, or
    /// quick) instead.
    #[arg(value_name = "RESULT.json", conflicts_with = "run")]
    pub results: Vec<PathBuf>,
    /// Run the workload on this machine instead of reading results: what follows are
    /// `thpbench run`'s workload file and flags (give --run last).
    #[arg(
        long,
        num_args = 0..,
        allow_hyphen_values = true,
        value_name = "WORKLOAD [RUN FLAGS]"
    )]
    pub run: Option<Vec<String>>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  thpbench export result.json --format hgrm -o result.hgrm\n  thpbench export result.json --format hlog --run 0 -o result.hlog\n  thpbench export result.json --format csv > timeline.csv\n  thpbench export result.json --format fio-json -o result.fio.json\n  thpbench export result.json --format fio-log -o logs/thpbench\n  thpbench export result.json --format kcidb -o kcidb.json"
)]
pub struct ExportArgs {
    pub result: PathBuf,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Only this run (its `repeat` index). Default: all runs (hgrm: merged).
    #[arg(long, value_name = "N")]
    pub run: Option<usize>,
    /// Only this sweep case (its label, e.g. threads=4).
    #[arg(long, value_name = "LABEL")]
    pub case: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Result files (JSON from `thpbench run`).
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// The picture: .svg or .png.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    Dio,
    Uring,
    Gup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "lowercase")]
pub enum Rw {
    Read,
    Write,
    RandRead,
    RandWrite,
    ReadWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyLevel {
    Pages,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Share {
    Private,
    Shared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Numa {
    Local,
    Interleave,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitMethod {
    Cold,
    Pageout,
    Dontneed,
    Mprotect,
    Debugfs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// Aligned plain text for a terminal.
    Text,
    /// Aligned markdown tables that paste into a mail or a pull request as they are.
    Markdown,
    /// Every figure, for scripts.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// HdrHistogram percentile distribution (outputPercentileDistribution), in us.
    Hgrm,
    /// HdrHistogram interval log: per-second histograms, V2 + DEFLATE, base64.
    Hlog,
    /// The per-100 ms timeline: ops, bytes, p50, p99, max, disturber actions.
    Csv,
    /// The percentile table as HdrHistogram writes it in CSV form.
    PercentilesCsv,
    /// fio's JSON+ output (one job per run; fio's latency bins and percentiles).
    FioJson,
    /// fio's per-job _iops, _bw and _lat logs from the timeline; -o gives the file stub.
    FioLog,
    /// KernelCI KCIDB data (checkout, build, tests) for `kci-dev submit --from-json`.
    Kcidb,
    /// Bencher Metric Format: each figure's mean, the 95% interval as bounds.
    Bmf,
}
