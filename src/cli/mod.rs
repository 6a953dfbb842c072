//! The `arq` command line: flags are parsed by clap into the types of [`args`] and
//! turned into one validated [`Config`] (the warehouse opened and its snapshot resolved
//! once, the model and the policy loaded once, the output checked); [`crate::commands::run`]
//! then dispatches to one command.

pub mod args;
pub mod config;

pub use args::{Cli, Command};
pub use config::Config;
