//! The machine: CPU model and microcode (/proc/cpuinfo), the hypervisor (CPUID leaf
//! 0x40000000 as systemd-detect-virt reads it, /sys/hypervisor, the cpuinfo flag), a
//! container, and the memory size (/proc/meminfo).

use crate::result::MachineInfo;

/// The first value of `key` in /proc/cpuinfo text (keys are padded with tabs).
pub fn cpuinfo_field<'a>(cpuinfo: &'a str, keys: &[&str]) -> Option<&'a str> {
    for line in cpuinfo.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if keys.contains(&k.trim()) {
                return Some(v.trim());
            }
        }
    }
    None
}

/// The hypervisor's CPUID vendor signature, as a short name.
pub fn hypervisor_from_signature(sig: &str) -> String {
    let sig = sig.trim_matches(char::from(0)).trim();
    match sig {
        "KVMKVMKVM" => "kvm".into(),
        "XenVMMXenVMM" => "xen".into(),
        "Microsoft Hv" => "microsoft".into(),
        "VMwareVMware" => "vmware".into(),
        "TCGTCGTCGTCG" => "qemu".into(),
        "ACRNACRNACRN" => "acrn".into(),
        "bhyve bhyve" => "bhyve".into(),
        "lrpepyh  vr" | "prl hyperv" => "parallels".into(),
        "VBoxVBoxVBox" => "oracle".into(),
        "" => "unknown vendor".into(),
        other => other.to_string(),
    }
}

#[cfg(target_arch = "x86_64")]
// __cpuid is safe from Rust 1.87 on, unsafe before (rust-version is 1.80).
#[allow(unused_unsafe)]
fn cpuid_hypervisor() -> Option<String> {
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 1 ECX bit 31 says a hypervisor is
    // present, and only then is leaf 0x40000000 its vendor signature.
    let present = unsafe { std::arch::x86_64::__cpuid(1) }.ecx & (1 << 31) != 0;
    if !present {
        return None;
    }
    let r = unsafe { std::arch::x86_64::__cpuid(0x4000_0000) };
    let bytes: Vec<u8> = [r.ebx, r.ecx, r.edx]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    Some(hypervisor_from_signature(&String::from_utf8_lossy(&bytes)))
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid_hypervisor() -> Option<String> {
    None
}

/// `none`, or the hypervisor's name.
pub fn hypervisor(cpuinfo: &str) -> String {
    if let Some(h) = cpuid_hypervisor() {
        return h;
    }
    if let Ok(t) = crate::system::read_trimmed("/sys/hypervisor/type") {
        if !t.is_empty() {
            return t;
        }
    }
    let flagged = cpuinfo_field(cpuinfo, &["flags", "Features"])
        .is_some_and(|f| f.split_whitespace().any(|x| x == "hypervisor"));
    if flagged {
        "unknown vendor".into()
    } else {
        "none".into()
    }
}

/// A container thpbench runs in, as systemd-detect-virt names it, or empty.
pub fn container() -> String {
    if std::path::Path::new("/.dockerenv").exists() {
        return "docker".into();
    }
    if std::path::Path::new("/run/.containerenv").exists() {
        return "podman".into();
    }
    if let Ok(env) = std::fs::read("/proc/1/environ") {
        for var in env.split(|&b| b == 0) {
            if let Some(v) = var.strip_prefix(b"container=") {
                return String::from_utf8_lossy(v).into_owned();
            }
        }
    }
    String::new()
}

/// MemTotal in bytes from /proc/meminfo text.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn machine_info() -> (MachineInfo, Vec<String>) {
    let mut gaps = Vec::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_else(|e| {
        gaps.push(format!("machine CPU model: /proc/cpuinfo: {e}"));
        String::new()
    });
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total_bytes = mem_total(&meminfo).unwrap_or_else(|| {
        gaps.push("machine memory: /proc/meminfo has no MemTotal".into());
        0
    });
    let info = MachineInfo {
        cpu_model: cpuinfo_field(&cpuinfo, &["model name", "cpu model", "Processor", "cpu"])
            .unwrap_or_default()
            .to_string(),
        microcode: cpuinfo_field(&cpuinfo, &["microcode"])
            .unwrap_or_default()
            .to_string(),
        hypervisor: hypervisor(&cpuinfo),
        container: container(),
        mem_total_bytes,
    };
    (info, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_and_meminfo_fields() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nmicrocode\t: 0x1000065\nflags\t\t: fpu hypervisor lahf_lm\n\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpuinfo_field(cpuinfo, &["model name"]), Some("AMD EPYC"));
        assert_eq!(cpuinfo_field(cpuinfo, &["microcode"]), Some("0x1000065"));
        assert_eq!(cpuinfo_field(cpuinfo, &["stepping"]), None);
        assert_eq!(
            mem_total("MemTotal:        8123456 kB\nMemFree: 1 kB\n"),
            Some(8123456 * 1024)
        );
        assert_eq!(hypervisor_from_signature("KVMKVMKVM\0\0\0"), "kvm");
        assert_eq!(hypervisor_from_signature("Microsoft Hv"), "microsoft");
    }
}
