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
    use thpbench::workload::{DisturbKind, Workload};
    let text = print(&["--json"]);
    let printed: Workload = serde_json::from_str(&text).expect("a workload");
    // In bytes, as the workload's serialisation writes sizes (with the whole-text check
    // below, the printed `bs` is that number).
    assert_eq!(serde_json::to_value(printed.bs).unwrap(), 65536);
    assert_eq!(printed.name, "quick");
    assert_eq!(printed.disturb[0].kind, DisturbKind::Split);
    let from_toml = Workload::from_toml(&print(&[]), "printed").unwrap();
    assert_eq!(from_toml, printed);
    // The printed text is the workload's own serialisation, whole.
    let text: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_value(&from_toml).unwrap(), text);
}
