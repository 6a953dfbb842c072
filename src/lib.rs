//! arq: an accounts-receivable engine — analytic SQL over Parquet snapshots of
//! receivables, SQL functions for aging and risk, and the pipeline that turns each
//! night's snapshot into call lists and credit-limit recommendations.
//!
//! Data flows one way: [`warehouse`] (Parquet, checked against the [`contract`]) →
//! SQL ([`sql`], DataFusion with `arq-udfs`) → features and model (`arq-models`) →
//! outputs. [`generate`] writes synthetic warehouses in the contract.

pub mod cli;
pub mod contract;
pub mod error;
pub mod generate;
pub mod nightly;
pub mod risk;
pub mod shell;
pub mod sql;
pub mod staging;
pub mod validate;
pub mod warehouse;

pub use error::{ArqError, Result};
pub use warehouse::{AsOf, Warehouse};
