//! The flags of every command, as clap parses them. Groups that several commands share
//! (output, policy, scorecard) are flattened argument structs, so they read and behave
//! the same everywhere.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::generate;
use crate::memory::MemoryLimit;
use crate::output::OutputFormat;
use crate::warehouse::AsOf;

/// arq: analytic SQL, risk scores and call lists over accounts-receivable snapshots.
#[derive(Debug, Parser)]
#[command(name = "arq", version, about, propagate_version = true)]
pub struct Cli {
    /// Warehouse folder (default: data/demo, the bundled demo warehouse).
    #[arg(long, short = 'w', global = true, env = "ARQ_WAREHOUSE")]
    pub warehouse: Option<PathBuf>,

    /// Snapshot to read: a date (the newest snapshot on or before it) or `latest`.
    #[arg(long, global = true, default_value = "latest")]
    pub as_of: AsOf,

    /// Risk model for `risk_score()` & co. in SQL and for scoring (default:
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
    Sql(SqlArgs),
    /// Interactive SQL shell (multi-line statements, history, `\d` lists tables).
    Shell(ShellArgs),
    /// List the warehouse's tables and views with their columns.
    Tables,
    /// List arq's SQL functions with their documentation and examples.
    Functions(FunctionsArgs),
    /// Train the risk model (logistic regression champion, random-forest challenger) on
    /// the warehouse, or on any labelled table with --table and --label.
    Train(TrainArgs),
    /// Score every customer of a snapshot (--as-of, default the newest) with the model,
    /// or every row of a table with --table.
    Score(ScoreArgs),
    /// Today's call lists from the snapshot (--as-of, default the newest): every customer
    /// with an overdue balance once, in a collector's list, a supervisor queue, the
    /// dispute queue, held back by a promise, or carried over.
    Queue(QueueArgs),
    /// Credit-limit recommendations for every customer of the snapshot (--as-of, default
    /// the newest), from the model's PDs and a credit policy.
    Limits(LimitsArgs),
    /// The nightly job: check the snapshot (--as-of, default the newest), score every
    /// customer, build the work queues and the credit-limit recommendations, and write
    /// them (CSV and Parquet, with a manifest) to OUT/<as-of>/ in one atomic step.
    Nightly(NightlyArgs),
    /// Replay the queue order on past snapshots: the share of the next 90 days'
    /// newly-bad balance in the top 10 % / 20 % of the queue, for arq's order and for
    /// oldest-first and largest-balance-first.
    Backtest(BacktestArgs),
    /// Write a synthetic warehouse in the contract (deterministic for a seed).
    Generate(GenerateArgs),
}

impl Command {
    /// What the command reads, so that [`crate::cli::Config`] opens and loads only that.
    pub fn needs(&self) -> Needs {
        let decisions = matches!(self, Command::Queue(_) | Command::Nightly(_))
            || matches!(self, Command::Score(a) if a.table.is_none())
            || matches!(self, Command::Limits(a) if a.applications.is_none());
        let (warehouse, model, policy) = match self {
            Command::Sql(_) | Command::Shell(_) => (true, Need::Optional, false),
            Command::Tables => (true, Need::No, false),
            Command::Functions(_) => (false, Need::Optional, false),
            Command::Train(a) => (a.table.is_none(), Need::No, false),
            Command::Score(a) => (a.table.is_none(), Need::Required, false),
            // Applications are of prospective customers: no warehouse, no model.
            Command::Limits(a) if a.applications.is_some() => (false, Need::No, true),
            Command::Queue(_) | Command::Limits(_) | Command::Nightly(_) | Command::Backtest(_) => {
                (true, Need::Required, true)
            }
            Command::Generate(_) => (false, Need::No, false),
        };
        Needs {
            warehouse,
            model,
            policy,
            decisions,
        }
    }

    /// The policy flag of the commands that read a policy.
    pub fn policy(&self) -> Option<&PolicyArgs> {
        match self {
            Command::Queue(a) => Some(&a.policy),
            Command::Limits(a) => Some(&a.policy),
            Command::Nightly(a) => Some(&a.policy),
            Command::Backtest(a) => Some(&a.policy),
            _ => None,
        }
    }

    /// The memory limit given to an analyst's command.
    pub fn memory_limit(&self) -> Option<MemoryLimit> {
        match self {
            Command::Sql(a) => a.session.memory_limit,
            Command::Shell(a) => a.session.memory_limit,
            _ => None,
        }
    }

    /// The output flags of the commands that print or save one table.
    pub fn output(&self) -> Option<&OutputArgs> {
        match self {
            Command::Sql(a) => Some(&a.output),
            Command::Score(a) => Some(&a.output),
            Command::Queue(a) => Some(&a.output),
            Command::Limits(a) => Some(&a.output),
            Command::Backtest(a) => Some(&a.output),
            _ => None,
        }
    }
}

/// Whether a command reads an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    No,
    /// Used when there is one (the default model, if it exists).
    Optional,
    /// An error when there is none.
    Required,
}

/// The inputs a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub warehouse: bool,
    pub model: Need,
    pub policy: bool,
    /// The command writes decisions (call lists, limits, scores): it must be told the
    /// warehouse, never fall back to the source tree's demo.
    pub decisions: bool,
}

/// Where a table goes: `--out FILE` (atomically) or stdout, in `--format`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write the result to this file (atomically: a failed run leaves an existing file
    /// untouched) instead of stdout.
    #[arg(long = "out", short = 'o', alias = "output", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format (default: from --out's extension, else a table).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
}

/// Limits of an analyst's session.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Memory a query may use: 4GB, 512MB or 70% (of RAM, the default). A query over it
    /// fails with an error instead of exhausting the machine.
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<MemoryLimit>,
}

/// The credit policy (limits, and the queues' thresholds).
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Credit policy with the queue thresholds (TOML; default data/policy.toml).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// Scorecard scaling of a trained model.
#[derive(Debug, Args)]
pub struct ScorecardArgs {
    /// Scorecard points at the reference odds.
    #[arg(long, default_value_t = 600.0)]
    pub points: f64,
    /// Scorecard reference odds (good:bad).
    #[arg(long, default_value_t = 50.0)]
    pub odds: f64,
    /// Scorecard points to double the odds.
    #[arg(long, default_value_t = 20.0)]
    pub pdo: f64,
}

/// `arq sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL to run (several statements separated by `;` run in order; with --out, the
    /// last one's result is written). Without it, `-c` or `-f`, the SQL is read from stdin.
    #[arg(conflicts_with_all = ["file", "command"])]
    pub query: Option<String>,
    /// The SQL to run, as with psql and duckdb.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SQL",
        conflicts_with = "file"
    )]
    pub command: Option<String>,
    /// Read the SQL from a file (`-` reads stdin).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Print each statement before its result.
    #[arg(long)]
    pub echo: bool,
    /// Run every statement even after one fails (errors on stderr, exit code 1 at the
    /// end); without it the first failing statement stops the script, naming its number.
    #[arg(long)]
    pub continue_on_error: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// `arq shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    /// In a script (stdin not a terminal): run every statement even after one fails
    /// (errors on stderr, exit code 1 at the end); without it the first error stops the
    /// script.
    #[arg(long)]
    pub continue_on_error: bool,
    /// Run the statements and commands of this file as a script, then exit.
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// `arq functions`.
#[derive(Debug, Args)]
pub struct FunctionsArgs {
    /// Only functions whose name contains this text.
    pub name: Option<String>,
}

/// `arq train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Where to write the model (JSON).
    #[arg(long, short = 'o', alias = "output", default_value = "model.json")]
    pub out: PathBuf,
    /// Train on this labelled table (.parquet or .csv) instead of the warehouse.
    #[arg(long, requires = "label")]
    pub table: Option<PathBuf>,
    /// The label column of --table: true/false, 1/0, yes/no or bad/good.
    #[arg(long, requires = "table")]
    pub label: Option<String>,
    /// Columns of --table that identify a row (kept in scores, not features).
    #[arg(long = "id", requires = "table")]
    pub ids: Vec<String>,
    /// Columns of --table to leave out.
    #[arg(long, requires = "table")]
    pub exclude: Vec<String>,
    /// Date or period column of --table for an out-of-time split (else a fixed
    /// pseudo-random third of the rows validates).
    #[arg(long, requires = "table")]
    pub time: Option<String>,
    /// Also write the validation report as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub scorecard: ScorecardArgs,
    /// Trees in the challenger forest.
    #[arg(long, default_value_t = 50)]
    pub trees: usize,
    /// Seed of the challenger forest.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `arq score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Score this table (.parquet or .csv) instead of the warehouse.
    #[arg(long)]
    pub table: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `arq queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Only what this person (collector, supervisor, resolver) works today, or only this
    /// queue: `supervisor:high_risk`, `dispute`, `escalation`, `held`, `carry_over`, ...
    #[arg(long)]
    pub collector: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `arq limits`.
#[derive(Debug, Args)]
pub struct LimitsArgs {
    /// Only this customer.
    #[arg(long)]
    pub customer: Option<String>,
    /// Only these actions (increase, keep, decrease, hold; comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub action: Vec<String>,
    /// Only these risk classes (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub class: Vec<String>,
    /// Only customers whose exposure is above their current limit.
    #[arg(long)]
    pub over_limit: bool,
    /// Only customers whose exposure is above the recommended limit (order block).
    #[arg(long)]
    pub above_recommended: bool,
    /// Only credit lines due for review (periodic or on a trigger), with the trigger.
    #[arg(long)]
    pub due_for_review: bool,
    /// Write the totals by currency, risk class and action instead of the rows (with
    /// `--out`, the totals are printed as well).
    #[arg(long)]
    pub summary: bool,
    /// Compare the policy with this proposed one: before and after per customer (and
    /// the totals per currency with `--summary`).
    #[arg(long, value_name = "NEW.toml", conflicts_with = "applications")]
    pub compare_policy: Option<PathBuf>,
    /// Decide credit applications of prospective customers from this CSV file
    /// (application_id, name, segment, region, currency, requested_limit, and optional
    /// external_rating, annual_revenue) instead of recommending for the warehouse.
    #[arg(long, value_name = "FILE.csv")]
    pub applications: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `arq nightly`.
#[derive(Debug, Args)]
pub struct NightlyArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Folder under which the run's `<as-of>/` folder is written (replacing that
    /// night's earlier outputs as a whole, and nothing else).
    #[arg(long, short = 'o', alias = "output", default_value = "out")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `arq backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// First snapshot date to replay.
    #[arg(long)]
    pub from: NaiveDate,
    /// Last snapshot date to replay (snapshots whose 90-day outcome is not known yet
    /// are skipped, with a note).
    #[arg(long)]
    pub to: NaiveDate,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `arq generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output folder (must not exist or be empty, unless --force).
    #[arg(long, short = 'o', alias = "output")]
    pub out: PathBuf,
    /// Number of customers.
    #[arg(long, default_value_t = 2000)]
    pub customers: u64,
    /// Number of monthly snapshots.
    #[arg(long, default_value_t = 12)]
    pub months: u32,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Last snapshot date (a month end).
    #[arg(long, default_value_t = generate::default_end())]
    pub end: NaiveDate,
    /// Replace a non-empty output folder.
    #[arg(long)]
    pub force: bool,
    /// No progress bar and no summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}
