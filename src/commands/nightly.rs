//! `arq nightly`: the job the collections team runs every night (see [`crate::nightly`]).

use crate::cli::args::NightlyArgs;
use crate::cli::config::Config;
use crate::error::Result;
use crate::nightly::{self, NightlyOptions};
use crate::output::print_text;

/// Runs the job on the configured warehouse, model and policy; prints the summary.
pub fn run(config: &Config, args: &NightlyArgs) -> Result<()> {
    let options = NightlyOptions {
        out: args.out.clone(),
        model: config.model()?,
        policy: config.policy()?,
        feature_slice: config.feature_slice,
        progress: !args.quiet,
        xlsx: args.xlsx,
    };
    let summary = nightly::run(config.runtime(), config.warehouse()?, &options)?;
    print_text(&summary)
}
