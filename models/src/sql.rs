//! The model in SQL:
//!
//! - `risk_score(f1, …, fn)` → PD, `risk_points(f1, …, fn)` → scorecard points and
//!   `risk_reasons(f1, …, fn)` → the top 3 reasons, with the model's features in its
//!   order (`arq functions risk_score` lists them);
//! - `scorecard_points(pd [, points, odds, pdo])` for any PD and any scaling;
//! - table functions `customer_features(from [, to])`, `risk_labels(from [, to])` and
//!   `risk_scores([as_of])` (warehouse models) over the session's warehouse.

use std::fmt::Debug;
use std::sync::{Arc, LazyLock};

use arq_udfs::FunctionDoc;
use arq_udfs::dates;
use arq_udfs::table_function::{Metric, MetricTable, Wanted, collect_sql, date_arg};
use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, ListBuilder, RecordBatch, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::encoding::ColumnClass;
use crate::features::{self, FEATURE_COLUMNS, LABEL, TEXT_FEATURES};
use crate::model::{RiskModel, Scorecard};
use crate::scores::{score_schema, score_snapshot};
use crate::snapshots::Snapshots;

const SECTION: DocSection = DocSection {
    include: true,
    label: "Risk Model Functions",
    description: None,
};

/// A model loaded for a session, with the name its messages use.
#[derive(Debug, Clone)]
pub struct SessionModel {
    pub model: Arc<RiskModel>,
    pub name: String,
}

/// The one entry point for a session over a warehouse: arq-udfs' scalar, aggregate and
/// table functions, then the model functions ([`register`]); `snapshots` are the
/// warehouse's, for `risk_scores([as_of])`.
pub fn register_session(
    ctx: &mut SessionContext,
    model: Option<&SessionModel>,
    snapshots: &Snapshots,
) -> Result<()> {
    arq_udfs::register_session(ctx)?;
    register(ctx, model, snapshots)
}

/// Registers the model functions in `ctx`: `scorecard_points`, `customer_features` and
/// `risk_labels` always; `risk_score`, `risk_points`, `risk_reasons` and `risk_scores`
/// when a model is given (`risk_scores` resolves its snapshot in `snapshots`).
pub fn register(
    ctx: &SessionContext,
    model: Option<&SessionModel>,
    snapshots: &Snapshots,
) -> Result<()> {
    for udf in scalar_functions(model) {
        ctx.register_udf(udf);
    }
    ctx.register_udtf("customer_features", Arc::new(CustomerFeaturesFunction));
    ctx.register_udtf("risk_labels", Arc::new(RiskLabelsFunction));
    if let Some(m) = model {
        ctx.register_udtf(
            "risk_scores",
            Arc::new(RiskScoresFunction {
                model: m.clone(),
                snapshots: snapshots.clone(),
            }),
        );
    }
    Ok(())
}

/// The scalar functions `register` adds: `scorecard_points`, and `risk_score`,
/// `risk_points` and `risk_reasons` of `model` when one is given (what a cluster's
/// scheduler and executors register, the table functions being planned by the client).
pub fn scalar_functions(model: Option<&SessionModel>) -> Vec<ScalarUDF> {
    let mut udfs = vec![ScalarUDF::new_from_impl(ScorecardPoints::new())];
    if let Some(m) = model {
        for output in [Output::Pd, Output::Points, Output::Reasons] {
            udfs.push(ScalarUDF::new_from_impl(ModelFunction::new(
                m.clone(),
                output,
            )));
        }
    }
    udfs
}

/// Documentation of every function `register` adds for `model`.
pub fn documentation(model: Option<&SessionModel>) -> Vec<FunctionDoc> {
    let mut docs = vec![
        FunctionDoc {
            name: "scorecard_points".into(),
            kind: "scalar",
            documentation: ScorecardPoints::new().doc.clone(),
        },
        FunctionDoc {
            name: "customer_features".into(),
            kind: "table",
            documentation: customer_features_doc(),
        },
        FunctionDoc {
            name: "risk_labels".into(),
            kind: "table",
            documentation: risk_labels_doc(),
        },
    ];
    if let Some(m) = model {
        for output in [Output::Pd, Output::Points, Output::Reasons] {
            let f = ModelFunction::new(m.clone(), output);
            docs.push(FunctionDoc {
                name: output.name().into(),
                kind: "scalar",
                documentation: f.doc.clone(),
            });
        }
        docs.push(FunctionDoc {
            name: "risk_scores".into(),
            kind: "table",
            documentation: risk_scores_doc(m),
        });
    }
    docs
}

/// What a model function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    Pd,
    Points,
    Reasons,
}

impl Output {
    fn name(self) -> &'static str {
        match self {
            Output::Pd => "risk_score",
            Output::Points => "risk_points",
            Output::Reasons => "risk_reasons",
        }
    }
}

/// `risk_score`, `risk_points` and `risk_reasons` for one model.
#[derive(Debug)]
struct ModelFunction {
    model: SessionModel,
    output: Output,
    signature: Signature,
    doc: Documentation,
}

impl PartialEq for ModelFunction {
    fn eq(&self, other: &Self) -> bool {
        self.output == other.output && Arc::ptr_eq(&self.model.model, &other.model.model)
    }
}
impl Eq for ModelFunction {}
impl std::hash::Hash for ModelFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.output.hash(state);
        self.model.name.hash(state);
    }
}

impl ModelFunction {
    fn new(model: SessionModel, output: Output) -> Self {
        let arguments = model.model.feature_names().join(", ");
        let (what, returns) = match output {
            Output::Pd => (
                "Probability that the customer goes bad",
                "a number in [0, 1]",
            ),
            Output::Points => (
                "Scorecard points of the probability of going bad (higher = safer)",
                "whole points",
            ),
            Output::Reasons => (
                "The (at most three) features that push the probability of going bad up the most, in words",
                "a list of text",
            ),
        };
        let s = model.model.scorecard;
        let doc = Documentation::builder(
            SECTION,
            format!(
                "{what}, by the model {} ({returns}). Takes the model's features in this order: \
                 {arguments}. Scorecard: {} points at {}:1 odds, {} points to double the odds. \
                 customer_features() returns the features of a warehouse snapshot.",
                model.name, s.points, s.odds, s.pdo
            ),
            format!("{}({arguments})", output.name()),
        )
        .with_sql_example(format!(
            "```sql\n> SELECT customer_id, {}({arguments})\n  FROM customer_features('2026-10-31');\n```",
            output.name()
        ))
        .build();
        ModelFunction {
            model,
            output,
            signature: Signature::variadic_any(Volatility::Immutable),
            doc,
        }
    }
}

impl ScalarUDFImpl for ModelFunction {
    fn name(&self) -> &str {
        self.output.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let model = &self.model.model;
        if arg_types.len() != model.features.len() {
            return plan_err!(
                "{}: the model {} takes {} features ({}), got {} arguments",
                self.name(),
                self.model.name,
                model.features.len(),
                model.feature_names().join(", "),
                arg_types.len()
            );
        }
        for (i, (feature, t)) in model.features.iter().zip(arg_types).enumerate() {
            let found = ColumnClass::of(t);
            if found != Some(feature.class()) && *t != DataType::Null {
                return plan_err!(
                    "{}: argument {} is feature `{}`, which must be {}, got {t}",
                    self.name(),
                    i + 1,
                    feature.name,
                    if feature.class() == ColumnClass::Numeric {
                        "a number"
                    } else {
                        "text"
                    }
                );
            }
        }
        Ok(match self.output {
            Output::Pd => DataType::Float64,
            Output::Points => DataType::Int32,
            Output::Reasons => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let model = &self.model.model;
        let result: ArrayRef = match self.output {
            Output::Pd => Arc::new(Float64Array::from(model.probabilities(&arrays)?)),
            Output::Points => {
                let points = model.points(&arrays).map_err(|e| {
                    datafusion::error::DataFusionError::Execution(format!("risk_points: {e}"))
                })?;
                Arc::new(Int32Array::from(points))
            }
            Output::Reasons => {
                let scored = model.score(&arrays, 3)?;
                let mut builder = ListBuilder::new(StringBuilder::new());
                for reasons in scored.reasons {
                    for r in reasons {
                        builder.values().append_value(r);
                    }
                    builder.append(true);
                }
                Arc::new(builder.finish())
            }
        };
        Ok(ColumnarValue::Array(result))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.doc)
    }
}

/// `scorecard_points(pd [, points, odds, pdo])`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ScorecardPoints {
    signature: Signature,
    doc: Documentation,
}

impl ScorecardPoints {
    fn new() -> Self {
        ScorecardPoints {
            signature: Signature::variadic_any(Volatility::Immutable),
            doc: Documentation::builder(
                SECTION,
                "Scorecard points of a probability of going bad: offset + factor × ln((1 − pd) / pd), \
                 factor = pdo / ln 2, offset such that `odds`:1 good:bad odds score `points`. \
                 Defaults: 600 points at 50:1, 20 points to double the odds. PDs are kept within \
                 [0.000001, 0.999999]; NULL gives NULL.",
                "scorecard_points(pd [, points, odds, pdo])",
            )
            .with_argument("pd", "Probability of going bad, between 0 and 1.")
            .with_argument("points", "Optional constant: points at the reference odds (600).")
            .with_argument("odds", "Optional constant: the reference good:bad odds (50).")
            .with_argument("pdo", "Optional constant: points to double the odds (20).")
            .with_sql_example(
                "```sql\n> SELECT scorecard_points(0.02), scorecard_points(0.02, 500, 20, 40);\n```",
            )
            .build(),
        }
    }
}

impl ScalarUDFImpl for ScorecardPoints {
    fn name(&self) -> &str {
        "scorecard_points"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() != 1 && arg_types.len() != 4 {
            return plan_err!(
                "scorecard_points takes (pd) or (pd, points, odds, pdo), got {} arguments",
                arg_types.len()
            );
        }
        for t in arg_types {
            if ColumnClass::of(t) != Some(ColumnClass::Numeric) || *t == DataType::Boolean {
                return plan_err!("scorecard_points: arguments must be numbers, got {t}");
            }
        }
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut scorecard = Scorecard::default();
        if args.args.len() == 4 {
            let constant = |i: usize, name: &str| -> Result<f64> {
                match &args.args[i] {
                    ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Float64)? {
                        ScalarValue::Float64(Some(v)) => Ok(v),
                        _ => exec_err!("scorecard_points: {name} must not be NULL"),
                    },
                    ColumnarValue::Array(_) => {
                        exec_err!("scorecard_points: {name} must be a constant")
                    }
                }
            };
            scorecard = Scorecard {
                points: constant(1, "points")?,
                odds: constant(2, "odds")?,
                pdo: constant(3, "pdo")?,
            };
            scorecard.validate().map_err(|e| {
                datafusion::error::DataFusionError::Execution(format!("scorecard_points: {e}"))
            })?;
        }
        let pd = args.args[0].to_array(args.number_rows)?;
        let pd = cast(&pd, &DataType::Float64)?;
        let pd = pd.as_any().downcast_ref::<Float64Array>().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("pd is not Float64".into())
        })?;
        let points: Int32Array = pd
            .iter()
            .map(|p| p.map(|p| scorecard.points_i32(p)).transpose())
            .collect::<crate::Result<_>>()
            .map_err(|e| {
                datafusion::error::DataFusionError::Execution(format!("scorecard_points: {e}"))
            })?;
        Ok(ColumnarValue::Array(Arc::new(points)))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.doc)
    }
}

/// The schema of `customer_features`.
pub fn features_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("snapshot_date", DataType::Date32, false),
        ];
        fields.extend(FEATURE_COLUMNS.iter().map(|c| {
            if TEXT_FEATURES.contains(c) {
                Field::new(*c, DataType::Utf8, false)
            } else {
                Field::new(*c, DataType::Float64, true)
            }
        }));
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

fn labels_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("snapshot_date", DataType::Date32, false),
        Field::new(LABEL, DataType::Boolean, true),
    ]))
}

/// Casts the columns of a query's result to a declared schema (strings may arrive as
/// views, counts as other integer types).
fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return exec_err!(
            "expected {} columns, the query gave {}",
            schema.fields().len(),
            batch.num_columns()
        );
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast(c, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

fn concat(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    let batches = batches
        .into_iter()
        .map(|b| conform(b, schema))
        .collect::<Result<Vec<_>>>()?;
    Ok(datafusion::arrow::compute::concat_batches(
        schema, &batches,
    )?)
}

fn range_args(function: &str, exprs: &[Expr]) -> Result<(i32, i32)> {
    if exprs.is_empty() || exprs.len() > 2 {
        return plan_err!(
            "{function} takes (from [, to]) dates, got {} arguments",
            exprs.len()
        );
    }
    let from = date_arg(function, "from", exprs.first())?;
    let to = match exprs.get(1) {
        Some(_) => date_arg(function, "to", exprs.get(1))?,
        None => from,
    };
    if to < from {
        return plan_err!("{function}: `to` is before `from`");
    }
    Ok((from, to))
}

#[derive(Debug)]
struct CustomerFeaturesFunction;

impl TableFunctionImpl for CustomerFeaturesFunction {
    fn call(&self, exprs: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let (from, to) = range_args("customer_features", exprs)?;
        Ok(Arc::new(MetricTable::new(FeatureRows { from, to })))
    }
}

#[derive(Debug)]
struct FeatureRows {
    from: i32,
    to: i32,
}

impl FeatureRows {
    /// The feature query, reading the settlement table where the session has it.
    fn sql(&self, session: &dyn Session) -> String {
        features::features_sql_for(
            self.from,
            self.to,
            &features::CustomerRange::default(),
            features::Settling::of(session),
        )
    }
}

#[async_trait]
impl Metric for FeatureRows {
    fn schema(&self) -> SchemaRef {
        features_schema()
    }
    fn function(&self) -> &'static str {
        "customer_features"
    }
    fn arguments(&self) -> String {
        let (from, to) = (dates::text(self.from), dates::text(self.to));
        format!("{from}, {to}")
    }
    async fn single_query(&self, session: &dyn Session) -> Result<Option<String>> {
        Ok(Some(self.sql(session)))
    }
    /// Computed a slice of customers at a time, as the nightly computes them
    /// ([`features::snapshots_features`]): the customers of a whole warehouse in one
    /// feature query hold every invoice's settlement and every event at once (tens of
    /// gigabytes at a million customers), a slice only its own.
    async fn compute(&self, session: &dyn Session, _wanted: Wanted<'_>) -> Result<RecordBatch> {
        let slice = features::FeatureSlice::of(session);
        let rows = features::snapshots_features(session, self.from, self.to, slice).await?;
        concat(&features_schema(), vec![rows])
    }
}

#[derive(Debug)]
struct RiskLabelsFunction;

impl TableFunctionImpl for RiskLabelsFunction {
    fn call(&self, exprs: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let (from, to) = range_args("risk_labels", exprs)?;
        Ok(Arc::new(MetricTable::new(LabelRows { from, to })))
    }
}

#[derive(Debug)]
struct LabelRows {
    from: i32,
    to: i32,
}

#[async_trait]
impl Metric for LabelRows {
    fn schema(&self) -> SchemaRef {
        labels_schema()
    }
    fn function(&self) -> &'static str {
        "risk_labels"
    }
    fn arguments(&self) -> String {
        let (from, to) = (dates::text(self.from), dates::text(self.to));
        format!("{from}, {to}")
    }
    async fn single_query(&self, session: &dyn Session) -> Result<Option<String>> {
        Ok(Some(
            features::labels_sql_for(session, self.from, self.to).await?,
        ))
    }
    async fn compute(&self, session: &dyn Session, _wanted: Wanted<'_>) -> Result<RecordBatch> {
        let sql = features::labels_sql_for(session, self.from, self.to).await?;
        let batches = collect_sql(session, &sql).await?;
        concat(&labels_schema(), batches)
    }
}

#[derive(Debug)]
struct RiskScoresFunction {
    model: SessionModel,
    snapshots: Snapshots,
}

impl TableFunctionImpl for RiskScoresFunction {
    fn call(&self, exprs: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        // Without an argument: the session's snapshot (the one of the `*_latest` views).
        let as_of = match exprs {
            [] => self.snapshots.chosen(),
            [_] => Some(date_arg("risk_scores", "as_of", exprs.first())?),
            _ => return plan_err!("risk_scores takes ([as_of]), got {} arguments", exprs.len()),
        };
        let day = match self.snapshots.resolve(as_of) {
            Ok(day) => day,
            Err(e) => return plan_err!("risk_scores: {e}"),
        };
        Ok(Arc::new(MetricTable::new(ScoreRows {
            model: self.model.clone(),
            day,
        })))
    }
}

#[derive(Debug)]
struct ScoreRows {
    model: SessionModel,
    day: i32,
}

#[async_trait]
impl Metric for ScoreRows {
    fn schema(&self) -> SchemaRef {
        score_schema()
    }
    fn function(&self) -> &'static str {
        "risk_scores"
    }
    fn arguments(&self) -> String {
        dates::text(self.day)
    }
    async fn compute(&self, session: &dyn Session, _wanted: Wanted<'_>) -> Result<RecordBatch> {
        let scores = score_snapshot(
            session,
            &self.model.model,
            &self.model.name,
            self.day,
            features::FeatureSlice::of(session),
        )
        .await?;
        Ok(scores.batch().clone())
    }
}

fn customer_features_doc() -> Documentation {
    Documentation::builder(
        SECTION,
        format!(
            "The risk model's features of every customer at every snapshot in [from, to] (one \
             snapshot when `to` is left out), computed only from data dated on or before the \
             snapshot (the SQL is models/sql/features.sql). Columns: customer_id, snapshot_date, {}.",
            FEATURE_COLUMNS.join(", ")
        ),
        "customer_features(from [, to])",
    )
    .with_argument("from", "First snapshot date, e.g. '2026-10-31'.")
    .with_argument("to", "Optional last snapshot date.")
    .with_sql_example(
        "```sql\n> SELECT customer_id, max_dpd, utilization FROM customer_features('2026-10-31')\n  ORDER BY max_dpd DESC LIMIT 5;\n```",
    )
    .build()
}

fn risk_labels_doc() -> Documentation {
    Documentation::builder(
        SECTION,
        "The model's label for every customer at every snapshot in [from, to]: went_bad = the \
         customer reached 90+ days past due or had bad debt written off within the 90 days after \
         the snapshot; NULL while those 90 days are not over (models/sql/labels.sql).",
        "risk_labels(from [, to])",
    )
    .with_argument("from", "First snapshot date.")
    .with_argument("to", "Optional last snapshot date.")
    .with_sql_example(
        "```sql\n> SELECT snapshot_date, avg(CAST(went_bad AS DOUBLE)) AS bad_rate\n  FROM risk_labels('2025-11-30', '2026-07-31') GROUP BY 1 ORDER BY 1;\n```",
    )
    .build()
}

fn risk_scores_doc(model: &SessionModel) -> Documentation {
    Documentation::builder(
        SECTION,
        format!(
            "Scores every customer of the newest snapshot on or before as_of (without it, the \
             session's snapshot: the one the *_latest views show) with the model {}: pd, score \
             (points), reason_1..3, max_dpd, late_stage. Customers already 90+ days past due get \
             PD 1 (late stage).",
            model.name
        ),
        "risk_scores([as_of])",
    )
    .with_argument("as_of", "Optional date: score the newest snapshot on or before it.")
    .with_sql_example(
        "```sql\n> SELECT customer_id, pd, score, reason_1 FROM risk_scores()\n  WHERE NOT late_stage ORDER BY pd DESC LIMIT 10;\n```",
    )
    .build()
}

/// Float64 values of a column (used by tests).
#[cfg(test)]
fn floats(a: &ArrayRef) -> Vec<Option<f64>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;
    cast(a, &DataType::Float64)
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scorecard_points_in_sql() {
        let ctx = SessionContext::new();
        register(&ctx, None, &Snapshots::default()).unwrap();
        let batches = ctx
            .sql("SELECT scorecard_points(1.0 / 51), scorecard_points(1.0 / 21, 500, 20, 40), scorecard_points(CAST(NULL AS DOUBLE))")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let b = &batches[0];
        assert_eq!(floats(b.column(0)), vec![Some(600.0)]);
        assert_eq!(floats(b.column(1)), vec![Some(500.0)]);
        assert_eq!(floats(b.column(2)), vec![None]);
        let err = ctx
            .sql("SELECT scorecard_points(0.1, 600, 50, 0)")
            .await
            .unwrap()
            .collect()
            .await;
        assert!(err.unwrap_err().to_string().contains("PDO"));
        let err = ctx.sql("SELECT scorecard_points(0.1, 600)").await;
        assert!(err.unwrap_err().to_string().contains("takes (pd)"));
    }
}
