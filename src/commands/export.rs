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
    let mut buf = Vec::new();
    exporter(args.format.into()).export(&sel, &args.result, &mut buf)?;
    match &args.output {
        Some(path) => crate::util::write_atomic(path, &buf)
            .with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout()
            .write_all(&buf)
            .context("writing to stdout")?,
    }
    Ok(0)
}

impl From<cli::ExportFormat> for ExportFormat {
    fn from(f: cli::ExportFormat) -> Self {
        match f {
            cli::ExportFormat::Hgrm => ExportFormat::Hgrm,
            cli::ExportFormat::Hlog => ExportFormat::Hlog,
            cli::ExportFormat::Csv => ExportFormat::Csv,
            cli::ExportFormat::PercentilesCsv => ExportFormat::PercentilesCsv,
        }
    }
}
