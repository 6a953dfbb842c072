//! The risk model's speed: fitting the champion (standardize + linfa logistic regression,
//! L-BFGS) on 1 M rows × 20 features, and scoring 10 M rows in SQL with `risk_score`
//! against only reading the same 20 feature columns.
//!
//! ```sh
//! cargo bench -p arq-models --bench model                 # both
//! python3 benches/train_vs_sklearn.py                     # the fit against scikit-learn
//! ```
//!
//! `ARQ_BENCH_TRAIN_ROWS` / `ARQ_BENCH_SCORE_ROWS` change the sizes; with `ARQ_BENCH_NPY=DIR`
//! the training data is also written as `DIR/x.npy` and `DIR/y.npy` for the comparison
//! script. Figures: benches/README.md.

use std::io::Write;
use std::sync::Arc;

use arq_models::encoding::{Scaler, design_matrix};
use arq_models::model::ModelKind;
use arq_models::sql::SessionModel;
use arq_models::train::{LabelledData, TrainOptions, fit_logistic, train};
use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

const FEATURES: usize = 20;
const BATCH: usize = 65_536;

fn env_rows(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(
        (0..FEATURES)
            .map(|j| Field::new(format!("f{j:02}"), DataType::Float64, false))
            .collect::<Vec<_>>(),
    ))
}

/// Fixed-seed rows: features are sums of uniforms (bell-shaped) with different scales,
/// the label is drawn from a logistic model of the first 12 features (about 10 % bad).
struct Rows {
    state: u64,
}

impl Rows {
    fn next(&mut self) -> f64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }

    fn batch(&mut self, len: usize) -> (RecordBatch, Vec<bool>) {
        let mut columns: Vec<Vec<f64>> = (0..FEATURES).map(|_| Vec::with_capacity(len)).collect();
        let mut bad = Vec::with_capacity(len);
        for _ in 0..len {
            let mut log_odds = -3.0;
            for (j, column) in columns.iter_mut().enumerate() {
                let v = (self.next() + self.next() + self.next() - 1.5) * (1.0 + j as f64);
                if j < 12 {
                    log_odds += v * 0.4 / (1.0 + j as f64) * if j % 2 == 0 { 1.0 } else { -1.0 };
                }
                column.push(v);
            }
            bad.push(self.next() < 1.0 / (1.0 + (-log_odds).exp()));
        }
        let arrays: Vec<ArrayRef> = columns
            .into_iter()
            .map(|c| Arc::new(Float64Array::from(c)) as ArrayRef)
            .collect();
        (RecordBatch::try_new(schema(), arrays).expect("batch"), bad)
    }
}

fn labelled(n: usize) -> (RecordBatch, Vec<bool>) {
    Rows {
        state: 0x9e37_79b9_7f4a_7c15,
    }
    .batch(n)
}

/// `.npy` version 1.0 of a row-major f64 matrix or a vector.
fn write_npy(path: &std::path::Path, shape: &str, values: impl Iterator<Item = f64>) {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("npy file"));
    out.write_all(b"\x93NUMPY\x01\x00").unwrap();
    out.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    out.write_all(header.as_bytes()).unwrap();
    for v in values {
        out.write_all(&v.to_le_bytes()).unwrap();
    }
    out.flush().unwrap();
}

fn bench_training(c: &mut Criterion) {
    let n = env_rows("ARQ_BENCH_TRAIN_ROWS", 1_000_000);
    let (batch, bad) = labelled(n);
    let rows: Vec<usize> = (0..n).collect();
    let features: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, col)| arq_models::encoding::Feature::fit(f.name(), col, &rows).expect("fit"))
        .collect();
    if let Ok(dir) = std::env::var("ARQ_BENCH_NPY") {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).expect("npy folder");
        let x = design_matrix(&features, batch.columns()).expect("matrix");
        write_npy(
            &dir.join("x.npy"),
            &format!("({n}, {FEATURES})"),
            x.iter().copied(),
        );
        write_npy(
            &dir.join("y.npy"),
            &format!("({n},)"),
            bad.iter().map(|&b| b as u8 as f64),
        );
    }
    let options = TrainOptions::default();
    // The fit at one L2 strength (train_vs_sklearn.py gives scikit-learn the same C).
    let alpha = 1.0;
    let mut group = c.benchmark_group("train");
    group.sample_size(10);
    group.bench_function(format!("logistic_{n}_rows_x{FEATURES}"), |b| {
        b.iter(|| {
            let mut x = design_matrix(&features, batch.columns()).expect("matrix");
            let scaler = Scaler::fit(&x);
            scaler.transform(&mut x);
            fit_logistic(x.view(), &bad, alpha, &options).expect("fit")
        })
    });
    group.finish();
}

fn bench_scoring(c: &mut Criterion) {
    let n = env_rows("ARQ_BENCH_SCORE_ROWS", 10_000_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // A model of the 20 features, trained on 100,000 rows.
    let (sample, bad) = labelled(100_000);
    let data = LabelledData {
        source: "bench".into(),
        kind: ModelKind::Table,
        label: "bad".into(),
        id_columns: vec![],
        features: sample,
        bad,
        periods: None,
        baseline: None,
        reason_texts: |_| None,
    };
    let model = train(
        &data,
        &TrainOptions {
            trees: 2,
            ..TrainOptions::default()
        },
        &mut |_| {},
    )
    .expect("model");

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("features.parquet");
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&path).expect("file"), schema(), None)
            .expect("writer");
    let mut rows = Rows { state: 42 };
    let mut done = 0;
    while done < n {
        let len = BATCH.min(n - done);
        writer.write(&rows.batch(len).0).expect("write");
        done += len;
    }
    writer.close().expect("close");

    let ctx = SessionContext::new();
    arq_models::sql::register(
        &ctx,
        Some(&SessionModel {
            model: Arc::new(model),
            name: "bench".into(),
        }),
        &arq_models::snapshots::Snapshots::default(),
    )
    .expect("register");
    runtime
        .block_on(ctx.register_parquet(
            "features",
            path.to_str().expect("utf-8"),
            ParquetReadOptions::default(),
        ))
        .expect("table");
    let columns: Vec<String> = (0..FEATURES).map(|j| format!("f{j:02}")).collect();
    let read = format!("SELECT sum({}) FROM features", columns.join(" + "));
    let score = format!(
        "SELECT sum(risk_score({})) FROM features",
        columns.join(", ")
    );
    let run = |sql: &str| {
        runtime
            .block_on(async { ctx.sql(sql).await?.collect().await })
            .expect("query")
    };
    let mut group = c.benchmark_group("score_sql");
    group.sample_size(10);
    group.bench_function(format!("read_features_{n}_rows"), |b| b.iter(|| run(&read)));
    group.bench_function(format!("risk_score_{n}_rows"), |b| b.iter(|| run(&score)));
    group.finish();
}

criterion_group!(benches, bench_training, bench_scoring);
criterion_main!(benches);
