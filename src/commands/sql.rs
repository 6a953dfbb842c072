//! `arq sql`: run SQL over the warehouse and print the results, or write the last one
//! to a file.

use crate::cli::args::SqlArgs;
use std::io::{IsTerminal, Read};

use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::sql;

/// Runs the statements of the query (or of `-f FILE`) in order.
pub fn run(config: &Config, args: &SqlArgs) -> Result<()> {
    let text = sql_text(args)?;
    let warehouse = config.warehouse()?;
    let output = config.output()?;
    config.block_on(async {
        let ctx = warehouse.session(config.session_model()).await?;
        let results = sql::run_statements(&ctx, &text).await?;
        if output.path.is_some() {
            let last = results
                .last()
                .ok_or_else(|| ArqError::Internal("no statement ran".into()))?;
            return output.write(last);
        }
        for result in results.iter().filter(|r| r.has_columns()) {
            output.write(result)?;
        }
        Ok(())
    })
}

/// The SQL: the query, `-c SQL`, `-f FILE` (`-f -`: stdin), else stdin when it is not a
/// terminal.
fn sql_text(args: &SqlArgs) -> Result<String> {
    let from_stdin = || -> Result<String> {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| ArqError::io("<stdin>", e))?;
        Ok(text)
    };
    match (&args.query, &args.command, &args.file) {
        (Some(q), _, _) | (None, Some(q), _) => Ok(q.clone()),
        (None, None, Some(f)) if f.as_os_str() == "-" => from_stdin(),
        (None, None, Some(f)) => std::fs::read_to_string(f).map_err(|e| ArqError::io(f, e)),
        (None, None, None) if !std::io::stdin().is_terminal() => from_stdin(),
        (None, None, None) => Err(ArqError::Usage(
            "give a query, -c SQL, -f FILE, or SQL on stdin".into(),
        )),
    }
}
