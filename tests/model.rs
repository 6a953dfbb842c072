//! The risk model end to end: training on the demo warehouse, the committed default
//! model, leakage, scoring in SQL and as a command, generic tables, bad artifacts.

use std::fs::File;
use std::path::Path;

use datafusion::arrow::array::Date32Array;
use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch, kernels::cmp::lt_eq};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::util::{demo, repo_root, run, run_err, run_ok};

/// The model's features in `risk_score`'s order (the order of FEATURE_COLUMNS).
const FEATURES: &str = "segment, overdue_share, max_dpd, worst_bucket, share_61_90, weighted_dpd, max_dpd_3m, max_dpd_6m, \
    max_dpd_12m, paid_late_6m, paid_late_share_6m, paid_late_12m, paid_late_share_12m, \
    avg_days_late_6m, days_late_trend, utilization, broken_promises_12m, open_disputes, \
    tenure_months, invoices_12m, open_items, contacts_3m, days_since_last_payment";

/// Customers (not yet late stage) of the 2026-10-31 snapshot, then the rows where
/// `risk_score`, `risk_points` and `risk_reasons` over `customer_features` disagree with
/// `risk_scores()`'s PD, score and first reason, then `extra`'s columns.
fn agreement_query(extra: &str) -> String {
    let f: Vec<String> = FEATURES.split(", ").map(|c| format!("f.{c}")).collect();
    let f = f.join(", ");
    format!(
        "SELECT count(*) AS n, \
           sum(CASE WHEN abs(s.pd - risk_score({f})) > 1e-12 THEN 1 ELSE 0 END) AS pd_diff, \
           sum(CASE WHEN s.score <> risk_points({f}) THEN 1 ELSE 0 END) AS points_diff, \
           sum(CASE WHEN s.reason_1 IS DISTINCT FROM risk_reasons({f})[1] THEN 1 ELSE 0 END) AS reason_diff \
           {extra} \
         FROM risk_scores('2026-10-31') s JOIN customer_features('2026-10-31') f USING (customer_id) \
         WHERE NOT s.late_stage"
    )
}

fn default_model() -> std::path::PathBuf {
    repo_root().join("data/models/default.json")
}

/// Equal JSON, numbers within a relative 1e-6 (floating-point sums may round
/// differently on another CPU); `path` says where a difference is.
fn assert_json_close(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-9),
                "{path}: {x} vs {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_json_close(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: Vec<_> = x.keys().collect();
            assert_eq!(keys, y.keys().collect::<Vec<_>>(), "{path}: keys");
            for k in x.keys() {
                assert_json_close(&x[k], &y[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn retraining_on_the_demo_reproduces_the_committed_default_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.json");
    let report = dir.path().join("report.json");
    let printed = run_ok(&[
        "train",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(printed.contains("champion: binned scorecard"), "{printed}");
    assert!(printed.contains("candidate: logistic"), "{printed}");
    assert!(printed.contains("the champion is"), "{printed}");
    assert!(
        printed.contains("information value of each feature"),
        "{printed}"
    );
    assert!(printed.contains("5-fold cross-validation"), "{printed}");
    assert!(
        printed.contains("baseline: rank by current max DPD"),
        "{printed}"
    );
    assert!(printed.contains("calibration"), "{printed}");
    let fresh: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(default_model()).unwrap()).unwrap();
    assert_json_close(&fresh, &committed, "model");
    // The data fingerprint is exact.
    assert_eq!(
        fresh["training"]["fingerprint"],
        committed["training"]["fingerprint"]
    );

    // The quality bar: out of time, the champion beats "rank by max DPD" on AUC and on
    // the share of bads in the riskiest 20 %.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let validation = report["validation"].as_array().unwrap();
    let champion = &validation[0];
    let baseline = validation
        .iter()
        .find(|m| m["model"].as_str().unwrap().starts_with("baseline"))
        .unwrap();
    let f = |m: &Value, k: &str| m[k].as_f64().unwrap();
    assert!(f(champion, "auc") > f(baseline, "auc"), "{report}");
    assert!(
        f(champion, "capture_top_20") > f(baseline, "capture_top_20"),
        "{report}"
    );
    // Out of time: validation snapshots come after the training snapshots.
    let t = &fresh["training"];
    assert!(t["train_to"].as_str().unwrap() < t["validation_from"].as_str().unwrap());
}

/// Copies the demo warehouse keeping only what is dated on or before `cutoff`: the
/// snapshots up to it and the events dated up to it.
fn truncate_demo(to: &Path, cutoff: i32, cutoff_text: &str) {
    let event_dates = [
        ("invoices", "invoice_date"),
        ("payments", "payment_date"),
        ("activities", "activity_date"),
        ("write_offs", "write_off_date"),
    ];
    for table in [
        "customers",
        "open_items",
        "invoices",
        "payments",
        "activities",
        "write_offs",
        "collectors",
    ] {
        let from_dir = demo().join(table);
        for entry in walk(&from_dir) {
            let relative = entry.strip_prefix(&from_dir).unwrap();
            let target = to.join(table).join(relative);
            // Snapshot partitions after the cutoff are left out.
            if let Some(partition) = relative.iter().next().and_then(|p| p.to_str())
                && let Some(date) = partition.strip_prefix("snapshot_date=")
                && date > cutoff_text
            {
                continue;
            }
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            match event_dates.iter().find(|(t, _)| *t == table) {
                None => {
                    std::fs::copy(&entry, &target).unwrap();
                }
                Some((_, column)) => {
                    let reader =
                        ParquetRecordBatchReaderBuilder::try_new(File::open(&entry).unwrap())
                            .unwrap()
                            .build()
                            .unwrap();
                    let mut writer: Option<ArrowWriter<File>> = None;
                    for batch in reader {
                        let batch: RecordBatch = batch.unwrap();
                        let dates = batch.column_by_name(column).unwrap();
                        let keep: BooleanArray =
                            lt_eq(dates, &Date32Array::new_scalar(cutoff)).unwrap();
                        let kept = filter_record_batch(&batch, &keep).unwrap();
                        writer
                            .get_or_insert_with(|| {
                                ArrowWriter::try_new(
                                    File::create(&target).unwrap(),
                                    batch.schema(),
                                    None,
                                )
                                .unwrap()
                            })
                            .write(&kept)
                            .unwrap();
                    }
                    writer.unwrap().close().unwrap();
                }
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn features_read_nothing_dated_after_the_snapshot() {
    // Cut the demo at 2026-06-30: features of every snapshot up to the cut must come out
    // identical, though the full warehouse holds four more months of everything.
    let dir = tempfile::tempdir().unwrap();
    truncate_demo(dir.path(), days("2026-06-30"), "2026-06-30");
    let query = "SELECT * FROM customer_features('2025-11-30', '2026-06-30') ORDER BY snapshot_date, customer_id";
    let full = run_ok(&["sql", query, "--format", "csv"]);
    let cut = run_ok(&[
        "sql",
        "-w",
        dir.path().to_str().unwrap(),
        query,
        "--format",
        "csv",
    ]);
    assert!(
        full.lines().count() > 15_000,
        "{} rows",
        full.lines().count()
    );
    assert!(
        full == cut,
        "features differ once data after the snapshot is removed"
    );
    // The truncation did remove data (payments after the cut exist in the demo).
    let later = run_ok(&[
        "sql",
        "SELECT count(*) AS n FROM payments WHERE payment_date > DATE '2026-06-30'",
        "--format",
        "csv",
    ]);
    assert_ne!(later.trim(), "n\n0");
    // Labels, on the other hand, need the future: they are NULL in the cut warehouse.
    let labels = run_ok(&[
        "sql",
        "-w",
        dir.path().to_str().unwrap(),
        "SELECT count(*) AS n FROM risk_labels('2026-04-30', '2026-06-30') WHERE went_bad IS NOT NULL",
        "--format",
        "csv",
    ]);
    assert_eq!(labels.trim(), "n\n0");
}

fn days(date: &str) -> i32 {
    let v = datafusion::common::ScalarValue::Utf8(Some(date.into()))
        .cast_to(&DataType::Date32)
        .unwrap();
    match v {
        datafusion::common::ScalarValue::Date32(Some(d)) => d,
        _ => unreachable!(),
    }
}

#[test]
fn score_writes_one_row_per_customer_and_sql_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores.parquet");
    let output = run(&[
        "score",
        "--as-of",
        "2026-10-31",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("scored 2000 rows") && stderr.contains("PSI"),
        "{stderr}"
    );
    let batches: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 2000);
    for b in &batches {
        let pd = cast(b.column_by_name("pd").unwrap(), &DataType::Float64).unwrap();
        let pd = pd.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        let late = b.column_by_name("late_stage").unwrap().as_boolean().clone();
        let dates = b
            .column_by_name("snapshot_date")
            .unwrap()
            .as_primitive::<Date32Type>()
            .clone();
        for r in 0..b.num_rows() {
            assert!((0.0..=1.0).contains(&pd.value(r)));
            assert_eq!(dates.value(r), days("2026-10-31"));
            if late.value(r) {
                assert_eq!(pd.value(r), 1.0);
            }
        }
    }

    // risk_score(...) over customer_features gives the same PD as risk_scores(), and
    // risk_points / risk_reasons agree with its score and reasons.
    let query = agreement_query("");
    let csv = run_ok(&["sql", &query, "--format", "csv"]);
    let values: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert!(values[0].parse::<u32>().unwrap() > 1000, "{csv}");
    assert_eq!(&values[1..], ["0", "0", "0"], "{csv}");

    // Reasons are sentences, and the riskiest customers have three of them.
    let top = run_ok(&[
        "sql",
        "SELECT reason_1, reason_2, reason_3 FROM risk_scores() WHERE NOT late_stage ORDER BY pd DESC, customer_id LIMIT 5",
        "--format",
        "csv",
    ]);
    for line in top.lines().skip(1) {
        assert_eq!(
            line.split(',').filter(|s| !s.is_empty()).count(),
            3,
            "{top}"
        );
    }
    assert!(
        top.contains("days past due") || top.contains("past due"),
        "{top}"
    );
}

#[test]
fn artifacts_that_do_not_fit_the_data_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(default_model()).unwrap();

    let renamed = dir.path().join("renamed.json");
    std::fs::write(&renamed, text.replace("\"utilization\"", "\"utilisation\"")).unwrap();
    let err = run_err(&["score", "--model", renamed.to_str().unwrap()]);
    assert!(
        err.contains("no column `utilisation`") && err.contains("renamed.json"),
        "{err}"
    );

    let mut model: Value = serde_json::from_str(&text).unwrap();
    model["features"][0] =
        serde_json::json!({"name": "segment", "type": "numeric", "missing_value": 0.0});
    // Keep the design width consistent so that only the type is wrong.
    let levels = serde_json::from_str::<Value>(&text).unwrap()["features"][0]["levels"]
        .as_array()
        .unwrap()
        .len();
    for key in ["design_columns", "coefficients"] {
        let a = model[key].as_array_mut().unwrap();
        a.drain(1..levels);
    }
    for key in ["mean", "std"] {
        model["scaler"][key]
            .as_array_mut()
            .unwrap()
            .drain(1..levels);
    }
    let retyped = dir.path().join("retyped.json");
    std::fs::write(&retyped, serde_json::to_string(&model).unwrap()).unwrap();
    let err = run_err(&["score", "--model", retyped.to_str().unwrap()]);
    assert!(
        err.contains("feature `segment` is numeric in the model") && err.contains("Utf8"),
        "{err}"
    );

    let damaged = dir.path().join("damaged.json");
    std::fs::write(
        &damaged,
        text.replacen("\"coefficients\": [", "\"coefficients\": [1.0, ", 1),
    )
    .unwrap();
    let err = run_err(&["score", "--model", damaged.to_str().unwrap()]);
    assert!(err.contains("damaged"), "{err}");

    let future = dir.path().join("future.json");
    std::fs::write(
        &future,
        text.replacen("\"format_version\": 1", "\"format_version\": 99", 1),
    )
    .unwrap();
    let err = run_err(&["sql", "--model", future.to_str().unwrap(), "SELECT 1"]);
    assert!(err.contains("format version 99"), "{err}");

    let err = run_err(&["sql", "SELECT risk_score(1.0, 2.0) FROM customers_latest"]);
    assert!(err.contains("takes 23 features"), "{err}");
}

/// A labelled table: defaults are likelier with high debt ratio and in region "north".
fn write_loans_csv(path: &Path, rows: usize) {
    let mut text = String::from("loan_id,region,debt_ratio,years,defaulted\n");
    let mut state: u64 = 7;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..rows {
        let region = ["north", "south", "east"][i % 3];
        let debt = next();
        let years = (next() * 20.0).floor();
        let risk = -3.0 + 4.0 * debt + if region == "north" { 1.0 } else { 0.0 };
        let bad = next() < 1.0 / (1.0 + (-risk).exp());
        // Some debt ratios are missing.
        let debt_text = if i % 17 == 0 {
            String::new()
        } else {
            format!("{debt:.4}")
        };
        text.push_str(&format!(
            "L{i:05},{region},{debt_text},{years},{}\n",
            bad as u8
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn any_labelled_table_trains_and_scores() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("loans.csv");
    write_loans_csv(&table, 3000);
    let model = dir.path().join("loans.json");
    let printed = run_ok(&[
        "train",
        "--quiet",
        "--table",
        table.to_str().unwrap(),
        "--label",
        "defaulted",
        "--id",
        "loan_id",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(
        printed.contains("validated on a fixed pseudo-random third of the rows"),
        "{printed}"
    );
    let artifact: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(artifact["kind"], "table");
    let names: Vec<&str> = artifact["design_columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "region=east",
            "region=north",
            "region=south",
            "debt_ratio",
            "years"
        ]
    );
    let auc = artifact["report"]["validation"][0]["auc"].as_f64().unwrap();
    assert!(auc > 0.65, "AUC {auc}");
    // Debt raises the PD, years do not matter much.
    let coefficients = artifact["coefficients"].as_array().unwrap();
    assert!(coefficients[3].as_f64().unwrap() > 0.3);

    let scores = dir.path().join("scores.csv");
    run_ok(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
        "--out",
        scores.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&scores).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "loan_id,pd,score,reason_1,reason_2,reason_3"
    );
    assert_eq!(text.lines().count(), 3001);
    assert!(text.lines().nth(1).unwrap().starts_with("L00000,"));

    // The model needs its columns.
    let partial = dir.path().join("partial.csv");
    std::fs::write(&partial, "loan_id,region,years\nL1,north,3\n").unwrap();
    let err = run_err(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--table",
        partial.to_str().unwrap(),
    ]);
    assert!(err.contains("no column `debt_ratio`"), "{err}");
    // A warehouse needs a warehouse model.
    let err = run_err(&["score", "--model", model.to_str().unwrap()]);
    assert!(err.contains("trained on a table"), "{err}");
    // An identifier passed as a feature is caught.
    let err = run_err(&[
        "train",
        "--quiet",
        "--table",
        table.to_str().unwrap(),
        "--label",
        "defaulted",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(
        err.contains("`loan_id`") && err.contains("--id loan_id"),
        "{err}"
    );
    // A bad label names the row.
    std::fs::write(&partial, "x,y\n1,1\n2,maybe\n").unwrap();
    let err = run_err(&[
        "train",
        "--quiet",
        "--table",
        partial.to_str().unwrap(),
        "--label",
        "y",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(err.contains("column `y`, row 2: value 'maybe'"), "{err}");
}

#[test]
fn functions_lists_the_model_functions_with_the_feature_order() {
    let text = run_ok(&["functions", "risk_score"]);
    assert!(text.contains(&format!("risk_score({FEATURES})")), "{text}");
    // Named exactly, the function alone; the others that match are named below it.
    assert!(!text.contains("risk_scores (table)"), "{text}");
    assert!(text.ends_with("Also matching: risk_scores\n"), "{text}");
    let all = run_ok(&["functions", "risk_sc"]);
    assert!(
        all.contains("risk_score (scalar)") && all.contains("risk_scores (table)"),
        "{all}"
    );
}

/// `arq ARGS` with `ARQ_FEATURE_SLICE` set to `slice` (unset: None): its standard output.
fn with_feature_slice(args: &[&str], slice: Option<&str>) -> Vec<u8> {
    let mut cmd = crate::util::arq();
    cmd.args(args);
    if let Some(s) = slice {
        cmd.env("ARQ_FEATURE_SLICE", s);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `arq ARGS` with `ARQ_FEATURE_SLICE=value` is refused, naming the variable.
fn refuses_feature_slice(args: &[&str], value: &str) {
    let bad = crate::util::arq()
        .args(args)
        .env("ARQ_FEATURE_SLICE", value)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "ARQ_FEATURE_SLICE={value}: give a number of customers"
        )),
        "{stderr}"
    );
}

#[test]
fn features_in_customer_slices_score_like_the_whole_snapshot() {
    let score = |slice: Option<&str>, as_of: &str| {
        with_feature_slice(&["score", "--as-of", as_of, "--format", "csv"], slice)
    };
    // The demo's 2,000 customers in one query, in slices of 300 (7 ranges) and of 7.
    for as_of in ["2026-10-31", "2026-06-30"] {
        let whole = score(None, as_of);
        assert!(whole.len() > 100_000);
        assert!(
            whole == score(Some("300"), as_of),
            "{as_of}: slices of 300 differ"
        );
    }
    assert!(score(None, "2026-10-31") == score(Some("7"), "2026-10-31"));
    refuses_feature_slice(&["score"], "0");
}

#[test]
fn customer_features_and_risk_scores_in_sql_are_computed_in_customer_slices() {
    // A million customers in one feature query took 20 GB and more; `arq sql` computes
    // the table functions a slice of customers at a time, as the nightly does. The
    // demo's 2,000 customers: one query (the default slice is 25,000), slices of 300 and
    // of 7 — the same rows, byte for byte.
    let sql = |slice: Option<&str>, query: &str| {
        with_feature_slice(&["sql", "--format", "csv", query], slice)
    };
    let features = "SELECT * FROM customer_features('2026-10-31') ORDER BY customer_id";
    for query in [
        features,
        "SELECT * FROM customer_features('2026-08-31', '2026-10-31') \
         ORDER BY snapshot_date, customer_id",
        "SELECT * FROM risk_scores('2026-09-30') ORDER BY customer_id",
    ] {
        let whole = sql(None, query);
        assert!(whole.len() > 100_000, "{query}");
        assert!(
            whole == sql(Some("300"), query),
            "{query}: slices of 300 differ"
        );
    }
    assert!(
        sql(None, features) == sql(Some("7"), features),
        "slices of 7 differ"
    );
    refuses_feature_slice(&["sql", "SELECT 1"], "none");
}

/// The check of the reason codes over the whole demo snapshot: every reason the
/// model gives raises that customer's risk (a positive contribution against the
/// portfolio's typical customer), on an adverse value, and names each fact once.
#[test]
fn every_reason_on_the_demo_raises_the_risk_on_an_adverse_value() {
    use arq_models::features::features_sql;
    use arq_models::reasons::{Adverse, reason_rule};
    let dir = tempfile::tempdir().unwrap();
    let day = arq_udfs::dates::to_days(arq_udfs::dates::parse("2026-10-31").unwrap());
    let sql = dir.path().join("features.sql");
    std::fs::write(&sql, features_sql(day, day)).unwrap();
    let out = dir.path().join("features.parquet");
    run_ok(&[
        "sql",
        "-f",
        sql.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let batch = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(batch.num_rows(), 2000);
    let text = std::fs::read_to_string(default_model()).unwrap();
    let model = arq_models::RiskModel::from_json(&text, "default.json").unwrap();
    let columns: Vec<_> = model
        .bind(&batch.schema(), "default.json")
        .unwrap()
        .into_iter()
        .map(|i| batch.column(i).clone())
        .collect();
    let picked = model.reason_features(&columns, 3).unwrap();
    let contributions = model.contribution_matrix(&columns).unwrap();
    let mut reasons = 0;
    for (row, features) in picked.iter().enumerate() {
        let mut groups = Vec::new();
        for &j in features {
            let feature = &model.features[j];
            assert!(
                contributions[row][j] > 0.0,
                "row {row}: {} lowers the risk",
                feature.name
            );
            let rule = reason_rule(&feature.name).expect("one of arq's features");
            assert!(
                !groups.contains(&rule.group),
                "row {row}: {} twice",
                rule.group
            );
            groups.push(rule.group);
            match rule.adverse {
                Adverse::Never => panic!("row {row}: {} is never a reason", feature.name),
                Adverse::High => {
                    let value = cast(&columns[j], &DataType::Float64).unwrap();
                    let value = value.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
                    assert!(
                        value.value(row) > 0.0,
                        "row {row}: {} = {}",
                        feature.name,
                        value.value(row)
                    );
                }
                Adverse::Low => {}
            }
            reasons += 1;
        }
    }
    assert!(reasons > 2000, "{reasons} reasons over 2000 customers");
}

/// `arq train --as-of` trains as if the warehouse ended on that day: its snapshots up to
/// then, labelled only with what was known by then — so a backtest after it is out of
/// sample.
#[test]
fn training_as_of_a_date_reads_nothing_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.json");
    run_ok(&[
        "--as-of",
        "2026-07-31",
        "train",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let model: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let training = &model["training"];
    // A label needs 90 days after its snapshot: the last labelled snapshot is 2026-04-30.
    let last = training["validation_to"].as_str().unwrap();
    assert!(last <= "2026-04-30", "{training}");
    assert!(training["train_to"].as_str().unwrap() < last, "{training}");
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(default_model()).unwrap()).unwrap();
    assert_ne!(
        training["fingerprint"],
        committed["training"]["fingerprint"]
    );
}

/// Whatever candidate ships, the model's SQL functions, the queues and the limits use it:
/// a forest champion (given with --champion) scores in SQL exactly as `risk_scores()`
/// does, its reasons are its path contributions, and the queues and limits carry them.
#[test]
fn a_forest_champion_works_in_sql_queues_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("forest.json");
    let model = model.to_str().unwrap();
    let printed = run_ok(&[
        "train",
        "--quiet",
        "--champion",
        "forest",
        "--trees",
        "10",
        "--out",
        model,
    ]);
    assert!(
        printed.contains("the champion is the forest") && printed.contains("as given (--champion)"),
        "{printed}"
    );
    let artifact: Value = serde_json::from_str(&std::fs::read_to_string(model).unwrap()).unwrap();
    assert_eq!(artifact["champion"], "forest");
    assert_eq!(artifact["forest"]["trees"].as_array().unwrap().len(), 10);

    let query = agreement_query(
        ", sum(CASE WHEN s.score <> scorecard_points(s.pd) THEN 1 ELSE 0 END) AS scaling_diff, \
         sum(CASE WHEN s.reason_1 IS NOT NULL THEN 1 ELSE 0 END) AS with_reasons",
    );
    let csv = run_ok(&["sql", "--model", model, &query, "--format", "csv"]);
    let values: Vec<u32> = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(values[0] > 1000, "{csv}");
    // Same PD, points (the scaling of the PD) and first reason everywhere.
    assert_eq!(&values[1..5], [0, 0, 0, 0], "{csv}");
    assert!(values[5] > 100, "{csv}");
    // The forest's PDs are not the default model's.
    let pds = |model: &str| {
        crate::util::csv_rows(&run_ok(&[
            "sql",
            "--model",
            model,
            "SELECT pd FROM risk_scores('2026-10-31') ORDER BY customer_id",
            "--format",
            "csv",
        ]))
    };
    let (forest, default) = (pds(model), pds(default_model().to_str().unwrap()));
    assert_eq!(forest.len(), default.len());
    let differ = forest.iter().zip(&default).filter(|(a, b)| a != b).count();
    assert!(differ > 1000, "{differ}");

    // The queues and the limits read the forest's PDs and reasons.
    let scores = crate::util::Table::parse(&run_ok(&[
        "sql",
        "--model",
        model,
        "SELECT customer_id, pd, reason_1 FROM risk_scores('2026-10-31')",
        "--format",
        "csv",
    ]));
    let pd_of: std::collections::BTreeMap<&str, (&str, &str)> = scores
        .records()
        .map(|r| (r.get("customer_id"), (r.get("pd"), r.get("reason_1"))))
        .collect();
    let queues =
        crate::util::Table::parse(&run_ok(&["queue", "--model", model, "--format", "csv"]));
    let limits =
        crate::util::Table::parse(&run_ok(&["limits", "--model", model, "--format", "csv"]));
    assert!(queues.rows.len() > 100 && limits.rows.len() == 2000);
    for table in [&queues, &limits] {
        let mut with_reasons = 0;
        for r in table.records() {
            let (pd, reason) = pd_of[r.get("customer_id")];
            assert!(
                (r.num("pd") - pd.parse::<f64>().unwrap()).abs() < 1e-6,
                "{r:?} vs {pd}"
            );
            if !reason.is_empty() {
                assert!(r.get("risk_reasons").starts_with(reason), "{r:?}");
                with_reasons += 1;
            }
        }
        assert!(with_reasons > 50, "{with_reasons}");
    }
}

/// One snapshot's features (the nightly's query: each customer's aggregates straight
/// from the events, `features::ONE_SNAPSHOT`) are those of the general query over a range
/// holding that snapshot alone — in slices and in one query. (With the settlement table:
/// `settlement::the_night_that_reads_the_table_writes_what_the_night_that_settles_from_payments_writes`.)
#[tokio::test]
async fn one_snapshot_features_equal_the_general_query() {
    use arq::warehouse::{AsOf, Warehouse};
    use arq_models::features::snapshots_features;
    let warehouse = Warehouse::open(demo(), AsOf::Latest).unwrap();
    let state = warehouse.session(None).await.unwrap().state();
    let day = days("2026-10-31");
    for slice in [300, 100_000] {
        let one = snapshots_features(&state, day, day, slice).await.unwrap();
        // From the day before: no other snapshot in range, so the general form's rows.
        let general = snapshots_features(&state, day - 1, day, slice)
            .await
            .unwrap();
        assert!(one.num_rows() > 1900, "{}", one.num_rows());
        assert_eq!(one, general, "slice {slice}");
        let dpd = one.column_by_name("max_dpd_12m").unwrap();
        let dpd = dpd.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        assert!(dpd.iter().flatten().filter(|&d| d > 0.0).count() > 100);
        let since = one.column_by_name("days_since_last_payment").unwrap();
        let since = since.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        assert!(since.iter().flatten().filter(|&d| d < 365.0).count() > 100);
    }
}

/// The previous snapshot scored with tonight's (the nightly's first night and `arq
/// limits`, for the class migration) gets exactly the scores it gets alone, and so does
/// tonight's — in slices and in one query.
#[tokio::test]
async fn two_snapshots_scored_together_score_as_each_alone() {
    use arq::warehouse::{AsOf, Warehouse};
    use arq_models::scores::{score_snapshot, score_snapshots};
    let warehouse = Warehouse::open(demo(), AsOf::Latest).unwrap();
    let state = warehouse.session(None).await.unwrap().state();
    let text = std::fs::read_to_string(default_model()).unwrap();
    let model = arq_models::RiskModel::from_json(&text, "default.json").unwrap();
    let (previous, day) = (days("2026-09-30"), days("2026-10-31"));
    for slice in [300, 100_000] {
        let both = score_snapshots(&state, &model, "m", &[previous, day], slice)
            .await
            .unwrap();
        assert_eq!(both.len(), 2);
        for (scores, d) in both.iter().zip([previous, day]) {
            let alone = score_snapshot(&state, &model, "m", d, slice).await.unwrap();
            assert_eq!(scores.day, d);
            assert!(scores.len() > 1900, "{}", scores.len());
            assert_eq!(scores.batch(), alone.batch(), "slice {slice}, day {d}");
        }
    }
}
