//! The kernel forms a KERNEL argument names, and their resolution to a bootable kernel:
//! an image, its release, and where its modules are.
//!
//! | form | example |
//! | --- | --- |
//! | `host` | this machine's running kernel, no qemu |
//! | a Debian package | `linux-image-cloud-amd64`, `linux-image-6.12-arm64-16k` (meta packages followed; another architecture's through a private package list) |
//! | a package file | `linux-image-6.12.57+deb13-cloud-amd64_..._amd64.deb` |
//! | an image | `PATH/bzImage[:MODDIR]`, `PATH/Image[:MODDIR]` (arm64, maybe gzip'd) |
//! | a source tree | `DIR` or `DIR@COMMIT`, built out of tree (tree.rs) |

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::inspect;
use super::qemu::Arch;
use super::tools;
use super::tree::{self, TreeSpec};
use crate::output;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelForm {
    Host,
    Package(String),
    Deb(PathBuf),
    Image {
        image: PathBuf,
        moddir: Option<PathBuf>,
    },
    Tree(TreeSpec),
}

impl KernelForm {
    /// Reads one KERNEL argument. A directory (or DIR@COMMIT) is a source tree; a file
    /// ending in .deb a package file; another file (or FILE:MODDIR) an image; a bare
    /// word that is no path a package name.
    pub fn parse(spec: &str) -> Result<KernelForm> {
        if spec == "host" {
            return Ok(KernelForm::Host);
        }
        if let Some(t) = TreeSpec::parse(spec) {
            return Ok(KernelForm::Tree(t));
        }
        let p = Path::new(spec);
        if spec.ends_with(".deb") && p.is_file() {
            return Ok(KernelForm::Deb(p.into()));
        }
        let (img, moddir) = match spec.split_once(':') {
            Some((i, m)) => (i, Some(PathBuf::from(m))),
            None => (spec, None),
        };
        if Path::new(img).is_file() {
            return Ok(KernelForm::Image {
                image: img.into(),
                moddir,
            });
        }
        if !spec.contains('/') && !spec.contains(':') && !spec.is_empty() {
            return Ok(KernelForm::Package(spec.into()));
        }
        bail!(
            "kernel {spec}: not a file or directory (expected host, a Debian kernel package name, a .deb, PATH/bzImage[:MODDIR], or a kernel source tree DIR[@COMMIT])"
        )
    }
}

/// A kernel ready to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootKernel {
    pub image: PathBuf,
    pub release: String,
    pub moddir: Option<PathBuf>,
    /// For file names and tables: the release, or release@commit for a tree.
    pub label: String,
}

/// The release string of an x86 bzImage, from its setup header: "HdrS" at 0x202, the
/// kernel_version pointer (relative to 0x200) at 0x20e.
pub fn bzimage_release(image: &[u8]) -> Option<String> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let off = u16::from_le_bytes([*image.get(0x20e)?, *image.get(0x20f)?]) as usize;
    if off == 0 {
        return None;
    }
    let s = image.get(off + 0x200..)?;
    let end = s.iter().position(|&b| b == 0 || b == b' ')?;
    let rel = std::str::from_utf8(&s[..end]).ok()?;
    (!rel.is_empty()).then(|| rel.to_string())
}

/// The epoch is not in .deb file names.
pub fn deb_version_fname(v: &str) -> &str {
    v.split_once(':').map_or(v, |(_, r)| r)
}

/// The linux-image-* package a meta package depends on (apt-cache depends output).
pub fn meta_dependency(depends: &str) -> Option<String> {
    depends.lines().find_map(|l| {
        let d = l.trim().strip_prefix("Depends: ")?;
        d.starts_with("linux-image-")
            .then(|| d.split_whitespace().next().unwrap().to_string())
    })
}

/// Options for resolving forms that need the network, the cache or a build.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    pub cache: PathBuf,
    pub build: tree::BuildOptions,
}

fn apt_update_once() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        output::info("apt-get update");
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0
            && !Command::new("apt-get")
                .args(["update", "-qq"])
                .status()
                .is_ok_and(|s| s.success())
        {
            output::warn("apt-get update failed; going on with the package lists there are");
        }
    });
}

fn apt_knows(pkg: &str, apt: &[String]) -> bool {
    Command::new("apt-cache")
        .args(apt)
        .args(["show", pkg])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A package name followed through meta packages to the one with /boot/vmlinuz-*.
/// `apt`: options for another architecture's package list (empty: the machine's own).
fn resolve_package(req: &str, apt: &[String]) -> Option<String> {
    let mut pkg = req.to_string();
    for _ in 0..4 {
        if !apt_knows(&pkg, apt) {
            if !apt.is_empty() {
                return None;
            }
            apt_update_once();
            if !apt_knows(&pkg, apt) {
                return None;
            }
        }
        let deps = Command::new("apt-cache")
            .args(apt)
            .args([
                "depends",
                "--no-recommends",
                "--no-suggests",
                "--no-conflicts",
                "--no-breaks",
                "--no-replaces",
                "--no-enhances",
                &pkg,
            ])
            .output()
            .ok()?;
        match meta_dependency(&String::from_utf8_lossy(&deps.stdout)) {
            Some(d) => {
                output::info(&format!("{pkg} is a meta package for {d}"));
                pkg = d;
            }
            None => return Some(pkg),
        }
    }
    None
}

/// The architecture a Debian kernel package is for, from its name (Debian's flavours
/// end in the architecture: `-cloud-amd64`, `-arm64`, `-arm64-16k`); None when the name
/// does not say.
pub fn package_arch(name: &str) -> Option<Arch> {
    let name = name.strip_suffix("-unsigned").unwrap_or(name);
    name.split('-').rev().take(2).find_map(|w| match w {
        "amd64" => Some(Arch::X86_64),
        "arm64" => Some(Arch::Arm64),
        _ => None,
    })
}

/// The cached .deb of a package, downloaded with apt-get download when not there.
/// A package of another architecture than the machine's (by its name, else `arch`)
/// comes through a private package list for that architecture.
fn fetch_package(req: &str, cache: &Path, arch: Arch) -> Result<PathBuf> {
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs)?;
    let arch = package_arch(req).unwrap_or(arch);
    let apt = if tools::is_foreign(arch) {
        tools::foreign_apt_opts(cache, arch)?
    } else {
        Vec::new()
    };
    let Some(pkg) = resolve_package(req, &apt) else {
        // Not in the package lists (offline?): a cached one of that name will do.
        let mut found: Vec<PathBuf> = std::fs::read_dir(&debs)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{req}_")))
            })
            .collect();
        found.sort();
        let deb = found.pop().with_context(|| {
            format!("kernel {req}: not a file, and apt knows no package of that name (apt-cache search linux-image | grep cloud lists some)")
        })?;
        output::info(&format!(
            "{req}: not in the package lists; using the cached {}",
            deb.display()
        ));
        return Ok(deb);
    };
    let policy = tools::stdout(Command::new("apt-cache").args(&apt).args(["policy", &pkg]))?;
    let ver = policy
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate: "))
        .filter(|v| *v != "(none)")
        .map(str::to_string)
        .with_context(|| format!("apt has no candidate version of {pkg}"))?;
    let deb = debs.join(format!(
        "{pkg}_{}_{}.deb",
        deb_version_fname(&ver),
        arch.debian()
    ));
    if deb.metadata().is_ok_and(|m| m.len() > 0) {
        output::info(&format!("{pkg} {ver}: cached ({})", deb.display()));
        return Ok(deb);
    }
    output::info(&format!("{pkg} {ver}: apt-get download"));
    let tmp = tempfile_dir(&debs, ".download")?;
    let st = Command::new("apt-get")
        .args(&apt)
        .args(["download", "-q", "-o", "APT::Sandbox::User=root"])
        .arg(format!("{pkg}={ver}"))
        .current_dir(&tmp)
        .status()
        .context("running apt-get download")?;
    let got = std::fs::read_dir(&tmp)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"));
    let res = match (st.success(), got) {
        (true, Some(f)) => std::fs::rename(&f, &deb).map_err(anyhow::Error::from),
        _ => Err(anyhow::anyhow!(
            "apt-get download {pkg}={ver} failed (network? the package may have left the archive: apt-get update)"
        )),
    };
    let _ = std::fs::remove_dir_all(&tmp);
    res.map(|_| deb)
}

fn tempfile_dir(parent: &Path, prefix: &str) -> Result<PathBuf> {
    for i in 0..1000u32 {
        let p = parent.join(format!("{prefix}.{}.{i}", std::process::id()));
        if std::fs::create_dir(&p).is_ok() {
            return Ok(p);
        }
    }
    bail!("cannot make a temporary directory in {}", parent.display())
}

/// The extracted tree of a .deb (cached), with depmod run on its modules.
fn extract_deb(deb: &Path, cache: &Path) -> Result<PathBuf> {
    let name = deb.file_stem().unwrap().to_string_lossy().into_owned();
    let root = cache.join("extracted").join(&name);
    if root.is_dir() {
        return Ok(root);
    }
    std::fs::create_dir_all(cache.join("extracted"))?;
    let tmp = tempfile_dir(&cache.join("extracted"), ".tmp")?;
    if let Err(e) = tools::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp)) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    for base in ["", "usr"] {
        let mods = tmp.join(base).join("lib/modules");
        for e in std::fs::read_dir(&mods).into_iter().flatten().flatten() {
            let _ = Command::new("depmod")
                .arg("-b")
                .arg(tmp.join(base))
                .arg(e.file_name())
                .output();
        }
    }
    // Another run may have won the race: theirs is as good.
    if std::fs::rename(&tmp, &root).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(root)
}

fn find_vmlinuz(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root.join("boot"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
}

/// The release of a kernel image: from the bzImage setup header (x86), else from the
/// banner in the (unpacked) arm64 Image.
fn image_release(img: &Path) -> Result<String> {
    let bytes = std::fs::read(img).with_context(|| format!("reading {}", img.display()))?;
    let not_an_image = || {
        format!(
            "kernel {}: not a bootable kernel image (neither an x86 bzImage with a HdrS setup header nor an arm64 Image with ARM\\x64 at offset 56); qemu -kernel needs arch/x86/boot/bzImage or arch/arm64/boot/Image",
            img.display()
        )
    };
    match inspect::image_info(&bytes).with_context(not_an_image)?.arch {
        Arch::X86_64 => bzimage_release(&bytes).with_context(not_an_image),
        Arch::Arm64 => inspect::banner_release(&inspect::unpacked(&bytes)?).with_context(|| {
            format!(
                "kernel {}: an arm64 Image with no \"Linux version\" banner to read its release from",
                img.display()
            )
        }),
    }
}

/// The architecture of a resolved kernel's image.
pub fn kernel_arch(k: &BootKernel) -> Result<Arch> {
    let bytes =
        std::fs::read(&k.image).with_context(|| format!("reading {}", k.image.display()))?;
    inspect::image_info(&bytes)
        .map(|i| i.arch)
        .with_context(|| {
            format!(
                "kernel {}: neither a bzImage nor an arm64 Image",
                k.image.display()
            )
        })
}

/// Resolves a form to a bootable kernel. None for `host`.
pub fn resolve(form: &KernelForm, o: &ResolveOptions) -> Result<Option<BootKernel>> {
    let (image, moddir, root) = match form {
        KernelForm::Host => return Ok(None),
        KernelForm::Tree(t) => {
            if tools::is_foreign(o.build.arch) {
                bail!(
                    "kernel tree {}: building an {} kernel on this {} machine needs a cross compiler, which the runner does not set up; build it (make ARCH={} CROSS_COMPILE=aarch64-linux-gnu- {} modules) and pass PATH/{}:MODDIR",
                    t.dir.display(),
                    o.build.arch,
                    Arch::host().map_or("other", Arch::name),
                    o.build.arch.make_arch(),
                    o.build.arch.image_target(),
                    o.build.arch.image_target()
                );
            }
            let b = tree::build(t, &o.build)?;
            let commit = b.commit.as_deref().map(|c| &c[..c.len().min(12)]);
            let label = match commit {
                Some(c) => format!("{}@{c}", b.release),
                None => b.release.clone(),
            };
            if b.cached {
                output::info(&format!(
                    "kernel {label}: built before ({})",
                    b.image.display()
                ));
            }
            return Ok(Some(BootKernel {
                image: b.image,
                release: b.release,
                moddir: b.moddir,
                label,
            }));
        }
        KernelForm::Package(_) | KernelForm::Deb(_) => {
            let deb = match form {
                KernelForm::Package(p) => fetch_package(p, &o.cache, o.build.arch)?,
                KernelForm::Deb(d) => d.canonicalize()?,
                _ => unreachable!(),
            };
            let root = extract_deb(&deb, &o.cache)?;
            let img = find_vmlinuz(&root).with_context(|| {
                format!(
                    "kernel {}: the package has no boot/vmlinuz-* (is it a linux-image package?)",
                    deb.display()
                )
            })?;
            (img, None, root)
        }
        KernelForm::Image { image, moddir } => {
            let img = image
                .canonicalize()
                .with_context(|| format!("kernel image {}", image.display()))?;
            let root = img
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("/"))
                .to_path_buf();
            (img, moddir.clone(), root)
        }
    };
    let release = image_release(&image)?;
    let moddir = match moddir {
        Some(m) => {
            if !m.is_dir() {
                bail!(
                    "kernel {}: modules directory {} is not a directory",
                    image.display(),
                    m.display()
                );
            }
            Some(m.canonicalize()?)
        }
        None => [
            root.join("lib/modules").join(&release),
            root.join("usr/lib/modules").join(&release),
            Path::new("/lib/modules").join(&release),
        ]
        .into_iter()
        .find(|c| c.is_dir()),
    };
    if moddir.is_none() {
        output::warn(&format!(
            "kernel {release}: no modules directory found; the guest has only what is built in"
        ));
    }
    Ok(Some(BootKernel {
        image,
        label: release.clone(),
        release,
        moddir,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_told_apart() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("bzImage");
        std::fs::write(&img, b"x").unwrap();
        let deb = d.path().join("linux-image-x_1_amd64.deb");
        std::fs::write(&deb, b"x").unwrap();
        let p = |s: &str| KernelForm::parse(s).unwrap();
        assert_eq!(p("host"), KernelForm::Host);
        assert_eq!(
            p("linux-image-cloud-amd64"),
            KernelForm::Package("linux-image-cloud-amd64".into())
        );
        assert_eq!(p(&deb.display().to_string()), KernelForm::Deb(deb.clone()));
        assert_eq!(
            p(&img.display().to_string()),
            KernelForm::Image {
                image: img.clone(),
                moddir: None
            }
        );
        assert_eq!(
            p(&format!("{}:/mods/lib/modules/6.19", img.display())),
            KernelForm::Image {
                image: img.clone(),
                moddir: Some("/mods/lib/modules/6.19".into())
            }
        );
        let dir = d.path().display().to_string();
        assert!(matches!(p(&dir), KernelForm::Tree(t) if t.commit.is_none()));
        assert!(
            matches!(p(&format!("{dir}@abc123")), KernelForm::Tree(t) if t.commit.as_deref() == Some("abc123"))
        );
        let e = KernelForm::parse("/no/such/bzImage")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/no/such/bzImage") && e.contains("source tree"),
            "{e}"
        );
    }

    #[test]
    fn bzimage_header_release() {
        let mut img = vec![0u8; 0x1000];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        // kernel_version at 0x200 + 0x300.
        img[0x20e..0x210].copy_from_slice(&0x300u16.to_le_bytes());
        let v = b"6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP\0";
        img[0x500..0x500 + v.len()].copy_from_slice(v);
        assert_eq!(
            bzimage_release(&img).as_deref(),
            Some("6.1.0-57-cloud-amd64")
        );
        let mut bad = img.clone();
        bad[0x202] = b'X';
        assert_eq!(bzimage_release(&bad), None);
        let mut zero = img.clone();
        zero[0x20e..0x210].copy_from_slice(&[0, 0]);
        assert_eq!(bzimage_release(&zero), None);
        assert_eq!(bzimage_release(&img[..0x300]), None, "truncated file");
    }

    #[test]
    fn package_helpers() {
        assert_eq!(deb_version_fname("1:6.1.192-3"), "6.1.192-3");
        assert_eq!(deb_version_fname("6.1.192-3"), "6.1.192-3");
        let meta = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n";
        assert_eq!(
            meta_dependency(meta).as_deref(),
            Some("linux-image-6.1.0-57-cloud-amd64")
        );
        let image =
            "linux-image-6.1.0-57-cloud-amd64\n  Depends: kmod\n  Depends: linux-base (>= 4.3~)\n";
        assert_eq!(meta_dependency(image), None);
        for (name, arch) in [
            ("linux-image-cloud-amd64", Some(Arch::X86_64)),
            ("linux-image-6.12-arm64-16k", Some(Arch::Arm64)),
            (
                "linux-image-6.12.57+deb13-arm64-16k-unsigned",
                Some(Arch::Arm64),
            ),
            ("linux-image-6.12-cloud-arm64", Some(Arch::Arm64)),
            ("linux-image-6.12.57+deb13-arm64", Some(Arch::Arm64)),
            ("linux-image-generic", None),
            ("linux-image-arm64ish-kernel", None),
        ] {
            assert_eq!(package_arch(name), arch, "{name}");
        }
    }
}
