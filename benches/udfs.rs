//! arq's SQL functions against the hand-written built-in DataFusion forms they replace,
//! over 10 M rows: through SQL over Parquet, and through `invoke_with_args` against the
//! built-in expression evaluated as a physical expression on the same batches.
//!
//! ```sh
//! cargo bench -p arq-udfs --bench udfs     # ARQ_BENCH_ROWS=1000000 for a quicker run
//! ```
//!
//! The data (due dates spread over two years, decimal amounts, 1 M customers) is written
//! once to a temporary Parquet file by a fixed-seed generator. Figures: benches/README.md.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::array::{ArrayRef, Date32Array, Decimal128Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

const AS_OF: i32 = 20_757; // 2026-10-31
const BATCH: usize = 8192;

fn rows() -> usize {
    std::env::var("ARQ_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("due_date", DataType::Date32, false),
        Field::new("open_amount", DataType::Decimal128(18, 2), false),
    ]))
}

/// Fixed-seed batches: due dates from 600 days before to 120 days after the as-of date.
fn batches(n: usize) -> Vec<RecordBatch> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    let mut done = 0;
    while done < n {
        let len = BATCH.min(n - done);
        let customers: StringArray = (0..len)
            .map(|_| Some(format!("C{:07}", next() % 1_000_000)))
            .collect();
        let due: Date32Array = (0..len)
            .map(|_| Some(AS_OF - 600 + (next() % 720) as i32))
            .collect();
        let amounts =
            Decimal128Array::from_iter_values((0..len).map(|_| (next() % 5_000_000) as i128 + 1))
                .with_data_type(DataType::Decimal128(18, 2));
        let columns: Vec<ArrayRef> = vec![Arc::new(customers), Arc::new(due), Arc::new(amounts)];
        out.push(RecordBatch::try_new(schema(), columns).expect("batch"));
        done += len;
    }
    out
}

async fn context(dir: &std::path::Path, data: &[RecordBatch]) -> SessionContext {
    let path = dir.join("items.parquet");
    let file = std::fs::File::create(&path).expect("bench file");
    let mut writer = ArrowWriter::try_new(file, schema(), None).expect("writer");
    for b in data {
        writer.write(b).expect("write");
    }
    writer.close().expect("close");
    let mut ctx = SessionContext::new();
    arq_udfs::register_session(&mut ctx).expect("register");
    ctx.register_parquet(
        "items",
        path.to_str().expect("utf-8"),
        ParquetReadOptions::default(),
    )
    .await
    .expect("register parquet");
    ctx
}

/// The built-in forms the functions replace.
const DPD_BUILTIN: &str = "greatest(CAST(DATE '2026-10-31' AS INT) - CAST(due_date AS INT), 0)";
const BUCKET_BUILTIN: &str = "CASE
      WHEN CAST(DATE '2026-10-31' AS INT) - CAST(due_date AS INT) <= 0 THEN 'current'
      WHEN CAST(DATE '2026-10-31' AS INT) - CAST(due_date AS INT) <= 30 THEN '1-30'
      WHEN CAST(DATE '2026-10-31' AS INT) - CAST(due_date AS INT) <= 60 THEN '31-60'
      WHEN CAST(DATE '2026-10-31' AS INT) - CAST(due_date AS INT) <= 90 THEN '61-90'
      WHEN CAST(DATE '2026-10-31' AS INT) - CAST(due_date AS INT) <= 120 THEN '91-120'
      ELSE '121+' END";

fn bench(c: &mut Criterion) {
    let runtime = &tokio::runtime::Runtime::new().expect("runtime");
    let n = rows();
    let data = batches(n);
    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = runtime.block_on(context(dir.path(), &data));
    let run = |sql: String| {
        let ctx = ctx.clone();
        move || {
            runtime.block_on(async {
                ctx.sql(&sql)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("run")
            })
        }
    };

    // Same answers before timing anything (values only: column names differ).
    let values = |batches: Vec<RecordBatch>| -> String {
        let unnamed: Vec<RecordBatch> = batches
            .iter()
            .map(|b| {
                let fields: Vec<Field> = (0..b.num_columns())
                    .map(|i| Field::new(format!("c{i}"), b.column(i).data_type().clone(), true))
                    .collect();
                RecordBatch::try_new(Arc::new(Schema::new(fields)), b.columns().to_vec())
                    .expect("batch")
            })
            .collect();
        datafusion::arrow::util::pretty::pretty_format_batches(&unnamed)
            .expect("format")
            .to_string()
    };
    let check = |a: &str, b: &str| {
        let (x, y) = (values(run(a.to_string())()), values(run(b.to_string())()));
        assert_eq!(x, y, "{a} and {b} disagree");
    };
    let udf_dpd = "days_past_due(due_date, DATE '2026-10-31')";
    let udf_bucket = "aging_bucket(due_date, DATE '2026-10-31')";
    check(
        &format!("SELECT sum({udf_dpd}) FROM items"),
        &format!("SELECT sum({DPD_BUILTIN}) FROM items"),
    );
    check(
        &format!(
            "SELECT {udf_bucket} b, count(*), sum(open_amount) FROM items GROUP BY 1 ORDER BY 1"
        ),
        &format!(
            "SELECT {BUCKET_BUILTIN} b, count(*), sum(open_amount) FROM items GROUP BY 1 ORDER BY 1"
        ),
    );

    let mut g = c.benchmark_group(format!("sql_parquet_{n}_rows"));
    g.sample_size(10);
    let cases = [
        (
            "days_past_due/udf",
            format!("SELECT sum({udf_dpd}) FROM items"),
        ),
        (
            "days_past_due/builtin",
            format!("SELECT sum({DPD_BUILTIN}) FROM items"),
        ),
        (
            "aging_bucket/udf",
            format!("SELECT {udf_bucket} b, sum(open_amount) FROM items GROUP BY 1"),
        ),
        (
            "aging_bucket/builtin",
            format!("SELECT {BUCKET_BUILTIN} b, sum(open_amount) FROM items GROUP BY 1"),
        ),
        (
            "aging_bucket_filter/udf",
            format!("SELECT count(*), sum(open_amount) FROM items WHERE {udf_bucket} = '91-120'"),
        ),
        (
            "aging_bucket_filter/builtin",
            format!(
                "SELECT count(*), sum(open_amount) FROM items WHERE ({BUCKET_BUILTIN}) = '91-120'"
            ),
        ),
        (
            "weighted_dpd_by_customer/udf",
            format!(
                "SELECT customer_id, weighted_dpd(open_amount, {udf_dpd}) FROM items GROUP BY 1"
            ),
        ),
        (
            "weighted_dpd_by_customer/builtin",
            format!(
                "SELECT customer_id, CAST(sum(open_amount * {udf_dpd}) AS DOUBLE) / CAST(sum(open_amount) AS DOUBLE) \
                 FROM items GROUP BY 1"
            ),
        ),
        (
            "weighted_dpd_total/udf",
            format!("SELECT weighted_dpd(open_amount, {udf_dpd}) FROM items"),
        ),
        (
            "weighted_dpd_total/builtin",
            format!(
                "SELECT CAST(sum(open_amount * {udf_dpd}) AS DOUBLE) / CAST(sum(open_amount) AS DOUBLE) FROM items"
            ),
        ),
    ];
    for (name, sql) in cases {
        let query = run(sql);
        g.bench_function(name, |b| b.iter(&query));
    }
    g.finish();

    // Direct: invoke_with_args on every batch vs the built-in expression as a physical
    // expression on the same batches (no Parquet, no planning in the loop).
    let df_schema = DFSchema::try_from(schema().as_ref().clone()).expect("schema");
    let state = ctx.state();
    let physical = |sql_expr: &str| {
        let expr = state
            .create_logical_expr(sql_expr, &df_schema)
            .expect("expr");
        state
            .create_physical_expr(expr, &df_schema)
            .expect("physical")
    };
    let builtin_dpd = physical(DPD_BUILTIN);
    let builtin_bucket = physical(BUCKET_BUILTIN);
    let as_of = ColumnarValue::Scalar(ScalarValue::Date32(Some(AS_OF)));
    let config = Arc::new(datafusion::config::ConfigOptions::default());
    let invoke = |udf: &datafusion::logical_expr::ScalarUDF, return_type: DataType| {
        let arg_fields = vec![
            Arc::new(Field::new("due_date", DataType::Date32, false)),
            Arc::new(Field::new("as_of", DataType::Date32, false)),
        ];
        let return_field = Arc::new(Field::new("r", return_type, true));
        for batch in &data {
            let args = ScalarFunctionArgs {
                args: vec![ColumnarValue::Array(batch.column(1).clone()), as_of.clone()],
                arg_fields: arg_fields.clone(),
                number_rows: batch.num_rows(),
                return_field: return_field.clone(),
                config_options: config.clone(),
            };
            std::hint::black_box(udf.invoke_with_args(args).expect("invoke"));
        }
    };
    let evaluate = |expr: &Arc<dyn datafusion::physical_expr::PhysicalExpr>| {
        for batch in &data {
            std::hint::black_box(expr.evaluate(batch).expect("evaluate"));
        }
    };
    let mut g = c.benchmark_group(format!("direct_{n}_rows"));
    g.sample_size(10);
    let dpd = arq_udfs::days_past_due_udf();
    let bucket = arq_udfs::aging_bucket_udf();
    g.bench_function("days_past_due/invoke_with_args", |b| {
        b.iter(|| invoke(&dpd, DataType::Int32))
    });
    g.bench_function("days_past_due/builtin_expr", |b| {
        b.iter(|| evaluate(&builtin_dpd))
    });
    g.bench_function("aging_bucket/invoke_with_args", |b| {
        b.iter(|| invoke(&bucket, DataType::Utf8))
    });
    g.bench_function("aging_bucket/builtin_expr", |b| {
        b.iter(|| evaluate(&builtin_bucket))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
