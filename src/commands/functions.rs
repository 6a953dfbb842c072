//! `arq functions`: the documentation of arq's SQL functions, with examples.

use crate::cli::args::FunctionsArgs;
use crate::cli::config::Config;
use crate::error::Result;
use crate::output::print_text;
use crate::sql;

/// Prints every function's documentation (or those whose name contains the filter).
pub fn run(config: &Config, args: &FunctionsArgs) -> Result<()> {
    print_text(&sql::describe_functions(
        args.name.as_deref(),
        config.session_model(),
    )?)
}
