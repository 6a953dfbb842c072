//! Aging bucket bounds: `30,60,90,120` gives `current`, `1-30`, `31-60`, `61-90`,
//! `91-120`, `121+`.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;

/// The label of items not yet due (as_of ≤ due_date).
pub const CURRENT: &str = "current";

/// The largest bound: 100 years past due. Anything above is no aging bucket (and would
/// overflow the labels' arithmetic).
pub const MAX_BOUND: i32 = 36_500;

/// Validated, strictly increasing, positive bucket bounds in days past due.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgingBounds {
    bounds: Vec<i32>,
    labels: Vec<String>,
}

impl Default for AgingBounds {
    fn default() -> Self {
        AgingBounds::new(vec![30, 60, 90, 120]).expect("default bounds are valid")
    }
}

impl AgingBounds {
    /// Checks `bounds`: at least one, all positive and at most [`MAX_BOUND`], strictly
    /// increasing.
    pub fn new(bounds: Vec<i32>) -> Result<Self> {
        if bounds.is_empty() {
            return plan_err!(
                "aging bounds are empty: give at least one positive number of days, e.g. '30,60,90'"
            );
        }
        if let Some(b) = bounds.iter().find(|b| **b <= 0) {
            return plan_err!(
                "aging bound {b} is not positive: bounds are days past due, each at least 1"
            );
        }
        if let Some(b) = bounds.iter().find(|b| **b > MAX_BOUND) {
            return plan_err!(
                "aging bound {b} is too large: bounds are days past due, at most {MAX_BOUND} (100 years)"
            );
        }
        if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
            return plan_err!(
                "aging bounds must be strictly increasing, but {} is followed by {}",
                w[0],
                w[1]
            );
        }
        let mut labels = vec![CURRENT.to_string()];
        let mut lower = 1;
        for b in &bounds {
            labels.push(format!("{lower}-{b}"));
            lower = b + 1;
        }
        labels.push(format!("{lower}+"));
        Ok(AgingBounds { bounds, labels })
    }

    /// Parses the text form, `'15,45'` (spaces allowed).
    pub fn parse(text: &str) -> Result<Self> {
        let bounds = text
            .split(',')
            .map(|part| {
                let part = part.trim();
                part.parse::<i32>().or_else(|_| {
                    plan_err!("aging bound `{part}` in '{text}' is not a whole number of days")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        AgingBounds::new(bounds)
    }

    /// Reads bounds from the constant third argument: a string or an integer array.
    pub fn from_scalar(value: &ScalarValue) -> Result<Self> {
        match value {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => AgingBounds::parse(s),
            ScalarValue::List(list) if list.len() == 1 && !list.is_null(0) => {
                let values = list.value(0);
                if values.null_count() > 0 {
                    return plan_err!("aging bounds contain NULL");
                }
                let ints = match values.data_type() {
                    t if t.is_integer() => {
                        datafusion::arrow::compute::cast(&values, &DataType::Int64)?
                    }
                    DataType::Null => return plan_err!("aging bounds are empty"),
                    t => {
                        return plan_err!(
                            "aging bounds must be whole numbers of days, got an array of {t}"
                        );
                    }
                };
                let ints = ints.as_primitive::<Int64Type>();
                let bounds = ints
                    .values()
                    .iter()
                    .map(|v| {
                        i32::try_from(*v).or_else(|_| plan_err!("aging bound {v} is out of range"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                AgingBounds::new(bounds)
            }
            v if v.is_null() => plan_err!("aging bounds are NULL"),
            v => plan_err!(
                "aging bounds must be a string such as '30,60,90' or an array such as [30, 60, 90], got {}",
                v.data_type()
            ),
        }
    }

    /// The bounds in days.
    pub fn bounds(&self) -> &[i32] {
        &self.bounds
    }

    /// Every bucket label, in aging order (`current` first).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The bucket (0 = current) of an item `days` past due (negative: not yet due).
    #[inline]
    pub fn index(&self, days: i32) -> usize {
        if days <= 0 {
            0
        } else {
            1 + self.bounds.partition_point(|b| *b < days)
        }
    }

    /// The rank of a label, if it is one of these buckets.
    pub fn rank_of(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// The range of days past due, `[low, high)`, of bucket `index` (`high` is None
    /// for the last bucket; `low` is None for `current`, which holds every day ≤ 0).
    pub fn days_range(&self, index: usize) -> (Option<i32>, Option<i32>) {
        let low = match index {
            0 => None,
            1 => Some(1),
            i => Some(self.bounds[i - 2] + 1),
        };
        let high = match index {
            0 => Some(1),
            i if i <= self.bounds.len() => Some(self.bounds[i - 1] + 1),
            _ => None,
        };
        (low, high)
    }
}

impl std::fmt::Display for AgingBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: Vec<String> = self.bounds.iter().map(|b| b.to_string()).collect();
        write!(f, "{}", text.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bounds_give_the_standard_buckets() {
        let b = AgingBounds::default();
        assert_eq!(
            b.labels(),
            ["current", "1-30", "31-60", "61-90", "91-120", "121+"]
        );
        let expect = [
            (-5, 0),
            (0, 0),
            (1, 1),
            (30, 1),
            (31, 2),
            (60, 2),
            (61, 3),
            (90, 3),
            (91, 4),
            (120, 4),
            (121, 5),
            (10_000, 5),
        ];
        for (days, bucket) in expect {
            assert_eq!(b.index(days), bucket, "{days} days past due");
        }
    }

    #[test]
    fn custom_bounds_and_their_errors() {
        let b = AgingBounds::parse(" 15, 45 ").unwrap();
        assert_eq!(b.labels(), ["current", "1-15", "16-45", "46+"]);
        assert_eq!(b.to_string(), "15,45");
        let err = |t: &str| AgingBounds::parse(t).unwrap_err().to_string();
        assert!(err("45,15").contains("strictly increasing, but 45 is followed by 15"));
        assert!(err("15,15").contains("strictly increasing"));
        assert!(err("0,30").contains("not positive"));
        assert!(err("-5").contains("not positive"));
        assert!(err("10,2.5").contains("`2.5`"));
        assert!(err("").contains("not a whole number"));
    }

    #[test]
    fn ranges_partition_the_days() {
        let b = AgingBounds::parse("15,45").unwrap();
        assert_eq!(b.days_range(0), (None, Some(1)));
        assert_eq!(b.days_range(1), (Some(1), Some(16)));
        assert_eq!(b.days_range(2), (Some(16), Some(46)));
        assert_eq!(b.days_range(3), (Some(46), None));
        for days in -3..60 {
            let (low, high) = b.days_range(b.index(days));
            assert!(
                low.is_none_or(|l| days >= l) && high.is_none_or(|h| days < h),
                "{days}"
            );
        }
    }
}
