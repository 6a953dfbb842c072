//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Every subcommand, in the order `arq --help` lists them.
pub const COMMANDS: [&str; 15] = [
    "sql",
    "shell",
    "tables",
    "functions",
    "train",
    "score",
    "queue",
    "limits",
    "nightly",
    "settle",
    "backtest",
    "report",
    "serve",
    "generate",
    "cluster",
];

/// The repository root (tests run the binary from here, like a newcomer would).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled demo warehouse.
pub fn demo() -> PathBuf {
    repo_root().join("data/demo")
}

/// A command for the `arq` binary, run from the repository root with a clean
/// environment (no ARQ_WAREHOUSE from the developer's shell).
pub fn arq() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arq"));
    cmd.current_dir(repo_root())
        .env_remove("ARQ_WAREHOUSE")
        .env_remove("ARQ_MODEL")
        // Tables print the same whatever terminal the tests were started from.
        .env_remove("COLUMNS")
        .env("ARQ_HISTORY", std::env::temp_dir().join("arq-test-history"))
        .stdin(Stdio::null());
    cmd
}

/// Runs `arq ARGS` and returns its output.
pub fn run(args: &[&str]) -> Output {
    arq().args(args).output().expect("arq runs")
}

/// Runs `arq ARGS` with `input` on stdin; its output.
pub fn run_with_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = arq()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("arq runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("input written");
    child.wait_with_output().expect("arq ends")
}

/// Runs `arq ARGS`, asserts success and returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "arq {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs `arq ARGS`, asserts exit code 1 (bad input) with a one-line `error: ...`
/// message and no panic, and returns that line.
pub fn run_err(args: &[&str]) -> String {
    run_failing(args, 1)
}

/// Runs `arq ARGS`, asserts exit code 2 (bad arguments, as clap's own) with a one-line
/// `error: ...` message and no panic, and returns that line.
pub fn run_usage_err(args: &[&str]) -> String {
    run_failing(args, 2)
}

fn run_failing(args: &[&str], code: i32) -> String {
    error_line(&format!("arq {args:?}"), &run(args), code)
}

/// Asserts that `out` (of `what`) exited with `code` and one `error: ...` line on stderr,
/// without a panic; returns that line.
pub fn error_line(what: &str, out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{what}: stderr {stderr}");
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: not one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

/// Generates a small warehouse into `dir` with the given seed.
pub fn generate_small(dir: &Path, customers: u32, months: u32, seed: u64) {
    run_ok(&[
        "generate",
        "--quiet",
        "--out",
        dir.to_str().expect("utf-8 path"),
        "--customers",
        &customers.to_string(),
        "--months",
        &months.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Asserts two folders hold the same files with the same bytes.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (fa, fb) = (files_under(a), files_under(b));
    assert_eq!(
        fa,
        fb,
        "different files in {} and {}",
        a.display(),
        b.display()
    );
    assert!(!fa.is_empty(), "{} is empty", a.display());
    for f in &fa {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{} differs between {} and {}",
            f.display(),
            a.display(),
            b.display()
        );
    }
}

/// The data rows of CSV text (header skipped), with quoted fields (which may hold
/// commas) kept whole.
pub fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|line| {
            let mut fields = vec![String::new()];
            let mut quoted = false;
            for c in line.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => fields.push(String::new()),
                    c => fields.last_mut().expect("a field").push(c),
                }
            }
            fields
        })
        .collect()
}

/// The batches of `select` over the Parquet file `path` (registered as `t`).
pub fn select_parquet(
    path: &Path,
    select: &str,
) -> Vec<datafusion::arrow::record_batch::RecordBatch> {
    use datafusion::prelude::*;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = SessionContext::new();
        ctx.register_parquet("t", path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
        ctx.sql(select).await.unwrap().collect().await.unwrap()
    })
}

/// Replaces a table's file with one written by DataFusion from `select` (over the
/// original file registered as `t`).
pub fn rewrite(warehouse: &Path, relative: &str, select: &str) {
    let path = warehouse.join(relative);
    let batches = select_parquet(&path, select);
    let schema = batches[0].schema();
    let file = std::fs::File::create(&path).unwrap();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

/// CSV text read by column name.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(text: &str) -> Table {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        Table { header, rows }
    }

    /// The index of a column.
    pub fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    /// The values of one column.
    pub fn column(&self, name: &str) -> Vec<&str> {
        let i = self.col(name);
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }

    /// Each row as a lookup by column name.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.rows.iter().map(move |row| Record { table: self, row })
    }
}

/// One row of a [`Table`].
#[derive(Clone, Copy)]
pub struct Record<'a> {
    table: &'a Table,
    pub row: &'a [String],
}

impl<'a> Record<'a> {
    pub fn get(&self, name: &str) -> &'a str {
        &self.row[self.table.col(name)]
    }

    /// A money or number column.
    pub fn num(&self, name: &str) -> f64 {
        self.get(name)
            .parse()
            .unwrap_or_else(|_| panic!("{name}: {:?}", self.row))
    }
}

impl std::fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs: Vec<String> = self
            .table
            .header
            .iter()
            .zip(self.row)
            .map(|(h, v)| format!("{h}={v}"))
            .collect();
        write!(f, "{}", pairs.join(", "))
    }
}

/// The README's SQL: the statements of its ```sql block and its `arq sql` lines.
pub fn readme_sql() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut runs = Vec::new();
    let mut in_sql = false;
    let mut block = String::new();
    for line in readme.lines() {
        if line.starts_with("```sql") {
            in_sql = true;
        } else if in_sql && line.starts_with("```") {
            in_sql = false;
        } else if in_sql && !line.trim_start().starts_with("--") {
            block.push_str(line);
            block.push('\n');
        }
        // (The cluster's quick start needs a running cluster: tests/cluster.rs.)
        if let Some(rest) = line
            .strip_prefix("arq sql ")
            .filter(|rest| !rest.contains("--cluster"))
        {
            // `arq sql "QUERY"` and `arq sql [--as-of D] -f FILE`; no output files.
            if let Some(query) = rest.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                runs.push(vec!["sql".into(), "-c".into(), query.into()]);
            } else if !rest.contains("--output") {
                runs.push(
                    std::iter::once("sql")
                        .chain(rest.split_whitespace())
                        .map(str::to_string)
                        .collect(),
                );
            }
        }
    }
    for statement in block.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        runs.push(vec!["sql".into(), "-c".into(), statement.to_string()]);
    }
    runs
}

/// Asserts that two CSV outputs of the README run `run` hold the same rows (with at
/// least one): in the same order when the query orders them, else as sets.
pub fn assert_same_result(run: &[String], got: &str, expected: &str) {
    assert!(got.lines().count() > 1, "{run:?}: no rows");
    let ordered = run.iter().any(|a| a.to_uppercase().contains("ORDER BY"))
        || run.iter().any(|a| a.ends_with(".sql"));
    let rows = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if !ordered {
            lines.sort();
        }
        lines
    };
    assert_eq!(rows(got), rows(expected), "{run:?}");
}

/// Each customer of the newest snapshot with their balance, last contact and disputed
/// items: customers left-joined to three per-customer aggregates, ordered by customer —
/// joins that collect joins' output (`CompactViews`).
pub const EACH_CUSTOMER: &str = "SELECT c.customer_id, c.segment, c.name, i.exposure, a.last_day, d.disputed \
     FROM customers_latest c \
     LEFT JOIN (SELECT customer_id, sum(open_amount) AS exposure FROM open_items_latest GROUP BY 1) i \
       ON i.customer_id = c.customer_id \
     LEFT JOIN (SELECT customer_id, max(activity_date) AS last_day FROM activities GROUP BY 1) a \
       ON a.customer_id = c.customer_id \
     LEFT JOIN (SELECT customer_id, count(*) AS disputed FROM open_items_latest WHERE disputed GROUP BY 1) d \
       ON d.customer_id = c.customer_id \
     ORDER BY c.customer_id";
