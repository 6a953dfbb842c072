//! `ar_metrics(from, to [, dimension])`: DSO, best possible DSO, ADD, countback DSO and
//! CEI for every month-end snapshot in `[from, to]`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::Result;

use super::{
    Columns, MONEY_SUM, batch, customers_join, dimension_arg, dimension_field, dimension_sql,
    newest_snapshot, ratio,
};
use crate::dates;
use crate::table_function::{Metric, MetricTable, Wanted, collect_sql, date_range_args};

/// How many months countback DSO walks back before it gives up (NULL).
pub const COUNTBACK_MONTHS: usize = 12;

/// The `ar_metrics` table function.
///
/// One row per snapshot date in `[from, to]` (a month end: the period is that calendar
/// month up to the snapshot), per dimension value, per currency:
///
/// - `dso` = ar_end / credit_sales × days
/// - `best_possible_dso` = current_ar_end / credit_sales × days
/// - `average_days_delinquent` = dso − best_possible_dso
/// - `countback_dso`: walk back month by month from the period end, subtracting each
///   month's credit sales from ar_end and adding its days, until the remainder is smaller
///   than that month's sales; then add remainder / that month's sales × its days
///   (NULL if 12 months of sales do not cover ar_end)
/// - `cei` = (ar_begin + credit_sales − ar_end) / (ar_begin + credit_sales − current_ar_end) × 100
///   (N = 1 month; NULL without a previous snapshot)
///
/// Ratios with a zero denominator are NULL. `current` means not yet due
/// (snapshot_date ≤ due_date). Credit sales are the invoices dated in the period; the
/// dimension of a customer is the one it has at the period end.
#[derive(Debug)]
pub struct ArMetrics;

impl TableFunctionImpl for ArMetrics {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let name = "ar_metrics";
        let (from, to) = date_range_args(name, exprs, "(from, to [, dimension])", 3)?;
        let dimension = dimension_arg(name, exprs.get(2))?;
        Ok(Arc::new(MetricTable::new(ArMetricsTable::new(
            from, to, dimension,
        ))))
    }
}

/// What `ar_metrics(...)` computes when scanned.
#[derive(Debug)]
pub struct ArMetricsTable {
    from: i32,
    to: i32,
    dimension: String,
    schema: SchemaRef,
}

impl ArMetricsTable {
    fn new(from: i32, to: i32, dimension: String) -> Self {
        let money = |n: &str, nullable| Field::new(n, MONEY_SUM, nullable);
        let float = |n: &str| Field::new(n, DataType::Float64, true);
        let mut fields = vec![
            Field::new("period_start", DataType::Date32, false),
            Field::new("period_end", DataType::Date32, false),
        ];
        fields.extend(dimension_field(&dimension));
        fields.extend([
            Field::new("currency", DataType::Utf8, false),
            Field::new("days", DataType::Int32, false),
            money("ar_begin", true),
            money("credit_sales", false),
            money("ar_end", false),
            money("current_ar_end", false),
            float("dso"),
            float("best_possible_dso"),
            float("average_days_delinquent"),
            float("countback_dso"),
            float("cei"),
        ]);
        ArMetricsTable {
            from,
            to,
            dimension,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

/// A (period end or snapshot, dimension, currency) key.
type Key = (i32, String, String);

impl ArMetricsTable {
    /// AR and current AR per snapshot, dimension and currency, from the snapshot before
    /// `from` (for ar_begin; at most two months back) to `to`; and the snapshots seen.
    /// The snapshot before is looked up first (from the files' metadata), so that the
    /// balances read no older snapshot: with month-end snapshots one of three, with
    /// daily ones sixty of sixty-two.
    async fn balances(
        &self,
        session: &dyn Session,
    ) -> Result<(BTreeMap<Key, (i128, i128)>, BTreeSet<i32>)> {
        let earliest = self.from - 62;
        let before = newest_snapshot(session, "open_items", Some(self.from - 1)).await?;
        let first = before.map_or(self.from, |day| day.max(earliest));
        let dim = dimension_sql(&self.dimension);
        let join = customers_join(&self.dimension, "o", "o.snapshot_date");
        let balances_sql = format!(
            "SELECT o.snapshot_date, {dim} AS dimension, o.currency,
                    CAST(sum(o.open_amount) AS DECIMAL(38, 2)) AS ar,
                    CAST(coalesce(sum(o.open_amount) FILTER (WHERE o.snapshot_date <= o.due_date), 0)
                         AS DECIMAL(38, 2)) AS current_ar
             FROM open_items o {join}
             WHERE o.snapshot_date BETWEEN {} AND {}
             GROUP BY 1, 2, 3",
            dates::sql_literal(first),
            dates::sql_literal(self.to)
        );
        let mut balances = BTreeMap::new();
        let mut snapshots = BTreeSet::new();
        for b in collect_sql(session, &balances_sql).await? {
            let c = Columns(&b);
            for row in 0..b.num_rows() {
                let snapshot = c.date(0, row);
                snapshots.insert(snapshot);
                balances.insert(
                    (snapshot, c.text(1, row), c.text(2, row)),
                    (c.cents(3, row), c.cents(4, row)),
                );
            }
        }
        Ok((balances, snapshots))
    }

    /// Credit sales per calendar month over the `months` months up to each
    /// period end (the period's own month up to the period end), per period, dimension and
    /// currency; and the periods (the snapshots of `customers` in `[from, to]`).
    ///
    /// Invoices are summed once per customer and *span*, not once per period: a span is a
    /// calendar month, cut at every period end inside it (a mid-month snapshot), so that
    /// each period's months are whole spans. Each span is then added to the periods whose
    /// months hold it (a small table of period, span and month), and only then split by the
    /// customer's dimension at that period end. Without a dimension, no customer is looked
    /// up at all.
    async fn sales(
        &self,
        session: &dyn Session,
        months: usize,
    ) -> Result<(BTreeMap<Key, BTreeMap<i32, i128>>, BTreeSet<i32>)> {
        let periods_sql = format!(
            "SELECT DISTINCT snapshot_date FROM customers WHERE snapshot_date BETWEEN {} AND {}",
            dates::sql_literal(self.from),
            dates::sql_literal(self.to)
        );
        let mut periods = BTreeSet::new();
        for b in collect_sql(session, &periods_sql).await? {
            let c = Columns(&b);
            periods.extend((0..b.num_rows()).map(|row| c.date(0, row)));
        }
        let mut sales: BTreeMap<Key, BTreeMap<i32, i128>> = BTreeMap::new();
        let (Some(&first), Some(&last)) = (periods.first(), periods.last()) else {
            return Ok((sales, BTreeSet::new()));
        };
        let spans = Spans::new(&periods, months);
        let earliest = months_back(dates::month_of(first).1, months - 1);
        let (customer, join) = match self.dimension.as_str() {
            "all" => ("", String::new()),
            _ => (
                "i.customer_id, ",
                customers_join(&self.dimension, "sold", "s.period"),
            ),
        };
        let sql = format!(
            "WITH spans(period, month, part, first_day) AS (VALUES {values}),
             sold AS (
               SELECT {customer}i.currency, date_trunc('month', i.invoice_date) AS month,
                      {part} AS part, sum(i.amount) AS amount
               FROM {invoices} i
               WHERE i.invoice_date >= {earliest} AND i.invoice_date <= {last}
               GROUP BY {keys})
             SELECT s.period, {dim} AS dimension, sold.currency, s.first_day,
                    CAST(sum(sold.amount) AS DECIMAL(38, 2)) AS sales
             FROM sold JOIN spans s ON s.month = sold.month AND s.part = sold.part {join}
             GROUP BY 1, 2, 3, 4",
            keys = if customer.is_empty() {
                "1, 2, 3"
            } else {
                "1, 2, 3, 4"
            },
            values = spans.values(),
            part = spans.part_sql("i.invoice_date"),
            dim = dimension_sql(&self.dimension),
            earliest = dates::sql_literal(earliest),
            last = dates::sql_literal(last),
            invoices = super::invoices_table(session),
        );
        for b in collect_sql(session, &sql).await? {
            let c = Columns(&b);
            for row in 0..b.num_rows() {
                let period = c.date(0, row);
                sales
                    .entry((period, c.text(1, row), c.text(2, row)))
                    .or_default()
                    .insert(c.date(3, row), c.cents(4, row));
            }
        }
        Ok((sales, periods))
    }
}

/// The last day of the month of `day`.
fn month_end(day: i32) -> i32 {
    let (days, first) = dates::month_of(day);
    first + days - 1
}

/// The first day of the month `back` months before the month starting on `first`.
fn months_back(first: i32, back: usize) -> i32 {
    (0..back).fold(first, |f, _| dates::month_of(f - 1).1)
}

/// The spans invoices are summed over: calendar months, cut at each period end that is
/// not a month's last day. A span is a month and a part: part `k` ≥ 1 runs up to the
/// month's `k`-th cut (from the previous one), part 0 is the rest of the month.
struct Spans {
    /// Period ends that cut a month (not its last day), ascending.
    cuts: Vec<i32>,
    /// (period, first day of a month, part): the spans each period's months hold.
    rows: Vec<(i32, i32, usize)>,
}

impl Spans {
    fn new(periods: &BTreeSet<i32>, months: usize) -> Spans {
        let cuts: Vec<i32> = periods
            .iter()
            .copied()
            .filter(|p| *p != month_end(*p))
            .collect();
        let mut rows = Vec::new();
        for &period in periods {
            let own = dates::month_of(period).1;
            let mut month = own;
            for _ in 0..months {
                // Whole months hold every part; the period's own month only the parts up
                // to the period end.
                let whole = month != own || period == month_end(period);
                let in_month = cuts.iter().filter(|c| dates::month_of(**c).1 == month);
                for (k, &cut) in in_month.enumerate() {
                    if whole || cut <= period {
                        rows.push((period, month, k + 1));
                    }
                }
                if whole {
                    rows.push((period, month, 0));
                }
                month = dates::month_of(month - 1).1;
            }
        }
        Spans { cuts, rows }
    }

    /// The part of the month of the date `column` (SQL).
    fn part_sql(&self, column: &str) -> String {
        if self.cuts.is_empty() {
            return "0".to_string();
        }
        let mut arms = Vec::new();
        let mut k = 0;
        let mut month = None;
        for &cut in &self.cuts {
            let first = dates::month_of(cut).1;
            k = if month == Some(first) { k + 1 } else { 1 };
            month = Some(first);
            arms.push(format!(
                "WHEN {column} >= {} AND {column} <= {} THEN {k}",
                dates::sql_literal(first),
                dates::sql_literal(cut)
            ));
        }
        format!("CASE {} ELSE 0 END", arms.join(" "))
    }

    /// The (period, month as a timestamp, part, month's first day) rows as SQL `VALUES`.
    fn values(&self) -> String {
        self.rows
            .iter()
            .map(|(period, month, part)| {
                format!(
                    "({}, CAST({month} AS TIMESTAMP), {part}, {month})",
                    dates::sql_literal(*period),
                    month = dates::sql_literal(*month),
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod span_tests {
    use super::*;

    #[test]
    fn each_period_holds_its_twelve_months_up_to_its_end() {
        let day = |m, d| dates::from_ymd(2026, m, d).unwrap();
        // Month ends, a cut on the 1st and one mid-month.
        let periods: BTreeSet<i32> = [day(8, 31), day(9, 1), day(9, 30), day(10, 15), day(10, 31)]
            .into_iter()
            .collect();
        let spans = Spans::new(&periods, COUNTBACK_MONTHS);
        assert_eq!(spans.cuts, vec![day(9, 1), day(10, 15)]);
        let of = |p: i32| -> Vec<(i32, usize)> {
            let mut v: Vec<_> = spans
                .rows
                .iter()
                .filter(|r| r.0 == p)
                .map(|r| (r.1, r.2))
                .collect();
            v.sort();
            v
        };
        // 2026-09-01 holds September's first part only, and 11 whole months before.
        let sept_first = of(day(9, 1));
        assert_eq!(sept_first.last(), Some(&(day(9, 1), 1)));
        assert_eq!(sept_first.len(), 12);
        // 2026-09-30 holds both parts of September.
        assert!(of(day(9, 30)).contains(&(day(9, 1), 0)));
        assert!(of(day(9, 30)).contains(&(day(9, 1), 1)));
        // 2026-10-15: October's first part; 2026-10-31: October whole.
        assert!(!of(day(10, 15)).contains(&(day(10, 1), 0)));
        assert!(of(day(10, 31)).contains(&(day(10, 1), 0)));
        assert!(of(day(10, 31)).contains(&(day(10, 1), 1)));
        // Twelve months back, no more: 2026-10-31 starts in November 2025.
        assert_eq!(
            of(day(10, 31)).first().map(|r| r.0),
            dates::from_ymd(2025, 11, 1)
        );
        let sql = spans.part_sql("d");
        assert!(sql.contains("THEN 1"), "{sql}");
        assert!(!sql.contains("THEN 2"), "one cut per month here: {sql}");
    }
}

#[async_trait]
impl Metric for ArMetricsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn function(&self) -> &'static str {
        "ar_metrics"
    }
    fn arguments(&self) -> String {
        let (from, to) = (dates::text(self.from), dates::text(self.to));
        format!("{from}, {to}, {}", self.dimension)
    }

    async fn compute(&self, session: &dyn Session, wanted: Wanted<'_>) -> Result<RecordBatch> {
        let (balances, snapshots) = self.balances(session).await?;
        // Countback DSO walks back a year of monthly sales; the other metrics need the
        // period's own month only.
        let countback = wanted.column("countback_dso");
        let months = if countback { COUNTBACK_MONTHS } else { 1 };
        let (sales, periods) = self.sales(session, months).await?;
        // Every (period, dimension, currency) with an opening balance (at the snapshot
        // before), a closing balance or credit sales in the period: the same rows
        // whichever columns are read.
        let sold_in_period = sales
            .iter()
            .filter(|(key, months)| months.contains_key(&dates::month_of(key.0).1))
            .map(|(key, _)| key.clone());
        let opening = balances
            .keys()
            .filter_map(|(snapshot, dimension, currency)| {
                let next = snapshots.range(snapshot + 1..).next().copied()?;
                Some((next, dimension.clone(), currency.clone()))
            });
        let keys: BTreeSet<Key> = balances
            .keys()
            .cloned()
            .chain(opening)
            .chain(sold_in_period)
            .filter(|(s, _, _)| *s >= self.from && *s <= self.to && periods.contains(s))
            .collect();

        let mut out = Output::default();
        for key in keys {
            let (period_end, dimension, currency) = &key;
            let (_, period_start) = dates::month_of(*period_end);
            let days = period_end - period_start + 1;
            let monthly = sales.get(&key);
            let month_sales =
                |first: i32| monthly.and_then(|m| m.get(&first)).copied().unwrap_or(0);
            let credit_sales = month_sales(period_start);
            let (ar_end, current_end) = balances.get(&key).copied().unwrap_or((0, 0));
            let previous = snapshots.range(..period_end).next_back().copied();
            let ar_begin = previous.map(|p| {
                balances
                    .get(&(p, dimension.clone(), currency.clone()))
                    .map_or(0, |b| b.0)
            });

            let per_sales = |amount: i128| ratio(amount, credit_sales).map(|r| r * days as f64);
            let dso = per_sales(ar_end);
            let best = per_sales(current_end);
            let countback = countback
                .then(|| countback_dso(ar_end, period_start, days, &month_sales))
                .flatten();
            let cei = ar_begin.and_then(|begin| {
                ratio(
                    begin + credit_sales - ar_end,
                    begin + credit_sales - current_end,
                )
                .map(|r| r * 100.0)
            });

            out.period_start.push(period_start);
            out.period_end.push(*period_end);
            out.dimension.push(dimension.clone());
            out.currency.push(currency.clone());
            out.days.push(days);
            out.ar_begin.push(ar_begin);
            out.credit_sales.push(credit_sales);
            out.ar_end.push(ar_end);
            out.current_ar_end.push(current_end);
            out.dso.push(dso);
            out.best.push(best);
            out.add.push(dso.zip(best).map(|(d, b)| d - b));
            out.countback.push(countback);
            out.cei.push(cei);
        }
        batch(&self.schema, out.into_columns(&self.dimension)?)
    }
}

/// Countback DSO (DOMAIN.md §3), walking back from the period's month.
fn countback_dso(
    ar_end: i128,
    period_start: i32,
    period_days: i32,
    month_sales: &dyn Fn(i32) -> i128,
) -> Option<f64> {
    let mut remaining = ar_end;
    let mut total_days = 0.0;
    let mut first = period_start;
    for back in 0..COUNTBACK_MONTHS {
        let days = if back == 0 {
            period_days
        } else {
            dates::month_of(first).0
        };
        if remaining <= 0 {
            return Some(total_days);
        }
        let sales = month_sales(first);
        if remaining < sales {
            return Some(total_days + remaining as f64 / sales as f64 * days as f64);
        }
        remaining -= sales;
        total_days += days as f64;
        // The first day of the previous month.
        first = dates::month_of(first - 1).1;
    }
    None
}

#[derive(Default)]
struct Output {
    period_start: Vec<i32>,
    period_end: Vec<i32>,
    dimension: Vec<String>,
    currency: Vec<String>,
    days: Vec<i32>,
    ar_begin: Vec<Option<i128>>,
    credit_sales: Vec<i128>,
    ar_end: Vec<i128>,
    current_ar_end: Vec<i128>,
    dso: Vec<Option<f64>>,
    best: Vec<Option<f64>>,
    add: Vec<Option<f64>>,
    countback: Vec<Option<f64>>,
    cei: Vec<Option<f64>>,
}

impl Output {
    fn into_columns(self, dimension: &str) -> Result<Vec<ArrayRef>> {
        let money = |v: Vec<i128>| -> Result<ArrayRef> {
            Ok(Arc::new(Decimal128Array::from(v).with_data_type(MONEY_SUM)))
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(self.period_start)),
            Arc::new(Date32Array::from(self.period_end)),
        ];
        if dimension != "all" {
            columns.push(Arc::new(StringArray::from(self.dimension)));
        }
        columns.push(Arc::new(StringArray::from(self.currency)));
        columns.push(Arc::new(Int32Array::from(self.days)));
        columns.push(Arc::new(
            Decimal128Array::from(self.ar_begin).with_data_type(MONEY_SUM),
        ));
        columns.push(money(self.credit_sales)?);
        columns.push(money(self.ar_end)?);
        columns.push(money(self.current_ar_end)?);
        for v in [self.dso, self.best, self.add, self.countback, self.cei] {
            columns.push(Arc::new(Float64Array::from(v)));
        }
        Ok(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countback_walks_back_until_the_remainder_fits() {
        // June (30 days) sales 100, May (31) 200, April (30) 300; AR 350:
        // 350 - 100 (30 days) = 250; 250 - 200 (31 days) = 50; 50 / 300 * 30 = 5 → 66 days.
        let june = dates::from_ymd(2026, 6, 1).unwrap();
        let may = dates::from_ymd(2026, 5, 1).unwrap();
        let april = dates::from_ymd(2026, 4, 1).unwrap();
        let sales = move |first: i32| match first {
            f if f == june => 100,
            f if f == may => 200,
            f if f == april => 300,
            _ => 0,
        };
        assert_eq!(countback_dso(350, june, 30, &sales), Some(66.0));
        // Within the first month: 50 / 100 * 30 = 15.
        assert_eq!(countback_dso(50, june, 30, &sales), Some(15.0));
        // Exactly one month of sales.
        assert_eq!(countback_dso(100, june, 30, &sales), Some(30.0));
        // Nothing open.
        assert_eq!(countback_dso(0, june, 30, &sales), Some(0.0));
        // More than 12 months of sales: unknown.
        assert_eq!(countback_dso(10_000, june, 30, &sales), None);
    }
}
