//! Money and probabilities as the queues and the limits decide on them: amounts are
//! rust_decimal end to end, stored as Decimal128(18, 2) cents like the warehouse, and a
//! PD (a float out of the model) is taken at six decimals before it touches money.

use datafusion::arrow::datatypes::DataType;
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;

use crate::error::{ModelError, Result};

/// Money in outputs (recommendations, call lists): Decimal128(18, 2), like the warehouse.
pub const MONEY: DataType = DataType::Decimal128(18, 2);

/// Money as SQL sums return it before it is checked to fit [`MONEY`].
pub const MONEY_SUM: DataType = DataType::Decimal128(38, 2);

/// An amount of cents (a Decimal128 value at scale 2).
pub fn from_cents(cents: i128) -> Decimal {
    Decimal::from_i128_with_scale(cents, 2)
}

/// Cents of an amount for a [`MONEY`] column, rounded to the cent (half to even); an
/// error naming `what` when it does not fit Decimal(18, 2).
pub fn to_cents(amount: Decimal, what: impl FnOnce() -> String) -> Result<i128> {
    let mut amount = amount.round_dp(2);
    amount.rescale(2);
    let cents = amount.mantissa();
    if cents.unsigned_abs() >= 10u128.pow(18) {
        return Err(ModelError::Data(format!(
            "{} {amount} does not fit Decimal(18, 2)",
            what()
        )));
    }
    Ok(cents)
}

/// A PD as a decimal with six places, clamped to [0, 1]: limits and expected losses are
/// decided on this, so the same scores always give the same money.
pub fn pd_decimal(pd: f64) -> Decimal {
    Decimal::from_f64(pd.clamp(0.0, 1.0))
        .unwrap_or(Decimal::ONE)
        .round_dp(6)
}

/// A PD as a percentage for reasons: `12.5 %`.
pub fn percent(pd: Decimal) -> String {
    format!("{} %", (pd * Decimal::ONE_HUNDRED).round_dp(2).normalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_round_trip_and_overflow_is_named() {
        let d = |s: &str| Decimal::from_str_exact(s).unwrap();
        assert_eq!(to_cents(d("12.346"), String::new).unwrap(), 1235);
        // rust_decimal's round_dp: half to even.
        assert_eq!(to_cents(d("12.345"), String::new).unwrap(), 1234);
        assert_eq!(from_cents(1235), d("12.35"));
        let err = to_cents(d("99999999999999999999"), || "overdue".into()).unwrap_err();
        assert!(err.to_string().contains("overdue"), "{err}");
        assert_eq!(pd_decimal(0.1234567), d("0.123457"));
        assert_eq!(pd_decimal(f64::NAN), Decimal::ONE);
        assert_eq!(percent(d("0.125")), "12.5 %");
    }
}
