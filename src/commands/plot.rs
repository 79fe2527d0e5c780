//! `thpbench plot`: the charts of one or more results, in one picture.

use anyhow::Result;

use crate::cli::PlotArgs;
use crate::compare::Input;
use crate::plot;

/// `thpbench plot`.
pub fn execute(args: &PlotArgs) -> Result<i32> {
    plot::image_format(&args.output)?;
    let inputs = Input::load_all(&args.results)?;
    let data = plot::collect(&inputs)?;
    plot::render(&data, &args.output)?;
    if !crate::output::is_quiet() {
        eprintln!(
            "plot: {} ({} percentile curve{}{}{}{})",
            args.output.display(),
            data.percentiles.len(),
            if data.percentiles.len() == 1 { "" } else { "s" },
            if data.timelines.is_empty() {
                ""
            } else {
                ", disturbed timeline"
            },
            if data.scaling.is_empty() {
                ""
            } else {
                ", thread scaling"
            },
            if data.pin_cost.is_empty() {
                ""
            } else {
                ", pin cost"
            },
        );
    }
    Ok(0)
}
