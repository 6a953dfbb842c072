//! A scored snapshot: every customer's PD, points and reasons at one snapshot, as one
//! batch of [`score_schema`] and as typed columns read by name, so that the queues, the
//! limits and the outputs never depend on the position of a column.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int32Array, RecordBatch,
    StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;

use crate::error::{ModelError, Result};
use crate::features::{
    LATE_STAGE_DPD, LATE_STAGE_REASON, numeric_column, snapshots_features_by_slice,
};
use crate::model::{ModelKind, RiskModel};
use arq_udfs::table_function::concat_owned;

/// The columns of a scored snapshot.
pub fn score_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("snapshot_date", DataType::Date32, false),
        Field::new("pd", DataType::Float64, false),
        Field::new("score", DataType::Int32, false),
        Field::new("reason_1", DataType::Utf8, true),
        Field::new("reason_2", DataType::Utf8, true),
        Field::new("reason_3", DataType::Utf8, true),
        Field::new("max_dpd", DataType::Int32, false),
        Field::new("late_stage", DataType::Boolean, false),
    ]))
}

/// The scores of one snapshot, by customer id: the batch and its columns, typed.
#[derive(Debug, Clone)]
pub struct Scores {
    /// The snapshot (days since 1970-01-01).
    pub day: i32,
    batch: RecordBatch,
    pub customer_id: StringArray,
    pub pd: Float64Array,
    pub score: Int32Array,
    /// `reason_1` to `reason_3`.
    pub reasons: [StringArray; 3],
    pub max_dpd: Int32Array,
    pub late_stage: BooleanArray,
}

impl Scores {
    /// Reads a batch of [`score_schema`] by column name; an error when one is missing or
    /// has another type.
    pub fn from_batch(day: i32, batch: RecordBatch) -> Result<Scores> {
        let column = |name: &str, wanted: &DataType| -> Result<ArrayRef> {
            let c = batch
                .column_by_name(name)
                .ok_or_else(|| ModelError::Data(format!("the scores have no column `{name}`")))?;
            if c.data_type() != wanted {
                return Err(ModelError::Data(format!(
                    "the scores' column `{name}` is {}, not {wanted}",
                    c.data_type()
                )));
            }
            Ok(c.clone())
        };
        let text = |name: &str| -> Result<StringArray> {
            Ok(column(name, &DataType::Utf8)?.as_string::<i32>().clone())
        };
        let int = |name: &str| -> Result<Int32Array> {
            Ok(column(name, &DataType::Int32)?
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                .clone())
        };
        Ok(Scores {
            day,
            customer_id: text("customer_id")?,
            pd: column("pd", &DataType::Float64)?
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .clone(),
            score: int("score")?,
            reasons: [text("reason_1")?, text("reason_2")?, text("reason_3")?],
            max_dpd: int("max_dpd")?,
            late_stage: column("late_stage", &DataType::Boolean)?
                .as_boolean()
                .clone(),
            batch,
        })
    }

    /// The batch, in [`score_schema`].
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The batch, in [`score_schema`], without the typed columns.
    pub fn into_batch(self) -> RecordBatch {
        self.batch
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// Whether no customer was scored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The reasons of row `r`, joined with `; ` (those present, in order).
    pub fn reason_text(&self, r: usize) -> String {
        self.reasons_of(r).collect::<Vec<_>>().join("; ")
    }

    /// Customer `r`'s reasons, strongest first (fewer than three when fewer apply).
    pub fn reasons_of(&self, r: usize) -> impl Iterator<Item = &str> {
        use datafusion::arrow::array::Array;
        self.reasons
            .iter()
            .filter(move |c| c.is_valid(r))
            .map(move |c| c.value(r))
    }

    /// The PDs of the customers below late stage (the training population, for PSI).
    pub fn pd_below_late_stage(&self) -> Vec<f64> {
        (0..self.len())
            .filter(|&r| !self.late_stage.value(r))
            .map(|r| self.pd.value(r))
            .collect()
    }
}

/// Scores every customer of one snapshot: PD, points and reasons; customers already 90+
/// days past due get PD 1 and the late-stage reason. Rows are ordered by customer.
pub async fn score_snapshot(
    session: &dyn Session,
    model: &RiskModel,
    model_name: &str,
    day: i32,
    slice: usize,
) -> Result<Scores> {
    let mut scores = score_snapshots(session, model, model_name, &[day], slice).await?;
    Ok(scores.remove(0))
}

/// [`score_snapshot`] for each of `days` (ascending, one or more; the nightly's first
/// night scores the previous snapshot for the credit review this way), one day after the
/// other. One feature query per slice for all the days (the general form, each event
/// joined to the days it counts for) read the events once, but a day alone takes the
/// one-snapshot form, which aggregates each customer's events without that join: two days
/// one after the other now cost less than both in one pass (benches/README.md, "ninth
/// session"). Each day's scores are those [`score_snapshot`] gives for it alone.
pub async fn score_snapshots(
    session: &dyn Session,
    model: &RiskModel,
    model_name: &str,
    days: &[i32],
    slice: usize,
) -> Result<Vec<Scores>> {
    if model.kind != ModelKind::WarehouseFeatures {
        return Err(ModelError::Artifact {
            path: model_name.to_string(),
            message: "trained on a table (arq train --table), not on warehouse features: \
                      score tables with `arq score --table`"
                .into(),
        });
    }
    let mut all = Vec::with_capacity(days.len());
    for &day in days {
        // Each slice's features scored as they come and dropped: the features of every
        // customer are never held at once (on a first night at a million customers, two
        // snapshots' features and their copies by day were held whole at the end of the
        // scoring, then the night's peak; benches/README.md, "The night's memory").
        let mut scored: Vec<RecordBatch> = Vec::new();
        snapshots_features_by_slice(session, day, day, slice, |part| {
            if part.num_rows() > 0 {
                scored.push(score_features(model, model_name, &part, day)?.into_batch());
            }
            Ok(())
        })
        .await?;
        all.push(Scores::from_batch(
            day,
            concat_owned(&score_schema(), scored)?,
        )?);
    }
    Ok(all)
}

/// Scores the feature rows of one snapshot `day`.
fn score_features(
    model: &RiskModel,
    model_name: &str,
    features: &RecordBatch,
    day: i32,
) -> Result<Scores> {
    let indices = model.bind(&features.schema(), model_name)?;
    let columns: Vec<ArrayRef> = indices
        .iter()
        .map(|&i| features.column(i).clone())
        .collect();
    let scored = model.score(&columns, 3)?;
    let max_dpd = numeric_column(features, "max_dpd")?;
    let n = features.num_rows();
    let mut pd = scored.pd;
    let mut points = scored.points;
    let mut reasons = scored.reasons;
    let late: Vec<bool> = (0..n).map(|r| max_dpd.value(r) >= LATE_STAGE_DPD).collect();
    for r in (0..n).filter(|&r| late[r]) {
        pd[r] = 1.0;
        points[r] = model.scorecard.points_i32(1.0)?;
        reasons[r] = vec![LATE_STAGE_REASON.to_string()];
    }
    let reason = |k: usize| -> ArrayRef {
        Arc::new(StringArray::from(
            reasons
                .iter()
                .map(|r| r.get(k).cloned())
                .collect::<Vec<_>>(),
        ))
    };
    let id_column = features
        .schema()
        .index_of("customer_id")
        .map_err(|_| ModelError::Data("the features have no column `customer_id`".into()))?;
    let columns: Vec<ArrayRef> = vec![
        cast(features.column(id_column), &DataType::Utf8)?,
        Arc::new(Date32Array::from(vec![day; n])),
        Arc::new(Float64Array::from(pd)),
        Arc::new(Int32Array::from(points)),
        reason(0),
        reason(1),
        reason(2),
        Arc::new(Int32Array::from(
            (0..n).map(|r| max_dpd.value(r) as i32).collect::<Vec<_>>(),
        )),
        Arc::new(BooleanArray::from(late)),
    ];
    Scores::from_batch(day, RecordBatch::try_new(score_schema(), columns)?)
}
