//! Host tools the kernel runner uses (qemu, busybox, depmod, ...): found, or installed
//! from Debian's packages when root, never by removing a package of the machine's; and
//! commands run with their failure said in full.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

use super::qemu::Arch;
use crate::output;

/// Runs `cmd`, returning its output; fails naming the command and its stderr.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let o = cmd
        .output()
        .with_context(|| format!("cannot run {shown} (is it installed?)"))?;
    if !o.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(o)
}

/// Its stdout, trimmed.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    Ok(String::from_utf8_lossy(&run(cmd)?.stdout)
        .trim()
        .to_string())
}

pub fn on_path(cmd: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(cmd).is_file())
}

/// (command, Debian package) the guests need on the host, besides the guest
/// architecture's qemu ([`Arch::qemu_package`]).
pub const NEEDED: &[(&str, &str)] = &[
    ("depmod", "kmod"),
    ("modprobe", "kmod"),
    ("mkfs.ext4", "e2fsprogs"),
    ("xz", "xz-utils"),
    ("zstd", "zstd"),
    ("dpkg-deb", "dpkg"),
    ("strip", "binutils"),
];

/// A static busybox: Debian's busybox-static puts it at /bin/busybox.
pub const BUSYBOX: &str = "/bin/busybox";

fn static_busybox() -> bool {
    Path::new(BUSYBOX).is_file()
        && Command::new("ldd")
            .arg(BUSYBOX)
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
}

/// The packages to install for what is missing, for guests of this machine's
/// architecture.
pub fn missing_packages() -> Vec<&'static str> {
    missing_packages_for(Arch::host().unwrap_or_default())
}

/// The packages to install for what is missing, for guests of `arch`. A foreign guest's
/// busybox comes from that architecture's busybox-static package ([`guest_busybox`]).
pub fn missing_packages_for(arch: Arch) -> Vec<&'static str> {
    let mut m: Vec<&str> = NEEDED
        .iter()
        .filter(|(c, _)| !on_path(c))
        .map(|(_, p)| *p)
        .collect();
    if !on_path(arch.qemu_binary()) {
        m.push(arch.qemu_package());
    }
    if Arch::host() == Some(arch) && !static_busybox() {
        m.push("busybox-static");
    }
    m.sort();
    m.dedup();
    m
}

/// Makes sure the host tools for guests of this machine's architecture are there
/// ([`ensure_for`]).
pub fn ensure(cache: &Path) -> Result<()> {
    ensure_for(cache, Arch::host().unwrap_or_default())
}

/// Makes sure the host tools for guests of `arch` are there: installs them as root
/// (apt-get --no-remove: apt stops rather than remove a package of the machine's), or
/// says what to install.
pub fn ensure_for(cache: &Path, arch: Arch) -> Result<()> {
    let missing = missing_packages_for(arch);
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing packages: {}; install them (sudo apt-get install -y {}) or run as root",
            missing.join(" "),
            missing.join(" ")
        );
    }
    output::info(&format!("installing {}", missing.join(" ")));
    let mut apt_opts: Vec<String> = Vec::new();
    let mut pkgs: Vec<String> = missing.iter().map(|s| s.to_string()).collect();
    // qemu-system-x86 (or -arm) must match an installed qemu-utils, or apt removes qemu-utils to
    // make room (it did on a machine whose image ships qemu-utils from backports). Take
    // the same version from the release's backports suite, through a private package
    // list under the cache, so /etc/apt stays as it is.
    let qemu_utils = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev} ${Version}", "qemu-utils"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .and_then(|s| s.strip_prefix("ii ").map(|v| v.trim().to_string()));
    if let Some(v) = qemu_utils.filter(|v| v.contains("~bpo")) {
        for p in pkgs.iter_mut().filter(|p| p.starts_with("qemu-system-")) {
            *p = format!("{p}={v}");
        }
        apt_opts = backports_apt_opts(cache)?;
    } else {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    }
    let st = Command::new("apt-get")
        .args(&apt_opts)
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "--no-remove",
        ])
        .args(&pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    if !st.success() {
        bail!(
            "apt-get install {} failed (it would not remove any installed package to do it; see apt's message above)",
            pkgs.join(" ")
        );
    }
    Ok(())
}

/// apt options for a private package list of this Debian release plus its backports
/// suite, updated, with backports as the target release.
fn backports_apt_opts(cache: &Path) -> Result<Vec<String>> {
    let dir = cache.join("apt-backports");
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let codename = os
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .context("/etc/os-release names no VERSION_CODENAME; cannot find the backports suite")?;
    std::fs::create_dir_all(dir.join("lists/partial"))?;
    std::fs::create_dir_all(dir.join("archives/partial"))?;
    let key = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let signed = if Path::new(key).is_file() {
        format!("[signed-by={key}] ")
    } else {
        String::new()
    };
    let sources = format!(
        "deb {signed}http://deb.debian.org/debian {codename} main\n\
         deb {signed}http://deb.debian.org/debian {codename}-updates main\n\
         deb {signed}http://deb.debian.org/debian-security {codename}-security main\n\
         deb {signed}http://deb.debian.org/debian {codename}-backports main\n"
    );
    std::fs::write(dir.join("sources.list"), sources)?;
    let opts: Vec<String> = vec![
        "-o".into(),
        format!(
            "Dir::Etc::sourcelist={}",
            dir.join("sources.list").display()
        ),
        "-o".into(),
        "Dir::Etc::sourceparts=-".into(),
        "-o".into(),
        format!("Dir::State::lists={}", dir.join("lists").display()),
        "-o".into(),
        format!("Dir::Cache::archives={}", dir.join("archives").display()),
        "-o".into(),
        "APT::Sandbox::User=root".into(),
        "-t".into(),
        format!("{codename}-backports"),
    ];
    output::info(&format!(
        "apt-get update with {codename}-backports (private list in {})",
        dir.display()
    ));
    let _ = Command::new("apt-get")
        .args(&opts)
        .args(["update", "-qq"])
        .status();
    Ok(opts)
}

/// Whether `arch` is not this machine's: its packages come through [`foreign_apt_opts`].
pub fn is_foreign(arch: Arch) -> bool {
    Arch::host() != Some(arch)
}

/// apt options for a private package list of this Debian release (with -updates,
/// -security and -backports) for another architecture, updated once per process: the
/// machine's own /etc/apt and dpkg architectures stay as they are, and apt-get download
/// fetches that architecture's packages (kernels, busybox-static) into the cache.
pub fn foreign_apt_opts(cache: &Path, arch: Arch) -> Result<Vec<String>> {
    static DONE: std::sync::Mutex<Vec<Arch>> = std::sync::Mutex::new(Vec::new());
    let dir = cache.join(format!("apt-{}", arch.debian()));
    let codename = debian_codename()?;
    std::fs::create_dir_all(dir.join("lists/partial"))?;
    std::fs::create_dir_all(dir.join("archives/partial"))?;
    let key = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let signed = if Path::new(key).is_file() {
        format!(" signed-by={key}")
    } else {
        String::new()
    };
    let a = arch.debian();
    let sources = format!(
        "deb [arch={a}{signed}] http://deb.debian.org/debian {codename} main\n\
         deb [arch={a}{signed}] http://deb.debian.org/debian {codename}-updates main\n\
         deb [arch={a}{signed}] http://deb.debian.org/debian-security {codename}-security main\n\
         deb [arch={a}{signed}] http://deb.debian.org/debian {codename}-backports main\n"
    );
    std::fs::write(dir.join("sources.list"), sources)?;
    let opts: Vec<String> = [
        format!(
            "Dir::Etc::sourcelist={}",
            dir.join("sources.list").display()
        ),
        "Dir::Etc::sourceparts=-".into(),
        format!("Dir::State::lists={}", dir.join("lists").display()),
        format!("Dir::Cache::archives={}", dir.join("archives").display()),
        // No installed packages: dependencies are not resolved, only downloaded.
        "Dir::State::status=/dev/null".into(),
        format!("APT::Architecture={a}"),
        format!("APT::Architectures={a}"),
        "APT::Sandbox::User=root".into(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect();
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if !done.contains(&arch) {
        output::info(&format!(
            "apt-get update for {a} (private package list in {})",
            dir.display()
        ));
        let ok = Command::new("apt-get")
            .args(&opts)
            .args(["update", "-qq"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            output::warn(&format!(
                "apt-get update for {a} failed; going on with the package lists in {}",
                dir.display()
            ));
        }
        done.push(arch);
    }
    Ok(opts)
}

fn debian_codename() -> Result<String> {
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    os.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .context("/etc/os-release names no VERSION_CODENAME; cannot make a Debian package list")
}

/// The static busybox for a guest of `arch`: the host's /bin/busybox for its own
/// architecture; for another, /bin/busybox from that architecture's busybox-static
/// package, downloaded and extracted once into the cache.
pub fn guest_busybox(arch: Arch, cache: &Path) -> Result<std::path::PathBuf> {
    if !is_foreign(arch) {
        return Ok(BUSYBOX.into());
    }
    let dir = cache.join(format!("busybox-{}", arch.debian()));
    let bin = dir.join("bin/busybox");
    if bin.is_file() {
        return Ok(bin);
    }
    let opts = foreign_apt_opts(cache, arch)?;
    let dl = dir.with_extension("download");
    let _ = std::fs::remove_dir_all(&dl);
    std::fs::create_dir_all(&dl)?;
    output::info(&format!(
        "busybox-static:{}: apt-get download",
        arch.debian()
    ));
    run(Command::new("apt-get")
        .args(&opts)
        .args(["download", "-q", "busybox-static"])
        .current_dir(&dl))
    .with_context(|| format!("downloading busybox-static for {}", arch.debian()))?;
    let deb = std::fs::read_dir(&dl)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download busybox-static left no .deb")?;
    let x = dl.join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x))?;
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::copy(x.join("bin/busybox"), &bin).context("busybox-static has no /bin/busybox")?;
    let _ = std::fs::remove_dir_all(&dl);
    Ok(bin)
}

/// The strip for binaries of `arch` (the host's own, or Debian's cross binutils); None
/// when there is none, and the binary goes in unstripped.
pub fn strip_for(arch: Arch) -> Option<&'static str> {
    let cmd = match arch {
        _ if !is_foreign(arch) => "strip",
        Arch::Arm64 => "aarch64-linux-gnu-strip",
        Arch::X86_64 => "x86_64-linux-gnu-strip",
    };
    on_path(cmd).then_some(cmd)
}
