//! One connection of `arq serve`: authentication, the read-only check, statement
//! timeouts, cancel requests, the shutdown signal, `COPY ... TO STDOUT` and the log, around
//! datafusion-postgres's query handlers (which do the planning, `pg_catalog`, parameters
//! and the Arrow → Postgres encoding).
//!
//! Every statement runs under an [`Interrupt`]: the session's `statement_timeout`, the
//! client's cancel request and the server's shutdown. It covers the planning (arq's table
//! functions compute while the plan is built) and every row sent; when it fires the
//! statement's streams are dropped, which stops DataFusion's work, and the client gets
//! 57014 (timeout, cancel) or 57P01 (shutdown).

use std::collections::HashMap;
use std::fmt::Debug;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyOption, CopyOption, CopySource, CopyTarget, Expr, Set, Statement, Value,
};
use datafusion_postgres::DfSessionService;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::{Sink, Stream, StreamExt};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, METADATA_USER,
    PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use tokio::sync::watch;

use super::log;
use super::policy::{self, Refusal};
use super::session::{Catalog, connection_session};
use super::users::Users;
use crate::memory::MemoryLimit;

/// The metadata key datafusion-postgres keeps `statement_timeout` under (it answers
/// `SHOW statement_timeout` from it).
const TIMEOUT_KEY: &str = "statement_timeout_ms";

/// The limits every statement runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Memory a statement may use.
    pub query_memory: MemoryLimit,
    /// `statement_timeout` of a new session.
    pub statement_timeout: Duration,
    /// The most a session may set `statement_timeout` to.
    pub max_statement_timeout: Duration,
}

/// What every connection shares.
pub struct Shared {
    pub catalog: Arc<Catalog>,
    /// None: `--trust-local`, no authentication.
    pub users: Option<Arc<Users>>,
    pub require_tls: bool,
    /// The server's certificate (PEM), for SCRAM channel binding over TLS.
    pub tls_cert_pem: Option<Vec<u8>>,
    pub limits: Limits,
    pub connections: Arc<ConnectionManager>,
    /// Each logged-in connection's cancel signal, by its (pid, secret key).
    pub cancels: Mutex<HashMap<CancelKey, watch::Sender<u64>>>,
    pub shutdown: watch::Receiver<bool>,
}

/// What a cancel request names: the pid and secret key given at login.
pub type CancelKey = (i32, Vec<u8>);

/// A connection's copy of the base session: the generation of the warehouse it copies,
/// the query service over it, and the session (for its options).
struct ConnectionSession {
    generation: u64,
    service: Arc<DfSessionService>,
    ctx: Arc<datafusion::prelude::SessionContext>,
}

/// The handlers of one connection.
pub struct Connection {
    startup: Arc<Startup>,
    queries: Arc<Queries>,
    cancel: Arc<Cancels>,
    errors: Arc<Errors>,
}

impl Connection {
    pub fn new(id: u64, shared: Arc<Shared>) -> Connection {
        let state = Arc::new(ConnectionState {
            id,
            shared: Arc::clone(&shared),
            session: Mutex::new(None),
            connected: Mutex::new(None),
            cancel: watch::Sender::new(0),
            cancel_key: Mutex::new(None),
        });
        let auth = match &shared.users {
            Some(users) => {
                let mut scram = ScramAuth::new(Arc::clone(users) as _);
                if let Some(pem) = &shared.tls_cert_pem {
                    // Offer SCRAM-SHA-256-PLUS (channel binding) over TLS when pgwire
                    // reads the certificate's signature algorithm; without it, plain
                    // SCRAM-SHA-256 over TLS, which every client speaks.
                    let _ = scram.configure_certificate(pem);
                }
                Auth::Scram(
                    SASLAuthStartupHandler::new(Arc::new(parameters()))
                        .with_scram(scram)
                        .with_connection_manager(Arc::clone(&shared.connections)),
                )
            }
            None => Auth::Trust(Trust {
                connections: Arc::clone(&shared.connections),
            }),
        };
        Connection {
            startup: Arc::new(Startup {
                state: Arc::clone(&state),
                auth,
            }),
            queries: Arc::new(Queries {
                state: Arc::clone(&state),
                parser: Arc::new(CheckedParser {
                    state: Arc::clone(&state),
                }),
            }),
            cancel: Arc::new(Cancels { shared }),
            errors: Arc::new(Errors {
                state,
                logged: AtomicBool::new(false),
            }),
        }
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::clone(&self.errors)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// The parameters sent after login: a read-only session of a non-superuser.
fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.is_superuser = false;
    p.default_transaction_read_only = true;
    p.search_path = crate::warehouse::SCHEMA.into();
    p
}

/// What the handlers of one connection share.
struct ConnectionState {
    id: u64,
    shared: Arc<Shared>,
    /// The connection's session (none before its first statement).
    session: Mutex<Option<ConnectionSession>>,
    /// When and as whom the connection logged in (for the disconnect line).
    connected: Mutex<Option<(Instant, String, String)>>,
    /// Counts the cancel requests for this connection.
    cancel: watch::Sender<u64>,
    /// The (pid, secret key) the cancel requests name, once logged in.
    cancel_key: Mutex<Option<CancelKey>>,
}

impl ConnectionState {
    /// The connection's query service over the warehouse served now: a new copy of the
    /// base session when the warehouse was reloaded since (keeping the session's options).
    fn service(&self) -> PgWireResult<Arc<DfSessionService>> {
        let served = self.shared.catalog.current();
        let mut slot = self.session.lock().expect("session lock");
        if let Some(current) = slot.as_ref()
            && current.generation == served.generation
        {
            return Ok(Arc::clone(&current.service));
        }
        let config = slot.as_ref().map(|c| c.ctx.copied_config());
        let ctx = connection_session(&served.ctx, config, self.shared.limits.query_memory)
            .map_err(|e| user_error("XX000", e.to_string()))?;
        let ctx = Arc::new(ctx);
        let service = Arc::new(DfSessionService::new(Arc::clone(&ctx)));
        *slot = Some(ConnectionSession {
            generation: served.generation,
            service: Arc::clone(&service),
            ctx,
        });
        Ok(service)
    }

    /// The interrupt of a statement starting now.
    fn interrupt<C: ClientInfo>(&self, client: &C) -> Interrupt {
        let timeout = client
            .metadata()
            .get(TIMEOUT_KEY)
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(self.shared.limits.statement_timeout);
        // Only a cancel request from now on ends this statement.
        let mut cancel = self.cancel.subscribe();
        cancel.mark_unchanged();
        Interrupt {
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            cancel,
            shutdown: self.shared.shutdown.clone(),
        }
    }

    fn user<C: ClientInfo>(client: &C) -> String {
        client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for ConnectionState {
    fn drop(&mut self) {
        if let Some(key) = self.cancel_key.lock().ok().and_then(|mut k| k.take())
            && let Ok(mut cancels) = self.shared.cancels.lock()
        {
            cancels.remove(&key);
        }
        if let Some((since, user, addr)) = self.connected.lock().ok().and_then(|mut c| c.take()) {
            log::event("disconnect")
                .with("conn", self.id)
                .with("user", user)
                .with("addr", addr)
                .with("duration_ms", since.elapsed().as_millis() as u64)
                .write();
        }
    }
}

/// What ends a statement early.
struct Interrupt {
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    cancel: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
}

impl Interrupt {
    /// Resolves with the error to send when the statement must end.
    async fn fired(&mut self) -> ErrorInfo {
        let cancel = async {
            // The sender lives as long as the connection: an error never comes while
            // a statement runs; if it did, no cancel could come any more.
            if self.cancel.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = &mut self.deadline => ErrorInfo::new(
                "ERROR".into(),
                "57014".into(),
                format!(
                    "canceling statement due to statement timeout ({} ms)",
                    self.timeout.as_millis()
                ),
            ),
            () = cancel => ErrorInfo::new(
                "ERROR".into(),
                "57014".into(),
                "canceling statement due to user request".into(),
            ),
            _ = self.shutdown.wait_for(|down| *down) => ErrorInfo::new(
                "FATAL".into(),
                "57P01".into(),
                "terminating connection due to administrator command".into(),
            ),
        }
    }

    /// Runs `work` unless the interrupt fires first.
    async fn race<T>(&mut self, work: impl Future<Output = PgWireResult<T>>) -> PgWireResult<T> {
        tokio::select! {
            result = work => result,
            error = self.fired() => Err(PgWireError::UserError(Box::new(error))),
        }
    }
}

/// The log line of one statement, written when it ends (or when its rows are dropped
/// unread).
struct StatementLog {
    conn: u64,
    user: String,
    sql: String,
    started: Instant,
    rows: u64,
    written: bool,
}

impl StatementLog {
    fn new(conn: u64, user: String, sql: &str) -> StatementLog {
        StatementLog {
            conn,
            user,
            sql: sql.to_string(),
            started: Instant::now(),
            rows: 0,
            written: false,
        }
    }

    /// Logs the statement as `result` ended it.
    fn finish_with<T>(&mut self, result: &PgWireResult<T>) {
        match result {
            Ok(_) => self.finish(None),
            Err(e) => self.failed(e),
        }
    }

    /// Logs the statement as failed with `error`.
    fn failed(&mut self, error: &PgWireError) {
        let (code, message) = describe(error);
        self.finish(Some((&code, &message)));
    }

    fn finish(&mut self, error: Option<(&str, &str)>) {
        if self.written {
            return;
        }
        self.written = true;
        let mut line = log::event("statement")
            .with("conn", self.conn)
            .with("user", self.user.as_str())
            .with(
                "duration_ms",
                (self.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            )
            .with("rows", self.rows);
        if let Some((sqlstate, message)) = error {
            line = line.with("sqlstate", sqlstate).with("error", message);
        }
        line.sql(&self.sql).write();
    }
}

impl Drop for StatementLog {
    fn drop(&mut self) {
        self.finish(Some(("08006", "the client stopped reading the result")));
    }
}

/// SQLSTATE and message of an error, for the log and for mapping.
fn describe(error: &PgWireError) -> (String, String) {
    match error {
        PgWireError::UserError(info) => (info.code.clone(), info.message.clone()),
        other => ("XX000".into(), other.to_string()),
    }
}

fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

fn refusal_error(refusal: Refusal) -> PgWireError {
    user_error(refusal.sqlstate, refusal.message)
}

/// Gives DataFusion's errors the SQLSTATE a client acts on: out of memory (53200) for a
/// statement over the memory limit, syntax or undefined names (42601, 42P01, 42883) for
/// planning errors; the rest stay internal errors.
fn with_sqlstate(error: PgWireError) -> PgWireError {
    let PgWireError::ApiError(inner) = &error else {
        return error;
    };
    let Some(df) = inner.downcast_ref::<DataFusionError>() else {
        return error;
    };
    let root = df.find_root();
    let message = root.to_string();
    let code = match root {
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::SQL(..) => "42601",
        DataFusionError::Plan(m) if m.contains("not found") && m.contains("table") => "42P01",
        DataFusionError::Plan(m) if m.contains("Invalid function") => "42883",
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => "42000",
        DataFusionError::NotImplemented(_) => "0A000",
        _ => "XX000",
    };
    user_error(code, message)
}

/// Wraps a result's rows: the interrupt is watched between rows, errors get their
/// SQLSTATE, and the statement is logged when the rows end.
fn guarded_rows(
    rows: Pin<Box<dyn Stream<Item = PgWireResult<DataRow>> + Send>>,
    interrupt: Interrupt,
    log: StatementLog,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send {
    struct Rows {
        rows: Pin<Box<dyn Stream<Item = PgWireResult<DataRow>> + Send>>,
        interrupt: Interrupt,
        log: StatementLog,
        done: bool,
    }
    let state = Rows {
        rows,
        interrupt,
        log,
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let next = tokio::select! {
            biased;
            error = s.interrupt.fired() => Some(Err(PgWireError::UserError(Box::new(error)))),
            row = s.rows.next() => row.map(|r| r.map_err(with_sqlstate)),
        };
        match next {
            Some(Ok(row)) => {
                s.log.rows += 1;
                Some((Ok(row), s))
            }
            Some(Err(e)) => {
                s.done = true;
                s.log.failed(&e);
                Some((Err(e), s))
            }
            None => {
                s.done = true;
                s.log.finish(None);
                None
            }
        }
    })
}

/// Hands a statement's response to the client under its interrupt and log.
fn watched(response: Response, interrupt: Interrupt, mut log: StatementLog) -> Response {
    match response {
        Response::Query(mut query) => {
            let rows = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
            query.data_rows = Box::pin(guarded_rows(rows, interrupt, log));
            Response::Query(query)
        }
        Response::Error(info) => {
            log.finish(Some((&info.code, &info.message)));
            Response::Error(info)
        }
        other => {
            log.finish(None);
            other
        }
    }
}

/// The statement handlers of one connection.
pub struct Queries {
    state: Arc<ConnectionState>,
    parser: Arc<CheckedParser>,
}

impl Queries {
    /// Runs one statement of a simple query: `statement` as parsed (rewritten for
    /// DataFusion by datafusion-postgres's parser) for the checks, `sql` for the query
    /// handler, which parses and rewrites it again.
    async fn run_simple<C>(
        &self,
        client: &mut C,
        statement: &Statement,
        sql: &str,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let log = StatementLog::new(self.state.id, ConnectionState::user(client), sql);
        if let Err(refusal) = policy::check(statement) {
            let mut log = log;
            log.finish(Some((refusal.sqlstate, &refusal.message)));
            return Err(refusal_error(refusal));
        }
        if let Some(result) = set_statement_timeout(client, statement, &self.state.shared.limits) {
            let mut log = log;
            log.finish_with(&result);
            return result;
        }
        let mut interrupt = self.state.interrupt(client);
        let service = self.state.service()?;
        if let Some(copy) = CopyOut::of(statement)? {
            let ran = interrupt
                .race(SimpleQueryHandler::do_query(&*service, client, &copy.query))
                .await;
            let mut log = log;
            return match ran.map(|mut r| r.pop()) {
                Ok(Some(Response::Query(query))) => {
                    let rows = guarded_rows(query.data_rows, interrupt, log);
                    Ok(copy.response(query.row_schema.len(), &query.row_schema, rows))
                }
                Ok(_) => {
                    let e = user_error("0A000", "COPY takes a query that returns rows".into());
                    log.failed(&e);
                    Err(e)
                }
                Err(e) => {
                    let e = with_sqlstate(e);
                    log.failed(&e);
                    Err(e)
                }
            };
        }
        let ran = interrupt
            .race(SimpleQueryHandler::do_query(&*service, client, sql))
            .await
            .map_err(with_sqlstate);
        match ran {
            Ok(mut responses) if responses.len() == 1 => {
                Ok(watched(responses.remove(0), interrupt, log))
            }
            Ok(responses) => {
                let mut log = log;
                log.finish(None);
                Ok(responses.into_iter().next().unwrap_or(Response::EmptyQuery))
            }
            Err(e) => {
                let mut log = log;
                log.failed(&e);
                Err(e)
            }
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match parse(query) {
            Ok(s) => s,
            Err(e) => {
                StatementLog::new(self.state.id, ConnectionState::user(client), query).failed(&e);
                return Err(e);
            }
        };
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        // One statement (what clients send) goes to the query handler as written; of
        // several, each goes as printed from its parse, because the parser's rewrites
        // cannot be undone to find its own text.
        let single = statements.len() == 1;
        for statement in &statements {
            let text = match single {
                true => regproc_as_names(query).unwrap_or_else(|| query.to_string()),
                false => statement.to_string(),
            };
            match self.run_simple(client, statement, &text).await {
                Ok(response) => responses.push(response),
                // Like Postgres: the results before, then the error; the rest is not run.
                Err(e) => {
                    let info: ErrorInfo = e.into();
                    responses.push(Response::Error(Box::new(info)));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = CheckedParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (sql, parsed) = &portal.statement.statement;
        let mut log = StatementLog::new(self.state.id, ConnectionState::user(client), sql);
        // The statement passed the read-only check in CheckedParser, the only way in.
        if let Some((statement, _)) = parsed {
            if let Some(result) =
                set_statement_timeout(client, statement, &self.state.shared.limits)
            {
                log.finish_with(&result);
                return result;
            }
            if matches!(statement, Statement::Copy { .. }) {
                let e = user_error(
                    "0A000",
                    "COPY runs in a simple query (psql's \\copy does that)".into(),
                );
                log.failed(&e);
                return Err(e);
            }
        }
        let mut interrupt = self.state.interrupt(client);
        let service = self.state.service()?;
        let ran = interrupt
            .race(ExtendedQueryHandler::do_query(
                &*service, client, portal, max_rows,
            ))
            .await
            .map_err(with_sqlstate);
        match ran {
            Ok(response) => Ok(watched(response, interrupt, log)),
            Err(e) => {
                log.failed(&e);
                Err(e)
            }
        }
    }
}

/// datafusion-postgres's parser of the extended protocol, behind the read-only check.
pub struct CheckedParser {
    state: Arc<ConnectionState>,
}

#[async_trait]
impl QueryParser for CheckedParser {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let checked = parse(sql).and_then(|statements| {
            statements
                .iter()
                .try_for_each(policy::check)
                .map_err(refusal_error)
        });
        if let Err(e) = checked {
            StatementLog::new(self.state.id, ConnectionState::user(client), sql).failed(&e);
            return Err(e);
        }
        let service = self.state.service()?;
        let rewritten = regproc_as_names(sql);
        service
            .query_parser()
            .parse_sql(client, rewritten.as_deref().unwrap_or(sql), types)
            .await
            .map_err(with_sqlstate)
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.state
            .service()?
            .query_parser()
            .get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.state
            .service()?
            .query_parser()
            .get_result_schema(stmt, column_format)
    }
}

/// Parses SQL as the query handlers do; `CREATE EXTERNAL TABLE`, which only DataFusion's
/// own parser reads, is refused by name.
fn parse(sql: &str) -> PgWireResult<Vec<Statement>> {
    PostgresCompatibilityParser::new().parse(sql).map_err(|e| {
        let words: Vec<String> = sql
            .split_whitespace()
            .take(3)
            .map(str::to_ascii_uppercase)
            .collect();
        if words.len() >= 3 && words[0] == "CREATE" && words[1..].contains(&"EXTERNAL".to_string())
        {
            return refusal_error(policy::external_table());
        }
        user_error("42601", e.to_string())
    })
}

/// `'pg_catalog.array_in'::regproc` as the function's name, `'array_in'`: Postgres
/// shows a regproc as the function's name, and the `pg_catalog` tables here keep
/// regproc columns (`pg_type.typinput`, ...) as names, so a comparison with such a
/// literal (DBeaver's type lookup) compares names instead of failing to read
/// `array_in` as a number. None when the SQL has no such cast (or does not parse as
/// plain Postgres SQL): the text goes on unchanged.
fn regproc_as_names(sql: &str) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{Expr as E, visit_expressions_mut};
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use std::ops::ControlFlow;

    if !sql.to_ascii_lowercase().contains("regproc") {
        return None;
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let mut changed = false;
    let _ = visit_expressions_mut(&mut statements, |expr| {
        if let E::Cast {
            expr: inner,
            data_type,
            ..
        } = expr
            && let E::Value(v) = inner.as_ref()
            && let Value::SingleQuotedString(name) = &v.value
        {
            let kind = data_type.to_string().to_ascii_lowercase();
            if kind == "regproc" || kind == "pg_catalog.regproc" {
                let bare = name.strip_prefix("pg_catalog.").unwrap_or(name).to_string();
                *expr = E::value(Value::SingleQuotedString(bare));
                changed = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    changed.then(|| {
        statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// `SET statement_timeout`: within the server's maximum (0, "no timeout", is the
/// maximum). None for any other statement.
fn set_statement_timeout<C: ClientInfo>(
    client: &mut C,
    statement: &Statement,
    limits: &Limits,
) -> Option<PgWireResult<Response>> {
    let Statement::Set(Set::SingleAssignment {
        variable, values, ..
    }) = statement
    else {
        return None;
    };
    if !variable
        .to_string()
        .eq_ignore_ascii_case("statement_timeout")
    {
        return None;
    }
    let text = match values.as_slice() {
        [Expr::Value(v)] => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            other => other.to_string(),
        },
        [Expr::Identifier(i)] => i.value.clone(),
        other => {
            return Some(Err(user_error(
                "22023",
                format!(
                    "invalid value for statement_timeout: {}",
                    other
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )));
        }
    };
    let wanted = match parse_duration(&text) {
        Some(d) => d,
        None => {
            return Some(Err(user_error(
                "22023",
                format!(
                    "invalid value for statement_timeout: \"{text}\" (a number of \
                     milliseconds, or with a unit: 30s, 5min)"
                ),
            )));
        }
    };
    let max = limits.max_statement_timeout;
    let timeout = if wanted.is_zero() { max } else { wanted };
    if timeout > max {
        return Some(Err(user_error(
            "22023",
            format!(
                "statement_timeout may be at most {} ms on this server (arq serve \
                 --max-statement-timeout)",
                max.as_millis()
            ),
        )));
    }
    client
        .metadata_mut()
        .insert(TIMEOUT_KEY.into(), timeout.as_millis().to_string());
    Some(Ok(Response::Execution(Tag::new("SET"))))
}

/// A duration as Postgres reads `statement_timeout`: a number of milliseconds, or a
/// number with a unit (`ms`, `s`, `min`, `h`, `d`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (t[..split].trim(), t[split..].trim());
    let value: f64 = number.parse().ok()?;
    let ms = match unit.to_ascii_lowercase().as_str() {
        "" | "ms" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000.0,
        "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        _ => return None,
    };
    let total = value * ms;
    (total.is_finite() && total >= 0.0).then(|| Duration::from_millis(total.round() as u64))
}

/// `COPY ... TO STDOUT`: the query to run and the format of the lines.
struct CopyOut {
    query: String,
    csv: bool,
    header: bool,
    delimiter: char,
    null: String,
}

impl CopyOut {
    /// The COPY of `statement`, if it is one (already checked: `TO STDOUT`).
    fn of(statement: &Statement) -> PgWireResult<Option<CopyOut>> {
        let Statement::Copy {
            source,
            to: true,
            target: CopyTarget::Stdout,
            options,
            legacy_options,
            ..
        } = statement
        else {
            return Ok(None);
        };
        let query = match source {
            CopySource::Query(q) => q.to_string(),
            CopySource::Table {
                table_name,
                columns,
            } if columns.is_empty() => format!("SELECT * FROM {table_name}"),
            CopySource::Table {
                table_name,
                columns,
            } => format!(
                "SELECT {} FROM {table_name}",
                columns
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut copy = CopyOut {
            query,
            csv: false,
            header: false,
            delimiter: '\t',
            null: "\\N".into(),
        };
        let mut delimiter = None;
        let mut null = None;
        for option in options {
            match option {
                CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv") => copy.csv = true,
                CopyOption::Format(f) if f.value.eq_ignore_ascii_case("text") => copy.csv = false,
                CopyOption::Header(h) => copy.header = *h,
                CopyOption::Delimiter(d) => delimiter = Some(*d),
                CopyOption::Null(n) => null = Some(n.clone()),
                other => {
                    return Err(user_error(
                        "0A000",
                        format!(
                            "COPY option {other} is not supported (FORMAT text|csv, HEADER, DELIMITER, NULL are)"
                        ),
                    ));
                }
            }
        }
        for option in legacy_options {
            match option {
                CopyLegacyOption::Csv(_) => copy.csv = true,
                CopyLegacyOption::Header => copy.header = true,
                CopyLegacyOption::Delimiter(d) => delimiter = Some(*d),
                CopyLegacyOption::Null(n) => null = Some(n.clone()),
                other => {
                    return Err(user_error(
                        "0A000",
                        format!("COPY option {other} is not supported"),
                    ));
                }
            }
        }
        if copy.csv {
            copy.delimiter = ',';
            copy.null = String::new();
        }
        if let Some(d) = delimiter {
            copy.delimiter = d;
        }
        if let Some(n) = null {
            copy.null = n;
        }
        Ok(Some(copy))
    }

    /// The COPY response: each row (text-encoded by the query handler) as one line.
    fn response(
        self,
        columns: usize,
        fields: &[FieldInfo],
        rows: impl Stream<Item = PgWireResult<DataRow>> + Send + 'static,
    ) -> Response {
        let mut header = None;
        if self.header {
            let names: Vec<Option<&[u8]>> =
                fields.iter().map(|f| Some(f.name().as_bytes())).collect();
            header = Some(self.line(&names));
        }
        let lines = rows.map(move |row| Ok(CopyData::new(self.row_line(&row?)?.into())));
        // The header is a message of its own, first.
        let header_stream = futures::stream::iter(header.map(|h| Ok(CopyData::new(h.into()))));
        Response::CopyOut(CopyResponse::new(0, columns, header_stream.chain(lines)))
    }

    fn row_line(&self, row: &DataRow) -> PgWireResult<Vec<u8>> {
        let fields = data_row_fields(row)?;
        Ok(self.line(&fields))
    }

    /// One line: fields separated by the delimiter, NULL as the null string, escaped as
    /// Postgres does (text: backslash escapes; CSV: quotes).
    fn line(&self, fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut delimiter = [0u8; 4];
        let delimiter = self.delimiter.encode_utf8(&mut delimiter).as_bytes();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(delimiter);
            }
            match field {
                None => out.extend_from_slice(self.null.as_bytes()),
                Some(value) if self.csv => {
                    let needs_quotes = value.is_empty()
                        || value.windows(delimiter.len()).any(|w| w == delimiter)
                        || value.iter().any(|b| matches!(b, b'"' | b'\n' | b'\r'))
                        || *value == self.null.as_bytes();
                    if needs_quotes {
                        out.push(b'"');
                        for &b in value.iter() {
                            if b == b'"' {
                                out.push(b'"');
                            }
                            out.push(b);
                        }
                        out.push(b'"');
                    } else {
                        out.extend_from_slice(value);
                    }
                }
                Some(value) => {
                    for &b in value.iter() {
                        match b {
                            b'\\' => out.extend_from_slice(b"\\\\"),
                            b'\n' => out.extend_from_slice(b"\\n"),
                            b'\r' => out.extend_from_slice(b"\\r"),
                            b'\t' => out.extend_from_slice(b"\\t"),
                            _ if delimiter == [b] => {
                                out.push(b'\\');
                                out.push(b);
                            }
                            _ => out.push(b),
                        }
                    }
                }
            }
        }
        out.push(b'\n');
        out
    }
}

/// The fields of a text-format data row: length-prefixed values, -1 for NULL.
fn data_row_fields(row: &DataRow) -> PgWireResult<Vec<Option<&[u8]>>> {
    let data = &row.data[..];
    let mut fields = Vec::with_capacity(row.field_count.max(0) as usize);
    let mut at = 0;
    let bad = || user_error("XX000", "COPY: a malformed data row".into());
    for _ in 0..row.field_count {
        let len_bytes: [u8; 4] = data
            .get(at..at + 4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        at += 4;
        let len = i32::from_be_bytes(len_bytes);
        if len < 0 {
            fields.push(None);
        } else {
            let end = at + len as usize;
            fields.push(Some(data.get(at..end).ok_or_else(bad)?));
            at = end;
        }
    }
    Ok(fields)
}

/// Cancel requests (sent on a connection of their own, naming the pid and secret key
/// the server gave at login): pgwire's own signal, which ends a statement still being
/// planned, and the connection's, which also ends one whose rows are being sent.
pub struct Cancels {
    shared: Arc<Shared>,
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.shared
            .connections
            .cancel(request.pid, &request.secret_key)
            .await;
        let key = (request.pid, request.secret_key.to_bytes().to_vec());
        let signal = self
            .shared
            .cancels
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned());
        if let Some(signal) = signal {
            signal.send_modify(|n| *n += 1);
        }
    }
}

/// Login: SCRAM-SHA-256 against the users, or none with `--trust-local`; TLS required
/// first with `--require-tls`; the connect line once logged in.
pub struct Startup {
    state: Arc<ConnectionState>,
    auth: Auth,
}

enum Auth {
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
    Trust(Trust),
}

/// `--trust-local`: no password (loopback only), but cancel requests still work.
struct Trust {
    connections: Arc<ConnectionManager>,
}

impl NoopStartupHandler for Trust {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(Arc::clone(&self.connections))
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let shared = &self.state.shared;
        if matches!(message, pgwire::messages::PgWireFrontendMessage::Startup(_))
            && shared.require_tls
            && !client.is_secure()
        {
            log::event("refused")
                .with("conn", self.state.id)
                .with("addr", client.socket_addr().to_string())
                .with("reason", "TLS required")
                .write();
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "28000".into(),
                "this server requires TLS (connect with sslmode=require)".into(),
            ))));
        }
        match &self.auth {
            Auth::Scram(h) => h.on_startup(client, message).await?,
            Auth::Trust(h) => h.on_startup(client, message).await?,
        }
        if matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            let mut connected = self.state.connected.lock().expect("connection lock");
            if connected.is_none() {
                let user = ConnectionState::user(client);
                let addr = client.socket_addr().to_string();
                client.metadata_mut().insert(
                    TIMEOUT_KEY.into(),
                    shared.limits.statement_timeout.as_millis().to_string(),
                );
                log::event("connect")
                    .with("conn", self.state.id)
                    .with("user", user.as_str())
                    .with("addr", addr.as_str())
                    .with("tls", client.is_secure())
                    .write();
                *connected = Some((Instant::now(), user, addr));
                let (pid, secret) = client.pid_and_secret_key();
                let key = (pid, secret.to_bytes().to_vec());
                shared
                    .cancels
                    .lock()
                    .expect("cancel lock")
                    .insert(key.clone(), self.state.cancel.clone());
                *self.state.cancel_key.lock().expect("cancel lock") = Some(key);
            }
        }
        Ok(())
    }
}

/// Logs failed logins (never the password) and names the user the client logged in as
/// in the message (SCRAM's own user name is empty with libpq).
pub struct Errors {
    state: Arc<ConnectionState>,
    logged: AtomicBool,
}

impl ErrorHandler for Errors {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if !matches!(
            client.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        ) || self.logged.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let user = ConnectionState::user(client);
        if let PgWireError::InvalidPassword(_) = error {
            *error = PgWireError::InvalidPassword(user.clone());
        }
        let (code, message) = match error {
            PgWireError::InvalidPassword(_) => ("28P01".to_string(), error.to_string()),
            other => describe(other),
        };
        log::event("auth_failed")
            .with("conn", self.state.id)
            .with("user", user)
            .with("addr", client.socket_addr().to_string())
            .with("sqlstate", code)
            .with("error", message)
            .write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regproc_literals_become_names() {
        let sql = "SELECT typinput='pg_catalog.array_in'::regproc AS is_array FROM pg_type";
        let got = regproc_as_names(sql).unwrap();
        assert!(got.contains("typinput = 'array_in'"), "{got}");
        assert_eq!(regproc_as_names("SELECT 1"), None);
        assert_eq!(
            regproc_as_names("SELECT prorettype::regtype FROM pg_proc"),
            None
        );
    }

    #[test]
    fn durations_read_like_postgres() {
        assert_eq!(parse_duration("1500"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5min"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 2 h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-5s"), None);
    }

    fn copy(csv: bool) -> CopyOut {
        CopyOut {
            query: String::new(),
            csv,
            header: false,
            delimiter: if csv { ',' } else { '\t' },
            null: if csv { String::new() } else { "\\N".into() },
        }
    }

    #[test]
    fn copy_lines_escape_like_postgres() {
        let fields = [
            Some(&b"a\tb"[..]),
            None,
            Some(&b"x\\y\nz"[..]),
            Some(&b""[..]),
        ];
        assert_eq!(
            copy(false).line(&fields),
            b"a\\tb\t\\N\tx\\\\y\\nz\t\n".to_vec()
        );
        let fields = [
            Some(&b"a,b"[..]),
            None,
            Some(&b"say \"hi\""[..]),
            Some(&b""[..]),
        ];
        assert_eq!(
            copy(true).line(&fields),
            b"\"a,b\",,\"say \"\"hi\"\"\",\"\"\n".to_vec()
        );
    }

    #[test]
    fn data_rows_split_into_fields() {
        let mut data = bytes::BytesMut::new();
        data.extend_from_slice(&2i32.to_be_bytes());
        data.extend_from_slice(b"ab");
        data.extend_from_slice(&(-1i32).to_be_bytes());
        let row = DataRow::new(data, 2);
        assert_eq!(data_row_fields(&row).unwrap(), vec![Some(&b"ab"[..]), None]);
    }
}
