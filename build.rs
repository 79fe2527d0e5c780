//! Records which source the binary was built from, for every result's `tool` and for
//! `thpbench --version`: the git commit and whether the tree had uncommitted changes.
//! Outside a git checkout (a tarball) both are "unknown", unless the builder sets
//! THPBENCH_GIT_COMMIT (and THPBENCH_GIT_DIRTY=true|false) in the environment.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=THPBENCH_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=THPBENCH_GIT_DIRTY");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    // Only a checkout of this very crate counts: a tarball unpacked inside some other
    // repository must not borrow that repository's commit.
    let top = git(&["-C", &manifest, "rev-parse", "--show-toplevel"]);
    let ours = top.as_deref().is_some_and(|t| {
        Path::new(t).canonicalize().ok() == Path::new(&manifest).canonicalize().ok()
    });
    let (mut commit, mut dirty) = ("unknown".to_string(), "unknown".to_string());
    if ours {
        if let Some(c) = git(&["-C", &manifest, "rev-parse", "HEAD"]) {
            commit = c;
            // Untracked files count: a new source file changes the build as much as an edit.
            dirty = match git(&["-C", &manifest, "status", "--porcelain"]) {
                Some(s) if s.is_empty() => "false".into(),
                Some(_) => "true".into(),
                None => "unknown".into(),
            };
        }
        // Rebuild when HEAD moves, the index changes or a source file is edited, so that
        // the commit and the dirty flag stay true.
        if let Some(dir) = git(&["-C", &manifest, "rev-parse", "--absolute-git-dir"]) {
            println!("cargo:rerun-if-changed={dir}/HEAD");
            println!("cargo:rerun-if-changed={dir}/index");
            if let Some(r) = git(&["-C", &manifest, "symbolic-ref", "-q", "HEAD"]) {
                let common = git(&["-C", &manifest, "rev-parse", "--git-common-dir"])
                    .map(|c| Path::new(&manifest).join(c))
                    .unwrap_or_else(|| Path::new(&dir).to_path_buf());
                let loose = common.join(&r);
                // A packed ref has no file of its own; packed-refs then holds it.
                let watched = if loose.exists() {
                    loose
                } else {
                    common.join("packed-refs")
                };
                if watched.exists() {
                    println!("cargo:rerun-if-changed={}", watched.display());
                }
            }
        }
        for p in ["src", "Cargo.toml", "Cargo.lock", "build.rs", "workloads"] {
            println!("cargo:rerun-if-changed={manifest}/{p}");
        }
    }
    if let Ok(c) = std::env::var("THPBENCH_GIT_COMMIT") {
        if !c.trim().is_empty() {
            commit = c.trim().to_string();
            dirty = std::env::var("THPBENCH_GIT_DIRTY").unwrap_or_else(|_| "unknown".into());
        }
    }
    let short = if commit == "unknown" {
        commit.clone()
    } else {
        commit.chars().take(12).collect()
    };
    let tree = match dirty.as_str() {
        "true" => ", dirty tree",
        "false" => "",
        _ => ", tree state unknown",
    };
    println!("cargo:rustc-env=THPBENCH_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=THPBENCH_GIT_DIRTY={dirty}");
    println!(
        "cargo:rustc-env=THPBENCH_LONG_VERSION={} (commit {short}{tree})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
}
