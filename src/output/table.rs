//! The text table people read in a terminal, printed as psql and duckdb print theirs:
//! at most [`TableView::max_rows`] rows (the rest counted, never kept: a query over a
//! million rows prints its first 40 without holding the others), numbers right-aligned,
//! NULL spelled out, and a table wider than the terminal shown one field per line
//! (psql's expanded display) instead of wrapping into noise.

use std::io::Write;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use unicode_width::UnicodeWidthStr;

use crate::error::{ArqError, Result};

/// Rows shown when nothing else is asked for (as duckdb's `.maxrows` 40).
pub const DEFAULT_MAX_ROWS: usize = 40;

/// When a table is shown one field per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Expanded {
    /// When the table is wider than the terminal (`COLUMNS`, else the terminal's width;
    /// never when the width is unknown, as in a pipe).
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

/// How a table is printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableView {
    /// Rows printed; the others are counted. None: all.
    pub max_rows: Option<usize>,
    /// How NULL reads.
    pub null: String,
    pub expanded: Expanded,
    /// The width the table must fit for [`Expanded::Auto`].
    pub width: Option<usize>,
}

impl Default for TableView {
    fn default() -> Self {
        TableView {
            max_rows: Some(DEFAULT_MAX_ROWS),
            null: "NULL".into(),
            expanded: Expanded::Auto,
            width: terminal_width(),
        }
    }
}

impl TableView {
    /// Every row, no expanded display: a table written into a file.
    pub fn whole() -> Self {
        TableView {
            max_rows: None,
            expanded: Expanded::Off,
            width: None,
            ..TableView::default()
        }
    }
}

/// The width to fit: `COLUMNS` when set (as psql reads it), else the terminal's, else
/// none.
pub fn terminal_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return Some(columns);
    }
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    #[cfg(unix)]
    {
        // SAFETY: TIOCGWINSZ fills the winsize struct it is given and touches nothing else.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_col > 0 {
            return Some(size.ws_col as usize);
        }
    }
    None
}

/// Collects the rows a table shows and counts the others.
pub struct TablePrinter {
    view: TableView,
    schema: SchemaRef,
    kept: Vec<RecordBatch>,
    kept_rows: usize,
    total_rows: usize,
}

impl TablePrinter {
    pub fn new(schema: SchemaRef, view: TableView) -> Self {
        TablePrinter {
            view,
            schema,
            kept: Vec::new(),
            kept_rows: 0,
            total_rows: 0,
        }
    }

    /// Takes the rows of `batch` the table still shows; counts all of them.
    pub fn push(&mut self, batch: &RecordBatch) {
        self.total_rows += batch.num_rows();
        let room = self
            .view
            .max_rows
            .map_or(usize::MAX, |m| m.saturating_sub(self.kept_rows));
        let take = room.min(batch.num_rows());
        if take > 0 {
            self.kept.push(batch.slice(0, take));
            self.kept_rows += take;
        }
    }

    /// Prints the table, the count of rows left out, and the row count.
    pub fn finish<W: Write + ?Sized>(self, out: &mut W) -> Result<()> {
        let table = self.cells()?;
        let text = match self.view.expanded {
            Expanded::On => table.expanded(),
            Expanded::Auto if self.view.width.is_some_and(|w| table.width() > w) => {
                table.expanded()
            }
            _ => table.boxed(),
        };
        let io = |e| ArqError::io("<output>", e);
        out.write_all(text.as_bytes()).map_err(io)?;
        let more = self.total_rows - self.kept_rows;
        if more > 0 {
            let rows = if more == 1 { "row" } else { "rows" };
            writeln!(out, "… {} more {rows}", thousands(more)).map_err(io)?;
        }
        let n = self.total_rows;
        writeln!(out, "{} row{}", thousands(n), if n == 1 { "" } else { "s" }).map_err(io)
    }

    /// The headers and the shown rows as text.
    fn cells(&self) -> Result<Cells> {
        let fields = self.schema.fields();
        let options = FormatOptions::default().with_null(&self.view.null);
        let mut rows: Vec<Vec<String>> = Vec::with_capacity(self.kept_rows);
        for batch in &self.kept {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                let cells = formatters
                    .iter()
                    .map(|f| printable(&f.value(row).to_string()))
                    .collect();
                rows.push(cells);
            }
        }
        Ok(Cells {
            headers: fields.iter().map(|f| printable(f.name())).collect(),
            right: fields.iter().map(|f| is_number(f.data_type())).collect(),
            rows,
        })
    }
}

/// A table as text, before it is laid out.
struct Cells {
    headers: Vec<String>,
    /// Right-aligned columns (numbers).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Cells {
    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.width());
            }
        }
        widths
    }

    /// Characters per line of the boxed layout.
    fn width(&self) -> usize {
        self.widths().iter().map(|w| w + 3).sum::<usize>() + 1
    }

    /// `+---+` lines around `| a | b |` rows.
    fn boxed(&self) -> String {
        let widths = self.widths();
        let rule: String = widths
            .iter()
            .map(|w| format!("+{}", "-".repeat(w + 2)))
            .collect::<String>()
            + "+\n";
        let line = |cells: &[String]| {
            let mut text = String::new();
            for ((cell, w), right) in cells.iter().zip(&widths).zip(&self.right) {
                let pad = " ".repeat(w - cell.width());
                if *right {
                    text.push_str(&format!("| {pad}{cell} "));
                } else {
                    text.push_str(&format!("| {cell}{pad} "));
                }
            }
            text + "|\n"
        };
        let mut text = rule.clone();
        text.push_str(&line(&self.headers));
        text.push_str(&rule);
        for row in &self.rows {
            text.push_str(&line(row));
        }
        if !self.rows.is_empty() {
            text.push_str(&rule);
        }
        text
    }

    /// One field per line, a record header before each row (psql's `\x`).
    fn expanded(&self) -> String {
        let name_width = self.headers.iter().map(|h| h.width()).max().unwrap_or(0);
        let mut text = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            let title = format!("-[ RECORD {} ]", i + 1);
            let fill = (name_width + 3).saturating_sub(title.width());
            text.push_str(&format!("{title}{}\n", "-".repeat(fill.max(1))));
            for (header, cell) in self.headers.iter().zip(row) {
                let pad = " ".repeat(name_width - header.width());
                text.push_str(&format!("{header}{pad} | {cell}\n"));
            }
        }
        text
    }
}

/// Right-aligned types.
fn is_number(data_type: &DataType) -> bool {
    data_type.is_numeric()
}

/// A cell on one line: line breaks and tabs shown as escapes.
fn printable(text: &str) -> String {
    if !text.contains(['\n', '\r', '\t']) {
        return text.to_string();
    }
    text.replace('\n', "\\n")
        .replace('\r', "\\r")
        .replace('\t', "\\t")
}

/// `211949` → `211,949`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(c);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("amount", DataType::Decimal128(18, 2), true),
        ]));
        let names: Vec<Option<String>> = (0..n)
            .map(|i| (i % 3 != 1).then(|| format!("C{i:03}")))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(
                Decimal128Array::from_iter((0..n).map(|i| (i != 2).then_some(i as i128 * 12345)))
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
            ),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn print(view: TableView, batches: &[RecordBatch]) -> String {
        let mut printer = TablePrinter::new(batches[0].schema(), view);
        for b in batches {
            printer.push(b);
        }
        let mut out = Vec::new();
        printer.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_right_nulls_spelled_and_rows_counted_past_the_limit() {
        let view = TableView {
            max_rows: Some(4),
            width: None,
            ..TableView::default()
        };
        let text = print(view, &[batch(3), batch(3)]);
        assert_eq!(
            text,
            "\
+----------+---+--------+
| customer | n | amount |
+----------+---+--------+
| C000     | 0 |   0.00 |
| NULL     | 1 | 123.45 |
| C002     | 2 |   NULL |
| C000     | 0 |   0.00 |
+----------+---+--------+
… 2 more rows
6 rows
"
        );
    }

    #[test]
    fn wider_than_the_terminal_is_expanded() {
        let view = TableView {
            null: "∅".into(),
            width: Some(20),
            ..TableView::default()
        };
        let text = print(view, &[batch(2)]);
        assert_eq!(
            text,
            "\
-[ RECORD 1 ]-
customer | C000
n        | 0
amount   | 0.00
-[ RECORD 2 ]-
customer | ∅
n        | 1
amount   | 123.45
2 rows
"
        );
    }

    #[test]
    fn an_empty_result_shows_its_header() {
        let text = print(TableView::whole(), &[batch(0)]);
        assert!(text.contains("| customer | n | amount |\n"), "{text}");
        assert!(text.ends_with("+\n0 rows\n"), "{text}");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(211949), "211,949");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
