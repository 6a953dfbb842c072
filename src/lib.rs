//! arq: an accounts-receivable engine — analytic SQL over Parquet snapshots of
//! receivables, SQL functions for aging and risk, and the pipeline that turns each
//! night's snapshot into call lists and credit-limit recommendations.
//!
//! Data flows one way: [`warehouse`] (Parquet, checked against the [`contract`], its
//! snapshot resolved once) → SQL ([`sql`], DataFusion with `arq-udfs`) → features and
//! model (`arq-models`, [`scored`]) → queues, limits, [`nightly`] → [`output`].
//! [`generate`] writes synthetic warehouses in the contract. The command line ([`cli`]:
//! flags → one validated configuration) dispatches to one file per command
//! ([`commands`]); nothing below the commands imports the command line.

pub mod applications;
pub mod cheap_filters;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod compact_views;
pub mod completion;
pub mod contract;
pub mod error;
pub mod few_groups;
pub mod files;
pub mod generate;
pub mod key_order_join;
pub mod labelled;
pub mod loaded;
pub mod memory;
pub mod nightly;
pub mod output;
pub mod progress;
pub mod report;
pub mod scan_ahead;
pub mod scored;
pub mod serve;
pub mod settlement;
pub mod shell;
pub mod snapshot_bounds;
pub mod sql;
pub mod stand_in;
pub mod storage;
pub mod validate;
pub mod warehouse;

pub use error::{ArqError, Result};
pub use warehouse::{AsOf, Warehouse};
