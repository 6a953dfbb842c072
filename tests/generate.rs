//! `arq generate`: determinism, internal consistency, safety of existing data.

use crate::util::{
    assert_same_tree, files_under, generate_small, run, run_err, run_ok, run_usage_err,
};

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    generate_small(&a, 300, 4, 9);
    generate_small(&b, 300, 4, 9);
    generate_small(&c, 300, 4, 10);
    assert_same_tree(&a, &b);
    let file = "invoices/part-00000.parquet";
    assert_ne!(
        std::fs::read(a.join(file)).unwrap(),
        std::fs::read(c.join(file)).unwrap()
    );
}

/// Runs SQL over `warehouse` and returns the single value of a one-row, one-column CSV.
fn scalar(warehouse: &std::path::Path, sql: &str) -> String {
    let out = run_ok(&[
        "--warehouse",
        warehouse.to_str().unwrap(),
        "sql",
        "--format",
        "csv",
        sql,
    ]);
    out.lines().nth(1).unwrap_or_default().to_string()
}

#[test]
fn snapshots_reconcile_with_invoices_payments_and_write_offs() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    generate_small(&w, 400, 6, 5);

    // Recompute every snapshot from the event tables: an invoice issued by the snapshot
    // date is open for amount − payments − write-offs up to that date. The snapshot must
    // hold exactly the invoices with a balance, with exactly that balance, to the cent.
    let disagreements = scalar(
        &w,
        "WITH s AS (SELECT DISTINCT snapshot_date FROM customers),
              paid AS (SELECT s.snapshot_date, p.invoice_id, sum(p.amount) AS paid
                       FROM s JOIN payments p ON p.payment_date <= s.snapshot_date GROUP BY 1, 2),
              written AS (SELECT s.snapshot_date, w.invoice_id, sum(w.amount) AS written
                          FROM s JOIN write_offs w ON w.write_off_date <= s.snapshot_date GROUP BY 1, 2),
              expected AS (
                SELECT s.snapshot_date, i.invoice_id, i.customer_id, i.amount, i.due_date,
                       i.amount - coalesce(paid.paid, 0) - coalesce(written.written, 0) AS open_amount
                FROM s JOIN invoices i ON i.invoice_date <= s.snapshot_date
                LEFT JOIN paid ON paid.snapshot_date = s.snapshot_date AND paid.invoice_id = i.invoice_id
                LEFT JOIN written ON written.snapshot_date = s.snapshot_date AND written.invoice_id = i.invoice_id)
         SELECT count(*) FROM (SELECT * FROM expected WHERE open_amount <> 0) e
         FULL OUTER JOIN open_items o
           ON o.snapshot_date = e.snapshot_date AND o.invoice_id = e.invoice_id
         WHERE e.invoice_id IS NULL OR o.invoice_id IS NULL
            OR o.open_amount <> e.open_amount OR o.amount <> e.amount
            OR o.due_date <> e.due_date OR o.customer_id <> e.customer_id",
    );
    assert_eq!(disagreements, "0");
    // The check is not vacuous: there are open items in every snapshot.
    assert_eq!(
        scalar(&w, "SELECT count(DISTINCT snapshot_date) FROM open_items"),
        "6"
    );

    let bad_rows = scalar(
        &w,
        "SELECT count(*) FROM open_items
         WHERE open_amount <= 0 OR open_amount > amount OR due_date < invoice_date",
    );
    assert_eq!(bad_rows, "0");

    let duplicate_items = scalar(
        &w,
        "SELECT count(*) FROM (SELECT snapshot_date, invoice_id FROM open_items
                               GROUP BY 1, 2 HAVING count(*) > 1)",
    );
    assert_eq!(duplicate_items, "0");

    // Payments and write-offs never exceed the invoice.
    let overpaid = scalar(
        &w,
        "WITH settled AS (
            SELECT invoice_id, sum(amount) AS settled FROM (
                SELECT invoice_id, amount FROM payments
                UNION ALL SELECT invoice_id, amount FROM write_offs) GROUP BY invoice_id)
         SELECT count(*) FROM invoices i JOIN settled USING (invoice_id) WHERE settled > i.amount",
    );
    assert_eq!(overpaid, "0");

    // Every open item's customer is in that snapshot's customers.
    let orphans = scalar(
        &w,
        "SELECT count(*) FROM open_items o LEFT JOIN customers c USING (snapshot_date, customer_id)
         WHERE c.customer_id IS NULL",
    );
    assert_eq!(orphans, "0");
}

#[test]
fn the_data_has_the_behaviour_a_model_needs() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    generate_small(&w, 1000, 6, 11);
    let count = |sql: &str| scalar(&w, sql).parse::<u64>().unwrap();
    // All four segments, several currencies.
    assert_eq!(
        count("SELECT count(DISTINCT segment) FROM customers_latest"),
        4
    );
    assert!(count("SELECT count(DISTINCT currency) FROM customers_latest") >= 3);
    // Delinquency at every depth, disputes, promises, write-offs of both kinds.
    assert!(
        count(
            "SELECT count(*) FROM open_items_latest WHERE days_past_due(due_date, snapshot_date) > 90"
        ) > 0
    );
    assert!(count("SELECT count(*) FROM open_items_latest WHERE snapshot_date <= due_date") > 0);
    assert!(count("SELECT count(*) FROM open_items WHERE disputed") > 0);
    assert!(count("SELECT count(*) FROM open_items WHERE promise_date IS NOT NULL") > 0);
    assert_eq!(count("SELECT count(DISTINCT reason) FROM write_offs"), 2);
    for kind in ["call", "email", "letter", "promise", "dispute", "note"] {
        assert!(
            count(&format!(
                "SELECT count(*) FROM activities WHERE kind = '{kind}'"
            )) > 0,
            "{kind}"
        );
    }
    // Both roles, and collectors cover every segment.
    assert_eq!(count("SELECT count(DISTINCT role) FROM collectors"), 2);
    assert_eq!(
        count(
            "SELECT count(DISTINCT s) FROM (SELECT unnest(segments) AS s FROM collectors WHERE role = 'collector')"
        ),
        4
    );
    // New customers join during the window (starter limits need them).
    assert!(
        count("SELECT count(*) FROM customers_latest WHERE customer_since > DATE '2026-05-01'") > 0
    );
    // Some customers get worse (what the model's label is about): 90+ DPD now, at most
    // 30 DPD on every item a quarter earlier.
    assert!(
        count(
            "SELECT count(*) FROM (
               SELECT customer_id FROM open_items WHERE snapshot_date = DATE '2026-10-31'
                 AND days_past_due(due_date, snapshot_date) > 90
               EXCEPT
               SELECT customer_id FROM open_items WHERE snapshot_date = DATE '2026-07-31'
                 AND days_past_due(due_date, snapshot_date) > 30)"
        ) > 0
    );
}

#[test]
fn an_existing_folder_is_never_touched_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    std::fs::create_dir(&w).unwrap();
    std::fs::write(w.join("keep.txt"), "precious").unwrap();
    let e = run_err(&[
        "generate",
        "--quiet",
        "--out",
        w.to_str().unwrap(),
        "--customers",
        "10",
    ]);
    assert!(
        e.contains("exists and is not empty") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(w.join("keep.txt")).unwrap(),
        "precious"
    );
    // Nothing is left beside it either.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    run_ok(&[
        "generate",
        "--quiet",
        "--out",
        w.to_str().unwrap(),
        "--customers",
        "10",
        "--months",
        "2",
        "--force",
    ]);
    assert!(!w.join("keep.txt").exists());
    assert!(files_under(&w).iter().any(|f| f.starts_with("open_items")));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn bad_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    let out = w.to_str().unwrap();
    let e = run_usage_err(&["generate", "--out", out, "--end", "2026-10-30"]);
    assert!(e.contains("not the last day of a month"), "{e}");
    let e = run_usage_err(&["generate", "--out", out, "--customers", "0"]);
    assert!(e.contains("--customers"), "{e}");
    let e = run_usage_err(&["generate", "--out", out, "--months", "0"]);
    assert!(e.contains("--months"), "{e}");
    // Bounded before anything is allocated or written (memory stays bounded).
    let e = run_usage_err(&["generate", "--out", out, "--customers", "99999999999999"]);
    assert!(
        e.contains("--customers 99999999999999 is out of range: from 1 to 100000000"),
        "{e}"
    );
    let e = run_usage_err(&["generate", "--out", out, "--months", "601"]);
    assert!(e.contains("--months 601 is out of range"), "{e}");
    assert!(!w.exists());
    // clap rejects what is not a number (usage error, exit 2).
    assert_eq!(
        run(&["generate", "--out", out, "--customers", "many"])
            .status
            .code(),
        Some(2)
    );
}
