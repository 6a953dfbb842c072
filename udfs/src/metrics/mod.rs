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

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, Field, SchemaRef};
use datafusion::catalog::TableFunctionImpl;
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;

/// A table the session may hold beside `invoices`: the invoices' `customer_id`,
/// `invoice_date`, `currency` and `amount`, every row of `invoices`, laid out by invoice
/// month (arq's nightly keeps it with its settlement table). `ar_metrics` reads its credit
/// sales from it when the session has it: the months of the periods' sales instead of
/// every invoice.
pub const INVOICES_BY_MONTH: &str = "invoices_by_month";

/// `INVOICES_BY_MONTH` when the session has it, else `invoices`.
pub(crate) fn invoices_table(session: &dyn datafusion::catalog::Session) -> &'static str {
    match crate::table_function::has_table(session, INVOICES_BY_MONTH) {
        true => INVOICES_BY_MONTH,
        false => "invoices",
    }
}

/// A table the session may hold beside `payments`: every payment's `customer_id`,
/// `payment_date`, `amount`, `invoice_id` and its invoice's `currency`, laid out by
/// payment month (arq's nightly keeps it with its settlement table, and has the session
/// hold it only when every payment's invoice is one invoice row). The report's cash
/// collected and `promise_kept_rate` read a month's payments from it instead of every
/// payment.
pub const PAYMENTS_BY_MONTH: &str = "payments_by_month";

/// A table the session may hold beside `invoices`: every invoice's `invoice_id`,
/// `currency` and `amount`, with `paid_date`, the day its payments reached its amount
/// (NULL while they have not), and `invoice_rows` (0: payments whose invoice has not
/// arrived; NULL or 1 otherwise). arq's nightly keeps it with its settlement table and has
/// the session hold it, beside [`PAYMENTS_BY_MONTH`], only when the invoices' payments
/// are what that day stands for: no negative payment, none after the invoice was paid in
/// full, each invoice once, each payment under its invoice's customer (an invoice's
/// payments up to a day then reach its amount exactly when it was paid in full by then).
/// `promise_kept_rate` judges a promise from it and the promise window's payments.
pub const INVOICES_PAID: &str = "invoices_paid";

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

/// The SQL expression of a dimension over the customers table aliased `c` (joined with
/// [`customers_join`]).
pub(crate) fn dimension_sql(dimension: &str) -> String {
    match dimension {
        "all" => "'all'".to_string(),
        // Unassigned customers are reported as such rather than dropped.
        "collector_id" => "coalesce(c.collector_id, 'unassigned')".to_string(),
        other => format!("coalesce(c.{other}, '{UNKNOWN}')"),
    }
}

/// The dimension value of a row whose customer is not in that snapshot's `customers`.
pub const UNKNOWN: &str = "unknown";

/// The join that gives a row of `table` (alias) at snapshot `snapshot` its customer `c`,
/// for a dimension; none for `all`, which needs no customer. A LEFT JOIN: a row whose
/// customer is missing from the snapshot still counts (under [`UNKNOWN`], or `unassigned`
/// for collectors), so the parts of a dimension always add up to `all`.
pub(crate) fn customers_join(dimension: &str, table: &str, snapshot: &str) -> String {
    match dimension {
        "all" => String::new(),
        _ => format!(
            "LEFT JOIN customers c ON c.snapshot_date = {snapshot} \
             AND c.customer_id = {table}.customer_id"
        ),
    }
}

/// The output field of the dimension (none for `all`).
pub(crate) fn dimension_field(dimension: &str) -> Option<Field> {
    (dimension != "all").then(|| Field::new(dimension, DataType::Utf8, false))
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
            "A date such as '2026-01-31': periods (calendar months) whose month end is on or \
             after it are reported; '2026-01-01' and '2026-01-31' both start with January.",
        ),
        (
            "to",
            "A date: periods whose month end is on or before it are reported.",
        ),
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
                     snapshot, the share of its balance whose items are one bucket older at the period end. \
                     Output columns: period_end, previous_snapshot, the dimension's column (when split), \
                     currency, from_bucket, to_bucket, from_rank and to_rank (aging_bucket_rank of the \
                     buckets: ORDER BY from_rank sorts in aging order), balance_from (the bucket's balance \
                     at the previous snapshot), balance_rolled (the part one bucket older at period_end) \
                     and roll_rate = balance_rolled / balance_from (NULL for a zero balance).",
                    "roll_rates(from, to [, dimension [, bounds]])",
                )
                .with_sql_example(
                    "```sql\n> SELECT period_end, from_bucket, to_bucket, roll_rate\n  FROM roll_rates('2026-06-30', '2026-10-31') WHERE currency = 'USD'\n  ORDER BY period_end, from_rank;\n```",
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
                     the promised amount paid in full by the promise date plus grace days. Output columns: \
                     period_start, period_end, the dimension's column (when split), currency, promises, \
                     promises_kept, promised_amount, kept_amount and promise_kept_rate = kept_amount / \
                     promised_amount (NULL when nothing was promised).",
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

/// The newest `snapshot_date` of `table` (on or before `upto`), None when it has none.
pub(crate) async fn newest_snapshot(
    session: &dyn datafusion::catalog::Session,
    table: &str,
    upto: Option<i32>,
) -> Result<Option<i32>> {
    let sql = match upto {
        Some(day) => format!(
            "SELECT max(snapshot_date) FROM {table} WHERE snapshot_date <= {}",
            crate::dates::sql_literal(day)
        ),
        None => format!("SELECT max(snapshot_date) FROM {table}"),
    };
    for b in crate::table_function::collect_sql(session, &sql).await? {
        if b.num_rows() > 0 && b.column(0).is_valid(0) {
            return Ok(Some(Columns(&b).date(0, 0)));
        }
    }
    Ok(None)
}
