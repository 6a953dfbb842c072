//! The credit policy file (TOML, versioned): the credit-limit rules of DOMAIN.md §6 and
//! the work queues' thresholds of §5.
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
//!
//! [queues]                     # optional, each key too
//! promise_grace_days = 3
//! high_risk_pd = "0.5"
//! high_risk_overdue = "250000"
//! call_pd = "0.10"
//! ```
//!
//! As with linfa's checked parameters, the file is read in two steps: serde turns the
//! TOML into a [`RawPolicy`] that holds whatever was written, and [`RawPolicy::check`]
//! turns that into a valid [`Policy`] or an error naming the key. Everything is decimal
//! (rust_decimal): the same inputs and policy give the same limits.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// A checked policy: the limits' rules and the queues' thresholds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// The policy's version, written on every recommendation.
    pub version: String,
    pub limits: LimitPolicy,
    pub queues: QueuePolicy,
}

/// One risk class: PD below `max_pd` (the last class has none: everything above).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskClass {
    pub name: String,
    pub max_pd: Option<Decimal>,
    pub multiple: Decimal,
    /// Months between periodic reviews of a credit line in this class (default 12).
    pub review_months: u32,
}

/// The credit-limit rules (DOMAIN.md §6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitPolicy {
    pub classes: Vec<RiskClass>,
    pub floor: Decimal,
    pub cap: Decimal,
    pub rounding_step: Decimal,
    pub starter_limit: Decimal,
    pub starter_months: u32,
    pub lgd: Decimal,
    pub expected_loss_budget: Option<Decimal>,
    /// When a credit line is due for review besides its class's interval.
    pub review: ReviewPolicy,
    /// How applications of prospective customers are decided.
    pub applications: ApplicationPolicy,
}

/// The triggers of an early credit review (the optional `[review]` table).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewPolicy {
    /// The PD class moved by at least this many classes since the previous snapshot.
    pub class_migration: u32,
    /// Exposure above the credit limit for at least this many days.
    pub over_limit_days: i32,
    /// A promise of at least this amount broken within `broken_promise_days`.
    pub broken_promise_amount: Decimal,
    pub broken_promise_days: i32,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        ReviewPolicy {
            class_migration: 2,
            over_limit_days: 30,
            broken_promise_amount: Decimal::from(10_000),
            broken_promise_days: 90,
        }
    }
}

/// Credit applications of prospective customers (the optional `[applications]` table):
/// a PD from the external rating when the application has one, else from the segment; the
/// policy's class of that PD; a limit of at most the requested amount, a share of the
/// annual revenue when given, and the starter limit without rating or financials.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplicationPolicy {
    /// PD by segment, for applications without an external rating.
    pub segment_pd: BTreeMap<String, Decimal>,
    /// PD by external rating 1 (best) to N.
    pub rating_pd: Vec<Decimal>,
    /// A limit is at most this share of the annual revenue, when the application gives it.
    pub revenue_share: Decimal,
    /// Approved limits above this are referred to a credit officer.
    pub approve_up_to: Decimal,
    /// Classes declined, and classes always referred.
    pub decline_classes: Vec<String>,
    pub refer_classes: Vec<String>,
}

impl Default for ApplicationPolicy {
    fn default() -> Self {
        let d = |s: &str| Decimal::from_str_exact(s).expect("a decimal");
        ApplicationPolicy {
            segment_pd: [
                ("enterprise", "0.03"),
                ("mid_market", "0.05"),
                ("small_business", "0.08"),
                ("consumer", "0.12"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), d(v)))
            .collect(),
            rating_pd: [
                "0.005", "0.01", "0.02", "0.035", "0.05", "0.08", "0.12", "0.18", "0.25", "0.40",
            ]
            .into_iter()
            .map(d)
            .collect(),
            revenue_share: d("0.10"),
            approve_up_to: Decimal::from(50_000),
            decline_classes: vec!["E".into()],
            refer_classes: vec!["D".into()],
        }
    }
}

/// The work queues' thresholds (the optional `[queues]` table; LGD is the policy's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuePolicy {
    /// Days after the promise date before a kept-back customer is called again.
    pub promise_grace_days: i32,
    /// Loss given default in the expected loss.
    pub lgd: Decimal,
    /// Supervisor queue for PDs at or above this.
    pub high_risk_pd: f64,
    /// Supervisor queue for overdue balances at or above this.
    pub high_risk_overdue: Decimal,
    /// Call (rather than write) from this PD on.
    pub call_pd: f64,
    /// A promise holds the account back only when it covers at least this share of the
    /// overdue; a smaller promise leaves the uncovered rest workable.
    pub promise_hold_coverage: Decimal,
    /// The share a promise must cover when the customer broke a promise within
    /// `broken_promise_days`.
    pub promise_hold_coverage_after_broken: Decimal,
    /// How far back a broken promise counts as recent, in days.
    pub broken_promise_days: i32,
    /// No promise holds an account this many days past due or more.
    pub promise_hold_max_dpd: i32,
    /// The escalation track for late-stage accounts.
    pub escalation: EscalationPolicy,
}

/// The escalation track (the `[queues]` keys `final_demand_dpd` ... ): late-stage
/// accounts leave the call lists for the manager's escalation list with one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscalationPolicy {
    /// Final demand letter from this many days past due.
    pub final_demand_dpd: i32,
    /// Or, from 31 days past due, after this many broken promises in 12 months.
    pub final_demand_broken_promises: i32,
    /// Placement with a collection agency from this many days past due.
    pub agency_dpd: i32,
    /// Legal action from this many days past due, for overdue balances of at least
    /// `legal_min_overdue` (smaller ones stay with the agency).
    pub legal_dpd: i32,
    pub legal_min_overdue: Decimal,
    /// Write-off review from this many days past due, for balances below
    /// `legal_min_overdue` (larger ones stay in legal).
    pub write_off_review_dpd: i32,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            final_demand_dpd: 90,
            final_demand_broken_promises: 2,
            agency_dpd: 120,
            legal_dpd: 150,
            legal_min_overdue: Decimal::from(25_000),
            write_off_review_dpd: 180,
        }
    }
}

impl Default for QueuePolicy {
    fn default() -> Self {
        QueuePolicy {
            promise_grace_days: 3,
            lgd: Decimal::ONE,
            high_risk_pd: 0.5,
            high_risk_overdue: Decimal::from(250_000),
            call_pd: 0.10,
            promise_hold_coverage: Decimal::new(9, 1),
            promise_hold_coverage_after_broken: Decimal::ONE,
            broken_promise_days: 90,
            promise_hold_max_dpd: 90,
            escalation: EscalationPolicy::default(),
        }
    }
}

/// The policy file as written: every key as TOML gave it, unknown keys kept so that
/// [`RawPolicy::check`] can name them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawPolicy {
    version: Option<toml::Value>,
    floor: Option<toml::Value>,
    cap: Option<toml::Value>,
    rounding_step: Option<toml::Value>,
    starter_limit: Option<toml::Value>,
    starter_months: Option<toml::Value>,
    lgd: Option<toml::Value>,
    expected_loss_budget: Option<toml::Value>,
    classes: Option<toml::Value>,
    queues: Option<toml::Value>,
    review: Option<toml::Value>,
    applications: Option<toml::Value>,
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

impl Policy {
    /// Parses and checks a policy; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<Policy> {
        let raw: RawPolicy = toml::from_str(text)
            .map_err(|e| ModelError::Data(format!("policy {file}: not valid TOML: {e}")))?;
        raw.check(file)
    }
}

/// An error about one key of the policy file.
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

/// A required key.
fn required<'a>(file: &str, key: &str, value: &'a Option<toml::Value>) -> Result<&'a toml::Value> {
    value
        .as_ref()
        .ok_or_else(|| key_error(file, key, "missing"))
}

/// A required amount of money, not negative.
fn money(file: &str, key: &str, value: &Option<toml::Value>) -> Result<Decimal> {
    let v = decimal(file, key, required(file, key, value)?)?;
    if v.is_sign_negative() {
        return Err(key_error(file, key, format!("{v} is negative")));
    }
    Ok(v)
}

/// A probability in (0, 1].
fn probability(file: &str, key: &str, value: &toml::Value) -> Result<Decimal> {
    let pd = decimal(file, key, value)?;
    if pd <= Decimal::ZERO || pd > Decimal::ONE {
        return Err(key_error(file, key, format!("{pd} is not in (0, 1]")));
    }
    Ok(pd)
}

impl RawPolicy {
    /// Checks every key and returns the valid policy, or an error naming the first key
    /// at fault.
    pub fn check(&self, file: &str) -> Result<Policy> {
        if let Some(unknown) = self.unknown.keys().next() {
            return Err(key_error(file, unknown, "unknown key"));
        }
        let version = match required(file, "version", &self.version)? {
            toml::Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
            other => {
                return Err(key_error(
                    file,
                    "version",
                    format!("`{other}` is not a version name"),
                ));
            }
        };
        let limits = self.check_limits(file)?;
        let queues = check_queues(file, self.queues.as_ref(), limits.lgd)?;
        Ok(Policy {
            version,
            limits,
            queues,
        })
    }

    /// The limits' amounts and their consistency, then the classes.
    fn check_limits(&self, file: &str) -> Result<LimitPolicy> {
        let floor = money(file, "floor", &self.floor)?;
        let cap = money(file, "cap", &self.cap)?;
        let rounding_step = money(file, "rounding_step", &self.rounding_step)?;
        let starter_limit = money(file, "starter_limit", &self.starter_limit)?;
        let lgd = money(file, "lgd", &self.lgd)?;
        let starter_months = match required(file, "starter_months", &self.starter_months)? {
            toml::Value::Integer(i) if (0..=120).contains(i) => *i as u32,
            other => {
                return Err(key_error(
                    file,
                    "starter_months",
                    format!("`{other}` is not a whole number of months (0 to 120)"),
                ));
            }
        };
        let expected_loss_budget = match &self.expected_loss_budget {
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
        let classes = check_classes(file, self.classes.as_ref())?;
        let applications = check_applications(file, self.applications.as_ref(), &classes)?;
        Ok(LimitPolicy {
            review: check_review(file, self.review.as_ref())?,
            applications,
            classes,
            floor,
            cap,
            rounding_step,
            starter_limit,
            starter_months,
            lgd,
            expected_loss_budget,
        })
    }
}

/// The `[[classes]]` list: names unique, `max_pd` increasing, the last without one.
fn check_classes(file: &str, value: Option<&toml::Value>) -> Result<Vec<RiskClass>> {
    let items = match value {
        Some(toml::Value::Array(items)) if !items.is_empty() => items,
        None => return Err(key_error(file, "classes", "missing")),
        _ => {
            return Err(key_error(
                file,
                "classes",
                "must be a list of [[classes]] tables",
            ));
        }
    };
    let mut classes: Vec<RiskClass> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        let class = check_class(file, i, item, last, classes.last())?;
        if classes.iter().any(|c| c.name == class.name) {
            return Err(key_error(
                file,
                &format!("classes[{i}].name"),
                format!("class `{}` appears twice", class.name),
            ));
        }
        classes.push(class);
    }
    Ok(classes)
}

/// One `[[classes]]` table (the `i`-th; `previous` is the class before it).
fn check_class(
    file: &str,
    i: usize,
    item: &toml::Value,
    last: bool,
    previous: Option<&RiskClass>,
) -> Result<RiskClass> {
    let at = |key: &str| format!("classes[{i}].{key}");
    let toml::Value::Table(class) = item else {
        return Err(key_error(file, &format!("classes[{i}]"), "must be a table"));
    };
    if let Some(unknown) = class
        .keys()
        .find(|k| !["name", "max_pd", "multiple", "review_months"].contains(&k.as_str()))
    {
        return Err(key_error(file, &at(unknown), "unknown key"));
    }
    let name = match class.get("name") {
        Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err(key_error(file, &at("name"), "missing or empty")),
    };
    let multiple = class
        .get("multiple")
        .ok_or_else(|| key_error(file, &at("multiple"), "missing"))?;
    let multiple = decimal(file, &at("multiple"), multiple)?;
    if multiple.is_sign_negative() && !multiple.is_zero() {
        return Err(key_error(
            file,
            &at("multiple"),
            format!("{multiple} is negative"),
        ));
    }
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
            let pd = probability(file, &at("max_pd"), v)?;
            if let Some(prev) = previous.and_then(|c| c.max_pd)
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
    let review_months = match class.get("review_months") {
        None => 12,
        Some(v) => days(file, &at("review_months"), v, 120)? as u32,
    };
    Ok(RiskClass {
        name,
        max_pd,
        multiple,
        review_months,
    })
}

/// The `[queues]` table: `promise_grace_days`, `high_risk_pd`, `high_risk_overdue`,
/// `call_pd`; each optional (defaults of [`QueuePolicy`]).
fn check_queues(file: &str, value: Option<&toml::Value>, lgd: Decimal) -> Result<QueuePolicy> {
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
            "high_risk_pd" => {
                policy.high_risk_pd = probability(file, &at(key), v)?.to_f64().unwrap_or(1.0)
            }
            "call_pd" => policy.call_pd = probability(file, &at(key), v)?.to_f64().unwrap_or(1.0),
            "high_risk_overdue" => {
                let amount = decimal(file, &at(key), v)?;
                if amount <= Decimal::ZERO {
                    return Err(key_error(file, &at(key), "must be above zero"));
                }
                policy.high_risk_overdue = amount;
            }
            "promise_hold_coverage" => policy.promise_hold_coverage = share(file, &at(key), v)?,
            "promise_hold_coverage_after_broken" => {
                policy.promise_hold_coverage_after_broken = share(file, &at(key), v)?
            }
            "broken_promise_days" => policy.broken_promise_days = days(file, &at(key), v, 3650)?,
            "promise_hold_max_dpd" => policy.promise_hold_max_dpd = days(file, &at(key), v, 3650)?,
            "final_demand_dpd" => {
                policy.escalation.final_demand_dpd = days(file, &at(key), v, 3650)?
            }
            "final_demand_broken_promises" => {
                policy.escalation.final_demand_broken_promises = days(file, &at(key), v, 1000)?
            }
            "agency_dpd" => policy.escalation.agency_dpd = days(file, &at(key), v, 3650)?,
            "legal_dpd" => policy.escalation.legal_dpd = days(file, &at(key), v, 3650)?,
            "write_off_review_dpd" => {
                policy.escalation.write_off_review_dpd = days(file, &at(key), v, 3650)?
            }
            "legal_min_overdue" => {
                policy.escalation.legal_min_overdue = money(file, &at(key), &Some(v.clone()))?
            }
            _ => return Err(key_error(file, &at(key), "unknown key")),
        }
    }
    if policy.promise_hold_coverage_after_broken < policy.promise_hold_coverage {
        return Err(key_error(
            file,
            &at("promise_hold_coverage_after_broken"),
            format!(
                "{} is below promise_hold_coverage {}: a broken promise cannot make holding easier",
                policy.promise_hold_coverage_after_broken, policy.promise_hold_coverage
            ),
        ));
    }
    let e = &policy.escalation;
    let steps = [
        ("final_demand_dpd", e.final_demand_dpd),
        ("agency_dpd", e.agency_dpd),
        ("legal_dpd", e.legal_dpd),
        ("write_off_review_dpd", e.write_off_review_dpd),
    ];
    if let Some(w) = steps.windows(2).find(|w| w[1].1 < w[0].1) {
        return Err(key_error(
            file,
            &at(w[1].0),
            format!(
                "{} is below {} {}: the escalation steps follow one another",
                w[1].1, w[0].0, w[0].1
            ),
        ));
    }
    Ok(policy)
}

/// A `[name]` table's entries, or none when the table is absent.
fn table<'a>(
    file: &str,
    name: &str,
    value: Option<&'a toml::Value>,
) -> Result<Vec<(&'a String, &'a toml::Value)>> {
    match value {
        None => Ok(Vec::new()),
        Some(toml::Value::Table(t)) => Ok(t.iter().collect()),
        Some(_) => Err(key_error(file, name, format!("must be a [{name}] table"))),
    }
}

/// The `[review]` table: `class_migration`, `over_limit_days`, `broken_promise_amount`,
/// `broken_promise_days`; each optional (defaults of [`ReviewPolicy`]).
fn check_review(file: &str, value: Option<&toml::Value>) -> Result<ReviewPolicy> {
    let mut review = ReviewPolicy::default();
    for (key, v) in table(file, "review", value)? {
        let at = format!("review.{key}");
        match key.as_str() {
            "class_migration" => review.class_migration = days(file, &at, v, 20)? as u32,
            "over_limit_days" => review.over_limit_days = days(file, &at, v, 3650)?,
            "broken_promise_days" => review.broken_promise_days = days(file, &at, v, 3650)?,
            "broken_promise_amount" => {
                review.broken_promise_amount = money(file, &at, &Some(v.clone()))?
            }
            _ => return Err(key_error(file, &at, "unknown key")),
        }
    }
    Ok(review)
}

/// The `[applications]` table; each key optional (defaults of [`ApplicationPolicy`]);
/// the classes named must exist.
fn check_applications(
    file: &str,
    value: Option<&toml::Value>,
    classes: &[RiskClass],
) -> Result<ApplicationPolicy> {
    // By default the last class (cash in advance) is declined and the one before it
    // referred, whatever the classes are called.
    let names: Vec<String> = classes.iter().map(|c| c.name.clone()).collect();
    let mut p = ApplicationPolicy {
        decline_classes: names.last().cloned().into_iter().collect(),
        refer_classes: if names.len() >= 3 {
            vec![names[names.len() - 2].clone()]
        } else {
            Vec::new()
        },
        ..ApplicationPolicy::default()
    };
    let class_list = |at: &str, v: &toml::Value| -> Result<Vec<String>> {
        let toml::Value::Array(items) = v else {
            return Err(key_error(file, at, "must be a list of class names"));
        };
        items
            .iter()
            .map(|item| match item {
                toml::Value::String(name) if classes.iter().any(|c| &c.name == name) => {
                    Ok(name.clone())
                }
                other => Err(key_error(
                    file,
                    at,
                    format!("`{other}` is not a class of the policy"),
                )),
            })
            .collect()
    };
    for (key, v) in table(file, "applications", value)? {
        let at = format!("applications.{key}");
        match key.as_str() {
            "segment_pd" => {
                let mut pds = BTreeMap::new();
                for (segment, pd) in table(file, &at, Some(v))? {
                    pds.insert(
                        segment.clone(),
                        probability(file, &format!("{at}.{segment}"), pd)?,
                    );
                }
                p.segment_pd = pds;
            }
            "rating_pd" => {
                let toml::Value::Array(items) = v else {
                    return Err(key_error(
                        file,
                        &at,
                        "must be a list of PDs, rating 1 first",
                    ));
                };
                p.rating_pd = items
                    .iter()
                    .enumerate()
                    .map(|(i, pd)| probability(file, &format!("{at}[{i}]"), pd))
                    .collect::<Result<_>>()?;
                if p.rating_pd.is_empty() || p.rating_pd.windows(2).any(|w| w[1] < w[0]) {
                    return Err(key_error(
                        file,
                        &at,
                        "must list at least one PD, not decreasing from rating 1 on",
                    ));
                }
            }
            "revenue_share" => p.revenue_share = share(file, &at, v)?,
            "approve_up_to" => p.approve_up_to = money(file, &at, &Some(v.clone()))?,
            "decline_classes" => p.decline_classes = class_list(&at, v)?,
            "refer_classes" => p.refer_classes = class_list(&at, v)?,
            _ => return Err(key_error(file, &at, "unknown key")),
        }
    }
    for name in p.decline_classes.iter().chain(&p.refer_classes) {
        if !classes.iter().any(|c| &c.name == name) {
            return Err(key_error(
                file,
                "applications",
                format!("class `{name}` is not a class of the policy"),
            ));
        }
    }
    Ok(p)
}

/// A share in (0, 1].
fn share(file: &str, key: &str, value: &toml::Value) -> Result<Decimal> {
    probability(file, key, value)
}

/// A whole number from 1 to `max` (days, or a count).
fn days(file: &str, key: &str, value: &toml::Value, max: i64) -> Result<i32> {
    match value {
        toml::Value::Integer(i) if (1..=max).contains(i) => Ok(*i as i32),
        _ => Err(key_error(
            file,
            key,
            format!("`{value}` is not a whole number from 1 to {max}"),
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const POLICY: &str = r#"
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

    #[test]
    fn queue_thresholds_come_from_the_policy() {
        assert_eq!(
            Policy::parse(POLICY, "test.toml").unwrap().queues,
            QueuePolicy {
                lgd: d("0.5"),
                ..QueuePolicy::default()
            }
        );
        let p = Policy::parse(
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
                ..QueuePolicy::default()
            }
        );
    }

    #[test]
    fn review_applications_and_escalation_keys_are_read_and_checked() {
        let text = format!(
            "{}\n[review]\nclass_migration = 3\nbroken_promise_amount = \"500\"\n\
             [applications]\nrating_pd = [\"0.01\", \"0.5\"]\nrefer_classes = [\"C\"]\n\
             segment_pd = {{ retail = \"0.2\" }}\n\
             [queues]\npromise_hold_coverage = \"0.5\"\nfinal_demand_dpd = 60\nlegal_min_overdue = 1000\n",
            POLICY.replace("name = \"D\"\n", "name = \"D\"\nreview_months = 3\n")
        );
        let p = Policy::parse(&text, "t.toml").unwrap();
        assert_eq!(p.limits.classes[3].review_months, 3);
        assert_eq!(p.limits.classes[0].review_months, 12);
        assert_eq!(p.limits.review.class_migration, 3);
        assert_eq!(p.limits.review.broken_promise_amount, d("500"));
        assert_eq!(p.limits.review.over_limit_days, 30);
        assert_eq!(p.limits.applications.rating_pd, [d("0.01"), d("0.5")]);
        assert_eq!(p.limits.applications.refer_classes, ["C"]);
        // Not given: the last class is declined.
        assert_eq!(p.limits.applications.decline_classes, ["E"]);
        assert_eq!(p.limits.applications.segment_pd.len(), 1);
        assert_eq!(p.queues.promise_hold_coverage, d("0.5"));
        assert_eq!(p.queues.escalation.final_demand_dpd, 60);
        assert_eq!(p.queues.escalation.legal_min_overdue, d("1000"));
        for (extra, expected) in [
            (
                "[review]\nclass_migration = 0\n",
                "`review.class_migration`",
            ),
            ("[review]\nspeed = 1\n", "`review.speed`: unknown key"),
            (
                "[applications]\nrating_pd = [\"0.5\", \"0.1\"]\n",
                "`applications.rating_pd`: must list",
            ),
            (
                "[applications]\nrefer_classes = [\"Z\"]\n",
                "`applications.refer_classes`",
            ),
            (
                "[queues]\nlegal_dpd = 100\n",
                "`queues.legal_dpd`: 100 is below agency_dpd 120",
            ),
            (
                "[queues]\npromise_hold_coverage = \"0\"\n",
                "`queues.promise_hold_coverage`",
            ),
        ] {
            let err = Policy::parse(&format!("{POLICY}\n{extra}"), "p.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
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
            let err = Policy::parse(&text, "p.toml").unwrap_err().to_string();
            assert!(
                err.starts_with("policy p.toml: ") && err.contains(expected),
                "{expected}: {err}"
            );
        }
    }
}
