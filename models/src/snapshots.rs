//! Which snapshot a run reads: the one rule, used by the warehouse when it opens (for
//! the `*_latest` views, the scores, the queues, the limits and the nightly folder) and
//! by `risk_scores(as_of)` in SQL.
//!
//! **The rule.** Candidates are the snapshot dates found in *any* snapshot table
//! (`customers`, `open_items`). The snapshot is the newest candidate on or before the
//! as-of date (the newest of all for `latest`). Every snapshot table must have it —
//! a date that one table has and another lacks is an incomplete load, and an error
//! names both tables rather than silently falling back to an older day — and
//! `customers` must hold rows there (a snapshot without customers is an empty or
//! broken load; a snapshot without open items is a book where everything is paid).

use std::collections::BTreeMap;

use arq_udfs::dates;

/// The table whose snapshot must hold rows.
const CUSTOMERS: &str = "customers";

/// The snapshot days of each snapshot table, with the rows each holds, and the
/// snapshot chosen for the session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshots {
    /// Per snapshot table: day → rows.
    tables: Vec<(String, BTreeMap<i32, u64>)>,
    /// The snapshot the session's `*_latest` views show.
    chosen: Option<i32>,
}

impl Snapshots {
    /// The snapshots found in each snapshot table (day → rows).
    pub fn new(tables: Vec<(String, BTreeMap<i32, u64>)>) -> Snapshots {
        Snapshots {
            tables,
            chosen: None,
        }
    }

    /// Resolves `as_of` (a day, or `None` for the newest) by the rule and remembers it as
    /// the session's snapshot.
    pub fn choose(&mut self, as_of: Option<i32>) -> Result<i32, String> {
        let day = self.resolve(as_of)?;
        self.chosen = Some(day);
        Ok(day)
    }

    /// The session's snapshot (see [`Snapshots::choose`]).
    pub fn chosen(&self) -> Option<i32> {
        self.chosen
    }

    /// The rule (see the module documentation).
    pub fn resolve(&self, as_of: Option<i32>) -> Result<i32, String> {
        let candidates: Vec<i32> = {
            let mut all: Vec<i32> = self
                .tables
                .iter()
                .flat_map(|(_, days)| days.keys().copied())
                .collect();
            all.sort_unstable();
            all.dedup();
            all
        };
        let found = match as_of {
            None => candidates.last().copied(),
            Some(limit) => candidates.iter().rev().find(|&&d| d <= limit).copied(),
        };
        let Some(day) = found else {
            return Err(match (as_of, candidates.first()) {
                (_, None) => "the warehouse has no snapshots".to_string(),
                (Some(limit), Some(&first)) => format!(
                    "no snapshot on or before {} (the first is {})",
                    dates::text(limit),
                    dates::text(first)
                ),
                (None, Some(_)) => unreachable!("a newest candidate exists"),
            });
        };
        self.check_complete(day)?;
        Ok(day)
    }

    /// Every snapshot table has `day`, and `customers` holds rows there.
    fn check_complete(&self, day: i32) -> Result<(), String> {
        let having: Vec<&str> = self
            .tables
            .iter()
            .filter(|(_, days)| days.contains_key(&day))
            .map(|(name, _)| name.as_str())
            .collect();
        if let Some((missing, _)) = self
            .tables
            .iter()
            .find(|(_, days)| !days.contains_key(&day))
        {
            let earlier = self
                .complete_days()
                .into_iter()
                .rev()
                .find(|&d| d < day)
                .map(|d| {
                    format!(
                        "; pass --as-of {} for the last complete one",
                        dates::text(d)
                    )
                })
                .unwrap_or_default();
            return Err(format!(
                "snapshot {day_text} is incomplete: table `{missing}` has no snapshot for \
                 {day_text}, which `{}` has{earlier}",
                having.join("`, `"),
                day_text = dates::text(day),
            ));
        }
        let customers = self.tables.iter().find(|(name, _)| name == CUSTOMERS);
        if let Some((_, days)) = customers
            && days.get(&day) == Some(&0)
        {
            return Err(format!(
                "table `{CUSTOMERS}`: snapshot {} has no rows (an empty or failed load)",
                dates::text(day)
            ));
        }
        Ok(())
    }

    /// The days every snapshot table has, ascending.
    pub fn complete_days(&self) -> Vec<i32> {
        let Some(((_, first), rest)) = self.tables.split_first() else {
            return Vec::new();
        };
        first
            .keys()
            .copied()
            .filter(|d| rest.iter().all(|(_, days)| days.contains_key(d)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshots(customers: &[(i32, u64)], open_items: &[(i32, u64)]) -> Snapshots {
        Snapshots::new(vec![
            ("customers".into(), customers.iter().copied().collect()),
            ("open_items".into(), open_items.iter().copied().collect()),
        ])
    }

    #[test]
    fn the_newest_snapshot_on_or_before_the_date() {
        let s = snapshots(&[(10, 5), (20, 5), (30, 5)], &[(10, 9), (20, 9), (30, 9)]);
        assert_eq!(s.resolve(None), Ok(30));
        assert_eq!(s.resolve(Some(29)), Ok(20));
        assert_eq!(s.resolve(Some(20)), Ok(20));
        let err = s.resolve(Some(5)).unwrap_err();
        assert!(err.contains("no snapshot on or before 1970-01-06"), "{err}");
        assert_eq!(s.complete_days(), vec![10, 20, 30]);
        assert!(Snapshots::default().resolve(None).is_err());
    }

    #[test]
    fn an_incomplete_or_empty_snapshot_is_an_error_not_an_older_day() {
        // customers has a newer snapshot than open_items.
        let s = snapshots(&[(10, 5), (20, 5)], &[(10, 9)]);
        let err = s.resolve(None).unwrap_err();
        assert!(
            err.contains(
                "snapshot 1970-01-21 is incomplete: table `open_items` has no snapshot for \
                 1970-01-21, which `customers` has"
            ) && err.contains("--as-of 1970-01-11"),
            "{err}"
        );
        assert_eq!(s.resolve(Some(15)), Ok(10));
        // An empty customers snapshot.
        let s = snapshots(&[(10, 5), (20, 0)], &[(10, 9), (20, 0)]);
        let err = s.resolve(None).unwrap_err();
        assert!(
            err.contains("table `customers`: snapshot 1970-01-21 has no rows"),
            "{err}"
        );
        // No open items at all is a paid-up book, not an error.
        let s = snapshots(&[(10, 5)], &[(10, 0)]);
        assert_eq!(s.resolve(None), Ok(10));
    }
}
