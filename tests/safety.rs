//! Safety on a machine people care about: devices that hold anything are never written,
//! nothing is left behind after signals or SIGKILL, concurrent runs do not clobber each
//! other. Root tests run under `privileged()`; they restore everything they make.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A loop device made for a test, detached on drop (also when the test fails).
struct Loop(String);

impl Loop {
    fn over(backing: &str, offset: Option<&str>) -> Loop {
        let mut cmd = Command::new("losetup");
        if let Some(o) = offset {
            cmd.args(["-o", o]);
        }
        let out = cmd.args(["-f", "--show", backing]).output().unwrap();
        assert!(out.status.success(), "losetup: {}", stderr(&out));
        Loop(stdout(&out).trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// A filesystem mounted for a test, unmounted on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", stderr(&out));
}

fn image(dir: &Path, name: &str, size: &str) -> String {
    let p = dir.join(name);
    sh("truncate", &["-s", size, p.to_str().unwrap()]);
    p.to_str().unwrap().to_string()
}

fn blkid_type(dev: &str) -> String {
    let out = Command::new("blkid")
        .args(["-p", "-o", "value", "-s", "TYPE", dev])
        .output()
        .unwrap();
    stdout(&out).trim().to_string()
}

fn write_run(dev: &str, dir: &Path) -> std::process::Output {
    run(
        &[
            "run",
            "--target",
            dev,
            "--allow-write-device",
            "--size",
            "8M",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "-o",
            "w.json",
        ],
        dir,
    )
}

#[test]
fn a_minix_filesystem_is_never_written() {
    let Some(_l) = privileged("a_minix_filesystem_is_never_written") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "m.img", "32M");
    sh("mkfs.minix", &["-3", &img]);
    let dev = Loop::over(&img, None);
    let out = write_run(&dev.0, dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("minix"), "{}", stderr(&out));
    assert_eq!(blkid_type(&dev.0), "minix", "the signature survives");
}

#[test]
fn a_filesystem_mounted_through_a_second_loop_device_is_never_written() {
    let Some(_l) = privileged("a_filesystem_mounted_through_a_second_loop_device_is_never_written")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "b.img", "48M");
    let first = Loop::over(&img, None);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    // The case: a loop device over the first one, 1 MiB in, mounted.
    let second = Loop::over(&first.0, Some("1M"));
    sh("mkfs.ext4", &["-q", &second.0]);
    sh("mount", &[&second.0, mnt.to_str().unwrap()]);
    let mounted = Mounted(mnt.clone());
    std::fs::write(mnt.join("precious"), b"keep me").unwrap();
    let out = write_run(&first.0, dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{} is a loop device over it", second.0)),
        "{}",
        stderr(&out)
    );
    drop(mounted);
    drop(second);
    // The same, through a second loop device over the same backing file.
    let third = Loop::over(&img, Some("1M"));
    sh("mount", &[&third.0, mnt.to_str().unwrap()]);
    let mounted = Mounted(mnt.clone());
    let out = write_run(&first.0, dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{} maps the same backing file", third.0)),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(mnt.join("precious")).unwrap(), b"keep me");
    drop(mounted);
    drop(third);
}

#[test]
fn a_blank_loop_device_is_written_when_allowed() {
    let Some(_l) = privileged("a_blank_loop_device_is_written_when_allowed") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "z.img", "16M");
    let dev = Loop::over(&img, None);
    let out = write_run(&dev.0, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        load_json(&dir.path().join("w.json"))["runs"][0]["verify"]["mismatches"],
        0
    );
}
