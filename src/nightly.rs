//! `arq nightly`: the job the collections team runs every night. Checks the snapshot,
//! scores every customer once, builds the work queues and the credit-limit
//! recommendations, and writes them all to `OUT/<as-of>/` in one atomic step.
//!
//! Outputs (every table in CSV and Parquet):
//! - `queues.*`: every eligible customer exactly once, in whichever queue they landed;
//! - `call_lists/<collector>.*`: one ranked list per collector (empty when there is
//!   nothing to call);
//! - `supervisors.*`, `dispute.*`, `held.*`, `carry_over.*` (with `supervisor:carry_over`);
//! - `limits.*`, `scores.*`;
//! - `manifest.json`: inputs (fingerprints of the warehouse files, model and policy),
//!   versions, per-queue counts and overdue, every output file with rows, bytes and
//!   fingerprint, and timings. Everything but the `timings_ms` object is byte-identical
//!   from one run to the next on the same inputs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arq_models::limits::CreditPolicy;
use arq_models::model::Fingerprint;
use arq_models::sql::SessionModel;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Decimal128Type;
use indicatif::ProgressBar;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{ArqError, Result};
use crate::risk::{ScoredSnapshot, take_rows};
use crate::sql::{self, OutputFormat, QueryResult};
use crate::staging::StagingDir;
use crate::validate;
use crate::warehouse::Warehouse;

/// What `arq nightly` needs besides the warehouse.
pub struct NightlyOptions {
    /// The folder under which `<as-of>/` is written.
    pub out: PathBuf,
    /// The model, and the path to name in the manifest.
    pub model: SessionModel,
    pub model_path: PathBuf,
    /// The credit policy (with the queue thresholds) and its path.
    pub policy: CreditPolicy,
    pub policy_path: PathBuf,
    /// Show a progress bar (on a terminal only).
    pub progress: bool,
}

/// The stages, in order, as the progress bar names them.
const STAGES: [&str; 6] = [
    "checking inputs",
    "scoring",
    "queues",
    "limits",
    "writing",
    "committing",
];

/// For tests: `ARQ_NIGHTLY_FAIL_AFTER_FILES=N` fails the run after N output files are
/// written; `ARQ_NIGHTLY_PAUSE_AFTER_FILES=N` sleeps there (so a test can kill it).
const FAIL_AFTER: &str = "ARQ_NIGHTLY_FAIL_AFTER_FILES";
const PAUSE_AFTER: &str = "ARQ_NIGHTLY_PAUSE_AFTER_FILES";

/// Runs the job and returns the summary for stdout.
pub fn run(warehouse: &Warehouse, options: &NightlyOptions) -> Result<String> {
    let started = Instant::now();
    let as_of = warehouse.as_of();
    let target = options.out.join(as_of.to_string());
    let mut stages = Stages::new(options.progress);
    let runtime = crate::cli::runtime()?;
    // The input fingerprint reads every warehouse file; it runs beside the queries.
    let files: Vec<PathBuf> = warehouse
        .tables()
        .iter()
        .flat_map(|t| t.files.iter().cloned())
        .collect();
    let root = warehouse.root().to_path_buf();
    let fingerprint = runtime.spawn_blocking(move || fingerprint_files(&root, &files));

    let (snapshot, queues, limits, collectors) = runtime.block_on(async {
        validate::snapshot(warehouse)?;
        stages.done("check");
        let snapshot =
            ScoredSnapshot::load(&options.model, warehouse, crate::AsOf::Date(as_of)).await?;
        stages.done("score");
        let queues = arq_models::queues::queue_snapshot(
            &snapshot.state,
            &snapshot.scores,
            &options.policy.queues,
            snapshot.day,
        )
        .await?;
        stages.done("queues");
        let limits = arq_models::limits::recommend_snapshot(
            &snapshot.state,
            &snapshot.scores,
            &options.policy,
            snapshot.day,
        )
        .await?;
        stages.done("limits");
        let collectors = collector_ids(&snapshot).await?;
        Ok::<_, ArqError>((snapshot, queues, limits, collectors))
    })?;
    let inputs = runtime
        .block_on(fingerprint)
        .map_err(|e| ArqError::Usage(format!("fingerprinting the warehouse failed: {e}")))??;

    let staging = StagingDir::new(&target)?;
    let writer = OutputWriter::new(staging.path())?;
    // Rows of each queue, in the combined list's order (queue, then rank).
    let names = queues.column(0).as_string::<i32>();
    let mut rows_of: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for r in 0..queues.num_rows() {
        rows_of.entry(names.value(r)).or_default().push(r as u32);
    }
    let select = |wanted: &[&str]| -> Result<RecordBatch> {
        let mut rows: Vec<u32> = wanted
            .iter()
            .flat_map(|q| rows_of.get(q).into_iter().flatten().copied())
            .collect();
        rows.sort_unstable();
        take_rows(&queues, &rows)
    };
    let mut tables = vec![("queues".to_string(), queues.clone())];
    for id in &collectors {
        tables.push((format!("call_lists/{id}"), select(&[id.as_str()])?));
    }
    let supervised: Vec<&str> = rows_of
        .keys()
        .copied()
        .filter(|q| q.starts_with("supervisor:") && *q != "supervisor:carry_over")
        .collect();
    tables.push(("supervisors".into(), select(&supervised)?));
    tables.push(("dispute".into(), select(&["dispute"])?));
    tables.push(("held".into(), select(&["held"])?));
    tables.push((
        "carry_over".into(),
        select(&["carry_over", "supervisor:carry_over"])?,
    ));
    tables.push(("limits".into(), limits.clone()));
    tables.push(("scores".into(), snapshot.scores.clone()));
    writer.tables(&tables)?;
    drop(tables);
    stages.done("write");

    let summary = Summary::of(&snapshot.scores, &queues, &limits)?;
    let mut manifest = Manifest {
        arq_version: env!("CARGO_PKG_VERSION"),
        as_of: as_of.to_string(),
        warehouse: InputsRecord {
            path: warehouse.root().display().to_string(),
            files: inputs.files,
            bytes: inputs.bytes,
            fingerprint: inputs.fingerprint,
        },
        model: ModelRecord {
            path: options.model_path.display().to_string(),
            fingerprint: file_fingerprint(&options.model_path)?,
            trained_on: options.model.model.training.source.clone(),
            train_from: options.model.model.training.train_from.clone(),
            train_to: options.model.model.training.train_to.clone(),
            training_fingerprint: options.model.model.training.fingerprint.clone(),
        },
        policy: PolicyRecord {
            path: options.policy_path.display().to_string(),
            version: options.policy.version.clone(),
            fingerprint: file_fingerprint(&options.policy_path)?,
        },
        customers: summary.customers,
        eligible: summary.eligible,
        overdue: summary.overdue.to_string(),
        queues: summary
            .queues
            .iter()
            .map(|(name, q)| {
                (
                    name.clone(),
                    QueueRecord {
                        accounts: q.accounts,
                        overdue: q.overdue.to_string(),
                        expected_loss: q.expected_loss.to_string(),
                    },
                )
            })
            .collect(),
        limit_actions: summary.limit_actions.clone(),
        outputs: writer.records(),
        timings_ms: stages.timings.clone(),
    };
    manifest
        .timings_ms
        .insert("total", started.elapsed().as_millis() as u64);
    let mut json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ArqError::Usage(format!("cannot encode the manifest: {e}")))?;
    json.push(b'\n');
    writer.file("manifest.json", &json)?;
    staging.commit(true)?;
    stages.done("commit");
    stages.bar.finish_and_clear();
    // The tables' files and the manifest.
    let files = manifest.outputs.len() + 1;
    Ok(summary.text(&target, files, started.elapsed().as_secs_f64()))
}

/// The progress bar over the stages and the time each took.
struct Stages {
    bar: ProgressBar,
    timings: BTreeMap<&'static str, u64>,
    clock: Instant,
}

impl Stages {
    fn new(progress: bool) -> Stages {
        let bar = crate::risk::stage_bar("nightly", STAGES.len(), !progress);
        bar.set_message(STAGES[0]);
        Stages {
            bar,
            timings: BTreeMap::new(),
            clock: Instant::now(),
        }
    }

    fn done(&mut self, name: &'static str) {
        self.timings
            .insert(name, self.clock.elapsed().as_millis() as u64);
        self.clock = Instant::now();
        self.bar.inc(1);
        if let Some(next) = STAGES.get(self.bar.position() as usize) {
            self.bar.set_message(*next);
        }
    }
}

/// The collectors (role `collector`) of the warehouse, each checked to be usable as a
/// file name.
async fn collector_ids(snapshot: &ScoredSnapshot) -> Result<Vec<String>> {
    let batches = arq_udfs::metrics::collect_sql(
        &snapshot.state,
        "SELECT collector_id FROM collectors WHERE role = 'collector' ORDER BY collector_id",
    )
    .await
    .map_err(arq_models::ModelError::from)?;
    let mut ids = Vec::new();
    for batch in &batches {
        let column = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )?;
        for id in column.as_string::<i32>().iter().flatten() {
            let safe = !id.is_empty()
                && !id.starts_with('.')
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !safe {
                return Err(ArqError::Table {
                    table: "collectors".into(),
                    message: format!(
                        "column collector_id: `{id}` cannot name a call-list file \
                         (use letters, digits, `-`, `_` and `.`)"
                    ),
                });
            }
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// One output file as the manifest lists it.
#[derive(Debug, Clone, Serialize)]
struct OutputRecord {
    file: String,
    rows: Option<usize>,
    bytes: u64,
    fingerprint: String,
}

/// Writes the outputs into the staging folder and keeps their records.
struct OutputWriter {
    dir: PathBuf,
    /// Records with their position in the manifest.
    written: std::sync::Mutex<Vec<(usize, OutputRecord)>>,
    count: std::sync::atomic::AtomicUsize,
    fail_after: Option<usize>,
    pause_after: Option<usize>,
}

impl OutputWriter {
    fn new(dir: &Path) -> Result<Self> {
        let number = |name: &str| -> Result<Option<usize>> {
            match std::env::var(name) {
                Ok(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| ArqError::Usage(format!("{name}={v} is not a number"))),
                Err(_) => Ok(None),
            }
        };
        Ok(OutputWriter {
            dir: dir.to_path_buf(),
            written: Default::default(),
            count: Default::default(),
            fail_after: number(FAIL_AFTER)?,
            pause_after: number(PAUSE_AFTER)?,
        })
    }

    /// `name.csv` and `name.parquet` for every table, encoded and written by one thread
    /// per core; the manifest lists them in the order given.
    fn tables(&self, tables: &[(String, RecordBatch)]) -> Result<()> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let work = || -> Result<()> {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((name, batch)) = tables.get(i) else {
                    return Ok(());
                };
                self.table(2 * i, name, batch)?;
            }
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(ArqError::Usage("an output writer panicked".into()))
                    })
                })
                .collect::<Result<Vec<()>>>()
        })?;
        Ok(())
    }

    fn table(&self, order: usize, name: &str, batch: &RecordBatch) -> Result<()> {
        let result = QueryResult {
            schema: batch.schema(),
            batches: vec![batch.clone()],
        };
        // Encoded straight into the file (not into memory first), hashed on the way.
        self.write_with(
            order,
            &format!("{name}.csv"),
            Some(batch.num_rows()),
            |out| sql::write_result(&result, OutputFormat::Csv, out),
        )?;
        self.write_with(
            order + 1,
            &format!("{name}.parquet"),
            Some(batch.num_rows()),
            |out| {
                let mut writer =
                    datafusion::parquet::arrow::ArrowWriter::try_new(out, batch.schema(), None)?;
                writer.write(batch)?;
                writer.close()?;
                Ok(())
            },
        )
    }

    /// A file that is not a table, listed after the tables.
    fn file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write(usize::MAX, name, bytes, None)
    }

    fn write(&self, order: usize, name: &str, bytes: &[u8], rows: Option<usize>) -> Result<()> {
        self.write_with(order, name, rows, |out| {
            std::io::Write::write_all(out, bytes).map_err(|e| ArqError::io(name, e))
        })
    }

    /// Creates `name` and lets `encode` fill it; records its size and fingerprint.
    fn write_with(
        &self,
        order: usize,
        name: &str,
        rows: Option<usize>,
        encode: impl FnOnce(&mut HashingWriter) -> Result<()>,
    ) -> Result<()> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ArqError::io(parent, e))?;
        }
        let file = std::fs::File::create(&path).map_err(|e| ArqError::io(&path, e))?;
        let mut out = HashingWriter {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            fingerprint: Fingerprint::default(),
            bytes: 0,
        };
        encode(&mut out)?;
        std::io::Write::flush(&mut out.inner).map_err(|e| ArqError::io(&path, e))?;
        let record = OutputRecord {
            file: name.to_string(),
            rows,
            bytes: out.bytes,
            fingerprint: out.fingerprint.hex(),
        };
        self.written
            .lock()
            .map_err(|_| ArqError::Usage("an output writer panicked".into()))?
            .push((order, record));
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.pause_after == Some(n) {
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
        if self.fail_after == Some(n) {
            return Err(ArqError::Usage(format!(
                "failure injected after {n} output files ({FAIL_AFTER})"
            )));
        }
        Ok(())
    }

    /// The files written so far, in manifest order.
    fn records(&self) -> Vec<OutputRecord> {
        let mut written = match self.written.lock() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        written.sort_by_key(|(order, _)| *order);
        written.into_iter().map(|(_, r)| r).collect()
    }
}

/// A file being written, with the fingerprint and size of what went into it.
struct HashingWriter {
    inner: std::io::BufWriter<std::fs::File>,
    fingerprint: Fingerprint,
    bytes: u64,
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.fingerprint.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What the run read.
struct InputFingerprint {
    files: usize,
    bytes: u64,
    fingerprint: String,
}

/// FNV-1a over every warehouse file's path (relative to the warehouse) and bytes.
fn fingerprint_files(root: &Path, files: &[PathBuf]) -> Result<InputFingerprint> {
    let mut sorted: Vec<&PathBuf> = files.iter().collect();
    sorted.sort();
    let mut fingerprint = Fingerprint::default();
    let mut bytes = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    for path in &sorted {
        let relative = path.strip_prefix(root).unwrap_or(path);
        fingerprint.update(relative.to_string_lossy().as_bytes());
        fingerprint.update(&[0]);
        let mut file = std::fs::File::open(path).map_err(|e| ArqError::io(path, e))?;
        loop {
            let n = file.read(&mut buffer).map_err(|e| ArqError::io(path, e))?;
            if n == 0 {
                break;
            }
            fingerprint.update(&buffer[..n]);
            bytes += n as u64;
        }
    }
    Ok(InputFingerprint {
        files: sorted.len(),
        bytes,
        fingerprint: fingerprint.hex(),
    })
}

fn file_fingerprint(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| ArqError::io(path, e))?;
    let mut fingerprint = Fingerprint::default();
    fingerprint.update(&bytes);
    Ok(fingerprint.hex())
}

#[derive(Serialize)]
struct Manifest {
    arq_version: &'static str,
    as_of: String,
    warehouse: InputsRecord,
    model: ModelRecord,
    policy: PolicyRecord,
    customers: usize,
    eligible: usize,
    overdue: String,
    queues: BTreeMap<String, QueueRecord>,
    limit_actions: BTreeMap<String, usize>,
    outputs: Vec<OutputRecord>,
    /// Wall time per stage: the only part that differs between two runs.
    timings_ms: BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
struct InputsRecord {
    path: String,
    files: usize,
    bytes: u64,
    fingerprint: String,
}

#[derive(Serialize)]
struct ModelRecord {
    path: String,
    fingerprint: String,
    trained_on: String,
    train_from: Option<String>,
    train_to: Option<String>,
    training_fingerprint: String,
}

#[derive(Serialize)]
struct PolicyRecord {
    path: String,
    version: String,
    fingerprint: String,
}

#[derive(Serialize)]
struct QueueRecord {
    accounts: usize,
    overdue: String,
    expected_loss: String,
}

/// Per-queue totals.
#[derive(Default)]
struct QueueTotals {
    accounts: usize,
    overdue: Decimal,
    expected_loss: Decimal,
}

/// The numbers the summary and the manifest report.
struct Summary {
    customers: usize,
    eligible: usize,
    overdue: Decimal,
    queues: BTreeMap<String, QueueTotals>,
    limit_actions: BTreeMap<String, usize>,
}

impl Summary {
    fn of(scores: &RecordBatch, queues: &RecordBatch, limits: &RecordBatch) -> Result<Summary> {
        let column = |batch: &RecordBatch, name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| ArqError::Usage(format!("internal: no column `{name}`")))
        };
        let names = column(queues, "queue")?;
        let names = names.as_string::<i32>();
        let overdue = column(queues, "overdue")?;
        let overdue = overdue.as_primitive::<Decimal128Type>();
        let loss = column(queues, "expected_loss")?;
        let loss = loss.as_primitive::<Decimal128Type>();
        let money = |v: i128| Decimal::from_i128_with_scale(v, 2);
        let mut per_queue: BTreeMap<String, QueueTotals> = BTreeMap::new();
        let mut total = Decimal::ZERO;
        for r in 0..queues.num_rows() {
            let q = per_queue.entry(names.value(r).to_string()).or_default();
            q.accounts += 1;
            q.overdue += money(overdue.value(r));
            q.expected_loss += money(loss.value(r));
            total += money(overdue.value(r));
        }
        let actions = column(limits, "action")?;
        let actions = actions.as_string::<i32>();
        let mut limit_actions = BTreeMap::new();
        for a in actions.iter().flatten() {
            *limit_actions.entry(a.to_string()).or_insert(0) += 1;
        }
        Ok(Summary {
            customers: scores.num_rows(),
            eligible: queues.num_rows(),
            overdue: total,
            queues: per_queue,
            limit_actions,
        })
    }

    fn text(&self, target: &Path, files: usize, seconds: f64) -> String {
        let mut out = format!(
            "nightly {}: {} customers, {} with an overdue balance of {} in all\n\n",
            target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            self.customers,
            self.eligible,
            self.overdue
        );
        out.push_str(&format!(
            "{:<28} {:>8} {:>18} {:>16}\n",
            "queue", "accounts", "overdue", "expected loss"
        ));
        for (name, q) in &self.queues {
            out.push_str(&format!(
                "{:<28} {:>8} {:>18} {:>16}\n",
                name, q.accounts, q.overdue, q.expected_loss
            ));
        }
        let actions: Vec<String> = self
            .limit_actions
            .iter()
            .map(|(a, n)| format!("{n} {a}"))
            .collect();
        out.push_str(&format!(
            "\ncredit limits: {}\nwrote {} files to {} in {seconds:.1} s\n",
            actions.join(", "),
            files,
            target.display()
        ));
        out
    }
}
