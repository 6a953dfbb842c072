//! The rows of a report query, read by column name: every figure of the report comes from
//! SQL over the same session `arq sql` opens, so the report and a query cannot disagree.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;
use rust_decimal::Decimal;

use crate::error::{ArqError, Result};

/// Prints how long `what` took since `started` when `ARQ_REPORT_TIMINGS` is set.
pub fn timing(what: &str, started: std::time::Instant) {
    if std::env::var_os("ARQ_REPORT_TIMINGS").is_some() {
        eprintln!("report: {what} {:.2} s", started.elapsed().as_secs_f64());
    }
}

/// One query's result.
pub struct Rows {
    batch: RecordBatch,
    /// What the query was for (in errors).
    what: &'static str,
}

impl Rows {
    /// Runs `sql` and keeps its rows. With `ARQ_REPORT_TIMINGS` set, each query's time is
    /// printed to stderr (where a report's time goes; see benches/README.md).
    pub async fn query(
        ctx: &SessionContext,
        what: &'static str,
        sql: impl AsRef<str>,
    ) -> Result<Rows> {
        Self::run(ctx, what, sql.as_ref()).await
    }

    /// [`Rows::query`] with every hash join whose smaller side is estimated under
    /// `arq_udfs::table_function::SMALL_BUILD_ROWS` rows built from that whole side, the large side probed without being repartitioned
    /// (`arq_udfs::table_function::collect_sql_small_builds`): the same rows.
    pub async fn query_small_builds(
        ctx: &SessionContext,
        what: &'static str,
        sql: impl AsRef<str>,
    ) -> Result<Rows> {
        let mut state = ctx.state();
        arq_udfs::table_function::small_builds(&mut state);
        let ctx = SessionContext::new_with_state(state);
        Self::run(&ctx, what, sql.as_ref()).await
    }

    async fn run(ctx: &SessionContext, what: &'static str, sql: &str) -> Result<Rows> {
        // One report query at a time in the process: the sections are built side by side,
        // but their queries running together held their hash tables at once — at a
        // million customers `arq report --nights` peaked at 2.40 GB, one at a time at
        // 1.89 GB, for 25 s against 27 s (benches/README.md, "The report's queries one at
        // a time").
        static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
        let _turn = ONE_AT_A_TIME
            .acquire()
            .await
            .map_err(|e| ArqError::Internal(format!("the report's queries: {e}")))?;
        let started = std::time::Instant::now();
        let frame = ctx.sql(sql).await?;
        let planned = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        // The batches' own schema: a sum's decimal precision may differ from the plan's.
        let schema = batches.first().map_or(planned, |b| b.schema());
        let batch = concat_batches(&schema, &batches)?;
        timing(what, started);
        Ok(Rows { batch, what })
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn column(&self, name: &str) -> Result<&ArrayRef> {
        self.batch.column_by_name(name).ok_or_else(|| {
            ArqError::Internal(format!("the {} query has no column `{name}`", self.what))
        })
    }

    /// Text (any type, as text); None for NULL.
    pub fn text(&self, row: usize, name: &str) -> Result<Option<String>> {
        let column = self.column(name)?;
        if column.is_null(row) {
            return Ok(None);
        }
        let text = cast(&column.slice(row, 1), &DataType::Utf8)?;
        Ok(Some(text.as_string::<i32>().value(0).to_string()))
    }

    /// Money: a Decimal128 column, exactly; None for NULL.
    pub fn money(&self, row: usize, name: &str) -> Result<Option<Decimal>> {
        let column = self.column(name)?;
        if column.is_null(row) {
            return Ok(None);
        }
        let DataType::Decimal128(_, scale) = column.data_type() else {
            return Err(ArqError::Internal(format!(
                "{}: `{name}` is {}, not money",
                self.what,
                column.data_type()
            )));
        };
        let value = column.as_primitive::<Decimal128Type>().value(row);
        Decimal::try_from_i128_with_scale(value, *scale as u32)
            .map(Some)
            .map_err(|e| ArqError::Internal(format!("{}: `{name}`: {e}", self.what)))
    }

    /// A number as f64 (ints, floats, decimals); None for NULL or NaN.
    pub fn number(&self, row: usize, name: &str) -> Result<Option<f64>> {
        let column = self.column(name)?;
        if column.is_null(row) {
            return Ok(None);
        }
        let value = cast(&column.slice(row, 1), &DataType::Float64)?;
        let value = value.as_primitive::<Float64Type>().value(0);
        Ok(value.is_finite().then_some(value))
    }

    /// A whole number; None for NULL.
    pub fn int(&self, row: usize, name: &str) -> Result<Option<i64>> {
        let column = self.column(name)?;
        if column.is_null(row) {
            return Ok(None);
        }
        let value = cast(&column.slice(row, 1), &DataType::Int64)?;
        Ok(Some(value.as_primitive::<Int64Type>().value(0)))
    }

    /// A date as `YYYY-MM-DD`.
    pub fn date(&self, row: usize, name: &str) -> Result<Option<String>> {
        let column = self.column(name)?;
        if column.is_null(row) {
            return Ok(None);
        }
        let days = cast(&column.slice(row, 1), &DataType::Date32)?;
        let days = days.as_primitive::<Date32Type>().value(0);
        Ok(arq_udfs::dates::from_days(days).map(|d| d.to_string()))
    }
}
