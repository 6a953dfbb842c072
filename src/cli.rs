//! The `arq` command line: flags are parsed by clap, turned into one validated
//! configuration, then dispatched.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::error::{ArqError, Result};
use arq_models::{Scorecard, TrainOptions};

use crate::generate::{self, GenerateOptions};
use crate::risk;
use crate::sql::{self, OutputFormat};
use crate::warehouse::{AsOf, Warehouse};

/// The warehouse used when neither `--warehouse` nor `ARQ_WAREHOUSE` is given.
pub const DEFAULT_WAREHOUSE: &str = "data/demo";

/// arq: analytic SQL, risk scores and call lists over accounts-receivable snapshots.
#[derive(Debug, Parser)]
#[command(name = "arq", version, about, propagate_version = true)]
pub struct Cli {
    /// Warehouse folder (default: data/demo, the bundled demo warehouse).
    #[arg(long, short = 'w', global = true, env = "ARQ_WAREHOUSE")]
    pub warehouse: Option<PathBuf>,

    /// Snapshot shown by the `*_latest` views: a date (the newest snapshot on or
    /// before it) or `latest`.
    #[arg(long, global = true, default_value = "latest")]
    pub as_of: AsOf,

    /// Risk model for `risk_score()` & co. in SQL and for `arq score` (default:
    /// data/models/default.json, the model trained on the demo warehouse).
    #[arg(long, short = 'm', global = true, env = "ARQ_MODEL")]
    pub model: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL over the warehouse and print or save the result.
    Sql {
        /// The SQL to run (several statements separated by `;` run in order).
        #[arg(conflicts_with = "file", required_unless_present = "file")]
        query: Option<String>,
        /// Read the SQL from a file.
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
        /// Write the result of the last statement to this file instead of stdout
        /// (atomically: a failed run leaves an existing file untouched).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Interactive SQL shell (multi-line statements, history, `\d` lists tables).
    Shell {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// List the warehouse's tables and views with their columns.
    Tables,
    /// List arq's SQL functions with their documentation and examples.
    Functions {
        /// Only functions whose name contains this text.
        name: Option<String>,
    },
    /// Train the risk model (logistic regression champion, random-forest challenger) on
    /// the warehouse, or on any labelled table with --table and --label.
    Train {
        /// Where to write the model (JSON).
        #[arg(long, short = 'o', default_value = "model.json")]
        out: PathBuf,
        /// Train on this labelled table (.parquet or .csv) instead of the warehouse.
        #[arg(long, requires = "label")]
        table: Option<PathBuf>,
        /// The label column of --table: true/false, 1/0, yes/no or bad/good.
        #[arg(long, requires = "table")]
        label: Option<String>,
        /// Columns of --table that identify a row (kept in scores, not features).
        #[arg(long = "id", requires = "table")]
        ids: Vec<String>,
        /// Columns of --table to leave out.
        #[arg(long, requires = "table")]
        exclude: Vec<String>,
        /// Date or period column of --table for an out-of-time split (else a fixed
        /// pseudo-random third of the rows validates).
        #[arg(long, requires = "table")]
        time: Option<String>,
        /// Also write the validation report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Scorecard points at the reference odds.
        #[arg(long, default_value_t = 600.0)]
        points: f64,
        /// Scorecard reference odds (good:bad).
        #[arg(long, default_value_t = 50.0)]
        odds: f64,
        /// Scorecard points to double the odds.
        #[arg(long, default_value_t = 20.0)]
        pdo: f64,
        /// Trees in the challenger forest.
        #[arg(long, default_value_t = 50)]
        trees: usize,
        /// Seed of the challenger forest.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// No progress bar.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Score every customer of a snapshot (--as-of, default the newest) with the model,
    /// or every row of a table with --table.
    Score {
        /// Score this table (.parquet or .csv) instead of the warehouse.
        #[arg(long)]
        table: Option<PathBuf>,
        /// Write the scores to this file (atomically) instead of stdout.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Output format (default: from --out's extension, else a table).
        #[arg(long, value_enum)]
        format: Option<OutputFormat>,
    },
    /// Today's call lists from the snapshot (--as-of, default the newest): every customer
    /// with an overdue balance once, in a collector's list, a supervisor queue, the
    /// dispute queue, held back by a promise, or carried over.
    Queue {
        /// Only this queue: a collector id, `supervisor:high_risk`, `dispute`, `held`,
        /// `carry_over`, ...
        #[arg(long)]
        collector: Option<String>,
        /// Policy with the queue thresholds (TOML `[queues]`; default data/policy.toml).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Write the list to this file (atomically) instead of stdout.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Output format (default: from --out's extension, else a table).
        #[arg(long, value_enum)]
        format: Option<OutputFormat>,
    },
    /// Credit-limit recommendations for every customer of the snapshot (--as-of, default
    /// the newest), from the model's PDs and a credit policy.
    Limits {
        /// Only this customer.
        #[arg(long)]
        customer: Option<String>,
        /// Credit policy (TOML; default data/policy.toml).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Write the recommendations to this file (atomically) instead of stdout.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Output format (default: from --out's extension, else a table).
        #[arg(long, value_enum)]
        format: Option<OutputFormat>,
    },
    /// The nightly job: check the snapshot (--as-of, default the newest), score every
    /// customer, build the work queues and the credit-limit recommendations, and write
    /// them (CSV and Parquet, with a manifest) to OUT/<as-of>/ in one atomic step.
    Nightly {
        /// Credit policy with the queue thresholds (TOML; default data/policy.toml).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Folder under which the run's `<as-of>/` folder is written (replacing that
        /// night's earlier outputs as a whole, and nothing else).
        #[arg(long, short = 'o', default_value = "out")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Replay the queue order on past snapshots: the share of the next 90 days'
    /// newly-bad balance in the top 10 % / 20 % of the queue, for arq's order and for
    /// oldest-first and largest-balance-first.
    Backtest {
        /// First snapshot date to replay.
        #[arg(long)]
        from: NaiveDate,
        /// Last snapshot date to replay (snapshots whose 90-day outcome is not known yet
        /// are skipped, with a note).
        #[arg(long)]
        to: NaiveDate,
        /// Policy with the queue settings (LGD; default data/policy.toml).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Write the result to this file (atomically) instead of stdout.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Output format (default: from --out's extension, else a table).
        #[arg(long, value_enum)]
        format: Option<OutputFormat>,
    },
    /// Write a synthetic warehouse in the contract (deterministic for a seed).
    Generate {
        /// Output folder (must not exist or be empty, unless --force).
        #[arg(long)]
        out: PathBuf,
        /// Number of customers.
        #[arg(long, default_value_t = 2000)]
        customers: u64,
        /// Number of monthly snapshots.
        #[arg(long, default_value_t = 12)]
        months: u32,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Last snapshot date (a month end).
        #[arg(long, default_value_t = generate::default_end())]
        end: NaiveDate,
        /// Replace a non-empty output folder.
        #[arg(long)]
        force: bool,
        /// No progress bar and no summary.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
}

impl Cli {
    /// The warehouse folder: `--warehouse`, else `ARQ_WAREHOUSE`, else `data/demo` in
    /// the current folder, else the demo warehouse of the source tree arq was built from.
    pub fn warehouse_path(&self) -> PathBuf {
        if let Some(w) = &self.warehouse {
            return w.clone();
        }
        let local = PathBuf::from(DEFAULT_WAREHOUSE);
        if local.is_dir() {
            return local;
        }
        let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WAREHOUSE);
        if built_in.is_dir() { built_in } else { local }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Generate {
            out,
            customers,
            months,
            seed,
            end,
            force,
            quiet,
        } => {
            let options = GenerateOptions {
                customers: *customers,
                months: *months,
                seed: *seed,
                end: *end,
                force: *force,
                progress: !quiet,
            };
            let summary = generate::generate(out, &options)?;
            if !quiet {
                print_stdout(&format!(
                    "wrote {} in {:.1} s: {} customers, {} snapshots ({} to {}), \
                     {} open items in the last snapshot ({} in all), {} invoices, \
                     {} payments, {} activities, {} write-offs, {} collectors; \
                     {:.0} rows/s\n",
                    out.display(),
                    summary.seconds,
                    summary.customers,
                    summary.snapshots.len(),
                    summary
                        .snapshots
                        .first()
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    summary
                        .snapshots
                        .last()
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    summary.open_items_latest,
                    summary.open_items_total,
                    summary.invoices,
                    summary.payments,
                    summary.activities,
                    summary.write_offs,
                    summary.collectors,
                    summary.rows() as f64 / summary.seconds.max(1e-9),
                ))?;
            }
            Ok(())
        }
        Command::Sql {
            query,
            file,
            format,
            output,
        } => {
            let text = match (query, file) {
                (Some(q), _) => q.clone(),
                (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| ArqError::io(f, e))?,
                (None, None) => return Err(ArqError::Usage("give a query or -f FILE".into())),
            };
            if *format == OutputFormat::Parquet && output.is_none() {
                return Err(ArqError::Usage(
                    "--format parquet needs --output FILE (Parquet is not for a terminal)".into(),
                ));
            }
            let warehouse = Warehouse::open(cli.warehouse_path(), cli.as_of)?;
            let model = risk::session_model(cli.model.as_deref())?;
            runtime()?.block_on(async {
                let ctx = warehouse.session().await?;
                arq_models::sql::register(&ctx, model.as_ref())?;
                let results = sql::run_statements(&ctx, &text).await?;
                match output {
                    Some(path) => {
                        let last = results.last().expect("at least one statement");
                        sql::write_result_to_file(last, *format, path)
                    }
                    None => {
                        let mut buffer = Vec::new();
                        for result in results.iter().filter(|r| r.has_columns()) {
                            sql::write_result(result, *format, &mut buffer)?;
                        }
                        print_stdout_bytes(&buffer)
                    }
                }
            })
        }
        Command::Shell { format } => {
            let warehouse = Warehouse::open(cli.warehouse_path(), cli.as_of)?;
            let model = risk::session_model(cli.model.as_deref())?;
            runtime()?.block_on(async {
                let ctx = warehouse.session().await?;
                arq_models::sql::register(&ctx, model.as_ref())?;
                crate::shell::run(&ctx, model.as_ref(), *format).await
            })
        }
        Command::Functions { name } => {
            let model = risk::session_model(cli.model.as_deref())?;
            print_stdout(&sql::describe_functions(name.as_deref(), model.as_ref())?)
        }
        Command::Train {
            out,
            table,
            label,
            ids,
            exclude,
            time,
            report,
            points,
            odds,
            pdo,
            trees,
            seed,
            quiet,
        } => {
            let options = TrainOptions {
                scorecard: Scorecard {
                    points: *points,
                    odds: *odds,
                    pdo: *pdo,
                },
                trees: *trees,
                seed: *seed,
                ..TrainOptions::default()
            };
            let (warehouse, table) = match (table, label) {
                (Some(path), Some(label)) => (
                    None,
                    Some(risk::TableSpec {
                        path: path.clone(),
                        label: label.clone(),
                        ids: ids.clone(),
                        exclude: exclude.clone(),
                        time: time.clone(),
                    }),
                ),
                _ => (
                    Some(Warehouse::open(cli.warehouse_path(), cli.as_of)?),
                    None,
                ),
            };
            let text = risk::train(
                warehouse.as_ref(),
                table.as_ref(),
                &options,
                out,
                report.as_deref(),
                *quiet,
            )?;
            print_stdout(&text)
        }
        Command::Nightly { policy, out, quiet } => {
            let model_path = risk::model_path(cli.model.as_deref()).ok_or_else(|| {
                ArqError::Usage(format!(
                    "no model: pass --model FILE ({} is missing)",
                    risk::DEFAULT_MODEL
                ))
            })?;
            let policy_path = risk::policy_path(policy.as_deref())?;
            let options = crate::nightly::NightlyOptions {
                out: out.clone(),
                model: risk::require_model(Some(&model_path))?,
                model_path,
                policy: risk::load_policy(Some(&policy_path))?,
                policy_path,
                progress: !quiet,
            };
            let warehouse = Warehouse::open(cli.warehouse_path(), cli.as_of)?;
            print_stdout(&crate::nightly::run(&warehouse, &options)?)
        }
        Command::Backtest {
            from,
            to,
            policy,
            out,
            format,
        } => {
            let model = risk::require_model(cli.model.as_deref())?;
            let policy = risk::load_policy(policy.as_deref())?;
            let format = output_format(*format, out.as_deref())?;
            let warehouse = Warehouse::open(cli.warehouse_path(), cli.as_of)?;
            let (batch, skipped) =
                runtime()?.block_on(risk::backtest(&model, &policy, &warehouse, *from, *to))?;
            let summary = backtest_summary(&batch);
            let printed = risk::write_scores(batch, format, out.as_deref())?;
            print_stdout_bytes(&printed)?;
            for note in skipped {
                eprintln!("skipped {note}");
            }
            eprintln!("{summary}");
            Ok(())
        }
        Command::Queue {
            collector,
            policy,
            out,
            format,
        } => {
            let model = risk::require_model(cli.model.as_deref())?;
            let policy = risk::load_policy(policy.as_deref())?;
            let format = output_format(*format, out.as_deref())?;
            let warehouse = Warehouse::open(cli.warehouse_path(), cli.as_of)?;
            let batch = runtime()?.block_on(risk::queue(
                &model,
                &policy,
                &warehouse,
                cli.as_of,
                collector.as_deref(),
            ))?;
            let printed = risk::write_scores(batch, format, out.as_deref())?;
            print_stdout_bytes(&printed)
        }
        Command::Limits {
            customer,
            policy,
            out,
            format,
        } => {
            let model = risk::require_model(cli.model.as_deref())?;
            let policy = risk::load_policy(policy.as_deref())?;
            let format = output_format(*format, out.as_deref())?;
            let warehouse = Warehouse::open(cli.warehouse_path(), cli.as_of)?;
            let batch = runtime()?.block_on(risk::limits(
                &model,
                &policy,
                &warehouse,
                cli.as_of,
                customer.as_deref(),
            ))?;
            let printed = risk::write_scores(batch, format, out.as_deref())?;
            print_stdout_bytes(&printed)
        }
        Command::Score { table, out, format } => {
            let model = risk::require_model(cli.model.as_deref())?;
            let format = output_format(*format, out.as_deref())?;
            let (batch, psi) = runtime()?.block_on(async {
                match table {
                    Some(path) => risk::score_table(&model, path).await,
                    None => {
                        let warehouse = Warehouse::open(cli.warehouse_path(), cli.as_of)?;
                        risk::score_warehouse(&model, &warehouse, cli.as_of).await
                    }
                }
            })?;
            let rows = batch.num_rows();
            let printed = risk::write_scores(batch, format, out.as_deref())?;
            print_stdout_bytes(&printed)?;
            eprintln!(
                "scored {rows} rows with {}; PSI against the training population {psi:.4} ({})",
                model.name,
                arq_models::metrics::psi_verdict(psi)
            );
            Ok(())
        }
        Command::Tables => {
            let warehouse = Warehouse::open(cli.warehouse_path(), cli.as_of)?;
            runtime()?.block_on(async {
                let ctx = warehouse.session().await?;
                let listing = sql::describe_tables(&ctx, None).await?;
                let dates = warehouse.snapshot_dates();
                print_stdout(&format!(
                    "warehouse {}: {} snapshots from {} to {}; *_latest views show {}\n\n{listing}",
                    warehouse.root().display(),
                    dates.len(),
                    dates.first().map(|d| d.to_string()).unwrap_or_default(),
                    dates.last().map(|d| d.to_string()).unwrap_or_default(),
                    warehouse.as_of(),
                ))
            })
        }
    }
}

/// The mean captures per ordering, over all replayed snapshots and over those outside
/// the model's training and validation window.
fn backtest_summary(batch: &datafusion::arrow::array::RecordBatch) -> String {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;
    let seen = batch.column(1).as_boolean();
    let mut lines = Vec::new();
    for (label, keep) in [
        ("all replayed snapshots", None),
        (
            "snapshots outside the model's training and validation window",
            Some(false),
        ),
    ] {
        let rows: Vec<usize> = (0..batch.num_rows())
            .filter(|&r| keep.is_none_or(|k| seen.value(r) == k))
            .collect();
        if rows.is_empty() {
            lines.push(format!("{label}: none"));
            continue;
        }
        let mean = |c: usize| {
            let v = batch.column(c).as_primitive::<Float64Type>();
            rows.iter().map(|&r| v.value(r)).sum::<f64>() / rows.len() as f64 * 100.0
        };
        let parts: Vec<String> = arq_models::backtest::ORDERINGS
            .iter()
            .enumerate()
            .map(|(k, name)| format!("{name} {:.1} % / {:.1} %", mean(5 + 2 * k), mean(6 + 2 * k)))
            .collect();
        lines.push(format!(
            "{label} ({}): newly-bad balance in the top 10 % / 20 %: {}",
            rows.len(),
            parts.join(", ")
        ));
    }
    lines.join("\n")
}

/// The format of `--format`, else of `--out`'s extension; Parquet needs a file.
fn output_format(format: Option<OutputFormat>, out: Option<&Path>) -> Result<OutputFormat> {
    let format = format.unwrap_or_else(|| OutputFormat::for_path(out));
    if format == OutputFormat::Parquet && out.is_none() {
        return Err(ArqError::Usage(
            "--format parquet needs --out FILE (Parquet is not for a terminal)".into(),
        ));
    }
    Ok(format)
}

/// The async runtime DataFusion runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ArqError::Usage(format!("cannot start the async runtime: {e}")))
}

fn print_stdout(text: &str) -> Result<()> {
    print_stdout_bytes(text.as_bytes())
}

/// Writes to stdout; a closed pipe (`arq sql ... | head`) is not an error.
fn print_stdout_bytes(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(ArqError::io("<stdout>", e)),
        _ => Ok(()),
    }
}
