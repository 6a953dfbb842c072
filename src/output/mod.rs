//! Everything arq writes: the formats of a result, the encoders, printing to stdout, and
//! the one way a file is written in place ([`write_atomically`]: a temporary file, fsync,
//! rename, fsync of the folder) — for `sql --out`, `score`/`queue`/`limits`/`backtest
//! --out` and `train --out`/`--report`. The nightly job's files go into a staging folder
//! that appears as a whole ([`staging::StagingDir`]), each written under its name and
//! fsynced, the folders fsynced once before the commit ([`folder::FolderWriter`]).

pub mod atomic;
pub mod bucket;
pub mod fingerprint;
pub mod folder;
pub mod staging;
pub mod table;
pub mod xlsx;

use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use crate::error::{ArqError, Result};

pub use atomic::{AtomicFile, write_atomically};
pub use table::{Expanded, TablePrinter, TableView};
pub use xlsx::XlsxWriter;

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
    /// An Excel workbook (needs `--out`): money as numbers shown to two decimals, dates
    /// as dates, a frozen header row with a filter.
    Xlsx,
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
            Some("xlsx") => Some(OutputFormat::Xlsx),
            Some("txt") => Some(OutputFormat::Table),
            _ => None,
        }
    }

    /// Formats that are bytes for a program, not text for a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, OutputFormat::Parquet | OutputFormat::Xlsx)
    }
}

/// Where and how a command writes its result: a file (atomically) or stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub path: Option<PathBuf>,
    pub format: OutputFormat,
    /// How a table is printed.
    pub view: TableView,
}

impl Output {
    /// A table on stdout as a terminal shows it.
    pub fn terminal() -> Output {
        Output {
            path: None,
            format: OutputFormat::Table,
            view: TableView::default(),
        }
    }

    /// `--format`, else the format of `--out`'s extension (an unknown one is an error),
    /// else a table on stdout; Parquet and xlsx need a file. A table written into a file
    /// has every row unless `view` limits it.
    pub fn new(
        path: Option<PathBuf>,
        format: Option<OutputFormat>,
        view: TableView,
    ) -> Result<Output> {
        let format = match (format, &path) {
            (Some(f), _) => f,
            (None, None) => OutputFormat::Table,
            (None, Some(p)) => OutputFormat::for_path(p).ok_or_else(|| {
                ArqError::Usage(format!(
                    "cannot tell the format of {} from its extension: name it .csv, .json, \
                     .ndjson, .parquet, .xlsx or .txt, or give --format",
                    p.display()
                ))
            })?,
        };
        if format.is_binary() && path.is_none() {
            let name = clap::ValueEnum::to_possible_value(&format)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default();
            return Err(ArqError::Usage(format!(
                "--format {name} needs an output file (--out FILE, also spelled --output): \
                 it is not for a terminal"
            )));
        }
        Ok(Output { path, format, view })
    }

    /// The sheet name of an xlsx file: its name without the extension.
    fn sheet(&self) -> String {
        self.path
            .as_deref()
            .and_then(Path::file_stem)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "result".into())
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
        let sheet = self.sheet();
        let encode = |out: &mut (dyn Write + Send)| -> Result<()> {
            let mut encoder =
                Encoder::new(self.format, &result.schema, self.view.clone(), &sheet, out)?;
            for batch in &result.batches {
                encoder.push(batch)?;
            }
            encoder.finish()
        };
        match &self.path {
            Some(path) => write_atomically(path, |file| encode(file)),
            None => {
                let mut stdout = StdoutWriter::default();
                encode(&mut stdout)?;
                stdout.flush().map_err(|e| ArqError::io("<stdout>", e))
            }
        }
    }

    /// Writes the rows of `stream` as they come to the file (atomically: a failing
    /// query leaves no file and an existing one untouched), or prints them.
    pub async fn write_stream(&self, mut stream: SendableRecordBatchStream) -> Result<()> {
        let schema = stream.schema();
        let sheet = self.sheet();
        let mut file = match &self.path {
            Some(path) => Some(AtomicFile::create(path)?),
            None => None,
        };
        let mut stdout = StdoutWriter::default();
        let out: &mut (dyn Write + Send) = match &mut file {
            Some(file) => file.writer(),
            None => &mut stdout,
        };
        let mut encoder = Encoder::new(self.format, &schema, self.view.clone(), &sheet, out)?;
        while let Some(batch) = stream.next().await {
            encoder.push(&batch?)?;
        }
        encoder.finish()?;
        match file {
            Some(file) => file.commit(),
            None => stdout.flush().map_err(|e| ArqError::io("<stdout>", e)),
        }
    }
}

/// Buffered stdout on which a closed pipe (`arq sql ... | head`) is not an error: what
/// is written after the reader left is dropped.
#[derive(Default)]
pub struct StdoutWriter {
    buffer: Vec<u8>,
    closed: bool,
}

impl StdoutWriter {
    fn drain(&mut self) -> std::io::Result<()> {
        if self.closed || self.buffer.is_empty() {
            self.buffer.clear();
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        let written = out.write_all(&self.buffer).and_then(|_| out.flush());
        self.buffer.clear();
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

impl Write for StdoutWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if !self.closed {
            self.buffer.extend_from_slice(bytes);
            if self.buffer.len() >= 1 << 16 {
                self.drain()?;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.drain()
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

/// Encodes a result in `format` into `out` (a table: every row).
pub fn write_result<W: Write + Send + ?Sized>(
    result: &QueryResult,
    format: OutputFormat,
    out: &mut W,
) -> Result<()> {
    let mut encoder = Encoder::new(format, &result.schema, TableView::whole(), "result", out)?;
    for batch in &result.batches {
        encoder.push(batch)?;
    }
    encoder.finish()
}

/// Rows per row group of the Parquet files arq writes (`arq sql -o`, the nightly's
/// tables): DuckDB's default. The writer holds a row group encoded in memory until it is
/// complete, and a reader splits and skips a file by row group: with the Arrow writer's
/// default of a million rows, the nightly's `limits.parquet` at a million customers was
/// one row group of 0.23 GB (with the tables written largest first, the write stage ~1 s
/// shorter; the night's peak, elsewhere, did not move: benches/README.md).
const PARQUET_ROW_GROUP_ROWS: usize = 122_880;

fn parquet_properties() -> datafusion::parquet::file::properties::WriterProperties {
    datafusion::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS))
        .build()
}

/// Encodes batches as they come, in one format: nothing but the rows a table shows (and
/// the sheet rows waiting in a temporary file) is kept.
pub struct Encoder<'w, W: Write + Send + ?Sized> {
    inner: Encoding<'w, W>,
}

enum Encoding<'w, W: Write + Send + ?Sized> {
    Table(TablePrinter, &'w mut W),
    /// The schema until a batch is written (an empty result still gets its header).
    Csv(arrow::csv::Writer<&'w mut W>, Option<SchemaRef>),
    Json(arrow::json::Writer<&'w mut W, arrow::json::writer::JsonArray>),
    Ndjson(arrow::json::Writer<&'w mut W, arrow::json::writer::LineDelimited>),
    Parquet(datafusion::parquet::arrow::ArrowWriter<&'w mut W>),
    Xlsx(Box<XlsxWriter>, &'w mut W),
}

impl<'w, W: Write + Send + ?Sized> Encoder<'w, W> {
    /// An encoder of `schema`'s rows into `out`; `sheet` names an xlsx sheet.
    pub fn new(
        format: OutputFormat,
        schema: &SchemaRef,
        view: TableView,
        sheet: &str,
        out: &'w mut W,
    ) -> Result<Self> {
        use arrow::{csv, json};
        let inner = match format {
            OutputFormat::Table => Encoding::Table(TablePrinter::new(schema.clone(), view), out),
            OutputFormat::Csv => {
                let writer = csv::WriterBuilder::new().with_header(true).build(out);
                Encoding::Csv(writer, Some(schema.clone()))
            }
            // NULL fields are written as `null`, not left out of the object.
            OutputFormat::Json => Encoding::Json(
                json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(out),
            ),
            OutputFormat::Ndjson => Encoding::Ndjson(
                json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(out),
            ),
            OutputFormat::Parquet => {
                Encoding::Parquet(datafusion::parquet::arrow::ArrowWriter::try_new(
                    out,
                    schema.clone(),
                    Some(parquet_properties()),
                )?)
            }
            OutputFormat::Xlsx => {
                let mut writer = Box::new(XlsxWriter::new());
                writer.begin_sheet(sheet, schema)?;
                Encoding::Xlsx(writer, out)
            }
        };
        Ok(Encoder { inner })
    }

    /// Encodes one batch.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        match &mut self.inner {
            Encoding::Table(printer, _) => printer.push(batch),
            Encoding::Csv(writer, unwritten) => {
                writer.write(batch)?;
                *unwritten = None;
            }
            Encoding::Json(writer) => writer.write(batch)?,
            Encoding::Ndjson(writer) => writer.write(batch)?,
            Encoding::Parquet(writer) => writer.write(batch)?,
            Encoding::Xlsx(writer, _) => writer.push(batch)?,
        }
        Ok(())
    }

    /// Ends the encoding (the table is printed, the JSON array closed, the Parquet
    /// footer and the workbook written).
    pub fn finish(self) -> Result<()> {
        let io = |e: std::io::Error| ArqError::io("<output>", e);
        match self.inner {
            Encoding::Table(printer, out) => printer.finish(out)?,
            Encoding::Csv(mut writer, unwritten) => {
                // Still print the header so scripts see the columns.
                if let Some(schema) = unwritten {
                    writer.write(&RecordBatch::new_empty(schema))?;
                }
            }
            Encoding::Json(mut writer) => {
                writer.finish()?;
                writeln!(writer.into_inner()).map_err(io)?;
            }
            Encoding::Ndjson(mut writer) => writer.finish()?,
            Encoding::Parquet(writer) => {
                writer.close()?;
            }
            Encoding::Xlsx(writer, out) => out.write_all(&writer.finish()?).map_err(io)?,
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    #[test]
    fn parquet_outputs_are_cut_into_row_groups_and_read_back_exactly() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("reasons", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(18, 2), true),
        ]));
        let n = 2 * PARQUET_ROW_GROUP_ROWS + 17;
        let part = |rows: std::ops::Range<usize>| {
            let reasons: StringArray = rows
                .clone()
                .map(|i| (i % 7 != 0).then(|| format!("3 x average sales {i}.25")))
                .collect();
            let amounts: Decimal128Array = rows
                .map(|i| (i % 5 != 0).then_some(i as i128 * 1_234 - 999_999_999_999_999_999))
                .collect::<Decimal128Array>()
                .with_precision_and_scale(18, 2)
                .unwrap();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(reasons), Arc::new(amounts)])
                .unwrap()
        };
        // Batches across the row groups' bounds, as a query gives them.
        let batches = vec![part(0..100_000), part(100_000..n)];
        let result = QueryResult {
            schema: schema.clone(),
            batches: batches.clone(),
        };
        let mut bytes = Vec::new();
        write_result(&result, OutputFormat::Parquet, &mut bytes).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        let full = PARQUET_ROW_GROUP_ROWS as i64;
        assert_eq!(groups, [full, full, 17]);
        let read: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
        let read = arrow::compute::concat_batches(&schema, &read).unwrap();
        assert_eq!(
            read,
            arrow::compute::concat_batches(&schema, &batches).unwrap()
        );
    }
}
