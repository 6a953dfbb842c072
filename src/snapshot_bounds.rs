//! The snapshot dates as metadata: `max(snapshot_date)` and `min(snapshot_date)` of a
//! snapshot table answered from the warehouse's partition listing, without reading a
//! file, and a scalar subquery that is such an answer turned into a literal before the
//! optimizer runs — so that the way analysts write "the newest snapshot",
//!
//! ```sql
//! SELECT ... FROM open_items o
//! WHERE o.snapshot_date = (SELECT max(snapshot_date) FROM open_items)
//! ```
//!
//! reads one snapshot's files (the literal prunes the partitions), as
//! `open_items_latest` does, instead of joining every snapshot against a one-row
//! aggregate of all of them.
//!
//! What is rewritten: an aggregate without `GROUP BY` whose every expression is `max` or
//! `min` (DISTINCT or not, without FILTER) of the `snapshot_date` partition column,
//! directly over one of the warehouse's snapshot tables (an alias allowed; no `WHERE`,
//! no other table). Its value is the newest (oldest) date of a partition that holds rows
//! — what a scan would find, since a date exists only as a folder of files — or NULL when
//! the table has none. The dates are those the warehouse found when it opened (it checks
//! every file then; `arq serve` opens it again when its files change).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::datasource::listing::ListingTable;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, EmptyRelation, Expr, LogicalPlan, Projection};
use datafusion::optimizer::AnalyzerRule;

use crate::contract::SNAPSHOT_COLUMN;

/// The analyzer rule, with the snapshot days (days since 1970-01-01, ascending, only
/// dates with rows) of each snapshot table, keyed by the table's folder URL.
#[derive(Debug, Default)]
pub struct SnapshotBounds {
    days: HashMap<String, Vec<i32>>,
}

impl SnapshotBounds {
    /// The rule for tables at these folder URLs (as the listing tables were registered)
    /// with these snapshot days.
    pub fn new(days: HashMap<String, Vec<i32>>) -> Self {
        SnapshotBounds { days }
    }

    /// The snapshot days of the table a plan reads, when it is a bare scan (or an alias
    /// of one) of a warehouse snapshot table.
    fn days_of(&self, plan: &LogicalPlan) -> Option<&[i32]> {
        match plan {
            LogicalPlan::SubqueryAlias(alias) => self.days_of(&alias.input),
            LogicalPlan::TableScan(scan) if scan.filters.is_empty() && scan.fetch.is_none() => {
                let provider = source_as_provider(&scan.source).ok()?;
                let listing = provider.downcast_ref::<ListingTable>()?;
                let [url] = listing.table_paths().as_slice() else {
                    return None;
                };
                self.days.get(url.as_str()).map(Vec::as_slice)
            }
            _ => None,
        }
    }

    /// An aggregate of the partition column only, as a one-row projection of literals.
    fn answer(&self, aggregate: &Aggregate) -> Result<Option<LogicalPlan>> {
        if !aggregate.group_expr.is_empty() || aggregate.aggr_expr.is_empty() {
            return Ok(None);
        }
        let Some(days) = self.days_of(&aggregate.input) else {
            return Ok(None);
        };
        let mut values = Vec::with_capacity(aggregate.aggr_expr.len());
        for expr in &aggregate.aggr_expr {
            let Expr::AggregateFunction(AggregateFunction { func, params }) =
                expr.clone().unalias()
            else {
                return Ok(None);
            };
            let on_partition = params.filter.is_none()
                && matches!(params.args.as_slice(), [Expr::Column(c)] if c.name == SNAPSHOT_COLUMN);
            let day = match func.name() {
                "max" if on_partition => days.last(),
                "min" if on_partition => days.first(),
                _ => return Ok(None),
            };
            values.push(ScalarValue::Date32(day.copied()));
        }
        // Each literal under the aggregate's own output name, in its schema.
        let exprs = values
            .into_iter()
            .zip(aggregate.schema.iter())
            .map(|(value, (qualifier, field))| {
                Expr::Literal(value, None).alias_qualified(qualifier.cloned(), field.name())
            })
            .collect();
        let one_row = LogicalPlan::EmptyRelation(EmptyRelation {
            produce_one_row: true,
            schema: Arc::new(DFSchema::empty()),
        });
        Ok(Some(LogicalPlan::Projection(
            Projection::try_new_with_schema(
                exprs,
                Arc::new(one_row),
                Arc::clone(&aggregate.schema),
            )?,
        )))
    }
}

impl AnalyzerRule for SnapshotBounds {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        // 1. Aggregates of the partition column → one row of literals.
        let plan = plan
            .transform_up_with_subqueries(|node| match &node {
                LogicalPlan::Aggregate(aggregate) => Ok(match self.answer(aggregate)? {
                    Some(answer) => Transformed::yes(answer),
                    None => Transformed::no(node),
                }),
                _ => Ok(Transformed::no(node)),
            })?
            .data;
        // 2. A scalar subquery that is now one literal → the literal.
        Ok(plan
            .transform_up_with_subqueries(|node| {
                node.map_expressions(|expr| {
                    expr.transform_up(|e| match &e {
                        Expr::ScalarSubquery(sq) if sq.outer_ref_columns.is_empty() => {
                            Ok(match constant(&sq.subquery) {
                                Some(value) => Transformed::yes(Expr::Literal(value, None)),
                                None => Transformed::no(e),
                            })
                        }
                        _ => Ok(Transformed::no(e)),
                    })
                })
            })?
            .data)
    }

    fn name(&self) -> &str {
        "arq_snapshot_bounds"
    }
}

/// The value of a plan that is one column and one row of a literal: projections (of the
/// one column, or of a literal over a one-row empty relation) and aliases.
fn constant(plan: &LogicalPlan) -> Option<ScalarValue> {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => constant(&alias.input),
        LogicalPlan::Projection(p) if p.expr.len() == 1 => match p.expr[0].clone().unalias() {
            Expr::Literal(value, _) => match p.input.as_ref() {
                LogicalPlan::EmptyRelation(e) if e.produce_one_row => Some(value),
                _ => None,
            },
            Expr::Column(_) if p.input.schema().fields().len() == 1 => constant(&p.input),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::physical_plan::displayable;

    use crate::warehouse::{AsOf, Warehouse};

    async fn plans(sql: &str) -> (String, String) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo");
        let ctx = Warehouse::open(root, AsOf::Latest)
            .unwrap()
            .session(None)
            .await
            .unwrap();
        let frame = ctx.sql(sql).await.unwrap();
        let logical = frame.clone().into_optimized_plan().unwrap();
        let physical = frame.create_physical_plan().await.unwrap();
        (
            logical.display_indent().to_string(),
            displayable(physical.as_ref()).indent(true).to_string(),
        )
    }

    #[tokio::test]
    async fn the_newest_snapshot_is_a_literal_and_reads_one_partition() {
        let (logical, physical) =
            plans("SELECT max(snapshot_date), min(snapshot_date) FROM open_items").await;
        assert!(!logical.contains("TableScan"), "{logical}");
        assert!(logical.contains(r#"Date32("2026-10-31")"#), "{logical}");
        assert!(!physical.contains("DataSourceExec"), "{physical}");

        let (logical, physical) = plans(
            "SELECT currency, sum(open_amount) FROM open_items o \
             WHERE o.snapshot_date = (SELECT max(snapshot_date) FROM open_items) \
             GROUP BY currency",
        )
        .await;
        assert!(
            logical.contains(r#"full_filters=[open_items.snapshot_date = Date32("2026-10-31")]"#),
            "{logical}"
        );
        assert!(!logical.contains("Join"), "{logical}");
        assert!(physical.contains("snapshot_date=2026-10-31"), "{physical}");
        assert!(!physical.contains("snapshot_date=2026-09-30"), "{physical}");
    }

    #[tokio::test]
    async fn other_aggregates_are_left_to_the_scan() {
        for sql in [
            // A filter, a group, another column, another function, an event table.
            "SELECT max(snapshot_date) FROM open_items WHERE disputed",
            "SELECT segment, max(snapshot_date) FROM customers GROUP BY segment",
            "SELECT max(due_date) FROM open_items",
            "SELECT max(snapshot_date), count(*) FROM open_items",
            "SELECT max(payment_date) FROM payments",
        ] {
            let (logical, _) = plans(sql).await;
            assert!(logical.contains("TableScan"), "{sql}: {logical}");
            assert!(logical.contains("Aggregate"), "{sql}: {logical}");
        }
        // A subquery with a filter is not a literal: it is computed.
        let (logical, _) = plans(
            "SELECT currency, sum(open_amount) FROM open_items o WHERE o.snapshot_date = \
             (SELECT max(snapshot_date) FROM open_items WHERE disputed) GROUP BY currency",
        )
        .await;
        assert!(!logical.contains("Date32(\"2026-10-31\")"), "{logical}");
        assert!(logical.contains("open_items.disputed"), "{logical}");
    }
}
