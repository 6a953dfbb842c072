//! The nightly job: checks the snapshot, scores every customer once, builds the work
//! queues and the credit-limit recommendations, and writes them all to `OUT/<as-of>/` in
//! one atomic step.
//!
//! Outputs (every table in CSV and Parquet):
//! - `queues.*`: every eligible customer exactly once, in whichever queue they landed;
//! - `call_lists/<collector>.*`: one ranked list per collector (empty when there is
//!   nothing to call);
//! - `supervisors.*`, `dispute.*`, `held.*`, `carry_over.*` (with `supervisor:carry_over`);
//! - `limits.*`, `scores.*`;
//! - `manifest.json`: inputs (fingerprints of the warehouse files, model and policy),
//!   versions, per-queue counts and overdue, every output file with rows, bytes and
//!   fingerprint, and timings. Everything but the `timings_ms` object is byte-identical
//!   from one run to the next on the same inputs.

pub mod manifest;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use arq_models::Policy;
use arq_models::sql::SessionModel;
use arq_udfs::table_function::collect_sql;
use datafusion::arrow::array::{AsArray, RecordBatch};
use indicatif::ProgressBar;

use crate::error::{ArqError, Result};
use crate::loaded::Loaded;
use crate::output::folder::FolderWriter;
use crate::output::staging::StagingDir;
use crate::scored::{ScoredSnapshot, take_rows};
use crate::validate;
use crate::warehouse::Warehouse;
use manifest::{
    InputsRecord, Manifest, ModelRecord, PolicyRecord, RunInputs, Summary, fingerprint_files,
};

/// What the job needs besides the warehouse.
pub struct NightlyOptions<'a> {
    /// The folder under which `<as-of>/` is written.
    pub out: PathBuf,
    pub model: &'a Loaded<SessionModel>,
    pub policy: &'a Loaded<Policy>,
    /// Customers per slice of the feature query.
    pub feature_slice: usize,
    /// Show a progress bar (on a terminal only).
    pub progress: bool,
}

/// The stages, in order, as the progress bar names them.
const STAGES: [&str; 6] = [
    "checking inputs",
    "scoring",
    "queues",
    "limits",
    "writing",
    "committing",
];

/// What the queries produce.
struct Decisions {
    snapshot: ScoredSnapshot,
    queues: RecordBatch,
    limits: RecordBatch,
    collectors: Vec<String>,
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
    let files: Vec<PathBuf> = warehouse
        .tables()
        .iter()
        .flat_map(|t| t.files.iter().cloned())
        .collect();
    let root = warehouse.root().to_path_buf();
    let fingerprint = runtime.spawn_blocking(move || fingerprint_files(&root, &files));
    let decisions = runtime.block_on(decide(warehouse, options, &mut stages))?;
    let inputs = runtime
        .block_on(fingerprint)
        .map_err(|e| ArqError::Internal(format!("fingerprinting the warehouse failed: {e}")))??;

    let staging = StagingDir::new(&target)?;
    let writer = FolderWriter::new(staging.path())?;
    writer.tables(&output_tables(&decisions)?)?;
    stages.done("write");

    let summary = Summary::of(
        decisions.snapshot.scores.batch(),
        &decisions.queues,
        &decisions.limits,
    )?;
    let mut manifest = Manifest {
        arq_version: env!("CARGO_PKG_VERSION"),
        as_of: warehouse.as_of().to_string(),
        warehouse: InputsRecord {
            path: warehouse.root().display().to_string(),
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
    Ok(summary.text(&inputs, &target, files, started.elapsed().as_secs_f64()))
}

/// Checks the snapshot's rows, scores once, and builds the queues and the limits.
async fn decide(
    warehouse: &Warehouse,
    options: &NightlyOptions<'_>,
    stages: &mut Stages,
) -> Result<Decisions> {
    validate::snapshot(warehouse)?;
    stages.done("check");
    let model = &options.model.value;
    let snapshot = ScoredSnapshot::load(warehouse, model, options.feature_slice).await?;
    stages.done("score");
    let policy = &options.policy.value;
    let queues =
        arq_models::queues::queue_snapshot(&snapshot.state, &snapshot.scores, &policy.queues)
            .await?;
    stages.done("queues");
    let limits =
        arq_models::limits::recommend_snapshot(&snapshot.state, &snapshot.scores, policy).await?;
    stages.done("limits");
    let collectors = collector_ids(&snapshot).await?;
    Ok(Decisions {
        snapshot,
        queues,
        limits,
        collectors,
    })
}

/// Every output table with its name (`call_lists/K0001`, `held`, ...), in manifest order.
fn output_tables(d: &Decisions) -> Result<Vec<(String, RecordBatch)>> {
    let queues = &d.queues;
    // Rows of each queue, in the combined list's order (queue, then rank).
    let names = queues
        .column_by_name("queue")
        .ok_or_else(|| ArqError::Internal("the queues have no column `queue`".into()))?
        .as_string::<i32>();
    let mut rows_of: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for r in 0..queues.num_rows() {
        rows_of.entry(names.value(r)).or_default().push(r as u32);
    }
    let select = |wanted: &[&str]| -> Result<RecordBatch> {
        let mut rows: Vec<u32> = wanted
            .iter()
            .flat_map(|q| rows_of.get(q).into_iter().flatten().copied())
            .collect();
        rows.sort_unstable();
        take_rows(queues, &rows)
    };
    let mut tables = vec![("queues".to_string(), queues.clone())];
    for id in &d.collectors {
        tables.push((format!("call_lists/{id}"), select(&[id.as_str()])?));
    }
    let supervised: Vec<&str> = rows_of
        .keys()
        .copied()
        .filter(|q| q.starts_with("supervisor:") && *q != "supervisor:carry_over")
        .collect();
    tables.push(("supervisors".into(), select(&supervised)?));
    tables.push(("dispute".into(), select(&["dispute"])?));
    tables.push(("held".into(), select(&["held"])?));
    tables.push((
        "carry_over".into(),
        select(&["carry_over", "supervisor:carry_over"])?,
    ));
    tables.push(("limits".into(), d.limits.clone()));
    tables.push(("scores".into(), d.snapshot.scores.batch().clone()));
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
        self.timings
            .insert(name, self.clock.elapsed().as_millis() as u64);
        self.clock = Instant::now();
        self.bar.inc(1);
        if let Some(next) = STAGES.get(self.bar.position() as usize) {
            self.bar.set_message(*next);
        }
    }
}

/// The collectors (role `collector`) of the warehouse; their ids were checked to be
/// usable as file names with the snapshot's rows ([`validate::snapshot`]).
async fn collector_ids(snapshot: &ScoredSnapshot) -> Result<Vec<String>> {
    let batches = collect_sql(
        &snapshot.state,
        "SELECT collector_id FROM collectors WHERE role = 'collector' ORDER BY collector_id",
    )
    .await?;
    let mut ids = Vec::new();
    for batch in &batches {
        let column = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )?;
        ids.extend(
            column
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string),
        );
    }
    Ok(ids)
}
