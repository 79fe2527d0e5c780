//! The guest's initramfs: busybox (static), thpbench (stripped) with the libraries `ldd`
//! names and the dynamic loader, the modules the guest needs (each after its
//! dependencies, decompressed so busybox insmod takes them), the guest setup files and
//! init. Written as a gzip'd newc archive. Every ELF file that goes in (busybox,
//! thpbench, its libraries, the modules) is checked to be built for the guest's
//! architecture first: a wrong one would otherwise surface as a guest that dies at init.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::cpio;
use super::form::BootKernel;
use super::inspect;
use super::protocol::{GuestSetup, INIT};
use super::qemu::Arch;
use super::tools;

/// Modules the guest loads, in this order, each with its dependencies first; those built
/// in or absent from the build are skipped.
pub const GUEST_MODULES: &[&str] = &[
    "virtio_pci",
    // The data port of arm64 guests (hvc0); built in on Debian's arm64 kernels.
    "virtio_console",
    "virtio_blk",
    // The scratch disk's file system: a module in Debian's arm64 and arm64-16k flavours.
    "ext4",
    "zsmalloc",
    "zram",
    "lzo",
    "lzo-rle",
    "lz4",
    "lz4hc",
    "zstd",
    "null_blk",
];

/// The libraries in `ldd` output: `name => /path (addr)` and the loader's `/path (addr)`.
pub fn ldd_libraries(ldd: &str) -> Vec<PathBuf> {
    ldd.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, r)) => r.trim(),
                None => l,
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The module files of `modprobe --show-depends` output, in load order ("builtin" lines,
/// for what is built in, are skipped).
pub fn show_depends_files(out: &str) -> Vec<PathBuf> {
    out.lines()
        .filter_map(|l| l.strip_prefix("insmod "))
        .filter_map(|r| r.split_whitespace().next())
        .map(PathBuf::from)
        .collect()
}

/// `kernel/mm/zram.ko.xz` -> `kernel/mm/zram.ko`: busybox insmod takes plain modules.
pub fn decompressed_name(rel: &str) -> &str {
    [".xz", ".zst", ".gz"]
        .iter()
        .find_map(|s| rel.strip_suffix(s))
        .unwrap_or(rel)
}

fn stage_modules(k: &BootKernel, arch: Arch, stage: &Path, work: &Path) -> Result<Vec<String>> {
    let Some(moddir) = &k.moddir else {
        return Ok(Vec::new());
    };
    let rel_root = format!("lib/modules/{}", k.release);
    let modroot = work.join("modroot");
    let _ = std::fs::remove_dir_all(&modroot);
    std::fs::create_dir_all(modroot.join("lib/modules"))?;
    let link = modroot.join(&rel_root);
    if moddir.join("modules.dep").is_file() {
        std::os::unix::fs::symlink(moddir, &link)?;
    } else {
        // modprobe -d wants ROOT/lib/modules/RELEASE with a modules.dep.
        tools::run(Command::new("cp").arg("-a").arg(moddir).arg(&link))?;
        tools::run(
            Command::new("depmod")
                .arg("-b")
                .arg(&modroot)
                .arg(&k.release),
        )
        .with_context(|| format!("depmod for {}", moddir.display()))?;
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for m in GUEST_MODULES {
        let o = Command::new("modprobe")
            .arg("-d")
            .arg(&modroot)
            .args(["-S", &k.release, "--show-depends", m])
            .output()
            .context("running modprobe (kmod)")?;
        for path in show_depends_files(&String::from_utf8_lossy(&o.stdout)) {
            if !seen.insert(path.clone()) {
                continue;
            }
            let s = path.to_string_lossy();
            let rel = s
                .split_once(&format!("/lib/modules/{}/", k.release))
                .map_or(s.as_ref(), |(_, r)| r);
            let rel = decompressed_name(rel).to_string();
            let dst = stage.join(&rel_root).join(&rel);
            std::fs::create_dir_all(dst.parent().unwrap())?;
            let data = match path.extension().and_then(|e| e.to_str()) {
                Some("xz") => tools::run(Command::new("xz").arg("-dc").arg(&path))?.stdout,
                Some("zst") => tools::run(Command::new("zstd").arg("-qdc").arg(&path))?.stdout,
                Some("gz") => {
                    use std::io::Read;
                    let mut v = Vec::new();
                    flate2::read::GzDecoder::new(std::fs::File::open(&path)?)
                        .read_to_end(&mut v)?;
                    v
                }
                _ => std::fs::read(&path)?,
            };
            inspect::check_elf_for(&data, arch, &format!("module {}", path.display()), "")?;
            std::fs::write(&dst, data)?;
            order.push(format!("/{rel_root}/{rel}"));
        }
    }
    // A kernel with every guest module built in stages no module file, so nothing above
    // made the directory; its module lists still go in (busybox modprobe reads them).
    std::fs::create_dir_all(stage.join(&rel_root))?;
    for f in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        if moddir.join(f).is_file() {
            std::fs::copy(moddir.join(f), stage.join(&rel_root).join(f))?;
        }
    }
    // For the kernel's own request_module (busybox modprobe reads modules.dep).
    let _ = Command::new("depmod")
        .arg("-b")
        .arg(stage)
        .arg(&k.release)
        .output();
    Ok(order)
}

/// What was built.
#[derive(Debug, Clone)]
pub struct Initramfs {
    pub path: PathBuf,
    /// The modules init loads, as guest paths.
    pub modules: Vec<String>,
    pub bytes: u64,
}

/// Builds `work/initrd-RELEASE.cpio.gz` for this kernel, thpbench binary and setup
/// (`setup.modules` is filled in here), for a guest of this machine's architecture with
/// the host's busybox.
pub fn build(
    k: &BootKernel,
    thpbench: &Path,
    setup: &GuestSetup,
    work: &Path,
) -> Result<Initramfs> {
    build_for(
        k,
        Arch::host().unwrap_or_default(),
        Path::new(tools::BUSYBOX),
        thpbench,
        setup,
        work,
    )
}

/// The hint an ELF check error ends with, for the guest's thpbench.
pub fn thpbench_hint(arch: Arch) -> String {
    match arch {
        Arch::Arm64 if tools::is_foreign(arch) => "; cross-build a static one with scripts/build-aarch64.sh and pass --thpbench target/aarch64-unknown-linux-gnu/release/thpbench".into(),
        _ => format!("; pass --thpbench with a static {arch} build"),
    }
}

/// Builds the initramfs for a guest of `arch`, with `busybox` (a static one for that
/// architecture) and `thpbench`, each checked to be an `arch` ELF.
pub fn build_for(
    k: &BootKernel,
    arch: Arch,
    busybox: &Path,
    thpbench: &Path,
    setup: &GuestSetup,
    work: &Path,
) -> Result<Initramfs> {
    inspect::check_elf_for(
        &inspect::read_head(busybox)?,
        arch,
        &format!("busybox {}", busybox.display()),
        &format!("; install busybox-static for {}", arch.debian()),
    )?;
    inspect::check_elf_for(
        &inspect::read_head(thpbench)?,
        arch,
        &format!("thpbench binary {}", thpbench.display()),
        &thpbench_hint(arch),
    )?;
    let stage = work.join(format!("stage-{}", k.label));
    let _ = std::fs::remove_dir_all(&stage);
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "usr/local/bin",
        "etc/thpbench",
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "scratch",
    ] {
        std::fs::create_dir_all(stage.join(d))?;
    }
    std::fs::copy(busybox, stage.join("bin/busybox")).with_context(|| {
        format!(
            "copying {} (Debian package busybox-static)",
            busybox.display()
        )
    })?;
    // Stripped: the initramfs is unpacked by the (maybe emulated) guest CPU.
    let tb = stage.join("usr/local/bin/thpbench");
    let stripped = tools::strip_for(arch)
        .is_some_and(|s| tools::run(Command::new(s).arg("-o").arg(&tb).arg(thpbench)).is_ok());
    if !stripped {
        std::fs::copy(thpbench, &tb)?;
    }
    // A foreign executable was checked to be static above; ldd is for native ones.
    let ldd = Command::new("ldd").arg(thpbench).output();
    if let (Ok(o), false) = (ldd, tools::is_foreign(arch)) {
        for lib in ldd_libraries(&String::from_utf8_lossy(&o.stdout)) {
            if lib.is_file() {
                inspect::check_elf_for(
                    &inspect::read_head(&lib)?,
                    arch,
                    &format!("library {}", lib.display()),
                    "",
                )?;
                let dst = stage.join(lib.strip_prefix("/").unwrap());
                std::fs::create_dir_all(dst.parent().unwrap())?;
                std::fs::copy(&lib, &dst)?;
            }
        }
    }
    let modules = stage_modules(k, arch, &stage, work)?;
    let setup = GuestSetup {
        modules: modules.clone(),
        ..setup.clone()
    };
    for (path, text) in setup.files() {
        std::fs::write(stage.join(path), text)?;
    }
    let init = stage.join("init");
    std::fs::write(&init, INIT)?;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755))?;
    let path = work.join(format!("initrd-{}.cpio.gz", k.label));
    let f = std::fs::File::create(&path)?;
    let gz = cpio::archive_dir(
        &stage,
        flate2::write::GzEncoder::new(f, flate2::Compression::fast()),
    )?;
    gz.finish()?;
    let _ = std::fs::remove_dir_all(&stage);
    let bytes = std::fs::metadata(&path)?.len();
    Ok(Initramfs {
        path,
        modules,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree built with the guest modules built in (as the fragment asks): nothing to
    /// load, and staging must not require any of them as a .ko, yet keep the lists.
    #[test]
    fn built_in_modules_are_not_required_as_files() {
        let test = "built_in_modules_are_not_required_as_files";
        if !crate::test_support::require_tool(test, "modprobe", "kmod") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let release = "6.12.0-test";
        let moddir = d.path().join("mods/lib/modules").join(release);
        std::fs::create_dir_all(&moddir).unwrap();
        for f in [
            "modules.dep",
            "modules.order",
            "modules.alias",
            "modules.symbols",
        ] {
            std::fs::write(moddir.join(f), "").unwrap();
        }
        let builtin = "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/block/virtio_blk.ko\nkernel/mm/zsmalloc.ko\nkernel/drivers/block/zram/zram.ko\n";
        std::fs::write(moddir.join("modules.builtin"), builtin).unwrap();
        let k = BootKernel {
            image: d.path().join("bzImage"),
            release: release.into(),
            moddir: Some(moddir),
            label: format!("{release}@abc"),
        };
        let stage = d.path().join("stage");
        let work = d.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let loaded = stage_modules(&k, Arch::X86_64, &stage, &work).unwrap();
        assert!(loaded.is_empty(), "{loaded:?}");
        let staged = stage.join("lib/modules").join(release);
        assert_eq!(
            std::fs::read_to_string(staged.join("modules.builtin")).unwrap(),
            builtin
        );
        assert!(staged.join("modules.order").is_file());
    }

    /// An arm64 guest with this (x86-64, or at any rate host) test binary as its
    /// thpbench: refused before anything is staged, with the command that builds the
    /// right one; an x86 busybox for an arm64 guest likewise.
    #[test]
    fn a_binary_of_another_architecture_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let me = std::env::current_exe().unwrap();
        let foreign = Arch::ALL
            .into_iter()
            .find(|a| Some(*a) != Arch::host())
            .unwrap();
        // A static ELF header of the foreign architecture, for busybox.
        let mut bb = std::fs::read(&me).unwrap()[..64].to_vec();
        bb[18..20].copy_from_slice(&foreign.elf_machine().to_le_bytes());
        bb[56..58].copy_from_slice(&0u16.to_le_bytes()); // no program headers
        let busybox = d.path().join("busybox");
        std::fs::write(&busybox, &bb).unwrap();
        let k = BootKernel {
            image: d.path().join("Image"),
            release: "6.12.0".into(),
            moddir: None,
            label: "6.12.0".into(),
        };
        let setup = GuestSetup {
            workload_toml: String::new(),
            run_args: Vec::new(),
            modules: Vec::new(),
            scratch_mount: None,
            cwd: "/tmp".into(),
        };
        let e = build_for(&k, foreign, &busybox, &me, &setup, d.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("thpbench binary {}", me.display()))
                && e.contains(&format!("but the guest is {foreign}")),
            "{e}"
        );
        if foreign == Arch::Arm64 {
            assert!(e.contains("scripts/build-aarch64.sh"), "{e}");
        }
        let e = build_for(&k, foreign, &me, &me, &setup, d.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("busybox ") && e.contains(foreign.debian()),
            "{e}"
        );
        assert!(
            !d.path().join("stage-6.12.0").exists(),
            "nothing staged before the checks"
        );
    }

    #[test]
    fn ldd_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n\tlibmissing.so => not found\n";
        assert_eq!(
            ldd_libraries(out),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                "/lib/x86_64-linux-gnu/libc.so.6".into(),
                "/lib64/ld-linux-x86-64.so.2".into()
            ]
        );
    }

    #[test]
    fn show_depends_in_load_order() {
        let out = "insmod /m/lib/modules/6.12/kernel/mm/zsmalloc.ko.xz \ninsmod /m/lib/modules/6.12/kernel/drivers/block/zram/zram.ko.xz num_devices=1\nbuiltin virtio_pci\n";
        assert_eq!(
            show_depends_files(out),
            [
                PathBuf::from("/m/lib/modules/6.12/kernel/mm/zsmalloc.ko.xz"),
                "/m/lib/modules/6.12/kernel/drivers/block/zram/zram.ko.xz".into()
            ]
        );
        assert_eq!(decompressed_name("kernel/zram.ko.xz"), "kernel/zram.ko");
        assert_eq!(decompressed_name("kernel/zram.ko.zst"), "kernel/zram.ko");
        assert_eq!(decompressed_name("kernel/zram.ko"), "kernel/zram.ko");
    }
}
