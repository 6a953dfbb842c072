//! The flags of every command, as clap parses them. Groups that several commands share
//! (output, policy, scorecard) are flattened argument structs, so they read and behave
//! the same everywhere.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::generate;
use crate::memory::MemoryLimit;
use crate::output::{Expanded, OutputFormat, TableView};
use crate::report::Section;
use crate::warehouse::AsOf;

/// arq: analytic SQL, risk scores and call lists over accounts-receivable snapshots.
#[derive(Debug, Parser)]
#[command(
    name = "arq",
    version,
    about,
    propagate_version = true,
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Given before the command.
    #[command(flatten)]
    pub inputs: InputArgs,

    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
--warehouse, --as-of and --model go before the command (arq -w W sql ...) or after it;
`arq COMMAND --help` lists the options of that command.

Examples:
  arq nightly --warehouse data/demo --out out      the nightly job on the demo warehouse
  arq sql \"SELECT * FROM ar_metrics('2026-01-31', '2026-10-31')\"   DSO, CEI per month
  arq shell                                        the interactive prompt
  arq queue --collector K0001 --out K0001.xlsx     one collector's call list as a spreadsheet";

/// The warehouse a command reads.
#[derive(Debug, Args, Default)]
pub struct WarehouseArgs {
    /// Warehouse folder, or s3://bucket/prefix (default: data/demo, the bundled demo
    /// warehouse).
    #[arg(long, short = 'w', env = "ARQ_WAREHOUSE", value_name = "DIR|URL")]
    pub warehouse: Option<PathBuf>,
}

/// The snapshot a command reads.
#[derive(Debug, Args, Default)]
pub struct AsOfArgs {
    /// Snapshot to read: a date (the newest snapshot on or before it) or `latest`
    /// (the default).
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<AsOf>,
}

/// The risk model a command reads.
#[derive(Debug, Args, Default)]
pub struct ModelArgs {
    /// Risk model for `risk_score()` & co. in SQL and for scoring (default:
    /// data/models/default.json, the model trained on the demo warehouse).
    #[arg(long, short = 'm', env = "ARQ_MODEL", value_name = "FILE")]
    pub model: Option<PathBuf>,
}

/// The warehouse, snapshot and model flags of a command (given after it).
#[derive(Debug, Args)]
pub struct InputArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub as_of: AsOfArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL over the warehouse and print or save the result.
    #[command(after_help = "\
Examples:
  arq sql \"SELECT aging_bucket(due_date, snapshot_date) AS bucket, currency,
           sum(open_amount) AS open FROM open_items_latest GROUP BY 1, 2 ORDER BY 2, 1\"
  arq sql -c \"SELECT * FROM ar_metrics('2026-01-31', '2026-10-31')\" --out metrics.xlsx
  arq sql -f month_end.sql --echo
  echo \"SELECT count(*) FROM customers_latest\" | arq sql --format csv
  arq sql \"SELECT * FROM read_csv('export.csv') e JOIN customers_latest c USING (customer_id)\"")]
    Sql(SqlArgs),
    /// Interactive SQL shell (multi-line statements, history, tab completion, `\d` lists
    /// tables).
    #[command(after_help = "\
Examples:
  arq shell
  arq shell --as-of 2026-06-30 --max-rows 100
  arq shell -f checks.sql --continue-on-error")]
    Shell(ShellArgs),
    /// List the warehouse's tables and views with their columns.
    #[command(after_help = "\
Examples:
  arq tables
  arq tables --warehouse /srv/ar/warehouse")]
    Tables(TablesArgs),
    /// List arq's SQL functions with their documentation and examples.
    #[command(after_help = "\
Examples:
  arq functions
  arq functions aging_bucket")]
    Functions(FunctionsArgs),
    /// Train the risk model (logistic regression, binned scorecard and random-forest
    /// candidates) on the warehouse, or on any labelled table with --table and --label.
    #[command(after_help = "\
Examples:
  arq train --out model.json --report report.json
  arq train --as-of 2026-07-31 --out m.json       only snapshots up to that date
  arq train --champion scorecard --out m.json     ship the scorecard whatever wins
  arq train --table loans.csv --label bad --id loan_id --time issue_month --out loans.json")]
    Train(TrainArgs),
    /// Score every customer of a snapshot (--as-of, default the newest) with the model,
    /// or every row of a table with --table.
    #[command(after_help = "\
Examples:
  arq score --out scores.parquet
  arq score --model loans.json --table test.csv --out scored.csv")]
    Score(ScoreArgs),
    /// Today's call lists from the snapshot (--as-of, default the newest): every customer
    /// with an overdue balance once, in a collector's list, a supervisor queue, the
    /// dispute queue, held back by a promise, or carried over.
    #[command(after_help = "\
Examples:
  arq queue --collector ana
  arq queue --collector dispute --out disputes.xlsx
  arq queue --out queues.csv")]
    Queue(QueueArgs),
    /// Credit-limit recommendations for every customer of the snapshot (--as-of, default
    /// the newest), from the model's PDs and a credit policy.
    #[command(after_help = "\
Examples:
  arq limits --action increase,decrease --out changes.xlsx
  arq limits --due-for-review
  arq limits --summary
  arq limits --compare-policy proposed.toml --summary
  arq limits --applications applications.csv")]
    Limits(LimitsArgs),
    /// The nightly job: check the snapshot (--as-of, default the newest), score every
    /// customer, build the work queues and the credit-limit recommendations, and write
    /// them (CSV and Parquet, with a manifest) to OUT/<as-of>/ in one atomic step.
    #[command(after_help = "\
Examples:
  arq nightly --warehouse data/demo --out out
  arq nightly --warehouse /srv/ar/warehouse --out /srv/ar/out --xlsx --quiet")]
    Nightly(NightlyArgs),
    /// Build or update the invoice settlement table the nightly job keeps in
    /// OUT/_settlement (the day each invoice was paid in full, and the payments by month
    /// with their invoice's currency), from the invoices and payments files added since
    /// its last update, or from scratch.
    #[command(after_help = "\
Examples:
  arq settle --out out                         update (or build) out/_settlement
  arq settle --out /srv/ar/out --rebuild       from every invoice and payment again")]
    Settle(SettleArgs),
    /// Replay the queue order on past snapshots: the share of the next 90 days'
    /// newly-bad balance in the top 10 % / 20 % of the queue, for arq's order and for
    /// oldest-first and largest-balance-first.
    #[command(after_help = "\
Examples:
  arq backtest --from 2026-01-31 --to 2026-07-31
  arq backtest --from 2026-01-31 --to 2026-07-31 --model m.json --out backtest.csv")]
    Backtest(BacktestArgs),
    /// The month's review on one self-contained HTML page: the portfolio per currency
    /// (KPI tiles, aging, DSO and CEI trends, roll rates, top overdue customers, segment
    /// and region), each collector's month, and the credit desk's recommendations, with
    /// charts and their numbers.
    #[command(after_help = "\
Examples:
  arq report                                       newest snapshot, 12 months → report.html
  arq report --as-of 2026-09-30 --months 6 --out september.html
  arq report --sections portfolio --warehouse /srv/ar/warehouse --out portfolio.html")]
    Report(ReportArgs),
    /// Serve the warehouse and every arq function over the PostgreSQL wire protocol, for
    /// psql, DBeaver, Metabase, Grafana: SCRAM passwords, TLS, read-only, a memory limit
    /// and a timeout per statement, new snapshots without a restart.
    #[command(after_help = "\
Examples:
  arq serve --users users.toml --add-user ana      add a user (asks for the password)
  arq serve --users users.toml                     serve on 127.0.0.1:5432
  arq serve --users users.toml --listen 0.0.0.0:5432 --tls-cert server.crt \\
            --tls-key server.key --require-tls
  arq serve --trust-local --listen 127.0.0.1:5433  no passwords, this machine only
  psql \"host=127.0.0.1 port=5432 user=ana dbname=arq\" -c \"SELECT * FROM
       ar_metrics('2026-01-31', '2026-10-31')\"")]
    Serve(ServeArgs),
    /// Write a synthetic warehouse in the contract (deterministic for a seed).
    #[command(after_help = "\
Examples:
  arq generate --out /tmp/wh
  arq generate --out /tmp/big --customers 250000 --months 12 --seed 1")]
    Generate(GenerateArgs),
    /// Run a node of a Ballista cluster with arq's functions: the scheduler, or an
    /// executor (several may run on one machine); clients connect with --cluster.
    #[command(after_help = "\
Examples:
  arq cluster scheduler --bind 0.0.0.0:50050
  arq cluster executor --scheduler 10.0.0.5:50050 --bind 10.0.0.6:50051
  arq cluster executor --scheduler 127.0.0.1:50050 --concurrent-tasks 2
  arq sql --cluster df://127.0.0.1:50050 --warehouse s3://ar/warehouse \\
          \"SELECT currency, sum(open_amount) FROM open_items_latest GROUP BY 1\"")]
    Cluster(ClusterCommandArgs),
}

impl Command {
    /// What the command reads, so that [`crate::cli::Config`] opens and loads only that.
    pub fn needs(&self) -> Needs {
        let decisions = matches!(self, Command::Queue(_) | Command::Nightly(_))
            || matches!(self, Command::Score(a) if a.table.is_none())
            || matches!(self, Command::Limits(a) if a.applications.is_none());
        let (warehouse, model, policy) = match self {
            Command::Sql(_) | Command::Shell(_) => (true, Need::Optional, false),
            Command::Tables(_) => (true, Need::No, false),
            Command::Settle(_) => (true, Need::No, false),
            Command::Functions(_) => (false, Need::Optional, false),
            Command::Train(a) => (a.table.is_none(), Need::No, false),
            Command::Score(a) => (a.table.is_none(), Need::Required, false),
            // Applications are of prospective customers: no warehouse, no model.
            Command::Limits(a) if a.applications.is_some() => (false, Need::No, true),
            Command::Queue(_) | Command::Limits(_) | Command::Nightly(_) | Command::Backtest(_) => {
                (true, Need::Required, true)
            }
            Command::Report(_) => (true, Need::Optional, true),
            Command::Serve(a) if a.add_user.is_some() => (false, Need::No, false),
            Command::Serve(_) => (true, Need::Optional, false),
            Command::Generate(_) => (false, Need::No, false),
            Command::Cluster(_) => (false, Need::Optional, false),
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
            Command::Report(a) => Some(&a.policy),
            _ => None,
        }
    }

    /// The warehouse, snapshot and model flags given after the command.
    fn inputs(
        &self,
    ) -> (
        Option<&WarehouseArgs>,
        Option<&AsOfArgs>,
        Option<&ModelArgs>,
    ) {
        let i = match self {
            Command::Sql(x) => &x.inputs,
            Command::Shell(x) => &x.inputs,
            Command::Score(x) => &x.inputs,
            Command::Queue(x) => &x.inputs,
            Command::Limits(x) => &x.inputs,
            Command::Nightly(x) => &x.inputs,
            Command::Report(x) => &x.inputs,
            Command::Serve(x) => &x.inputs,
            Command::Tables(x) => return (Some(&x.warehouse), Some(&x.as_of), None),
            Command::Settle(x) => return (Some(&x.warehouse), Some(&x.as_of), None),
            Command::Train(x) => return (Some(&x.warehouse), Some(&x.as_of), None),
            Command::Backtest(x) => return (Some(&x.warehouse), None, Some(&x.model)),
            Command::Functions(x) => return (None, None, Some(&x.model)),
            Command::Generate(_) => return (None, None, None),
            Command::Cluster(x) => return (None, None, Some(x.node.model())),
        };
        (Some(&i.warehouse), Some(&i.as_of), Some(&i.model))
    }

    /// Whether the command's sessions read text columns as string views: the analysts'
    /// SQL (`sql`, `shell`, `serve`), whose results arq only prints or sends
    /// ([`crate::Warehouse::with_string_views`]).
    pub fn reads_string_views(&self) -> bool {
        matches!(
            self,
            Command::Sql(_) | Command::Shell(_) | Command::Serve(_)
        )
    }

    /// The memory limit given to an analyst's command.
    pub fn memory_limit(&self) -> Option<MemoryLimit> {
        match self {
            Command::Sql(a) => a.session.memory_limit,
            Command::Shell(a) => a.session.memory_limit,
            _ => None,
        }
    }

    /// The cluster a command's queries run on (`--cluster`), if given.
    pub fn cluster(&self) -> Option<&str> {
        let args = match self {
            Command::Sql(a) => &a.cluster,
            Command::Shell(a) => &a.cluster,
            Command::Nightly(a) => &a.cluster,
            Command::Serve(a) => &a.cluster,
            _ => return None,
        };
        args.cluster.as_deref()
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

impl Cli {
    /// The warehouse folder given after the command, else before it.
    pub fn warehouse(&self) -> Option<&PathBuf> {
        let (after, _, _) = self.command.inputs();
        after
            .and_then(|w| w.warehouse.as_ref())
            .or(self.inputs.warehouse.warehouse.as_ref())
    }

    /// The snapshot asked for after the command, else before it, else the newest.
    pub fn as_of(&self) -> AsOf {
        let (_, after, _) = self.command.inputs();
        after
            .and_then(|a| a.as_of)
            .or(self.inputs.as_of.as_of)
            .unwrap_or(AsOf::Latest)
    }

    /// The model file given after the command, else before it.
    pub fn model(&self) -> Option<&PathBuf> {
        let (_, _, after) = self.command.inputs();
        after
            .and_then(|m| m.model.as_ref())
            .or(self.inputs.model.model.as_ref())
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
    /// untouched) instead of stdout; the format follows the extension: .csv, .json,
    /// .ndjson, .parquet, .xlsx (a spreadsheet), .txt (a table).
    #[arg(long = "out", short = 'o', alias = "output", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format (default: from --out's extension, else a table).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// The help heading of [`DisplayArgs`].
const DISPLAY: &str = "Table display";

/// How a text table is printed.
#[derive(Debug, Args)]
pub struct DisplayArgs {
    /// Rows a table shows; the others are counted ("… 211,949 more rows"). 0 shows all.
    /// Default 40 on a terminal, all in a file.
    #[arg(long, value_name = "N", help_heading = DISPLAY)]
    pub max_rows: Option<usize>,
    /// How NULL reads in a table.
    #[arg(long, value_name = "TEXT", default_value = "NULL", help_heading = DISPLAY)]
    pub null: String,
    /// One field per line (psql's expanded display): auto when the table is wider than
    /// the terminal (or $COLUMNS).
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value_t,
        help_heading = DISPLAY
    )]
    pub expanded: Expanded,
}

impl DisplayArgs {
    /// The table view these flags ask for, on a terminal or (`to_file`) in a file.
    pub fn view(&self, to_file: bool) -> TableView {
        let base = if to_file {
            TableView::whole()
        } else {
            TableView::default()
        };
        TableView {
            max_rows: match self.max_rows {
                Some(0) => None,
                Some(n) => Some(n),
                None => base.max_rows,
            },
            null: self.null.clone(),
            expanded: if to_file && self.expanded == Expanded::Auto {
                Expanded::Off
            } else {
                self.expanded
            },
            width: base.width,
        }
    }
}

/// Limits of an analyst's session.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Memory a query may use: 4GB, 512MB or 70% (of RAM, the default). A query over it
    /// fails with an error instead of exhausting the machine.
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<MemoryLimit>,
}

/// Where a command's queries run.
#[derive(Debug, Args, Default)]
pub struct ClusterArgs {
    /// Plan the queries on a Ballista cluster (`arq cluster scheduler` and executors;
    /// see the README): its executors read the warehouse, so use one they all see (a
    /// bucket, or the same folder on every machine).
    #[arg(long, env = "ARQ_CLUSTER", value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
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
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
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
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format (table, csv, json, ndjson; `\format` changes it at the prompt).
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub display: DisplayArgs,
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

/// `arq tables`.
#[derive(Debug, Args)]
pub struct TablesArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub as_of: AsOfArgs,
}

/// `arq settle`.
#[derive(Debug, Args)]
pub struct SettleArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// The snapshot whose customers cut the work into slices (any: every customer id is
    /// covered).
    #[command(flatten)]
    pub as_of: AsOfArgs,
    /// The nightly job's output folder (the table is in its `_settlement/`).
    #[arg(long, short = 'o', default_value = "out")]
    pub out: PathBuf,
    /// Build the table from every invoice and payment, whatever was kept.
    #[arg(long)]
    pub rebuild: bool,
}

/// `arq functions`.
#[derive(Debug, Args)]
pub struct FunctionsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Only functions whose name contains this text.
    pub name: Option<String>,
}

/// `arq train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub as_of: AsOfArgs,
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
    /// L2 strength of the logistic regression (scikit-learn's 1/C), instead of choosing it
    /// by 5-fold cross-validation over 1e-4 … 1e4.
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Ship the model fitted on the training rows only, instead of fitting it again on
    /// every labelled row once validated.
    #[arg(long)]
    pub no_refit: bool,
    /// Ship this candidate whatever the validation says (`logistic`, `scorecard`,
    /// `forest`); by default the rule: the scorecard when its out-of-sample AUC is within
    /// 0.005 of the best candidate's, else the best.
    #[arg(long, value_enum)]
    pub champion: Option<ChampionArg>,
    /// Trees in the forest candidate.
    #[arg(long, default_value_t = 50)]
    pub trees: usize,
    /// Seed of the forest candidate's bootstrap.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// A candidate of `arq train --champion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChampionArg {
    Logistic,
    Scorecard,
    Forest,
}

/// `arq score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Score this table (.parquet or .csv) instead of the warehouse.
    #[arg(long)]
    pub table: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `arq queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
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
    #[command(flatten)]
    pub inputs: InputArgs,
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
    pub inputs: InputArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Folder under which the run's `<as-of>/` folder is written (replacing that
    /// night's earlier outputs as a whole, and nothing else), or s3://bucket/prefix
    /// (a new run of the night, then its `LATEST` pointer; see the README).
    #[arg(long, short = 'o', alias = "output", default_value = "out")]
    pub out: PathBuf,
    /// Also write the lists people read as spreadsheets: `call_lists/<person>.xlsx`
    /// (the list, and its overdue invoices on a second sheet), `supervisors.xlsx`,
    /// `dispute.xlsx`, `escalation.xlsx`, `held.xlsx`, `carry_over.xlsx` and `limits.xlsx`
    /// (the changed recommendations and the totals).
    #[arg(long)]
    pub xlsx: bool,
    /// Settle every invoice against its payments tonight instead of reading (and
    /// updating) the settlement table kept in OUT/_settlement (what `arq settle`
    /// builds): the same outputs, slower; for a check, or an output folder the job
    /// cannot keep it in.
    #[arg(long)]
    pub settle_from_payments: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `arq report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Months the trends cover, ending with the snapshot's.
    #[arg(long, default_value_t = 12)]
    pub months: u32,
    /// The sections to include (comma-separated; default all), shown in the usual order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = [
            Section::Portfolio,
            Section::Collectors,
            Section::Model,
            Section::Credit
        ]
    )]
    pub sections: Vec<Section>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The CEI target line (%).
    #[arg(long, value_name = "PERCENT", default_value_t = crate::report::DEFAULT_CEI_TARGET)]
    pub cei_target: f64,
    /// The nightly job's output folder (or s3://bucket/prefix): counts each collector's
    /// nights over capacity this month from the nights' `carry_over` lists.
    #[arg(long, value_name = "OUT")]
    pub nights: Option<PathBuf>,
    /// Where to write the report (atomically).
    #[arg(long, short = 'o', alias = "output", default_value = "report.html")]
    pub out: PathBuf,
}

/// `arq serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Address and port to listen on. Anything but a loopback address is reachable from
    /// other machines: use TLS there.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5432")]
    pub listen: std::net::SocketAddr,
    /// Users and their salted passwords (SCRAM-SHA-256), mode 0600; written by
    /// --add-user. ARQ_SERVE_USER / ARQ_SERVE_PASSWORD add one user from the environment.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Add NAME to the --users file (or change its password) and exit: asks for the
    /// password on the terminal, or reads one line from stdin.
    #[arg(long, value_name = "NAME", requires = "users")]
    pub add_user: Option<String>,
    /// Serve without passwords when no users are configured: only on a loopback address.
    #[arg(long)]
    pub trust_local: bool,
    /// TLS certificate chain (PEM). With --tls-key; a file that cannot be loaded stops the
    /// server.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Refuse clients that do not use TLS.
    #[arg(long)]
    pub require_tls: bool,
    /// Memory one statement may use (4GB, 512MB, 10% of RAM); over it the statement
    /// fails with SQLSTATE 53200 and the server goes on. Default: 20% of RAM.
    #[arg(long, value_name = "SIZE")]
    pub query_memory: Option<MemoryLimit>,
    /// statement_timeout of a new session (500ms, 30s, 5min; plain numbers are ms).
    #[arg(long, value_name = "DURATION", default_value = "5min", value_parser = duration)]
    pub statement_timeout: std::time::Duration,
    /// The most a session may SET statement_timeout to (`SET statement_timeout = 0`, no
    /// limit in Postgres, means this maximum).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration)]
    pub max_statement_timeout: std::time::Duration,
    /// Connections served at once; more are refused with SQLSTATE 53300.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_connections: usize,
    /// How often the warehouse's listing is checked for new snapshots (SIGHUP checks at
    /// once).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub reload_interval: std::time::Duration,
}

fn duration(text: &str) -> Result<std::time::Duration, String> {
    match crate::serve::handler::parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "`{text}` is not a duration such as 500ms, 30s, 5min or 1h"
        )),
    }
}

/// `arq backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub model: ModelArgs,
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
    /// Output folder, or s3://bucket/prefix (must not exist or be empty, unless --force).
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

/// `arq cluster`.
#[derive(Debug, Args)]
pub struct ClusterCommandArgs {
    #[command(subcommand)]
    pub node: ClusterNode,
}

/// The processes of a cluster.
#[derive(Debug, Subcommand)]
pub enum ClusterNode {
    /// The scheduler: plans the clients' queries into stages and hands their tasks to the
    /// executors.
    Scheduler(SchedulerArgs),
    /// An executor: runs tasks, keeps their shuffle output and serves it to the others.
    Executor(ExecutorArgs),
}

impl ClusterNode {
    fn model(&self) -> &ModelArgs {
        match self {
            ClusterNode::Scheduler(a) => &a.model,
            ClusterNode::Executor(a) => &a.model,
        }
    }
}

/// `arq cluster scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address and port to listen on (clients and executors connect there).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    pub bind: std::net::SocketAddr,
    /// The risk model whose risk_score(), risk_points() and risk_reasons() queries may
    /// use (default: data/models/default.json when it exists); give the clients the same.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// `arq cluster executor`.
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler's address (HOST:PORT or df://HOST:PORT).
    #[arg(long, value_name = "HOST:PORT")]
    pub scheduler: String,
    /// Address and port to listen on for the scheduler and for other executors (a second
    /// port, free, is taken beside it). Without it: two free ports on 127.0.0.1, so
    /// several executors run on one machine.
    #[arg(long, value_name = "HOST:PORT")]
    pub bind: Option<std::net::SocketAddr>,
    /// Tasks run at once (default: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub concurrent_tasks: usize,
    /// Folder for the tasks' shuffle files (default: a temporary folder, removed on exit).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The risk model, as for the scheduler.
    #[command(flatten)]
    pub model: ModelArgs,
}
