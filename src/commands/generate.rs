//! `arq generate`: write a synthetic warehouse in the contract (see [`crate::generate`]),
//! into a local folder or a bucket (`--out s3://bucket/prefix`: generated locally, then
//! uploaded).

use crate::cli::args::GenerateArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::generate::{self, GenerateOptions, GenerateSummary};
use crate::output::bucket;
use crate::output::print_text;
use crate::storage::Location;
use object_store::ObjectStoreExt;

/// Generates the warehouse and prints what was written (unless quiet).
pub fn run(config: &Config, args: &GenerateArgs) -> Result<()> {
    let options = GenerateOptions {
        customers: args.customers,
        months: args.months,
        seed: args.seed,
        end: args.end,
        force: args.force,
        progress: !args.quiet,
    };
    let out = Location::parse(&args.out.to_string_lossy())?;
    if out.local_path().is_some() {
        let summary = generate::generate(&args.out, &options)?;
        if args.quiet {
            return Ok(());
        }
        return print_text(&summary_text(&args.out.display().to_string(), &summary));
    }
    // A bucket: generated into a local temporary folder, then uploaded.
    let existing = config.block_on(out.list_all())?;
    if !existing.is_empty() && !args.force {
        return Err(ArqError::Input(format!(
            "{out} already holds {} objects; pass --force to replace them",
            existing.len()
        )));
    }
    let work = bucket::work_folder("generate")?;
    let local = work.path().join("warehouse");
    let summary = generate::generate(&local, &options)?;
    config.block_on(async {
        for object in &existing {
            out.store()
                .delete(&object.location)
                .await
                .map_err(|e| out.error(&object.location, e))?;
        }
        bucket::upload_folder(&local, &out).await
    })?;
    if args.quiet {
        return Ok(());
    }
    print_text(&summary_text(&out.to_string(), &summary))
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
