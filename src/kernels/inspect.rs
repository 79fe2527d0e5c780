//! What a file is, read from its bytes: a kernel image's architecture, base page size
//! and release (x86 bzImage setup header; arm64 Image header, maybe gzip'd), and an ELF
//! file's machine, so nothing of the wrong architecture goes into a guest's initramfs.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::qemu::Arch;

/// The arm64 Image header's magic, "ARM\x64", at offset 56
/// (Documentation/arch/arm64/booting.rst).
pub const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
const ARM64_MAGIC_OFFSET: usize = 56;
/// The header's 64-bit little-endian flags word.
const ARM64_FLAGS_OFFSET: usize = 24;

/// A kernel image, as far as its header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub arch: Arch,
    /// arm64 only: the base page size the header declares (flags bits 1-2); None when
    /// "unspecified" (0) or on x86.
    pub page_bytes: Option<u64>,
    /// The header had to be gunzip'd first (Debian's older arm64 vmlinuz).
    pub gzipped: bool,
}

fn is_gzip(b: &[u8]) -> bool {
    b.starts_with(&[0x1f, 0x8b])
}

/// The bytes as qemu's loader sees them: a gzip'd image unpacked.
pub fn unpacked(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if !is_gzip(bytes) {
        return Ok(bytes.into());
    }
    let mut v = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut v)
        .context("gunzipping the kernel image")?;
    Ok(v.into())
}

/// The architecture of an (unpacked) kernel image: x86 from the bzImage setup header
/// ("HdrS" at 0x202), arm64 from the Image header's magic at 56.
pub fn image_info(bytes: &[u8]) -> Option<ImageInfo> {
    let gzipped = is_gzip(bytes);
    let b = unpacked(bytes).ok()?;
    if b.get(0x202..0x206) == Some(b"HdrS") {
        return Some(ImageInfo {
            arch: Arch::X86_64,
            page_bytes: None,
            gzipped,
        });
    }
    if b.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) == Some(ARM64_MAGIC) {
        let flags = u64::from_le_bytes(
            b.get(ARM64_FLAGS_OFFSET..ARM64_FLAGS_OFFSET + 8)?
                .try_into()
                .ok()?,
        );
        let page_bytes = match (flags >> 1) & 3 {
            1 => Some(4 << 10),
            2 => Some(16 << 10),
            3 => Some(64 << 10),
            _ => None,
        };
        return Some(ImageInfo {
            arch: Arch::Arm64,
            page_bytes,
            gzipped,
        });
    }
    None
}

/// The release in the kernel's banner ("Linux version 6.12.57+deb13-arm64 (...)"), for
/// images with no header field for it (arm64). The first banner whose release starts
/// with a digit: format strings such as "Linux version %s" are skipped.
pub fn banner_release(bytes: &[u8]) -> Option<String> {
    const BANNER: &[u8] = b"Linux version ";
    let mut from = 0;
    while let Some(i) = bytes[from..]
        .windows(BANNER.len())
        .position(|w| w == BANNER)
    {
        let start = from + i + BANNER.len();
        let rest = &bytes[start..bytes.len().min(start + 256)];
        let end = rest
            .iter()
            .position(|&c| c == b' ' || c == 0 || c == b'\n')
            .unwrap_or(rest.len());
        if let Ok(r) = std::str::from_utf8(&rest[..end]) {
            if r.starts_with(|c: char| c.is_ascii_digit())
                && r.chars().all(|c| c.is_ascii_graphic())
            {
                return Some(r.to_string());
            }
        }
        from = start;
    }
    None
}

/// An ELF file's header: what it runs on, and whether it needs a dynamic loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfInfo {
    pub machine: u16,
    pub class64: bool,
    /// ET_REL: a kernel module (or an object file).
    pub relocatable: bool,
    /// It has a PT_INTERP program header: a dynamically linked executable.
    pub dynamic: bool,
}

/// Reads the ELF header (and, for the interpreter, the program headers) from the
/// file's first bytes; None when it is not ELF.
pub fn elf_info(b: &[u8]) -> Option<ElfInfo> {
    if b.get(0..4)? != b"\x7fELF" {
        return None;
    }
    let class64 = *b.get(4)? == 2;
    let le = *b.get(5)? == 1;
    let u16_at = |o: usize| -> Option<u16> {
        let x: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(if le {
            u16::from_le_bytes(x)
        } else {
            u16::from_be_bytes(x)
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let x: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        })
    };
    let u64_at = |o: usize| -> Option<u64> {
        let x: [u8; 8] = b.get(o..o + 8)?.try_into().ok()?;
        Some(if le {
            u64::from_le_bytes(x)
        } else {
            u64::from_be_bytes(x)
        })
    };
    let e_type = u16_at(16)?;
    let machine = u16_at(18)?;
    let (phoff, phentsize, phnum) = if class64 {
        (u64_at(32)?, u16_at(54)?, u16_at(56)?)
    } else {
        (u32_at(28)? as u64, u16_at(42)?, u16_at(44)?)
    };
    const PT_INTERP: u32 = 3;
    let dynamic = (0..phnum as u64).any(|i| {
        let off = phoff + i * phentsize as u64;
        usize::try_from(off)
            .ok()
            .and_then(u32_at)
            .is_some_and(|t| t == PT_INTERP)
    });
    Some(ElfInfo {
        machine,
        class64,
        relocatable: e_type == 1,
        dynamic,
    })
}

/// A human name for an e_machine.
pub fn machine_name(m: u16) -> String {
    match Arch::ALL.iter().find(|a| a.elf_machine() == m) {
        Some(a) => a.name().to_string(),
        None if m == 3 => "i386".into(),
        None if m == 40 => "arm (32-bit)".into(),
        None => format!("ELF machine {m}"),
    }
}

/// Checks that `bytes` (the file `what`) is a 64-bit ELF for `arch`; a foreign
/// executable must also be static, since the host's `ldd` cannot list its libraries.
pub fn check_elf_for(bytes: &[u8], arch: Arch, what: &str, hint: &str) -> Result<ElfInfo> {
    let Some(e) = elf_info(bytes) else {
        bail!("{what} is not an ELF file; the {arch} guest cannot run it{hint}");
    };
    if e.machine != arch.elf_machine() || !e.class64 {
        bail!(
            "{what} is built for {}{}, but the guest is {arch}{hint}",
            machine_name(e.machine),
            if e.class64 { "" } else { " (32-bit)" }
        );
    }
    if e.dynamic && Arch::host() != Some(arch) && !e.relocatable {
        bail!(
            "{what} is a dynamically linked {arch} executable: this {} host cannot list its libraries (ldd); the guest needs a static one{hint}",
            Arch::host().map_or("other", Arch::name)
        );
    }
    Ok(e)
}

/// Reads enough of `path` for its ELF and program headers.
pub fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut v = Vec::new();
    (&mut f).take(64 << 10).read_to_end(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::qemu::{EM_AARCH64, EM_X86_64};

    fn arm64_image(flags: u64) -> Vec<u8> {
        let mut img = vec![0u8; 0x2000];
        img[0..2].copy_from_slice(b"MZ");
        img[24..32].copy_from_slice(&flags.to_le_bytes());
        img[56..60].copy_from_slice(ARM64_MAGIC);
        let banner = b"\0Linux version %s\0Linux version 6.12.57+deb13-arm64-16k (debian-kernel@lists.debian.org) #1 SMP\n\0";
        img[0x1000..0x1000 + banner.len()].copy_from_slice(banner);
        img
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn arm64_images_by_magic_with_their_page_size() {
        // Flags 0x0a (Debian's 4K cloud kernel): LE, 4K, anywhere in memory.
        let four = arm64_image(0x0a);
        assert_eq!(
            image_info(&four),
            Some(ImageInfo {
                arch: Arch::Arm64,
                page_bytes: Some(4096),
                gzipped: false
            })
        );
        assert_eq!(
            image_info(&arm64_image(0x0c)).unwrap().page_bytes,
            Some(16 << 10)
        );
        assert_eq!(
            image_info(&arm64_image(0x0e)).unwrap().page_bytes,
            Some(64 << 10)
        );
        assert_eq!(image_info(&arm64_image(0x08)).unwrap().page_bytes, None);
        let gz = image_info(&gzip(&arm64_image(0x0c))).unwrap();
        assert_eq!(
            (gz.arch, gz.page_bytes, gz.gzipped),
            (Arch::Arm64, Some(16 << 10), true)
        );
        let mut bad = four.clone();
        bad[59] = b'X';
        assert_eq!(image_info(&bad), None);
        assert_eq!(image_info(&four[..40]), None, "truncated");
        assert_eq!(
            banner_release(&unpacked(&gzip(&four)).unwrap()).as_deref(),
            Some("6.12.57+deb13-arm64-16k"),
            "the format string is skipped"
        );
        assert_eq!(banner_release(b"no banner here"), None);
    }

    #[test]
    fn x86_bzimage_by_setup_header() {
        let mut img = vec![0u8; 0x1000];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        let i = image_info(&img).unwrap();
        assert_eq!((i.arch, i.page_bytes), (Arch::X86_64, None));
        // A file with both is read as x86: the setup header is the stronger claim.
        assert_eq!(image_info(b"ELF? no"), None);
    }

    /// A minimal 64-bit little-endian ELF header with `phnum` program headers of the
    /// given types.
    fn elf(machine: u16, e_type: u16, phdr_types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * phdr_types.len()];
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&e_type.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phdr_types.len() as u16).to_le_bytes());
        for (i, t) in phdr_types.iter().enumerate() {
            b[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
        }
        b
    }

    #[test]
    fn elf_machine_and_interpreter() {
        let static_arm = elf(EM_AARCH64, 2, &[1, 1]);
        let dyn_arm = elf(EM_AARCH64, 3, &[6, 3, 1]);
        let x86 = elf(EM_X86_64, 2, &[1]);
        let module = elf(EM_AARCH64, 1, &[]);
        assert_eq!(
            elf_info(&static_arm),
            Some(ElfInfo {
                machine: EM_AARCH64,
                class64: true,
                relocatable: false,
                dynamic: false
            })
        );
        assert!(elf_info(&dyn_arm).unwrap().dynamic);
        assert!(elf_info(&module).unwrap().relocatable);
        assert_eq!(elf_info(b"#!/bin/sh\n"), None);

        assert!(check_elf_for(&static_arm, Arch::Arm64, "thpbench", "").is_ok());
        assert!(check_elf_for(&module, Arch::Arm64, "zram.ko", "").is_ok());
        let e = check_elf_for(&x86, Arch::Arm64, "/t/thpbench", "; build one with X")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/t/thpbench is built for x86_64, but the guest is arm64; build one with X"
        );
        let e = check_elf_for(b"#!/bin/sh", Arch::X86_64, "init", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an ELF"), "{e}");
        let mut elf32 = static_arm.clone();
        elf32[4] = 1;
        let e = check_elf_for(&elf32, Arch::Arm64, "b", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("(32-bit)"), "{e}");
        // A dynamic executable is refused only for a foreign guest: the host's ldd
        // lists a native one's libraries.
        let foreign = Arch::ALL
            .into_iter()
            .find(|a| Some(*a) != Arch::host())
            .unwrap();
        let dyn_foreign = elf(foreign.elf_machine(), 3, &[3]);
        let e = check_elf_for(&dyn_foreign, foreign, "busybox", "")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dynamically linked") && e.contains("static"),
            "{e}"
        );
        if let Some(h) = Arch::host() {
            assert!(check_elf_for(&elf(h.elf_machine(), 3, &[3]), h, "b", "").is_ok());
        }
        assert_eq!(machine_name(EM_AARCH64), "arm64");
        assert_eq!(machine_name(7), "ELF machine 7");
    }
}
