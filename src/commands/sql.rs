//! `arq sql`: run SQL over the warehouse and print the results, or write the last one
//! to a file.

use std::io::{IsTerminal, Read};

use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use crate::cli::args::SqlArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::output::print_text;
use crate::sql;

/// Runs the statements of the query (or of `-f FILE`) in order.
pub fn run(config: &Config, args: &SqlArgs) -> Result<()> {
    let text = sql_text(args)?;
    let warehouse = config.warehouse()?;
    let output = config.output()?;
    let statements = sql::parse_script(&text)?;
    let several = statements.len() > 1;
    config.block_on(async {
        let ctx = crate::files::enable(warehouse.session(config.session_model()).await?);
        let mut first_failure = None;
        let count = statements.len();
        for (i, statement) in statements.into_iter().enumerate() {
            if args.echo {
                print_text(&format!("{statement};\n"))?;
            }
            let shown = statement.clone();
            // With --out only the last statement's result goes to the file; the others'
            // rows are read and dropped.
            let last = i + 1 == count;
            let ran = async {
                let stream = sql::stream_statement(&ctx, statement).await?;
                match (&output.path, last) {
                    (Some(_), true) => output.write_stream(stream).await,
                    (Some(_), false) => drain(stream).await,
                    (None, _) if stream.schema().fields().is_empty() => drain(stream).await,
                    (None, _) => output.write_stream(stream).await,
                }
            };
            match ran.await {
                Ok(()) => {}
                Err(e) if !several => return Err(e),
                Err(e) if !args.continue_on_error => return Err(sql::located(i + 1, &shown, e)),
                Err(e) => {
                    let e = sql::located(i + 1, &shown, e);
                    eprintln!("error: {e}");
                    first_failure.get_or_insert(e);
                }
            }
        }
        first_failure.map_or(Ok(()), Err)
    })
}

/// Runs a statement to its end without keeping its rows (DDL, or a result that is not
/// the one written to --out).
async fn drain(mut stream: SendableRecordBatchStream) -> Result<()> {
    while let Some(batch) = stream.next().await {
        batch?;
    }
    Ok(())
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
