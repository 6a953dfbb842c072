//! The `arq` binary: a thin wrapper that parses the command line, runs it, and turns any
//! error into one line on stderr and exit code 1.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = arq::cli::Cli::parse();
    match arq::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
