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

async fn limit_inputs(
    session: &dyn Session,
    scores: &Scores,
    policy: &Policy,
) -> Result<LimitInputs> {
    let review = &policy.limits.review;
    let sql = with_promises(
        LIMIT_INPUTS_SQL,
        scores.day,
        policy.queues.promise_grace_days,
        session,
    )
    .replace("{over_window}", &(review.over_limit_days + 62).to_string())
    .replace("{broken_days}", &review.broken_promise_days.to_string());
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
    let (over_since, broken_day) = (n.int("over_since")?, n.int("broken_day")?);
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
            over_since: opt(&over_since, r),
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
