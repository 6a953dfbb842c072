//! `roll_rates(from, to [, dimension [, bounds]])`: how much of each aging bucket rolled
//! into the next bucket between consecutive snapshots.

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
    ratio, text_arg,
};
use crate::bounds::AgingBounds;
use crate::dates;
use crate::table_function::{Metric, MetricTable, Wanted, collect_sql, date_range_args};

/// The `roll_rates` table function.
///
/// For every snapshot `t` in `[from, to]` and the snapshot before it, per dimension
/// value, currency and bucket `b` (all but the oldest): `balance_from` is the open
/// balance in `b` at the previous snapshot, `balance_rolled` the part of it (measured at
/// the previous snapshot) whose items are in bucket `b + 1` at `t`, and `roll_rate`
/// their ratio (NULL when `balance_from` is zero). Buckets are those of `aging_bucket`
/// with the given bounds (default 30,60,90,120); `from_rank` and `to_rank` are their
/// `aging_bucket_rank`s, so `ORDER BY from_rank` sorts in aging order.
#[derive(Debug)]
pub struct RollRates;

impl TableFunctionImpl for RollRates {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let name = "roll_rates";
        let (from, to) = date_range_args(name, exprs, "(from, to [, dimension [, bounds]])", 4)?;
        let dimension = dimension_arg(name, exprs.get(2))?;
        let bounds = match text_arg(name, "bounds", exprs.get(3))? {
            Some(text) => AgingBounds::parse(&text)?,
            None => AgingBounds::default(),
        };
        let mut fields = vec![
            Field::new("period_end", DataType::Date32, false),
            Field::new("previous_snapshot", DataType::Date32, false),
        ];
        fields.extend(dimension_field(&dimension));
        fields.extend([
            Field::new("currency", DataType::Utf8, false),
            Field::new("from_bucket", DataType::Utf8, false),
            Field::new("to_bucket", DataType::Utf8, false),
            Field::new("from_rank", DataType::Int32, false),
            Field::new("to_rank", DataType::Int32, false),
            Field::new("balance_from", MONEY_SUM, false),
            Field::new("balance_rolled", MONEY_SUM, false),
            Field::new("roll_rate", DataType::Float64, true),
        ]);
        Ok(Arc::new(MetricTable::new(RollRatesTable {
            from,
            to,
            dimension,
            bounds,
            schema: Arc::new(Schema::new(fields)),
        })))
    }
}

/// What `roll_rates(...)` computes when scanned.
#[derive(Debug)]
pub struct RollRatesTable {
    from: i32,
    to: i32,
    dimension: String,
    bounds: AgingBounds,
    schema: SchemaRef,
}

impl RollRatesTable {
    /// Consecutive snapshot pairs (previous, period end) whose period end is in the range.
    async fn snapshot_pairs(&self, session: &dyn Session) -> Result<Vec<(i32, i32)>> {
        let snapshots_sql = format!(
            "SELECT DISTINCT snapshot_date FROM open_items WHERE snapshot_date <= {} ORDER BY 1",
            dates::sql_literal(self.to)
        );
        let mut snapshots = Vec::new();
        for b in collect_sql(session, &snapshots_sql).await? {
            let c = Columns(&b);
            snapshots.extend((0..b.num_rows()).map(|row| c.date(0, row)));
        }
        Ok(snapshots
            .windows(2)
            .map(|w| (w[0], w[1]))
            .filter(|(_, t)| *t >= self.from && *t <= self.to)
            .collect())
    }
}

#[async_trait]
impl Metric for RollRatesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn function(&self) -> &'static str {
        "roll_rates"
    }
    fn arguments(&self) -> String {
        let (from, to) = (dates::text(self.from), dates::text(self.to));
        format!("{from}, {to}, {}, '{}'", self.dimension, self.bounds)
    }

    async fn compute(&self, session: &dyn Session, _wanted: Wanted<'_>) -> Result<RecordBatch> {
        let pairs = self.snapshot_pairs(session).await?;
        let last_rank = self.bounds.labels().len() - 1;
        let mut rows = RollRows::default();
        // One pair of snapshots at a time: each join holds two snapshots' items, not all.
        let bounds = self.bounds.to_string();
        for (prev, t) in pairs {
            let sql = format!(
                "WITH before AS (
                   SELECT o.invoice_id, o.currency, {dim} AS dimension, o.open_amount,
                          aging_bucket_rank(o.due_date, o.snapshot_date, '{bounds}') AS rank_before
                   FROM open_items o {join}
                   WHERE o.snapshot_date = {prev}),
                 after AS (
                   SELECT o.invoice_id,
                          aging_bucket_rank(o.due_date, o.snapshot_date, '{bounds}') AS rank_after
                   FROM open_items o
                   WHERE o.snapshot_date = {t} AND o.due_date < o.snapshot_date)
                 SELECT {t} AS t, {prev} AS prev, b.dimension, b.currency, b.rank_before,
                        CAST(sum(b.open_amount) AS DECIMAL(38, 2)) AS balance_from,
                        CAST(coalesce(sum(b.open_amount) FILTER (WHERE a.rank_after = b.rank_before + 1), 0)
                             AS DECIMAL(38, 2)) AS balance_rolled
                 FROM before b
                 LEFT JOIN after a ON a.invoice_id = b.invoice_id
                 GROUP BY 1, 2, 3, 4, 5
                 ORDER BY 3, 4, 5",
                dim = dimension_sql(&self.dimension),
                join = customers_join(&self.dimension, "o", "o.snapshot_date"),
                prev = dates::sql_literal(prev),
                t = dates::sql_literal(t),
            );
            for b in collect_sql(session, &sql).await? {
                let c = Columns(&b);
                let ranks = datafusion::arrow::array::AsArray::as_primitive::<
                    datafusion::arrow::datatypes::Int32Type,
                >(b.column(4));
                for row in 0..b.num_rows() {
                    // The oldest bucket does not roll. (Dropped here, not in the SQL:
                    // unfiltered, `before` is the join's larger side, so the planner
                    // builds its hash table from the overdue items of `after`.)
                    let rank = ranks.value(row) as usize;
                    if rank >= last_rank {
                        continue;
                    }
                    let (from_balance, rolled) = (c.cents(5, row), c.cents(6, row));
                    rows.period_end.push(c.date(0, row));
                    rows.previous.push(c.date(1, row));
                    rows.dimension.push(c.text(2, row));
                    rows.currency.push(c.text(3, row));
                    rows.from_bucket.push(self.bounds.labels()[rank].clone());
                    rows.to_bucket.push(self.bounds.labels()[rank + 1].clone());
                    rows.from_rank.push(rank as i32);
                    rows.to_rank.push(rank as i32 + 1);
                    rows.balance_from.push(from_balance);
                    rows.balance_rolled.push(rolled);
                    rows.roll_rate.push(ratio(rolled, from_balance));
                }
            }
        }
        batch(&self.schema, rows.into_columns(&self.dimension))
    }
}

#[derive(Default)]
struct RollRows {
    period_end: Vec<i32>,
    previous: Vec<i32>,
    dimension: Vec<String>,
    currency: Vec<String>,
    from_bucket: Vec<String>,
    to_bucket: Vec<String>,
    from_rank: Vec<i32>,
    to_rank: Vec<i32>,
    balance_from: Vec<i128>,
    balance_rolled: Vec<i128>,
    roll_rate: Vec<Option<f64>>,
}

impl RollRows {
    /// The output columns (the dimension's only when split by one).
    fn into_columns(self, dimension: &str) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(self.period_end)),
            Arc::new(Date32Array::from(self.previous)),
        ];
        if dimension != "all" {
            columns.push(Arc::new(StringArray::from(self.dimension)));
        }
        columns.extend([
            Arc::new(StringArray::from(self.currency)) as ArrayRef,
            Arc::new(StringArray::from(self.from_bucket)),
            Arc::new(StringArray::from(self.to_bucket)),
            Arc::new(Int32Array::from(self.from_rank)),
            Arc::new(Int32Array::from(self.to_rank)),
            Arc::new(Decimal128Array::from(self.balance_from).with_data_type(MONEY_SUM)),
            Arc::new(Decimal128Array::from(self.balance_rolled).with_data_type(MONEY_SUM)),
            Arc::new(Float64Array::from(self.roll_rate)),
        ]);
        columns
    }
}
