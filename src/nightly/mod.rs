//! The nightly job: checks the snapshot, scores every customer once, builds the work
//! queues and the credit-limit recommendations, and writes them all to `OUT/<as-of>/` in
//! one atomic step.
//!
//! Outputs (every table in CSV and Parquet):
//! - `queues.*`: every eligible customer exactly once, in whichever queue they landed;
//! - `call_lists/<person>.*`: everything assigned to one collector, supervisor or
//!   resolver today (calls, overflow, disputes, supervised cases), by queue and rank
//!   (empty when there is nothing to do), and `call_lists/<person>_items.*`: the overdue
//!   invoices behind that list, in the list's order, oldest due date first;
//! - `supervisors.*`, `dispute.*`, `escalation.*` (the manager's list of late-stage
//!   accounts with their step), `held.*`, `carry_over.*` (with `supervisor:carry_over`);
//! - `limits.*`, `scores.*`;
//! - with `--xlsx`, spreadsheets of the lists people read (see [`workbooks`]);
//! - beside the nights, `OUT/_settlement/`: the invoice settlement table the features read
//!   (brought up to date first; [`crate::settlement`]);
//! - `report.html`: the month's review (`arq report`'s every section, 12 months), and
//!   `backtest.*`: the backtest rows it showed, which later nights and `arq report
//!   --nights` read instead of replaying those queues again, and `portfolio_facts.json`:
//!   the portfolio series (aging, `ar_metrics`, `roll_rates`) of every month of the
//!   report's range, which later reports read instead of computing those months again
//!   (the next night computes only its own month), and `outcomes.parquet`: the labelled
//!   snapshots' 90-day outcomes the report read (later reports label only new ones);
//! - `manifest.json`: inputs (fingerprints of the warehouse files, model and policy),
//!   versions, per-queue counts and overdue, every output file with rows, bytes and
//!   fingerprint, and timings. Everything but the `timings_ms` object is byte-identical
//!   from one run to the next on the same inputs.

pub mod changes;
pub mod manifest;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use arq_models::Policy;
use arq_models::sql::SessionModel;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::ParquetReadOptions;
use indicatif::ProgressBar;

use crate::error::{ArqError, Result};
use crate::loaded::Loaded;
use crate::output::folder::{FolderWriter, Workbook};
use crate::output::staging::StagingDir;
use crate::report::model::ModelInput;
use crate::report::nights::Nights;
use crate::report::{self, CreditInput, Period, Section, Source};
use crate::scored::{ScoredSnapshot, take_rows};
use crate::validate;
use crate::warehouse::Warehouse;
use manifest::{
    InputsRecord, Manifest, ModelRecord, PolicyRecord, RunInputs, Summary, fingerprint_files,
};
use object_store::ObjectMeta;

/// What the job needs besides the warehouse.
pub struct NightlyOptions<'a> {
    /// The folder under which `<as-of>/` is written.
    pub out: PathBuf,
    /// The folder as the summary names it, when it is not `out` (a bucket's prefix whose
    /// nights are prepared in a local folder first).
    pub shown_out: Option<String>,
    pub model: &'a Loaded<SessionModel>,
    pub policy: &'a Loaded<Policy>,
    /// Customers per slice of the feature query.
    pub feature_slice: usize,
    /// Show a progress bar (on a terminal only).
    pub progress: bool,
    /// Also write the lists people read as spreadsheets (`--xlsx`).
    pub xlsx: bool,
    /// Read (and update) the invoice settlement table kept in `out`
    /// ([`crate::settlement`]); else settle from the payments in the feature query.
    pub settlement: bool,
    /// The `arq` executable that builds the settlement table in its own process when it
    /// must be built from scratch (`arq settle --rebuild`; [`settle_apart`]); `None`
    /// builds it in this one.
    pub settle_apart: Option<PathBuf>,
}

/// The stages, in order, as the progress bar names them.
const STAGES: [&str; 8] = [
    "checking inputs",
    "settling invoices",
    "scoring",
    "queues",
    "limits",
    "writing",
    "the month's report",
    "committing",
];

/// The night's table of credit-limit recommendations (`limits.csv`, `limits.parquet`),
/// which the night's report reads back.
const LIMITS: &str = "limits";

/// What the queries produce.
struct Decisions {
    snapshot: ScoredSnapshot,
    queues: RecordBatch,
    /// The overdue invoices of the snapshot, by customer.
    items: RecordBatch,
    /// The limits' totals by currency, risk class and action.
    limits_summary: RecordBatch,
    /// Where the previous snapshot's scores (the review's class migration) came from.
    previous_scores: &'static str,
    limits: RecordBatch,
    collectors: Vec<String>,
}

/// Builds the settlement table in `options.out` from scratch (for `why`) in a child
/// process, `arq settle --rebuild` on the same warehouse, snapshot and slice, and reads
/// back what it built. Its error, if any, is the night's. A build in this process left
/// glibc's heaps grown by 1.5 GB for the rest of the night, where the queues' big buffers
/// were then cut from instead of being mapped on their own: a first night at a million
/// customers peaked at 2.07 GB, 1.57 GB since (benches/README.md, thirteenth and
/// fourteenth sessions). A night killed alone while the child builds leaves the child to
/// finish (Ctrl-C on a terminal stops both): the child commits a whole table (its
/// `state.json` written last) or none, and the next night finds it up to date or builds
/// it again.
fn settle_apart(
    arq: &std::path::Path,
    warehouse: &Warehouse,
    options: &NightlyOptions,
    why: String,
) -> Result<crate::settlement::Outcome> {
    let started = Instant::now();
    let run = std::process::Command::new(arq)
        .arg("settle")
        .arg("--rebuild")
        .arg("--warehouse")
        .arg(warehouse.root().to_string())
        .arg("--as-of")
        .arg(warehouse.as_of().to_string())
        .arg("--out")
        .arg(&options.out)
        .env(
            crate::cli::config::FEATURE_SLICE_VAR,
            options.feature_slice.to_string(),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| ArqError::io(arq, e))?;
    if !run.status.success() {
        let said = String::from_utf8_lossy(&run.stderr);
        // Its error is its last line that starts `error: ` (the binary's one line).
        let message = match said.lines().rev().find_map(|l| l.strip_prefix("error: ")) {
            Some(error) => error.to_string(),
            None => format!(
                "building the settlement table in {} (`arq settle --rebuild`) ended with \
                 {}{}",
                options.out.join(crate::settlement::FOLDER).display(),
                run.status,
                match said.trim() {
                    "" => String::new(),
                    text => format!(": {}", text.replace('\n', " ")),
                }
            ),
        };
        return Err(ArqError::Apart(message));
    }
    crate::settlement::built_apart(
        warehouse,
        &options.out,
        why,
        started.elapsed().as_secs_f64(),
    )
}

/// Runs the job on `runtime` and returns the summary for stdout.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    warehouse: &Warehouse,
    options: &NightlyOptions,
) -> Result<String> {
    let started = Instant::now();
    let target = options.out.join(warehouse.as_of().to_string());
    let mut stages = Stages::new(options.progress);
    // The input fingerprint reads every warehouse file; it runs beside the queries.
    let files: Vec<ObjectMeta> = warehouse
        .tables()
        .iter()
        .flat_map(|t| t.files.iter().map(|f| f.meta.clone()))
        .collect();
    let root = warehouse.root().clone();
    let fingerprint = runtime.spawn(async move { fingerprint_files(&root, &files).await });
    runtime.block_on(validate::snapshot(warehouse))?;
    stages.done("check");
    // The invoices' settlement, kept between nights: every session of the night reads it
    // where it gives the feature query's days.
    // Not on a cluster: its executors, maybe on other machines, cannot read the table's
    // local files; they settle from the payments.
    let keep_settlement = options.settlement && warehouse.cluster().is_none();
    let (settled, settlement) = match keep_settlement {
        false => (warehouse.clone(), None),
        true => {
            let rebuild = crate::settlement::rebuild_reason(warehouse, &options.out);
            let outcome = match (&options.settle_apart, rebuild) {
                (Some(arq), Some(why)) => settle_apart(arq, warehouse, options, why)?,
                _ => runtime.block_on(crate::settlement::update(
                    warehouse,
                    &options.out,
                    false,
                    options.feature_slice,
                ))?,
            };
            (outcome.settlement.derived(warehouse)?, Some(outcome))
        }
    };
    let warehouse = &settled;
    stages.done("settle");
    let decisions = runtime.block_on(decide(warehouse, options, &mut stages))?;
    let inputs = runtime
        .block_on(fingerprint)
        .map_err(|e| ArqError::Internal(format!("fingerprinting the warehouse failed: {e}")))??;

    let changes = changes::against_previous(&options.out, warehouse.as_of(), &decisions.queues)?;
    let staging = StagingDir::new(&target)?;
    let writer = FolderWriter::new(staging.path())?;
    // Each table made as it is written (a call list is a copy of some rows of the
    // queues): at a million customers, all of them made first held 0.6 GB more.
    let tables = output_tables(&decisions)?;
    let made = |i: usize| -> Result<(String, RecordBatch)> {
        let (name, rows) = &tables[i];
        Ok((name.clone(), rows.batch()?))
    };
    let rows: Vec<usize> = tables.iter().map(|(_, rows)| rows.len()).collect();
    writer.tables_made(&rows, made)?;
    if options.xlsx {
        let made = (0..tables.len()).map(made).collect::<Result<Vec<_>>>()?;
        writer.workbooks(tables.len(), &workbooks(&made)?)?;
    }
    drop(tables);
    // Written: what the report needs of the lists is taken now, and the lists dropped (at
    // a million customers the queues, overdue items and limits are a gigabyte the
    // report's queries can use instead); the credit section reads the staged limits file.
    let mut summary = Summary::of(
        decisions.snapshot.scores.batch(),
        &decisions.queues,
        &decisions.limits,
    )?;
    summary.changes = changes;
    let period = Period::new(
        warehouse.as_of(),
        &warehouse.snapshot_dates(),
        12,
        report::DEFAULT_CEI_TARGET,
    )?;
    let nights = night_history(options, warehouse, &period, &decisions)?;
    // Each list dropped by name: fields a `..` pattern leaves are dropped only with
    // `decisions`, at the end of this function (at a million customers 1.07 GB held
    // through the report).
    let Decisions {
        snapshot,
        previous_scores,
        queues,
        items,
        limits_summary,
        limits,
        collectors,
    } = decisions;
    drop((queues, items, limits_summary, limits, collectors));
    stages.done("write");
    let limits = staging.path().join(format!("{LIMITS}.parquet"));
    let report = runtime.block_on(night_report(warehouse, options, &period, &nights, &limits))?;
    drop(nights);
    writer.file("report.html", report.html.as_bytes())?;
    // The backtest rows the report showed, so the next nights replay no queue twice.
    let backtest = arq_models::backtest::backtest_batch_exact(&report.backtest)?;
    writer.tables(&[("backtest".to_string(), backtest)])?;
    // The range's portfolio series, so that later reports compute only their own month.
    if let Some(months) = report.facts {
        let kept = crate::report::portfolio::KeptFacts {
            format: crate::report::portfolio::FACTS_FORMAT,
            months,
        };
        let json = serde_json::to_vec_pretty(&kept)
            .map_err(|e| ArqError::Internal(format!("the portfolio facts: {e}")))?;
        writer.file(crate::report::nights::PORTFOLIO_FACTS, &json)?;
    }
    // The labelled snapshots' outcomes, so that later reports label only the new one.
    let outcomes = crate::report::nights::outcomes_batch(&report.outcomes)?;
    writer.parquet(crate::report::nights::OUTCOMES, &outcomes)?;
    drop(snapshot);
    stages.done("report");

    let mut manifest = Manifest {
        arq_version: env!("CARGO_PKG_VERSION"),
        as_of: warehouse.as_of().to_string(),
        warehouse: InputsRecord {
            path: warehouse.root().to_string(),
            files: inputs.files,
            bytes: inputs.bytes,
            fingerprint: inputs.fingerprint,
        },
        model: model_record(options.model),
        policy: PolicyRecord {
            path: options.policy.path.display().to_string(),
            version: options.policy.value.version.clone(),
            fingerprint: options.policy.fingerprint.clone(),
        },
        customers: summary.customers,
        eligible: summary.eligible,
        overdue: summary
            .overdue
            .iter()
            .map(|(c, a)| (c.clone(), a.to_string()))
            .collect(),
        queues: summary.queue_records(),
        limit_actions: summary.limit_actions.clone(),
        compared_with: summary.changes.as_ref().map(|c| c.since.clone()),
        previous_scores,
        changes: summary.changes.as_ref().map(|c| c.queues.clone()),
        outputs: writer.records(),
        timings_ms: stages.timings.clone(),
    };
    manifest
        .timings_ms
        .insert("total", started.elapsed().as_millis() as u64);
    let mut json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ArqError::Internal(format!("cannot encode the manifest: {e}")))?;
    json.push(b'\n');
    writer.file("manifest.json", &json)?;
    writer.sync()?;
    staging.commit(true)?;
    stages.done("commit");
    stages.bar.finish_and_clear();
    // The tables' files and the manifest.
    let files = manifest.outputs.len() + 1;
    let inputs = RunInputs {
        warehouse: warehouse.root(),
        model: &options.model.path,
        policy: &options.policy.path,
        policy_version: &options.policy.value.version,
    };
    let shown = match &options.shown_out {
        Some(out) => format!("{out}/{}", warehouse.as_of()),
        None => target.display().to_string(),
    };
    let settled = settlement.map(|s| s.line());
    Ok(summary.text(
        &inputs,
        &shown,
        files,
        started.elapsed().as_secs_f64(),
        settled.as_deref(),
    ))
}

/// Checks the snapshot's rows, scores once, and builds the queues and the limits.
async fn decide(
    warehouse: &Warehouse,
    options: &NightlyOptions<'_>,
    stages: &mut Stages,
) -> Result<Decisions> {
    let model = &options.model.value;
    // The previous snapshot's scores for the credit review: from its committed night
    // when there is one scored with this model, else scored now, with tonight's
    // (`score_snapshots`: one day after the other).
    let night = warehouse.previous_snapshot().and_then(|day| {
        crate::report::nights::scores_of_night(
            &options.out,
            arq_udfs::dates::to_days(day),
            &options.model.fingerprint,
        )
    });
    let (snapshot, previous, previous_scores) = match night {
        Some(scores) => (
            ScoredSnapshot::load(warehouse, model, options.feature_slice).await?,
            Some(scores),
            "read from the previous night's outputs",
        ),
        None => {
            let (snapshot, scores) =
                ScoredSnapshot::load_with_previous(warehouse, model, options.feature_slice).await?;
            let how = if scores.is_some() {
                "scored"
            } else {
                "none: first snapshot"
            };
            (snapshot, scores, how)
        }
    };
    stages.done("score");
    let policy = &options.policy.value;
    // The year's promises judged once for the queues and the limits (both read them), and
    // kept summed up per customer as each reads them; not on a cluster, whose executors
    // cannot read a table in this process's memory.
    let (day, grace) = (snapshot.scores.day, policy.queues.promise_grace_days);
    let shared = match warehouse.cluster() {
        Some(_) => Vec::new(),
        None => {
            let limits = arq_models::limits::limit_inputs_sql(policy);
            let queries = [arq_models::queues::QUEUE_INPUTS_SQL, limits.as_str()];
            arq_models::queues::share_promise_summaries(&snapshot.state, day, grace, &queries)
                .await?
        }
    };
    let queues =
        arq_models::queues::queue_snapshot(&snapshot.state, &snapshot.scores, &policy.queues)
            .await?;
    stages.done("queues");
    let limits = arq_models::limits::recommend_snapshot(
        &snapshot.state,
        &snapshot.scores,
        previous.as_ref(),
        policy,
    )
    .await?;
    arq_models::queues::forget_promise_summaries(&snapshot.state, &shared)?;
    stages.done("limits");
    // The call lists' overdue invoices, read after the limits' query (counted in the write
    // stage): at a million customers they are 0.27 GB the limits' query need not share
    // the memory with.
    let items = arq_models::queues::overdue_items(&snapshot.state, snapshot.scores.day).await?;
    let collectors = collector_ids(&snapshot).await?;
    Ok(Decisions {
        snapshot,
        queues,
        items,
        limits_summary: arq_models::credit_desk::summary(&limits, policy)?,
        previous_scores,
        limits,
        collectors,
    })
}

/// This month's earlier nights from the output folder, and tonight's from its queues and
/// scores: the history the night's report reads.
fn night_history(
    options: &NightlyOptions<'_>,
    warehouse: &Warehouse,
    period: &Period,
    decisions: &Decisions,
) -> Result<Nights> {
    let tonight = warehouse.as_of().to_string();
    let after = period.previous.clone().unwrap_or_default();
    let mut nights = Nights::read(
        &options.out,
        &after,
        &tonight,
        Some(&options.model.fingerprint),
    )?;
    nights.add_tonight(&tonight, &decisions.queues)?;
    nights.add_tonight_scores(&decisions.snapshot.scores);
    Ok(nights)
}

/// The month's review (`arq report` with every section, 12 months, `--nights OUT`) of the
/// night, with the limits the night recommended (read from their staged file `limits`)
/// and tonight's carry-over and scores (in `nights`).
async fn night_report(
    warehouse: &Warehouse,
    options: &NightlyOptions<'_>,
    period: &Period,
    nights: &Nights,
    limits: &std::path::Path,
) -> Result<report::Built> {
    let ctx = warehouse.local_session(Some(&options.model.value)).await?;
    let root = warehouse.root().to_string();
    let model = options.model.path.display().to_string();
    let source = Source {
        warehouse: &root,
        model: Some(&model),
    };
    let limits = limits
        .to_str()
        .ok_or_else(|| ArqError::Internal(format!("{} is not UTF-8", limits.display())))?;
    let credit = CreditInput {
        limits: ctx
            .read_parquet(limits, ParquetReadOptions::default())
            .await?
            .into_view(),
        classes: options
            .policy
            .value
            .limits
            .classes
            .iter()
            .map(|c| c.name.clone())
            .collect(),
    };
    let sections = [
        Section::Portfolio,
        Section::Collectors,
        Section::Model,
        Section::Credit,
    ];
    let model = ModelInput {
        model: &options.model.value,
        queues: &options.policy.value.queues,
        snapshot_days: warehouse.snapshots().complete_days(),
        slice: options.feature_slice,
        policy_fingerprint: &options.policy.fingerprint,
    };
    report::build(
        &ctx,
        period,
        &sections,
        &source,
        Some(&credit),
        Some(&model),
        nights,
    )
    .await
}

/// The spreadsheets of `--xlsx`: each person's call list with its overdue invoices on a
/// second sheet, the supervisors', dispute, escalation, held and carry-over lists, and
/// the credit desk's changes (every recommendation but `keep`) with the totals. The
/// queues and scores of every customer stay CSV and Parquet: they are for programs, and
/// at a million customers more rows than a sheet holds.
fn workbooks(tables: &[(String, RecordBatch)]) -> Result<Vec<Workbook>> {
    let table = |name: &str| -> Result<RecordBatch> {
        tables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| ArqError::Internal(format!("no output table `{name}`")))
    };
    let sheet = |name: &str, batch: RecordBatch| (name.to_string(), batch);
    let mut books = Vec::new();
    for (name, batch) in tables {
        if name.starts_with("call_lists/") && !name.ends_with("_items") {
            books.push(Workbook {
                name: name.clone(),
                sheets: vec![
                    sheet("call list", batch.clone()),
                    sheet("overdue items", table(&format!("{name}_items"))?),
                ],
            });
        }
    }
    for name in ["supervisors", "dispute", "escalation", "held", "carry_over"] {
        books.push(Workbook {
            name: name.into(),
            sheets: vec![sheet(name, table(name)?)],
        });
    }
    let limits = table(LIMITS)?;
    let actions = cast(
        limits
            .column_by_name("action")
            .ok_or_else(|| ArqError::Internal("the limits have no action".into()))?,
        &DataType::Utf8,
    )?;
    let changes: Vec<u32> = (0..limits.num_rows())
        .filter(|&r| actions.as_string::<i32>().value(r) != "keep")
        .map(|r| r as u32)
        .collect();
    books.push(Workbook {
        name: "limits".into(),
        sheets: vec![
            sheet("changes", take_rows(&limits, &changes)?),
            sheet("summary", table("limits_summary")?),
        ],
    });
    Ok(books)
}

/// An output table's rows: a whole table of the decisions, or some of its rows.
enum OutputRows<'a> {
    Whole(&'a RecordBatch),
    Taken(&'a RecordBatch, Vec<u32>),
}

impl OutputRows<'_> {
    fn len(&self) -> usize {
        match self {
            OutputRows::Whole(batch) => batch.num_rows(),
            OutputRows::Taken(_, rows) => rows.len(),
        }
    }

    fn batch(&self) -> Result<RecordBatch> {
        match self {
            OutputRows::Whole(batch) => Ok((*batch).clone()),
            OutputRows::Taken(batch, rows) => take_rows(batch, rows),
        }
    }
}

/// Every output table with its name (`call_lists/K0001`, `held`, ...), in manifest order.
fn output_tables(d: &Decisions) -> Result<Vec<(String, OutputRows<'_>)>> {
    let queues = &d.queues;
    let text = |batch: &RecordBatch, name: &str| -> Result<ArrayRef> {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| ArqError::Internal(format!("the outputs have no column `{name}`")))?;
        Ok(cast(column, &DataType::Utf8)?)
    };
    // Rows of each queue and of each person, in the combined list's order (queue, rank).
    let (names, assigned) = (text(queues, "queue")?, text(queues, "assigned_to")?);
    let (names, assigned) = (names.as_string::<i32>(), assigned.as_string::<i32>());
    let mut rows_of: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut rows_for: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for r in 0..queues.num_rows() {
        rows_of.entry(names.value(r)).or_default().push(r as u32);
        if assigned.is_valid(r) {
            rows_for
                .entry(assigned.value(r))
                .or_default()
                .push(r as u32);
        }
    }
    let select = |wanted: &[&str]| -> OutputRows<'_> {
        let mut rows: Vec<u32> = wanted
            .iter()
            .flat_map(|q| rows_of.get(q).into_iter().flatten().copied())
            .collect();
        rows.sort_unstable();
        OutputRows::Taken(queues, rows)
    };
    // The overdue items of each customer, oldest due first (the query does not sort them).
    let item_customers = text(&d.items, "customer_id")?;
    let item_customers = item_customers.as_string::<i32>();
    let mut items_of: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for r in 0..d.items.num_rows() {
        items_of
            .entry(item_customers.value(r))
            .or_default()
            .push(r as u32);
    }
    let order = arq_models::queues::items_order(&d.items)?;
    for rows in items_of.values_mut() {
        rows.sort_unstable_by(&order);
    }
    let customers = text(queues, "customer_id")?;
    let customers = customers.as_string::<i32>();
    let mut tables = vec![("queues".to_string(), OutputRows::Whole(queues))];
    for id in &d.collectors {
        let rows = rows_for.get(id.as_str()).cloned().unwrap_or_default();
        let items: Vec<u32> = rows
            .iter()
            .flat_map(|&r| {
                items_of
                    .get(customers.value(r as usize))
                    .into_iter()
                    .flatten()
                    .copied()
            })
            .collect();
        tables.push((format!("call_lists/{id}"), OutputRows::Taken(queues, rows)));
        tables.push((
            format!("call_lists/{id}_items"),
            OutputRows::Taken(&d.items, items),
        ));
    }
    let supervised: Vec<&str> = rows_of
        .keys()
        .copied()
        .filter(|q| q.starts_with("supervisor:") && *q != "supervisor:carry_over")
        .collect();
    tables.push(("supervisors".into(), select(&supervised)));
    tables.push(("dispute".into(), select(&["dispute"])));
    tables.push(("escalation".into(), select(&["escalation"])));
    tables.push(("held".into(), select(&["held"])));
    tables.push((
        "carry_over".into(),
        select(&["carry_over", "supervisor:carry_over"]),
    ));
    tables.push((LIMITS.into(), OutputRows::Whole(&d.limits)));
    tables.push((
        "limits_summary".into(),
        OutputRows::Whole(&d.limits_summary),
    ));
    tables.push((
        "scores".into(),
        OutputRows::Whole(d.snapshot.scores.batch()),
    ));
    Ok(tables)
}

/// The model as the manifest names it.
fn model_record(model: &Loaded<SessionModel>) -> ModelRecord {
    let training = &model.value.model.training;
    ModelRecord {
        path: model.path.display().to_string(),
        fingerprint: model.fingerprint.clone(),
        trained_on: training.source.clone(),
        train_from: training.train_from.clone(),
        train_to: training.train_to.clone(),
        training_fingerprint: training.fingerprint.clone(),
    }
}

/// The progress bar over the stages and the time each took.
struct Stages {
    bar: ProgressBar,
    timings: BTreeMap<&'static str, u64>,
    clock: Instant,
}

impl Stages {
    fn new(progress: bool) -> Stages {
        let bar = crate::progress::stage_bar("nightly", STAGES.len(), !progress);
        bar.set_message(STAGES[0]);
        Stages {
            bar,
            timings: BTreeMap::new(),
            clock: Instant::now(),
        }
    }

    fn done(&mut self, name: &'static str) {
        // What a stage freed goes back to the system before the next one: glibc keeps
        // freed memory inside its heaps (arenas), and the next stage's query allocations
        // land elsewhere. At a million customers the floor between stages drops by
        // 0.5–0.7 GB (after the limits 2.06 → 1.34 GB; benches/README.md).
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free memory of glibc's heaps to the system.
        unsafe {
            libc::malloc_trim(0);
        }
        self.timings
            .insert(name, self.clock.elapsed().as_millis() as u64);
        self.clock = Instant::now();
        self.bar.inc(1);
        if let Some(next) = STAGES.get(self.bar.position() as usize) {
            self.bar.set_message(*next);
        }
    }
}

/// Everyone in the collectors table (collectors, supervisors, resolvers); their ids
/// were checked to be usable as file names with the snapshot's rows
/// ([`validate::snapshot`]).
async fn collector_ids(snapshot: &ScoredSnapshot) -> Result<Vec<String>> {
    Ok(arq_models::queues::load_collectors(&snapshot.state)
        .await?
        .into_iter()
        .map(|c| c.collector_id)
        .collect())
}
