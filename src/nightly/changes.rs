//! Today against yesterday: per queue and currency, how many accounts are new (not
//! eligible in the previous night's outputs), how many rolled into a worse aging bucket,
//! and how many of the previous night's accounts are resolved (no overdue today).
//!
//! The previous night is the newest `OUT/<date>/` before tonight's as-of date whose
//! manifest exists (a committed night); its `queues.parquet` is read. Without one, the
//! summary says so and the manifest has no comparison.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{ArqError, Result};

/// One account in a night's queues: its queue, currency and max days past due.
struct Account {
    queue: String,
    currency: String,
    max_dpd: i32,
}

/// The changes of one queue in one currency.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Accounts not eligible in the previous night.
    pub new: usize,
    /// Accounts in this queue the previous night with no overdue tonight.
    pub resolved: usize,
    /// Accounts eligible both nights whose oldest item moved to a worse aging bucket.
    pub rolled_worse: usize,
}

/// The comparison with the previous night.
#[derive(Debug, Default)]
pub struct Changes {
    /// The previous night's date.
    pub since: String,
    /// Per queue, then per currency.
    pub queues: BTreeMap<String, BTreeMap<String, Change>>,
}

/// The aging bucket of a max DPD (current, 1-30, 31-60, 61-90, 91-120, 121+) as a rank.
fn bucket(dpd: i32) -> usize {
    [0, 30, 60, 90, 120].iter().filter(|&&b| dpd > b).count()
}

/// The newest committed night before `as_of` under `out`, if any.
fn previous_night(out: &Path, as_of: NaiveDate) -> Option<(NaiveDate, std::path::PathBuf)> {
    let entries = std::fs::read_dir(out).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let date =
                NaiveDate::parse_from_str(&e.file_name().to_string_lossy(), "%Y-%m-%d").ok()?;
            let dir = e.path();
            (date < as_of
                && dir.join("manifest.json").is_file()
                && dir.join("queues.parquet").is_file())
            .then_some((date, dir))
        })
        .max_by_key(|(date, _)| *date)
}

/// The accounts of a night's `queues.parquet`, by customer.
fn read_accounts(path: &Path) -> Result<HashMap<String, Account>> {
    let file = File::open(path).map_err(|e| ArqError::io(path, e))?;
    let bad = |e: &dyn std::fmt::Display| {
        ArqError::Input(format!(
            "{}: cannot read the previous night's queues: {e}",
            path.display()
        ))
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(&e))?
        .build()
        .map_err(|e| bad(&e))?;
    let mut accounts = HashMap::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        let column = |name: &str, t: &DataType| -> Result<_> {
            let c = batch
                .column_by_name(name)
                .ok_or_else(|| bad(&format!("no column `{name}`")))?;
            Ok(cast(c, t)?)
        };
        let (ids, queues, currencies) = (
            column("customer_id", &DataType::Utf8)?,
            column("queue", &DataType::Utf8)?,
            column("currency", &DataType::Utf8)?,
        );
        let dpd = column("max_dpd", &DataType::Int32)?;
        let (ids, queues, currencies) = (
            ids.as_string::<i32>(),
            queues.as_string::<i32>(),
            currencies.as_string::<i32>(),
        );
        let dpd = dpd.as_primitive::<Int32Type>();
        for r in 0..batch.num_rows() {
            accounts.insert(
                ids.value(r).to_string(),
                Account {
                    queue: queues.value(r).to_string(),
                    currency: currencies.value(r).to_string(),
                    max_dpd: if dpd.is_valid(r) { dpd.value(r) } else { 0 },
                },
            );
        }
    }
    Ok(accounts)
}

/// Tonight's queues (`queues`) against the previous committed night under `out`.
pub fn against_previous(
    out: &Path,
    as_of: NaiveDate,
    queues: &RecordBatch,
) -> Result<Option<Changes>> {
    let Some((date, dir)) = previous_night(out, as_of) else {
        return Ok(None);
    };
    let before = read_accounts(&dir.join("queues.parquet"))?;
    let text = |name: &str| -> Result<_> {
        let c = queues
            .column_by_name(name)
            .ok_or_else(|| ArqError::Internal(format!("the queues have no column `{name}`")))?;
        Ok(cast(c, &DataType::Utf8)?)
    };
    let (ids, names, currencies) = (text("customer_id")?, text("queue")?, text("currency")?);
    let (ids, names, currencies) = (
        ids.as_string::<i32>(),
        names.as_string::<i32>(),
        currencies.as_string::<i32>(),
    );
    let dpd = queues
        .column_by_name("max_dpd")
        .ok_or_else(|| ArqError::Internal("the queues have no column `max_dpd`".into()))?;
    let dpd = cast(dpd, &DataType::Int32)?;
    let dpd = dpd.as_primitive::<Int32Type>();
    let mut changes = Changes {
        since: date.format("%Y-%m-%d").to_string(),
        queues: BTreeMap::new(),
    };
    let mut tonight = std::collections::HashSet::new();
    for r in 0..queues.num_rows() {
        tonight.insert(ids.value(r));
        let change = changes
            .queues
            .entry(names.value(r).to_string())
            .or_default()
            .entry(currencies.value(r).to_string())
            .or_default();
        match before.get(ids.value(r)) {
            None => change.new += 1,
            Some(then) if bucket(dpd.value(r)) > bucket(then.max_dpd) => change.rolled_worse += 1,
            Some(_) => {}
        }
    }
    for (id, then) in &before {
        if !tonight.contains(id.as_str()) {
            changes
                .queues
                .entry(then.queue.clone())
                .or_default()
                .entry(then.currency.clone())
                .or_default()
                .resolved += 1;
        }
    }
    Ok(Some(changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_default_bounds() {
        let ranks: Vec<usize> = [0, 1, 30, 31, 60, 61, 90, 91, 120, 121]
            .map(bucket)
            .to_vec();
        assert_eq!(ranks, [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]);
    }
}
