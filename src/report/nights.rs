//! The nightly job's history, for the collectors' days over capacity: which customers
//! each night carried over because their collector's list was full (`carry_over.csv` of
//! every committed night under the nightly's output folder; a night's folder appears
//! whole or not at all, so a folder there is a finished night).

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use crate::error::{ArqError, Result};

/// The queue of customers a collector's capacity could not take.
const CARRY_OVER: &str = "carry_over";

/// Carried-over customers per night (`YYYY-MM-DD` → customer ids).
#[derive(Debug, Clone, Default)]
pub struct Nights {
    pub carried: BTreeMap<String, Vec<String>>,
    /// Where they were read (None: no history given); not shown in the report.
    pub source: Option<String>,
}

impl Nights {
    /// The nights under `out` dated after `after` and on or before `until`.
    pub fn read(out: &Path, after: &str, until: &str) -> Result<Nights> {
        let mut nights = Nights {
            carried: BTreeMap::new(),
            source: Some(out.display().to_string()),
        };
        let entries = match std::fs::read_dir(out) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(nights),
            Err(e) => return Err(ArqError::io(out, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| ArqError::io(out, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let dated = arq_udfs::dates::parse(&name).is_some() && name.len() == 10;
            if !dated || name.as_str() <= after || name.as_str() > until {
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
        let nights = Nights::read(dir.path(), "2026-09-30", "2026-10-31").unwrap();
        let dates: Vec<&String> = nights.carried.keys().collect();
        assert_eq!(dates, ["2026-10-15", "2026-10-31"]);
    }
}
