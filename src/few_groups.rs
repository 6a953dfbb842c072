//! Partial aggregates into few groups: each group column's values numbered, each row's
//! group found by its numbers in a dense table instead of a hash table of the values.
//!
//! Most of an analyst's aggregates end in a handful of groups: customers by snapshot and
//! segment (11.6 M rows into 52 groups at a million customers), open items by segment,
//! currency and aging bucket (9.5 M rows into 96). DataFusion's partial aggregate finds
//! each row's group with `GroupValuesColumn`: every row's group columns hashed (the text
//! by its bytes), the hash looked up, then each candidate compared column by column —
//! `perf record` of customers over time: 55 % of the query's CPU in that interning
//! (`hash_string_view_array_inner` 15 %, `intern` 14 %, the views' `vectorized_equal_to`
//! 12 %, `memcmp` 6 %, the dates' comparison 5 %), where DuckDB takes the whole query in
//! 120 ms against arq's 150.
//!
//! [`FewGroups`] runs such a partial aggregate ([`AggregateExec`] in mode `Partial`, one
//! grouping set, its input in no particular order, no limit, every aggregate with a groups
//! accumulator — `count(DISTINCT text)` has arq's — and no ordering of its own) as
//! [`FewGroupsExec`]. Each group column's values get numbers as they first appear (text of
//! at most 15 bytes keyed by its bytes and length — a string view of at most 12 bytes
//! holds them —, longer text by its bytes, NULL a value of its own); a small cache of each
//! batch's keys in front (of the views themselves for string views: equal views hold or
//! point to the same text) takes the rows of a few values without a branch that depends
//! on the value, and a column constant over a batch — a snapshot's date — is looked up
//! once for it. The numbers of a row's columns, each in as few bits as its values need,
//! index a table of the groups.
//! The aggregates are DataFusion's own groups accumulators, fed each row's group (and
//! each aggregate's `FILTER`) as DataFusion's aggregate feeds them, and their states are
//! emitted under the same schema, so the final aggregate above is unchanged.
//!
//! When the numbers no longer fit the table ([`MAX_BITS`] bits: more than 65,536
//! combinations — customers, invoices), the exec emits the states it holds and hands the
//! rest of its input, from the batch that did not fit, to the DataFusion aggregate it
//! replaced: a partial aggregate may emit a group more than once (the final aggregate
//! merges them), so the results are the same, and from there on memory, spilling and
//! DataFusion's skipping of partial aggregation are DataFusion's. Before that the exec
//! holds at most 65,536 groups, whose states are not counted against the session's memory
//! pool. Sessions on a cluster do not get the rule (the scheduler plans their queries).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat, take};
use datafusion::arrow::datatypes::{self as t, DataType, SchemaRef, TimeUnit};
use datafusion::common::HashMap;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
};
use futures::StreamExt;

/// Bits of the groups table's index: the group columns' numbers together fit in this
/// many bits (2^16 = 65,536 combinations, a 256 KB table), or the exec hands over.
pub const MAX_BITS: u32 = 16;

/// The physical optimizer rule (runs after DataFusion's own rules): each partial
/// aggregate [`FewGroupsExec`] can run, run by it.
#[derive(Debug)]
pub struct FewGroups {
    /// [`MAX_BITS`]; tests use fewer to hand over sooner.
    pub max_bits: u32,
}

impl Default for FewGroups {
    fn default() -> Self {
        FewGroups { max_bits: MAX_BITS }
    }
}

impl PhysicalOptimizerRule for FewGroups {
    fn name(&self) -> &str {
        "arq_few_groups"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(plan
            .transform_up(|node| match FewGroupsExec::try_new(&node, self.max_bits)? {
                Some(exec) => Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>)),
                None => Ok(Transformed::no(node)),
            })?
            .data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether a group column of this type can be numbered: integers, dates, timestamps,
/// decimals up to 128 bits, booleans and text.
fn numbered(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Decimal128(_, _)
            | DataType::Boolean
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

/// A partial aggregate whose groups are found by their columns' numbers (see the
/// module's comment). It keeps the aggregate it replaces: its child, expressions,
/// schema and properties, and the aggregate to hand over to.
pub struct FewGroupsExec {
    aggregate: Arc<dyn ExecutionPlan>,
    max_bits: u32,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for FewGroupsExec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("FewGroupsExec")
            .field("max_bits", &self.max_bits)
            .finish()
    }
}

impl FewGroupsExec {
    /// The exec in place of `plan` when `plan` is a partial aggregate it can run.
    pub fn try_new(plan: &Arc<dyn ExecutionPlan>, max_bits: u32) -> Result<Option<Self>> {
        let Some(agg) = plan.downcast_ref::<AggregateExec>() else {
            return Ok(None);
        };
        let group_by = agg.group_expr();
        if *agg.mode() != AggregateMode::Partial
            || !group_by.is_single()
            || group_by.expr().is_empty()
            || agg.limit_options().is_some()
            || *agg.input_order_mode() != InputOrderMode::Linear
            || agg
                .aggr_expr()
                .iter()
                .any(|a| !a.order_bys().is_empty() || !a.groups_accumulator_supported())
        {
            return Ok(None);
        }
        let input = agg.input_schema();
        for (expr, _) in group_by.expr() {
            if !numbered(&expr.data_type(&input)?) {
                return Ok(None);
            }
        }
        Ok(Some(FewGroupsExec {
            aggregate: Arc::clone(plan),
            max_bits: max_bits.min(MAX_BITS),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn agg(&self) -> &AggregateExec {
        self.aggregate
            .downcast_ref::<AggregateExec>()
            .expect("FewGroupsExec holds an AggregateExec")
    }
}

impl DisplayAs for FewGroupsExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "FewGroupsExec: ")?;
        self.agg().fmt_as(t, f)
    }
}

impl ExecutionPlan for FewGroupsExec {
    fn name(&self) -> &str {
        "FewGroupsExec"
    }

    crate::stand_in::planned_as_replaced!(aggregate, |this, plan| {
        FewGroupsExec::try_new(&plan, this.max_bits)
    });

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let agg = self.agg();
        let input = agg.input().execute(partition, Arc::clone(&context))?;
        let accumulators = agg
            .aggr_expr()
            .iter()
            .map(|a| a.create_groups_accumulator())
            .collect::<Result<Vec<_>>>()?;
        let groups: Vec<Arc<dyn PhysicalExpr>> = agg
            .group_expr()
            .expr()
            .iter()
            .map(|(e, _)| Arc::clone(e))
            .collect();
        let stream = Stream {
            input: Some(input),
            handed: None,
            aggregate: Arc::clone(&self.aggregate),
            partition,
            context: Arc::clone(&context),
            table: Table::new(groups.len(), self.max_bits),
            groups,
            arguments: agg.aggr_expr().iter().map(|a| a.expressions()).collect(),
            filters: agg.filter_expr().to_vec(),
            accumulators,
            schema: self.schema(),
            batch_size: context.session_config().batch_size(),
            ready: VecDeque::new(),
            baseline: BaselineMetrics::new(&self.metrics, partition),
            handed_over: MetricBuilder::new(&self.metrics).counter("handed_over", partition),
        };
        let stream = futures::stream::try_unfold(stream, |mut s| async move {
            Ok(s.next_batch().await?.map(|batch| (batch, s)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }
}

/// Marks an empty slot or table entry.
const EMPTY: u32 = u32::MAX;

/// One group column's values, numbered 0, 1, 2, … as they first appear.
#[derive(Default)]
struct Numbering {
    /// Open addressing: the values that fit 16 bytes (see [`Numbering::number`]) and
    /// their numbers, [`EMPTY`] where free; a power of two long.
    slots: Vec<(u128, u32)>,
    /// Text longer than a 16-byte key holds, by its bytes.
    long: HashMap<Box<[u8]>, u32>,
    /// NULL's number, once one came.
    null: Option<u32>,
    /// Each number's value, one row each (copied, so no batch is kept alive by them).
    values: Vec<ArrayRef>,
}

impl Numbering {
    fn count(&self) -> u32 {
        self.values.len() as u32
    }

    /// The number of the value at `row` of `array`, whose 16-byte key is `key`.
    #[inline]
    fn keyed(&mut self, key: u128, array: &dyn Array, row: usize) -> Result<u32> {
        if self.slots.len() < 2 * (self.values.len() + 1) {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut at = slot_of(key, mask);
        loop {
            let (k, n) = self.slots[at];
            if n == EMPTY {
                let n = self.push(array, row)?;
                self.slots[at] = (key, n);
                return Ok(n);
            }
            if k == key {
                return Ok(n);
            }
            at = (at + 1) & mask;
        }
    }

    /// The number of a text value too long for a 16-byte key.
    fn long(&mut self, bytes: &[u8], array: &dyn Array, row: usize) -> Result<u32> {
        if let Some(n) = self.long.get(bytes) {
            return Ok(*n);
        }
        let n = self.push(array, row)?;
        self.long.insert(bytes.into(), n);
        Ok(n)
    }

    fn null(&mut self, array: &dyn Array, row: usize) -> Result<u32> {
        match self.null {
            Some(n) => Ok(n),
            None => {
                let n = self.push(array, row)?;
                self.null = Some(n);
                Ok(n)
            }
        }
    }

    /// Numbers the value at `row` of `array` with the next number.
    fn push(&mut self, array: &dyn Array, row: usize) -> Result<u32> {
        let one = UInt32Array::from(vec![row as u32]);
        let value = take(array, &one, None)?;
        // A string view taken still points into the batch's buffers.
        let value: ArrayRef = match value.data_type() {
            DataType::Utf8View => Arc::new(value.as_string_view().gc()),
            _ => value,
        };
        self.values.push(value);
        Ok(self.values.len() as u32 - 1)
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![(0, EMPTY); size]);
        let mask = size - 1;
        for (k, n) in old.into_iter().filter(|(_, n)| *n != EMPTY) {
            let mut at = slot_of(k, mask);
            while self.slots[at].1 != EMPTY {
                at = (at + 1) & mask;
            }
            self.slots[at] = (k, n);
        }
    }

    /// Each row's number into `out`. Integers, dates, decimals and booleans are their own
    /// key; text of at most 15 bytes is its bytes and length ([`packed`]: a string view
    /// of at most 12 bytes holds them, shifted), longer text is keyed by its bytes. In
    /// front of the numbering, a small cache of the batch's keys (for string views, of
    /// the views themselves: equal views hold or point to the same text) takes the rows
    /// of a few values without a branch that depends on the row's value.
    fn number(&mut self, array: &ArrayRef, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        let n = array.len();
        let nulls = array.logical_nulls();
        let valid = |row: usize| nulls.as_ref().is_none_or(|b| b.is_valid(row));
        let mut seen = [(0u128, EMPTY); SEEN];
        // The row's number by its cache key `seen_key`, else `miss` (the numbering's).
        macro_rules! cached {
            ($seen_key:expr, $miss:expr) => {{
                let seen_key: u128 = $seen_key;
                let at = slot_of(seen_key, SEEN - 1);
                let (k, code) = seen[at];
                if k == seen_key && code != EMPTY {
                    code
                } else {
                    let code = $miss;
                    seen[at] = (seen_key, code);
                    code
                }
            }};
        }
        macro_rules! each_row {
            (|$row:ident| $code:expr) => {{
                for $row in 0..n {
                    let code = if valid($row) {
                        $code
                    } else {
                        self.null(array.as_ref(), $row)?
                    };
                    out.push(code);
                }
            }};
        }
        match array.data_type() {
            DataType::Boolean => {
                let values = array.as_boolean();
                each_row!(|row| {
                    let key = u128::from(values.value(row));
                    cached!(key, self.keyed(key, array.as_ref(), row)?)
                })
            }
            DataType::Utf8View => {
                let strings = array.as_string_view();
                let views = strings.views();
                each_row!(|row| {
                    let view = views[row];
                    let len = view as u32;
                    cached!(view, {
                        let key = if len <= 12 {
                            // Text and length as [`packed`] has them.
                            Some(((view & (u128::MAX >> (96 - 8 * len))) >> 32) | (view << 120))
                        } else {
                            packed(strings.value(row).as_bytes())
                        };
                        match key {
                            Some(key) => self.keyed(key, array.as_ref(), row)?,
                            None => {
                                self.long(strings.value(row).as_bytes(), array.as_ref(), row)?
                            }
                        }
                    })
                })
            }
            DataType::Utf8 | DataType::LargeUtf8 => {
                macro_rules! text {
                    ($offset:ty) => {{
                        let strings = array.as_string::<$offset>();
                        let (data, offsets) = (strings.value_data(), strings.value_offsets());
                        each_row!(|row| {
                            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                            match packed_at(data, start, end) {
                                Some(key) => cached!(key, self.keyed(key, array.as_ref(), row)?),
                                None => self.long(&data[start..end], array.as_ref(), row)?,
                            }
                        })
                    }};
                }
                match array.data_type() {
                    DataType::Utf8 => text!(i32),
                    _ => text!(i64),
                }
            }
            t => {
                macro_rules! primitive {
                    ($t:ty) => {{
                        let values = array.as_primitive::<$t>().values();
                        match values.first().copied() {
                            // A column constant over the batch (a snapshot's date).
                            Some(first)
                                if nulls.is_none() && values.iter().all(|v| *v == first) =>
                            {
                                let code = self.keyed(first as u128, array.as_ref(), 0)?;
                                out.resize(n, code);
                            }
                            _ => each_row!(|row| {
                                let key = values[row] as u128;
                                cached!(key, self.keyed(key, array.as_ref(), row)?)
                            }),
                        }
                    }};
                }
                match t {
                    DataType::Int8 => primitive!(t::Int8Type),
                    DataType::Int16 => primitive!(t::Int16Type),
                    DataType::Int32 => primitive!(t::Int32Type),
                    DataType::Int64 => primitive!(t::Int64Type),
                    DataType::UInt8 => primitive!(t::UInt8Type),
                    DataType::UInt16 => primitive!(t::UInt16Type),
                    DataType::UInt32 => primitive!(t::UInt32Type),
                    DataType::UInt64 => primitive!(t::UInt64Type),
                    DataType::Date32 => primitive!(t::Date32Type),
                    DataType::Date64 => primitive!(t::Date64Type),
                    DataType::Decimal128(_, _) => primitive!(t::Decimal128Type),
                    DataType::Timestamp(TimeUnit::Second, _) => {
                        primitive!(t::TimestampSecondType)
                    }
                    DataType::Timestamp(TimeUnit::Millisecond, _) => {
                        primitive!(t::TimestampMillisecondType)
                    }
                    DataType::Timestamp(TimeUnit::Microsecond, _) => {
                        primitive!(t::TimestampMicrosecondType)
                    }
                    DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                        primitive!(t::TimestampNanosecondType)
                    }
                    t => {
                        return Err(DataFusionError::Internal(format!(
                            "FewGroupsExec: a group column of type {t}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Keys a batch's cache in front of a numbering holds ([`Numbering::number`]).
const SEEN: usize = 64;

/// Text of at most 15 bytes as one key: its bytes, then its length in the last byte.
#[inline]
fn packed(bytes: &[u8]) -> Option<u128> {
    if bytes.len() > 15 {
        return None;
    }
    let mut packed = [0u8; 16];
    packed[..bytes.len()].copy_from_slice(bytes);
    packed[15] = bytes.len() as u8;
    Some(u128::from_le_bytes(packed))
}

/// [`packed`] of `data[start..end]`, read as one 16-byte word where the data goes on
/// that far.
#[inline]
fn packed_at(data: &[u8], start: usize, end: usize) -> Option<u128> {
    let len = end - start;
    if len > 15 {
        return None;
    }
    match data.get(start..start + 16) {
        Some(word) => {
            let word = u128::from_le_bytes(word.try_into().expect("16 bytes"));
            Some((word & ((1u128 << (8 * len)) - 1)) | ((len as u128) << 120))
        }
        None => packed(&data[start..end]),
    }
}

#[inline]
fn slot_of(key: u128, mask: usize) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

/// The groups of one partition: each column's numbering, each group's numbers, and the
/// table from a row's numbers (each column's in its own bits) to its group.
struct Table {
    columns: Vec<Numbering>,
    /// Bits of each column's numbers in the table's index (0 for a column of one value).
    bits: Vec<u32>,
    max_bits: u32,
    /// Group of each index, [`EMPTY`] where none.
    index: Vec<u32>,
    /// Each group's numbers, a row of `columns.len()` per group.
    groups: Vec<u32>,
    /// Scratch: each column's numbers of a batch, each row's index.
    codes: Vec<Vec<u32>>,
    keys: Vec<u32>,
}

impl Table {
    fn new(columns: usize, max_bits: u32) -> Table {
        Table {
            columns: (0..columns).map(|_| Numbering::default()).collect(),
            bits: vec![0; columns],
            max_bits,
            index: vec![EMPTY],
            groups: Vec::new(),
            codes: vec![Vec::new(); columns],
            keys: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.groups.len() / self.columns.len()
    }

    /// Each row's group into `indices`; false (and nothing changed but the numberings)
    /// when the columns' numbers no longer fit the table.
    fn intern(&mut self, arrays: &[ArrayRef], indices: &mut Vec<usize>) -> Result<bool> {
        for ((numbering, codes), array) in self.columns.iter_mut().zip(&mut self.codes).zip(arrays)
        {
            numbering.number(array, codes)?;
        }
        let bits: Vec<u32> = self
            .columns
            .iter()
            .map(|c| u32::BITS - c.count().saturating_sub(1).leading_zeros())
            .collect();
        if bits.iter().sum::<u32>() > self.max_bits {
            return Ok(false);
        }
        if bits != self.bits {
            self.bits = bits;
            self.reindex();
        }
        let n = arrays.first().map_or(0, |a| a.len());
        self.keys.clear();
        self.keys.resize(n, 0);
        let mut shift = 0;
        for (codes, bits) in self.codes.iter().zip(&self.bits) {
            for (key, code) in self.keys.iter_mut().zip(codes) {
                *key |= code << shift;
            }
            shift += bits;
        }
        indices.clear();
        indices.reserve(n);
        let mut groups = self.len() as u32;
        for (row, key) in self.keys.iter().enumerate() {
            let slot = &mut self.index[*key as usize];
            if *slot == EMPTY {
                *slot = groups;
                groups += 1;
                self.groups.extend(self.codes.iter().map(|c| c[row]));
            }
            indices.push(*slot as usize);
        }
        Ok(true)
    }

    /// The table rebuilt for new bits.
    fn reindex(&mut self) {
        let width = self.columns.len();
        self.index = vec![EMPTY; 1 << self.bits.iter().sum::<u32>()];
        for (group, codes) in self.groups.chunks(width).enumerate() {
            let mut key = 0;
            let mut shift = 0;
            for (code, bits) in codes.iter().zip(&self.bits) {
                key |= code << shift;
                shift += bits;
            }
            self.index[key as usize] = group as u32;
        }
    }

    /// The groups' columns, in the order the groups came.
    fn emit(&self) -> Result<Vec<ArrayRef>> {
        let width = self.columns.len();
        let mut out = Vec::with_capacity(width);
        for (c, numbering) in self.columns.iter().enumerate() {
            let values: Vec<&dyn Array> = numbering.values.iter().map(|v| v.as_ref()).collect();
            let values = concat(&values)?;
            let codes: UInt32Array = self.groups.iter().skip(c).step_by(width).copied().collect();
            out.push(take(values.as_ref(), &codes, None)?);
        }
        Ok(out)
    }
}

/// The aggregate's input from the batch that did not fit on: what the aggregate the exec
/// replaced reads when it is handed over to.
struct Handed {
    properties: Arc<PlanProperties>,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl fmt::Debug for Handed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Handed")
    }
}

impl DisplayAs for Handed {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Handed")
    }
}

impl ExecutionPlan for Handed {
    fn name(&self) -> &str {
        "Handed"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.stream
            .lock()
            .map_err(|_| DataFusionError::Internal("FewGroupsExec: a poisoned lock".into()))?
            .take()
            .ok_or_else(|| DataFusionError::Internal("FewGroupsExec: handed over twice".into()))
    }
}

/// One partition's partial aggregate.
struct Stream {
    input: Option<SendableRecordBatchStream>,
    /// The aggregate the exec replaced, running on the rest of the input once handed over.
    handed: Option<SendableRecordBatchStream>,
    aggregate: Arc<dyn ExecutionPlan>,
    partition: usize,
    context: Arc<TaskContext>,
    table: Table,
    groups: Vec<Arc<dyn PhysicalExpr>>,
    /// Each aggregate's arguments and `FILTER`.
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    schema: SchemaRef,
    batch_size: usize,
    ready: VecDeque<RecordBatch>,
    baseline: BaselineMetrics,
    /// 1 once the rest of the input went to the aggregate the exec replaced.
    handed_over: Count,
}

impl Stream {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                self.baseline.record_output(batch.num_rows());
                return Ok(Some(batch));
            }
            if let Some(handed) = self.handed.as_mut() {
                let batch = handed.next().await.transpose()?;
                if let Some(batch) = &batch {
                    self.baseline.record_output(batch.num_rows());
                }
                return Ok(batch);
            }
            let Some(input) = self.input.as_mut() else {
                return Ok(None);
            };
            match input.next().await {
                Some(batch) => {
                    let batch = batch?;
                    let elapsed = self.baseline.elapsed_compute().clone();
                    let _timer = elapsed.timer();
                    if !self.aggregate(&batch)? {
                        self.emit()?;
                        self.hand_over(batch)?;
                    }
                }
                None => {
                    self.input = None;
                    let elapsed = self.baseline.elapsed_compute().clone();
                    let _timer = elapsed.timer();
                    self.emit()?;
                }
            }
        }
    }

    /// Each row of `batch` into its group's accumulators; false (and nothing aggregated)
    /// when its groups do not fit the table.
    fn aggregate(&mut self, batch: &RecordBatch) -> Result<bool> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(true);
        }
        let arrays = self
            .groups
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(n))
            .collect::<Result<Vec<_>>>()?;
        let mut indices = Vec::new();
        if !self.table.intern(&arrays, &mut indices)? {
            return Ok(false);
        }
        let total = self.table.len();
        for ((acc, arguments), filter) in self
            .accumulators
            .iter_mut()
            .zip(&self.arguments)
            .zip(&self.filters)
        {
            let values = arguments
                .iter()
                .map(|e| e.evaluate(batch)?.into_array(n))
                .collect::<Result<Vec<_>>>()?;
            let filter = match filter {
                Some(f) => Some(f.evaluate(batch)?.into_array(n)?),
                None => None,
            };
            acc.update_batch(
                &values,
                &indices,
                filter.as_ref().map(|f| f.as_boolean()),
                total,
            )?;
        }
        Ok(true)
    }

    /// The groups held and their accumulators' states, in batches.
    fn emit(&mut self) -> Result<()> {
        let n = self.table.len();
        if n == 0 {
            return Ok(());
        }
        let mut columns = self.table.emit()?;
        for acc in self.accumulators.iter_mut() {
            columns.extend(acc.state(EmitTo::All)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let mut start = 0;
        while start < n {
            let len = self.batch_size.min(n - start);
            self.ready.push_back(batch.slice(start, len));
            start += len;
        }
        Ok(())
    }

    /// The rest of the input, from `batch` on, to the aggregate the exec replaced.
    fn hand_over(&mut self, batch: RecordBatch) -> Result<()> {
        let Some(rest) = self.input.take() else {
            return Err(DataFusionError::Internal(
                "FewGroupsExec: handed over without an input".into(),
            ));
        };
        let agg = self
            .aggregate
            .downcast_ref::<AggregateExec>()
            .expect("FewGroupsExec holds an AggregateExec");
        let schema = rest.schema();
        let stream = futures::stream::once(async move { Ok(batch) }).chain(rest);
        let input = Arc::new(Handed {
            properties: Arc::clone(agg.input().properties()),
            stream: Mutex::new(Some(Box::pin(RecordBatchStreamAdapter::new(
                schema, stream,
            )))),
        });
        let aggregate = Arc::clone(&self.aggregate).replace_children(
            vec![input],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
        self.handed = Some(aggregate.execute(self.partition, Arc::clone(&self.context))?);
        self.handed_over.add(1);
        self.table = Table::new(self.groups.len(), 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Int32Array, Int64Array, StringArray,
        StringViewArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    /// A table `t` of one row per `(k, x)` (a NULL `k`: NULL in every group column) in
    /// two partitions of batches of 4: a date, 32- and 64-bit integers (negative too), a
    /// boolean, text short and longer than 15 bytes, string views inside the view and
    /// longer, a decimal; `x` to aggregate.
    fn table(rows: &[(Option<u8>, i64)]) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("d", DataType::Date32, true),
            Field::new("j", DataType::Int32, true),
            Field::new("i", DataType::Int64, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("v", DataType::Utf8View, true),
            Field::new("m", DataType::Decimal128(18, 2), true),
            Field::new("x", DataType::Int64, false),
        ]));
        let text = |k: u8| match k % 3 {
            0 => format!("s{}", k % 5),
            1 => format!("a longer segment {}", k % 4),
            _ => String::new(),
        };
        let view = |k: u8| match k % 4 {
            0 => format!("v{}", k % 3),
            1 => format!("view-value-{:03}", k % 2),
            2 => format!("a view value longer than 15 {}", k % 3),
            _ => "twelve bytes".to_string(),
        };
        let batch = |rows: &[(Option<u8>, i64)]| {
            let ks: Vec<Option<u8>> = rows.iter().map(|r| r.0).collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Date32Array::from_iter(
                    ks.iter().map(|k| k.map(|k| 20_000 + i32::from(k % 3))),
                )),
                Arc::new(Int32Array::from_iter(
                    ks.iter().map(|k| k.map(|k| i32::from(k % 5) - 2)),
                )),
                Arc::new(Int64Array::from_iter(
                    ks.iter().map(|k| k.map(|k| i64::from(k % 4) - 2)),
                )),
                Arc::new(BooleanArray::from_iter(
                    ks.iter().map(|k| k.map(|k| k % 2 == 0)),
                )),
                Arc::new(StringArray::from_iter(ks.iter().map(|k| k.map(text)))),
                Arc::new(StringViewArray::from_iter(ks.iter().map(|k| k.map(view)))),
                Arc::new(
                    Decimal128Array::from_iter(
                        ks.iter().map(|k| k.map(|k| i128::from(k % 6) * 150 - 300)),
                    )
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
                ),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ];
            RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
        };
        let half = rows.len() / 2;
        let partitions = [&rows[..half], &rows[half..]]
            .iter()
            .map(|part| part.chunks(4).map(batch).collect())
            .collect();
        MemTable::try_new(Arc::clone(&schema), partitions).unwrap()
    }

    /// A session over `rows` as `t`, with the rule (tables of `max_bits` bits) or without.
    fn session(rows: &[(Option<u8>, i64)], max_bits: Option<u32>) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(2);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if let Some(max_bits) = max_bits {
            state = state.with_physical_optimizer_rule(Arc::new(FewGroups { max_bits }));
        }
        let mut ctx = SessionContext::new_with_state(state.build());
        // arq's functions: `count(DISTINCT text)` with a groups accumulator among them.
        arq_udfs::register_all(&mut ctx).unwrap();
        ctx.register_table("t", Arc::new(table(rows))).unwrap();
        ctx
    }

    /// The rows of `sql` sorted as text, whether its plan runs the exec, and how many of
    /// its partitions handed over.
    async fn run(ctx: &SessionContext, sql: &str) -> (Vec<String>, bool, usize) {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let batches = datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx())
            .await
            .unwrap();
        let mut exec = false;
        let mut handed = 0;
        plan.apply(|node| {
            if node.name() == "FewGroupsExec" {
                exec = true;
                let metrics = node.metrics().unwrap();
                handed += metrics
                    .sum_by_name("handed_over")
                    .map_or(0, |m| m.as_usize());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
        rows.sort();
        (rows, exec, handed)
    }

    /// Queries and whether the exec must run them.
    const QUERIES: [(&str, bool); 10] = [
        (
            "SELECT d, s, count(*) AS n, sum(x) AS total FROM t GROUP BY d, s",
            true,
        ),
        (
            "SELECT v, min(s) AS s, max(x) AS most, avg(x) AS mean, sum(m) AS money \
             FROM t GROUP BY v",
            true,
        ),
        (
            "SELECT i, b, d, v, count(x) AS n, sum(x) AS total FROM t GROUP BY i, b, d, v",
            true,
        ),
        (
            "SELECT j, m, count(*) AS n, min(v) AS v FROM t GROUP BY j, m",
            true,
        ),
        (
            "SELECT d, count(*) FILTER (WHERE x > 0) AS n, sum(x) FILTER (WHERE b) AS s \
             FROM t GROUP BY d",
            true,
        ),
        (
            "SELECT d, j, i, b, s, v, m, count(*) AS n FROM t GROUP BY d, j, i, b, s, v, m",
            true,
        ),
        (
            "SELECT upper(s) AS u, x % 3 AS r, sum(x) AS total FROM t GROUP BY upper(s), x % 3",
            true,
        ),
        // DataFusion groups by (s, x) first: that partial aggregate is the exec's.
        ("SELECT s, count(DISTINCT x) AS n FROM t GROUP BY s", true),
        // Distinct counts beside other aggregates, of text (arq's groups accumulator)
        // and of integers (DataFusion's).
        (
            "SELECT d, b, sum(x) FILTER (WHERE x > 0) AS total, count(DISTINCT v) AS views, \
             count(DISTINCT s) AS texts, count(DISTINCT j) AS ints FROM t GROUP BY d, b",
            true,
        ),
        (
            "SELECT s, array_agg(x ORDER BY x) AS xs FROM t GROUP BY s",
            false,
        ),
    ];

    async fn same_as_datafusion(rows: &[(Option<u8>, i64)], max_bits: u32) {
        let plain = session(rows, None);
        let few = session(rows, Some(max_bits));
        for (sql, must) in QUERIES {
            let (expected, ran, _) = run(&plain, sql).await;
            assert!(!ran);
            let (got, ran, _) = run(&few, sql).await;
            assert_eq!(got, expected, "{sql}\nmax bits {max_bits}, rows {rows:?}");
            assert_eq!(ran, must, "{sql}: the exec ran: {ran}");
        }
    }

    /// Groups by date and text (3 × 10 values) into a table of 2 bits: the partitions
    /// hand over, the rows are DataFusion's; into the full table, none hands over. All
    /// seven columns (19 bits) hand over even to the full table.
    #[tokio::test]
    async fn more_groups_than_the_table_holds_are_handed_to_datafusion() {
        let rows: Vec<(Option<u8>, i64)> = (0..200).map(|i| (Some(i as u8 % 60), i)).collect();
        for (sql, max_bits, hands) in [
            (QUERIES[0].0, 2, true),
            (QUERIES[0].0, MAX_BITS, false),
            (QUERIES[5].0, MAX_BITS, true),
        ] {
            let (expected, _, _) = run(&session(&rows, None), sql).await;
            let (got, ran, handed) = run(&session(&rows, Some(max_bits)), sql).await;
            assert!(ran, "{sql}");
            assert_eq!(handed, if hands { 2 } else { 0 }, "{sql}, {max_bits} bits");
            assert_eq!(got, expected, "{sql}, {max_bits} bits");
        }
    }

    /// The plan shows the exec in place of the partial aggregate, the final one above.
    #[tokio::test]
    async fn the_partial_aggregate_is_replaced_and_the_final_kept() {
        let rows: Vec<(Option<u8>, i64)> = (0..20).map(|i| (Some(i as u8), i)).collect();
        let ctx = session(&rows, Some(MAX_BITS));
        let plan = ctx
            .sql(QUERIES[0].0)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let text = displayable(plan.as_ref()).indent(false).to_string();
        assert!(
            text.contains("FewGroupsExec: AggregateExec: mode=Partial"),
            "{text}"
        );
        assert!(
            text.contains("AggregateExec: mode=FinalPartitioned"),
            "{text}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// NULLs in every group column, groups across batches and partitions, tables too
        /// small for the groups (handed over mid-stream) or large enough: the rows of
        /// DataFusion's own aggregate.
        #[test]
        fn few_groups_aggregate_as_datafusion_does(
            rows in prop::collection::vec(
                (prop::option::weighted(0.85, 0u8..40), -1_000i64..1_000),
                0..60,
            ),
            max_bits in prop_oneof![0u32..5, Just(MAX_BITS)],
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(same_as_datafusion(&rows, max_bits));
        }
    }
}
