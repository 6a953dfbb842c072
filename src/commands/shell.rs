//! `arq shell`: the interactive SQL prompt over the warehouse (see [`crate::shell`]).

use crate::cli::args::ShellArgs;
use crate::cli::config::Config;
use crate::error::{ArqError, Result};

/// Opens a session with the model's functions and runs the prompt until `\q`.
pub fn run(config: &Config, args: &ShellArgs) -> Result<()> {
    if args.format.is_binary() {
        return Err(ArqError::Usage(
            "the shell prints text (table, csv, json, ndjson): write Parquet or xlsx with \
             arq sql --out FILE.parquet (or FILE.xlsx)"
                .into(),
        ));
    }
    let warehouse = config.warehouse()?;
    config.block_on(async {
        let ctx = crate::files::enable(warehouse.session(config.session_model()).await?);
        crate::shell::run(
            &ctx,
            config.session_model(),
            args.format,
            args.display.view(false),
            args.continue_on_error,
            args.file.as_deref(),
        )
        .await
    })
}
