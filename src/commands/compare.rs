//! `thpbench compare`: the comparison in the asked-for form, and exit 1 when
//! `--fail-on-regression` finds a regression beyond its threshold.

use anyhow::Result;

use crate::cli::{CompareArgs, CompareFormat};
use crate::compare::{compare, CompareOptions, Input};
use crate::report;

/// `thpbench compare`.
pub fn execute(args: &CompareArgs) -> Result<i32> {
    let inputs = Input::load_all(&args.results)?;
    let opts = CompareOptions {
        baseline: args.baseline.clone(),
        force: args.force,
        allow_different_machines: args.allow_different_machines,
        fail_on_regression_pct: args.fail_on_regression,
    };
    let cmp = compare(&inputs, &opts)?;
    let text = match args.format {
        CompareFormat::Text => report::compare::render_text(&cmp),
        CompareFormat::Markdown => report::compare::render_markdown(&cmp),
        CompareFormat::Json => serde_json::to_string_pretty(&cmp)? + "\n",
    };
    print!("{text}");
    if let Some(pct) = opts.fail_on_regression_pct {
        if !cmp.regressions.is_empty() {
            for r in &cmp.regressions {
                let section = if r.section.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", r.section)
                };
                match &r.lost_data {
                    Some(count) => eprintln!(
                        "thpbench: data lost: {}{section} {}: {count}",
                        r.group, r.metric
                    ),
                    None => eprintln!(
                        "thpbench: regression beyond {pct}%: {}{section} {} {:+.2}% (p = {:.3})",
                        r.group, r.metric, r.change_pct, r.p_value
                    ),
                }
            }
            return Ok(1);
        }
    }
    Ok(0)
}
