//! The sessions of `arq serve`.
//!
//! One base session per state of the warehouse: the Postgres catalog (`pg_catalog`,
//! `current_database()`, `has_table_privilege()`, ...) and Postgres functions first, then
//! arq's functions, tables and `*_latest` / `*_previous` views — registered after, so a
//! Postgres name never shadows an arq function. Each connection plays its statements in
//! its own copy of the base session: its own `SET` options, and its own memory pool, so
//! the per-query memory limit holds (a connection runs one statement at a time).
//!
//! New snapshots: the server looks at the warehouse's file listing every
//! `--reload-interval` (and at once on SIGHUP). When it changed, it opens the warehouse
//! again (the whole contract check) and builds a new base session; the next statement of
//! every connection runs in it (keeping the connection's `SET` options). If the new state
//! fails the check — a snapshot half written — the server keeps serving the old one and
//! logs why; it tries again when the listing changes again.

use std::sync::{Arc, Mutex, RwLock};

use arq_models::sql::SessionModel;
use chrono::NaiveDate;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;

use super::cooperative::YieldWhereOutputMultiplies;
use crate::cheap_filters::CheapFilters;
use crate::compact_views::CompactViews;
use crate::error::{ArqError, Result};
use crate::few_groups::FewGroups;
use crate::key_order_join::JoinInKeyOrder;
use crate::memory::{self, MemoryLimit};
use crate::scan_ahead::ScanAhead;
use crate::warehouse::{self, AsOf, Warehouse};

/// One state of the warehouse and its base session.
pub struct Served {
    /// Counts the states served, from 1.
    pub generation: u64,
    pub warehouse: Warehouse,
    pub ctx: SessionContext,
}

/// The warehouse as the server sees it now, and how to see it again.
pub struct Catalog {
    as_of: AsOf,
    model: Option<SessionModel>,
    current: RwLock<Arc<Served>>,
    /// The listing last looked at (served or refused).
    seen: Mutex<u64>,
}

impl Catalog {
    /// The base session over `warehouse` (already opened and checked).
    pub async fn new(
        warehouse: Warehouse,
        as_of: AsOf,
        model: Option<SessionModel>,
    ) -> Result<Catalog> {
        let seen = warehouse.listing_fingerprint().await?;
        let ctx = base_session(&warehouse, model.as_ref()).await?;
        Ok(Catalog {
            as_of,
            model,
            current: RwLock::new(Arc::new(Served {
                generation: 1,
                warehouse,
                ctx,
            })),
            seen: Mutex::new(seen),
        })
    }

    /// The state served now.
    pub fn current(&self) -> Arc<Served> {
        Arc::clone(&self.current.read().expect("catalog lock"))
    }

    /// Opens the warehouse again if its listing changed since last looked at (always when
    /// `force`): `None` when nothing changed, else the snapshot now served or why the new
    /// state was refused (the old one is still served).
    pub async fn reload(&self, force: bool) -> Option<Result<NaiveDate>> {
        let served = self.current();
        let root = served.warehouse.root().clone();
        // Listing and opening go through the object store (local files on its blocking
        // threads, a bucket by requests), never blocking the async threads.
        let listing = match served.warehouse.listing_fingerprint().await {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        {
            let mut seen = self.seen.lock().expect("catalog lock");
            if *seen == listing && !force {
                return None;
            }
            *seen = listing;
        }
        let as_of = self.as_of;
        let warehouse = match Warehouse::open_at(root, as_of).await {
            Ok(w) => w,
            Err(e) => return Some(Err(e)),
        };
        let ctx = match base_session(&warehouse, self.model.as_ref()).await {
            Ok(ctx) => ctx,
            Err(e) => return Some(Err(e)),
        };
        let snapshot = warehouse.as_of();
        let mut current = self.current.write().expect("catalog lock");
        let generation = current.generation + 1;
        *current = Arc::new(Served {
            generation,
            warehouse,
            ctx,
        });
        Some(Ok(snapshot))
    }
}

/// The base session: Postgres catalog and functions, then arq's; joins yield to the
/// interrupts ([`super::cooperative`]).
async fn base_session(
    warehouse: &Warehouse,
    model: Option<&SessionModel>,
) -> Result<SessionContext> {
    let state = SessionStateBuilder::new()
        .with_config(warehouse.session_config())
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(YieldWhereOutputMultiplies))
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    setup_pg_catalog(&ctx, warehouse::CATALOG, EmptyContextProvider)
        .map_err(|e| ArqError::Internal(format!("pg_catalog: {e}")))?;
    datafusion_postgres::datafusion_pg_functions::register_all(&mut ctx);
    ctx.register_udf(version_function());
    let ctx = warehouse.register_all(ctx, model).await?;
    match warehouse.cluster() {
        None => Ok(ctx),
        Some(url) => crate::cluster::client::connect(ctx, url).await,
    }
}

/// What `version()` answers: clients read the Postgres version from it (Metabase,
/// DBeaver, pgAdmin); it also says what serves them.
pub const VERSION: &str = concat!(
    "PostgreSQL 16.6 (arq ",
    env!("CARGO_PKG_VERSION"),
    ", Apache DataFusion 55, read-only)"
);

/// `version()`.
fn version_function() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        std::sync::Arc::new(|_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                VERSION.into(),
            ))))
        }),
    )
}

/// A connection's session: a copy of `base` with the connection's options (`config`,
/// none for a new connection) and a memory pool of `limit`.
pub fn connection_session(
    base: &SessionContext,
    config: Option<SessionConfig>,
    limit: MemoryLimit,
) -> Result<SessionContext> {
    // The base's object stores (a warehouse in a bucket) and the Parquet footers it has
    // read; a pool of its own.
    let base_env = base.runtime_env();
    let caches = CacheManagerConfig::default()
        .with_file_metadata_cache(Some(base_env.cache_manager.get_file_metadata_cache()));
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limit.0, 1.0)
        .with_object_store_registry(Arc::clone(&base_env.object_store_registry))
        .with_cache_manager(caches)
        .build_arc()?;
    let mut builder =
        SessionStateBuilder::new_from_existing(base.state()).with_runtime_env(runtime);
    if let Some(config) = config {
        builder = builder.with_config(config);
    }
    // Merges in customer order read ahead, as in `arq sql` ([`ScanAhead`]), their queues
    // sized by the query's limit.
    if let Some(rule) = ScanAhead::within(Some(limit)) {
        builder = builder.with_physical_optimizer_rule(Arc::new(rule));
    }
    // Joins whose probe side is in key order walk it, as in `arq sql` ([`JoinInKeyOrder`]).
    builder = builder.with_physical_optimizer_rule(Arc::new(JoinInKeyOrder));
    // Partial aggregates into few groups find them by numbers, as in `arq sql` ([`FewGroups`]).
    builder = builder.with_physical_optimizer_rule(Arc::new(FewGroups::default()));
    // Filters of a few plain comparisons evaluate every term whole ([`CheapFilters`]).
    builder = builder.with_physical_optimizer_rule(Arc::new(CheapFilters));
    // Joins' string views compacted as they leave them, as in `arq sql` ([`CompactViews`]).
    builder = builder.with_physical_optimizer_rule(Arc::new(CompactViews));
    let ctx = SessionContext::new_with_state(builder.build());
    memory::guard_functions(&ctx, limit);
    Ok(ctx)
}
