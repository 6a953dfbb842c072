//! The queues as a table: their inputs from the warehouse (SQL), the rows of the call
//! lists, the overdue invoices behind them, and the collectors table.

use std::collections::HashMap;
use std::sync::Arc;

use arq_udfs::table_function::collect_sql;
use arq_udfs::table_function::concat_owned;
use arq_udfs::table_function::small_builds;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    RecordBatch, StringArray, StringBuilder, UInt32Array, make_comparator,
};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionState;
use rust_decimal::Decimal;

use super::{Collector, QueueCustomer, QueueEntry, build_queues};
use crate::error::{ModelError, Result};
use crate::features::{Settling, cte_body, has_table, replace_cte};
use crate::money::{self, MONEY};
use crate::named::Named;
use crate::policy::QueuePolicy;
use crate::scores::Scores;

/// The query for the queues' inputs; `{day}` is the snapshot (days since 1970), `{grace}`
/// the promises' grace in days.
pub const QUEUE_INPUTS_SQL: &str = include_str!("../../sql/queue_inputs.sql");

/// The promises of the 12 months before a snapshot and whether each was broken: CTEs
/// that [`QUEUE_INPUTS_SQL`] and the limits' inputs put in place of `{promises}`.
pub const PROMISES_SQL: &str = include_str!("../../sql/promises.sql");

/// `promised_paid` of [`PROMISES_SQL`] read from the settlement table
/// ([`crate::features::SETTLEMENT_TABLE`]): every settled invoice, not only the promised
/// ones — `promise_outcomes`' LEFT JOIN on the invoice id keeps the same rows, and the
/// promises (52 M activities at a million customers) are read once instead of twice.
const PROMISED_PAID_FROM_TABLE: &str = "    SELECT invoice_id, CAST(paid_date AS INT) AS paid_day
    FROM invoice_settlement
    WHERE CAST(paid_date AS INT) <= {day}";

/// `sql` with the promises' CTEs in place of `{promises}`, and `{day}` and `{grace}`
/// filled. Where [`share_promise_summaries`] kept a [`PROMISE_SUMMARIES`] CTE of `sql`
/// for this day and grace in `session`, the CTE reads the kept rows; when no CTE left
/// reads the promises' outcomes, none are computed. Else `promise_outcomes` is computed in
/// the query (the promised invoices' settlement read from the settlement table where the
/// session has it, [`Settling::of`]).
pub fn with_promises(sql: &str, day: i32, grace: i32, session: &dyn Session) -> String {
    let fill = |sql: &str| filled(sql, day, grace);
    let mut sql = fill(sql);
    for cte in PROMISE_SUMMARIES {
        let Some(body) = cte_body(&sql, cte) else {
            continue;
        };
        let kept = summary_name(cte, body, day, grace);
        if has_table(session, &kept) {
            sql = replace_cte(&sql, cte, &format!("    SELECT * FROM {kept}"));
        }
    }
    let promises = if !sql.contains("promise_outcomes") {
        String::new()
    } else {
        match Settling::of(session) {
            Settling::FromPayments => fill(PROMISES_SQL),
            Settling::FromTable => fill(&replace_cte(
                PROMISES_SQL,
                "promised_paid",
                PROMISED_PAID_FROM_TABLE,
            )),
        }
    };
    sql.replace("{promises}", &promises)
}

/// `sql` with `{day}` and `{grace}` filled.
fn filled(sql: &str, day: i32, grace: i32) -> String {
    sql.replace("{day}", &day.to_string())
        .replace("{grace}", &grace.to_string())
}

/// The CTEs of a night's queries that sum up `promise_outcomes` per customer: the
/// queues' `promise_history` ([`QUEUE_INPUTS_SQL`]) and the limits' `broken` (the
/// limits' inputs).
const PROMISE_SUMMARIES: [&str; 2] = ["promise_history", "broken"];

/// The name under which [`share_promise_summaries`] keeps the rows of CTE `cte` with
/// `body` (filled but for `{promises}`) for snapshot `day` with `grace` days: a query
/// with another body, day or grace never reads them.
fn summary_name(cte: &str, body: &str, day: i32, grace: i32) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    (body, day, grace).hash(&mut hasher);
    format!("arq_promises_{cte}_{:016x}", hasher.finish())
}

/// The promises' outcomes (`promise_outcomes` of [`PROMISES_SQL`]: the promises of the
/// 12 months before snapshot `day`, each broken or not with `grace` days) computed once,
/// and each [`PROMISE_SUMMARIES`] CTE of `queries` (with `{promises}`, `{day}` and
/// `{grace}` to fill) computed from them and kept in `session`, where [`with_promises`]
/// reads them: a night's queues and limits then join the year's promises (5.1 M at a
/// million customers) to the settled invoices once, not twice, and hold their sums per
/// customer, not the promises. Returns the names kept, for [`forget_promise_summaries`].
pub async fn share_promise_summaries(
    session: &SessionState,
    day: i32,
    grace: i32,
    queries: &[&str],
) -> Result<Vec<String>> {
    let outcomes = summary_name("outcomes", "", day, grace);
    let sql = with_promises(
        "WITH {promises}\nkept AS (SELECT * FROM promise_outcomes)\nSELECT * FROM kept",
        day,
        grace,
        session,
    );
    // The year's promises built whole and probed by the settled invoices (120 M at a
    // million customers) as they are read, not both sides hash-partitioned: alone,
    // 4.7-4.9 -> 4.0 s and 8.5 -> 6.7 s of CPU (benches/README.md, tenth session).
    let mut state = session.clone();
    small_builds(&mut state);
    let table = collected(state, &sql).await?;
    register(session, &outcomes, table)?;
    let mut kept = Vec::new();
    let summed = async {
        for query in queries {
            let filled = filled(query, day, grace);
            for cte in PROMISE_SUMMARIES {
                let Some(body) = cte_body(&filled, cte) else {
                    continue;
                };
                let name = summary_name(cte, body, day, grace);
                if kept.contains(&name) || has_table(session, &name) {
                    continue;
                }
                let sql = format!(
                    "WITH promise_outcomes AS (SELECT * FROM {outcomes}),\n{cte} AS (\n{body}\n)\nSELECT * FROM {cte}"
                );
                let table = collected(session.clone(), &sql).await?;
                register(session, &name, table)?;
                kept.push(name);
            }
        }
        Ok::<_, ModelError>(())
    }
    .await;
    forget_promise_summaries(session, &[outcomes])?;
    if let Err(e) = summed {
        forget_promise_summaries(session, &kept)?;
        return Err(e);
    }
    Ok(kept)
}

/// The rows of `sql` run in `state`, as a table.
async fn collected(state: SessionState, sql: &str) -> Result<MemTable> {
    let plan = state.create_logical_plan(sql).await?;
    let schema = Arc::new(plan.schema().as_arrow().clone());
    let batches = DataFrame::new(state, plan).collect().await?;
    Ok(MemTable::try_new(schema, vec![batches])?)
}

/// Registers `table` in `session` as `name`.
fn register(session: &SessionState, name: &str, table: MemTable) -> Result<()> {
    session
        .schema_for_ref(name)?
        .register_table(name.to_string(), Arc::new(table))?;
    Ok(())
}

/// Forgets the tables [`share_promise_summaries`] kept (their memory is freed once no
/// query holds them).
pub fn forget_promise_summaries(session: &SessionState, names: &[String]) -> Result<()> {
    for name in names {
        session
            .schema_for_ref(name.as_str())?
            .deregister_table(name)?;
    }
    Ok(())
}

/// The columns of a call list.
pub fn queue_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let date = |name: &str| Field::new(name, DataType::Date32, true);
    let int = |name: &str, nullable: bool| Field::new(name, DataType::Int32, nullable);
    Arc::new(Schema::new(vec![
        text("queue", false),
        Field::new("rank", DataType::UInt32, false),
        text("customer_id", false),
        text("name", false),
        text("currency", false),
        text("assigned_to", true),
        Field::new("overflow", DataType::Boolean, false),
        text("action", false),
        text("why_now", false),
        text("contact_name", true),
        text("contact_phone", true),
        text("contact_email", true),
        Field::new("overdue", MONEY, false),
        Field::new("workable", MONEY, false),
        int("overdue_items", false),
        int("max_dpd", false),
        Field::new("pd", DataType::Float64, false),
        int("score", false),
        Field::new("expected_loss", MONEY, false),
        text("risk_reasons", false),
        text("why_here", false),
        date("promise_date"),
        Field::new("promise_amount", MONEY, true),
        date("last_contact_date"),
        text("last_contact_kind", true),
        text("last_contact_outcome", true),
        int("promises_12m", false),
        int("broken_promises_12m", false),
        date("last_broken_promise_date"),
        Field::new("last_broken_promise_amount", MONEY, true),
        date("dispute_since"),
    ]))
}

/// The work queues of the scored snapshot: every eligible customer once, ordered by
/// queue and rank, with PDs, scores and reasons from `scores`.
pub async fn queue_snapshot(
    session: &dyn Session,
    scores: &Scores,
    policy: &QueuePolicy,
) -> Result<RecordBatch> {
    let QueueInputs { customers, context } =
        queue_inputs(session, scores, policy.promise_grace_days).await?;
    if customers.is_empty() {
        return Ok(RecordBatch::new_empty(queue_schema()));
    }
    let collectors = load_collectors(session).await?;
    let mut entries = build_queues(&customers, &collectors, policy, scores.day);
    entries.sort_by(|a, b| a.placement.cmp(&b.placement).then(a.rank.cmp(&b.rank)));
    queue_batch(&entries, &customers, &context, scores)
}

/// The rows of the queues in `entries`' order; `customers`, `context` (the
/// [`CONTEXT_COLUMNS`] of the queue inputs) and `scores` are by customer.
fn queue_batch<'a>(
    entries: &'a [QueueEntry],
    customers: &'a [QueueCustomer],
    context: &RecordBatch,
    scores: &Scores,
) -> Result<RecordBatch> {
    let row_of: HashMap<&str, usize> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.customer_id.as_str(), i))
        .collect();
    let rows: Vec<usize> = entries
        .iter()
        .map(|e| row_of[e.customer_id.as_str()])
        .collect();
    let cs: Vec<&QueueCustomer> = rows.iter().map(|&r| &customers[r]).collect();
    // Money of each row, named by customer when it does not fit Decimal(18, 2).
    let money_column = |what: &str, f: &dyn Fn(usize) -> Option<Decimal>| -> Result<ArrayRef> {
        let cents = (0..entries.len())
            .map(|i| {
                f(i).map(|a| {
                    money::to_cents(a, || format!("{what} of customer {}", cs[i].customer_id))
                })
                .transpose()
            })
            .collect::<Result<Vec<Option<i128>>>>()?;
        Ok(Arc::new(Decimal128Array::from(cents).with_data_type(MONEY)))
    };
    // Text borrowed from the entries, customers and context (half a million rows of a
    // dozen text columns at a million customers: no copy of each value on the way).
    let n = entries.len();
    let texts = |f: &dyn Fn(usize) -> Option<&'a str>| text_column(n, f);
    // Who to call and what happened before, read where the query left them.
    let c = Named::new(context, "the queue inputs");
    let (name, contact, phone, email) = (
        c.text("name")?,
        c.text("contact_name")?,
        c.text("contact_phone")?,
        c.text("contact_email")?,
    );
    let (kind, outcome) = (c.text("contact_kind")?, c.text("contact_outcome")?);
    let (items, contact_day, promises) = (
        c.int("overdue_items")?,
        c.int("contact_day")?,
        c.int("promises_12m")?,
    );
    fn valid(a: &StringArray, r: usize) -> Option<&str> {
        a.is_valid(r).then(|| a.value(r))
    }
    let contacted = |r: usize| contact_day.is_valid(r);
    let owned_texts = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values((0..n).map(f)))
    };
    let ints = |f: &dyn Fn(usize) -> i32| -> ArrayRef {
        Arc::new(Int32Array::from(
            (0..entries.len()).map(f).collect::<Vec<_>>(),
        ))
    };
    let days = |f: &dyn Fn(usize) -> Option<i32>| -> ArrayRef {
        Arc::new(Date32Array::from(
            (0..entries.len()).map(f).collect::<Vec<_>>(),
        ))
    };
    let e = entries;
    let columns: Vec<ArrayRef> = vec![
        owned_texts(&|i| e[i].placement.queue()),
        Arc::new(UInt32Array::from(
            e.iter().map(|e| e.rank).collect::<Vec<_>>(),
        )),
        texts(&|i| Some(&e[i].customer_id)),
        text_column(n, &|i| Some(name.value(rows[i]))),
        texts(&|i| Some(&cs[i].currency)),
        texts(&|i| e[i].assigned_to.as_deref()),
        Arc::new(BooleanArray::from(
            e.iter().map(|e| e.overflow).collect::<Vec<_>>(),
        )),
        texts(&|i| Some(e[i].action)),
        texts(&|i| Some(&e[i].why_now)),
        text_column(n, &|i| valid(&contact, rows[i])),
        text_column(n, &|i| valid(&phone, rows[i])),
        text_column(n, &|i| valid(&email, rows[i])),
        money_column("overdue", &|i| Some(cs[i].overdue))?,
        money_column("workable overdue", &|i| Some(e[i].workable))?,
        ints(&|i| items.value(rows[i])),
        ints(&|i| scores.max_dpd.value(rows[i])),
        Arc::new(Float64Array::from(
            rows.iter().map(|&r| scores.pd.value(r)).collect::<Vec<_>>(),
        )),
        ints(&|i| scores.score.value(rows[i])),
        money_column("expected loss", &|i| Some(e[i].expected_loss))?,
        owned_texts(&|i| scores.reason_text(rows[i])),
        texts(&|i| Some(&e[i].reason)),
        days(&|i| cs[i].promise.map(|p| p.0)),
        money_column("promise amount", &|i| cs[i].promise.map(|p| p.1))?,
        days(&|i| contacted(rows[i]).then(|| contact_day.value(rows[i]))),
        text_column(n, &|i| contacted(rows[i]).then(|| kind.value(rows[i]))),
        text_column(n, &|i| {
            contacted(rows[i])
                .then(|| valid(&outcome, rows[i]))
                .flatten()
        }),
        ints(&|i| promises.value(rows[i]).max(0)),
        ints(&|i| cs[i].broken_promises_12m as i32),
        days(&|i| cs[i].last_broken.map(|p| p.0)),
        money_column("broken promise amount", &|i| cs[i].last_broken.map(|p| p.1))?,
        days(&|i| cs[i].dispute_since),
    ];
    Ok(RecordBatch::try_new(queue_schema(), columns)?)
}

/// A text column of `n` rows, row `i` being `f(i)`.
fn text_column<'a>(n: usize, f: &dyn Fn(usize) -> Option<&'a str>) -> ArrayRef {
    let mut column = StringBuilder::with_capacity(n, n * 16);
    for i in 0..n {
        column.append_option(f(i));
    }
    Arc::new(column.finish())
}

/// What the queues need of every customer of the scored snapshot, by customer id, with
/// PD and max DPD from `scores`; `grace` is the promises' grace in days. The inputs are
/// read by name from [`QUEUE_INPUTS_SQL`].
pub async fn queue_customers(
    session: &dyn Session,
    scores: &Scores,
    grace: i32,
) -> Result<Vec<QueueCustomer>> {
    Ok(queue_inputs(session, scores, grace).await?.customers)
}

/// The columns of the queue inputs a queue row shows but the queues are not decided by:
/// who to call and what happened before. They stay in the query's columns (at a million
/// customers, copied into each customer's own strings they took 0.3 GB more).
const CONTEXT_COLUMNS: [&str; 9] = [
    "name",
    "contact_name",
    "contact_phone",
    "contact_email",
    "overdue_items",
    "contact_day",
    "contact_kind",
    "contact_outcome",
    "promises_12m",
];

/// The queue inputs: what decides the queues per customer, and the [`CONTEXT_COLUMNS`]
/// of the same customers.
struct QueueInputs {
    customers: Vec<QueueCustomer>,
    context: RecordBatch,
}

async fn queue_inputs(session: &dyn Session, scores: &Scores, grace: i32) -> Result<QueueInputs> {
    let sql = with_promises(QUEUE_INPUTS_SQL, scores.day, grace, session);
    let batches = collect_sql(session, &sql).await?;
    let Some(first) = batches.first() else {
        return Ok(QueueInputs {
            customers: Vec::new(),
            context: RecordBatch::new_empty(Arc::new(Schema::empty())),
        });
    };
    let inputs = concat_owned(&first.schema(), batches)?;
    let n = Named::new(&inputs, "the queue inputs");
    if n.text("customer_id")? != scores.customer_id {
        return Err(ModelError::Data(
            "scores and queue inputs are not in the same customer order".into(),
        ));
    }
    let (segment, collector, currency) = (
        n.text("segment")?,
        n.text("collector_id")?,
        n.text("currency")?,
    );
    let (overdue, disputed, exposure) = (
        n.money("overdue")?,
        n.money("overdue_disputed")?,
        n.money("exposure")?,
    );
    let (promise_amount, broken_amount) =
        (n.money("promise_amount")?, n.money("last_broken_amount")?);
    let promise_day = n.int("promise_day")?;
    let broken = n.int("broken_promises_12m")?;
    let (broken_day, dispute_day) = (n.int("last_broken_day")?, n.int("dispute_day")?);
    let (high_profile, fraud) = (n.flag("high_profile")?, n.flag("fraud_suspected")?);
    let d = money::from_cents;
    // Segments, currencies and collectors are a handful of values: each kept once and
    // shared by its customers (a million owned copies of each: ~0.12 GB, estimated).
    let mut shared: HashMap<&str, Arc<str>> = HashMap::new();
    fn shared_copy<'a>(shared: &mut HashMap<&'a str, Arc<str>>, value: &'a str) -> Arc<str> {
        shared
            .entry(value)
            .or_insert_with(|| Arc::from(value))
            .clone()
    }
    let mut share = |value| shared_copy(&mut shared, value);
    let opt_int = |a: &Int32Array, r: usize| a.is_valid(r).then(|| a.value(r));
    let amount_or_zero =
        |a: &Decimal128Array, r: usize| d(if a.is_valid(r) { a.value(r) } else { 0 });
    let customers = (0..inputs.num_rows())
        .map(|r| QueueCustomer {
            customer_id: scores.customer_id.value(r).to_string(),
            segment: share(segment.value(r)),
            currency: share(currency.value(r)),
            collector_id: collector.is_valid(r).then(|| share(collector.value(r))),
            high_profile: high_profile.value(r),
            fraud_suspected: fraud.value(r),
            overdue: d(overdue.value(r)),
            overdue_disputed: d(disputed.value(r)),
            exposure: d(exposure.value(r)),
            max_dpd: scores.max_dpd.value(r),
            pd: scores.pd.value(r),
            promise: opt_int(&promise_day, r).map(|day| (day, amount_or_zero(&promise_amount, r))),
            broken_promises_12m: broken.value(r).max(0) as u32,
            last_broken: opt_int(&broken_day, r)
                .map(|day| (day, amount_or_zero(&broken_amount, r))),
            dispute_since: opt_int(&dispute_day, r),
        })
        .collect();
    let columns = CONTEXT_COLUMNS
        .iter()
        .map(|name| inputs.schema().index_of(name))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(QueueInputs {
        customers,
        context: inputs.project(&columns)?,
    })
}

/// The overdue invoices behind the call lists at snapshot `day`: one row per open item
/// past due, in no set order — a list orders its customer's items itself (by due date and
/// invoice, [`ITEMS_ORDER`]). Unsorted, the rows are collected as they are read: at a
/// million customers the 2.6 M rows sorted here took 0.68 GB at the sort's peak, 0.14 GB
/// written unsorted.
pub const OVERDUE_ITEMS_SQL: &str = "SELECT customer_id, invoice_id, invoice_date, due_date, \
     days_past_due(due_date, snapshot_date) AS days_past_due, currency, amount, open_amount, \
     disputed, promise_date, promise_amount \
     FROM open_items \
     WHERE CAST(snapshot_date AS INT) = {day} AND days_past_due(due_date, snapshot_date) > 0";

/// The order of one customer's overdue items in a call list: oldest due date first, then
/// by invoice id (unique in a snapshot: the warehouse check refuses an invoice twice).
pub const ITEMS_ORDER: [&str; 2] = ["due_date", "invoice_id"];

/// The overdue invoices of the snapshot (see [`OVERDUE_ITEMS_SQL`]) as one batch.
pub async fn overdue_items(session: &dyn Session, day: i32) -> Result<RecordBatch> {
    let batches = collect_sql(
        session,
        &OVERDUE_ITEMS_SQL.replace("{day}", &day.to_string()),
    )
    .await?;
    match batches.first() {
        Some(first) => Ok(concat_owned(&first.schema(), batches)?),
        None => Err(ModelError::Data(
            "the overdue items query returned no schema".into(),
        )),
    }
}

/// A comparison of two rows of [`overdue_items`]' batch in [`ITEMS_ORDER`] (a null last),
/// to sort one customer's items.
pub fn items_order(
    items: &RecordBatch,
) -> Result<impl Fn(&u32, &u32) -> std::cmp::Ordering + use<>> {
    let options = SortOptions {
        descending: false,
        nulls_first: false,
    };
    let comparators = ITEMS_ORDER
        .iter()
        .map(|name| {
            let column = items.column_by_name(name).ok_or_else(|| {
                ModelError::Data(format!("the overdue items have no column `{name}`"))
            })?;
            Ok(make_comparator(column, column, options)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(move |a: &u32, b: &u32| {
        comparators
            .iter()
            .map(|compare| compare(*a as usize, *b as usize))
            .find(|order| order.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    })
}

/// The `collectors` table.
pub async fn load_collectors(session: &dyn Session) -> Result<Vec<Collector>> {
    let batches = collect_sql(
        session,
        "SELECT collector_id, role, daily_capacity, segments FROM collectors ORDER BY collector_id",
    )
    .await?;
    let mut out = Vec::new();
    for b in &batches {
        let id = cast(b.column(0), &DataType::Utf8)?;
        let role = cast(b.column(1), &DataType::Utf8)?;
        let capacity = cast(b.column(2), &DataType::Int32)?;
        let capacity = capacity.as_primitive::<Int32Type>();
        let segments = b.column(3).as_list::<i32>();
        for r in 0..b.num_rows() {
            let list = cast(&segments.value(r), &DataType::Utf8)?;
            let list = list.as_string::<i32>();
            out.push(Collector {
                collector_id: id.as_string::<i32>().value(r).to_string(),
                role: role.as_string::<i32>().value(r).to_string(),
                daily_capacity: capacity.value(r).max(0) as u32,
                segments: list.iter().flatten().map(str::to_string).collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::limits::LIMIT_INPUTS_SQL;

    /// A query of the CTE `cte` of `sql` alone, after `{promises}`, by customer.
    fn summary_query(sql: &str, cte: &str) -> String {
        let body = cte_body(sql, cte).unwrap();
        format!(
            "WITH {{promises}}\n{cte} AS (\n{body}\n)\nSELECT * FROM {cte} ORDER BY customer_id"
        )
    }

    async fn rows(session: &SessionState, sql: &str) -> Vec<RecordBatch> {
        collect_sql(session, sql).await.unwrap()
    }

    #[tokio::test]
    async fn kept_summaries_give_what_the_queries_compute_and_only_for_their_day_and_grace() {
        let ctx = SessionContext::new();
        for sql in [
            // Kept (paid on time), broken in the limits' 90 days (paid in full late), broken
            // before them, made more than a year ago, not judged yet, two broken on one day.
            "CREATE TABLE activities AS SELECT * FROM (VALUES
               ('c1', 'i1', 'promise', DATE '2026-06-01', DATE '2026-06-05', CAST(100 AS DECIMAL(18, 2))),
               ('c1', 'i1', 'call', DATE '2026-06-02', CAST(NULL AS DATE), CAST(NULL AS DECIMAL(18, 2))),
               ('c1', 'i2', 'promise', DATE '2026-05-01', DATE '2026-05-10', CAST(50 AS DECIMAL(18, 2))),
               ('c2', 'i3', 'promise', DATE '2026-01-02', DATE '2026-01-10', CAST(70 AS DECIMAL(18, 2))),
               ('c2', 'i4', 'promise', DATE '2025-05-01', DATE '2025-05-10', CAST(10 AS DECIMAL(18, 2))),
               ('c3', 'i5', 'promise', DATE '2026-06-28', DATE '2026-06-29', CAST(40 AS DECIMAL(18, 2))),
               ('c3', 'i6', 'promise', DATE '2026-04-10', DATE '2026-04-15', CAST(20 AS DECIMAL(18, 2))),
               ('c3', 'i6', 'promise', DATE '2026-04-10', DATE '2026-04-15', CAST(30 AS DECIMAL(18, 2)))
             ) AS t(customer_id, invoice_id, kind, activity_date, promise_date, promise_amount)",
            "CREATE TABLE invoices AS SELECT * FROM (VALUES
               ('i1', CAST(100 AS DECIMAL(18, 2))), ('i2', CAST(80 AS DECIMAL(18, 2))),
               ('i3', CAST(100 AS DECIMAL(18, 2))), ('i4', CAST(10 AS DECIMAL(18, 2))),
               ('i5', CAST(40 AS DECIMAL(18, 2))), ('i6', CAST(500 AS DECIMAL(18, 2)))
             ) AS t(invoice_id, amount)",
            "CREATE TABLE payments AS SELECT * FROM (VALUES
               ('i1', CAST(100 AS DECIMAL(18, 2)), DATE '2026-06-04'),
               ('i2', CAST(30 AS DECIMAL(18, 2)), DATE '2026-05-09'),
               ('i2', CAST(50 AS DECIMAL(18, 2)), DATE '2026-05-20')
             ) AS t(invoice_id, amount, payment_date)",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        let state = ctx.state();
        let (day, grace) = (arq_udfs::dates::from_ymd(2026, 6, 30).unwrap(), 3);
        let limits = LIMIT_INPUTS_SQL.replace("{broken_days}", "90");
        let queries = [
            summary_query(QUEUE_INPUTS_SQL, "promise_history"),
            summary_query(&limits, "broken"),
        ];
        let computed = |grace| {
            let state = &state;
            let queries = &queries;
            async move {
                let mut all = Vec::new();
                for q in queries {
                    let sql = with_promises(q, day, grace, state);
                    all.push((sql.contains("\npromised AS ("), rows(state, &sql).await));
                }
                all
            }
        };
        let alone = computed(grace).await;
        assert!(alone.iter().all(|(promises, _)| *promises));
        let printed = datafusion::arrow::util::pretty::pretty_format_batches;
        assert_eq!(
            printed(&alone[0].1).unwrap().to_string(),
            "+-------------+--------------+------------+-----------------+--------------------+
| customer_id | promises_12m | broken_12m | last_broken_day | last_broken_amount |
+-------------+--------------+------------+-----------------+--------------------+
| c1          | 2            | 1          | 20583           | 50.00              |
| c2          | 1            | 1          | 20463           | 70.00              |
| c3          | 3            | 2          | 20558           | 30.00              |
+-------------+--------------+------------+-----------------+--------------------+"
        );
        // The limits' broken promises of the last 90 days: c1's and c3's.
        assert_eq!(alone[1].1.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
        let kept = share_promise_summaries(&state, day, grace, &refs)
            .await
            .unwrap();
        assert_eq!(kept.len(), 2);
        // Read from the kept sums: no promises computed, the same rows.
        let shared = computed(grace).await;
        for ((promises, shared), (_, alone)) in shared.iter().zip(&alone) {
            assert!(!promises);
            assert_eq!(
                printed(shared).unwrap().to_string(),
                printed(alone).unwrap().to_string()
            );
        }
        // Another grace computes its own; forgotten, this one is computed again.
        assert!(
            computed(grace + 1)
                .await
                .iter()
                .all(|(promises, _)| *promises)
        );
        forget_promise_summaries(&state, &kept).unwrap();
        assert!(computed(grace).await.iter().all(|(promises, _)| *promises));
    }
}
