//! The madvise advices the disturbers use, tried on a scratch THP mapping.

use super::{capability, row, ProbeRow};

/// Tries one madvise advice on a fresh PMD-aligned THP mapping (2 MiB with 4 KiB pages,
/// 32 MiB with 16 KiB). Ok(()) when the kernel knows the advice (EINVAL means it does not).
pub fn try_madvise(advice: libc::c_int) -> Result<(), String> {
    let pmd = crate::pages::pmd_size() as usize;
    let len = 2 * pmd;
    // SAFETY: a fresh private anonymous mapping, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap failed: {}", std::io::Error::last_os_error()));
    }
    let aligned = (p as usize).next_multiple_of(pmd) as *mut libc::c_void;
    // SAFETY: aligned..aligned+pmd lies inside the mapping of twice that.
    let r = unsafe {
        libc::madvise(aligned, pmd, libc::MADV_HUGEPAGE);
        std::ptr::write_bytes(aligned as *mut u8, 1, pmd);
        let r = libc::madvise(aligned, pmd, advice);
        let e = std::io::Error::last_os_error();
        libc::munmap(p, len);
        if r == 0 {
            Ok(())
        } else {
            Err(e)
        }
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Err("EINVAL: this kernel does not know the advice".into())
        }
        // EAGAIN/ENOMEM from MADV_COLLAPSE still prove the advice exists.
        Err(e)
            if advice == crate::system::MADV_COLLAPSE
                && matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOMEM)) =>
        {
            Ok(())
        }
        Err(e) => Err(crate::system::errno_text(&e)),
    }
}

/// One row per advice; they share the MADVISE capability's remedy.
pub fn rows() -> Vec<ProbeRow> {
    [
        ("MADV_COLLAPSE", crate::system::MADV_COLLAPSE),
        ("MADV_PAGEOUT", libc::MADV_PAGEOUT),
        ("MADV_COLD", libc::MADV_COLD),
    ]
    .into_iter()
    .map(|(name, advice)| {
        let r = try_madvise(advice);
        row(
            name,
            r.is_ok(),
            "madvise on a scratch THP mapping",
            r.err().unwrap_or_default(),
            capability::MADVISE.remedy,
        )
    })
    .collect()
}
