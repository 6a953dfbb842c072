//! The rules of one case: whether a promise holds it, its step on the escalation track,
//! and the suggested action with its trigger.

use arq_udfs::dates;
use rust_decimal::Decimal;

use super::QueueCustomer;
use crate::money;
use crate::policy::{EscalationPolicy, QueuePolicy};

/// Whether the customer broke a promise within the policy's look-back.
pub(super) fn broke_recently(c: &QueueCustomer, policy: &QueuePolicy, as_of: i32) -> bool {
    c.last_broken
        .is_some_and(|(day, _)| day + policy.broken_promise_days >= as_of)
}

/// The suggested action of a case worked by a collector or supervisor, with its trigger,
/// following the dunning sequence that the escalation track continues: a recently broken
/// promise is called first; 61–89 days past due is the second reminder letter (with a
/// phone follow-up when the PD is at `call_pd` or above); a risky customer is called;
/// 31–60 days past due is the first call; younger arrears get an e-mail reminder. From
/// the escalation track on (90+ days past due by default), its step.
pub fn suggested_action(
    c: &QueueCustomer,
    policy: &QueuePolicy,
    as_of: i32,
) -> (&'static str, String) {
    if let Some((step, trigger)) = escalation_step(c, &policy.escalation) {
        return (step, trigger);
    }
    let pd = money::percent(money::pd_decimal(c.pd));
    if broke_recently(c, policy, as_of)
        && let Some((day, amount)) = c.last_broken
    {
        return (
            "call",
            format!("promise of {amount} broken on {}", dates::text(day)),
        );
    }
    if c.max_dpd >= 61 {
        let follow_up = if c.pd >= policy.call_pd {
            format!("; PD {pd}: follow up by phone")
        } else {
            String::new()
        };
        return (
            "letter",
            format!(
                "{} DPD (61–89): second reminder letter due{follow_up}",
                c.max_dpd
            ),
        );
    }
    if c.pd >= policy.call_pd {
        return (
            "call",
            format!(
                "PD {pd} (call from {})",
                money::percent(money::pd_decimal(policy.call_pd))
            ),
        );
    }
    if c.max_dpd >= 31 {
        ("call", format!("{} DPD (31–60): first call due", c.max_dpd))
    } else {
        (
            "email",
            format!("{} DPD (1–30): payment reminder", c.max_dpd),
        )
    }
}

/// The step of the escalation track for a late-stage account, with its trigger; None
/// while the account is not late-stage.
pub fn escalation_step(c: &QueueCustomer, e: &EscalationPolicy) -> Option<(&'static str, String)> {
    let dpd = c.max_dpd;
    let large = c.overdue >= e.legal_min_overdue;
    if dpd >= e.write_off_review_dpd && !large {
        return Some((
            "write_off_review",
            format!(
                "{dpd} DPD (review from {}), overdue {} below the legal minimum {}",
                e.write_off_review_dpd, c.overdue, e.legal_min_overdue
            ),
        ));
    }
    if dpd >= e.legal_dpd && large {
        return Some((
            "legal",
            format!(
                "{dpd} DPD (legal from {}) with overdue {} (from {})",
                e.legal_dpd, c.overdue, e.legal_min_overdue
            ),
        ));
    }
    if dpd >= e.agency_dpd {
        return Some((
            "agency",
            format!(
                "{dpd} DPD: place with a collection agency (from {})",
                e.agency_dpd
            ),
        ));
    }
    if dpd >= e.final_demand_dpd {
        return Some((
            "final_demand",
            format!(
                "{dpd} DPD: final demand letter (from {})",
                e.final_demand_dpd
            ),
        ));
    }
    if dpd >= 31 && c.broken_promises_12m as i32 >= e.final_demand_broken_promises {
        return Some((
            "final_demand",
            format!(
                "{} promises broken in 12 months at {dpd} DPD",
                c.broken_promises_12m
            ),
        ));
    }
    None
}

/// How much of the overdue an open promise holds: the whole account (`Held`), nothing
/// with the reason the promise does not hold, or none when there is no open promise.
pub(super) enum Hold {
    None,
    Whole(String),
    Partial { covered: Decimal, note: String },
}

pub(super) fn hold(c: &QueueCustomer, policy: &QueuePolicy, as_of: i32) -> Hold {
    let Some((date, amount)) = c.promise else {
        return Hold::None;
    };
    if date + policy.promise_grace_days < as_of {
        return Hold::None;
    }
    let by = format!(
        "promise of {amount} by {} (+{} days grace)",
        dates::text(date),
        policy.promise_grace_days
    );
    let covered = amount.min(c.overdue);
    let share = if c.overdue.is_zero() {
        Decimal::ONE
    } else {
        covered / c.overdue
    };
    let after_broken = broke_recently(c, policy, as_of);
    let needed = if after_broken {
        policy.promise_hold_coverage_after_broken
    } else {
        policy.promise_hold_coverage
    };
    if c.max_dpd >= policy.promise_hold_max_dpd {
        return Hold::Partial {
            covered,
            note: format!(
                "{by} does not hold an account {} days past due (limit {})",
                c.max_dpd, policy.promise_hold_max_dpd
            ),
        };
    }
    if share >= needed {
        return Hold::Whole(format!(
            "{by} covers {} of the overdue",
            money::percent(share)
        ));
    }
    Hold::Partial {
        covered,
        note: format!(
            "{by} covers only {} of the overdue (holding needs {}{})",
            money::percent(share),
            money::percent(needed),
            if after_broken {
                " after a recently broken promise"
            } else {
                ""
            }
        ),
    }
}

/// The age of a customer's oldest open dispute, for the resolver.
pub(super) fn dispute_age(c: &QueueCustomer, as_of: i32) -> String {
    match c.dispute_since {
        Some(day) => format!(
            "in dispute since {} ({} days)",
            dates::text(day),
            as_of - day
        ),
        None => "in dispute (no dispute activity recorded)".into(),
    }
}
