//! qemu's command line for one guest, built from typed options so that every
//! combination (architecture, accelerator, vCPU spec, NUMA nodes, scratch disk) is
//! unit-tested. x86_64 guests run on q35 with two 16550 UARTs (ttyS0 the console, ttyS1
//! the data port); arm64 guests on `virt`, whose one PL011 (ttyAMA0) is the console: the
//! data port is a virtio console (hvc0), since qemu 7.2's virt has no second non-secure
//! UART. Init learns its data port from `thpbench.data=` on the kernel cmdline.

use std::path::PathBuf;

/// The guest architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arch {
    #[default]
    X86_64,
    Arm64,
}

/// ELF e_machine values (include/uapi/linux/elf-em.h).
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// `x86_64`/`amd64`, `arm64`/`aarch64`.
    pub fn parse(s: &str) -> Option<Arch> {
        match s {
            "x86_64" | "amd64" | "x86-64" => Some(Arch::X86_64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
    /// The architecture this thpbench was built for (what KVM can run).
    pub fn host() -> Option<Arch> {
        Arch::parse(std::env::consts::ARCH)
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }
    /// Debian's name, in package names and for apt.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
    /// The ELF e_machine of its binaries and modules.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => EM_X86_64,
            Arch::Arm64 => EM_AARCH64,
        }
    }
    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }
    /// The Debian package with qemu_binary.
    pub fn qemu_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Arm64 => "qemu-system-arm",
        }
    }
    pub fn machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "q35",
            // GICv3 (max): more than 8 vCPUs, and under KVM the host's own GIC.
            Arch::Arm64 => "virt,gic-version=max",
        }
    }
    /// The kernel's ARCH= for make.
    pub fn make_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86",
            Arch::Arm64 => "arm64",
        }
    }
    /// The make target for the arch's default config.
    pub fn defconfig(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64_defconfig",
            Arch::Arm64 => "defconfig",
        }
    }
    /// The make target that builds the bootable image, and where it lands under O=.
    pub fn image_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "bzImage",
            Arch::Arm64 => "Image",
        }
    }
    pub fn image_path(self) -> &'static str {
        match self {
            Arch::X86_64 => "arch/x86/boot/bzImage",
            Arch::Arm64 => "arch/arm64/boot/Image",
        }
    }
    /// The console, as the guest names it.
    pub fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Arm64 => "ttyAMA0",
        }
    }
    /// The data port, as the guest names it (/dev/NAME).
    pub fn data_port(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS1",
            Arch::Arm64 => "hvc0",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// A vCPU count or a full qemu `-smp` spec (`4,sockets=1,cores=2,threads=2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smp {
    pub spec: String,
    pub cpus: u32,
    pub threads_per_core: Option<u32>,
}

impl std::str::FromStr for Smp {
    type Err = String;
    fn from_str(s: &str) -> Result<Smp, String> {
        let bad = || {
            format!(
                "--smp {s}: expected a number of vCPUs or a qemu -smp spec like 4,sockets=1,cores=2,threads=2"
            )
        };
        let positive = |v: &str| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n > 0 && !v.starts_with('0'))
        };
        let mut parts = s.split(',');
        let cpus = parts.next().and_then(positive).ok_or_else(bad)?;
        let mut threads_per_core = None;
        for p in parts {
            let (k, v) = p.split_once('=').ok_or_else(bad)?;
            let v = positive(v).ok_or_else(bad)?;
            match k {
                "threads" => threads_per_core = Some(v),
                "sockets" | "dies" | "clusters" | "cores" | "maxcpus" => {}
                _ => return Err(bad()),
            }
        }
        Ok(Smp {
            spec: s.to_string(),
            cpus,
            threads_per_core,
        })
    }
}

/// The guest's CPUs, memory and NUMA nodes, checked to split evenly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub smp: Smp,
    pub mem_mib: u64,
    /// 0 or 1: one node, no -numa options.
    pub numa_nodes: u32,
}

impl Topology {
    pub fn new(smp: Smp, mem_mib: u64, numa_nodes: u32) -> Result<Topology, String> {
        if numa_nodes > 1 {
            if !smp.cpus.is_multiple_of(numa_nodes) {
                return Err(format!(
                    "--numa {numa_nodes}: the {} vCPUs of --smp {} do not split evenly over {numa_nodes} nodes",
                    smp.cpus, smp.spec
                ));
            }
            if !mem_mib.is_multiple_of(numa_nodes as u64) {
                return Err(format!(
                    "--numa {numa_nodes}: --mem {mem_mib}M does not split evenly over {numa_nodes} nodes"
                ));
            }
        }
        Ok(Topology {
            smp,
            mem_mib,
            numa_nodes,
        })
    }
}

/// `--mem`: `3G`, `512M`.
pub fn parse_mem_mib(s: &str) -> Result<u64, String> {
    let bad = || format!("--mem {s}: expected a size in M or G, e.g. 3G");
    let (num, mul) = match s.char_indices().last() {
        Some((i, 'g' | 'G')) => (&s[..i], 1024),
        Some((i, 'm' | 'M')) => (&s[..i], 1),
        _ => return Err(bad()),
    };
    num.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| n * mul)
        .ok_or_else(bad)
}

/// One guest's qemu invocation.
#[derive(Debug, Clone)]
pub struct QemuSpec {
    pub arch: Arch,
    pub accel: Accel,
    pub topology: Topology,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Appended to the fixed cmdline (transparent_hugepage=, thpbench.mode=probe).
    pub cmdline_extra: Vec<String>,
    pub console_log: PathBuf,
    pub data_log: PathBuf,
    /// A raw ext4 image attached as virtio-blk (/dev/vda in the guest).
    pub scratch: Option<PathBuf>,
}

impl QemuSpec {
    pub fn cmdline(&self) -> String {
        let mut c = vec![
            format!("console={}", self.arch.console()),
            format!("thpbench.data={}", self.arch.data_port()),
            "panic=-1".into(),
            "oops=panic".into(),
            "loglevel=4".into(),
            "rdinit=/init".into(),
            format!("thpbench.accel={}", self.accel.name()),
        ];
        c.extend(self.cmdline_extra.iter().cloned());
        c.join(" ")
    }

    pub fn cpu_model(&self) -> &'static str {
        match (self.arch, self.accel) {
            (_, Accel::Kvm) => "host",
            // max: every feature TCG emulates, the 16K and 64K granules among them (a
            // 16K-page kernel does not boot on a CPU without TGran16).
            (Arch::Arm64, Accel::Tcg) => "max",
            (Arch::X86_64, Accel::Tcg) => self.x86_tcg_cpu(),
        }
    }

    fn x86_tcg_cpu(&self) -> &'static str {
        // TCG's max CPU is AMD-like without TOPOEXT, so Linux would see every thread as a
        // core; Intel's CPUID leaf 0xB carries the SMT siblings of threads=N.
        if self.topology.smp.threads_per_core.is_some() {
            "max,vendor=GenuineIntel"
        } else {
            "max"
        }
    }

    pub fn args(&self) -> Vec<String> {
        let t = &self.topology;
        let accel = match self.accel {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg,thread=multi",
        };
        let mut a: Vec<String> = [
            "-accel",
            accel,
            "-cpu",
            self.cpu_model(),
            "-smp",
            &t.smp.spec,
            "-m",
            &format!("{}M", t.mem_mib),
            "-M",
            self.arch.machine(),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-kernel",
            &self.kernel.display().to_string(),
            "-initrd",
            &self.initrd.display().to_string(),
            "-append",
            &self.cmdline(),
            "-serial",
            &format!("file:{}", self.console_log.display()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match self.arch {
            Arch::X86_64 => a.extend([
                "-serial".into(),
                format!("file:{}", self.data_log.display()),
            ]),
            Arch::Arm64 => a.extend([
                "-chardev".into(),
                format!("file,id=thpbench-data,path={}", self.data_log.display()),
                "-device".into(),
                "virtio-serial-pci,id=thpbench-serial".into(),
                "-device".into(),
                "virtconsole,chardev=thpbench-data,bus=thpbench-serial.0".into(),
            ]),
        }
        if t.numa_nodes > 1 {
            let per_cpu = t.smp.cpus / t.numa_nodes;
            let per_mem = t.mem_mib / t.numa_nodes as u64;
            for n in 0..t.numa_nodes {
                a.push("-object".into());
                a.push(format!("memory-backend-ram,id=numa-mem{n},size={per_mem}M"));
                a.push("-numa".into());
                a.push(format!(
                    "node,nodeid={n},cpus={}-{},memdev=numa-mem{n}",
                    n * per_cpu,
                    (n + 1) * per_cpu - 1
                ));
            }
        }
        if let Some(img) = &self.scratch {
            a.push("-drive".into());
            a.push(format!(
                "if=none,id=scratch,file={},format=raw,cache=writeback",
                img.display()
            ));
            a.push("-device".into());
            a.push("virtio-blk-pci,drive=scratch".into());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(accel: Accel, smp: &str, mem: u64, numa: u32, scratch: bool) -> QemuSpec {
        spec_for(Arch::X86_64, accel, smp, mem, numa, scratch)
    }

    fn spec_for(
        arch: Arch,
        accel: Accel,
        smp: &str,
        mem: u64,
        numa: u32,
        scratch: bool,
    ) -> QemuSpec {
        QemuSpec {
            arch,
            accel,
            topology: Topology::new(smp.parse().unwrap(), mem, numa).unwrap(),
            kernel: "/k/bzImage".into(),
            initrd: "/w/initrd.gz".into(),
            cmdline_extra: vec!["transparent_hugepage=madvise".into()],
            console_log: "/w/console.log".into(),
            data_log: "/w/data.log".into(),
            scratch: scratch.then(|| "/w/scratch.img".into()),
        }
    }

    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn kvm_and_tcg() {
        let kvm = spec(Accel::Kvm, "2", 3072, 0, false).args();
        assert_eq!(after(&kvm, "-accel"), ["kvm"]);
        assert_eq!(after(&kvm, "-cpu"), ["host"]);
        let tcg = spec(Accel::Tcg, "2", 3072, 0, false).args();
        assert_eq!(after(&tcg, "-accel"), ["tcg,thread=multi"]);
        assert_eq!(after(&tcg, "-cpu"), ["max"]);
        for a in [&kvm, &tcg] {
            assert_eq!(after(a, "-smp"), ["2"]);
            assert_eq!(after(a, "-m"), ["3072M"]);
            assert_eq!(after(a, "-M"), ["q35"]);
            assert_eq!(after(a, "-kernel"), ["/k/bzImage"]);
            assert_eq!(after(a, "-initrd"), ["/w/initrd.gz"]);
            assert_eq!(
                after(a, "-serial"),
                ["file:/w/console.log", "file:/w/data.log"]
            );
            assert!(a.contains(&"-nodefaults".to_string()) && a.contains(&"-no-reboot".into()));
            assert!(after(a, "-numa").is_empty() && after(a, "-drive").is_empty());
        }
        let append = after(&kvm, "-append")[0];
        assert_eq!(
            append,
            "console=ttyS0 thpbench.data=ttyS1 panic=-1 oops=panic loglevel=4 rdinit=/init thpbench.accel=kvm transparent_hugepage=madvise"
        );
        assert!(after(&tcg, "-append")[0].contains("thpbench.accel=tcg"));
    }

    #[test]
    fn arm64_on_virt_with_a_virtio_console_for_data() {
        let tcg = spec_for(Arch::Arm64, Accel::Tcg, "2", 3072, 0, true).args();
        assert_eq!(after(&tcg, "-M"), ["virt,gic-version=max"]);
        // max: the 16K granule a 16K-page kernel needs; no vendor trick for SMT.
        assert_eq!(after(&tcg, "-cpu"), ["max"]);
        let smt = spec_for(
            Arch::Arm64,
            Accel::Tcg,
            "4,cores=2,threads=2",
            3072,
            0,
            false,
        );
        assert_eq!(after(&smt.args(), "-cpu"), ["max"]);
        assert_eq!(
            after(
                &spec_for(Arch::Arm64, Accel::Kvm, "2", 3072, 0, false).args(),
                "-cpu"
            ),
            ["host"]
        );
        // One UART, the console; the data port is a virtconsole on a file chardev.
        assert_eq!(after(&tcg, "-serial"), ["file:/w/console.log"]);
        assert_eq!(
            after(&tcg, "-chardev"),
            ["file,id=thpbench-data,path=/w/data.log"]
        );
        assert_eq!(
            after(&tcg, "-device"),
            [
                "virtio-serial-pci,id=thpbench-serial",
                "virtconsole,chardev=thpbench-data,bus=thpbench-serial.0",
                "virtio-blk-pci,drive=scratch"
            ]
        );
        let append = after(&tcg, "-append")[0];
        assert!(
            append.starts_with("console=ttyAMA0 thpbench.data=hvc0 panic=-1"),
            "{append}"
        );
        assert_eq!(Arch::Arm64.qemu_binary(), "qemu-system-aarch64");
        assert_eq!(Arch::Arm64.qemu_package(), "qemu-system-arm");
        // x86 keeps its two UARTs and no virtio console.
        let x86 = spec(Accel::Tcg, "2", 3072, 0, false).args();
        assert!(after(&x86, "-chardev").is_empty());
        assert_eq!(after(&x86, "-serial").len(), 2);
    }

    #[test]
    fn arch_names() {
        for (s, a) in [
            ("x86_64", Arch::X86_64),
            ("amd64", Arch::X86_64),
            ("arm64", Arch::Arm64),
            ("aarch64", Arch::Arm64),
        ] {
            assert_eq!(Arch::parse(s), Some(a), "{s}");
        }
        assert_eq!(Arch::parse("riscv64"), None);
        assert_eq!(Arch::parse("auto"), None);
        assert_eq!(
            (
                Arch::Arm64.debian(),
                Arch::Arm64.defconfig(),
                Arch::Arm64.image_path()
            ),
            ("arm64", "defconfig", "arch/arm64/boot/Image")
        );
        assert_eq!(Arch::X86_64.defconfig(), "x86_64_defconfig");
        assert_eq!(Arch::Arm64.elf_machine(), EM_AARCH64);
        let expected = match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        };
        assert_eq!(Arch::host(), expected);
    }

    #[test]
    fn smt_under_tcg_asks_for_an_intel_cpuid() {
        let s = "4,sockets=1,cores=2,threads=2";
        let tcg = spec(Accel::Tcg, s, 3072, 0, false).args();
        assert_eq!(after(&tcg, "-smp"), [s]);
        assert_eq!(after(&tcg, "-cpu"), ["max,vendor=GenuineIntel"]);
        // KVM passes the host's CPUID through.
        assert_eq!(
            after(&spec(Accel::Kvm, s, 3072, 0, false).args(), "-cpu"),
            ["host"]
        );
    }

    #[test]
    fn numa_nodes_split_cpus_and_memory_in_order() {
        let a = spec(Accel::Tcg, "4", 4096, 2, true).args();
        assert_eq!(
            after(&a, "-object"),
            [
                "memory-backend-ram,id=numa-mem0,size=2048M",
                "memory-backend-ram,id=numa-mem1,size=2048M"
            ]
        );
        assert_eq!(
            after(&a, "-numa"),
            [
                "node,nodeid=0,cpus=0-1,memdev=numa-mem0",
                "node,nodeid=1,cpus=2-3,memdev=numa-mem1"
            ]
        );
        assert_eq!(
            after(&a, "-drive"),
            ["if=none,id=scratch,file=/w/scratch.img,format=raw,cache=writeback"]
        );
        assert_eq!(after(&a, "-device"), ["virtio-blk-pci,drive=scratch"]);
        // One node: no -numa at all (the guest sees the default single node).
        assert!(after(&spec(Accel::Tcg, "4", 4096, 1, false).args(), "-numa").is_empty());
    }

    #[test]
    fn topology_and_sizes_are_checked() {
        let smp = |s: &str| s.parse::<Smp>();
        assert_eq!(smp("3").unwrap().cpus, 3);
        assert_eq!(
            smp("4,sockets=1,cores=2,threads=2")
                .unwrap()
                .threads_per_core,
            Some(2)
        );
        for bad in [
            "0",
            "",
            "four",
            "4,threads",
            "4,widgets=2",
            "4,cores=0",
            "04",
        ] {
            assert!(smp(bad).is_err(), "{bad}");
        }
        let e = Topology::new(smp("3").unwrap(), 3072, 2).unwrap_err();
        assert!(e.contains("3 vCPUs") && e.contains("2 nodes"), "{e}");
        let e = Topology::new(smp("4").unwrap(), 3073, 2).unwrap_err();
        assert!(e.contains("--mem 3073M"), "{e}");
        assert_eq!(parse_mem_mib("3G"), Ok(3072));
        assert_eq!(parse_mem_mib("512m"), Ok(512));
        for bad in ["3", "G", "0G", "3T", "-1G"] {
            assert!(parse_mem_mib(bad).is_err(), "{bad}");
        }
    }
}
