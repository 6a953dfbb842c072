//! Running SQL over a warehouse and printing or saving the results.

use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;

use crate::error::{ArqError, Result};

/// How query results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table (for people).
    #[default]
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Parquet (needs `--output`); money stays Decimal128.
    Parquet,
}

impl OutputFormat {
    /// The format a file name asks for by its extension (a table when unknown or none).
    pub fn for_path(path: Option<&Path>) -> OutputFormat {
        let extension = path
            .and_then(|p| p.extension())
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("csv") => OutputFormat::Csv,
            Some("json") => OutputFormat::Json,
            Some("ndjson" | "jsonl") => OutputFormat::Ndjson,
            Some("parquet") => OutputFormat::Parquet,
            _ => OutputFormat::Table,
        }
    }
}

/// The result of one statement.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// Whether the statement returns rows at all (DDL such as `CREATE VIEW` does not).
    pub fn has_columns(&self) -> bool {
        !self.schema.fields().is_empty()
    }
}

/// What `arq sql` and the shell allow: queries and session-local DDL (views, in-memory
/// tables), but no statement that writes files (`COPY`, `INSERT`): the warehouse is
/// read-only to SQL.
pub fn sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(true)
        .with_allow_dml(false)
        .with_allow_statements(true)
}

/// Runs every statement in `sql` (separated by `;`), in order, and returns each result.
pub async fn run_statements(ctx: &SessionContext, sql: &str) -> Result<Vec<QueryResult>> {
    let statements = DFParser::parse_sql(sql)?;
    if statements.is_empty() {
        return Err(ArqError::Usage("no SQL statement given".into()));
    }
    let options = sql_options();
    let mut results = Vec::with_capacity(statements.len());
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await?;
        options.verify_plan(&plan)?;
        let frame = ctx.execute_logical_plan(plan).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        results.push(QueryResult { schema, batches });
    }
    Ok(results)
}

/// Encodes a result in `format` into `out`.
pub fn write_result(result: &QueryResult, format: OutputFormat, out: &mut dyn Write) -> Result<()> {
    use datafusion::arrow::{csv, json};
    let io = |e: std::io::Error| ArqError::io("<output>", e);
    match format {
        OutputFormat::Table => {
            let text = datafusion::arrow::util::pretty::pretty_format_batches_with_schema(
                result.schema.clone(),
                &result.batches,
            )?;
            writeln!(out, "{text}").map_err(io)?;
            let n = result.num_rows();
            writeln!(out, "{n} row{}", if n == 1 { "" } else { "s" }).map_err(io)?;
        }
        OutputFormat::Csv => {
            let mut writer = csv::WriterBuilder::new().with_header(true).build(out);
            if result.batches.is_empty() {
                // Still print the header so scripts see the columns.
                writer.write(&RecordBatch::new_empty(result.schema.clone()))?;
            }
            for batch in &result.batches {
                writer.write(batch)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = json::ArrayWriter::new(out);
            let batches: Vec<&RecordBatch> = result.batches.iter().collect();
            writer.write_batches(&batches)?;
            writer.finish()?;
            let out = writer.into_inner();
            writeln!(out).map_err(io)?;
        }
        OutputFormat::Ndjson => {
            let mut writer = json::LineDelimitedWriter::new(out);
            let batches: Vec<&RecordBatch> = result.batches.iter().collect();
            writer.write_batches(&batches)?;
            writer.finish()?;
        }
        OutputFormat::Parquet => {
            // The Parquet writer wants a `Send` sink; encode into memory, then copy.
            let mut encoded = Vec::new();
            let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(
                &mut encoded,
                result.schema.clone(),
                None,
            )?;
            for batch in &result.batches {
                writer.write(batch)?;
            }
            writer.close()?;
            out.write_all(&encoded).map_err(io)?;
        }
    }
    Ok(())
}

/// Writes a result to `path` atomically: into a temporary file beside it, then renamed,
/// so a failed run never leaves a half-written file or clobbers the previous one.
pub fn write_result_to_file(result: &QueryResult, format: OutputFormat, path: &Path) -> Result<()> {
    let tmp = temporary_sibling(path);
    let outcome = (|| {
        let file = std::fs::File::create(&tmp).map_err(|e| ArqError::io(&tmp, e))?;
        let mut buffered = std::io::BufWriter::new(file);
        write_result(result, format, &mut buffered)?;
        let file = buffered
            .into_inner()
            .map_err(|e| ArqError::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| ArqError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| ArqError::io(path, e))
    })();
    if outcome.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    outcome
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Lists every table and view of the session with its columns, for `\d` and
/// `arq tables`.
pub async fn describe_tables(ctx: &SessionContext, only: Option<&str>) -> Result<String> {
    let sql = "SELECT table_name, column_name, data_type, is_nullable \
               FROM information_schema.columns \
               WHERE table_schema = 'warehouse' \
               ORDER BY table_name, ordinal_position";
    let frame = ctx.sql(sql).await?;
    let batches = frame.collect().await?;
    let mut listing = String::new();
    let mut current = String::new();
    let mut found = false;
    for batch in &batches {
        let column = |i: usize| {
            datafusion::arrow::compute::cast(
                batch.column(i),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
        };
        let (tables, columns, types, nullable) = (column(0)?, column(1)?, column(2)?, column(3)?);
        let text = |a: &datafusion::arrow::array::ArrayRef, row: usize| {
            datafusion::arrow::array::AsArray::as_string::<i32>(a.as_ref())
                .value(row)
                .to_string()
        };
        for row in 0..batch.num_rows() {
            let table = text(&tables, row);
            if only.is_some_and(|o| o != table) {
                continue;
            }
            found = true;
            if table != current {
                listing.push_str(&table);
                listing.push('\n');
                current = table;
            }
            let null = if text(&nullable, row) == "YES" {
                ""
            } else {
                " not null"
            };
            listing.push_str(&format!(
                "  {:<22} {}{null}\n",
                text(&columns, row),
                text(&types, row)
            ));
        }
    }
    match (only, found) {
        (Some(name), false) => Err(ArqError::Usage(format!("no table or view named `{name}`"))),
        _ => Ok(listing),
    }
}

/// The documentation of arq's SQL functions (all of them, or those whose name contains
/// `filter`), for `arq functions` and the shell's `\functions`.
pub fn describe_functions(
    filter: Option<&str>,
    model: Option<&arq_models::sql::SessionModel>,
) -> Result<String> {
    let mut docs = arq_udfs::documentation();
    docs.extend(arq_models::sql::documentation(model));
    docs.sort_by(|a, b| a.name.cmp(&b.name));
    let docs: Vec<_> = docs
        .into_iter()
        .filter(|d| filter.is_none_or(|f| d.name.contains(f)))
        .collect();
    if docs.is_empty() {
        return Err(ArqError::Usage(format!(
            "no arq function matches `{}`",
            filter.unwrap_or_default()
        )));
    }
    let mut text = String::new();
    for d in docs {
        let doc = &d.documentation;
        text.push_str(&format!("{} ({})\n", d.name, d.kind));
        text.push_str(&format!("  {}\n", doc.syntax_example));
        text.push_str(&format!("  {}\n", doc.description));
        for (name, description) in doc.arguments.iter().flatten() {
            text.push_str(&format!("    {name}: {description}\n"));
        }
        if let Some(example) = &doc.sql_example {
            text.push_str("  Example:\n");
            for line in example.lines().filter(|l| !l.starts_with("```")) {
                text.push_str(&format!("    {line}\n"));
            }
        }
        text.push('\n');
    }
    Ok(text)
}
