//! The nightly job's history: which customers each night carried over because their
//! collector's list was full (the collectors' days over capacity: `carry_over.csv` of
//! every committed night under the nightly's output folder; a night's folder appears
//! whole or not at all, so a folder there is a finished night), and the scores each night
//! computed (`scores.parquet`), which the report reads instead of scoring a snapshot again
//! when the night used the same model, and the portfolio series of the months of the
//! newest night's report (`portfolio_facts.json`, [`KeptFacts`]), which the report reads
//! instead of computing those months again.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arq_models::backtest::{BacktestRow, backtest_rows};
use arq_models::scores::Scores;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::portfolio::KeptFacts;
use crate::error::{ArqError, Result};

/// The queue of customers a collector's capacity could not take.
const CARRY_OVER: &str = "carry_over";

/// The file in which a night keeps its months' portfolio series ([`KeptFacts`]).
pub const PORTFOLIO_FACTS: &str = "portfolio_facts.json";

/// The table in which a night keeps the 90-day outcomes its report read
/// (`outcomes.parquet`: `snapshot_date`, `customer_id`, `went_bad`).
pub const OUTCOMES: &str = "outcomes";

/// Each labelled snapshot's outcomes (days since 1970 → a batch of `customer_id` (Utf8)
/// and `went_bad` (Boolean)).
pub type Outcomes = BTreeMap<i32, RecordBatch>;

/// Carried-over customers per night (`YYYY-MM-DD` → customer ids), and where the nights'
/// scores are.
#[derive(Debug, Clone, Default)]
pub struct Nights {
    pub carried: BTreeMap<String, Vec<String>>,
    /// Where the nights are read (None: no history given); not shown in the report.
    history: Option<History>,
    /// The fingerprint of the model whose scores, limits and backtest rows count (None:
    /// no model, so none of them do).
    model: Option<String>,
    /// Tonight's scores (the nightly's own report).
    tonight: Option<Scores>,
}

/// The output folder and the report's snapshot (nights after it are not read).
#[derive(Debug, Clone)]
struct History {
    out: PathBuf,
    until: String,
}

impl Nights {
    /// The nights under `out` dated after `after` and on or before `until`; their scores
    /// count when they were computed by the model of fingerprint `model`.
    pub fn read(out: &Path, after: &str, until: &str, model: Option<&str>) -> Result<Nights> {
        let mut nights = Nights {
            carried: BTreeMap::new(),
            history: Some(History {
                out: out.to_path_buf(),
                until: until.to_string(),
            }),
            model: model.map(str::to_string),
            tonight: None,
        };
        let entries = match std::fs::read_dir(out) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(nights),
            Err(e) => return Err(ArqError::io(out, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| ArqError::io(out, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_night(&name) || name.as_str() <= after || name.as_str() > until {
                continue;
            }
            let file = entry.path().join("carry_over.csv");
            let text = std::fs::read_to_string(&file).map_err(|e| ArqError::io(&file, e))?;
            nights.carried.insert(name, carried_in_csv(&text, &file)?);
        }
        Ok(nights)
    }

    /// Adds tonight's carried-over customers from the night's queues.
    pub fn add_tonight(&mut self, night: &str, queues: &RecordBatch) -> Result<()> {
        let column = |name: &str| -> Result<_> {
            let array = queues
                .column_by_name(name)
                .ok_or_else(|| ArqError::Internal(format!("the queues have no `{name}`")))?;
            Ok(cast(array, &DataType::Utf8)?)
        };
        let (queue, customer) = (column("queue")?, column("customer_id")?);
        let (queue, customer) = (queue.as_string::<i32>(), customer.as_string::<i32>());
        let carried = (0..queues.num_rows())
            .filter(|&r| queue.value(r) == CARRY_OVER)
            .map(|r| customer.value(r).to_string())
            .collect();
        self.carried.insert(night.to_string(), carried);
        Ok(())
    }

    /// Adds tonight's scores.
    pub fn add_tonight_scores(&mut self, scores: &Scores) {
        self.tonight = Some(scores.clone());
    }

    /// Whether the nightly's history was given.
    pub fn given(&self) -> bool {
        self.history.is_some()
    }

    /// The output folder and the model's fingerprint, when both are given.
    fn scored(&self) -> Option<(&Path, &str)> {
        Some((&self.history.as_ref()?.out, self.model.as_deref()?))
    }

    /// The scores of snapshot `day` as a night computed them with the report's model:
    /// tonight's, or a committed night's under the output folder (None when there is no
    /// such night).
    pub fn scores(&self, day: i32) -> Option<Scores> {
        if let Some(tonight) = self.tonight.as_ref().filter(|s| s.day == day) {
            return Some(tonight.clone());
        }
        let (out, model) = self.scored()?;
        scores_of_night(out, day, model)
    }

    /// The backtest rows the newest committed night keeps (`backtest.parquet`), when it
    /// was made with the report's model and the policy of fingerprint `policy`: each night
    /// keeps the rows its report showed. Empty when there is no such night.
    pub fn backtest(&self, policy: &str) -> Vec<BacktestRow> {
        let Some((_, model)) = self.scored() else {
            return Vec::new();
        };
        self.newest_night()
            .filter(|dir| made_with(dir, model, Some(policy)))
            .and_then(|dir| read_parquet(&dir.join("backtest.parquet")))
            .and_then(|batch| backtest_rows(&batch).ok())
            .unwrap_or_default()
    }

    /// The labelled snapshots' 90-day outcomes the newest committed night kept (the
    /// outcomes its report read: `outcomes.parquet`). They are the warehouse's, whatever
    /// the model. Empty without such a night.
    pub fn outcomes(&self) -> Outcomes {
        self.newest_night()
            .and_then(|dir| read_parquet(&dir.join(format!("{OUTCOMES}.parquet"))))
            .and_then(|batch| outcomes_of_batch(&batch).ok())
            .unwrap_or_default()
    }

    /// The folder of the newest committed night on or before the report's snapshot.
    fn newest_night(&self) -> Option<PathBuf> {
        let history = self.history.as_ref()?;
        std::fs::read_dir(&history.out)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_night(n) && n.as_str() <= history.until.as_str())
            .max()
            .map(|night| history.out.join(night))
    }

    /// The portfolio series the newest committed night on or before the report's snapshot
    /// kept (`portfolio_facts.json`: every month of its report's range); empty when there
    /// is no such night or its file does not read as facts.
    pub fn kept_facts(&self) -> KeptFacts {
        self.newest_night()
            .and_then(|dir| read_facts(&dir))
            .unwrap_or_default()
    }

    /// The portfolio series the committed night `night` (`YYYY-MM-DD`) kept (None when
    /// there is no such night, or its file does not read as facts).
    pub fn facts_of_night(&self, night: &str) -> Option<KeptFacts> {
        if !is_night(night) {
            return None;
        }
        read_facts(&self.history.as_ref()?.out.join(night))
    }

    /// The credit-limit recommendations of snapshot `day` as its night made them with the
    /// report's model and the policy of fingerprint `policy` (None when no such night).
    pub fn limits(&self, day: i32, policy: &str) -> Option<RecordBatch> {
        let (out, model) = self.scored()?;
        limits_of_night(out, day, model, policy)
    }
}

/// The credit-limit recommendations (`limits.parquet`, `arq limits`' rows) of the committed
/// night `day` under `out` when that night used the model of fingerprint `model` and the
/// policy of fingerprint `policy`. `None` otherwise.
pub fn limits_of_night(out: &Path, day: i32, model: &str, policy: &str) -> Option<RecordBatch> {
    let dir = night_dir(out, day)?;
    made_with(&dir, model, Some(policy)).then(|| read_parquet(&dir.join("limits.parquet")))?
}

/// The portfolio series kept in the night folder `dir`.
fn read_facts(dir: &Path) -> Option<KeptFacts> {
    let bytes = std::fs::read(dir.join(PORTFOLIO_FACTS)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn night_dir(out: &Path, day: i32) -> Option<PathBuf> {
    let date = arq_udfs::dates::from_days(day)?;
    Some(out.join(date.format("%Y-%m-%d").to_string()))
}

/// Whether a folder name is a night's (`YYYY-MM-DD`).
fn is_night(name: &str) -> bool {
    name.len() == 10 && arq_udfs::dates::parse(name).is_some()
}

/// Whether the night in `dir` used the model of fingerprint `model` (and the policy of
/// fingerprint `policy`, when given), as its manifest says.
fn made_with(dir: &Path, model: &str, policy: Option<&str>) -> bool {
    let Some(manifest) = std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
    else {
        return false;
    };
    manifest["model"]["fingerprint"].as_str() == Some(model)
        && policy.is_none_or(|p| manifest["policy"]["fingerprint"].as_str() == Some(p))
}

/// One Parquet file as one batch (None when it cannot be read).
fn read_parquet(path: &Path) -> Option<RecordBatch> {
    let file = File::open(path).ok()?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .ok()?
        .build()
        .ok()?;
    let batches: Vec<RecordBatch> = reader.collect::<std::result::Result<_, _>>().ok()?;
    datafusion::arrow::compute::concat_batches(&batches.first()?.schema(), &batches).ok()
}

/// The scores of the committed night `day` under `out` when that night was scored with
/// the model of fingerprint `model` (its manifest says so): the same snapshot and model
/// give the same scores, so they are read instead of computed again. `None` when there is
/// no such night or its files do not read as scores.
pub fn scores_of_night(out: &Path, day: i32, model: &str) -> Option<Scores> {
    let dir = night_dir(out, day)?;
    if !made_with(&dir, model, None) {
        return None;
    }
    Scores::from_batch(day, read_parquet(&dir.join("scores.parquet"))?).ok()
}

/// The outcomes as one table, by snapshot then customer (`outcomes.parquet`).
pub fn outcomes_batch(outcomes: &Outcomes) -> Result<RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, Date32Array};
    use datafusion::arrow::datatypes::{Field, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new("snapshot_date", DataType::Date32, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("went_bad", DataType::Boolean, false),
    ]));
    let mut parts = Vec::new();
    for (day, batch) in outcomes {
        let days: ArrayRef = Arc::new(Date32Array::from(vec![*day; batch.num_rows()]));
        let mut columns = vec![days];
        columns.extend(batch.columns().iter().cloned());
        parts.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(datafusion::arrow::compute::concat_batches(&schema, &parts)?)
}

/// The outcomes of an `outcomes.parquet` table, split by snapshot.
fn outcomes_of_batch(batch: &RecordBatch) -> Result<Outcomes> {
    use datafusion::arrow::datatypes::{Date32Type, Field, Schema};
    let column = |name: &str, kind: &DataType| -> Result<_> {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| ArqError::Input(format!("{OUTCOMES}.parquet: no column `{name}`")))?;
        Ok(cast(array, kind)?)
    };
    let days = column("snapshot_date", &DataType::Date32)?;
    let pair = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("went_bad", DataType::Boolean, false),
    ]));
    let columns = vec![
        column("customer_id", &DataType::Utf8)?,
        column("went_bad", &DataType::Boolean)?,
    ];
    if columns.iter().any(|c| c.null_count() > 0) {
        return Err(ArqError::Input(format!(
            "{OUTCOMES}.parquet: a missing value"
        )));
    }
    let whole = RecordBatch::try_new(pair, columns)?;
    let days = days.as_primitive::<Date32Type>();
    let mut outcomes = Outcomes::new();
    let mut start = 0;
    for row in 1..=days.len() {
        if row == days.len() || days.value(row) != days.value(start) {
            let part = whole.slice(start, row - start);
            if outcomes.insert(days.value(start), part).is_some() {
                return Err(ArqError::Input(format!(
                    "{OUTCOMES}.parquet: the rows of a snapshot are not together"
                )));
            }
            start = row;
        }
    }
    Ok(outcomes)
}

/// The customer ids of a `carry_over.csv` whose queue is `carry_over`.
fn carried_in_csv(text: &str, file: &Path) -> Result<Vec<String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let bad = |what: String| ArqError::Input(format!("{}: {what}", file.display()));
    let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let position = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(format!("no column `{name}`")))
    };
    let (queue, customer) = (position("queue")?, position("customer_id")?);
    let mut carried = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(format!("row {}: {e}", i + 2)))?;
        if record.get(queue) == Some(CARRY_OVER) {
            carried.push(record.get(customer).unwrap_or_default().to_string());
        }
    }
    Ok(carried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_collectors_carry_over_counts() {
        let text = "queue,rank,customer_id\n\
                    carry_over,1,C1\n\
                    supervisor:carry_over,1,C2\n\
                    carry_over,2,C3\n";
        assert_eq!(
            carried_in_csv(text, Path::new("x.csv")).unwrap(),
            vec!["C1".to_string(), "C3".into()]
        );
    }

    #[test]
    fn nights_are_read_between_the_dates_only() {
        let dir = tempfile::tempdir().unwrap();
        for night in ["2026-09-30", "2026-10-15", "2026-10-31", "2026-11-30"] {
            std::fs::create_dir(dir.path().join(night)).unwrap();
            std::fs::write(
                dir.path().join(night).join("carry_over.csv"),
                "queue,customer_id\ncarry_over,C9\n",
            )
            .unwrap();
        }
        std::fs::create_dir(dir.path().join(".2026-10-20.partial-1")).unwrap();
        let nights = Nights::read(dir.path(), "2026-09-30", "2026-10-31", None).unwrap();
        let dates: Vec<&String> = nights.carried.keys().collect();
        assert_eq!(dates, ["2026-10-15", "2026-10-31"]);
    }
}
