//! One file per command, each a `run(&Config, &Args)`: what the command does with the
//! inputs that [`crate::cli::Config`] has already opened, loaded and checked.

pub mod backtest;
pub mod cluster;
pub mod functions;
pub mod generate;
pub mod limits;
pub mod nightly;
pub mod queue;
pub mod report;
pub mod score;
pub mod serve;
pub mod settle;
pub mod shell;
pub mod sql;
pub mod tables;
pub mod train;

use crate::cli::args::{Cli, Command};
use crate::cli::config::Config;
use crate::error::Result;

/// Runs a parsed command line: one validated configuration, then the command.
pub fn run(cli: Cli) -> Result<()> {
    let config = Config::from_args(&cli)?;
    match &cli.command {
        Command::Sql(args) => sql::run(&config, args),
        Command::Shell(args) => shell::run(&config, args),
        Command::Tables(_) => tables::run(&config),
        Command::Functions(args) => functions::run(&config, args),
        Command::Train(args) => train::run(&config, args),
        Command::Score(args) => score::run(&config, args),
        Command::Queue(args) => queue::run(&config, args),
        Command::Limits(args) => limits::run(&config, args),
        Command::Nightly(args) => nightly::run(&config, args),
        Command::Settle(args) => settle::run(&config, args),
        Command::Backtest(args) => backtest::run(&config, args),
        Command::Report(args) => report::run(&config, args),
        Command::Generate(args) => generate::run(&config, args),
        Command::Serve(args) => serve::run(&config, args, cli.as_of()),
        Command::Cluster(args) => cluster::run(&config, args),
    }
}
