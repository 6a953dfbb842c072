//! `arq limits`: credit-limit recommendations from the default model and policy, the
//! credit desk's totals, filters, reviews, policy comparisons and applications.

use std::collections::BTreeMap;

use crate::util::{Table, repo_root, run_err, run_ok, run_usage_err};

fn demo_limits(extra: &[&str]) -> Table {
    let mut args = vec!["limits", "--format", "csv"];
    args.extend_from_slice(extra);
    Table::parse(&run_ok(&args))
}

#[test]
fn every_customer_gets_a_recommendation_within_the_policy() {
    let csv = run_ok(&["limits", "--format", "csv"]);
    assert_eq!(
        csv.lines().next().unwrap(),
        "customer_id,name,snapshot_date,currency,current_limit,recommended_limit,action,exposure,\
         over_limit,exposure_above_recommended,implication,risk_class,previous_class,pd,\
         risk_reasons,reasons,last_review,review_due,review_trigger,policy_version"
    );
    let t = Table::parse(&csv);
    assert_eq!(t.rows.len(), 2000);
    let mut actions = std::collections::BTreeSet::new();
    for r in t.records() {
        let recommended = r.num("recommended_limit");
        let action = r.get("action");
        actions.insert(action.to_string());
        // Money keeps two decimals.
        let text = r.get("recommended_limit");
        assert!(
            text.contains('.') && text.split('.').nth(1).unwrap().len() == 2,
            "{r:?}"
        );
        match (action, r.get("risk_class")) {
            ("hold", _) | (_, "E") => assert_eq!(recommended, 0.0, "{r:?}"),
            _ => {
                assert!((1000.0..=500000.0).contains(&recommended), "{r:?}");
                assert_eq!(recommended % 500.0, 0.0, "{r:?}");
            }
        }
        let (current, exposure) = (r.num("current_limit"), r.num("exposure"));
        assert_eq!(r.get("over_limit") == "true", exposure > current, "{r:?}");
        // Exposure above the recommended limit is flagged with what it implies.
        let above = exposure > recommended;
        assert_eq!(
            r.get("exposure_above_recommended") == "true",
            above,
            "{r:?}"
        );
        assert_eq!(
            r.get("implication").starts_with("order block"),
            above,
            "{r:?}"
        );
        assert_eq!(r.get("policy_version"), "arq-default-2026.11");
        assert!(!r.get("reasons").is_empty() && !r.get("name").is_empty());
        assert_eq!(
            r.get("review_due") == "true",
            !r.get("review_trigger").is_empty(),
            "{r:?}"
        );
    }
    for a in ["increase", "decrease", "hold"] {
        assert!(actions.contains(a), "no {a} in {actions:?}");
    }
    // The model's reasons say why the PD is what it is.
    assert!(
        t.column("risk_reasons")
            .iter()
            .filter(|r| !r.is_empty())
            .count()
            > 1000
    );
    // Same inputs, same bytes.
    assert_eq!(csv, run_ok(&["limits", "--format", "csv"]));
}

#[test]
fn the_summary_totals_equal_the_rows() {
    let rows = demo_limits(&[]);
    let summary = demo_limits(&["--summary"]);
    assert_eq!(
        summary.header,
        [
            "currency",
            "risk_class",
            "action",
            "customers",
            "current_limits",
            "recommended_limits",
            "exposure",
            "over_limit",
            "exposure_above_recommended",
            "review_due"
        ]
    );
    // In cents, per currency (never across currencies) and per currency, class and action.
    let cents = |s: &str| -> i64 { (s.parse::<f64>().unwrap() * 100.0).round() as i64 };
    let mut expected: BTreeMap<(String, String, String), [i64; 7]> = BTreeMap::new();
    for r in rows.records() {
        let keys = [
            (r.get("currency"), r.get("risk_class"), r.get("action")),
            (r.get("currency"), "all", "all"),
        ];
        for (c, k, a) in keys {
            let t = expected.entry((c.into(), k.into(), a.into())).or_default();
            t[0] += 1;
            t[1] += cents(r.get("current_limit"));
            t[2] += cents(r.get("recommended_limit"));
            t[3] += cents(r.get("exposure"));
            t[4] += (r.get("over_limit") == "true") as i64;
            t[5] += (r.get("exposure_above_recommended") == "true") as i64;
            t[6] += (r.get("review_due") == "true") as i64;
        }
    }
    let got: BTreeMap<(String, String, String), [i64; 7]> = summary
        .records()
        .map(|r| {
            (
                (
                    r.get("currency").into(),
                    r.get("risk_class").into(),
                    r.get("action").into(),
                ),
                [
                    r.num("customers") as i64,
                    cents(r.get("current_limits")),
                    cents(r.get("recommended_limits")),
                    cents(r.get("exposure")),
                    r.num("over_limit") as i64,
                    r.num("exposure_above_recommended") as i64,
                    r.num("review_due") as i64,
                ],
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert!(
        summary.column("currency").contains(&"EUR") && summary.column("currency").contains(&"USD")
    );
    // With --out the rows go to the file and the totals to the terminal.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("limits.csv");
    let printed = run_ok(&["limits", "--out", out.to_str().unwrap()]);
    assert!(
        printed.contains("recommended_limits") && printed.contains("| all "),
        "{printed}"
    );
    assert_eq!(
        Table::parse(&std::fs::read_to_string(&out).unwrap())
            .rows
            .len(),
        2000
    );
}

#[test]
fn filters_select_what_the_credit_officer_asks_for() {
    let hold = demo_limits(&["--action", "hold"]);
    assert!(!hold.rows.is_empty() && hold.column("action").iter().all(|a| *a == "hold"));
    let ab = demo_limits(&["--class", "A,B"]);
    assert!(
        ab.column("risk_class")
            .iter()
            .all(|c| *c == "A" || *c == "B")
    );
    let over = demo_limits(&["--over-limit"]);
    assert!(!over.rows.is_empty() && over.column("over_limit").iter().all(|o| *o == "true"));
    let above = demo_limits(&["--above-recommended", "--class", "A,B,C,D"]);
    assert!(!above.rows.is_empty());
    assert!(
        above
            .records()
            .all(|r| r.num("exposure") > r.num("recommended_limit"))
    );
    let due = demo_limits(&["--due-for-review"]);
    assert!(!due.rows.is_empty() && due.rows.len() < 2000);
    let triggers = due.column("review_trigger");
    assert!(triggers.iter().all(|t| !t.is_empty()));
    for kind in ["periodic: ", "over the limit since", "class moved from"] {
        assert!(
            triggers.iter().any(|t| t.contains(kind)),
            "no `{kind}` trigger on the demo"
        );
    }
    let err = run_usage_err(&["limits", "--action", "raise"]);
    assert!(
        err.contains("--action raise: not one of decrease, hold, increase, keep"),
        "{err}"
    );
    let err = run_usage_err(&["limits", "--class", "Z"]);
    assert!(err.contains("--class Z: not one of A, B, C, D, E"), "{err}");
}

#[test]
fn a_policy_compared_with_itself_changes_nothing_and_a_change_shows() {
    let policy = repo_root().join("data/policy.toml");
    let same = demo_limits(&["--compare-policy", policy.to_str().unwrap()]);
    assert_eq!(same.rows.len(), 2000);
    assert!(same.column("changed").iter().all(|c| *c == "false"));
    assert!(same.column("change").iter().all(|c| *c == "0.00"));
    let totals = demo_limits(&["--compare-policy", policy.to_str().unwrap(), "--summary"]);
    assert!(totals.column("changed").iter().all(|c| *c == "0"));
    // A stricter class A multiple lowers limits in class A only.
    let dir = tempfile::tempdir().unwrap();
    let stricter = dir.path().join("stricter.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &stricter,
        text.replace("multiple = \"3.0\"", "multiple = \"2.0\"")
            .replace(
                "version = \"arq-default-2026.11\"",
                "version = \"proposal-1\"",
            ),
    )
    .unwrap();
    let diff = demo_limits(&["--compare-policy", stricter.to_str().unwrap()]);
    let changed: Vec<_> = diff
        .records()
        .filter(|r| r.get("changed") == "true")
        .collect();
    assert!(!changed.is_empty());
    for r in &changed {
        assert_eq!(r.get("class_before"), "A", "{r:?}");
        assert!(r.num("limit_after") <= r.num("limit_before"), "{r:?}");
        assert_eq!(r.get("policy_after"), "proposal-1");
    }
    let totals = demo_limits(&["--compare-policy", stricter.to_str().unwrap(), "--summary"]);
    let cents = |s: &str| -> i64 { (s.parse::<f64>().unwrap() * 100.0).round() as i64 };
    for r in totals.records() {
        let change: i64 = diff
            .records()
            .filter(|d| d.get("currency") == r.get("currency"))
            .map(|d| cents(d.get("change")))
            .sum();
        assert_eq!(cents(r.get("change")), change, "{r:?}");
        assert!(change <= 0);
    }
}

#[test]
fn applications_are_decided_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("applications.csv");
    std::fs::write(
        &file,
        "application_id,name,segment,region,currency,requested_limit,external_rating,annual_revenue\n\
         A1,Acme Tools Ltd,enterprise,europe,EUR,80000.00,1,650000.00\n\
         A2,Beta Shop,small_business,uk,GBP,20000,,\n\
         A3,Gamma Corp,mid_market,north_america,USD,15000,10,\n\
         A4,Delta LLC,mid_market,north_america,USD,30000,8,900000\n",
    )
    .unwrap();
    // No warehouse and no model needed: prospective customers have no history.
    let t = Table::parse(&run_ok(&[
        "-w",
        "/nonexistent",
        "limits",
        "--applications",
        file.to_str().unwrap(),
        "--format",
        "csv",
    ]));
    let decided: Vec<(&str, &str, &str)> = t
        .records()
        .map(|r| (r.get("application_id"), r.get("decision"), r.get("limit")))
        .collect();
    assert_eq!(
        decided,
        [
            ("A1", "refer", "65000.00"),
            ("A2", "approve", "5000.00"),
            ("A3", "decline", "0.00"),
            ("A4", "refer", "30000.00"),
        ]
    );
    assert!(t.column("reasons").iter().all(|r| !r.is_empty()));
    // A bad cell names the file, the row and the column.
    std::fs::write(
        &file,
        "application_id,name,segment,region,currency,requested_limit\nA1,X,enterprise,europe,EUR,lots\n",
    )
    .unwrap();
    let err = run_err(&["limits", "--applications", file.to_str().unwrap()]);
    assert!(
        err.contains(
            "applications.csv: row 1, column requested_limit: `lots` is not a decimal amount"
        ),
        "{err}"
    );
}

#[test]
fn one_customer_and_policy_errors() {
    let one = run_ok(&["limits", "--customer", "C0000001", "--format", "csv"]);
    assert_eq!(one.lines().count(), 2, "{one}");
    assert!(one.lines().nth(1).unwrap().starts_with("C0000001,"));
    let err = run_err(&["limits", "--customer", "NOBODY"]);
    assert!(err.contains("no customer `NOBODY`"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let policy = std::fs::read_to_string(repo_root().join("data/policy.toml")).unwrap();
    for (broken, expected) in [
        (
            policy.replace("max_pd = \"0.05\"", "max_pd = \"0.01\""),
            "`classes[1].max_pd`",
        ),
        (
            policy.replace("multiple = \"2.0\"", "multiple = \"-1\""),
            "`classes[1].multiple`",
        ),
        (
            policy.replace("floor = \"1000.00\"", "floor = \"900000.00\""),
            "`floor`",
        ),
        (
            policy.replace("review_months = 24", "review_months = 0"),
            "`classes[0].review_months`",
        ),
        (
            policy.replace("over_limit_days = 30", "over_limit_days = -1"),
            "`review.over_limit_days`",
        ),
        (
            policy.replace("decline_classes = [\"E\"]", "decline_classes = [\"F\"]"),
            "`applications.decline_classes`: `\"F\"` is not a class of the policy",
        ),
    ] {
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, broken).unwrap();
        let err = run_err(&["limits", "--policy", path.to_str().unwrap()]);
        assert!(
            err.contains(expected) && err.contains("policy.toml"),
            "{err}"
        );
    }
}
