//! End-to-end tests of the `arq` binary, compiled as one test binary (one link, shared
//! helpers), in the style of ripgrep's integration tests.

mod util;

mod backtest;
mod bad_input;
mod cli_output;
mod cluster;
mod demo;
mod generate;
mod limits;
mod model;
mod nightly;
mod output;
mod queue;
mod report;
mod s3;
mod serve;
mod settlement;
mod shell;
mod sql;
mod warehouse_errors;
