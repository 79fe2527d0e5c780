//! Cargo.toml's rust-version is one the locked dependencies really build with.

use std::process::Command;

/// `1.85`, `1.85.0` -> (1, 85, 0).
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| {
        p.parse::<u64>()
            .unwrap_or_else(|_| panic!("rust-version {text:?} is not numeric"))
    });
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

/// `rust-version` says which compiler builds the crate. Every package the lock file
/// builds here (dependencies, build and dev ones included) states the oldest compiler it
/// builds with; ours may not be older than any of them, or `cargo build` with the
/// promised compiler fails on a dependency. (Our own code's use of newer std APIs is
/// clippy's `incompatible_msrv`, which reads the same field, under `-D warnings`.)
#[test]
fn rust_version_is_one_the_locked_dependencies_build_with() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let host = Command::new(&rustc).arg("-vV").output().expect("rustc -vV");
    let host = String::from_utf8(host.stdout).unwrap();
    let host = host
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names its host")
        .to_string();
    // Offline and locked: the packages are those the test build itself just used, and
    // only the host's (another platform's are neither built nor downloaded).
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .args(["--filter-platform", &host, "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().expect("packages");
    let ours = packages
        .iter()
        .find(|p| p["name"] == "thpbench")
        .and_then(|p| p["rust_version"].as_str())
        .expect("Cargo.toml sets rust-version");
    let newer: Vec<String> = packages
        .iter()
        .filter(|p| p["name"] != "thpbench")
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            (version(needs) > version(ours)).then(|| {
                let name = p["name"].as_str().unwrap_or("?");
                format!(
                    "{name} {} needs {needs}",
                    p["version"].as_str().unwrap_or("?")
                )
            })
        })
        .collect();
    assert!(
        packages.len() > 50,
        "cargo metadata listed only {} packages",
        packages.len()
    );
    assert!(
        newer.is_empty(),
        "Cargo.toml says rust-version = {ours:?}, but the lock file holds packages that \
         need a newer compiler: raise rust-version or pin them older \
         (cargo update -p NAME --precise VERSION):\n  {}",
        newer.join("\n  ")
    );
}

#[test]
fn versions_compare_as_numbers() {
    assert!(version("1.88") > version("1.85.0"));
    assert!(version("1.100") > version("1.88"));
    assert_eq!(version("1.88"), version("1.88.0"));
}
