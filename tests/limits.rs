//! `arq limits`: credit-limit recommendations from the default model and policy.

use crate::util::{csv_rows, repo_root, run_err, run_ok};

#[test]
fn every_customer_gets_a_recommendation_within_the_policy() {
    let csv = run_ok(&["limits", "--format", "csv"]);
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "customer_id,snapshot_date,currency,current_limit,recommended_limit,action,exposure,\
         over_limit,risk_class,pd,reasons,policy_version"
    );
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), 2000);
    let mut actions = std::collections::BTreeSet::new();
    for row in &rows {
        let recommended: f64 = row[4].parse().unwrap();
        let action = row[5].as_str();
        actions.insert(action.to_string());
        let class = row[8].as_str();
        // Money keeps two decimals.
        assert!(
            row[4].contains('.') && row[4].split('.').nth(1).unwrap().len() == 2,
            "{row:?}"
        );
        match (action, class) {
            ("hold", _) | (_, "E") => assert_eq!(recommended, 0.0, "{row:?}"),
            _ => {
                assert!((1000.0..=500000.0).contains(&recommended), "{row:?}");
                assert_eq!(recommended % 500.0, 0.0, "{row:?}");
            }
        }
        let current: f64 = row[3].parse().unwrap();
        let exposure: f64 = row[6].parse().unwrap();
        assert_eq!(row[7] == "true", exposure > current, "{row:?}");
        assert_eq!(row[11], "arq-default-2026.11");
        assert!(!row[10].is_empty());
    }
    // The demo has customers of every kind.
    for a in ["increase", "decrease", "hold"] {
        assert!(actions.contains(a), "no {a} in {actions:?}");
    }
    // Same inputs, same bytes.
    assert_eq!(csv, run_ok(&["limits", "--format", "csv"]));
}

#[test]
fn one_customer_and_policy_errors() {
    let one = run_ok(&["limits", "--customer", "C0000001", "--format", "csv"]);
    assert_eq!(one.lines().count(), 2, "{one}");
    assert!(
        one.lines()
            .nth(1)
            .unwrap()
            .starts_with("C0000001,2026-10-31,")
    );
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
