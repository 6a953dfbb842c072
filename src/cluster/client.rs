//! A session whose queries are planned on a Ballista cluster (`--cluster df://HOST:PORT`).
//!
//! The session keeps everything of a local one (the warehouse's tables and views, the
//! rule that answers `max(snapshot_date)` from the listing, arq's functions — registered
//! again after connecting replaced them with Ballista's defaults) and plans each query with
//! [`ClusterPlanner`]:
//!
//! 1. arq's computed table functions are resolved here first. `customer_features` and
//!    `risk_labels` are one SQL query each: they become views, planned on the cluster
//!    with the rest of the query. `ar_metrics`, `roll_rates`, `promise_kept_rate` and
//!    `risk_scores` take several queries and Rust code: their queries run on the cluster,
//!    and their rows (a few hundred for the metrics; one per customer for the scores)
//!    become an in-memory table.
//! 2. A query that then reads no file (only such computed rows, the catalogs, or nothing)
//!    runs here; any other goes to the scheduler, with
//!    its in-memory tables written into the plan ([`super::codec`]), up to
//!    [`super::codec::MAX_SHIPPED_BYTES`] (a larger one is refused naming the function).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arq_udfs::table_function::MetricTable;
use async_trait::async_trait;
use ballista_core::extension::{SessionConfigExt, SessionStateExt as _};
use ballista_core::planner::BallistaQueryPlanner;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::plan_err;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::{MemTable, ViewTable, provider_as_source, source_as_provider};
use datafusion::error::Result as DfResult;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableScan, TableSource, cast,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::SessionContext;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::protobuf::LogicalPlanNode;

use super::ClusterUrl;
use super::codec::ClusterCodec;
use crate::error::{ArqError, Result};

/// How long connecting to the scheduler may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `local` (a session over the warehouse, with arq's functions and the model's) turned
/// into one whose queries run on the cluster at `url`.
pub async fn connect(local: SessionContext, url: &ClusterUrl) -> Result<SessionContext> {
    connect_with(local, url, Placement::ReadsFiles).await
}

/// Which queries go to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Those that read files (warehouse tables, views of computed table functions); the
    /// others run here ([`connect`]).
    ReadsFiles,
    /// Every query, its in-memory tables sent with it: what the tests use to run SQL
    /// over hand-made tables on the executors.
    Every,
}

/// [`connect`], choosing which queries go to the cluster.
pub async fn connect_with(
    local: SessionContext,
    url: &ClusterUrl,
    placement: Placement,
) -> Result<SessionContext> {
    reachable(url).await?;
    let state = local.state();
    // Connecting replaces the session's functions with Ballista's defaults: the local
    // session's (arq's, the model's, and any the caller added) are put back.
    let scalars: Vec<_> = state.scalar_functions().values().cloned().collect();
    let aggregates: Vec<_> = state.aggregate_functions().values().cloned().collect();
    let windows: Vec<_> = state.window_functions().values().cloned().collect();
    let codec: Arc<dyn LogicalExtensionCodec> = Arc::new(ClusterCodec::default());
    let config = state
        .config()
        .clone()
        .upgrade_for_ballista()
        .with_ballista_logical_extension_codec(codec.clone())
        // Ballista's static stage planner: its adaptive planner (AQE) loses track of a
        // job whose executor dies and the query then waits for ever (Ballista 55.0);
        // the static one runs the lost tasks again on the other executors.
        .with_ballista_adaptive_query_planner(false)
        // The catalog exists: a new default one would replace the warehouse's tables.
        .with_create_default_catalog_and_schema(false);
    let remote = BallistaQueryPlanner::<LogicalPlanNode>::with_extension(
        url.scheduler(),
        config.ballista_config(),
        codec,
    );
    let config = config.with_ballista_query_planner(Arc::new(ClusterPlanner {
        placement,
        remote,
        local: DefaultPhysicalPlanner::default(),
    }));
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build()
        .upgrade_for_ballista(url.scheduler())?;
    // The rule that truncates dates as dates writes a function the scheduler and the
    // executors do not know by name (`date_trunc_to_date`, not registered): on a cluster
    // the query keeps its casts.
    let mut analyzer = state.analyzer().clone();
    analyzer
        .rules
        .retain(|rule| rule.name() != arq_udfs::date_trunc::DatesTruncatedAsDates::NAME);
    let mut builder = SessionStateBuilder::new_from_existing(state);
    *builder.analyzer() = Some(analyzer);
    let state = builder
        .with_scalar_functions(scalars)
        .with_aggregate_functions(aggregates)
        .with_window_functions(windows)
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// An error naming the scheduler unless it answers within [`CONNECT_TIMEOUT`].
async fn reachable(url: &ClusterUrl) -> Result<()> {
    let error = |message: String| ArqError::Cluster {
        url: url.to_string(),
        message,
    };
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        SchedulerGrpcClient::connect(url.scheduler()),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(error(format!(
            "cannot reach the scheduler ({}): is `arq cluster scheduler` running there?",
            super::transport_cause(&e)
        ))),
        Err(_) => Err(error(format!(
            "the scheduler did not answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Plans a query: arq's computed table functions resolved here, then the query run here
/// when it reads no warehouse table, else on the cluster (see the module's notes).
pub struct ClusterPlanner {
    placement: Placement,
    remote: BallistaQueryPlanner<LogicalPlanNode>,
    local: DefaultPhysicalPlanner,
}

impl std::fmt::Debug for ClusterPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPlanner")
            .field("placement", &self.placement)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = resolve_computed_tables(logical_plan, session).await?;
        if runs_here(&plan, self.placement)? {
            self.local.create_physical_plan(&plan, session).await
        } else {
            self.remote.create_physical_plan(&plan, session).await
        }
    }
}

/// The metric table a scan reads, if it reads one.
fn metric_of(scan: &TableScan) -> Option<MetricTable> {
    let provider = source_as_provider(&scan.source).ok()?;
    provider.downcast_ref::<MetricTable>().cloned()
}

/// `plan` with each scan of a computed table function replaced by a view of its query
/// or by its rows.
async fn resolve_computed_tables(
    plan: &LogicalPlan,
    session: &dyn Session,
) -> DfResult<LogicalPlan> {
    let mut metrics = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(metric) = metric_of(scan)
        {
            metrics.push(metric);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if metrics.is_empty() {
        return Ok(plan.clone());
    }
    let key = |m: &MetricTable| Arc::as_ptr(&m.0) as *const () as usize;
    let mut resolved: HashMap<usize, Arc<dyn TableSource>> = HashMap::new();
    for metric in metrics {
        if resolved.contains_key(&key(&metric)) {
            continue;
        }
        let provider: Arc<dyn TableProvider> = match metric.0.single_query(session).await? {
            Some(sql) => view(session, &sql, &metric).await?,
            None => {
                let rows = metric.rows(session).await?;
                Arc::new(MemTable::try_new(metric.0.schema(), vec![vec![rows]])?)
            }
        };
        resolved.insert(key(&metric), provider_as_source(provider));
    }
    let plan = plan.clone().transform_up_with_subqueries(|node| {
        let LogicalPlan::TableScan(scan) = node else {
            return Ok(Transformed::no(node));
        };
        match metric_of(&scan).and_then(|m| resolved.get(&key(&m)).cloned()) {
            Some(source) => Ok(Transformed::yes(LogicalPlan::TableScan(TableScan {
                source,
                ..scan
            }))),
            None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
        }
    })?;
    Ok(plan.data)
}

/// The table function's query as a view with exactly its declared columns.
async fn view(
    session: &dyn Session,
    sql: &str,
    metric: &MetricTable,
) -> DfResult<Arc<dyn TableProvider>> {
    let state = arq_udfs::table_function::session_state(session)?;
    // Optimized here: Ballista's plans carry no subqueries in expressions (an `IN
    // (SELECT …)` is a semi-join once optimized).
    let plan = state.optimize(&state.create_logical_plan(sql).await?)?;
    let schema = metric.0.schema();
    if plan.schema().fields().len() != schema.fields().len() {
        return plan_err!(
            "{}: its query gives {} columns, not {}",
            metric.0.function(),
            plan.schema().fields().len(),
            schema.fields().len()
        );
    }
    let columns: Vec<Expr> = plan
        .schema()
        .columns()
        .into_iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            cast(Expr::Column(column), field.data_type().clone()).alias(field.name())
        })
        .collect();
    let plan = LogicalPlanBuilder::from(plan).project(columns)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, Some(sql.to_string()))))
}

/// Whether the plan runs in this process: one that writes the session's own tables
/// (`CREATE TABLE … AS`, `INSERT INTO` an in-memory table) or reads no table and no
/// VALUES (Ballista cannot send a plan folded to an empty relation), and with
/// [`Placement::ReadsFiles`] one that reads no file.
fn runs_here(plan: &LogicalPlan, placement: Placement) -> DfResult<bool> {
    let mut local_only = false;
    let mut scans = false;
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) | LogicalPlan::Copy(_) => local_only = true,
            LogicalPlan::TableScan(_) | LogicalPlan::Values(_) => scans = true,
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(local_only
        || !scans
        || (placement == Placement::ReadsFiles && reads_no_warehouse_table(plan)?))
}

/// Whether the plan reads no file: no warehouse table (a listing table) and no view of
/// a computed table function — only in-memory rows, the catalogs (information_schema,
/// pg_catalog), or no table at all.
fn reads_no_warehouse_table(plan: &LogicalPlan) -> DfResult<bool> {
    let mut files = false;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && source_as_provider(&scan.source).is_ok_and(|p| {
                p.downcast_ref::<ListingTable>().is_some()
                    || p.downcast_ref::<ViewTable>().is_some()
            })
        {
            files = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(!files)
}
