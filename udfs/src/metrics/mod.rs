//! Receivables metrics that need several snapshots or the event tables, as table
//! functions over the session's warehouse tables (`open_items`, `customers`,
//! `invoices`, `payments`, `activities`; see DOMAIN.md §2):
//!
//! - [`ar_metrics`](ar_metrics::ArMetrics): DSO, best possible DSO, ADD, countback DSO
//!   and CEI per month;
//! - [`roll_rates`](roll_rates::RollRates): bucket-to-bucket roll rates between
//!   consecutive snapshots;
//! - [`promise_kept_rate`](promise_kept_rate::PromiseKeptRate): share of promised
//!   amounts paid in full by the promise date plus grace.
//!
//! Each takes a date range and an optional dimension (`segment`, `region`,
//! `collector_id`, or `all`), and always splits by currency: money in different
//! currencies is never summed. The figures are computed when the table is scanned,
//! with SQL over the session's tables, so they always reflect the warehouse the session
//! sees.

pub mod ar_metrics;
pub mod promise_kept_rate;
pub mod roll_rates;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, Field, SchemaRef};
use datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, exec_datafusion_err, plan_err};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// The dimensions a metric can be split by (besides currency, always).
pub const DIMENSIONS: [&str; 4] = ["all", "segment", "region", "collector_id"];

/// Money in metric outputs: sums of Decimal128(18, 2) widened so they cannot overflow.
pub const MONEY_SUM: DataType = DataType::Decimal128(38, 2);

/// Every table function of this crate, with its SQL name.
pub fn table_functions() -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    vec![
        ("ar_metrics", Arc::new(ar_metrics::ArMetrics)),
        ("roll_rates", Arc::new(roll_rates::RollRates)),
        (
            "promise_kept_rate",
            Arc::new(promise_kept_rate::PromiseKeptRate),
        ),
    ]
}

/// A metric computed from the session's tables when its table function is scanned.
#[async_trait]
pub trait Metric: Debug + Send + Sync + 'static {
    /// The columns of the result (known from the arguments alone).
    fn schema(&self) -> SchemaRef;
    /// Runs the metric's SQL in `session` and returns all its rows.
    async fn compute(&self, session: &dyn Session) -> Result<RecordBatch>;
}

/// The table a metric's table function returns: computed when scanned, so it always
/// reflects the warehouse the session sees.
#[derive(Debug)]
pub struct MetricTable<M: Metric>(pub M);

#[async_trait]
impl<M: Metric> TableProvider for MetricTable<M> {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
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
        let batch = self.0.compute(state).await?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.0.schema(),
            projection.cloned(),
        )?)
    }
}

/// Checks the argument count (`usage` names them) and reads the `from` and `to` dates.
pub(crate) fn date_range_args(
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

/// A constant text argument.
pub(crate) fn text_arg(function: &str, name: &str, expr: Option<&Expr>) -> Result<Option<String>> {
    match expr {
        None => Ok(None),
        Some(Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _)) => {
            Ok(Some(s.clone()))
        }
        Some(other) => plan_err!("{function}: {name} must be a constant string, got {other}"),
    }
}

/// The dimension argument, checked; `all` when absent.
pub(crate) fn dimension_arg(function: &str, expr: Option<&Expr>) -> Result<String> {
    let dimension = text_arg(function, "dimension", expr)?.unwrap_or_else(|| "all".into());
    if !DIMENSIONS.contains(&dimension.as_str()) {
        return plan_err!(
            "{function}: dimension must be one of {}, got '{dimension}'",
            DIMENSIONS.join(", ")
        );
    }
    Ok(dimension)
}

/// The SQL expression of a dimension over the customers table aliased `c`.
pub(crate) fn dimension_sql(dimension: &str) -> String {
    match dimension {
        "all" => "'all'".to_string(),
        // Unassigned customers are reported as such rather than dropped.
        "collector_id" => "coalesce(c.collector_id, 'unassigned')".to_string(),
        other => format!("c.{other}"),
    }
}

/// The output field of the dimension (none for `all`).
pub(crate) fn dimension_field(dimension: &str) -> Option<Field> {
    (dimension != "all").then(|| Field::new(dimension, DataType::Utf8, false))
}

/// `'YYYY-MM-DD'` of a Date32 value, for SQL text.
pub fn date_literal(days: i32) -> Result<String> {
    let value = ScalarValue::Date32(Some(days)).cast_to(&DataType::Utf8)?;
    Ok(format!("DATE '{value}'"))
}

/// Runs `sql` in the session that scans the table function and collects the rows.
pub async fn collect_sql(session: &dyn Session, sql: &str) -> Result<Vec<RecordBatch>> {
    let state = session
        .as_any()
        .downcast_ref::<SessionState>()
        .ok_or_else(|| {
            exec_datafusion_err!("arq's table functions need a DataFusion SessionState")
        })?;
    let plan = state.create_logical_plan(sql).await?;
    DataFrame::new(state.clone(), plan).collect().await
}

/// Column accessors for collected batches (types fixed by our own SQL).
pub(crate) struct Columns<'a>(pub &'a RecordBatch);

impl Columns<'_> {
    pub fn date(&self, i: usize, row: usize) -> i32 {
        self.0.column(i).as_primitive::<Date32Type>().value(row)
    }
    pub fn text(&self, i: usize, row: usize) -> String {
        let column: &ArrayRef = self.0.column(i);
        match column.data_type() {
            DataType::Utf8View => column.as_string_view().value(row).to_string(),
            DataType::LargeUtf8 => column.as_string::<i64>().value(row).to_string(),
            _ => column.as_string::<i32>().value(row).to_string(),
        }
    }
    /// Money in cents (the SQL casts every sum to Decimal128(38, 2)); NULL is zero.
    pub fn cents(&self, i: usize, row: usize) -> i128 {
        let column = self.0.column(i).as_primitive::<Decimal128Type>();
        if column.is_null(row) {
            0
        } else {
            column.value(row)
        }
    }
}

/// `a / b` as a float, NULL when `b` is zero (money in cents on both sides).
pub(crate) fn ratio(a: i128, b: i128) -> Option<f64> {
    (b != 0).then(|| a as f64 / b as f64)
}

/// Builds the output batch of a metric table.
pub(crate) fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Days in the calendar month of a date, and the first day of that month.
pub(crate) fn month_of(days: i32) -> (i32, i32) {
    // Civil-from-days (H. Hinnant), enough for month arithmetic without chrono.
    let (y, m, d) = civil_from_days(days);
    let first = days - (d as i32 - 1);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let next_first = days_from_civil(ny, nm, 1);
    (next_first - first, first)
}

pub(crate) fn civil_from_days(z: i32) -> (i64, u32, u32) {
    let z = z as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i32
}

/// Documentation of the table functions (they have no `#[user_doc]` hook), for listings.
pub fn table_function_docs() -> Vec<(&'static str, datafusion::logical_expr::Documentation)> {
    use datafusion::logical_expr::{DocSection, Documentation};
    const SECTION: DocSection = DocSection {
        include: true,
        label: "Receivables Table Functions",
        description: None,
    };
    let dimension = (
        "dimension",
        "Optional: 'all' (default), 'segment', 'region' or 'collector_id'. Results are always split by currency.",
    );
    let range = [
        (
            "from",
            "First period end to report, a date such as '2026-01-31'.",
        ),
        ("to", "Last period end to report."),
    ];
    let with_args = |mut doc: datafusion::logical_expr::DocumentationBuilder,
                     extra: &[(&str, &str)]| {
        for (n, d) in range.iter().chain([&dimension]).chain(extra.iter()) {
            doc = doc.with_argument(*n, *d);
        }
        doc.build()
    };
    vec![
        (
            "ar_metrics",
            with_args(
                Documentation::builder(
                    SECTION,
                    "Receivables metrics per month-end snapshot in [from, to]: ar_begin, credit_sales, \
                     ar_end, current_ar_end, dso = ar_end / credit_sales * days, best_possible_dso = \
                     current_ar_end / credit_sales * days, average_days_delinquent = dso - \
                     best_possible_dso, countback_dso (walk back month by month through credit sales) \
                     and cei = (ar_begin + sales - ar_end) / (ar_begin + sales - current_ar_end) * 100. \
                     A zero denominator gives NULL.",
                    "ar_metrics(from, to [, dimension])",
                )
                .with_sql_example(
                    "```sql\n> SELECT period_end, segment, currency, dso, best_possible_dso, cei\n  FROM ar_metrics('2026-01-31', '2026-10-31', 'segment') ORDER BY 1, 2, 3;\n```",
                ),
                &[],
            ),
        ),
        (
            "roll_rates",
            with_args(
                Documentation::builder(
                    SECTION,
                    "Roll rates between consecutive snapshots: for each aging bucket at the previous \
                     snapshot, the share of its balance whose items are one bucket older at the period end.",
                    "roll_rates(from, to [, dimension [, bounds]])",
                )
                .with_sql_example(
                    "```sql\n> SELECT period_end, from_bucket, to_bucket, roll_rate\n  FROM roll_rates('2026-06-30', '2026-10-31') WHERE currency = 'USD';\n```",
                ),
                &[("bounds", "Optional aging bounds as for aging_bucket, e.g. '30,60,90'.")],
            ),
        ),
        (
            "promise_kept_rate",
            with_args(
                Documentation::builder(
                    SECTION,
                    "Promises to pay due in each month of [from, to]: how many, how much, and the share of \
                     the promised amount paid in full by the promise date plus grace days.",
                    "promise_kept_rate(from, to [, dimension [, grace_days]])",
                )
                .with_sql_example(
                    "```sql\n> SELECT period_end, collector_id, currency, promises, promise_kept_rate\n  FROM promise_kept_rate('2026-01-01', '2026-10-31', 'collector_id');\n```",
                ),
                &[("grace_days", "Optional days of grace after the promise date, default 3.")],
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_arithmetic() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(
            month_of(days_from_civil(2024, 2, 10)),
            (29, days_from_civil(2024, 2, 1))
        );
        assert_eq!(
            month_of(days_from_civil(2023, 2, 28)),
            (28, days_from_civil(2023, 2, 1))
        );
        assert_eq!(
            month_of(days_from_civil(2026, 12, 31)),
            (31, days_from_civil(2026, 12, 1))
        );
        for d in -800..800 {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }
}
