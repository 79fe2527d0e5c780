//! Every shipped workload parses, validates, and starts with a comment saying what it shows.

#[test]
fn shipped_workloads_parse_validate_and_explain_themselves() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# "),
            "{} must start with a comment saying what it shows",
            path.display()
        );
        let w = thpbench::workload::Workload::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
        w.validate()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            w.name,
            path.file_stem().unwrap().to_str().unwrap(),
            "name matches the file"
        );
        seen += 1;
    }
    assert!(seen >= 6, "expected the shipped workloads, found {seen}");
}

#[test]
fn built_in_default_is_quick_toml() {
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/quick.toml"))
            .unwrap();
    assert_eq!(thpbench::workload::QUICK_TOML, file);
}

/// scripts/compare-kernels.sh reads the resolved workload as JSON: it must be the same
/// workload the TOML form gives, flags applied.
#[test]
fn print_workload_json_is_the_resolved_workload() {
    let bin = env!("CARGO_BIN_EXE_thpbench");
    let print = |extra: &[&str]| {
        let out = std::process::Command::new(bin)
            .args([
                "-q",
                "run",
                "--bs",
                "64k",
                "--split",
                "cold",
                "--print-workload",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&print(&["--json"])).unwrap();
    assert_eq!(json["bs"], 65536);
    assert_eq!(json["name"], "quick");
    assert_eq!(json["disturb"][0]["kind"], "split");
    let from_toml = thpbench::workload::Workload::from_toml(&print(&[]), "printed").unwrap();
    assert_eq!(serde_json::to_value(&from_toml).unwrap(), json);
}
