//! Execs that stand in for the plan node they replace ([`crate::few_groups`]'s aggregate,
//! [`crate::cheap_filters`]' filter): planned as that node — its properties, children,
//! expressions and statistics — and run their own way. And [`wrap_each`], for the rules
//! that put a pass-through exec above some nodes instead ([`crate::compact_views`], the
//! server's cooperative joins).

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};

/// `plan` with `wrap` applied to every node, children first and the root last, except
/// below a node `is_wrapper` recognises (one of `wrap`'s own: applying the rule again
/// wraps nothing twice). `wrap` gives the node back when it is not to be wrapped.
pub(crate) fn wrap_each(
    plan: Arc<dyn ExecutionPlan>,
    is_wrapper: impl Fn(&Arc<dyn ExecutionPlan>) -> bool,
    wrap: impl Fn(Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let plan = plan
        .transform_up(|node| {
            if is_wrapper(&node) || node.children().is_empty() {
                return Ok(Transformed::no(node));
            }
            let children: Vec<_> = node.children().into_iter().cloned().collect();
            let wrapped: Vec<_> = children.iter().cloned().map(&wrap).collect();
            if wrapped
                .iter()
                .zip(&children)
                .all(|(w, c)| Arc::ptr_eq(w, c))
            {
                Ok(Transformed::no(node))
            } else {
                Ok(Transformed::yes(node.replace_children(
                    wrapped,
                    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
                )?))
            }
        })?
        .data;
    Ok(if is_wrapper(&plan) { plan } else { wrap(plan) })
}

/// The [`ExecutionPlan`](datafusion::physical_plan::ExecutionPlan) methods of an exec
/// whose field `$replaced` holds the node it stands in for: each delegated to that node,
/// and when its children are replaced, the node with the new children rebuilt by
/// `$rebuild` (given the exec as `$this` and the node as `$plan`; the node itself where
/// that gives `None`).
macro_rules! planned_as_replaced {
    ($replaced:ident, |$this:ident, $plan:ident| $rebuild:expr) => {
        fn properties(&self) -> &::std::sync::Arc<::datafusion::physical_plan::PlanProperties> {
            self.$replaced.properties()
        }

        fn children(
            &self,
        ) -> Vec<&::std::sync::Arc<dyn ::datafusion::physical_plan::ExecutionPlan>> {
            self.$replaced.children()
        }

        fn apply_expressions(
            &self,
            f: &mut dyn FnMut(
                &::std::sync::Arc<dyn ::datafusion::physical_expr::PhysicalExpr>,
            ) -> ::datafusion::error::Result<
                ::datafusion::common::tree_node::TreeNodeRecursion,
            >,
        ) -> ::datafusion::error::Result<::datafusion::common::tree_node::TreeNodeRecursion> {
            self.$replaced.apply_expressions(f)
        }

        fn replace_children(
            self: ::std::sync::Arc<Self>,
            children: Vec<::std::sync::Arc<dyn ::datafusion::physical_plan::ExecutionPlan>>,
            options: ::datafusion::physical_plan::execution_plan::ReplaceChildrenOptions,
        ) -> ::datafusion::error::Result<
            ::std::sync::Arc<dyn ::datafusion::physical_plan::ExecutionPlan>,
        > {
            let $plan =
                ::std::sync::Arc::clone(&self.$replaced).replace_children(children, options)?;
            let $this = &self;
            Ok(match $rebuild? {
                Some(exec) => ::std::sync::Arc::new(exec),
                None => $plan,
            })
        }

        #[allow(deprecated)]
        fn with_new_children(
            self: ::std::sync::Arc<Self>,
            children: Vec<::std::sync::Arc<dyn ::datafusion::physical_plan::ExecutionPlan>>,
        ) -> ::datafusion::error::Result<
            ::std::sync::Arc<dyn ::datafusion::physical_plan::ExecutionPlan>,
        > {
            self.replace_children(
                children,
                ::datafusion::physical_plan::execution_plan::ReplaceChildrenOptions::new(
                    ::datafusion::physical_plan::execution_plan::ChildrenPropertiesMode::Recompute,
                ),
            )
        }

        fn child_stats_requests(
            &self,
            partition: Option<usize>,
        ) -> Vec<::datafusion::physical_plan::statistics::ChildStats> {
            self.$replaced.child_stats_requests(partition)
        }

        fn statistics_from_inputs(
            &self,
            input_stats: &[::std::sync::Arc<::datafusion::common::Statistics>],
            args: &::datafusion::physical_plan::statistics::StatisticsArgs,
        ) -> ::datafusion::error::Result<::std::sync::Arc<::datafusion::common::Statistics>> {
            self.$replaced.statistics_from_inputs(input_stats, args)
        }
    };
}

pub(crate) use planned_as_replaced;
