//! How the report writes figures: money with its currency and thousands separators (never
//! added across currencies), shares as percentages, days with one decimal, and the change
//! against the previous month with its direction.

use rust_decimal::{Decimal, RoundingStrategy};

/// `USD 1,234,567.89` (rounded half away from zero to cents).
pub fn money(currency: &str, amount: Decimal) -> String {
    format!("{currency} {}", amount_text(amount))
}

/// `1,234,567.89`, `-12.50`.
pub fn amount_text(amount: Decimal) -> String {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let text = format!("{:.2}", rounded.abs());
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}{}.{cents}", group(whole))
}

/// Thousands separators in a string of digits.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A whole count with separators.
pub fn count(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}", group(&n.unsigned_abs().to_string()))
}

/// A share in [0, 1] as `12.3 %`.
pub fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// A CEI (already a percentage) as `87.4 %`.
pub fn points_percent(value: f64) -> String {
    format!("{value:.1} %")
}

/// Days with one decimal.
pub fn days(value: f64) -> String {
    format!("{value:.1} days")
}

/// The change of a figure against the previous month, in its unit: `+4.2 days`,
/// `-1.5 pp`, `+USD 12,000.00`; "no previous month" when there is none.
pub fn change(now: f64, before: Option<f64>, unit: Unit) -> String {
    let Some(before) = before else {
        return "no previous month".into();
    };
    let delta = now - before;
    let sign = if delta >= 0.0 { "+" } else { "-" };
    let magnitude = delta.abs();
    match unit {
        Unit::Days => format!("{sign}{magnitude:.1} days"),
        Unit::PercentagePoints => format!("{sign}{magnitude:.1} pp"),
    }
}

/// The unit of a [`change`].
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Days,
    PercentagePoints,
}

/// The change of a money figure: `+USD 12,000.00`.
pub fn money_change(currency: &str, now: Decimal, before: Option<Decimal>) -> String {
    match before {
        None => "no previous month".into(),
        Some(before) => {
            let delta = now - before;
            let sign = if delta.is_sign_negative() && !delta.is_zero() {
                "-"
            } else {
                "+"
            };
            format!("{sign}{currency} {}", amount_text(delta.abs()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn money_has_its_currency_separators_and_cents() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(money("USD", d("1234567.891")), "USD 1,234,567.89");
        assert_eq!(money("EUR", d("0.005")), "EUR 0.01");
        assert_eq!(money("EUR", d("-999.5")), "EUR -999.50");
        assert_eq!(money("JPY", d("100")), "JPY 100.00");
        assert_eq!(
            money_change("USD", d("100"), Some(d("250.5"))),
            "-USD 150.50"
        );
        assert_eq!(money_change("USD", d("100"), None), "no previous month");
        assert_eq!(count(1234567), "1,234,567");
    }

    #[test]
    fn changes_carry_their_sign_and_unit() {
        assert_eq!(change(45.0, Some(41.2), Unit::Days), "+3.8 days");
        assert_eq!(change(0.1, Some(0.25), Unit::PercentagePoints), "-0.1 pp");
        assert_eq!(change(1.0, None, Unit::Days), "no previous month");
    }
}
