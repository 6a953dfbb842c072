//! Risk-based credit-limit recommendations (DOMAIN.md §6): the rules of a checked
//! [`LimitPolicy`] (see [`crate::policy`] for the file) applied to every customer of a
//! scored snapshot.
//!
//! Everything is decimal (rust_decimal): the same inputs and policy give the same limits.

use std::collections::HashMap;
use std::sync::Arc;

use arq_udfs::table_function::collect_sql;
use arq_udfs::table_function::concat_owned;
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanBuilder, Date32Array, Date32Builder, Decimal128Array, Float64Array,
    Int32Array, RecordBatch, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{ModelError, Result};
use crate::money::{self, MONEY};
use crate::named::Named;
use crate::policy::{LimitPolicy, Policy, RiskClass};
use crate::queues::with_promises;
pub use crate::review::{Review, ReviewInput};
use crate::scores::Scores;

/// The query for the policy's inputs; `{day}` is the snapshot (days since 1970), with the
/// promises' CTEs in place of `{promises}`.
pub const LIMIT_INPUTS_SQL: &str = include_str!("../sql/limit_inputs.sql");

/// Whether each customer is above its credit limit at the snapshot `{day}`: the days of
/// [`over_since`].
pub const OVER_LIMIT_SQL: &str = include_str!("../sql/over_limit.sql");

/// What a recommendation does to the current limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitAction {
    Increase,
    Decrease,
    Keep,
    /// Already 90+ days past due: no new credit until the arrears are paid.
    Hold,
}

impl LimitAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitAction::Increase => "increase",
            LimitAction::Decrease => "decrease",
            LimitAction::Keep => "keep",
            LimitAction::Hold => "hold",
        }
    }
}

/// What the policy needs to know of a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitInput {
    pub current_limit: Decimal,
    pub exposure: Decimal,
    /// Credit sales of the last 12 months (or of the history, if shorter).
    pub credit_sales: Decimal,
    /// Months of history (customer since → snapshot), whole months.
    pub history_months: u32,
    pub pd: f64,
    /// Already 90+ days past due.
    pub late_stage: bool,
}

/// A recommendation with its reasons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitRecommendation {
    pub risk_class: String,
    pub recommended_limit: Decimal,
    pub action: LimitAction,
    pub over_limit: bool,
    pub reasons: Vec<String>,
}

impl LimitPolicy {
    /// The risk class of a PD.
    pub fn class_of(&self, pd: f64) -> &RiskClass {
        self.class_for(money::pd_decimal(pd))
    }

    /// The risk class of a PD given as a decimal.
    pub fn class_for(&self, pd: Decimal) -> &RiskClass {
        self.classes
            .iter()
            .find(|c| c.max_pd.is_some_and(|m| pd < m))
            .unwrap_or_else(|| self.classes.last().expect("a policy has classes"))
    }

    /// Rounds down to the rounding step (recommendations never round credit up).
    fn round_down(&self, amount: Decimal) -> Decimal {
        (amount / self.rounding_step).floor() * self.rounding_step
    }

    /// The recommendation for one customer.
    pub fn recommend(&self, input: &LimitInput) -> LimitRecommendation {
        let class = self.class_of(input.pd);
        let over_limit = input.exposure > input.current_limit;
        let mut reasons = Vec::new();
        let pd = money::pd_decimal(input.pd);
        let recommended;
        let action;
        if input.late_stage {
            recommended = Decimal::ZERO;
            action = LimitAction::Hold;
            reasons.push("90+ days past due: hold new credit until the arrears are paid".into());
        } else if class.multiple.is_zero() {
            recommended = Decimal::ZERO;
            action = compare(recommended, input.current_limit);
            reasons.push(format!(
                "risk class {} (PD {}): cash in advance",
                class.name,
                money::percent(pd)
            ));
        } else {
            let mut limit;
            if input.history_months < self.starter_months {
                limit = self.starter_limit;
                reasons.push(format!(
                    "{} months of history (< {}): starter limit",
                    input.history_months, self.starter_months
                ));
            } else {
                let months = Decimal::from(input.history_months.clamp(1, 12));
                let monthly = (input.credit_sales / months).round_dp(2);
                limit = monthly * class.multiple;
                reasons.push(format!(
                    "risk class {} (PD {}): {} x average monthly credit sales {}",
                    class.name,
                    money::percent(pd),
                    class.multiple.normalize(),
                    monthly
                ));
            }
            if let Some(budget) = self.expected_loss_budget
                && !pd.is_zero()
            {
                let el_cap = budget / (pd * self.lgd);
                if el_cap < limit {
                    limit = el_cap;
                    reasons.push(format!(
                        "capped by the expected-loss budget {budget} / (PD x LGD {})",
                        self.lgd.normalize()
                    ));
                }
            }
            if limit > self.cap {
                limit = self.cap;
                reasons.push(format!("capped at the policy cap {}", self.cap));
            }
            limit = self.round_down(limit);
            if limit < self.floor {
                limit = self.floor;
                reasons.push(format!("raised to the policy floor {}", self.floor));
            }
            recommended = limit;
            action = compare(recommended, input.current_limit);
        }
        if over_limit {
            reasons.push(format!(
                "over the current limit: exposure {} > {}",
                input.exposure, input.current_limit
            ));
        }
        LimitRecommendation {
            risk_class: class.name.clone(),
            recommended_limit: recommended.round_dp(2),
            action,
            over_limit,
            reasons,
        }
    }
}

/// The columns of `arq limits`.
pub fn limits_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("customer_id", false),
        text("name", false),
        Field::new("snapshot_date", DataType::Date32, false),
        text("currency", false),
        Field::new("current_limit", MONEY, false),
        Field::new("recommended_limit", MONEY, false),
        text("action", false),
        Field::new("exposure", MONEY, false),
        Field::new("over_limit", DataType::Boolean, false),
        Field::new("exposure_above_recommended", DataType::Boolean, false),
        text("implication", true),
        text("risk_class", false),
        text("previous_class", true),
        Field::new("pd", DataType::Float64, false),
        text("risk_reasons", false),
        text("reasons", false),
        Field::new("last_review", DataType::Date32, true),
        Field::new("review_due", DataType::Boolean, false),
        text("review_trigger", true),
        text("policy_version", false),
    ]))
}

/// What exposure above the recommended limit implies for the credit desk.
pub fn implication(exposure: Decimal, recommended: Decimal, action: LimitAction) -> Option<String> {
    if exposure <= recommended {
        return None;
    }
    Some(if recommended.is_zero() || action == LimitAction::Hold {
        format!("order block: no new credit; collect the exposure of {exposure:.2}")
    } else {
        format!(
            "order block until the exposure is reduced by {:.2} to the recommended {recommended:.2}",
            exposure - recommended
        )
    })
}

/// What the policy needs of every customer of the scored snapshot, by customer: the
/// rows of [`LIMIT_INPUTS_SQL`], read by name.
struct LimitInputs {
    currency: ArrayRef,
    names: ArrayRef,
    inputs: Vec<LimitInput>,
    reviews: Vec<ReviewInput>,
}

/// [`LIMIT_INPUTS_SQL`] with the policy's days of broken promises filled (`{promises}`,
/// `{day}` and `{grace}` left to [`with_promises`]).
pub fn limit_inputs_sql(policy: &Policy) -> String {
    let days = policy.limits.review.broken_promise_days;
    LIMIT_INPUTS_SQL.replace("{broken_days}", &days.to_string())
}

async fn limit_inputs(
    session: &dyn Session,
    scores: &Scores,
    policy: &Policy,
) -> Result<LimitInputs> {
    let review = &policy.limits.review;
    let sql = with_promises(
        &limit_inputs_sql(policy),
        scores.day,
        policy.queues.promise_grace_days,
        session,
    );
    // Before the inputs' query, not beside it: its queries hold little once done.
    let over_since = over_since(session, scores.day, review.over_limit_days + 62).await?;
    let batches = collect_sql(session, &sql).await?;
    let Some(first) = batches.first() else {
        if scores.is_empty() {
            let empty: ArrayRef = Arc::new(StringArray::from(Vec::<&str>::new()));
            return Ok(LimitInputs {
                currency: empty.clone(),
                names: empty,
                inputs: Vec::new(),
                reviews: Vec::new(),
            });
        }
        return Err(ModelError::Data(format!(
            "{} customers scored but none with limit inputs at the snapshot",
            scores.len()
        )));
    };
    let rows = concat_owned(&first.schema(), batches)?;
    if rows.num_rows() != scores.len() {
        return Err(ModelError::Data(format!(
            "{} customers scored but {} with limit inputs at the snapshot",
            scores.len(),
            rows.num_rows()
        )));
    }
    let n = Named::new(&rows, "the limit inputs");
    if n.text("customer_id")? != scores.customer_id {
        return Err(ModelError::Data(
            "scores and limit inputs are not in the same customer order".into(),
        ));
    }
    let (current, exposure) = (n.money("credit_limit")?, n.money("exposure")?);
    let (sales, broken) = (n.money("credit_sales_12m")?, n.money("broken_amount")?);
    let (months, since, review_day) = (
        n.int("history_months")?,
        n.int("since_day")?,
        n.int("review_day")?,
    );
    let broken_day = n.int("broken_day")?;
    let opt = |a: &Int32Array, r: usize| a.is_valid(r).then(|| a.value(r));
    let d = money::from_cents;
    let inputs = (0..rows.num_rows())
        .map(|r| LimitInput {
            current_limit: d(current.value(r)),
            exposure: d(exposure.value(r)),
            credit_sales: d(sales.value(r)),
            history_months: months.value(r).max(0) as u32,
            pd: scores.pd.value(r),
            late_stage: scores.late_stage.value(r),
        })
        .collect();
    let reviews = (0..rows.num_rows())
        .map(|r| ReviewInput {
            customer_since: since.value(r),
            last_review: opt(&review_day, r),
            over_since: over_since.get(scores.customer_id.value(r)).copied(),
            broken_promise: opt(&broken_day, r).map(|day| {
                (
                    day,
                    if broken.is_valid(r) {
                        d(broken.value(r))
                    } else {
                        Decimal::ZERO
                    },
                )
            }),
            previous_pd: None,
        })
        .collect();
    Ok(LimitInputs {
        currency: Arc::new(n.text("currency")?),
        names: Arc::new(n.text("name")?),
        inputs,
        reviews,
    })
}

/// The first snapshot of each customer's current run of snapshots above the credit
/// limit, among the snapshots of the `window` days up to `day`: the first snapshot above
/// the limit after the last one at or under it ([`OVER_LIMIT_SQL`], one snapshot at a
/// time, oldest first). A snapshot without the customer, or where it has no limit, neither
/// starts nor ends a run; a customer whose row is twice in a snapshot, once above and once
/// not, is not above it that day. Only customers in a run at `day` are kept.
async fn over_since(session: &dyn Session, day: i32, window: i32) -> Result<HashMap<String, i32>> {
    let days = collect_sql(
        session,
        &format!(
            "SELECT DISTINCT CAST(snapshot_date AS INT) AS day FROM customers \
             WHERE CAST(snapshot_date AS INT) <= {day} \
               AND CAST(snapshot_date AS INT) > {} ORDER BY day",
            day - window
        ),
    )
    .await?;
    let mut since: HashMap<String, i32> = HashMap::new();
    for batch in &days {
        let days = Named::new(batch, "the snapshots").int("day")?;
        for snapshot in days.iter().flatten() {
            let rows = collect_sql(
                session,
                &OVER_LIMIT_SQL.replace("{day}", &snapshot.to_string()),
            )
            .await?;
            let rows = rows
                .iter()
                .map(|batch| {
                    let n = Named::new(batch, "the customers above their limit");
                    Ok((n.text("customer_id")?, n.flag("over")?))
                })
                .collect::<Result<Vec<_>>>()?;
            // A run starts at the first snapshot above the limit, and ends after every row
            // of the day is read: a row at or under the limit ends it whatever the
            // customer's other rows that day.
            for wanted in [true, false] {
                for (ids, over) in &rows {
                    let known = |r: &usize| ids.is_valid(*r) && over.is_valid(*r);
                    for r in (0..ids.len()).filter(known) {
                        match (wanted, over.value(r)) {
                            (true, true) if !since.contains_key(ids.value(r)) => {
                                since.insert(ids.value(r).to_string(), snapshot);
                            }
                            (false, false) => {
                                since.remove(ids.value(r));
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    Ok(since)
}

/// Recommendations for every customer of the scored snapshot, by customer: the model's
/// PD and reasons from `scores` (PD 1 for late stage), the policy's inputs from the
/// warehouse, the policy's decision, and whether the credit line is due for review
/// (class migration against `previous`, the scores of the snapshot before, when given).
pub async fn recommend_snapshot(
    session: &dyn Session,
    scores: &Scores,
    previous: Option<&Scores>,
    policy: &Policy,
) -> Result<RecordBatch> {
    let LimitInputs {
        currency,
        names,
        inputs,
        mut reviews,
    } = limit_inputs(session, scores, policy).await?;
    if let Some(previous) = previous {
        let pd_before: HashMap<&str, f64> = (0..previous.len())
            .map(|r| (previous.customer_id.value(r), previous.pd.value(r)))
            .collect();
        for (r, review) in reviews.iter_mut().enumerate() {
            review.previous_pd = pd_before.get(scores.customer_id.value(r)).copied();
        }
    }
    limits_batch(scores, policy, &inputs, &reviews, currency, names)
}

/// The rows of `arq limits`, one per customer of `scores`: each customer's
/// recommendation and review decided and appended to the columns in one pass. (Every
/// recommendation kept first, then each text column gathered as owned strings, held
/// 0.7 GB beside the columns at a million customers: the nightly's peak.)
fn limits_batch(
    scores: &Scores,
    policy: &Policy,
    inputs: &[LimitInput],
    reviews: &[ReviewInput],
    currency: ArrayRef,
    names: ArrayRef,
) -> Result<RecordBatch> {
    let n = inputs.len();
    let mut current = Vec::with_capacity(n);
    let mut recommended = Vec::with_capacity(n);
    let mut exposure = Vec::with_capacity(n);
    let mut over_limit = BooleanBuilder::with_capacity(n);
    let mut above = BooleanBuilder::with_capacity(n);
    let mut review_due = BooleanBuilder::with_capacity(n);
    let mut last_review = Date32Builder::with_capacity(n);
    let text = || StringBuilder::with_capacity(n, n * 8);
    let (mut action, mut implied, mut class, mut previous_class) = (text(), text(), text(), text());
    let (mut risk_reasons, mut reasons, mut trigger) = (text(), text(), text());
    let cents = |what: &str, amount: Decimal, r: usize| {
        money::to_cents(amount, || {
            format!("{what} of customer {}", scores.customer_id.value(r))
        })
    };
    // Parts joined by "; " into one value (a string builder's `write_str` never fails).
    fn joined<'a>(column: &mut StringBuilder, parts: impl Iterator<Item = &'a str>) {
        use std::fmt::Write;
        for (i, part) in parts.enumerate() {
            let separator = if i == 0 { "" } else { "; " };
            let _ = write!(column, "{separator}{part}");
        }
        column.append_value("");
    }
    for (r, (input, review)) in inputs.iter().zip(reviews).enumerate() {
        let rec = policy.limits.recommend(input);
        let due = policy
            .limits
            .review(&rec.risk_class, review, input, scores.day);
        current.push(cents("current limit", input.current_limit, r)?);
        recommended.push(cents("recommended limit", rec.recommended_limit, r)?);
        exposure.push(cents("exposure", input.exposure, r)?);
        action.append_value(rec.action.as_str());
        over_limit.append_value(rec.over_limit);
        above.append_value(input.exposure > rec.recommended_limit);
        implied.append_option(implication(
            input.exposure,
            rec.recommended_limit,
            rec.action,
        ));
        class.append_value(&rec.risk_class);
        previous_class.append_option(due.previous_class.as_deref());
        joined(&mut risk_reasons, scores.reasons_of(r));
        joined(&mut reasons, rec.reasons.iter().map(String::as_str));
        last_review.append_option(review.last_review);
        review_due.append_value(!due.triggers.is_empty());
        match due.triggers.is_empty() {
            true => trigger.append_null(),
            false => joined(&mut trigger, due.triggers.iter().map(String::as_str)),
        }
    }
    let money =
        |v: Vec<i128>| -> ArrayRef { Arc::new(Decimal128Array::from(v).with_data_type(MONEY)) };
    let text = |mut b: StringBuilder| -> ArrayRef {
        let mut column = b.finish();
        column.shrink_to_fit();
        Arc::new(column)
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(scores.customer_id.clone()),
        names,
        Arc::new(Date32Array::from(vec![scores.day; n])),
        currency,
        money(current),
        money(recommended),
        text(action),
        money(exposure),
        Arc::new(over_limit.finish()),
        Arc::new(above.finish()),
        text(implied),
        text(class),
        text(previous_class),
        Arc::new(Float64Array::from(scores.pd.values().to_vec())),
        text(risk_reasons),
        text(reasons),
        Arc::new(last_review.finish()),
        Arc::new(review_due.finish()),
        text(trigger),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            policy.version.as_str(),
            n,
        ))),
    ];
    Ok(RecordBatch::try_new(limits_schema(), columns)?)
}

fn compare(recommended: Decimal, current: Decimal) -> LimitAction {
    match recommended.cmp(&current) {
        std::cmp::Ordering::Greater => LimitAction::Increase,
        std::cmp::Ordering::Less => LimitAction::Decrease,
        std::cmp::Ordering::Equal => LimitAction::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::tests::POLICY;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn input(pd: f64, sales: &str, months: u32) -> LimitInput {
        LimitInput {
            current_limit: d("10000.00"),
            exposure: d("4000.00"),
            credit_sales: d(sales),
            history_months: months,
            pd,
            late_stage: false,
        }
    }

    fn policy() -> LimitPolicy {
        Policy::parse(POLICY, "test.toml").unwrap().limits
    }

    /// The query `over_since` replaced (the whole window in one query): the reference.
    const OVER_SINCE_IN_ONE_QUERY: &str = "WITH over_limit AS (
        SELECT c.customer_id, CAST(c.snapshot_date AS INT) AS day,
               coalesce(sum(o.exposure), 0) > c.credit_limit AS over
        FROM customers c
        LEFT JOIN (
            SELECT customer_id, snapshot_date, sum(open_amount) AS exposure
            FROM open_items
            WHERE CAST(snapshot_date AS INT) <= {day}
              AND CAST(snapshot_date AS INT) > {day} - {window}
            GROUP BY customer_id, snapshot_date
        ) o ON o.customer_id = c.customer_id AND o.snapshot_date = c.snapshot_date
        WHERE CAST(c.snapshot_date AS INT) <= {day}
          AND CAST(c.snapshot_date AS INT) > {day} - {window}
        GROUP BY c.customer_id, c.snapshot_date, c.credit_limit
    )
    SELECT s.customer_id, min(s.day) AS over_since
    FROM over_limit s
    LEFT JOIN (
        SELECT customer_id, max(day) AS ok_day FROM over_limit WHERE NOT over GROUP BY customer_id
    ) ok ON ok.customer_id = s.customer_id
    WHERE s.over AND (ok.ok_day IS NULL OR s.day > ok.ok_day)
    GROUP BY s.customer_id";

    #[tokio::test]
    async fn over_since_one_snapshot_at_a_time_gives_what_one_query_over_the_window_gives() {
        use datafusion::datasource::MemTable;
        use datafusion::prelude::SessionContext;
        // Snapshots on days 10, 20, 30, 40; the window (40 - 25, 40] holds 20, 30, 40.
        // (customer, day, limit) and (customer, day, open amount).
        let customers: &[(&str, i32, Option<i64>)] = &[
            ("over_since_20", 10, Some(100)),
            ("over_since_20", 20, Some(100)),
            ("over_since_20", 30, Some(100)),
            ("over_since_20", 40, Some(100)),
            ("ended", 20, Some(100)),
            ("ended", 30, Some(100)),
            ("ended", 40, Some(100)),
            ("restarted", 20, Some(100)),
            ("restarted", 30, Some(100)),
            ("restarted", 40, Some(100)),
            ("gap_then_over", 20, Some(100)),
            ("gap_then_over", 40, Some(100)),
            ("no_limit_between", 20, Some(100)),
            ("no_limit_between", 30, None),
            ("no_limit_between", 40, Some(100)),
            ("twice_one_under", 20, Some(100)),
            ("twice_one_under", 30, Some(100)),
            ("twice_one_under", 30, Some(1000)),
            ("twice_one_under", 40, Some(100)),
            ("twice_same_limit", 40, Some(150)),
            ("twice_same_limit", 40, Some(150)),
            ("under", 40, Some(100)),
            ("no_items", 40, Some(0)),
            ("before_window", 10, Some(100)),
        ];
        let items: &[(&str, i32, i64)] = &[
            ("over_since_20", 10, 50),
            ("over_since_20", 20, 150),
            ("over_since_20", 30, 150),
            ("over_since_20", 40, 60),
            ("over_since_20", 40, 60),
            ("ended", 20, 150),
            ("ended", 30, 150),
            ("ended", 40, 100),
            ("restarted", 20, 150),
            ("restarted", 30, 50),
            ("restarted", 40, 150),
            ("gap_then_over", 20, 150),
            ("gap_then_over", 40, 150),
            ("no_limit_between", 20, 150),
            ("no_limit_between", 30, 150),
            ("no_limit_between", 40, 150),
            ("twice_one_under", 20, 150),
            ("twice_one_under", 30, 150),
            ("twice_one_under", 40, 150),
            ("twice_same_limit", 40, 100),
            ("under", 40, 20),
            ("before_window", 10, 500),
        ];
        let money = |cents: Vec<Option<i64>>| -> ArrayRef {
            Arc::new(
                Decimal128Array::from(
                    cents
                        .into_iter()
                        .map(|c| c.map(|c| c as i128 * 100))
                        .collect::<Vec<_>>(),
                )
                .with_data_type(MONEY),
            )
        };
        let table = |ids: Vec<&str>, days: Vec<i32>, amount: (&str, ArrayRef)| {
            let schema = Arc::new(Schema::new(vec![
                Field::new("customer_id", DataType::Utf8, false),
                Field::new("snapshot_date", DataType::Date32, false),
                Field::new(amount.0, MONEY, true),
            ]));
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(Date32Array::from(days)),
                amount.1,
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
        };
        let ctx = SessionContext::new();
        ctx.register_table(
            "customers",
            table(
                customers.iter().map(|c| c.0).collect(),
                customers.iter().map(|c| c.1).collect(),
                (
                    "credit_limit",
                    money(customers.iter().map(|c| c.2).collect()),
                ),
            ),
        )
        .unwrap();
        ctx.register_table(
            "open_items",
            table(
                items.iter().map(|i| i.0).collect(),
                items.iter().map(|i| i.1).collect(),
                (
                    "open_amount",
                    money(items.iter().map(|i| Some(i.2)).collect()),
                ),
            ),
        )
        .unwrap();
        let state = ctx.state();
        let got = over_since(&state, 40, 25).await.unwrap();
        let mut got: Vec<(String, i32)> = got.into_iter().collect();
        got.sort();
        let reference = OVER_SINCE_IN_ONE_QUERY
            .replace("{day}", "40")
            .replace("{window}", "25");
        let mut expected = Vec::new();
        for batch in collect_sql(&state, &reference).await.unwrap() {
            let n = Named::new(&batch, "the reference");
            let (ids, since) = (n.text("customer_id").unwrap(), n.int("over_since").unwrap());
            for r in 0..batch.num_rows() {
                expected.push((ids.value(r).to_string(), since.value(r)));
            }
        }
        expected.sort();
        assert_eq!(got, expected);
        let named = |v: &[(&str, i32)]| -> Vec<(String, i32)> {
            v.iter().map(|(c, d)| (c.to_string(), *d)).collect()
        };
        assert_eq!(
            got,
            named(&[
                ("gap_then_over", 20),
                ("no_limit_between", 20),
                ("over_since_20", 20),
                ("restarted", 40),
                ("twice_one_under", 40),
                ("twice_same_limit", 40),
            ])
        );
    }

    #[test]
    fn each_class_takes_its_multiple_of_monthly_sales_rounded_down() {
        let p = policy();
        // 12 months of 60,000.00 = 5,000.00 a month.
        let cases = [
            (0.01, "A", "15000"),
            (0.0199994, "A", "15000"), // 0.019999 at six places: still below 2 %
            (0.02, "B", "10000"),
            (0.049, "B", "10000"),
            (0.07, "C", "7500"),
            (0.15, "D", "5000"),
        ];
        for (pd, class, limit) in cases {
            let r = p.recommend(&input(pd, "60000.00", 24));
            assert_eq!(r.risk_class, class, "PD {pd}");
            assert_eq!(r.recommended_limit, d(limit), "PD {pd}: {r:?}");
        }
        // 5,000 × 1.5 = 7,500 exactly; 5,100 × 1.5 = 7,650 → rounded down to 7,500.
        let r = p.recommend(&input(0.07, "61200.00", 24));
        assert_eq!(r.recommended_limit, d("7500"));
        assert_eq!(r.action, LimitAction::Decrease);
        // Shorter history: sales over the months there are (6 months of 30,000 = 5,000).
        let r = p.recommend(&input(0.01, "30000.00", 6));
        assert_eq!(r.recommended_limit, d("15000"));
        assert_eq!(r.action, LimitAction::Increase);
    }

    #[test]
    fn floor_cap_starter_class_e_and_hold() {
        let p = policy();
        // Tiny sales: 3 × 100 = 300 → floor 1,000.
        let r = p.recommend(&input(0.01, "1200.00", 12));
        assert_eq!(r.recommended_limit, d("1000"));
        assert!(r.reasons.iter().any(|x| x.contains("floor")));
        // Huge sales: 3 × 1,000,000 → cap 100,000.
        let r = p.recommend(&input(0.01, "12000000.00", 12));
        assert_eq!(r.recommended_limit, d("100000"));
        assert!(r.reasons.iter().any(|x| x.contains("cap")));
        // Two months of history: the starter limit, whatever the sales.
        let r = p.recommend(&input(0.01, "900000.00", 2));
        assert_eq!(r.recommended_limit, d("5000"));
        assert!(r.reasons[0].contains("starter limit"));
        // Class E: cash in advance.
        let r = p.recommend(&input(0.35, "60000.00", 24));
        assert_eq!((r.risk_class.as_str(), r.recommended_limit), ("E", d("0")));
        assert_eq!(r.action, LimitAction::Decrease);
        assert!(r.reasons[0].contains("cash in advance"));
        // 90+ days past due: hold.
        let mut late = input(0.01, "60000.00", 24);
        late.late_stage = true;
        late.exposure = d("12000.00");
        let r = p.recommend(&late);
        assert_eq!(r.action, LimitAction::Hold);
        assert!(r.over_limit);
        // Same limit: keep.
        let mut same = input(0.02, "60000.00", 24);
        same.current_limit = d("10000");
        assert_eq!(p.recommend(&same).action, LimitAction::Keep);
    }

    #[test]
    fn expected_loss_budget_caps_the_limit() {
        let p = Policy::parse(
            &POLICY.replace(
                "lgd = \"0.5\"",
                "lgd = \"0.5\"\nexpected_loss_budget = \"100\"",
            ),
            "t.toml",
        )
        .unwrap()
        .limits;
        // PD 4 %, LGD 0.5: budget 100 / 0.02 = 5,000 < 2 × 5,000 = 10,000.
        let r = p.recommend(&input(0.04, "60000.00", 24));
        assert_eq!(r.recommended_limit, d("5000"));
        assert!(r.reasons.iter().any(|x| x.contains("expected-loss budget")));
    }
}
