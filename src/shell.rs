//! `arq shell`: an interactive SQL prompt over a warehouse.
//!
//! Statements may span several lines and run when a line ends with `;`. Backslash
//! commands: `\d` lists tables and views with their columns, `\d NAME` one of them,
//! `\functions` documents arq's SQL functions,
//! `\format FMT` switches the output format, `\?` helps, `\q` quits. With a terminal
//! the prompt has line editing and a history file (`$ARQ_HISTORY`, else
//! `~/.arq_history`); without one (a script piped into stdin) lines are read as they
//! come and no prompt is printed.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use arq_models::sql::SessionModel;
use datafusion::prelude::SessionContext;
use rustyline::error::ReadlineError;

use crate::error::{ArqError, Result};
use crate::output::{self, OutputFormat};
use crate::sql;

const HELP: &str = "\
Statements end with `;` and may span lines.
  \\d             list tables and views with their columns
  \\d NAME        columns of one table or view
  \\functions [NAME]  arq's SQL functions with docs and examples
  \\format FMT    output format: table, csv, json, ndjson
  \\?             this help
  \\q             quit (or Ctrl-D)";

/// Where the prompt's history is kept.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ARQ_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".arq_history"))
}

/// What one complete input (a statement or a backslash command) asks for.
enum Step {
    Continue,
    Quit,
}

struct Shell<'a> {
    ctx: &'a SessionContext,
    model: Option<&'a SessionModel>,
    format: OutputFormat,
    buffer: String,
}

impl Shell<'_> {
    /// Feeds one line; runs a statement once it is complete.
    async fn line(&mut self, line: &str, out: &mut dyn Write) -> Result<Step> {
        let trimmed = line.trim();
        if self.buffer.trim().is_empty() && trimmed.starts_with('\\') {
            self.buffer.clear();
            return self.command(trimmed, out).await;
        }
        if trimmed.is_empty() && self.buffer.trim().is_empty() {
            return Ok(Step::Continue);
        }
        self.buffer.push_str(line);
        self.buffer.push('\n');
        if trimmed.ends_with(';') {
            let statement = std::mem::take(&mut self.buffer);
            self.run(&statement, out).await;
        }
        Ok(Step::Continue)
    }

    async fn run(&mut self, statement: &str, out: &mut dyn Write) {
        let outcome = async {
            let mut buffer = Vec::new();
            for result in sql::run_statements(self.ctx, statement).await? {
                if result.has_columns() {
                    output::write_result(&result, self.format, &mut buffer)?;
                }
            }
            out.write_all(&buffer)
                .map_err(|e| ArqError::io("<stdout>", e))
        }
        .await;
        if let Err(e) = outcome {
            let _ = writeln!(out, "error: {e}");
        }
    }

    async fn command(&mut self, command: &str, out: &mut dyn Write) -> Result<Step> {
        let mut words = command.split_whitespace();
        let io = |e| ArqError::io("<stdout>", e);
        match (words.next().unwrap_or_default(), words.next()) {
            ("\\q", _) => return Ok(Step::Quit),
            ("\\?" | "\\h" | "\\help", _) => writeln!(out, "{HELP}").map_err(io)?,
            ("\\d", name) => match sql::describe_tables(self.ctx, name).await {
                Ok(listing) => write!(out, "{listing}").map_err(io)?,
                Err(e) => writeln!(out, "error: {e}").map_err(io)?,
            },
            ("\\functions" | "\\df", name) => match sql::describe_functions(name, self.model) {
                Ok(text) => write!(out, "{text}").map_err(io)?,
                Err(e) => writeln!(out, "error: {e}").map_err(io)?,
            },
            ("\\format", Some(name)) => {
                match <OutputFormat as clap::ValueEnum>::from_str(name, true) {
                    Ok(OutputFormat::Parquet) | Err(_) => {
                        writeln!(out, "error: format must be one of table, csv, json, ndjson")
                            .map_err(io)?
                    }
                    Ok(f) => self.format = f,
                }
            }
            (other, _) => {
                writeln!(out, "error: unknown command `{other}` (\\? lists them)").map_err(io)?
            }
        }
        Ok(Step::Continue)
    }
}

/// Runs the shell until `\q` or end of input.
pub async fn run(
    ctx: &SessionContext,
    model: Option<&SessionModel>,
    format: OutputFormat,
) -> Result<()> {
    let mut shell = Shell {
        ctx,
        model,
        format,
        buffer: String::new(),
    };
    let stdout = std::io::stdout();
    if !std::io::stdin().is_terminal() {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| ArqError::io("<stdin>", e))?;
            if let Step::Quit = shell.line(&line, &mut stdout.lock()).await? {
                return Ok(());
            }
        }
        if !shell.buffer.trim().is_empty() {
            // A last statement without `;` still runs at end of input.
            let statement = std::mem::take(&mut shell.buffer);
            shell.run(&statement, &mut stdout.lock()).await;
        }
        return Ok(());
    }

    let mut editor = rustyline::DefaultEditor::new()
        .map_err(|e| ArqError::Input(format!("cannot start the line editor: {e}")))?;
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!("arq shell: SQL over the warehouse. \\? for help, \\q to quit.");
    loop {
        let prompt = if shell.buffer.is_empty() {
            "arq> "
        } else {
            "  -> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if let Step::Quit = shell.line(&line, &mut stdout.lock()).await? {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => shell.buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(ArqError::Input(format!("line editor: {e}"))),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}
