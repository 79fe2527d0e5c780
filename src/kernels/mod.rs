//! Kernels under qemu: the kernel forms (a Debian package, a .deb, a bzImage, a source
//! tree built out of tree), the initramfs, the guest protocol, qemu's command line, and
//! one guest's run. `thpbench kernels` (src/commands/kernels.rs) runs a workload on
//! several kernels with these; `thpbench bisect` boots one kernel form with
//! [`resolve`] and [`boot_workload`]. See docs/kernels.md.
//!
//! Files, bottom up: sha256, cpio and inspect (leaves: what an image or ELF file is), protocol (what init reads and writes),
//! qemu (the argument list, by architecture), tools (host packages and commands), tree
//! (source trees: fragment, make, cache), form (the forms and their resolution),
//! initramfs, guest (one boot).

pub mod cpio;
pub mod form;
pub mod guest;
pub mod initramfs;
pub mod inspect;
pub mod protocol;
pub mod qemu;
pub mod tools;
pub mod tree;

pub use form::{resolve, BootKernel, KernelForm, ResolveOptions};
pub use guest::{boot_workload, AccelMode, GuestOptions, GuestOutcome, Workdir};
pub use qemu::{Arch, Topology};

/// The default cache: downloaded .deb files, extracted kernels, tree builds, the KVM
/// verdict. `THPBENCH_KERNEL_CACHE`, else `$XDG_CACHE_HOME/thpbench-kernels`, else
/// `~/.cache/thpbench-kernels`.
pub fn default_cache() -> std::path::PathBuf {
    if let Some(c) = std::env::var_os("THPBENCH_KERNEL_CACHE") {
        return c.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
        .unwrap_or_else(|| "/tmp".into());
    base.join("thpbench-kernels")
}
