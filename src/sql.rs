//! Running SQL over a warehouse session, and the listings of its tables and functions.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use futures::StreamExt;

use crate::error::{ArqError, Result};
use crate::output::QueryResult;

/// What `arq sql` and the shell allow: queries and session-local DDL (views, in-memory
/// tables), but no statement that writes files (`COPY`, `INSERT`): the warehouse is
/// read-only to SQL.
pub fn sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(true)
        .with_allow_dml(false)
        .with_allow_statements(true)
}

/// The statements of a script (separated by `;`), in order; an error when there is none.
pub fn parse_script(sql: &str) -> Result<Vec<Statement>> {
    let statements: Vec<Statement> = DFParser::parse_sql(sql)?.into_iter().collect();
    if statements.is_empty() {
        return Err(ArqError::Usage("no SQL statement given".into()));
    }
    Ok(statements)
}

/// Runs one statement (read-only towards the disk, see [`sql_options`]) and collects its
/// result.
pub async fn run_statement(ctx: &SessionContext, statement: Statement) -> Result<QueryResult> {
    let mut stream = stream_statement(ctx, statement).await?;
    let schema = stream.schema();
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch?);
    }
    Ok(QueryResult { schema, batches })
}

/// Runs one statement (read-only towards the disk, see [`sql_options`]); its rows come
/// as the stream is read, under readable column names.
pub async fn stream_statement(
    ctx: &SessionContext,
    statement: Statement,
) -> Result<SendableRecordBatchStream> {
    let plan = ctx.state().statement_to_plan(statement).await?;
    sql_options().verify_plan(&plan)?;
    let frame = ctx.execute_logical_plan(plan).await?;
    let schema = readable_schema(frame.schema().inner());
    let stream = frame.execute_stream().await?;
    let renamed = schema.clone();
    let batches = stream.map(move |batch| batch.and_then(|b| conform(&renamed, &b)));
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
}

/// `batch` under `schema`: the readable names, and the planned types where an operator
/// produced another (DataFusion may give a sum of decimals a wider precision than it
/// planned); a value that does not fit the planned type is an error, never NULL.
fn conform(schema: &SchemaRef, batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
    use datafusion::arrow::compute::{CastOptions, cast_with_options};
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(
            |(column, field)| match column.data_type() == field.data_type() {
                true => Ok(column.clone()),
                false => cast_with_options(column, field.data_type(), &options),
            },
        )
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The result's columns named as they were written, and string views typed as strings:
/// DataFusion names an unaliased literal by its type (`Int64(1)`, `Utf8("a")`), `SELECT
/// 1 + 2` reads `1 + 2` here, as in DuckDB and psql. Aliased and plain column names are
/// untouched.
fn readable_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let field = f.as_ref().clone().with_name(readable_name(f.name()));
            // Text read as string views (`Warehouse::with_string_views`) is written as
            // strings: the outputs do not depend on how a session reads the tables.
            match field.data_type() {
                DataType::Utf8View => field.with_data_type(DataType::Utf8),
                DataType::BinaryView => field.with_data_type(DataType::Binary),
                _ => field,
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `name` with every typed literal written as its value: `Int64(1)` → `1`, `Utf8("a")` →
/// `'a'`, `Boolean(true)` → `true`, `Float64(2.5)` → `2.5`.
pub fn readable_name(name: &str) -> String {
    const TYPES: [&str; 12] = [
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "UInt8",
        "UInt16",
        "UInt32",
        "UInt64",
        "Float32",
        "Float64",
        "Boolean",
        "Decimal128",
    ];
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    'scan: while !rest.is_empty() {
        // A literal starts where the previous character is not part of a name.
        let boundary = out
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if boundary {
            for prefix in ["Utf8View(\"", "LargeUtf8(\"", "Utf8(\""] {
                if let Some(after) = rest.strip_prefix(prefix)
                    && let Some(end) = after.find("\")")
                {
                    out.push('\'');
                    out.push_str(&after[..end]);
                    out.push('\'');
                    rest = &after[end + 2..];
                    continue 'scan;
                }
            }
            for t in TYPES {
                if let Some(after) = rest.strip_prefix(t).and_then(|r| r.strip_prefix('('))
                    && let Some(end) = after.find(')')
                    && !after[..end].contains('(')
                {
                    // Decimal128(Some(250),3,1) and the like stay as they are.
                    if !after[..end].starts_with("Some") {
                        out.push_str(&after[..end]);
                        rest = &after[end + 1..];
                        continue 'scan;
                    }
                }
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Runs every statement in `sql` (separated by `;`), in order, and returns each result.
pub async fn run_statements(ctx: &SessionContext, sql: &str) -> Result<Vec<QueryResult>> {
    let mut results = Vec::new();
    for statement in parse_script(sql)? {
        results.push(run_statement(ctx, statement).await?);
    }
    Ok(results)
}

/// An error of statement `number` of a script, naming it by its first line.
pub fn located(number: usize, statement: &Statement, error: ArqError) -> ArqError {
    let text = statement.to_string();
    let first_line = text.lines().next().unwrap_or_default();
    ArqError::Input(format!("statement {number} (`{first_line}`): {error}"))
}

/// Lists every table and view of the session with its columns, for `\d` and
/// `arq tables`.
pub async fn describe_tables(ctx: &SessionContext, only: Option<&str>) -> Result<String> {
    let sql = "SELECT table_name, column_name, data_type, is_nullable \
               FROM information_schema.columns \
               WHERE table_schema = 'warehouse' \
               ORDER BY table_name, ordinal_position";
    let frame = ctx.sql(sql).await?;
    let batches = frame.collect().await?;
    let mut listing = String::new();
    let mut current = String::new();
    let mut found = false;
    for batch in &batches {
        let column = |i: usize| {
            datafusion::arrow::compute::cast(
                batch.column(i),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
        };
        let (tables, columns, types, nullable) = (column(0)?, column(1)?, column(2)?, column(3)?);
        let text = |a: &datafusion::arrow::array::ArrayRef, row: usize| {
            datafusion::arrow::array::AsArray::as_string::<i32>(a.as_ref())
                .value(row)
                .to_string()
        };
        for row in 0..batch.num_rows() {
            let table = text(&tables, row);
            if only.is_some_and(|o| o != table) {
                continue;
            }
            found = true;
            if table != current {
                listing.push_str(&table);
                listing.push('\n');
                current = table;
            }
            let null = if text(&nullable, row) == "YES" {
                ""
            } else {
                " not null"
            };
            listing.push_str(&format!(
                "  {:<22} {}{null}\n",
                text(&columns, row),
                text(&types, row)
            ));
        }
    }
    match (only, found) {
        (Some(name), false) => Err(ArqError::NotFound(format!(
            "no table or view named `{name}`"
        ))),
        _ => Ok(listing),
    }
}

/// The documentation of arq's SQL functions (all of them, or those whose name contains
/// `filter`), for `arq functions` and the shell's `\functions`.
pub fn describe_functions(
    filter: Option<&str>,
    model: Option<&arq_models::sql::SessionModel>,
) -> Result<String> {
    let mut docs = arq_udfs::documentation();
    docs.extend(arq_models::sql::documentation(model));
    docs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut docs: Vec<_> = docs
        .into_iter()
        .filter(|d| filter.is_none_or(|f| d.name.contains(f)))
        .collect();
    // A function named exactly: that one only, the others that match listed below it.
    let mut also = Vec::new();
    if let Some(exact) = filter.and_then(|f| docs.iter().position(|d| d.name == f)) {
        let one = docs.swap_remove(exact);
        also = docs.iter().map(|d| d.name.clone()).collect();
        also.sort();
        docs = vec![one];
    }
    if docs.is_empty() {
        return Err(ArqError::NotFound(format!(
            "no arq function matches `{}`",
            filter.unwrap_or_default()
        )));
    }
    let mut text = String::new();
    for d in docs {
        let doc = &d.documentation;
        text.push_str(&format!("{} ({})\n", d.name, d.kind));
        text.push_str(&format!("  {}\n", doc.syntax_example));
        text.push_str(&format!("  {}\n", doc.description));
        for (name, description) in doc.arguments.iter().flatten() {
            text.push_str(&format!("    {name}: {description}\n"));
        }
        if let Some(example) = &doc.sql_example {
            text.push_str("  Example:\n");
            for line in example.lines().filter(|l| !l.starts_with("```")) {
                text.push_str(&format!("    {line}\n"));
            }
        }
        text.push('\n');
    }
    if !also.is_empty() {
        text.push_str(&format!("Also matching: {}\n", also.join(", ")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_headers_read_as_written() {
        assert_eq!(readable_name("Int64(1)"), "1");
        assert_eq!(readable_name("Int64(1) + Int64(2)"), "1 + 2");
        assert_eq!(readable_name("upper(Utf8(\"x\"))"), "upper('x')");
        assert_eq!(readable_name("Boolean(true)"), "true");
        assert_eq!(readable_name("Float64(-2.5)"), "-2.5");
        assert_eq!(readable_name("customer_id"), "customer_id");
        assert_eq!(readable_name("count(*)"), "count(*)");
        assert_eq!(readable_name("my_Int64(1)"), "my_Int64(1)");
    }
}
