//! A kernel source tree as a kernel form: built out of tree with the kernel's own make
//! (`make O=<cache dir>`), from the tree's .config (or a given one, or x86_64_defconfig)
//! plus the fragment the workloads need, incrementally, with the modules installed into
//! a staging directory for the initramfs, and cached by commit and config digest.
//!
//! A git tree is never checked out or written: the sources are a `git clone --shared` in
//! the cache (objects borrowed from the tree), moved to the commit asked for
//! (`DIR@COMMIT`, else the tree's HEAD plus its uncommitted diff). `git checkout` only
//! touches files that differ, so one persistent build directory per config stays
//! incremental from commit to commit, as a bisection needs.

use std::path::{Path, PathBuf};

use std::process::Command;

use anyhow::{bail, Context, Result};

use super::qemu::Arch;
use super::tools;
use crate::output;

/// `DIR` or `DIR@COMMIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSpec {
    pub dir: PathBuf,
    pub commit: Option<String>,
}

impl TreeSpec {
    /// Takes `DIR@COMMIT` when DIR is a directory; a directory whose own name holds an
    /// `@` is taken whole.
    pub fn parse(spec: &str) -> Option<TreeSpec> {
        if Path::new(spec).is_dir() {
            return Some(TreeSpec {
                dir: spec.into(),
                commit: None,
            });
        }
        let (dir, commit) = spec.rsplit_once('@')?;
        (Path::new(dir).is_dir() && !commit.is_empty()).then(|| TreeSpec {
            dir: dir.into(),
            commit: Some(commit.into()),
        })
    }
}

/// One config option the fragment sets, and why the workloads need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt {
    pub name: &'static str,
    /// `y`, `m`, or `n` for "is not set".
    pub value: &'static str,
    pub why: &'static str,
}

const fn y(name: &'static str, why: &'static str) -> Opt {
    Opt {
        name,
        value: "y",
        why,
    }
}

/// What every guest needs: boot from an initramfs, talk on two 8250 ports, mount the
/// scratch disk, and give the workloads their THP, zram, swap, NUMA, cgroup and tracing
/// facilities. Built in (=y), so the guest does not depend on loading modules for them.
/// docs/kernels.md lists the same options with the same reasons.
pub const FRAGMENT: &[Opt] = &[
    y(
        "CONFIG_BLK_DEV_INITRD",
        "the initramfs holds init, busybox and thpbench",
    ),
    y("CONFIG_RD_GZIP", "the initramfs is gzip-compressed"),
    y(
        "CONFIG_DEVTMPFS",
        "init mounts devtmpfs for /dev/vda, /dev/ttyS1, /dev/zram*",
    ),
    y("CONFIG_TMPFS", "/tmp, /run and /dev/shm are tmpfs"),
    y(
        "CONFIG_SERIAL_8250",
        "the console and the result channel are 8250 UARTs",
    ),
    y("CONFIG_SERIAL_8250_CONSOLE", "console=ttyS0"),
    y("CONFIG_VIRTIO_PCI", "the scratch disk is virtio-blk on PCI"),
    y("CONFIG_VIRTIO_BLK", "the scratch disk"),
    y(
        "CONFIG_EXT4_FS",
        "the scratch disk is ext4, made fresh on the host",
    ),
    y("CONFIG_SMP", "--smp guests"),
    y(
        "CONFIG_SCHED_SMT",
        "--smp ...,threads=N: SMT siblings in the topology",
    ),
    y(
        "CONFIG_NUMA",
        "--numa guests; the numa = local/interleave workloads",
    ),
    y(
        "CONFIG_TRANSPARENT_HUGEPAGE",
        "THP and mTHP buffers (mTHP sizes are under it since 6.8), MADV_COLLAPSE, khugepaged",
    ),
    y("CONFIG_SWAP", "the swap-out disturber and zram swap"),
    y("CONFIG_ZSMALLOC", "zram's allocator"),
    y("CONFIG_ZRAM", "zram:SIZE targets and swap on zram"),
    y("CONFIG_MEMCG", "the cgroup that bounds memory for swap-out"),
    y("CONFIG_CGROUPS", "cgroup2, mounted by init"),
    y(
        "CONFIG_PROC_PAGE_MONITOR",
        "/proc/PID/pagemap: proof of the buffers' backing",
    ),
    y(
        "CONFIG_DEBUG_FS",
        "the debugfs split method; CONFIG_GUP_TEST's interface",
    ),
    y("CONFIG_FTRACE", "tracefs and the tracepoints below"),
    y(
        "CONFIG_ENABLE_DEFAULT_TRACERS",
        "selects TRACING, which the lock and mmap_lock tracepoints need",
    ),
    y(
        "CONFIG_PERF_EVENTS",
        "perf counters and tracepoint sampling with callchains",
    ),
    y(
        "CONFIG_KALLSYMS",
        "kernel callchains name their functions (lock callers)",
    ),
    y("CONFIG_KALLSYMS_ALL", "the same, for static functions"),
    Opt {
        name: "CONFIG_MODULE_SIG_FORCE",
        value: "n",
        why: "the guest loads modules built here, signed or not",
    },
];

/// Only where asked (`--gup-test`): the in-kernel GUP benchmark the gup engine reads.
pub const GUP_TEST: Opt = y(
    "CONFIG_GUP_TEST",
    "the gup engine's in-kernel GUP_FAST/PIN_FAST benchmark (/sys/kernel/debug/gup_test)",
);

/// The fragment for these options.
pub fn fragment(gup_test: bool) -> Vec<Opt> {
    let mut f = FRAGMENT.to_vec();
    if gup_test {
        f.push(GUP_TEST);
    }
    f
}

/// The fragment as the kernel's merge_config.sh would read it.
pub fn fragment_text(opts: &[Opt]) -> String {
    opts.iter().map(config_line).collect()
}

fn config_line(o: &Opt) -> String {
    if o.value == "n" {
        format!("# {} is not set\n", o.name)
    } else {
        format!("{}={}\n", o.name, o.value)
    }
}

/// The option a .config line sets, if any.
fn line_option(line: &str) -> Option<&str> {
    if let Some(name) = line
        .strip_prefix("# ")
        .and_then(|r| r.strip_suffix(" is not set"))
    {
        return name.starts_with("CONFIG_").then_some(name);
    }
    line.strip_prefix("CONFIG_")
        .and_then(|_| line.split_once('='))
        .map(|(k, _)| k)
}

/// `base` with the fragment's options set: each option's line replaced where the base
/// has one, appended where not (olddefconfig then resolves what they select).
pub fn merge(base: &str, opts: &[Opt]) -> String {
    let mut out = String::new();
    let mut done = vec![false; opts.len()];
    for line in base.lines() {
        match line_option(line).and_then(|o| opts.iter().position(|x| x.name == o)) {
            Some(i) => {
                if !done[i] {
                    out.push_str(&config_line(&opts[i]));
                    done[i] = true;
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (o, d) in opts.iter().zip(done) {
        if !d {
            out.push_str(&config_line(o));
        }
    }
    out
}

/// Options the fragment sets only for what they select: when the selected option is on
/// anyway, the asked one may stay off. ENABLE_DEFAULT_TRACERS depends on !GENERIC_TRACER,
/// so a config with any tracer (x86_64_defconfig's, for one) cannot have it, and has
/// TRACING through GENERIC_TRACER instead.
const SATISFIED_BY: &[(&str, &str)] = &[("CONFIG_ENABLE_DEFAULT_TRACERS", "CONFIG_TRACING")];

fn value_of<'a>(config: &'a str, name: &str) -> &'a str {
    config
        .lines()
        .find_map(|l| match line_option(l) {
            Some(n) if n == name => Some(l.split_once('=').map_or("n", |(_, v)| v)),
            _ => None,
        })
        .unwrap_or("n")
}

/// The fragment's options that the final .config (after olddefconfig) does not have as
/// asked: a dependency is missing, or the option does not exist in this kernel.
/// A `y` asked and `m` given is not enough (the guest does not load it).
pub fn missing(config: &str, opts: &[Opt]) -> Vec<String> {
    opts.iter()
        .filter_map(|o| {
            let got = value_of(config, o.name);
            if got == o.value {
                return None;
            }
            let selected_anyway = SATISFIED_BY
                .iter()
                .any(|(asked, sel)| *asked == o.name && value_of(config, sel) == o.value);
            (!selected_anyway).then(|| format!("{}={} (got {got}): {}", o.name, o.value, o.why))
        })
        .collect()
}

/// The cache key of a build: the commit, the digest of any uncommitted diff, and the
/// digest of the config input (base config + fragment). 12 + 16 hex digits keep the
/// directory names short and collisions out of reach.
pub fn cache_key(commit: &str, diff: &[u8], config_input: &str) -> String {
    let mut k = commit.chars().take(12).collect::<String>();
    if !diff.is_empty() {
        k.push_str("-dirty");
        k.push_str(&crate::digest::sha256_hex(diff)[..8]);
    }
    k.push_str("-cfg");
    k.push_str(&crate::digest::sha256_hex(config_input.as_bytes())[..16]);
    k
}

/// A stable name for a source tree in the cache: its canonical path's digest.
pub fn tree_id(canonical: &Path) -> String {
    let name = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{name}-{}",
        &crate::digest::sha256_hex(canonical.as_os_str().as_encoded_bytes())[..12]
    )
}

/// Where a tree's build lives under the cache directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDirs {
    /// The shared clone the build reads (None: the tree itself, not a git tree).
    pub src: PathBuf,
    /// make's O=: persistent per config digest, so rebuilds are incremental.
    pub obj: PathBuf,
    /// The finished build of one key: bzImage, config, modules/, done.
    pub out: PathBuf,
}

impl BuildDirs {
    pub fn new(cache: &Path, tree_id: &str, key: &str, git: bool, tree: &Path) -> BuildDirs {
        let base = cache.join("trees").join(tree_id);
        let cfg = key.rsplit_once("-cfg").map_or(key, |(_, c)| c);
        BuildDirs {
            src: if git {
                base.join("src")
            } else {
                tree.to_path_buf()
            },
            obj: base.join(format!("obj-{cfg}")),
            out: base.join("builds").join(key),
        }
    }
}

/// The make command lines of a build, in order (argv each).
pub fn make_commands(
    arch: Arch,
    src: &Path,
    obj: &Path,
    jobs: usize,
    stage: &Path,
    modules: bool,
) -> Vec<Vec<String>> {
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "make".into(),
            "-C".into(),
            src.display().to_string(),
            format!("O={}", obj.display()),
            format!("ARCH={}", arch.make_arch()),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let jobs = format!("-j{jobs}");
    let mut build = vec![jobs.as_str(), arch.image_target()];
    if modules {
        build.push("modules");
    }
    let mut cmds = vec![base(&["olddefconfig"]), base(&build)];
    if modules {
        cmds.push(base(&[
            &format!("INSTALL_MOD_PATH={}", stage.display()),
            "INSTALL_MOD_STRIP=1",
            "DEPMOD=/sbin/depmod",
            "modules_install",
        ]));
    }
    cmds
}

/// How to build a tree.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub arch: Arch,
    /// The base config; None: the tree's .config, else the arch's defconfig.
    pub config: Option<PathBuf>,
    pub gup_test: bool,
    pub jobs: usize,
    pub cache: PathBuf,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct BuiltTree {
    pub image: PathBuf,
    /// lib/modules/RELEASE under the staging directory; None without CONFIG_MODULES.
    pub moddir: Option<PathBuf>,
    pub release: String,
    pub key: String,
    /// Taken from the cache, nothing built.
    pub cached: bool,
    /// The commit built (None: not a git tree).
    pub commit: Option<String>,
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir);
    c
}

/// The tree did not build at this commit with this config: make failed, or the config
/// cannot have what the workloads need. Typed so that `thpbench bisect` can tell a
/// commit that does not build (git bisect's skip) from its own machinery failing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildFailed(pub String);

/// The make invocation's output goes to `log`; on failure its tail is in the error, a
/// [`BuildFailed`].
fn run_logged(argv: &[String], log: &Path) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening the build log {}", log.display()))?;
    writeln!(f, "$ {}", argv.join(" "))?;
    let st = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(f.try_clone()?)
        .stderr(f)
        .status()
        .with_context(|| format!("cannot run {} (is it installed?)", argv[0]))?;
    if !st.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(BuildFailed(format!(
            "`{}` failed ({st}); the last lines of {}:\n{}",
            argv.join(" "),
            log.display(),
            tail.join("\n")
        ))
        .into());
    }
    Ok(())
}

/// Builds the tree (or takes the build from the cache).
pub fn build(spec: &TreeSpec, o: &BuildOptions) -> Result<BuiltTree> {
    let dir = spec
        .dir
        .canonicalize()
        .with_context(|| format!("kernel source tree {}", spec.dir.display()))?;
    if !dir.join("Kconfig").is_file() || !dir.join("Makefile").is_file() {
        bail!(
            "kernel {}: not a kernel source tree (no Kconfig and Makefile at its top)",
            dir.display()
        );
    }
    let is_git = git(&dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .ok()
        .filter(|x| x.status.success())
        .is_some_and(|x| Path::new(String::from_utf8_lossy(&x.stdout).trim()) == dir);
    let (commit, diff) = if is_git {
        let rev = spec.commit.clone().unwrap_or_else(|| "HEAD".into());
        let sha =
            tools::stdout(git(&dir).args(["rev-parse", "--verify", &format!("{rev}^{{commit}}")]))
                .with_context(|| format!("kernel {}@{rev}: no such commit", dir.display()))?;
        // The working tree's uncommitted changes count only when no commit was named.
        let diff = if spec.commit.is_none() {
            tools::run(git(&dir).args(["diff", "HEAD", "--binary"]))?.stdout
        } else {
            Vec::new()
        };
        (Some(sha), diff)
    } else {
        if let Some(c) = &spec.commit {
            bail!(
                "kernel {}@{c}: {} is not a git tree, so it has no commits",
                dir.display(),
                dir.display()
            );
        }
        (None, Vec::new())
    };
    let base = match &o.config {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("--kernel-config {}", f.display()))?,
        ),
        None => std::fs::read_to_string(dir.join(".config")).ok(),
    };
    let opts = fragment(o.gup_test);
    let config_input = format!(
        "{}\n# thpbench fragment\n{}",
        base.as_deref().unwrap_or("defconfig\n"),
        fragment_text(&opts)
    );
    let key = cache_key(commit.as_deref().unwrap_or("nogit"), &diff, &config_input);
    let dirs = BuildDirs::new(&o.cache, &tree_id(&dir), &key, is_git, &dir);
    let done = dirs.out.join("done");
    if commit.is_some() && diff.is_empty() && done.is_file() {
        return finished(&dirs, key, true, commit);
    }
    std::fs::create_dir_all(&dirs.obj)?;
    let log = dirs.obj.join("build.log");
    let _ = std::fs::remove_file(&log);
    if let Some(sha) = &commit {
        if !dirs.src.join(".git").exists() {
            output::info(&format!(
                "cloning {} (shared objects) into {}",
                dir.display(),
                dirs.src.display()
            ));
            tools::run(
                Command::new("git")
                    .args(["clone", "-q", "--shared", "--no-checkout"])
                    .arg(&dir)
                    .arg(&dirs.src),
            )?;
        }
        // The clone borrows the tree's object store, so any commit of it is there.
        tools::run(git(&dirs.src).args(["reset", "-q", "--hard"]))?;
        tools::run(git(&dirs.src).args(["checkout", "-q", "-f", "--detach", sha]))?;
        if !diff.is_empty() {
            let mut child = Command::new("git")
                .arg("-C")
                .arg(&dirs.src)
                .args(["apply", "--binary", "-"])
                .stdin(std::process::Stdio::piped())
                .spawn()?;
            {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&diff)?;
            }
            if !child.wait()?.success() {
                bail!("applying {}'s uncommitted changes to the build copy failed; commit them, or name a commit (DIR@COMMIT)", dir.display());
            }
        }
    }
    let merged = match &base {
        Some(b) => merge(b, &opts),
        None => {
            let mut argv =
                make_commands(o.arch, &dirs.src, &dirs.obj, o.jobs, Path::new(""), false)[0]
                    .clone();
            *argv.last_mut().unwrap() = o.arch.defconfig().to_string();
            run_logged(&argv, &log)?;
            merge(&std::fs::read_to_string(dirs.obj.join(".config"))?, &opts)
        }
    };
    // Written only when it changed: an unchanged .config keeps the build incremental.
    let cfg_path = dirs.obj.join(".config");
    if std::fs::read_to_string(&cfg_path).ok().as_deref() != Some(&merged) {
        std::fs::write(&cfg_path, &merged)?;
    }
    let tmp = dirs.out.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let stage = tmp.join("modules");
    let first = make_commands(o.arch, &dirs.src, &dirs.obj, o.jobs, &stage, false);
    output::info(&format!(
        "building {} at {} in {} (log: {})",
        dir.display(),
        commit.as_deref().unwrap_or("its working tree"),
        dirs.obj.display(),
        log.display()
    ));
    run_logged(&first[0], &log)?;
    let final_cfg = std::fs::read_to_string(&cfg_path)?;
    let lost = missing(&final_cfg, &opts);
    if !lost.is_empty() {
        return Err(BuildFailed(format!(
            "kernel {}: the config lacks what the workloads need after `make olddefconfig` (a dependency is off, or this kernel has no such option):\n  {}\nset them in the base config (--kernel-config) and try again",
            dir.display(),
            lost.join("\n  ")
        ))
        .into());
    }
    let modules = final_cfg.lines().any(|l| l == "CONFIG_MODULES=y");
    for argv in &make_commands(o.arch, &dirs.src, &dirs.obj, o.jobs, &stage, modules)[1..] {
        run_logged(argv, &log)?;
    }
    let release = tools::stdout(
        Command::new("make")
            .args(["-s", "-C"])
            .arg(&dirs.src)
            .arg(format!("O={}", dirs.obj.display()))
            .arg(format!("ARCH={}", o.arch.make_arch()))
            .arg("kernelrelease"),
    )?;
    std::fs::copy(dirs.obj.join(o.arch.image_path()), tmp.join("image"))?;
    std::fs::copy(&cfg_path, tmp.join("config"))?;
    std::fs::write(tmp.join("release"), &release)?;
    std::fs::write(
        tmp.join("done"),
        format!("{}\n", commit.as_deref().unwrap_or("")),
    )?;
    let _ = std::fs::remove_dir_all(&dirs.out);
    std::fs::create_dir_all(dirs.out.parent().unwrap())?;
    std::fs::rename(&tmp, &dirs.out)?;
    finished(&dirs, key, false, commit)
}

fn finished(
    dirs: &BuildDirs,
    key: String,
    cached: bool,
    commit: Option<String>,
) -> Result<BuiltTree> {
    let release = std::fs::read_to_string(dirs.out.join("release"))?
        .trim()
        .to_string();
    let moddir = dirs.out.join("modules/lib/modules").join(&release);
    Ok(BuiltTree {
        image: dirs.out.join("image"),
        moddir: moddir.is_dir().then_some(moddir),
        release,
        key,
        cached,
        commit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_appends_and_unsets() {
        let base = "#\n# comment\n#\nCONFIG_ZRAM=m\n# CONFIG_SWAP is not set\nCONFIG_FOO=y\nCONFIG_MODULE_SIG_FORCE=y\n";
        let opts = [
            y("CONFIG_ZRAM", "z"),
            y("CONFIG_SWAP", "s"),
            y("CONFIG_NUMA", "n"),
            Opt {
                name: "CONFIG_MODULE_SIG_FORCE",
                value: "n",
                why: "m",
            },
        ];
        let m = merge(base, &opts);
        assert_eq!(
            m,
            "#\n# comment\n#\nCONFIG_ZRAM=y\nCONFIG_SWAP=y\nCONFIG_FOO=y\n# CONFIG_MODULE_SIG_FORCE is not set\nCONFIG_NUMA=y\n"
        );
        // Merging again changes nothing: the digest of the input is stable.
        assert_eq!(merge(&m, &opts), m);
        assert!(missing(&m, &opts).is_empty());
        // A base with none of them: all appended, in the fragment's order.
        assert_eq!(merge("", &opts[..2]), "CONFIG_ZRAM=y\nCONFIG_SWAP=y\n");
    }

    #[test]
    fn missing_names_options_olddefconfig_dropped() {
        let opts = fragment(true);
        // olddefconfig dropped GUP_TEST (no DEBUG_FS) and made ZRAM a module.
        let cfg = merge("", &opts)
            .replace("CONFIG_GUP_TEST=y\n", "")
            .replace("CONFIG_ZRAM=y", "CONFIG_ZRAM=m");
        let m = missing(&cfg, &opts);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("CONFIG_ZRAM=y (got m)"), "{m:?}");
        assert!(m[1].starts_with("CONFIG_GUP_TEST=y (got n)"), "{m:?}");
        // The fragment asks for GUP_TEST only when told to.
        assert!(fragment(false).iter().all(|o| o.name != "CONFIG_GUP_TEST"));
        // ENABLE_DEFAULT_TRACERS is asked for the TRACING it selects: a config that has
        // TRACING through another tracer (GENERIC_TRACER) lacks nothing.
        let tracers = merge("", &opts).replace(
            "CONFIG_ENABLE_DEFAULT_TRACERS=y\n",
            "# CONFIG_ENABLE_DEFAULT_TRACERS is not set\n",
        );
        let m = missing(&tracers, &fragment(false));
        assert!(
            m.len() == 1 && m[0].starts_with("CONFIG_ENABLE_DEFAULT_TRACERS=y (got n)"),
            "{m:?}"
        );
        let generic = format!("{tracers}CONFIG_GENERIC_TRACER=y\nCONFIG_TRACING=y\n");
        assert!(missing(&generic, &fragment(false)).is_empty());
        assert!(fragment_text(&fragment(true)).contains("CONFIG_GUP_TEST=y\n"));
        assert!(fragment_text(&fragment(true)).contains("# CONFIG_MODULE_SIG_FORCE is not set\n"));
    }

    #[test]
    fn cache_keys_follow_commit_diff_and_config() {
        let c = "0123456789abcdef0123456789abcdef01234567";
        let k = cache_key(c, b"", "CONFIG_A=y\n");
        assert!(
            k.starts_with("0123456789ab-cfg") && k.len() == 12 + 4 + 16,
            "{k}"
        );
        assert_eq!(k, cache_key(c, b"", "CONFIG_A=y\n"), "deterministic");
        assert_ne!(
            k,
            cache_key(c, b"", "CONFIG_A=m\n"),
            "config changes the key"
        );
        assert_ne!(k, cache_key("fedcba9876543210", b"", "CONFIG_A=y\n"));
        let d = cache_key(c, b"--- a/mm/gup.c\n", "CONFIG_A=y\n");
        assert!(d.contains("-dirty") && d != k, "{d}");
        assert_ne!(d, cache_key(c, b"--- a/mm/huge_memory.c\n", "CONFIG_A=y\n"));
        // Same config, two commits: one obj dir (incremental), two build outputs.
        let t = Path::new("/src/linux");
        let a = BuildDirs::new(Path::new("/c"), "linux-x", &k, true, t);
        let b = BuildDirs::new(
            Path::new("/c"),
            "linux-x",
            &cache_key("fedcba98765432", b"", "CONFIG_A=y\n"),
            true,
            t,
        );
        assert_eq!(a.obj, b.obj);
        assert_ne!(a.out, b.out);
        assert_eq!(a.src, Path::new("/c/trees/linux-x/src"));
        assert_eq!(
            BuildDirs::new(Path::new("/c"), "linux-x", &k, false, t).src,
            t
        );
        let id = tree_id(Path::new("/home/me/linux"));
        assert!(id.starts_with("linux-") && id != tree_id(Path::new("/home/you/linux")));
    }

    #[test]
    fn make_command_lines() {
        let c = make_commands(
            Arch::X86_64,
            Path::new("/c/src"),
            Path::new("/c/obj"),
            2,
            Path::new("/c/out/modules"),
            true,
        );
        let s: Vec<String> = c.iter().map(|v| v.join(" ")).collect();
        assert_eq!(
            s,
            [
                "make -C /c/src O=/c/obj ARCH=x86 olddefconfig",
                "make -C /c/src O=/c/obj ARCH=x86 -j2 bzImage modules",
                "make -C /c/src O=/c/obj ARCH=x86 INSTALL_MOD_PATH=/c/out/modules INSTALL_MOD_STRIP=1 DEPMOD=/sbin/depmod modules_install",
            ]
        );
        // A kernel without CONFIG_MODULES: no modules target, nothing to install.
        let c = make_commands(
            Arch::X86_64,
            Path::new("/s"),
            Path::new("/o"),
            8,
            Path::new("/m"),
            false,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].join(" "), "make -C /s O=/o ARCH=x86 -j8 bzImage");
    }

    #[test]
    fn tree_spec_parses_dir_and_commit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().display().to_string();
        assert_eq!(TreeSpec::parse(&p).unwrap().commit, None);
        let t = TreeSpec::parse(&format!("{p}@v6.12")).unwrap();
        assert_eq!(
            (t.dir.display().to_string(), t.commit.as_deref()),
            (p.clone(), Some("v6.12"))
        );
        assert_eq!(TreeSpec::parse(&format!("{p}@")), None);
        assert_eq!(TreeSpec::parse("/no/such/dir@HEAD"), None);
        let at = d.path().join("a@b");
        std::fs::create_dir(&at).unwrap();
        assert_eq!(
            TreeSpec::parse(&at.display().to_string()).unwrap().commit,
            None
        );
    }

    /// A stand-in kernel tree (a git repository whose Makefile answers the targets the
    /// build uses, honouring O=) drives the whole build: the shared clone, the commit
    /// checkout, the uncommitted diff, the merged config, the cache and its keys, the
    /// staged modules; and shows the user's tree is left as it was. No real kernel is
    /// built here (docs/kernels.md: the tree form was not built on this machine).
    #[test]
    fn a_stand_in_tree_builds_caches_and_stays_untouched() {
        let test = "a_stand_in_tree_builds_caches_and_stays_untouched";
        for tool in ["git", "make"] {
            if !crate::test_support::require_tool(test, tool, tool) {
                return;
            }
        }
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("linux");
        std::fs::create_dir(&tree).unwrap();
        let makefile = "O ?= .\n\
            olddefconfig:\n\t@sed -i '/^CONFIG_GUP_TEST=y$$/d' $(O)/.config\n\
            x86_64_defconfig:\n\t@printf 'CONFIG_MODULES=y\\n' > $(O)/.config\n\
            bzImage:\n\t@mkdir -p $(O)/arch/x86/boot && cp version $(O)/arch/x86/boot/bzImage && echo x >> $(O)/builds\n\
            modules:\n\t@echo mod > $(O)/m.ko\n\
            modules_install:\n\t@mkdir -p $(INSTALL_MOD_PATH)/lib/modules/$$(cat version)/kernel && cp $(O)/m.ko $(INSTALL_MOD_PATH)/lib/modules/$$(cat version)/kernel/\n\
            kernelrelease:\n\t@cat version\n";
        std::fs::write(tree.join("Makefile"), makefile).unwrap();
        std::fs::write(tree.join("Kconfig"), "").unwrap();
        std::fs::write(tree.join("version"), "6.99.0-a\n").unwrap();
        let git = |args: &[&str]| {
            let o = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
                .arg(&tree)
                .args(args)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&["commit", "-qm", "a"]);
        let a = git(&["rev-parse", "HEAD"]);
        std::fs::write(tree.join("version"), "6.99.0-b\n").unwrap();
        git(&["commit", "-qam", "b"]);
        let status_before = git(&["status", "--porcelain", "--ignored"]);
        let o = BuildOptions {
            arch: Arch::X86_64,
            config: None,
            gup_test: false,
            jobs: 1,
            cache: d.path().join("cache"),
        };
        let spec = |s: &str| TreeSpec::parse(s).unwrap();
        let at_a = format!("{}@{a}", tree.display());

        // No .config in the tree: the arch's defconfig plus the fragment.
        let ba = build(&spec(&at_a), &o).unwrap();
        assert_eq!(ba.release, "6.99.0-a");
        assert!(!ba.cached);
        assert_eq!(ba.commit.as_deref(), Some(a.as_str()));
        assert_eq!(std::fs::read_to_string(&ba.image).unwrap(), "6.99.0-a\n");
        let m = ba.moddir.clone().expect("modules staged");
        assert!(m.ends_with("lib/modules/6.99.0-a") && m.join("kernel/m.ko").is_file());
        let config = std::fs::read_to_string(ba.image.with_file_name("config")).unwrap();
        assert!(config.starts_with("CONFIG_MODULES=y\n") && missing(&config, FRAGMENT).is_empty());

        // The same commit and config again: from the cache, make not run.
        let again = build(&spec(&at_a), &o).unwrap();
        assert!(again.cached && again.key == ba.key && again.image == ba.image);
        let obj = ba
            .image
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap();
        let builds = |dir: &Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("obj-"))
                .map(|e| {
                    std::fs::read_to_string(e.path().join("builds"))
                        .unwrap()
                        .lines()
                        .count()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(builds(obj), [1]);

        // HEAD (commit b): another key, the same build directory (incremental).
        let bb = build(&spec(&tree.display().to_string()), &o).unwrap();
        assert_eq!(bb.release, "6.99.0-b");
        assert_ne!(bb.key, ba.key);
        assert_eq!(builds(obj), [2]);

        // Uncommitted changes count when no commit is named, under a -dirty key.
        std::fs::write(tree.join("version"), "6.99.0-dirty\n").unwrap();
        let bd = build(&spec(&tree.display().to_string()), &o).unwrap();
        assert_eq!(bd.release, "6.99.0-dirty");
        assert!(bd.key.contains("-dirty"), "{}", bd.key);
        git(&["checkout", "-q", "version"]);

        // A config option olddefconfig drops is named, with the reason it is needed.
        let gup = BuildOptions {
            gup_test: true,
            ..o.clone()
        };
        let e = build(&spec(&at_a), &gup).unwrap_err().to_string();
        assert!(
            e.contains("CONFIG_GUP_TEST=y (got n)") && e.contains("gup engine"),
            "{e}"
        );
        assert!(build(&spec(&at_a), &gup).unwrap_err().is::<BuildFailed>());

        // The user's tree: no build output, no .config, the same status.
        assert_eq!(git(&["status", "--porcelain", "--ignored"]), status_before);
        assert_eq!(git(&["rev-parse", "HEAD"]).len(), 40);
        assert!(!tree.join(".config").exists() && !tree.join("arch").exists());

        let e = build(&spec(&format!("{}@nosuchrev", tree.display())), &o).unwrap_err();
        assert!(format!("{e:#}").contains("no such commit"), "{e:#}");
        // A name that is no commit is a mistake in the arguments, not a failed build.
        assert!(!e.is::<BuildFailed>());

        // make failing (a commit that does not compile) is a BuildFailed.
        std::fs::write(
            tree.join("Makefile"),
            makefile.replace("bzImage:\n\t@", "bzImage:\n\t@false && "),
        )
        .unwrap();
        git(&["commit", "-qam", "c: does not build"]);
        let e = build(&spec(&tree.display().to_string()), &o).unwrap_err();
        assert!(e.is::<BuildFailed>(), "{e:#}");
        assert!(
            e.to_string().contains("bzImage") && e.to_string().contains("failed"),
            "{e}"
        );
    }
}
