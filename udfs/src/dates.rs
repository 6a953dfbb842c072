//! Days ⇄ dates ⇄ text: the one place in the workspace that converts Arrow's `Date32`
//! day numbers (days since 1970-01-01) to calendar dates and back.
//!
//! ```
//! use arq_udfs::dates;
//! let day = dates::to_days(dates::parse("2026-10-31").unwrap());
//! assert_eq!(day, 20_757);
//! assert_eq!(dates::text(day), "2026-10-31");
//! assert_eq!(dates::sql_literal(day), "DATE '2026-10-31'");
//! ```

use chrono::{Datelike, Months, NaiveDate};

/// 1970-01-01, day 0 of `Date32`.
pub const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 exists");

/// Days since 1970-01-01 of a date (negative before it).
pub fn to_days(date: NaiveDate) -> i32 {
    (date - EPOCH).num_days() as i32
}

/// The date of a day number; `None` outside chrono's range (about ±262,000 years).
pub fn from_days(days: i32) -> Option<NaiveDate> {
    EPOCH.checked_add_signed(chrono::TimeDelta::days(days as i64))
}

/// A date as `YYYY-MM-DD`.
pub fn parse(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// `YYYY-MM-DD` of a day number (the number itself when it is no representable date).
pub fn text(days: i32) -> String {
    from_days(days).map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// The SQL literal `DATE 'YYYY-MM-DD'` of a day number.
pub fn sql_literal(days: i32) -> String {
    format!("DATE '{}'", text(days))
}

/// The number of days in the calendar month of `days`, and the first day of that month.
pub fn month_of(days: i32) -> (i32, i32) {
    let Some(date) = from_days(days) else {
        return (30, days);
    };
    let first = date.with_day(1).expect("day 1 exists");
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    ((next - first).num_days() as i32, to_days(first))
}

/// The day number of a calendar date given by year, month and day.
pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<i32> {
    NaiveDate::from_ymd_opt(year, month, day).map(to_days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_dates_and_text_round_trip() {
        assert_eq!(from_ymd(1970, 1, 1), Some(0));
        assert_eq!(text(-1), "1969-12-31");
        for d in -800..800 {
            assert_eq!(to_days(from_days(d).unwrap()), d);
            assert_eq!(to_days(parse(&text(d)).unwrap()), d);
        }
        assert_eq!(from_days(i32::MAX), None);
        assert_eq!(text(i32::MAX), i32::MAX.to_string());
    }

    #[test]
    fn months_have_their_lengths() {
        let day = |y, m, d| from_ymd(y, m, d).unwrap();
        assert_eq!(month_of(day(2024, 2, 10)), (29, day(2024, 2, 1)));
        assert_eq!(month_of(day(2023, 2, 28)), (28, day(2023, 2, 1)));
        assert_eq!(month_of(day(2026, 12, 31)), (31, day(2026, 12, 1)));
    }
}
