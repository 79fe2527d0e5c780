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
