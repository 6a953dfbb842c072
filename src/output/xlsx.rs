//! Spreadsheets for the people who live in them (team leads, credit officers): one sheet
//! per table with a bold header row frozen above the data and a filter on it, money as
//! numbers shown to its decimals (`#,##0.00`: it sums in Excel, it is not text), dates
//! as dates, NULL as an empty cell.
//!
//! Rows are streamed to a temporary file as they come (`rust_xlsxwriter`'s constant
//! memory worksheets), so a large result never sits in memory as cells. A result with
//! more rows than a sheet holds is an error, never a sheet cut short. The file is the
//! same bytes for the same rows: the document's creation time is fixed (1980-01-01, the
//! zip format's own epoch, which `rust_xlsxwriter` also gives every entry).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float64Type, Int64Type, SchemaRef, TimeUnit,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, XlsxError};

use crate::error::{ArqError, Result};

/// Rows of a sheet below its header (Excel's 1,048,576 less one).
pub const MAX_DATA_ROWS: usize = 1_048_575;
/// Days from Excel's day 0 (1899-12-30, after its 1900 leap-year bug) to 1970-01-01.
const EXCEL_EPOCH_OFFSET: f64 = 25_569.0;
/// The first day Excel's serial dates count correctly (1900-03-01), in days since 1970.
const FIRST_EXCEL_DAY: i64 = -25_508;
/// Widest column set from the data (characters).
const MAX_COLUMN_WIDTH: usize = 60;

/// How a column's cells are written.
#[derive(Debug, Clone, Copy)]
enum Cell {
    /// Decimal128 with this scale: a number shown with that many decimals.
    Decimal(i8),
    Number,
    Date,
    Timestamp(TimeUnit),
    Boolean,
    Text,
}

impl Cell {
    fn of(data_type: &DataType) -> Cell {
        match data_type {
            DataType::Decimal128(_, scale) => Cell::Decimal(*scale),
            DataType::Date32 | DataType::Date64 => Cell::Date,
            DataType::Timestamp(unit, _) => Cell::Timestamp(*unit),
            DataType::Boolean => Cell::Boolean,
            t if t.is_integer() || t.is_floating() => Cell::Number,
            _ => Cell::Text,
        }
    }

    fn format(self) -> Format {
        match self {
            Cell::Decimal(scale) if scale > 0 => {
                Format::new().set_num_format(format!("#,##0.{}", "0".repeat(scale as usize)))
            }
            Cell::Decimal(_) => Format::new().set_num_format("#,##0"),
            Cell::Date => Format::new().set_num_format("yyyy-mm-dd"),
            Cell::Timestamp(_) => Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            Cell::Number | Cell::Boolean | Cell::Text => Format::new(),
        }
    }
}

/// The sheet being written.
struct Sheet {
    name: String,
    index: usize,
    cells: Vec<Cell>,
    formats: Vec<Format>,
    /// Rows written below the header.
    rows: usize,
    widths_set: bool,
}

/// A workbook written sheet by sheet, each sheet's rows batch by batch.
pub struct XlsxWriter {
    workbook: Workbook,
    sheets: usize,
    current: Option<Sheet>,
}

impl Default for XlsxWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XlsxWriter {
    pub fn new() -> Self {
        let mut workbook = Workbook::new();
        let created = ExcelDateTime::from_ymd(1980, 1, 1).expect("a valid date");
        workbook.set_properties(
            &DocProperties::new()
                .set_creation_datetime(&created)
                .set_author("arq"),
        );
        XlsxWriter {
            workbook,
            sheets: 0,
            current: None,
        }
    }

    /// Starts a sheet named `name` (cut to Excel's 31 characters, without the characters
    /// a sheet name cannot have) with a header row of `schema`'s columns.
    pub fn begin_sheet(&mut self, name: &str, schema: &SchemaRef) -> Result<()> {
        self.end_sheet()?;
        let name = sheet_name(name);
        let header = Format::new().set_bold();
        let worksheet = self
            .workbook
            .add_worksheet_with_constant_memory()
            .map_err(|e| failed(&name, e))?;
        worksheet.set_name(&name).map_err(|e| failed(&name, e))?;
        for (col, field) in schema.fields().iter().enumerate() {
            worksheet
                .write_string_with_format(0, column(col)?, field.name(), &header)
                .map_err(|e| failed(&name, e))?;
        }
        worksheet
            .set_freeze_panes(1, 0)
            .map_err(|e| failed(&name, e))?;
        let cells: Vec<Cell> = schema
            .fields()
            .iter()
            .map(|f| Cell::of(f.data_type()))
            .collect();
        self.current = Some(Sheet {
            name,
            index: self.sheets,
            formats: cells.iter().map(|c| c.format()).collect(),
            cells,
            rows: 0,
            widths_set: false,
        });
        self.sheets += 1;
        Ok(())
    }

    /// Appends the rows of `batch` to the current sheet.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let sheet = self
            .current
            .as_mut()
            .ok_or_else(|| ArqError::Internal("xlsx rows before a sheet".into()))?;
        if sheet.rows + batch.num_rows() > MAX_DATA_ROWS {
            return Err(ArqError::Usage(format!(
                "the result has more than {} rows, more than a spreadsheet holds: write it \
                 as .csv or .parquet",
                super::table::thousands(MAX_DATA_ROWS)
            )));
        }
        let worksheet = self
            .workbook
            .worksheet_from_index(sheet.index)
            .map_err(|e| failed(&sheet.name, e))?;
        if !sheet.widths_set && batch.num_rows() > 0 {
            set_widths(worksheet, batch)?;
            sheet.widths_set = true;
        }
        write_rows(worksheet, batch, sheet.rows + 1, sheet)?;
        sheet.rows += batch.num_rows();
        Ok(())
    }

    /// Puts a filter on the finished sheet's header.
    fn end_sheet(&mut self) -> Result<()> {
        let Some(sheet) = self.current.take() else {
            return Ok(());
        };
        if sheet.cells.is_empty() {
            return Ok(());
        }
        let worksheet = self
            .workbook
            .worksheet_from_index(sheet.index)
            .map_err(|e| failed(&sheet.name, e))?;
        let last_col = column(sheet.cells.len() - 1)?;
        worksheet
            .autofilter(0, 0, sheet.rows as u32, last_col)
            .map_err(|e| failed(&sheet.name, e))?;
        Ok(())
    }

    /// The workbook's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        self.end_sheet()?;
        self.workbook
            .save_to_buffer()
            .map_err(|e| failed("workbook", e))
    }
}

/// Writes the whole workbook of `sheets` (name, rows) into bytes.
pub fn workbook(sheets: &[(&str, &RecordBatch)]) -> Result<Vec<u8>> {
    let mut writer = XlsxWriter::new();
    for (name, batch) in sheets {
        writer.begin_sheet(name, &batch.schema())?;
        writer.push(batch)?;
    }
    writer.finish()
}

fn failed(sheet: &str, e: XlsxError) -> ArqError {
    ArqError::Input(format!(
        "cannot write the spreadsheet (sheet `{sheet}`): {e}"
    ))
}

fn column(index: usize) -> Result<u16> {
    u16::try_from(index)
        .ok()
        .filter(|c| *c < 16_384)
        .ok_or_else(|| ArqError::Usage("a spreadsheet holds at most 16,384 columns".into()))
}

/// A name Excel accepts for a sheet.
fn sheet_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim_matches('\'');
    let cut: String = cleaned.chars().take(31).collect();
    if cut.is_empty() { "result".into() } else { cut }
}

/// Column widths from the header and the first batch's values.
fn set_widths(worksheet: &mut rust_xlsxwriter::Worksheet, batch: &RecordBatch) -> Result<()> {
    let options = FormatOptions::default();
    let sample = batch.num_rows().min(1000);
    for (col, (field, array)) in batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .enumerate()
    {
        let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
        let widest = (0..sample)
            .map(|row| formatter.value(row).to_string().chars().count())
            .max()
            .unwrap_or(0)
            // Thousands separators.
            + if matches!(Cell::of(field.data_type()), Cell::Decimal(_)) { 4 } else { 0 };
        let width = widest
            .max(field.name().chars().count() + 2)
            .min(MAX_COLUMN_WIDTH);
        worksheet
            .set_column_width(column(col)?, width as f64 + 1.0)
            .map_err(|e| failed("widths", e))?;
    }
    Ok(())
}

/// A column of a batch ready to write cell by cell: numbers as f64, dates and times as
/// Excel serial days (None: before 1900-03-01, written as text), text formatted.
enum Values {
    Numbers(Vec<Option<f64>>),
    Serials(Vec<Option<Option<f64>>>),
    Booleans(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
}

impl Values {
    fn of(array: &dyn Array, cell: Cell) -> Result<Values> {
        let valid = |i: usize| array.is_valid(i);
        let rows = 0..array.len();
        let serial = |day: i64, fraction: f64| {
            (day >= FIRST_EXCEL_DAY).then_some(day as f64 + EXCEL_EPOCH_OFFSET + fraction)
        };
        Ok(match cell {
            Cell::Decimal(scale) => {
                let values = array.as_primitive::<Decimal128Type>();
                let divisor = 10f64.powi(scale as i32);
                Values::Numbers(
                    rows.map(|i| valid(i).then(|| values.value(i) as f64 / divisor))
                        .collect(),
                )
            }
            Cell::Number => {
                let numbers = cast(array, &DataType::Float64)?;
                let numbers = numbers.as_primitive::<Float64Type>();
                Values::Numbers(rows.map(|i| valid(i).then(|| numbers.value(i))).collect())
            }
            Cell::Date => {
                let day = |i: usize| match array.data_type() {
                    DataType::Date64 => array
                        .as_primitive::<Date64Type>()
                        .value(i)
                        .div_euclid(86_400_000),
                    _ => array.as_primitive::<Date32Type>().value(i) as i64,
                };
                Values::Serials(
                    rows.map(|i| valid(i).then(|| serial(day(i), 0.0)))
                        .collect(),
                )
            }
            Cell::Timestamp(unit) => {
                let per_day: i64 = match unit {
                    TimeUnit::Second => 86_400,
                    TimeUnit::Millisecond => 86_400_000,
                    TimeUnit::Microsecond => 86_400_000_000,
                    TimeUnit::Nanosecond => 86_400_000_000_000,
                };
                let ticks = cast(array, &DataType::Int64)?;
                let ticks = ticks.as_primitive::<Int64Type>();
                Values::Serials(
                    rows.map(|i| {
                        valid(i).then(|| {
                            let t = ticks.value(i);
                            let fraction = t.rem_euclid(per_day) as f64 / per_day as f64;
                            serial(t.div_euclid(per_day), fraction)
                        })
                    })
                    .collect(),
                )
            }
            Cell::Boolean => {
                let values = array.as_boolean();
                Values::Booleans(rows.map(|i| valid(i).then(|| values.value(i))).collect())
            }
            Cell::Text => {
                let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
                Values::Text(
                    rows.map(|i| valid(i).then(|| formatter.value(i).to_string()))
                        .collect(),
                )
            }
        })
    }

    /// Writes row `i`'s value (nothing for NULL) at (`row`, `col`).
    fn write(
        &self,
        worksheet: &mut rust_xlsxwriter::Worksheet,
        i: usize,
        (row, col): (u32, u16),
        format: &Format,
        array: &dyn Array,
    ) -> std::result::Result<(), XlsxError> {
        match self {
            Values::Numbers(v) => match v[i] {
                Some(n) => worksheet
                    .write_number_with_format(row, col, n, format)
                    .map(drop),
                None => Ok(()),
            },
            Values::Serials(v) => match v[i] {
                Some(Some(serial)) => worksheet
                    .write_number_with_format(row, col, serial, format)
                    .map(drop),
                Some(None) => worksheet
                    .write_string(row, col, text_of(array, i))
                    .map(drop),
                None => Ok(()),
            },
            Values::Booleans(v) => match v[i] {
                Some(b) => worksheet.write_boolean(row, col, b).map(drop),
                None => Ok(()),
            },
            Values::Text(v) => match &v[i] {
                Some(t) => worksheet.write_string(row, col, t).map(drop),
                None => Ok(()),
            },
        }
    }
}

/// Writes the rows of `batch` from sheet row `first_row` down, row by row (a constant
/// memory sheet cannot go back to a row it has left).
fn write_rows(
    worksheet: &mut rust_xlsxwriter::Worksheet,
    batch: &RecordBatch,
    first_row: usize,
    sheet: &Sheet,
) -> Result<()> {
    let columns = batch
        .columns()
        .iter()
        .zip(&sheet.cells)
        .map(|(array, cell)| Values::of(array.as_ref(), *cell))
        .collect::<Result<Vec<_>>>()?;
    for i in 0..batch.num_rows() {
        let row = (first_row + i) as u32;
        for (col, values) in columns.iter().enumerate() {
            let at = (row, column(col)?);
            values
                .write(
                    worksheet,
                    i,
                    at,
                    &sheet.formats[col],
                    batch.column(col).as_ref(),
                )
                .map_err(|e| failed(&sheet.name, e))?;
        }
    }
    Ok(())
}

/// A value as text (dates Excel cannot count).
fn text_of(array: &dyn Array, i: usize) -> String {
    ArrayFormatter::try_new(array, &FormatOptions::default())
        .map(|f| f.value(i).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_are_what_excel_accepts() {
        assert_eq!(sheet_name("call list"), "call list");
        assert_eq!(sheet_name("a/b:c"), "a_b_c");
        assert_eq!(sheet_name(""), "result");
        assert_eq!(sheet_name(&"x".repeat(40)).len(), 31);
    }
}
