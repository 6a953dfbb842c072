//! One validated configuration, built before any work starts (ripgrep's `HiArgs`): the
//! warehouse opened once with its snapshot resolved once, the model and the policy read
//! once each (as [`Loaded`]: path, value and fingerprint of the bytes read), the output
//! checked, the runtime started once. Commands take `&Config` and decide nothing of it
//! again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arq_models::sql::SessionModel;
use arq_models::{Policy, RiskModel};

use super::args::{Cli, Need};
use crate::cluster::ClusterUrl;
use crate::error::{ArqError, Result};
use crate::loaded::Loaded;
use crate::memory::MemoryLimit;
use crate::output::Output;
use crate::storage::Location;
use crate::warehouse::Warehouse;

/// The warehouse used when neither `--warehouse` nor `ARQ_WAREHOUSE` is given.
pub const DEFAULT_WAREHOUSE: &str = "data/demo";
/// The model used when neither `--model` nor `ARQ_MODEL` is given.
pub const DEFAULT_MODEL: &str = "data/models/default.json";
/// The credit policy used when `--policy` is not given.
pub const DEFAULT_POLICY: &str = "data/policy.toml";
/// Customers per slice of the feature query (environment).
pub const FEATURE_SLICE_VAR: &str = "ARQ_FEATURE_SLICE";

/// Everything a command needs, checked.
pub struct Config {
    warehouse: Option<Warehouse>,
    model: Option<Loaded<SessionModel>>,
    policy: Option<Loaded<Policy>>,
    output: Option<Output>,
    /// Customers per slice of the feature query.
    pub feature_slice: usize,
    runtime: tokio::runtime::Runtime,
}

impl Config {
    /// Checks the flags and reads the inputs the command needs: usage errors first, then
    /// the model, the policy and the warehouse.
    pub fn from_args(cli: &Cli) -> Result<Config> {
        let needs = cli.command.needs();
        let output = match cli.command.output() {
            Some(o) => Some(Output::new(
                o.out.clone(),
                o.format,
                o.display.view(o.out.is_some()),
            )?),
            None => None,
        };
        // The commands that compute features read the feature slice: those that score
        // and every command over a warehouse (`customer_features`, `risk_scores` in SQL).
        let feature_slice = match (needs.warehouse, needs.model) {
            (true, _) | (_, Need::Required) => feature_slice()?,
            _ => arq_models::features::DEFAULT_SLICE,
        };
        let model = match (needs.model, model_path(cli.model().map(PathBuf::as_path))) {
            (Need::No, _) | (Need::Optional, None) => None,
            (_, Some(path)) => Some(load_model(&path)?),
            (Need::Required, None) => {
                return Err(ArqError::Usage(format!(
                    "no model: pass --model FILE (or train one with `arq train`; \
                     {DEFAULT_MODEL} is missing)"
                )));
            }
        };
        let policy = match cli.command.policy() {
            Some(args) if needs.policy => {
                let path = policy_path(args.policy.as_deref())?;
                Some(Loaded::read(&path, Policy::parse)?)
            }
            _ => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| ArqError::Internal(format!("cannot start the async runtime: {e}")))?;
        let warehouse = match needs.warehouse {
            true => {
                let path = warehouse_path(cli, needs.decisions)?;
                let limit = cli
                    .command
                    .memory_limit()
                    .or_else(MemoryLimit::default_for_machine);
                // Opened on the runtime the commands run on: a bucket's client keeps its
                // connections there.
                let location = Location::parse(&path.to_string_lossy())?;
                let opened = runtime.block_on(Warehouse::open_at(location, cli.as_of()))?;
                let cluster = cli.command.cluster().map(ClusterUrl::parse).transpose()?;
                Some(
                    opened
                        .with_memory_limit(limit)
                        .with_cluster(cluster)
                        .with_string_views(cli.command.reads_string_views())
                        .with_feature_slice(feature_slice),
                )
            }
            false => None,
        };
        Ok(Config {
            warehouse,
            model,
            policy,
            output,
            feature_slice,
            runtime,
        })
    }

    /// The opened warehouse (commands that need one always have it).
    pub fn warehouse(&self) -> Result<&Warehouse> {
        self.warehouse
            .as_ref()
            .ok_or_else(|| missing("the warehouse"))
    }

    /// The model, when the command reads one and there is one.
    pub fn session_model(&self) -> Option<&SessionModel> {
        self.model.as_ref().map(|m| &m.value)
    }

    /// The model of a command that requires one.
    pub fn model(&self) -> Result<&Loaded<SessionModel>> {
        self.model.as_ref().ok_or_else(|| missing("the model"))
    }

    /// The policy of a command that reads one.
    pub fn policy(&self) -> Result<&Loaded<Policy>> {
        self.policy.as_ref().ok_or_else(|| missing("the policy"))
    }

    /// The output of a command that prints or saves one table.
    pub fn output(&self) -> Result<&Output> {
        self.output.as_ref().ok_or_else(|| missing("the output"))
    }

    /// Runs a future on the one runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The runtime, for work beside the queries (the nightly's input fingerprint).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }
}

/// A command asked for an input its [`Command::needs`] did not declare.
fn missing(what: &str) -> ArqError {
    ArqError::Internal(format!("{what} was not loaded for this command"))
}

/// Reads and checks a model artifact.
fn load_model(path: &Path) -> Result<Loaded<SessionModel>> {
    Loaded::read(path, |text, name| {
        Ok(SessionModel {
            model: Arc::new(RiskModel::from_json(text, name)?),
            name: name.to_string(),
        })
    })
}

/// The warehouse folder: `--warehouse`, else `ARQ_WAREHOUSE`, else `data/demo` in the
/// current folder, else (for SQL and listings only) the demo warehouse of the source tree
/// arq was built from. A command that writes decisions is never given that demo silently:
/// a cron job started in the wrong folder must not send out demo call lists.
fn warehouse_path(cli: &Cli, decisions: bool) -> Result<PathBuf> {
    if let Some(w) = cli.warehouse() {
        return Ok(w.clone());
    }
    let local = PathBuf::from(DEFAULT_WAREHOUSE);
    if local.is_dir() {
        return Ok(local);
    }
    if decisions {
        return Err(ArqError::Usage(format!(
            "no warehouse: pass --warehouse DIR or set ARQ_WAREHOUSE (the demo warehouse is \
             used only from a folder with {DEFAULT_WAREHOUSE}, as in the README)"
        )));
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WAREHOUSE);
    Ok(if built_in.is_dir() { built_in } else { local })
}

impl Config {
    /// What a decision command read, for a note on stderr: warehouse, snapshot, model and
    /// policy (when the command reads them).
    pub fn inputs_note(&self) -> String {
        let mut parts = Vec::new();
        if let Some(w) = &self.warehouse {
            parts.push(format!("warehouse {} (snapshot {})", w.root(), w.as_of()));
        }
        if let Some(m) = &self.model {
            parts.push(format!("model {}", m.path.display()));
        }
        if let Some(p) = &self.policy {
            parts.push(format!(
                "policy {} (version {})",
                p.path.display(),
                p.value.version
            ));
        }
        parts.join(", ")
    }
}

/// The model file: the one given, else the bundled default model when it exists.
fn model_path(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_path_buf()),
        None => bundled(DEFAULT_MODEL),
    }
}

/// The policy file: the one given, else the bundled default policy.
fn policy_path(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => bundled(DEFAULT_POLICY).ok_or_else(|| {
            ArqError::Usage(format!(
                "no policy: pass --policy FILE ({DEFAULT_POLICY} is missing)"
            ))
        }),
    }
}

/// A file shipped in the repository: relative to the current folder, else to the source
/// tree arq was built from.
fn bundled(relative: &str) -> Option<PathBuf> {
    let local = PathBuf::from(relative);
    if local.is_file() {
        return Some(local);
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    built_in.is_file().then_some(built_in)
}

/// Customers per slice of the feature query: `ARQ_FEATURE_SLICE`, else
/// [`arq_models::features::DEFAULT_SLICE`]. Smaller slices use less memory and take a
/// little longer.
fn feature_slice() -> Result<usize> {
    match std::env::var(FEATURE_SLICE_VAR) {
        Err(_) => Ok(arq_models::features::DEFAULT_SLICE),
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ArqError::Input(format!(
                "{FEATURE_SLICE_VAR}={v}: give a number of customers (at least 1)"
            ))),
        },
    }
}
