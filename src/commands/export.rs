//! `thpbench export`: one result's latency data, to a file or stdout.

use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{self, ExportArgs};
use crate::export::{exporter, select, ExportFormat};
use crate::result::BenchResult;

/// `thpbench export`.
pub fn execute(args: &ExportArgs) -> Result<i32> {
    let result = BenchResult::load(&args.result)?;
    let sel = select(&result, &args.result, args.case.as_deref(), args.run)?;
    let exporter = exporter(args.format.into());
    if let Some(files) = exporter.files(&sel, &args.result)? {
        let Some(stub) = &args.output else {
            anyhow::bail!(
                "this --format writes several files (fio's per-job logs); give -o STUB to name them, e.g. -o out/thpbench for out/thpbench_iops.1.log"
            );
        };
        for (suffix, data) in files {
            let path = std::path::PathBuf::from(format!("{}{suffix}", stub.display()));
            crate::util::write_atomic(&path, &data)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(0);
    }
    let mut buf = Vec::new();
    exporter.export(&sel, &args.result, &mut buf)?;
    match &args.output {
        Some(path) => crate::util::write_atomic(path, &buf)
            .with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout()
            .write_all(&buf)
            .context("writing to stdout")?,
    }
    Ok(0)
}

super::mirror_enum!(cli::ExportFormat => ExportFormat {
    Hgrm, Hlog, Csv, PercentilesCsv, FioJson, FioLog, Kcidb, Bmf
});
