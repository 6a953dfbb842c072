//! The invoice settlement table the nightly job keeps (`OUT/_settlement`, `arq settle`):
//! updated night after night from the files added to `invoices` and `payments`, it equals
//! the table rebuilt from scratch; the nights that read it write what the nights that
//! settle from the payments write.

use std::path::{Path, PathBuf};

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::*;

use crate::util::{assert_same_tree, demo, run_err, run_ok};

/// A copy of the demo warehouse whose `invoices` and `payments` are cut into one file per
/// period (dates up to each cut, then the rest); the files after the first are kept aside
/// in `held/` to be added night by night.
struct Split {
    _dir: tempfile::TempDir,
    warehouse: PathBuf,
    held: PathBuf,
}

const CUTS: [&str; 2] = ["2026-06-30", "2026-08-31"];

impl Split {
    fn new() -> Split {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = dir.path().join("wh");
        let held = dir.path().join("held");
        copy_dir(&demo(), &warehouse);
        for (table, date) in [("invoices", "invoice_date"), ("payments", "payment_date")] {
            let source = warehouse.join(table).join("part-00000.parquet");
            let whole = std::fs::read(&source).unwrap();
            let original = dir.path().join(format!("{table}.parquet"));
            std::fs::write(&original, whole).unwrap();
            let mut bounds: Vec<(Option<&str>, Option<&str>)> = Vec::new();
            let mut from = None;
            for cut in CUTS {
                bounds.push((from, Some(cut)));
                from = Some(cut);
            }
            bounds.push((from, None));
            for (k, (after, upto)) in bounds.iter().enumerate() {
                let mut conditions = vec!["TRUE".to_string()];
                if let Some(a) = after {
                    conditions.push(format!("{date} > DATE '{a}'"));
                }
                if let Some(u) = upto {
                    conditions.push(format!("{date} <= DATE '{u}'"));
                }
                let name = format!("part-{k:05}.parquet");
                let target = if k == 0 {
                    warehouse.join(table).join(&name)
                } else {
                    held.join(table).join(&name)
                };
                write_select(
                    &original,
                    &format!("SELECT * FROM t WHERE {}", conditions.join(" AND ")),
                    &target,
                );
            }
        }
        Split {
            _dir: dir,
            warehouse,
            held,
        }
    }

    /// The split warehouse with every period's files in place.
    fn whole() -> Split {
        let split = Split::new();
        for k in 1..=CUTS.len() {
            split.add(k);
        }
        split
    }

    /// Moves the held files of period `k` into the warehouse (the night's new files).
    fn add(&self, k: usize) {
        for table in ["invoices", "payments"] {
            let name = format!("part-{k:05}.parquet");
            std::fs::rename(
                self.held.join(table).join(&name),
                self.warehouse.join(table).join(&name),
            )
            .unwrap();
        }
    }

    fn settle(&self, out: &Path, extra: &[&str]) -> String {
        let mut args = vec![
            "settle",
            "--warehouse",
            self.warehouse.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&args)
    }
}

/// The same warehouse written another way (relative, with `./` and a trailing `/`,
/// absolute, as a `file://` URL) is the same table: nothing rebuilt.
#[test]
fn the_warehouse_spelled_another_way_keeps_the_table() {
    let nights = tempfile::tempdir().unwrap();
    let out = nights.path().to_str().unwrap();
    let settle = |warehouse: &str| run_ok(&["settle", "--warehouse", warehouse, "--out", out]);
    let first = settle("data/demo");
    assert!(first.contains("rebuilt (there was none)"), "{first}");
    let absolute = std::path::absolute(demo()).unwrap();
    let absolute = absolute.to_str().unwrap();
    for spelling in [
        "./data/demo/".to_string(),
        absolute.to_string(),
        format!("file://{absolute}"),
    ] {
        let again = settle(&spelling);
        assert!(again.contains("up to date"), "{spelling}: {again}");
    }
    assert_eq!(state(nights.path())["generation"], 0);
    // A state of an earlier version holds the folder as it was given.
    let path = nights.path().join("_settlement/state.json");
    let mut kept = state(nights.path());
    let location = |kept: &serde_json::Value| kept["warehouse"].as_str().unwrap().to_string();
    // The absolute location (percent-encoded where a folder's name needs it).
    assert!(
        location(&kept).starts_with("file:///") && location(&kept).ends_with("/data/demo"),
        "{kept}"
    );
    kept["warehouse"] = "data/demo".into();
    std::fs::write(&path, serde_json::to_vec(&kept).unwrap()).unwrap();
    let again = settle(absolute);
    assert!(again.contains("up to date"), "{again}");
    // Another folder with the same files is another warehouse.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&demo(), copy.path());
    let other = settle(copy.path().to_str().unwrap());
    assert!(
        other.contains("rebuilt (it was built from warehouse data/demo)"),
        "{other}"
    );
    let name = copy.path().file_name().unwrap().to_str().unwrap();
    let kept = state(nights.path());
    assert!(location(&kept).ends_with(&format!("/{name}")), "{kept}");
}

/// A first night builds the table in a process of its own (`arq settle --rebuild`): what
/// that process says goes wrong is the night's one error line, and the night writes
/// nothing.
#[test]
fn a_first_nights_build_that_fails_is_the_nights_error() {
    let nights = tempfile::tempdir().unwrap();
    // A file where the table's folder goes: the build cannot make the folder.
    let blocker = nights.path().join("_settlement");
    std::fs::write(&blocker, "not a folder").unwrap();
    let out = nights.path().to_str().unwrap();
    let error = run_err(&["nightly", "--quiet", "--out", out]);
    assert!(
        error.contains(&format!("{}: ", blocker.display())),
        "{error}"
    );
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a folder");
    let entries: Vec<_> = std::fs::read_dir(nights.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["_settlement"], "nothing written: {entries:?}");
    // The same night settling from the payments does not need the folder.
    let night = run_ok(&["nightly", "--quiet", "--settle-from-payments", "--out", out]);
    assert!(!night.contains("invoice settlement"), "{night}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Writes the rows of `select` over the Parquet file `source` (as `t`) to `target`.
fn write_select(source: &Path, select: &str, target: &Path) {
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        ctx.register_parquet("t", source.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let df = ctx.sql(select).await.unwrap();
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await.unwrap();
        let file = std::fs::File::create(target).unwrap();
        let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(
            file,
            std::sync::Arc::new(schema),
            None,
        )
        .unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
    });
}

/// The state of an output folder's settlement.
fn state(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("_settlement/state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every row of the files `state.json` lists under `key` in `out`, sorted by `order`, as
/// text (exact values).
fn kept_rows(out: &Path, key: &str, order: &str) -> String {
    let files: Vec<String> = state(out)[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            out.join("_settlement")
                .join(f.as_str().unwrap())
                .display()
                .to_string()
        })
        .collect();
    query_files(&files, &format!("SELECT * FROM t ORDER BY {order}"))
}

/// Every settled row of the table in `out`, sorted, as text.
fn settled_rows(out: &Path) -> String {
    kept_rows(out, "settled", "customer_id, invoice_id")
}

/// Every row of the payments by month in `out`, sorted, as text.
fn payments_rows(out: &Path) -> String {
    kept_rows(
        out,
        "payments",
        "payment_date, customer_id, amount, currency, invoice_id",
    )
}

/// Every row of the invoices by month in `out`, sorted, as text.
fn invoices_rows(out: &Path) -> String {
    kept_rows(
        out,
        "invoices",
        "invoice_date, customer_id, amount, currency",
    )
}

/// The invoices by month's columns of every row of `warehouse`'s `invoices`, sorted as
/// [`invoices_rows`].
fn invoices_of(warehouse: &Path) -> String {
    let files: Vec<String> = std::fs::read_dir(warehouse.join("invoices"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    query_files(
        &files,
        "SELECT customer_id, invoice_date, currency, amount FROM t \
         ORDER BY invoice_date, customer_id, amount, currency",
    )
}

/// Every payment of `warehouse` with its invoice's currency (and its invoice id), sorted as
/// [`payments_rows`].
fn payments_with_currency(warehouse: &Path) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = SessionContext::new();
        for table in ["payments", "invoices"] {
            let folder = format!("{}/", warehouse.join(table).display());
            ctx.register_parquet(table, &folder, Default::default())
                .await
                .unwrap();
        }
        let rows = ctx
            .sql(
                "SELECT p.customer_id, p.payment_date, p.amount, i.currency, p.invoice_id \
                 FROM payments p JOIN invoices i ON i.invoice_id = p.invoice_id \
                 ORDER BY payment_date, customer_id, amount, currency, invoice_id",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        pretty_format_batches(&rows).unwrap().to_string()
    })
}

fn query_files(files: &[String], sql: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = SessionContext::new();
        ctx.register_parquet("t", files[0].as_str(), Default::default())
            .await
            .unwrap();
        let mut batches = Vec::new();
        for f in files {
            ctx.deregister_table("t").unwrap();
            ctx.register_parquet("t", f.as_str(), Default::default())
                .await
                .unwrap();
            batches.extend(
                ctx.sql("SELECT * FROM t")
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap(),
            );
        }
        let schema = batches[0].schema();
        let all = datafusion::datasource::MemTable::try_new(schema, vec![batches]).unwrap();
        ctx.deregister_table("t").unwrap();
        ctx.register_table("t", std::sync::Arc::new(all)).unwrap();
        let sorted = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&sorted).unwrap().to_string()
    })
}

/// The cells of the first row of a pretty-printed table.
fn first_row(table: &str) -> Vec<String> {
    table
        .lines()
        .nth(3)
        .expect("a row")
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The open invoices' file of the table in `out`: its rows as text, and its bytes.
fn open_file(out: &Path) -> (String, Vec<u8>) {
    let state = state(out);
    let path = out
        .join("_settlement")
        .join(state["open"].as_str().unwrap());
    let rows = query_files(
        &[path.display().to_string()],
        "SELECT * FROM t ORDER BY customer_id, invoice_id",
    );
    (rows, std::fs::read(path).unwrap())
}

/// Asserts two texts are equal, showing the first line that differs.
fn assert_same_lines(a: &str, b: &str) {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    if let Some(k) = (0..la.len().max(lb.len())).find(|&k| la.get(k) != lb.get(k)) {
        panic!(
            "line {k} differs ({} and {} lines):\n{:?}\n{:?}",
            la.len(),
            lb.len(),
            la.get(k),
            lb.get(k)
        );
    }
}

/// Asserts two tables' open invoices are the same rows in the same file bytes.
fn assert_same_open(a: &Path, b: &Path) {
    let ((rows_a, bytes_a), (rows_b, bytes_b)) = (open_file(a), open_file(b));
    assert_same_lines(&rows_a, &rows_b);
    assert!(bytes_a == bytes_b, "same open rows, different bytes");
}

#[test]
fn nights_of_added_files_give_the_table_rebuilt_from_scratch_byte_for_byte() {
    let split = Split::new();
    let nights = tempfile::tempdir().unwrap();
    let first = split.settle(nights.path(), &[]);
    assert!(first.contains("rebuilt (there was none)"), "{first}");
    // What a killed update leaves behind goes with the next update.
    let abandoned = nights
        .path()
        .join("_settlement/.open-000007.parquet.partial-4194304");
    std::fs::write(&abandoned, b"half").unwrap();
    for k in 1..=CUTS.len() {
        split.add(k);
        let night = split.settle(nights.path(), &[]);
        assert!(night.contains("updated from 2 new files"), "{night}");
        assert!(night.contains("used by the features"), "{night}");
    }
    assert!(!abandoned.exists());
    let again = split.settle(nights.path(), &[]);
    assert!(again.contains("up to date"), "{again}");
    let kept = state(nights.path());
    assert_eq!(kept["settled"].as_array().unwrap().len(), 3, "{kept}");
    assert_eq!(kept["generation"], 2, "{kept}");

    let scratch = tempfile::tempdir().unwrap();
    let rebuilt = split.settle(scratch.path(), &["--rebuild"]);
    assert!(rebuilt.contains("rebuilt (asked for)"), "{rebuilt}");
    let rows = settled_rows(scratch.path());
    // The demo's invoices paid in full (DuckDB over the same files: 248,647).
    assert_eq!(state(scratch.path())["settled_rows"], 248_647);
    assert_same_lines(&settled_rows(nights.path()), &rows);
    assert_same_open(nights.path(), scratch.path());
    assert_eq!(
        state(nights.path())["settled_rows"],
        state(scratch.path())["settled_rows"]
    );
    // The payments by month: every payment with its invoice's currency, the same rows
    // kept night by night as rebuilt, each file of one month.
    let payments = payments_rows(scratch.path());
    assert_same_lines(&payments, &payments_with_currency(&split.warehouse));
    assert_eq!(state(scratch.path())["payments_rows"], 274_825);
    assert_same_lines(&payments_rows(nights.path()), &payments);
    assert_eq!(state(nights.path())["payments_rows"], 274_825);
    // The invoices by month: every invoice row, the same night by night as rebuilt.
    let invoices = invoices_rows(scratch.path());
    assert_same_lines(&invoices, &invoices_of(&split.warehouse));
    assert_same_lines(&invoices_rows(nights.path()), &invoices);
    assert_eq!(
        state(nights.path())["invoices_rows"],
        state(scratch.path())["invoices_rows"]
    );
    let months: Vec<String> = state(nights.path())["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    // The first night's file holds the months up to the first cut, each later night's
    // only the months after the cut before it.
    assert!(months.contains(&"payments-000000-2026-06.parquet".to_string()));
    assert!(months.contains(&"payments-000001-2026-07.parquet".to_string()));
    assert!(months.contains(&"payments-000002-2026-10.parquet".to_string()));
    assert!(
        !months
            .iter()
            .any(|m| m.starts_with("payments-000001-2026-06"))
    );
    for name in &months {
        let month = &name["payments-000000-".len()..name.len() - ".parquet".len()];
        let path = nights.path().join("_settlement").join(name);
        let dates = query_files(
            &[path.display().to_string()],
            "SELECT DISTINCT CAST(date_trunc('month', payment_date) AS DATE) AS m FROM t",
        );
        assert_eq!(dates.lines().count(), 5, "{name}: one month\n{dates}");
        assert!(dates.contains(&format!("{month}-01")), "{name}: {dates}");
    }

    // Only the files the state names are left.
    let files: Vec<String> = std::fs::read_dir(nights.path().join("_settlement"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let invoice_months = state(nights.path())["invoices"].as_array().unwrap().len();
    assert!(invoice_months >= 18, "{invoice_months}");
    assert_eq!(files.len(), 6 + months.len() + invoice_months, "{files:?}");
}

#[test]
fn a_changed_file_rebuilds_and_a_back_dated_payment_counts_on_its_own_date() {
    let split = Split::whole();
    let out = tempfile::tempdir().unwrap();
    split.settle(out.path(), &[]);
    // An open invoice partly paid, paid in full by a payment dated before its last one
    // that arrives in a later file.
    let open = query_files(
        &[out
            .path()
            .join("_settlement")
            .join(state(out.path())["open"].as_str().unwrap())
            .display()
            .to_string()],
        "SELECT invoice_id, customer_id, CAST(amount - paid AS DECIMAL(18, 2)) AS rest, \
         CAST(last_payment - INTERVAL '10 days' AS DATE) AS earlier, last_payment FROM t \
         WHERE amount IS NOT NULL AND paid > 0 \
         ORDER BY invoice_id LIMIT 1",
    );
    let row = first_row(&open);
    let [invoice, customer, rest, earlier, last] = [0, 1, 2, 3, 4].map(|i| row[i].as_str());
    let late = split.warehouse.join("payments/part-00009.parquet");
    write_select(
        &split.warehouse.join("payments/part-00000.parquet"),
        &format!(
            "SELECT 'PAY-LATE' AS payment_id, '{invoice}' AS invoice_id, \
             '{customer}' AS customer_id, DATE '{earlier}' AS payment_date, \
             CAST({rest} AS DECIMAL(18, 2)) AS amount FROM t LIMIT 1"
        ),
        &late,
    );
    let night = split.settle(out.path(), &[]);
    assert!(night.contains("updated from 1 new file"), "{night}");
    let settled = settled_rows(out.path());
    let line = settled
        .lines()
        .find(|l| l.contains(invoice))
        .unwrap_or_else(|| panic!("{invoice} not settled"));
    assert!(
        line.contains(last),
        "{invoice} paid on its last payment {last}: {line}"
    );

    let scratch = tempfile::tempdir().unwrap();
    split.settle(scratch.path(), &["--rebuild"]);
    assert_same_lines(&settled_rows(scratch.path()), &settled);
    assert_same_open(out.path(), scratch.path());
    // The late payment is kept in its own month's payments, from the file it came in.
    let late_month = &earlier[..7];
    let kept = state(out.path())["payments"].clone();
    assert!(
        kept.as_array().unwrap().iter().any(|f| f
            .as_str()
            .unwrap()
            .ends_with(&format!("-{late_month}.parquet"))
            && f.as_str().unwrap().starts_with("payments-000001-")),
        "{kept}"
    );
    assert_same_lines(&payments_rows(scratch.path()), &payments_rows(out.path()));

    // A consumed file that changes (a reload) rebuilds.
    std::fs::remove_file(&late).unwrap();
    let night = split.settle(out.path(), &[]);
    assert!(
        night.contains("rebuilt (payments/part-00009.parquet is gone)"),
        "{night}"
    );
    assert!(!settled_rows(out.path()).contains(&format!("| {invoice} ")));
}

#[test]
fn the_night_that_reads_the_table_writes_what_the_night_that_settles_from_payments_writes() {
    let split = Split::new();
    let (kept, direct) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let nightly = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "nightly",
            "-q",
            "--warehouse",
            split.warehouse.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&args)
    };
    // Two nights of files added, the last night on the whole warehouse.
    split.settle(kept.path(), &[]);
    split.add(1);
    split.settle(kept.path(), &[]);
    split.add(2);
    let summary = nightly(kept.path(), &[]);
    assert!(summary.contains("updated from 2 new files"), "{summary}");
    assert!(summary.contains("used by the features"), "{summary}");
    nightly(direct.path(), &["--settle-from-payments"]);
    assert!(!direct.path().join("_settlement").exists());
    let night = |out: &Path| out.join("2026-10-31");
    strip_timings(&night(kept.path()));
    strip_timings(&night(direct.path()));
    assert_same_tree(&night(kept.path()), &night(direct.path()));

    // `arq report --nights` reads the kept table too (it is up to date): the same page.
    let report = |nights: &Path, html: &Path| {
        run_ok(&[
            "report",
            "--warehouse",
            split.warehouse.to_str().unwrap(),
            "--nights",
            nights.to_str().unwrap(),
            "--out",
            html.to_str().unwrap(),
        ]);
        std::fs::read(html).unwrap()
    };
    let pages = tempfile::tempdir().unwrap();
    let direct_page = report(direct.path(), &pages.path().join("direct.html"));
    assert!(
        report(kept.path(), &pages.path().join("kept.html")) == direct_page,
        "the report over the kept table differs"
    );

    // The cash collected is read from the payments by month: October's payments doubled
    // there change the page's money cells.
    rewrite_october(
        kept.path(),
        "payments",
        "SELECT customer_id, payment_date, CAST(amount * 2 AS DECIMAL(18, 2)) AS amount, \
         currency, invoice_id FROM t",
        pages.path(),
    );
    let doubled = report(kept.path(), &pages.path().join("doubled.html"));
    let (doubled, direct_page) = (
        String::from_utf8(doubled).unwrap(),
        String::from_utf8(direct_page).unwrap(),
    );
    let changed: Vec<(&str, &str)> = doubled
        .lines()
        .zip(direct_page.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert!(
        !changed.is_empty(),
        "the report did not read the payments by month"
    );
    let cash = |page: &str| -> Vec<String> {
        page.lines()
            .filter(|l| l.contains("<td") && (l.contains("EUR ") || l.contains("USD ")))
            .map(String::from)
            .collect()
    };
    assert_eq!(doubled.lines().count(), direct_page.lines().count());
    assert_ne!(cash(&doubled), cash(&direct_page));

    // `ar_metrics` reads the credit sales from the invoices by month: October's invoices
    // doubled there change the page again (the CEI and DSO of the month).
    rewrite_october(
        kept.path(),
        "invoices",
        "SELECT customer_id, invoice_date, currency, \
         CAST(amount * 2 AS DECIMAL(18, 2)) AS amount FROM t",
        pages.path(),
    );
    let sales = report(kept.path(), &pages.path().join("sales.html"));
    assert!(
        String::from_utf8(sales).unwrap() != doubled,
        "the report did not read the invoices by month"
    );
}

#[test]
fn a_payment_after_the_invoice_was_paid_in_full_keeps_the_night_settling_from_payments() {
    let split = Split::whole();
    let out = tempfile::tempdir().unwrap();
    split.settle(out.path(), &[]);
    // One more payment on the first settled invoice, after it was paid in full.
    let row = first_row(&settled_rows(out.path()));
    let (customer, invoice) = (row[0].as_str(), row[1].as_str());
    write_select(
        &split.warehouse.join("payments/part-00000.parquet"),
        &format!(
            "SELECT 'PAY-AGAIN' AS payment_id, '{invoice}' AS invoice_id, \
             '{customer}' AS customer_id, DATE '2026-10-30' AS payment_date, \
             CAST(1.00 AS DECIMAL(18, 2)) AS amount FROM t LIMIT 1"
        ),
        &split.warehouse.join("payments/part-00009.parquet"),
    );
    let summary = run_ok(&[
        "nightly",
        "-q",
        "--warehouse",
        split.warehouse.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(
        summary.contains(&format!(
            "not used: invoice {invoice} of customer {customer}: a payment after it was paid \
             in full; the night settles from the payments"
        )),
        "{summary}"
    );
    let direct = tempfile::tempdir().unwrap();
    run_ok(&[
        "nightly",
        "-q",
        "--warehouse",
        split.warehouse.to_str().unwrap(),
        "--out",
        direct.path().to_str().unwrap(),
        "--settle-from-payments",
    ]);
    let night = |out: &Path| out.join("2026-10-31");
    strip_timings(&night(out.path()));
    strip_timings(&night(direct.path()));
    assert_same_tree(&night(out.path()), &night(direct.path()));
    // A rebuild finds it too.
    let rebuilt = run_ok(&[
        "settle",
        "--warehouse",
        split.warehouse.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--rebuild",
    ]);
    assert!(
        rebuilt.contains(&format!(
            "not used: invoice {invoice} of customer {customer}: the invoice was paid in full \
             before its last payment"
        )),
        "{rebuilt}"
    );
}

#[test]
fn an_invoice_that_arrives_again_after_it_was_settled_is_found() {
    let split = Split::whole();
    let out = tempfile::tempdir().unwrap();
    split.settle(out.path(), &[]);
    let row = first_row(&settled_rows(out.path()));
    let (customer, invoice) = (row[0].as_str(), row[1].as_str());
    // The same invoice again in a new file (a re-sent export).
    write_select(
        &split.warehouse.join("invoices/part-00000.parquet"),
        &format!("SELECT * FROM t WHERE invoice_id = '{invoice}'"),
        &split.warehouse.join("invoices/part-00009.parquet"),
    );
    let night = split.settle(out.path(), &[]);
    assert!(
        night.contains(&format!(
            "not used: invoice {invoice} of customer {customer}: the invoice arrived again \
             after it was paid in full"
        )),
        "{night}"
    );
    // Sticky until a rebuild, which finds the same invoice twice.
    let again = split.settle(out.path(), &[]);
    assert!(
        again.contains("up to date") && again.contains("not used"),
        "{again}"
    );
    let rebuilt = split.settle(out.path(), &["--rebuild"]);
    assert!(
        rebuilt.contains(&format!(
            "not used: invoice {invoice} of customer {customer}: the invoice is in `invoices` \
             more than once"
        )),
        "{rebuilt}"
    );
}

/// Rewrites the October files `state.json` lists under `key` in `out` with `select` over
/// each (as `t`; the original copied to `scratch` first).
fn rewrite_october(out: &Path, key: &str, select: &str, scratch: &Path) {
    let folder = out.join("_settlement");
    let names = state(out)[key].clone();
    let october = names
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .filter(|n| n.ends_with("-2026-10.parquet"));
    let mut rewritten = 0;
    for name in october {
        let copy = scratch.join(name);
        std::fs::copy(folder.join(name), &copy).unwrap();
        write_select(&copy, select, &folder.join(name));
        rewritten += 1;
    }
    assert!(rewritten > 0, "no October file under {key}: {names}");
}

/// Removes the manifest's timings (the one part of a night that differs between runs).
fn strip_timings(night: &Path) {
    let path = night.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("timings_ms");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}
