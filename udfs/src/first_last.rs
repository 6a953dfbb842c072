//! `first_value` and `last_value` with `ORDER BY`, with a groups accumulator whose work per
//! batch is the batch's rows.
//!
//! DataFusion 55's groups accumulator for an ordered `first_value`/`last_value` clears and
//! then walks a buffer of every group seen so far on every batch
//! (`get_filtered_extreme_of_each_group`), and keeps each group's ordering as a vector of
//! `ScalarValue`s: grouped by customer, every batch of 8,192 activities costs a step per
//! customer seen so far — a million at 1 M customers. [`FirstLast`] replaces both built-ins
//! under the same names, signatures and states, and for an ordered call gives the
//! aggregation [`OrderedPick`]: the groups a batch reaches are listed as it is read, and each
//! group keeps its ordering and its value as bytes of Arrow's row format (the ordering's
//! bytes compare as the `ORDER BY` does). Same results: among rows equal in the ordering the
//! one seen first is kept, as the built-in keeps it (a property test against the built-in,
//! with NULLs, `FILTER`, `IGNORE NULLS`, descending orders and two-phase aggregation).
//! Without `ORDER BY`, or for types the row format cannot hold, the built-in's own
//! accumulators.

use std::cmp::Ordering;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::compute::{LexicographicalComparator, SortColumn, SortOptions, cast, take};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::internal_err;
use datafusion::error::Result;
use datafusion::functions_aggregate::first_last::{first_value_udaf, last_value_udaf};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{
    AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, ReversedUDAF,
};

use crate::builtin::forward_to_builtin;

/// `first_value` or `last_value`: DataFusion's built-in, with [`OrderedPick`] for ordered calls.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FirstLast {
    builtin: Arc<AggregateUDF>,
    /// `first_value` (the first row in the ordering) or `last_value`.
    first: bool,
}

static FIRST_VALUE: LazyLock<Arc<AggregateUDF>> =
    LazyLock::new(|| Arc::new(AggregateUDF::new_from_impl(FirstLast::first_value())));
static LAST_VALUE: LazyLock<Arc<AggregateUDF>> =
    LazyLock::new(|| Arc::new(AggregateUDF::new_from_impl(FirstLast::last_value())));

/// This crate's `first_value`.
pub fn first_value() -> Arc<AggregateUDF> {
    Arc::clone(&FIRST_VALUE)
}

/// This crate's `last_value`.
pub fn last_value() -> Arc<AggregateUDF> {
    Arc::clone(&LAST_VALUE)
}

impl FirstLast {
    /// Wraps DataFusion's `first_value`.
    pub fn first_value() -> Self {
        Self {
            builtin: first_value_udaf(),
            first: true,
        }
    }

    /// Wraps DataFusion's `last_value`.
    pub fn last_value() -> Self {
        Self {
            builtin: last_value_udaf(),
            first: false,
        }
    }

    /// The value's and the ordering's types, when the call is ordered and the row format
    /// holds them all.
    fn ordered(args: &AccumulatorArgs) -> Option<(DataType, Vec<DataType>)> {
        if args.order_bys.is_empty() {
            return None;
        }
        let order = args
            .order_bys
            .iter()
            .map(|e| e.expr.data_type(args.schema))
            .collect::<Result<Vec<_>>>()
            .ok()?;
        let value = args.return_field.data_type().clone();
        let fields: Vec<SortField> = std::iter::once(&value)
            .chain(&order)
            .map(|t| SortField::new(t.clone()))
            .collect();
        RowConverter::supports_fields(&fields).then_some((value, order))
    }
}

#[warn(clippy::missing_trait_methods)] // Every method is the built-in's but four.
impl AggregateUDFImpl for FirstLast {
    forward_to_builtin!(every_but_grouping);

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        Self::ordered(&args).is_some() || self.builtin.inner().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        match Self::ordered(&args) {
            Some((value, order)) => Ok(Box::new(OrderedPick::try_new(
                self.first,
                args.ignore_nulls,
                value,
                order,
                args.order_bys.iter().map(|e| e.options).collect(),
            )?)),
            None => self.builtin.inner().create_groups_accumulator(args),
        }
    }

    /// The built-in's answer (it remembers that the input arrives ordered), wrapped again.
    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        let inner =
            Arc::clone(self.builtin.inner()).with_beneficial_ordering(beneficial_ordering)?;
        Ok(inner.map(|inner| {
            Arc::new(FirstLast {
                builtin: Arc::new(AggregateUDF::new_from_shared_impl(inner)),
                first: self.first,
            }) as Arc<dyn AggregateUDFImpl>
        }))
    }

    /// The other one of this crate's pair (the built-in names the other built-in).
    fn reverse_expr(&self) -> ReversedUDAF {
        match self.builtin.inner().reverse_expr() {
            ReversedUDAF::Reversed(_) if self.first => ReversedUDAF::Reversed(last_value()),
            ReversedUDAF::Reversed(_) => ReversedUDAF::Reversed(first_value()),
            other => other,
        }
    }
}

/// No row of the batch yet for a group (in [`OrderedPick::best`]).
const NONE: usize = usize::MAX;

/// Per group, the first (or last) row in an ordering: its ordering and its value, kept as
/// bytes of Arrow's row format.
///
/// A batch is read in two steps: each row is compared with its group's best row of the
/// batch so far (Arrow's comparator over the ordering's columns), the groups reached listed
/// once; then only those best rows are turned into rows of bytes and compared with what
/// their groups hold. The state is the built-in's: the value, the ordering's columns and
/// whether a row was seen.
#[derive(Debug)]
struct OrderedPick {
    first: bool,
    ignore_nulls: bool,
    value_type: DataType,
    order_types: Vec<DataType>,
    sort_options: Vec<SortOptions>,
    /// The ordering's columns, as bytes that compare as the ordering does.
    keys: RowConverter,
    /// The value (its bytes are only kept and given back).
    values: RowConverter,
    /// Per group, the kept row's ordering and value as bytes; no bytes for a group no row
    /// reached yet (a row of the format is never empty: each field writes at least a byte).
    key: Vec<Vec<u8>>,
    value: Vec<Vec<u8>>,
    /// The capacity of `key`'s and `value`'s byte vectors, for [`GroupsAccumulator::size`].
    held: usize,
    /// Per group, the batch's best row so far, or [`NONE`] (every entry between batches).
    best: Vec<usize>,
    /// The groups the batch reached.
    touched: Vec<usize>,
    /// A NULL value and a NULL ordering, as rows: what groups without a row give back.
    null_value: Vec<u8>,
    null_key: Vec<u8>,
}

impl OrderedPick {
    fn try_new(
        first: bool,
        ignore_nulls: bool,
        value_type: DataType,
        order_types: Vec<DataType>,
        sort_options: Vec<SortOptions>,
    ) -> Result<Self> {
        let keys = RowConverter::new(
            order_types
                .iter()
                .zip(&sort_options)
                .map(|(t, o)| SortField::new_with_options(t.clone(), *o))
                .collect(),
        )?;
        let values = RowConverter::new(vec![SortField::new(value_type.clone())])?;
        let nulls: Vec<ArrayRef> = order_types
            .iter()
            .map(|t| datafusion::arrow::array::new_null_array(t, 1))
            .collect();
        let null_key = keys.convert_columns(&nulls)?.row(0).as_ref().to_vec();
        let null_value = values
            .convert_columns(&[datafusion::arrow::array::new_null_array(&value_type, 1)])?
            .row(0)
            .as_ref()
            .to_vec();
        Ok(Self {
            first,
            ignore_nulls,
            value_type,
            order_types,
            sort_options,
            keys,
            values,
            key: Vec::new(),
            value: Vec::new(),
            held: 0,
            best: Vec::new(),
            touched: Vec::new(),
            null_value,
            null_key,
        })
    }

    /// Whether a row that compares to the kept one as `candidate` replaces it (ties keep
    /// the kept one).
    fn beats(&self, candidate: Ordering) -> bool {
        match self.first {
            true => candidate == Ordering::Less,
            false => candidate == Ordering::Greater,
        }
    }

    fn resize(&mut self, groups: usize) {
        self.key.resize_with(groups, Vec::new);
        self.value.resize_with(groups, Vec::new);
        self.best.resize(groups, NONE);
    }

    /// Reads a batch: `value`, its ordering's columns `order`, each row's group, and which
    /// rows count (a FILTER, or the state's "set" flags; NULL does not count).
    fn pick(
        &mut self,
        value: &ArrayRef,
        order: &[ArrayRef],
        groups: &[usize],
        counts: Option<&BooleanArray>,
        total_groups: usize,
    ) -> Result<()> {
        self.resize(total_groups);
        let columns: Vec<SortColumn> = order
            .iter()
            .zip(&self.sort_options)
            .map(|(values, options)| SortColumn {
                values: Arc::clone(values),
                options: Some(*options),
            })
            .collect();
        let comparator = LexicographicalComparator::try_new(&columns)?;
        let mut touched = std::mem::take(&mut self.touched);
        for (row, &group) in groups.iter().enumerate() {
            if counts.is_some_and(|c| !(c.is_valid(row) && c.value(row)))
                || (self.ignore_nulls && value.is_null(row))
            {
                continue;
            }
            let best = self.best[group];
            if best == NONE {
                self.best[group] = row;
                touched.push(group);
            } else if self.beats(comparator.compare(row, best)) {
                self.best[group] = row;
            }
        }
        if !touched.is_empty() {
            let rows = UInt32Array::from_iter_values(touched.iter().map(|&g| self.best[g] as u32));
            let order = order
                .iter()
                .map(|a| take(a, &rows, None))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let keys = self.keys.convert_columns(&order)?;
            let values = self.values.convert_columns(&[take(value, &rows, None)?])?;
            for (i, &group) in touched.iter().enumerate() {
                self.best[group] = NONE;
                let key = keys.row(i);
                let kept = &self.key[group];
                if !kept.is_empty() && !self.beats(key.as_ref().cmp(kept)) {
                    continue;
                }
                let before = self.key[group].capacity() + self.value[group].capacity();
                self.key[group].clear();
                self.key[group].extend_from_slice(key.as_ref());
                self.value[group].clear();
                self.value[group].extend_from_slice(values.row(i).as_ref());
                self.held =
                    self.held + self.key[group].capacity() + self.value[group].capacity() - before;
            }
        }
        touched.clear();
        self.touched = touched;
        Ok(())
    }

    /// Takes the first groups out (the others are numbered from 0 again).
    fn take(&mut self, emit_to: EmitTo) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let key = emit_to.take_needed(&mut self.key);
        let value = emit_to.take_needed(&mut self.value);
        self.held -= key.iter().chain(&value).map(Vec::capacity).sum::<usize>();
        // Every entry is NONE between batches: only the length follows the groups.
        self.best.truncate(self.key.len());
        (key, value)
    }

    /// Rows of `converter` back to arrays of `types`, `null` for the empty ones (the row
    /// format gives dictionaries' values back, cast to the dictionary again).
    fn arrays(
        converter: &RowConverter,
        types: &[DataType],
        rows: &[Vec<u8>],
        null: &[u8],
    ) -> Result<Vec<ArrayRef>> {
        let parser = converter.parser();
        let rows = rows
            .iter()
            .map(|row| parser.parse(if row.is_empty() { null } else { row }));
        converter
            .convert_rows(rows)?
            .into_iter()
            .zip(types)
            .map(|(array, t)| match array.data_type() == t {
                true => Ok(array),
                false => Ok(cast(&array, t)?),
            })
            .collect()
    }
}

impl GroupsAccumulator for OrderedPick {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.pick(
            &values[0],
            &values[1..],
            group_indices,
            opt_filter,
            total_num_groups,
        )
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (_, value) = self.take(emit_to);
        let types = [self.value_type.clone()];
        let mut arrays = Self::arrays(&self.values, &types, &value, &self.null_value)?;
        Ok(arrays.remove(0))
    }

    /// The built-in's state: the value, the ordering's columns, whether a row was seen.
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (key, value) = self.take(emit_to);
        let types = [self.value_type.clone()];
        let mut state = Self::arrays(&self.values, &types, &value, &self.null_value)?;
        state.extend(Self::arrays(
            &self.keys,
            &self.order_types,
            &key,
            &self.null_key,
        )?);
        let set: BooleanArray = key.iter().map(|k| Some(!k.is_empty())).collect();
        state.push(Arc::new(set));
        Ok(state)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let Some((set, columns)) = values.split_last() else {
            return internal_err!("first_value/last_value state without columns");
        };
        if columns.len() != 1 + self.order_types.len() {
            return internal_err!(
                "first_value/last_value state of {} columns, expected {}",
                values.len(),
                2 + self.order_types.len()
            );
        }
        self.pick(
            &columns[0],
            &columns[1..],
            group_indices,
            Some(set.as_boolean()),
            total_num_groups,
        )
    }

    /// Each row as a group of its own, as the built-in: its value and ordering, "set" where
    /// the FILTER keeps it.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let mut state = values.to_vec();
        state.push(match opt_filter {
            Some(filter) => Arc::new(filter.clone()),
            None => Arc::new(BooleanArray::from(vec![true; values[0].len()])),
        });
        Ok(state)
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.key.capacity() + self.value.capacity()) * std::mem::size_of::<Vec<u8>>()
            + self.held
            + (self.best.capacity() + self.touched.capacity()) * std::mem::size_of::<usize>()
            + self.keys.size()
            + self.values.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int32Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    /// A row of `t`: group, value, ordering day, ordering text, filter.
    type Row = (
        i32,
        Option<String>,
        Option<i32>,
        Option<String>,
        Option<bool>,
    );

    /// `sql`'s rows as text over `t` (split into `parts` partitions of small batches, so
    /// that partial and final aggregations meet), with this crate's functions or not.
    fn rows(ours: bool, parts: Vec<Vec<Row>>, sql: &str) -> Vec<String> {
        let config = SessionConfig::new()
            .with_target_partitions(3)
            .with_batch_size(5);
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Int32, false),
            Field::new("v", DataType::Utf8, true),
            Field::new("d", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("f", DataType::Boolean, true),
        ]));
        let partitions = parts
            .into_iter()
            .map(|rows| {
                let g = Int32Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
                let v = StringArray::from(rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>());
                let d = Int32Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>());
                let s = StringArray::from(rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>());
                let f = BooleanArray::from(rows.iter().map(|r| r.4).collect::<Vec<_>>());
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(g),
                    Arc::new(v),
                    Arc::new(d),
                    Arc::new(s),
                    Arc::new(f),
                ];
                vec![RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()]
            })
            .collect();
        crate::builtin::rows_of(ours, config, schema, partitions, sql)
    }

    fn any_parts() -> impl Strategy<Value = Vec<Vec<Row>>> {
        let text = || proptest::option::of(prop_oneof!["[a-c]{0,2}", "[a-c]{13,15}"]);
        let row = (
            0i32..6,
            text(),
            proptest::option::of(0i32..4),
            text(),
            proptest::option::of(any::<bool>()),
        );
        proptest::collection::vec(proptest::collection::vec(row, 0..40), 1..4)
    }

    /// Each ordering ends in the value itself (or a column that decides it), so that rows
    /// tied in the ordering give the same answer whichever arrives first: the partitions'
    /// rows meet in no fixed order.
    const QUERIES: [&str; 5] = [
        "SELECT g, last_value(v ORDER BY d, s, v), first_value(v ORDER BY d, s, v), count(*) \
         FROM t GROUP BY g ORDER BY g",
        "SELECT g, last_value(v ORDER BY d DESC NULLS LAST, v) FILTER (WHERE f), \
                first_value(d ORDER BY s NULLS FIRST, d DESC) FILTER (WHERE NOT f) \
         FROM t GROUP BY g ORDER BY g",
        "SELECT g % 2 AS h, last_value(v ORDER BY d NULLS FIRST, v) IGNORE NULLS, \
                first_value(arrow_cast(v, 'Utf8View') ORDER BY s DESC, v DESC) IGNORE NULLS, \
                last_value(arrow_cast(v, 'Dictionary(Int32, Utf8)') ORDER BY d, v), \
                first_value(CAST(d AS DECIMAL(10, 2)) ORDER BY arrow_cast(s, 'LargeUtf8'), d) \
         FROM t GROUP BY 1 ORDER BY 1",
        "SELECT last_value(v ORDER BY d, v), first_value(d ORDER BY s, d) FROM t",
        "SELECT g, last_value(v), count(v) FROM t WHERE v IS NULL GROUP BY g ORDER BY g",
    ];

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            rng_seed: proptest::test_runner::RngSeed::Fixed(37),
            ..ProptestConfig::default()
        })]

        #[test]
        fn ordered_picks_are_the_builtins(parts in any_parts()) {
            for sql in QUERIES {
                prop_assert_eq!(rows(true, parts.clone(), sql), rows(false, parts.clone(), sql), "{}", sql);
            }
        }
    }

    #[test]
    fn the_ordered_accumulator_is_used_and_registered_over_the_builtins() {
        use datafusion::execution::FunctionRegistry;
        let mut ctx = SessionContext::new();
        crate::register_all(&mut ctx).unwrap();
        for name in ["first_value", "last_value"] {
            assert!(
                ctx.state().udaf(name).unwrap().inner().is::<FirstLast>(),
                "{name}"
            );
        }
        let parts = vec![vec![
            (1, Some("old".into()), Some(1), None, None),
            (1, Some("new".into()), Some(3), None, None),
            (1, Some("mid".into()), Some(2), None, None),
            (2, None, Some(5), None, None),
        ]];
        let squeezed: Vec<String> = rows(true, parts, QUERIES[0])[3..5]
            .iter()
            .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(squeezed, ["| 1 | new | old | 3 |", "| 2 | | | 1 |"]);
    }

    /// The last (or first) of `rows` (group, key, value) per group, 0..groups: keys
    /// ascending with NULL first; among equal keys the row seen first.
    fn model(
        rows: &[(usize, Option<i32>, String)],
        groups: usize,
        first: bool,
    ) -> Vec<Option<String>> {
        (0..groups)
            .map(|g| {
                let mut kept: Option<&(usize, Option<i32>, String)> = None;
                for row in rows.iter().filter(|r| r.0 == g) {
                    let better = match kept {
                        None => true,
                        Some(k) if first => row.1 < k.1,
                        Some(k) => row.1 > k.1,
                    };
                    if better {
                        kept = Some(row);
                    }
                }
                kept.map(|k| k.2.clone())
            })
            .collect()
    }

    fn texts(array: &ArrayRef) -> Vec<Option<String>> {
        array
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            rng_seed: proptest::test_runner::RngSeed::Fixed(41),
            ..ProptestConfig::default()
        })]

        /// The accumulator itself, batch by batch: the first groups emitted (evaluated or
        /// as state) and the rest renumbered, and the states merged into another
        /// accumulator (the first part twice).
        #[test]
        fn emitting_and_merging_keep_the_picks(
            batches in proptest::collection::vec(
                proptest::collection::vec((0usize..6, proptest::option::of(0i32..5), "[ab]{0,3}"), 0..20),
                1..4),
            cut in 0usize..7,
            first in any::<bool>(),
        ) {
            let groups = 6;
            let cut = cut.min(groups);
            let rows: Vec<_> = batches.iter().flatten().cloned().collect();
            let options = SortOptions { descending: false, nulls_first: true };
            let new = || {
                OrderedPick::try_new(first, false, DataType::Utf8, vec![DataType::Int32], vec![options])
                    .unwrap()
            };
            let feed = |acc: &mut OrderedPick| {
                for batch in &batches {
                    let values: ArrayRef =
                        Arc::new(StringArray::from_iter_values(batch.iter().map(|r| &r.2)));
                    let keys: ArrayRef = Arc::new(Int32Array::from(
                        batch.iter().map(|r| r.1).collect::<Vec<_>>(),
                    ));
                    let indices: Vec<usize> = batch.iter().map(|r| r.0).collect();
                    acc.update_batch(&[values, keys], &indices, None, groups).unwrap();
                }
            };
            let expected = model(&rows, groups, first);
            let mut acc = new();
            feed(&mut acc);
            let head = texts(&acc.evaluate(EmitTo::First(cut)).unwrap());
            let tail = texts(&acc.evaluate(EmitTo::All).unwrap());
            prop_assert_eq!([head, tail].concat(), expected.clone());
            let mut acc = new();
            feed(&mut acc);
            let head = acc.state(EmitTo::First(cut)).unwrap();
            let tail = acc.state(EmitTo::All).unwrap();
            let mut merged = new();
            let head_groups: Vec<usize> = (0..cut).collect();
            let tail_groups: Vec<usize> = (cut..groups).collect();
            merged.merge_batch(&head, &head_groups, groups).unwrap();
            merged.merge_batch(&tail, &tail_groups, groups).unwrap();
            merged.merge_batch(&head, &head_groups, groups).unwrap();
            prop_assert_eq!(texts(&merged.evaluate(EmitTo::All).unwrap()), expected);
        }
    }
}
