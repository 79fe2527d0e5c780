//! One guest: a fresh scratch disk where the workload's target needs one, the initramfs,
//! qemu under KVM or TCG (decided once, by a probe boot), the wait with a timeout, and
//! the files that came back on the data port, checked by size and sha256.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::form::{self, BootKernel};
use super::initramfs;
use super::inspect;
use super::protocol::{self, FrameError, GuestSetup, PROBE_CMDLINE};
use super::qemu::{Accel, Arch, QemuSpec, Topology};
use crate::output;
use crate::workload::Workload;

/// Where a workload's target lives in a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The mount point of a fresh ext4 disk; None: no disk (zram, or no target).
    pub scratch_mount: Option<String>,
    /// The directory thpbench runs in.
    pub cwd: String,
    /// The disk's size in bytes: twice the I/O region plus 256 MiB for ext4 and slack.
    pub scratch_bytes: u64,
}

/// A file or directory target gets a fresh ext4 disk at the same path (a relative one:
/// the guest runs in /scratch, on that disk, so the resolved workload stays identical on
/// every kernel and compare accepts it); zram is made in the guest; a block device
/// cannot be handed to a guest.
pub fn placement(w: &Workload) -> Result<Placement, String> {
    let size = w.size.map_or(256 << 20, |s| s.bytes());
    let disk = |mount: &str, cwd: &str| Placement {
        scratch_mount: Some(mount.to_string()),
        cwd: cwd.to_string(),
        scratch_bytes: 2 * size + (256 << 20),
    };
    let t = w.target.as_str();
    if t.starts_with("zram:") || w.engine == crate::workload::Engine::Gup {
        return Ok(Placement {
            scratch_mount: None,
            cwd: "/tmp".into(),
            scratch_bytes: 0,
        });
    }
    if t.starts_with("/dev/") {
        return Err(format!("workload target {t}: block device targets cannot be handed to a guest; use a directory (an ext4 disk is made for it) or zram:SIZE"));
    }
    if let Some(abs) = t.strip_prefix('/') {
        let p = Path::new(t);
        let mount = if t.ends_with('/') || p.is_dir() {
            format!("/{}", abs.trim_end_matches('/'))
        } else {
            p.parent().map_or("/".into(), |d| d.display().to_string())
        };
        if mount == "/" {
            return Err(format!(
                "workload target {t}: a file in / cannot get its own disk; use a directory"
            ));
        }
        return Ok(disk(&mount, "/tmp"));
    }
    Ok(disk("/scratch", "/scratch"))
}

/// `--accel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelMode {
    Auto,
    Kvm,
    Tcg,
}

/// How guests run: the same for every kernel of a comparison.
#[derive(Debug, Clone)]
pub struct GuestOptions {
    /// The guest architecture; with `arch_from_kernel`, the one expected when the kernel
    /// does not say.
    pub arch: Arch,
    /// `--arch auto`: each kernel's image decides (a bzImage is x86_64, an Image arm64).
    pub arch_from_kernel: bool,
    pub accel: AccelMode,
    pub topology: Topology,
    /// `transparent_hugepage=` for the cmdline; None: the kernel's own default.
    pub thp: Option<String>,
    pub timeout: Duration,
    /// The guest's thpbench.
    pub thpbench: PathBuf,
    /// Where the KVM verdict is kept.
    pub cache: PathBuf,
    /// Echo the console while the guest runs.
    pub verbose: bool,
}

/// How qemu ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QemuEnd {
    Exited(i32),
    Signalled(i32),
    TimedOut,
    /// Stopped once the probe line came (probe boots only).
    ProbeDone,
}

impl std::fmt::Display for QemuEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QemuEnd::Exited(c) => write!(f, "exit {c}"),
            QemuEnd::Signalled(s) => write!(f, "killed by signal {s}"),
            QemuEnd::TimedOut => write!(f, "timed out"),
            QemuEnd::ProbeDone => write!(f, "probe done"),
        }
    }
}

/// qemu's child process, killed (TERM, then KILL) when dropped: on an error, a
/// timeout or Ctrl-C nothing is left running.
struct QemuChild(Child);

impl Drop for QemuChild {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            for _ in 0..20 {
                if !matches!(self.0.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs qemu to its end, the timeout, or (probe) the probe line. Returns how it ended
/// and the wall time.
pub fn run_qemu(
    spec: &QemuSpec,
    timeout: Duration,
    probe: bool,
    qemu_out: &Path,
    echo: Option<&str>,
) -> Result<(QemuEnd, Duration)> {
    std::fs::write(&spec.console_log, b"")?;
    std::fs::write(&spec.data_log, b"")?;
    let out = std::fs::File::create(qemu_out)?;
    let mut cmd = Command::new(spec.arch.qemu_binary());
    cmd.args(spec.args())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill qemu when
    // thpbench dies, so a killed thpbench leaves no guest behind.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = QemuChild(cmd.spawn().with_context(|| {
        format!(
            "starting {} (Debian package {})",
            spec.arch.qemu_binary(),
            spec.arch.qemu_package()
        )
    })?);
    let mut console_pos = 0u64;
    loop {
        if let Some(label) = echo {
            console_pos = echo_console(&spec.console_log, console_pos, label);
        }
        if let Some(st) = child.0.try_wait()? {
            use std::os::unix::process::ExitStatusExt;
            let end = match (st.code(), st.signal()) {
                (Some(c), _) => QemuEnd::Exited(c),
                (None, Some(s)) => QemuEnd::Signalled(s),
                _ => QemuEnd::Exited(-1),
            };
            if let Some(label) = echo {
                echo_console(&spec.console_log, console_pos, label);
            }
            return Ok((end, start.elapsed()));
        }
        if crate::signals::received() {
            drop(child);
            return Err(crate::signals::Interrupted.into());
        }
        if probe
            && std::fs::read(&spec.data_log).is_ok_and(|d| protocol::parse(&d).probe_ok.is_some())
        {
            // Let it power off by itself; the guard kills it otherwise.
            std::thread::sleep(Duration::from_secs(1));
            return Ok((QemuEnd::ProbeDone, start.elapsed()));
        }
        if start.elapsed() > timeout {
            return Ok((QemuEnd::TimedOut, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn echo_console(path: &Path, pos: u64, label: &str) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return pos;
    };
    let mut buf = String::new();
    if f.seek(SeekFrom::Start(pos)).is_err() || f.read_to_string(&mut buf).is_err() {
        return pos;
    }
    // Only whole lines; the rest waits for the next look.
    let Some(end) = buf.rfind('\n') else {
        return pos;
    };
    let mut err = std::io::stderr().lock();
    for l in buf[..end].lines() {
        let _ = writeln!(err, "  [{label}] {}", l.trim_end_matches('\r'));
    }
    pos + end as u64 + 1
}

/// The accelerator decided for this process, per guest architecture, and why.
static DECIDED: Mutex<Vec<(Arch, Accel, String)>> = Mutex::new(Vec::new());

fn kvm_unusable_reason() -> Option<String> {
    if !Path::new("/dev/kvm").exists() {
        return Some(
            "there is no /dev/kvm (no KVM module, or a VM without nested virtualization)".into(),
        );
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Some(format!(
            "/dev/kvm cannot be opened by uid {} (add the user to group kvm)",
            nix::unistd::geteuid()
        ));
    }
    None
}

/// `--accel kvm` asked for KVM and it does not work here: no guest can boot as asked,
/// so `thpbench kernels` stops instead of failing every kernel in turn.
#[derive(Debug, thiserror::Error)]
#[error("--accel kvm: {why}")]
pub struct KvmRefused {
    pub why: String,
}

/// KVM or TCG, once per process: KVM when /dev/kvm opens and a probe boot of this
/// kernel reaches init under it within 30 s (the verdict kept per host boot and qemu
/// version in the cache); otherwise TCG, said so, or an error for `--accel kvm`.
pub fn decide_accel(
    o: &GuestOptions,
    k: &BootKernel,
    initrd: &Path,
    work: &Path,
) -> Result<(Accel, String)> {
    let mut d = DECIDED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, a, w)) = d.iter().find(|x| x.0 == o.arch) {
        return Ok((*a, w.clone()));
    }
    if o.accel == AccelMode::Tcg {
        d.push((o.arch, Accel::Tcg, "--accel tcg".into()));
        return Ok((Accel::Tcg, "--accel tcg".into()));
    }
    // KVM runs guests of the host's own architecture only.
    let foreign = super::tools::is_foreign(o.arch).then(|| {
        format!(
            "an {} guest on this {} machine runs under emulation (KVM runs guests of the host's own architecture)",
            o.arch,
            Arch::host().map_or("other", Arch::name)
        )
    });
    let why = match foreign.or_else(kvm_unusable_reason) {
        Some(w) => w,
        None => {
            let boot_id = crate::system::read_trimmed("/proc/sys/kernel/random/boot_id")
                .unwrap_or_else(|_| "unknown".into());
            // Per boot and per qemu version: another qemu may well fail differently.
            let ver = Command::new(o.arch.qemu_binary())
                .arg("--version")
                .output()
                .ok()
                .and_then(|x| {
                    String::from_utf8_lossy(&x.stdout)
                        .split_whitespace()
                        .nth(3)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "unknown".into());
            let verdict = o.cache.join(format!("kvm-verdict-{boot_id}-qemu-{ver}"));
            match std::fs::read_to_string(&verdict) {
                Ok(w) => {
                    output::info(&format!(
                        "KVM verdict from an earlier probe since this boot: {}",
                        verdict.display()
                    ));
                    w
                }
                Err(_) => {
                    output::info(&format!(
                        "probing KVM: booting {} under KVM to its init (30 s at most)",
                        k.release
                    ));
                    let spec = QemuSpec {
                        arch: o.arch,
                        accel: Accel::Kvm,
                        topology: o.topology.clone(),
                        kernel: k.image.clone(),
                        initrd: initrd.to_path_buf(),
                        cmdline_extra: vec![PROBE_CMDLINE.into()],
                        console_log: work.join("probe-console.log"),
                        data_log: work.join("probe-data.log"),
                        scratch: None,
                    };
                    let out = work.join("probe-qemu.out");
                    let (end, wall) = run_qemu(&spec, Duration::from_secs(30), true, &out, None)?;
                    let w = if end == QemuEnd::ProbeDone {
                        output::info(&format!(
                            "KVM works: {} reached init in {:.1}s",
                            k.release,
                            wall.as_secs_f64()
                        ));
                        String::new()
                    } else if end == QemuEnd::TimedOut {
                        "/dev/kvm is there, but a guest under KVM did not reach its init in 30 s; KVM does not work here (nested virtualization?)".into()
                    } else {
                        let first = std::fs::read_to_string(&out)
                            .unwrap_or_default()
                            .lines()
                            .find(|l| !l.trim().is_empty())
                            .map(|l| format!(": {l}"))
                            .unwrap_or_default();
                        format!("/dev/kvm is there, but qemu under KVM stopped ({end}{first}) before the guest reached its init; KVM does not work here (nested virtualization?)")
                    };
                    std::fs::create_dir_all(&o.cache)?;
                    std::fs::write(&verdict, &w)?;
                    w
                }
            }
        }
    };
    let decided = if why.is_empty() {
        (Accel::Kvm, "KVM works".to_string())
    } else {
        if o.accel == AccelMode::Kvm {
            return Err(KvmRefused { why }.into());
        }
        output::warn(&format!("KVM: {why}"));
        output::warn("falling back to TCG (emulation): timings compare code paths, not speed (docs/kernels.md)");
        (Accel::Tcg, why)
    };
    d.push((o.arch, decided.0, decided.1.clone()));
    Ok(decided)
}

/// What one guest run gave.
#[derive(Debug, Clone)]
pub struct GuestOutcome {
    /// The result JSON, when it came back whole: OUT_DIR/PREFIX.json.
    pub result: Option<PathBuf>,
    /// thpbench's exit code in the guest, when init got to say it.
    pub guest_exit: Option<i32>,
    pub qemu: QemuEnd,
    pub accel: Accel,
    /// Why that accelerator ("KVM works", or why KVM did not).
    pub accel_why: String,
    pub wall: Duration,
    /// The guest's console, copied to OUT_DIR/PREFIX.console.log.
    pub console: PathBuf,
    /// Files the guest began to send that did not arrive whole.
    pub damaged: Vec<(String, FrameError)>,
    /// Guest uptime when the workload started (from guest-info.txt).
    pub boot_to_run_s: Option<String>,
    /// Guest uptime when init started (from the console).
    pub init_s: Option<String>,
}

/// A scratch directory for one command's guests, removed on drop unless kept.
pub struct Workdir {
    pub path: PathBuf,
    pub keep: bool,
}

impl Workdir {
    pub fn new(keep: bool) -> Result<Workdir> {
        let base = std::env::var_os("TMPDIR").map_or("/tmp".into(), PathBuf::from);
        let path = nix::unistd::mkdtemp(&base.join("thpbench-qemu.XXXXXX"))
            .with_context(|| format!("making a temporary directory in {}", base.display()))?;
        Ok(Workdir { path, keep })
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if self.keep {
            output::info(&format!("kept {}", self.path.display()));
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The thpbench binary for an `arch` guest: `given` when it is an `arch` ELF; else the
/// cross build beside it (target/release/thpbench -> target/aarch64-unknown-linux-gnu/
/// release/thpbench, what scripts/build-aarch64.sh makes), said so; else `given`, which
/// the initramfs's check then refuses with what to do.
pub fn guest_thpbench(given: &Path, arch: Arch) -> Result<PathBuf> {
    let fits = |p: &Path| {
        inspect::read_head(p)
            .ok()
            .and_then(|b| inspect::elf_info(&b))
            .is_some_and(|e| e.machine == arch.elf_machine())
    };
    if fits(given) {
        return Ok(given.to_path_buf());
    }
    let triple = match arch {
        Arch::X86_64 => "x86_64-unknown-linux-gnu",
        Arch::Arm64 => "aarch64-unknown-linux-gnu",
    };
    // given = TARGET/PROFILE/thpbench; the cross build of the same profile, else release.
    let (profile, target) = (
        given.parent().and_then(Path::file_name),
        given.parent().and_then(Path::parent),
    );
    let candidates = target.into_iter().flat_map(|t| {
        profile
            .into_iter()
            .chain([std::ffi::OsStr::new("release")])
            .map(move |p| t.join(triple).join(p).join("thpbench"))
    });
    for cross in candidates {
        if fits(&cross) {
            output::info(&format!(
                "the {arch} guests run the cross-built {}",
                cross.display()
            ));
            return Ok(cross);
        }
    }
    Ok(given.to_path_buf())
}

/// Boots `k` with the resolved workload `w` and brings its files back into `out_dir` as
/// PREFIX.json (the result), PREFIX.run.log, PREFIX.guest-info.txt, PREFIX.dmesg.txt and
/// PREFIX.console.log. The entry point for anyone who needs "this kernel, this workload,
/// its result" (`thpbench kernels`, `thpbench bisect`).
pub fn boot_workload(
    k: &BootKernel,
    w: &Workload,
    o: &GuestOptions,
    work: &Path,
    out_dir: &Path,
    prefix: &str,
) -> Result<GuestOutcome> {
    let place = placement(w).map_err(anyhow::Error::msg)?;
    let arch = form::kernel_arch(k)?;
    if arch != o.arch && !o.arch_from_kernel {
        bail!(
            "kernel {} is an {arch} kernel, but the guests are {} (--arch {}); use --arch {arch} or --arch auto",
            k.label,
            o.arch,
            o.arch
        );
    }
    let o = &GuestOptions { arch, ..o.clone() };
    let busybox = super::tools::guest_busybox(arch, &o.cache)?;
    let thpbench = guest_thpbench(&o.thpbench, arch)?;
    let setup = GuestSetup {
        workload_toml: w.to_toml(),
        // The flags are already in the resolved workload; -q keeps the console short.
        run_args: vec!["-q".into()],
        modules: Vec::new(),
        scratch_mount: place.scratch_mount.clone(),
        cwd: place.cwd.clone(),
    };
    let initrd = initramfs::build_for(k, arch, &busybox, &thpbench, &setup, work)?;
    let mods: Vec<&str> = initrd
        .modules
        .iter()
        .map(|m| m.rsplit('/').next().unwrap().trim_end_matches(".ko"))
        .collect();
    output::info(&format!(
        "initramfs for {}: {:.1} MiB, modules: {}",
        k.label,
        initrd.bytes as f64 / (1 << 20) as f64,
        if mods.is_empty() {
            "none".to_string()
        } else {
            mods.join(" ")
        }
    ));
    let (accel, accel_why) = decide_accel(o, k, &initrd.path, work)?;
    let scratch = match place.scratch_mount {
        Some(_) => {
            let img = work.join("scratch.img");
            let _ = std::fs::remove_file(&img);
            std::fs::File::create(&img)?.set_len(place.scratch_bytes)?;
            super::tools::run(
                Command::new("mkfs.ext4")
                    .args([
                        "-q",
                        "-F",
                        "-E",
                        "nodiscard,lazy_itable_init=1",
                        "-O",
                        "^has_journal",
                    ])
                    .arg(&img),
            )?;
            Some(img)
        }
        None => None,
    };
    let mut cmdline_extra = Vec::new();
    if let Some(t) = &o.thp {
        cmdline_extra.push(format!("transparent_hugepage={t}"));
    }
    let spec = QemuSpec {
        arch: o.arch,
        accel,
        topology: o.topology.clone(),
        kernel: k.image.clone(),
        initrd: initrd.path.clone(),
        cmdline_extra,
        console_log: work.join(format!("console-{}.log", k.label)),
        data_log: work.join(format!("data-{}.log", k.label)),
        scratch,
    };
    let qemu_out = work.join(format!("qemu-{}.out", k.label));
    let (end, wall) = run_qemu(
        &spec,
        o.timeout,
        false,
        &qemu_out,
        o.verbose.then_some(k.label.as_str()),
    )?;
    let data = std::fs::read(&spec.data_log).unwrap_or_default();
    let ch = protocol::parse(&data);
    let mut damaged = Vec::new();
    let mut result = None;
    for (name, got) in &ch.files {
        match got {
            Ok(bytes) => {
                let dst = if name == protocol::RESULT {
                    out_dir.join(format!("{prefix}.json"))
                } else {
                    out_dir.join(format!("{prefix}.{name}"))
                };
                std::fs::write(&dst, bytes)?;
                if name == protocol::RESULT {
                    result = Some(dst);
                }
            }
            Err(e) => {
                output::warn(&format!("{}: {name} came back {e}", k.label));
                damaged.push((name.clone(), e.clone()));
            }
        }
    }
    let console = out_dir.join(format!("{prefix}.console.log"));
    let mut console_text = std::fs::read(&spec.console_log).unwrap_or_default();
    // qemu's own complaints (an abort, a bad option) end the console copy.
    if let Ok(q) = std::fs::read(&qemu_out) {
        if !q.is_empty() {
            console_text.extend_from_slice(b"\n--- qemu's output ---\n");
            console_text.extend_from_slice(&q);
        }
    }
    std::fs::write(&console, &console_text)?;
    let info = ch.file("guest-info.txt").map(String::from_utf8_lossy);
    let boot_to_run_s = info.as_ref().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("boot_to_run_s: "))
            .map(str::to_string)
    });
    let init_s = String::from_utf8_lossy(&console_text)
        .lines()
        .find_map(|l| {
            let i = l.find("reached init after ")?;
            l[i + "reached init after ".len()..]
                .split_whitespace()
                .next()
                .map(str::to_string)
        });
    Ok(GuestOutcome {
        result,
        guest_exit: ch.exit,
        qemu: end,
        accel,
        accel_why,
        wall,
        console,
        damaged,
        boot_to_run_s,
        init_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Size;

    /// `--accel kvm` for a guest KVM cannot run (another architecture than the host's)
    /// is refused with its own type, which `thpbench kernels` stops on.
    #[test]
    fn accel_kvm_for_a_foreign_guest_is_refused_as_kvm_refused() {
        let foreign = match Arch::host() {
            Some(Arch::X86_64) => Arch::Arm64,
            _ => Arch::X86_64,
        };
        let o = GuestOptions {
            arch: foreign,
            arch_from_kernel: false,
            accel: AccelMode::Kvm,
            topology: Topology::new("2".parse().unwrap(), 3072, 1).unwrap(),
            thp: None,
            timeout: Duration::from_secs(1),
            thpbench: PathBuf::from("/nonexistent/thpbench"),
            cache: PathBuf::from("/nonexistent/cache"),
            verbose: false,
        };
        let k = BootKernel {
            image: PathBuf::from("/nonexistent/Image"),
            release: "6.18.0".into(),
            moddir: None,
            label: "6.18.0".into(),
        };
        let e =
            decide_accel(&o, &k, Path::new("/nonexistent/initrd"), Path::new("/tmp")).unwrap_err();
        let refused = e.downcast_ref::<KvmRefused>().expect("KvmRefused");
        assert!(refused.why.contains("emulation"), "{e}");
    }

    fn wl(target: &str, size: Option<u64>) -> Workload {
        Workload {
            target: target.into(),
            size: size.map(Size),
            ..Workload::default()
        }
    }

    #[test]
    fn where_targets_go_in_the_guest() {
        let z = placement(&wl("zram:64M", None)).unwrap();
        assert_eq!((z.scratch_mount, z.cwd.as_str()), (None, "/tmp"));
        let rel = placement(&wl(".", Some(16 << 20))).unwrap();
        assert_eq!(rel.scratch_mount.as_deref(), Some("/scratch"));
        assert_eq!(rel.cwd, "/scratch");
        assert_eq!(rel.scratch_bytes, (32 << 20) + (256 << 20));
        let dir = placement(&wl("/data/bench/", None)).unwrap();
        assert_eq!(dir.scratch_mount.as_deref(), Some("/data/bench"));
        assert_eq!(dir.cwd, "/tmp");
        assert_eq!(dir.scratch_bytes, (512 << 20) + (256 << 20));
        let file = placement(&wl("/nonexistent-dir/file.dat", None)).unwrap();
        assert_eq!(file.scratch_mount.as_deref(), Some("/nonexistent-dir"));
        assert!(placement(&wl("/dev/nvme0n1", None))
            .unwrap_err()
            .contains("block device"));
        assert!(placement(&wl("/file.dat", None))
            .unwrap_err()
            .contains("in /"));
    }
}
