//! `arq train` and `arq score`: the risk model on a warehouse or on any labelled table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arq_models::encoding::numeric_values;
use arq_models::features;
use arq_models::limits::CreditPolicy;
use arq_models::model::write_atomically;
use arq_models::sql::SessionModel;
use arq_models::{LabelledData, ModelKind, RiskModel, TrainOptions};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Schema};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{ArqError, Result};
use crate::sql::{self, OutputFormat, QueryResult};
use crate::warehouse::{AsOf, Warehouse};

/// The model used when neither `--model` nor `ARQ_MODEL` is given.
pub const DEFAULT_MODEL: &str = "data/models/default.json";

/// Loads the model a session should use: the one given, else the default model when it
/// exists (`None` when there is none).
pub fn session_model(given: Option<&Path>) -> Result<Option<SessionModel>> {
    let Some(path) = model_path(given) else {
        return Ok(None);
    };
    let model = RiskModel::load(&path)?;
    Ok(Some(SessionModel {
        model: Arc::new(model),
        name: path.display().to_string(),
    }))
}

/// The model `arq score`, `arq limits` and the nightly job use: an error when there is none.
pub fn require_model(given: Option<&Path>) -> Result<SessionModel> {
    session_model(given)?.ok_or_else(|| {
        ArqError::Usage(format!(
            "no model: pass --model FILE (or train one with `arq train`; {DEFAULT_MODEL} is missing)"
        ))
    })
}

/// The credit policy used when `--policy` is not given.
pub const DEFAULT_POLICY: &str = "data/policy.toml";

/// Reads and checks the credit policy (the given file, else the default policy).
pub fn load_policy(given: Option<&Path>) -> Result<CreditPolicy> {
    Ok(CreditPolicy::load(&policy_path(given)?)?)
}

/// The policy file: the one given, else the default policy.
pub fn policy_path(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => bundled(DEFAULT_POLICY).ok_or_else(|| {
            ArqError::Usage(format!(
                "no policy: pass --policy FILE ({DEFAULT_POLICY} is missing)"
            ))
        }),
    }
}

/// The model file: the one given, else `data/models/default.json` in the current
/// folder, else in the source tree arq was built from.
pub fn model_path(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_path_buf()),
        None => bundled(DEFAULT_MODEL),
    }
}

/// A file shipped in the repository: relative to the current folder, else to the source
/// tree arq was built from.
fn bundled(relative: &str) -> Option<PathBuf> {
    let local = PathBuf::from(relative);
    if local.is_file() {
        return Some(local);
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    built_in.is_file().then_some(built_in)
}

/// The call lists of the snapshot on or before `as_of` (one queue when asked).
pub async fn queue(
    model: &SessionModel,
    policy: &CreditPolicy,
    warehouse: &Warehouse,
    as_of: AsOf,
    only: Option<&str>,
) -> Result<RecordBatch> {
    let snapshot = ScoredSnapshot::load(model, warehouse, as_of).await?;
    let batch = arq_models::queues::queue_snapshot(
        &snapshot.state,
        &snapshot.scores,
        &policy.queues,
        snapshot.day,
    )
    .await?;
    match only {
        None => Ok(batch),
        Some(name) => rows_where(&batch, 0, name)?
            .ok_or_else(|| ArqError::Usage(format!("no queue `{name}` today (queues are collector ids, supervisor:fraud_suspected, supervisor:high_profile, supervisor:high_risk, dispute, held, carry_over)"))),
    }
}

fn as_of_day(as_of: AsOf) -> Option<i32> {
    match as_of {
        AsOf::Latest => None,
        AsOf::Date(d) => Some(days_since_epoch(d)),
    }
}

/// A warehouse session, the snapshot on or before the as-of date, and every customer's
/// scores there — what `arq score`, `arq queue` and `arq limits` all start from.
pub(crate) struct ScoredSnapshot {
    pub state: datafusion::execution::SessionState,
    pub day: i32,
    pub scores: RecordBatch,
}

impl ScoredSnapshot {
    pub async fn load(model: &SessionModel, warehouse: &Warehouse, as_of: AsOf) -> Result<Self> {
        let state = warehouse.session().await?.state();
        let day = features::resolve_snapshot(&state, as_of_day(as_of)).await?;
        let scores =
            features::score_snapshot(&state, &model.model, &model.name, day, feature_slice()?)
                .await?;
        Ok(ScoredSnapshot { state, day, scores })
    }
}

/// Customers per slice of the feature query: `ARQ_FEATURE_SLICE`, else
/// [`features::DEFAULT_SLICE`]. Smaller slices use less memory and take a little longer.
fn feature_slice() -> Result<usize> {
    const VAR: &str = "ARQ_FEATURE_SLICE";
    match std::env::var(VAR) {
        Err(_) => Ok(features::DEFAULT_SLICE),
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ArqError::Usage(format!(
                "{VAR}={v}: give a number of customers (at least 1)"
            ))),
        },
    }
}

/// The rows whose text column `column` equals `value`; `None` when there are none.
fn rows_where(batch: &RecordBatch, column: usize, value: &str) -> Result<Option<RecordBatch>> {
    let ids = batch.column(column).as_string::<i32>();
    let rows: Vec<u32> = (0..ids.len())
        .filter(|&r| ids.value(r) == value)
        .map(|r| r as u32)
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    take_rows(batch, &rows).map(Some)
}

/// The given rows of a batch, in the given order.
pub(crate) fn take_rows(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch> {
    let take = datafusion::arrow::array::UInt32Array::from(rows.to_vec());
    let columns = batch
        .columns()
        .iter()
        .map(|c| datafusion::arrow::compute::take(c, &take, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Credit-limit recommendations for the snapshot on or before `as_of` (one customer
/// when asked).
pub async fn limits(
    model: &SessionModel,
    policy: &CreditPolicy,
    warehouse: &Warehouse,
    as_of: AsOf,
    customer: Option<&str>,
) -> Result<RecordBatch> {
    let snapshot = ScoredSnapshot::load(model, warehouse, as_of).await?;
    let day = snapshot.day;
    let batch =
        arq_models::limits::recommend_snapshot(&snapshot.state, &snapshot.scores, policy, day)
            .await?;
    match customer {
        None => Ok(batch),
        Some(id) => rows_where(&batch, 0, id)?.ok_or_else(|| {
            ArqError::Usage(format!(
                "no customer `{id}` in the snapshot of {}",
                datafusion::common::ScalarValue::Date32(Some(day))
            ))
        }),
    }
}

/// `arq backtest`: the queue order replayed on every snapshot between `from` and `to`
/// whose 90-day outcome is known; also the snapshots skipped and why.
pub async fn backtest(
    model: &SessionModel,
    policy: &CreditPolicy,
    warehouse: &Warehouse,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<(RecordBatch, Vec<String>)> {
    if from > to {
        return Err(ArqError::Usage(format!("--from {from} is after --to {to}")));
    }
    let state = warehouse.session().await?.state();
    let days: Vec<i32> = features::snapshot_days(&state)
        .await?
        .into_iter()
        .filter(|&d| d >= days_since_epoch(from) && d <= days_since_epoch(to))
        .collect();
    if days.is_empty() {
        return Err(ArqError::Usage(format!(
            "no snapshot between {from} and {to}"
        )));
    }
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for day in days {
        match arq_models::backtest::backtest_snapshot(
            &state,
            &model.model,
            &model.name,
            &policy.queues,
            day,
        )
        .await?
        {
            Some(row) => rows.push(row),
            None => skipped.push(format!(
                "{}: the 90-day outcome is not known yet (needs a snapshot on or after {})",
                arq_models::train::date_text(day),
                arq_models::train::date_text(day + 90)
            )),
        }
    }
    Ok((arq_models::backtest::backtest_batch(&rows)?, skipped))
}

/// A labelled table for `arq train --table`.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub path: PathBuf,
    pub label: String,
    pub ids: Vec<String>,
    pub exclude: Vec<String>,
    pub time: Option<String>,
}

/// Progress over `stages` steps, titled `title`: a bar on a terminal, nothing with
/// `quiet` (or when stderr is not a terminal).
pub(crate) fn stage_bar(title: &str, stages: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar =
        ProgressBar::with_draw_target(Some(stages as u64), ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{title} {{bar:30}} {{pos}}/{{len}} {{msg}} ({{elapsed}})"
        ))
        .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

/// Trains on the warehouse (or on `table`), writes the artifact to `out` and the report
/// to `report` (JSON) when asked; returns the report as text.
pub fn train(
    warehouse: Option<&Warehouse>,
    table: Option<&TableSpec>,
    options: &TrainOptions,
    out: &Path,
    report: Option<&Path>,
    quiet: bool,
) -> Result<String> {
    options.validate()?;
    let bar = stage_bar("training", arq_models::train::STAGES.len() + 1, quiet);
    bar.set_message("computing features");
    let runtime = crate::cli::runtime()?;
    let data = runtime.block_on(async {
        match (table, warehouse) {
            (Some(spec), _) => labelled_table(spec).await,
            (None, Some(w)) => {
                let ctx = w.session().await?;
                let state = ctx.state();
                Ok(features::training_data(&state, &w.root().display().to_string()).await?)
            }
            (None, None) => Err(ArqError::Usage("nothing to train on".into())),
        }
    })?;
    bar.inc(1);
    let model = arq_models::train(&data, options, &mut |stage| {
        bar.set_position(stage as u64 + 1);
        bar.set_message(arq_models::train::STAGES[stage]);
    })?;
    bar.finish_and_clear();
    model.save(out)?;
    if let Some(path) = report {
        let json = serde_json::to_string_pretty(&model.report)
            .map_err(|e| ArqError::Usage(format!("cannot write the report: {e}")))?;
        write_atomically(path, format!("{json}\n").as_bytes())?;
    }
    let w = &model.training;
    let window = match (
        &w.train_from,
        &w.train_to,
        &w.validation_from,
        &w.validation_to,
    ) {
        (Some(a), Some(b), Some(c), Some(d)) => {
            format!("trained on snapshots {a} to {b}, validated on {c} to {d}")
        }
        _ => "validated on a fixed pseudo-random third of the rows".to_string(),
    };
    Ok(format!(
        "model {} ({} features, {} design columns): {window}; {} training rows ({} bad), {} \
         validation rows ({} bad); fingerprint {}\n\n{}",
        out.display(),
        model.features.len(),
        model.design_columns.len(),
        w.train_rows,
        w.train_bads,
        w.validation_rows,
        w.validation_bads,
        w.fingerprint,
        model.report.to_table()
    ))
}

/// Reads a Parquet or CSV file as one batch.
pub async fn read_table(path: &Path) -> Result<RecordBatch> {
    let ctx = SessionContext::new();
    let name = path.display().to_string();
    if !path.is_file() {
        return Err(ArqError::Usage(format!("{name}: no such file")));
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let frame = match extension.as_str() {
        "parquet" => {
            ctx.read_parquet(name.as_str(), ParquetReadOptions::default())
                .await
        }
        "csv" => {
            ctx.read_csv(name.as_str(), CsvReadOptions::new().has_header(true))
                .await
        }
        _ => {
            return Err(ArqError::Usage(format!(
                "{name}: tables are read from .parquet or .csv files"
            )));
        }
    }
    .map_err(|e| {
        ArqError::Usage(format!(
            "{name}: {}",
            crate::error::one_line(&e.to_string())
        ))
    })?;
    let schema: Arc<Schema> = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(|e| {
        ArqError::Usage(format!(
            "{name}: {}",
            crate::error::one_line(&e.to_string())
        ))
    })?;
    Ok(concat_batches(&schema, &batches)?)
}

/// A labelled table: the label column as booleans, `--id`/`--exclude`/`--time` columns
/// left out of the features.
async fn labelled_table(spec: &TableSpec) -> Result<LabelledData> {
    let batch = read_table(&spec.path).await?;
    let file = spec.path.display().to_string();
    let schema = batch.schema();
    let column = |name: &str, role: &str| -> Result<usize> {
        schema.index_of(name).map_err(|_| {
            ArqError::Usage(format!(
                "{file}: no column `{name}` (given as {role}); the columns are {}",
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    };
    let label_index = column(&spec.label, "--label")?;
    let bad = parse_label(&file, &spec.label, batch.column(label_index))?;
    let mut left_out = vec![label_index];
    for id in &spec.ids {
        left_out.push(column(id, "--id")?);
    }
    for e in &spec.exclude {
        left_out.push(column(e, "--exclude")?);
    }
    let periods = match &spec.time {
        Some(t) => {
            let i = column(t, "--time")?;
            left_out.push(i);
            Some(parse_periods(&file, t, batch.column(i))?)
        }
        None => None,
    };
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|i| !left_out.contains(i))
        .collect();
    if keep.is_empty() {
        return Err(ArqError::Usage(format!(
            "{file}: no feature columns left besides the label, ids and exclusions"
        )));
    }
    Ok(LabelledData {
        source: file,
        kind: ModelKind::Table,
        label: spec.label.clone(),
        id_columns: spec.ids.clone(),
        features: batch.project(&keep)?,
        bad,
        periods,
        baseline: None,
        reason_texts: |_| None,
    })
}

/// Booleans, 0/1 numbers, or the words true/false, yes/no, bad/good.
fn parse_label(file: &str, name: &str, array: &ArrayRef) -> Result<Vec<bool>> {
    let bad_row = |row: usize, what: String| {
        ArqError::Usage(format!(
            "{file}, column `{name}`, row {}: {what}; a label is true/false, 1/0, yes/no or bad/good",
            row + 1
        ))
    };
    if let Some(row) = (0..array.len()).find(|&r| array.is_null(r)) {
        return Err(bad_row(row, "the label is empty".into()));
    }
    match array.data_type() {
        DataType::Boolean => Ok(array.as_boolean().iter().map(|v| v == Some(true)).collect()),
        t if t.is_numeric() => {
            let values = numeric_values(name, array)?;
            values
                .into_iter()
                .enumerate()
                .map(|(r, v)| match v {
                    Some(1.0) => Ok(true),
                    Some(0.0) => Ok(false),
                    other => Err(bad_row(r, format!("value {}", other.unwrap_or(f64::NAN)))),
                })
                .collect()
        }
        _ => {
            let text = cast(array, &DataType::Utf8)
                .map_err(|e| ArqError::Usage(format!("{file}, column `{name}`: {e}")))?;
            let text = text.as_string::<i32>();
            (0..text.len())
                .map(
                    |r| match text.value(r).trim().to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" | "bad" => Ok(true),
                        "false" | "0" | "no" | "good" => Ok(false),
                        other => Err(bad_row(r, format!("value '{other}'"))),
                    },
                )
                .collect()
        }
    }
}

/// A time column (dates, timestamps or whole numbers) as day numbers for the split.
fn parse_periods(file: &str, name: &str, array: &ArrayRef) -> Result<Vec<i32>> {
    let as_days = match array.data_type() {
        t if t.is_integer() => cast(array, &DataType::Int32),
        _ => cast(array, &DataType::Date32).and_then(|d| cast(&d, &DataType::Int32)),
    }
    .map_err(|_| {
        ArqError::Usage(format!(
            "{file}, column `{name}` (--time): type {} is not a date or a whole number",
            array.data_type()
        ))
    })?;
    let days = as_days.as_primitive::<Int32Type>();
    (0..days.len())
        .map(|r| {
            if days.is_valid(r) {
                Ok(days.value(r))
            } else {
                Err(ArqError::Usage(format!(
                    "{file}, column `{name}`, row {}: the time is empty",
                    r + 1
                )))
            }
        })
        .collect()
}

/// Scores a table file with a model: its id columns, pd, score and three reasons.
pub async fn score_table(model: &SessionModel, path: &Path) -> Result<(RecordBatch, f64)> {
    let batch = read_table(path).await?;
    let indices = model
        .model
        .bind(&batch.schema(), &model.name)
        .map_err(|e| ArqError::Usage(format!("{}: {e}", path.display())))?;
    let columns: Vec<ArrayRef> = indices.iter().map(|&i| batch.column(i).clone()).collect();
    let scored = model.model.score(&columns, 3)?;
    let psi = model.model.psi(&scored.pd);
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for id in &model.model.id_columns {
        if let Ok(i) = batch.schema().index_of(id) {
            fields.push(batch.schema().field(i).clone());
            arrays.push(batch.column(i).clone());
        }
    }
    fields.push(Field::new("pd", DataType::Float64, false));
    arrays.push(Arc::new(Float64Array::from(scored.pd)));
    fields.push(Field::new("score", DataType::Int32, false));
    arrays.push(Arc::new(Int32Array::from(
        scored.points.iter().map(|&p| p as i32).collect::<Vec<_>>(),
    )));
    for k in 0..3 {
        fields.push(Field::new(
            format!("reason_{}", k + 1),
            DataType::Utf8,
            true,
        ));
        arrays.push(Arc::new(StringArray::from(
            scored
                .reasons
                .iter()
                .map(|r| r.get(k).cloned())
                .collect::<Vec<_>>(),
        )));
    }
    Ok((
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?,
        psi,
    ))
}

/// Scores every customer of the warehouse snapshot on or before `as_of`; the PSI is over
/// the customers below late stage (the training population).
pub async fn score_warehouse(
    model: &SessionModel,
    warehouse: &Warehouse,
    as_of: AsOf,
) -> Result<(RecordBatch, f64)> {
    let batch = ScoredSnapshot::load(model, warehouse, as_of).await?.scores;
    let late = batch
        .column_by_name("late_stage")
        .map(|c| c.as_boolean().clone())
        .ok_or_else(|| ArqError::Usage("scores have no late_stage column".into()))?;
    let pd = batch
        .column_by_name("pd")
        .map(|c| c.as_primitive::<Float64Type>().clone());
    let pd: Vec<f64> = match pd {
        Some(pd) => (0..pd.len())
            .filter(|&r| !late.value(r))
            .map(|r| pd.value(r))
            .collect(),
        None => Vec::new(),
    };
    Ok((batch, model.model.psi(&pd)))
}

/// Writes scores to a file (format from `format`) or prints them.
pub fn write_scores(
    batch: RecordBatch,
    format: OutputFormat,
    out: Option<&Path>,
) -> Result<Vec<u8>> {
    let result = QueryResult {
        schema: batch.schema(),
        batches: vec![batch],
    };
    match out {
        Some(path) => {
            sql::write_result_to_file(&result, format, path)?;
            Ok(Vec::new())
        }
        None => {
            let mut buffer = Vec::new();
            sql::write_result(&result, format, &mut buffer)?;
            Ok(buffer)
        }
    }
}

fn days_since_epoch(date: chrono::NaiveDate) -> i32 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    (date - epoch).num_days() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Date32Array, Int64Array};

    #[test]
    fn labels_accept_booleans_numbers_and_words_and_name_bad_rows() {
        let b: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
        assert_eq!(parse_label("f", "y", &b).unwrap(), vec![true, false]);
        let n: ArrayRef = Arc::new(Int64Array::from(vec![1, 0, 1]));
        assert_eq!(parse_label("f", "y", &n).unwrap(), vec![true, false, true]);
        let w: ArrayRef = Arc::new(StringArray::from(vec!["Bad", "good", "yes"]));
        assert_eq!(parse_label("f", "y", &w).unwrap(), vec![true, false, true]);
        let x: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let err = parse_label("t.csv", "y", &x).unwrap_err().to_string();
        assert!(err.contains("t.csv, column `y`, row 2: value 2"), "{err}");
        let e: ArrayRef = Arc::new(StringArray::from(vec![Some("1"), None]));
        let err = parse_label("t.csv", "y", &e).unwrap_err().to_string();
        assert!(err.contains("row 2: the label is empty"), "{err}");
    }

    #[test]
    fn periods_accept_dates_and_whole_numbers() {
        let d: ArrayRef = Arc::new(Date32Array::from(vec![10, 20]));
        assert_eq!(parse_periods("f", "t", &d).unwrap(), vec![10, 20]);
        let n: ArrayRef = Arc::new(Int64Array::from(vec![202601, 202602]));
        assert_eq!(parse_periods("f", "t", &n).unwrap(), vec![202601, 202602]);
    }
}
