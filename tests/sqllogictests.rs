//! Runs every `tests/slt/*.slt` file through the published `datafusion-sqllogictest`
//! runner, in a session with arq's functions and the demo warehouse registered — three
//! times: in a local session, in a local session reading the warehouse's text as string
//! views (as `arq sql`, `shell` and `serve` read it), and in a session on a Ballista
//! cluster whose scheduler and executor run in this process (`arq cluster`'s own, with
//! arq's functions), so every query must give the same results on one machine, read
//! either way, and on a cluster. (Files that start with `# session: bare` hold their
//! own tables: they run locally and on the cluster.)
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
async fn session(path: &Path, string_views: bool) -> datafusion::prelude::SessionContext {
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
    let warehouse = arq::Warehouse::open(&demo, arq::AsOf::Latest)
        .expect("demo warehouse opens")
        .with_string_views(string_views);
    // The committed default model, as in `arq sql`.
    let model = default_model();
    warehouse
        .session(Some(&model))
        .await
        .expect("session with arq functions, the model's and the demo tables")
}

/// Where a file's queries run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Local,
    /// Locally, the warehouse's text read as string views, as `arq sql` reads it.
    Views,
    Cluster,
}

/// The in-process cluster: a scheduler and an executor (two tasks at once) on free
/// ports of 127.0.0.1, started once.
async fn cluster() -> arq::cluster::ClusterUrl {
    static URL: tokio::sync::OnceCell<arq::cluster::ClusterUrl> =
        tokio::sync::OnceCell::const_new();
    URL.get_or_init(|| async {
        use arq::cluster::process::{
            ExecutorOptions, SchedulerOptions, run_executor, run_scheduler,
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let bind: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let model = Some(default_model());
        tokio::spawn(run_scheduler(SchedulerOptions {
            bind,
            model: model.clone(),
        }));
        let url = arq::cluster::ClusterUrl::parse(&bind.to_string()).expect("a cluster URL");
        // Its shuffle files under the target folder, emptied as it starts: the process ends
        // without stopping it, so nothing removes them at the end (in the temporary
        // folder, each run left one `arq-executor-PID` of 239 jobs behind).
        let work_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("slt-executor");
        let _ = std::fs::remove_dir_all(&work_dir);
        tokio::spawn(run_executor(ExecutorOptions {
            scheduler: url.clone(),
            bind: None,
            concurrent_tasks: 2,
            model,
            work_dir: Some(work_dir),
        }));
        url
    })
    .await
    .clone()
}

/// `local` on the in-process cluster (waits until the scheduler answers).
async fn on_cluster(
    local: datafusion::prelude::SessionContext,
) -> datafusion::prelude::SessionContext {
    let url = cluster().await;
    let mut last = String::new();
    for _ in 0..100 {
        // Every query on the executors, even over the hand-made tables of the bare files.
        let every = arq::cluster::client::Placement::Every;
        match arq::cluster::client::connect_with(local.clone(), &url, every).await {
            Ok(ctx) => return ctx,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the in-process cluster did not start: {last}");
}

fn default_model() -> arq_models::sql::SessionModel {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models/default.json");
    let text = std::fs::read_to_string(&path).expect("the default model is readable");
    arq_models::sql::SessionModel {
        model: std::sync::Arc::new(
            arq_models::RiskModel::from_json(&text, "data/models/default.json")
                .expect("the default model loads"),
        ),
        name: "data/models/default.json".into(),
    }
}

/// Runs one file; returns the failures, one message per failing record.
async fn run_file(path: &Path, mode: Mode) -> Vec<String> {
    let ctx = match mode {
        Mode::Local => session(path, false).await,
        Mode::Views => session(path, true).await,
        Mode::Cluster => {
            let ctx = on_cluster(session(path, false).await).await;
            // Over the demo warehouse the queries reach the executors.
            if ctx.table_exist("open_items").unwrap_or(false)
                && ctx.table_exist("invoices").unwrap_or(false)
            {
                let plan = match ctx.sql("EXPLAIN SELECT count(*) FROM invoices").await {
                    Ok(df) => df.collect().await,
                    Err(e) => Err(e),
                };
                let text = format!("{plan:?}");
                if !text.contains("distributed_plan") {
                    return vec![format!("not planned on the cluster: {text}")];
                }
            }
            ctx
        }
    };
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
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let bare = std::fs::read_to_string(file).is_ok_and(|t| t.starts_with("# session: bare"));
        for mode in [Mode::Local, Mode::Views, Mode::Cluster] {
            let shown = match mode {
                Mode::Local => format!("{name}"),
                // (A bare file has no warehouse to read as views.)
                Mode::Views if bare => continue,
                Mode::Views => format!("{name} (string views)"),
                Mode::Cluster => format!("{name} (cluster)"),
            };
            let failures = run_file(file, mode).await;
            if failures.is_empty() {
                println!("slt {shown} ... ok");
                passed += 1;
            } else {
                println!("slt {shown} ... FAILED ({} records)", failures.len());
                for f in &failures {
                    println!("{f}\n");
                }
                failed += 1;
            }
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
