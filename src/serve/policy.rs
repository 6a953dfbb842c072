//! What `arq serve` runs: the warehouse is read-only to its clients, and nothing outside
//! it can be read. Every statement is checked here, after parsing and before planning,
//! against an allow-list:
//!
//! - queries (`SELECT`, `WITH`, `VALUES`), `EXPLAIN` / `DESCRIBE` of them, `SHOW`;
//! - `SET` of a Postgres session setting (`statement_timeout`, `DateStyle`,
//!   `extra_float_digits`, ...) or of DataFusion's `execution`, `optimizer`, `explain`,
//!   `sql_parser` and `format` options (never `datafusion.runtime.*`, which would lift
//!   the memory limit, nor `datafusion.catalog.*`);
//! - transactions (`BEGIN`, `COMMIT`, `ROLLBACK`), cursors (`DECLARE` over a query,
//!   `FETCH`, `CLOSE`), `DISCARD` and `DEALLOCATE` (session clean-up by poolers);
//! - `COPY (query) TO STDOUT` and `COPY table TO STDOUT` (psql's `\copy ... TO file`
//!   writes on the client).
//!
//! Everything else is refused with a SQLSTATE a client understands: 25006
//! (`read_only_sql_transaction`) for what would change data, 42501
//! (`insufficient_privilege`) for what would reach files, the server's configuration or
//! another role, and 0A000 for SQL-level `PREPARE` / `EXECUTE` (drivers use the
//! protocol's prepared statements). A query naming a file (`FROM '/etc/passwd'`, `FROM 'file:///...'`) or a
//! file-reading table function (`read_csv(...)`) is refused even though such tables are
//! not registered in the server's sessions: the message then says why.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    CopySource, CopyTarget, Declare, ObjectName, ObjectNamePart, Set, Statement, visit_relations,
};

/// SQLSTATE of a statement that would change data.
pub const READ_ONLY: &str = "25006";
/// SQLSTATE of a statement that would reach beyond the warehouse.
pub const NO_PRIVILEGE: &str = "42501";
/// SQLSTATE of SQL-level PREPARE / EXECUTE.
pub const NOT_SUPPORTED: &str = "0A000";

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub sqlstate: &'static str,
    pub message: String,
}

impl Refusal {
    fn read_only(what: &str) -> Refusal {
        Refusal {
            sqlstate: READ_ONLY,
            message: format!(
                "{what} is not allowed: arq serve is read-only (queries, EXPLAIN, SHOW, SET, \
                 transactions, cursors and COPY ... TO STDOUT)"
            ),
        }
    }

    fn no_privilege(message: String) -> Refusal {
        Refusal {
            sqlstate: NO_PRIVILEGE,
            message,
        }
    }
}

/// Table functions that read files: never registered in a server session, refused by name
/// so the message says why.
const FILE_FUNCTIONS: [&str; 7] = [
    "read_csv",
    "read_parquet",
    "read_json",
    "read_ndjson",
    "read_avro",
    "read_arrow",
    "parquet_metadata",
];

/// DataFusion option groups a client may set for its session.
const SETTABLE_GROUPS: [&str; 5] = [
    "datafusion.execution.",
    "datafusion.optimizer.",
    "datafusion.explain.",
    "datafusion.sql_parser.",
    "datafusion.format.",
];

/// Checks one parsed statement.
pub fn check(statement: &Statement) -> Result<(), Refusal> {
    match statement {
        Statement::Query(_) => no_files(statement),
        Statement::Explain { statement, .. } => check(statement),
        Statement::ExplainTable { table_name, .. } => no_file_name(table_name),
        Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowCharset(_)
        | Statement::ShowObjects(_)
        | Statement::ShowCollation { .. } => Ok(()),
        Statement::Set(set) => check_set(set),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Ok(()),
        Statement::Declare { stmts } => stmts.iter().try_for_each(check_declare),
        Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Discard { .. }
        | Statement::Deallocate { .. } => Ok(()),
        Statement::Copy {
            source, to, target, ..
        } => match (to, target) {
            (false, _) => Err(Refusal::read_only("COPY ... FROM")),
            (true, CopyTarget::Stdout) => match source {
                CopySource::Query(query) => no_files(query.as_ref()),
                CopySource::Table { table_name, .. } => no_file_name(table_name),
            },
            (true, _) => Err(Refusal::no_privilege(
                "COPY ... TO a file or program is not allowed: the server writes no files \
                 (use COPY ... TO STDOUT, or psql's \\copy, which writes on the client)"
                    .into(),
            )),
        },
        Statement::Insert(_) => Err(Refusal::read_only("INSERT")),
        Statement::Update { .. } => Err(Refusal::read_only("UPDATE")),
        Statement::Delete(_) => Err(Refusal::read_only("DELETE")),
        Statement::Merge { .. } => Err(Refusal::read_only("MERGE")),
        Statement::Truncate { .. } => Err(Refusal::read_only("TRUNCATE")),
        Statement::CreateTable(_) => Err(Refusal::read_only("CREATE TABLE")),
        Statement::CreateView { .. } => Err(Refusal::read_only("CREATE VIEW")),
        Statement::Drop { .. } => Err(Refusal::read_only("DROP")),
        Statement::AlterTable { .. } => Err(Refusal::read_only("ALTER TABLE")),
        Statement::Prepare { .. } | Statement::Execute { .. } => Err(Refusal {
            sqlstate: NOT_SUPPORTED,
            message: "SQL PREPARE / EXECUTE is not supported: use the protocol's prepared \
                          statements ($1 parameters), as drivers do"
                .into(),
        }),
        other => Err(Refusal::read_only(&statement_kind(other))),
    }
}

/// `CREATE EXTERNAL TABLE`, which only DataFusion's own parser reads: it would register a
/// table over any file the server can read.
pub fn external_table() -> Refusal {
    Refusal::no_privilege(
        "CREATE EXTERNAL TABLE is not allowed: the server reads the warehouse's tables only".into(),
    )
}

/// The first words of a statement, for the message (`CREATE FUNCTION`, `GRANT`, ...).
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second] if ["CREATE", "ALTER", "DROP"].contains(first) => {
            format!("{first} {second}")
        }
        [first, ..] => (*first).to_string(),
        [] => "this statement".into(),
    }
}

fn check_declare(declare: &Declare) -> Result<(), Refusal> {
    match &declare.for_query {
        Some(query) => no_files(query.as_ref()),
        None => Ok(()),
    }
}

fn check_set(set: &Set) -> Result<(), Refusal> {
    let variable = |name: &ObjectName| -> Result<(), Refusal> {
        let name = name.to_string().to_ascii_lowercase();
        let name = name.trim_matches('"');
        if !name.contains('.') || SETTABLE_GROUPS.iter().any(|g| name.starts_with(g)) {
            return Ok(());
        }
        Err(Refusal::no_privilege(format!(
            "SET {name} is not allowed: a client may set Postgres session settings and \
             datafusion.execution / optimizer / explain / sql_parser / format options"
        )))
    };
    match set {
        Set::SingleAssignment { variable: v, .. } => variable(v),
        Set::ParenthesizedAssignments { variables, .. } => variables.iter().try_for_each(variable),
        Set::MultipleAssignments { assignments } => {
            assignments.iter().try_for_each(|a| variable(&a.name))
        }
        Set::SetSessionAuthorization(_) | Set::SetRole { .. } => Err(Refusal::no_privilege(
            "SET ROLE / SESSION AUTHORIZATION is not allowed: a session keeps the user it \
             logged in as"
                .into(),
        )),
        // SET TIME ZONE, SET NAMES, SET TRANSACTION ...: session settings.
        _ => Ok(()),
    }
}

/// Refuses a query that names a file or calls a file-reading table function.
fn no_files<V: datafusion::sql::sqlparser::ast::Visit>(node: &V) -> Result<(), Refusal> {
    match visit_relations(node, |name| match no_file_name(name) {
        Ok(()) => ControlFlow::Continue(()),
        Err(refusal) => ControlFlow::Break(refusal),
    }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(refusal) => Err(refusal),
    }
}

fn no_file_name(name: &ObjectName) -> Result<(), Refusal> {
    let last = match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) => ident,
        _ => return Ok(()),
    };
    let value = last.value.as_str();
    let looks_like_path = value.contains('/')
        || value.contains('\\')
        || value.contains("://")
        || value.ends_with(".parquet")
        || value.ends_with(".csv")
        || value.ends_with(".json");
    if last.quote_style == Some('\'') || (name.0.len() == 1 && looks_like_path) {
        return Err(Refusal::no_privilege(format!(
            "reading the file {value} is not allowed: the server reads the warehouse's \
             tables only"
        )));
    }
    let lower = value.to_ascii_lowercase();
    if FILE_FUNCTIONS.contains(&lower.as_str()) {
        return Err(Refusal::no_privilege(format!(
            "{lower}() is not allowed: the server reads the warehouse's tables only"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn verdict(sql: &str) -> Result<(), &'static str> {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect(sql);
        assert_eq!(statements.len(), 1, "{sql}");
        check(&statements[0]).map_err(|r| r.sqlstate)
    }

    #[test]
    fn reads_and_session_settings_pass() {
        for sql in [
            "SELECT 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "SELECT * FROM open_items_latest o JOIN customers c USING (customer_id)",
            "SELECT * FROM ar_metrics('2026-01-31', '2026-10-31')",
            "EXPLAIN SELECT * FROM invoices",
            "EXPLAIN ANALYZE SELECT count(*) FROM payments",
            "SHOW statement_timeout",
            "SHOW ALL",
            "SET statement_timeout = '10s'",
            "SET extra_float_digits = 3",
            "SET datafusion.execution.target_partitions = 2",
            "SET TIME ZONE 'UTC'",
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "DECLARE c CURSOR FOR SELECT * FROM customers_latest",
            "FETCH 10 FROM c",
            "CLOSE c",
            "COPY (SELECT 1) TO STDOUT",
            "COPY customers_latest TO STDOUT WITH (FORMAT csv, HEADER)",
        ] {
            assert_eq!(verdict(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn writes_are_refused_as_read_only() {
        for sql in [
            "INSERT INTO invoices VALUES (1)",
            "UPDATE invoices SET amount = 0",
            "DELETE FROM invoices",
            "TRUNCATE invoices",
            "CREATE TABLE t (a int)",
            "CREATE TABLE t AS SELECT 1",
            "CREATE VIEW v AS SELECT * FROM invoices",
            "DROP TABLE invoices",
            "DROP VIEW open_items_latest",
            "ALTER TABLE invoices ADD COLUMN x int",
            "COPY invoices FROM STDIN",
            "COPY invoices FROM '/tmp/x.csv'",
            "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
        ] {
            assert_eq!(verdict(sql), Err(READ_ONLY), "{sql}");
        }
    }

    #[test]
    fn sql_level_prepare_is_not_supported() {
        assert_eq!(verdict("PREPARE p AS SELECT 1"), Err(NOT_SUPPORTED));
        assert_eq!(verdict("EXECUTE p"), Err(NOT_SUPPORTED));
    }

    #[test]
    fn files_roles_and_runtime_options_are_refused_as_privileges() {
        for sql in [
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM 'file:///etc/passwd'",
            "SELECT * FROM \"/etc/passwd\"",
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM customers c JOIN read_parquet('x.parquet') p USING (customer_id)",
            "WITH x AS (SELECT * FROM '/etc/hosts') SELECT * FROM x",
            "SELECT * FROM invoices WHERE customer_id IN (SELECT a FROM '/etc/passwd')",
            "EXPLAIN SELECT * FROM '/etc/passwd'",
            "COPY (SELECT 1) TO '/tmp/out.csv'",
            "COPY invoices TO PROGRAM 'sh'",
            "SET datafusion.runtime.memory_limit = '100G'",
            "SET datafusion.catalog.information_schema = false",
            "SET ROLE admin",
            "SET SESSION AUTHORIZATION admin",
            "DECLARE c CURSOR FOR SELECT * FROM '/etc/passwd'",
        ] {
            assert_eq!(verdict(sql), Err(NO_PRIVILEGE), "{sql}");
        }
    }
}
