//! How the model's features may be reason codes (adverse-action reasons): which side of
//! the portfolio's typical customer is adverse for each of arq's warehouse features, and
//! which features say one thing in other words.

/// Which side of the portfolio's typical customer (the training mean) is adverse for
/// a feature: reasons name a feature only when this customer is on that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adverse {
    /// Higher than typical is worse (days past due, disputes, broken promises, ...).
    High,
    /// Lower than typical is worse (tenure).
    Low,
    /// Never a reason: a volume or a segment says nothing against the customer by itself,
    /// and the aging bucket repeats max_dpd in other words.
    Never,
}

/// How a feature may be a reason code: its adverse side, and its group — features that
/// say the same thing in other words share a group, and a row names a group once (by its
/// strongest feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonRule {
    pub adverse: Adverse,
    pub group: &'static str,
}

/// The reason rule of one of arq's warehouse features (None for other names: a model
/// trained on a user's table falls back to the coefficients' signs).
pub fn reason_rule(feature: &str) -> Option<ReasonRule> {
    use Adverse::*;
    let (adverse, group) = match feature {
        "segment" => (Never, "segment"),
        "invoices_12m" => (Never, "invoices_12m"),
        "open_items" => (Never, "open_items"),
        // Days past due now, on average and in the last months: one fact, named once.
        "worst_bucket" => (Never, "days_past_due"),
        "max_dpd" | "weighted_dpd" | "max_dpd_3m" | "max_dpd_6m" | "max_dpd_12m" => {
            (High, "days_past_due")
        }
        "paid_late_6m" | "paid_late_share_6m" | "paid_late_12m" | "paid_late_share_12m" => {
            (High, "paid_late")
        }
        "overdue_share" => (High, "overdue_share"),
        "share_61_90" => (High, "share_61_90"),
        "avg_days_late_6m" => (High, "avg_days_late_6m"),
        "days_late_trend" => (High, "days_late_trend"),
        "utilization" => (High, "utilization"),
        "broken_promises_12m" => (High, "broken_promises_12m"),
        "open_disputes" => (High, "open_disputes"),
        "contacts_3m" => (High, "contacts_3m"),
        "days_since_last_payment" => (High, "days_since_last_payment"),
        "tenure_months" => (Low, "tenure_months"),
        _ => return None,
    };
    Some(ReasonRule { adverse, group })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_warehouse_feature_has_a_rule() {
        for feature in crate::features::FEATURE_COLUMNS {
            assert!(reason_rule(feature).is_some(), "{feature}");
        }
        assert_eq!(reason_rule("loan_amount"), None);
        assert_eq!(
            reason_rule("max_dpd_6m").unwrap().group,
            reason_rule("max_dpd").unwrap().group
        );
        assert_eq!(reason_rule("worst_bucket").unwrap().adverse, Adverse::Never);
        assert_eq!(reason_rule("tenure_months").unwrap().adverse, Adverse::Low);
    }
}
