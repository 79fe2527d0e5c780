//! Host tools the kernel runner uses (qemu, busybox, depmod, ...): found, or installed
//! from Debian's packages when root, never by removing a package of the machine's; and
//! commands run with their failure said in full.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

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

/// (command, Debian package) the guests need on the host.
pub const NEEDED: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
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

/// The packages to install for what is missing.
pub fn missing_packages() -> Vec<&'static str> {
    let mut m: Vec<&str> = NEEDED
        .iter()
        .filter(|(c, _)| !on_path(c))
        .map(|(_, p)| *p)
        .collect();
    if !static_busybox() {
        m.push("busybox-static");
    }
    m.sort();
    m.dedup();
    m
}

/// Makes sure the host tools are there: installs them as root (apt-get --no-remove: apt
/// stops rather than remove a package of the machine's), or says what to install.
pub fn ensure(cache: &Path) -> Result<()> {
    let missing = missing_packages();
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
    // qemu-system-x86 must match an installed qemu-utils, or apt removes qemu-utils to
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
        for p in pkgs.iter_mut().filter(|p| *p == "qemu-system-x86") {
            *p = format!("qemu-system-x86={v}");
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
