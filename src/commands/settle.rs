//! `arq settle`: builds or updates the invoice settlement table of an output folder
//! ([`crate::settlement`]) without running the night.

use crate::cli::args::SettleArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::output::print_text;
use crate::settlement;
use crate::storage::Location;

/// Updates (or with `--rebuild` rebuilds) `OUT/_settlement` and prints what it did.
pub fn run(config: &Config, args: &SettleArgs) -> Result<()> {
    let out = Location::parse(&args.out.to_string_lossy())?;
    if out.local_path().is_none() {
        return Err(ArqError::Usage(format!(
            "--out {out}: the settlement table is kept in a local output folder only \
             (a night published to a bucket settles from the payments)"
        )));
    }
    let warehouse = config.warehouse()?;
    let outcome = config.block_on(settlement::update(
        warehouse,
        &args.out,
        args.rebuild,
        config.feature_slice,
    ))?;
    print_text(&format!("{}\n", outcome.line()))
}
