//! `arq limits`: credit-limit recommendations for every customer of the snapshot, with
//! filters, totals by currency, class and action, a policy comparison, and decisions on
//! credit applications of prospective customers.

use arq_models::Policy;
use arq_models::credit_desk::{compare, comparison_totals, summary};
use arq_models::limits::recommend_snapshot;
use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;

use crate::cli::args::LimitsArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::loaded::Loaded;
use crate::output::Output;
use crate::scored::ScoredSnapshot;

/// Recommends (or compares, or decides applications), filters, and writes the rows or
/// the totals.
pub fn run(config: &Config, args: &LimitsArgs) -> Result<()> {
    let policy = &config.policy()?.value;
    if let Some(file) = &args.applications {
        let batch = crate::applications::decide(file, policy)?;
        config.output()?.write_batch(batch)?;
        return Ok(());
    }
    let proposed = match &args.compare_policy {
        Some(path) => Some(Loaded::read(path, Policy::parse)?),
        None => None,
    };
    let model = &config.model()?.value;
    let warehouse = config.warehouse()?;
    let (before, after) = config.block_on(async {
        crate::validate::snapshot(warehouse).await?;
        let (snapshot, previous) =
            ScoredSnapshot::load_with_previous(warehouse, model, config.feature_slice).await?;
        let (state, scores) = (&snapshot.state, &snapshot.scores);
        let before = recommend_snapshot(state, scores, previous.as_ref(), policy).await?;
        let after = match &proposed {
            Some(p) => Some(recommend_snapshot(state, scores, previous.as_ref(), &p.value).await?),
            None => None,
        };
        Ok::<_, ArqError>((before, after))
    })?;
    let keep = selection(&before, args)?;
    if args.customer.is_some() && keep.true_count() == 0 {
        return Err(ArqError::NotFound(format!(
            "no customer `{}` in the snapshot of {}{}",
            args.customer.as_deref().unwrap_or_default(),
            warehouse.as_of(),
            if has_filters(args) {
                " with the filters given"
            } else {
                ""
            }
        )));
    }
    let before = filter_record_batch(&before, &keep)?;
    let (rows, totals) = match after {
        Some(after) => {
            let comparison = compare(&before, &filter_record_batch(&after, &keep)?)?;
            let totals = comparison_totals(&comparison)?;
            (comparison, totals)
        }
        None => {
            let totals = summary(&before, policy)?;
            (before, totals)
        }
    };
    let output = config.output()?;
    if args.summary {
        output.write_batch(totals)?;
    } else {
        output.write_batch(rows)?;
        if output.path.is_some() {
            Output::terminal().write_batch(totals)?;
        }
    }
    eprintln!("credit limits from {}", config.inputs_note());
    Ok(())
}

fn has_filters(args: &LimitsArgs) -> bool {
    !args.action.is_empty()
        || !args.class.is_empty()
        || args.over_limit
        || args.above_recommended
        || args.due_for_review
}

/// The rows the filters keep (all filters at once).
fn selection(limits: &RecordBatch, args: &LimitsArgs) -> Result<BooleanArray> {
    let column = |name: &str| {
        limits
            .column_by_name(name)
            .ok_or_else(|| ArqError::Internal(format!("the limits have no column `{name}`")))
    };
    let (ids, actions, classes) = (
        column("customer_id")?,
        column("action")?,
        column("risk_class")?,
    );
    let (ids, actions, classes) = (
        ids.as_string::<i32>(),
        actions.as_string::<i32>(),
        classes.as_string::<i32>(),
    );
    let (over, above, due) = (
        column("over_limit")?,
        column("exposure_above_recommended")?,
        column("review_due")?,
    );
    let (over, above, due) = (over.as_boolean(), above.as_boolean(), due.as_boolean());
    for (flag, given, known) in [
        (
            "--action",
            &args.action,
            vec!["increase", "keep", "decrease", "hold"],
        ),
        ("--class", &args.class, classes.iter().flatten().collect()),
    ] {
        if let Some(bad) = given.iter().find(|g| !known.contains(&g.as_str())) {
            let mut known: Vec<&str> = known;
            known.sort_unstable();
            known.dedup();
            return Err(ArqError::Usage(format!(
                "{flag} {bad}: not one of {}",
                known.join(", ")
            )));
        }
    }
    let wanted = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
    Ok((0..limits.num_rows())
        .map(|r| {
            Some(
                args.customer.as_deref().is_none_or(|c| c == ids.value(r))
                    && wanted(&args.action, actions.value(r))
                    && wanted(&args.class, classes.value(r))
                    && (!args.over_limit || over.value(r))
                    && (!args.above_recommended || above.value(r))
                    && (!args.due_for_review || due.value(r)),
            )
        })
        .collect())
}
