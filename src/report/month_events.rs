//! The month's events, read once for the collectors' promise-kept rate and cash collected.
//!
//! Both figures join payments to their invoices, and both tables are in customer order,
//! not in date order: each query read every payment (133 M at a million customers) and
//! every invoice (132 M) to find the few it needed — the promised invoices' payments and
//! currency, the month's payments and their invoices' currency — and together they were
//! 40 % of the report's work. Here the rows either of them reads are gathered in one pass
//! over each table:
//!
//! 1. `activities`: the promises whose promise date lies in the months the
//!    `promise_kept_rate` of the month judges (`arq_udfs`' own window);
//! 2. `payments`: those of the month, and every payment on a promised invoice;
//! 3. `invoices`: those the gathered payments or promises name.
//!
//! and the two queries run in a session where those three tables are the gathered rows
//! and the columns the two read (not the ids of payments, nor the invoices' dates: a
//! payment's id alone is a fifth of the payments' bytes), every other table and view as
//! in the report's session. The function and the SQL are the analyst's, unchanged, over
//! a subset that holds every row and column they read — so the figures are those of `arq
//! sql` (a test compares them row for row; a column they come to read and the subset
//! lacks fails the report loudly, it cannot change a figure).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::memory::{
    MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
};
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;

use super::rows::timing;
use crate::error::{ArqError, Result};
use crate::warehouse::{CATALOG, SCHEMA};

/// A session like `ctx` in which `activities`, `payments` and `invoices` hold the rows
/// that `promise_kept_rate(end, end, ...)` and the month's cash collected (payments after
/// `start` up to `end`, with their invoices) read; see the module's documentation.
pub async fn month_events(ctx: &SessionContext, start: &str, end: &str) -> Result<SessionContext> {
    let started = std::time::Instant::now();
    let (month, tables) = shadowed(ctx).await?;
    let end_day = day(end)?;
    let (first, last) = arq_udfs::metrics::promise_kept_rate::whole_months(end_day, end_day);
    let (first, last) = (
        arq_udfs::dates::sql_literal(first),
        arq_udfs::dates::sql_literal(last),
    );
    // Each step reads the warehouse's table and the steps before's gathered rows.
    let steps = [
        (
            "activities",
            format!(
                "SELECT activity_id, customer_id, invoice_id, activity_date, kind, \
                        collector_id, promise_date, promise_amount \
                 FROM activities WHERE kind = 'promise' \
                 AND promise_date BETWEEN {first} AND {last}"
            ),
        ),
        (
            "payments",
            format!(
                "SELECT p.customer_id, p.invoice_id, p.payment_date, p.amount \
                 FROM payments p \
                 LEFT JOIN (SELECT DISTINCT invoice_id FROM activities \
                            WHERE invoice_id IS NOT NULL) promised \
                   ON promised.invoice_id = p.invoice_id \
                 WHERE (p.payment_date > DATE '{start}' AND p.payment_date <= DATE '{end}') \
                    OR promised.invoice_id IS NOT NULL"
            ),
        ),
        (
            "invoices",
            "SELECT i.customer_id, i.invoice_id, i.currency, i.amount \
             FROM invoices i WHERE i.invoice_id IN \
             (SELECT invoice_id FROM payments UNION SELECT invoice_id FROM activities)"
                .to_string(),
        ),
    ];
    for (table, sql) in steps {
        let frame = small_builds(&month).sql(&sql).await?;
        let schema: SchemaRef = frame.schema().inner().clone();
        let batches: Vec<RecordBatch> = frame.collect().await?;
        tables.deregister_table(table)?;
        tables.register_table(
            table.to_string(),
            Arc::new(MemTable::try_new(schema, vec![batches])?),
        )?;
    }
    timing("the month's events", started);
    Ok(month)
}

/// A session like `ctx` whose warehouse schema is a copy (the same tables and views), so
/// that tables can be replaced in it without touching `ctx`; and that schema.
async fn shadowed(ctx: &SessionContext) -> Result<(SessionContext, Arc<MemorySchemaProvider>)> {
    let missing = || ArqError::Internal(format!("the session has no {CATALOG}.{SCHEMA}"));
    let schema = ctx
        .catalog(CATALOG)
        .and_then(|c| c.schema(SCHEMA))
        .ok_or_else(missing)?;
    let tables = Arc::new(MemorySchemaProvider::new());
    for name in schema.table_names() {
        if let Some(table) = schema.table(&name).await? {
            tables.register_table(name, table)?;
        }
    }
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema(SCHEMA, tables.clone())?;
    let catalogs = MemoryCatalogProviderList::new();
    catalogs.register_catalog(CATALOG.to_string(), Arc::new(catalog));
    let state = SessionStateBuilder::new_from_existing(ctx.state())
        .with_catalog_list(Arc::new(catalogs))
        .build();
    Ok((SessionContext::new_with_state(state), tables))
}

/// `ctx` planning a join whose smaller side is under the report's limit as that side
/// built once and probed by the other side's partitions as read.
fn small_builds(ctx: &SessionContext) -> SessionContext {
    let mut state = ctx.state();
    arq_udfs::table_function::small_builds(&mut state, arq_udfs::table_function::SMALL_BUILD_ROWS);
    SessionContext::new_with_state(state)
}

fn day(date: &str) -> Result<i32> {
    let parsed = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|e| ArqError::Internal(format!("snapshot date {date}: {e}")))?;
    Ok(arq_udfs::dates::to_days(parsed))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;

    use super::*;
    use crate::warehouse::{AsOf, Warehouse};

    async fn printed(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    #[tokio::test]
    async fn the_gathered_rows_give_the_warehouses_figures() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo");
        let ctx = Warehouse::open(root, AsOf::Latest)
            .unwrap()
            .session(None)
            .await
            .unwrap();
        let (start, end) = ("2026-09-30", "2026-10-31");
        let month = month_events(&ctx, start, end).await.unwrap();
        let count = |table: &str| format!("SELECT count(*) AS n FROM {table}");
        for table in ["activities", "payments", "invoices"] {
            // Fewer rows than the warehouse's, and the report's session is untouched.
            let (all, gathered) = (
                printed(&ctx, &count(table)).await,
                printed(&month, &count(table)).await,
            );
            assert_ne!(all, gathered, "{table}: nothing was left out");
        }
        for sql in [
            format!("SELECT * FROM promise_kept_rate('{end}', '{end}', 'collector_id')"),
            format!("SELECT * FROM promise_kept_rate('{end}', '{end}', 'segment', 0)"),
            format!("SELECT * FROM promise_kept_rate('{end}', '{end}')"),
            format!(
                "SELECT c.collector_id, i.currency, sum(p.amount) AS cash, count(*) AS n \
                 FROM payments p JOIN invoices i ON i.invoice_id = p.invoice_id \
                 JOIN customers_latest c ON c.customer_id = p.customer_id \
                 WHERE p.payment_date > DATE '{start}' AND p.payment_date <= DATE '{end}' \
                 GROUP BY 1, 2 ORDER BY 1, 2"
            ),
        ] {
            let expected = printed(&ctx, &sql).await;
            assert!(expected.lines().count() > 5, "{sql}: too few rows\n{expected}");
            assert_eq!(printed(&month, &sql).await, expected, "{sql}");
        }
    }
}
