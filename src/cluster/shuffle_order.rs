//! A physical optimizer rule of the scheduler: an operator that needs its input sorted
//! (a window function's `PARTITION BY`, a sort-merge join) sorts it itself when that
//! input comes through a shuffle.
//!
//! DataFusion plans such an operator over a repartition that keeps an order found below
//! it (files declared sorted by `customer_id`, a column made constant by a filter), and
//! leaves the sort out. Ballista turns every repartition into a shuffle between stages,
//! which keeps neither the order nor what the planner knew about constants, and the
//! executor then refuses the operator ("All partition by columns should have an
//! ordering"). With this rule the sort is planned above the shuffle, where the rows are.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

#[derive(Debug, Default)]
pub struct SortAfterShuffle;

impl PhysicalOptimizerRule for SortAfterShuffle {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let requirements = node.required_input_ordering();
            let mut changed = false;
            let mut children = Vec::with_capacity(node.children().len());
            for (child, required) in node.children().into_iter().zip(requirements) {
                let shuffled = child.downcast_ref::<RepartitionExec>();
                match (shuffled, required) {
                    (Some(repartition), Some(required)) => {
                        let ordering = LexOrdering::from(required.into_single());
                        // The repartition need not keep an order the shuffle loses.
                        let unordered = Arc::new(RepartitionExec::try_new(
                            Arc::clone(repartition.input()),
                            repartition.partitioning().clone(),
                        )?);
                        let sort =
                            SortExec::new(ordering, unordered).with_preserve_partitioning(true);
                        children.push(Arc::new(sort) as Arc<dyn ExecutionPlan>);
                        changed = true;
                    }
                    _ => children.push(Arc::clone(child)),
                }
            }
            match changed {
                true => Ok(Transformed::yes(replace_children_if_necessary(
                    node, children,
                )?)),
                false => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "arq_sort_after_shuffle"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
