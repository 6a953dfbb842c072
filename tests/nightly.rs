//! `arq nightly`: the whole job on the demo warehouse and on broken inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use crate::util::{
    Table, arq, assert_same_tree, csv_rows, files_under, generate_small, repo_root, rewrite,
    run_err, run_ok,
};

fn nightly(out: &Path) -> String {
    run_ok(&["nightly", "--quiet", "--out", out.to_str().unwrap()])
}

/// A manifest without its timings (the one part that differs between runs).
fn manifest_without_timings(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let timings = value
        .as_object_mut()
        .unwrap()
        .remove("timings_ms")
        .expect("timings in the manifest");
    assert!(timings["total"].as_u64().is_some(), "{timings}");
    value
}

/// Every file of the run but the manifest, byte for byte, plus the manifest without
/// timings.
fn assert_same_run(a: &Path, b: &Path) {
    assert_eq!(files_under(a), files_under(b));
    for f in files_under(a)
        .iter()
        .filter(|f| *f != Path::new("manifest.json"))
    {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{} differs",
            f.display()
        );
    }
    assert_eq!(manifest_without_timings(a), manifest_without_timings(b));
}

fn read_csv(dir: &Path, name: &str) -> Vec<Vec<String>> {
    csv_rows(&std::fs::read_to_string(dir.join(name)).unwrap())
}

#[test]
fn the_nightly_job_writes_every_list_once_and_reruns_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let summary = nightly(&out);
    let run = out.join("2026-10-31");
    assert!(
        summary.starts_with("nightly 2026-10-31: 2000 customers, "),
        "{summary}"
    );
    for line in [
        "K0001 ",
        "held ",
        "dispute ",
        "escalation ",
        "carry_over ",
        "credit limits: ",
        "(no earlier night in the output folder to compare with)",
    ] {
        assert!(summary.contains(line), "{line}: {summary}");
    }

    // The combined list is every eligible customer once; the queue files split it
    // without loss or overlap.
    let all = Table::parse(&std::fs::read_to_string(run.join("queues.csv")).unwrap());
    let ids: BTreeSet<&str> = all.column("customer_id").into_iter().collect();
    assert_eq!(ids.len(), all.rows.len(), "a customer twice in queues.csv");
    let mut parts: Vec<String> = Vec::new();
    for name in ["supervisors", "dispute", "escalation", "held", "carry_over"] {
        let t = table(&run, &format!("{name}.csv"));
        parts.extend(t.column("customer_id").iter().map(|s| s.to_string()));
    }
    // Collectors' own calls (queue = their id) complete the partition.
    for r in all.records().filter(|r| r.get("queue").starts_with('K')) {
        parts.push(r.get("customer_id").to_string());
    }
    parts.sort();
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(parts, expected, "the lists do not partition queues.csv");

    // The night judges the year's promises once for its queues and its limits (a table
    // kept for both, over the settlement table); `arq queue` and `arq limits` judge them
    // in their own queries, from the payments: the same lists, byte for byte, with broken
    // promises among them.
    assert_eq!(
        std::fs::read_to_string(run.join("queues.csv")).unwrap(),
        run_ok(&["queue", "--format", "csv"])
    );
    assert_eq!(
        std::fs::read_to_string(run.join("limits.csv")).unwrap(),
        run_ok(&["limits", "--format", "csv"])
    );
    assert!(
        all.column("broken_promises_12m")
            .iter()
            .any(|n| n.parse::<u32>().unwrap() > 0),
        "the demo has broken promises"
    );

    // One list per person (collectors and supervisors, CSV and Parquet): everything
    // assigned to them, within capacity, and the overdue invoices behind it.
    let capacity: BTreeMap<String, usize> = csv_rows(&run_ok(&[
        "sql",
        "SELECT collector_id, daily_capacity FROM collectors",
        "--format",
        "csv",
    ]))
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    let items_of: BTreeMap<String, usize> = csv_rows(&run_ok(&[
        "sql",
        "SELECT customer_id, count(*) FROM open_items_latest \
         WHERE days_past_due(due_date, snapshot_date) > 0 GROUP BY customer_id",
        "--format",
        "csv",
    ]))
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    for (id, cap) in &capacity {
        let list = table(&run, &format!("call_lists/{id}.csv"));
        assert!(!list.rows.is_empty() && list.rows.len() <= *cap, "{id}");
        assert!(list.column("assigned_to").iter().all(|a| a == id), "{id}");
        assert!(run.join(format!("call_lists/{id}.parquet")).is_file());
        // The items file holds exactly the overdue invoices of the list's customers, in
        // the list's order.
        let items = table(&run, &format!("call_lists/{id}_items.csv"));
        let customers = list.column("customer_id");
        let expected: usize = customers.iter().map(|c| items_of[*c]).sum();
        assert_eq!(items.rows.len(), expected, "{id}");
        let mut order: Vec<&str> = items.column("customer_id");
        order.dedup();
        assert_eq!(order, customers, "{id}");
        assert!(items.records().all(|r| r.num("days_past_due") > 0.0));
        // A customer's items oldest due first, then by invoice (the query does not sort
        // them: the night does).
        let keys: Vec<_> = items
            .records()
            .map(|r| (r.get("customer_id"), r.get("due_date"), r.get("invoice_id")))
            .collect();
        for pair in keys.windows(2) {
            let ((c1, d1, i1), (c2, d2, i2)) = (pair[0], pair[1]);
            assert!(
                c1 != c2 || (d1, i1) < (d2, i2),
                "{id}: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    assert_eq!(
        table(&run, "limits.csv").rows.len(),
        2000,
        "a limit for every customer"
    );
    assert!(!table(&run, "limits_summary.csv").rows.is_empty());
    assert_eq!(table(&run, "scores.csv").rows.len(), 2000);

    // The manifest names inputs, versions and outputs, and its counts are the files'.
    let manifest = manifest_without_timings(&run);
    assert_eq!(manifest["as_of"], "2026-10-31");
    assert_eq!(manifest["policy"]["version"], "arq-default-2026.11");
    assert_eq!(
        manifest["warehouse"]["fingerprint"].as_str().unwrap().len(),
        16
    );
    assert_eq!(
        manifest["eligible"].as_u64().unwrap() as usize,
        all.rows.len()
    );
    let outputs = manifest["outputs"].as_array().unwrap();
    assert_eq!(outputs.len() + 1, files_under(&run).len());
    for o in outputs {
        let file = run.join(o["file"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            o["bytes"].as_u64().unwrap()
        );
    }
    // The carry-over counts of the manifest, the files and `arq queue` agree.
    for queue in ["held", "carry_over", "supervisor:carry_over", "escalation"] {
        let in_manifest = manifest["queues"][queue]["accounts"].as_u64().unwrap_or(0) as usize;
        let in_file = all.column("queue").iter().filter(|q| **q == queue).count();
        let from_command =
            Table::parse(&run_ok(&["queue", "--collector", queue, "--format", "csv"]));
        assert_eq!(in_manifest, in_file, "{queue}");
        assert_eq!(from_command.rows.len(), in_file, "{queue}");
    }
    // Money is reported per currency, never added across currencies: each currency's
    // overdue is the sum of that currency's rows.
    let cents = |s: &str| -> i128 { s.replace('.', "").parse().unwrap() };
    let overdue = manifest["overdue"].as_object().unwrap();
    assert!(
        overdue.len() >= 2,
        "the demo has several currencies: {overdue:?}"
    );
    for (currency, amount) in overdue {
        let rows: i128 = all
            .records()
            .filter(|r| r.get("currency") == currency)
            .map(|r| cents(r.get("overdue")))
            .sum();
        assert_eq!(rows, cents(amount.as_str().unwrap()), "{currency}");
    }

    // The same inputs give the same bytes; the timings are the only difference.
    let again = tmp.path().join("again");
    nightly(&again);
    assert_same_run(&run, &again.join("2026-10-31"));
    // A rerun into the same folder replaces that night's outputs as a whole.
    nightly(&out);
    assert_same_run(&run, &again.join("2026-10-31"));
    assert_eq!(entries(&out), ["2026-10-31"], "no leftovers");
}

/// The entries of an output folder but the settlement table the job keeps there.
fn entries(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != arq::settlement::FOLDER)
        .collect();
    names.sort();
    names
}

fn table(dir: &Path, name: &str) -> Table {
    Table::parse(&std::fs::read_to_string(dir.join(name)).unwrap())
}

#[test]
fn tonight_is_compared_with_the_previous_night() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let dir = out.to_str().unwrap();
    run_ok(&["--as-of", "2026-09-30", "nightly", "--quiet", "--out", dir]);
    let summary = run_ok(&["nightly", "--quiet", "--out", dir]);
    assert!(
        summary.contains(
            "(new, resolved and rolled into a worse aging bucket since the night of 2026-09-30)"
        ),
        "{summary}"
    );
    let before = table(&out.join("2026-09-30"), "queues.csv");
    let now = table(&out.join("2026-10-31"), "queues.csv");
    let then: BTreeMap<&str, &str> = before
        .records()
        .map(|r| (r.get("customer_id"), r.get("queue")))
        .collect();
    let tonight: BTreeSet<&str> = now.column("customer_id").into_iter().collect();
    let manifest = manifest_without_timings(&out.join("2026-10-31"));
    assert_eq!(manifest["compared_with"], "2026-09-30");
    let changes = manifest["changes"].as_object().unwrap();
    let total = |key: &str| -> u64 {
        changes
            .values()
            .flat_map(|cs| cs.as_object().unwrap().values())
            .map(|c| c[key].as_u64().unwrap())
            .sum()
    };
    let new = tonight.iter().filter(|id| !then.contains_key(**id)).count() as u64;
    let resolved = then.keys().filter(|id| !tonight.contains(**id)).count() as u64;
    assert_eq!((total("new"), total("resolved")), (new, resolved));
    assert!(new > 0 && resolved > 0 && total("rolled_worse") > 0);
    // The credit review read the previous night's scores instead of scoring that snapshot
    // again: the limits are the same bytes as a run that scored it.
    let alone = tmp.path().join("alone");
    nightly(&alone);
    let limits = |dir: &Path| std::fs::read(dir.join("2026-10-31/limits.csv")).unwrap();
    assert!(limits(&out) == limits(&alone), "the limits differ");
    assert_eq!(
        manifest["previous_scores"],
        "read from the previous night's outputs"
    );
    let alone = manifest_without_timings(&alone.join("2026-10-31"));
    assert_eq!(alone["previous_scores"], "scored");
}

/// A policy that changes the queues and limits, so a run with it would change files.
fn stricter_policy(dir: &Path) -> std::path::PathBuf {
    let policy = std::fs::read_to_string(repo_root().join("data/policy.toml")).unwrap();
    let path = dir.join("policy.toml");
    std::fs::write(
        &path,
        policy.replace("high_risk_pd = \"0.50\"", "high_risk_pd = \"0.99\""),
    )
    .unwrap();
    path
}

fn nightly_with(out: &Path, policy: &Path, env: (&str, &str)) -> std::process::Child {
    arq()
        .args([
            "nightly",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ])
        .env(env.0, env.1)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_failed_or_killed_run_leaves_the_previous_outputs_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    nightly(&out);
    let before = tmp.path().join("before");
    copy_tree(&out, &before);
    let policy = stricter_policy(tmp.path());

    // A failure after 5 of the files: exit 1, nothing changed, nothing left behind.
    let failed: Output = nightly_with(&out, &policy, ("ARQ_NIGHTLY_FAIL_AFTER_FILES", "5"))
        .wait_with_output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("failure injected after 5 output files"),
        "{stderr}"
    );
    assert_same_tree(&before.join("2026-10-31"), &out.join("2026-10-31"));
    assert_eq!(entries(&out), ["2026-10-31"], "no leftovers");
    // The settlement table was up to date: the failed night left it as it was.
    assert_same_tree(&before.join("_settlement"), &out.join("_settlement"));

    // Killed while writing: the earlier outputs are untouched.
    let mut child = nightly_with(&out, &policy, ("ARQ_NIGHTLY_PAUSE_AFTER_FILES", "3"));
    let staging_has_files = || {
        std::fs::read_dir(&out).unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".2026-10-31.partial-")
                && files_under(&e.path()).len() >= 3
        })
    };
    let waited = std::time::Instant::now();
    while !staging_has_files() {
        assert!(
            waited.elapsed().as_secs() < 120,
            "the paused run never wrote its files"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_same_tree(&before.join("2026-10-31"), &out.join("2026-10-31"));
    assert!(
        entries(&out).len() == 2,
        "the killed run's staging folder is still there"
    );

    // The next run cleans up after the killed one and replaces the outputs.
    let child = nightly_with(&out, &policy, ("ARQ_UNUSED", ""));
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(entries(&out), ["2026-10-31"]);
    let queues = read_csv(&out.join("2026-10-31"), "queues.csv");
    let before_queues = read_csv(&before.join("2026-10-31"), "queues.csv");
    assert_ne!(
        queues, before_queues,
        "the stricter policy's outputs are in place"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    for f in files_under(from) {
        let target = to.join(&f);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&f), target).unwrap();
    }
}

/// A small generated warehouse with one edit to its newest open items.
fn broken_warehouse(select: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    generate_small(&w, 60, 3, 5);
    rewrite(
        &w,
        "open_items/snapshot_date=2026-10-31/part-00000.parquet",
        select,
    );
    let out = dir.path().join("out");
    let err = run_err(&[
        "--warehouse",
        w.to_str().unwrap(),
        "nightly",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!out.join("2026-10-31").exists(), "no output from bad input");
    (dir, err)
}

const COLUMNS: &str = "invoice_id, customer_id, invoice_date, due_date, currency, amount, \
                       open_amount, disputed, promise_date, promise_amount";

#[test]
fn bad_rows_are_refused_naming_table_file_row_and_column() {
    let (_d, err) = broken_warehouse(&format!(
        "SELECT {COLUMNS} FROM t UNION ALL SELECT * FROM (SELECT {COLUMNS} FROM t ORDER BY invoice_id LIMIT 1)"
    ));
    assert!(
        err.contains(
            "table `open_items`, file open_items/snapshot_date=2026-10-31/part-00000.parquet: row "
        ) && err.contains("column invoice_id: ")
            && err.contains("appears twice in the snapshot"),
        "{err}"
    );

    let (_d, err) = broken_warehouse(&format!(
        "SELECT {} FROM t",
        COLUMNS.replace(
            "open_amount,",
            "CASE WHEN row_number() OVER (ORDER BY invoice_id) = 2 \
             THEN CAST(amount * 2 AS DECIMAL(18, 2)) ELSE open_amount END AS open_amount,"
        )
    ));
    assert!(
        err.contains("column open_amount: ") && err.contains("is more than the invoice amount"),
        "{err}"
    );

    let (_d, err) = broken_warehouse(&format!(
        "SELECT {} FROM t",
        COLUMNS.replace(
            "customer_id,",
            "CASE WHEN row_number() OVER (ORDER BY invoice_id) = 1 THEN 'C9999999' \
             ELSE customer_id END AS customer_id,"
        )
    ));
    assert!(
        err.contains("column customer_id: C9999999")
            && err.contains("is not in customers of the same snapshot"),
        "{err}"
    );
}
