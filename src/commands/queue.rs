//! `arq queue`: today's call lists from the snapshot (every queue, one queue, or what one
//! person works today).

use arq_models::queues::{SPECIAL_QUEUES, load_collectors, queue_snapshot};

use crate::cli::args::QueueArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::scored::{ScoredSnapshot, rows_where};

/// Builds the queues and writes or prints them. `--collector ID` gives what that person
/// (collector, supervisor or resolver) works today, as the nightly's
/// `call_lists/ID.*`; `--collector QUEUE` one special queue (`held`, `escalation`, ...).
/// Either may be empty: an empty list, not an error.
pub fn run(config: &Config, args: &QueueArgs) -> Result<()> {
    let model = &config.model()?.value;
    let policy = &config.policy()?.value;
    let (batch, people) = config.block_on(async {
        let snapshot =
            ScoredSnapshot::checked(config.warehouse()?, model, config.feature_slice).await?;
        let batch = queue_snapshot(&snapshot.state, &snapshot.scores, &policy.queues).await?;
        let people: Vec<String> = load_collectors(&snapshot.state)
            .await?
            .into_iter()
            .map(|c| c.collector_id)
            .collect();
        Ok::<_, ArqError>((batch, people))
    })?;
    let batch = match &args.collector {
        None => batch,
        Some(name) if people.contains(name) => rows_where(&batch, "assigned_to", name)?,
        Some(name) if SPECIAL_QUEUES.contains(&name.as_str()) => rows_where(&batch, "queue", name)?,
        Some(name) => {
            return Err(ArqError::NotFound(format!(
                "no queue `{name}`: the queues are the people of the collectors table ({}) and {}",
                people.join(", "),
                SPECIAL_QUEUES.join(", ")
            )));
        }
    };
    config.output()?.write_batch(batch)?;
    eprintln!("queues from {}", config.inputs_note());
    Ok(())
}
