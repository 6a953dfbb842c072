//! The collectors' monthly review: per collector, between the previous snapshot and this
//! one — customers and overdue assigned at the start and the end, contacts by kind,
//! promises taken and the promise-kept rate, cash collected on their customers, the CEI
//! of their portfolio, accounts that rolled into 90+, nights their list was over capacity
//! (from the nightly's history, [`Nights`]) — a ranking by CEI per currency, and
//! the supervisors' special accounts (high-profile, fraud-suspected): how many, how much,
//! what moved.
//!
//! Choices (written down because the issue is silent): a customer belongs to the collector
//! of the end snapshot for the cash, the CEI and the roll into 90+; "start" is the previous
//! snapshot. Money is per currency in every cell (`USD 1,200.00; EUR 300.00`).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use super::Period;
use super::charts::{self, Axes};
use super::format;
use super::nights::Nights;
use super::rows::Rows;
use super::view::{Chart, Table};
use crate::error::Result;
use datafusion::prelude::SessionContext;

#[derive(Debug, Serialize)]
pub struct Collectors {
    pub month: String,
    pub start: String,
    pub end: String,
    pub table: Table,
    pub charts: Vec<Chart>,
    pub special: Table,
    /// What the nights-over-capacity column counts, or why it is empty.
    pub nights_note: String,
}

/// Money per currency.
type PerCurrency = BTreeMap<String, Decimal>;

/// What one collector did in the month.
#[derive(Debug, Default)]
struct Month {
    customers_start: i64,
    customers_end: i64,
    overdue_start: PerCurrency,
    overdue_end: PerCurrency,
    contacts: BTreeMap<String, i64>,
    kept_rate: BTreeMap<String, Option<f64>>,
    cash: PerCurrency,
    cei: BTreeMap<String, Option<f64>>,
    rolled_90: i64,
    /// Nights on which some of their customers were carried over.
    nights_over: i64,
}

fn per_currency(money: &PerCurrency) -> String {
    if money.is_empty() {
        return "–".into();
    }
    money
        .iter()
        .map(|(c, v)| format::money(c, *v))
        .collect::<Vec<_>>()
        .join("; ")
}

fn rates(rates: &BTreeMap<String, Option<f64>>, show: fn(f64) -> String) -> String {
    let shown: Vec<String> = rates
        .iter()
        .filter_map(|(c, v)| v.map(|v| format!("{c} {}", show(v))))
        .collect();
    if shown.is_empty() {
        "–".into()
    } else {
        shown.join("; ")
    }
}

/// Builds the section; None when the warehouse has one snapshot (no month to review).
pub async fn build(
    ctx: &SessionContext,
    period: &Period,
    nights: &Nights,
) -> Result<Option<Collectors>> {
    let Some(start) = period.previous.clone() else {
        return Ok(None);
    };
    let end = period.as_of.clone();
    let mut by: BTreeMap<String, Month> = BTreeMap::new();
    let assigned = Rows::query(
        ctx,
        "assigned customers",
        format!(
            "SELECT collector_id, snapshot_date, count(*) AS customers FROM customers \
             WHERE snapshot_date IN (DATE '{start}', DATE '{end}') AND collector_id IS NOT NULL \
             GROUP BY 1, 2"
        ),
    );
    let overdue = Rows::query(
        ctx,
        "assigned overdue",
        format!(
            "SELECT c.collector_id, o.snapshot_date, o.currency, sum(o.open_amount) AS overdue \
             FROM open_items o JOIN customers c \
               ON c.customer_id = o.customer_id AND c.snapshot_date = o.snapshot_date \
             WHERE o.snapshot_date IN (DATE '{start}', DATE '{end}') \
               AND o.due_date < o.snapshot_date AND c.collector_id IS NOT NULL \
             GROUP BY 1, 2, 3"
        ),
    );
    let contacts = Rows::query(
        ctx,
        "contacts",
        format!(
            "SELECT collector_id, kind, count(*) AS n FROM activities \
             WHERE activity_date > DATE '{start}' AND activity_date <= DATE '{end}' \
               AND collector_id IS NOT NULL GROUP BY 1, 2"
        ),
    );
    let kept = Rows::query(
        ctx,
        "promise_kept_rate",
        format!(
            "SELECT collector_id, currency, promise_kept_rate \
             FROM promise_kept_rate('{end}', '{end}', 'collector_id')"
        ),
    );
    // The month's payments with their invoice's currency: kept by month beside the
    // nights when the session has them (the nightly's settlement folder, up to date with
    // the warehouse: one payment, one invoice), the month's files read and no invoice
    // (at a million customers 8 M payments instead of 133 M payments and 132 M
    // invoices). Otherwise the month's payments are built once, every invoice probing
    // them without being repartitioned: 15 % less time, the same sums.
    let by_month = ctx.table_exist(crate::settlement::PAYMENTS_TABLE)?;
    let payments = match by_month {
        true => format!("{} p", crate::settlement::PAYMENTS_TABLE),
        false => "payments p JOIN invoices i ON i.invoice_id = p.invoice_id".to_string(),
    };
    let currency = if by_month { "p" } else { "i" };
    let cash = Rows::query_small_builds(
        ctx,
        "cash collected",
        format!(
            "SELECT c.collector_id, {currency}.currency, sum(p.amount) AS cash \
             FROM {payments} \
             JOIN customers_latest c ON c.customer_id = p.customer_id \
             WHERE p.payment_date > DATE '{start}' AND p.payment_date <= DATE '{end}' \
               AND c.collector_id IS NOT NULL GROUP BY 1, 2"
        ),
    );
    let cei = Rows::query(
        ctx,
        "ar_metrics",
        format!(
            "SELECT collector_id, currency, cei FROM ar_metrics('{end}', '{end}', 'collector_id')"
        ),
    );
    let rolled = Rows::query(
        ctx,
        "rolled into 90+",
        format!(
            "WITH dpd AS ( \
               SELECT snapshot_date, customer_id, \
                      max(days_past_due(due_date, snapshot_date)) AS dpd \
               FROM open_items WHERE snapshot_date IN (DATE '{start}', DATE '{end}') \
               GROUP BY 1, 2) \
             SELECT c.collector_id, count(*) AS n \
             FROM dpd now JOIN customers c \
               ON c.customer_id = now.customer_id AND c.snapshot_date = now.snapshot_date \
             LEFT JOIN dpd before \
               ON before.customer_id = now.customer_id AND before.snapshot_date = DATE '{start}' \
             WHERE now.snapshot_date = DATE '{end}' AND now.dpd > 90 \
               AND coalesce(before.dpd, 0) <= 90 AND c.collector_id IS NOT NULL \
             GROUP BY 1"
        ),
    );
    let owners = Rows::query(
        ctx,
        "collectors",
        "SELECT customer_id, collector_id FROM customers_latest WHERE collector_id IS NOT NULL",
    );
    // The month's queries, each one pass over its tables (they take turns: `Rows`).
    let (assigned, overdue, contacts, kept, cash, cei, rolled, owners) =
        futures::try_join!(assigned, overdue, contacts, kept, cash, cei, rolled, owners)?;

    for r in 0..assigned.len() {
        let m = by
            .entry(assigned.text(r, "collector_id")?.unwrap_or_default())
            .or_default();
        let n = assigned.int(r, "customers")?.unwrap_or_default();
        match assigned.date(r, "snapshot_date")?.as_deref() == Some(end.as_str()) {
            true => m.customers_end = n,
            false => m.customers_start = n,
        }
    }
    for r in 0..overdue.len() {
        let m = by
            .entry(overdue.text(r, "collector_id")?.unwrap_or_default())
            .or_default();
        let currency = overdue.text(r, "currency")?.unwrap_or_default();
        let amount = overdue.money(r, "overdue")?.unwrap_or_default();
        match overdue.date(r, "snapshot_date")?.as_deref() == Some(end.as_str()) {
            true => m.overdue_end.insert(currency, amount),
            false => m.overdue_start.insert(currency, amount),
        };
    }
    for r in 0..contacts.len() {
        let m = by
            .entry(contacts.text(r, "collector_id")?.unwrap_or_default())
            .or_default();
        m.contacts.insert(
            contacts.text(r, "kind")?.unwrap_or_default(),
            contacts.int(r, "n")?.unwrap_or_default(),
        );
    }
    for r in 0..kept.len() {
        let m = by
            .entry(kept.text(r, "collector_id")?.unwrap_or_default())
            .or_default();
        m.kept_rate.insert(
            kept.text(r, "currency")?.unwrap_or_default(),
            kept.number(r, "promise_kept_rate")?,
        );
    }
    for r in 0..cash.len() {
        let m = by
            .entry(cash.text(r, "collector_id")?.unwrap_or_default())
            .or_default();
        m.cash.insert(
            cash.text(r, "currency")?.unwrap_or_default(),
            cash.money(r, "cash")?.unwrap_or_default(),
        );
    }
    for r in 0..cei.len() {
        let m = by
            .entry(cei.text(r, "collector_id")?.unwrap_or_default())
            .or_default();
        m.cei.insert(
            cei.text(r, "currency")?.unwrap_or_default(),
            cei.number(r, "cei")?,
        );
    }
    for r in 0..rolled.len() {
        let m = by
            .entry(rolled.text(r, "collector_id")?.unwrap_or_default())
            .or_default();
        m.rolled_90 = rolled.int(r, "n")?.unwrap_or_default();
    }

    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for r in 0..owners.len() {
        owner.insert(
            owners.text(r, "customer_id")?.unwrap_or_default(),
            owners.text(r, "collector_id")?.unwrap_or_default(),
        );
    }
    for carried in nights.carried.values() {
        let over: std::collections::BTreeSet<&String> =
            carried.iter().filter_map(|c| owner.get(c)).collect();
        for collector in over {
            by.entry(collector.clone()).or_default().nights_over += 1;
        }
    }
    let night_count = nights.carried.len();
    let nights_note = match nights.given() {
        false => "Nights over capacity need the nightly job's history: give --nights OUT \
                 (the nightly's output folder)."
            .to_string(),
        // Not the folder's path: the same nights give the same report wherever they are.
        true => format!(
            "Nights over capacity: of the {night_count} nightly runs this month, those that \
             carried over some of the collector's customers."
        ),
    };

    let mut table = Table::new(&[
        "collector",
        "customers at start!",
        "customers at end!",
        "overdue at start!",
        "overdue at end!",
        "calls!",
        "emails!",
        "letters!",
        "promises taken!",
        "promise-kept rate!",
        "cash collected!",
        "CEI!",
        "rolled into 90+!",
        "nights over capacity!",
    ]);
    for (id, m) in &by {
        let contacts = |kind: &str| format::count(m.contacts.get(kind).copied().unwrap_or(0));
        table.push(vec![
            id.clone(),
            format::count(m.customers_start),
            format::count(m.customers_end),
            per_currency(&m.overdue_start),
            per_currency(&m.overdue_end),
            contacts("call"),
            contacts("email"),
            contacts("letter"),
            contacts("promise"),
            rates(&m.kept_rate, format::percent),
            per_currency(&m.cash),
            rates(&m.cei, format::points_percent),
            format::count(m.rolled_90),
            match nights.given() {
                false => "–".to_string(),
                true => format!("{} of {night_count}", m.nights_over),
            },
        ]);
    }
    Ok(Some(Collectors {
        month: end.get(..7).unwrap_or(&end).to_string(),
        charts: cei_ranking(&by)?,
        special: special_accounts(ctx, &start, &end).await?,
        start,
        end,
        table,
        nights_note,
    }))
}

/// Collectors ranked by the CEI of their portfolio, one chart per currency.
fn cei_ranking(by: &BTreeMap<String, Month>) -> Result<Vec<Chart>> {
    let mut per_currency: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for (id, m) in by {
        for (currency, cei) in &m.cei {
            if let Some(cei) = cei {
                per_currency.entry(currency).or_default().push((id, *cei));
            }
        }
    }
    let mut charts = Vec::new();
    for (currency, mut ranked) in per_currency {
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let key = format!("collector-cei-{currency}");
        let title = format!("Collectors by CEI of their portfolio ({currency})");
        let mut table = Table::new(&["#!", "collector", "CEI (%)!"]);
        for (i, (id, cei)) in ranked.iter().enumerate() {
            table.push(vec![
                (i + 1).to_string(),
                id.to_string(),
                format!("{cei:.1}"),
            ]);
        }
        let (best, worst) = (ranked[0], ranked[ranked.len() - 1]);
        let reading = format!(
            "{} leads with a CEI of {:.1} %; {} is last with {:.1} %.",
            best.0, best.1, worst.0, worst.1
        );
        let labels: Vec<String> = ranked.iter().map(|(id, _)| id.to_string()).collect();
        let values: Vec<f64> = ranked.iter().map(|(_, v)| *v).collect();
        let axes = Axes {
            title: &title,
            x: "CEI (%)",
            y: "collector",
        };
        let svg = charts::bars(&axes, &labels, &values)?;
        charts.push(Chart::drawn(key, title, reading, svg, table));
    }
    Ok(charts)
}

/// High-profile and fraud-suspected accounts at the start and the end of the month.
async fn special_accounts(ctx: &SessionContext, start: &str, end: &str) -> Result<Table> {
    let rows = Rows::query(
        ctx,
        "special accounts",
        &format!(
            "WITH flagged AS ( \
               SELECT snapshot_date, customer_id, 'high profile' AS kind FROM customers \
               WHERE high_profile AND snapshot_date IN (DATE '{start}', DATE '{end}') \
               UNION ALL \
               SELECT snapshot_date, customer_id, 'fraud suspected' AS kind FROM customers \
               WHERE fraud_suspected AND snapshot_date IN (DATE '{start}', DATE '{end}')), \
             overdue AS ( \
               SELECT snapshot_date, customer_id, currency, sum(open_amount) AS overdue \
               FROM open_items WHERE due_date < snapshot_date \
                 AND snapshot_date IN (DATE '{start}', DATE '{end}') GROUP BY 1, 2, 3) \
             SELECT f.kind, o.currency, f.snapshot_date, count(*) AS accounts, \
                    sum(o.overdue) AS overdue \
             FROM flagged f JOIN overdue o \
               ON o.customer_id = f.customer_id AND o.snapshot_date = f.snapshot_date \
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
    )
    .await?;
    // (kind, currency) -> (accounts, overdue) at start and end.
    type Both = [(i64, Decimal); 2];
    let mut by: BTreeMap<(String, String), Both> = BTreeMap::new();
    for r in 0..rows.len() {
        let key = (
            rows.text(r, "kind")?.unwrap_or_default(),
            rows.text(r, "currency")?.unwrap_or_default(),
        );
        let at = usize::from(rows.date(r, "snapshot_date")?.as_deref() == Some(end));
        by.entry(key).or_default()[at] = (
            rows.int(r, "accounts")?.unwrap_or_default(),
            rows.money(r, "overdue")?.unwrap_or_default(),
        );
    }
    let mut table = Table::new(&[
        "kind",
        "currency",
        "overdue accounts at start!",
        "overdue accounts at end!",
        "overdue at start!",
        "overdue at end!",
        "change!",
    ]);
    for ((kind, currency), [(n0, a0), (n1, a1)]) in &by {
        table.push(vec![
            kind.clone(),
            currency.clone(),
            format::count(*n0),
            format::count(*n1),
            format::money(currency, *a0),
            format::money(currency, *a1),
            format::money_change(currency, *a1, Some(*a0)),
        ]);
    }
    Ok(table)
}
