//! A join's string views compacted as they leave it, so that its output does not carry
//! the whole of the side it collected.
//!
//! A string view (`Utf8View`) is 16 bytes that hold a short string whole, or point into a
//! data buffer the array shares with others. A hash join collects its build side into
//! one batch (Arrow's `concat` keeps every buffer of every batch it joins) and makes each
//! output batch by taking rows of it — and each output batch then holds *all* the build
//! side's buffers, whichever rows it took. Nothing is copied, but a join that collects
//! another join's output concatenates every buffer as many times as there were batches:
//! at a million customers, `customers_latest` left-joined to three per-customer aggregates
//! and ordered by customer id (the shape of the queues' inputs, and of what an analyst
//! writes for "each customer with their balance, last contact and disputes") made 123
//! batches each holding the 123 batches' buffers of the join below, and so on up. The sort
//! above counted them as 1,328 GB and refused the query under the default memory limit;
//! the queues' inputs query, run by hand in `arq sql`, was killed at 24 GB of memory
//! (benches/README.md, "2026-12-06, sixth session: joins whose output held every buffer of
//! the side they collected").
//!
//! [`CompactViews`] puts a [`CompactViewsExec`] above each join whose output has view
//! columns. It passes batches through, and gives a view column whose buffers are mostly
//! not its own — their bytes more than twice what its views point at, or any buffer when
//! every string is held inline — new views into one buffer of just its strings (Arrow's
//! `gc`, by the rule Arrow's own batch coalescer uses). Values, rows and order are
//! unchanged. The warehouse's short text columns are views only in the analyst's sessions
//! (`arq sql`, `shell`, `serve`: [`crate::Warehouse::with_string_views`]), so the nightly
//! job's plans have nothing to compact and are not changed.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, GenericByteViewArray, RecordBatch};
use datafusion::arrow::datatypes::{ByteViewType, DataType, SchemaRef};
use datafusion::common::Statistics;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{
    CardinalityEffect, ChildrenPropertiesMode, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{Stream, StreamExt};

/// The physical optimizer rule (runs after DataFusion's own rules and arq's others).
#[derive(Debug, Default)]
pub struct CompactViews;

/// An operator of two inputs or more — a join; a union too, whose batches are its inputs'
/// and rarely need it — whose output has a view column.
fn to_compact(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.children().len() >= 2
        && plan
            .schema()
            .fields()
            .iter()
            .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView))
}

fn wrap(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    match to_compact(&plan) {
        true => Arc::new(CompactViewsExec::new(plan)),
        false => plan,
    }
}

impl PhysicalOptimizerRule for CompactViews {
    fn name(&self) -> &str {
        "arq_compact_views"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Each node's children, then the root; a join already under a CompactViewsExec
        // is its child and is not wrapped again.
        crate::stand_in::wrap_each(plan, |node| node.is::<CompactViewsExec>(), wrap)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Passes its input's batches on, each view column compacted where it holds mostly
/// buffers that are not its own ([`compact_batch`]).
#[derive(Debug, Clone)]
pub struct CompactViewsExec {
    input: Arc<dyn ExecutionPlan>,
    metrics: ExecutionPlanMetricsSet,
}

impl CompactViewsExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        CompactViewsExec {
            input,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for CompactViewsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CompactViewsExec")
    }
}

impl ExecutionPlan for CompactViewsExec {
    fn name(&self) -> &str {
        "CompactViewsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return datafusion::common::internal_err!(
                "CompactViewsExec has one input, given {}",
                children.len()
            );
        }
        Ok(Arc::new(CompactViewsExec::new(children.swap_remove(0))))
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

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(Compacting {
            input: self.input.execute(partition, context)?,
            baseline: BaselineMetrics::new(&self.metrics, partition),
        }))
    }
}

struct Compacting {
    input: SendableRecordBatchStream,
    baseline: BaselineMetrics,
}

impl Stream for Compacting {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.input.poll_next_unpin(cx);
        let compacted = match polled {
            Poll::Ready(Some(Ok(batch))) => {
                let _timer = self.baseline.elapsed_compute().timer();
                Poll::Ready(Some(compact_batch(batch)))
            }
            other => other,
        };
        self.baseline.record_poll(compacted)
    }
}

impl RecordBatchStream for Compacting {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}

/// `batch` with each view column that holds mostly buffers not its own compacted (the
/// same batch when none does).
pub fn compact_batch(batch: RecordBatch) -> Result<RecordBatch> {
    let mut changed = false;
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|column| {
            let compacted = match column.data_type() {
                DataType::Utf8View => compacted(column.as_string_view()),
                DataType::BinaryView => compacted(column.as_binary_view()),
                _ => None,
            };
            changed |= compacted.is_some();
            compacted.unwrap_or_else(|| Arc::clone(column))
        })
        .collect();
    if !changed {
        return Ok(batch);
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// `array` with its strings in one buffer of their own, when its buffers hold more than
/// twice the bytes its views point at, or any bytes when every string is inline; None
/// when it is compact enough.
fn compacted<T: ByteViewType + ?Sized>(array: &GenericByteViewArray<T>) -> Option<ArrayRef> {
    if array.data_buffers().is_empty() {
        return None;
    }
    let used = array.total_buffer_bytes_used();
    // The buffers' lengths, not their allocations: a builder's last buffer has room to
    // spare, and an array built that way is its own.
    let held: usize = array.data_buffers().iter().map(|b| b.len()).sum();
    (used == 0 || held > 2 * used).then(|| Arc::new(array.gc()) as ArrayRef)
}

impl CompactViewsExec {
    /// The operator whose output this compacts.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;
    use datafusion::arrow::compute::{concat, take};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// `n` batches of `rows` rows: `id` as views of 8 bytes (inline), `name` as views of
    /// 20 bytes (in a buffer), each batch with buffers of its own.
    fn batches(n: usize, rows: usize) -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8View, false),
            Field::new("name", DataType::Utf8View, false),
        ]));
        (0..n)
            .map(|b| {
                let ids: Vec<String> = (0..rows).map(|r| format!("C{:07}", b * rows + r)).collect();
                let names: Vec<String> = (0..rows)
                    .map(|r| format!("customer number {:04}", b * rows + r))
                    .collect();
                // The inline ids given a buffer too, as Parquet's reader gives them one.
                let ids = StringViewArray::from_iter_values(ids.iter());
                let ids = concat(&[
                    &ids,
                    &StringViewArray::from(vec!["a longer value than twelve"]),
                ])
                .unwrap()
                .slice(0, rows);
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        ids,
                        Arc::new(StringViewArray::from_iter_values(names.iter())),
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    fn held(array: &ArrayRef) -> usize {
        array
            .as_string_view()
            .data_buffers()
            .iter()
            .map(|b| b.len())
            .sum()
    }

    #[test]
    fn rows_taken_from_a_collected_side_get_buffers_of_their_own() {
        let parts = batches(50, 20);
        let whole = concat(
            &parts
                .iter()
                .map(|b| b.column(1).as_ref())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        // Three rows of a thousand: before, all fifty batches' buffers.
        let taken = take(
            &whole,
            &datafusion::arrow::array::UInt32Array::from(vec![3, 500, 999]),
            None,
        )
        .unwrap();
        assert_eq!(taken.as_string_view().data_buffers().len(), 50);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "name",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::clone(&taken)]).unwrap();
        let compacted = compact_batch(batch).unwrap();
        let column = compacted.column(0);
        assert_eq!(held(column), 60, "three strings of 20 bytes");
        assert_eq!(column.as_string_view().data_buffers().len(), 1);
        let values = |a: &ArrayRef| -> Vec<String> {
            a.as_string_view()
                .iter()
                .map(|v| v.unwrap().to_string())
                .collect()
        };
        assert_eq!(values(column), values(&taken));
    }

    #[test]
    fn inline_strings_keep_no_buffer_and_a_compact_batch_is_passed_on_as_it_is() {
        let batch = batches(1, 20).remove(0);
        assert!(held(batch.column(0)) > 0, "the ids come with a buffer");
        let compacted = compact_batch(batch.clone()).unwrap();
        assert_eq!(held(compacted.column(0)), 0, "every id is inline");
        assert_eq!(compacted.column(0).as_string_view().value(7), "C0000007");
        // The names use their buffer whole: the very same array.
        assert!(Arc::ptr_eq(compacted.column(1), batch.column(1)));
        let again = compact_batch(compacted.clone()).unwrap();
        assert!(Arc::ptr_eq(again.column(0), compacted.column(0)));
    }

    /// A session over `customers` (50 batches of 20 rows) and `events` (five a customer),
    /// with the rule when `rule`. The chained query's top join collects the customers.
    async fn session(rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(20);
        let mut state = datafusion::execution::SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(CompactViews));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let customers = batches(50, 20);
        let schema = customers[0].schema();
        ctx.register_table(
            "customers",
            Arc::new(MemTable::try_new(schema, vec![customers]).unwrap()),
        )
        .unwrap();
        let events = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8View, false),
            Field::new("amount", DataType::Int64, false),
        ]));
        let ids: Vec<String> = (0..5000).map(|i| format!("C{:07}", i / 5)).collect();
        let rows = RecordBatch::try_new(
            Arc::clone(&events),
            vec![
                Arc::new(StringViewArray::from_iter_values(ids.iter())),
                Arc::new(datafusion::arrow::array::Int64Array::from_iter_values(
                    (0..5000).map(|i| i % 7),
                )),
            ],
        )
        .unwrap();
        ctx.register_table(
            "events",
            Arc::new(MemTable::try_new(events, vec![vec![rows]]).unwrap()),
        )
        .unwrap();
        ctx
    }

    const CHAINED: &str = "SELECT c.id, c.name, a.n, b.m FROM customers c \
         LEFT JOIN (SELECT id, count(*) AS n FROM events GROUP BY id) a ON a.id = c.id \
         LEFT JOIN (SELECT id, sum(amount) AS m FROM events WHERE amount > 2 GROUP BY id) b \
           ON b.id = c.id";

    /// [`CHAINED`]'s physical plan in `ctx`.
    async fn chained(ctx: &SessionContext) -> Arc<dyn ExecutionPlan> {
        let frame = ctx.sql(CHAINED).await.unwrap();
        frame.create_physical_plan().await.unwrap()
    }

    #[tokio::test]
    async fn the_output_of_chained_joins_holds_about_its_own_strings() {
        let mut buffers = Vec::new();
        let mut results = Vec::new();
        for rule in [false, true] {
            let ctx = session(rule).await;
            let out = collect(chained(&ctx).await, ctx.task_ctx()).await.unwrap();
            let rows: usize = out.iter().map(|b| b.num_rows()).sum();
            assert_eq!(rows, 1000);
            // Bytes of the names' buffers across the output batches.
            buffers.push(out.iter().map(|b| held(b.column(1))).sum::<usize>());
            // Every row as text, in one order.
            let text = datafusion::arrow::util::pretty::pretty_format_batches(&out)
                .unwrap()
                .to_string();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            results.push(lines);
        }
        assert_eq!(results[0], results[1], "the same rows either way");
        // A thousand names of 20 bytes (20 KB): without the rule each of the 50 output
        // batches held the buffers of all 50 batches the top join collected (1 MB; a
        // join above it would have collected 50 times that).
        assert!(
            buffers[0] >= 1_000_000,
            "without the rule: {} bytes",
            buffers[0]
        );
        assert!(
            buffers[1] <= 2 * 20_000,
            "with the rule: {} bytes",
            buffers[1]
        );
    }

    #[tokio::test]
    async fn each_join_with_views_is_wrapped_once() {
        let ctx = session(false).await;
        let once = CompactViews
            .optimize(chained(&ctx).await, &ConfigOptions::default())
            .unwrap();
        let twice = CompactViews
            .optimize(Arc::clone(&once), &ConfigOptions::default())
            .unwrap();
        let text = displayable(once.as_ref()).indent(false).to_string();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let joins: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains("JoinExec"))
            .collect();
        assert_eq!(joins.len(), 2, "{text}");
        for at in joins {
            assert!(lines[at - 1].starts_with("CompactViewsExec"), "{text}");
        }
        assert_eq!(text, displayable(twice.as_ref()).indent(false).to_string());
    }
}
