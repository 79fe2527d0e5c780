//! A cpio "newc" archive writer, as the kernel unpacks an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst): a header of "070701"
//! and 13 eight-digit hex fields, the name with its NUL, padding to 4 bytes, the data,
//! padding to 4 bytes; "TRAILER!!!" ends it. Written here rather than through cpio(1)
//! so that what the guest gets is one function's output, ordered and owned by root.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// One entry: a directory, a regular file or a symlink.
pub enum Entry<'a> {
    Dir,
    File { data: &'a [u8], mode: u32 },
    Symlink(&'a str),
}

pub struct Writer<W: Write> {
    out: W,
    written: u64,
    ino: u32,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            written: 0,
            ino: 1,
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }

    fn header(&mut self, name: &str, mode: u32, nlink: u32, size: usize) -> io::Result<()> {
        let fields = [
            self.ino,
            mode,
            0, // uid: root
            0, // gid
            nlink,
            0, // mtime: fixed, so the same inputs give the same archive
            size as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        let mut h = String::from("070701");
        for f in fields {
            h.push_str(&format!("{f:08X}"));
        }
        self.put(h.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()
    }

    /// Adds `name` (relative, no leading slash).
    pub fn add(&mut self, name: &str, entry: Entry<'_>) -> io::Result<()> {
        let name = name.trim_start_matches("./").trim_start_matches('/');
        match entry {
            Entry::Dir => self.header(name, 0o040755, 2, 0),
            Entry::File { data, mode } => {
                self.header(name, 0o100000 | (mode & 0o7777), 1, data.len())?;
                self.put(data)?;
                self.pad()
            }
            Entry::Symlink(target) => {
                self.header(name, 0o120777, 1, target.len())?;
                self.put(target.as_bytes())?;
                self.pad()
            }
        }
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.header("TRAILER!!!", 0, 1, 0)?;
        Ok(self.out)
    }
}

/// Archives the tree under `root` (names relative to it, sorted, so parents come first).
pub fn archive_dir<W: Write>(root: &Path, out: W) -> io::Result<W> {
    let mut paths = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            let is_dir = std::fs::symlink_metadata(&p)?.is_dir();
            out.push(p.clone());
            if is_dir {
                walk(&p, out)?;
            }
        }
        Ok(())
    }
    walk(root, &mut paths)?;
    paths.sort();
    let mut w = Writer::new(out);
    for p in paths {
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let md = std::fs::symlink_metadata(&p)?;
        if md.file_type().is_symlink() {
            let t = std::fs::read_link(&p)?;
            w.add(&rel, Entry::Symlink(&t.to_string_lossy()))?;
        } else if md.is_dir() {
            w.add(&rel, Entry::Dir)?;
        } else {
            let data = std::fs::read(&p)?;
            let mode = md.permissions().mode() & 0o7777;
            w.add(&rel, Entry::File { data: &data, mode })?;
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn header_layout() {
        let mut w = Writer::new(Vec::new());
        w.add(
            "init",
            Entry::File {
                data: b"#!/bin/sh\n",
                mode: 0o755,
            },
        )
        .unwrap();
        let out = w.finish().unwrap();
        let h = std::str::from_utf8(&out[..110]).unwrap();
        assert_eq!(&h[..6], "070701");
        assert_eq!(&h[14..22], "000081ED", "mode: regular file 0755");
        assert_eq!(&h[54..62], "0000000A", "size");
        assert_eq!(&h[94..102], "00000005", "name size with its NUL");
        assert_eq!(&out[110..115], b"init\0");
        // 110 + 5 = 115, padded to 116; then 10 bytes of data, padded to 128.
        assert_eq!(&out[116..126], b"#!/bin/sh\n");
        assert_eq!(&out[128..134], b"070701");
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(out.len() % 4, 0);
    }

    /// GNU cpio lists and extracts what the writer made, with modes and link targets.
    #[test]
    fn cpio_reads_it_back() {
        if !crate::test_support::require_tool("cpio_reads_it_back", "cpio", "cpio") {
            return;
        }
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("bin")).unwrap();
        std::fs::write(src.path().join("bin/busybox"), vec![7u8; 1001]).unwrap();
        std::fs::set_permissions(
            src.path().join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("busybox", src.path().join("bin/sh")).unwrap();
        std::fs::write(src.path().join("x"), b"abc").unwrap();
        let archive = archive_dir(src.path(), Vec::new()).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let mut child = Command::new("cpio")
            .args(["-idm", "--quiet"])
            .current_dir(dst.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        assert!(child.wait().unwrap().success());
        let bb = dst.path().join("bin/busybox");
        assert_eq!(std::fs::read(&bb).unwrap(), vec![7u8; 1001]);
        assert_eq!(
            std::fs::metadata(&bb).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            std::fs::read_link(dst.path().join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(std::fs::read(dst.path().join("x")).unwrap(), b"abc");
    }
}
