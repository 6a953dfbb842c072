//! `arq report`: the month's review as one HTML file (see [`crate::report`]).

use std::sync::Arc;

use datafusion::datasource::MemTable;

use crate::cli::args::ReportArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::output::{bucket, print_text, write_atomically};
use crate::report::model::ModelInput;
use crate::report::nights::Nights;
use crate::report::{self, CreditInput, Period, Section, Source};
use crate::scored::recommendations;
use crate::storage::Location;

/// Builds the report over the configured warehouse (and model, when there is one) and
/// writes it atomically.
pub fn run(config: &Config, args: &ReportArgs) -> Result<()> {
    let warehouse = config.warehouse()?;
    let period = Period::new(
        warehouse.as_of(),
        &warehouse.snapshot_dates(),
        args.months,
        args.cei_target,
    )?;
    let mut sections = args.sections.clone();
    sections.sort();
    sections.dedup();
    let loaded = config.model().ok();
    let model = loaded.map(|m| m.path.display().to_string());
    let root = warehouse.root().to_string();
    let source = Source {
        warehouse: &root,
        model: model.as_deref(),
    };
    let policy = &config.policy()?.value;
    let policy_fingerprint = &config.policy()?.fingerprint;
    // Nights in a bucket: the trusted ones copied into a local folder first.
    let mut _fetched = None;
    let nights_dir = match &args.nights {
        Some(out) => {
            let location = Location::parse(&out.to_string_lossy())?;
            match location.local_path() {
                Some(local) => Some(local.to_path_buf()),
                None => {
                    let work = config.block_on(bucket::fetch_into_work_folder(&location))?;
                    let dir = work.path().to_path_buf();
                    _fetched = Some(work);
                    Some(dir)
                }
            }
        }
        None => None,
    };
    let nights = match &nights_dir {
        Some(out) => Nights::read(
            out,
            period.previous.as_deref().unwrap_or(""),
            &period.as_of,
            loaded.map(|m| m.fingerprint.as_str()),
        )?,
        None => Nights::default(),
    };
    // The nights' invoice settlement, where it is up to date with the warehouse (read
    // only: the report changes nothing in the nights' folder).
    let with_settlement;
    let warehouse = match nights_dir
        .as_deref()
        .and_then(|out| crate::settlement::read_current(warehouse, out))
    {
        Some(settlement) => {
            with_settlement = settlement.derived(warehouse)?;
            &with_settlement
        }
        None => warehouse,
    };
    let html = config.block_on(async {
        let ctx = warehouse.session(config.session_model()).await?;
        let credit = match (sections.contains(&Section::Credit), config.session_model()) {
            (true, Some(model)) => Some(CreditInput {
                // As the night recommended them, else computed as `arq limits` does.
                limits: {
                    let limits = match nights.limits(period.as_of_day()?, policy_fingerprint) {
                        Some(limits) => limits,
                        None => {
                            recommendations(warehouse, model, config.feature_slice, policy).await?
                        }
                    };
                    Arc::new(MemTable::try_new(limits.schema(), vec![vec![limits]])?)
                },
                classes: policy
                    .limits
                    .classes
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
            }),
            _ => None,
        };
        let model = config.session_model().map(|model| ModelInput {
            model,
            queues: &policy.queues,
            snapshot_days: warehouse.snapshots().complete_days(),
            slice: config.feature_slice,
            policy_fingerprint,
        });
        report::build(
            &ctx,
            &period,
            &sections,
            &source,
            credit.as_ref(),
            model.as_ref(),
            &nights,
        )
        .await
    })?;
    write_atomically(&args.out, |file| {
        use std::io::Write;
        file.write_all(html.html.as_bytes())
            .map_err(|e| ArqError::io(&args.out, e))
    })?;
    print_text(&format!(
        "report of {} ({} months) written to {}\n",
        period.as_of,
        period.months,
        args.out.display()
    ))
}
