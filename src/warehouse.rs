//! The warehouse: a folder of Parquet tables in the contract (DOMAIN.md §2), checked
//! when it opens and registered in a DataFusion session.
//!
//! Layout:
//!
//! ```text
//! WAREHOUSE/customers/snapshot_date=2026-10-31/part-0.parquet   snapshot tables
//! WAREHOUSE/open_items/snapshot_date=2026-10-31/part-0.parquet
//! WAREHOUSE/invoices/part-0.parquet                              event tables
//! WAREHOUSE/collectors/part-0.parquet                            reference tables
//! ```
//!
//! The snapshot a run reads is resolved once, here, when the warehouse opens, by the rule
//! of [`arq_models::snapshots`]: the newest snapshot date on or before the as-of date
//! found in any snapshot table, which every snapshot table must have (and `customers`
//! with rows) — else an error, never an older day. Besides one table per folder, every
//! session has the views `customers_latest` and `open_items_latest` of that snapshot;
//! the scores, queues, limits and the nightly folder take the same day.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arq_models::snapshots::Snapshots;
use arq_models::sql::SessionModel;
use arq_udfs::dates;
use chrono::NaiveDate;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::statistics::Statistics;
use datafusion::prelude::{SessionConfig, SessionContext, col};

use crate::cheap_filters::CheapFilters;
use crate::cluster::ClusterUrl;
use crate::compact_views::CompactViews;
use crate::contract::{
    self, ASCENDING_KEY, INVOICE_ORDER_COLUMN, SNAPSHOT_COLUMN, SORT_COLUMN, TableContract,
    TableKind,
};
use crate::error::{ArqError, Result};
use crate::few_groups::FewGroups;
use crate::key_order_join::JoinInKeyOrder;
use crate::memory::{self, MemoryLimit};
use crate::scan_ahead::ScanAhead;
use crate::snapshot_bounds::SnapshotBounds;
use crate::storage::{Listing, Location, StoreReader, parquet_error};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;

/// Which snapshot the `*_latest` views show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsOf {
    /// The newest snapshot in the warehouse.
    #[default]
    Latest,
    /// The newest snapshot on or before this date.
    Date(NaiveDate),
}

impl std::str::FromStr for AsOf {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("latest") {
            return Ok(AsOf::Latest);
        }
        dates::parse(s)
            .map(AsOf::Date)
            .ok_or_else(|| format!("`{s}` is not a date (YYYY-MM-DD) or `latest`"))
    }
}

/// One table found in the warehouse.
#[derive(Debug, Clone)]
pub struct WarehouseTable {
    /// What the contract says of it.
    pub contract: TableContract,
    /// Its folder.
    pub dir: Location,
    /// Its Parquet files, sorted by path.
    pub files: Vec<WarehouseFile>,
    /// Snapshot dates found (snapshot tables only) with the rows of each, ascending.
    pub snapshots: BTreeMap<NaiveDate, u64>,
    /// Every file declares itself sorted by [`SORT_COLUMN`] and its row groups'
    /// statistics agree ([`ascending_by`]).
    pub sorted_by_customer: bool,
    /// The same of [`INVOICE_ORDER_COLUMN`], taken alone.
    pub sorted_by_invoice: bool,
}

/// One Parquet file of a table.
#[derive(Debug, Clone)]
pub struct WarehouseFile {
    /// Its path in the store, size and modification time.
    pub meta: ObjectMeta,
    /// Its `snapshot_date=` partition (snapshot tables only).
    pub snapshot: Option<NaiveDate>,
}

/// An opened, checked warehouse.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: Location,
    tables: Vec<WarehouseTable>,
    snapshots: Snapshots,
    as_of: NaiveDate,
    /// The memory a session's queries may use (none: unlimited).
    memory_limit: Option<MemoryLimit>,
    cluster: Option<ClusterUrl>,
    /// Text columns read as Arrow string views (`Utf8View`) instead of strings (`Utf8`):
    /// see [`Warehouse::with_string_views`].
    string_views: bool,
    /// Customers per slice of the sessions' `customer_features` and `risk_scores`.
    feature_slice: usize,
    /// Tables arq derived from the warehouse and keeps elsewhere (the invoice settlement
    /// of [`crate::settlement`]), registered in every session beside the warehouse's.
    derived: Vec<(&'static str, Arc<dyn TableProvider>)>,
}

/// Footers read at once when a warehouse opens (in a bucket each is a request or two).
const FOOTERS_AT_ONCE: usize = 8;

impl Warehouse {
    /// Opens the local warehouse at `root`: [`Warehouse::open_at`] on a thread of its
    /// own (with its own runtime), so that it may be called from anywhere, an async task
    /// included.
    pub fn open(root: impl AsRef<Path>, as_of: AsOf) -> Result<Self> {
        let root = Location::local(root)?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| ArqError::Internal(format!("cannot start a runtime: {e}")))?
                        .block_on(Self::open_at(root, as_of))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(ArqError::Internal("opening the warehouse panicked".into()))
                })
        })
    }

    /// Opens the warehouse at `root` (a local folder or a bucket's prefix) and checks
    /// every table and every file against the contract: a missing table, a missing
    /// column or a wrong type is an error naming table, file and column. `as_of` picks
    /// the snapshot of the `*_latest` views.
    pub async fn open_at(root: Location, as_of: AsOf) -> Result<Self> {
        let warehouse_error = |message: String| ArqError::Warehouse {
            path: PathBuf::from(root.to_string()),
            message,
        };
        if let Some(path) = root.local_path() {
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(warehouse_error("is not a folder".into())),
                Err(e) => return Err(warehouse_error(e.to_string())),
            }
        } else if root.list().await?.is_none() {
            return Err(warehouse_error(
                "nothing is stored under this prefix (no warehouse there)".into(),
            ));
        }

        let mut tables = Vec::new();
        for contract in contract::tables() {
            let dir = root.join(contract.name);
            let Some(listing) = dir.list().await? else {
                return Err(ArqError::Table {
                    table: contract.name.into(),
                    message: format!("folder {dir} is missing"),
                });
            };
            let files = list_table_files(&contract, &dir, listing).await?;
            let checks: Vec<_> = files
                .iter()
                .map(|file| check_file_schema(&contract, &root, &file.meta))
                .collect();
            let checked: Vec<(u64, [bool; 2])> = futures::stream::iter(checks)
                .buffered(FOOTERS_AT_ONCE)
                .try_collect()
                .await?;
            let mut snapshots = BTreeMap::new();
            let mut sorted = [!files.is_empty(); 2];
            for (file, (rows, [by_customer, by_invoice])) in files.iter().zip(checked) {
                sorted[0] &= by_customer;
                sorted[1] &= by_invoice;
                if let Some(date) = file.snapshot {
                    *snapshots.entry(date).or_insert(0) += rows;
                }
            }
            tables.push(WarehouseTable {
                contract,
                dir,
                files,
                snapshots,
                sorted_by_customer: sorted[0],
                sorted_by_invoice: sorted[1],
            });
        }

        let mut snapshots = Snapshots::new(
            tables
                .iter()
                .filter(|t| t.contract.kind == TableKind::Snapshot)
                .map(|t| {
                    let days = t.snapshots.iter().map(|(d, n)| (dates::to_days(*d), *n));
                    (t.contract.name.to_string(), days.collect())
                })
                .collect(),
        );
        let wanted = match as_of {
            AsOf::Latest => None,
            AsOf::Date(d) => Some(dates::to_days(d)),
        };
        let day = snapshots.choose(wanted).map_err(warehouse_error)?;
        let as_of = dates::from_days(day)
            .ok_or_else(|| warehouse_error(format!("snapshot day {day} is not a date")))?;
        Ok(Warehouse {
            root,
            tables,
            snapshots,
            as_of,
            memory_limit: None,
            cluster: None,
            string_views: false,
            feature_slice: arq_models::features::DEFAULT_SLICE,
            derived: Vec::new(),
        })
    }

    /// Registers `table` as `name` in every session of this warehouse: a table arq
    /// derived from the warehouse's files and checked to be up to date with them.
    pub fn with_derived(mut self, name: &'static str, table: Arc<dyn TableProvider>) -> Self {
        self.derived.retain(|(n, _)| *n != name);
        self.derived.push((name, table));
        self
    }

    /// Runs the sessions' queries on the cluster at `url` ([`Warehouse::session`]).
    pub fn with_cluster(mut self, url: Option<ClusterUrl>) -> Self {
        self.cluster = url;
        self
    }

    /// The cluster the sessions' queries run on, if any.
    pub fn cluster(&self) -> Option<&ClusterUrl> {
        self.cluster.as_ref()
    }

    /// Sessions over this warehouse with a memory limit (see [`crate::memory`]).
    pub fn with_memory_limit(mut self, limit: Option<MemoryLimit>) -> Self {
        self.memory_limit = limit;
        self
    }

    /// Sessions that read the tables' short text columns ([`VIEW_COLUMNS`]) as Arrow
    /// string views (`Utf8View`, DataFusion's own default for Parquet): what the
    /// analysts' commands (`arq sql`, `shell`, `serve`) use. A view holds a string of up
    /// to 12 bytes — a customer id, a currency, a kind — inside it, so the joins on
    /// customer ids and the groups and filters on codes compare and copy fixed-size
    /// values instead of reaching into a buffer: 15–30 % less time on most of the
    /// analyst's queries at 1 M customers (benches/README.md). The nightly job, the
    /// report and the other commands, whose Rust code reads strings, keep `Utf8`; `arq
    /// sql` writes its results as strings ([`crate::sql::stream_statement`]), so outputs
    /// are the same either way.
    pub fn with_string_views(mut self, views: bool) -> Self {
        self.string_views = views;
        self
    }

    /// Sessions whose table functions `customer_features` and `risk_scores` compute
    /// `slice` customers at a time (`ARQ_FEATURE_SLICE`; see
    /// [`arq_models::features::FeatureSlice`]).
    pub fn with_feature_slice(mut self, slice: usize) -> Self {
        self.feature_slice = slice;
        self
    }

    /// The warehouse folder (local or in a bucket).
    pub fn root(&self) -> &Location {
        &self.root
    }

    /// The tables, in contract order.
    pub fn tables(&self) -> &[WarehouseTable] {
        &self.tables
    }

    /// The snapshot of this run (the `*_latest` views, scores, queues, limits).
    pub fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    /// The snapshot of this run as days since 1970-01-01.
    pub fn as_of_day(&self) -> i32 {
        dates::to_days(self.as_of)
    }

    /// The snapshots of the warehouse and the rule that resolves them.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// The complete snapshot dates (in every snapshot table), ascending.
    pub fn snapshot_dates(&self) -> Vec<NaiveDate> {
        self.snapshots
            .complete_days()
            .into_iter()
            .filter_map(dates::from_days)
            .collect()
    }

    /// The complete snapshot before the run's, if any (the `*_previous` views).
    pub fn previous_snapshot(&self) -> Option<NaiveDate> {
        self.snapshot_dates().into_iter().rfind(|d| *d < self.as_of)
    }

    /// The one way to a session over the warehouse: arq-udfs' functions, the model's
    /// functions (when a model is given), every table, the `*_latest` views and the
    /// `*_previous` views (the complete snapshot before).
    /// With a cluster ([`Warehouse::with_cluster`]) the session plans its queries there
    /// ([`crate::cluster::client`]).
    pub async fn session(&self, model: Option<&SessionModel>) -> Result<SessionContext> {
        let local = self.local_session(model).await?;
        match &self.cluster {
            None => Ok(local),
            Some(url) => crate::cluster::client::connect(local, url).await,
        }
    }

    /// [`Warehouse::session`] on this machine, whatever the cluster setting: what the
    /// nightly job uses for everything but its features.
    pub async fn local_session(&self, model: Option<&SessionModel>) -> Result<SessionContext> {
        let mut state = SessionStateBuilder::new()
            .with_config(self.session_config())
            .with_default_features();
        if let Some(limit) = self.memory_limit {
            let runtime = RuntimeEnvBuilder::new()
                .with_memory_limit(limit.0, 1.0)
                .build_arc()?;
            state = state.with_runtime_env(runtime);
        }
        // Merges in customer order let their inputs read ahead ([`ScanAhead`]).
        if let Some(rule) = ScanAhead::within(self.memory_limit) {
            state = state.with_physical_optimizer_rule(Arc::new(rule));
        }
        // Joins whose probe side is in key order walk it instead of hashing ([`JoinInKeyOrder`]).
        state = state.with_physical_optimizer_rule(Arc::new(JoinInKeyOrder));
        // Partial aggregates into few groups find them by numbers ([`FewGroups`]).
        state = state.with_physical_optimizer_rule(Arc::new(FewGroups::default()));
        // Filters of a few plain comparisons evaluate every term whole ([`CheapFilters`]).
        state = state.with_physical_optimizer_rule(Arc::new(CheapFilters));
        // Joins' string views compacted as they leave them ([`CompactViews`]).
        state = state.with_physical_optimizer_rule(Arc::new(CompactViews));
        let ctx = SessionContext::new_with_state(state.build());
        if let Some(limit) = self.memory_limit {
            memory::guard_functions(&ctx, limit);
        }
        self.register_all(ctx, model).await
    }

    /// The configuration of every session over this warehouse: the information schema,
    /// arq's catalog and join settings, and its feature slice
    /// ([`Warehouse::with_feature_slice`]).
    pub fn session_config(&self) -> SessionConfig {
        session_config().with_extension(Arc::new(arq_models::features::FeatureSlice(
            self.feature_slice,
        )))
    }

    /// Registers arq's functions (the model's too, when given), every table and the
    /// views in `ctx`, which has [`Warehouse::session_config`]'s catalog: what [`Warehouse::session`]
    /// does after creating the context, for a caller that prepares it first (`arq
    /// serve` registers the Postgres catalog and functions before arq's, so that arq's
    /// names win).
    pub async fn register_all(
        &self,
        mut ctx: SessionContext,
        model: Option<&SessionModel>,
    ) -> Result<SessionContext> {
        arq_models::sql::register_session(&mut ctx, model, &self.snapshots)?;
        self.register(&ctx).await?;
        Ok(ctx)
    }

    /// A fingerprint of the warehouse's files (every table's Parquet files: path, size and
    /// modification time), to notice a new snapshot without opening every file.
    pub async fn listing_fingerprint(&self) -> Result<u64> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for table in &self.tables {
            for object in table.dir.list_all().await? {
                if is_parquet_name(object.location.filename().unwrap_or_default()) {
                    object.location.as_ref().hash(&mut hasher);
                    object.size.hash(&mut hasher);
                    object.last_modified.hash(&mut hasher);
                }
            }
        }
        Ok(hasher.finish())
    }

    /// Registers every table (as a Parquet listing table, snapshot tables partitioned
    /// by `snapshot_date` typed as a date) and the `*_latest` views in `ctx`, and the
    /// rule that answers `max`/`min(snapshot_date)` from the listing
    /// ([`crate::snapshot_bounds`]).
    pub async fn register(&self, ctx: &SessionContext) -> Result<()> {
        self.root.register(ctx);
        let mut bounds: std::collections::HashMap<String, Vec<i32>> = Default::default();
        for table in &self.tables {
            let mut options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            if table.contract.kind == TableKind::Snapshot {
                options = options
                    .with_table_partition_cols(vec![(SNAPSHOT_COLUMN.into(), DataType::Date32)]);
            }
            // Each file's orders (each column alone); DataFusion keeps one for a scan
            // only where the files of one partition do not overlap in it (by their
            // statistics), and only while the scan reads the column.
            let orders: Vec<_> = [
                (table.sorted_by_customer, SORT_COLUMN),
                (table.sorted_by_invoice, INVOICE_ORDER_COLUMN),
            ]
            .into_iter()
            .filter(|(sorted, _)| *sorted)
            .map(|(_, column)| vec![col(column).sort(true, false)])
            .collect();
            if !orders.is_empty() {
                options = options.with_file_sort_order(orders);
            }
            let url = table.dir.listing_url()?;
            if table.contract.kind == TableKind::Snapshot {
                let days = table.snapshots.iter().filter(|(_, rows)| **rows > 0);
                bounds.insert(
                    url.as_str().to_string(),
                    days.map(|(d, _)| dates::to_days(*d)).collect(),
                );
            }
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(match self.string_views {
                    true => as_string_views(&table.contract.schema),
                    false => table.contract.schema.clone(),
                });
            ctx.register_table(
                table.contract.name,
                Arc::new(ListingTable::try_new(config)?),
            )?;

            if table.contract.kind == TableKind::Snapshot {
                let view = format!(
                    "CREATE VIEW {name}_latest AS SELECT * FROM {name} \
                     WHERE {SNAPSHOT_COLUMN} = DATE '{as_of}'",
                    name = table.contract.name,
                    as_of = self.as_of.format("%Y-%m-%d"),
                );
                ctx.sql(&view).await?;
                // The complete snapshot before it, so "this month against last" is a join;
                // empty when the run's snapshot is the first.
                let previous = match self.previous_snapshot() {
                    Some(day) => format!("{SNAPSHOT_COLUMN} = DATE '{}'", day.format("%Y-%m-%d")),
                    None => "FALSE".into(),
                };
                let view = format!(
                    "CREATE VIEW {name}_previous AS SELECT * FROM {name} WHERE {previous}",
                    name = table.contract.name,
                );
                ctx.sql(&view).await?;
            }
        }
        for (name, table) in &self.derived {
            ctx.register_table(*name, table.clone())?;
        }
        ctx.add_analyzer_rule(Arc::new(SnapshotBounds::new(bounds)));
        Ok(())
    }
}

/// The text columns read as string views by [`Warehouse::with_string_views`]: the codes
/// and the customer and collector ids, which a view holds inline (up to 12 bytes; the
/// generator's customer ids have 8), and the segment and region, a handful of values
/// kept in Parquet's dictionary pages, which views point into instead of copying each
/// row's string (customers over time 0.30 → 0.24 s at 1 M, benches/README.md). Longer
/// text — invoice, payment and activity ids (16–18 bytes), names, contacts — stays
/// `Utf8`: a view of it points into a buffer, and hashing it for a join costs more than a
/// plain string does (the 24 M payments of a quarter joined to 132 M invoices on
/// `invoice_id`: 12 % slower as views).
pub const VIEW_COLUMNS: [&str; 7] = [
    "customer_id",
    "collector_id",
    "currency",
    "kind",
    "role",
    "segment",
    "region",
];

/// `schema` with its `Utf8` fields named in [`VIEW_COLUMNS`] as `Utf8View`.
fn as_string_views(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 if VIEW_COLUMNS.contains(&f.name().as_str()) => {
                Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View))
            }
            _ => Arc::clone(f),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// What every session over a warehouse is configured with, the feature slice aside
/// ([`Warehouse::session_config`]): the information schema, the tables in catalog `arq`,
/// schema `warehouse`, and hash joins whose smaller side has fewer than
/// [`WHOLE_BUILD_ROWS`] rows built once from that whole side.
fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(CATALOG, SCHEMA);
    config
        .options_mut()
        .optimizer
        .hash_join_single_partition_threshold_rows = WHOLE_BUILD_ROWS;
    config
}

/// A hash join whose smaller side (by the files' row counts; Parquet gives no byte
/// size) is under this many rows builds its table once from that whole side, and the
/// larger side is probed as it is read, not hash-partitioned first: a snapshot's
/// customers (a million at the largest size measured) joined to its open items (ten
/// million) no longer sends the ten million through a repartition. DataFusion's default
/// (128 K rows) suits many cores building in parallel. Measured at a million customers
/// (benches/README.md, the analyst's queries): the aging by segment 1.21–1.30 s of CPU →
/// 1.04–1.10 s and 10 % less time, by collector 16 % less; where both sides are about a
/// million rows the single build makes a query 6–9 % slower alone. The report, whose
/// queries overlap on both cores, counts the CPU saved.
pub const WHOLE_BUILD_ROWS: usize = 2_000_000;

/// The catalog and schema of the warehouse's tables.
pub const CATALOG: &str = "arq";
pub const SCHEMA: &str = "warehouse";

/// A table's Parquet files (hidden files and `_`-prefixed markers are skipped) and, for
/// snapshot tables, the `snapshot_date=YYYY-MM-DD` partition of each.
async fn list_table_files(
    contract: &TableContract,
    dir: &Location,
    listing: Listing,
) -> Result<Vec<WarehouseFile>> {
    let table_error = |message: String| ArqError::Table {
        table: contract.name.into(),
        message,
    };
    let visible = |name: &str| !name.starts_with('.') && !name.starts_with('_');
    let mut files = Vec::new();
    for folder in listing.folders.iter().filter(|n| visible(n)) {
        if contract.kind != TableKind::Snapshot {
            return Err(table_error(format!(
                "unexpected folder {}/{folder} ({} tables keep their Parquet files directly in {dir})",
                dir,
                contract.kind.as_str(),
            )));
        }
        let date = folder
            .strip_prefix(&format!("{SNAPSHOT_COLUMN}="))
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .ok_or_else(|| {
                table_error(format!(
                    "folder {dir}/{folder} is not a snapshot partition \
                     (expected {SNAPSHOT_COLUMN}=YYYY-MM-DD)"
                ))
            })?;
        let inside = dir.join(folder).list().await?.unwrap_or_default();
        for meta in inside.files {
            if is_parquet_name(meta.location.filename().unwrap_or_default()) {
                files.push(WarehouseFile {
                    meta,
                    snapshot: Some(date),
                });
            }
        }
    }
    for meta in listing.files {
        let name = meta.location.filename().unwrap_or_default().to_string();
        if !is_parquet_name(&name) {
            continue;
        }
        if contract.kind == TableKind::Snapshot {
            return Err(table_error(format!(
                "file {dir}/{name} is outside any {SNAPSHOT_COLUMN}=YYYY-MM-DD folder"
            )));
        }
        files.push(WarehouseFile {
            meta,
            snapshot: None,
        });
    }
    files.sort_by(|a, b| a.meta.location.cmp(&b.meta.location));
    Ok(files)
}

fn is_parquet_name(name: &str) -> bool {
    name.ends_with(".parquet") && !name.starts_with('.') && !name.starts_with('_')
}

/// Reads a file's footer and checks that every contract column is there with the
/// contract's type (extra columns are allowed, and not visible through SQL); returns the
/// file's number of rows and whether it is in order of customers and of invoices.
async fn check_file_schema(
    contract: &TableContract,
    root: &Location,
    meta: &ObjectMeta,
) -> Result<(u64, [bool; 2])> {
    let file_error = |message: String| ArqError::TableFile {
        table: contract.name.into(),
        file: PathBuf::from(root.show(&meta.location)),
        message,
    };
    let mut reader = StoreReader::new(root.store().clone(), meta.clone());
    let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
        .await
        .map_err(|e| {
            parquet_error(&root.show(&meta.location), e, |e| {
                file_error(format!("not a readable Parquet file: {e}"))
            })
        })?;
    let found = metadata.schema();
    for wanted in contract.schema.fields() {
        match found.field_with_name(wanted.name()) {
            Err(_) if contract::OPTIONAL_COLUMNS.contains(&wanted.name().as_str()) => {}
            Err(_) => {
                return Err(file_error(format!(
                    "column `{}` is missing (the contract requires {})",
                    wanted.name(),
                    wanted.data_type()
                )));
            }
            Ok(field) if !contract::type_satisfies(field.data_type(), wanted.data_type()) => {
                return Err(file_error(format!(
                    "column `{}` has type {}, the contract requires {}",
                    wanted.name(),
                    field.data_type(),
                    wanted.data_type()
                )));
            }
            Ok(_) => {}
        }
    }
    if contract.kind == TableKind::Snapshot && found.field_with_name(SNAPSHOT_COLUMN).is_ok() {
        return Err(file_error(format!(
            "column `{SNAPSHOT_COLUMN}` is stored in the file; it must come only from the \
             folder name {SNAPSHOT_COLUMN}=YYYY-MM-DD"
        )));
    }
    let metadata = metadata.metadata();
    Ok((
        metadata.file_metadata().num_rows().max(0) as u64,
        [
            ascending_by(metadata, SORT_COLUMN),
            ascending_by(metadata, INVOICE_ORDER_COLUMN),
        ],
    ))
}

/// Whether a file's rows are in ascending order of text `column`, taken alone: its
/// writer says so — every row group names the column as its first sorting column
/// (Parquet `sorting_columns`), or the file lists it under [`ASCENDING_KEY`] (what
/// `arq generate` writes of invoice ids, see [`INVOICE_ORDER_COLUMN`]) — and the row
/// groups' min/max statistics of the column follow each other without overlap (what can
/// be checked without reading the rows). A file that says nothing is taken as unsorted:
/// it is read as before, only slower.
fn ascending_by(metadata: &ParquetMetaData, column: &str) -> bool {
    let schema = metadata.file_metadata().schema_descr();
    let Some(index) = schema
        .columns()
        .iter()
        .position(|c| c.path().parts() == [column])
    else {
        return false;
    };
    let listed = metadata
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter(|kv| kv.key == ASCENDING_KEY)
        .filter_map(|kv| kv.value.as_deref())
        .any(|columns| columns.split(',').any(|c| c.trim() == column));
    let mut previous_max: Option<Vec<u8>> = None;
    for group in metadata.row_groups() {
        let declared = listed
            || group
                .sorting_columns()
                .and_then(|s| s.first())
                .is_some_and(|s| s.column_idx as usize == index && !s.descending);
        let Some(Statistics::ByteArray(stats)) = group.column(index).statistics() else {
            return false;
        };
        let (Some(min), Some(max)) = (stats.min_opt(), stats.max_opt()) else {
            return false;
        };
        if !declared
            || stats.null_count_opt() != Some(0)
            || previous_max.as_deref().is_some_and(|p| p > min.data())
        {
            return false;
        }
        previous_max = Some(max.data().to_vec());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `ids` in row groups of two, declaring `sorted` or nothing.
    fn metadata_of(ids: &[&str], declared: bool) -> ParquetMetaData {
        written(SORT_COLUMN, ids, declared, None)
    }

    /// A file of columns `x` and `column`, both `ids`, in row groups of two; `column`
    /// declared as the first sorting column or not, and `listed` under [`ASCENDING_KEY`].
    fn written(
        column: &str,
        ids: &[&str],
        declared: bool,
        listed: Option<&str>,
    ) -> ParquetMetaData {
        use datafusion::arrow::array::{RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{Field, Schema};
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::file::metadata::{KeyValue, SortingColumn};
        use datafusion::parquet::file::properties::WriterProperties;
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Utf8, false),
            Field::new(column, DataType::Utf8, false),
        ]));
        let values = Arc::new(StringArray::from(ids.to_vec()));
        let batch = RecordBatch::try_new(schema.clone(), vec![values.clone(), values]).unwrap();
        let mut props = WriterProperties::builder().set_max_row_group_row_count(Some(2));
        if declared {
            props = props.set_sorting_columns(Some(vec![SortingColumn {
                column_idx: 1,
                descending: false,
                nulls_first: false,
            }]));
        }
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(props.build())).unwrap();
        writer.write(&batch).unwrap();
        if let Some(listed) = listed {
            writer
                .append_key_value_metadata(KeyValue::new(ASCENDING_KEY.into(), listed.to_string()));
        }
        writer.close().unwrap();
        datafusion::parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&bytes::Bytes::from(bytes))
            .unwrap()
    }

    #[test]
    fn a_sort_order_is_declared_only_where_the_file_says_so_and_the_statistics_agree() {
        let by_customer = |m: &ParquetMetaData| ascending_by(m, SORT_COLUMN);
        let sorted = ["C1", "C1", "C2", "C3", "C3", "C4"];
        assert!(by_customer(&metadata_of(&sorted, true)));
        // Not declared: unsorted as far as arq knows.
        assert!(!by_customer(&metadata_of(&sorted, false)));
        // Declared, but the second row group starts below the first one's end.
        let overlapping = ["C1", "C5", "C2", "C3", "C6", "C7"];
        assert!(!by_customer(&metadata_of(&overlapping, true)));
        // Touching at a boundary (one customer across two row groups) is sorted.
        let touching = ["C1", "C2", "C2", "C3"];
        assert!(by_customer(&metadata_of(&touching, true)));
    }

    #[test]
    fn the_invoice_order_counts_where_the_file_lists_it_and_the_statistics_agree() {
        let invoice = INVOICE_ORDER_COLUMN;
        let file = |ids: &[&str], listed| written(invoice, ids, false, listed);
        let sorted = ["INV-1", "INV-1", "INV-2", "INV-3"];
        assert!(ascending_by(&file(&sorted, Some(invoice)), invoice));
        assert!(ascending_by(
            &file(&sorted, Some("customer_id, invoice_id")),
            invoice
        ));
        // Not listed, or another column listed: unsorted as far as arq knows.
        assert!(!ascending_by(&file(&sorted, None), invoice));
        assert!(!ascending_by(&file(&sorted, Some("customer_id")), invoice));
        // Listed, but the row groups' statistics overlap.
        let overlapping = ["INV-1", "INV-5", "INV-2", "INV-3"];
        assert!(!ascending_by(&file(&overlapping, Some(invoice)), invoice));
        // Listed for a column the file does not have.
        assert!(!ascending_by(&metadata_of(&sorted, false), invoice));
        // The customer order declared by `sorting_columns` says nothing of invoices.
        assert!(!ascending_by(
            &written(SORT_COLUMN, &sorted, true, None),
            invoice
        ));
    }

    #[test]
    fn as_of_parses_dates_and_latest() {
        assert_eq!("latest".parse::<AsOf>(), Ok(AsOf::Latest));
        assert_eq!(
            "2026-02-28".parse::<AsOf>(),
            Ok(AsOf::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()))
        );
        assert!("2026-02-30".parse::<AsOf>().is_err());
        assert!("yesterday".parse::<AsOf>().is_err());
    }
}
