//! The target directory's filesystem: whether it takes O_DIRECT.

use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{capability, capability_row, ProbeRow};
use crate::system::{errno_text, mounts::filesystem_type, swap};

/// Checks O_DIRECT on the filesystem holding `dir`: create a scratch file, one aligned
/// write and read. Err names the filesystem type.
pub fn check_o_direct(dir: &Path) -> Result<String, String> {
    let fs = filesystem_type(dir).unwrap_or_else(|| "unknown".into());
    let path = dir.join(format!(".thpbench-probe-{}", std::process::id()));
    let made = swap::RemoveFile::create(&path, 0o600, nix::fcntl::OFlag::O_DIRECT);
    let (_cleanup, f) = match made {
        Ok(made) => made,
        Err(e) => {
            return Err(format!(
                "open with O_DIRECT on {fs} failed: {}",
                errno_text(&e)
            ))
        }
    };
    // One base page: a multiple of every O_DIRECT alignment the filesystem can ask for.
    let page = crate::pages::base_page();
    let mut buf = crate::aligned::AlignedBuf::new(page);
    buf.as_mut_slice().fill(0x5a);
    if let Err(e) = f.write_at(buf.as_slice(), 0) {
        return Err(format!(
            "aligned O_DIRECT write on {fs} failed: {}",
            errno_text(&e)
        ));
    }
    match f.read_at(buf.as_mut_slice(), 0) {
        Ok(n) if n == page => Ok(fs),
        Ok(n) => Err(format!(
            "aligned O_DIRECT read on {fs} returned {n} bytes, not {page}"
        )),
        Err(e) => Err(format!(
            "aligned O_DIRECT read on {fs} failed: {}",
            errno_text(&e)
        )),
    }
}

pub fn row(target_dir: &Path) -> ProbeRow {
    let od = check_o_direct(target_dir);
    let fs = match &od {
        Ok(fs) => fs.clone(),
        Err(_) => filesystem_type(target_dir).unwrap_or_default(),
    };
    capability_row(
        capability::O_DIRECT,
        od.is_ok(),
        format!("{} ({fs})", target_dir.display()),
        od.err().unwrap_or_default(),
    )
}
