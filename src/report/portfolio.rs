//! The portfolio section, per currency: KPI tiles (total AR, overdue share, 90+ share,
//! DSO, best possible DSO, ADD, CEI, each against the previous month), aging by bucket per
//! month, the current aging, the DSO lines and CEI against its target, the roll-rate table,
//! the 20 largest overdue customers, and the breakdown by segment and region.
//!
//! The figures are `ar_metrics`, `roll_rates`, `aging_bucket` and `days_past_due` over the
//! session `arq sql` opens: a figure here equals the same query there.

use std::collections::{BTreeMap, HashMap, HashSet};

use arq_models::scores::Scores;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Period;
use super::charts::{self, Axes, Series};
use super::format::{self, Unit};
use super::rows::Rows;
use super::view::{Chart, Matrix, Shaded, Table, Tile};
use crate::error::Result;
use datafusion::prelude::SessionContext;

/// The section for one currency.
#[derive(Debug, Serialize)]
pub struct CurrencyView {
    pub currency: String,
    pub tiles: Vec<Tile>,
    pub charts: Vec<Chart>,
    pub roll_rates: Option<Matrix>,
    pub roll_reading: String,
    pub top_overdue: Table,
}

/// The whole section.
#[derive(Debug, Serialize)]
pub struct Portfolio {
    pub currencies: Vec<CurrencyView>,
    pub by_segment: Table,
    pub by_region: Table,
}

/// One month of `ar_metrics` for a currency.
#[derive(Debug, Clone)]
struct Month {
    period_end: String,
    ar_end: Decimal,
    dso: Option<f64>,
    best_possible_dso: Option<f64>,
    add: Option<f64>,
    cei: Option<f64>,
}

/// One month's aging of a currency: open by bucket (in rank order), overdue, over 90.
#[derive(Debug, Clone, Default)]
struct Aging {
    buckets: BTreeMap<i64, (String, Decimal)>,
    total: Decimal,
    overdue: Decimal,
    over_90: Decimal,
}

/// Builds the section, and the facts of every month of the range with a snapshot (what a
/// later report reads instead of computing those months again): the months of `known` as
/// they were read, the others as computed here. The months of `known` are not computed
/// again: the monthly series are computed from `known.compute_from` on.
pub async fn build(
    ctx: &SessionContext,
    period: &Period,
    scores: Option<&Scores>,
    known: &Known,
) -> Result<(Portfolio, Vec<Facts>)> {
    let (from, to) = (known.compute_from.as_str(), period.to.as_str());
    // The queries, each one pass over its tables (they take turns: `Rows`).
    let (metric_rows, aging_rows, roll_rows, top, (by_segment, by_region)) = futures::try_join!(
        metrics(ctx, from, to),
        aging(ctx, from, to),
        roll_rates(ctx, from, to),
        top_overdue(ctx, scores),
        breakdowns(ctx),
    )?;
    let kept = known.facts.iter().cloned().chain(
        months_from(&known.compute_from, &period.as_of)
            .into_iter()
            .filter_map(|month| {
                let last = last_snapshot_of(period, &month)?;
                Some(Facts::of_month(
                    &month,
                    last,
                    &metric_rows,
                    &aging_rows,
                    &roll_rows,
                ))
            }),
    );
    let kept = kept.collect();
    // The known months' rows, then the computed ones.
    let metrics = fold_metrics(
        known
            .rows(|f| &f.metrics)
            .chain(&metric_rows)
            .cloned()
            .collect(),
    )?;
    let aging = fold_aging(known.rows(|f| &f.aging).chain(&aging_rows))?;
    let roll = fold_rolls(known.rows(|f| &f.rolls).chain(&roll_rows));
    let currencies: Vec<String> = aging.keys().chain(metrics.keys()).cloned().collect();
    let mut currencies: Vec<String> = currencies;
    currencies.sort();
    currencies.dedup();
    let mut views = Vec::new();
    for currency in currencies {
        let months = metrics.get(&currency).cloned().unwrap_or_default();
        let aged = aging.get(&currency).cloned().unwrap_or_default();
        let (roll_rates, roll_reading) = roll_matrix(roll.get(&currency));
        views.push(CurrencyView {
            tiles: tiles(&currency, &months, &aged, period),
            charts: vec![
                aging_trend(&currency, &aged)?,
                current_aging(&currency, &aged, period)?,
                dso_lines(&currency, &months)?,
                cei_line(&currency, &months, period.cei_target)?,
            ],
            roll_rates,
            roll_reading,
            top_overdue: top.get(&currency).cloned().unwrap_or_else(top_table),
            currency,
        });
    }
    let portfolio = Portfolio {
        currencies: views,
        by_segment,
        by_region,
    };
    Ok((portfolio, kept))
}

/// The format of the nights' facts ([`KeptFacts`]): facts of another format are not read
/// (the months are computed again). Raise it whenever a figure of the series is defined
/// differently. (1: one month per night, read from the night of its last snapshot.)
pub const FACTS_FORMAT: u32 = 2;

/// What a night keeps beside its report (`portfolio_facts.json`): the portfolio's monthly
/// series of every month of its report's range that has a snapshot ([`Facts`]), so that a
/// later report over the nights (`--nights`, and the next night's own) reads the months
/// before its snapshot's — from the night of the month's last snapshot, else from the
/// newest night ([`Known::from_kept`]) — and computes only its own month. A month a night
/// read from an earlier night is kept as it was read: a month's figures stay as its night
/// (or the first night that computed it over the month's last snapshot) made them
/// (choice: like a closed period; a late event dated in an earlier month changes that
/// month only in a report without the nights). The first night in an output folder
/// computes every month of its range, so the second night already computes only its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeptFacts {
    pub format: u32,
    pub months: Vec<Facts>,
}

/// The portfolio's monthly series for one calendar month — its `ar_metrics` rows, its
/// snapshots' aging by bucket and its `roll_rates` rows, per currency — up to the month's
/// snapshot `last_snapshot`. Money is kept as decimal text, ratios as JSON numbers (read
/// back exactly).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// `YYYY-MM`.
    pub month: String,
    /// The month's newest snapshot the rows include (`YYYY-MM-DD`): a month is read only
    /// when this is still its last snapshot (a night in mid-month kept the month so far).
    pub last_snapshot: String,
    pub metrics: Vec<MetricRow>,
    pub aging: Vec<AgingRow>,
    pub rolls: Vec<RollRow>,
}

/// One `ar_metrics` row of the section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    currency: String,
    period_end: String,
    ar_end: String,
    dso: Option<f64>,
    best_possible_dso: Option<f64>,
    average_days_delinquent: Option<f64>,
    cei: Option<f64>,
}

/// One snapshot's open amount in one bucket, with its overdue and over-90 parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgingRow {
    currency: String,
    snapshot_date: String,
    bucket_rank: i64,
    bucket: String,
    open: String,
    overdue: String,
    over_90: String,
}

/// One `roll_rates` row of the section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollRow {
    currency: String,
    period_end: String,
    from_rank: i64,
    from_bucket: String,
    roll_rate: Option<f64>,
}

impl Facts {
    /// Whether every amount reads as a decimal (a file that does not is not used: the
    /// month is computed again).
    fn amounts_read(&self) -> bool {
        let amounts = self.metrics.iter().map(|r| &r.ar_end).chain(
            self.aging
                .iter()
                .flat_map(|r| [&r.open, &r.overdue, &r.over_90]),
        );
        amounts.into_iter().all(|a| decimal(a).is_ok())
    }

    /// The rows dated in `month` (`YYYY-MM`), up to its snapshot `last_snapshot`.
    fn of_month(
        month: &str,
        last_snapshot: &str,
        metrics: &[MetricRow],
        aging: &[AgingRow],
        rolls: &[RollRow],
    ) -> Facts {
        let inside = |date: &str| date.starts_with(month);
        Facts {
            metrics: metrics
                .iter()
                .filter(|r| inside(&r.period_end))
                .cloned()
                .collect(),
            aging: aging
                .iter()
                .filter(|r| inside(&r.snapshot_date))
                .cloned()
                .collect(),
            rolls: rolls
                .iter()
                .filter(|r| inside(&r.period_end))
                .cloned()
                .collect(),
            month: month.to_string(),
            last_snapshot: last_snapshot.to_string(),
        }
    }
}

/// The calendar months (`YYYY-MM`) from the month of `first` to the month of `last`
/// (`YYYY-MM-DD` both), in order.
fn months_from(first: &str, last: &str) -> Vec<String> {
    let (Ok(mut day), Ok(end)) = (
        NaiveDate::parse_from_str(first, "%Y-%m-%d"),
        NaiveDate::parse_from_str(last, "%Y-%m-%d"),
    ) else {
        return Vec::new();
    };
    let mut months = Vec::new();
    while day <= end {
        months.push(day.format("%Y-%m").to_string());
        let Some(next) = day
            .with_day(1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
        else {
            break;
        };
        day = next;
    }
    months
}

/// The newest of the period's snapshots in `month` (`YYYY-MM`).
fn last_snapshot_of<'a>(period: &'a Period, month: &str) -> Option<&'a str> {
    period
        .snapshots
        .iter()
        .filter(|s| s.starts_with(month))
        .max()
        .map(String::as_str)
}

/// The months of a report's range whose series come from the nights' facts, and the day
/// from which the rest is computed.
#[derive(Debug, Clone)]
pub struct Known {
    pub facts: Vec<Facts>,
    /// The first day of the first month computed (`YYYY-MM-DD`).
    pub compute_from: String,
}

impl Known {
    /// One kind of row of every known month, in month order.
    fn rows<'a, T: 'a>(&'a self, kind: fn(&Facts) -> &Vec<T>) -> impl Iterator<Item = &'a T> {
        self.facts.iter().flat_map(move |f| kind(f).iter())
    }

    /// The months before the snapshot's own, from the first of the range on, as the
    /// night of the month's last snapshot kept them (`night_of(night)`), else as `newest`
    /// (the newest night's [`KeptFacts`], which carries the months of the nights before
    /// it and of a first night's range) holds them up to the month's last snapshot, up to
    /// the first month neither holds: the series need one contiguous range computed. (A
    /// month's own night first: re-run after its snapshot was restated, its figures are
    /// the new ones, whatever a later night carried.)
    pub fn from_kept(
        period: &Period,
        newest: &KeptFacts,
        night_of: impl Fn(&str) -> Option<KeptFacts>,
    ) -> Known {
        let mut known = Known {
            facts: Vec::new(),
            compute_from: period.from.clone(),
        };
        let usable = |kept: &KeptFacts, month: &str, last: &str| -> Option<Facts> {
            let month_of =
                |f: &&Facts| f.month == month && f.last_snapshot == last && f.amounts_read();
            match kept.format == FACTS_FORMAT {
                true => kept.months.iter().find(month_of).cloned(),
                false => None,
            }
        };
        let this_month = period.as_of.get(..7).unwrap_or_default();
        for month in months_from(&period.from, &period.as_of) {
            if month.as_str() >= this_month {
                break;
            }
            match last_snapshot_of(period, &month) {
                // A month before the warehouse's first snapshot has no figures: nothing to
                // read or compute. (A month without a snapshot after one stops the known
                // months: `ar_metrics`' opening balances look back from the computed range.)
                None if period.snapshots.iter().min().is_none_or(|s| *s > month) => {}
                None => break,
                Some(last) => {
                    let own = night_of(last).and_then(|kept| usable(&kept, &month, last));
                    let Some(facts) = own.or_else(|| usable(newest, &month, last)) else {
                        break;
                    };
                    known.facts.push(facts);
                }
            }
            // Computed from the first of the next month.
            if let Some(next) = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
            {
                known.compute_from = next.to_string();
            }
        }
        known
    }
}

fn decimal(text: &str) -> Result<Decimal> {
    text.parse().map_err(|e| {
        crate::error::ArqError::Internal(format!("the amount {text} does not read: {e}"))
    })
}

fn fold_metrics(mut rows: Vec<MetricRow>) -> Result<BTreeMap<String, Vec<Month>>> {
    rows.sort_by(|a, b| (&a.currency, &a.period_end).cmp(&(&b.currency, &b.period_end)));
    let mut by_currency: BTreeMap<String, Vec<Month>> = BTreeMap::new();
    for r in rows {
        by_currency.entry(r.currency).or_default().push(Month {
            period_end: r.period_end,
            ar_end: decimal(&r.ar_end)?,
            dso: r.dso,
            best_possible_dso: r.best_possible_dso,
            add: r.average_days_delinquent,
            cei: r.cei,
        });
    }
    Ok(by_currency)
}

fn fold_aging<'a>(
    rows: impl Iterator<Item = &'a AgingRow>,
) -> Result<BTreeMap<String, BTreeMap<String, Aging>>> {
    let mut by_currency: BTreeMap<String, BTreeMap<String, Aging>> = BTreeMap::new();
    for r in rows {
        let open = decimal(&r.open)?;
        let aging = by_currency
            .entry(r.currency.clone())
            .or_default()
            .entry(r.snapshot_date.clone())
            .or_default();
        aging
            .buckets
            .insert(r.bucket_rank, (r.bucket.clone(), open));
        aging.total += open;
        aging.overdue += decimal(&r.overdue)?;
        aging.over_90 += decimal(&r.over_90)?;
    }
    Ok(by_currency)
}

fn fold_rolls<'a>(rows: impl Iterator<Item = &'a RollRow>) -> BTreeMap<String, Rolls> {
    let mut by_currency: BTreeMap<String, Rolls> = BTreeMap::new();
    for r in rows {
        by_currency
            .entry(r.currency.clone())
            .or_default()
            .entry((r.from_rank, r.from_bucket.clone()))
            .or_default()
            .insert(r.period_end.clone(), r.roll_rate);
    }
    by_currency
}

async fn metrics(ctx: &SessionContext, from: &str, to: &str) -> Result<Vec<MetricRow>> {
    let rows = Rows::query(
        ctx,
        "ar_metrics",
        &format!(
            "SELECT period_end, currency, ar_end, dso, best_possible_dso, \
             average_days_delinquent, cei FROM ar_metrics('{from}', '{to}') \
             ORDER BY currency, period_end"
        ),
    )
    .await?;
    (0..rows.len())
        .map(|r| {
            Ok(MetricRow {
                currency: rows.text(r, "currency")?.unwrap_or_default(),
                period_end: rows.date(r, "period_end")?.unwrap_or_default(),
                ar_end: rows.money(r, "ar_end")?.unwrap_or_default().to_string(),
                dso: rows.number(r, "dso")?,
                best_possible_dso: rows.number(r, "best_possible_dso")?,
                average_days_delinquent: rows.number(r, "average_days_delinquent")?,
                cei: rows.number(r, "cei")?,
            })
        })
        .collect()
}

/// Aging per snapshot, by currency and bucket. Open amounts are summed per due date first
/// (a bucket is a function of the due date), then bucketed.
async fn aging(ctx: &SessionContext, from: &str, to: &str) -> Result<Vec<AgingRow>> {
    let rows = Rows::query(
        ctx,
        "aging",
        &format!(
            "WITH by_due AS ( \
               SELECT snapshot_date, currency, due_date, sum(open_amount) AS open \
               FROM open_items WHERE snapshot_date BETWEEN DATE '{from}' AND DATE '{to}' \
               GROUP BY 1, 2, 3) \
             SELECT snapshot_date, currency, aging_bucket(due_date, snapshot_date) AS bucket, \
             aging_bucket_rank(aging_bucket(due_date, snapshot_date)) AS bucket_rank, \
             sum(open) AS open, \
             sum(CASE WHEN days_past_due(due_date, snapshot_date) > 0 THEN open \
                 ELSE 0 END) AS overdue, \
             sum(CASE WHEN days_past_due(due_date, snapshot_date) > 90 THEN open \
                 ELSE 0 END) AS over_90 \
             FROM by_due GROUP BY 1, 2, 3, 4 ORDER BY 2, 1, 4"
        ),
    )
    .await?;
    let money =
        |r, name| -> Result<String> { Ok(rows.money(r, name)?.unwrap_or_default().to_string()) };
    (0..rows.len())
        .map(|r| {
            Ok(AgingRow {
                currency: rows.text(r, "currency")?.unwrap_or_default(),
                snapshot_date: rows.date(r, "snapshot_date")?.unwrap_or_default(),
                bucket_rank: rows.int(r, "bucket_rank")?.unwrap_or_default(),
                bucket: rows.text(r, "bucket")?.unwrap_or_default(),
                open: money(r, "open")?,
                overdue: money(r, "overdue")?,
                over_90: money(r, "over_90")?,
            })
        })
        .collect()
}

/// Shares of a total (None for a zero total).
fn share(part: Decimal, total: Decimal) -> Option<f64> {
    use rust_decimal::prelude::ToPrimitive;
    if total.is_zero() {
        return None;
    }
    (part / total).to_f64()
}

fn tiles(
    currency: &str,
    months: &[Month],
    aging: &BTreeMap<String, Aging>,
    period: &Period,
) -> Vec<Tile> {
    let now = months.last();
    let before = months.len().checked_sub(2).and_then(|i| months.get(i));
    let aged_now = aging.get(&period.as_of);
    let aged_before = aging.values().rev().nth(1).filter(|_| aged_now.is_some());
    let unknown = || "–".to_string();
    let ratio =
        |a: Option<&Aging>, part: fn(&Aging) -> Decimal| a.and_then(|a| share(part(a), a.total));
    let share_tile = |key, label, part: fn(&Aging) -> Decimal| {
        let value = ratio(aged_now, part);
        Tile {
            key,
            label,
            value: value.map(format::percent).unwrap_or_else(unknown),
            change: match value {
                Some(v) => format::change(
                    v * 100.0,
                    ratio(aged_before, part).map(|b| b * 100.0),
                    Unit::PercentagePoints,
                ),
                None => unknown(),
            },
        }
    };
    let days_tile = |key, label, pick: fn(&Month) -> Option<f64>, show: fn(f64) -> String, unit| {
        let value = now.and_then(pick);
        Tile {
            key,
            label,
            value: value.map(show).unwrap_or_else(unknown),
            change: match value {
                Some(v) => format::change(v, before.and_then(pick), unit),
                None => unknown(),
            },
        }
    };
    vec![
        Tile {
            key: "total_ar",
            label: "Total AR",
            value: now
                .map(|m| format::money(currency, m.ar_end))
                .unwrap_or_else(unknown),
            change: now
                .map(|m| format::money_change(currency, m.ar_end, before.map(|b| b.ar_end)))
                .unwrap_or_else(unknown),
        },
        share_tile("overdue_share", "Overdue", |a| a.overdue),
        share_tile("over_90_share", "90+ days", |a| a.over_90),
        days_tile("dso", "DSO", |m| m.dso, format::days, Unit::Days),
        days_tile(
            "best_possible_dso",
            "Best possible DSO",
            |m| m.best_possible_dso,
            format::days,
            Unit::Days,
        ),
        days_tile("add", "ADD", |m| m.add, format::days, Unit::Days),
        days_tile(
            "cei",
            "CEI",
            |m| m.cei,
            format::points_percent,
            Unit::PercentagePoints,
        ),
    ]
}

/// `2026-10` of `2026-10-31`.
fn month_label(date: &str) -> String {
    date.get(..7).unwrap_or(date).to_string()
}

fn to_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(0.0)
}

fn aging_trend(currency: &str, aging: &BTreeMap<String, Aging>) -> Result<Chart> {
    let key = format!("aging-trend-{currency}");
    let title = format!("Aging by bucket per month ({currency})");
    if aging.len() < 2 {
        return Ok(Chart::missing(
            key,
            title,
            "fewer than two monthly snapshots",
        ));
    }
    let months: Vec<String> = aging.keys().map(|m| month_label(m)).collect();
    let mut buckets: BTreeMap<i64, String> = BTreeMap::new();
    for a in aging.values() {
        for (rank, (name, _)) in &a.buckets {
            buckets.insert(*rank, name.clone());
        }
    }
    let mut headers = vec!["month".to_string()];
    headers.extend(buckets.values().map(|b| format!("{b}!")));
    headers.push("total!".into());
    let mut table = Table::new(&headers.iter().map(String::as_str).collect::<Vec<_>>());
    for (month, a) in aging {
        let mut row = vec![month_label(month)];
        for rank in buckets.keys() {
            let open = a.buckets.get(rank).map(|(_, v)| *v).unwrap_or_default();
            row.push(format::amount_text(open));
        }
        row.push(format::amount_text(a.total));
        table.push(row);
    }
    let series: Vec<Series> = buckets
        .iter()
        .map(|(rank, name)| Series {
            name: name.clone(),
            values: aging
                .values()
                .map(|a| a.buckets.get(rank).map(|(_, v)| to_f64(*v)))
                .collect(),
        })
        .collect();
    let (first, last) = (aging.iter().next(), aging.iter().next_back());
    let reading = match (first, last) {
        (Some((m0, a0)), Some((m1, a1))) => format!(
            "Overdue {} from {} ({}) in {} to {} ({}) in {}.",
            if a1.overdue >= a0.overdue {
                "rose"
            } else {
                "fell"
            },
            format::money(currency, a0.overdue),
            share(a0.overdue, a0.total)
                .map(format::percent)
                .unwrap_or_default(),
            month_label(m0),
            format::money(currency, a1.overdue),
            share(a1.overdue, a1.total)
                .map(format::percent)
                .unwrap_or_default(),
            month_label(m1),
        ),
        _ => String::new(),
    };
    let axes = Axes {
        title: &title,
        x: "month end",
        y: &format!("open amount ({currency})"),
    };
    let svg = charts::stacked_bars(&axes, &months, &series)?;
    Ok(Chart::drawn(key, title, reading, svg, table))
}

fn current_aging(
    currency: &str,
    aging: &BTreeMap<String, Aging>,
    period: &Period,
) -> Result<Chart> {
    let key = format!("aging-now-{currency}");
    let title = format!("Aging on {} ({currency})", period.as_of);
    let Some(now) = aging.get(&period.as_of).filter(|a| !a.total.is_zero()) else {
        return Ok(Chart::missing(key, title, "nothing open on this snapshot"));
    };
    let mut table = Table::new(&["bucket", "open!", "share!"]);
    for (name, open) in now.buckets.values() {
        table.push(vec![
            name.clone(),
            format::amount_text(*open),
            share(*open, now.total)
                .map(format::percent)
                .unwrap_or_default(),
        ]);
    }
    let labels: Vec<String> = now.buckets.values().map(|(n, _)| n.clone()).collect();
    let values: Vec<f64> = now.buckets.values().map(|(_, v)| to_f64(*v)).collect();
    let overdue: Vec<&(String, Decimal)> = now
        .buckets
        .iter()
        .filter(|(rank, _)| **rank > 0)
        .map(|(_, b)| b)
        .collect();
    let reading = match overdue.iter().max_by_key(|(_, v)| *v) {
        Some((name, v)) if !v.is_zero() => format!(
            "{} of {} is overdue; the largest overdue bucket is {name} with {}.",
            share(now.overdue, now.total)
                .map(format::percent)
                .unwrap_or_default(),
            format::money(currency, now.total),
            format::money(currency, *v)
        ),
        _ => format!(
            "Nothing is overdue of {}.",
            format::money(currency, now.total)
        ),
    };
    let axes = Axes {
        title: &title,
        x: &format!("open amount ({currency})"),
        y: "aging bucket",
    };
    let svg = charts::bars(&axes, &labels, &values)?;
    Ok(Chart::drawn(key, title, reading, svg, table))
}

fn dso_lines(currency: &str, months: &[Month]) -> Result<Chart> {
    let key = format!("dso-{currency}");
    let title = format!("DSO, best possible DSO and ADD ({currency})");
    if months.iter().filter(|m| m.dso.is_some()).count() < 2 {
        return Ok(Chart::missing(
            key,
            title,
            "fewer than two months with credit sales",
        ));
    }
    let labels: Vec<String> = months.iter().map(|m| month_label(&m.period_end)).collect();
    let days = |v: Option<f64>| v.map(|d| format!("{d:.1}")).unwrap_or_else(|| "–".into());
    let mut table = Table::new(&[
        "month",
        "DSO (days)!",
        "best possible DSO (days)!",
        "ADD (days)!",
    ]);
    for m in months {
        table.push(vec![
            month_label(&m.period_end),
            days(m.dso),
            days(m.best_possible_dso),
            days(m.add),
        ]);
    }
    let series = vec![
        Series {
            name: "DSO".into(),
            values: months.iter().map(|m| m.dso).collect(),
        },
        Series {
            name: "best possible DSO".into(),
            values: months.iter().map(|m| m.best_possible_dso).collect(),
        },
        Series {
            name: "ADD".into(),
            values: months.iter().map(|m| m.add).collect(),
        },
    ];
    let with_dso: Vec<&Month> = months.iter().filter(|m| m.dso.is_some()).collect();
    let (a, b) = (with_dso[with_dso.len() - 2], with_dso[with_dso.len() - 1]);
    let (da, db) = (a.dso.unwrap_or_default(), b.dso.unwrap_or_default());
    let reading = format!(
        "DSO {} {:.1} days since {}, to {:.1} days in {}.",
        if db >= da { "rose" } else { "fell" },
        (db - da).abs(),
        month_label(&a.period_end),
        db,
        month_label(&b.period_end)
    );
    let axes = Axes {
        title: &title,
        x: "month end",
        y: "days",
    };
    let svg = charts::lines(&axes, &labels, &series, None)?;
    Ok(Chart::drawn(key, title, reading, svg, table))
}

fn cei_line(currency: &str, months: &[Month], target: f64) -> Result<Chart> {
    let key = format!("cei-{currency}");
    let title = format!("Collection effectiveness index ({currency})");
    let with_cei: Vec<&Month> = months.iter().filter(|m| m.cei.is_some()).collect();
    if with_cei.len() < 2 {
        return Ok(Chart::missing(
            key,
            title,
            "fewer than two months with a CEI",
        ));
    }
    let labels: Vec<String> = months.iter().map(|m| month_label(&m.period_end)).collect();
    let mut table = Table::new(&["month", "CEI (%)!"]);
    for m in months {
        table.push(vec![
            month_label(&m.period_end),
            m.cei
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "–".into()),
        ]);
    }
    let last = with_cei[with_cei.len() - 1];
    let cei = last.cei.unwrap_or_default();
    let reading = format!(
        "CEI {:.1} % in {}, {} the {:.0} % target.",
        cei,
        month_label(&last.period_end),
        if cei >= target {
            "at or above"
        } else {
            "below"
        },
        target
    );
    let series = vec![Series {
        name: "CEI".into(),
        values: months.iter().map(|m| m.cei).collect(),
    }];
    let target_name = format!("target {target:.0} %");
    let axes = Axes {
        title: &title,
        x: "month end",
        y: "CEI (%)",
    };
    let svg = charts::lines(&axes, &labels, &series, Some((&target_name, target)))?;
    Ok(Chart::drawn(key, title, reading, svg, table))
}

/// Roll rates by currency: `(from_rank, from_bucket) -> period_end -> rate`.
type Rolls = BTreeMap<(i64, String), BTreeMap<String, Option<f64>>>;

async fn roll_rates(ctx: &SessionContext, from: &str, to: &str) -> Result<Vec<RollRow>> {
    let rows = Rows::query(
        ctx,
        "roll_rates",
        &format!(
            "SELECT period_end, currency, from_bucket, from_rank, roll_rate \
             FROM roll_rates('{from}', '{to}') ORDER BY currency, from_rank, period_end"
        ),
    )
    .await?;
    (0..rows.len())
        .map(|r| {
            Ok(RollRow {
                currency: rows.text(r, "currency")?.unwrap_or_default(),
                period_end: rows.date(r, "period_end")?.unwrap_or_default(),
                from_rank: rows.int(r, "from_rank")?.unwrap_or_default(),
                from_bucket: rows.text(r, "from_bucket")?.unwrap_or_default(),
                roll_rate: rows.number(r, "roll_rate")?,
            })
        })
        .collect()
}

fn roll_matrix(rolls: Option<&Rolls>) -> (Option<Matrix>, String) {
    let Some(rolls) = rolls.filter(|r| !r.is_empty()) else {
        return (
            None,
            "Not enough data: no two consecutive snapshots.".into(),
        );
    };
    let mut months: Vec<String> = rolls.values().flat_map(|m| m.keys().cloned()).collect();
    months.sort();
    months.dedup();
    let mut worst: Option<(f64, String)> = None;
    let last = months.last().cloned().unwrap_or_default();
    let rows = rolls
        .iter()
        .map(|((_, bucket), by_month)| {
            if let Some(Some(rate)) = by_month.get(&last)
                && worst.as_ref().is_none_or(|(w, _)| rate > w)
            {
                worst = Some((*rate, bucket.clone()));
            }
            let cells = months
                .iter()
                .map(|m| Shaded::share(by_month.get(m).copied().flatten(), 0.6))
                .collect();
            (bucket.clone(), cells)
        })
        .collect();
    let reading = match worst {
        Some((rate, bucket)) => format!(
            "In {}, {} of the {bucket} balance rolled one bucket older, the highest roll rate.",
            month_label(&last),
            format::percent(rate)
        ),
        None => String::new(),
    };
    let matrix = Matrix {
        corner: "from bucket".into(),
        columns: months.iter().map(|m| month_label(m)).collect(),
        rows,
    };
    (Some(matrix), reading)
}

fn top_table() -> Table {
    Table::new(&[
        "#!",
        "customer",
        "name",
        "overdue!",
        "oldest bucket",
        "max DPD!",
        "PD!",
        "collector",
    ])
}

/// The 20 largest overdue balances of the snapshot, per currency.
async fn top_overdue(
    ctx: &SessionContext,
    scores: Option<&Scores>,
) -> Result<BTreeMap<String, Table>> {
    let rows = Rows::query(
        ctx,
        "top overdue",
        "WITH overdue AS ( \
               SELECT customer_id, currency, sum(open_amount) AS overdue, \
                      min(due_date) AS oldest_due, max(snapshot_date) AS snapshot_date, \
                      max(days_past_due(due_date, snapshot_date)) AS max_dpd \
               FROM open_items_latest WHERE due_date < snapshot_date GROUP BY 1, 2), \
             ranked AS ( \
               SELECT *, row_number() OVER (PARTITION BY currency \
                         ORDER BY overdue DESC, customer_id) AS position FROM overdue) \
             SELECT t.position, t.currency, t.customer_id, c.name, t.overdue, \
                    aging_bucket(t.oldest_due, t.snapshot_date) AS bucket, t.max_dpd, \
                    c.collector_id \
             FROM ranked t JOIN customers_latest c ON c.customer_id = t.customer_id \
             WHERE t.position <= 20 ORDER BY t.currency, t.position",
    )
    .await?;
    // The PDs of these customers, from the snapshot's scores (one pass).
    let shown = (0..rows.len())
        .map(|r| Ok(rows.text(r, "customer_id")?.unwrap_or_default()))
        .collect::<Result<HashSet<String>>>()?;
    let mut pd: HashMap<&str, f64> = HashMap::new();
    if let Some(scores) = scores {
        for i in 0..scores.len() {
            let id = scores.customer_id.value(i);
            if shown.contains(id) {
                pd.insert(id, scores.pd.value(i));
            }
        }
    }
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for r in 0..rows.len() {
        let currency = rows.text(r, "currency")?.unwrap_or_default();
        let text = |name| rows.text(r, name).map(Option::unwrap_or_default);
        let id = text("customer_id")?;
        tables.entry(currency).or_insert_with(top_table).push(vec![
            text("position")?,
            id.clone(),
            text("name")?,
            format::amount_text(rows.money(r, "overdue")?.unwrap_or_default()),
            text("bucket")?,
            text("max_dpd")?,
            pd.get(id.as_str())
                .map(|v| format::percent(*v))
                .unwrap_or_else(|| "–".into()),
            text("collector_id")?,
        ]);
    }
    Ok(tables)
}

/// Total and overdue by segment and by region, per currency, on the snapshot: the open
/// items summed per customer once, then grouped both ways in one pass (grouping sets).
async fn breakdowns(ctx: &SessionContext) -> Result<(Table, Table)> {
    let rows = Rows::query(
        ctx,
        "breakdown",
        "WITH per_customer AS ( \
           SELECT customer_id, currency, sum(open_amount) AS total, \
                  sum(CASE WHEN due_date < snapshot_date THEN open_amount ELSE 0 END) AS overdue \
           FROM open_items_latest GROUP BY 1, 2) \
         SELECT CASE WHEN grouping(c.segment) = 0 THEN 'segment' ELSE 'region' END AS dimension, \
                CASE WHEN grouping(c.segment) = 0 THEN c.segment ELSE c.region END AS part, \
                o.currency, count(*) AS customers, sum(o.total) AS total, \
                sum(o.overdue) AS overdue \
         FROM per_customer o JOIN customers_latest c ON c.customer_id = o.customer_id \
         GROUP BY GROUPING SETS ((c.segment, o.currency), (c.region, o.currency)) \
         ORDER BY 1, 3, 2",
    )
    .await?;
    let table = |dimension: &str| -> Result<Table> {
        let mut table = Table::new(&[
            dimension,
            "currency",
            "customers!",
            "open!",
            "overdue!",
            "overdue share!",
        ]);
        for r in 0..rows.len() {
            if rows.text(r, "dimension")?.as_deref() != Some(dimension) {
                continue;
            }
            let currency = rows.text(r, "currency")?.unwrap_or_default();
            let total = rows.money(r, "total")?.unwrap_or_default();
            let overdue = rows.money(r, "overdue")?.unwrap_or_default();
            table.push(vec![
                rows.text(r, "part")?.unwrap_or_default(),
                currency.clone(),
                rows.text(r, "customers")?.unwrap_or_default(),
                format::money(&currency, total),
                format::money(&currency, overdue),
                share(overdue, total)
                    .map(format::percent)
                    .unwrap_or_else(|| "–".into()),
            ]);
        }
        Ok(table)
    };
    Ok((table("segment")?, table("region")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(as_of: &str, snapshots: &[&str], months: u32) -> Period {
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let snapshots: Vec<NaiveDate> = snapshots.iter().map(|d| day(d)).collect();
        Period::new(day(as_of), &snapshots, months, 80.0).unwrap()
    }

    fn facts(month: &str, last_snapshot: &str) -> Facts {
        Facts {
            month: month.to_string(),
            last_snapshot: last_snapshot.to_string(),
            ..Facts::default()
        }
    }

    fn kept(months: Vec<Facts>) -> KeptFacts {
        KeptFacts {
            format: FACTS_FORMAT,
            months,
        }
    }

    #[test]
    fn earlier_months_are_read_when_kept_up_to_their_last_snapshot() {
        let p = period(
            "2026-04-30",
            &[
                "2026-01-31",
                "2026-02-15",
                "2026-02-28",
                "2026-03-31",
                "2026-04-30",
            ],
            4,
        );
        let all = kept(vec![
            facts("2026-01", "2026-01-31"),
            facts("2026-02", "2026-02-28"),
            facts("2026-03", "2026-03-31"),
            facts("2026-04", "2026-04-15"),
        ]);
        let known = Known::from_kept(&p, &all, |_| None);
        // January to March read; April (the snapshot's own month) computed.
        let months: Vec<&str> = known.facts.iter().map(|f| f.month.as_str()).collect();
        assert_eq!(months, ["2026-01", "2026-02", "2026-03"]);
        assert_eq!(known.compute_from, "2026-04-01");
        // February kept in mid-month (by the night of the 15th) is not February: it and
        // every month after it are computed.
        let mid = kept(vec![
            facts("2026-01", "2026-01-31"),
            facts("2026-02", "2026-02-15"),
            facts("2026-03", "2026-03-31"),
        ]);
        let known = Known::from_kept(&p, &mid, |_| None);
        assert_eq!(known.facts.len(), 1);
        assert_eq!(known.compute_from, "2026-02-01");
        // A month's own night comes first: February's night (the 28th) holds it, the
        // newest night's mid-month copy is not asked; the others come from the newest.
        let asked = std::cell::RefCell::new(Vec::new());
        let mut own = facts("2026-02", "2026-02-28");
        own.rolls.push(RollRow {
            currency: "USD".into(),
            period_end: "2026-02-28".into(),
            from_rank: 1,
            from_bucket: "current".into(),
            roll_rate: Some(0.5),
        });
        let known = Known::from_kept(&p, &mid, |night| {
            asked.borrow_mut().push(night.to_string());
            (night == "2026-02-28").then(|| kept(vec![own.clone()]))
        });
        assert_eq!(*asked.borrow(), ["2026-01-31", "2026-02-28", "2026-03-31"]);
        assert_eq!(known.facts.len(), 3);
        assert_eq!(known.facts[1], own);
        assert_eq!(known.compute_from, "2026-04-01");
    }

    #[test]
    fn the_first_month_without_usable_facts_is_computed_and_all_after_it() {
        let snapshots = ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"];
        let p = period("2026-04-30", &snapshots, 4);
        let month = |n: &str| facts(&n[..7], n);
        // No February: January known, February on computed.
        let known = Known::from_kept(
            &p,
            &kept(vec![month("2026-01-31"), month("2026-03-31")]),
            |_| None,
        );
        assert_eq!(known.facts.len(), 1);
        assert_eq!(known.compute_from, "2026-02-01");
        // Facts of another format are not used.
        let old = Known::from_kept(
            &p,
            &KeptFacts {
                format: FACTS_FORMAT - 1,
                months: snapshots.iter().map(|n| month(n)).collect(),
            },
            |_| None,
        );
        assert!(old.facts.is_empty());
        assert_eq!(old.compute_from, "2026-01-01");
        // Nothing kept (no night): every month computed.
        let none = Known::from_kept(&p, &KeptFacts::default(), |_| None);
        assert!(none.facts.is_empty());
        // Nor facts whose amounts do not read as decimals.
        let mut january = month("2026-01-31");
        january.aging.push(AgingRow {
            currency: "USD".into(),
            snapshot_date: "2026-01-31".into(),
            bucket_rank: 1,
            bucket: "current".into(),
            open: "12,5".into(),
            overdue: "0".into(),
            over_90: "0".into(),
        });
        let unreadable = Known::from_kept(&p, &kept(vec![january, month("2026-02-28")]), |_| None);
        assert!(unreadable.facts.is_empty());
        // A month with no snapshot at all stops the known months too.
        let gap = period("2026-04-30", &["2026-01-31", "2026-03-31", "2026-04-30"], 4);
        let every = kept(snapshots.iter().map(|n| month(n)).collect());
        let known = Known::from_kept(&gap, &every, |_| None);
        assert_eq!(known.compute_from, "2026-02-01");
        // Months before the warehouse's first snapshot hold nothing: passed over.
        let young = period("2026-04-30", &["2026-03-31", "2026-04-30"], 4);
        let known = Known::from_kept(&young, &every, |_| None);
        assert_eq!(known.facts.len(), 1);
        assert_eq!(known.compute_from, "2026-04-01");
        // One month asked: nothing to read.
        let one = Known::from_kept(&period("2026-04-30", &snapshots, 1), &every, |_| None);
        assert!(one.facts.is_empty());
        assert_eq!(one.compute_from, "2026-04-01");
    }

    #[test]
    fn the_months_run_from_the_first_to_the_last() {
        assert_eq!(
            months_from("2025-11-01", "2026-02-28"),
            ["2025-11", "2025-12", "2026-01", "2026-02"]
        );
        assert_eq!(months_from("2026-02-01", "2026-02-15"), ["2026-02"]);
        assert!(months_from("2026-03-01", "2026-02-28").is_empty());
    }

    #[test]
    fn facts_are_the_rows_of_the_snapshots_month_and_read_back_exactly() {
        let metric = |end: &str| MetricRow {
            currency: "USD".into(),
            period_end: end.into(),
            ar_end: "1234.50".into(),
            dso: Some(0.1 + 0.2),
            best_possible_dso: None,
            average_days_delinquent: Some(1.0 / 3.0),
            cei: Some(f64::MIN_POSITIVE),
        };
        let aging = |day: &str| AgingRow {
            currency: "EUR".into(),
            snapshot_date: day.into(),
            bucket_rank: 2,
            bucket: "1-30".into(),
            open: "10.00".into(),
            overdue: "10.00".into(),
            over_90: "0.00".into(),
        };
        let roll = |end: &str| RollRow {
            currency: "USD".into(),
            period_end: end.into(),
            from_rank: 1,
            from_bucket: "current".into(),
            roll_rate: Some(2.0 / 7.0),
        };
        let tonight = Facts::of_month(
            "2026-04",
            "2026-04-30",
            &[metric("2026-03-31"), metric("2026-04-30")],
            &[
                aging("2026-03-31"),
                aging("2026-04-15"),
                aging("2026-04-30"),
            ],
            &[roll("2026-03-31"), roll("2026-04-30")],
        );
        assert_eq!(tonight.month, "2026-04");
        assert_eq!(tonight.last_snapshot, "2026-04-30");
        assert_eq!(tonight.metrics, [metric("2026-04-30")]);
        assert_eq!(tonight.aging, [aging("2026-04-15"), aging("2026-04-30")]);
        assert_eq!(tonight.rolls, [roll("2026-04-30")]);
        let file = kept(vec![tonight.clone()]);
        let json = serde_json::to_vec_pretty(&file).unwrap();
        let read: KeptFacts = serde_json::from_slice(&json).unwrap();
        assert_eq!(read, file);
        let read = read.months.into_iter().next().unwrap();
        assert_eq!(
            fold_metrics(read.metrics).unwrap()["USD"][0]
                .ar_end
                .to_string(),
            "1234.50"
        );
    }
}
