//! From table columns to the model's numeric design matrix.
//!
//! - Numeric columns (integers, floats, decimals, booleans as 0/1) are used as they are;
//!   a missing value (NULL or NaN) is replaced by the column's median over the training
//!   rows (0 when the training rows have no value at all).
//! - Text columns are one-hot encoded: one design column per level, for the 20 most
//!   frequent levels of the training rows (ties by name); NULL is the level `(missing)`.
//!   A level the model never saw (or one beyond the 20) sets none of the columns.
//!
//! Every design column is then standardized with the training mean and standard
//! deviation (a constant column keeps a deviation of 1).

use std::collections::HashMap;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use ndarray::{Array2, ArrayViewMut2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The level that stands for a NULL text value.
pub const MISSING_LEVEL: &str = "(missing)";
/// At most this many one-hot levels per text column.
pub const MAX_LEVELS: usize = 20;

/// How an input column becomes design columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Encoding {
    /// A number; missing values become `missing_value` (the training median).
    Numeric { missing_value: f64 },
    /// Text, one-hot encoded over `levels`.
    Categorical { levels: Vec<String> },
}

/// One input column of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// The column name.
    pub name: String,
    /// How it is encoded.
    #[serde(flatten)]
    pub encoding: Encoding,
    /// Reason text when a high value raises the PD (`{value}` / `{percent}` are filled in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_high: Option<String>,
    /// Reason text when a low value raises the PD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_low: Option<String>,
}

/// Whether an Arrow type is usable as a number, as text, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnClass {
    Numeric,
    Text,
}

impl ColumnClass {
    /// The class of a column type, `None` for types a model cannot use (dates, lists, ...).
    pub fn of(data_type: &DataType) -> Option<ColumnClass> {
        match data_type {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal32(_, _)
            | DataType::Decimal64(_, _)
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _)
            | DataType::Boolean
            | DataType::Null => Some(ColumnClass::Numeric),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(ColumnClass::Text),
            DataType::Dictionary(_, value) => ColumnClass::of(value),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ColumnClass::Numeric => "numeric",
            ColumnClass::Text => "text",
        }
    }
}

/// The values of a numeric column as floats; NULL and NaN are `None`.
pub fn numeric_values(name: &str, array: &ArrayRef) -> Result<Vec<Option<f64>>> {
    let floats = cast(array, &DataType::Float64)
        .map_err(|e| ModelError::Data(format!("column `{name}`: cannot read as a number: {e}")))?;
    let floats = floats.as_primitive::<Float64Type>();
    Ok((0..floats.len())
        .map(|i| (floats.is_valid(i) && !floats.value(i).is_nan()).then(|| floats.value(i)))
        .collect())
}

/// The values of a text column; NULL is `None`.
pub(crate) fn text_array(name: &str, array: &ArrayRef) -> Result<ArrayRef> {
    cast(array, &DataType::Utf8)
        .map_err(|e| ModelError::Data(format!("column `{name}`: cannot read as text: {e}")))
}

impl Feature {
    /// Fits the encoding of column `name` on the training rows `rows` of `array`.
    pub fn fit(name: &str, array: &ArrayRef, rows: &[usize]) -> Result<Feature> {
        let class = ColumnClass::of(array.data_type()).ok_or_else(|| {
            ModelError::Data(format!(
                "column `{name}` has type {}, which a model cannot use as a feature \
                 (numbers, booleans and text can be used); leave it out with --exclude {name}",
                array.data_type()
            ))
        })?;
        let encoding = match class {
            ColumnClass::Numeric => {
                let values = numeric_values(name, array)?;
                let mut present: Vec<f64> = rows.iter().filter_map(|&r| values[r]).collect();
                present.sort_by(f64::total_cmp);
                let missing_value = match present.len() {
                    0 => 0.0,
                    n if n % 2 == 1 => present[n / 2],
                    n => (present[n / 2 - 1] + present[n / 2]) / 2.0,
                };
                Encoding::Numeric { missing_value }
            }
            ColumnClass::Text => {
                let text = text_array(name, array)?;
                let text = text.as_string::<i32>();
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for &r in rows {
                    let level = if text.is_valid(r) {
                        text.value(r)
                    } else {
                        MISSING_LEVEL
                    };
                    *counts.entry(level).or_default() += 1;
                }
                if counts.len() > MAX_LEVELS && counts.len() * 2 > rows.len() {
                    return Err(ModelError::Data(format!(
                        "column `{name}` has {} different values in {} training rows: it looks like \
                         an identifier, not a feature; pass it with --id {name} or leave it out with \
                         --exclude {name}",
                        counts.len(),
                        rows.len()
                    )));
                }
                let mut levels: Vec<(&str, usize)> = counts.into_iter().collect();
                levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                levels.truncate(MAX_LEVELS);
                let mut levels: Vec<String> =
                    levels.into_iter().map(|(l, _)| l.to_string()).collect();
                levels.sort();
                Encoding::Categorical { levels }
            }
        };
        Ok(Feature {
            name: name.to_string(),
            encoding,
            reason_high: None,
            reason_low: None,
        })
    }

    /// What the data must give for this feature.
    pub fn class(&self) -> ColumnClass {
        match self.encoding {
            Encoding::Numeric { .. } => ColumnClass::Numeric,
            Encoding::Categorical { .. } => ColumnClass::Text,
        }
    }

    /// How many design columns it becomes.
    pub fn width(&self) -> usize {
        match &self.encoding {
            Encoding::Numeric { .. } => 1,
            Encoding::Categorical { levels } => levels.len(),
        }
    }

    /// The names of its design columns (`name`, or `name=level` for each level).
    pub fn design_names(&self) -> Vec<String> {
        match &self.encoding {
            Encoding::Numeric { .. } => vec![self.name.clone()],
            Encoding::Categorical { levels } => levels
                .iter()
                .map(|l| format!("{}={l}", self.name))
                .collect(),
        }
    }

    /// Checks that a data column can feed this feature.
    pub fn check_type(&self, data_type: &DataType, model: &str) -> Result<()> {
        let found = ColumnClass::of(data_type);
        if found == Some(self.class()) {
            return Ok(());
        }
        Err(ModelError::Artifact {
            path: model.to_string(),
            message: format!(
                "feature `{}` is {} in the model but the data's column has type {data_type}",
                self.name,
                self.class().describe()
            ),
        })
    }

    /// Writes the raw (unstandardized) design columns of every row of `array` into `out`
    /// (rows × `width()`).
    pub fn encode(&self, array: &ArrayRef, mut out: ArrayViewMut2<f64>) -> Result<()> {
        match &self.encoding {
            Encoding::Numeric { missing_value } => {
                let values = numeric_values(&self.name, array)?;
                for (row, v) in values.into_iter().enumerate() {
                    if let Some(v) = v.filter(|v| v.is_infinite()) {
                        return Err(ModelError::Data(format!(
                            "column `{}`, row {}: {v} is not a finite number",
                            self.name,
                            row + 1
                        )));
                    }
                    out[[row, 0]] = v.unwrap_or(*missing_value);
                }
            }
            Encoding::Categorical { levels } => {
                let index: HashMap<&str, usize> = levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.as_str(), i))
                    .collect();
                let text = text_array(&self.name, array)?;
                let text = text.as_string::<i32>();
                out.fill(0.0);
                for row in 0..text.len() {
                    let level = if text.is_valid(row) {
                        text.value(row)
                    } else {
                        MISSING_LEVEL
                    };
                    if let Some(&i) = index.get(level) {
                        out[[row, i]] = 1.0;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Encodes `columns` (one per feature, in order) into a rows × design-columns matrix.
pub fn design_matrix(features: &[Feature], columns: &[ArrayRef]) -> Result<Array2<f64>> {
    let rows = columns.first().map_or(0, |c| c.len());
    let width: usize = features.iter().map(Feature::width).sum();
    let mut x = Array2::<f64>::zeros((rows, width));
    let mut offset = 0;
    for (feature, column) in features.iter().zip(columns) {
        let w = feature.width();
        feature.encode(
            column,
            x.slice_axis_mut(Axis(1), (offset..offset + w).into()),
        )?;
        offset += w;
    }
    Ok(x)
}

/// Standardization of the design columns with the training rows' mean and deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Scaler {
    /// Fits on the rows of `x`.
    pub fn fit(x: &Array2<f64>) -> Scaler {
        let n = x.nrows().max(1) as f64;
        let mut mean = Vec::with_capacity(x.ncols());
        let mut std = Vec::with_capacity(x.ncols());
        for column in x.columns() {
            let m = column.iter().sum::<f64>() / n;
            let var = column.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
            mean.push(m);
            std.push(if var > 1e-24 { var.sqrt() } else { 1.0 });
        }
        Scaler { mean, std }
    }

    /// Standardizes `x` in place.
    pub fn transform(&self, x: &mut Array2<f64>) {
        for (j, mut column) in x.columns_mut().into_iter().enumerate() {
            let (m, s) = (self.mean[j], self.std[j]);
            column.mapv_inplace(|v| (v - m) / s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int32Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn numeric_missing_values_take_the_training_median() {
        let column: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.0),
            None,
            Some(3.0),
            Some(f64::NAN),
            Some(10.0),
            Some(2.0),
        ]));
        // Training rows 0, 2, 4, 5 → values 1, 3, 10, 2 → median (2 + 3) / 2.
        let feature = Feature::fit("x", &column, &[0, 1, 2, 4, 5]).unwrap();
        assert_eq!(feature.encoding, Encoding::Numeric { missing_value: 2.5 });
        let x = design_matrix(&[feature], &[column]).unwrap();
        assert_eq!(x.column(0).to_vec(), vec![1.0, 2.5, 3.0, 2.5, 10.0, 2.0]);
    }

    #[test]
    fn text_is_one_hot_with_a_missing_level_and_unknown_levels_set_nothing() {
        let train: ArrayRef = Arc::new(StringArray::from(vec![
            Some("b"),
            Some("a"),
            None,
            Some("a"),
        ]));
        let feature = Feature::fit("seg", &train, &[0, 1, 2, 3]).unwrap();
        assert_eq!(
            feature.design_names(),
            vec!["seg=(missing)", "seg=a", "seg=b"]
        );
        let score: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), Some("z"), None]));
        let x = design_matrix(&[feature], &[score]).unwrap();
        assert_eq!(x.row(0).to_vec(), vec![0.0, 1.0, 0.0]);
        assert_eq!(x.row(1).to_vec(), vec![0.0, 0.0, 0.0]);
        assert_eq!(x.row(2).to_vec(), vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn identifiers_and_unusable_types_are_refused_by_name() {
        let ids: ArrayRef = Arc::new(StringArray::from(
            (0..100).map(|i| format!("C{i}")).collect::<Vec<_>>(),
        ));
        let rows: Vec<usize> = (0..100).collect();
        let err = Feature::fit("customer_id", &ids, &rows)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`customer_id`") && err.contains("--id customer_id"),
            "{err}"
        );

        let dates: ArrayRef = Arc::new(datafusion::arrow::array::Date32Array::from(vec![1, 2]));
        let err = Feature::fit("since", &dates, &[0, 1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`since`") && err.contains("Date32"), "{err}");
    }

    #[test]
    fn scaler_standardizes_and_keeps_constant_columns_finite() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3]));
        let constant: ArrayRef = Arc::new(Int32Array::from(vec![5, 5, 5]));
        let features = [
            Feature::fit("a", &ints, &[0, 1, 2]).unwrap(),
            Feature::fit("b", &constant, &[0, 1, 2]).unwrap(),
        ];
        let mut x = design_matrix(&features, &[ints, constant]).unwrap();
        let scaler = Scaler::fit(&x);
        scaler.transform(&mut x);
        let a = x.column(0).to_vec();
        assert!((a[0] + a[2]).abs() < 1e-12 && a[1].abs() < 1e-12);
        assert!((a[2] - (1.5f64).sqrt()).abs() < 1e-12);
        assert_eq!(x.column(1).to_vec(), vec![0.0, 0.0, 0.0]);
    }
}
