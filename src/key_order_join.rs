//! Joins whose probe side arrives in key order, by a walk instead of a hash table.
//!
//! The warehouse declares its tables' order by `customer_id` where the files say so
//! (`Warehouse::register`), and most of an analyst's joins and the nightly's are on it:
//! the open items of a snapshot to its customers, a customer's aggregates to the
//! customer. DataFusion plans them as hash joins that collect the smaller side (the
//! build side) into a hash table and look up every row of the other (the probe side): at
//! a million customers and 9.5 M open items, `perf record` of the aging report shows
//! the chain lookups of the hash map alone at 24 % of the CPU, each probe row a random
//! access into a table of a million keys.
//!
//! [`JoinInKeyOrder`] replaces such a join ([`HashJoinExec`], build side collected whole
//! or both sides partitioned by the keys' hash, equality keys and no other condition) by
//! [`KeyOrderJoinExec`] when each partition of the probe side is in ascending order of one
//! of the keys: the build side is collected as the hash join would, its rows are sorted by
//! that key once (text of up to 15 bytes, or of one width of 16 bytes — invoice ids —,
//! integers and dates packed into one `u128` that sorts as the key does, other text
//! compared by Arrow's comparators; Rust's merge sort takes the sorted runs the partitions
//! come in), and each probe partition walks forward through them — a row whose key equals
//! the row before it reuses its matches, a larger key gallops ahead. The other keys are
//! compared on the rows found. The rows are those of the hash join, in the probe side's
//! order; a probe row's several matches come in the build side's order (the hash join's in
//! another: SQL promises neither).
//!
//! A join of hash partitions whose two sides are each in key order before their
//! repartitioning (payments and their invoices, both in invoice order) loses the order to
//! the repartitioning: such a join is walked with its build side collected whole and the
//! repartitioning gone, where nothing above needs the join's hash partitions (checked by
//! DataFusion's `SanityCheckPlan` on the plan with and without it).
//!
//! The walk is exact whatever the order: a key smaller than the one before it (a probe
//! side not in order after all) is found by a binary search from the start. Inner, right,
//! right semi and right anti joins only (the kinds that keep the probe side's rows and
//! need nothing of the build side's unmatched rows); keys of text, integer or date type
//! of the same type on both sides; NULL keys match nothing, as in SQL. Sessions on a
//! cluster do not get the rule (the scheduler plans their queries).

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanBufferBuilder, DynComparator, RecordBatch, RecordBatchOptions,
    UInt32Array, make_comparator,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::{SortOptions, concat, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{JoinSide, JoinType, NullEquality, Statistics};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{PhysicalExpr, PhysicalExprRef, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::sanity_checker::SanityCheckPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::joins::utils::{ColumnIndex, build_join_schema};
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, Time,
};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, collect_partitioned,
    common,
};
use futures::StreamExt;
use tokio::sync::OnceCell;

/// The physical optimizer rule (runs after DataFusion's own rules): each hash join that
/// [`KeyOrderJoinExec`] can run, run by it.
#[derive(Debug, Default)]
pub struct JoinInKeyOrder;

impl PhysicalOptimizerRule for JoinInKeyOrder {
    fn name(&self) -> &str {
        "arq_join_in_key_order"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Joins of hash partitions whose sides both arrive in key order, one at a time:
        // each kept only where the plan still gives every operator the partitioning and
        // order it requires (an aggregate above may count on the join's hash partitions).
        let mut plan = plan;
        let mut skipped = 0;
        loop {
            let mut seen = 0;
            let candidate = Arc::clone(&plan).transform_up(|node| {
                if seen > skipped {
                    return Ok(Transformed::no(node));
                }
                match collected(&node)? {
                    Some(walk) if seen == skipped => {
                        seen += 1;
                        Ok(Transformed::yes(walk))
                    }
                    Some(_) => {
                        seen += 1;
                        Ok(Transformed::no(node))
                    }
                    None => Ok(Transformed::no(node)),
                }
            })?;
            if !candidate.transformed {
                break;
            }
            match SanityCheckPlan::new().optimize(Arc::clone(&candidate.data), config) {
                Ok(_) => plan = candidate.data,
                Err(_) => skipped += 1,
            }
        }
        Ok(plan
            .transform_up(|node| match KeyOrderJoinExec::try_new(&node)? {
                Some(join) => Ok(Transformed::yes(Arc::new(join) as Arc<dyn ExecutionPlan>)),
                None => Ok(Transformed::no(node)),
            })?
            .data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A hash join of hash partitions whose two sides, before they are repartitioned, each
/// arrive in ascending order of the key the walk would follow (invoices and their
/// payments, both in invoice order): walked with its build side collected whole instead,
/// the repartitioning of both sides gone. The build side holds the same rows as its hash
/// partitions did together, and arrives sorted or in sorted runs (one per partition); the
/// output keeps the probe side's partitions (not the keys' hash, which the
/// caller checks nothing above needed).
fn collected(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(hash) = plan
        .downcast_ref::<HashJoinExec>()
        .filter(|h| *h.partition_mode() == PartitionMode::Partitioned)
    else {
        return Ok(None);
    };
    let unpartitioned = |side: &Arc<dyn ExecutionPlan>| {
        side.downcast_ref::<RepartitionExec>()
            .filter(|r| matches!(r.partitioning(), Partitioning::Hash(..)))
            .map(|r| Arc::clone(r.input()))
    };
    let (Some(build), Some(probe)) = (unpartitioned(hash.left()), unpartitioned(hash.right()))
    else {
        return Ok(None);
    };
    let whole: Arc<dyn ExecutionPlan> = Arc::new(
        hash.builder()
            .with_partition_mode(PartitionMode::CollectLeft)
            .with_new_children(vec![Arc::clone(&build), probe])?
            .recompute_properties()
            .reset_state()
            .build()?,
    );
    let Some(walk) = KeyOrderJoinExec::try_new(&whole)? else {
        return Ok(None);
    };
    if !ascending_in(&build, &walk.keys.0)? {
        return Ok(None);
    }
    Ok(Some(Arc::new(walk)))
}

/// Whether each partition of `plan` is in ascending order of `key` (NULLs first or last).
pub(crate) fn ascending_in(plan: &Arc<dyn ExecutionPlan>, key: &PhysicalExprRef) -> Result<bool> {
    let order = plan.properties().equivalence_properties();
    for nulls_first in [false, true] {
        let sort = PhysicalSortExpr {
            expr: Arc::clone(key),
            options: SortOptions {
                descending: false,
                nulls_first,
            },
        };
        if order.ordering_satisfy([sort])? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the walk can compare keys of this type as the probe side's order sorts them
/// (bytes of text, numbers, days).
pub(crate) fn walkable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::Utf8View
            | DataType::LargeUtf8
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Date32
            | DataType::Date64
    )
}

/// A hash join run as a walk of its probe side in key order (see the module's comment).
/// It keeps the hash join it replaces: its children, keys, kind, projection and plan
/// properties are that join's.
pub struct KeyOrderJoinExec {
    join: Arc<dyn ExecutionPlan>,
    /// The build side's key the walk follows and the probe side's.
    keys: (PhysicalExprRef, PhysicalExprRef),
    /// The other keys (build side, probe side), compared on the rows the walk finds.
    others: Vec<(PhysicalExprRef, PhysicalExprRef)>,
    join_type: JoinType,
    /// Where each output column comes from: the join's columns, projected.
    columns: Vec<ColumnIndex>,
    /// The build side collected whole, shared by the probe partitions (mode
    /// `CollectLeft`); in mode `Partitioned` each probe partition collects the build
    /// side's partition of the same number (both are partitioned by the keys' hash).
    build: Arc<OnceCell<Arc<Build>>>,
    partitioned: bool,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for KeyOrderJoinExec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("KeyOrderJoinExec")
            .field("join_type", &self.join_type)
            .field("keys", &self.keys)
            .finish()
    }
}

impl KeyOrderJoinExec {
    /// The walk in place of `plan` when `plan` is a hash join it can run; None otherwise.
    pub fn try_new(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Self>> {
        let Some(hash) = plan.downcast_ref::<HashJoinExec>() else {
            return Ok(None);
        };
        let join_type = *hash.join_type();
        let kind_ok = matches!(
            join_type,
            JoinType::Inner | JoinType::Right | JoinType::RightSemi | JoinType::RightAnti
        );
        if !kind_ok
            || !matches!(
                hash.partition_mode(),
                PartitionMode::CollectLeft | PartitionMode::Partitioned
            )
            || hash.filter().is_some()
            || hash.null_equality() != NullEquality::NullEqualsNothing
            || hash.null_aware
            || hash.fetch().is_some()
        {
            return Ok(None);
        }
        let (left, right) = (hash.left(), hash.right());
        // Every key of one type on both sides, a type the walk compares.
        for (b, p) in hash.on() {
            let t = b.data_type(&left.schema())?;
            if t != p.data_type(&right.schema())? || !walkable(&t) {
                return Ok(None);
            }
        }
        // The walk follows the first key the probe side is in ascending order of; the
        // others are compared on the rows it finds.
        let mut walked = None;
        for (i, (_, p)) in hash.on().iter().enumerate() {
            if ascending_in(right, p)? {
                walked = Some(i);
                break;
            }
        }
        let Some(walked) = walked else {
            return Ok(None);
        };
        let mut on = hash.on().to_vec();
        let (build_key, probe_key) = on.remove(walked);
        let (_, joined) = build_join_schema(&left.schema(), &right.schema(), &join_type);
        let columns = match &hash.projection {
            Some(p) => p.iter().map(|&i| joined[i].clone()).collect(),
            None => joined,
        };
        Ok(Some(KeyOrderJoinExec {
            join: Arc::clone(plan),
            keys: (build_key, probe_key),
            others: on,
            join_type,
            columns,
            build: Arc::new(OnceCell::new()),
            partitioned: *hash.partition_mode() == PartitionMode::Partitioned,
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn build_side(&self) -> &Arc<dyn ExecutionPlan> {
        self.join.children()[0]
    }

    fn probe_side(&self) -> &Arc<dyn ExecutionPlan> {
        self.join.children()[1]
    }
}

impl DisplayAs for KeyOrderJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "KeyOrderJoinExec: mode={}, join_type={:?}, on=[({}, {})",
            if self.partitioned {
                "Partitioned"
            } else {
                "CollectLeft"
            },
            self.join_type,
            self.keys.0,
            self.keys.1
        )?;
        for (b, p) in &self.others {
            write!(f, ", ({b}, {p})")?;
        }
        write!(f, "]")
    }
}

impl ExecutionPlan for KeyOrderJoinExec {
    fn name(&self) -> &str {
        "KeyOrderJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.join.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.join.maintains_input_order()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.join.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let others = self.others.iter().flat_map(|(b, p)| [b, p]);
        for key in [&self.keys.0, &self.keys.1].into_iter().chain(others) {
            if f(key)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // The hash join with the new children; walked again if the new probe side is
        // still in key order, else the hash join itself.
        let join = Arc::clone(&self.join).replace_children(children, options)?;
        Ok(match KeyOrderJoinExec::try_new(&join)? {
            Some(walk) => Arc::new(walk),
            None => join,
        })
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    // The hash join's statistics: the same rows.
    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        self.join.child_stats_requests(partition)
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.join.statistics_from_inputs(input_stats, args)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let probe = self.probe_side().execute(partition, Arc::clone(&context))?;
        let walk = Walk {
            build_plan: Arc::clone(self.build_side()),
            build_key: Arc::clone(&self.keys.0),
            probe_key: Arc::clone(&self.keys.1),
            others: self.others.clone(),
            // A cell of its own for a partition's build side.
            cell: match self.partitioned {
                true => Arc::new(OnceCell::new()),
                false => Arc::clone(&self.build),
            },
            build_partition: self.partitioned.then_some(partition),
            context: Arc::clone(&context),
            probe,
            join_type: self.join_type,
            columns: self.columns.clone(),
            schema: self.schema(),
            batch_size: context.session_config().batch_size(),
            cursor: 0,
            previous: Previous::default(),
            ready: VecDeque::new(),
            baseline: BaselineMetrics::new(&self.metrics, partition),
            build_time: MetricBuilder::new(&self.metrics).subset_time("build_time", partition),
        };
        let stream = futures::stream::try_unfold(walk, |mut walk| async move {
            Ok(walk.next_batch().await?.map(|batch| (batch, walk)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }
}

/// A key as one number that sorts as the key does: text as its bytes (big-endian,
/// zero-padded; see [`Packing`]), integers and dates offset to sort unsigned.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Packed(u128);

/// A key of a row: NULL, one that does not pack (too long, or not of the build side's
/// width), or packed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Null,
    Long,
    Packed(Packed),
}

/// How text packs. `Lengths`: text of at most 15 bytes as its bytes and then its length —
/// a prefix sorts before what it prefixes, as bytes do. `Sixteen`: text of exactly 16
/// bytes as its bytes alone, for a build side whose keys all have that width (invoice ids:
/// `INV-0000042-0001`); text of another width matches none of them and does not pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Packing {
    Lengths,
    Sixteen,
}

fn pack_bytes(b: &[u8], packing: Packing) -> Key {
    let mut buf = [0u8; 16];
    match packing {
        Packing::Lengths if b.len() <= 15 => buf[15] = b.len() as u8,
        Packing::Sixteen if b.len() == 16 => {}
        _ => return Key::Long,
    }
    buf[..b.len()].copy_from_slice(b);
    Key::Packed(Packed(u128::from_be_bytes(buf)))
}

fn pack_signed(v: i64) -> Key {
    Key::Packed(Packed((i128::from(v) as u128) ^ (1u128 << 127)))
}

/// The text of a string view of at most 12 bytes (kept inside the view, zero-padded),
/// packed.
fn pack_inline(view: u128, len: usize, packing: Packing) -> Key {
    let bytes = view.to_le_bytes();
    let mut buf = [0u8; 16];
    match packing {
        Packing::Lengths => buf[15] = len as u8,
        // At most 12 bytes: never sixteen.
        Packing::Sixteen => return Key::Long,
    }
    buf[..12].copy_from_slice(&bytes[4..16]);
    Key::Packed(Packed(u128::from_be_bytes(buf)))
}

/// The width of every non-NULL text key of `arrays`, where they all have one of at most
/// 16 bytes.
fn one_width(arrays: &[ArrayRef]) -> Option<usize> {
    let mut width = None;
    for keys in arrays {
        for len in text_lengths(keys.as_ref())? {
            if len > 16 || width.is_some_and(|w| w != len) {
                return None;
            }
            width = Some(len);
        }
    }
    width
}

/// The byte length of each non-NULL value of text `keys` (None for another type).
fn text_lengths(keys: &dyn Array) -> Option<Box<dyn Iterator<Item = usize> + '_>> {
    use datafusion::arrow::array::AsArray;
    Some(match keys.data_type() {
        DataType::Utf8View => Box::new(keys.as_string_view().iter().flatten().map(str::len)),
        DataType::Utf8 => Box::new(keys.as_string::<i32>().iter().flatten().map(str::len)),
        DataType::LargeUtf8 => Box::new(keys.as_string::<i64>().iter().flatten().map(str::len)),
        _ => return None,
    })
}

/// `f` of each row of `keys` (a [`walkable`] type) and its key, in row order.
fn for_each_key(keys: &dyn Array, packing: Packing, mut f: impl FnMut(usize, Key)) -> Result<()> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes as t;
    /// `f` of each row and `key` of it (NULL where `nulls` says so).
    fn rows<F: FnMut(usize, Key)>(
        n: usize,
        nulls: Option<&NullBuffer>,
        key: impl Fn(usize) -> Key,
        f: &mut F,
    ) {
        match nulls {
            None => (0..n).for_each(|r| f(r, key(r))),
            Some(nulls) => {
                (0..n).for_each(|r| f(r, if nulls.is_valid(r) { key(r) } else { Key::Null }))
            }
        }
    }
    let (n, nulls) = (keys.len(), keys.logical_nulls());
    let nulls = nulls.as_ref();
    let unsigned = |v: u64| Key::Packed(Packed(u128::from(v)));
    macro_rules! primitives {
        ($type:ty, $pack:expr) => {{
            let a = keys.as_primitive::<$type>();
            rows(n, nulls, |r| $pack(a.value(r)), &mut f)
        }};
    }
    match keys.data_type() {
        DataType::Utf8View => {
            let a = keys.as_string_view();
            let views = a.views();
            rows(
                n,
                nulls,
                |r| {
                    let len = views[r] as u32 as usize;
                    if len <= 12 {
                        pack_inline(views[r], len, packing)
                    } else {
                        pack_bytes(a.value(r).as_bytes(), packing)
                    }
                },
                &mut f,
            )
        }
        DataType::Utf8 => {
            let a = keys.as_string::<i32>();
            rows(
                n,
                nulls,
                |r| pack_bytes(a.value(r).as_bytes(), packing),
                &mut f,
            )
        }
        DataType::LargeUtf8 => {
            let a = keys.as_string::<i64>();
            rows(
                n,
                nulls,
                |r| pack_bytes(a.value(r).as_bytes(), packing),
                &mut f,
            )
        }
        // Integers and dates: each arm the type's values through `pack` as 64 bits.
        DataType::Int8 => primitives!(t::Int8Type, |v| pack_signed(i64::from(v))),
        DataType::Int16 => primitives!(t::Int16Type, |v| pack_signed(i64::from(v))),
        DataType::Int32 => primitives!(t::Int32Type, |v| pack_signed(i64::from(v))),
        DataType::Int64 => primitives!(t::Int64Type, pack_signed),
        DataType::Date32 => primitives!(t::Date32Type, |v| pack_signed(i64::from(v))),
        DataType::Date64 => primitives!(t::Date64Type, pack_signed),
        DataType::UInt8 => primitives!(t::UInt8Type, |v| unsigned(u64::from(v))),
        DataType::UInt16 => primitives!(t::UInt16Type, |v| unsigned(u64::from(v))),
        DataType::UInt32 => primitives!(t::UInt32Type, |v| unsigned(u64::from(v))),
        DataType::UInt64 => primitives!(t::UInt64Type, unsigned),
        other => {
            return Err(DataFusionError::Internal(format!(
                "KeyOrderJoinExec: keys of type {other}"
            )));
        }
    }
    Ok(())
}

/// The build side, collected: the columns the output takes from it (each in one array),
/// and the rows whose key is not NULL in key order with their keys — packed where every
/// key packs, else compared as values.
struct Build {
    /// Each column of the build side's schema the output takes, concatenated; None for
    /// the others (the key itself is often one: it is packed batch by batch instead).
    columns: Vec<Option<ArrayRef>>,
    /// The other keys of every row.
    others: Vec<ArrayRef>,
    order: Vec<u32>,
    sorted: Sorted,
    _reservation: MemoryReservation,
}

enum Sorted {
    /// `Build::order`'s keys, packed as the probe side's must be.
    Packed(Vec<Packed>, Packing),
    /// The build side's keys (some too long to pack), compared by Arrow's comparators.
    Values(ArrayRef),
}

async fn collect_build(
    plan: Arc<dyn ExecutionPlan>,
    partition: Option<usize>,
    key: PhysicalExprRef,
    others: Vec<PhysicalExprRef>,
    needed: Vec<usize>,
    context: Arc<TaskContext>,
) -> Result<Arc<Build>> {
    let reservation =
        MemoryConsumer::new("KeyOrderJoinExec[build]").register(context.memory_pool());
    // Each partition's batches together, the partitions in order: a build side whose
    // partitions are each in key order (and, read from files in key order, in ascending
    // ranges) comes sorted, or in as many sorted runs as it has partitions. A side
    // collected whole is planned under a `CoalescePartitionsExec`, which hands the
    // partitions' batches on as they come, interleaved (a million customers: 124 runs of
    // 8,192 rows, sorted again on every query, 7-10 % of the CPU of the analyst's top
    // overdue customers); the partitions under it are collected instead — the same rows,
    // in one order whatever the threads' timing.
    let batches = match partition {
        None => {
            let partitions = match plan.downcast_ref::<CoalescePartitionsExec>() {
                Some(coalesce) if coalesce.fetch().is_none() => Arc::clone(coalesce.input()),
                _ => Arc::clone(&plan),
            };
            collect_partitioned(partitions, context)
                .await?
                .into_iter()
                .flatten()
                .collect()
        }
        Some(p) => common::collect(plan.execute(p, context)?).await?,
    };
    let size: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    reservation.try_grow(size)?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let rows = u32::try_from(rows).map_err(|_| {
        DataFusionError::Execution(format!(
            "KeyOrderJoinExec: a build side of {rows} rows (at most {})",
            u32::MAX
        ))
    })?;
    // The columns the output takes, each in one array; the keys batch by batch.
    let concatenated = |column: &dyn Fn(&RecordBatch) -> Result<ArrayRef>| -> Result<ArrayRef> {
        let arrays = batches.iter().map(column).collect::<Result<Vec<_>>>()?;
        let arrays: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
        match arrays.is_empty() {
            // No batches: the column of no rows, typed.
            true => column(&RecordBatch::new_empty(plan.schema())),
            false => Ok(concat(&arrays)?),
        }
    };
    let columns = (0..plan.schema().fields().len())
        .map(|i| match needed.contains(&i) {
            true => concatenated(&|b: &RecordBatch| Ok(Arc::clone(b.column(i)))).map(Some),
            false => Ok(None),
        })
        .collect::<Result<Vec<_>>>()?;
    let others = others
        .iter()
        .map(|k| concatenated(&|b: &RecordBatch| k.evaluate(b)?.into_array(b.num_rows())))
        .collect::<Result<Vec<_>>>()?;
    let keys = batches
        .iter()
        .map(|b| key.evaluate(b)?.into_array(b.num_rows()))
        .collect::<Result<Vec<_>>>()?;
    drop(batches);
    // Text of one width of 16 bytes packs only by width; all else by length first.
    let packing = match one_width(&keys) {
        Some(16) => Packing::Sixteen,
        _ => Packing::Lengths,
    };
    // Each row's key packed (NULLs as 0: they are left out of the order), and whether
    // one did not pack.
    let mut packed: Vec<Packed> = Vec::with_capacity(rows as usize);
    let mut order: Vec<u32> = Vec::with_capacity(rows as usize);
    let mut unpacked = false;
    for array in &keys {
        let offset = packed.len() as u32;
        for_each_key(array.as_ref(), packing, |row, key| {
            packed.push(match key {
                Key::Packed(p) => {
                    order.push(offset + row as u32);
                    p
                }
                Key::Long => {
                    unpacked = true;
                    order.push(offset + row as u32);
                    Packed(0)
                }
                Key::Null => Packed(0),
            })
        })?;
    }
    let columns_size: usize = columns
        .iter()
        .flatten()
        .map(|c| c.get_array_memory_size())
        .sum();
    reservation.try_resize(columns_size + order.len() * (4 + std::mem::size_of::<Packed>()))?;
    let sorted = if !unpacked {
        // A build side already in key order (read from files in that order) needs no sort.
        let in_order = order
            .windows(2)
            .all(|w| packed[w[0] as usize] <= packed[w[1] as usize]);
        if !in_order {
            // Stable, fast on the sorted runs the build side's partitions arrive in.
            order.sort_by_key(|&r| packed[r as usize]);
        }
        // Not moved and no NULLs left out: `packed` is in `order`'s order already.
        let sorted = match in_order && order.len() == packed.len() {
            true => packed,
            false => order.iter().map(|&r| packed[r as usize]).collect(),
        };
        Sorted::Packed(sorted, packing)
    } else {
        drop(packed);
        let keys: Vec<&dyn Array> = keys.iter().map(|a| a.as_ref()).collect();
        let keys = concat(&keys)?;
        let cmp = make_comparator(keys.as_ref(), keys.as_ref(), SortOptions::default())?;
        order.sort_by(|&a, &b| cmp(a as usize, b as usize));
        Sorted::Values(keys)
    };
    Ok(Arc::new(Build {
        columns,
        others,
        order,
        sorted,
        _reservation: reservation,
    }))
}

/// The first place in `0..len` at or after `from` where `below` is false (`below` is
/// true up to some place and false after it): a gallop of 1, 2, 4, ... places, then a
/// binary search within the last step.
pub(crate) fn first_not_below(from: usize, len: usize, below: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut step) = (from, 1);
    while low + step <= len && below(low + step - 1) {
        low += step;
        step *= 2;
    }
    let high = (low + step).min(len);
    // Binary search in low..high.
    let (mut a, mut b) = (low, high);
    while a < b {
        let mid = a + (b - a) / 2;
        if below(mid) {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    a
}

/// The pairs of build and probe rows a batch joins into.
struct Pairs {
    join_type: JoinType,
    build: Vec<u32>,
    /// Which of `build` are rows (a right join's probe row without a match has none),
    /// kept from the first that is not.
    build_valid: Option<BooleanBufferBuilder>,
    probe: Vec<u32>,
    /// Whether every probe row so far is paired once, in order (the probe columns are
    /// then the batch's own, not taken).
    identity: bool,
}

impl Pairs {
    fn new(join_type: JoinType, rows: usize) -> Pairs {
        Pairs {
            join_type,
            build: Vec::with_capacity(rows),
            build_valid: None,
            probe: Vec::with_capacity(rows),
            identity: matches!(join_type, JoinType::Inner | JoinType::Right),
        }
    }

    /// Probe row `row` with the build rows `matches`.
    #[inline]
    fn push(&mut self, row: usize, matches: &[u32]) {
        let row32 = row as u32;
        match (self.join_type, matches.len()) {
            (JoinType::Inner | JoinType::Right, 1) => {
                self.build.push(matches[0]);
                self.probe.push(row32);
                if let Some(valid) = &mut self.build_valid {
                    valid.append(true);
                }
            }
            (JoinType::Inner, 0) => self.identity = false,
            (JoinType::Right, 0) => {
                let valid = self.build_valid.get_or_insert_with(|| {
                    let mut valid = BooleanBufferBuilder::new(self.probe.capacity());
                    valid.append_n(self.build.len(), true);
                    valid
                });
                valid.append(false);
                self.build.push(0);
                self.probe.push(row32);
            }
            (JoinType::Inner | JoinType::Right, _) => {
                self.identity = false;
                for &b in matches {
                    self.build.push(b);
                    self.probe.push(row32);
                }
                if let Some(valid) = &mut self.build_valid {
                    valid.append_n(matches.len(), true);
                }
            }
            (JoinType::RightSemi, n) if n > 0 => self.probe.push(row32),
            (JoinType::RightAnti, 0) => self.probe.push(row32),
            _ => {}
        }
    }

    /// The build rows (empty in a semi or anti join) and the probe rows.
    fn finish(self) -> (UInt32Array, UInt32Array) {
        let nulls = self.build_valid.map(|mut v| NullBuffer::new(v.finish()));
        (
            UInt32Array::new(ScalarBuffer::from(self.build), nulls),
            UInt32Array::from(self.probe),
        )
    }
}

/// The other keys of a probe batch against the build side's.
struct Others {
    probe: Vec<ArrayRef>,
    build: Vec<ArrayRef>,
    compare: Vec<DynComparator>,
    /// The rows of a probe row's matches whose other keys are equal too.
    equal: Vec<u32>,
}

impl Others {
    fn new(
        keys: &[(PhysicalExprRef, PhysicalExprRef)],
        batch: &RecordBatch,
        build: &[ArrayRef],
    ) -> Result<Others> {
        let probe = keys
            .iter()
            .map(|(_, p)| p.evaluate(batch)?.into_array(batch.num_rows()))
            .collect::<Result<Vec<_>>>()?;
        let compare = probe
            .iter()
            .zip(build)
            .map(|(p, b)| make_comparator(p.as_ref(), b.as_ref(), SortOptions::default()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Others {
            probe,
            build: build.to_vec(),
            compare,
            equal: Vec::new(),
        })
    }
}

/// Where a walk puts what it finds: each probe row's matches, kept where the other keys
/// are equal (and not NULL) too.
struct Found<'a> {
    pairs: &'a mut Pairs,
    others: &'a mut Others,
}

impl Found<'_> {
    #[inline]
    fn push(&mut self, row: usize, matches: &[u32]) {
        let o = &mut *self.others;
        if o.compare.is_empty() {
            return self.pairs.push(row, matches);
        }
        if o.probe.iter().any(|a| a.is_null(row)) {
            return self.pairs.push(row, &[]);
        }
        o.equal.clear();
        for &b in matches {
            let r = b as usize;
            let equal = o
                .build
                .iter()
                .zip(&o.compare)
                .all(|(a, compare)| a.is_valid(r) && compare(row, r) == Ordering::Equal);
            if equal {
                o.equal.push(b);
            }
        }
        self.pairs.push(row, &o.equal);
    }
}

/// The last probe key walked to (packed, or as a one-row array) and its matches (the
/// places `low..high` of `Build::order`).
#[derive(Default)]
struct Previous {
    packed: Option<Packed>,
    value: Option<ArrayRef>,
    low: usize,
    high: usize,
}

/// One probe partition's walk.
struct Walk {
    build_plan: Arc<dyn ExecutionPlan>,
    build_key: PhysicalExprRef,
    probe_key: PhysicalExprRef,
    others: Vec<(PhysicalExprRef, PhysicalExprRef)>,
    /// The build side once collected (shared by the probe partitions in mode `CollectLeft`).
    cell: Arc<OnceCell<Arc<Build>>>,
    /// The build side's partition this walk joins (mode `Partitioned`), else all of it.
    build_partition: Option<usize>,
    context: Arc<TaskContext>,
    probe: SendableRecordBatchStream,
    join_type: JoinType,
    columns: Vec<ColumnIndex>,
    schema: SchemaRef,
    batch_size: usize,
    /// Where the walk stands in the build side's key order: every build key before it
    /// is smaller than the last probe key.
    cursor: usize,
    /// The last probe key walked to and its matches.
    previous: Previous,
    ready: VecDeque<RecordBatch>,
    baseline: BaselineMetrics,
    build_time: Time,
}

impl Walk {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                self.baseline.record_output(batch.num_rows());
                return Ok(Some(batch));
            }
            let build = match self.cell.get() {
                Some(build) => Arc::clone(build),
                None => {
                    let timer = self.build_time.timer();
                    let (plan, key, context) = (
                        Arc::clone(&self.build_plan),
                        Arc::clone(&self.build_key),
                        Arc::clone(&self.context),
                    );
                    let others = self.others.iter().map(|(b, _)| Arc::clone(b)).collect();
                    let needed = self
                        .columns
                        .iter()
                        .filter(|c| c.side == JoinSide::Left)
                        .map(|c| c.index)
                        .collect();
                    let build = Arc::clone(
                        self.cell
                            .get_or_try_init(|| {
                                collect_build(
                                    plan,
                                    self.build_partition,
                                    key,
                                    others,
                                    needed,
                                    context,
                                )
                            })
                            .await?,
                    );
                    timer.done();
                    build
                }
            };
            let Some(batch) = self.probe.next().await else {
                return Ok(None);
            };
            let batch = batch?;
            let elapsed = self.baseline.elapsed_compute().clone();
            let timer = elapsed.timer();
            let keys = self
                .probe_key
                .evaluate(&batch)?
                .into_array(batch.num_rows())?;
            let mut pairs = Pairs::new(self.join_type, batch.num_rows());
            let mut others = Others::new(&self.others, &batch, &build.others)?;
            let found = Found {
                pairs: &mut pairs,
                others: &mut others,
            };
            match &build.sorted {
                Sorted::Packed(sorted, packing) => {
                    self.walk_packed(&build.order, sorted, *packing, &keys, found)?
                }
                Sorted::Values(values) => self.walk_values(&build.order, values, &keys, found)?,
            }
            self.output(&build, &batch, pairs)?;
            timer.done();
        }
    }

    /// [`Walk::walk_values`] on keys packed as the build side's: a probe key that does
    /// not pack so matches nothing and leaves the walk where it is.
    fn walk_packed(
        &mut self,
        order: &[u32],
        sorted: &[Packed],
        packing: Packing,
        keys: &ArrayRef,
        mut found: Found,
    ) -> Result<()> {
        let (mut low, mut high) = (self.previous.low, self.previous.high);
        let mut last = self.previous.packed;
        let mut cursor = self.cursor;
        for_each_key(keys.as_ref(), packing, |row, key| {
            let Key::Packed(key) = key else {
                found.pairs.push(row, &[]);
                return;
            };
            if last != Some(key) {
                let from = match last {
                    Some(last) if key < last => 0,
                    _ => cursor,
                };
                low = first_not_below(from, sorted.len(), |p| sorted[p] < key);
                high = low;
                while high < sorted.len() && sorted[high] == key {
                    high += 1;
                }
                cursor = high;
                last = Some(key);
            }
            found.push(row, &order[low..high]);
        })?;
        self.cursor = cursor;
        self.previous = Previous {
            packed: last,
            value: None,
            low,
            high,
        };
        Ok(())
    }

    /// Each probe row of `keys` with its matches in the build side's `values` (in key
    /// order: `order`): a key equal to the one before it has its matches, a larger one is
    /// found from where the walk stands, a smaller one (a probe side not in order after
    /// all) from the start.
    fn walk_values(
        &mut self,
        order: &[u32],
        values: &ArrayRef,
        keys: &ArrayRef,
        mut found: Found,
    ) -> Result<()> {
        let to_build = make_comparator(keys.as_ref(), values.as_ref(), SortOptions::default())?;
        let to_self = make_comparator(keys.as_ref(), keys.as_ref(), SortOptions::default())?;
        let to_last = match &self.previous.value {
            Some(last) => Some(make_comparator(
                keys.as_ref(),
                last.as_ref(),
                SortOptions::default(),
            )?),
            None => None,
        };
        let (mut low, mut high) = (self.previous.low, self.previous.high);
        let mut last_row: Option<usize> = None;
        for row in 0..keys.len() {
            if keys.is_null(row) {
                found.pairs.push(row, &[]);
                continue;
            }
            let against = match last_row {
                Some(last) => Some(to_self(row, last)),
                None => to_last.as_ref().map(|c| c(row, 0)),
            };
            if against != Some(Ordering::Equal) {
                let from = match against {
                    Some(Ordering::Less) => 0,
                    _ => self.cursor,
                };
                let to = |p: usize| to_build(row, order[p] as usize);
                low = first_not_below(from, order.len(), |p| to(p) == Ordering::Greater);
                high = low;
                while high < order.len() && to(high) == Ordering::Equal {
                    high += 1;
                }
                self.cursor = high;
            }
            last_row = Some(row);
            found.push(row, &order[low..high]);
        }
        if let Some(last) = last_row {
            self.previous = Previous {
                packed: None,
                value: Some(keys.slice(last, 1)),
                low,
                high,
            };
        }
        Ok(())
    }

    /// The output columns of the pairs, in batches of at most the session's batch size.
    fn output(&mut self, build: &Build, batch: &RecordBatch, pairs: Pairs) -> Result<()> {
        let identity = pairs.identity;
        let (build_rows, probe_rows) = pairs.finish();
        let n = probe_rows.len();
        let mut start = 0;
        while start < n {
            let len = self.batch_size.min(n - start);
            let probe_part = probe_rows.slice(start, len);
            let build_part = (!build_rows.is_empty()).then(|| build_rows.slice(start, len));
            let columns = self
                .columns
                .iter()
                .map(|c| match c.side {
                    JoinSide::Left => {
                        let rows = build_part.as_ref().ok_or_else(|| {
                            DataFusionError::Internal(
                                "KeyOrderJoinExec: a build column in a semi or anti join".into(),
                            )
                        })?;
                        let column = build.columns[c.index].as_ref().ok_or_else(|| {
                            DataFusionError::Internal(
                                "KeyOrderJoinExec: a build column not collected".into(),
                            )
                        })?;
                        Ok(take(column.as_ref(), rows, None)?)
                    }
                    // Every probe row once, in order: its own columns.
                    JoinSide::Right if identity && n == batch.num_rows() => {
                        Ok(batch.column(c.index).slice(start, len))
                    }
                    JoinSide::Right => Ok(take(batch.column(c.index).as_ref(), &probe_part, None)?),
                    JoinSide::None => Err(DataFusionError::Internal(
                        "KeyOrderJoinExec: a mark column".into(),
                    )),
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            let options = RecordBatchOptions::new().with_row_count(Some(len));
            self.ready.push_back(RecordBatch::try_new_with_options(
                Arc::clone(&self.schema),
                columns,
                &options,
            )?);
            start += len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use datafusion::arrow::array::{AsArray, Int64Array, StringArray, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Int64Type, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext, col};
    use proptest::prelude::*;

    /// How the keys of the tables are written.
    #[derive(Debug, Clone, Copy)]
    enum Keys {
        /// `C007`: packed.
        Short,
        /// `CUSTOMER-NUMBER-00007`: too long to pack, compared as values.
        Long,
        /// Odd keys short, even keys long: a build side with both is compared as values, a
        /// long probe key against a packed build side matches nothing.
        Mixed,
        /// 64-bit integers, negative ones too.
        Integers,
        /// String views: odd keys inside the view (`C005`, `CUST-00007-X`: 12 bytes),
        /// others in a buffer, packed (`CUSTOMER-00008`, 14 bytes) or too long to pack.
        Views,
        /// String views of 16 bytes (`INV-0000007-0001`) packed by width, but every fifth
        /// key 15 bytes and every seventh 4 (inside the view): a build side with them is
        /// compared as values; a probe key of another width matches nothing.
        Wide,
    }

    /// A table `(k, v)` of the `keys` in partitions, each sorted by key (NULLs last)
    /// unless `shuffled`, declared sorted either way, in batches of 3 rows.
    fn table(rows: &[Vec<Option<u8>>], kind: Keys, shuffled: bool, offset: i64) -> MemTable {
        let integers = matches!(kind, Keys::Integers);
        let key_type = match kind {
            Keys::Integers => DataType::Int64,
            Keys::Views | Keys::Wide => DataType::Utf8View,
            _ => DataType::Utf8,
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", key_type, true),
            Field::new("v", DataType::Int64, false),
        ]));
        let text = |k: u8| match kind {
            Keys::Short => format!("C{k:03}"),
            Keys::Wide if k.is_multiple_of(7) => format!("I{k:03}"),
            Keys::Wide if k.is_multiple_of(5) => format!("INV-{k:07}-001"),
            Keys::Wide => format!("INV-{k:07}-0001"),
            Keys::Views if k % 4 == 3 => format!("CUST-{k:05}-X"),
            Keys::Mixed | Keys::Views if k % 2 == 1 => format!("C{k:03}"),
            Keys::Views if k.is_multiple_of(4) => format!("CUSTOMER-{k:05}"),
            _ => format!("CUSTOMER-NUMBER-{k:05}"),
        };
        let mut v = offset;
        let partitions = rows
            .iter()
            .map(|keys| {
                let mut keys: Vec<Option<u8>> = keys.clone();
                // Sorted as the key column sorts; shuffled: in reverse.
                let sort_key =
                    |k: &Option<u8>| (k.is_none(), k.map(|k| (i64::from(k) - 15, text(k))));
                if shuffled {
                    keys.sort_by_key(|k| std::cmp::Reverse(sort_key(k)));
                } else if integers {
                    keys.sort_by_key(|k| (k.is_none(), k.map(|k| i64::from(k) - 15)));
                } else {
                    keys.sort_by_key(|k| (k.is_none(), k.map(text)));
                }
                let values: Vec<i64> = keys
                    .iter()
                    .map(|_| {
                        v += 1;
                        v
                    })
                    .collect();
                let column = |from: usize, to: usize| -> ArrayRef {
                    if integers {
                        Arc::new(Int64Array::from(
                            keys[from..to]
                                .iter()
                                .map(|k| k.map(|k| i64::from(k) - 15))
                                .collect::<Vec<_>>(),
                        ))
                    } else {
                        let text: Vec<Option<String>> =
                            keys[from..to].iter().map(|k| k.map(text)).collect();
                        match kind {
                            Keys::Views | Keys::Wide => Arc::new(StringViewArray::from(text)),
                            _ => Arc::new(StringArray::from(text)),
                        }
                    }
                };
                (0..keys.len())
                    .step_by(3)
                    .map(|start| {
                        let end = (start + 3).min(keys.len());
                        RecordBatch::try_new(
                            Arc::clone(&schema),
                            vec![
                                column(start, end),
                                Arc::new(Int64Array::from(values[start..end].to_vec())),
                            ],
                        )
                        .unwrap()
                    })
                    .collect()
            })
            .collect();
        MemTable::try_new(schema, partitions)
            .unwrap()
            .with_sort_order(vec![vec![col("k").sort(true, false)]])
    }

    /// A session over `build` as `b` and `probe` as `p`, with the rule or without; joins
    /// `partitioned` (both sides by the keys' hash) or building one side whole.
    fn session(walk: bool, partitioned: bool, build: MemTable, probe: MemTable) -> SessionContext {
        let mut config = SessionConfig::new().with_target_partitions(2);
        if partitioned {
            let o = &mut config.options_mut().optimizer;
            o.hash_join_single_partition_threshold = 0;
            o.hash_join_single_partition_threshold_rows = 0;
        }
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if walk {
            state = state.with_physical_optimizer_rule(Arc::new(JoinInKeyOrder));
        }
        let ctx = SessionContext::new_with_state(state.build());
        ctx.register_table("b", Arc::new(build)).unwrap();
        ctx.register_table("p", Arc::new(probe)).unwrap();
        ctx
    }

    /// The rows of `sql` sorted as text, and whether its plan walks.
    async fn run(ctx: &SessionContext, sql: &str) -> (Vec<String>, bool) {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let walks = displayable(plan.as_ref())
            .indent(false)
            .to_string()
            .contains("KeyOrderJoinExec");
        let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
        rows.sort();
        (rows, walks)
    }

    const QUERIES: [&str; 9] = [
        "SELECT p.k, p.v, b.v AS w FROM p JOIN b ON b.k = p.k AND b.v % 3 = p.v % 3",
        "SELECT p.k, p.v, b.v AS w FROM p JOIN b ON b.k = p.k",
        "SELECT p.k, p.v, b.v AS w FROM p LEFT JOIN b ON b.k = p.k",
        "SELECT p.v FROM p WHERE p.k IN (SELECT k FROM b)",
        "SELECT p.v FROM p WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.k = p.k)",
        "SELECT count(*) AS n FROM p JOIN b ON b.k = p.k",
        "SELECT b.k, count(*) AS n, sum(p.v) AS s FROM p JOIN b ON b.k = p.k GROUP BY b.k",
        "SELECT p.k, p.v, b.v AS w FROM p LEFT JOIN b \
         ON b.k = p.k AND nullif(b.v % 3, 0) = nullif(p.v % 3, 1)",
        "SELECT x.k, x.s, y.n FROM (SELECT k, sum(v) AS s FROM b GROUP BY k) x \
         JOIN (SELECT k, count(*) AS n FROM p GROUP BY k) y ON y.k = x.k",
    ];

    /// Each query both ways; the walk must run in the plain inner join.
    async fn same_as_hash_join(
        build: &[Vec<Option<u8>>],
        probe: &[Vec<Option<u8>>],
        kind: Keys,
        shuffled: bool,
    ) {
        for partitioned in [false, true] {
            for sql in QUERIES {
                let tables = || {
                    (
                        table(build, kind, false, 0),
                        table(probe, kind, shuffled, 1000),
                    )
                };
                let (b, p) = tables();
                let hashed = session(false, partitioned, b, p);
                let (b, p) = tables();
                let walked = session(true, partitioned, b, p);
                let (expected, hash_walks) = run(&hashed, sql).await;
                let (rows, walks) = run(&walked, sql).await;
                assert!(!hash_walks);
                assert_eq!(
                    rows, expected,
                    "{sql}\n{kind:?} partitioned {partitioned} build {build:?}\nprobe {probe:?}"
                );
                // The plain inner join walks, and so does one on a second key, whether
                // building one side whole or (both sides in key order before their
                // repartitioning) collected instead; joined by hash partitions, the join
                // of two aggregates in key order.
                let must_walk = match partitioned {
                    false => sql == QUERIES[0] || sql == QUERIES[1],
                    true => sql == QUERIES[0] || sql == QUERIES[1] || sql == QUERIES[8],
                };
                if must_walk {
                    assert!(
                        walks,
                        "{sql}: the walk did not run (partitioned {partitioned})"
                    );
                }
            }
        }
    }

    fn keys(max_len: usize) -> impl Strategy<Value = Vec<Option<u8>>> {
        prop::collection::vec(prop::option::weighted(0.9, 0u8..30), 0..max_len)
    }

    /// Packed keys sort as their values do (the walk is exact either way; in this order it
    /// only goes forward): text by bytes, a prefix first, inside a view or not; integers
    /// negative first.
    #[test]
    fn packed_keys_sort_as_their_values() {
        let mut text: Vec<&str> = vec![
            "",
            "\0",
            "a",
            "a\0",
            "a\0\0",
            "ab",
            "abc",
            "C0126325",
            "C0126326",
            "C1",
            "CUST-00007-X",
            "CUST-00007-Y",
            "CUSTOMER-00008",
            "CUSTOMER-00008\0",
            "\u{7f}",
            "\u{e9}",
            "zzzzzzzzzzzzzzz",
        ];
        text.sort();
        let packed_as = |keys: &dyn Array, packing| {
            let mut all = vec![];
            for_each_key(keys, packing, |_, k| match k {
                Key::Packed(p) => all.push(p.0),
                _ => panic!("not packed"),
            })
            .unwrap();
            all
        };
        let packed = |keys: &dyn Array| packed_as(keys, Packing::Lengths);
        let views = packed(&StringViewArray::from(text.clone()));
        assert!(views.windows(2).all(|w| w[0] < w[1]), "{text:?}");
        assert_eq!(views, packed(&StringArray::from(text.clone())));
        let numbers = packed(&Int64Array::from(vec![i64::MIN, -7, -1, 0, 1, 7, i64::MAX]));
        assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        // Longer than 15 bytes: not packed by length.
        let long = StringArray::from(vec!["CUSTOMER-NUMBER-00007"]);
        for_each_key(&long, Packing::Lengths, |_, k| assert!(k == Key::Long)).unwrap();

        // Sixteen bytes each, as invoice ids: one width, packed by their bytes alone.
        let mut wide = vec![
            "INV-0000042-0001",
            "INV-0000042-0002",
            "INV-0000042-0010",
            "INV-0000043-0001",
            "INV-0000043-000\0",
            "INV-1000000-9999",
            "INV-\u{e9}000000-999",
            "inv-0000001-0001",
        ];
        wide.sort();
        assert!(wide.iter().all(|k| k.len() == 16));
        let views = StringViewArray::from(wide.clone());
        assert_eq!(one_width(&[Arc::new(views.clone()) as ArrayRef]), Some(16));
        let width = Packing::Sixteen;
        let packed = packed_as(&views, width);
        assert!(packed.windows(2).all(|w| w[0] < w[1]), "{wide:?}");
        assert_eq!(packed, packed_as(&StringArray::from(wide.clone()), width));
        // Text of another width (inside a view or not) does not pack at that width.
        let others = StringViewArray::from(vec!["INV-0000042-001", "INV-0000042-00010", "I1"]);
        for_each_key(&others, width, |_, k| assert!(k == Key::Long)).unwrap();
        // Widths that differ, or exceed 16 bytes: none.
        assert_eq!(one_width(&[Arc::new(others.clone()) as ArrayRef]), None);
        assert_eq!(
            one_width(&[Arc::new(StringArray::from(vec!["CUSTOMER-NUMBER-00007"])) as ArrayRef]),
            None
        );
        // NULLs do not count.
        let with_null = StringArray::from(vec![None, Some("INV-0000042-0001")]);
        assert_eq!(one_width(&[Arc::new(with_null) as ArrayRef]), Some(16));
    }

    /// A build side collected whole from two partitions (planned under a
    /// `CoalescePartitionsExec`, which hands on batches as the partitions make them) is
    /// taken partition by partition: a probe row's matches come in the partitions' order,
    /// whatever the threads' timing — the same rows in the same order on every run.
    #[test]
    fn a_build_side_collected_whole_is_taken_partition_by_partition() {
        let one = |n: usize| vec![Some(1u8); n];
        // Ten batches of 3 rows in each build partition (v 1..=30, then 31..=60); the
        // probe side, bigger, is not the one built.
        let ctx = session(
            true,
            false,
            table(&[one(30), one(30)], Keys::Short, false, 0),
            table(&[one(80)], Keys::Short, false, 1000),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(async {
            let plan = ctx
                .sql("SELECT p.v, b.v AS w FROM p JOIN b ON b.k = p.k")
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            let shown = displayable(plan.as_ref()).indent(false).to_string();
            assert!(
                shown.contains("KeyOrderJoinExec") && shown.contains("CoalescePartitionsExec"),
                "{shown}"
            );
            let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx())
                .await
                .unwrap();
            // Each probe row's matches in the order they came.
            let mut seen: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for batch in &batches {
                let (p, w) = (
                    batch.column(0).as_primitive::<Int64Type>(),
                    batch.column(1).as_primitive::<Int64Type>(),
                );
                for r in 0..batch.num_rows() {
                    seen.entry(p.value(r)).or_default().push(w.value(r));
                }
            }
            let probe: Vec<i64> = seen.keys().copied().collect();
            assert_eq!(probe, (1001..=1080).collect::<Vec<i64>>());
            for (v, ws) in &seen {
                assert_eq!(ws, &(1..=60).collect::<Vec<i64>>(), "probe row {v}");
            }
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Duplicate keys on both sides, NULLs, empty partitions, keys on one side only:
        /// the rows of the hash join, whether the probe side is in order or, declared so
        /// wrongly, in reverse.
        #[test]
        fn the_walk_joins_the_rows_the_hash_join_does(
            build in prop::collection::vec(keys(12), 1..3),
            probe in prop::collection::vec(keys(40), 2..3),
            kind in prop_oneof![Just(Keys::Short), Just(Keys::Long), Just(Keys::Mixed), Just(Keys::Integers),
                Just(Keys::Views), Just(Keys::Wide)],
            shuffled in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(same_as_hash_join(&build, &probe, kind, shuffled));
        }
    }
}
