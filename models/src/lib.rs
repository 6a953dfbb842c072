//! arq-models: the risk model of DOMAIN.md §4 and the credit limits of §6.
//!
//! - [`features`]: point-in-time features and the label, in SQL over the warehouse
//!   (`models/sql/*.sql`, using arq-udfs' functions);
//! - [`encoding`]: columns → standardized design matrix (medians for missing numbers,
//!   one-hot text);
//! - [`train`]: the candidates (logistic regression, binned scorecard, random forest),
//!   the champion rule, the max-DPD baseline, the out-of-time report ([`metrics`]) and
//!   the refit on every labelled row;
//! - [`logistic`]: the L2 logistic regression's L-BFGS fit;
//! - [`tuning`]: the L2 strength by cross-validation;
//! - [`binning`]: the binned scorecard (bins, weights of evidence, points);
//! - [`forest`]: the random forest (bagged linfa trees kept as split tables, reasons by
//!   path contributions);
//! - [`scaling`]: the scorecard scaling (points for a PD);
//! - [`report`]: the validation report of a training run;
//! - [`model`]: the versioned JSON artifact, PD, scorecard points, reason codes;
//! - [`scores`]: a scored snapshot, read by column name;
//! - [`snapshots`]: the one rule that picks the snapshot a run reads;
//! - [`policy`]: the TOML credit policy, checked into limits' and queues' settings;
//! - [`money`]: cents ⇄ decimals, PDs at six decimals;
//! - [`limits`]: credit-limit recommendations from the policy (DOMAIN.md §6);
//! - [`queues`]: the work queues' rules (DOMAIN.md §5) — placement, priority, capacity;
//! - [`backtest`]: the queue order replayed on past snapshots against two baselines;
//! - [`sql`]: the model in SQL (`risk_score`, `risk_points`, `risk_reasons`,
//!   `scorecard_points`, `customer_features`, `risk_labels`, `risk_scores`).
//!
//! Data flows one way: this crate uses arq-udfs and never the `arq` binary crate.

pub mod applications;
pub mod backtest;
pub mod binning;
pub mod credit_desk;
pub mod encoding;
pub mod error;
pub mod features;
pub mod forest;
pub mod limits;
pub mod logistic;
pub mod metrics;
pub mod model;
pub mod money;
pub(crate) mod named;
pub mod policy;
pub mod queues;
pub mod reasons;
pub mod report;
pub mod review;
pub mod scaling;
pub mod scores;
pub mod snapshots;
pub mod sql;
pub mod train;
pub mod tuning;

#[cfg(test)]
mod properties;

pub use error::{ModelError, Result};
pub use model::{ModelKind, RiskModel, Scorecard};
pub use policy::Policy;
pub use report::Report;
pub use train::{LabelledData, TrainOptions, train};
