//! `arq shell`: an interactive SQL prompt over a warehouse.
//!
//! Statements may span several lines and run when a line ends with `;`. Backslash
//! commands: `\d` lists tables and views with their columns, `\d NAME` one of them,
//! `\functions` documents arq's SQL functions, `\format FMT` switches the output format,
//! `\pset` and `\x` set how tables print, `\?` helps, `\q` quits. With a terminal the
//! prompt has line editing, tab completion ([`crate::completion`]) and a history file
//! (`$ARQ_HISTORY`, else `~/.arq_history`); without one (a script piped into stdin) lines
//! are read as they come and no prompt is printed.
//!
//! Errors go to stderr. At the prompt the session goes on; in a script the first failing
//! statement or command stops it with exit code 1, naming the statement's number and
//! first line (as `psql -v ON_ERROR_STOP=1` and `duckdb` do), unless
//! `--continue-on-error` is given: then every statement runs and the exit code is still 1
//! when any failed.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use arq_models::sql::SessionModel;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use rustyline::error::ReadlineError;

use crate::completion::SqlCompleter;
use crate::error::{ArqError, Result};
use crate::output::{Encoder, Expanded, OutputFormat, StdoutWriter, TableView};
use crate::sql;

const HELP: &str = "\
Statements end with `;` and may span lines.
  \\d             list tables and views with their columns
  \\d NAME        columns of one table or view
  \\functions [NAME]  arq's SQL functions with docs and examples
  \\i FILE       run the statements and commands of a file
  \\format FMT    output format: table, csv, json, ndjson
  \\o FILE        send results to FILE (appended); \\o alone: back to the terminal
  \\timing        print each statement's time (again: stop)
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
    view: TableView,
    buffer: String,
    /// Statements and commands run so far (for error messages).
    count: usize,
    /// How errors are handled.
    on_error: OnError,
    /// The first error of a script that goes on after errors.
    first_failure: Option<ArqError>,
    /// `\o FILE`: where results go instead of the terminal.
    redirect: Option<(PathBuf, std::fs::File)>,
    /// `\timing`: print each statement's time.
    timing: bool,
}

/// What an error does to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// At the prompt: print it, go on.
    Prompt,
    /// A script: stop with the error.
    Stop,
    /// A script with `--continue-on-error`: print it, go on, fail at the end.
    Continue,
}

impl Shell<'_> {
    /// Feeds one line; runs a statement once it is complete.
    async fn line(&mut self, line: &str, out: &mut (dyn Write + Send)) -> Result<Step> {
        let trimmed = line.trim();
        if self.buffer.trim().is_empty() && trimmed.starts_with('.') {
            // DuckDB's and sqlite's dot commands, answered with arq's equivalent rather
            // than taken as the start of a statement.
            self.count += 1;
            let hint = match trimmed.split_whitespace().next().unwrap_or_default() {
                ".tables" => "\\d lists the tables and views",
                ".schema" | ".describe" => "\\d NAME shows a table's columns",
                ".quit" | ".exit" => "\\q quits",
                ".help" => "\\? lists arq's commands",
                _ => "arq's shell commands start with a backslash: \\? lists them",
            };
            let e = ArqError::Usage(format!("`{trimmed}` is a DuckDB command; in arq, {hint}"));
            return self.failed(trimmed, e).map(|_| Step::Continue);
        }
        if self.buffer.trim().is_empty() && trimmed.starts_with('\\') {
            self.buffer.clear();
            self.count += 1;
            return match self.command(trimmed, out).await {
                Ok(step) => Ok(step),
                Err(e) => self.failed(trimmed, e).map(|_| Step::Continue),
            };
        }
        if trimmed.is_empty() && self.buffer.trim().is_empty() {
            return Ok(Step::Continue);
        }
        self.buffer.push_str(line);
        self.buffer.push('\n');
        if trimmed.ends_with(';') {
            let statement = std::mem::take(&mut self.buffer);
            self.run(&statement, out).await?;
        }
        Ok(Step::Continue)
    }

    /// Feeds every line of `text` (a file read with `-f` or `\i`); stops at `\q`.
    async fn feed(&mut self, text: &str, out: &mut (dyn Write + Send)) -> Result<Step> {
        for line in text.lines() {
            if let Step::Quit = self.line(line, out).await? {
                return Ok(Step::Quit);
            }
        }
        Ok(Step::Continue)
    }

    /// Handles an error of the statement or command `text` as `on_error` says.
    fn failed(&mut self, text: &str, e: ArqError) -> Result<()> {
        let first_line = text.lines().map(str::trim).find(|l| !l.is_empty());
        let located = ArqError::Input(format!(
            "statement {} (`{}`): {e}",
            self.count,
            first_line.unwrap_or_default()
        ));
        match self.on_error {
            OnError::Prompt => {
                eprintln!("error: {e}");
                Ok(())
            }
            OnError::Stop => Err(located),
            OnError::Continue => {
                eprintln!("error: {located}");
                self.first_failure.get_or_insert(located);
                Ok(())
            }
        }
    }

    async fn run(&mut self, statement: &str, out: &mut (dyn Write + Send)) -> Result<()> {
        self.count += 1;
        let started = std::time::Instant::now();
        let outcome = self.execute(statement, out).await;
        if self.timing {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            writeln!(out, "Time: {ms:.3} ms").map_err(|e| ArqError::io("<stdout>", e))?;
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(e) => self.failed(statement, e),
        }
    }

    /// Runs the statements of `text`, each result streamed to the terminal or the `\o`
    /// file as its rows come.
    async fn execute(&mut self, text: &str, out: &mut (dyn Write + Send)) -> Result<()> {
        for statement in sql::parse_script(text)? {
            let mut stream = sql::stream_statement(self.ctx, statement).await?;
            let schema = stream.schema();
            if schema.fields().is_empty() {
                while let Some(batch) = stream.next().await {
                    batch?;
                }
                continue;
            }
            let target: &mut (dyn Write + Send) = match &mut self.redirect {
                Some((_, file)) => file,
                None => out,
            };
            let mut encoder =
                Encoder::new(self.format, &schema, self.view.clone(), "result", target)?;
            while let Some(batch) = stream.next().await {
                encoder.push(&batch?)?;
            }
            encoder.finish()?;
            if let Some((path, file)) = &mut self.redirect {
                file.flush().map_err(|e| ArqError::io(&*path, e))?;
            }
        }
        Ok(())
    }

    /// `\pset [NAME [VALUE]]`.
    fn pset(&mut self, name: Option<&str>, value: Option<&str>) -> Result<String> {
        let usage = || {
            ArqError::Usage(
                "\\pset takes max_rows N (0: all), null TEXT or expanded on|off|auto".into(),
            )
        };
        match (name, value) {
            (None, _) => {}
            (Some("max_rows"), Some(n)) => {
                let n: usize = n.parse().map_err(|_| usage())?;
                self.view.max_rows = (n > 0).then_some(n);
            }
            (Some("null"), text) => self.view.null = text.unwrap_or_default().to_string(),
            (Some("expanded"), Some(when)) => self.view.expanded = expanded(when)?,
            _ => return Err(usage()),
        }
        let max_rows = self
            .view
            .max_rows
            .map_or_else(|| "0 (all)".to_string(), |n| n.to_string());
        Ok(format!(
            "max_rows {max_rows}\nnull '{}'\nexpanded {}\n",
            self.view.null,
            value_name(self.view.expanded)
        ))
    }

    async fn command(&mut self, command: &str, out: &mut (dyn Write + Send)) -> Result<Step> {
        let mut words = command.split_whitespace();
        let io = |e| ArqError::io("<stdout>", e);
        match (words.next().unwrap_or_default(), words.next()) {
            ("\\q", _) => return Ok(Step::Quit),
            ("\\?" | "\\h" | "\\help", _) => writeln!(out, "{HELP}").map_err(io)?,
            ("\\i", Some(path)) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| ArqError::io(Path::new(path), e))?;
                return Box::pin(self.feed(&text, out)).await;
            }
            ("\\d", name) => {
                let listing = sql::describe_tables(self.ctx, name).await?;
                write!(out, "{listing}").map_err(io)?
            }
            ("\\functions" | "\\df", name) => {
                let text = sql::describe_functions(name, self.model)?;
                write!(out, "{text}").map_err(io)?
            }
            ("\\o", None) => self.redirect = None,
            ("\\o", Some(path)) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| ArqError::io(Path::new(path), e))?;
                self.redirect = Some((PathBuf::from(path), file));
            }
            ("\\pset", name) => {
                let value = words.next();
                let text = self.pset(name, value)?;
                write!(out, "{text}").map_err(io)?
            }
            ("\\x", when) => {
                self.view.expanded = match when {
                    Some(w) => expanded(w)?,
                    None if self.view.expanded == Expanded::On => Expanded::Off,
                    None => Expanded::On,
                };
                let state = value_name(self.view.expanded);
                writeln!(out, "Expanded display is {state}.").map_err(io)?
            }
            ("\\timing", _) => {
                self.timing = !self.timing;
                let state = if self.timing { "on" } else { "off" };
                writeln!(out, "Timing is {state}.").map_err(io)?
            }
            ("\\format", Some(name)) => {
                match <OutputFormat as clap::ValueEnum>::from_str(name, true) {
                    Ok(OutputFormat::Parquet | OutputFormat::Xlsx) | Err(_) => {
                        return Err(ArqError::Usage(
                            "format must be one of table, csv, json, ndjson".into(),
                        ));
                    }
                    Ok(f) => self.format = f,
                }
            }
            (other, _) => {
                return Err(ArqError::Usage(format!(
                    "unknown command `{other}` (\\? lists them)"
                )));
            }
        }
        Ok(Step::Continue)
    }
}

/// Runs a script from stdin: every line, then a last statement without `;`.
async fn run_script(shell: &mut Shell<'_>, file: Option<&Path>) -> Result<()> {
    let mut stdout = StdoutWriter::default();
    let flushed =
        |stdout: &mut StdoutWriter| stdout.flush().map_err(|e| ArqError::io("<stdout>", e));
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ArqError::io(path, e))?;
            let fed = shell.feed(&text, &mut stdout).await;
            flushed(&mut stdout)?;
            fed?;
        }
        None => {
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(|e| ArqError::io("<stdin>", e))?;
                let step = shell.line(&line, &mut stdout).await;
                flushed(&mut stdout)?;
                if let Step::Quit = step? {
                    break;
                }
            }
        }
    }
    if !shell.buffer.trim().is_empty() {
        // A last statement without `;` still runs at end of input.
        let statement = std::mem::take(&mut shell.buffer);
        let ran = shell.run(&statement, &mut stdout).await;
        flushed(&mut stdout)?;
        ran?;
    }
    match shell.first_failure.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs the shell until `\q` or end of input.
pub async fn run(
    ctx: &SessionContext,
    model: Option<&SessionModel>,
    format: OutputFormat,
    view: TableView,
    continue_on_error: bool,
    file: Option<&Path>,
) -> Result<()> {
    let script = file.is_some() || !std::io::stdin().is_terminal();
    let mut shell = Shell {
        ctx,
        model,
        format,
        view,
        buffer: String::new(),
        count: 0,
        on_error: match (script, continue_on_error) {
            (false, _) => OnError::Prompt,
            (true, false) => OnError::Stop,
            (true, true) => OnError::Continue,
        },
        first_failure: None,
        redirect: None,
        timing: false,
    };
    if script {
        return run_script(&mut shell, file).await;
    }
    prompt(&mut shell).await
}

/// The interactive prompt: line editing, completion, history.
async fn prompt(shell: &mut Shell<'_>) -> Result<()> {
    let mut stdout = StdoutWriter::default();
    let mut editor: rustyline::Editor<SqlCompleter, rustyline::history::DefaultHistory> =
        rustyline::Editor::new()
            .map_err(|e| ArqError::Input(format!("cannot start the line editor: {e}")))?;
    let mut completer = SqlCompleter::default();
    completer.refresh(shell.ctx).await?;
    editor.set_helper(Some(completer));
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
                let step = shell.line(&line, &mut stdout).await;
                stdout.flush().map_err(|e| ArqError::io("<stdout>", e))?;
                if let Step::Quit = step? {
                    break;
                }
                if changes_names(&line)
                    && let Some(completer) = editor.helper_mut()
                {
                    // A new view's name and columns complete from now on.
                    let _ = completer.refresh(shell.ctx).await;
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

/// Whether a line may have created or dropped a table or view.
fn changes_names(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.contains("create") || lower.contains("drop")
}

/// `on`, `off` or `auto`.
fn expanded(when: &str) -> Result<Expanded> {
    <Expanded as clap::ValueEnum>::from_str(when, true)
        .map_err(|_| ArqError::Usage(format!("expanded display is on, off or auto, not `{when}`")))
}

fn value_name(expanded: Expanded) -> String {
    clap::ValueEnum::to_possible_value(&expanded)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}
