//! Runs every `tests/slt/*.slt` file through the published `datafusion-sqllogictest`
//! runner, in a session with arq's functions and the demo warehouse registered.
//!
//! `cargo test --test sqllogictests -- aging` runs only files whose name contains
//! `aging`. Any failing record fails the whole run (non-zero exit), and the last line
//! says `N passed, M failed` (files).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use datafusion_sqllogictest::{DataFusion, df_value_validator, value_normalizer};
use indicatif::ProgressBar;
use sqllogictest::{Record, strict_column_validator};

fn slt_files(filter: Option<&str>) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .filter(|p| filter.is_none_or(|f| p.to_string_lossy().contains(f)))
        .collect();
    files.sort();
    files
}

/// The session a file runs in: arq's functions (with the default model's) and the demo warehouse, or, for files
/// that start with `# session: bare`, arq's functions only (such files create their own
/// tiny `open_items`, `invoices`, ... to check figures computed by hand).
async fn session(path: &Path) -> datafusion::prelude::SessionContext {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if text.starts_with("# session: bare") {
        let mut ctx = datafusion::prelude::SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_information_schema(true),
        );
        let none = arq_models::snapshots::Snapshots::default();
        arq_models::sql::register_session(&mut ctx, None, &none).expect("arq functions register");
        return ctx;
    }
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo");
    let warehouse = arq::Warehouse::open(&demo, arq::AsOf::Latest).expect("demo warehouse opens");
    // The committed default model, as in `arq sql`.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models/default.json");
    let text = std::fs::read_to_string(&path).expect("the default model is readable");
    let model = arq_models::sql::SessionModel {
        model: std::sync::Arc::new(
            arq_models::RiskModel::from_json(&text, "data/models/default.json")
                .expect("the default model loads"),
        ),
        name: "data/models/default.json".into(),
    };
    warehouse
        .session(Some(&model))
        .await
        .expect("session with arq functions, the model's and the demo tables")
}

/// Runs one file; returns the failures, one message per failing record.
async fn run_file(path: &Path) -> Vec<String> {
    let ctx = session(path).await;
    let relative = PathBuf::from(path.file_name().expect("file name"));
    let mut runner = sqllogictest::Runner::new(|| {
        let (ctx, relative) = (ctx.clone(), relative.clone());
        async move { Ok(DataFusion::new(ctx, relative, ProgressBar::hidden())) }
    });
    runner.with_column_validator(strict_column_validator);
    runner.with_normalizer(value_normalizer);
    runner.with_validator(df_value_validator);
    let records = match sqllogictest::parse_file(path) {
        Ok(records) => records,
        Err(e) => return vec![format!("cannot parse: {e}")],
    };
    let mut failures = Vec::new();
    for record in records {
        if let Record::Halt { .. } = record {
            break;
        }
        if let Err(e) = runner.run_async(record).await {
            failures.push(e.to_string());
        }
    }
    failures
}

#[tokio::main]
async fn main() -> ExitCode {
    // `cargo test FILTER` passes FILTER (and libtest flags, which are ignored) here.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let files = slt_files(filter.as_deref());
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let failures = run_file(file).await;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        if failures.is_empty() {
            println!("slt {name} ... ok");
            passed += 1;
        } else {
            println!("slt {name} ... FAILED ({} records)", failures.len());
            for f in &failures {
                println!("{f}\n");
            }
            failed += 1;
        }
    }
    if files.is_empty() && filter.is_none() {
        println!("no .slt files found in tests/slt");
        failed += 1;
    }
    println!("sqllogictest: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
