//! `arq nightly`: the job the collections team runs every night (see [`crate::nightly`]).
//! With `--out s3://bucket/prefix` the night is prepared in a local temporary folder
//! beside copies of the bucket's earlier nights, then published by the bucket protocol
//! of [`crate::output::bucket`].

use std::time::Instant;

use crate::cli::args::NightlyArgs;
use crate::cli::config::Config;
use crate::error::Result;
use crate::nightly::{self, NightlyOptions};
use crate::output::bucket;
use crate::output::print_text;
use crate::storage::Location;

/// Runs the job on the configured warehouse, model and policy; prints the summary.
pub fn run(config: &Config, args: &NightlyArgs) -> Result<()> {
    let out = Location::parse(&args.out.to_string_lossy())?;
    let mut options = NightlyOptions {
        out: args.out.clone(),
        shown_out: None,
        model: config.model()?,
        policy: config.policy()?,
        feature_slice: config.feature_slice,
        progress: !args.quiet,
        xlsx: args.xlsx,
        settlement: !args.settle_from_payments,
        // This binary, to build the settlement table in a process of its own.
        settle_apart: std::env::current_exe().ok(),
    };
    let warehouse = config.warehouse()?;
    if out.local_path().is_some() {
        let summary = nightly::run(config.runtime(), warehouse, &options)?;
        return print_text(&summary);
    }
    let work = config.block_on(bucket::fetch_into_work_folder(&out))?;
    options.out = work.path().to_path_buf();
    // The work folder goes when the night is published: a settlement table built there
    // would be built again every night, which costs more than settling in the query.
    options.settlement = false;
    options.shown_out = Some(out.to_string());
    let mut summary = nightly::run(config.runtime(), warehouse, &options)?;
    let started = Instant::now();
    let date = warehouse.as_of().to_string();
    let run = config.block_on(bucket::publish(&work.path().join(&date), &out, &date))?;
    summary.push_str(&format!(
        "published as {run} in {:.1} s ({} points at it)\n",
        started.elapsed().as_secs_f64(),
        out.join(&date).join(bucket::POINTER),
    ));
    print_text(&summary)
}
