//! `arq sql` in every output format, over the demo warehouse.

use crate::util::{EACH_CUSTOMER, arq, demo, run_err, run_ok, run_usage_err};

const COUNTS: &str = "SELECT count(*) AS items, sum(open_amount) AS open_total \
                      FROM open_items_latest WHERE currency = 'USD'";

#[test]
fn table_format_prints_an_aligned_table_and_a_row_count() {
    let out = run_ok(&[
        "sql",
        "SELECT segment, count(*) AS n FROM customers_latest GROUP BY segment ORDER BY segment",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("+--"), "{out}");
    assert!(
        lines[1].contains("| segment ") && lines[1].ends_with(" n |"),
        "{out}"
    );
    for segment in ["consumer", "enterprise", "mid_market", "small_business"] {
        assert!(out.contains(segment), "{segment} missing in {out}");
    }
    assert_eq!(lines.last(), Some(&"4 rows"));
}

/// A merge in customer order reads ahead through queues sized by the memory limit
/// (`ScanAhead`): 1/64 of it, 64 MiB at most, none under a 64 MiB limit.
#[test]
fn merges_in_customer_order_read_ahead_within_the_memory_limit() {
    const BY_CUSTOMER: &str = "EXPLAIN SELECT customer_id, sum(amount) FROM invoices \
                               GROUP BY customer_id ORDER BY customer_id";
    let run =
        |limit: &str, sql: &str| run_ok(&["sql", "--format", "csv", "--memory-limit", limit, sql]);
    let plan = |limit: &str| run(limit, BY_CUSTOMER);
    let queues = |plan: &str| plan.matches("BufferExec: capacity=").count();
    let roomy = plan("8GB");
    assert!(roomy.contains("BufferExec: capacity=67108864"), "{roomy}");
    let small = plan("1GB");
    assert!(small.contains("BufferExec: capacity=16777216"), "{small}");
    assert_eq!(queues(&small), queues(&roomy), "{small}");
    let tiny = plan("32MB");
    assert_eq!(queues(&tiny), 0, "{tiny}");
    // The same rows with and without the queues.
    let rows = |limit: &str| run(limit, &BY_CUSTOMER["EXPLAIN ".len()..]);
    assert_eq!(rows("8GB"), rows("32MB"));
}

/// Joins on the customer id whose probe side is in customer order walk it
/// (`KeyOrderJoinExec`) instead of hashing: the same rows as the hash join the same query
/// gets when its key is an expression (`lower(...)`, whose order the plan does not know).
#[test]
fn joins_in_customer_order_walk_and_give_the_hash_joins_rows() {
    let run = |sql: &str| run_ok(&["sql", "--format", "csv", sql]);
    for (join, key) in [
        ("JOIN", "c.customer_id = o.customer_id"),
        ("JOIN", "lower(c.customer_id) = lower(o.customer_id)"),
        ("LEFT JOIN", "c.customer_id = o.customer_id"),
        ("LEFT JOIN", "lower(c.customer_id) = lower(o.customer_id)"),
    ] {
        let sql = format!(
            "SELECT c.segment, o.currency, count(*) AS items, count(c.customer_id) AS matched, \
                    sum(o.open_amount) AS open \
             FROM open_items_latest o {join} customers_latest c ON {key} \
             GROUP BY 1, 2 ORDER BY 1, 2"
        );
        let plan = run(&format!("EXPLAIN {sql}"));
        assert_eq!(
            plan.contains("KeyOrderJoinExec"),
            !key.starts_with("lower"),
            "{plan}"
        );
        let hashed = sql.replace(key, "lower(c.customer_id) = lower(o.customer_id)");
        let rows = run(&sql);
        assert!(rows.lines().count() > 4, "{rows}");
        assert_eq!(rows, run(&hashed), "{sql}");
    }
}

/// Each customer with their balance, last contact and disputed items — customers left-joined
/// to three per-customer aggregates, ordered by customer — runs within a modest memory
/// limit (`CompactViews`). Small batches make the demo's 2,000 customers arrive in 125
/// batches, as a million customers do in batches of 8,192 rows: before, each join's output
/// held every buffer of the side it collected, the sort counted them again for every batch
/// (1,328 GB asked for at a million customers), and this query was refused under 1 GB.
#[test]
fn chained_joins_ordered_by_customer_run_within_the_memory_limit() {
    let run = |settings: &str| {
        run_ok(&[
            "sql",
            "--format",
            "csv",
            "--memory-limit",
            "256MB",
            &format!("{settings}{EACH_CUSTOMER}"),
        ])
    };
    let small_batches = run("SET datafusion.execution.batch_size = 16; ");
    assert_eq!(
        small_batches.lines().count(),
        2001,
        "a header and 2,000 customers"
    );
    assert_eq!(small_batches, run(""));
    let plan = run_ok(&[
        "sql",
        "--format",
        "csv",
        &format!("EXPLAIN {EACH_CUSTOMER}"),
    ]);
    assert_eq!(plan.matches("CompactViewsExec").count(), 3, "{plan}");
}

/// `arq generate` writes invoices, payments, write-offs and open items in invoice order
/// too and says so in each file (`arq.ascending`): joins on invoice ids walk, whether
/// DataFusion builds one side whole or (forced here on the small demo) joins hash
/// partitions — those, both sides in invoice order, collected instead, unless something
/// above needs the join's hash partitions.
#[test]
fn joins_on_invoice_ids_walk_and_give_the_hash_joins_rows() {
    let run = |sql: &str| run_ok(&["sql", "--format", "csv", sql]);
    let partitions = "SET datafusion.optimizer.hash_join_single_partition_threshold = 0; \
                      SET datafusion.optimizer.hash_join_single_partition_threshold_rows = 0; ";
    let key = "i.invoice_id = p.invoice_id";
    let cash = format!(
        "SELECT i.currency, CAST(date_trunc('month', p.payment_date) AS DATE) AS month, \
                sum(p.amount) AS cash, count(*) AS payments \
         FROM payments p JOIN invoices i ON {key} \
         WHERE p.payment_date > DATE '2026-07-31' GROUP BY 1, 2 ORDER BY 1, 2"
    );
    let per_invoice = format!(
        "SELECT p.invoice_id, count(*) AS n, sum(p.amount) AS paid, max(i.amount) AS amount \
         FROM payments p JOIN invoices i ON {key} GROUP BY 1 ORDER BY 1"
    );
    let open_paid = "SELECT o.currency, count(*) AS items, sum(p.amount) AS paid \
         FROM open_items_latest o JOIN payments p ON p.invoice_id = o.invoice_id \
         GROUP BY 1 ORDER BY 1";
    for (settings, sql, mode) in [
        ("", cash.as_str(), "CollectLeft"),
        (partitions, cash.as_str(), "CollectLeft"),
        // The aggregate by invoice needs the join's hash partitions: they stay.
        (partitions, per_invoice.as_str(), "Partitioned"),
        ("", open_paid, "CollectLeft"),
    ] {
        let plan = run(&format!("{settings}EXPLAIN {sql}"));
        assert!(
            plan.contains(&format!("KeyOrderJoinExec: mode={mode}")),
            "{settings}{sql}\n{plan}"
        );
        let hashed = sql
            .replace(key, "lower(i.invoice_id) = lower(p.invoice_id)")
            .replace(
                "p.invoice_id = o.invoice_id",
                "lower(p.invoice_id) = lower(o.invoice_id)",
            );
        assert!(!run(&format!("{settings}EXPLAIN {hashed}")).contains("KeyOrderJoinExec"));
        let rows = run(&format!("{settings}{sql}"));
        assert!(rows.lines().count() > 3, "{rows}");
        assert_eq!(rows, run(&format!("{settings}{hashed}")), "{settings}{sql}");
    }
}

#[test]
fn csv_json_and_ndjson_agree_on_the_same_figures() {
    let csv = run_ok(&["sql", "--format", "csv", COUNTS]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("items,open_total"));
    let row: Vec<&str> = lines.next().expect("one row").split(',').collect();
    let (items, total) = (row[0].to_string(), row[1].to_string());
    assert!(items.parse::<u64>().unwrap() > 100, "{csv}");
    // Money is decimal: two decimals, never a float rendering.
    assert!(
        total
            .split('.')
            .nth(1)
            .is_some_and(|cents| cents.len() == 2),
        "{total}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&["sql", "--format", "json", COUNTS])).expect("json array");
    let first = &json.as_array().expect("array")[0];
    assert_eq!(first["items"].to_string(), items);
    assert_eq!(first["open_total"].to_string().trim_matches('"'), total);

    let ndjson = run_ok(&["sql", "--format", "ndjson", COUNTS]);
    assert_eq!(ndjson.lines().count(), 1);
    let line: serde_json::Value = serde_json::from_str(ndjson.trim()).expect("one object");
    assert_eq!(line, *first);
}

#[test]
fn parquet_output_keeps_money_decimal_and_replaces_files_atomically() {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("items.parquet");
    let p = path.to_str().unwrap();
    let sql = "SELECT invoice_id, open_amount FROM open_items_latest ORDER BY invoice_id";
    run_ok(&["sql", "--format", "parquet", "--output", p, sql]);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(
        reader.schema().field(1).data_type(),
        &DataType::Decimal128(18, 2)
    );
    let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    let expected = run_ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT count(*) FROM open_items_latest",
    ]);
    assert_eq!(expected.lines().nth(1).unwrap(), rows.to_string());

    // A failing query leaves the earlier file as it was, and no temporary file behind.
    let before = std::fs::read(&path).unwrap();
    run_err(&[
        "sql",
        "--format",
        "parquet",
        "--output",
        p,
        "SELECT no_such_column FROM open_items_latest",
    ]);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn csv_output_file_and_sql_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("q.sql");
    std::fs::write(
        &script,
        "-- a view, then a query that uses it\n\
         CREATE VIEW big AS SELECT * FROM open_items_latest WHERE open_amount > 1000;\n\
         SELECT count(*) AS n FROM big;\n",
    )
    .unwrap();
    let out = dir.path().join("n.csv");
    let stdout = run_ok(&[
        "sql",
        "-f",
        script.to_str().unwrap(),
        "--format",
        "csv",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(stdout, "");
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.starts_with("n\n"), "{csv}");
    assert!(csv.lines().nth(1).unwrap().parse::<u64>().unwrap() > 0);
}

#[test]
fn the_aging_report_reconciles_with_the_open_total() {
    // The README's main job: every bucket column adds up to total_open, to the cent.
    let out = run_ok(&["sql", "-f", "data/queries/aging.sql", "--format", "csv"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let bucket_cols: Vec<usize> = ["current", "1-30", "31-60", "61-90", "91-120", "121+"]
        .iter()
        .map(|b| header.iter().position(|h| h == b).expect("bucket column"))
        .collect();
    let total_col = header.iter().position(|h| *h == "total_open").unwrap();
    let cents = |s: &str| -> i64 { s.replace('.', "").parse().expect("decimal with cents") };
    let mut rows = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let sum: i64 = bucket_cols.iter().map(|&c| cents(cells[c])).sum();
        assert_eq!(sum, cents(cells[total_col]), "{line}");
        rows += 1;
    }
    assert!(
        rows >= 8,
        "several currencies × segments expected, got {rows}"
    );
}

#[test]
fn as_of_picks_an_earlier_snapshot() {
    let q = "SELECT DISTINCT snapshot_date FROM open_items_latest";
    let latest = run_ok(&["sql", "--format", "csv", q]);
    assert_eq!(latest, "snapshot_date\n2026-10-31\n");
    let earlier = run_ok(&["sql", "--as-of", "2026-06-15", "--format", "csv", q]);
    assert_eq!(earlier, "snapshot_date\n2026-05-31\n");
    let err = run_err(&["sql", "--as-of", "2020-01-01", q]);
    assert!(err.contains("no snapshot on or before 2020-01-01"), "{err}");
}

#[test]
fn warehouse_comes_from_the_environment_too() {
    let out = arq()
        .env("ARQ_WAREHOUSE", demo())
        .current_dir(std::env::temp_dir())
        .args([
            "sql",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM collectors",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("n\n"));
}

#[test]
fn sql_errors_are_one_line_and_exit_1() {
    let e = run_err(&["sql", "SELECT no_such_column FROM open_items_latest"]);
    assert!(e.contains("no_such_column"), "{e}");
    let e = run_err(&["sql", "SELEC 1"]);
    assert!(e.contains("SELEC"), "{e}");
    let e = run_err(&["sql", "SELECT * FROM no_such_table"]);
    assert!(e.contains("no_such_table"), "{e}");
    let e = run_err(&["sql", "-f", "/no/such/file.sql"]);
    assert!(e.contains("/no/such/file.sql"), "{e}");
    // Bad arguments are usage errors: exit code 2, as clap's own.
    let e = run_usage_err(&["sql", "--format", "parquet", "SELECT 1"]);
    assert!(e.contains("--output"), "{e}");
}

#[test]
fn sql_cannot_write_into_the_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy.parquet");
    let e = run_err(&["sql", &format!("COPY (SELECT 1) TO '{}'", target.display())]);
    assert!(
        e.to_lowercase().contains("not supported") || e.contains("DML"),
        "{e}"
    );
    assert!(!target.exists());
}

#[test]
fn tables_lists_every_table_and_view_with_columns() {
    let out = run_ok(&["tables"]);
    for t in [
        "customers",
        "customers_latest",
        "open_items",
        "open_items_latest",
        "invoices",
        "payments",
        "activities",
        "write_offs",
        "collectors",
    ] {
        assert!(out.lines().any(|l| l == t), "{t} missing:\n{out}");
    }
    assert!(
        out.contains("  open_amount            Decimal128(18, 2) not null"),
        "{out}"
    );
    assert!(out.contains("  snapshot_date          Date32"), "{out}");
}

#[test]
fn functions_lists_every_function_with_docs_and_an_example() {
    let out = run_ok(&["functions"]);
    let all = [
        "aging_bucket (scalar)",
        "aging_bucket_rank (scalar)",
        "ar_metrics (table)",
        "customer_features (table)",
        "days_past_due (scalar)",
        "promise_kept_rate (table)",
        "risk_labels (table)",
        "risk_points (scalar)",
        "risk_reasons (scalar)",
        "risk_score (scalar)",
        "risk_scores (table)",
        "roll_rates (table)",
        "scorecard_points (scalar)",
        "weighted_dpd (aggregate)",
    ];
    for f in all {
        assert!(out.lines().any(|l| l == f), "{f} missing:\n{out}");
    }
    assert_eq!(out.matches("  Example:").count(), all.len(), "{out}");
    let one = run_ok(&["functions", "weighted"]);
    assert!(
        one.starts_with("weighted_dpd (aggregate)\n  weighted_dpd(amount, dpd)\n"),
        "{one}"
    );
    assert!(!one.contains("days_past_due ("), "{one}");
    let e = run_err(&["functions", "no_such_function"]);
    assert!(
        e.contains("no arq function matches `no_such_function`"),
        "{e}"
    );
}

#[test]
fn aging_bucket_totals_reconcile_in_every_snapshot() {
    let by_bucket = run_ok(&[
        "sql", "--format", "csv",
        "WITH b AS (SELECT snapshot_date, currency, aging_bucket(due_date, snapshot_date) AS bucket,
                           sum(open_amount) AS amount
                    FROM open_items GROUP BY 1, 2, 3)
         SELECT snapshot_date, currency, sum(amount) AS total FROM b GROUP BY 1, 2 ORDER BY 1, 2",
    ]);
    let totals = run_ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT snapshot_date, currency, sum(open_amount) AS total FROM open_items GROUP BY 1, 2 ORDER BY 1, 2",
    ]);
    assert_eq!(by_bucket, totals);
    assert_eq!(
        totals.lines().count(),
        1 + 12 * 4,
        "12 snapshots × 4 currencies:\n{totals}"
    );
}

#[test]
fn metrics_table_functions_run_from_arq_sql() {
    let out = run_ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT period_end, segment, currency, round(dso, 1) AS dso FROM ar_metrics('2026-10-31', '2026-10-31', 'segment') ORDER BY 2, 3",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "period_end,segment,currency,dso");
    assert_eq!(lines.len(), 1 + 4 * 4, "4 segments × 4 currencies:\n{out}");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("2026-10-31,")),
        "{out}"
    );
}

/// Runs `arq ARGS` with `input` on stdin; stdout and the exit code.
fn with_stdin(args: &[&str], input: &str) -> (String, Option<i32>) {
    let out = crate::util::run_with_stdin(args, input);
    (String::from_utf8(out.stdout).unwrap(), out.status.code())
}

#[test]
fn sql_comes_from_the_argument_c_a_file_or_stdin_as_in_psql_and_duckdb() {
    let (out, code) = with_stdin(&["sql", "--format", "csv"], "SELECT 1 AS one;\n");
    assert_eq!((out.as_str(), code), ("one\n1\n", Some(0)));
    let (out, code) = with_stdin(&["sql", "--format", "csv", "-f", "-"], "SELECT 2 AS two");
    assert_eq!((out.as_str(), code), ("two\n2\n", Some(0)));
    let out = run_ok(&["sql", "--format", "csv", "-c", "SELECT 3 AS three"]);
    assert_eq!(out, "three\n3\n");
    let e = run_usage_err(&["sql", "--format", "csv"]);
    assert!(e.contains("no SQL statement given"), "{e}");
}

#[test]
fn the_output_format_comes_from_the_extension_and_an_unknown_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("r.csv");
    run_ok(&["sql", "--out", csv.to_str().unwrap(), "SELECT 1 AS one"]);
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "one\n1\n");
    let unknown = dir.path().join("r.xls");
    let e = run_usage_err(&["sql", "--out", unknown.to_str().unwrap(), "SELECT 1"]);
    assert!(
        e.contains("cannot tell the format of") && e.contains("r.xls"),
        "{e}"
    );
    assert!(!unknown.exists());
    // --format decides when given.
    run_ok(&[
        "sql",
        "--format",
        "csv",
        "--out",
        unknown.to_str().unwrap(),
        "SELECT 1 AS one",
    ]);
    assert_eq!(std::fs::read_to_string(&unknown).unwrap(), "one\n1\n");
}

#[test]
fn json_writes_null_for_null_fields() {
    let q = "SELECT 1 AS a, CAST(NULL AS INT) AS b";
    assert_eq!(
        run_ok(&["sql", "--format", "json", q]),
        "[{\"a\":1,\"b\":null}]\n"
    );
    assert_eq!(
        run_ok(&["sql", "--format", "ndjson", q]),
        "{\"a\":1,\"b\":null}\n"
    );
}

#[test]
fn a_script_stops_at_its_first_failing_statement_naming_it_or_goes_on_when_asked() {
    let script = "SELECT 1 AS one; SELECT nope; SELECT 3 AS three";
    let out = crate::util::run(&["sql", "--format", "csv", script]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n1\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: statement 2 (`SELECT nope`): "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = crate::util::run(&["sql", "--format", "csv", "--continue-on-error", script]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n1\nthree\n3\n");

    // --echo prints each statement before its result.
    let echoed = run_ok(&[
        "sql",
        "--format",
        "csv",
        "--echo",
        "SELECT 1 AS one; SELECT 2 AS two",
    ]);
    assert_eq!(
        echoed,
        "SELECT 1 AS one;\none\n1\nSELECT 2 AS two;\ntwo\n2\n"
    );
}

#[test]
fn unsupported_syntax_is_named_in_one_short_line() {
    let err = run_err(&[
        "sql",
        "SELECT * FROM customers_latest PIVOT (count(*) FOR segment IN ('enterprise', 'consumer'))",
    ]);
    assert!(
        err.contains(
            "this SQL is not supported: PIVOT is not implemented: write the pivot with FILTER"
        ),
        "{err}"
    );
    assert!(!err.contains("Ident {"), "{err}");
}

#[test]
fn files_beside_the_warehouse_join_it() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.csv");
    std::fs::write(
        &notes,
        "customer_id,note\nC0000001,call back\nC0000042,vip\n",
    )
    .unwrap();
    let joined = run_ok(&[
        "sql",
        &format!(
            "SELECT c.customer_id, c.name, n.note FROM read_csv('{}') n \
             JOIN customers_latest c USING (customer_id) ORDER BY 1",
            notes.display()
        ),
        "--format",
        "csv",
    ]);
    assert_eq!(
        joined,
        "customer_id,name,note\nC0000001,Ironwood Print LLC,call back\nC0000042,Vantage Textiles SA,vip\n"
    );
    // A path as a table name, and read_parquet over a folder of Parquet files.
    let parquet = dir.path().join("limits.parquet");
    run_ok(&[
        "sql",
        "SELECT customer_id, credit_limit FROM customers_latest",
        "--out",
        parquet.to_str().unwrap(),
    ]);
    let count = run_ok(&[
        "sql",
        &format!("SELECT count(*) AS n FROM '{}'", parquet.display()),
        "--format",
        "csv",
    ]);
    assert_eq!(count, "n\n2000\n");
    let folder = crate::util::demo().join("collectors");
    let count = run_ok(&[
        "sql",
        &format!(
            "SELECT count(*) AS n FROM read_parquet('{}')",
            folder.display()
        ),
        "--format",
        "csv",
    ]);
    assert_eq!(count, "n\n8\n");
    let err = run_err(&["sql", "SELECT * FROM read_csv(1)"]);
    assert!(
        err.contains("read_csv takes one argument: a file or folder path"),
        "{err}"
    );
}

#[test]
fn literal_columns_are_headed_as_written() {
    let csv = run_ok(&[
        "sql",
        "SELECT 1, 'a', 1 + 2, upper('x') AS shout",
        "--format",
        "csv",
    ]);
    assert_eq!(csv, "1,'a',1 + 2,shout\n1,a,3,X\n");
}

#[test]
fn a_ratio_of_decimal_sums_prints_and_saves() {
    // DataFusion gives the division a wider precision than it planned; arq conforms the
    // rows to the plan instead of failing.
    let q = "SELECT sum(open_amount) / sum(amount) AS open_share FROM open_items_latest";
    let csv = run_ok(&["sql", "--format", "csv", q]);
    let share: f64 = csv.lines().nth(1).unwrap().parse().unwrap();
    assert!(share > 0.0 && share <= 1.0, "{csv}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("share.parquet");
    run_ok(&["sql", "--out", path.to_str().unwrap(), q]);
    assert!(path.exists());
}
