//! `arq sql`: run SQL over the warehouse and print the results, or write the last one
//! to a file.

use crate::cli::args::SqlArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::sql;

/// Runs the statements of the query (or of `-f FILE`) in order.
pub fn run(config: &Config, args: &SqlArgs) -> Result<()> {
    let text = match (&args.query, &args.file) {
        (Some(q), _) => q.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| ArqError::io(f, e))?,
        (None, None) => return Err(ArqError::Usage("give a query or -f FILE".into())),
    };
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
