//! Order-preserving merges whose inputs read ahead.
//!
//! The warehouse declares its tables' order by `customer_id` where the files say so
//! (`Warehouse::register`), and the files of a table are split into one group per core, so
//! each of the two scans on two cores reads one half of the customer range. Where a plan
//! keeps that order across partitions — an aggregate by `customer_id` repartitioned with
//! `preserve_order`, a `SortPreservingMergeExec` — the merge takes every row of the first
//! half before the first of the second, and the second scan waits as soon as its small
//! channel is full: the query runs on one core. (The limits' credit sales of 12 months at a
//! million customers: 3.8–4.1 s for ~3.8 s of CPU; benches/README.md.)
//!
//! This rule puts DataFusion's `BufferExec` under each such merge: every input partition is
//! polled from its own task into a queue of up to [`CAPACITY`] bytes per partition (held in
//! the session's memory pool), so the second half reads, filters and partially aggregates
//! while the first is merged. The rows and their order are unchanged — the buffer passes
//! batches through in order.
//!
//! The queues reserve their memory in the pool and do not spill, so their size follows
//! the session's memory limit (every command has one, 70 % of RAM by default; `arq
//! serve` one per query): a queue holds at most 1/64 of the limit, [`CAPACITY`] at most,
//! and under a limit below 64 MiB (queues under 1 MiB) the rule is left out. A query has
//! a few such merges of two partitions, so its queues take a small share of the limit
//! and leave the rest to the joins and aggregates, which spill.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::buffer::BufferExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;

use crate::memory::MemoryLimit;

/// Bytes each input partition of a merge may queue ahead of it, at most.
pub const CAPACITY: usize = 64 << 20;

/// A queue's share of the session's memory limit: 1/64 of it.
const SHARE_OF_LIMIT: usize = 64;

/// The smallest queue worth having; under it the rule is left out.
const SMALLEST: usize = 1 << 20;

/// The physical optimizer rule (runs after DataFusion's own rules), with the bytes each
/// queue may hold.
#[derive(Debug)]
pub struct ScanAhead {
    capacity: usize,
}

impl ScanAhead {
    /// The rule for a session whose memory pool is `limit` (unbounded: None); None when
    /// the limit is too small for queues worth having.
    pub fn within(limit: Option<MemoryLimit>) -> Option<ScanAhead> {
        let capacity = limit.map_or(CAPACITY, |l| (l.0 / SHARE_OF_LIMIT).min(CAPACITY));
        (capacity >= SMALLEST).then_some(ScanAhead { capacity })
    }

    /// The bytes each queue may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Whether `plan` merges several input partitions in order.
fn merges_in_order(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let ordered = plan
        .downcast_ref::<RepartitionExec>()
        .is_some_and(RepartitionExec::preserve_order)
        || plan.is::<SortPreservingMergeExec>();
    ordered
        && plan.children().len() == 1
        && plan.children()[0]
            .properties()
            .output_partitioning()
            .partition_count()
            > 1
}

impl PhysicalOptimizerRule for ScanAhead {
    fn name(&self) -> &str {
        "arq_scan_ahead"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(plan
            .transform_up(|node| {
                if !merges_in_order(&node) {
                    return Ok(Transformed::no(node));
                }
                let input = Arc::clone(node.children()[0]);
                if input.is::<BufferExec>() {
                    return Ok(Transformed::no(node));
                }
                let buffered: Arc<dyn ExecutionPlan> =
                    Arc::new(BufferExec::new(input, self.capacity));
                Ok(Transformed::yes(node.replace_children(
                    vec![buffered],
                    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
                )?))
            })?
            .data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{SessionConfig, SessionContext, col};

    /// A table of two partitions, each sorted by `k` and holding one half of its range (as
    /// the warehouse's file groups do), in a session on two partitions; with the rule or
    /// without.
    fn session(rule: bool) -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let half = |from: usize| {
            let keys: Vec<String> = (from..from + 500)
                .map(|i| format!("C{:04}", i / 3))
                .collect();
            let values: Vec<i64> = (from..from + 500).map(|i| i as i64).collect();
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(keys)),
                    Arc::new(Int64Array::from(values)),
                ],
            )
            .unwrap()
        };
        let table = MemTable::try_new(Arc::clone(&schema), vec![vec![half(0)], vec![half(500)]])
            .unwrap()
            .with_sort_order(vec![vec![col("k").sort(true, false)]]);
        let config = SessionConfig::new().with_target_partitions(2);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            let rule = ScanAhead::within(None).unwrap();
            state = state.with_physical_optimizer_rule(Arc::new(rule));
        }
        let ctx = SessionContext::new_with_state(state.build());
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    async fn run(rule: bool, sql: &str) -> (String, String) {
        let ctx = session(rule);
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let text = displayable(plan.as_ref()).indent(false).to_string();
        let rows = collect(plan, ctx.task_ctx()).await.unwrap();
        (text, pretty_format_batches(&rows).unwrap().to_string())
    }

    #[tokio::test]
    async fn every_merge_in_order_reads_through_a_buffer_and_the_rows_are_the_same() {
        for sql in [
            "SELECT k, v FROM t ORDER BY k",
            "SELECT k, sum(v) AS s FROM t GROUP BY k ORDER BY k",
        ] {
            let (plain, expected) = run(false, sql).await;
            let (buffered, rows) = run(true, sql).await;
            assert_eq!(rows, expected, "{sql}");
            assert!(!plain.contains("BufferExec"), "{plain}");
            // Under each order-keeping merge of several partitions, one buffer.
            let lines: Vec<&str> = buffered.lines().map(str::trim).collect();
            let merges: Vec<usize> = (0..lines.len())
                .filter(|&i| {
                    lines[i].starts_with("SortPreservingMergeExec")
                        || (lines[i].starts_with("RepartitionExec")
                            && lines[i].contains("preserve_order=true"))
                })
                .collect();
            assert!(
                !merges.is_empty(),
                "{sql}: no merge in order in\n{buffered}"
            );
            for i in merges {
                assert!(
                    lines
                        .get(i + 1)
                        .is_some_and(|l| l.starts_with("BufferExec")),
                    "{sql}: no buffer under line {i} of\n{buffered}"
                );
            }
            assert_eq!(
                buffered.matches("BufferExec").count(),
                buffered.matches("SortPreservingMergeExec").count()
                    + buffered.matches("preserve_order=true").count(),
                "{buffered}"
            );
        }
    }

    #[tokio::test]
    async fn the_rule_applied_twice_adds_no_second_buffer() {
        let ctx = session(true);
        let plan = ctx
            .sql("SELECT k, v FROM t ORDER BY k")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let again = ScanAhead::within(None)
            .unwrap()
            .optimize(Arc::clone(&plan), &ConfigOptions::default())
            .unwrap();
        let text = |p: &Arc<dyn ExecutionPlan>| displayable(p.as_ref()).indent(false).to_string();
        assert_eq!(text(&again), text(&plan));
        assert_eq!(
            text(&plan).matches("BufferExec").count(),
            1,
            "{}",
            text(&plan)
        );
    }

    #[test]
    fn the_queues_follow_the_memory_limit() {
        let mib = |n: usize| MemoryLimit(n << 20);
        assert_eq!(ScanAhead::within(None).unwrap().capacity(), CAPACITY);
        // 70 % of 24 GiB: the most a queue holds.
        let machine = ScanAhead::within(Some(MemoryLimit((24usize << 30) / 10 * 7)));
        assert_eq!(machine.unwrap().capacity(), CAPACITY);
        assert_eq!(
            ScanAhead::within(Some(mib(1024))).unwrap().capacity(),
            16 << 20
        );
        assert_eq!(
            ScanAhead::within(Some(mib(64))).unwrap().capacity(),
            1 << 20
        );
        assert!(ScanAhead::within(Some(mib(63))).is_none());
    }
}
