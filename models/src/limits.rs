//! Risk-based credit-limit recommendations (DOMAIN.md §6) from a versioned TOML policy.
//!
//! ```toml
//! version = "arq-default-1"
//! floor = "1000.00"            # money: a string, an integer or a plain decimal number
//! cap = "250000.00"
//! rounding_step = "500"
//! starter_limit = "5000.00"    # customers with fewer than starter_months of history
//! starter_months = 3
//! lgd = "1.0"                  # loss given default, in (0, 1]
//! expected_loss_budget = "2500.00"   # optional: limit <= budget / (PD x LGD)
//!
//! [[classes]]                  # PD tiers, increasing; the last has no max_pd
//! name = "A"
//! max_pd = "0.02"              # PD below this
//! multiple = "3.0"             # x average monthly credit sales
//! ...
//! [[classes]]
//! name = "E"
//! multiple = "0"               # 0 = cash in advance
//! ```
//!
//! Everything is decimal (rust_decimal): the same inputs and policy give the same limits.

use std::collections::BTreeSet;
use std::sync::Arc;

use arq_udfs::metrics::collect_sql;
use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, Float64Type, Int32Type, Schema, SchemaRef,
};
use datafusion::catalog::Session;
use rust_decimal::Decimal;
use rust_decimal::prelude::*;
use serde::Serialize;

use crate::error::{ModelError, Result};
use crate::queues::QueuePolicy;

/// The query for the policy's inputs; `{day}` is the snapshot (days since 1970).
pub const LIMIT_INPUTS_SQL: &str = include_str!("../sql/limit_inputs.sql");

/// One risk class: PD below `max_pd` (the last class has none: everything above).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskClass {
    pub name: String,
    pub max_pd: Option<Decimal>,
    pub multiple: Decimal,
}

/// A checked credit policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditPolicy {
    pub version: String,
    pub classes: Vec<RiskClass>,
    pub floor: Decimal,
    pub cap: Decimal,
    pub rounding_step: Decimal,
    pub starter_limit: Decimal,
    pub starter_months: u32,
    pub lgd: Decimal,
    pub expected_loss_budget: Option<Decimal>,
    /// The work queues' thresholds (the optional `[queues]` table; LGD is the policy's).
    pub queues: QueuePolicy,
}

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

fn key_error(file: &str, key: &str, message: impl std::fmt::Display) -> ModelError {
    ModelError::Data(format!("policy {file}: `{key}`: {message}"))
}

/// Money or a rate from TOML: a string ("2500.00"), an integer, or a float written as a
/// plain decimal (read through its shortest text, so 0.1 stays 0.1).
fn decimal(file: &str, key: &str, value: &toml::Value) -> Result<Decimal> {
    let parsed = match value {
        toml::Value::String(s) => Decimal::from_str_exact(s.trim()).ok(),
        toml::Value::Integer(i) => Some(Decimal::from(*i)),
        toml::Value::Float(f) if f.is_finite() => Decimal::from_str_exact(&f.to_string()).ok(),
        _ => None,
    };
    parsed.ok_or_else(|| key_error(file, key, format!("`{value}` is not a decimal number")))
}

impl CreditPolicy {
    /// Reads and checks a policy file.
    pub fn load(path: &std::path::Path) -> Result<CreditPolicy> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a policy; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<CreditPolicy> {
        let table: toml::Table = text
            .parse()
            .map_err(|e| ModelError::Data(format!("policy {file}: not valid TOML: {e}")))?;
        let known: BTreeSet<&str> = [
            "version",
            "classes",
            "floor",
            "cap",
            "rounding_step",
            "starter_limit",
            "starter_months",
            "lgd",
            "expected_loss_budget",
            "queues",
        ]
        .into();
        if let Some(unknown) = table.keys().find(|k| !known.contains(k.as_str())) {
            return Err(key_error(file, unknown, "unknown key"));
        }
        let required = |key: &str| {
            table
                .get(key)
                .ok_or_else(|| key_error(file, key, "missing"))
        };
        let money = |key: &str| -> Result<Decimal> {
            let v = decimal(file, key, required(key)?)?;
            if v.is_sign_negative() {
                return Err(key_error(file, key, format!("{v} is negative")));
            }
            Ok(v)
        };
        let version = match required("version")? {
            toml::Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
            other => {
                return Err(key_error(
                    file,
                    "version",
                    format!("`{other}` is not a version name"),
                ));
            }
        };
        let floor = money("floor")?;
        let cap = money("cap")?;
        let rounding_step = money("rounding_step")?;
        let starter_limit = money("starter_limit")?;
        let lgd = money("lgd")?;
        let starter_months = match required("starter_months")? {
            toml::Value::Integer(i) if (0..=120).contains(i) => *i as u32,
            other => {
                return Err(key_error(
                    file,
                    "starter_months",
                    format!("`{other}` is not a whole number of months (0 to 120)"),
                ));
            }
        };
        let expected_loss_budget = match table.get("expected_loss_budget") {
            None => None,
            Some(v) => {
                let b = decimal(file, "expected_loss_budget", v)?;
                if b <= Decimal::ZERO {
                    return Err(key_error(
                        file,
                        "expected_loss_budget",
                        "must be above zero",
                    ));
                }
                Some(b)
            }
        };
        if rounding_step <= Decimal::ZERO {
            return Err(key_error(file, "rounding_step", "must be above zero"));
        }
        if floor > cap {
            return Err(key_error(
                file,
                "floor",
                format!("{floor} is above the cap {cap}"),
            ));
        }
        for (key, value) in [("floor", floor), ("cap", cap)] {
            if !(value % rounding_step).is_zero() {
                return Err(key_error(
                    file,
                    key,
                    format!("{value} is not a multiple of rounding_step {rounding_step}"),
                ));
            }
        }
        if starter_limit < floor || starter_limit > cap {
            return Err(key_error(
                file,
                "starter_limit",
                format!("{starter_limit} is outside floor {floor} .. cap {cap}"),
            ));
        }
        if lgd <= Decimal::ZERO || lgd > Decimal::ONE {
            return Err(key_error(file, "lgd", format!("{lgd} is not in (0, 1]")));
        }
        let classes = match required("classes")? {
            toml::Value::Array(items) if !items.is_empty() => items,
            _ => {
                return Err(key_error(
                    file,
                    "classes",
                    "must be a list of [[classes]] tables",
                ));
            }
        };
        let mut parsed = Vec::with_capacity(classes.len());
        for (i, item) in classes.iter().enumerate() {
            let at = |key: &str| format!("classes[{i}].{key}");
            let toml::Value::Table(class) = item else {
                return Err(key_error(file, &format!("classes[{i}]"), "must be a table"));
            };
            if let Some(unknown) = class
                .keys()
                .find(|k| !["name", "max_pd", "multiple"].contains(&k.as_str()))
            {
                return Err(key_error(file, &at(unknown), "unknown key"));
            }
            let name = match class.get("name") {
                Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                _ => return Err(key_error(file, &at("name"), "missing or empty")),
            };
            let multiple = decimal(
                file,
                &at("multiple"),
                class
                    .get("multiple")
                    .ok_or_else(|| key_error(file, &at("multiple"), "missing"))?,
            )?;
            if multiple.is_sign_negative() && !multiple.is_zero() {
                return Err(key_error(
                    file,
                    &at("multiple"),
                    format!("{multiple} is negative"),
                ));
            }
            let last = i + 1 == classes.len();
            let max_pd = match (class.get("max_pd"), last) {
                (None, true) => None,
                (None, false) => {
                    return Err(key_error(
                        file,
                        &at("max_pd"),
                        "missing (only the last class takes every PD above the others)",
                    ));
                }
                (Some(_), true) => {
                    return Err(key_error(
                        file,
                        &at("max_pd"),
                        "the last class must not have max_pd: it takes every PD above the others",
                    ));
                }
                (Some(v), false) => {
                    let pd = decimal(file, &at("max_pd"), v)?;
                    if pd <= Decimal::ZERO || pd > Decimal::ONE {
                        return Err(key_error(
                            file,
                            &at("max_pd"),
                            format!("{pd} is not in (0, 1]"),
                        ));
                    }
                    if let Some(prev) = parsed.last().and_then(|c: &RiskClass| c.max_pd)
                        && pd <= prev
                    {
                        return Err(key_error(
                            file,
                            &at("max_pd"),
                            format!("{pd} does not increase on the previous class's {prev}"),
                        ));
                    }
                    Some(pd)
                }
            };
            if parsed.iter().any(|c: &RiskClass| c.name == name) {
                return Err(key_error(
                    file,
                    &at("name"),
                    format!("class `{name}` appears twice"),
                ));
            }
            parsed.push(RiskClass {
                name,
                max_pd,
                multiple,
            });
        }
        let queues = parse_queues(file, table.get("queues"), lgd)?;
        Ok(CreditPolicy {
            version,
            classes: parsed,
            floor,
            cap,
            rounding_step,
            starter_limit,
            starter_months,
            lgd,
            expected_loss_budget,
            queues,
        })
    }

    /// The PD as a decimal with 6 places (PDs are floats; limits are decided on this).
    fn pd_decimal(pd: f64) -> Decimal {
        Decimal::from_f64(pd.clamp(0.0, 1.0))
            .unwrap_or(Decimal::ONE)
            .round_dp(6)
    }

    /// The risk class of a PD.
    pub fn class_of(&self, pd: f64) -> &RiskClass {
        let pd = Self::pd_decimal(pd);
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
        let pd = Self::pd_decimal(input.pd);
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
                percent(pd)
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
                    percent(pd),
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

/// The `[queues]` table: `promise_grace_days`, `high_risk_pd`, `high_risk_overdue`,
/// `call_pd`; each optional (defaults of [`QueuePolicy`]).
fn parse_queues(file: &str, value: Option<&toml::Value>, lgd: Decimal) -> Result<QueuePolicy> {
    let mut policy = QueuePolicy {
        lgd,
        ..QueuePolicy::default()
    };
    let Some(value) = value else {
        return Ok(policy);
    };
    let toml::Value::Table(table) = value else {
        return Err(key_error(file, "queues", "must be a [queues] table"));
    };
    let at = |key: &str| format!("queues.{key}");
    for (key, v) in table {
        match key.as_str() {
            "promise_grace_days" => match v {
                toml::Value::Integer(i) if (0..=60).contains(i) => {
                    policy.promise_grace_days = *i as i32
                }
                _ => {
                    return Err(key_error(
                        file,
                        &at(key),
                        format!("`{v}` is not a number of days (0 to 60)"),
                    ));
                }
            },
            "high_risk_pd" | "call_pd" => {
                let pd = decimal(file, &at(key), v)?;
                if pd <= Decimal::ZERO || pd > Decimal::ONE {
                    return Err(key_error(file, &at(key), format!("{pd} is not in (0, 1]")));
                }
                let pd = pd.to_f64().unwrap_or(1.0);
                if key == "call_pd" {
                    policy.call_pd = pd;
                } else {
                    policy.high_risk_pd = pd;
                }
            }
            "high_risk_overdue" => {
                let amount = decimal(file, &at(key), v)?;
                if amount <= Decimal::ZERO {
                    return Err(key_error(file, &at(key), "must be above zero"));
                }
                policy.high_risk_overdue = amount;
            }
            _ => return Err(key_error(file, &at(key), "unknown key")),
        }
    }
    Ok(policy)
}

/// Money in outputs (recommendations, call lists): Decimal128(18, 2), like the warehouse.
pub(crate) const MONEY: DataType = DataType::Decimal128(18, 2);

/// The columns of `arq limits`.
pub fn limits_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("snapshot_date", DataType::Date32, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("current_limit", MONEY, false),
        Field::new("recommended_limit", MONEY, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("exposure", MONEY, false),
        Field::new("over_limit", DataType::Boolean, false),
        Field::new("risk_class", DataType::Utf8, false),
        Field::new("pd", DataType::Float64, false),
        Field::new("reasons", DataType::Utf8, false),
        Field::new("policy_version", DataType::Utf8, false),
    ]))
}

fn cents_to_decimal(cents: i128) -> Decimal {
    Decimal::from_i128_with_scale(cents, 2)
}

/// Cents of an amount for a Decimal128(18, 2) column; an error when it does not fit.
pub(crate) fn decimal_to_cents(d: Decimal, what: &str) -> Result<i128> {
    let mut d = d.round_dp(2);
    d.rescale(2);
    let cents = d.mantissa();
    if cents.unsigned_abs() >= 10u128.pow(18) {
        return Err(ModelError::Data(format!(
            "{what} {d} does not fit Decimal(18, 2)"
        )));
    }
    Ok(cents)
}

/// Recommendations for every customer of the snapshot `day`, by customer: the model's PD
/// from `scores` (`features::score_snapshot` of the same day: PD 1 for late stage), the
/// policy's inputs from the warehouse, the policy's decision.
pub async fn recommend_snapshot(
    session: &dyn Session,
    scores: &RecordBatch,
    policy: &CreditPolicy,
    day: i32,
) -> Result<RecordBatch> {
    let sql = LIMIT_INPUTS_SQL.replace("{day}", &day.to_string());
    let batches = collect_sql(session, &sql).await?;
    let inputs = match batches.first() {
        Some(b) => concat_batches(&b.schema(), &batches)?,
        None => RecordBatch::new_empty(limits_schema()),
    };
    if inputs.num_rows() != scores.num_rows() {
        return Err(ModelError::Data(format!(
            "{} customers scored but {} with limit inputs at the snapshot",
            scores.num_rows(),
            inputs.num_rows()
        )));
    }
    let text =
        |b: &RecordBatch, i: usize| -> Result<ArrayRef> { Ok(cast(b.column(i), &DataType::Utf8)?) };
    let score_ids = text(scores, 0)?;
    let input_ids = text(&inputs, 0)?;
    if score_ids.as_ref() != input_ids.as_ref() {
        return Err(ModelError::Data(
            "scores and limit inputs are not in the same customer order".into(),
        ));
    }
    let money = |i: usize| -> Result<ArrayRef> {
        Ok(cast(inputs.column(i), &DataType::Decimal128(38, 2))?)
    };
    let current = money(3)?;
    let exposure = money(4)?;
    let sales = money(5)?;
    let (current, exposure, sales) = (
        current.as_primitive::<Decimal128Type>(),
        exposure.as_primitive::<Decimal128Type>(),
        sales.as_primitive::<Decimal128Type>(),
    );
    let months = cast(inputs.column(6), &DataType::Int32)?;
    let months = months.as_primitive::<Int32Type>();
    let pd = scores.column(2).as_primitive::<Float64Type>();
    let late = scores.column(8).as_boolean();
    let n = scores.num_rows();
    let (mut recommended, mut current_out, mut exposure_out) = (Vec::new(), Vec::new(), Vec::new());
    let (mut actions, mut over, mut classes, mut reasons) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..n {
        let input = LimitInput {
            current_limit: cents_to_decimal(current.value(r)),
            exposure: cents_to_decimal(exposure.value(r)),
            credit_sales: cents_to_decimal(sales.value(r)),
            history_months: months.value(r).max(0) as u32,
            pd: pd.value(r),
            late_stage: late.value(r),
        };
        let rec = policy.recommend(&input);
        recommended.push(decimal_to_cents(
            rec.recommended_limit,
            "recommended limit",
        )?);
        current_out.push(current.value(r));
        exposure_out.push(decimal_to_cents(input.exposure, "exposure")?);
        actions.push(rec.action.as_str());
        over.push(rec.over_limit);
        classes.push(rec.risk_class);
        reasons.push(rec.reasons.join("; "));
    }
    let money_array = |v: Vec<i128>| -> Result<ArrayRef> {
        Ok(Arc::new(Decimal128Array::from(v).with_data_type(MONEY)))
    };
    let columns: Vec<ArrayRef> = vec![
        score_ids,
        scores.column(1).clone(),
        cast(inputs.column(2), &DataType::Utf8)?,
        money_array(current_out)?,
        money_array(recommended)?,
        Arc::new(StringArray::from(actions)),
        money_array(exposure_out)?,
        Arc::new(BooleanArray::from(over)),
        Arc::new(StringArray::from(classes)),
        Arc::new(Float64Array::from(pd.values().to_vec())),
        Arc::new(StringArray::from(reasons)),
        Arc::new(StringArray::from(vec![policy.version.as_str(); n])),
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

fn percent(pd: Decimal) -> String {
    format!("{} %", (pd * Decimal::ONE_HUNDRED).round_dp(2).normalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
version = "test-1"
floor = "1000"
cap = "100000"
rounding_step = "500"
starter_limit = "5000"
starter_months = 3
lgd = "0.5"

[[classes]]
name = "A"
max_pd = "0.02"
multiple = "3"
[[classes]]
name = "B"
max_pd = 0.05
multiple = "2"
[[classes]]
name = "C"
max_pd = "0.10"
multiple = 1.5
[[classes]]
name = "D"
max_pd = "0.20"
multiple = "1"
[[classes]]
name = "E"
multiple = "0"
"#;

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

    fn policy() -> CreditPolicy {
        CreditPolicy::parse(POLICY, "test.toml").unwrap()
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
    fn queue_thresholds_come_from_the_policy() {
        assert_eq!(
            policy().queues,
            QueuePolicy {
                lgd: d("0.5"),
                ..QueuePolicy::default()
            }
        );
        let p = CreditPolicy::parse(
            &format!("{POLICY}\n[queues]\npromise_grace_days = 5\nhigh_risk_pd = \"0.4\"\nhigh_risk_overdue = \"100000\"\ncall_pd = 0.2\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            p.queues,
            QueuePolicy {
                promise_grace_days: 5,
                lgd: d("0.5"),
                high_risk_pd: 0.4,
                high_risk_overdue: d("100000"),
                call_pd: 0.2,
            }
        );
    }

    #[test]
    fn expected_loss_budget_caps_the_limit() {
        let p = CreditPolicy::parse(
            &POLICY.replace(
                "lgd = \"0.5\"",
                "lgd = \"0.5\"\nexpected_loss_budget = \"100\"",
            ),
            "t.toml",
        )
        .unwrap();
        // PD 4 %, LGD 0.5: budget 100 / 0.02 = 5,000 < 2 × 5,000 = 10,000.
        let r = p.recommend(&input(0.04, "60000.00", 24));
        assert_eq!(r.recommended_limit, d("5000"));
        assert!(r.reasons.iter().any(|x| x.contains("expected-loss budget")));
    }

    #[test]
    fn bad_policies_name_the_key() {
        let cases = [
            (
                POLICY.replace("max_pd = 0.05", "max_pd = 0.01"),
                "`classes[1].max_pd`: 0.01 does not increase",
            ),
            (
                POLICY.replace("multiple = \"2\"", "multiple = \"-2\""),
                "`classes[1].multiple`: -2 is negative",
            ),
            (
                POLICY.replace("floor = \"1000\"", "floor = \"200000\""),
                "`floor`: 200000 is above the cap",
            ),
            (
                POLICY.replace("rounding_step = \"500\"", "rounding_step = \"0\""),
                "`rounding_step`: must be above zero",
            ),
            (
                POLICY.replace("floor = \"1000\"", "floor = \"1200\""),
                "`floor`: 1200 is not a multiple",
            ),
            (
                POLICY.replace("lgd = \"0.5\"", "lgd = \"1.5\""),
                "`lgd`: 1.5 is not in (0, 1]",
            ),
            (
                POLICY.replace("version = \"test-1\"", ""),
                "`version`: missing",
            ),
            (
                POLICY.replace("cap = \"100000\"", "cap = \"lots\""),
                "`cap`: `\"lots\"` is not a decimal",
            ),
            (
                POLICY.replace("starter_months = 3", "starter_months = 3\ncolour = \"red\""),
                "`colour`: unknown key",
            ),
            (
                POLICY.replace("name = \"E\"\n", "name = \"E\"\nmax_pd = \"1\"\n"),
                "`classes[4].max_pd`: the last class",
            ),
            (
                POLICY.replace("name = \"B\"", "name = \"A\""),
                "class `A` appears twice",
            ),
            ("version = [".to_string(), "not valid TOML"),
            (
                format!("{POLICY}\n[queues]\nhigh_risk_pd = \"1.5\"\n"),
                "`queues.high_risk_pd`: 1.5 is not in (0, 1]",
            ),
            (
                format!("{POLICY}\n[queues]\nbatch = 3\n"),
                "`queues.batch`: unknown key",
            ),
        ];
        for (text, expected) in cases {
            let err = CreditPolicy::parse(&text, "p.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("policy p.toml: ") && err.contains(expected),
                "{expected}: {err}"
            );
        }
    }
}
