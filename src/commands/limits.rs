//! `arq limits`: credit-limit recommendations for every customer of the snapshot (or
//! one), from the model's PDs and the credit policy.

use arq_models::limits::recommend_snapshot;

use crate::cli::args::LimitsArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::scored::{ScoredSnapshot, rows_where};

/// Recommends, and writes or prints the rows (one customer with `--customer`).
pub fn run(config: &Config, args: &LimitsArgs) -> Result<()> {
    let model = &config.model()?.value;
    let policy = &config.policy()?.value;
    let warehouse = config.warehouse()?;
    let batch = config.block_on(async {
        let snapshot = ScoredSnapshot::checked(warehouse, model, config.feature_slice).await?;
        Ok::<_, ArqError>(recommend_snapshot(&snapshot.state, &snapshot.scores, policy).await?)
    })?;
    let batch = match &args.customer {
        None => batch,
        Some(id) => rows_where(&batch, "customer_id", id)?.ok_or_else(|| {
            ArqError::NotFound(format!(
                "no customer `{id}` in the snapshot of {}",
                warehouse.as_of()
            ))
        })?,
    };
    config.output()?.write_batch(batch)?;
    eprintln!("credit limits from {}", config.inputs_note());
    Ok(())
}
