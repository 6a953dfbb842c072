//! What the template shows: tiles, charts with their reading and numbers, tables. Every
//! value is already text here (money with its currency), so the template only lays out.

use serde::Serialize;

/// A KPI tile: the figure and its change against the previous month.
#[derive(Debug, Clone, Serialize)]
pub struct Tile {
    /// A stable name for tests and styling (`dso`, `cei`, ...).
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
    pub change: String,
}

/// A table of text cells; `numeric` columns are right-aligned.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    pub numeric: bool,
}

impl Table {
    /// A table with these columns (names ending in `!` are numeric, the `!` dropped).
    pub fn new(columns: &[&str]) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|c| Column {
                    name: c.trim_end_matches('!').to_string(),
                    numeric: c.ends_with('!'),
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }
}

/// A chart, or the note that replaces it, with its one-line reading and its numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// A stable name (`aging-trend-USD`).
    pub key: String,
    pub title: String,
    pub reading: String,
    /// The SVG; None when there is not enough data to draw it.
    pub svg: Option<String>,
    /// Why there is no chart.
    pub note: Option<String>,
    pub table: Table,
}

impl Chart {
    /// A chart drawn from `table`'s numbers.
    pub fn drawn(key: String, title: String, reading: String, svg: String, table: Table) -> Chart {
        Chart {
            key,
            title,
            reading,
            svg: Some(svg),
            note: None,
            table,
        }
    }

    /// No chart: `why` says what is missing.
    pub fn missing(key: String, title: String, why: &str) -> Chart {
        Chart {
            key,
            title,
            reading: String::new(),
            svg: None,
            note: Some(format!("Not enough data: {why}.")),
            table: Table::default(),
        }
    }
}

/// A shaded cell of a matrix (roll rates): its text and background intensity in [0, 1].
#[derive(Debug, Clone, Serialize)]
pub struct Shaded {
    pub text: String,
    /// `rgba(...)` background.
    pub background: String,
}

impl Shaded {
    /// A share shaded from white (0) to red (`at_full` and above).
    pub fn share(value: Option<f64>, at_full: f64) -> Shaded {
        match value {
            None => Shaded {
                text: "–".into(),
                background: "transparent".into(),
            },
            Some(v) => {
                let alpha = (v / at_full).clamp(0.0, 1.0) * 0.85;
                Shaded {
                    text: super::format::percent(v),
                    background: format!("rgba(220, 60, 40, {alpha:.2})"),
                }
            }
        }
    }
}

/// A matrix of shaded cells with row and column headers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Matrix {
    pub corner: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<Shaded>)>,
}
