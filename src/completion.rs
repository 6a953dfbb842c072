//! Tab completion at the shell's prompt: backslash commands at the start of a line, file
//! names after `\i` and `\o`, and elsewhere the session's tables, views and columns,
//! every function it knows (arq's and DataFusion's) and the common SQL keywords.

use std::borrow::Cow;

use datafusion::prelude::SessionContext;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::error::Result;

/// The shell's backslash commands.
pub const COMMANDS: [&str; 12] = [
    "\\?",
    "\\d",
    "\\df",
    "\\format",
    "\\functions",
    "\\i",
    "\\o",
    "\\pset",
    "\\q",
    "\\timing",
    "\\x",
    "\\help",
];

/// Keywords offered in the case they are typed in.
const KEYWORDS: [&str; 40] = [
    "select",
    "from",
    "where",
    "group",
    "by",
    "order",
    "having",
    "limit",
    "join",
    "left",
    "right",
    "inner",
    "outer",
    "full",
    "on",
    "using",
    "as",
    "and",
    "or",
    "not",
    "null",
    "is",
    "in",
    "between",
    "like",
    "case",
    "when",
    "then",
    "else",
    "end",
    "distinct",
    "with",
    "union",
    "all",
    "desc",
    "asc",
    "over",
    "partition",
    "create",
    "view",
];

/// What the prompt completes.
#[derive(Default)]
pub struct SqlCompleter {
    /// Tables, views, columns and functions, sorted, without repeats.
    names: Vec<String>,
    files: FilenameCompleter,
}

impl SqlCompleter {
    /// Reads the session's names (again after a statement that may change them).
    pub async fn refresh(&mut self, ctx: &SessionContext) -> Result<()> {
        let mut names = Vec::new();
        let frame = ctx
            .sql(
                "SELECT DISTINCT table_name FROM information_schema.tables \
                 WHERE table_schema = 'warehouse' \
                 UNION SELECT DISTINCT column_name FROM information_schema.columns \
                 WHERE table_schema = 'warehouse'",
            )
            .await?;
        for batch in frame.collect().await? {
            let column = datafusion::arrow::compute::cast(
                batch.column(0),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )?;
            let column = datafusion::arrow::array::AsArray::as_string::<i32>(column.as_ref());
            names.extend(column.iter().flatten().map(str::to_string));
        }
        let state = ctx.state();
        names.extend(state.scalar_functions().keys().cloned());
        names.extend(state.aggregate_functions().keys().cloned());
        names.extend(state.window_functions().keys().cloned());
        names.extend(state.table_functions().keys().cloned());
        self.set_names(names);
        Ok(())
    }

    fn set_names(&mut self, mut names: Vec<String>) {
        names.sort();
        names.dedup();
        self.names = names;
    }

    /// Where the word being completed starts in `line` (cut at the cursor), and the
    /// candidates for it.
    pub fn candidates(&self, line: &str) -> (usize, Vec<String>) {
        let start = line
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '\\'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &line[start..];
        if word.starts_with('\\') {
            if !line[..start].trim().is_empty() {
                return (start, Vec::new());
            }
            let commands = COMMANDS
                .iter()
                .filter(|c| c.starts_with(word))
                .map(|c| c.to_string())
                .collect();
            return (start, commands);
        }
        if word.is_empty() {
            return (start, Vec::new());
        }
        let lower = word.to_lowercase();
        let upper = word.chars().next().is_some_and(char::is_uppercase);
        let mut found: Vec<String> = self
            .names
            .iter()
            .filter(|n| n.to_lowercase().starts_with(&lower))
            .cloned()
            .collect();
        found.extend(KEYWORDS.iter().filter(|k| k.starts_with(&lower)).map(|k| {
            if upper {
                k.to_uppercase()
            } else {
                k.to_string()
            }
        }));
        found.sort();
        found.dedup();
        (start, found)
    }
}

impl Completer for SqlCompleter {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let trimmed = before.trim_start();
        if trimmed.starts_with("\\i ") || trimmed.starts_with("\\o ") {
            return self.files.complete(line, pos, ctx);
        }
        let (start, words) = self.candidates(before);
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for SqlCompleter {
    type Hint = String;
}

impl Highlighter for SqlCompleter {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for SqlCompleter {}

impl Helper for SqlCompleter {}

#[cfg(test)]
mod tests {
    use super::*;

    fn completer() -> SqlCompleter {
        let mut c = SqlCompleter::default();
        c.set_names(
            [
                "customers",
                "customers_latest",
                "customer_id",
                "aging_bucket",
                "open_items",
            ]
            .map(String::from)
            .to_vec(),
        );
        c
    }

    #[test]
    fn tables_columns_and_functions_complete_by_prefix() {
        let c = completer();
        assert_eq!(
            c.candidates("SELECT * FROM cust"),
            (
                14,
                vec![
                    "customer_id".into(),
                    "customers".into(),
                    "customers_latest".into()
                ]
            )
        );
        assert_eq!(c.candidates("select agi"), (7, vec!["aging_bucket".into()]));
    }

    #[test]
    fn keywords_complete_in_the_case_typed() {
        let c = completer();
        assert_eq!(c.candidates("SELECT 1 FR").1, vec!["FROM".to_string()]);
        assert_eq!(c.candidates("select 1 fr").1, vec!["from".to_string()]);
    }

    #[test]
    fn backslash_commands_complete_at_the_start_of_a_line_only() {
        let c = completer();
        assert_eq!(
            c.candidates("\\f").1,
            vec!["\\format".to_string(), "\\functions".into()]
        );
        assert_eq!(c.candidates("\\ti").1, vec!["\\timing".to_string()]);
        assert!(c.candidates("select \\f").1.is_empty());
        assert!(c.candidates("select ").1.is_empty());
    }
}
