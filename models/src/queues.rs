//! Work queues (DOMAIN.md §5): who is called today, by whom, in which order, and why
//! the others are not.
//!
//! Every eligible customer (overdue amount > 0) ends in exactly one place, checked in
//! this order:
//! - `supervisor:fraud_suspected`, `supervisor:high_profile`: such customers are only ever
//!   handled by supervisors, promise or dispute notwithstanding;
//! - `held`: an open promise to pay whose date plus grace has not passed;
//! - `dispute`: the whole overdue balance is in dispute;
//! - `supervisor:high_risk`: PD or overdue at or above the policy's thresholds (this
//!   includes customers already 90+ days past due, at PD 1);
//! - a collector's call list: the customer's own collector, else the collector covering the
//!   customer's segment with the most capacity left (ties by collector id), never above
//!   `daily_capacity`;
//! - `carry_over`, with the reason, when no collector can take the call today.
//!
//! Supervisors have a `daily_capacity` too. Their cases are handed out fraud first, then
//! high-profile, then high risk, each in priority order, to the supervisor with the most
//! capacity left (ties by id); what does not fit stays with supervisors as
//! `supervisor:carry_over`, with the reason — a fraud or high-profile case never moves to
//! a collector.
//!
//! Priority = expected loss = PD × overdue × LGD; ties by max DPD, then overdue exposure
//! (both descending), then customer id: the same inputs always give the same ranks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arq_udfs::dates;
use arq_udfs::table_function::collect_sql;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Decimal128Array, Float64Array, Int32Array, RecordBatch,
    StringArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, Int32Type, Schema, SchemaRef};
use datafusion::catalog::Session;
use rust_decimal::Decimal;

use crate::error::{ModelError, Result};
use crate::money::{self, MONEY};
pub use crate::policy::QueuePolicy;
use crate::scores::Scores;

/// The query for the queues' inputs; `{day}` is the snapshot (days since 1970).
pub const QUEUE_INPUTS_SQL: &str = include_str!("../sql/queue_inputs.sql");

/// A collector or supervisor.
#[derive(Debug, Clone, PartialEq)]
pub struct Collector {
    pub collector_id: String,
    pub role: String,
    pub daily_capacity: u32,
    pub segments: Vec<String>,
}

/// What the queues need of a customer at the as-of date.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueCustomer {
    pub customer_id: String,
    /// The customer's currency: every amount of the customer is in it.
    pub currency: String,
    pub segment: String,
    pub collector_id: Option<String>,
    pub high_profile: bool,
    pub fraud_suspected: bool,
    pub overdue: Decimal,
    /// The overdue amount on invoices in dispute.
    pub overdue_disputed: Decimal,
    pub exposure: Decimal,
    pub max_dpd: i32,
    pub pd: f64,
    /// The latest open promise: (promise date as days since 1970, amount).
    pub promise: Option<(i32, Decimal)>,
}

/// Where a customer goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Placement {
    Collector(String),
    Supervisor(&'static str),
    Dispute,
    Held,
    CarryOver,
}

impl Placement {
    /// The queue's name in outputs.
    pub fn queue(&self) -> String {
        match self {
            Placement::Collector(id) => id.clone(),
            Placement::Supervisor(kind) => format!("supervisor:{kind}"),
            Placement::Dispute => "dispute".into(),
            Placement::Held => "held".into(),
            Placement::CarryOver => "carry_over".into(),
        }
    }
}

/// One customer's place, rank (1 = first, within its queue) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub customer_id: String,
    pub placement: Placement,
    /// The collector or supervisor who works the case today (none when held, in
    /// dispute or carried over).
    pub assigned_to: Option<String>,
    pub rank: u32,
    pub expected_loss: Decimal,
    pub action: &'static str,
    pub reason: String,
}

/// Expected loss in money: PD (at six decimals) × overdue × LGD, to the cent.
pub fn expected_loss(pd: f64, overdue: Decimal, lgd: Decimal) -> Decimal {
    (money::pd_decimal(pd) * overdue * lgd).round_dp(2)
}

/// The queue order: larger expected loss first, ties by max DPD, then overdue (both
/// descending), then customer id.
pub fn priority(
    a: &QueueCustomer,
    a_loss: Decimal,
    b: &QueueCustomer,
    b_loss: Decimal,
) -> std::cmp::Ordering {
    b_loss
        .cmp(&a_loss)
        .then(b.max_dpd.cmp(&a.max_dpd))
        .then(b.overdue.cmp(&a.overdue))
        .then(a.customer_id.cmp(&b.customer_id))
}

/// The suggested action: escalate 90+ DPD, call risky or 31+ DPD customers, a formal
/// letter at 61–89 DPD when the PD is low, an email reminder otherwise.
pub fn suggested_action(max_dpd: i32, pd: f64, policy: &QueuePolicy) -> &'static str {
    if max_dpd >= 90 {
        "escalate"
    } else if pd >= policy.call_pd {
        "call"
    } else if max_dpd >= 61 {
        "letter"
    } else if max_dpd >= 31 {
        "call"
    } else {
        "email"
    }
}

/// Places every eligible customer (overdue > 0) of `customers` at `as_of` (days since
/// 1970). Customers without overdue balance are not in the result.
pub fn build_queues(
    customers: &[QueueCustomer],
    collectors: &[Collector],
    policy: &QueuePolicy,
    as_of: i32,
) -> Vec<QueueEntry> {
    let mut eligible: Vec<(&QueueCustomer, Decimal)> = customers
        .iter()
        .filter(|c| c.overdue > Decimal::ZERO)
        .map(|c| (c, expected_loss(c.pd, c.overdue, policy.lgd)))
        .collect();
    // Highest priority first, so that it fills capacity first.
    eligible.sort_by(|(a, ea), (b, eb)| priority(a, *ea, b, *eb));
    let mut capacity = Capacity::new(collectors, "collector", true);
    let mut entries = Vec::with_capacity(eligible.len());
    for (c, el) in eligible {
        let (placement, reason) = place(c, &mut capacity, policy, as_of);
        entries.push(QueueEntry {
            customer_id: c.customer_id.clone(),
            assigned_to: match &placement {
                Placement::Collector(id) => Some(id.clone()),
                _ => None,
            },
            placement,
            rank: 0,
            expected_loss: el,
            action: suggested_action(c.max_dpd, c.pd, policy),
            reason,
        });
    }
    assign_supervisors(&mut entries, collectors);
    // Ranks within each queue follow the priority order of `entries`.
    let mut next: BTreeMap<Placement, u32> = BTreeMap::new();
    for e in &mut entries {
        let n = next.entry(e.placement.clone()).or_insert(0);
        *n += 1;
        e.rank = *n;
    }
    entries
}

/// Capacity left per person, with each group (a segment, or all supervisors) ordered by
/// capacity left (most first, ties by id), so the best person of a group is found
/// without scanning everyone: thousands of collectors at a million customers.
struct Capacity<'a> {
    left: BTreeMap<&'a str, u32>,
    groups: BTreeMap<&'a str, BTreeSet<(Reverse<u32>, &'a str)>>,
    groups_of: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> Capacity<'a> {
    /// The people of `role`, grouped by segment (or all in group `*` with `by_segment`
    /// false).
    fn new(collectors: &'a [Collector], role: &str, by_segment: bool) -> Capacity<'a> {
        let mut pool = Capacity {
            left: BTreeMap::new(),
            groups: BTreeMap::new(),
            groups_of: BTreeMap::new(),
        };
        for c in collectors.iter().filter(|c| c.role == role) {
            let id = c.collector_id.as_str();
            pool.left.insert(id, c.daily_capacity);
            let groups: Vec<&str> = if by_segment {
                c.segments.iter().map(String::as_str).collect()
            } else {
                vec!["*"]
            };
            for g in &groups {
                pool.groups
                    .entry(g)
                    .or_default()
                    .insert((Reverse(c.daily_capacity), id));
            }
            pool.groups_of.entry(id).or_default().extend(groups);
        }
        pool
    }

    fn knows(&self, id: &str) -> bool {
        self.left.contains_key(id)
    }

    fn has_group(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// Takes one call from `id`; false when it has no capacity left.
    fn take(&mut self, id: &str) -> bool {
        let Some((&key, &n)) = self.left.get_key_value(id) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        self.left.insert(key, n - 1);
        for g in self.groups_of.get(key).into_iter().flatten() {
            if let Some(set) = self.groups.get_mut(g) {
                set.remove(&(Reverse(n), key));
                set.insert((Reverse(n - 1), key));
            }
        }
        true
    }

    /// Takes one call from the person of `group` with the most capacity left.
    fn take_best(&mut self, group: &str) -> Option<&'a str> {
        let &(Reverse(n), id) = self.groups.get(group)?.first()?;
        (n > 0 && self.take(id)).then_some(id)
    }

    fn total(&self) -> u32 {
        self.left.values().sum()
    }
}

/// The kinds of supervisor case in the order they claim supervisors' capacity.
const SUPERVISOR_KINDS: [&str; 3] = ["fraud_suspected", "high_profile", "high_risk"];

/// Hands the supervisor cases of `entries` (in priority order) to supervisors by
/// capacity: fraud first, then high-profile, then high risk; the rest become
/// `supervisor:carry_over`.
fn assign_supervisors(entries: &mut [QueueEntry], collectors: &[Collector]) {
    let mut capacity = Capacity::new(collectors, "supervisor", false);
    let total = capacity.total();
    for kind in SUPERVISOR_KINDS {
        for e in entries.iter_mut() {
            if e.placement != Placement::Supervisor(kind) {
                continue;
            }
            match capacity.take_best("*") {
                Some(id) => e.assigned_to = Some(id.to_string()),
                None => {
                    e.placement = Placement::Supervisor("carry_over");
                    e.reason = if total == 0 {
                        format!("{}; no supervisor in the collectors table", e.reason)
                    } else {
                        format!(
                            "{}; supervisors' capacity ({total} cases today) is taken by higher priorities",
                            e.reason
                        )
                    };
                }
            }
        }
    }
}

/// The columns of a call list.
pub fn queue_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("queue", DataType::Utf8, false),
        Field::new("rank", DataType::UInt32, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("assigned_to", DataType::Utf8, true),
        Field::new("overdue", MONEY, false),
        Field::new("max_dpd", DataType::Int32, false),
        Field::new("pd", DataType::Float64, false),
        Field::new("score", DataType::Int32, false),
        Field::new("expected_loss", MONEY, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("why_here", DataType::Utf8, false),
        Field::new("risk_reasons", DataType::Utf8, false),
        Field::new("promise_date", DataType::Date32, true),
        Field::new("promise_amount", MONEY, true),
    ]))
}

/// The work queues of the scored snapshot: every eligible customer once, ordered by
/// queue and rank, with PDs, scores and reasons from `scores`.
pub async fn queue_snapshot(
    session: &dyn Session,
    scores: &Scores,
    policy: &QueuePolicy,
) -> Result<RecordBatch> {
    let customers = queue_customers(session, scores).await?;
    if customers.is_empty() {
        return Ok(RecordBatch::new_empty(queue_schema()));
    }
    let collectors = load_collectors(session).await?;
    let mut entries = build_queues(&customers, &collectors, policy, scores.day);
    entries.sort_by(|a, b| a.placement.cmp(&b.placement).then(a.rank.cmp(&b.rank)));
    queue_batch(&entries, &customers, scores)
}

/// The rows of the queues in `entries`' order; `customers` and `scores` are by customer.
fn queue_batch(
    entries: &[QueueEntry],
    customers: &[QueueCustomer],
    scores: &Scores,
) -> Result<RecordBatch> {
    let row_of: BTreeMap<&str, usize> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.customer_id.as_str(), i))
        .collect();
    let rows: Vec<usize> = entries
        .iter()
        .map(|e| row_of[e.customer_id.as_str()])
        .collect();
    // Money of each row (cents), named by customer when it does not fit Decimal(18, 2).
    let cents = |amount: Option<Decimal>, what: &str, id: &str| -> Result<Option<i128>> {
        amount
            .map(|a| money::to_cents(a, || format!("{what} of customer {id}")))
            .transpose()
    };
    let money_column = |amounts: Vec<Option<i128>>| -> ArrayRef {
        Arc::new(Decimal128Array::from(amounts).with_data_type(MONEY))
    };
    let (mut overdue, mut loss, mut promised) = (Vec::new(), Vec::new(), Vec::new());
    for (e, &r) in entries.iter().zip(&rows) {
        let c = &customers[r];
        overdue.push(cents(Some(c.overdue), "overdue", &c.customer_id)?);
        loss.push(cents(
            Some(e.expected_loss),
            "expected loss",
            &c.customer_id,
        )?);
        promised.push(cents(
            c.promise.map(|p| p.1),
            "promise amount",
            &c.customer_id,
        )?);
    }
    let texts = |f: &dyn Fn(&QueueEntry) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(entries.iter().map(f).collect::<Vec<_>>()))
    };
    let per_row = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from(
            rows.iter().map(|&r| f(r)).collect::<Vec<_>>(),
        ))
    };
    let ints = |f: &dyn Fn(usize) -> i32| -> ArrayRef {
        Arc::new(Int32Array::from(
            rows.iter().map(|&r| f(r)).collect::<Vec<_>>(),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        texts(&|e| Some(e.placement.queue())),
        Arc::new(UInt32Array::from(
            entries.iter().map(|e| e.rank).collect::<Vec<_>>(),
        )),
        texts(&|e| Some(e.customer_id.clone())),
        per_row(&|r| customers[r].currency.clone()),
        texts(&|e| e.assigned_to.clone()),
        money_column(overdue),
        ints(&|r| scores.max_dpd.value(r)),
        Arc::new(Float64Array::from(
            rows.iter().map(|&r| scores.pd.value(r)).collect::<Vec<_>>(),
        )),
        ints(&|r| scores.score.value(r)),
        money_column(loss),
        texts(&|e| Some(e.action.to_string())),
        texts(&|e| Some(e.reason.clone())),
        per_row(&|r| scores.reason_text(r)),
        Arc::new(Date32Array::from(
            rows.iter()
                .map(|&r| customers[r].promise.map(|p| p.0))
                .collect::<Vec<_>>(),
        )),
        money_column(promised),
    ];
    Ok(RecordBatch::try_new(queue_schema(), columns)?)
}

/// What the queues need of every customer of the scored snapshot, by customer id, with
/// PD and max DPD from `scores`. The inputs are read by position from
/// [`QUEUE_INPUTS_SQL`], whose columns are listed in the comment of each read.
pub async fn queue_customers(session: &dyn Session, scores: &Scores) -> Result<Vec<QueueCustomer>> {
    let sql = QUEUE_INPUTS_SQL.replace("{day}", &scores.day.to_string());
    let batches = collect_sql(session, &sql).await?;
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let inputs = concat_batches(&first.schema(), &batches)?;
    // customer_id, segment, collector_id, high_profile, fraud_suspected, overdue,
    // overdue_disputed, exposure, promise_day, promise_amount, currency
    let ids = cast(inputs.column(0), &DataType::Utf8)?;
    if ids.as_ref() != &scores.customer_id as &dyn Array {
        return Err(ModelError::Data(
            "scores and queue inputs are not in the same customer order".into(),
        ));
    }
    let text = |i: usize| -> Result<ArrayRef> { Ok(cast(inputs.column(i), &DataType::Utf8)?) };
    let money = |i: usize| -> Result<ArrayRef> { Ok(cast(inputs.column(i), &money::MONEY_SUM)?) };
    let (segment, collector, currency) = (text(1)?, text(2)?, text(10)?);
    let currency = currency.as_string::<i32>();
    let (segment, collector) = (segment.as_string::<i32>(), collector.as_string::<i32>());
    let (high_profile, fraud) = (inputs.column(3).as_boolean(), inputs.column(4).as_boolean());
    let (overdue, disputed, exposure) = (money(5)?, money(6)?, money(7)?);
    let (overdue, disputed, exposure) = (
        overdue.as_primitive::<Decimal128Type>(),
        disputed.as_primitive::<Decimal128Type>(),
        exposure.as_primitive::<Decimal128Type>(),
    );
    let promise_day = cast(inputs.column(8), &DataType::Int32)?;
    let promise_day = promise_day.as_primitive::<Int32Type>();
    let promise_amount = money(9)?;
    let promise_amount = promise_amount.as_primitive::<Decimal128Type>();
    let d = money::from_cents;
    let customers = (0..inputs.num_rows())
        .map(|r| QueueCustomer {
            customer_id: scores.customer_id.value(r).to_string(),
            segment: segment.value(r).to_string(),
            currency: currency.value(r).to_string(),
            collector_id: collector
                .is_valid(r)
                .then(|| collector.value(r).to_string()),
            high_profile: high_profile.value(r),
            fraud_suspected: fraud.value(r),
            overdue: d(overdue.value(r)),
            overdue_disputed: d(disputed.value(r)),
            exposure: d(exposure.value(r)),
            max_dpd: scores.max_dpd.value(r),
            pd: scores.pd.value(r),
            promise: promise_day.is_valid(r).then(|| {
                (
                    promise_day.value(r),
                    d(if promise_amount.is_valid(r) {
                        promise_amount.value(r)
                    } else {
                        0
                    }),
                )
            }),
        })
        .collect();
    Ok(customers)
}

/// The `collectors` table.
async fn load_collectors(session: &dyn Session) -> Result<Vec<Collector>> {
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

fn place(
    c: &QueueCustomer,
    capacity: &mut Capacity,
    policy: &QueuePolicy,
    as_of: i32,
) -> (Placement, String) {
    if c.fraud_suspected {
        return (
            Placement::Supervisor("fraud_suspected"),
            "fraud suspected".into(),
        );
    }
    if c.high_profile {
        return (
            Placement::Supervisor("high_profile"),
            "high-profile customer".into(),
        );
    }
    if let Some((date, amount)) = c.promise
        && date + policy.promise_grace_days >= as_of
    {
        return (
            Placement::Held,
            format!(
                "promise to pay {amount} by {} (+{} days grace) still open",
                dates::text(date),
                policy.promise_grace_days
            ),
        );
    }
    if c.overdue_disputed >= c.overdue {
        return (
            Placement::Dispute,
            "the whole overdue balance is in dispute".into(),
        );
    }
    if c.pd >= policy.high_risk_pd || c.overdue >= policy.high_risk_overdue {
        return (
            Placement::Supervisor("high_risk"),
            format!(
                "high risk: PD {:.1} % (threshold {:.1} %) or overdue {} (threshold {})",
                c.pd * 100.0,
                policy.high_risk_pd * 100.0,
                c.overdue,
                policy.high_risk_overdue
            ),
        );
    }
    if let Some(own) = c.collector_id.as_deref().filter(|id| capacity.knows(id)) {
        if capacity.take(own) {
            return (
                Placement::Collector(own.to_string()),
                "own collector".into(),
            );
        }
        return (
            Placement::CarryOver,
            format!("own collector {own} has no capacity left today"),
        );
    }
    if !capacity.has_group(&c.segment) {
        return (
            Placement::CarryOver,
            format!("no collector covers segment {}", c.segment),
        );
    }
    match capacity.take_best(&c.segment) {
        Some(id) => (
            Placement::Collector(id.to_string()),
            format!("assigned by capacity in segment {}", c.segment),
        ),
        None => (
            Placement::CarryOver,
            format!("every collector of segment {} is at capacity", c.segment),
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn d(v: i64) -> Decimal {
        Decimal::from(v)
    }

    /// A retail customer without collector, flags, dispute or promise, whose exposure
    /// is its overdue balance.
    pub(crate) fn customer(id: &str, overdue: i64, pd: f64, max_dpd: i32) -> QueueCustomer {
        QueueCustomer {
            customer_id: id.into(),
            currency: "USD".into(),
            segment: "retail".into(),
            collector_id: None,
            high_profile: false,
            fraud_suspected: false,
            overdue: d(overdue),
            overdue_disputed: Decimal::ZERO,
            exposure: d(overdue),
            max_dpd,
            pd,
            promise: None,
        }
    }

    fn collector(id: &str, capacity: u32, segments: &[&str]) -> Collector {
        Collector {
            collector_id: id.into(),
            role: "collector".into(),
            daily_capacity: capacity,
            segments: segments.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn every_eligible_customer_once_capacity_never_exceeded() {
        let customers: Vec<QueueCustomer> = (0..50)
            .map(|i| {
                customer(
                    &format!("C{i:02}"),
                    100 + i,
                    0.01 * (i % 7) as f64,
                    i as i32,
                )
            })
            .chain([customer("PAID", 0, 0.9, 0)])
            .collect();
        let collectors = [
            collector("K1", 10, &["retail"]),
            collector("K2", 15, &["retail", "smb"]),
        ];
        let entries = build_queues(&customers, &collectors, &QueuePolicy::default(), 100);
        assert_eq!(
            entries.len(),
            50,
            "the customer without overdue is not eligible"
        );
        let mut seen = std::collections::BTreeSet::new();
        for e in &entries {
            assert!(seen.insert(e.customer_id.clone()));
        }
        let count = |q: &str| entries.iter().filter(|e| e.placement.queue() == q).count();
        assert_eq!(count("K1"), 10);
        assert_eq!(count("K2"), 15);
        assert_eq!(count("carry_over"), 25);
        // Carried over are the lowest priorities.
        let lowest_called = entries
            .iter()
            .filter(|e| matches!(e.placement, Placement::Collector(_)))
            .map(|e| e.expected_loss)
            .min()
            .unwrap();
        assert!(
            entries
                .iter()
                .filter(|e| e.placement == Placement::CarryOver)
                .all(|e| e.expected_loss <= lowest_called)
        );
        // Ranks are 1..n within each queue, in priority order.
        let k1: Vec<_> = entries
            .iter()
            .filter(|e| e.placement.queue() == "K1")
            .collect();
        assert_eq!(
            k1.iter().map(|e| e.rank).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        assert!(
            k1.windows(2)
                .all(|w| w[0].expected_loss >= w[1].expected_loss)
        );
        // Same input, same output.
        assert_eq!(
            entries,
            build_queues(&customers, &collectors, &QueuePolicy::default(), 100)
        );
    }

    #[test]
    fn special_cases_go_where_the_rules_say() {
        let mut held = customer("HELD", 500, 0.3, 40);
        held.promise = Some((98, d(500)));
        let mut held_expired = customer("LAPSED", 500, 0.3, 40);
        held_expired.promise = Some((96, d(500)));
        let mut disputed = customer("DISP", 500, 0.3, 40);
        disputed.overdue_disputed = d(500);
        let mut partly_disputed = customer("PART", 500, 0.3, 40);
        partly_disputed.overdue_disputed = d(200);
        let mut vip = customer("VIP", 500, 0.3, 40);
        vip.high_profile = true;
        vip.promise = Some((99, d(500)));
        let mut fraud = customer("FRAUD", 500, 0.3, 40);
        fraud.fraud_suspected = true;
        fraud.high_profile = true;
        let risky = customer("RISKY", 500, 0.7, 40);
        let big = customer("BIG", 300_000, 0.01, 10);
        let mut own = customer("OWN", 500, 0.01, 10);
        own.collector_id = Some("K9".into());
        let mut other_segment = customer("SMB", 500, 0.01, 10);
        other_segment.segment = "enterprise".into();
        let customers = [
            held,
            held_expired,
            disputed,
            partly_disputed,
            vip,
            fraud,
            risky,
            big,
            own,
            other_segment,
        ];
        let collectors = [
            collector("K1", 10, &["retail"]),
            collector("K9", 1, &["smb"]),
            supervisor("S1", 10),
        ];
        let entries = build_queues(&customers, &collectors, &QueuePolicy::default(), 100);
        let queue_of = |id: &str| {
            entries
                .iter()
                .find(|e| e.customer_id == id)
                .map(|e| e.placement.queue())
                .unwrap()
        };
        assert_eq!(queue_of("HELD"), "held"); // 98 + 3 >= 100
        assert_eq!(queue_of("LAPSED"), "K1"); // 96 + 3 < 100
        assert_eq!(queue_of("DISP"), "dispute");
        assert_eq!(queue_of("PART"), "K1");
        assert_eq!(queue_of("VIP"), "supervisor:high_profile");
        assert_eq!(queue_of("FRAUD"), "supervisor:fraud_suspected");
        assert_eq!(queue_of("RISKY"), "supervisor:high_risk");
        assert_eq!(queue_of("BIG"), "supervisor:high_risk");
        assert_eq!(queue_of("OWN"), "K9");
        assert_eq!(queue_of("SMB"), "carry_over");
        let smb = entries.iter().find(|e| e.customer_id == "SMB").unwrap();
        assert!(
            smb.reason
                .contains("no collector covers segment enterprise")
        );
    }

    fn supervisor(id: &str, capacity: u32) -> Collector {
        Collector {
            role: "supervisor".into(),
            ..collector(id, capacity, &["retail"])
        }
    }

    #[test]
    fn supervisors_take_fraud_first_and_never_exceed_capacity() {
        let mut customers = Vec::new();
        for i in 0..6 {
            // High risk with the largest expected losses.
            customers.push(customer(&format!("R{i}"), 10_000, 0.9, 80));
        }
        for i in 0..3 {
            let mut c = customer(&format!("F{i}"), 100, 0.01, 5);
            c.fraud_suspected = true;
            customers.push(c);
            let mut v = customer(&format!("V{i}"), 200, 0.01, 5);
            v.high_profile = true;
            customers.push(v);
        }
        let collectors = [
            collector("K1", 50, &["retail"]),
            supervisor("S1", 4),
            supervisor("S2", 3),
        ];
        let entries = build_queues(&customers, &collectors, &QueuePolicy::default(), 100);
        assert_eq!(entries.len(), 12);
        let assigned = |who: &str| {
            entries
                .iter()
                .filter(|e| e.assigned_to.as_deref() == Some(who))
                .count()
        };
        assert_eq!((assigned("S1"), assigned("S2")), (4, 3));
        // Fraud (3) and high-profile (3) claim capacity before the larger high-risk
        // losses; one high-risk case fits, five wait.
        let in_queue = |q: &str| {
            entries
                .iter()
                .filter(|e| e.placement.queue() == q)
                .map(|e| e.customer_id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(in_queue("supervisor:fraud_suspected").len(), 3);
        assert_eq!(in_queue("supervisor:high_profile").len(), 3);
        assert_eq!(in_queue("supervisor:high_risk"), ["R0"]);
        assert_eq!(
            in_queue("supervisor:carry_over"),
            ["R1", "R2", "R3", "R4", "R5"]
        );
        for e in &entries {
            if e.placement.queue() == "supervisor:carry_over" {
                assert!(e.assigned_to.is_none());
                assert!(e.reason.contains("supervisors' capacity (7 cases today)"));
            }
            // Nobody supervised went to a collector.
            assert_ne!(e.assigned_to.as_deref(), Some("K1"));
        }
        // Without supervisors, every such case is carried over with the reason.
        let entries = build_queues(&customers, &collectors[..1], &QueuePolicy::default(), 100);
        assert!(entries.iter().all(|e| {
            e.placement == Placement::Supervisor("carry_over")
                && e.reason.contains("no supervisor in the collectors table")
        }));
    }

    #[test]
    fn ties_break_by_dpd_then_exposure_then_id() {
        // Same expected loss (PD 0.1 × 1,000 = 100): higher DPD first, then larger
        // overdue, then the id.
        let customers = [
            customer("B", 1000, 0.1, 40),
            customer("A", 1000, 0.1, 40),
            customer("C", 1000, 0.1, 50),
        ];
        let entries = build_queues(
            &customers,
            &[collector("K", 9, &["retail"])],
            &QueuePolicy::default(),
            0,
        );
        let order: Vec<&str> = entries.iter().map(|e| e.customer_id.as_str()).collect();
        assert_eq!(order, ["C", "A", "B"]);
        assert_eq!(expected_loss(0.1, d(1000), Decimal::ONE), d(100));
    }

    #[test]
    fn actions_follow_days_past_due_and_risk() {
        let p = QueuePolicy::default();
        assert_eq!(suggested_action(95, 0.01, &p), "escalate");
        assert_eq!(suggested_action(10, 0.2, &p), "call");
        assert_eq!(suggested_action(70, 0.01, &p), "letter");
        assert_eq!(suggested_action(40, 0.01, &p), "call");
        assert_eq!(suggested_action(5, 0.01, &p), "email");
    }
}
