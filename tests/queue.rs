//! `arq queue`: today's call lists from the default model.

use std::collections::{BTreeMap, BTreeSet};

use crate::util::{Table, generate_small, rewrite, run_err, run_ok};

/// The demo's queues as CSV.
fn demo_queues() -> (String, Table) {
    let text = run_ok(&["queue", "--format", "csv"]);
    let table = Table::parse(&text);
    (text, table)
}

/// A query's rows as a map from its first column to its second.
fn pairs(sql: &str) -> BTreeMap<String, String> {
    let t = Table::parse(&run_ok(&["sql", sql, "--format", "csv"]));
    t.rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

#[test]
fn every_overdue_customer_once_within_capacity_and_the_rules() {
    let (text, t) = demo_queues();
    assert!(text.starts_with(
        "queue,rank,customer_id,name,currency,assigned_to,overflow,action,why_now,\
         contact_name,contact_phone,contact_email,overdue,workable,overdue_items,max_dpd,pd,\
         score,expected_loss,risk_reasons,why_here,promise_date,promise_amount,\
         last_contact_date,last_contact_kind,last_contact_outcome,promises_12m,\
         broken_promises_12m,last_broken_promise_date,last_broken_promise_amount,dispute_since\n"
    ));
    // Exactly the customers with an overdue balance, once each.
    let overdue = run_ok(&[
        "sql",
        "SELECT customer_id FROM open_items_latest WHERE days_past_due(due_date, snapshot_date) > 0 \
         GROUP BY customer_id ORDER BY customer_id",
        "--format",
        "csv",
    ]);
    let expected: BTreeSet<String> = overdue.lines().skip(1).map(str::to_string).collect();
    let ids = t.column("customer_id");
    let unique: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids.len(), unique.len(), "a customer appears twice");
    assert_eq!(unique, expected);

    // Nobody (collector, supervisor) is assigned more than their capacity.
    let capacity: BTreeMap<String, usize> =
        pairs("SELECT collector_id, daily_capacity FROM collectors")
            .into_iter()
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
    let mut per_person: BTreeMap<&str, usize> = BTreeMap::new();
    for who in t
        .column("assigned_to")
        .into_iter()
        .filter(|w| !w.is_empty())
    {
        *per_person.entry(who).or_default() += 1;
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
    for r in t.records() {
        per_queue
            .entry(r.get("queue"))
            .or_default()
            .push(r.num("rank") as u32);
    }
    for (queue, ranks) in &per_queue {
        assert_eq!(
            *ranks,
            (1..=ranks.len() as u32).collect::<Vec<_>>(),
            "{queue}"
        );
    }
    for q in ["carry_over", "held", "escalation", "dispute"] {
        assert!(
            per_queue.contains_key(q),
            "no {q} in {:?}",
            per_queue.keys()
        );
    }

    // High-profile and fraud-suspected customers only in supervisor queues.
    let flagged = run_ok(&[
        "sql",
        "SELECT customer_id FROM customers_latest WHERE high_profile OR fraud_suspected",
        "--format",
        "csv",
    ]);
    let flagged: BTreeSet<&str> = flagged.lines().skip(1).collect();
    for r in t
        .records()
        .filter(|r| flagged.contains(r.get("customer_id")))
    {
        assert!(r.get("queue").starts_with("supervisor:"), "{r:?}");
    }
    // Carry-over and the manager's escalation list say why, and nobody works them today.
    for r in t.records() {
        let q = r.get("queue");
        if q.ends_with("carry_over") || q == "escalation" || q == "held" {
            assert!(r.get("assigned_to").is_empty(), "{r:?}");
            assert!(
                !r.get("why_here").is_empty() && !r.get("why_now").is_empty(),
                "{r:?}"
            );
        }
    }
    // Same inputs, same bytes.
    assert_eq!(text, run_ok(&["queue", "--format", "csv"]));
}

#[test]
fn a_collector_knows_who_to_call_what_to_do_and_why() {
    let (_, t) = demo_queues();
    let contacts = pairs("SELECT customer_id, contact_phone FROM customers_latest");
    let names = pairs("SELECT customer_id, name FROM customers_latest");
    let currencies = pairs("SELECT customer_id, currency FROM customers_latest");
    let mut actions = BTreeSet::new();
    for r in t.records() {
        let id = r.get("customer_id");
        assert_eq!(r.get("name"), names[id], "{r:?}");
        assert_eq!(r.get("currency"), currencies[id], "{r:?}");
        assert_eq!(r.get("contact_phone"), contacts[id], "{r:?}");
        assert!(
            !r.get("contact_name").is_empty() && r.get("contact_email").contains('@'),
            "{r:?}"
        );
        assert!(r.num("overdue_items") >= 1.0, "{r:?}");
        assert!(!r.get("why_now").is_empty(), "{r:?}");
        assert!(r.num("workable") <= r.num("overdue"), "{r:?}");
        assert!(
            r.num("broken_promises_12m") <= r.num("promises_12m"),
            "{r:?}"
        );
        actions.insert(r.get("action"));
    }
    // The dunning sequence and the escalation track both appear on the demo.
    for a in [
        "email",
        "call",
        "letter",
        "final_demand",
        "agency",
        "resolve_dispute",
        "wait",
    ] {
        assert!(actions.contains(a), "no {a} in {actions:?}");
    }
    // Most accounts were contacted before, and the list says how.
    let contacted = t
        .column("last_contact_kind")
        .iter()
        .filter(|k| !k.is_empty())
        .count();
    assert!(
        contacted * 2 > t.rows.len(),
        "{contacted} of {}",
        t.rows.len()
    );
    // A broken promise is the trigger of a call, with its amount and date.
    assert!(
        t.records()
            .any(|r| r.get("why_now").starts_with("promise of ")
                && r.get("why_now").contains(" broken on ")),
        "no broken promise as a trigger"
    );
}

#[test]
fn risk_reasons_are_never_favourable_nor_said_twice() {
    let (_, t) = demo_queues();
    // The favourable phrasings of the reason texts, and texts that never are reasons.
    let never = [
        "no disputes",
        "pays on time",
        "pays early",
        "no broken promises",
        "not past due",
        "little of the balance",
        "no recent collection contact",
        "few invoices",
        "uses little of the credit limit",
        "segment ",
        "aging bucket",
        "invoices in the last 12 months",
        "open invoices",
        "pays -",
        " 0 days",
        "paid 0 ",
    ];
    for r in t.records() {
        let reasons: Vec<&str> = r
            .get("risk_reasons")
            .split("; ")
            .filter(|s| !s.is_empty())
            .collect();
        assert!(reasons.len() <= 3, "{r:?}");
        for reason in &reasons {
            for bad in never {
                assert!(!reason.contains(bad), "`{bad}` in {reasons:?}");
            }
        }
        // Days past due now, on average and in the last months are one fact.
        let dpd = reasons
            .iter()
            .filter(|s| {
                s.starts_with("oldest open invoice is")
                    || s.starts_with("was ")
                    || (s.starts_with("balance is ") && s.ends_with("days past due on average"))
            })
            .count();
        assert!(dpd <= 1, "{reasons:?}");
    }
}

#[test]
fn promises_hold_only_what_they_cover_and_capacity_is_never_idle() {
    let (_, t) = demo_queues();
    for r in t.records().filter(|r| r.get("queue") == "held") {
        // The default policy: a promise holds when it covers 90 % of the overdue, the
        // whole overdue after a recently broken promise; never at 90+ days past due.
        assert!(r.num("promise_amount") >= 0.9 * r.num("overdue"), "{r:?}");
        assert!(r.num("max_dpd") < 90.0, "{r:?}");
        assert!(r.get("promise_date") >= "2026-10-28", "{r:?}");
    }
    // A promise that covers less leaves the rest workable, prioritized on that rest.
    assert!(
        t.records().any(|r| r.get("queue") != "held"
            && !r.get("promise_amount").is_empty()
            && r.num("workable") < r.num("overdue")),
        "no partly covered promise on the demo"
    );
    // Nobody waits in a carry-over queue while a collector of their segment has room.
    let segment = pairs("SELECT customer_id, segment FROM customers_latest");
    let capacity: BTreeMap<String, usize> =
        pairs("SELECT collector_id, daily_capacity FROM collectors WHERE role = 'collector'")
            .into_iter()
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
    let coverage: Vec<(String, String)> = pairs(
        "SELECT collector_id, array_to_string(segments, '|') FROM collectors WHERE role = 'collector'",
    )
    .into_iter()
    .flat_map(|(id, segments)| {
        segments.split('|').map(|s| (id.clone(), s.to_string())).collect::<Vec<_>>()
    })
    .collect();
    let assigned = |who: &str| {
        t.column("assigned_to")
            .iter()
            .filter(|a| **a == who)
            .count()
    };
    let overflow = t
        .column("overflow")
        .iter()
        .filter(|o| **o == "true")
        .count();
    assert!(overflow > 0, "nothing overflowed on the demo");
    for r in t.records() {
        let waiting = r.get("queue") == "carry_over"
            || (r.get("queue") == "supervisor:carry_over"
                && r.get("why_here").starts_with("high risk"));
        if !waiting {
            continue;
        }
        for (id, _) in coverage
            .iter()
            .filter(|c| c.1 == segment[r.get("customer_id")])
        {
            assert_eq!(
                assigned(id),
                capacity[id],
                "{id} has room while {r:?} waits"
            );
        }
    }
}

#[test]
fn one_person_one_queue_empty_queues_and_unknown_names() {
    // A supervisor's own list: what S0001 works today.
    let s1 = Table::parse(&run_ok(&[
        "queue",
        "--collector",
        "S0001",
        "--format",
        "csv",
    ]));
    assert!(!s1.rows.is_empty());
    assert!(s1.records().all(|r| r.get("assigned_to") == "S0001"));
    let disputes = Table::parse(&run_ok(&[
        "queue",
        "--collector",
        "dispute",
        "--format",
        "csv",
    ]));
    assert!(!disputes.rows.is_empty());
    for r in disputes.records() {
        assert_eq!(r.get("queue"), "dispute");
        // The customer's collector resolves (the demo has no resolvers), with the age.
        assert!(r.get("assigned_to").starts_with('K'), "{r:?}");
        assert!(r.get("why_now").starts_with("in dispute"), "{r:?}");
    }
    let escalation = Table::parse(&run_ok(&[
        "queue",
        "--collector",
        "escalation",
        "--format",
        "csv",
    ]));
    assert!(escalation.records().all(|r| r.num("max_dpd") >= 31.0));
    let err = run_err(&["queue", "--collector", "K9999"]);
    assert!(err.contains("no queue `K9999`"), "{err}");
    for name in [
        "K0001",
        "S0002",
        "escalation",
        "supervisor:carry_over",
        "held",
        "dispute",
    ] {
        assert!(err.contains(name), "{name} missing from: {err}");
    }
    // A person with nothing to do today gets an empty list (header only), not an error.
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    generate_small(&w, 60, 4, 3);
    let collectors = std::fs::read_dir(w.join("collectors"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let relative = collectors
        .strip_prefix(&w)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    rewrite(
        &w,
        &relative,
        "SELECT * FROM t UNION ALL SELECT 'R0001', 'Idle Resolver', 'resolver', CAST(0 AS INT), segments \
         FROM t WHERE collector_id = 'K0001'",
    );
    let text = run_ok(&[
        "-w",
        w.to_str().unwrap(),
        "queue",
        "--collector",
        "R0001",
        "--format",
        "csv",
    ]);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("queue,rank,"));
}

#[test]
fn queue_thresholds_come_from_the_policy_file() {
    let (default, _) = demo_queues();
    let dir = tempfile::tempdir().unwrap();
    let policy =
        std::fs::read_to_string(crate::util::repo_root().join("data/policy.toml")).unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(
        &path,
        policy
            .replace("high_risk_pd = \"0.50\"", "high_risk_pd = \"0.99\"")
            .replace("final_demand_dpd = 90", "final_demand_dpd = 60")
            .replace(
                "promise_hold_coverage = \"0.90\"",
                "promise_hold_coverage = \"0.10\"",
            ),
    )
    .unwrap();
    let other = run_ok(&[
        "queue",
        "--policy",
        path.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    let count = |text: &str, f: &dyn Fn(&crate::util::Record) -> bool| {
        Table::parse(text).records().filter(|r| f(r)).count()
    };
    let high_risk = |r: &crate::util::Record| r.get("why_here").contains("high risk");
    assert!(count(&other, &high_risk) < count(&default, &high_risk));
    let escalated = |r: &crate::util::Record| r.get("queue") == "escalation";
    assert!(count(&other, &escalated) > count(&default, &escalated));
    let held = |r: &crate::util::Record| r.get("queue") == "held";
    assert!(count(&other, &held) > count(&default, &held));
    for (broken, expected) in [
        (
            policy.replace("call_pd = \"0.10\"", "call_pd = \"2\""),
            "`queues.call_pd`: 2 is not in (0, 1]",
        ),
        (
            policy.replace("agency_dpd = 120", "agency_dpd = 60"),
            "`queues.agency_dpd`: 60 is below final_demand_dpd 90",
        ),
        (
            policy.replace(
                "promise_hold_coverage_after_broken = \"1.00\"",
                "promise_hold_coverage_after_broken = \"0.5\"",
            ),
            "`queues.promise_hold_coverage_after_broken`: 0.5 is below promise_hold_coverage 0.90",
        ),
    ] {
        std::fs::write(&path, broken).unwrap();
        let err = run_err(&["queue", "--policy", path.to_str().unwrap()]);
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn warehouses_without_contact_columns_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    generate_small(&w, 80, 4, 5);
    for entry in std::fs::read_dir(w.join("customers")).unwrap() {
        let partition = entry.unwrap().path();
        for file in std::fs::read_dir(&partition).unwrap() {
            let file = file.unwrap().path();
            let relative = file.strip_prefix(&w).unwrap().to_str().unwrap().to_string();
            rewrite(
                &w,
                &relative,
                "SELECT customer_id, name, segment, region, currency, credit_limit, \
                 payment_terms_days, collector_id, customer_since, high_profile, fraud_suspected FROM t",
            );
        }
    }
    let t = Table::parse(&run_ok(&[
        "-w",
        w.to_str().unwrap(),
        "queue",
        "--format",
        "csv",
    ]));
    assert!(!t.rows.is_empty());
    assert!(t.column("contact_phone").iter().all(|p| p.is_empty()));
    assert!(t.column("name").iter().all(|n| !n.is_empty()));
}
