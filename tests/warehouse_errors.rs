//! A broken warehouse is one clear line naming table, file and column; nothing panics.

use std::path::Path;

use crate::util::{generate_small, rewrite, run_err};

fn small_warehouse() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generate_small(&dir.path().join("w"), 40, 2, 1);
    dir
}

fn sql_err(warehouse: &Path) -> String {
    run_err(&[
        "--warehouse",
        warehouse.to_str().unwrap(),
        "sql",
        "SELECT 1",
    ])
}

#[test]
fn a_missing_warehouse_is_named() {
    let e = run_err(&["--warehouse", "/no/such/warehouse", "sql", "SELECT 1"]);
    assert!(e.contains("warehouse /no/such/warehouse"), "{e}");
}

#[test]
fn a_missing_table_is_named() {
    let dir = small_warehouse();
    let w = dir.path().join("w");
    std::fs::remove_dir_all(w.join("payments")).unwrap();
    let e = sql_err(&w);
    assert!(
        e.contains("table `payments`") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn a_missing_column_names_table_file_and_column() {
    let dir = small_warehouse();
    let w = dir.path().join("w");
    rewrite(
        &w,
        "invoices/part-00000.parquet",
        "SELECT invoice_id, customer_id, invoice_date, due_date, currency FROM t",
    );
    let e = sql_err(&w);
    assert!(e.contains("table `invoices`"), "{e}");
    assert!(e.contains("invoices/part-00000.parquet"), "{e}");
    assert!(e.contains("column `amount` is missing"), "{e}");
}

#[test]
fn money_as_float_is_a_wrong_type() {
    let dir = small_warehouse();
    let w = dir.path().join("w");
    rewrite(
        &w,
        "open_items/snapshot_date=2026-10-31/part-00000.parquet",
        "SELECT invoice_id, customer_id, invoice_date, due_date, currency, amount, \
         CAST(open_amount AS DOUBLE) AS open_amount, disputed, promise_date, promise_amount FROM t",
    );
    let e = sql_err(&w);
    assert!(e.contains("table `open_items`"), "{e}");
    assert!(
        e.contains("snapshot_date=2026-10-31/part-00000.parquet"),
        "{e}"
    );
    assert!(
        e.contains(
            "column `open_amount` has type Float64, the contract requires Decimal128(18, 2)"
        ),
        "{e}"
    );
}

#[test]
fn a_file_that_is_not_parquet_is_named() {
    let dir = small_warehouse();
    let w = dir.path().join("w");
    std::fs::write(w.join("collectors/part-00000.parquet"), b"not parquet").unwrap();
    let e = sql_err(&w);
    assert!(
        e.contains("table `collectors`") && e.contains("not a readable Parquet file"),
        "{e}"
    );
}

#[test]
fn a_stray_folder_in_a_snapshot_table_is_named() {
    let dir = small_warehouse();
    let w = dir.path().join("w");
    std::fs::create_dir(w.join("customers/2026-10-31")).unwrap();
    let e = sql_err(&w);
    assert!(
        e.contains("table `customers`") && e.contains("snapshot_date=YYYY-MM-DD"),
        "{e}"
    );
}

#[test]
fn snapshot_tables_must_agree_on_the_latest_date() {
    let dir = small_warehouse();
    let w = dir.path().join("w");
    std::fs::remove_dir_all(w.join("customers/snapshot_date=2026-10-31")).unwrap();
    let e = sql_err(&w);
    assert!(
        e.contains("`customers` has no snapshot for 2026-10-31"),
        "{e}"
    );
}

/// Replaces every Parquet file of a folder with one of the same schema and no rows.
fn empty_partition(dir: &Path) {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let schema = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .schema()
            .clone();
        let file = std::fs::File::create(&path).unwrap();
        ArrowWriter::try_new(file, schema, None)
            .unwrap()
            .close()
            .unwrap();
    }
}

#[test]
fn a_newer_customers_snapshot_is_an_incomplete_load_not_a_silent_fallback() {
    let dir = small_warehouse();
    let w = dir.path().join("w");
    let wh = w.to_str().unwrap();
    // Tonight's customers arrived, tonight's open items did not.
    let newer = w.join("customers/snapshot_date=2026-11-30");
    std::fs::create_dir(&newer).unwrap();
    for entry in std::fs::read_dir(w.join("customers/snapshot_date=2026-10-31")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, newer.join(path.file_name().unwrap())).unwrap();
    }
    for command in [
        &["sql", "SELECT 1"][..],
        &["queue"],
        &["score"],
        &["limits"],
    ] {
        let mut args = vec!["--warehouse", wh];
        args.extend_from_slice(command);
        let e = run_err(&args);
        assert!(
            e.contains("snapshot 2026-11-30 is incomplete")
                && e.contains("`open_items` has no snapshot for 2026-11-30")
                && e.contains("--as-of 2026-10-31"),
            "{command:?}: {e}"
        );
    }
    let out = dir.path().join("out");
    let e = run_err(&[
        "--warehouse",
        wh,
        "nightly",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("snapshot 2026-11-30 is incomplete"), "{e}");
    assert!(!out.join("2026-11-30").exists() && !out.join("2026-10-31").exists());

    // With the as-of date the error names, the views, the scores and the queues all read
    // that one snapshot.
    let as_of = ["--warehouse", wh, "--as-of", "2026-10-31"];
    let day = |args: &[&str]| -> Vec<String> {
        let mut all = as_of.to_vec();
        all.extend_from_slice(args);
        let text = crate::util::run_ok(&all);
        let mut days: Vec<String> = crate::util::csv_rows(&text)
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        days.dedup();
        days
    };
    let q = "SELECT DISTINCT snapshot_date FROM customers_latest \
             UNION SELECT DISTINCT snapshot_date FROM open_items_latest \
             UNION SELECT DISTINCT snapshot_date FROM risk_scores()";
    assert_eq!(day(&["sql", "--format", "csv", q]), ["2026-10-31"]);
    let scores = day(&[
        "sql",
        "--format",
        "csv",
        "SELECT snapshot_date FROM risk_scores()",
    ]);
    assert_eq!(scores, ["2026-10-31"]);
    let mut all = as_of.to_vec();
    all.extend_from_slice(&["score", "--format", "csv"]);
    let text = crate::util::run_ok(&all);
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|c| *c == "snapshot_date").unwrap();
    let rows = crate::util::csv_rows(&text);
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r[column] == "2026-10-31"), "{text}");
    let mut all = as_of.to_vec();
    all.extend_from_slice(&["queue", "--format", "csv"]);
    crate::util::run_ok(&all);
}

#[test]
fn an_empty_snapshot_is_an_error_never_the_previous_day_under_its_name() {
    let dir = small_warehouse();
    let w = dir.path().join("w");
    empty_partition(&w.join("customers/snapshot_date=2026-10-31"));
    empty_partition(&w.join("open_items/snapshot_date=2026-10-31"));
    let out = dir.path().join("out");
    let e = run_err(&[
        "--warehouse",
        w.to_str().unwrap(),
        "nightly",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        e.contains("table `customers`: snapshot 2026-10-31 has no rows"),
        "{e}"
    );
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().count() == 0);
}
