//! `arq queue`: today's call lists from the snapshot (every queue, or one).

use arq_models::queues::queue_snapshot;

use crate::cli::args::QueueArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::scored::{ScoredSnapshot, rows_where};

/// Builds the queues and writes or prints them (one queue with `--collector`).
pub fn run(config: &Config, args: &QueueArgs) -> Result<()> {
    let model = &config.model()?.value;
    let policy = &config.policy()?.value;
    let batch = config.block_on(async {
        let snapshot =
            ScoredSnapshot::checked(config.warehouse()?, model, config.feature_slice).await?;
        Ok::<_, ArqError>(queue_snapshot(&snapshot.state, &snapshot.scores, &policy.queues).await?)
    })?;
    let batch = match &args.collector {
        None => batch,
        Some(name) => rows_where(&batch, "queue", name)?.ok_or_else(|| {
            ArqError::NotFound(format!(
                "no queue `{name}` today (queues are collector ids, \
                 supervisor:fraud_suspected, supervisor:high_profile, supervisor:high_risk, \
                 dispute, held, carry_over)"
            ))
        })?,
    };
    config.output()?.write_batch(batch)?;
    eprintln!("queues from {}", config.inputs_note());
    Ok(())
}
