//! What the credit desk reads beside the rows of `arq limits`: totals by currency, risk
//! class and action, and a policy change reviewed before it is adopted (before and after
//! per customer, and in totals). Money is summed per currency only, in cents.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{ModelError, Result};
use crate::money::{MONEY, MONEY_SUM};
use crate::named::Named;
use crate::policy::Policy;

/// The label of a total over every class or action.
pub const ALL: &str = "all";

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    Named::new(batch, "the limits").column(name)
}

fn texts(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    Named::new(batch, "the limits").text(name)
}

fn cents(batch: &RecordBatch, name: &str) -> Result<Decimal128Array> {
    Named::new(batch, "the limits").money(name)
}

fn flags(batch: &RecordBatch, name: &str) -> Result<BooleanArray> {
    Named::new(batch, "the limits").flag(name)
}

/// The columns of the limits summary.
pub fn summary_schema() -> SchemaRef {
    let count = |name: &str| Field::new(name, DataType::Int64, false);
    let money = |name: &str| Field::new(name, MONEY_SUM, false);
    Arc::new(Schema::new(vec![
        Field::new("currency", DataType::Utf8, false),
        Field::new("risk_class", DataType::Utf8, false),
        Field::new("action", DataType::Utf8, false),
        count("customers"),
        money("current_limits"),
        money("recommended_limits"),
        money("exposure"),
        count("over_limit"),
        count("exposure_above_recommended"),
        count("review_due"),
    ]))
}

/// A summary group: currency, class rank, class, action rank, action (rank MAX = all).
type GroupKey = (String, usize, String, usize, String);

/// A comparison's totals of one currency: customers, changed, limits before and after.
type CompareTotals = (i64, i64, i128, i128);

#[derive(Default, Clone, Copy)]
struct Totals {
    customers: i64,
    current: i128,
    recommended: i128,
    exposure: i128,
    over: i64,
    above: i64,
    review: i64,
}

/// Totals of the rows of `arq limits` by currency, risk class (in the policy's order)
/// and action, each currency closed by its total over every class and action (`all`).
pub fn summary(limits: &RecordBatch, policy: &Policy) -> Result<RecordBatch> {
    let (currency, class, action) = (
        texts(limits, "currency")?,
        texts(limits, "risk_class")?,
        texts(limits, "action")?,
    );
    let (current, recommended, exposure) = (
        cents(limits, "current_limit")?,
        cents(limits, "recommended_limit")?,
        cents(limits, "exposure")?,
    );
    let (over, above, review) = (
        flags(limits, "over_limit")?,
        flags(limits, "exposure_above_recommended")?,
        flags(limits, "review_due")?,
    );
    let class_rank = |name: &str| {
        policy
            .limits
            .classes
            .iter()
            .position(|c| c.name == name)
            .unwrap_or(usize::MAX)
    };
    let mut groups: BTreeMap<GroupKey, Totals> = BTreeMap::new();
    for r in 0..limits.num_rows() {
        let keys = [
            (
                class_rank(class.value(r)),
                class.value(r),
                action_rank(action.value(r)),
                action.value(r),
            ),
            (usize::MAX, ALL, usize::MAX, ALL),
        ];
        for (cr, c, ar, a) in keys {
            let t = groups
                .entry((
                    currency.value(r).to_string(),
                    cr,
                    c.to_string(),
                    ar,
                    a.to_string(),
                ))
                .or_default();
            t.customers += 1;
            t.current += current.value(r);
            t.recommended += recommended.value(r);
            t.exposure += exposure.value(r);
            t.over += over.value(r) as i64;
            t.above += above.value(r) as i64;
            t.review += review.value(r) as i64;
        }
    }
    let rows: Vec<(&GroupKey, &Totals)> = groups.iter().collect();
    let text = |f: &dyn Fn(&GroupKey) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(
            rows.iter().map(|(k, _)| f(k)).collect::<Vec<_>>(),
        ))
    };
    let count = |f: &dyn Fn(&Totals) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from(
            rows.iter().map(|(_, t)| f(t)).collect::<Vec<_>>(),
        ))
    };
    let money = |f: &dyn Fn(&Totals) -> i128| -> ArrayRef {
        Arc::new(
            Decimal128Array::from(rows.iter().map(|(_, t)| f(t)).collect::<Vec<_>>())
                .with_data_type(MONEY_SUM),
        )
    };
    Ok(RecordBatch::try_new(
        summary_schema(),
        vec![
            text(&|k| &k.0),
            text(&|k| &k.2),
            text(&|k| &k.4),
            count(&|t| t.customers),
            money(&|t| t.current),
            money(&|t| t.recommended),
            money(&|t| t.exposure),
            count(&|t| t.over),
            count(&|t| t.above),
            count(&|t| t.review),
        ],
    )?)
}

/// Actions in the order a credit officer reads them.
fn action_rank(action: &str) -> usize {
    ["increase", "keep", "decrease", "hold"]
        .iter()
        .position(|a| *a == action)
        .unwrap_or(4)
}

/// The columns of a policy comparison.
pub fn comparison_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("customer_id"),
        text("name"),
        text("currency"),
        Field::new("current_limit", MONEY, false),
        Field::new("exposure", MONEY, false),
        Field::new("pd", DataType::Float64, false),
        text("class_before"),
        text("class_after"),
        Field::new("limit_before", MONEY, false),
        Field::new("limit_after", MONEY, false),
        Field::new("change", MONEY_SUM, false),
        text("action_before"),
        text("action_after"),
        Field::new("changed", DataType::Boolean, false),
        text("policy_before"),
        text("policy_after"),
    ]))
}

/// Per customer, the recommendation under the adopted policy (`before`) and under the
/// proposed one (`after`); both batches are `arq limits` rows of the same customers in
/// the same order.
pub fn compare(before: &RecordBatch, after: &RecordBatch) -> Result<RecordBatch> {
    let (ids, ids_after) = (texts(before, "customer_id")?, texts(after, "customer_id")?);
    if ids != ids_after {
        return Err(ModelError::Data(
            "the two policies' rows are not of the same customers".into(),
        ));
    }
    let (limit_before, limit_after) = (
        cents(before, "recommended_limit")?,
        cents(after, "recommended_limit")?,
    );
    let (class_before, class_after) = (texts(before, "risk_class")?, texts(after, "risk_class")?);
    let (action_before, action_after) = (texts(before, "action")?, texts(after, "action")?);
    let n = before.num_rows();
    let change: Vec<i128> = (0..n)
        .map(|r| limit_after.value(r) - limit_before.value(r))
        .collect();
    let changed: Vec<bool> = (0..n)
        .map(|r| {
            change[r] != 0
                || class_before.value(r) != class_after.value(r)
                || action_before.value(r) != action_after.value(r)
        })
        .collect();
    let money = |a: &Decimal128Array| -> ArrayRef { Arc::new(a.clone().with_data_type(MONEY_SUM)) };
    let money18 = |name: &str| -> Result<ArrayRef> { Ok(cast(column(before, name)?, &MONEY)?) };
    Ok(RecordBatch::try_new(
        comparison_schema(),
        vec![
            Arc::new(ids),
            column(before, "name")?.clone(),
            column(before, "currency")?.clone(),
            money18("current_limit")?,
            money18("exposure")?,
            column(before, "pd")?.clone(),
            Arc::new(class_before),
            Arc::new(class_after),
            cast(&money(&limit_before), &MONEY)?,
            cast(&money(&limit_after), &MONEY)?,
            Arc::new(Decimal128Array::from(change).with_data_type(MONEY_SUM)),
            Arc::new(action_before),
            Arc::new(action_after),
            Arc::new(BooleanArray::from(changed)),
            column(before, "policy_version")?.clone(),
            column(after, "policy_version")?.clone(),
        ],
    )?)
}

/// The columns of a comparison's totals.
pub fn comparison_totals_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("currency", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("changed", DataType::Int64, false),
        Field::new("limits_before", MONEY_SUM, false),
        Field::new("limits_after", MONEY_SUM, false),
        Field::new("change", MONEY_SUM, false),
    ]))
}

/// Totals of a comparison per currency.
pub fn comparison_totals(comparison: &RecordBatch) -> Result<RecordBatch> {
    let currency = texts(comparison, "currency")?;
    let (before, after) = (
        cents(comparison, "limit_before")?,
        cents(comparison, "limit_after")?,
    );
    let changed = flags(comparison, "changed")?;
    let mut totals: BTreeMap<&str, CompareTotals> = BTreeMap::new();
    for r in 0..comparison.num_rows() {
        let t = totals.entry(currency.value(r)).or_default();
        t.0 += 1;
        t.1 += changed.value(r) as i64;
        t.2 += before.value(r);
        t.3 += after.value(r);
    }
    let money = |f: &dyn Fn(&CompareTotals) -> i128| -> ArrayRef {
        Arc::new(
            Decimal128Array::from(totals.values().map(f).collect::<Vec<_>>())
                .with_data_type(MONEY_SUM),
        )
    };
    Ok(RecordBatch::try_new(
        comparison_totals_schema(),
        vec![
            Arc::new(StringArray::from(
                totals.keys().copied().collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                totals.values().map(|t| t.0).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                totals.values().map(|t| t.1).collect::<Vec<_>>(),
            )),
            money(&|t| t.2),
            money(&|t| t.3),
            money(&|t| t.3 - t.2),
        ],
    )?)
}
