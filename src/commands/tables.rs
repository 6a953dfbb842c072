//! `arq tables`: the warehouse's snapshots, tables and views with their columns.

use crate::cli::config::Config;
use crate::error::Result;
use crate::output::print_text;
use crate::sql;

/// Prints the snapshots and every table and view with its columns.
pub fn run(config: &Config) -> Result<()> {
    let warehouse = config.warehouse()?;
    config.block_on(async {
        let ctx = warehouse.session(None).await?;
        let listing = sql::describe_tables(&ctx, None).await?;
        let dates = warehouse.snapshot_dates();
        print_text(&format!(
            "warehouse {}: {} snapshots from {} to {}; *_latest views show {}\n\n{listing}",
            warehouse.root(),
            dates.len(),
            dates.first().map(|d| d.to_string()).unwrap_or_default(),
            dates.last().map(|d| d.to_string()).unwrap_or_default(),
            warehouse.as_of(),
        ))
    })
}
