//! `arq backtest`: the queue order replayed on every snapshot in a range whose 90-day
//! outcome is known, against oldest-first and largest-first.

use arq_models::backtest::{backtest_batch, backtest_snapshot, summary};
use arq_udfs::dates;

use crate::cli::args::BacktestArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};

/// Replays, writes or prints the rows, and prints the notes and the summary on stderr.
pub fn run(config: &Config, args: &BacktestArgs) -> Result<()> {
    if args.from > args.to {
        return Err(ArqError::Usage(format!(
            "--from {} is after --to {}",
            args.from, args.to
        )));
    }
    let model = &config.model()?.value;
    let policy = &config.policy()?.value;
    let warehouse = config.warehouse()?;
    let (from, to) = (dates::to_days(args.from), dates::to_days(args.to));
    let days: Vec<i32> = warehouse
        .snapshots()
        .complete_days()
        .into_iter()
        .filter(|&d| d >= from && d <= to)
        .collect();
    if days.is_empty() {
        return Err(ArqError::NotFound(format!(
            "no snapshot between {} and {}",
            args.from, args.to
        )));
    }
    let (rows, skipped) = config.block_on(async {
        let state = warehouse.session(Some(model)).await?.state();
        let mut rows = Vec::new();
        let mut skipped = Vec::new();
        for day in days {
            let replayed =
                backtest_snapshot(&state, &model.model, &model.name, &policy.queues, day).await?;
            match replayed {
                Some(per_currency) => rows.extend(per_currency),
                None => skipped.push(format!(
                    "{}: the 90-day outcome is not known yet (needs a snapshot on or after {})",
                    dates::text(day),
                    dates::text(day + 90)
                )),
            }
        }
        Ok::<_, ArqError>((rows, skipped))
    })?;
    config.output()?.write_batch(backtest_batch(&rows)?)?;
    for note in skipped {
        eprintln!("skipped {note}");
    }
    eprintln!("{}", summary(&rows));
    eprintln!("backtest from {}", config.inputs_note());
    Ok(())
}
