//! The queue policy replayed on past snapshots: would arq's order have put the accounts
//! that went bad at the top of the work, compared with what a team does without it?
//!
//! For a snapshot t whose 90-day outcome is known (t + 90 days is on or before the newest
//! snapshot), the ranked population is the queue's: customers with an overdue balance,
//! less those already 90+ days past due (they cannot *newly* go bad). A customer is newly
//! bad when the model's label says so (90+ DPD or a bad-debt write-off within
//! (t, t + 90]); its newly-bad balance is its whole open balance at t. Each ordering's
//! capture is the share of that balance held by its first 10 % / 20 % of customers
//! (rounded up):
//! - `arq`: the queues' priority, expected loss = PD × overdue × LGD (ties by max DPD,
//!   overdue, id);
//! - `oldest_first`: max DPD descending (ties by overdue, id);
//! - `largest_first`: overdue descending (ties by max DPD, id).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
    RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use arq_udfs::dates;

use crate::RiskModel;
use crate::error::Result;
use crate::features::{self, compute_labels, named_column};
use crate::money::{self, MONEY};
use crate::policy::QueuePolicy;
use crate::queues::{QueueCustomer, expected_loss, priority, queue_customers};
use crate::scores::{Scores, score_snapshot};

/// The orderings compared, in output order.
pub const ORDERINGS: [&str; 3] = ["arq", "oldest_first", "largest_first"];

/// One snapshot's result in one currency.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestRow {
    pub day: i32,
    /// The customers' currency: balances are never added across currencies.
    pub currency: String,
    /// Whether the snapshot lies in the model's training or validation window (its
    /// capture there is not an out-of-sample figure).
    pub seen_in_training: bool,
    /// Customers of this currency in the ranked population.
    pub ranked: usize,
    pub newly_bad: usize,
    pub newly_bad_balance: Decimal,
    /// Per ordering (as [`ORDERINGS`]): share of this currency's newly-bad balance held
    /// by the top 10 % and top 20 % of the whole queue (one queue for every currency).
    pub capture: [(f64, f64); 3],
}

/// The three orderings of `customers`, as positions into it.
fn orderings(customers: &[&QueueCustomer], lgd: Decimal) -> [Vec<usize>; 3] {
    let n = customers.len();
    let loss: Vec<Decimal> = customers
        .iter()
        .map(|c| expected_loss(c.pd, c.overdue, lgd))
        .collect();
    let mut orders: [Vec<usize>; 3] = [(0..n).collect(), (0..n).collect(), (0..n).collect()];
    orders[0].sort_by(|&a, &b| priority(customers[a], loss[a], customers[b], loss[b]));
    orders[1].sort_by(|&a, &b| {
        let (x, y) = (customers[a], customers[b]);
        y.max_dpd
            .cmp(&x.max_dpd)
            .then(y.overdue.cmp(&x.overdue))
            .then(x.customer_id.cmp(&y.customer_id))
    });
    orders[2].sort_by(|&a, &b| {
        let (x, y) = (customers[a], customers[b]);
        y.overdue
            .cmp(&x.overdue)
            .then(y.max_dpd.cmp(&x.max_dpd))
            .then(x.customer_id.cmp(&y.customer_id))
    });
    orders
}

/// Captures of the three orderings over `customers` (ranked population) with the
/// newly-bad balance of each (zero when it did not go bad), per currency: the share of
/// a currency's newly-bad balance held by the first 10 % / 20 % of the whole queue.
pub fn capture(
    customers: &[&QueueCustomer],
    bad_balance: &[Decimal],
    lgd: Decimal,
) -> BTreeMap<String, [(f64, f64); 3]> {
    let n = customers.len();
    let orders = orderings(customers, lgd);
    let mut total: BTreeMap<&str, Decimal> = BTreeMap::new();
    for (c, b) in customers.iter().zip(bad_balance) {
        *total.entry(&*c.currency).or_default() += *b;
    }
    let share = |order: &[usize], fraction: f64, currency: &str| -> f64 {
        let total = total[currency];
        if total.is_zero() {
            return 0.0;
        }
        let k = (n as f64 * fraction).ceil() as usize;
        let caught: Decimal = order
            .iter()
            .take(k)
            .filter(|&&i| &*customers[i].currency == currency)
            .map(|&i| bad_balance[i])
            .sum();
        (caught / total).to_f64().unwrap_or(0.0)
    };
    total
        .keys()
        .map(|&currency| {
            let shares = orders
                .each_ref()
                .map(|order| (share(order, 0.10, currency), share(order, 0.20, currency)));
            (currency.to_string(), shares)
        })
        .collect()
}

/// Replays the queues on the snapshot `day`; `None` when its outcome is not known yet.
pub async fn backtest_snapshot(
    session: &dyn Session,
    model: &RiskModel,
    model_name: &str,
    policy: &QueuePolicy,
    day: i32,
) -> Result<Option<Vec<BacktestRow>>> {
    let Some(labels) = outcomes(session, day).await? else {
        return Ok(None);
    };
    let bad: HashMap<&str, bool> = labels.iter().map(|(c, b)| (c.as_str(), *b)).collect();
    let scores = score_snapshot(session, model, model_name, day, features::DEFAULT_SLICE).await?;
    backtest_scores(session, model, policy, &scores, &bad).await
}

/// Each customer's outcome at `day` (None while the 90 days after are not all known).
pub async fn outcomes(session: &dyn Session, day: i32) -> Result<Option<Vec<(String, bool)>>> {
    let labels = compute_labels(session, day, day).await?;
    let ids = cast(named_column(&labels, "customer_id")?, &DataType::Utf8)?;
    let ids = ids.as_string::<i32>();
    let went_bad = cast(named_column(&labels, features::LABEL)?, &DataType::Boolean)?;
    let went_bad = went_bad.as_boolean();
    if went_bad.null_count() > 0 || labels.num_rows() == 0 {
        return Ok(None);
    }
    Ok(Some(
        (0..labels.num_rows())
            .map(|r| (ids.value(r).to_string(), went_bad.value(r)))
            .collect(),
    ))
}

/// The queue replay and capture of a scored snapshot, with each customer's 90-day outcome.
pub async fn backtest_scores(
    session: &dyn Session,
    model: &RiskModel,
    policy: &QueuePolicy,
    scores: &Scores,
    bad: &HashMap<&str, bool>,
) -> Result<Option<Vec<BacktestRow>>> {
    let day = scores.day;
    let customers = queue_customers(session, scores, policy.promise_grace_days).await?;
    let ranked: Vec<&QueueCustomer> = customers
        .iter()
        .filter(|c| c.overdue > Decimal::ZERO && c.max_dpd < features::LATE_STAGE_DPD as i32)
        .collect();
    let bad_balance: Vec<Decimal> = ranked
        .iter()
        .map(|c| {
            if bad.get(c.customer_id.as_str()).copied().unwrap_or(false) {
                c.exposure
            } else {
                Decimal::ZERO
            }
        })
        .collect();
    let window = &model.training;
    let seen_in_training = [&window.train_from, &window.validation_to]
        .iter()
        .all(|d| d.is_some())
        && window.train_from.as_deref().unwrap_or_default() <= dates::text(day).as_str()
        && dates::text(day).as_str() <= window.validation_to.as_deref().unwrap_or_default();
    let rows = capture(&ranked, &bad_balance, policy.lgd)
        .into_iter()
        .map(|(currency, capture)| {
            let mine = || {
                ranked
                    .iter()
                    .zip(&bad_balance)
                    .filter(|(c, _)| *c.currency == *currency)
            };
            BacktestRow {
                day,
                seen_in_training,
                ranked: mine().count(),
                newly_bad: mine().filter(|(_, b)| !b.is_zero()).count(),
                newly_bad_balance: mine().map(|(_, b)| *b).sum(),
                capture,
                currency,
            }
        })
        .collect();
    Ok(Some(rows))
}

/// The columns of a backtest.
pub fn backtest_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("snapshot_date", DataType::Date32, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("seen_in_training", DataType::Boolean, false),
        Field::new("ranked", DataType::UInt64, false),
        Field::new("newly_bad", DataType::UInt64, false),
        Field::new("newly_bad_balance", MONEY, false),
    ];
    for name in ORDERINGS {
        fields.push(Field::new(
            format!("{name}_top10"),
            DataType::Float64,
            false,
        ));
        fields.push(Field::new(
            format!("{name}_top20"),
            DataType::Float64,
            false,
        ));
    }
    Arc::new(Schema::new(fields))
}

/// The rows as a batch (shares rounded to 4 decimals).
pub fn backtest_batch(rows: &[BacktestRow]) -> Result<RecordBatch> {
    batch_of(rows, |v| (v * 10_000.0).round() / 10_000.0)
}

/// The rows as a batch with the shares as computed, to be read back by
/// [`backtest_rows`] (a night keeps the rows it replayed).
pub fn backtest_batch_exact(rows: &[BacktestRow]) -> Result<RecordBatch> {
    batch_of(rows, |v| v)
}

/// The rows of a batch of [`backtest_schema`] (as [`backtest_batch_exact`] writes it).
pub fn backtest_rows(batch: &RecordBatch) -> Result<Vec<BacktestRow>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Date32Type, Decimal128Type, Float64Type, UInt64Type};
    // Each column cast to the schema's type, whatever encoding a writer chose (a string
    // view or dictionary reads the same), so the typed accessors below cannot fail.
    let schema = backtest_schema();
    let column = |name: &str| -> Result<ArrayRef> {
        let field = schema.field_with_name(name).map_err(|_| {
            crate::error::ModelError::Data(format!("backtest rows: no column `{name}`"))
        })?;
        Ok(cast(&named_column(batch, name)?, field.data_type())?)
    };
    let (days, currency, seen) = (
        column("snapshot_date")?,
        column("currency")?,
        column("seen_in_training")?,
    );
    let (ranked, newly_bad, balance) = (
        column("ranked")?,
        column("newly_bad")?,
        column("newly_bad_balance")?,
    );
    let (days, currency, seen) = (
        days.as_primitive::<Date32Type>(),
        currency.as_string::<i32>(),
        seen.as_boolean(),
    );
    let (ranked, newly_bad, balance) = (
        ranked.as_primitive::<UInt64Type>(),
        newly_bad.as_primitive::<UInt64Type>(),
        balance.as_primitive::<Decimal128Type>(),
    );
    let mut captures = Vec::new();
    for name in ORDERINGS {
        for top in ["top10", "top20"] {
            captures.push(column(&format!("{name}_{top}"))?);
        }
    }
    let share = |k: usize, r: usize| captures[k].as_primitive::<Float64Type>().value(r);
    Ok((0..batch.num_rows())
        .map(|r| BacktestRow {
            day: days.value(r),
            currency: currency.value(r).to_string(),
            seen_in_training: seen.value(r),
            ranked: ranked.value(r) as usize,
            newly_bad: newly_bad.value(r) as usize,
            newly_bad_balance: Decimal::from_i128_with_scale(balance.value(r), 2),
            capture: [0, 1, 2].map(|k| (share(2 * k, r), share(2 * k + 1, r))),
        })
        .collect())
}

fn batch_of(rows: &[BacktestRow], round: impl Fn(f64) -> f64) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(
            rows.iter().map(|r| r.day).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.currency.as_str()).collect::<Vec<_>>(),
        )),
        Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.seen_in_training).collect::<Vec<_>>(),
        )),
        Arc::new(UInt64Array::from(
            rows.iter().map(|r| r.ranked as u64).collect::<Vec<_>>(),
        )),
        Arc::new(UInt64Array::from(
            rows.iter().map(|r| r.newly_bad as u64).collect::<Vec<_>>(),
        )),
        Arc::new(
            Decimal128Array::from(
                rows.iter()
                    .map(|r| money::to_cents(r.newly_bad_balance, || "newly-bad balance".into()))
                    .collect::<Result<Vec<_>>>()?,
            )
            .with_data_type(MONEY),
        ),
    ];
    for k in 0..ORDERINGS.len() {
        columns.push(Arc::new(Float64Array::from(
            rows.iter()
                .map(|r| round(r.capture[k].0))
                .collect::<Vec<_>>(),
        )));
        columns.push(Arc::new(Float64Array::from(
            rows.iter()
                .map(|r| round(r.capture[k].1))
                .collect::<Vec<_>>(),
        )));
    }
    Ok(RecordBatch::try_new(backtest_schema(), columns)?)
}

/// The mean captures per currency and ordering, over all replayed snapshots and over
/// those outside the model's training and validation window, as lines for the terminal.
pub fn summary(rows: &[BacktestRow]) -> String {
    let currencies: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.currency.as_str()).collect();
    let mut lines = Vec::new();
    for (label, keep) in [
        ("all replayed snapshots", None),
        (
            "snapshots outside the model's training and validation window",
            Some(false),
        ),
    ] {
        for &currency in &currencies {
            let kept: Vec<&BacktestRow> = rows
                .iter()
                .filter(|r| r.currency == currency)
                .filter(|r| keep.is_none_or(|k| r.seen_in_training == k))
                .collect();
            if kept.is_empty() {
                lines.push(format!("{label}, {currency}: none"));
                continue;
            }
            lines.push(format!(
                "{label} ({}), {currency}: newly-bad balance in the top 10 % / 20 %: {}",
                kept.len(),
                mean_captures(&kept)
            ));
        }
    }
    lines.join("\n")
}

/// The mean capture of each ordering over `rows`, as text.
fn mean_captures(rows: &[&BacktestRow]) -> String {
    // Shares as the output rounds them (4 decimals), so the summary and the rows agree.
    let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
    let mean = |share: fn(&(f64, f64)) -> f64, k: usize| {
        rows.iter()
            .map(|r| round(share(&r.capture[k])))
            .sum::<f64>()
            / rows.len() as f64
            * 100.0
    };
    ORDERINGS
        .iter()
        .enumerate()
        .map(|(k, name)| {
            format!(
                "{name} {:.1} % / {:.1} %",
                mean(|c| c.0, k),
                mean(|c| c.1, k)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queues::tests::customer;

    #[test]
    fn captures_follow_each_ordering() {
        // Ten customers: the one that goes bad (balance 100) is the riskiest but neither
        // the oldest nor the largest.
        let mut all = vec![customer("BAD", 100, 0.9, 20)];
        for i in 0..9 {
            all.push(customer(&format!("C{i}"), 1_000 + i, 0.01, 30 + i as i32));
        }
        let refs: Vec<&QueueCustomer> = all.iter().collect();
        let bad: Vec<Decimal> = all
            .iter()
            .map(|c| {
                if c.customer_id == "BAD" {
                    c.exposure
                } else {
                    Decimal::ZERO
                }
            })
            .collect();
        let [arq, oldest, largest] = capture(&refs, &bad, Decimal::ONE)["USD"];
        // Top 10 % of 10 = 1 customer, top 20 % = 2.
        assert_eq!(arq, (1.0, 1.0));
        assert_eq!(oldest, (0.0, 0.0));
        assert_eq!(largest, (0.0, 0.0));
        // Nobody bad: shares are 0, not NaN.
        let none = vec![Decimal::ZERO; refs.len()];
        assert_eq!(capture(&refs, &none, Decimal::ONE)["USD"][0], (0.0, 0.0));
    }

    #[test]
    fn each_currency_has_its_own_share_of_one_queue() {
        // The riskiest customer is in EUR and goes bad; a USD customer goes bad too but
        // is ranked last. Balances are never added across currencies.
        let mut eur = customer("E-BAD", 100, 0.9, 20);
        eur.currency = "EUR".into();
        let mut all = vec![eur];
        for i in 0..8 {
            all.push(customer(&format!("U{i}"), 1_000, 0.01, 30));
        }
        all.push(customer("U-BAD", 50, 0.001, 1));
        let refs: Vec<&QueueCustomer> = all.iter().collect();
        let bad: Vec<Decimal> = all
            .iter()
            .map(|c| match c.customer_id.contains("BAD") {
                true => c.exposure,
                false => Decimal::ZERO,
            })
            .collect();
        let shares = capture(&refs, &bad, Decimal::ONE);
        assert_eq!(shares.keys().collect::<Vec<_>>(), ["EUR", "USD"]);
        assert_eq!(shares["EUR"][0], (1.0, 1.0));
        assert_eq!(shares["USD"][0], (0.0, 0.0));
    }
}
