//! `arq generate`: write a synthetic warehouse in the contract (see [`crate::generate`]).

use crate::cli::args::GenerateArgs;
use crate::cli::config::Config;
use crate::error::Result;
use crate::generate::{self, GenerateOptions, GenerateSummary};
use crate::output::print_text;

/// Generates the warehouse and prints what was written (unless quiet).
pub fn run(_config: &Config, args: &GenerateArgs) -> Result<()> {
    let options = GenerateOptions {
        customers: args.customers,
        months: args.months,
        seed: args.seed,
        end: args.end,
        force: args.force,
        progress: !args.quiet,
    };
    let summary = generate::generate(&args.out, &options)?;
    if args.quiet {
        return Ok(());
    }
    print_text(&summary_text(&args.out.display().to_string(), &summary))
}

/// One line on what was written.
fn summary_text(out: &str, summary: &GenerateSummary) -> String {
    let date = |d: Option<&chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    format!(
        "wrote {out} in {:.1} s: {} customers, {} snapshots ({} to {}), \
         {} open items in the last snapshot ({} in all), {} invoices, \
         {} payments, {} activities, {} write-offs, {} collectors; \
         {:.0} rows/s\n",
        summary.seconds,
        summary.customers,
        summary.snapshots.len(),
        date(summary.snapshots.first()),
        date(summary.snapshots.last()),
        summary.open_items_latest,
        summary.open_items_total,
        summary.invoices,
        summary.payments,
        summary.activities,
        summary.write_offs,
        summary.collectors,
        summary.rows() as f64 / summary.seconds.max(1e-9),
    )
}
