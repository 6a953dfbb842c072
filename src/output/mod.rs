//! Everything arq writes: the formats of a result, the encoders, printing to stdout, and
//! the one way files are written ([`write_atomically`]: a temporary file, fsync, rename,
//! fsync of the folder) — for `sql --out`, `score`/`queue`/`limits`/`backtest --out`,
//! `train --out`/`--report` and each file of the nightly job, whose folder appears as a
//! whole through [`staging::StagingDir`].

pub mod atomic;
pub mod folder;
pub mod staging;

use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::{ArqError, Result};

pub use atomic::write_atomically;

/// How results are written.
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
    /// Parquet (needs `--out`); money stays Decimal128.
    Parquet,
}

impl OutputFormat {
    /// The format a file name asks for by its extension (none when unknown: a text
    /// table is never written into `x.parquet` or `x.xls` by guess).
    pub fn for_path(path: &Path) -> Option<OutputFormat> {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("csv") => Some(OutputFormat::Csv),
            Some("json") => Some(OutputFormat::Json),
            Some("ndjson" | "jsonl") => Some(OutputFormat::Ndjson),
            Some("parquet") => Some(OutputFormat::Parquet),
            Some("txt") => Some(OutputFormat::Table),
            _ => None,
        }
    }
}

/// Where and how a command writes its result: a file (atomically) or stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub path: Option<PathBuf>,
    pub format: OutputFormat,
}

impl Output {
    /// `--format`, else the format of `--out`'s extension (an unknown one is an error),
    /// else a table on stdout; Parquet needs a file.
    pub fn new(path: Option<PathBuf>, format: Option<OutputFormat>) -> Result<Output> {
        let format = match (format, &path) {
            (Some(f), _) => f,
            (None, None) => OutputFormat::Table,
            (None, Some(p)) => OutputFormat::for_path(p).ok_or_else(|| {
                ArqError::Usage(format!(
                    "cannot tell the format of {} from its extension: name it .csv, .json, \
                     .ndjson, .parquet or .txt, or give --format",
                    p.display()
                ))
            })?,
        };
        if format == OutputFormat::Parquet && path.is_none() {
            return Err(ArqError::Usage(
                "--format parquet needs an output file (--out FILE, also spelled --output): \
                 Parquet is not for a terminal"
                    .into(),
            ));
        }
        Ok(Output { path, format })
    }

    /// Writes one batch to the file, or prints it.
    pub fn write_batch(&self, batch: RecordBatch) -> Result<()> {
        self.write(&QueryResult {
            schema: batch.schema(),
            batches: vec![batch],
        })
    }

    /// Writes a result to the file, or prints it.
    pub fn write(&self, result: &QueryResult) -> Result<()> {
        match &self.path {
            Some(path) => write_atomically(path, |file| write_result(result, self.format, file)),
            None => {
                let mut buffer = Vec::new();
                write_result(result, self.format, &mut buffer)?;
                print_stdout(&buffer)
            }
        }
    }
}

/// The result of one statement (or one table of a command).
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

/// Encodes a result in `format` into `out`.
pub fn write_result<W: Write + Send>(
    result: &QueryResult,
    format: OutputFormat,
    out: &mut W,
) -> Result<()> {
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
            // NULL fields are written as `null`, not left out of the object.
            let mut writer = json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, json::writer::JsonArray>(&mut *out);
            let batches: Vec<&RecordBatch> = result.batches.iter().collect();
            writer.write_batches(&batches)?;
            writer.finish()?;
            drop(writer);
            writeln!(out).map_err(io)?;
        }
        OutputFormat::Ndjson => {
            let mut writer = json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, json::writer::LineDelimited>(out);
            let batches: Vec<&RecordBatch> = result.batches.iter().collect();
            writer.write_batches(&batches)?;
            writer.finish()?;
        }
        OutputFormat::Parquet => {
            let mut writer =
                datafusion::parquet::arrow::ArrowWriter::try_new(out, result.schema.clone(), None)?;
            for batch in &result.batches {
                writer.write(batch)?;
            }
            writer.close()?;
        }
    }
    Ok(())
}

/// Prints text on stdout.
pub fn print_text(text: &str) -> Result<()> {
    print_stdout(text.as_bytes())
}

/// Writes to stdout; a closed pipe (`arq sql ... | head`) is not an error.
pub fn print_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(ArqError::io("<stdout>", e)),
        _ => Ok(()),
    }
}
