//! Statements that can be interrupted while they compute.
//!
//! A statement's timeout, a client's cancel request and the server's shutdown all work the
//! same way: the statement's stream is dropped, which aborts the tasks DataFusion spawned
//! for it. A tokio task is only aborted (and a timer only fires, and the statement's own
//! task only runs) when the task yields; DataFusion's operators yield when their input
//! does — its `EnsureCooperative` rule makes the file scans spend tokio's task budget, so
//! a plan yields every 128 batches it reads.
//!
//! That is not enough for operators that emit many batches for each batch they read: a
//! cross join of two 200,000-row tables emits 25 million batches per right-hand batch
//! without reading again, so it never yields, and a `statement_timeout` of 1 s fired after
//! 206 s (measured on the demo warehouse, release build, before this rule). This rule
//! puts a `CooperativeExec` above every join and unnest — the operators whose output is
//! not bounded by their input — so that they spend the budget for each batch they emit.
//! The results are unchanged (the operator passes batches through); `EXPLAIN` through the
//! server shows the extra `CooperativeExec` lines.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::SchedulingType;

/// The physical optimizer rule (runs after DataFusion's own rules).
#[derive(Debug, Default)]
pub struct YieldWhereOutputMultiplies;

/// Operators whose output can be far larger than their input.
fn multiplies(plan: &dyn ExecutionPlan) -> bool {
    plan.children().len() >= 2 || plan.name() == "UnnestExec"
}

impl PhysicalOptimizerRule for YieldWhereOutputMultiplies {
    fn name(&self) -> &str {
        "arq_yield_where_output_multiplies"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let wrap = |node: Arc<dyn ExecutionPlan>| -> Arc<dyn ExecutionPlan> {
            if multiplies(node.as_ref())
                && node.properties().scheduling_type != SchedulingType::Cooperative
            {
                Arc::new(CooperativeExec::new(node))
            } else {
                node
            }
        };
        // Each node's children, then the root (a wrapped operator is a CooperativeExec's
        // child, and is not wrapped again).
        crate::stand_in::wrap_each(plan, |node| node.is::<CooperativeExec>(), wrap)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn joins_and_unnest_are_wrapped_once() {
        let ctx = SessionContext::new();
        let plan = ctx
            .sql(
                "SELECT a.x, unnest(make_array(a.x, b.x)) FROM (VALUES (1), (2)) a(x) \
                 CROSS JOIN (VALUES (3), (4)) b(x)",
            )
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let rule = YieldWhereOutputMultiplies;
        let once = rule.optimize(plan, &ConfigOptions::default()).unwrap();
        let twice = rule
            .optimize(Arc::clone(&once), &ConfigOptions::default())
            .unwrap();
        let text = displayable(once.as_ref()).indent(false).to_string();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        // Each multiplying operator sits right under a CooperativeExec.
        for name in ["CrossJoinExec", "UnnestExec"] {
            let at = lines
                .iter()
                .position(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in\n{text}"));
            assert!(lines[at - 1].starts_with("CooperativeExec"), "{text}");
        }
        // Applying the rule again changes nothing.
        assert_eq!(text, displayable(twice.as_ref()).indent(false).to_string());
    }
}
