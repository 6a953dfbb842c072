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
