//! `arq queue`: today's call lists from the default model.

use std::collections::{BTreeMap, BTreeSet};

use crate::util::{csv_rows, run_err, run_ok};

#[test]
fn every_overdue_customer_once_within_capacity_and_the_rules() {
    let text = run_ok(&["queue", "--format", "csv"]);
    assert!(text.starts_with(
        "queue,rank,customer_id,currency,assigned_to,overdue,max_dpd,pd,score,expected_loss,action,why_here,risk_reasons,promise_date,promise_amount\n"
    ));
    let rows = csv_rows(&text);
    // Exactly the customers with an overdue balance, once each.
    let overdue = run_ok(&[
        "sql",
        "SELECT customer_id FROM open_items_latest WHERE days_past_due(due_date, snapshot_date) > 0 \
         GROUP BY customer_id ORDER BY customer_id",
        "--format",
        "csv",
    ]);
    let expected: BTreeSet<String> = overdue.lines().skip(1).map(str::to_string).collect();
    let ids: Vec<&String> = rows.iter().map(|r| &r[2]).collect();
    let unique: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids.len(), unique.len(), "a customer appears twice");
    assert_eq!(unique, expected);

    // No collector above daily capacity.
    let capacities = run_ok(&[
        "sql",
        "SELECT collector_id, daily_capacity FROM collectors",
        "--format",
        "csv",
    ]);
    let capacity: BTreeMap<String, usize> = capacities
        .lines()
        .skip(1)
        .map(|l| {
            let (id, c) = l.split_once(',').unwrap();
            (id.to_string(), c.parse().unwrap())
        })
        .collect();
    // Collectors and supervisors alike: nobody is assigned more than their capacity.
    let mut per_person: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r[4].is_empty()) {
        *per_person.entry(r[4].as_str()).or_default() += 1;
    }
    assert!(
        per_person.keys().any(|p| p.starts_with('S')),
        "{per_person:?}"
    );
    for (person, n) in &per_person {
        assert!(
            *n <= capacity[*person],
            "{person}: {n} > {}",
            capacity[*person]
        );
    }
    let mut per_queue: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for r in &rows {
        per_queue
            .entry(r[0].as_str())
            .or_default()
            .push(r[1].parse().unwrap());
    }
    for (queue, ranks) in &per_queue {
        // Ranks are 1..n in each queue.
        assert_eq!(
            *ranks,
            (1..=ranks.len() as u32).collect::<Vec<_>>(),
            "{queue}"
        );
        if let Some(&cap) = capacity.get(*queue) {
            assert!(
                ranks.len() <= cap,
                "{queue}: {} calls > capacity {cap}",
                ranks.len()
            );
        }
    }
    assert!(per_queue.contains_key("carry_over") && per_queue.contains_key("held"));

    // High-profile and fraud-suspected customers only in supervisor queues.
    let flagged = run_ok(&[
        "sql",
        "SELECT customer_id FROM customers_latest WHERE high_profile OR fraud_suspected",
        "--format",
        "csv",
    ]);
    let flagged: BTreeSet<&str> = flagged.lines().skip(1).collect();
    for r in rows.iter().filter(|r| flagged.contains(r[2].as_str())) {
        assert!(r[0].starts_with("supervisor:"), "{r:?}");
    }
    // Held customers have a promise whose date + 3 days has not passed (2026-10-31).
    for r in rows.iter().filter(|r| r[0] == "held") {
        assert!(r[13].as_str() >= "2026-10-28", "{r:?}");
    }
    // Carry-over says why.
    for r in rows
        .iter()
        .filter(|r| r[0] == "carry_over" || r[0] == "supervisor:carry_over")
    {
        assert!(r[4].is_empty(), "{r:?}");
        assert!(
            r[11].contains("capacity") || r[11].contains("covers"),
            "{r:?}"
        );
    }
    // Same inputs, same bytes.
    assert_eq!(text, run_ok(&["queue", "--format", "csv"]));
}

#[test]
fn one_queue_and_unknown_queues() {
    let text = run_ok(&["queue", "--collector", "dispute", "--format", "csv"]);
    let rows = csv_rows(&text);
    assert!(!rows.is_empty() && rows.iter().all(|r| r[0] == "dispute"));
    let err = run_err(&["queue", "--collector", "K9999"]);
    assert!(err.contains("no queue `K9999`"), "{err}");
}

#[test]
fn queue_thresholds_come_from_the_policy_file() {
    let count = |text: &str, queue: &str| csv_rows(text).iter().filter(|r| r[0] == queue).count();
    let default = run_ok(&["queue", "--format", "csv"]);
    let dir = tempfile::tempdir().unwrap();
    let policy =
        std::fs::read_to_string(crate::util::repo_root().join("data/policy.toml")).unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(
        &path,
        policy
            .replace("high_risk_pd = \"0.50\"", "high_risk_pd = \"0.99\"")
            .replace("promise_grace_days = 3", "promise_grace_days = 0"),
    )
    .unwrap();
    let stricter = run_ok(&[
        "queue",
        "--policy",
        path.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    // High-risk cases, whether a supervisor takes them today or they wait.
    let high_risk = |text: &str| {
        csv_rows(text)
            .iter()
            .filter(|r| r[11].starts_with("high risk"))
            .count()
    };
    assert!(
        high_risk(&stricter) < high_risk(&default),
        "a higher PD threshold sends fewer customers to supervisors"
    );
    assert!(count(&stricter, "held") <= count(&default, "held"));
    std::fs::write(
        &path,
        policy.replace("call_pd = \"0.10\"", "call_pd = \"2\""),
    )
    .unwrap();
    let err = run_err(&["queue", "--policy", path.to_str().unwrap()]);
    assert!(
        err.contains("`queues.call_pd`: 2 is not in (0, 1]"),
        "{err}"
    );
}
