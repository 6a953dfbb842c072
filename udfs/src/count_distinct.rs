//! `count(DISTINCT text)` with a groups accumulator.
//!
//! DataFusion 55 has a groups accumulator for `count(DISTINCT)` of integers only; of text
//! it keeps one set per group behind its row-by-row adapter, which slices every batch
//! per group: at 1 M customers "customers per collector and currency" spent a fifth of
//! its CPU inserting into those sets. [`Count`] replaces the built-in `count` under the
//! same name, signature and state, and for `count(DISTINCT x)` of a string (plain, large
//! or view) gives the aggregation one set of (group, value) pairs, as DataFusion's own
//! integer version does. Everything else — `count(x)`, `count(*)`, windows, statistics —
//! is the built-in's. Same counts (a property test against the built-in, with NULLs,
//! filters and two-phase aggregation through the state).

use std::hash::BuildHasher;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanArray, Int64Array, ListArray, StringArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::hash_utils::RandomState;
use datafusion::error::Result;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator};
use hashbrown::HashTable;

use crate::builtin::forward_to_builtin;

/// `count`, DataFusion's built-in with a groups accumulator for distinct text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Count {
    builtin: Arc<AggregateUDF>,
}

impl Default for Count {
    fn default() -> Self {
        Self::new()
    }
}

impl Count {
    /// Wraps DataFusion's `count`.
    pub fn new() -> Self {
        Self {
            builtin: datafusion::functions_aggregate::count::count_udaf(),
        }
    }

    fn distinct_text(args: &AccumulatorArgs) -> bool {
        args.is_distinct
            && args.exprs.len() == 1
            && matches!(
                args.expr_fields[0].data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
    }
}

#[warn(clippy::missing_trait_methods)] // Every method is the built-in's but two.
impl AggregateUDFImpl for Count {
    forward_to_builtin!(every_but_grouping, reverse_expr);

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        Self::distinct_text(&args) || self.builtin.inner().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        match Self::distinct_text(&args) {
            true => Ok(Box::new(DistinctTextCounts::new(
                args.expr_fields[0].data_type().clone(),
            ))),
            false => self.builtin.inner().create_groups_accumulator(args),
        }
    }

    /// Not order-sensitive: never asked (as the built-in's).
    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        Arc::clone(self.builtin.inner())
            .with_beneficial_ordering(beneficial_ordering)
            .map(|inner| inner.map(|_| self as Arc<dyn AggregateUDFImpl>))
    }
}

/// The distinct values of every group, as one set of (group, value) pairs, and each
/// group's count of them.
///
/// The pairs' bytes live in one buffer (`bytes`) and the set holds their places in it, so
/// that a new pair costs no allocation of its own; a row repeating the pair of the row
/// before it is not looked up at all (input in the value's order — open items by
/// customer, a customer's activities — repeats it most of the time).
#[derive(Debug)]
struct DistinctTextCounts {
    /// The input's type, also the type of the state's list items.
    data_type: DataType,
    seen: HashTable<Pair>,
    state: RandomState,
    /// The bytes of the values in `seen`, one after the other.
    bytes: Vec<u8>,
    counts: Vec<i64>,
}

/// One (group, value) pair of the set: the value is `bytes[start..start + len]`.
#[derive(Debug, Clone, Copy)]
struct Pair {
    hash: u64,
    group: usize,
    start: usize,
    len: usize,
}

impl DistinctTextCounts {
    fn new(data_type: DataType) -> Self {
        Self {
            data_type,
            seen: HashTable::new(),
            state: RandomState::default(),
            bytes: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// Adds the pair if it is new (the buffer takes a copy of its value).
    fn insert(&mut self, group: usize, value: &[u8]) {
        let hash = self.state.hash_one((group, value));
        let bytes = &self.bytes;
        let same = |p: &Pair| p.group == group && &bytes[p.start..p.start + p.len] == value;
        if self.seen.find(hash, same).is_none() {
            let pair = Pair {
                hash,
                group,
                start: self.bytes.len(),
                len: value.len(),
            };
            self.bytes.extend_from_slice(value);
            self.seen.insert_unique(hash, pair, |p| p.hash);
            self.counts[group] += 1;
        }
    }

    /// [`Self::insert`], passed over when the pair is the `previous` row's (which it then
    /// becomes).
    fn insert_after<'a>(
        &mut self,
        previous: &mut Option<(usize, &'a [u8])>,
        group: usize,
        value: &'a [u8],
    ) {
        if *previous != Some((group, value)) {
            self.insert(group, value);
            *previous = Some((group, value));
        }
    }

    /// Takes the pairs of the first `n` groups out and numbers the other groups' pairs
    /// from 0 again, as the groups emitted before them leave. Gives the buffer the values
    /// were in and, per emitted group, the places of its values there (in the order they
    /// were first seen).
    fn emit(&mut self, n: usize) -> (Vec<u8>, Vec<Vec<(usize, usize)>>) {
        let seen = std::mem::take(&mut self.seen);
        let bytes = std::mem::take(&mut self.bytes);
        let mut groups = vec![Vec::new(); n];
        let mut kept = Vec::new();
        for pair in seen {
            match pair.group < n {
                true => groups[pair.group].push((pair.start, pair.len)),
                false => kept.push(pair),
            }
        }
        kept.sort_unstable_by_key(|p| p.start);
        for p in kept {
            let value = &bytes[p.start..p.start + p.len];
            let group = p.group - n;
            let pair = Pair {
                hash: self.state.hash_one((group, value)),
                group,
                start: self.bytes.len(),
                len: p.len,
            };
            self.bytes.extend_from_slice(value);
            self.seen.insert_unique(pair.hash, pair, |p| p.hash);
        }
        groups.iter_mut().for_each(|g| g.sort_unstable());
        (bytes, groups)
    }

    /// The state: per group (row of `offsets`) a list of its values, as the built-in's.
    fn state_lists(&self, offsets: Vec<i32>, items: ArrayRef) -> ArrayRef {
        Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(self.data_type.clone(), true)),
            OffsetBuffer::new(offsets.into()),
            items,
            None,
        ))
    }

    /// Calls `f(row, value)` for every non-NULL text value of `array` (any string type).
    fn each<'a>(array: &'a ArrayRef, mut f: impl FnMut(usize, &'a [u8])) -> Result<()> {
        match array.data_type() {
            DataType::Utf8 => {
                let a = array.as_string::<i32>();
                (0..a.len())
                    .filter(|&i| a.is_valid(i))
                    .for_each(|i| f(i, a.value(i).as_bytes()));
            }
            DataType::LargeUtf8 => {
                let a = array.as_string::<i64>();
                (0..a.len())
                    .filter(|&i| a.is_valid(i))
                    .for_each(|i| f(i, a.value(i).as_bytes()));
            }
            DataType::Utf8View => {
                let a = array.as_string_view();
                (0..a.len())
                    .filter(|&i| a.is_valid(i))
                    .for_each(|i| f(i, a.value(i).as_bytes()));
            }
            other => {
                return datafusion::common::internal_err!("count(DISTINCT) of text given {other}");
            }
        }
        Ok(())
    }
}

impl GroupsAccumulator for DistinctTextCounts {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.counts.resize(total_num_groups, 0);
        let mut previous = None;
        Self::each(&values[0], |row, value| {
            if opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row)) {
                self.insert_after(&mut previous, group_indices[row], value);
            }
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let counts = emit_to.take_needed(&mut self.counts);
        match emit_to {
            EmitTo::All => {
                self.seen.clear();
                self.bytes.clear();
            }
            EmitTo::First(n) => drop(self.emit(n)),
        }
        Ok(Arc::new(Int64Array::from(counts)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let counts = emit_to.take_needed(&mut self.counts);
        let emitted = counts.len();
        let (bytes, groups) = self.emit(emitted);
        let pairs: usize = groups.iter().map(Vec::len).sum();
        let mut items = BinaryBuilder::with_capacity(pairs, bytes.len());
        let mut offsets = Vec::with_capacity(emitted + 1);
        offsets.push(0i32);
        for places in groups {
            for (start, len) in places {
                items.append_value(&bytes[start..start + len]);
            }
            offsets.push(datafusion::arrow::array::ArrayBuilder::len(&items) as i32);
        }
        // The bytes were copied from string arrays: UTF-8 (checked once, here).
        let items = StringArray::try_from_binary(items.finish())?;
        let items = cast(&items, &self.data_type)?;
        Ok(vec![self.state_lists(offsets, items)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.counts.resize(total_num_groups, 0);
        let lists = values[0].as_list::<i32>();
        let offsets = lists.offsets();
        let mut row_groups = Vec::with_capacity(lists.values().len());
        for (row, &group) in group_indices.iter().enumerate() {
            let items = (offsets[row + 1] - offsets[row]) as usize;
            row_groups.extend(std::iter::repeat_n(group, items));
        }
        let first = offsets[0] as usize;
        let items = lists.values().slice(first, row_groups.len());
        let mut previous = None;
        Self::each(&items, |row, value| {
            self.insert_after(&mut previous, row_groups[row], value)
        })
    }

    /// Each row as a group of its own: a list of its value (none when NULL or filtered
    /// out).
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let rows = values[0].len();
        let mut kept = vec![false; rows];
        Self::each(&values[0], |row, _| {
            kept[row] = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
        })?;
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0i32);
        let mut indices = Vec::new();
        for (row, keep) in kept.iter().enumerate() {
            if *keep {
                indices.push(row as u32);
            }
            offsets.push(indices.len() as i32);
        }
        let items = datafusion::arrow::compute::take(
            &values[0],
            &datafusion::arrow::array::UInt32Array::from(indices),
            None,
        )?;
        Ok(vec![self.state_lists(offsets, items)])
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.seen.capacity() * (std::mem::size_of::<Pair>() + 1)
            + self.bytes.capacity()
            + self.counts.capacity() * std::mem::size_of::<i64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int32Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    /// A row of `t`: group, text, filter.
    type Row = (i32, Option<String>, Option<bool>);

    /// `sql`'s rows as text over `t` (split into `parts` partitions of small batches, so
    /// that partial and final aggregations meet), with this crate's functions or not.
    fn rows(ours: bool, parts: Vec<Vec<Row>>, sql: &str) -> Vec<String> {
        let mut config = SessionConfig::new()
            .with_target_partitions(3)
            .with_batch_size(7);
        let options = config.options_mut();
        // Skip partial aggregation early, so that rows also go through convert_to_state.
        options
            .execution
            .skip_partial_aggregation_probe_rows_threshold = 4;
        options
            .execution
            .skip_partial_aggregation_probe_ratio_threshold = 0.1;
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Int32, false),
            Field::new("s", DataType::Utf8, true),
            Field::new("f", DataType::Boolean, true),
        ]));
        let partitions = parts
            .into_iter()
            .map(|rows| {
                let g = Int32Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
                let s = StringArray::from(rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>());
                let f = BooleanArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>());
                let columns: Vec<ArrayRef> = vec![Arc::new(g), Arc::new(s), Arc::new(f)];
                vec![RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()]
            })
            .collect();
        crate::builtin::rows_of(ours, config, schema, partitions, sql)
    }

    fn any_parts() -> impl Strategy<Value = Vec<Vec<Row>>> {
        let row = (
            0i32..5,
            proptest::option::of(prop_oneof![
                "[a-c]{0,2}",
                "[a-c]{13,17}",
                Just("é".to_string())
            ]),
            proptest::option::of(any::<bool>()),
        );
        proptest::collection::vec(proptest::collection::vec(row, 0..30), 1..4)
    }

    const QUERIES: [&str; 4] = [
        "SELECT g, count(DISTINCT s), count(*), count(s) FROM t GROUP BY g ORDER BY g",
        "SELECT g, count(DISTINCT s) FILTER (WHERE f), sum(g) FROM t GROUP BY g ORDER BY g",
        "SELECT g % 2 AS h, count(DISTINCT arrow_cast(s, 'Utf8View')), \
                count(DISTINCT arrow_cast(s, 'LargeUtf8')) FROM t GROUP BY 1 ORDER BY 1",
        "SELECT count(DISTINCT s), count(DISTINCT s) FILTER (WHERE NOT f) FROM t",
    ];

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            rng_seed: proptest::test_runner::RngSeed::Fixed(29),
            ..ProptestConfig::default()
        })]

        #[test]
        fn distinct_counts_of_text_are_the_builtins(parts in any_parts()) {
            for sql in QUERIES {
                prop_assert_eq!(rows(true, parts.clone(), sql), rows(false, parts.clone(), sql), "{}", sql);
            }
        }
    }

    #[test]
    fn the_groups_accumulator_is_used_for_distinct_text_only() {
        use datafusion::execution::FunctionRegistry;
        let mut ctx = SessionContext::new();
        crate::register_all(&mut ctx).unwrap();
        let count = ctx.state().udaf("count").unwrap();
        assert!(count.inner().is::<Count>());
        let parts = vec![vec![
            (1, Some("x".to_string()), None),
            (1, Some("x".to_string()), None),
            (2, None, None),
        ]];
        let squeezed: Vec<String> = rows(true, parts, QUERIES[0])[3..5]
            .iter()
            .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(squeezed, ["| 1 | 1 | 2 | 2 |", "| 2 | 0 | 1 | 0 |"]);
    }

    /// The distinct counts of `rows` (group, value) per group, 0..groups.
    fn model(rows: &[(usize, String)], groups: usize) -> Vec<i64> {
        let set: std::collections::BTreeSet<_> = rows.iter().collect();
        (0..groups)
            .map(|g| set.iter().filter(|(group, _)| *group == g).count() as i64)
            .collect()
    }

    fn counts_of(array: ArrayRef) -> Vec<i64> {
        array
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .values()
            .to_vec()
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            rng_seed: proptest::test_runner::RngSeed::Fixed(31),
            ..ProptestConfig::default()
        })]

        /// The accumulator itself, batch by batch: counts after runs of repeated rows, the
        /// first groups emitted (evaluated or as state) and the rest renumbered, and the
        /// states merged into another accumulator.
        #[test]
        fn emitting_and_merging_keep_the_distinct_pairs(
            batches in proptest::collection::vec(
                proptest::collection::vec((0usize..6, "[ab]{0,2}|[ab]{15,17}"), 0..20), 1..4),
            first in 0usize..7,
        ) {
            let groups = 6;
            let rows: Vec<(usize, String)> = batches.iter().flatten().cloned().collect();
            let feed = |acc: &mut DistinctTextCounts| {
                for batch in &batches {
                    let values: ArrayRef =
                        Arc::new(StringArray::from_iter_values(batch.iter().map(|r| &r.1)));
                    let indices: Vec<usize> = batch.iter().map(|r| r.0).collect();
                    acc.update_batch(&[values], &indices, None, groups).unwrap();
                }
            };
            let expected = model(&rows, groups);
            // Evaluated: the first groups, then the others numbered from 0.
            let mut acc = DistinctTextCounts::new(DataType::Utf8);
            feed(&mut acc);
            let head = counts_of(acc.evaluate(EmitTo::First(first.min(groups))).unwrap());
            let tail = counts_of(acc.evaluate(EmitTo::All).unwrap());
            prop_assert_eq!([head, tail].concat(), expected.clone());
            // As state, in two parts, merged into one accumulator (every pair twice).
            let mut acc = DistinctTextCounts::new(DataType::Utf8View);
            feed(&mut acc);
            let cut = first.min(groups);
            let head = acc.state(EmitTo::First(cut)).unwrap().remove(0);
            let tail = acc.state(EmitTo::All).unwrap().remove(0);
            let mut merged = DistinctTextCounts::new(DataType::Utf8);
            let head_groups: Vec<usize> = (0..cut).collect();
            let tail_groups: Vec<usize> = (cut..groups).collect();
            merged.merge_batch(&[Arc::clone(&head)], &head_groups, groups).unwrap();
            merged.merge_batch(&[tail], &tail_groups, groups).unwrap();
            merged.merge_batch(&[head], &head_groups, groups).unwrap();
            prop_assert_eq!(counts_of(merged.evaluate(EmitTo::All).unwrap()), expected);
        }
    }
}
