//! Filters of a few plain comparisons, every term evaluated over the whole batch.
//!
//! "Promises of the last quarter" filters 52 M activities by `kind = 'promise' AND
//! activity_date > DATE '…'`. DataFusion evaluates a conjunction term by term: when the
//! first term keeps few rows (12 % here) it evaluates the second only on those, by
//! filtering its inputs and scattering the results back, and it compares string views to
//! a literal through Arrow's general view comparison, which reads each view's length and
//! prefix before deciding. `EXPLAIN ANALYZE` of `SELECT count(*) FROM activities WHERE …`
//! at 1 M customers: the filter 323 ms of CPU, where the two terms alone take 160 and
//! 25 ms; with this module's rule, promises by collector's filter 447 → 132 ms.
//!
//! [`CheapFilters`] runs each [`FilterExec`] whose predicate it can rewrite as a
//! [`CheapFilterExec`] (planned and shown as the filter it replaces): a string-view column
//! compared for equality with text of at most 12 bytes becomes [`ShortTextEquals`] (a
//! view holding text of at most 12 bytes holds all of it, so one 16-byte comparison a row
//! decides), and a conjunction whose terms are all such comparisons or a column compared
//! to a literal of a primitive type becomes [`EveryTerm`]: each term over the whole batch,
//! then SQL's `AND` of the results (NULL where no term is false and one is NULL). The rows
//! kept are the same. Other predicates are left as they are.
//!
//! A range `column < value` (`<=`, `>`, `>=`) on a column the filter's input is in
//! ascending order of (the warehouse's tables by customer id) becomes [`SortedRange`],
//! alone or as a term of [`EveryTerm`]: the rows it keeps in a batch are one run, found by
//! a binary search. The nightly's features compute 25,000 customers at a time, each
//! slice's scans filtered by `customer_id >= '…' AND customer_id < '…'` and dates: `perf`
//! of a steady night at 1 M customers put a fifth of the scoring stage's CPU in those
//! filters, most of it comparing text row by row; with the ranges found by search, the
//! scoring stage 18.6–18.7 → 16.9–17.9 s, the nights' outputs identical (benches/README.md,
//! tenth session). Not where the predicate also compares a column for equality: a scan
//! takes each `column = value` pushed into it for a constant of its rows (DataFusion's
//! equivalence properties) though only the filter above keeps them to it, and a constant
//! column, or one ordered after it, looks in order when it is not.

use std::cmp::Ordering;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, BooleanBufferBuilder, RecordBatch, make_comparator,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::and_kleene;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};

use crate::key_order_join::first_not_below;

/// The physical optimizer rule (runs after DataFusion's own rules).
#[derive(Debug, Default)]
pub struct CheapFilters;

impl PhysicalOptimizerRule for CheapFilters {
    fn name(&self) -> &str {
        "arq_cheap_filters"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(plan
            .transform_up(|node| match CheapFilterExec::try_new(&node)? {
                Some(exec) => Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>)),
                None => Ok(Transformed::no(node)),
            })?
            .data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A filter run with the rewritten predicate. It shows and plans as the [`FilterExec`] it
/// replaces — the same display, and the same properties: what the original predicate
/// tells the plan above (`customer = 'a'` makes the customer a constant, which a window
/// partitioned by customer counts on) — and runs a copy of it with the predicate
/// rewritten.
#[derive(Debug)]
pub struct CheapFilterExec {
    original: Arc<dyn ExecutionPlan>,
    cheap: Arc<dyn ExecutionPlan>,
}

impl CheapFilterExec {
    /// The exec in place of `plan` when `plan` is a filter whose predicate gets cheaper.
    pub fn try_new(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Self>> {
        let Some(filter) = plan.downcast_ref::<FilterExec>() else {
            return Ok(None);
        };
        let Some(predicate) = cheap(filter.predicate(), filter.input())? else {
            return Ok(None);
        };
        let cheap = FilterExecBuilder::from(filter)
            .with_predicate(predicate)
            .build()?;
        Ok(Some(CheapFilterExec {
            original: Arc::clone(plan),
            cheap: Arc::new(cheap),
        }))
    }

    /// The predicate the filter runs with.
    pub fn predicate(&self) -> &Arc<dyn PhysicalExpr> {
        self.cheap
            .downcast_ref::<FilterExec>()
            .expect("CheapFilterExec runs a FilterExec")
            .predicate()
    }
}

impl DisplayAs for CheapFilterExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.original.fmt_as(t, f)
    }
}

impl ExecutionPlan for CheapFilterExec {
    fn name(&self) -> &str {
        "CheapFilterExec"
    }

    crate::stand_in::planned_as_replaced!(original, |_this, plan| {
        CheapFilterExec::try_new(&plan)
    });

    fn metrics(&self) -> Option<MetricsSet> {
        self.cheap.metrics()
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.cheap.execute(partition, context)
    }
}

/// `predicate` of a filter over `input` rewritten (see the module's comment), or `None`
/// where nothing changes.
fn cheap(
    predicate: &Arc<dyn PhysicalExpr>,
    input: &Arc<dyn ExecutionPlan>,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let schema = input.schema();
    let mut terms = Vec::new();
    let plain_terms = conjunction(predicate, &mut terms);
    // A scan counts each `column = value` of the filter pushed into it as a constant of
    // its rows, though only this filter keeps them to it: with one, a column may look in
    // order when it is not (`kind = 'dispute'` over activities: `kind` "constant", so
    // "sorted"). Sorted ranges only where the predicate compares nothing for equality.
    let ranges = plain_terms && !terms.iter().any(is_equality);
    if ranges && let Some(range) = SortedRange::of(predicate, input)? {
        return Ok(Some(Arc::new(range)));
    }
    if let Some(equals) = ShortTextEquals::of(predicate, &schema)? {
        return Ok(Some(Arc::new(equals)));
    }
    if !plain_terms || terms.len() < 2 {
        return Ok(None);
    }
    let mut plain = Vec::with_capacity(terms.len());
    for term in terms {
        if ranges && let Some(range) = SortedRange::of(&term, input)? {
            plain.push(Arc::new(range) as Arc<dyn PhysicalExpr>);
            continue;
        }
        match ShortTextEquals::of(&term, &schema)? {
            Some(equals) => plain.push(Arc::new(equals) as Arc<dyn PhysicalExpr>),
            None if primitive_comparison(&term, &schema)? => plain.push(term),
            None => return Ok(None),
        }
    }
    Ok(Some(Arc::new(EveryTerm { terms: plain })))
}

/// The terms of a conjunction (itself when not one) into `terms`; false when a term is
/// itself not a plain comparison of a column to a literal.
fn conjunction(expr: &Arc<dyn PhysicalExpr>, terms: &mut Vec<Arc<dyn PhysicalExpr>>) -> bool {
    match expr.downcast_ref::<BinaryExpr>() {
        Some(b) if *b.op() == Operator::And => {
            conjunction(b.left(), terms) && conjunction(b.right(), terms)
        }
        Some(b) if column_to_literal(b).is_some() => {
            terms.push(Arc::clone(expr));
            true
        }
        _ => false,
    }
}

/// Whether `term` is a comparison `column = literal`.
fn is_equality(term: &Arc<dyn PhysicalExpr>) -> bool {
    term.downcast_ref::<BinaryExpr>()
        .is_some_and(|b| *b.op() == Operator::Eq)
}

/// A comparison `column op literal`: the column and the literal's value.
fn column_to_literal(b: &BinaryExpr) -> Option<(&Column, &ScalarValue)> {
    if !matches!(
        b.op(),
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
    ) {
        return None;
    }
    let column = b.left().downcast_ref::<Column>()?;
    let literal = b.right().downcast_ref::<Literal>()?;
    Some((column, literal.value()))
}

/// Whether `term` compares a column of a primitive type (integers, dates, decimals,
/// timestamps) to a literal: cheap over a whole batch.
fn primitive_comparison(term: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<bool> {
    let Some((column, _)) = term
        .downcast_ref::<BinaryExpr>()
        .and_then(column_to_literal)
    else {
        return Ok(false);
    };
    Ok(column.data_type(schema)?.is_primitive())
}

/// `column = 'text'` for a string-view column and text of at most 12 bytes: the view of
/// each row against the view of the text (its length, then its bytes; the padding after
/// them is masked off).
#[derive(Debug, Eq)]
pub struct ShortTextEquals {
    column: Arc<dyn PhysicalExpr>,
    text: String,
    view: u128,
    mask: u128,
}

impl ShortTextEquals {
    /// The expression in place of `expr` when it is such a comparison.
    fn of(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<Option<Self>> {
        let Some(b) = expr.downcast_ref::<BinaryExpr>() else {
            return Ok(None);
        };
        let Some((column, value)) = column_to_literal(b) else {
            return Ok(None);
        };
        let text = match value {
            ScalarValue::Utf8View(Some(t)) | ScalarValue::Utf8(Some(t)) => t,
            _ => return Ok(None),
        };
        if *b.op() != Operator::Eq
            || text.len() > 12
            || column.data_type(schema)? != DataType::Utf8View
        {
            return Ok(None);
        }
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&(text.len() as u32).to_le_bytes());
        bytes[4..4 + text.len()].copy_from_slice(text.as_bytes());
        Ok(Some(ShortTextEquals {
            column: Arc::clone(b.left()),
            text: text.clone(),
            view: u128::from_le_bytes(bytes),
            mask: u128::MAX >> (96 - 8 * text.len()),
        }))
    }
}

impl fmt::Display for ShortTextEquals {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} = {}", self.column, self.text)
    }
}

impl PhysicalExpr for ShortTextEquals {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        let nullable = self.column.nullable(input_schema)?;
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(
            "short_text_equals",
            DataType::Boolean,
            nullable,
        )))
    }

    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.column.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let array = self.column.evaluate(batch)?.into_array(batch.num_rows())?;
        let Some(strings) = array.as_string_view_opt() else {
            return exec_err!("ShortTextEquals: a column of {}", array.data_type());
        };
        let views = strings.views();
        let equal = BooleanBuffer::collect_bool(views.len(), |i| views[i] & self.mask == self.view);
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            equal,
            strings.nulls().cloned(),
        ))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.column]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(ShortTextEquals {
            column: Arc::clone(&children[0]),
            text: self.text.clone(),
            view: self.view,
            mask: self.mask,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.column.fmt_sql(f)?;
        write!(f, " = '{}'", self.text.replace('\'', "''"))
    }
}

/// `column op value` (`<`, `<=`, `>`, `>=`) where every batch of the filter's input holds
/// the column in ascending order (the input's declared order: the warehouse's tables by
/// customer, `Warehouse::register`) and it is not a constant: the rows it keeps are one
/// run, found by a binary search instead of a comparison a row. Text is compared by its
/// bytes, as SQL and the order compare it. A batch with a NULL in the column is compared
/// row by row.
#[derive(Debug, Eq)]
pub struct SortedRange {
    /// The comparison it stands for (what it shows, and runs on a batch with NULLs).
    comparison: Arc<dyn PhysicalExpr>,
    column: Arc<dyn PhysicalExpr>,
    op: Operator,
    value: ScalarValue,
}

impl SortedRange {
    /// The expression in place of `expr` when it is such a comparison on a column `input`
    /// is in ascending order of.
    fn of(expr: &Arc<dyn PhysicalExpr>, input: &Arc<dyn ExecutionPlan>) -> Result<Option<Self>> {
        let Some(b) = expr.downcast_ref::<BinaryExpr>() else {
            return Ok(None);
        };
        let Some((column, value)) = column_to_literal(b) else {
            return Ok(None);
        };
        let schema = input.schema();
        let data_type = column.data_type(&schema)?;
        let order = input.properties().equivalence_properties();
        if !matches!(
            b.op(),
            Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
        ) || value.is_null()
            || value.data_type() != data_type
            || !crate::key_order_join::walkable(&data_type)
            || order.is_expr_constant(b.left()).is_some()
            || !crate::key_order_join::ascending_in(input, b.left())?
        {
            return Ok(None);
        }
        Ok(Some(SortedRange {
            comparison: Arc::clone(expr),
            column: Arc::clone(b.left()),
            op: *b.op(),
            value: value.clone(),
        }))
    }
}

impl fmt::Display for SortedRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.comparison)
    }
}

impl PartialEq for SortedRange {
    fn eq(&self, other: &Self) -> bool {
        self.comparison.eq(&other.comparison)
    }
}

impl Hash for SortedRange {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.comparison.hash(state);
    }
}

impl PhysicalExpr for SortedRange {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.comparison.return_field(input_schema)
    }

    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.comparison.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let n = batch.num_rows();
        let array = self.column.evaluate(batch)?.into_array(n)?;
        if array.null_count() > 0 {
            return self.comparison.evaluate(batch);
        }
        let value = self.value.to_array_of_size(1)?;
        let compare = make_comparator(array.as_ref(), value.as_ref(), SortOptions::default())?;
        // The rows below the value come first, then those equal to it, then the rest.
        let below = || first_not_below(0, n, |r| compare(r, 0) == Ordering::Less);
        let not_above = || first_not_below(0, n, |r| compare(r, 0) != Ordering::Greater);
        let (from, to) = match self.op {
            Operator::Lt => (0, below()),
            Operator::LtEq => (0, not_above()),
            Operator::Gt => (not_above(), n),
            Operator::GtEq => (below(), n),
            other => return exec_err!("SortedRange: the operator {other}"),
        };
        let mut kept = BooleanBufferBuilder::new(n);
        kept.append_n(from, false);
        kept.append_n(to.saturating_sub(from), true);
        kept.append_n(n - to.max(from), false);
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            kept.finish(),
            None,
        ))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.comparison]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        // Only the comparison's own rewrite can be trusted here: without the plan, the
        // order of a new column is not known.
        let comparison = Arc::clone(&children[0]);
        let same = comparison
            .downcast_ref::<BinaryExpr>()
            .and_then(|b| column_to_literal(b).map(|(c, v)| (b, c, v)))
            .is_some_and(|(b, c, v)| {
                *b.op() == self.op
                    && *v == self.value
                    && self.column.downcast_ref::<Column>() == Some(c)
            });
        Ok(match same {
            true => self,
            false => comparison,
        })
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.comparison.fmt_sql(f)
    }
}

/// A conjunction evaluated term by term over the whole batch, then `AND`ed (SQL's).
#[derive(Debug, Eq)]
pub struct EveryTerm {
    terms: Vec<Arc<dyn PhysicalExpr>>,
}

// By hand: derived comparisons of `Arc<dyn PhysicalExpr>` do not compile (and hashes go
// with comparisons).
impl PartialEq for EveryTerm {
    fn eq(&self, other: &Self) -> bool {
        self.terms.len() == other.terms.len()
            && self.terms.iter().zip(&other.terms).all(|(a, b)| a.eq(b))
    }
}

impl PartialEq for ShortTextEquals {
    fn eq(&self, other: &Self) -> bool {
        self.column.eq(&other.column) && self.text == other.text
    }
}

impl Hash for EveryTerm {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.terms.iter().for_each(|t| t.hash(state));
    }
}

impl Hash for ShortTextEquals {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.column.hash(state);
        self.text.hash(state);
    }
}

impl fmt::Display for EveryTerm {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

impl PhysicalExpr for EveryTerm {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        let nullable = self.nullable(input_schema)?;
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(
            "every_term",
            DataType::Boolean,
            nullable,
        )))
    }

    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        for term in &self.terms {
            if term.nullable(input_schema)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let n = batch.num_rows();
        let mut all: Option<BooleanArray> = None;
        for term in &self.terms {
            let value = term.evaluate(batch)?.into_array(n)?;
            let value = value.as_boolean_opt().cloned();
            let Some(value) = value else {
                return exec_err!("EveryTerm: a term of type other than boolean");
            };
            all = Some(match all {
                None => value,
                Some(all) => and_kleene(&all, &value)?,
            });
        }
        match all {
            Some(all) => Ok(ColumnarValue::Array(Arc::new(all))),
            None => exec_err!("EveryTerm: no terms"),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.terms.iter().collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(EveryTerm { terms: children }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            term.fmt_sql(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        ArrayRef, Date32Array, Int32Array, Int64Array, StringArray, StringViewArray,
    };
    use datafusion::arrow::datatypes::Field;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    /// Text of every kind a view holds: empty, inline up to 12 bytes, in a buffer; two
    /// that share a 4-byte prefix with the literals.
    const TEXTS: [&str; 7] = [
        "",
        "promise",
        "promised",
        "call",
        "twelve bytes",
        "promise to pay later",
        "calls",
    ];

    fn session(rows: &[(Option<u8>, Option<i64>)], rule: bool) -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("kind", DataType::Utf8View, true),
            Field::new("day", DataType::Date32, true),
            Field::new("x", DataType::Int64, true),
        ]));
        let batch = |rows: &[(Option<u8>, Option<i64>)]| {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringViewArray::from_iter(
                    rows.iter()
                        .map(|r| r.0.map(|k| TEXTS[k as usize % TEXTS.len()])),
                )),
                Arc::new(Date32Array::from_iter(
                    rows.iter().map(|r| r.1.map(|x| 20_000 + (x % 7) as i32)),
                )),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1))),
            ];
            RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
        };
        let batches: Vec<RecordBatch> = rows.chunks(5).map(batch).collect();
        let table = MemTable::try_new(Arc::clone(&schema), vec![batches]).unwrap();
        let mut state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(1))
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(CheapFilters));
        }
        let ctx = SessionContext::new_with_state(state.build());
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    /// The rows of `sql` as sorted text and the plan, its filter's predicate marked
    /// `[short]` or `[every]` where it is one of this module's.
    async fn run(ctx: &SessionContext, sql: &str) -> (Vec<String>, String) {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut shown = displayable(plan.as_ref()).indent(false).to_string();
        plan.apply(|node| {
            if let Some(filter) = node.downcast_ref::<CheapFilterExec>() {
                let p = filter.predicate();
                if p.downcast_ref::<ShortTextEquals>().is_some() {
                    shown.push_str("[short]");
                }
                if p.downcast_ref::<SortedRange>().is_some() {
                    shown.push_str("[range]");
                }
                if let Some(every) = p.downcast_ref::<EveryTerm>() {
                    shown.push_str("[every]");
                    let ranges = every.terms.iter();
                    let ranges = ranges.filter(|t| t.downcast_ref::<SortedRange>().is_some());
                    match ranges.count() {
                        0 => {}
                        n => shown.push_str(&format!("[{n} ranges]")),
                    }
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
        rows.sort();
        (rows, shown)
    }

    /// Queries and the predicate the rule must leave in the plan (`None`: unchanged).
    const QUERIES: [(&str, Option<&str>); 8] = [
        (
            "SELECT * FROM t WHERE kind = 'promise'",
            Some("kind@0 = promise[short]"),
        ),
        (
            "SELECT * FROM t WHERE kind = 'promise' AND day > DATE '2024-10-04'",
            Some("kind@0 = promise AND day@1 > 2024-10-04[every]"),
        ),
        (
            "SELECT kind, x FROM t WHERE x <= 3 AND kind = '' AND day <> DATE '2024-10-02'",
            Some("x@2 <= 3 AND kind@0 =  AND day@1 != 2024-10-02[every]"),
        ),
        (
            "SELECT * FROM t WHERE kind = 'twelve bytes' AND x > -5",
            Some("kind@0 = twelve bytes AND x@2 > -5[every]"),
        ),
        (
            "SELECT * FROM t WHERE x >= 0 AND x < 500",
            Some("x@2 >= 0 AND x@2 < 500[every]"),
        ),
        // The filter's constant (the kind) still known to the window above it.
        (
            "SELECT kind, sum(x) OVER (PARTITION BY kind) AS s FROM t WHERE kind = 'call'",
            Some("kind@0 = call[short]"),
        ),
        // Text longer than a view holds, and a disjunction: as they were.
        (
            "SELECT * FROM t WHERE kind = 'promise to pay later' AND x > 0",
            None,
        ),
        ("SELECT * FROM t WHERE kind = 'call' OR x > 0", None),
    ];

    async fn same_rows(rows: &[(Option<u8>, Option<i64>)]) {
        let (plain, cheap) = (session(rows, false), session(rows, true));
        same_rows_of(&plain, &cheap, &QUERIES, &rows).await;
    }

    /// A table whose one partition is in ascending order of `id` (NULLs last) and of
    /// `k` (the number of distinct ids before the row's), in batches of 4 rows, as
    /// declared; `n` is the row's position.
    fn sorted_session(ids: &[Option<u8>], rule: bool) -> SessionContext {
        let (schema, batches) = sorted_batches(ids);
        let order = |c: &str| datafusion::logical_expr::col(c).sort(true, false);
        let table = MemTable::try_new(Arc::clone(&schema), vec![batches])
            .unwrap()
            .with_sort_order(vec![vec![order("id")], vec![order("k")]]);
        let ctx = sorted_rule_session(rule);
        ctx.register_table("s", Arc::new(table)).unwrap();
        ctx
    }

    fn sorted_rule_session(rule: bool) -> SessionContext {
        let mut state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(1))
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(CheapFilters));
        }
        SessionContext::new_with_state(state.build())
    }

    /// A session with table `p`: the Parquet file of [`sorted_parquet`], its order by `id`
    /// declared. DataFusion's scan takes each `column = value` of the filter pushed into
    /// it for a constant of its rows, `kind` (not in order) among them.
    async fn parquet_session(dir: &std::path::Path, rule: bool) -> SessionContext {
        use datafusion::datasource::file_format::parquet::ParquetFormat;
        use datafusion::datasource::listing::ListingOptions;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_file_sort_order(vec![vec![
                datafusion::logical_expr::col("id").sort(true, false),
            ]]);
        let ctx = sorted_rule_session(rule);
        let schema = sorted_batches(&[]).0;
        let p = dir.join("p");
        ctx.register_listing_table("p", p.to_str().unwrap(), options, Some(schema), None)
            .await
            .unwrap();
        // `q` in order of `g`, then `m`: `m` alone is in no order.
        let order = |c: &str| datafusion::logical_expr::col(c).sort(true, false);
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_file_sort_order(vec![vec![order("g"), order("m")]]);
        let q = dir.join("q");
        ctx.register_listing_table("q", q.to_str().unwrap(), options, None, None)
            .await
            .unwrap();
        ctx
    }

    /// In a new folder, the rows of [`sorted_batches`] in one Parquet file (`p/`), and as
    /// many rows in order of `g` and then `m` (`q/`).
    fn sorted_parquet(ids: &[Option<u8>]) -> std::path::PathBuf {
        static FOLDERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "arq-sorted-range-{}-{}",
            std::process::id(),
            FOLDERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let write = |table: &str, schema: Arc<Schema>, batches: &[RecordBatch]| {
            std::fs::create_dir_all(dir.join(table)).unwrap();
            let file = std::fs::File::create(dir.join(table).join("part.parquet")).unwrap();
            let mut writer =
                datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
            for batch in batches {
                writer.write(batch).unwrap();
            }
            writer.close().unwrap();
        };
        let (schema, batches) = sorted_batches(ids);
        write("p", schema, &batches);
        let mut rows: Vec<(i32, i64)> = (0..ids.len())
            .map(|r| ((r * 3 / ids.len().max(1)) as i32, (r * 5 % 7) as i64))
            .collect();
        rows.sort();
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Int32, false),
            Field::new("m", DataType::Int64, false),
        ]));
        let batches: Vec<RecordBatch> = rows
            .chunks(4)
            .map(|rows| {
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
                ];
                RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
            })
            .collect();
        write("q", schema, &batches);
        dir
    }

    /// Rows in ascending order of `id` (NULLs last) and of `k` (the number of distinct ids
    /// before the row's), in batches of 4 rows; `n` is the row's position and `kind` text
    /// in no order.
    fn sorted_batches(ids: &[Option<u8>]) -> (Arc<Schema>, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("k", DataType::Int32, false),
            Field::new("n", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, false),
        ]));
        let mut ids: Vec<Option<&str>> = ids
            .iter()
            .map(|i| i.map(|i| SORTED_TEXTS[i as usize % SORTED_TEXTS.len()]))
            .collect();
        ids.sort_by(|a, b| match (a, b) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some(a), Some(b)) => a.cmp(b),
        });
        let ks: Vec<i32> = ids
            .iter()
            .enumerate()
            .scan(0, |k, (r, id)| {
                *k += i32::from(r > 0 && ids[r - 1] != *id);
                Some(*k)
            })
            .collect();
        let batches: Vec<RecordBatch> = (0..ids.len())
            .step_by(4)
            .map(|start| {
                let rows = start..(start + 4).min(ids.len());
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(StringArray::from_iter(ids[rows.clone()].iter().copied())),
                    Arc::new(Int32Array::from(ks[rows.clone()].to_vec())),
                    Arc::new(Int64Array::from_iter_values(rows.clone().map(|r| r as i64))),
                    Arc::new(StringArray::from_iter_values(
                        rows.map(|r| ["call", "dispute", "promise"][(r * 7 + r / 3) % 3]),
                    )),
                ];
                RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
            })
            .collect();
        (schema, batches)
    }

    /// Ids that share prefixes, the empty one among them.
    const SORTED_TEXTS: [&str; 8] = ["", "a", "ab", "abc", "b", "bb", "C0500000", "C0525000"];

    /// Queries of the sorted table and the predicate the rule must leave in the plan.
    const SORTED_QUERIES: [(&str, Option<&str>); 9] = [
        (
            "SELECT * FROM s WHERE id >= 'ab' AND id < 'bb'",
            Some("id@0 >= ab AND id@0 < bb[every][2 ranges]"),
        ),
        ("SELECT * FROM s WHERE id = 'b'", None),
        // An equality anywhere: no ranges (see `cheap`).
        (
            "SELECT * FROM s WHERE k = 2 AND n > 0",
            Some("k@1 = 2 AND n@2 > 0[every]"),
        ),
        ("SELECT * FROM s WHERE id <= ''", Some("id@0 <= [range]")),
        (
            "SELECT * FROM s WHERE id > 'a' AND n < 9",
            Some("id@0 > a AND n@2 < 9[every][1 ranges]"),
        ),
        (
            "SELECT * FROM s WHERE k >= 2 AND k <= 3 AND id <> 'bb'",
            None,
        ),
        (
            "SELECT * FROM s WHERE k > 1 AND k < 4 AND n >= 2",
            Some("k@1 > 1 AND k@1 < 4 AND n@2 >= 2[every][2 ranges]"),
        ),
        // The slices of the nightly's features.
        (
            "SELECT * FROM s WHERE id >= 'C0500000' AND id < 'C0525000' AND n > 0",
            Some("id@0 >= C0500000 AND id@0 < C0525000 AND n@2 > 0[every][2 ranges]"),
        ),
        // `n` is not in order: compared row by row.
        ("SELECT * FROM s WHERE n = 3", None),
    ];

    /// Queries of the Parquet table and the predicate the rule must leave in the plan.
    const PARQUET_QUERIES: [(&str, Option<&str>); 5] = [
        // `kind` is a "constant" of the scan, and not in order.
        ("SELECT * FROM p WHERE kind = 'dispute'", None),
        // `g` is a "constant" of the scan, so `m` looks in order; it is not.
        (
            "SELECT * FROM q WHERE g = 1 AND m >= 3",
            Some("g@0 = 1 AND m@1 >= 3[every]"),
        ),
        (
            "SELECT * FROM q WHERE g >= 1 AND m < 4",
            Some("g@0 >= 1 AND m@1 < 4[every][1 ranges]"),
        ),
        (
            "SELECT * FROM p WHERE id > 'a' AND id <= 'bb' AND n >= 1",
            Some("id@0 > a AND id@0 <= bb AND n@2 >= 1[every][2 ranges]"),
        ),
        ("SELECT * FROM p WHERE kind >= 'd'", None),
    ];

    async fn same_sorted_rows(ids: &[Option<u8>]) {
        let (plain, cheap) = (sorted_session(ids, false), sorted_session(ids, true));
        same_rows_of(&plain, &cheap, &SORTED_QUERIES, &ids).await;
        let dir = sorted_parquet(ids);
        let (plain, cheap) = (
            parquet_session(&dir, false).await,
            parquet_session(&dir, true).await,
        );
        same_rows_of(&plain, &cheap, &PARQUET_QUERIES, &ids).await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Each of `queries` gives the same rows with the rule (`cheap`) as without
    /// (`plain`), and the plan the rule must leave (`None`: unchanged); `data` is what
    /// the tables hold, shown when not.
    async fn same_rows_of(
        plain: &SessionContext,
        cheap: &SessionContext,
        queries: &[(&str, Option<&str>)],
        data: &dyn fmt::Debug,
    ) {
        for &(sql, shown) in queries {
            let (expected, plan) = run(plain, sql).await;
            let (got, rewritten) = run(cheap, sql).await;
            assert_eq!(got, expected, "{sql}\ndata {data:?}");
            match shown {
                Some(predicate) => {
                    let (line, mark) = predicate.split_at(predicate.find('[').unwrap());
                    assert!(
                        rewritten.contains(&format!("FilterExec: {line}"))
                            && rewritten.ends_with(mark),
                        "{sql}\n{rewritten}"
                    )
                }
                None => assert_eq!(rewritten, plan, "{sql}"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Ids in order with NULLs last, in batches of four (runs across batches, a batch
        /// all below or above a bound, a batch with NULLs): the rows DataFusion's filter
        /// keeps.
        #[test]
        fn ranges_of_a_sorted_column_keep_the_rows_datafusion_keeps(
            ids in prop::collection::vec(prop::option::weighted(0.9, 0u8..8), 0..30),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(same_sorted_rows(&ids));
        }

        /// NULL text and numbers, every kind of view: the rows DataFusion's filter keeps.
        #[test]
        fn cheap_filters_keep_the_rows_datafusion_keeps(
            rows in prop::collection::vec(
                (
                    prop::option::weighted(0.85, 0u8..14),
                    prop::option::weighted(0.85, -10i64..10),
                ),
                0..40,
            ),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(same_rows(&rows));
        }
    }
}
