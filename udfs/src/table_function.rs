//! The plumbing of table functions whose rows are computed with SQL over the session
//! that scans them: the receivables metrics of this crate ([`crate::metrics`]) and
//! arq-models' `customer_features`, `risk_labels` and `risk_scores` are built on it.
//!
//! A table function implements [`Metric`] (its schema, known from the arguments alone,
//! and an async `compute` that runs SQL through [`collect_sql`]), and returns a
//! [`MetricTable`] from `TableFunctionImpl::call`; constant date arguments are read with
//! [`date_arg`] or [`date_range_args`].

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{ScalarValue, exec_datafusion_err, plan_err};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// A metric computed from the session's tables when its table function is scanned.
#[async_trait]
pub trait Metric: Debug + Send + Sync + 'static {
    /// The columns of the result (known from the arguments alone).
    fn schema(&self) -> SchemaRef;
    /// Runs the metric's SQL in `session` and returns all its rows. `wanted` says which
    /// columns the query reads (None: all); a metric may leave out the work of the others
    /// (their values are then NULL, and the scan projects them away).
    async fn compute(&self, session: &dyn Session, wanted: Wanted<'_>) -> Result<RecordBatch>;
    /// The table function's name, for messages (`ar_metrics`).
    fn function(&self) -> &'static str;
    /// The arguments it was called with, as read (`2026-01-31, 2026-10-31, segment`): they
    /// mark its schema (see [`CALL_METADATA`]).
    fn arguments(&self) -> String;
    /// When the whole table is one SQL query over the session's tables, that query (its
    /// columns in [`Metric::schema`]'s order): a session that runs its plans elsewhere (a
    /// cluster) plans it as a view instead of computing the rows where it is planned.
    /// `None` (the default) when the rows take more than one query or Rust code.
    async fn single_query(&self, _session: &dyn Session) -> Result<Option<String>> {
        Ok(None)
    }
}

/// The columns a scan of a metric reads.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    schema: &'a SchemaRef,
    projection: Option<&'a [usize]>,
}

impl Wanted<'_> {
    /// Whether the scan reads the column `name`.
    pub fn column(&self, name: &str) -> bool {
        match self.projection {
            None => true,
            Some(p) => p.iter().any(|&i| self.schema.field(i).name() == name),
        }
    }
}

/// The key of the schema metadata that names a metric table's call
/// (`promise_kept_rate(2026-06-01, 2026-06-30, all, 3)`). DataFusion names the scan of a
/// table function after the function alone (`promise_kept_rate()`) and compares scans
/// without their tables, so two calls with different arguments looked alike to common
/// subexpression elimination, which computed the first for both:
/// `SELECT (SELECT … FROM f(a)), (SELECT … FROM f(b))` gave f(a)'s figure twice. The
/// call in the schema tells the scans apart; the same call twice may still be computed once.
pub const CALL_METADATA: &str = "arq.call";

/// The table a metric's table function returns: computed when scanned, so it always
/// reflects the warehouse the session sees. Its schema is the metric's, marked with the
/// call ([`CALL_METADATA`]).
#[derive(Debug, Clone)]
pub struct MetricTable(pub Arc<dyn Metric>, SchemaRef);

impl MetricTable {
    pub fn new(metric: impl Metric) -> MetricTable {
        let schema = metric.schema();
        let mut metadata = schema.metadata().clone();
        metadata.insert(
            CALL_METADATA.to_string(),
            format!("{}({})", metric.function(), metric.arguments()),
        );
        let schema = Arc::new(Schema::new_with_metadata(schema.fields().clone(), metadata));
        MetricTable(Arc::new(metric), schema)
    }

    /// Every row and column of the table, computed in `session`.
    pub async fn rows(&self, session: &dyn Session) -> Result<RecordBatch> {
        let schema = self.0.schema();
        let wanted = Wanted {
            schema: &schema,
            projection: None,
        };
        self.0.compute(session, wanted).await
    }
}

#[async_trait]
impl TableProvider for MetricTable {
    fn schema(&self) -> SchemaRef {
        self.1.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.0.schema();
        let wanted = Wanted {
            schema: &schema,
            projection: projection.map(Vec::as_slice),
        };
        let batch = self.0.compute(state, wanted).await?;
        // The rows under the marked schema (the same columns).
        let batch = RecordBatch::try_new(self.1.clone(), batch.columns().to_vec())?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.1.clone(),
            projection.cloned(),
        )?)
    }
}

/// Checks the argument count (`usage` names them) and reads the `from` and `to` dates.
pub fn date_range_args(
    function: &str,
    exprs: &[Expr],
    usage: &str,
    max_args: usize,
) -> Result<(i32, i32)> {
    if exprs.len() < 2 || exprs.len() > max_args {
        return plan_err!("{function} takes {usage}, got {} arguments", exprs.len());
    }
    let from = date_arg(function, "from", exprs.first())?;
    let to = date_arg(function, "to", exprs.get(1))?;
    if to < from {
        return plan_err!("{function}: `to` is before `from`");
    }
    Ok((from, to))
}

/// A constant date argument (`'2026-01-31'` or `DATE '2026-01-31'`), as days since
/// 1970-01-01.
pub fn date_arg(function: &str, name: &str, expr: Option<&Expr>) -> Result<i32> {
    let value = match expr {
        Some(Expr::Literal(v, _)) => v.clone(),
        Some(other) => return plan_err!("{function}: {name} must be a constant date, got {other}"),
        None => return plan_err!("{function}: {name} is missing"),
    };
    match value.cast_to(&DataType::Date32) {
        Ok(ScalarValue::Date32(Some(d))) => Ok(d),
        _ => plan_err!("{function}: {name} must be a date such as '2026-01-31', got {value}"),
    }
}

/// The DataFusion session state behind `session` (what a table function's SQL is
/// planned in).
pub fn session_state(session: &dyn Session) -> Result<&SessionState> {
    session
        .as_any()
        .downcast_ref::<SessionState>()
        .ok_or_else(|| exec_datafusion_err!("arq's table functions need a DataFusion SessionState"))
}

/// Whether `session` (a [`SessionState`]) has a table `name`: where a derived table kept
/// beside the warehouse (the settlement's, the invoices by month) is read instead of the
/// warehouse's.
pub fn has_table(session: &dyn Session, name: &str) -> bool {
    session
        .as_any()
        .downcast_ref::<SessionState>()
        .and_then(|s| s.schema_for_ref(name).ok())
        .is_some_and(|schema| schema.table_exist(name))
}

/// Runs `sql` in the session that scans the table function and collects the rows.
pub async fn collect_sql(session: &dyn Session, sql: &str) -> Result<Vec<RecordBatch>> {
    collect_in(session_state(session)?.clone(), sql).await
}

/// `batches` as one batch of `schema`, concatenated column by column, each column's
/// parts dropped as soon as they are copied: at most one column is held twice, where
/// arrow's `concat_batches` holds every batch beside the whole copy (at a million
/// customers the night's overdue items are 0.27 GB, the limits' inputs more).
pub fn concat_owned(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    use datafusion::arrow::array::{Array, ArrayRef, RecordBatchOptions};
    if batches.is_empty() {
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let mut parts: Vec<Vec<ArrayRef>> =
        vec![Vec::with_capacity(batches.len()); schema.fields().len()];
    for batch in batches {
        if batch.num_columns() != parts.len() {
            return Err(exec_datafusion_err!(
                "a batch of {} columns among batches of {}",
                batch.num_columns(),
                parts.len()
            ));
        }
        for (column, part) in parts.iter_mut().zip(batch.columns()) {
            column.push(part.clone());
        }
    }
    let columns = parts
        .into_iter()
        .map(|column| {
            let refs: Vec<&dyn Array> = column.iter().map(|a| a.as_ref()).collect();
            datafusion::arrow::compute::concat(&refs)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}

async fn collect_in(state: SessionState, sql: &str) -> Result<Vec<RecordBatch>> {
    let plan = state.create_logical_plan(sql).await?;
    DataFrame::new(state, plan).collect().await
}

/// Join sides estimated under this many rows are built whole by
/// [`collect_sql_small_builds`] (a month's promises at a million customers: 477 k; its
/// payments: 8 M).
pub const SMALL_BUILD_ROWS: usize = 20_000_000;

/// Runs `sql` as [`collect_sql`] does, with every hash join whose smaller side is
/// estimated under [`SMALL_BUILD_ROWS`] rows built once from that whole side and probed by the other
/// side's partitions as they are read (DataFusion's `CollectLeft`), instead of
/// hash-partitioning both sides: for a few hundred thousand rows (a month's promises)
/// probed by a table of a hundred million (every payment), the large side is not
/// repartitioned. The rows are the same either way.
pub async fn collect_sql_small_builds(
    session: &dyn Session,
    sql: &str,
) -> Result<Vec<RecordBatch>> {
    let mut state = session_state(session)?.clone();
    small_builds(&mut state);
    collect_in(state, sql).await
}

/// Sets `state` to collect a hash join's build side whole when it is estimated under
/// [`SMALL_BUILD_ROWS`] rows (whatever its bytes); see [`collect_sql_small_builds`].
pub fn small_builds(state: &mut SessionState) {
    let optimizer = &mut state.config_mut().options_mut().optimizer;
    optimizer.hash_join_single_partition_threshold_rows = SMALL_BUILD_ROWS;
    optimizer.hash_join_single_partition_threshold = usize::MAX;
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::{Field, Schema};

    #[test]
    fn concat_owned_gives_what_concat_batches_gives() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int32, false),
        ]));
        let batch = |ids: Vec<Option<&str>>, n: Vec<i32>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(Int32Array::from(n)),
                ],
            )
            .unwrap()
        };
        let batches = vec![
            batch(vec![Some("a"), None], vec![1, 2]),
            batch(vec![], vec![]),
            batch(vec![Some("c")], vec![3]),
        ];
        let expected = concat_batches(&schema, &batches).unwrap();
        assert_eq!(concat_owned(&schema, batches.clone()).unwrap(), expected);
        assert_eq!(expected.num_rows(), 3);
        let one = concat_owned(&schema, batches[..1].to_vec()).unwrap();
        assert_eq!(one, batches[0]);
        let none = concat_owned(&schema, Vec::new()).unwrap();
        assert_eq!((none.num_rows(), none.schema()), (0, schema.clone()));
        let narrow = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)])),
            vec![Arc::new(Int32Array::from(vec![1]))],
        )
        .unwrap();
        let error = concat_owned(&schema, vec![batches[0].clone(), narrow]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("a batch of 1 columns among batches of 2"),
            "{error}"
        );
    }
}
