//! Bad input found by trying to break arq: each is refused with one line naming the
//! file, table, column and row, and nothing is written.

use std::path::{Path, PathBuf};

use crate::util::{demo, rewrite, run_err};

/// A copy of the demo warehouse.
fn demo_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w");
    copy_dir(&demo(), &w);
    (dir, w)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Every command that writes decisions refuses the warehouse with the same message, and
/// the nightly job writes nothing.
fn refused_everywhere(w: &Path, expected: &[&str]) {
    let wh = w.to_str().unwrap();
    let out = w.parent().unwrap().join("out");
    let o = out.to_str().unwrap();
    let file = w.parent().unwrap().join("q.csv");
    let f = file.to_str().unwrap();
    for command in [
        &["nightly", "-q", "--out", o][..],
        &["queue", "--out", f],
        &["limits", "--out", f],
        &["score", "--out", f],
    ] {
        let mut args = vec!["--warehouse", wh];
        args.extend_from_slice(command);
        let e = run_err(&args);
        for part in expected {
            assert!(e.contains(part), "{command:?}: `{part}` not in {e}");
        }
    }
    assert!(!out.exists(), "the nightly job wrote {}", out.display());
    assert!(!file.exists(), "a command wrote {}", file.display());
}

#[test]
fn an_open_item_in_another_currency_than_its_customer_is_refused() {
    let (_dir, w) = demo_copy();
    rewrite(
        &w,
        "open_items/snapshot_date=2026-10-31/part-00000.parquet",
        "SELECT invoice_id, customer_id, invoice_date, due_date, \
                CASE WHEN invoice_id = 'INV-0000002-0203' THEN 'JPY' ELSE currency END AS currency, \
                CASE WHEN invoice_id = 'INV-0000002-0203' THEN CAST(1000000.00 AS DECIMAL(18, 2)) ELSE amount END AS amount, \
                CASE WHEN invoice_id = 'INV-0000002-0203' THEN CAST(1000000.00 AS DECIMAL(18, 2)) ELSE open_amount END AS open_amount, \
                disputed, promise_date, promise_amount FROM t",
    );
    refused_everywhere(
        &w,
        &[
            "table `open_items`, file open_items/snapshot_date=2026-10-31/part-00000.parquet: row ",
            "column currency: JPY (invoice INV-0000002-0203) is not the currency of customer C0000002 (USD)",
        ],
    );
}

#[test]
fn a_collector_id_twice_is_refused_naming_both_rows() {
    let (_dir, w) = demo_copy();
    rewrite(
        &w,
        "collectors/part-00000.parquet",
        "SELECT CASE WHEN collector_id = 'K0002' THEN 'K0001' ELSE collector_id END AS collector_id, \
                name, role, daily_capacity, segments FROM t",
    );
    refused_everywhere(
        &w,
        &[
            "table `collectors`, file collectors/part-00000.parquet: row 2: column collector_id: \
             K0001 appears twice (also collectors/part-00000.parquet row 1)",
        ],
    );
}

#[test]
fn a_collector_id_that_cannot_name_a_file_is_refused_by_table_and_column() {
    let (_dir, w) = demo_copy();
    let long = "K".repeat(300);
    rewrite(
        &w,
        "collectors/part-00000.parquet",
        &format!(
            "SELECT CASE WHEN collector_id = 'K0002' THEN '{long}' ELSE collector_id END AS collector_id, \
                    name, role, daily_capacity, segments FROM t"
        ),
    );
    refused_everywhere(
        &w,
        &[
            "table `collectors`",
            "row 2: column collector_id: `KKKKKKKKKKKKKKKKKKKK...` is 300 characters long",
        ],
    );
}

#[test]
fn decision_commands_never_use_the_demo_silently() {
    let elsewhere = tempfile::tempdir().unwrap();
    for command in [&["nightly", "-q"][..], &["queue"], &["limits"], &["score"]] {
        let out = crate::util::arq()
            .current_dir(elsewhere.path())
            .args(command)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(
            stderr.starts_with("error: no warehouse: pass --warehouse DIR or set ARQ_WAREHOUSE"),
            "{command:?}: {stderr}"
        );
    }
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    // Told the warehouse, the same command runs and says what it read.
    let out = crate::util::arq()
        .current_dir(elsewhere.path())
        .env("ARQ_WAREHOUSE", demo())
        .args(["queue", "--collector", "K0001"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("queues from warehouse ")
            && stderr.contains("(snapshot 2026-10-31), model ")
            && stderr.contains("policy ")
            && stderr.contains("(version arq-default-2026.11)"),
        "{stderr}"
    );
}

#[test]
fn runaway_queries_fail_with_an_error_instead_of_exhausting_the_machine() {
    // Functions that allocate their whole result in one step are checked first.
    let e = run_err(&[
        "sql",
        "--memory-limit",
        "100MB",
        "SELECT repeat('x', 2147483647)",
    ]);
    assert!(
        e.contains("repeat: the call would take about 4.0 GiB, above the session's memory limit of 100.0 MiB"),
        "{e}"
    );
    // array_repeat's 16 GiB (32 GiB while it grows) is stopped before it allocates.
    let e = run_err(&[
        "sql",
        "--memory-limit",
        "8GB",
        "SELECT length(x) FROM (SELECT array_repeat(1, 2147483647) AS x)",
    ]);
    assert!(
        e.contains("array_repeat: the call would take about 32.0 GiB"),
        "{e}"
    );
    // Operators reserve memory in the pool: over the limit is an error.
    let e = run_err(&[
        "sql",
        "--memory-limit",
        "1KB",
        "SELECT customer_id, count(*) FROM open_items GROUP BY 1 ORDER BY 2 DESC LIMIT 2",
    ]);
    assert!(e.contains("Resources exhausted"), "{e}");
    // Below the limit, the same functions work.
    let out = crate::util::run_ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT length(repeat('ab', 1000)) AS n, lpad('x', 3, '-') AS p",
    ]);
    assert_eq!(out, "n,p\n2000,--x\n");
    // A limit that is no size is a usage error (clap's, exit code 2).
    let out = crate::util::run(&["sql", "--memory-limit", "lots", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`lots` is not a memory size"));
}
