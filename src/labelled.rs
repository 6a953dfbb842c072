//! Labelled tables for `arq train --table` and `arq score --table`: any Parquet or CSV
//! file, its label read as true/false, 1/0, yes/no or bad/good, its time column as days;
//! a bad value is an error naming the file, the column and the row.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arq_models::encoding::numeric_values;
use arq_models::{LabelledData, ModelKind};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Int32Type, Schema};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};

use crate::error::{ArqError, Result, one_line};

/// A labelled table for `arq train --table`.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub path: PathBuf,
    pub label: String,
    pub ids: Vec<String>,
    pub exclude: Vec<String>,
    pub time: Option<String>,
}

/// Reads a Parquet or CSV file as one batch.
pub async fn read_table(path: &Path) -> Result<RecordBatch> {
    let ctx = SessionContext::new();
    let name = path.display().to_string();
    if !path.is_file() {
        return Err(ArqError::Input(format!("{name}: no such file")));
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
            return Err(ArqError::Input(format!(
                "{name}: tables are read from .parquet or .csv files"
            )));
        }
    }
    .map_err(|e| ArqError::Input(format!("{name}: {}", one_line(&e.to_string()))))?;
    let schema: Arc<Schema> = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame
        .collect()
        .await
        .map_err(|e| ArqError::Input(format!("{name}: {}", one_line(&e.to_string()))))?;
    Ok(concat_batches(&schema, &batches)?)
}

/// A labelled table: the label column as booleans, `--id`/`--exclude`/`--time` columns
/// left out of the features.
pub async fn labelled_table(spec: &TableSpec) -> Result<LabelledData> {
    let batch = read_table(&spec.path).await?;
    let file = spec.path.display().to_string();
    let schema = batch.schema();
    let column = |name: &str, role: &str| -> Result<usize> {
        schema.index_of(name).map_err(|_| {
            ArqError::Input(format!(
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
        return Err(ArqError::Input(format!(
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
        ArqError::Input(format!(
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
                .map_err(|e| ArqError::Input(format!("{file}, column `{name}`: {e}")))?;
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
        ArqError::Input(format!(
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
                Err(ArqError::Input(format!(
                    "{file}, column `{name}`, row {}: the time is empty",
                    r + 1
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Date32Array, Int64Array, StringArray};

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
