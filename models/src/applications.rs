//! Credit applications of prospective customers: no history to score, so the decision
//! rests on what the application holds, under the policy's `[applications]` table.
//!
//! - PD: the external rating's PD when the application has a rating, else the segment's.
//! - Class: the policy's class of that PD. Classes in `decline_classes` are declined.
//! - Limit: the requested amount, at most `revenue_share` of the annual revenue when the
//!   application gives it, at most the starter limit when it gives neither rating nor
//!   revenue, at most the policy's cap; rounded down to the step, never below the floor.
//! - Decision: decline (limit 0); refer to a credit officer for classes in
//!   `refer_classes` or limits above `approve_up_to`; approve otherwise.

use rust_decimal::Decimal;

use crate::error::{ModelError, Result};
use crate::money;
use crate::policy::LimitPolicy;

/// One application as read from the file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Application {
    pub application_id: String,
    pub name: String,
    pub segment: String,
    pub region: String,
    pub currency: String,
    pub requested_limit: Decimal,
    /// External rating, 1 (best) to the number of the policy's `rating_pd`.
    pub external_rating: Option<u32>,
    pub annual_revenue: Option<Decimal>,
}

/// The decision on an application.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationDecision {
    pub pd: Decimal,
    pub risk_class: String,
    pub decision: &'static str,
    pub limit: Decimal,
    pub reasons: Vec<String>,
}

impl LimitPolicy {
    /// Decides one application; an unknown segment or a rating outside the policy's scale
    /// is an error naming the application.
    pub fn decide_application(&self, a: &Application) -> Result<ApplicationDecision> {
        let mut reasons = Vec::new();
        let pd = self.application_pd(a, &mut reasons)?;
        let rules = &self.applications;
        let class = self.class_for(pd);
        if rules.decline_classes.contains(&class.name) {
            reasons.push(format!("risk class {}: declined by policy", class.name));
            return Ok(ApplicationDecision {
                pd,
                risk_class: class.name.clone(),
                decision: "decline",
                limit: Decimal::ZERO,
                reasons,
            });
        }
        let limit = self.application_limit(a, &mut reasons);
        let decision = if rules.refer_classes.contains(&class.name) {
            reasons.push(format!(
                "risk class {}: referred to a credit officer",
                class.name
            ));
            "refer"
        } else if limit > rules.approve_up_to {
            reasons.push(format!(
                "limit above the auto-approval amount {}: referred to a credit officer",
                rules.approve_up_to
            ));
            "refer"
        } else {
            reasons.push(format!("risk class {}: approved", class.name));
            "approve"
        };
        Ok(ApplicationDecision {
            pd,
            risk_class: class.name.clone(),
            decision,
            limit: limit.round_dp(2),
            reasons,
        })
    }
    /// The PD of an application: its external rating's, else its segment's (with the
    /// reason in `reasons`).
    fn application_pd(&self, a: &Application, reasons: &mut Vec<String>) -> Result<Decimal> {
        let rules = &self.applications;
        Ok(match a.external_rating {
            Some(rating) => {
                let pd = rating
                    .checked_sub(1)
                    .and_then(|i| rules.rating_pd.get(i as usize))
                    .ok_or_else(|| {
                        ModelError::Data(format!(
                            "application {}: external_rating {rating} is outside the policy's scale 1 to {}",
                            a.application_id,
                            rules.rating_pd.len()
                        ))
                    })?;
                reasons.push(format!(
                    "external rating {rating}: PD {}",
                    money::percent(*pd)
                ));
                *pd
            }
            None => {
                let pd = rules.segment_pd.get(&a.segment).ok_or_else(|| {
                    ModelError::Data(format!(
                        "application {}: segment `{}` has no PD in the policy's applications.segment_pd ({})",
                        a.application_id,
                        a.segment,
                        rules.segment_pd.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                reasons.push(format!(
                    "no external rating: PD of segment {} {}",
                    a.segment,
                    money::percent(*pd)
                ));
                *pd
            }
        })
    }

    /// The limit of an application: the requested amount, at most the revenue share or
    /// the starter limit and the cap, rounded down to the step, at least the floor.
    fn application_limit(&self, a: &Application, reasons: &mut Vec<String>) -> Decimal {
        let rules = &self.applications;
        let mut limit = a.requested_limit;
        if let Some(revenue) = a.annual_revenue {
            let by_revenue = revenue * rules.revenue_share;
            if by_revenue < limit {
                limit = by_revenue;
                reasons.push(format!(
                    "at most {} of the annual revenue {revenue}",
                    money::percent(rules.revenue_share)
                ));
            }
        } else if a.external_rating.is_none() && self.starter_limit < limit {
            limit = self.starter_limit;
            reasons.push(format!(
                "neither rating nor financials: starter limit {}",
                self.starter_limit
            ));
        }
        if limit > self.cap {
            limit = self.cap;
            reasons.push(format!("capped at the policy cap {}", self.cap));
        }
        limit = (limit / self.rounding_step).floor() * self.rounding_step;
        if limit < self.floor {
            limit = self.floor;
            reasons.push(format!("raised to the policy floor {}", self.floor));
        }
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::policy::tests::POLICY;

    fn application(segment: &str, requested: i64) -> Application {
        Application {
            application_id: "A1".into(),
            segment: segment.into(),
            requested_limit: Decimal::from(requested),
            ..Application::default()
        }
    }

    #[test]
    fn decisions_follow_rating_revenue_and_class() {
        let p = Policy::parse(POLICY, "t.toml").unwrap().limits;
        // No rating, no revenue: the segment's PD (enterprise 3 % = class B), starter limit.
        let d = p
            .decide_application(&application("enterprise", 20_000))
            .unwrap();
        assert_eq!(
            (d.risk_class.as_str(), d.decision, d.limit),
            ("B", "approve", Decimal::from(5000))
        );
        // Rating 1 (0.5 %): class A; the requested amount, capped by 10 % of revenue.
        let mut rated = application("enterprise", 80_000);
        rated.external_rating = Some(1);
        rated.annual_revenue = Some(Decimal::from(650_000));
        let d = p.decide_application(&rated).unwrap();
        assert_eq!((d.decision, d.limit), ("refer", Decimal::from(65_000)));
        assert!(
            d.reasons.iter().any(|r| r.contains("auto-approval")),
            "{d:?}"
        );
        rated.annual_revenue = Some(Decimal::from(400_000));
        assert_eq!(p.decide_application(&rated).unwrap().decision, "approve");
        // Rating 10 (40 %): class E, declined with no limit; rating 8 (18 %): D, referred.
        rated.external_rating = Some(10);
        let d = p.decide_application(&rated).unwrap();
        assert_eq!((d.decision, d.limit), ("decline", Decimal::ZERO));
        rated.external_rating = Some(8);
        assert_eq!(p.decide_application(&rated).unwrap().decision, "refer");
        // Outside the scale, or an unknown segment: an error naming the application.
        rated.external_rating = Some(11);
        assert!(
            p.decide_application(&rated)
                .unwrap_err()
                .to_string()
                .contains("application A1: external_rating 11")
        );
        let err = p
            .decide_application(&application("space", 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment `space`"), "{err}");
    }
}
