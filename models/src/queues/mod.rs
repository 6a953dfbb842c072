//! Work queues (DOMAIN.md §5): who is called today, by whom, in which order, what to do
//! and why now, and why the others are not called.
//!
//! Every eligible customer (overdue amount > 0) ends in exactly one queue, checked in
//! this order:
//! - `supervisor:fraud_suspected`, `supervisor:high_profile`: such customers are only ever
//!   handled by supervisors, promise or dispute notwithstanding;
//! - `held`: an open promise to pay (its date plus grace has not passed) that covers at
//!   least the policy's share of the overdue (a larger share after a recently broken
//!   promise), on an account not yet at the policy's hold limit in days past due. A
//!   smaller promise holds nothing: the account stays workable, prioritized on the part
//!   the promise does not cover;
//! - `dispute`: the whole overdue balance is in dispute; assigned to a resolver (role
//!   `resolver`) by capacity, else to the customer's collector (or the segment's with
//!   capacity left), with the dispute's age. Disputes claim capacity before any call: an
//!   open dispute blocks payment of the whole overdue;
//! - `escalation`: late-stage accounts, listed for the manager with one step of the
//!   escalation track (final demand, agency, legal, write-off review) decided by days
//!   past due, balance and broken promises; they are no longer calls;
//! - `supervisor:high_risk`: PD or overdue at or above the policy's thresholds;
//! - a collector's call list: the customer's own collector, else the collector covering the
//!   customer's segment with the most capacity left (ties by collector id), never above
//!   `daily_capacity`.
//!
//! Supervisors have a `daily_capacity` too. Their cases are handed out fraud first, then
//! high-profile, then high risk, each in priority order, to the supervisor with the most
//! capacity left (ties by id). What nobody could take then **overflows**, in priority
//! order, to collectors of the customer's segment with capacity left (marked `overflow`):
//! high-risk cases the supervisors could not take, and calls whose own collector was full.
//! What still does not fit is carried over (`supervisor:carry_over` or `carry_over`) with
//! the reason; a fraud or high-profile case never moves to a collector.
//!
//! Priority = expected loss = PD × workable overdue × LGD (the workable overdue is the
//! overdue less what an open promise covers); ties by max DPD, then overdue exposure (both
//! descending), then customer id: the same inputs always give the same ranks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arq_udfs::dates;
use rust_decimal::Decimal;

use crate::money::{self};
pub use crate::policy::{EscalationPolicy, QueuePolicy};

mod rules;
mod table;

use rules::{Hold, dispute_age, hold};
pub use rules::{escalation_step, suggested_action};
pub use table::{
    ITEMS_ORDER, OVERDUE_ITEMS_SQL, PROMISES_SQL, QUEUE_INPUTS_SQL, forget_promise_summaries,
    items_order, load_collectors, overdue_items, queue_customers, queue_schema, queue_snapshot,
    share_promise_summaries, with_promises,
};

/// The role of the people who work disputes (optional in the collectors table).
pub const RESOLVER_ROLE: &str = "resolver";

/// A collector, supervisor or dispute resolver.
#[derive(Debug, Clone, PartialEq)]
pub struct Collector {
    pub collector_id: String,
    pub role: String,
    pub daily_capacity: u32,
    pub segments: Vec<String>,
}

/// What the queues need of a customer at the as-of date.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueCustomer {
    pub customer_id: String,
    /// The customer's currency: every amount of the customer is in it. (This and the
    /// segment and collector are shared by the customers that have the same.)
    pub currency: Arc<str>,
    pub segment: Arc<str>,
    pub collector_id: Option<Arc<str>>,
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
    /// Promises broken in the last 12 months.
    pub broken_promises_12m: u32,
    /// The last broken promise: (promise date, amount).
    pub last_broken: Option<(i32, Decimal)>,
    /// When the oldest open dispute was raised.
    pub dispute_since: Option<i32>,
}

/// Where a customer goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placement {
    Collector(String),
    Supervisor(&'static str),
    Dispute,
    Escalation,
    Held,
    CarryOver,
}

/// Every queue name that is not a person's id, for messages.
pub const SPECIAL_QUEUES: [&str; 8] = [
    "supervisor:fraud_suspected",
    "supervisor:high_profile",
    "supervisor:high_risk",
    "supervisor:carry_over",
    "dispute",
    "escalation",
    "held",
    "carry_over",
];

impl Placement {
    /// The queue's name in outputs.
    pub fn queue(&self) -> String {
        match self {
            Placement::Collector(id) => id.clone(),
            Placement::Supervisor(kind) => format!("supervisor:{kind}"),
            Placement::Dispute => "dispute".into(),
            Placement::Escalation => "escalation".into(),
            Placement::Held => "held".into(),
            Placement::CarryOver => "carry_over".into(),
        }
    }
}

/// One customer's place, rank (1 = first, within its queue), what to do and why.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub customer_id: String,
    pub placement: Placement,
    /// The person who works the case today (none when held, escalated to the manager or
    /// carried over).
    pub assigned_to: Option<String>,
    /// Taken by a collector with capacity left because its own queue was full.
    pub overflow: bool,
    pub rank: u32,
    /// The overdue less what an open promise covers.
    pub workable: Decimal,
    pub expected_loss: Decimal,
    pub action: &'static str,
    /// What makes the action due today.
    pub why_now: String,
    /// Why the case is in this queue.
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

/// Places every eligible customer (overdue > 0) of `customers` at `as_of` (days since
/// 1970). Customers without overdue balance are not in the result.
pub fn build_queues(
    customers: &[QueueCustomer],
    collectors: &[Collector],
    policy: &QueuePolicy,
    as_of: i32,
) -> Vec<QueueEntry> {
    let eligible: Vec<(&QueueCustomer, Decimal, Hold)> = customers
        .iter()
        .filter(|c| c.overdue > Decimal::ZERO)
        .map(|c| {
            let h = hold(c, policy, as_of);
            let workable = match &h {
                Hold::Partial { covered, .. } => c.overdue - covered,
                _ => c.overdue,
            };
            (c, workable, h)
        })
        .collect();
    // Highest priority first, so that it fills capacity first. Each case's expected loss
    // is computed once, not in every comparison (half a million cases at a million
    // customers: 20 M conversions of a PD to a decimal, seconds, in the comparisons).
    let mut keyed: Vec<(Decimal, (&QueueCustomer, Decimal, Hold))> = eligible
        .into_iter()
        .map(|e| (expected_loss(e.0.pd, e.1, policy.lgd), e))
        .collect();
    keyed.sort_by(|(la, (a, _, _)), (lb, (b, _, _))| priority(a, *la, b, *lb));
    let eligible: Vec<(&QueueCustomer, Decimal, Hold)> =
        keyed.into_iter().map(|(_, e)| e).collect();
    let mut pools = Pools {
        collectors: Capacity::new(collectors, "collector", true),
        resolvers: Capacity::new(collectors, RESOLVER_ROLE, false),
    };
    let mut entries = place_all(&eligible, &mut pools, policy, as_of);
    assign_supervisors(&mut entries, collectors);
    // Looked up by customer (half a million at a million customers): hashed, not ordered.
    let segment_of: HashMap<&str, &str> = eligible
        .iter()
        .map(|(c, _, _)| (c.customer_id.as_str(), &*c.segment))
        .collect();
    overflow(&mut entries, &mut pools.collectors, &segment_of);
    // Ranks within each queue follow the priority order of `entries`.
    let mut next: HashMap<Placement, u32> = HashMap::new();
    for e in &mut entries {
        let n = next.entry(e.placement.clone()).or_insert(0);
        *n += 1;
        e.rank = *n;
    }
    mark_highest_pd(
        &mut entries,
        &eligible
            .iter()
            .map(|(c, _, _)| (c.customer_id.as_str(), c.pd))
            .collect(),
    );
    entries
}

/// Places every case of `eligible` (in priority order, with its workable overdue and
/// hold) and says what to do; the entries keep the priority order.
fn place_all(
    eligible: &[(&QueueCustomer, Decimal, Hold)],
    pools: &mut Pools,
    policy: &QueuePolicy,
    as_of: i32,
) -> Vec<QueueEntry> {
    let loss = |c: &QueueCustomer, workable: Decimal| expected_loss(c.pd, workable, policy.lgd);
    // Disputes claim capacity first: an open dispute blocks payment of the whole overdue,
    // so resolving it comes before calling anyone else. Then everything else, by priority.
    let is_dispute = |c: &QueueCustomer, h: &Hold| {
        !c.fraud_suspected
            && !c.high_profile
            && !matches!(h, Hold::Whole(_))
            && c.overdue_disputed >= c.overdue
    };
    let mut placed: Vec<Option<QueueEntry>> = vec![None; eligible.len()];
    for disputes_first in [true, false] {
        for (i, (c, workable, h)) in eligible.iter().enumerate() {
            if is_dispute(c, h) != disputes_first {
                continue;
            }
            let (action, mut why_now) = suggested_action(c, policy, as_of);
            let (placement, assigned_to, reason) = place(c, h, pools, policy);
            if let Hold::Partial { note, .. } = h {
                why_now = format!("{why_now}; {note}");
            }
            let (action, why_now) = match placement {
                Placement::Held => (
                    "wait",
                    format!(
                        "promise date {} not passed",
                        dates::text(c.promise.map_or(as_of, |p| p.0))
                    ),
                ),
                Placement::Dispute => ("resolve_dispute", dispute_age(c, as_of)),
                _ => (action, why_now),
            };
            placed[i] = Some(QueueEntry {
                customer_id: c.customer_id.clone(),
                assigned_to,
                placement,
                overflow: false,
                rank: 0,
                workable: *workable,
                expected_loss: loss(c, *workable),
                action,
                why_now,
                reason,
            });
        }
    }
    placed.into_iter().flatten().collect()
}

/// Among the cases each person calls because of their PD, the highest is said to be so.
fn mark_highest_pd(entries: &mut [QueueEntry], pd_of: &HashMap<&str, f64>) {
    let mut top: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let (Some(who), true) = (&e.assigned_to, e.why_now.starts_with("PD ")) else {
            continue;
        };
        let pd = pd_of.get(e.customer_id.as_str()).copied().unwrap_or(0.0);
        // Entries are in priority order: the first of equal PDs stays.
        if top.get(who).is_none_or(|&(best, _)| pd > best) {
            top.insert(who.clone(), (pd, i));
        }
    }
    for (_, i) in top.into_values() {
        let e = &mut entries[i];
        e.why_now = match e.why_now.split_once(';') {
            Some((trigger, rest)) => format!("{trigger}, highest in your list;{rest}"),
            None => format!("{}, highest in your list", e.why_now),
        };
    }
}

/// The people whose capacity the placement takes.
struct Pools<'a> {
    collectors: Capacity<'a>,
    resolvers: Capacity<'a>,
}

/// Cases nobody could take (supervisors' high-risk carry-over, and calls whose own
/// collector was full) go, in priority order, to the collector of their segment with
/// the most capacity left, marked as overflow.
fn overflow(entries: &mut [QueueEntry], capacity: &mut Capacity, segment_of: &HashMap<&str, &str>) {
    for e in entries.iter_mut() {
        let waiting = match e.placement {
            Placement::CarryOver => true,
            Placement::Supervisor("carry_over") => e.reason.starts_with("high risk"),
            _ => false,
        };
        if !waiting {
            continue;
        }
        let segment = segment_of
            .get(e.customer_id.as_str())
            .copied()
            .unwrap_or_default();
        if let Some(id) = capacity.take_best(segment) {
            e.reason = format!(
                "overflow: {}; taken by {id}, who has capacity left in segment {segment}",
                e.reason
            );
            e.placement = Placement::Collector(id.to_string());
            e.assigned_to = Some(id.to_string());
            e.overflow = true;
        }
    }
}

/// Capacity left per person, with each group (a segment, or all supervisors) ordered by
/// capacity left (most first, ties by id), so the best person of a group is found
/// without scanning everyone: thousands of collectors at a million customers.
struct Capacity<'a> {
    left: HashMap<&'a str, u32>,
    groups: HashMap<&'a str, BTreeSet<(Reverse<u32>, &'a str)>>,
    groups_of: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Capacity<'a> {
    /// The people of `role`, grouped by segment (or all in group `*` with `by_segment`
    /// false).
    fn new(collectors: &'a [Collector], role: &str, by_segment: bool) -> Capacity<'a> {
        let mut pool = Capacity {
            left: HashMap::new(),
            groups: HashMap::new(),
            groups_of: HashMap::new(),
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

    fn is_empty(&self) -> bool {
        self.left.is_empty()
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

/// Where a case goes, who takes it and why (supervisors are assigned afterwards).
fn place(
    c: &QueueCustomer,
    hold: &Hold,
    pools: &mut Pools,
    policy: &QueuePolicy,
) -> (Placement, Option<String>, String) {
    if c.fraud_suspected {
        return (
            Placement::Supervisor("fraud_suspected"),
            None,
            "fraud suspected".into(),
        );
    }
    if c.high_profile {
        return (
            Placement::Supervisor("high_profile"),
            None,
            "high-profile customer".into(),
        );
    }
    if let Hold::Whole(reason) = hold {
        return (Placement::Held, None, reason.clone());
    }
    if c.overdue_disputed >= c.overdue {
        let (who, reason) = resolver(c, pools);
        return (Placement::Dispute, who, reason);
    }
    if let Some((step, _)) = escalation_step(c, &policy.escalation) {
        return (
            Placement::Escalation,
            None,
            format!("late stage: the manager decides the escalation step ({step})"),
        );
    }
    if c.pd >= policy.high_risk_pd || c.overdue >= policy.high_risk_overdue {
        return (
            Placement::Supervisor("high_risk"),
            None,
            format!(
                "high risk: PD {:.1} % (threshold {:.1} %) or overdue {} (threshold {})",
                c.pd * 100.0,
                policy.high_risk_pd * 100.0,
                c.overdue,
                policy.high_risk_overdue
            ),
        );
    }
    let capacity = &mut pools.collectors;
    if let Some(own) = c.collector_id.as_deref().filter(|id| capacity.knows(id)) {
        if capacity.take(own) {
            return (
                Placement::Collector(own.to_string()),
                Some(own.to_string()),
                "own collector".into(),
            );
        }
        return (
            Placement::CarryOver,
            None,
            format!("own collector {own} has no capacity left today"),
        );
    }
    if !capacity.has_group(&c.segment) {
        return (
            Placement::CarryOver,
            None,
            format!("no collector covers segment {}", c.segment),
        );
    }
    match capacity.take_best(&c.segment) {
        Some(id) => (
            Placement::Collector(id.to_string()),
            Some(id.to_string()),
            format!("assigned by capacity in segment {}", c.segment),
        ),
        None => (
            Placement::CarryOver,
            None,
            format!("every collector of segment {} is at capacity", c.segment),
        ),
    }
}

/// Who resolves a dispute: a resolver by capacity when the team has resolvers, else the
/// customer's own collector, else the collector of the segment with capacity left.
fn resolver(c: &QueueCustomer, pools: &mut Pools) -> (Option<String>, String) {
    if !pools.resolvers.is_empty() {
        return match pools.resolvers.take_best("*") {
            Some(id) => (
                Some(id.to_string()),
                format!("the whole overdue balance is in dispute; resolver {id}"),
            ),
            None => (
                None,
                "the whole overdue balance is in dispute; every resolver is at capacity today"
                    .into(),
            ),
        };
    }
    let capacity = &mut pools.collectors;
    if let Some(own) = c.collector_id.as_deref().filter(|id| capacity.knows(id))
        && capacity.take(own)
    {
        return (Some(own.to_string()), "the whole overdue balance is in dispute; the own collector resolves it (no resolvers in the team)".into());
    }
    match capacity.take_best(&c.segment) {
        Some(id) => (
            Some(id.to_string()),
            format!(
                "the whole overdue balance is in dispute; resolved by capacity in segment {} (no resolvers in the team)",
                c.segment
            ),
        ),
        None => (
            None,
            "the whole overdue balance is in dispute; nobody has capacity left to resolve it today"
                .into(),
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
            overdue: d(overdue),
            exposure: d(overdue),
            max_dpd,
            pd,
            ..QueueCustomer::default()
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
        // The five high-risk cases the supervisors cannot take overflow to the
        // collector of their segment, who has capacity left, in priority order.
        assert_eq!(in_queue("K1"), ["R1", "R2", "R3", "R4", "R5"]);
        for e in &entries {
            if e.placement.queue() == "K1" {
                assert!(e.overflow);
                assert!(e.reason.starts_with("overflow: high risk"), "{}", e.reason);
                assert!(e.reason.contains("supervisors' capacity (7 cases today)"));
            } else {
                // Nobody supervised went to a collector.
                assert_ne!(e.assigned_to.as_deref(), Some("K1"));
                assert!(!e.overflow);
            }
        }
        // With a full collector, what the supervisors cannot take waits with the reason.
        let mut full = collectors.clone();
        full[0].daily_capacity = 2;
        let entries = build_queues(&customers, &full, &QueuePolicy::default(), 100);
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.placement == Placement::Supervisor("carry_over"))
                .count(),
            3
        );
        // Without supervisors, fraud and high-profile cases wait with the reason: they
        // never move to a collector.
        let entries = build_queues(&customers, &collectors[..1], &QueuePolicy::default(), 100);
        assert!(entries.iter().all(|e| {
            let special = e.customer_id.starts_with('F') || e.customer_id.starts_with('V');
            !special
                || (e.placement == Placement::Supervisor("carry_over")
                    && e.reason.contains("no supervisor in the collectors table"))
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
    fn actions_follow_days_past_due_risk_and_broken_promises() {
        let p = QueuePolicy::default();
        let action = |c: &QueueCustomer| suggested_action(c, &p, 100);
        assert_eq!(action(&customer("A", 100, 0.01, 95)).0, "final_demand");
        assert_eq!(
            action(&customer("A", 100, 0.2, 10)),
            ("call", "PD 20 % (call from 10 %)".into())
        );
        assert_eq!(
            action(&customer("A", 100, 0.01, 70)),
            (
                "letter",
                "70 DPD (61–89): second reminder letter due".into()
            )
        );
        let risky = action(&customer("A", 100, 0.3, 70));
        assert_eq!(risky.0, "letter");
        assert!(
            risky.1.ends_with("PD 30 %: follow up by phone"),
            "{risky:?}"
        );
        assert_eq!(
            action(&customer("A", 100, 0.01, 40)),
            ("call", "40 DPD (31–60): first call due".into())
        );
        assert_eq!(action(&customer("A", 100, 0.01, 5)).0, "email");
        let mut broke = customer("A", 100, 0.01, 5);
        broke.last_broken = Some((95, d(4000)));
        assert_eq!(
            action(&broke),
            ("call", "promise of 4000 broken on 1970-04-06".into())
        );
        // A promise broken long ago is history, not today's trigger.
        broke.last_broken = Some((5, d(4000)));
        assert_eq!(action(&broke).0, "email");
    }

    #[test]
    fn the_escalation_track_follows_days_balance_and_broken_promises() {
        let e = EscalationPolicy::default();
        let step = |overdue: i64, dpd: i32, broken: u32| {
            let mut c = customer("A", overdue, 1.0, dpd);
            c.broken_promises_12m = broken;
            escalation_step(&c, &e).map(|s| s.0)
        };
        assert_eq!(step(1000, 89, 0), None);
        assert_eq!(step(1000, 90, 0), Some("final_demand"));
        assert_eq!(step(1000, 40, 2), Some("final_demand"));
        assert_eq!(step(1000, 20, 5), None);
        assert_eq!(step(1000, 120, 0), Some("agency"));
        assert_eq!(step(1000, 160, 0), Some("agency"));
        assert_eq!(step(30_000, 160, 0), Some("legal"));
        assert_eq!(step(1000, 200, 0), Some("write_off_review"));
        assert_eq!(step(30_000, 200, 0), Some("legal"));
        // Late-stage accounts leave the call lists for the manager's list.
        let entries = build_queues(
            &[
                customer("LATE", 1000, 1.0, 130),
                customer("EARLY", 1000, 0.05, 40),
            ],
            &[collector("K", 9, &["retail"])],
            &p(),
            100,
        );
        assert_eq!(entries[0].placement, Placement::Escalation);
        assert_eq!(
            (entries[0].action, entries[0].assigned_to.as_deref()),
            ("agency", None)
        );
        assert_eq!(entries[1].placement.queue(), "K");
    }

    fn p() -> QueuePolicy {
        QueuePolicy::default()
    }

    #[test]
    fn a_promise_holds_only_what_it_covers() {
        let policy = p();
        let promised = |amount: i64, dpd: i32| {
            let mut c = customer("P", 1000, 0.3, dpd);
            c.promise = Some((101, d(amount)));
            c
        };
        let place = |c: QueueCustomer| {
            build_queues(&[c], &[collector("K", 9, &["retail"])], &policy, 100).remove(0)
        };
        // 95 % of the overdue promised: held.
        assert_eq!(place(promised(950, 40)).placement, Placement::Held);
        // 10 % promised: the rest stays workable, prioritized on what is not covered.
        let e = place(promised(100, 40));
        assert_eq!(e.placement.queue(), "K");
        assert_eq!(e.workable, d(900));
        assert_eq!(e.expected_loss, expected_loss(0.3, d(900), Decimal::ONE));
        assert!(
            e.why_now.contains("covers only 10 % of the overdue"),
            "{}",
            e.why_now
        );
        // Past the hold limit, even a full promise does not hold.
        let e = place(promised(1000, 95));
        assert_eq!(e.placement, Placement::Escalation);
        // After a recently broken promise the whole overdue must be covered.
        let mut broke = promised(950, 40);
        broke.last_broken = Some((80, d(500)));
        let e = place(broke.clone());
        assert_eq!(e.placement.queue(), "K");
        assert!(
            e.why_now.contains("after a recently broken promise"),
            "{}",
            e.why_now
        );
        broke.promise = Some((101, d(1000)));
        assert_eq!(place(broke).placement, Placement::Held);
    }

    #[test]
    fn disputes_go_to_resolvers_else_to_the_customers_collector() {
        let mut c = customer("D", 1000, 0.3, 40);
        c.overdue_disputed = d(1000);
        c.collector_id = Some("K2".into());
        c.dispute_since = Some(70);
        let team = [
            collector("K1", 9, &["retail"]),
            collector("K2", 9, &["retail"]),
        ];
        let e = build_queues(std::slice::from_ref(&c), &team, &p(), 100).remove(0);
        assert_eq!(
            (e.placement.queue(), e.assigned_to.as_deref()),
            ("dispute".into(), Some("K2"))
        );
        assert_eq!(e.why_now, "in dispute since 1970-03-12 (30 days)");
        let mut with_resolver = team.to_vec();
        with_resolver.push(Collector {
            role: RESOLVER_ROLE.into(),
            ..collector("R1", 5, &[])
        });
        let e = build_queues(&[c], &with_resolver, &p(), 100).remove(0);
        assert_eq!(e.assigned_to.as_deref(), Some("R1"));
    }

    #[test]
    fn own_collector_full_overflows_to_the_segment() {
        let mut customers = Vec::new();
        for i in 0..4 {
            let mut c = customer(&format!("C{i}"), 1000 - i, 0.05, 40);
            c.collector_id = Some("K1".into());
            customers.push(c);
        }
        let team = [
            collector("K1", 2, &["retail"]),
            collector("K2", 1, &["retail"]),
        ];
        let entries = build_queues(&customers, &team, &p(), 100);
        let queues: Vec<(String, bool)> = entries
            .iter()
            .map(|e| (e.placement.queue(), e.overflow))
            .collect();
        assert_eq!(
            queues,
            [
                ("K1".into(), false),
                ("K1".into(), false),
                ("K2".into(), true),
                ("carry_over".into(), false)
            ]
        );
    }
}
