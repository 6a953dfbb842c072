//! `promise_kept_rate(from, to [, dimension [, grace_days]])`: the share of promised
//! amounts that customers paid in full by the promise date plus grace.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, AsArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch,
    StringArray,
};
use datafusion::arrow::compute::{cast, max, min};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{
    MemTable, MemoryCatalogProviderList, Session, TableFunctionArgs, TableFunctionImpl,
    TableProvider,
};
use datafusion::common::{ScalarValue, exec_datafusion_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;

use super::{
    Columns, INVOICES_PAID, MONEY_SUM, PAYMENTS_BY_MONTH, batch, dimension_arg, dimension_field,
    newest_snapshot, ratio,
};
use crate::dates;
use crate::table_function::{
    Metric, MetricTable, Wanted, collect_sql_small_builds, date_range_args, has_table,
    session_state, small_builds,
};

/// Days after the promise date within which a payment still keeps the promise.
pub const DEFAULT_GRACE_DAYS: i64 = 3;

/// The `promise_kept_rate` table function.
///
/// Promises are `activities` of kind `promise` on an invoice, grouped by the month of
/// their promise date. As in `ar_metrics` and `roll_rates`, a period (a calendar month)
/// is reported when its month end lies in `[from, to]`: `from` = '2026-01-01' and
/// '2026-01-31' both start with the whole of January, and `to` = '2026-03-15' stops with
/// February. A promise is kept when the payments on its
/// invoice after the day it was made and up to promise_date + grace cover the promised
/// amount (or the whole balance still open when it was made, if that is smaller).
/// Promises whose promise_date + grace lies after the newest snapshot are not judged yet
/// and left out. `promise_kept_rate` = kept promised amount / promised amount. Each
/// promise row is judged on its own invoice's payments (rows sharing an activity id are
/// still two promises).
/// Dimension `collector_id` is the collector who obtained the promise; `segment` and
/// `region` are the customer's at the newest snapshot on or before `to`.
#[derive(Debug)]
pub struct PromiseKeptRate;

/// The promise dates of the months whose month end lies in `[from, to]`: from the first
/// day of `from`'s month to `to` when it is a month end, else to the end of the month
/// before (an empty range when no month end is inside).
fn whole_months(from: i32, to: i32) -> (i32, i32) {
    let first = dates::month_of(from).1;
    let (days, to_first) = dates::month_of(to);
    let last = if to == to_first + days - 1 {
        to
    } else {
        to_first - 1
    };
    (first, last)
}

impl TableFunctionImpl for PromiseKeptRate {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let name = "promise_kept_rate";
        let (from, to) =
            date_range_args(name, exprs, "(from, to [, dimension [, grace_days]])", 4)?;
        let (from, to) = whole_months(from, to);
        let dimension = dimension_arg(name, exprs.get(2))?;
        let grace = match exprs.get(3) {
            None => DEFAULT_GRACE_DAYS,
            Some(Expr::Literal(v, _)) => match v.cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(g))) if (0..=365).contains(&g) => g,
                _ => {
                    return plan_err!(
                        "{name}: grace_days must be a whole number of days from 0 to 365, got {v}"
                    );
                }
            },
            Some(other) => return plan_err!("{name}: grace_days must be a constant, got {other}"),
        };
        let mut fields = vec![
            Field::new("period_start", DataType::Date32, false),
            Field::new("period_end", DataType::Date32, false),
        ];
        fields.extend(dimension_field(&dimension));
        fields.extend([
            Field::new("currency", DataType::Utf8, false),
            Field::new("promises", DataType::Int64, false),
            Field::new("promises_kept", DataType::Int64, false),
            Field::new("promised_amount", MONEY_SUM, false),
            Field::new("kept_amount", MONEY_SUM, false),
            Field::new("promise_kept_rate", DataType::Float64, true),
        ]);
        Ok(Arc::new(MetricTable::new(PromiseKeptRateTable {
            from,
            to,
            dimension,
            grace,
            schema: Arc::new(Schema::new(fields)),
        })))
    }
}

/// What `promise_kept_rate(...)` computes when scanned.
#[derive(Debug)]
pub struct PromiseKeptRateTable {
    from: i32,
    to: i32,
    dimension: String,
    grace: i64,
    schema: SchemaRef,
}

#[async_trait]
impl Metric for PromiseKeptRateTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn function(&self) -> &'static str {
        "promise_kept_rate"
    }
    fn arguments(&self) -> String {
        let (from, to) = (dates::text(self.from), dates::text(self.to));
        format!("{from}, {to}, {}, {}", self.dimension, self.grace)
    }

    async fn compute(&self, session: &dyn Session, _wanted: Wanted<'_>) -> Result<RecordBatch> {
        let dim = match self.dimension.as_str() {
            "all" => "'all'".to_string(),
            "collector_id" => "coalesce(p.collector_id, 'unassigned')".to_string(),
            other => format!("coalesce(c.{other}, 'unknown')"),
        };
        // The newest snapshot (promises due after it are not judged yet) and the customers'
        // snapshot for the dimension, as literals: a one-row CTE cross-joined to 50 M
        // activities was a nested-loop join costing seconds.
        let Some(as_of) = newest_snapshot(session, "open_items", None).await? else {
            return batch(&self.schema, empty_columns(&self.schema));
        };
        let customer_snapshot = match newest_snapshot(session, "customers", Some(self.to)).await? {
            Some(day) => dates::sql_literal(day),
            None => "CAST(NULL AS DATE)".to_string(),
        };
        // The last promise date judged: the period's end, or the newest snapshot less the
        // grace (`promise_date + grace <= as_of`) as a literal, not date arithmetic on each
        // of 50 M activities.
        let last = self.to.min(as_of - self.grace as i32);
        let batches =
            match has_table(session, PAYMENTS_BY_MONTH) && has_table(session, INVOICES_PAID) {
                true => {
                    self.judged_by_days(session, &dim, &customer_snapshot, last)
                        .await?
                }
                false => {
                    self.judged_by_payments(session, &dim, &customer_snapshot, last)
                        .await?
                }
            };
        let (mut start, mut end, mut dims, mut currencies) = (vec![], vec![], vec![], vec![]);
        let (mut counts, mut kept_counts, mut promised, mut kept, mut rates) =
            (vec![], vec![], vec![], vec![], vec![]);
        for b in batches {
            let c = Columns(&b);
            let int = |i: usize, row: usize| {
                datafusion::arrow::array::AsArray::as_primitive::<Int64Type>(b.column(i)).value(row)
            };
            for row in 0..b.num_rows() {
                let month = c.date(0, row);
                let (days, first) = dates::month_of(month);
                let (p, k) = (c.cents(5, row), c.cents(6, row));
                start.push(first);
                end.push(first + days - 1);
                dims.push(c.text(1, row));
                currencies.push(c.text(2, row));
                counts.push(int(3, row));
                kept_counts.push(int(4, row));
                promised.push(p);
                kept.push(k);
                rates.push(ratio(k, p));
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(start)),
            Arc::new(Date32Array::from(end)),
        ];
        if self.dimension != "all" {
            columns.push(Arc::new(StringArray::from(dims)));
        }
        columns.extend([
            Arc::new(StringArray::from(currencies)) as ArrayRef,
            Arc::new(Int64Array::from(counts)),
            Arc::new(Int64Array::from(kept_counts)),
            Arc::new(Decimal128Array::from(promised).with_data_type(MONEY_SUM)),
            Arc::new(Decimal128Array::from(kept).with_data_type(MONEY_SUM)),
            Arc::new(Float64Array::from(rates)),
        ]);
        batch(&self.schema, columns)
    }
}

impl PromiseKeptRateTable {
    /// The condition on `activities` (as `alias`) that picks the promises judged, both
    /// ways alike: promises on an invoice, with an amount, dated from the period's start to
    /// `last`.
    fn judged_promises(&self, alias: &str, last: i32) -> String {
        format!(
            "{alias}.kind = 'promise' AND {alias}.invoice_id IS NOT NULL \
             AND {alias}.promise_amount IS NOT NULL \
             AND {alias}.promise_date BETWEEN {} AND {}",
            dates::sql_literal(self.from),
            dates::sql_literal(last)
        )
    }

    /// The judged promises' groups (month, dimension, currency, promises, kept, promised
    /// amount, kept amount) from the warehouse's payments and invoices: each promise's
    /// invoice's payments before it was made and within its window summed.
    async fn judged_by_payments(
        &self,
        session: &dyn Session,
        dim: &str,
        customer_snapshot: &str,
        last: i32,
    ) -> Result<Vec<RecordBatch>> {
        let grace = self.grace;
        // Activities are read once: the payments on a promise's invoice are summed per
        // promise (grouped by all its columns), then its invoice is joined for the
        // currency and amount.
        let sql = format!(
            "WITH promises AS (
               SELECT a.activity_id, a.customer_id, a.invoice_id, a.activity_date, a.promise_date,
                      a.promise_amount, a.collector_id
               FROM activities a
               WHERE {judged}),
             paid AS (
               SELECT p.activity_id, p.customer_id, p.invoice_id, p.activity_date, p.promise_date,
                      p.promise_amount, p.collector_id,
                      coalesce(sum(y.amount) FILTER (WHERE y.payment_date <= p.activity_date), 0) AS before,
                      coalesce(sum(y.amount) FILTER (WHERE y.payment_date > p.activity_date
                                 AND y.payment_date <= p.promise_date + INTERVAL '{grace} days'), 0) AS within
               FROM promises p LEFT JOIN payments y ON y.invoice_id = p.invoice_id
               GROUP BY p.activity_id, p.customer_id, p.invoice_id, p.activity_date, p.promise_date,
                        p.promise_amount, p.collector_id),
             judged AS (
               SELECT p.*, i.currency,
                      p.within >= least(p.promise_amount, i.amount - p.before) AS kept
               FROM paid p
               JOIN invoices i ON i.invoice_id = p.invoice_id)
             SELECT CAST(date_trunc('month', p.promise_date) AS DATE) AS month, {dim} AS dimension, p.currency,
                    count(*) AS promises,
                    count(*) FILTER (WHERE p.kept) AS promises_kept,
                    CAST(sum(p.promise_amount) AS DECIMAL(38, 2)) AS promised_amount,
                    CAST(coalesce(sum(p.promise_amount) FILTER (WHERE p.kept), 0) AS DECIMAL(38, 2)) AS kept_amount
             FROM judged p
             LEFT JOIN customers c ON c.customer_id = p.customer_id AND c.snapshot_date = {customer_snapshot}
             GROUP BY 1, 2, 3
             ORDER BY 1, 2, 3",
            judged = self.judged_promises("a", last),
        );
        // The promises built whole, the payments and invoices probing them without being
        // repartitioned: a quarter less time at a million customers.
        collect_sql_small_builds(session, &sql).await
    }

    /// The same groups from the payments by month ([`PAYMENTS_BY_MONTH`]) and the invoices'
    /// paid days ([`INVOICES_PAID`]), where the session has them. A promise (made on day
    /// A, promise date P, grace g, amount pa, on an invoice of amount `amount`) is kept
    /// when `within >= least(pa, amount - before)`: the payments within (A, P + g] cover
    /// pa, or `before + within` — the invoice's payments up to D = max(A, P + g) — reach
    /// its amount. Where the paid day stands for the invoice's payments (no negative
    /// payment, none after it was paid in full: what the table's owner vouches for), those
    /// reach the amount exactly when the amount is not positive or the invoice was paid in
    /// full by D. So only the payments of the promises' windows are read — the months
    /// from the earliest promise's day to the last promise date plus grace (at a million
    /// customers a month's 477 k promises read two of 18 months of payments) — and each
    /// invoice's paid day instead of every payment before the promise.
    async fn judged_by_days(
        &self,
        session: &dyn Session,
        dim: &str,
        customer_snapshot: &str,
        last: i32,
    ) -> Result<Vec<RecordBatch>> {
        let grace = self.grace;
        let promises_sql = format!(
            "SELECT p.invoice_id, p.activity_date, p.promise_date, p.promise_amount, {dim} AS dimension
             FROM activities p
             LEFT JOIN customers c ON c.customer_id = p.customer_id AND c.snapshot_date = {customer_snapshot}
             WHERE {judged}",
            judged = self.judged_promises("p", last),
        );
        let promises = collect_sql_small_builds(session, &promises_sql).await?;
        let rows: usize = promises.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 {
            return Ok(vec![]);
        }
        // The promises numbered (one promise, one row, whatever they share), and the
        // window's bounds: after the earliest day a promise was made, up to the last
        // promise date plus grace.
        let (mut numbered, mut first_made, mut last_due) = (Vec::new(), None::<i32>, i32::MIN);
        let mut next = 0i64;
        let schema = promises[0].schema();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("promise", DataType::Int64, false));
        let numbered_schema = Arc::new(Schema::new(fields));
        for b in &promises {
            let made = cast(b.column(1), &DataType::Date32)?;
            let made = made.as_primitive::<Date32Type>();
            if let Some(day) = min(made) {
                first_made = Some(first_made.map_or(day, |d| d.min(day)));
            }
            let due = cast(b.column(2), &DataType::Date32)?;
            if let Some(day) = max(due.as_primitive::<Date32Type>()) {
                last_due = last_due.max(day);
            }
            let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
                next..next + b.num_rows() as i64,
            ));
            next += b.num_rows() as i64;
            let mut columns = b.columns().to_vec();
            columns.push(ids);
            numbered.push(RecordBatch::try_new(numbered_schema.clone(), columns)?);
        }
        drop(promises);
        let after = match first_made {
            Some(day) => format!("AND payment_date > {}", dates::sql_literal(day)),
            None => String::new(),
        };
        let until = dates::sql_literal(last_due.saturating_add(grace as i32));

        // A session of its own (the functions and rules of this one, a catalog of its
        // own): the promises in memory, beside this session's two tables.
        let state = session_state(session)?;
        let mut private = SessionStateBuilder::new_from_existing(state.clone())
            .with_config(
                state
                    .config()
                    .clone()
                    .with_create_default_catalog_and_schema(true),
            )
            .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
            .build();
        small_builds(&mut private);
        let ctx = SessionContext::new_with_state(private);
        ctx.register_table(
            "pkr_promises",
            Arc::new(MemTable::try_new(numbered_schema, vec![numbered])?),
        )?;
        for name in [PAYMENTS_BY_MONTH, INVOICES_PAID] {
            let table = state
                .schema_for_ref(name)?
                .table(name)
                .await?
                .ok_or_else(|| exec_datafusion_err!("promise_kept_rate: no table {name}"))?;
            ctx.register_table(name, table)?;
        }
        let due = format!("p.promise_date + INTERVAL '{grace} days'");
        let sql = format!(
            "WITH window_payments AS (
               SELECT invoice_id, payment_date, amount FROM {PAYMENTS_BY_MONTH}
               WHERE payment_date <= {until} {after}),
             within AS (
               SELECT p.promise, sum(y.amount) AS within
               FROM pkr_promises p
               JOIN window_payments y ON y.invoice_id = p.invoice_id
               WHERE y.payment_date > p.activity_date AND y.payment_date <= {due}
               GROUP BY p.promise),
             judged AS (
               SELECT p.promise_date, p.dimension, i.currency, p.promise_amount,
                      coalesce(w.within, 0) >= p.promise_amount
                        OR (i.amount IS NOT NULL
                            AND (i.amount <= 0
                                 OR (p.activity_date IS NOT NULL
                                     AND i.paid_date <= greatest(p.activity_date, {due})))) AS kept
               FROM pkr_promises p
               JOIN {INVOICES_PAID} i ON i.invoice_id = p.invoice_id
               LEFT JOIN within w ON w.promise = p.promise
               WHERE coalesce(i.invoice_rows, 1) > 0)
             SELECT CAST(date_trunc('month', p.promise_date) AS DATE) AS month, p.dimension, p.currency,
                    count(*) AS promises,
                    count(*) FILTER (WHERE p.kept) AS promises_kept,
                    CAST(sum(p.promise_amount) AS DECIMAL(38, 2)) AS promised_amount,
                    CAST(coalesce(sum(p.promise_amount) FILTER (WHERE p.kept), 0) AS DECIMAL(38, 2)) AS kept_amount
             FROM judged p
             GROUP BY 1, 2, 3
             ORDER BY 1, 2, 3"
        );
        ctx.sql(&sql).await?.collect().await
    }
}

/// No rows, in `schema`'s columns.
fn empty_columns(schema: &SchemaRef) -> Vec<ArrayRef> {
    schema
        .fields()
        .iter()
        .map(|f| datafusion::arrow::array::new_empty_array(f.data_type()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_a_month_whose_end_is_in_the_range() {
        let day = |m, d| dates::from_ymd(2026, m, d).unwrap();
        assert_eq!(
            whole_months(day(1, 31), day(3, 31)),
            (day(1, 1), day(3, 31))
        );
        assert_eq!(whole_months(day(1, 1), day(3, 31)), (day(1, 1), day(3, 31)));
        assert_eq!(
            whole_months(day(1, 15), day(3, 15)),
            (day(1, 1), day(2, 28))
        );
        // No month end inside: nothing.
        let (a, b) = whole_months(day(3, 2), day(3, 20));
        assert!(a > b);
    }
}
