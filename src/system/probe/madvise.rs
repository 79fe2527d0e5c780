//! The madvise advices the disturbers use, tried on a scratch THP mapping.

use super::{capability, row, ProbeRow};

/// Tries one madvise advice on a fresh 2 MiB-aligned THP mapping. Ok(()) when the kernel
/// knows the advice (EINVAL means it does not).
pub fn try_madvise(advice: libc::c_int) -> Result<(), String> {
    let len = 4usize << 20;
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
    let aligned = ((p as usize + (2 << 20) - 1) & !((2 << 20) - 1)) as *mut libc::c_void;
    // SAFETY: aligned..aligned+2MiB lies inside the mapping.
    let r = unsafe {
        libc::madvise(aligned, 2 << 20, libc::MADV_HUGEPAGE);
        std::ptr::write_bytes(aligned as *mut u8, 1, 2 << 20);
        let r = libc::madvise(aligned, 2 << 20, advice);
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
            if advice == libc::MADV_COLLAPSE
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
        ("MADV_COLLAPSE", libc::MADV_COLLAPSE),
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
