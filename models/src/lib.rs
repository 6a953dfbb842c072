//! arq-models: the risk model, work queues and credit limits (DOMAIN.md §4–§6).
//!
//! Not built yet: this crate only fixes the model stack (linfa 0.8 with ndarray 0.16,
//! DataFusion for the feature SQL) in the workspace so that `cargo tree -d` proves there
//! is one arrow. Features, labels, training, the artifact and scoring arrive with the
//! model issue; queues and limits with the nightly-job issue. It never depends on the
//! `arq` binary crate.
