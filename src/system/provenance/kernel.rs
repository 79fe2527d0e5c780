//! The running kernel's build: its GNU build-id (/sys/kernel/notes), the compiler it was
//! built with (/proc/version) and its configuration (/proc/config.gz or /boot).

use std::collections::BTreeMap;
use std::io::Read;

use crate::result::provenance::{COST_OPTION_PREFIXES, DEBUG_OPTIONS};
use crate::result::KernelConfig;

/// ELF note type of the GNU build-id (elf.h NT_GNU_BUILD_ID).
const NT_GNU_BUILD_ID: u32 = 3;

/// The GNU build-id in a sequence of ELF notes (the layout of /sys/kernel/notes, which
/// is the kernel's .notes section): per note namesz, descsz and type as native-endian
/// u32, then the name and the descriptor, each padded to 4 bytes. Hex, or None when no
/// note is `GNU` of type 3 or the notes are cut short.
pub fn parse_build_id(notes: &[u8]) -> Option<String> {
    let word = |at: usize| -> Option<u32> {
        let b = notes.get(at..at + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let pad = |n: usize| (n + 3) & !3;
    let mut at = 0;
    while at + 12 <= notes.len() {
        let namesz = word(at)? as usize;
        let descsz = word(at + 4)? as usize;
        let kind = word(at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at.checked_add(pad(namesz))?;
        let end = desc_at.checked_add(pad(descsz))?;
        let name = notes.get(name_at..name_at + namesz)?;
        let desc = notes.get(desc_at..desc_at + descsz)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && !desc.is_empty() {
            return Some(desc.iter().map(|b| format!("{b:02x}")).collect());
        }
        at = end;
    }
    None
}

/// The running kernel's build-id, or why it cannot be had.
pub fn build_id() -> Result<String, String> {
    let path = "/sys/kernel/notes";
    let notes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    parse_build_id(&notes).ok_or_else(|| format!("{path} holds no GNU build-id note"))
}

/// The compiler part of /proc/version: `Linux version R (user@host) (COMPILER) #1 ...`
/// gives COMPILER, e.g. `gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46`.
pub fn parse_compiler(proc_version: &str) -> Option<String> {
    // The parenthesized groups after the release, balanced (the compiler's own version
    // text holds parentheses); the second is the compiler.
    let mut groups = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in proc_version.char_indices() {
        match c {
            '(' => {
                if depth == 0 {
                    start = i + 1;
                }
                depth += 1;
            }
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    groups.push(&proc_version[start..i]);
                }
            }
            '#' if depth == 0 => break,
            _ => {}
        }
    }
    match groups.as_slice() {
        [_, compiler, ..] => Some(compiler.trim().to_string()),
        // Some builders leave out user@host.
        [only] if !only.contains('@') => Some(only.trim().to_string()),
        _ => None,
    }
}

pub fn compiler() -> Result<String, String> {
    let text =
        std::fs::read_to_string("/proc/version").map_err(|e| format!("/proc/version: {e}"))?;
    parse_compiler(&text).ok_or_else(|| format!("/proc/version names no compiler: {}", text.trim()))
}

/// The options of a config text that change these paths' costs: every debug option
/// (`n` when the config does not name it) and every option with a cost prefix it names.
pub fn parse_config_options(text: &str) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# CONFIG_") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                all.insert(name.to_string(), "n".to_string());
            }
        } else if let Some(rest) = line.strip_prefix("CONFIG_") {
            if let Some((name, value)) = rest.split_once('=') {
                all.insert(name.to_string(), value.trim_matches('"').to_string());
            }
        }
    }
    let mut out: BTreeMap<String, String> = all
        .iter()
        .filter(|(name, _)| COST_OPTION_PREFIXES.iter().any(|p| name.starts_with(p)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for name in DEBUG_OPTIONS {
        let value = all.get(*name).cloned().unwrap_or_else(|| "n".into());
        out.insert(name.to_string(), value);
    }
    out
}

/// The running kernel's config: /proc/config.gz (CONFIG_IKCONFIG_PROC), else
/// /boot/config-<release>.
pub fn config(release: &str) -> Result<KernelConfig, String> {
    let proc = "/proc/config.gz";
    let boot = format!("/boot/config-{release}");
    let (source, text) = match std::fs::File::open(proc) {
        Ok(f) => {
            let mut text = String::new();
            flate2::read::GzDecoder::new(f)
                .read_to_string(&mut text)
                .map_err(|e| format!("{proc}: cannot decompress: {e}"))?;
            (proc.to_string(), text)
        }
        Err(_) => match std::fs::read_to_string(&boot) {
            Ok(text) => (boot, text),
            Err(e) => {
                return Err(format!(
                    "neither {proc} nor {boot} can be read ({e}); build with CONFIG_IKCONFIG_PROC or install the config in /boot"
                ))
            }
        },
    };
    Ok(KernelConfig {
        source,
        sha256: crate::digest::sha256_hex(text.as_bytes()),
        options: parse_config_options(&text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32).to_ne_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        for part in [name, desc] {
            out.extend_from_slice(part);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        out
    }

    #[test]
    fn the_build_id_is_found_among_other_notes() {
        // As on this machine: a Xen note and a Linux note before the GNU one, a name
        // whose length needs padding, and a GNU note of another type first.
        let id: Vec<u8> = (0..20u8).map(|i| i * 13).collect();
        let mut notes = note(b"Xen\0", 18, &[1, 2, 3, 4, 5, 6, 7, 8]);
        notes.extend(note(b"Linux\0", 0x101, b"6.1.102\0"));
        notes.extend(note(b"GNU\0", 1, &[0, 0, 0, 0]));
        notes.extend(note(b"GNU\0", NT_GNU_BUILD_ID, &id));
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_build_id(&notes).as_deref(), Some(hex.as_str()));
        // None without the note, and none from notes cut inside one.
        assert_eq!(parse_build_id(&notes[..notes.len() - 24]), None);
        assert_eq!(parse_build_id(&notes[..notes.len() - 3]), None);
        assert_eq!(parse_build_id(&[]), None);
        // A size that overflows is not a panic.
        let mut bad = note(b"GNU\0", 1, &[]);
        bad[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse_build_id(&bad), None);
    }

    #[test]
    fn the_compiler_is_read_from_proc_version() {
        let v = "Linux version 6.18.44-fc-v1098 (builder@sandboxing) (gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46) #1 SMP PREEMPT_DYNAMIC @0\n";
        assert_eq!(
            parse_compiler(v).as_deref(),
            Some("gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46")
        );
        let clang = "Linux version 6.8.0 (u@h) (Ubuntu clang version 18.1.3 (1ubuntu1), Ubuntu LLD 18.1.3) #5 SMP (built (by) me)";
        assert_eq!(
            parse_compiler(clang).as_deref(),
            Some("Ubuntu clang version 18.1.3 (1ubuntu1), Ubuntu LLD 18.1.3")
        );
        assert_eq!(parse_compiler("Linux version 6.1 #1 SMP"), None);
    }

    #[test]
    fn config_options_keep_cost_and_debug_options() {
        let text = "#\n# Automatically generated file\nCONFIG_CC_VERSION_TEXT=\"gcc 15\"\nCONFIG_TRANSPARENT_HUGEPAGE=y\n# CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS is not set\nCONFIG_PREEMPT_DYNAMIC=y\nCONFIG_LOCKDEP_SUPPORT=y\nCONFIG_KASAN=y\nCONFIG_ZRAM_DEF_COMP=\"lzo-rle\"\nCONFIG_HZ=250\n";
        let o = parse_config_options(text);
        assert_eq!(o["TRANSPARENT_HUGEPAGE"], "y");
        assert_eq!(o["TRANSPARENT_HUGEPAGE_ALWAYS"], "n");
        assert_eq!(o["ZRAM_DEF_COMP"], "lzo-rle");
        assert_eq!(o["HZ"], "250");
        assert_eq!(o["KASAN"], "y");
        // Named by the debug list though absent; LOCKDEP_SUPPORT is not LOCKDEP.
        assert_eq!(o["LOCKDEP"], "n");
        assert!(!o.contains_key("CC_VERSION_TEXT"));
        let cfg = KernelConfig {
            options: o,
            ..Default::default()
        };
        assert_eq!(cfg.debug_options_on(), vec!["KASAN"]);
    }
}
