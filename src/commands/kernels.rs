//! `thpbench kernels`: one workload on several kernels, each booted under qemu (or
//! `host`: this machine), then `thpbench compare` and `thpbench plot`. Turns the
//! arguments into the kernel runner's types (src/kernels) and reports per kernel.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::cli::{Cli, KernelsArgs};
use crate::compare::{compare, CompareOptions, Input, Refusal};
use crate::exit;
use crate::kernels::{
    self, guest, qemu, tools, tree, AccelMode, Arch, GuestOptions, KernelForm, ResolveOptions,
    Topology, Workdir,
};
use crate::output;
use crate::result::BenchResult;
use crate::workload::Workload;

/// The kernel the self-test boots: Debian's current 6.1 cloud kernel (a meta package).
pub const SELF_TEST_KERNEL: &str = "linux-image-cloud-amd64";

fn usage(msg: String) -> anyhow::Error {
    clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{msg}\n")).into()
}

/// The guest options from the flags.
pub fn guest_options(a: &KernelsArgs, thpbench: PathBuf, cache: PathBuf) -> Result<GuestOptions> {
    let (arch, arch_from_kernel) = match a.arch.as_str() {
        "auto" => (Arch::host().unwrap_or_default(), true),
        other => match Arch::parse(other) {
            Some(x) => (x, false),
            None => {
                return Err(usage(format!(
                    "--arch {other}: expected auto (each kernel's image says), x86_64 or arm64"
                )))
            }
        },
    };
    let accel_s = a
        .accel
        .clone()
        .or_else(|| std::env::var("THPBENCH_ACCEL").ok())
        .unwrap_or_else(|| "auto".into());
    let accel = match accel_s.as_str() {
        "auto" => AccelMode::Auto,
        "kvm" => AccelMode::Kvm,
        "tcg" => AccelMode::Tcg,
        o => return Err(usage(format!("--accel {o}: expected auto, kvm or tcg"))),
    };
    let smp: qemu::Smp = a.smp.parse().map_err(usage)?;
    let mem = qemu::parse_mem_mib(&a.mem).map_err(usage)?;
    let topology = Topology::new(smp, mem, a.numa).map_err(usage)?;
    let thp = match a.thp.as_str() {
        "default" => None,
        "host" => host_thp_mode(),
        m @ ("always" | "madvise" | "never") => Some(m.to_string()),
        o => {
            return Err(usage(format!(
                "--thp {o}: expected always, madvise, never, default or host"
            )))
        }
    };
    if a.timeout == 0 {
        return Err(usage("--timeout 0: expected seconds, at least 1".into()));
    }
    Ok(GuestOptions {
        arch,
        arch_from_kernel,
        accel,
        topology,
        thp,
        timeout: Duration::from_secs(a.timeout),
        thpbench,
        cache,
        verbose: output::is_verbose(),
    })
}

/// The selected mode in /sys/kernel/mm/transparent_hugepage/enabled (`[madvise]`).
pub fn host_thp_mode() -> Option<String> {
    crate::system::read_selected("/sys/kernel/mm/transparent_hugepage/enabled").ok()
}

/// A workload argument: a file, or the name of one in workloads/ (here, beside the
/// binary's source checkout), or `quick` (built in).
pub fn workload_file(w: &str) -> Result<Option<PathBuf>> {
    let p = Path::new(w);
    if p.is_file() {
        return Ok(Some(p.to_path_buf()));
    }
    let mut dirs = vec![PathBuf::from("workloads")];
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads"));
    for d in &dirs {
        for c in [d.join(format!("{w}.toml")), d.join(w)] {
            if c.is_file() {
                return Ok(Some(c));
            }
        }
    }
    if w == "quick" {
        return Ok(None);
    }
    bail!(
        "workload {w}: no such file, and no workloads/{w}.toml (here or in {})",
        dirs[1].display()
    )
}

/// The workload exactly as every kernel runs it: `thpbench run`'s own flags applied
/// and validated, once.
pub fn resolve_workload(a: &KernelsArgs, name: &str) -> Result<Workload> {
    let file = workload_file(name)?;
    let mut argv: Vec<String> = vec!["thpbench".into(), "run".into()];
    if let Some(f) = &file {
        argv.push(f.display().to_string());
    }
    for (flag, v) in [
        ("--duration", &a.duration),
        ("--warmup", &a.warmup),
        ("--threads", &a.threads),
    ] {
        if let Some(v) = v {
            argv.push(flag.into());
            argv.push(v.clone());
        }
    }
    argv.extend(a.run_args.iter().cloned());
    let cli = Cli::try_parse_from(&argv)
        .map_err(|e| usage(format!("RUN-ARGS {}: {}", a.run_args.join(" "), e.render())))?;
    let crate::cli::Command::Run(r) = cli.command else {
        unreachable!("parsed as run")
    };
    // Validated (with every sweep case) by the run command's own reading of it.
    super::run::workload(&r)
}

/// What a thpbench exit code says about a result.
pub fn status_of(rc: i32, log: &str, result: Option<&Path>) -> String {
    if rc == exit::OK.code {
        return "ok".into();
    }
    if rc == exit::MISMATCH.code {
        return format!(
            "DATA CORRUPTION: {} (thpbench exit {rc}; see {log})",
            corruption_cause(result)
        );
    }
    let meaning = exit::ALL
        .iter()
        .find(|c| c.code == rc)
        .map_or("thpbench failed", |c| c.meaning);
    format!("{meaning} (thpbench exit {rc}; see {log})")
}

/// Which of the mismatch exit's causes a result holds: the parent's reads that did not
/// verify, forked children whose private copy changed (COW isolation broken), or both.
pub fn corruption_cause(result: Option<&Path>) -> String {
    let Some(r) = result.and_then(|p| BenchResult::load(p).ok()) else {
        return "verify found mismatched sectors or a forked child saw its buffer change (the result could not be read)".into();
    };
    let runs: Vec<_> = r.all_runs().collect();
    let sectors: u64 = runs.iter().map(|v| v.run.verify.mismatches).sum();
    let bad = runs.iter().filter(|v| v.run.verify.mismatches > 0).count();
    let mut saw = 0;
    let mut children = 0;
    let mut saw_runs = 0;
    for v in &runs {
        let mut here = 0;
        for d in &v.run.disturbers {
            if let Some(fork) = d.fork() {
                children += fork.children;
                here += fork.saw_parent_data;
            }
        }
        saw += here;
        saw_runs += usize::from(here > 0);
    }
    let mut why = Vec::new();
    if sectors > 0 {
        why.push(format!(
            "verify found {sectors} mismatched sectors in {bad} of {} runs",
            runs.len()
        ));
    }
    if saw > 0 {
        why.push(format!("{saw} of {children} forked children saw their buffer change after fork, in {saw_runs} of {} runs (COW isolation broken; the parent's reads: {sectors} mismatched sectors)", runs.len()));
    }
    if why.is_empty() {
        "a mismatch exit but the result names no mismatch".into()
    } else {
        why.join("; ")
    }
}

struct Row {
    label: String,
    release: String,
    accel: String,
    wall_s: String,
    boot_s: String,
    status: String,
    result: String,
}

/// The binary the guests run: `--thpbench`, else this one.
pub fn thpbench_binary(given: Option<&std::path::Path>) -> Result<std::path::PathBuf> {
    match given {
        Some(p) => p
            .canonicalize()
            .with_context(|| format!("--thpbench {}", p.display())),
        None => std::env::current_exe().context("finding this thpbench binary"),
    }
}

/// `thpbench kernels`.
pub fn execute(a: &KernelsArgs) -> Result<i32> {
    crate::signals::install();
    let cache = a.cache_dir.clone().unwrap_or_else(kernels::default_cache);
    let thpbench = thpbench_binary(a.thpbench.as_deref())?;
    // The host's own runs, compare and plot need a binary of this machine's
    // architecture: --thpbench may name an arm64 build for arm64 guests.
    let native = native_thpbench(&thpbench)?;
    if a.compare_only {
        let Some(dir) = &a.out_dir else {
            return Err(usage(
                "--compare-only needs --out-dir DIR with results in it".into(),
            ));
        };
        let dir = dir
            .canonicalize()
            .with_context(|| format!("--out-dir {}", dir.display()))?;
        let mut results: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.ends_with(".json") && n.starts_with(|c: char| c.is_ascii_digit())
            })
            .collect();
        results.sort();
        if results.is_empty() {
            bail!("--compare-only: no NN-*.json results in {}", dir.display());
        }
        let guests: Vec<PathBuf> = results
            .iter()
            .filter(|p| !is_host_result(p))
            .cloned()
            .collect();
        report_all(&native, &dir, &results, &guests);
        return Ok(exit::OK.code);
    }
    let g = guest_options(a, thpbench.clone(), cache.clone())?;
    let mut a = a.clone();
    let (wl_name, specs) = if a.self_test {
        if a.positional.len() > 1 {
            return Err(usage("--self-test takes at most one KERNEL".into()));
        }
        let k = a
            .positional
            .first()
            .cloned()
            .unwrap_or_else(|| SELF_TEST_KERNEL.into());
        a.duration.get_or_insert_with(|| "2s".into());
        a.warmup.get_or_insert_with(|| "200ms".into());
        if a.run_args.is_empty() {
            a.run_args = vec!["--size".into(), "16M".into(), "--no-lock-contention".into()];
        }
        ("quick".to_string(), vec![k])
    } else {
        if a.positional.len() < 2 {
            return Err(usage(
                "need a WORKLOAD and at least one KERNEL (see thpbench kernels --help)".into(),
            ));
        }
        (a.positional[0].clone(), a.positional[1..].to_vec())
    };
    let forms = specs
        .iter()
        .map(|s| KernelForm::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let w = resolve_workload(&a, &wl_name)?;
    guest::placement(&w).map_err(usage)?;
    if forms.iter().any(|f| *f != KernelForm::Host) {
        tools::ensure_for(&cache, g.arch)?;
    }
    let work = Workdir::new(a.keep)?;
    let out_dir = match &a.out_dir {
        Some(d) => d.clone(),
        None if a.self_test => work.path.join("out"),
        None => Path::new("results/kernels").join(format!(
            "{}-{}",
            crate::util::utc_now_compact(),
            w.name
        )),
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("--out-dir {}", out_dir.display()))?;
    let out_dir = out_dir.canonicalize()?;
    let resolved = work.path.join("workload.toml");
    std::fs::write(&resolved, w.to_toml())?;
    output::info(&format!(
        "workload {} ({wl_name}), target {}; results in {}",
        w.name,
        if w.target.is_empty() {
            "none"
        } else {
            &w.target
        },
        out_dir.display()
    ));
    let ropts = ResolveOptions {
        cache: cache.clone(),
        build: tree::BuildOptions {
            arch: g.arch,
            config: a.kernel_config.clone(),
            gup_test: a.gup_test,
            jobs: a
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            cache: cache.clone(),
        },
    };
    let mut rows = Vec::new();
    let mut results = Vec::new();
    let mut guests = Vec::new();
    let mut failed = Vec::new();
    let mut accel_why = None;
    let n = forms.len();
    let mut booted = None;
    for (i, (spec, form)) in specs.iter().zip(&forms).enumerate() {
        let idx = i + 1;
        let k = match kernels::resolve(form, &ropts) {
            Ok(k) => k,
            Err(e) if e.is::<crate::signals::Interrupted>() => return Ok(exit::INTERRUPTED.code),
            Err(e) => {
                output::warn(&format!("[{idx}/{n}] kernel {spec}: {e:#}"));
                failed.push(spec.clone());
                rows.push(Row {
                    label: spec.clone(),
                    release: "-".into(),
                    accel: "-".into(),
                    wall_s: "-".into(),
                    boot_s: "-".into(),
                    status: format!("not resolved: {e}").replace(['\t', '\n'], " "),
                    result: "-".into(),
                });
                continue;
            }
        };
        let Some(k) = k else {
            // host: thpbench run on this machine, in the directory we were started from.
            let release = nix::sys::utsname::uname().map_or("unknown".into(), |u| {
                u.release().to_string_lossy().into_owned()
            });
            let prefix = format!("{idx:02}-host-{release}");
            output::info(&format!(
                "[{idx}/{n}] host: thpbench run on this machine ({release})"
            ));
            let start = Instant::now();
            let json = out_dir.join(format!("{prefix}.json"));
            let log = out_dir.join(format!("{prefix}.run.log"));
            let logf = std::fs::File::create(&log)?;
            let st = Command::new(&native)
                .arg("run")
                .arg(&resolved)
                .arg("-o")
                .arg(&json)
                .stdout(logf.try_clone()?)
                .stderr(logf)
                .status()?;
            let rc = st.code().unwrap_or(exit::INTERRUPTED.code);
            let has = json.is_file();
            let status = status_of(
                rc,
                &format!("{prefix}.run.log"),
                has.then_some(json.as_path()),
            );
            if has {
                results.push(json);
            }
            if rc != 0 {
                failed.push(spec.clone());
            }
            output::to_stderr(&std::fs::read_to_string(&log).unwrap_or_default());
            rows.push(Row {
                label: format!("host-{release}"),
                release,
                accel: "none".into(),
                wall_s: start.elapsed().as_secs().to_string(),
                boot_s: "-".into(),
                status,
                result: format!("{prefix}.json"),
            });
            continue;
        };
        // --arch auto: an arm64 kernel on an x86_64 host needs qemu-system-aarch64.
        if let Ok(ka) = kernels::form::kernel_arch(&k) {
            if ka != g.arch {
                if let Err(e) = tools::ensure_for(&cache, ka) {
                    output::warn(&format!("[{idx}/{n}] {}: {e:#}", k.label));
                }
            }
        }
        let prefix = format!("{idx:02}-{}", k.label);
        output::info(&format!(
            "[{idx}/{n}] {} under qemu ({} vCPUs, {}M{}{})",
            k.label,
            g.topology.smp.spec,
            g.topology.mem_mib,
            if g.topology.numa_nodes > 1 {
                format!(", {} NUMA nodes", g.topology.numa_nodes)
            } else {
                String::new()
            },
            k.moddir
                .as_ref()
                .map_or(String::new(), |m| format!(", modules from {}", m.display()))
        ));
        let o = match kernels::boot_workload(&k, &w, &g, &work.path, &out_dir, &prefix) {
            Ok(o) => o,
            Err(e) if e.is::<crate::signals::Interrupted>() => {
                output::warn("interrupted");
                return Ok(exit::INTERRUPTED.code);
            }
            Err(e) => {
                if e.is::<guest::KvmRefused>() {
                    return Err(e);
                }
                output::warn(&format!("[{idx}/{n}] {}: {e:#}", k.label));
                failed.push(spec.clone());
                rows.push(Row {
                    label: k.label.clone(),
                    release: k.release.clone(),
                    accel: "-".into(),
                    wall_s: "-".into(),
                    boot_s: "-".into(),
                    status: format!("failed: {e}").replace(['\t', '\n'], " "),
                    result: "-".into(),
                });
                continue;
            }
        };
        accel_why.get_or_insert_with(|| o.accel_why.clone());
        let console = format!("{prefix}.console.log");
        let status = match (&o.qemu, &o.result, o.guest_exit) {
            (guest::QemuEnd::TimedOut, _, _) => {
                format!("timed out after {}s (console: {console})", a.timeout)
            }
            (_, None, rc) => format!(
                "no result came back (guest exit {}, qemu {}; console: {console})",
                rc.map_or("none".into(), |r| r.to_string()),
                o.qemu
            ),
            (_, Some(r), Some(rc)) if rc != 0 => {
                status_of(rc, &format!("{prefix}.run.log"), Some(r))
            }
            (_, Some(_), None) => {
                format!("the guest did not say how thpbench exited (console: {console})")
            }
            _ => "ok".into(),
        };
        if let Some(r) = &o.result {
            results.push(r.clone());
            guests.push(r.clone());
        }
        if status != "ok" {
            failed.push(spec.clone());
            if !g.verbose {
                let text = std::fs::read_to_string(&o.console).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                for l in &lines[lines.len().saturating_sub(40)..] {
                    output::to_stderr(&format!("  [{}] {}\n", k.label, l.trim_end_matches('\r')));
                }
            }
        }
        if let Ok(log) = std::fs::read_to_string(out_dir.join(format!("{prefix}.run.log"))) {
            for l in log.lines() {
                output::to_stderr(&format!("  [{}] {l}\n", k.label));
            }
        }
        output::info(&format!(
            "[{idx}/{n}] {}: {status}; {:.1}s wall under {}, init after {}s, workload started after {}s of guest uptime",
            k.label,
            o.wall.as_secs_f64(),
            o.accel.name(),
            o.init_s.as_deref().unwrap_or("?"),
            o.boot_to_run_s.as_deref().unwrap_or("?")
        ));
        rows.push(Row {
            label: k.label.clone(),
            release: k.release.clone(),
            accel: o.accel.name().into(),
            wall_s: format!("{:.1}", o.wall.as_secs_f64()),
            boot_s: o.boot_to_run_s.clone().unwrap_or_else(|| "-".into()),
            status,
            result: format!("{prefix}.json"),
        });
        booted = Some((k, o));
    }
    let mut tsv = String::from("label\trelease\taccel\twall_s\tboot_to_run_s\tstatus\tresult\n");
    for r in &rows {
        let _ = writeln!(
            tsv,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.label, r.release, r.accel, r.wall_s, r.boot_s, r.status, r.result
        );
    }
    std::fs::write(out_dir.join("runs.tsv"), tsv)?;
    std::fs::write(
        out_dir.join("README.txt"),
        readme(
            &a,
            &g,
            &w,
            &wl_name,
            accel_why.as_deref(),
            booted.as_ref().map(|b| b.1.accel),
        ),
    )?;
    if a.self_test {
        let (k, o) = booted
            .as_ref()
            .context("self-test: the kernel did not boot")?;
        self_test_check(&k.release, o.result.as_deref())?;
    }
    if !a.no_compare && !results.is_empty() {
        report_all(&native, &out_dir, &results, &guests);
    }
    output::info(&format!(
        "done: {} result(s) in {}; summary {}",
        results.len(),
        out_dir.display(),
        out_dir.join("runs.tsv").display()
    ));
    if !failed.is_empty() {
        output::warn(&format!("failed: {}", failed.join(" ")));
        return Ok(exit::ERROR.code);
    }
    Ok(exit::OK.code)
}

/// `given` when it runs here (an ELF of this machine's architecture), else this
/// binary.
fn native_thpbench(given: &Path) -> Result<PathBuf> {
    let runs_here = Arch::host().is_some_and(|h| {
        kernels::inspect::read_head(given)
            .ok()
            .and_then(|b| kernels::inspect::elf_info(&b))
            .is_some_and(|e| e.machine == h.elf_machine())
    });
    if runs_here {
        return Ok(given.to_path_buf());
    }
    std::env::current_exe().context("finding this thpbench binary")
}

fn is_host_result(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().get(2..8) == Some("-host-"))
}

fn self_test_check(release: &str, result: Option<&Path>) -> Result<()> {
    let r = result.context("self-test: no result came back")?;
    let b = BenchResult::load(r)?;
    let run = b
        .runs
        .first()
        .context("self-test: the result has no runs")?;
    if b.system.kernel.release != release || run.ops == 0 || run.latency_ns.count != run.ops {
        bail!(
            "self-test: the result is wrong: release {} (expected {release}), ops {}, histogram count {}",
            b.system.kernel.release,
            run.ops,
            run.latency_ns.count
        );
    }
    output::info(&format!(
        "self-test: PASS: {release}; ops {} = histogram count; result {}",
        run.ops,
        r.display()
    ));
    Ok(())
}

fn readme(
    a: &KernelsArgs,
    g: &GuestOptions,
    w: &Workload,
    name: &str,
    why: Option<&str>,
    accel: Option<kernels::qemu::Accel>,
) -> String {
    let uname = nix::sys::utsname::uname().map_or("unknown".into(), |u| {
        u.release().to_string_lossy().into_owned()
    });
    let qemu_version = Command::new(g.arch.qemu_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(3)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".into());
    format!(
        "workload: {} ({name}{})\naccelerator: {}{}\nguests: {} vCPUs, {}M{}, transparent_hugepage={}, qemu {qemu_version}\nhost: {uname}, {} CPUs\n",
        w.name,
        if a.run_args.is_empty() { String::new() } else { format!(" with {}", a.run_args.join(" ")) },
        accel.map_or("none (host only)", |x| x.name()),
        why.map_or(String::new(), |w| format!(" ({w})")),
        g.topology.smp.spec,
        g.topology.mem_mib,
        if g.topology.numa_nodes > 1 { format!(", {} NUMA nodes", g.topology.numa_nodes) } else { String::new() },
        g.thp.as_deref().unwrap_or("the kernel's default"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// `thpbench compare` (markdown and text) and `thpbench plot` over `results`, run in
/// `dir` with the file names, so the tables name files, not this machine's paths.
fn compare_and_plot(thpbench: &Path, dir: &Path, name: &str, results: &[PathBuf]) {
    let rel: Vec<String> = results
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string())
        .collect();
    let run = |args: &[&str]| {
        Command::new(thpbench)
            .args(args)
            .args(&rel)
            .current_dir(dir)
            .output()
    };
    // compare refuses results whose resolved workloads differ (the host's target is not
    // the guests'), and results from different machines or conditions (a qemu guest is
    // another machine than the host): say so, with compare's own reasons, before
    // overriding exactly what it refused.
    let mut force: Vec<&str> = Vec::new();
    let inputs: Result<Vec<Input>> = rel
        .iter()
        .map(|name| {
            Ok(Input {
                path: PathBuf::from(name),
                result: BenchResult::load(&dir.join(name))?,
            })
        })
        .collect();
    let refused = inputs.map(|inputs| compare(&inputs, &CompareOptions::default()));
    if let Ok(Err(e)) = &refused {
        output::to_stderr(&format!("{e}\n"));
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            if refusal.needs_force() {
                output::warn("the results' workloads differ (above); comparing with --force: the tables name the differing parameters");
                force.push("--force");
            }
            if refusal.needs_allow_different_machines() {
                output::warn("the results come from different machines or conditions (above); comparing with --allow-different-machines: the tables print the differences first");
                force.push(crate::compare::ALLOW_DIFFERENT_MACHINES);
            }
        }
    }
    let md = dir.join(format!("{name}.md"));
    output::info(&format!("thpbench compare (markdown) -> {}", md.display()));
    for (fmt, file) in [
        ("markdown", md.clone()),
        ("text", dir.join(format!("{name}.txt"))),
    ] {
        let mut args = vec!["compare"];
        args.extend(&force);
        args.extend(["--format", fmt]);
        match run(&args) {
            Ok(o) if o.status.success() => {
                let _ = std::fs::write(&file, &o.stdout);
                if fmt == "markdown" {
                    output::to_stdout(&String::from_utf8_lossy(&o.stdout));
                }
            }
            Ok(o) => output::warn(&format!(
                "thpbench compare ({fmt}) failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => output::warn(&format!("thpbench compare: {e}")),
        }
    }
    let plot = name.replace("compare", "plot");
    for ext in ["svg", "png"] {
        let target = dir.join(format!("{plot}.{ext}"));
        let t = target.display().to_string();
        match run(&["plot", "-o", &t]) {
            Ok(o) if o.status.success() => {}
            Ok(o) => output::warn(&format!(
                "thpbench plot failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => output::warn(&format!("thpbench plot: {e}")),
        }
    }
    output::info(&format!(
        "plot: {}",
        dir.join(format!("{plot}.svg")).display()
    ));
}

fn report_all(thpbench: &Path, dir: &Path, results: &[PathBuf], guests: &[PathBuf]) {
    compare_and_plot(thpbench, dir, "compare", results);
    // The host ran on real CPUs and its own disk: set beside emulated guests it mostly
    // shows the cost of emulation. The guests among themselves share the same conditions.
    if guests.len() >= 2 && guests.len() < results.len() {
        output::info(
            "the guests alone (same accelerator, same virtual machine), baseline the first guest:",
        );
        compare_and_plot(thpbench, dir, "compare-guests", guests);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> KernelsArgs {
        let mut v = vec!["thpbench", "kernels"];
        v.extend(extra);
        match Cli::try_parse_from(v).unwrap().command {
            crate::cli::Command::Kernels(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_become_guest_options() {
        let a = args(&[
            "--smp",
            "4,sockets=1,cores=2,threads=2",
            "--numa",
            "2",
            "--mem",
            "4G",
            "--thp",
            "never",
            "--accel",
            "tcg",
            "quick",
            "host",
        ]);
        let g = guest_options(&a, "/t".into(), "/c".into()).unwrap();
        assert_eq!(g.accel, AccelMode::Tcg);
        assert_eq!(g.topology.smp.threads_per_core, Some(2));
        assert_eq!((g.topology.mem_mib, g.topology.numa_nodes), (4096, 2));
        assert_eq!(g.thp.as_deref(), Some("never"));
        assert_eq!(g.timeout, Duration::from_secs(1200));
        assert_eq!(
            guest_options(&args(&["--thp", "default"]), "/t".into(), "/c".into())
                .unwrap()
                .thp,
            None
        );
        for bad in [
            &["--smp", "3", "--numa", "2"][..],
            &["--accel", "xen"],
            &["--thp", "sometimes"],
            &["--arch", "sparc"],
            &["--mem", "3T"],
        ] {
            let e = guest_options(&args(bad), "/t".into(), "/c".into()).unwrap_err();
            assert!(e.downcast_ref::<clap::Error>().is_some(), "{bad:?}: {e}");
        }
        let e = guest_options(&args(&["--arch", "sparc"]), "/t".into(), "/c".into()).unwrap_err();
        assert!(e.to_string().contains("x86_64 or arm64"), "{e}");
        let arm = guest_options(&args(&["--arch", "aarch64"]), "/t".into(), "/c".into()).unwrap();
        assert_eq!((arm.arch, arm.arch_from_kernel), (Arch::Arm64, false));
        let auto = guest_options(&args(&[]), "/t".into(), "/c".into()).unwrap();
        assert!(auto.arch_from_kernel, "auto is the default");
        assert_eq!(Some(auto.arch), Arch::host());
    }

    #[test]
    fn compare_and_host_runs_use_a_binary_that_runs_here() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(native_thpbench(&me).unwrap(), me);
        // A foreign ELF (an arm64 build given for arm64 guests) is replaced by this one.
        let d = tempfile::tempdir().unwrap();
        let foreign = d.path().join("thpbench");
        let mut elf = std::fs::read(&me).unwrap()[..64].to_vec();
        let other = Arch::ALL
            .into_iter()
            .find(|a| Some(*a) != Arch::host())
            .unwrap();
        elf[18..20].copy_from_slice(&other.elf_machine().to_le_bytes());
        std::fs::write(&foreign, elf).unwrap();
        assert_eq!(native_thpbench(&foreign).unwrap(), me);
    }

    #[test]
    fn run_args_follow_the_double_dash() {
        let a = args(&[
            "-d",
            "3s",
            "quick",
            "host",
            "linux-image-cloud-amd64",
            "--",
            "--repeat",
            "3",
            "--bs",
            "64k",
        ]);
        assert_eq!(a.positional, ["quick", "host", "linux-image-cloud-amd64"]);
        assert_eq!(a.run_args, ["--repeat", "3", "--bs", "64k"]);
        let w = resolve_workload(&a, "quick").unwrap();
        assert_eq!(w.name, "quick");
        assert_eq!(w.repeat, 3);
        assert_eq!(w.bs.bytes(), 64 << 10);
        assert_eq!(w.duration.to_string(), "3s");
        let bad = args(&["quick", "host", "--", "--no-such-flag"]);
        assert!(resolve_workload(&bad, "quick").is_err());
        let e = resolve_workload(&args(&["x"]), "no-such-workload")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no-such-workload"), "{e}");
    }

    #[test]
    fn statuses_name_the_exit_code() {
        assert_eq!(status_of(0, "r.log", None), "ok");
        assert_eq!(
            status_of(4, "r.log", None),
            format!("{} (thpbench exit 4; see r.log)", exit::INVALID.meaning)
        );
        assert_eq!(
            status_of(77, "r.log", None),
            "thpbench failed (thpbench exit 77; see r.log)"
        );
        assert!(status_of(3, "r.log", None)
            .starts_with("DATA CORRUPTION: verify found mismatched sectors or a forked child"));
        assert_eq!(
            crate::system::selected("always [madvise] never\n"),
            "madvise"
        );
        assert!(is_host_result(Path::new("/x/01-host-6.18.json")));
        assert!(!is_host_result(Path::new(
            "/x/02-6.1.0-57-cloud-amd64.json"
        )));
        let s = crate::util::utc_now_compact();
        assert!(
            s.len() == 16 && s.ends_with('Z') && s.as_bytes()[8] == b'T',
            "{s}"
        );
    }
}
