//! Periodic review of credit lines: credit departments review every line on a cycle
//! (its class's `review_months`) and earlier on a trigger — the PD class moved by the
//! policy's `class_migration` classes or more since the previous snapshot, exposure above
//! the credit limit for `over_limit_days` or more, or a promise of at least
//! `broken_promise_amount` broken within `broken_promise_days` (the `[review]` table).
//!
//! A line never reviewed counts from the day the customer came. Months are 30.4375 days,
//! as the history months of the limits.

use arq_udfs::dates;
use rust_decimal::Decimal;

use crate::limits::LimitInput;
use crate::policy::LimitPolicy;

/// What the review needs of a customer besides the limits' inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReviewInput {
    /// Days since 1970, as every day here.
    pub customer_since: i32,
    pub last_review: Option<i32>,
    /// The first snapshot of the current run of snapshots with exposure above the limit.
    pub over_since: Option<i32>,
    /// The largest promise broken within the look-back: (promise date, amount).
    pub broken_promise: Option<(i32, Decimal)>,
    /// The PD at the previous snapshot (None for new customers, or when not scored).
    pub previous_pd: Option<f64>,
}

/// Whether a line is due for review, and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Review {
    /// The class at the previous snapshot, when known.
    pub previous_class: Option<String>,
    /// Every trigger that applies, in the order cycle, migration, over limit, promise.
    pub triggers: Vec<String>,
}

impl LimitPolicy {
    /// The review of a customer in class `class` at snapshot `day`.
    pub fn review(&self, class: &str, r: &ReviewInput, input: &LimitInput, day: i32) -> Review {
        let mut triggers = Vec::new();
        let index = |name: &str| self.classes.iter().position(|c| c.name == name);
        let now = index(class).unwrap_or(0);
        let months = self.classes[now].review_months;
        let base = r.last_review.unwrap_or(r.customer_since);
        // Whole months elapsed, 30.4375 days each: exact in integers.
        let elapsed = ((day - base).max(0) as i64 * 10_000) / 304_375;
        if elapsed >= months as i64 {
            triggers.push(match r.last_review {
                Some(last) => format!(
                    "periodic: last review {} ({elapsed} months ago), class {class} every {months} months",
                    dates::text(last)
                ),
                None => format!(
                    "periodic: never reviewed, customer since {}; class {class} every {months} months",
                    dates::text(r.customer_since)
                ),
            });
        }
        let previous_class = r.previous_pd.map(|pd| self.class_of(pd).name.clone());
        if let Some(before) = &previous_class {
            let then = index(before).unwrap_or(now);
            if now.abs_diff(then) as u32 >= self.review.class_migration {
                triggers.push(format!(
                    "class moved from {before} to {class} since the previous snapshot (review from {} classes)",
                    self.review.class_migration
                ));
            }
        }
        if let Some(since) = r.over_since
            && day - since >= self.review.over_limit_days
            && input.exposure > input.current_limit
        {
            triggers.push(format!(
                "over the limit since {} ({} days; review from {})",
                dates::text(since),
                day - since,
                self.review.over_limit_days
            ));
        }
        if let Some((when, amount)) = r.broken_promise
            && amount >= self.review.broken_promise_amount
        {
            triggers.push(format!(
                "promise of {amount} broken on {} (review from {})",
                dates::text(when),
                self.review.broken_promise_amount
            ));
        }
        Review {
            previous_class,
            triggers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::policy::tests::POLICY;

    fn input(exposure: i64, limit: i64) -> LimitInput {
        LimitInput {
            current_limit: Decimal::from(limit),
            exposure: Decimal::from(exposure),
            credit_sales: Decimal::from(60_000),
            history_months: 24,
            pd: 0.01,
            late_stage: false,
        }
    }

    #[test]
    fn each_trigger_and_the_cycle() {
        let text = POLICY.replace("name = \"B\"\n", "name = \"B\"\nreview_months = 6\n");
        let p = Policy::parse(
            &format!("{text}\n[review]\nover_limit_days = 30\n"),
            "t.toml",
        )
        .unwrap()
        .limits;
        let fresh = ReviewInput {
            customer_since: 0,
            last_review: Some(900),
            ..ReviewInput::default()
        };
        // Reviewed 100 days ago: not due in class A (12 months), due in class B (6).
        assert!(
            p.review("A", &fresh, &input(0, 10), 1000)
                .triggers
                .is_empty()
        );
        let b = p.review("B", &fresh, &input(0, 10), 1100);
        assert_eq!(b.triggers.len(), 1);
        assert!(
            b.triggers[0].starts_with("periodic: last review 1972-06-19 (6 months ago)"),
            "{b:?}"
        );
        // Never reviewed: counts from the customer's first day.
        let never = ReviewInput {
            last_review: None,
            customer_since: 500,
            ..fresh.clone()
        };
        assert!(
            p.review("A", &never, &input(0, 10), 800)
                .triggers
                .is_empty()
        );
        assert!(p.review("A", &never, &input(0, 10), 900).triggers[0].contains("never reviewed"));
        // Two classes up since the previous snapshot (A at 1 % → C at 7 %).
        let moved = ReviewInput {
            previous_pd: Some(0.01),
            ..fresh.clone()
        };
        let r = p.review("C", &moved, &input(0, 10), 1000);
        assert_eq!(r.previous_class.as_deref(), Some("A"));
        assert!(
            r.triggers[0].starts_with("class moved from A to C"),
            "{r:?}"
        );
        assert!(
            p.review("B", &moved, &input(0, 10), 1000)
                .triggers
                .is_empty()
        );
        // Over the limit for 31 days, and still over.
        let over = ReviewInput {
            over_since: Some(969),
            ..fresh.clone()
        };
        assert!(p.review("A", &over, &input(20, 10), 1000).triggers[0].contains("31 days"));
        assert!(
            p.review("A", &over, &input(5, 10), 1000)
                .triggers
                .is_empty()
        );
        let recent = ReviewInput {
            over_since: Some(990),
            ..fresh.clone()
        };
        assert!(
            p.review("A", &recent, &input(20, 10), 1000)
                .triggers
                .is_empty()
        );
        // A broken promise from 10,000 on.
        let broke = ReviewInput {
            broken_promise: Some((950, Decimal::from(12_000))),
            ..fresh.clone()
        };
        assert!(
            p.review("A", &broke, &input(0, 10), 1000).triggers[0]
                .starts_with("promise of 12000 broken")
        );
        let small = ReviewInput {
            broken_promise: Some((950, Decimal::from(500))),
            ..fresh
        };
        assert!(
            p.review("A", &small, &input(0, 10), 1000)
                .triggers
                .is_empty()
        );
    }
}
