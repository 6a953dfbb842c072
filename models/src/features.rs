//! Point-in-time features and the label of arq's warehouse model, from the SQL in
//! `models/sql/` (run in a session that has the warehouse tables and arq's functions).

use datafusion::common::runtime::SpawnedTask;
use futures::StreamExt;
use std::sync::Arc;

pub(crate) use arq_udfs::table_function::has_table;
use arq_udfs::table_function::{collect_sql, concat_owned};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type, SchemaRef};
use datafusion::catalog::Session;

use crate::error::{ModelError, Result};
use crate::model::ModelKind;
use crate::train::LabelledData;
use arq_udfs::dates;

/// The feature query; `{from_day}` and `{to_day}` bound the snapshots (days since 1970).
pub const FEATURES_SQL: &str = include_str!("../sql/features.sql");
/// The label query, with the same placeholders.
pub const LABELS_SQL: &str = include_str!("../sql/labels.sql");

/// The columns of the feature query that identify a row (not features).
pub const ID_COLUMNS: [&str; 2] = ["customer_id", "snapshot_date"];
/// The feature columns of the feature query, in order (after the two id columns).
pub const FEATURE_COLUMNS: [&str; 23] = [
    "segment",
    "overdue_share",
    "max_dpd",
    "worst_bucket",
    "share_61_90",
    "weighted_dpd",
    "max_dpd_3m",
    "max_dpd_6m",
    "max_dpd_12m",
    "paid_late_6m",
    "paid_late_share_6m",
    "paid_late_12m",
    "paid_late_share_12m",
    "avg_days_late_6m",
    "days_late_trend",
    "utilization",
    "broken_promises_12m",
    "open_disputes",
    "tenure_months",
    "invoices_12m",
    "open_items",
    "contacts_3m",
    "days_since_last_payment",
];
/// The text columns among the features (the others are numbers).
pub const TEXT_FEATURES: [&str; 2] = ["segment", "worst_bucket"];
/// The label's name.
pub const LABEL: &str = "went_bad";
/// Customers this far past due are already bad: not training rows, PD 1 when scored.
pub const LATE_STAGE_DPD: f64 = 90.0;
/// The reason given for customers already in late stage.
pub const LATE_STAGE_REASON: &str = "already 90+ days past due: late-stage handling";

/// The feature query for the snapshots between two days (inclusive).
pub fn features_sql(from_day: i32, to_day: i32) -> String {
    features_sql_for(
        from_day,
        to_day,
        &CustomerRange::default(),
        Settling::FromPayments,
    )
}

/// The table of every invoice's settlement that the nightly job keeps beside its outputs
/// (the arq binary's `settlement` module): `customer_id, invoice_id, due_date, amount,
/// paid_date`, one row per invoice paid in full, `paid_date` the day of its last payment.
/// It exists in a session only where it was checked to be up to date with the session's
/// `invoices` and `payments` files and to settle them exactly as [`FEATURES_SQL`] does.
pub const SETTLEMENT_TABLE: &str = "invoice_settlement";

/// Where the feature query (and the promises' outcomes) learn when invoices were paid in
/// full: by settling `payments` against `invoices` in the query, or from
/// [`SETTLEMENT_TABLE`] — the same days, without aggregating every payment of 18 months.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Settling {
    #[default]
    FromPayments,
    FromTable,
}

impl Settling {
    /// [`Settling::FromTable`] where `session` has [`SETTLEMENT_TABLE`].
    pub fn of(session: &dyn Session) -> Settling {
        if has_table(session, SETTLEMENT_TABLE) {
            Settling::FromTable
        } else {
            Settling::FromPayments
        }
    }
}

/// `paid_in_full` of [`FEATURES_SQL`] read from [`SETTLEMENT_TABLE`].
const PAID_IN_FULL_FROM_TABLE: &str =
    "    SELECT invoice_id, customer_id, due_date, CAST(paid_date AS INT) AS paid_day
    FROM invoice_settlement
    WHERE CAST(paid_date AS INT) <= {to_day}
      AND {customers:customer_id}";

/// `promised_paid` of [`FEATURES_SQL`] read from [`SETTLEMENT_TABLE`]: every settled
/// invoice of the slice, not only the promised ones. The promises' LEFT JOIN on the
/// invoice id keeps the same rows, and `promised` is then read once instead of twice
/// (issue 17, part 3: a slice reads `activities` twice, not three times; 8 % less CPU in
/// a slice's query at a million customers, benches/README.md). Over payments the filter
/// stays: there it keeps the aggregation to the promised invoices.
const PROMISED_PAID_FROM_TABLE: &str = "    SELECT invoice_id, CAST(paid_date AS INT) AS paid_day
    FROM invoice_settlement
    WHERE CAST(paid_date AS INT) <= {to_day}
      AND {customers:customer_id}";

/// The CTEs of [`FEATURES_SQL`] that join `base` to a table of events, for one snapshot
/// (`{from_day}` = `{to_day}`, the nightly's and the scoring's query): each customer's
/// aggregate straight from the events, grouped by customer alone, where the general form
/// joins every event row to the snapshots of `base` and groups by customer and snapshot.
/// The windows are the general form's with `b.t` = `{to_day}`. Customers not in `base` get
/// rows too; the final LEFT JOIN from `base` leaves them out. At a million customers,
/// each alone over the whole snapshot: `dpd_history` 4.5 → 2.7 s and 1.1 → 0.45 GB,
/// `last_payment` 3.6–4.0 → 1.3 s, `invoicing` with `contacts` 8.5–8.7 → 3.5–3.8 s
/// (benches/README.md). The same rows wherever a customer is once in a snapshot — which
/// the contract requires and the nightly's check enforces; a customer twice in `base`
/// had its counts doubled by the general form's join, here each of its rows counts its
/// events once. `dpd_by_snapshot` is then not referenced, and not run. `features.sql`
/// points here: a window changed there is changed here too.
const ONE_SNAPSHOT: [(&str, &str); 6] = [
    (
        "dpd_history",
        "    SELECT customer_id, CAST({to_day} AS INT) AS t,
           max(days_past_due(due_date, snapshot_date)) FILTER (WHERE CAST(snapshot_date AS INT) > {to_day} - 91) AS max_dpd_3m,
           max(days_past_due(due_date, snapshot_date)) FILTER (WHERE CAST(snapshot_date AS INT) > {to_day} - 183) AS max_dpd_6m,
           max(days_past_due(due_date, snapshot_date)) AS max_dpd_12m
    FROM open_items
    WHERE CAST(snapshot_date AS INT) BETWEEN {to_day} - 364 AND {to_day}
      AND {customers:customer_id}
    GROUP BY customer_id",
    ),
    (
        "payment_history",
        "    SELECT s.customer_id, CAST({to_day} AS INT) AS t,
           count(*) FILTER (WHERE s.paid_day > {to_day} - 183) AS paid_6m,
           count(*) FILTER (WHERE s.paid_day > {to_day} - 183 AND s.days_late > 0) AS paid_late_6m,
           count(*) AS paid_12m,
           count(*) FILTER (WHERE s.days_late > 0) AS paid_late_12m,
           sum(s.days_late) FILTER (WHERE s.paid_day > {to_day} - 183) AS days_late_sum_6m,
           count(*) FILTER (WHERE s.paid_day > {to_day} - 91) AS paid_3m,
           sum(s.days_late) FILTER (WHERE s.paid_day > {to_day} - 91) AS days_late_sum_3m,
           count(*) FILTER (WHERE s.paid_day <= {to_day} - 91 AND s.paid_day > {to_day} - 183) AS paid_prev_3m,
           sum(s.days_late) FILTER (WHERE s.paid_day <= {to_day} - 91 AND s.paid_day > {to_day} - 183) AS days_late_sum_prev_3m
    FROM settled s
    WHERE s.paid_day <= {to_day} AND s.paid_day > {to_day} - 365
    GROUP BY s.customer_id",
    ),
    (
        "last_payment",
        "    SELECT p.customer_id, CAST({to_day} AS INT) AS t, max(CAST(p.payment_date AS INT)) AS last_paid_day
    FROM payments p
    WHERE CAST(p.payment_date AS INT) <= {to_day} AND CAST(p.payment_date AS INT) > {to_day} - 365
      AND {customers:p.customer_id}
    GROUP BY p.customer_id",
    ),
    (
        "promises",
        "    SELECT a.customer_id, CAST({to_day} AS INT) AS t,
           count(*) FILTER (WHERE f.paid_day IS NULL OR f.paid_day > a.promise_day + 3) AS broken_promises
    FROM promised a
    LEFT JOIN promised_paid f ON f.invoice_id = a.invoice_id
    WHERE a.made_day <= {to_day}
      AND a.promise_day + 3 <= {to_day}
      AND a.promise_day + 3 > {to_day} - 365
    GROUP BY a.customer_id",
    ),
    (
        "contacts",
        "    SELECT a.customer_id, CAST({to_day} AS INT) AS t, count(*) AS contacts_3m
    FROM activities a
    WHERE a.kind IN ('call', 'email', 'letter')
      AND CAST(a.activity_date AS INT) <= {to_day} AND CAST(a.activity_date AS INT) > {to_day} - 91
      AND {customers:a.customer_id}
    GROUP BY a.customer_id",
    ),
    (
        "invoicing",
        "    SELECT i.customer_id, CAST({to_day} AS INT) AS t, count(*) AS invoices_12m
    FROM invoices i
    WHERE CAST(i.invoice_date AS INT) <= {to_day} AND CAST(i.invoice_date AS INT) > {to_day} - 365
      AND {customers:i.customer_id}
    GROUP BY i.customer_id",
    ),
];

/// `sql` with the body of its CTE `name` (the lines between `name AS (` and the next
/// line `),`, or `)` alone for the last CTE) replaced by `body`. The CTEs replaced are
/// arq's own (unit-tested): a missing one is a bug, caught by the tests.
pub fn replace_cte(sql: &str, name: &str, body: &str) -> String {
    let (start, end) =
        cte_span(sql, name).unwrap_or_else(|| panic!("arq's SQL has no CTE `{name}` (or no end)"));
    format!("{}{body}{}", &sql[..start], &sql[end..])
}

/// The body of the CTE `name` of `sql` (written as [`replace_cte`] expects), if it has one.
pub fn cte_body<'a>(sql: &'a str, name: &str) -> Option<&'a str> {
    cte_span(sql, name).map(|(start, end)| &sql[start..end])
}

/// Where the body of the CTE `name` of `sql` starts and ends.
fn cte_span(sql: &str, name: &str) -> Option<(usize, usize)> {
    let head = format!("\n{name} AS (\n");
    let start = sql.find(&head)? + head.len();
    Some((start, start + cte_end(&sql[start..])?))
}

/// Where the body of a CTE that `rest` starts with ends: at its line `),` or `)`.
fn cte_end(rest: &str) -> Option<usize> {
    rest.match_indices("\n)")
        .map(|(i, _)| i)
        .find(|&i| matches!(rest.as_bytes().get(i + 2), Some(b',' | b'\n')))
}

/// The feature query for the customers of `range` only.
pub fn features_sql_for(
    from_day: i32,
    to_day: i32,
    range: &CustomerRange,
    settling: Settling,
) -> String {
    let sql = match settling {
        Settling::FromPayments => FEATURES_SQL.to_string(),
        Settling::FromTable => {
            let sql = replace_cte(FEATURES_SQL, "paid_in_full", PAID_IN_FULL_FROM_TABLE);
            replace_cte(&sql, "promised_paid", PROMISED_PAID_FROM_TABLE)
        }
    };
    // One snapshot: each customer's aggregates without the join to `base` ([`ONE_SNAPSHOT`]).
    let sql = match from_day == to_day {
        true => ONE_SNAPSHOT
            .iter()
            .fold(sql, |sql, (name, body)| replace_cte(&sql, name, body)),
        false => sql,
    };
    let sql = fill(&sql, from_day, to_day);
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.as_str();
    const MARK: &str = "{customers:";
    while let Some(start) = rest.find(MARK) {
        let after = &rest[start + MARK.len()..];
        let Some(end) = after.find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&range.predicate(&after[..end]));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Customer ids from `from` (inclusive) to `to` (exclusive); a missing end is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerRange {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl CustomerRange {
    /// The SQL condition that `column` is in the range (TRUE for the whole range).
    pub fn predicate(&self, column: &str) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match (&self.from, &self.to) {
            (None, None) => "TRUE".into(),
            (Some(a), None) => format!("{column} >= {}", quote(a)),
            (None, Some(b)) => format!("{column} < {}", quote(b)),
            (Some(a), Some(b)) => format!("({column} >= {} AND {column} < {})", quote(a), quote(b)),
        }
    }

    /// Ranges of `size` customers each (more where one id repeats across a bound) that
    /// together cover every id of `sorted_ids` (ascending) once.
    pub fn slices(sorted_ids: &[&str], size: usize) -> Vec<CustomerRange> {
        let size = size.max(1);
        let bounds: Vec<&str> = sorted_ids
            .iter()
            .copied()
            .skip(size)
            .step_by(size)
            .collect();
        let mut ranges = Vec::with_capacity(bounds.len() + 1);
        let mut from = None;
        for b in bounds {
            // Equal ids stay in one slice.
            if from.as_deref() == Some(b) {
                continue;
            }
            ranges.push(CustomerRange {
                from: from.clone(),
                to: Some(b.to_string()),
            });
            from = Some(b.to_string());
        }
        ranges.push(CustomerRange { from, to: None });
        ranges
    }
}

/// Customers per slice when a snapshot's features are computed slice by slice (the
/// default of `arq nightly` and `arq score`): bounds the memory of the feature query,
/// which runs one slice per core (at most 4) at a time.
pub const DEFAULT_SLICE: usize = 25_000;

/// The customers per slice of a session's table functions `customer_features` and
/// `risk_scores`, kept in its configuration (`SessionConfig::with_extension`): arq
/// sets it from `ARQ_FEATURE_SLICE`; a session without it uses [`DEFAULT_SLICE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSlice(pub usize);

impl FeatureSlice {
    /// The slice `session` is configured with.
    pub fn of(session: &dyn Session) -> usize {
        session
            .config()
            .get_extension::<FeatureSlice>()
            .map_or(DEFAULT_SLICE, |s| s.0.max(1))
    }
}

/// The label query for the snapshots between two days (inclusive).
pub fn labels_sql(from_day: i32, to_day: i32) -> String {
    labels_sql_until(from_day, to_day, i32::MAX)
}

/// The label query reading nothing after the day `horizon` (which counts as the newest
/// snapshot): the labels a warehouse that ended on that day would give.
pub fn labels_sql_until(from_day: i32, to_day: i32, horizon: i32) -> String {
    labels_sql_scanning(from_day, to_day, horizon, horizon)
}

/// The label query reading `open_items` snapshots up to the day `scan_to` only: exact
/// when `scan_to` is the first snapshot on or after `to_day + 90` (or later).
fn labels_sql_scanning(from_day: i32, to_day: i32, horizon: i32, scan_to: i32) -> String {
    fill(LABELS_SQL, from_day, to_day)
        .replace("{horizon}", &horizon.to_string())
        .replace("{scan_to}", &scan_to.to_string())
}

/// The label query of `labels_sql(from_day, to_day)`, scanning only the snapshots the
/// labels can read: up to the first snapshot on or after `to_day + 90`.
pub async fn labels_sql_for(session: &dyn Session, from_day: i32, to_day: i32) -> Result<String> {
    let days = snapshot_days(session).await?;
    let scan_to = days
        .into_iter()
        .find(|&d| d >= to_day.saturating_add(90))
        .unwrap_or(i32::MAX);
    Ok(labels_sql_scanning(from_day, to_day, i32::MAX, scan_to))
}

fn fill(sql: &str, from_day: i32, to_day: i32) -> String {
    sql.replace("{from_day}", &from_day.to_string())
        .replace("{to_day}", &to_day.to_string())
}

/// What a collector reads when a feature pushes a customer's PD up: (high, low) value.
pub fn reason_texts(feature: &str) -> Option<(&'static str, &'static str)> {
    Some(match feature {
        "segment" => ("segment {value}", "segment {value}"),
        "overdue_share" => (
            "{percent} of the balance is past due",
            "little of the balance is past due",
        ),
        "max_dpd" => (
            "oldest open invoice is {value} days past due",
            "no invoice past due yet",
        ),
        "worst_bucket" => (
            "oldest open invoice is in aging bucket {value}",
            "oldest open invoice is in aging bucket {value}",
        ),
        "share_61_90" => (
            "{percent} of the balance turns 90 days past due within a month",
            "little of the balance is close to 90 days past due",
        ),
        "weighted_dpd" => (
            "balance is {value} days past due on average",
            "balance is hardly past due",
        ),
        "max_dpd_3m" => (
            "was {value} days past due in the last 3 months",
            "not past due in the last 3 months",
        ),
        "max_dpd_6m" => (
            "was {value} days past due in the last 6 months",
            "not past due in the last 6 months",
        ),
        "max_dpd_12m" => (
            "was {value} days past due in the last 12 months",
            "not past due in the last 12 months",
        ),
        "paid_late_6m" => (
            "paid {value} invoices late in the last 6 months",
            "few invoices paid in the last 6 months",
        ),
        "paid_late_share_6m" => (
            "paid {percent} of invoices late in the last 6 months",
            "pays on time lately",
        ),
        "paid_late_12m" => (
            "paid {value} invoices late in the last 12 months",
            "few invoices paid in the last 12 months",
        ),
        "paid_late_share_12m" => (
            "paid {percent} of invoices late in the last 12 months",
            "pays on time",
        ),
        "avg_days_late_6m" => (
            "pays {value} days after the due date on average",
            "pays early",
        ),
        "days_late_trend" => (
            "pays {value} days later than 3 months before",
            "pays earlier than 3 months before",
        ),
        "utilization" => (
            "balance is {percent} of the credit limit",
            "uses little of the credit limit",
        ),
        "broken_promises_12m" => (
            "broke {value} promises to pay in the last 12 months",
            "no broken promises",
        ),
        "open_disputes" => ("{value} invoices in dispute", "no disputes"),
        "tenure_months" => (
            "customer for {value} months",
            "customer for only {value} months",
        ),
        "invoices_12m" => (
            "{value} invoices in the last 12 months",
            "few invoices in the last 12 months ({value})",
        ),
        "open_items" => ("{value} open invoices", "few open invoices ({value})"),
        "contacts_3m" => (
            "{value} collection contacts in the last 3 months",
            "no recent collection contact",
        ),
        "days_since_last_payment" => ("no payment for {value} days", "paid {value} days ago"),
        _ => return None,
    })
}

/// Every snapshot day of the warehouse (from `customers`), ascending.
pub async fn snapshot_days(session: &dyn Session) -> Result<Vec<i32>> {
    let batches = collect_sql(
        session,
        "SELECT DISTINCT snapshot_date FROM customers ORDER BY snapshot_date",
    )
    .await?;
    let mut days = Vec::new();
    for b in &batches {
        let column = cast(b.column(0), &DataType::Date32)?;
        days.extend(column.as_primitive::<Date32Type>().iter().flatten());
    }
    Ok(days)
}

/// Runs a query and returns its rows as one batch.
async fn collect_one(session: &dyn Session, sql: &str) -> Result<RecordBatch> {
    let batches = collect_sql(session, sql).await?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => {
            let plan = collect_schema(session, sql).await?;
            return Ok(RecordBatch::new_empty(plan));
        }
    };
    Ok(concat_owned(&schema, batches)?)
}

async fn collect_schema(session: &dyn Session, sql: &str) -> Result<SchemaRef> {
    let state = session
        .as_any()
        .downcast_ref::<datafusion::execution::SessionState>()
        .ok_or_else(|| ModelError::Data("features need a DataFusion SessionState".into()))?;
    let plan = state.create_logical_plan(sql).await?;
    Ok(Arc::new(plan.schema().as_arrow().clone()))
}

/// The features of every customer at every snapshot between two days.
pub async fn compute_features(
    session: &dyn Session,
    from_day: i32,
    to_day: i32,
) -> Result<RecordBatch> {
    let sql = features_sql_for(
        from_day,
        to_day,
        &CustomerRange::default(),
        Settling::of(session),
    );
    collect_one(session, &sql).await
}

/// The features of every customer of the snapshot `day`, computed for `slice` customers
/// at a time (in customer-id ranges, so Parquet statistics skip the other customers'
/// row groups when files are clustered by customer). The rows are those of
/// [`compute_features`] for the day: every feature depends on one customer's rows only.
pub async fn snapshot_features(
    session: &dyn Session,
    day: i32,
    slice: usize,
) -> Result<RecordBatch> {
    snapshots_features(session, day, day, slice).await
}

/// [`snapshot_features`] for every snapshot from `from_day` to `day` in one feature
/// query per slice (the slices cut by `day`'s customers; the ranges cover every id), so
/// that the events are read and settled once for all of them. Rows ordered by customer
/// within each slice, the snapshots of a slice by date.
pub async fn snapshots_features(
    session: &dyn Session,
    from_day: i32,
    day: i32,
    slice: usize,
) -> Result<RecordBatch> {
    let mut parts = Vec::new();
    snapshots_features_by_slice(session, from_day, day, slice, |part| {
        parts.push(part);
        Ok(())
    })
    .await?;
    let schema = parts
        .first()
        .map(|p| p.schema())
        .ok_or_else(|| ModelError::Data("the feature query returned no schema".into()))?;
    Ok(concat_owned(&schema, parts)?)
}

/// [`snapshots_features`] a slice at a time: `each` gets every slice's rows, in the
/// slices' order, as they are computed (one batch for every customer when there are no
/// more than `slice`), so that a caller that reduces them — the scores — never holds the
/// features of every customer at once.
pub async fn snapshots_features_by_slice(
    session: &dyn Session,
    from_day: i32,
    day: i32,
    slice: usize,
    mut each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let batches = collect_sql(
        session,
        &format!(
            "SELECT customer_id FROM customers WHERE CAST(snapshot_date AS INT) = {day} \
             ORDER BY customer_id"
        ),
    )
    .await?;
    let ids: Vec<ArrayRef> = batches
        .iter()
        .map(|b| cast(b.column(0), &DataType::Utf8))
        .collect::<std::result::Result<_, _>>()?;
    let rows: usize = ids.iter().map(|a| a.len()).sum();
    let ids: Vec<&str> = ids
        .iter()
        .flat_map(|a| a.as_string::<i32>().iter().flatten())
        .collect();
    // A customer without id falls in no range: then one query for all.
    if ids.len() <= slice || ids.len() < rows {
        return each(compute_features(session, from_day, day).await?);
    }
    // Slices side by side, each on one thread (no repartitioning of its rows; a slice's
    // scan reads a few neighbouring row groups anyway), one slice per core, at most 4.
    let in_flight = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let mut state = session
        .as_any()
        .downcast_ref::<datafusion::execution::SessionState>()
        .ok_or_else(|| ModelError::Data("features need a DataFusion SessionState".into()))?
        .clone();
    state.config_mut().options_mut().execution.target_partitions = 1;
    let settling = Settling::of(session);
    let queries: Vec<String> = CustomerRange::slices(&ids, slice)
        .iter()
        .map(|range| features_sql_for(from_day, day, range, settling))
        .collect();
    let mut parts = futures::stream::iter(queries)
        .map(|sql| {
            let state = state.clone();
            SpawnedTask::spawn(async move { collect_one(&state, &sql).await }).join()
        })
        .buffered(in_flight);
    while let Some(joined) = parts.next().await {
        each(joined.map_err(|e| ModelError::Data(format!("a feature slice failed: {e}")))??)?;
    }
    Ok(())
}

/// The labels of every customer at every snapshot between two days.
pub async fn compute_labels(
    session: &dyn Session,
    from_day: i32,
    to_day: i32,
) -> Result<RecordBatch> {
    collect_one(session, &labels_sql_for(session, from_day, to_day).await?).await
}

/// The training rows of a warehouse as it stood on `as_of`: every customer and snapshot up
/// to that day with a label known by then (nothing later is read) and below 90 days past
/// due, with the current max DPD as the baseline.
pub async fn training_data(
    session: &dyn Session,
    source: &str,
    as_of: i32,
) -> Result<LabelledData> {
    let days: Vec<i32> = snapshot_days(session)
        .await?
        .into_iter()
        .filter(|&d| d <= as_of)
        .collect();
    let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
        return Err(ModelError::Data(format!(
            "warehouse {source} has no snapshots"
        )));
    };
    let features = compute_features(session, first, last).await?;
    let labels = collect_one(session, &labels_sql_until(first, last, as_of)).await?;
    if features.num_rows() != labels.num_rows() {
        return Err(ModelError::Data(format!(
            "{} feature rows but {} label rows: the warehouse changed while reading it",
            features.num_rows(),
            labels.num_rows()
        )));
    }
    let keys = |b: &RecordBatch| -> Result<(ArrayRef, ArrayRef)> {
        Ok((
            cast(named_column(b, "customer_id")?, &DataType::Utf8)?,
            cast(named_column(b, "snapshot_date")?, &DataType::Date32)?,
        ))
    };
    let (f_ids, f_days) = keys(&features)?;
    let (l_ids, l_days) = keys(&labels)?;
    if f_ids.as_ref() != l_ids.as_ref() || f_days.as_ref() != l_days.as_ref() {
        return Err(ModelError::Data(
            "features and labels are not in the same customer and snapshot order".into(),
        ));
    }
    let went_bad = cast(named_column(&labels, LABEL)?, &DataType::Boolean)?;
    let went_bad = went_bad.as_boolean();
    let max_dpd = numeric_column(&features, "max_dpd")?;
    let f_days = f_days.as_primitive::<Date32Type>();
    let keep: Vec<u32> = (0..features.num_rows())
        .filter(|&r| went_bad.is_valid(r) && max_dpd.value(r) < LATE_STAGE_DPD)
        .map(|r| r as u32)
        .collect();
    if keep.is_empty() {
        return Err(ModelError::Data(format!(
            "warehouse {source} has snapshots from {} to {}, but a label needs the 90 days after its \
             snapshot: no snapshot is labelled yet (train on at least 5 monthly snapshots)",
            dates::text(first),
            dates::text(last)
        )));
    }
    let take = |a: &ArrayRef| -> Result<ArrayRef> {
        Ok(datafusion::arrow::compute::take(
            a,
            &datafusion::arrow::array::UInt32Array::from(keep.clone()),
            None,
        )?)
    };
    let feature_fields: Vec<usize> = (0..features.num_columns())
        .filter(|&i| !ID_COLUMNS.contains(&features.schema().field(i).name().as_str()))
        .collect();
    let projected = features.project(&feature_fields)?;
    let columns = projected
        .columns()
        .iter()
        .map(take)
        .collect::<Result<Vec<_>>>()?;
    let features_kept = RecordBatch::try_new(projected.schema(), columns)?;
    let rows = keep.iter().map(|&r| r as usize);
    Ok(LabelledData {
        source: source.to_string(),
        kind: ModelKind::WarehouseFeatures,
        label: LABEL.to_string(),
        id_columns: ID_COLUMNS.iter().map(|s| s.to_string()).collect(),
        features: features_kept,
        bad: rows.clone().map(|r| went_bad.value(r)).collect(),
        periods: Some(rows.clone().map(|r| f_days.value(r)).collect()),
        baseline: Some((
            "rank by current max DPD".to_string(),
            rows.map(|r| max_dpd.value(r)).collect(),
        )),
        reason_texts,
    })
}

/// A column of our own queries' results, by name.
pub(crate) fn named_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ModelError::Data(format!("the query result has no column `{name}`")))
}

pub(crate) fn numeric_column(batch: &RecordBatch, name: &str) -> Result<Float64Array> {
    let index = batch
        .schema()
        .index_of(name)
        .map_err(|_| ModelError::Data(format!("the features have no column `{name}`")))?;
    Ok(cast(batch.column(index), &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_id_once_and_keep_equal_ids_together() {
        let ids = ["A", "B", "C", "C", "C", "D", "E"];
        let slices = CustomerRange::slices(&ids, 2);
        let within = |r: &CustomerRange, id: &str| {
            r.from.as_deref().is_none_or(|f| id >= f) && r.to.as_deref().is_none_or(|t| id < t)
        };
        for id in ids {
            assert_eq!(slices.iter().filter(|r| within(r, id)).count(), 1, "{id}");
        }
        // Bounds at positions 2, 4, 6 are C, C, E: the second C does not open a slice.
        let bounds: Vec<_> = slices.iter().map(|r| r.to.clone()).collect();
        assert_eq!(bounds, [Some("C".into()), Some("E".into()), None]);
        assert_eq!(CustomerRange::slices(&ids, 100), [CustomerRange::default()]);
    }

    #[test]
    fn ranges_become_conditions_in_the_feature_query() {
        let whole = features_sql(10, 10);
        assert!(!whole.contains("{customers:"));
        assert!(whole.contains("AND TRUE"));
        let range = CustomerRange {
            from: Some("C0'1".into()),
            to: Some("C09".into()),
        };
        let sliced = features_sql_for(10, 20, &range, Settling::FromPayments);
        assert!(sliced.contains("(p.customer_id >= 'C0''1' AND p.customer_id < 'C09')"));
        assert_eq!(sliced.matches("'C09'").count(), 11);
        // One snapshot: `dpd_history` reads the open items itself (one more range; the
        // unreferenced `dpd_by_snapshot` keeps its own).
        let one = features_sql_for(10, 10, &range, Settling::FromPayments);
        assert_eq!(one.matches("'C09'").count(), 12);
    }

    #[test]
    fn one_snapshot_aggregates_each_customer_without_joining_base() {
        let one = features_sql_for(20, 20, &CustomerRange::default(), Settling::FromTable);
        let cte = |sql: &str, name: &str| {
            let start = sql.find(&format!("\n{name} AS (\n")).unwrap();
            sql[start..start + cte_end(&sql[start + 1..]).unwrap()].to_string()
        };
        for (name, _) in ONE_SNAPSHOT {
            let body = cte(&one, name);
            assert!(!body.contains("base"), "{body}");
            assert!(body.contains("CAST(20 AS INT) AS t"), "{body}");
        }
        assert!(cte(&one, "dpd_history").contains("FROM open_items"));
        assert!(!one.contains("{to_day}") && !one.contains("{customers:"));
        // Two snapshots keep the general form.
        let two = features_sql_for(10, 20, &CustomerRange::default(), Settling::FromTable);
        for (name, _) in ONE_SNAPSHOT {
            assert!(cte(&two, name).contains("FROM base b"), "{name}");
        }
        assert!(cte(&two, "dpd_history").contains("JOIN dpd_by_snapshot"));
    }

    #[test]
    fn the_settlement_table_replaces_settling_the_payments_in_the_feature_query() {
        let range = CustomerRange {
            from: Some("C01".into()),
            to: Some("C09".into()),
        };
        let from_payments = features_sql_for(10, 20, &range, Settling::FromPayments);
        let from_table = features_sql_for(10, 20, &range, Settling::FromTable);
        // Both settling CTEs read the table; payments stay only for the last payment day.
        assert_eq!(from_payments.matches("FROM payments").count(), 2);
        assert_eq!(from_table.matches("FROM payments").count(), 0);
        assert_eq!(from_table.matches("JOIN payments").count(), 1);
        assert_eq!(from_table.matches("FROM invoice_settlement").count(), 2);
        assert!(from_table.contains("CAST(paid_date AS INT) <= 20"));
        assert!(from_table.contains("(customer_id >= 'C01' AND customer_id < 'C09')"));
        // Everything else is the same query.
        let cut = |sql: &str| sql[sql.find("\nsettled AS (").unwrap()..].to_string();
        let (a, b) = (cut(&from_payments), cut(&from_table));
        let tail = |sql: &str| sql[sql.find("\npromises AS (").unwrap()..].to_string();
        assert_eq!(tail(&a), tail(&b));
        assert!(!from_table.contains("{customers:"));
    }

    #[test]
    #[should_panic(expected = "no CTE `nothing`")]
    fn replacing_a_missing_cte_is_a_bug() {
        replace_cte(FEATURES_SQL, "nothing", "SELECT 1");
    }
}
